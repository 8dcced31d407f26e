//! Drives the protocol core over the transport for the blocking C API.
//!
//! A [`Connection`] is what a connection handle refers to: its options, its cancellation
//! signals, and — once `ws_connect` succeeded — its [`Link`].

mod compressed;
mod handshake;
mod io;
mod link;
mod listener;
mod ops;
pub mod options;
mod proxy;
mod url;

pub use crate::protocol::handshake::client::check_request_header;
pub use io::Signals;
pub use link::{state_name, Got, Link};
pub use listener::{Listener, Pending as Handshaking, Ready, Step as Progress};
pub use url::WsUrl;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use once_cell::sync::OnceCell;
use parking_lot::Mutex;

use crate::error::{Error, Result, WS_ERROR_INCORRECT_HANDLE_STATE, WS_ERROR_INVALID_OPTION};
use crate::protocol::close::{self, State};
use crate::protocol::handshake::client::{Offer, ResponseInfo};
use crate::protocol::handshake::Headers;
use crate::protocol::send::SendKind;
use crate::protocol::Role;
use crate::reactor::event_loop::Posted;
use crate::reactor::pending::Closer;
use crate::reactor::{Binder, Binding, Session, Target};
use crate::transport::tls::{self, TlsOptions};
use crate::transport::{self, Transport};
use options::{DeflateOptions, Opt, Timeouts, Value};
use proxy::Proxy;

/// Settings fixed at `ws_connect`.
#[derive(Clone, Debug)]
struct Config {
    url: WsUrl,
    headers: Vec<(String, String)>,
    subprotocols: Vec<String>,
    max_message: u64,
    tls: TlsOptions,
    proxy: Option<Proxy>,
    deflate: DeflateOptions,
}

/// What the upgrade told us.
#[derive(Debug, Default)]
pub struct Negotiated {
    /// The upgrade response's HTTP status.
    pub http_status: Option<u16>,
    /// The subprotocol agreed.
    pub subprotocol: Option<String>,
    /// A client's: the upgrade response's headers; an accepted connection's: the request's.
    pub headers: Headers,
    /// The `Sec-WebSocket-Extensions` value agreed ("" for none).
    pub extensions: String,
}

/// A connection handle's object.
pub struct Connection {
    role: Role,
    sig: Signals,
    timeouts: Arc<Timeouts>,
    config: Mutex<Config>,
    negotiated: Arc<Mutex<Negotiated>>,
    connecting: AtomicBool,
    /// The blocking driver's connection, once `ws_connect` succeeded.
    link: OnceCell<Box<Link>>,
    /// Blocking, or bound to a callback or a queue.
    binder: Binder,
    /// The asynchronous driver's connection, from the first asynchronous `ws_connect` (or
    /// `ws_accept`) on.
    session: OnceCell<Arc<Session>>,
}

impl Connection {
    fn new(role: Role, url: WsUrl, negotiated: Negotiated) -> Result<Connection> {
        Ok(Connection {
            role,
            sig: Signals::new()?,
            timeouts: Arc::new(Timeouts::default()),
            config: Mutex::new(Config {
                url,
                headers: Vec::new(),
                subprotocols: Vec::new(),
                max_message: 0,
                tls: TlsOptions::default(),
                proxy: None,
                deflate: DeflateOptions::default(),
            }),
            negotiated: Arc::new(Mutex::new(negotiated)),
            connecting: AtomicBool::new(false),
            link: OnceCell::new(),
            binder: Binder::default(),
            session: OnceCell::new(),
        })
    }

    /// A client handle for `url`; no I/O yet.
    pub fn open(url: &str) -> Result<Connection> {
        Connection::new(Role::Client, WsUrl::parse(url)?, Negotiated::default())
    }

    /// Its mode: blocking, or bound to a callback or a queue.
    pub fn binder(&self) -> &Binder {
        &self.binder
    }

    /// Whether calls on this handle complete asynchronously (the one place that decides:
    /// the handle's binding).
    pub fn is_async(&self) -> bool {
        // a blocking ws_connect (or accept) fixed the mode: no lock on the hot paths
        self.link.get().is_none() && self.binder.binding().is_some()
    }

    /// Its timeouts, shared with the asynchronous driver.
    pub fn timeouts_arc(&self) -> Arc<Timeouts> {
        self.timeouts.clone()
    }

    /// Gives an accepted asynchronous connection its driver.
    pub fn attach_session(&self, s: Arc<Session>) {
        let _ = self.binder.start();
        let _ = self.session.set(s);
    }

    /// The state, as `ws_query_state` reports it.
    pub fn state(&self) -> State {
        if let Some(s) = self.session.get() {
            return s.state();
        }
        match self.link.get() {
            Some(link) => link.state(),
            None if self.connecting.load(Ordering::SeqCst) => State::Connecting,
            None => State::None,
        }
    }

    fn link(&self, call: &str, allowed: &str) -> Result<&Link> {
        self.link.get().map(|l| &**l).ok_or_else(|| {
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
            (o, v) if DeflateOptions::covers(o) => {
                self.before_connect("compression options")?;
                self.config.lock().deflate.set(o, &v)
            }
            (Opt::TlsInsecureSkipVerify, Value::U32(v)) => {
                if v > 1 {
                    return Err(Error::param(
                        "WS_OPTION_TLS_INSECURE_SKIP_VERIFY takes 0 or 1",
                    ));
                }
                self.before_connect("WS_OPTION_TLS_INSECURE_SKIP_VERIFY")?;
                self.config.lock().tls.insecure = v == 1;
                Ok(())
            }
            (Opt::TlsCaFile | Opt::TlsCertFile | Opt::TlsKeyFile, Value::Str(path)) => {
                self.before_connect("TLS options")?;
                let path = (!path.is_empty()).then_some(path);
                let mut c = self.config.lock();
                match opt {
                    Opt::TlsCaFile => c.tls.ca_file = path,
                    Opt::TlsCertFile => c.tls.cert_file = path,
                    _ => c.tls.key_file = path,
                }
                Ok(())
            }
            (Opt::Proxy, Value::Str(url)) => {
                let proxy = if url.is_empty() {
                    None
                } else {
                    Some(Proxy::parse(&url)?)
                };
                self.before_connect("WS_OPTION_PROXY")?;
                self.config.lock().proxy = proxy;
                Ok(())
            }
            _ => Err(Error::new(
                WS_ERROR_INVALID_OPTION,
                "this option does not apply to a connection",
            )),
        }
    }

    /// `ws_query_response_header`: a header of the upgrade response (a client's) or request
    /// (an accepted connection's), by case-insensitive name; repeated headers are joined with
    /// ", " as HTTP allows.
    pub fn response_header(&self, name: &str) -> Result<Vec<u8>> {
        let n = self.negotiated.lock();
        if n.http_status.is_none() {
            return Err(Error::new(
                WS_ERROR_INCORRECT_HANDLE_STATE,
                "no upgrade response has arrived yet: call ws_connect first",
            ));
        }
        let values: Vec<&[u8]> = n
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .collect();
        if values.is_empty() {
            return Err(Error::new(
                crate::error::WS_ERROR_HEADER_NOT_FOUND,
                format!("the upgrade response has no {name} header"),
            ));
        }
        Ok(values.join(&b", "[..]))
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
            Opt::SelectedSubprotocol => {
                match self.link.get().is_some() || self.session.get().is_some_and(|s| s.is_open()) {
                    true => Ok(Value::Str(
                        self.negotiated
                            .lock()
                            .subprotocol
                            .clone()
                            .unwrap_or_default(),
                    )),
                    false => not_yet("the selected subprotocol"),
                }
            }
            o if DeflateOptions::covers(o) => Ok(self.config.lock().deflate.get(o)),
            Opt::Extensions => {
                match self.link.get().is_some() || self.session.get().is_some_and(|s| s.is_open()) {
                    true => Ok(Value::Str(self.negotiated.lock().extensions.clone())),
                    false => not_yet("the agreed extensions"),
                }
            }
            Opt::HttpStatus => match self.negotiated.lock().http_status {
                Some(s) => Ok(Value::U32(u32::from(s))),
                None => not_yet("the HTTP status of the upgrade response"),
            },
            Opt::LocalPort => match (self.link.get(), self.session.get()) {
                (Some(l), _) => Ok(Value::U32(u32::from(l.t.local_port()))),
                (_, Some(s)) => s
                    .local_port()
                    .map(|p| Value::U32(u32::from(p)))
                    .map_or_else(|| not_yet("the local port"), Ok),
                _ => not_yet("the local port"),
            },
            Opt::TlsInsecureSkipVerify => {
                Ok(Value::U32(u32::from(self.config.lock().tls.insecure)))
            }
            Opt::TlsCaFile | Opt::TlsCertFile | Opt::TlsKeyFile => {
                let c = self.config.lock();
                let v = match opt {
                    Opt::TlsCaFile => &c.tls.ca_file,
                    Opt::TlsCertFile => &c.tls.cert_file,
                    _ => &c.tls.key_file,
                };
                Ok(Value::Str(v.clone().unwrap_or_default()))
            }
            Opt::Proxy => Ok(Value::Str(
                self.config
                    .lock()
                    .proxy
                    .as_ref()
                    .map_or(String::new(), Proxy::to_url),
            )),
            // timeouts are answered above
            _ => Err(Error::new(
                WS_ERROR_INVALID_OPTION,
                "this option does not apply to a connection",
            )),
        }
    }

    /// A server-side connection for a request a listener is about to accept, with the
    /// listener's timeouts: everything it needs is allocated here, before the 101 goes out, so
    /// that a failure can still be answered with 503. [`Connection::attach`] makes it `OPEN`.
    fn server(
        url: WsUrl,
        timeouts: &Timeouts,
        subprotocol: Option<String>,
        request_headers: Headers,
    ) -> Result<Connection> {
        let negotiated = Negotiated {
            http_status: Some(101),
            subprotocol,
            headers: request_headers,
            extensions: String::new(),
        };
        let conn = Connection::new(Role::Server, url, negotiated)?;
        conn.timeouts.copy_from(timeouts);
        Ok(conn)
    }

    /// Gives a [`Connection::server`] its link once the 101 is out.
    fn attach(&self, link: Link) {
        let _ = self.link.set(Box::new(link));
    }

    /// `ws_connect` on handle `h`: TCP connect and HTTP upgrade under
    /// `WS_OPTION_CONNECT_TIMEOUT`. On failure the handle returns to `NONE` and may be
    /// connected again. An asynchronous handle returns `WS_ERROR_IO_PENDING` and completes
    /// through its binding.
    pub fn connect(&self, h: u64) -> Result<()> {
        if let Some(binding) = self.binder.start() {
            return self.connect_async(h, binding);
        }
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
        self.connecting.store(false, Ordering::SeqCst);
        result
    }

    fn connect_async(&self, h: u64, binding: Arc<Binding>) -> Result<()> {
        let cfg = self.config.lock().clone();
        let session = self
            .session
            .get_or_init(|| Session::idle(h, binding, self.timeouts.clone()));
        let target = Target {
            offer: Offer {
                headers: cfg.headers.clone(),
                subprotocols: cfg.subprotocols.clone(),
                deflate: cfg.deflate.offered().copied(),
            },
            url: cfg.url,
            tls: cfg.tls,
            proxy: cfg.proxy.map(|p| (p.host, p.port)),
            max_message: cfg.max_message,
            negotiated: self.negotiated.clone(),
        };
        session.start_connect(target, self.timeouts.deadline(Opt::ConnectTimeout))?;
        Err(Error::pending())
    }

    fn connect_inner(&self) -> Result<()> {
        let cfg = self.config.lock().clone();
        let deadline = self.timeouts.deadline(Opt::ConnectTimeout);
        let cancelled = || self.sig.is_cancelled();
        *self.negotiated.lock() = Negotiated::default();
        let url = &cfg.url;
        let (host, port) = match &cfg.proxy {
            Some(p) => (p.host.as_str(), p.port),
            None => (url.host.as_str(), url.port),
        };
        let addrs = transport::resolve(host, port, deadline, &cancelled)?;
        let mut stream = transport::connect(&addrs, self.sig.waker()?, deadline, &cancelled)?;
        let socket_error =
            |e: std::io::Error| Error::connection(format!("cannot configure the socket: {e}"));
        // bytes that arrived behind the proxy's answer: the start of TLS or of the upgrade
        let mut early = Vec::new();
        if cfg.proxy.is_some() {
            let t = Transport::new(stream).map_err(socket_error)?;
            early = proxy::tunnel(&t, &self.sig, &url.host, url.port, deadline)?;
            stream = t.into_stream();
        }
        let t = if url.secure {
            let session = tls::client_session(&cfg.tls, &url.host, &std::mem::take(&mut early))?;
            let t = Transport::with_tls(stream, session).map_err(socket_error)?;
            t.handshake(&url.host, self.sig.waker()?, deadline, &cancelled)?;
            t
        } else {
            Transport::new(stream).map_err(socket_error)?
        };
        let mut info = ResponseInfo::default();
        let offer = Offer {
            headers: cfg.headers.clone(),
            subprotocols: cfg.subprotocols.clone(),
            deflate: cfg.deflate.offered().copied(),
        };
        let up = handshake::client_upgrade(&t, &self.sig, url, offer, &early, deadline, &mut info);
        {
            let mut n = self.negotiated.lock();
            n.http_status = info.status;
            n.headers = info.headers;
        }
        let up = up?;
        self.sig.check()?;
        let (extensions, agreed) = up.deflate.unzip();
        {
            let mut n = self.negotiated.lock();
            n.subprotocol = up.subprotocol;
            n.extensions = extensions.unwrap_or_default();
        }
        let link = Link::new(t, self.role, cfg.max_message, &up.leftover).with_deflate(agreed);
        self.link
            .set(Box::new(link))
            .map_err(|_| Error::operation("ws_connect raced with itself"))?;
        if self.sig.is_cancelled() {
            // ws_close_handle ran while the link was being set up
            self.cancel_blocking();
            self.sig.check()?;
        }
        Ok(())
    }

    /// `ws_send`.
    pub fn send(&self, what: SendKind, payload: &[u8]) -> Result<()> {
        if let Some(s) = self.session.get() {
            s.start_send(what, payload)?;
            return Err(Error::pending());
        }
        self.link("ws_send", "OPEN and CLOSE_RECEIVED")?.send(
            &self.sig,
            &self.timeouts,
            what,
            payload,
        )
    }

    /// `ws_send_batch`: blocking handles only (an asynchronous handle already writes its
    /// pending sends together).
    pub fn send_batch(&self, pieces: &[(SendKind, &[u8])]) -> Result<()> {
        if self.is_async() {
            return Err(Error::operation(
                "ws_send_batch is for blocking handles; on an asynchronous handle, call ws_send per message (pending sends are written together)",
            ));
        }
        self.link("ws_send_batch", "OPEN and CLOSE_RECEIVED")?
            .send_batch(&self.sig, &self.timeouts, pieces)
    }

    /// `ws_receive`.
    pub fn receive(&self, out: &mut [u8]) -> Result<Got> {
        if let Some(s) = self.session.get() {
            s.start_receive(out)?;
            return Err(Error::pending());
        }
        self.link("ws_receive", "OPEN and CLOSE_SENT")?
            .receive(&self.sig, &self.timeouts, out)
    }

    /// `ws_shutdown`.
    pub fn shutdown(&self, status: u16, reason: &[u8]) -> Result<()> {
        // arguments first: a bad status is INVALID_PARAMETER in every state
        let payload = close::outgoing_payload(status, reason).map_err(Error::param)?;
        if let Some(s) = self.session.get() {
            s.start_closer(Closer::Shutdown, payload)?;
            return Err(Error::pending());
        }
        self.link("ws_shutdown", "OPEN and CLOSE_RECEIVED")?
            .shutdown(&self.sig, &self.timeouts, payload)
    }

    /// `ws_close`.
    pub fn close(&self, status: u16, reason: &[u8]) -> Result<()> {
        let payload = close::outgoing_payload(status, reason).map_err(Error::param)?;
        if let Some(s) = self.session.get() {
            s.start_closer(Closer::Close, payload)?;
            return Err(Error::pending());
        }
        self.link("ws_close", "OPEN, CLOSE_SENT, CLOSE_RECEIVED and CLOSED")?
            .close(&self.sig, &self.timeouts, payload)
    }

    /// `ws_query_close_status`: the peer's status and reason, or `(1006, "")` after a
    /// connection that ended without one.
    pub fn close_status(&self) -> Result<(u16, Vec<u8>)> {
        let none = || {
            Error::operation(
                "no close frame has arrived and the connection has not ended; query after ws_receive returns WS_BUFFER_CLOSE or after ws_close",
            )
        };
        if let Some(s) = self.session.get() {
            return s.close_status().ok_or_else(none);
        }
        let link = self.link.get().ok_or_else(none)?;
        let hs = link.hs.lock();
        hs.peer_status()
            .map(|(s, r)| (s, r.to_vec()))
            .ok_or_else(none)
    }

    /// `ws_close_handle` on handle `h`: cancels every blocked call and drops the connection;
    /// an asynchronous handle's pending operations are cancelled by its loop, which then
    /// delivers `HANDLE_CLOSING`.
    pub fn cancel(&self, h: u64) {
        if let Some(s) = self.session.get() {
            s.release();
            return;
        }
        if let Some(binding) = self.binder.binding() {
            binding.lp.post(Posted::Closing(h, binding.clone()));
            return;
        }
        self.cancel_blocking();
    }

    fn cancel_blocking(&self) {
        self.sig.cancel();
        if let Some(link) = self.link.get() {
            link.update(|hs| hs.abort());
            link.teardown_now();
        }
    }

    /// After a caught panic: the connection may be inconsistent, so it is aborted.
    pub fn cancel_after_panic(&self) {
        if let Some(link) = self.link.get() {
            link.abort();
        }
    }
}
