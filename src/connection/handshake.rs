//! The client's HTTP upgrade: tungstenite builds the request and parses the response; the
//! checks of RFC 6455 §4.1 are here.

use std::time::Instant;

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::{generate_request, Response};
use tungstenite::handshake::derive_accept_key;
use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::Request;
use tungstenite::http::{HeaderName, HeaderValue};

use super::io::{read_some, write_all, Limit, Signals};
use super::url::WsUrl;
use crate::error::{Error, Result, WS_ERROR_INVALID_PARAMETER};
use crate::transport::Transport;

/// The longest upgrade response or request head accepted: a peer cannot make us buffer more.
pub(crate) const MAX_HEAD: usize = 16 * 1024;

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

/// Header names and values of an HTTP head, in order.
pub type Headers = Vec<(String, Vec<u8>)>;

fn collect_headers(map: &tungstenite::http::HeaderMap) -> Headers {
    map.iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

/// What the server's response said, kept even when the upgrade fails.
#[derive(Debug, Default)]
pub struct ResponseInfo {
    /// The HTTP status.
    pub status: Option<u16>,
    /// The headers.
    pub headers: Headers,
}

/// What a successful upgrade yields.
#[derive(Debug)]
pub struct Upgraded {
    /// The agreed subprotocol, if any.
    pub subprotocol: Option<String>,
    /// Bytes the server sent after the response head: the start of the first frames.
    pub leftover: Vec<u8>,
}

/// Sends the upgrade request and checks the response. `info` receives the response's HTTP
/// status and headers as soon as they are known, even when the upgrade then fails.
pub fn client_upgrade(
    t: &Transport,
    sig: &Signals,
    url: &WsUrl,
    headers: &[(String, String)],
    subprotocols: &[String],
    deadline: Option<Instant>,
    info: &mut ResponseInfo,
) -> Result<Upgraded> {
    let mut req = url
        .uri
        .clone()
        .into_client_request()
        .map_err(|e| Error::new(crate::error::WS_ERROR_INVALID_URL, format!("{e}")))?;
    for (name, value) in headers {
        let (n, v) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        );
        if let (Ok(n), Ok(v)) = (n, v) {
            req.headers_mut().append(n, v);
        }
    }
    if !subprotocols.is_empty() {
        let v = HeaderValue::from_str(&subprotocols.join(", ")).map_err(|_| {
            Error::param("WS_OPTION_SUBPROTOCOLS holds a character not allowed in a header")
        })?;
        req.headers_mut().insert("Sec-WebSocket-Protocol", v);
    }
    let (bytes, key) = generate_request(req)
        .map_err(|e| Error::param(format!("cannot build the upgrade request: {e}")))?;
    write_all(
        t,
        sig,
        &bytes,
        Limit::At(deadline),
        "the upgrade request",
        "WS_OPTION_CONNECT_TIMEOUT",
    )?;

    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let (used, response) = loop {
        match Response::try_parse(&head) {
            Ok(Some(parsed)) => break parsed,
            Ok(None) => {}
            Err(e) => {
                return Err(Error::peer(format!(
                    "the upgrade response is not valid HTTP: {e}"
                )))
            }
        }
        if head.len() >= MAX_HEAD {
            return Err(Error::peer(format!(
                "the upgrade response head is longer than {MAX_HEAD} bytes"
            )));
        }
        let room = (MAX_HEAD - head.len()).min(chunk.len());
        let n = read_some(
            t,
            sig,
            &mut chunk[..room],
            deadline,
            "the upgrade response",
            "WS_OPTION_CONNECT_TIMEOUT",
        )?;
        if n == 0 {
            return Err(Error::connection(
                "the server closed the connection before answering the upgrade request",
            ));
        }
        head.extend_from_slice(&chunk[..n]);
    };
    info.status = Some(response.status().as_u16());
    info.headers = collect_headers(response.headers());
    verify(&response, &derive_accept_key(key.as_bytes()), subprotocols)?;
    let subprotocol = header(&response, "Sec-WebSocket-Protocol").map(str::to_owned);
    Ok(Upgraded {
        subprotocol,
        leftover: head[used..].to_vec(),
    })
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn verify(r: &Response, accept: &str, offered: &[String]) -> Result<()> {
    let status = r.status().as_u16();
    if status != 101 {
        return Err(Error::peer(format!(
            "the server answered the upgrade with HTTP {status} {} instead of 101 (status in WS_OPTION_HTTP_STATUS)",
            r.status().canonical_reason().unwrap_or("")
        )));
    }
    if !header(r, "Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(Error::peer(
            "the upgrade response lacks \"Upgrade: websocket\"",
        ));
    }
    let has_upgrade_token = r
        .headers()
        .get_all("Connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !has_upgrade_token {
        return Err(Error::peer(
            "the upgrade response lacks \"Connection: Upgrade\"",
        ));
    }
    if header(r, "Sec-WebSocket-Accept") != Some(accept) {
        return Err(Error::peer(
            "the upgrade response's Sec-WebSocket-Accept does not match the request's key",
        ));
    }
    if let Some(p) = header(r, "Sec-WebSocket-Protocol") {
        if !offered.iter().any(|o| o == p) {
            return Err(Error::peer(format!(
                "the server chose the subprotocol {p:?}, which was not offered"
            )));
        }
    }
    Ok(())
}

/// What a server answers to a complete upgrade request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A valid upgrade on our path: send `response` (101) and start the connection.
    Accept {
        /// The 101 response.
        response: Vec<u8>,
        /// The subprotocol chosen, if any.
        subprotocol: Option<String>,
        /// The request's headers.
        headers: Headers,
    },
    /// Send `response` (400, 404, 426 or 431) and drop the connection.
    Reject {
        /// The error response.
        response: Vec<u8>,
    },
}

fn reject(status: u16, reason: &str, extra: &str) -> Verdict {
    Verdict::Reject {
        response: format!(
            "HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Length: 0\r\n{extra}\r\n"
        )
        .into_bytes(),
    }
}

/// Judges the upgrade request at the start of `head` (RFC 6455 §4.2): `None` while it is
/// incomplete; otherwise the bytes it took and the verdict. `path` is the listener's path;
/// `accepted` its subprotocols in order of preference.
pub fn answer_request(head: &[u8], path: &str, accepted: &[String]) -> Option<(usize, Verdict)> {
    let (used, req) = match Request::try_parse(head) {
        Ok(Some(parsed)) => parsed,
        Ok(None) if head.len() >= MAX_HEAD => {
            return Some((
                head.len(),
                reject(431, "Request Header Fields Too Large", ""),
            ))
        }
        Ok(None) => return None,
        Err(_) => return Some((head.len(), reject(400, "Bad Request", ""))),
    };
    let get = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let has_token = |name: &str, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if req.uri().path() != path {
        return Some((used, reject(404, "Not Found", "")));
    }
    let key_ok = get("Sec-WebSocket-Key").is_some_and(|k| k.len() == 24 && k.ends_with("=="));
    if get("Host").is_none()
        || !has_token("Upgrade", "websocket")
        || !has_token("Connection", "upgrade")
        || !key_ok
    {
        return Some((used, reject(400, "Bad Request", "")));
    }
    if get("Sec-WebSocket-Version") != Some("13") {
        return Some((
            used,
            reject(426, "Upgrade Required", "Sec-WebSocket-Version: 13\r\n"),
        ));
    }
    let offered: Vec<&str> = req
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let subprotocol = accepted
        .iter()
        .find(|a| offered.contains(&a.as_str()))
        .cloned();
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(get("Sec-WebSocket-Key").unwrap_or_default().as_bytes())
    );
    if let Some(p) = &subprotocol {
        response.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    response.push_str("\r\n");
    Some((
        used,
        Verdict::Accept {
            response: response.into_bytes(),
            subprotocol,
            headers: collect_headers(req.headers()),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, extra: &str) -> Vec<u8> {
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\nFRAMES"
        )
        .into_bytes()
    }

    fn status(v: &Verdict) -> &str {
        let r = match v {
            Verdict::Accept { response, .. } | Verdict::Reject { response } => response,
        };
        std::str::from_utf8(&r[9..12]).unwrap()
    }

    #[test]
    fn server_answers_requests() {
        let protos = vec!["b".to_owned(), "a".to_owned()];
        let req = request("/chat?x=1", "Sec-WebSocket-Protocol: a, b\r\n");
        let (used, v) = answer_request(&req, "/chat", &protos).unwrap();
        assert_eq!(&req[used..], b"FRAMES");
        match v {
            Verdict::Accept {
                response,
                subprotocol,
                headers,
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
        let (_, v) = answer_request(
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
        assert_eq!(answer_request(&req[..20], "/chat", &protos), None);
        // wrong path, garbage, wrong version, missing key, POST, too long
        assert_eq!(
            status(
                &answer_request(&request("/other", ""), "/chat", &[])
                    .unwrap()
                    .1
            ),
            "404"
        );
        assert_eq!(
            status(&answer_request(b"BLAH\r\n\r\n", "/", &[]).unwrap().1),
            "400"
        );
        let v8 = String::from_utf8(request("/", ""))
            .unwrap()
            .replace("Version: 13", "Version: 8");
        assert_eq!(
            status(&answer_request(v8.as_bytes(), "/", &[]).unwrap().1),
            "426"
        );
        let nokey = String::from_utf8(request("/", ""))
            .unwrap()
            .replace("Sec-WebSocket-Key", "X-Key");
        assert_eq!(
            status(&answer_request(nokey.as_bytes(), "/", &[]).unwrap().1),
            "400"
        );
        let post = String::from_utf8(request("/", ""))
            .unwrap()
            .replace("GET", "POST");
        assert_eq!(
            status(&answer_request(post.as_bytes(), "/", &[]).unwrap().1),
            "400"
        );
        let long = vec![b'a'; MAX_HEAD];
        assert_eq!(status(&answer_request(&long, "/", &[]).unwrap().1), "431");
        let mut partial = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        partial.resize(MAX_HEAD, b'a');
        assert_eq!(
            status(&answer_request(&partial, "/", &[]).unwrap().1),
            "431"
        );
    }

    #[test]
    fn request_headers_are_checked() {
        assert!(check_request_header("Authorization", "Bearer x").is_ok());
        assert!(check_request_header("X-Empty", "").is_ok());
        for (n, v) in [
            ("Bad Name", "v"),
            ("", "v"),
            ("X-A", "a\r\nInjected: yes"),
            ("X-A", "a\nb"),
            ("Host", "evil"),
            ("sec-websocket-key", "k"),
            ("Connection", "close"),
            ("Sec-WebSocket-Protocol", "chat"),
            ("Sec-WebSocket-Extensions", "permessage-deflate"),
        ] {
            assert!(check_request_header(n, v).is_err(), "{n}: {v:?}");
        }
    }
}
