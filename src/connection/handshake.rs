//! The client's HTTP upgrade: tungstenite builds the request and parses the response; the
//! checks of RFC 6455 §4.1 are here.

use std::time::Instant;

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::{generate_request, Response};
use tungstenite::handshake::derive_accept_key;
use tungstenite::handshake::machine::TryParse;
use tungstenite::http::{HeaderName, HeaderValue};

use super::io::{read_some, write_all, Signals};
use super::url::WsUrl;
use crate::error::{Error, Result, WS_ERROR_INVALID_PARAMETER};
use crate::transport::Transport;

/// The longest upgrade response accepted: a peer cannot make the client buffer more.
pub(crate) const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Headers the handshake owns; the application cannot set them.
const RESERVED: [&str; 7] = [
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-accept",
    "sec-websocket-protocol",
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
        return Err(bad("the handshake sets this header itself (Host, Upgrade, Connection, Sec-WebSocket-*); use WS_OPTION_SUBPROTOCOLS for Sec-WebSocket-Protocol"));
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

/// What a successful upgrade yields.
#[derive(Debug)]
pub struct Upgraded {
    /// The agreed subprotocol, if any.
    pub subprotocol: Option<String>,
    /// Bytes the server sent after the response head: the start of the first frames.
    pub leftover: Vec<u8>,
}

/// Sends the upgrade request and checks the response. `status` receives the response's HTTP
/// status as soon as it is known, even when the upgrade then fails.
pub fn client_upgrade(
    t: &Transport,
    sig: &Signals,
    url: &WsUrl,
    headers: &[(String, String)],
    subprotocols: &[String],
    deadline: Option<Instant>,
    status: &mut Option<u16>,
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
        deadline,
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
        if head.len() >= MAX_RESPONSE_HEAD {
            return Err(Error::peer(format!(
                "the upgrade response head is longer than {MAX_RESPONSE_HEAD} bytes"
            )));
        }
        let room = (MAX_RESPONSE_HEAD - head.len()).min(chunk.len());
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
    *status = Some(response.status().as_u16());
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
    if header(r, "Sec-WebSocket-Extensions").is_some_and(|v| !v.is_empty()) {
        return Err(Error::peer(
            "the server chose a WebSocket extension, but none was offered",
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

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            assert!(check_request_header(n, v).is_err(), "{n}: {v:?}");
        }
    }
}
