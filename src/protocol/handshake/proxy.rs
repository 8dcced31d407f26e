//! The HTTP CONNECT exchange with a proxy (RFC 9110 §9.3.6): the request, then the answer,
//! scanned as it arrives. Interim (1xx) answers are skipped; a 2xx opens the tunnel, and the
//! bytes behind its head already belong to the tunnel (TLS or the upgrade).

use super::{parse_response, HeadBuf, Scan, MAX_HEAD};
use crate::error::{Error, Result, WS_ERROR_CANNOT_CONNECT};

/// The client side of one CONNECT exchange.
#[derive(Debug)]
pub struct ConnectExchange {
    target: String,
    head: HeadBuf,
}

fn cannot(detail: String) -> Error {
    Error::new(WS_ERROR_CANNOT_CONNECT, detail)
}

impl ConnectExchange {
    /// The exchange for a tunnel to `host:port` and the request bytes to send.
    pub fn new(host: &str, port: u16) -> (ConnectExchange, Vec<u8>) {
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes();
        let x = ConnectExchange {
            target,
            head: HeadBuf::default(),
        };
        (x, request)
    }

    /// Takes bytes of the proxy's answer: `Ok(None)` until the final answer's head is
    /// complete; then the bytes that followed it (the tunnel's first bytes) for a 2xx, or
    /// `WS_ERROR_CANNOT_CONNECT` for a refusal or an answer that is not HTTP.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut scan = self.head.push(bytes);
        loop {
            match scan {
                Scan::Partial => return Ok(None),
                Scan::TooLong => {
                    return Err(cannot(format!(
                        "the proxy's answer to CONNECT has a head longer than {MAX_HEAD} bytes"
                    )))
                }
                Scan::Invalid => {
                    return Err(cannot(
                        "the proxy's answer to CONNECT is not valid HTTP: a control character in the head".to_owned(),
                    ))
                }
                Scan::Complete(_) => {}
            }
            let r = parse_response(&self.head).map_err(|e| {
                cannot(format!(
                    "the proxy's answer to CONNECT is not valid HTTP: {e}"
                ))
            })?;
            match r.status {
                // interim: the final answer follows; what came after this one is scanned
                // as a new head (101 was not asked for: a refusal)
                100 | 102..=199 => {
                    let rest = std::mem::take(&mut self.head).rest().to_vec();
                    scan = self.head.push(&rest);
                }
                200..=299 => return Ok(Some(self.head.rest().to_vec())),
                status => {
                    return Err(cannot(format!(
                        "the proxy refused to CONNECT to {}: HTTP {status} {}",
                        self.target, r.reason
                    )))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` one at a time; the outcome and how many bytes it took.
    fn bytewise(bytes: &[u8]) -> (Result<Option<Vec<u8>>>, usize) {
        let (mut x, _) = ConnectExchange::new("example.com", 443);
        for i in 0..bytes.len() {
            match x.feed(&bytes[i..=i]) {
                Ok(None) => {}
                other => return (other, i + 1),
            }
        }
        (Ok(None), bytes.len())
    }

    #[test]
    fn the_request() {
        let (_, r) = ConnectExchange::new("example.com", 443);
        assert_eq!(
            r,
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        );
        let (_, r) = ConnectExchange::new("::1", 80);
        assert!(r.starts_with(b"CONNECT [::1]:80 HTTP/1.1\r\n"));
    }

    #[test]
    fn answers_in_any_pieces() {
        // a 200 after interim answers; what follows belongs to the tunnel
        let answer =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: y\r\n\r\nHTTP/1.0 200 Connection established\r\n\r\n\x16\x03";
        let (mut x, _) = ConnectExchange::new("h", 1);
        assert_eq!(x.feed(answer).unwrap(), Some(b"\x16\x03".to_vec()));
        let (r, used) = bytewise(answer);
        assert_eq!(r.unwrap(), Some(Vec::new()));
        assert_eq!(used, answer.len() - 2);
        // a 200 with many headers
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..100 {
            many.extend(format!("X-Header-{i}: {i}\r\n").bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(bytewise(&many).0.unwrap(), Some(Vec::new()));
        // refusals and garbage
        for (bytes, why) in [
            (
                &b"HTTP/1.1 403 Forbidden\r\n\r\n"[..],
                "refused to CONNECT to h:1: HTTP 403 Forbidden",
            ),
            (b"HTTP/1.1 101 Switching\r\n\r\n", "HTTP 101"),
            (b"SSH-2.0-OpenSSH\r\n\r\n", "not valid HTTP"),
            (b"HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n", "not valid HTTP"),
        ] {
            let (mut x, _) = ConnectExchange::new("h", 1);
            let e = x.feed(bytes).unwrap_err();
            assert_eq!(e.code, WS_ERROR_CANNOT_CONNECT);
            assert!(e.detail.contains(why), "{why}: {}", e.detail);
        }
        let (mut x, _) = ConnectExchange::new("h", 1);
        let e = x.feed(&vec![b'a'; MAX_HEAD]).unwrap_err();
        assert!(e.detail.contains("longer than"), "{}", e.detail);
    }
}
