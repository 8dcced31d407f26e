//! The server's side of the upgrade (RFC 6455 §4.2): the request is scanned as it arrives and
//! answered with 101 or with an error response.

use tungstenite::handshake::derive_accept_key;
use tungstenite::http::Uri;

use super::{has_token, header, items, parse_request, HeadBuf, Headers, Scan};
use crate::protocol::deflate::{self, Agreed, Settings};

/// What the server accepts: checked against each request when it is complete.
#[derive(Clone, Copy, Debug)]
pub struct Policy<'a> {
    /// The listener's path (a request's query string is ignored).
    pub path: &'a str,
    /// Subprotocols, in order of preference.
    pub subprotocols: &'a [String],
    /// permessage-deflate's settings, when the server accepts it.
    pub deflate: Option<&'a Settings>,
}

/// What a server answers to a complete upgrade request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A valid upgrade on our path: once the connection is set up, send `response` (101).
    Accept {
        /// The 101 response.
        response: Vec<u8>,
        /// The subprotocol chosen, if any.
        subprotocol: Option<String>,
        /// The request's headers.
        headers: Headers,
        /// permessage-deflate: the `Sec-WebSocket-Extensions` answer and what it agreed.
        deflate: Option<(String, Agreed)>,
    },
    /// Send `response` (400, 404, 426 or 431) and drop the connection.
    Reject {
        /// The error response.
        response: Vec<u8>,
    },
}

/// An error response that ends the connection.
pub fn error_response(status: u16, reason: &str, extra: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Length: 0\r\n{extra}\r\n")
        .into_bytes()
}

/// The answer to a valid request when the server cannot take the connection (out of
/// descriptors or memory): 503, which tells the client to try again later.
pub fn unavailable() -> Vec<u8> {
    error_response(503, "Service Unavailable", "")
}

fn reject(status: u16, reason: &str, extra: &str) -> Verdict {
    Verdict::Reject {
        response: error_response(status, reason, extra),
    }
}

/// The server side of one upgrade: [`ServerHandshake::feed`] takes the request as it arrives
/// and judges it once it is complete.
#[derive(Debug, Default)]
pub struct ServerHandshake {
    head: HeadBuf,
}

impl ServerHandshake {
    /// Takes bytes of the request: `None` while it is incomplete, then the verdict. Call no
    /// more after a verdict.
    pub fn feed(&mut self, bytes: &[u8], policy: Policy<'_>) -> Option<Verdict> {
        match self.head.push(bytes) {
            Scan::Partial => None,
            Scan::TooLong => Some(reject(431, "Request Header Fields Too Large", "")),
            Scan::Invalid => Some(reject(400, "Bad Request", "")),
            Scan::Complete(_) => Some(self.judge(policy)),
        }
    }

    /// The bytes the client sent after its request: the start of its first frames.
    pub fn leftover(&self) -> &[u8] {
        self.head.rest()
    }

    fn judge(&self, policy: Policy<'_>) -> Verdict {
        let Ok(req) = parse_request(&self.head) else {
            return reject(400, "Bad Request", "");
        };
        let Ok(uri) = req.target.parse::<Uri>() else {
            return reject(400, "Bad Request", "");
        };
        if req.method != "GET" || req.minor != 1 {
            return reject(400, "Bad Request", "");
        }
        if uri.path() != policy.path {
            return reject(404, "Not Found", "");
        }
        let h = &req.headers;
        let key = header(h, "sec-websocket-key").filter(|k| k.len() == 24 && k.ends_with("=="));
        let Some(key) = key else {
            return reject(400, "Bad Request", "");
        };
        if header(h, "host").is_none()
            || !has_token(h, "upgrade", "websocket")
            || !has_token(h, "connection", "upgrade")
        {
            return reject(400, "Bad Request", "");
        }
        if header(h, "sec-websocket-version") != Some("13") {
            return reject(426, "Upgrade Required", "Sec-WebSocket-Version: 13\r\n");
        }
        let offered: Vec<&str> = items(h, "sec-websocket-protocol").collect();
        let subprotocol = policy
            .subprotocols
            .iter()
            .find(|a| offered.contains(&a.as_str()))
            .cloned();
        let mut response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
            derive_accept_key(key.as_bytes())
        );
        if let Some(p) = &subprotocol {
            response.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
        }
        let offers: Vec<&str> = items(h, "sec-websocket-extensions").collect();
        let deflate = policy
            .deflate
            .and_then(|s| deflate::answer_offers(s, &offers.join(", ")));
        if let Some((ext, _)) = &deflate {
            response.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
        }
        response.push_str("\r\n");
        Verdict::Accept {
            response: response.into_bytes(),
            subprotocol,
            headers: req.headers,
            deflate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::MAX_HEAD;
    use super::*;

    fn request(path: &str, extra: &str) -> Vec<u8> {
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\nFRAMES"
        )
        .into_bytes()
    }

    /// Feeds `bytes` one at a time; the verdict and the bytes left after the request.
    fn answer(bytes: &[u8], path: &str, protos: &[String]) -> Option<(Verdict, Vec<u8>)> {
        let mut hs = ServerHandshake::default();
        let policy = Policy {
            path,
            subprotocols: protos,
            deflate: None,
        };
        for (i, b) in bytes.iter().enumerate() {
            if let Some(v) = hs.feed(std::slice::from_ref(b), policy) {
                hs.head.push(&bytes[i + 1..]);
                return Some((v, hs.leftover().to_vec()));
            }
        }
        None
    }

    fn status(bytes: &[u8], path: &str) -> String {
        let (v, _) = answer(bytes, path, &[]).expect("a verdict");
        let r = match &v {
            Verdict::Accept { response, .. } | Verdict::Reject { response } => response,
        };
        String::from_utf8_lossy(&r[9..12]).into_owned()
    }

    #[test]
    fn server_answers_requests() {
        let protos = vec!["b".to_owned(), "a".to_owned()];
        let req = request("/chat?x=1", "Sec-WebSocket-Protocol: a, b\r\n");
        let (v, rest) = answer(&req, "/chat", &protos).unwrap();
        assert_eq!(rest, b"FRAMES");
        match v {
            Verdict::Accept {
                response,
                subprotocol,
                headers,
                deflate: None,
            } => {
                assert!(headers.iter().any(|(n, v)| n == "host" && v == b"x"));
                let text = String::from_utf8(response).unwrap();
                // RFC 6455 §1.3's example key and accept value
                assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
                assert!(text.contains("Sec-WebSocket-Protocol: b\r\n"));
                assert_eq!(subprotocol.as_deref(), Some("b"));
            }
            other => panic!("{other:?}"),
        }
        // no common subprotocol: accepted without one
        let (v, _) = answer(
            &request("/chat", "Sec-WebSocket-Protocol: c\r\n"),
            "/chat",
            &protos,
        )
        .unwrap();
        assert!(matches!(
            v,
            Verdict::Accept {
                subprotocol: None,
                ..
            }
        ));
        // incomplete
        assert_eq!(answer(&req[..20], "/chat", &protos), None);
        // many headers are fine
        let many = "X-A: 1\r\n".repeat(500);
        assert_eq!(status(&request("/", &many), "/"), "101");
        // wrong path, garbage, wrong version, missing key, POST, HTTP/1.0, too long
        assert_eq!(status(&request("/other", ""), "/chat"), "404");
        assert_eq!(status(b"BLAH\r\n\r\n", "/"), "400");
        assert_eq!(status(b"GET / HTTP/1.1\r\nX\x01", "/"), "400");
        let edit = |from: &str, to: &str| {
            String::from_utf8(request("/", ""))
                .unwrap()
                .replacen(from, to, 1)
                .into_bytes()
        };
        assert_eq!(status(&edit("Version: 13", "Version: 8"), "/"), "426");
        assert_eq!(status(&edit("Sec-WebSocket-Key", "X-Key"), "/"), "400");
        assert_eq!(status(&edit("GET", "POST"), "/"), "400");
        assert_eq!(status(&edit("HTTP/1.1", "HTTP/1.0"), "/"), "400");
        assert_eq!(status(&edit("Host: x\r\n", ""), "/"), "400");
        assert_eq!(status(&vec![b'a'; MAX_HEAD], "/"), "431");
        let mut partial = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        partial.resize(MAX_HEAD, b'a');
        assert_eq!(status(&partial, "/"), "431");
        assert!(String::from_utf8(unavailable())
            .unwrap()
            .starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
    }
}
