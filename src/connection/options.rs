//! Per-handle settings: the typed options (the FFI layer maps the C numbers onto these) and
//! the timeouts, which may change at any time.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::protocol::deflate::{self, Settings};
use std::time::{Duration, Instant};

/// The options a handle understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opt {
    /// TCP + upgrade deadline, ms.
    ConnectTimeout,
    /// Deadline for a blocked send, ms (fatal).
    SendTimeout,
    /// Deadline for `ws_receive`, ms (not fatal).
    ReceiveTimeout,
    /// One deadline for all of `ws_close`, ms.
    CloseTimeout,
    /// Idle time before a keepalive ping while `ws_receive` waits, ms.
    KeepaliveInterval,
    /// Time without any frame after a keepalive ping before the connection is aborted, ms.
    KeepaliveTimeout,
    /// Longest incoming message, bytes.
    MaxMessageSize,
    /// Subprotocols offered, comma-separated.
    Subprotocols,
    /// The subprotocol the handshake agreed (query only).
    SelectedSubprotocol,
    /// The upgrade response's HTTP status (query only).
    HttpStatus,
    /// The local port (query only).
    LocalPort,
    /// PEM bundle replacing the system roots.
    TlsCaFile,
    /// Skip certificate checks.
    TlsInsecureSkipVerify,
    /// PEM certificate chain.
    TlsCertFile,
    /// PEM private key.
    TlsKeyFile,
    /// HTTP CONNECT proxy.
    Proxy,
    /// Offer (client) or accept (listener) permessage-deflate.
    PermessageDeflate,
    /// The `Sec-WebSocket-Extensions` value the handshake agreed (query only).
    Extensions,
    /// permessage-deflate: the largest window, base-2 logarithm.
    DeflateWindowBits,
    /// permessage-deflate: keep compression contexts between messages.
    DeflateContextTakeover,
    /// permessage-deflate: zlib level.
    DeflateLevel,
    /// permessage-deflate: messages sent whole and shorter than this go uncompressed.
    DeflateThreshold,
}

/// The C type of an option's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// `uint32_t`.
    U32,
    /// `uint64_t`.
    U64,
    /// A string of bytes (`len` bytes, no NUL needed).
    Str,
}

/// An option's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A `uint32_t`.
    U32(u32),
    /// A `uint64_t`.
    U64(u64),
    /// A string.
    Str(String),
}

impl Opt {
    /// The type of the option's value.
    pub fn value_type(self) -> ValueType {
        match self {
            Opt::MaxMessageSize => ValueType::U64,
            Opt::Subprotocols
            | Opt::SelectedSubprotocol
            | Opt::TlsCaFile
            | Opt::TlsCertFile
            | Opt::TlsKeyFile
            | Opt::Proxy
            | Opt::Extensions => ValueType::Str,
            _ => ValueType::U32,
        }
    }

    /// Whether the option can only be read.
    pub fn query_only(self) -> bool {
        matches!(
            self,
            Opt::SelectedSubprotocol | Opt::HttpStatus | Opt::LocalPort | Opt::Extensions
        )
    }

    /// `Err(WS_ERROR_INVALID_OPTION)` for an option that can only be queried.
    pub fn check_settable(self) -> crate::error::Result<()> {
        if self.query_only() {
            return Err(crate::error::Error::new(
                crate::error::WS_ERROR_INVALID_OPTION,
                "this option can only be queried with ws_query_option",
            ));
        }
        Ok(())
    }

    /// The index of a timeout option in [`Timeouts`].
    fn timeout_index(self) -> Option<usize> {
        TIMEOUTS.iter().position(|(o, _)| *o == self)
    }
}

/// Parses `WS_OPTION_SUBPROTOCOLS`: comma-separated HTTP tokens, in order of preference.
pub fn parse_subprotocols(s: &str) -> crate::error::Result<Vec<String>> {
    let list: Vec<String> = s
        .split(',')
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    if list
        .iter()
        .any(|p| tungstenite::http::HeaderName::from_bytes(p.as_bytes()).is_err())
    {
        return Err(crate::error::Error::param(
            "a subprotocol name must be an HTTP token; separate names with commas",
        ));
    }
    Ok(list)
}

/// The permessage-deflate options of a connection or listener, fixed at `ws_connect` (a
/// listener's apply to the connections it accepts afterwards).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeflateOptions {
    /// `WS_OPTION_PERMESSAGE_DEFLATE`.
    pub enabled: bool,
    /// The tuning options.
    pub settings: Settings,
}

impl DeflateOptions {
    /// Whether `opt` is one of the settable compression options.
    pub fn covers(opt: Opt) -> bool {
        matches!(
            opt,
            Opt::PermessageDeflate
                | Opt::DeflateWindowBits
                | Opt::DeflateContextTakeover
                | Opt::DeflateLevel
                | Opt::DeflateThreshold
        )
    }

    /// Sets one of them, checking its range.
    pub fn set(&mut self, opt: Opt, value: &Value) -> crate::error::Result<()> {
        let Value::U32(v) = *value else {
            return Err(crate::error::Error::param("this option takes a uint32_t"));
        };
        let range = |lo: u32, hi: u32, what: &str| {
            if (lo..=hi).contains(&v) {
                Ok(v as u8)
            } else {
                Err(crate::error::Error::param(format!(
                    "{what} takes {lo} to {hi}; {v} is out of range"
                )))
            }
        };
        let s = &mut self.settings;
        match opt {
            Opt::PermessageDeflate => {
                self.enabled = range(0, 1, "WS_OPTION_PERMESSAGE_DEFLATE")? == 1
            }
            Opt::DeflateWindowBits => {
                s.window_bits = range(
                    u32::from(deflate::MIN_WINDOW_BITS),
                    u32::from(deflate::MAX_WINDOW_BITS),
                    "WS_OPTION_DEFLATE_WINDOW_BITS",
                )?
            }
            Opt::DeflateContextTakeover => {
                s.context_takeover = range(0, 1, "WS_OPTION_DEFLATE_CONTEXT_TAKEOVER")? == 1
            }
            Opt::DeflateLevel => s.level = range(0, 9, "WS_OPTION_DEFLATE_LEVEL")?,
            _ => s.threshold = v,
        }
        Ok(())
    }

    /// Reads one of them.
    pub fn get(&self, opt: Opt) -> Value {
        let s = &self.settings;
        Value::U32(match opt {
            Opt::PermessageDeflate => u32::from(self.enabled),
            Opt::DeflateWindowBits => u32::from(s.window_bits),
            Opt::DeflateContextTakeover => u32::from(s.context_takeover),
            Opt::DeflateLevel => u32::from(s.level),
            _ => s.threshold,
        })
    }

    /// The settings to negotiate with, when compression is on.
    pub fn offered(&self) -> Option<&Settings> {
        self.enabled.then_some(&self.settings)
    }
}

/// The timeout options and their defaults in ms, as API.md gives them.
const TIMEOUTS: [(Opt, u32); 6] = [
    (Opt::ConnectTimeout, 60_000),
    (Opt::SendTimeout, 30_000),
    (Opt::ReceiveTimeout, 0),
    (Opt::CloseTimeout, 10_000),
    (Opt::KeepaliveInterval, 30_000),
    (Opt::KeepaliveTimeout, 0),
];

/// The timeouts of a handle, in ms; 0 means "none". They may be changed while calls run: a
/// call reads them when it starts.
#[derive(Debug)]
pub struct Timeouts([AtomicU32; 6]);

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts(TIMEOUTS.map(|(_, ms)| AtomicU32::new(ms)))
    }
}

impl Timeouts {
    /// Whether `opt` is a timeout.
    pub fn covers(opt: Opt) -> bool {
        opt.timeout_index().is_some()
    }
    /// The value in ms.
    pub fn get(&self, opt: Opt) -> u32 {
        opt.timeout_index()
            .map_or(0, |i| self.0[i].load(Ordering::Relaxed))
    }
    /// Sets the value in ms.
    pub fn set(&self, opt: Opt, ms: u32) {
        if let Some(i) = opt.timeout_index() {
            self.0[i].store(ms, Ordering::Relaxed);
        }
    }
    /// The value as a duration; `None` for 0 (no timeout).
    pub fn duration(&self, opt: Opt) -> Option<Duration> {
        match self.get(opt) {
            0 => None,
            ms => Some(Duration::from_millis(u64::from(ms))),
        }
    }
    /// The deadline of a call that starts now; `None` for no timeout.
    pub fn deadline(&self, opt: Opt) -> Option<Instant> {
        self.duration(opt).map(|d| Instant::now() + d)
    }
    /// Copies every timeout from `other` (a listener's, for the connections it accepts).
    pub fn copy_from(&self, other: &Timeouts) {
        for (mine, theirs) in self.0.iter().zip(&other.0) {
            mine.store(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_zero_means_none() {
        let t = Timeouts::default();
        assert_eq!(t.get(Opt::CloseTimeout), 10_000);
        assert_eq!(t.get(Opt::ReceiveTimeout), 0);
        assert_eq!(t.deadline(Opt::ReceiveTimeout), None);
        t.set(Opt::ReceiveTimeout, 5);
        assert_eq!(
            t.duration(Opt::ReceiveTimeout),
            Some(Duration::from_millis(5))
        );
        assert!(!Timeouts::covers(Opt::MaxMessageSize));
    }
}
