//! Drives the protocol core over the transport for the blocking C API.
//!
//! A [`Connection`] is what a connection handle refers to: its options, its cancellation
//! signals, and — once `ws_connect` succeeded — its [`Link`].

mod handshake;
mod io;
mod link;
mod listener;
mod ops;
pub mod options;
mod url;

pub use handshake::check_request_header;
pub use io::Signals;
pub use link::{state_name, Got, Link};
pub use listener::Listener;
pub use url::WsUrl;

use std::sync::atomic::{AtomicBool, Ordering};

use once_cell::sync::OnceCell;
use parking_lot::Mutex;

use crate::error::{Error, Result, WS_ERROR_INCORRECT_HANDLE_STATE, WS_ERROR_INVALID_OPTION};
use crate::protocol::close::State;
use crate::protocol::send::SendKind;
use crate::protocol::Role;
use crate::transport::{self, Transport};
use options::{Opt, Timeouts, Value};

/// Settings fixed at `ws_connect`.
#[derive(Clone, Debug)]
struct Config {
    url: WsUrl,
    headers: Vec<(String, String)>,
    subprotocols: Vec<String>,
    max_message: u64,
}

/// What the upgrade told us.
#[derive(Debug, Default)]
struct Negotiated {
    http_status: Option<u16>,
    subprotocol: Option<String>,
}

/// A connection handle's object.
pub struct Connection {
    role: Role,
    sig: Signals,
    timeouts: Timeouts,
    config: Mutex<Config>,
    negotiated: Mutex<Negotiated>,
    connecting: AtomicBool,
    link: OnceCell<Link>,
}

impl Connection {
    fn new(role: Role, url: WsUrl, negotiated: Negotiated) -> Result<Connection> {
        Ok(Connection {
            role,
            sig: Signals::new()?,
            timeouts: Timeouts::default(),
            config: Mutex::new(Config {
                url,
                headers: Vec::new(),
                subprotocols: Vec::new(),
                max_message: 0,
            }),
            negotiated: Mutex::new(negotiated),
            connecting: AtomicBool::new(false),
            link: OnceCell::new(),
        })
    }

    /// A client handle for `url`; no I/O yet.
    pub fn open(url: &str) -> Result<Connection> {
        Connection::new(Role::Client, WsUrl::parse(url)?, Negotiated::default())
    }

    /// The state, as `ws_query_state` reports it.
    pub fn state(&self) -> State {
        match self.link.get() {
            Some(link) => link.state(),
            None if self.connecting.load(Ordering::SeqCst) => State::Connecting,
            None => State::None,
        }
    }

    fn link(&self, call: &str, allowed: &str) -> Result<&Link> {
        self.link.get().ok_or_else(|| {
            Error::operation(format!(
                "{call} is allowed in {allowed}; the handle is {} (call ws_connect first)",
                state_name(self.state())
            ))
        })
    }

    /// Connect-time settings can change only before `ws_connect`.
    fn before_connect(&self, what: &str) -> Result<()> {
        if self.state() != State::None {
            return Err(Error::new(
                WS_ERROR_INCORRECT_HANDLE_STATE,
                format!("{what} can only be set before ws_connect"),
            ));
        }
        Ok(())
    }

    /// `ws_add_request_header`.
    pub fn add_request_header(&self, name: &str, value: &str) -> Result<()> {
        check_request_header(name, value)?;
        self.before_connect("request headers")?;
        self.config
            .lock()
            .headers
            .push((name.to_owned(), value.to_owned()));
        Ok(())
    }

    /// `ws_set_option`, with the value already decoded to its type.
    pub fn set_option(&self, opt: Opt, value: Value) -> Result<()> {
        opt.check_settable()?;
        match (opt, value) {
            (o, Value::U32(ms)) if Timeouts::covers(o) => {
                self.timeouts.set(o, ms);
                Ok(())
            }
            (Opt::MaxMessageSize, Value::U64(n)) => {
                self.before_connect("WS_OPTION_MAX_MESSAGE_SIZE")?;
                self.config.lock().max_message = n;
                Ok(())
            }
            (Opt::Subprotocols, Value::Str(s)) => {
                let list = options::parse_subprotocols(&s)?;
                self.before_connect("WS_OPTION_SUBPROTOCOLS")?;
                self.config.lock().subprotocols = list;
                Ok(())
            }
            _ => Err(Error::new(
                WS_ERROR_INVALID_OPTION,
                "TLS and proxy options arrive with wss:// support; this build speaks ws:// only",
            )),
        }
    }

    /// `ws_query_option`.
    pub fn query_option(&self, opt: Opt) -> Result<Value> {
        let not_yet = |what: &str| {
            Err(Error::new(
                WS_ERROR_INCORRECT_HANDLE_STATE,
                format!("{what} is known only after ws_connect"),
            ))
        };
        match opt {
            o if Timeouts::covers(o) => Ok(Value::U32(self.timeouts.get(o))),
            Opt::MaxMessageSize => Ok(Value::U64(self.config.lock().max_message)),
            Opt::Subprotocols => Ok(Value::Str(self.config.lock().subprotocols.join(", "))),
            Opt::SelectedSubprotocol => match self.link.get() {
                Some(_) => Ok(Value::Str(
                    self.negotiated
                        .lock()
                        .subprotocol
                        .clone()
                        .unwrap_or_default(),
                )),
                None => not_yet("the selected subprotocol"),
            },
            Opt::HttpStatus => match self.negotiated.lock().http_status {
                Some(s) => Ok(Value::U32(u32::from(s))),
                None => not_yet("the HTTP status of the upgrade response"),
            },
            Opt::LocalPort => match self.link.get() {
                Some(l) => Ok(Value::U32(u32::from(l.t.local_port()))),
                None => not_yet("the local port"),
            },
            _ => Err(Error::new(
                WS_ERROR_INVALID_OPTION,
                "TLS and proxy options arrive with wss:// support; this build speaks ws:// only",
            )),
        }
    }

    /// A server-side connection that a listener accepted: already `OPEN`, with the
    /// listener's timeouts.
    fn accepted(
        url: WsUrl,
        link: Link,
        timeouts: &Timeouts,
        subprotocol: Option<String>,
    ) -> Result<Connection> {
        let negotiated = Negotiated {
            http_status: Some(101),
            subprotocol,
        };
        let conn = Connection::new(Role::Server, url, negotiated)?;
        conn.timeouts.copy_from(timeouts);
        let _ = conn.link.set(link);
        Ok(conn)
    }

    /// `ws_connect`: TCP connect and HTTP upgrade under `WS_OPTION_CONNECT_TIMEOUT`. On
    /// failure the handle returns to `NONE` and may be connected again.
    pub fn connect(&self) -> Result<()> {
        if self.link.get().is_some() {
            return Err(Error::operation(format!(
                "ws_connect is allowed in NONE; the connection is {}",
                state_name(self.state())
            )));
        }
        if self
            .connecting
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(Error::operation(
                "ws_connect is already running on this handle",
            ));
        }
        let result = self.connect_inner();
        if let Err(e) = &result {
            self.connecting.store(false, Ordering::SeqCst);
            return Err(e.clone());
        }
        self.connecting.store(false, Ordering::SeqCst);
        result
    }

    fn connect_inner(&self) -> Result<()> {
        let cfg = self.config.lock().clone();
        let deadline = self.timeouts.deadline(Opt::ConnectTimeout);
        let cancelled = || self.sig.is_cancelled();
        *self.negotiated.lock() = Negotiated::default();
        let addrs = transport::resolve(&cfg.url.host, cfg.url.port, deadline, &cancelled)?;
        let stream = transport::connect(&addrs, &self.sig.waker, deadline, &cancelled)?;
        let t = Transport::new(stream)
            .map_err(|e| Error::connection(format!("cannot configure the socket: {e}")))?;
        let mut status = None;
        let up = handshake::client_upgrade(
            &t,
            &self.sig,
            &cfg.url,
            &cfg.headers,
            &cfg.subprotocols,
            deadline,
            &mut status,
        );
        self.negotiated.lock().http_status = status;
        let up = up?;
        self.sig.check()?;
        self.negotiated.lock().subprotocol = up.subprotocol;
        let link = Link::new(t, self.role, cfg.max_message, &up.leftover);
        self.link
            .set(link)
            .map_err(|_| Error::operation("ws_connect raced with itself"))?;
        if self.sig.is_cancelled() {
            // ws_close_handle ran while the link was being set up
            self.cancel();
            self.sig.check()?;
        }
        Ok(())
    }

    /// `ws_send`.
    pub fn send(&self, what: SendKind, payload: &[u8]) -> Result<()> {
        self.link("ws_send", "OPEN and CLOSE_RECEIVED")?.send(
            &self.sig,
            &self.timeouts,
            what,
            payload,
        )
    }

    /// `ws_receive`.
    pub fn receive(&self, out: &mut [u8]) -> Result<Got> {
        self.link("ws_receive", "OPEN and CLOSE_SENT")?
            .receive(&self.sig, &self.timeouts, out)
    }

    /// `ws_shutdown`.
    pub fn shutdown(&self, status: u16, reason: &[u8]) -> Result<()> {
        crate::protocol::close::outgoing_payload(status, reason).map_err(Error::param)?;
        self.link("ws_shutdown", "OPEN and CLOSE_RECEIVED")?
            .shutdown(&self.sig, &self.timeouts, status, reason)
    }

    /// `ws_close`.
    pub fn close(&self, status: u16, reason: &[u8]) -> Result<()> {
        crate::protocol::close::outgoing_payload(status, reason).map_err(Error::param)?;
        self.link("ws_close", "OPEN, CLOSE_SENT, CLOSE_RECEIVED and CLOSED")?
            .close(&self.sig, &self.timeouts, status, reason)
    }

    /// `ws_query_close_status`: the peer's status and reason, or `(1006, "")` after a
    /// connection that ended without one.
    pub fn close_status(&self) -> Result<(u16, Vec<u8>)> {
        let none = || {
            Error::operation(
                "no close frame has arrived and the connection has not ended; query after ws_receive returns WS_BUFFER_CLOSE or after ws_close",
            )
        };
        let link = self.link.get().ok_or_else(none)?;
        let hs = link.hs.lock();
        hs.peer_status()
            .map(|(s, r)| (s, r.to_vec()))
            .ok_or_else(none)
    }

    /// `ws_close_handle`: cancels every blocked call and drops the connection.
    pub fn cancel(&self) {
        self.sig.cancel();
        if let Some(link) = self.link.get() {
            link.hs.lock().abort();
            link.teardown_now();
        }
    }

    /// After a caught panic: the connection may be inconsistent, so it is aborted.
    pub fn cancel_after_panic(&self) {
        if let Some(link) = self.link.get() {
            link.abort();
        }
    }

    /// The role (client or server).
    pub fn role(&self) -> Role {
        self.role
    }
}
