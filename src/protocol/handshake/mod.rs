//! The HTTP/1.1 exchanges before the first frame, sans-IO: the client's upgrade
//! ([`client`]), the server's answer to an upgrade request ([`server`]) and the HTTP CONNECT
//! exchange with a proxy ([`proxy`]). Each is a state machine fed the bytes that arrived and
//! answering with the bytes to send or what was agreed; the blocking driver (and later the
//! asynchronous one) only moves bytes.
//!
//! A head arrives in pieces. [`HeadBuf`] keeps it, and its end-of-head scan resumes where the
//! last one stopped, so a head that trickles in costs O(its length) in total however many
//! pieces it comes in; httparse runs once, on a complete head.

pub mod client;
pub mod proxy;
pub mod server;

use std::sync::atomic::{AtomicU64, Ordering};

/// The longest head (request or response, up to and including its blank line) accepted: a
/// peer cannot make us buffer more.
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// Header names (lower case) and values of an HTTP head, in order.
pub type Headers = Vec<(String, Vec<u8>)>;

static SCANNED: AtomicU64 = AtomicU64::new(0);
static PARSED: AtomicU64 = AtomicU64::new(0);

/// Work done by every head scanner in the process so far: (bytes scanned for the end of a
/// head, complete heads parsed). Tests and benchmarks read it to check that the work grows
/// with the bytes received, not with the bytes times the wake-ups.
pub fn work_done() -> (u64, u64) {
    (
        SCANNED.load(Ordering::Relaxed),
        PARSED.load(Ordering::Relaxed),
    )
}

/// Where the end-of-head scan stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Line {
    /// Before the first line: empty lines here are skipped (as httparse does).
    #[default]
    Start,
    /// Inside a line.
    Text,
    /// Right after a line's LF.
    Fresh,
    /// After a line's LF and a CR.
    FreshCr,
}

/// What the bytes received so far make of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// Not complete yet.
    Partial,
    /// Complete: the head is the first `n` bytes (blank line included).
    Complete(usize),
    /// No blank line within [`MAX_HEAD`] bytes.
    TooLong,
    /// A control character that no valid head contains (httparse would refuse it too).
    Invalid,
}

/// An HTTP head arriving in pieces, and the bytes that followed it.
#[derive(Debug, Default)]
pub struct HeadBuf {
    buf: Vec<u8>,
    /// How many bytes of `buf` the scan has looked at.
    scanned: usize,
    line: Line,
    /// Lines ended so far (an upper bound for the number of headers).
    lines: usize,
    state: Option<Scan>,
}

impl HeadBuf {
    /// Appends `bytes` and scans only them. Once the head is complete, further bytes are
    /// kept as they are (they follow the head).
    pub fn push(&mut self, bytes: &[u8]) -> Scan {
        self.buf.extend_from_slice(bytes);
        if let Some(done) = self.state {
            return done;
        }
        let end = self.buf.len().min(MAX_HEAD);
        SCANNED.fetch_add((end - self.scanned) as u64, Ordering::Relaxed);
        let mut line = self.line;
        for i in self.scanned..end {
            let b = self.buf[i];
            line = match (b, line) {
                (b'\n', Line::Fresh | Line::FreshCr) => {
                    self.scanned = i + 1;
                    self.state = Some(Scan::Complete(i + 1));
                    return Scan::Complete(i + 1);
                }
                (b'\r' | b'\n', Line::Start) => Line::Start,
                (b'\n', _) => {
                    self.lines += 1;
                    Line::Fresh
                }
                (b'\r', Line::Fresh) => Line::FreshCr,
                (b'\r', _) => Line::Text,
                (0..=8 | 0x0b..=0x1f | 0x7f, _) => {
                    self.scanned = i + 1;
                    self.state = Some(Scan::Invalid);
                    return Scan::Invalid;
                }
                _ => Line::Text,
            };
        }
        self.scanned = end;
        self.line = line;
        if end == MAX_HEAD {
            self.state = Some(Scan::TooLong);
            return Scan::TooLong;
        }
        Scan::Partial
    }

    /// The complete head (empty before it is complete).
    pub fn head(&self) -> &[u8] {
        match self.state {
            Some(Scan::Complete(n)) => &self.buf[..n],
            _ => &[],
        }
    }

    /// The bytes after the complete head.
    pub fn rest(&self) -> &[u8] {
        match self.state {
            Some(Scan::Complete(n)) => &self.buf[n..],
            _ => &[],
        }
    }

    /// Room for the headers of the complete head: one per line is always enough, so no
    /// head within [`MAX_HEAD`] is refused for having many headers.
    fn header_slots(&self) -> Vec<httparse::Header<'_>> {
        PARSED.fetch_add(1, Ordering::Relaxed);
        vec![httparse::EMPTY_HEADER; self.lines]
    }
}

fn collect(headers: &[httparse::Header<'_>]) -> Headers {
    headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect()
}

/// httparse's answer for a head [`HeadBuf`] found complete: a blank line ends every head
/// httparse accepts, so "partial" means a head it does not.
fn complete(status: httparse::Status<usize>) -> Result<(), httparse::Error> {
    match status {
        httparse::Status::Complete(_) => Ok(()),
        httparse::Status::Partial => Err(httparse::Error::NewLine),
    }
}

/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead {
    /// HTTP/1.`minor`.
    pub minor: u8,
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The headers.
    pub headers: Headers,
}

/// Parses the complete response head in `b`.
pub fn parse_response(b: &HeadBuf) -> Result<ResponseHead, httparse::Error> {
    let mut slots = b.header_slots();
    let mut r = httparse::Response::new(&mut slots);
    complete(r.parse(b.head())?)?;
    let status = r.code.unwrap_or(0);
    if status < 100 {
        return Err(httparse::Error::Status);
    }
    Ok(ResponseHead {
        minor: r.version.unwrap_or(0),
        status,
        reason: r.reason.unwrap_or("").to_owned(),
        headers: collect(r.headers),
    })
}

/// A parsed request head.
#[derive(Debug)]
pub struct RequestHead {
    /// The method.
    pub method: String,
    /// The request target as sent.
    pub target: String,
    /// HTTP/1.`minor`.
    pub minor: u8,
    /// The headers.
    pub headers: Headers,
}

/// Parses the complete request head in `b`.
pub fn parse_request(b: &HeadBuf) -> Result<RequestHead, httparse::Error> {
    let mut slots = b.header_slots();
    let mut r = httparse::Request::new(&mut slots);
    complete(r.parse(b.head())?)?;
    Ok(RequestHead {
        method: r.method.unwrap_or("").to_owned(),
        target: r.path.unwrap_or("").to_owned(),
        minor: r.version.unwrap_or(0),
        headers: collect(r.headers),
    })
}

/// The first value of header `name` (lower case), trimmed, if it is text.
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .map(str::trim)
}

/// The comma-separated, trimmed items of every header `name` (lower case).
pub fn items<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n == name)
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// Whether header `name` (lower case) lists `token` (case-insensitive).
pub fn has_token(headers: &Headers, name: &str, token: &str) -> bool {
    items(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_bytewise(b: &mut HeadBuf, bytes: &[u8]) -> Scan {
        let mut last = Scan::Partial;
        for &x in bytes {
            last = b.push(&[x]);
            if last != Scan::Partial {
                break;
            }
        }
        last
    }

    #[test]
    fn the_scan_finds_the_end_of_a_head_in_any_pieces() {
        for (text, end) in [
            (&b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest"[..], 24),
            (b"HTTP/1.1 200 OK\n\nrest", 17),
            (b"\r\n\r\nGET / HTTP/1.1\r\n\r\n", 22),
            (b"X\r\n\r\n", 5),
        ] {
            let mut whole = HeadBuf::default();
            assert_eq!(whole.push(text), Scan::Complete(end));
            assert_eq!(whole.rest(), &text[end..]);
            let mut bytewise = HeadBuf::default();
            assert_eq!(feed_bytewise(&mut bytewise, text), Scan::Complete(end));
            bytewise.push(&text[end..]);
            assert_eq!(bytewise.head(), &text[..end]);
            assert_eq!(bytewise.rest(), &text[end..]);
        }
        let mut b = HeadBuf::default();
        assert_eq!(
            feed_bytewise(&mut b, b"GET / HTTP/1.1\r\nA: \x01"),
            Scan::Invalid
        );
        let mut b = HeadBuf::default();
        assert_eq!(b.push(b"GET / HTTP/1.1\r\nA: \tb\r\r\n"), Scan::Partial);
        let mut b = HeadBuf::default();
        assert_eq!(b.push(&vec![b'a'; MAX_HEAD - 1]), Scan::Partial);
        assert_eq!(b.push(b"a"), Scan::TooLong);
        // a head that ends exactly at the limit is accepted
        let mut b = HeadBuf::default();
        let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        head.resize(MAX_HEAD - 4, b'x');
        head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(b.push(&head), Scan::Complete(MAX_HEAD));
    }

    #[test]
    fn scanning_is_linear_in_the_bytes() {
        // every byte is looked at once however it arrives; one parse per complete head
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        head.extend(b"X-A: b\r\n".repeat(1000));
        head.extend_from_slice(b"\r\n");
        let mut b = HeadBuf::default();
        let before = b.scanned;
        assert_eq!(feed_bytewise(&mut b, &head), Scan::Complete(head.len()));
        assert_eq!(b.scanned - before, head.len());
        let req = parse_request(&b).unwrap();
        assert_eq!(req.headers.len(), 1000, "no cap on the number of headers");
    }
}
