//! HTTP CONNECT proxies (`WS_OPTION_PROXY`), for `ws://` and `wss://` alike: the proxy's URL,
//! and the blocking driver of the sans-IO
//! [`ConnectExchange`](crate::protocol::handshake::proxy::ConnectExchange).

use std::time::Instant;

use super::io::{read_until, write_all, Limit, Signals};
use crate::error::{Error, Result, WS_ERROR_CANNOT_CONNECT};
use crate::protocol::handshake::proxy::ConnectExchange;
use crate::transport::Transport;

/// A proxy's address, from `http://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    /// Host name or address.
    pub host: String,
    /// Port (80 when the URL has none).
    pub port: u16,
}

impl Proxy {
    /// Back to `http://host:port`.
    pub fn to_url(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }

    /// Parses `http://host[:port]`.
    pub fn parse(s: &str) -> Result<Proxy> {
        let bad = || {
            Error::param(format!(
                "WS_OPTION_PROXY must look like http://host:port, not {s:?}"
            ))
        };
        let rest = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("HTTP://"))
            .ok_or_else(bad)?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
            return Err(bad());
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (h, after) = v6.split_once(']').ok_or_else(bad)?;
                match after.strip_prefix(':') {
                    Some(p) => (h, p.parse().map_err(|_| bad())?),
                    None if after.is_empty() => (h, 80),
                    None => return Err(bad()),
                }
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
                None => (authority, 80),
            },
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Proxy {
            host: host.to_owned(),
            port,
        })
    }
}

/// Asks the proxy on `t` to open a tunnel to `host:port`; returns the bytes that arrived
/// behind the proxy's answer (they belong to the tunnel: TLS or the upgrade).
pub fn tunnel(
    t: &Transport,
    sig: &Signals,
    host: &str,
    port: u16,
    deadline: Option<Instant>,
) -> Result<Vec<u8>> {
    let (mut exchange, request) = ConnectExchange::new(host, port);
    write_all(
        t,
        sig,
        &request,
        Limit::At(deadline),
        "the CONNECT request",
        "WS_OPTION_CONNECT_TIMEOUT",
    )?;
    read_until(
        t,
        sig,
        deadline,
        "the proxy's answer",
        "WS_OPTION_CONNECT_TIMEOUT",
        &|| {
            Error::new(
                WS_ERROR_CANNOT_CONNECT,
                "the proxy closed the connection instead of answering CONNECT",
            )
        },
        |bytes| exchange.feed(bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("http://127.0.0.1:8888").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 8888));
        let p = Proxy::parse("http://proxy.example/").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.example", 80));
        let p = Proxy::parse("http://[::1]:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", 3128));
        for bad in [
            "",
            "127.0.0.1:8888",
            "https://x:1",
            "http://",
            "http://u:p@x:1",
            "http://x:notaport",
        ] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
    }
}
