//! The client's upgrade (RFC 6455 §4.1): tungstenite builds the request; the response is
//! scanned as it arrives and checked here.

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::generate_request;
use tungstenite::handshake::derive_accept_key;
use tungstenite::http::{HeaderName, HeaderValue, Uri};

use super::{has_token, header, items, parse_response, HeadBuf, Headers, Scan, MAX_HEAD};
use crate::error::{Error, Result, WS_ERROR_INVALID_PARAMETER, WS_ERROR_INVALID_URL};
use crate::protocol::deflate::{self, Agreed, Settings};

/// Headers the handshake owns; the application cannot set them.
const RESERVED: [&str; 8] = [
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// Checks a header the application wants to add to the upgrade request.
pub fn check_request_header(name: &str, value: &str) -> Result<()> {
    let bad = |why: &str| Error::new(WS_ERROR_INVALID_PARAMETER, why.to_owned());
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(bad(
            "the header name is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)",
        ));
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(bad("the handshake sets this header itself (Host, Upgrade, Connection, Sec-WebSocket-*); use WS_OPTION_SUBPROTOCOLS for Sec-WebSocket-Protocol and WS_OPTION_PERMESSAGE_DEFLATE for Sec-WebSocket-Extensions"));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
        || HeaderValue::from_str(value).is_err()
    {
        return Err(bad(
            "the header value contains CR, LF, NUL or another control character",
        ));
    }
    Ok(())
}

/// What the client asks for in its upgrade request.
#[derive(Clone, Debug, Default)]
pub struct Offer {
    /// Headers the application added (already checked with [`check_request_header`]).
    pub headers: Vec<(String, String)>,
    /// `Sec-WebSocket-Protocol`, in order of preference.
    pub subprotocols: Vec<String>,
    /// permessage-deflate's settings, when it is offered.
    pub deflate: Option<Settings>,
}

/// What the server's response said, kept even when the upgrade fails.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseInfo {
    /// The HTTP status.
    pub status: Option<u16>,
    /// The headers.
    pub headers: Headers,
}

/// What a successful upgrade yields.
#[derive(Debug, PartialEq, Eq)]
pub struct Upgraded {
    /// The agreed subprotocol, if any.
    pub subprotocol: Option<String>,
    /// permessage-deflate: the server's `Sec-WebSocket-Extensions` answer and what it agreed.
    pub deflate: Option<(String, Agreed)>,
    /// Bytes the server sent after the response head: the start of the first frames.
    pub leftover: Vec<u8>,
}

/// The client side of the upgrade: [`ClientHandshake::new`] gives the request to send;
/// [`ClientHandshake::feed`] takes the response as it arrives.
#[derive(Debug)]
pub struct ClientHandshake {
    accept: String,
    offer: Offer,
    head: HeadBuf,
    info: ResponseInfo,
}

impl ClientHandshake {
    /// The handshake for `uri` and the request bytes to send.
    pub fn new(uri: &Uri, offer: Offer) -> Result<(ClientHandshake, Vec<u8>)> {
        let mut req = uri
            .clone()
            .into_client_request()
            .map_err(|e| Error::new(WS_ERROR_INVALID_URL, format!("{e}")))?;
        for (name, value) in &offer.headers {
            let (n, v) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            );
            if let (Ok(n), Ok(v)) = (n, v) {
                req.headers_mut().append(n, v);
            }
        }
        if !offer.subprotocols.is_empty() {
            let v = HeaderValue::from_str(&offer.subprotocols.join(", ")).map_err(|_| {
                Error::param("WS_OPTION_SUBPROTOCOLS holds a character not allowed in a header")
            })?;
            req.headers_mut().insert("Sec-WebSocket-Protocol", v);
        }
        if let Some(d) = &offer.deflate {
            let v = HeaderValue::from_str(&deflate::client_offer(d))
                .map_err(|_| Error::param("the compression offer is not a valid header"))?;
            req.headers_mut().insert("Sec-WebSocket-Extensions", v);
        }
        let (bytes, key) = generate_request(req)
            .map_err(|e| Error::param(format!("cannot build the upgrade request: {e}")))?;
        let hs = ClientHandshake {
            accept: derive_accept_key(key.as_bytes()),
            offer,
            head: HeadBuf::default(),
            info: ResponseInfo::default(),
        };
        Ok((hs, bytes))
    }

    /// Takes bytes of the response: `Ok(None)` while the head is incomplete; the upgrade once
    /// the head is complete and valid; an error (`WS_ERROR_INVALID_SERVER_RESPONSE`) for an
    /// invalid or refusing response. Call no more after an answer.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Upgraded>> {
        match self.head.push(bytes) {
            Scan::Partial => Ok(None),
            Scan::TooLong => Err(Error::peer(format!(
                "the upgrade response head is longer than {MAX_HEAD} bytes"
            ))),
            Scan::Invalid => Err(invalid("a control character in the head")),
            Scan::Complete(_) => {
                let r = parse_response(&self.head).map_err(|e| invalid(&e.to_string()))?;
                if r.minor != 1 {
                    return Err(invalid("the HTTP version is not 1.1"));
                }
                self.info = ResponseInfo {
                    status: Some(r.status),
                    headers: r.headers,
                };
                if r.status != 101 {
                    return Err(Error::peer(format!(
                        "the server answered the upgrade with HTTP {} {} instead of 101 (status in WS_OPTION_HTTP_STATUS)",
                        r.status, r.reason
                    )));
                }
                let (subprotocol, deflate) = verify(&self.info.headers, &self.accept, &self.offer)?;
                Ok(Some(Upgraded {
                    subprotocol,
                    deflate,
                    leftover: self.head.rest().to_vec(),
                }))
            }
        }
    }

    /// The response's status and headers once its head was parsed (also after a refusal).
    pub fn take_response(&mut self) -> ResponseInfo {
        std::mem::take(&mut self.info)
    }
}

fn invalid(why: &str) -> Error {
    Error::peer(format!("the upgrade response is not valid HTTP: {why}"))
}

/// What the server agreed to in a 101: the subprotocol and permessage-deflate.
type Agreements = (Option<String>, Option<(String, Agreed)>);

/// Checks a 101's headers; returns what was agreed.
fn verify(h: &Headers, accept: &str, offer: &Offer) -> Result<Agreements> {
    if !header(h, "upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(Error::peer(
            "the upgrade response lacks \"Upgrade: websocket\"",
        ));
    }
    if !has_token(h, "connection", "upgrade") {
        return Err(Error::peer(
            "the upgrade response lacks \"Connection: Upgrade\"",
        ));
    }
    if header(h, "sec-websocket-accept") != Some(accept) {
        return Err(Error::peer(
            "the upgrade response's Sec-WebSocket-Accept does not match the request's key",
        ));
    }
    let extensions: Vec<&str> = items(h, "sec-websocket-extensions").collect();
    let extensions = extensions.join(", ");
    let deflate = deflate::accept_response(offer.deflate.as_ref(), Some(&extensions))
        .map_err(Error::peer)?
        .map(|a| (extensions, a));
    match header(h, "sec-websocket-protocol") {
        Some(p) if !offer.subprotocols.iter().any(|o| o == p) => Err(Error::peer(format!(
            "the server chose the subprotocol {p:?}, which was not offered"
        ))),
        p => Ok((p.map(str::to_owned), deflate)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WS_ERROR_INVALID_SERVER_RESPONSE;

    fn start(subprotocols: &[&str]) -> (ClientHandshake, String) {
        let offer = Offer {
            headers: vec![("X-App".into(), "1".into())],
            subprotocols: subprotocols.iter().map(|s| s.to_string()).collect(),
            deflate: None,
        };
        let uri: Uri = "ws://example.com:81/chat?x=1".parse().unwrap();
        let (hs, req) = ClientHandshake::new(&uri, offer).unwrap();
        let req = String::from_utf8(req).unwrap();
        let key = req
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .to_owned();
        (hs, derive_accept_key(key.as_bytes()))
    }

    fn response(accept: &str, extra: &str) -> Vec<u8> {
        let mut r = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n").into_bytes();
        r.extend_from_slice(b"\x81\x02hi");
        r
    }

    #[test]
    fn the_request_carries_the_offer() {
        let uri: Uri = "ws://example.com:81/chat?x=1".parse().unwrap();
        let offer = Offer {
            headers: vec![("X-App".into(), "1".into())],
            subprotocols: vec!["a".into(), "b".into()],
            deflate: Some(crate::protocol::deflate::Settings::default()),
        };
        let (_, req) = ClientHandshake::new(&uri, offer).unwrap();
        let req = String::from_utf8(req).unwrap();
        assert!(req.starts_with("GET /chat?x=1 HTTP/1.1\r\n"), "{req}");
        for line in [
            "Host: example.com:81\r\n",
            "Upgrade: websocket\r\n",
            "Sec-WebSocket-Version: 13\r\n",
            "x-app: 1\r\n",
            "Sec-WebSocket-Protocol: a, b\r\n",
        ] {
            assert!(req.contains(line), "{line} in {req}");
        }
        assert!(req.to_ascii_lowercase().contains(
            "sec-websocket-extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=12\r\n"
        ));
        assert!(req.ends_with("\r\n\r\n"));
    }

    #[test]
    fn a_response_fed_byte_by_byte() {
        let (mut hs, accept) = start(&["a", "b"]);
        let bytes = response(&accept, "Sec-WebSocket-Protocol: b\r\n");
        let end = bytes.len() - 4;
        for &b in &bytes[..end - 1] {
            assert_eq!(hs.feed(&[b]).unwrap(), None);
        }
        let up = hs.feed(&bytes[end - 1..]).unwrap().unwrap();
        assert_eq!(
            up,
            Upgraded {
                subprotocol: Some("b".into()),
                deflate: None,
                leftover: b"\x81\x02hi".to_vec()
            }
        );
        let info = hs.take_response();
        assert_eq!(info.status, Some(101));
        assert!(info
            .headers
            .contains(&("sec-websocket-protocol".into(), b"b".to_vec())));
    }

    #[test]
    fn bad_responses_are_refused_with_what_they_said() {
        type Make = fn(&str) -> Vec<u8>;
        fn edit(accept: &str, from: &str, to: &str) -> Vec<u8> {
            String::from_utf8_lossy(&response(accept, ""))
                .replace(from, to)
                .into_bytes()
        }
        let cases: Vec<(Make, &str)> = vec![
            (
                |_| b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\n\r\n".to_vec(),
                "HTTP 401 Unauthorized instead of 101",
            ),
            (|a| response(a, "")[11..].to_vec(), "not valid HTTP"),
            (|a| edit(a, "HTTP/1.1", "HTTP/1.0"), "not 1.1"),
            (|_| response("wrong", ""), "does not match"),
            (
                |a| response(a, "Sec-WebSocket-Protocol: c\r\n"),
                "not offered",
            ),
            (
                |a| response(a, "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                "extension",
            ),
            (
                |a| edit(a, "Connection: Upgrade", "Connection: close"),
                "Connection: Upgrade",
            ),
            (
                |_| b"HTTP/1.1 101 OK\r\nX: \x02\r\n".to_vec(),
                "control character",
            ),
            (|_| vec![b'H'; MAX_HEAD], "longer than"),
        ];
        for (make, why) in cases {
            let (mut hs, accept) = start(&[]);
            let e = hs.feed(&make(&accept)).unwrap_err();
            assert_eq!(e.code, WS_ERROR_INVALID_SERVER_RESPONSE);
            assert!(e.detail.contains(why), "{why}: {}", e.detail);
        }
        let (mut hs, _) = start(&[]);
        assert!(hs
            .feed(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\n\r\n")
            .is_err());
        assert_eq!(
            hs.take_response(),
            ResponseInfo {
                status: Some(401),
                headers: vec![("www-authenticate".into(), b"Basic".to_vec())]
            }
        );
    }
}
