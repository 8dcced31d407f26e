//! WebSocket URLs: `ws://host[:port]/path?query`.

use tungstenite::http::Uri;

use crate::error::{Error, Result, WS_ERROR_INVALID_URL, WS_ERROR_UNRECOGNIZED_SCHEME};

/// A parsed `ws://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsUrl {
    /// The whole URL, as given.
    pub uri: Uri,
    /// The host, without brackets for IPv6 literals.
    pub host: String,
    /// The port (80 for ws://, 443 for wss:// by default).
    pub port: u16,
    /// `wss://`: TLS.
    pub secure: bool,
    /// Path and query, `/` when empty.
    pub path: String,
}

impl WsUrl {
    /// Parses and checks a URL.
    pub fn parse(url: &str) -> Result<WsUrl> {
        let uri: Uri = url.parse().map_err(|e| {
            Error::new(
                WS_ERROR_INVALID_URL,
                format!("cannot parse the URL {url:?}: {e}"),
            )
        })?;
        let (port, secure) = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("ws") => (80, false),
            Some(s) if s.eq_ignore_ascii_case("wss") => (443, true),
            Some(s) => {
                return Err(Error::new(
                    WS_ERROR_UNRECOGNIZED_SCHEME,
                    format!("the scheme {s:?} is not a WebSocket scheme: use ws:// or wss://"),
                ))
            }
            None => {
                return Err(Error::new(
                    WS_ERROR_INVALID_URL,
                    format!("the URL {url:?} has no scheme: write ws://host:port/path"),
                ))
            }
        };
        let authority = uri.authority().ok_or_else(|| {
            Error::new(WS_ERROR_INVALID_URL, format!("the URL {url:?} has no host"))
        })?;
        if authority.as_str().contains('@') {
            return Err(Error::new(
                WS_ERROR_INVALID_URL,
                "user names and passwords in the URL are not supported: send credentials with ws_add_request_header",
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(Error::new(
                WS_ERROR_INVALID_URL,
                format!("the URL {url:?} has no host"),
            ));
        }
        if uri
            .path_and_query()
            .is_some_and(|p| p.as_str().contains('#'))
            || url.contains('#')
        {
            return Err(Error::new(
                WS_ERROR_INVALID_URL,
                "a WebSocket URL must not have a fragment (#...)",
            ));
        }
        // `http` drops a port it cannot parse, so read it from the authority text.
        let a = authority.as_str();
        let after_host = a.rsplit_once(']').map_or(a, |(_, rest)| rest);
        let port = match after_host.rsplit_once(':') {
            None | Some((_, "")) => port,
            Some((_, p)) => p.parse::<u16>().map_err(|_| {
                Error::new(
                    WS_ERROR_INVALID_URL,
                    format!("the port in {url:?} is not 0-65535"),
                )
            })?,
        };
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") => "/".to_owned(),
            Some(p) => p.to_owned(),
        };
        Ok(WsUrl {
            host: host.to_owned(),
            port,
            secure,
            path,
            uri,
        })
    }
}

impl WsUrl {
    /// The path without the query: what a listener matches requests against.
    pub fn path_only(&self) -> String {
        self.uri.path().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let u = WsUrl::parse("ws://127.0.0.1:8080/chat?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/chat?x=1")
        );
        let u = WsUrl::parse("WS://[::1]").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("::1", 80, "/"));
        assert_eq!(
            WsUrl::parse("http://x/").unwrap_err().code,
            WS_ERROR_UNRECOGNIZED_SCHEME
        );
        let u = WsUrl::parse("wss://example.com/a").unwrap();
        assert_eq!((u.port, u.secure), (443, true));
        for bad in [
            "",
            "not a url",
            "ws://",
            "/path",
            "ws://u:p@host/",
            "ws://host/#frag",
        ] {
            assert_eq!(
                WsUrl::parse(bad).unwrap_err().code,
                WS_ERROR_INVALID_URL,
                "{bad}"
            );
        }
    }
}
