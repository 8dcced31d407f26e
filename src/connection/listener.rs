//! The server role: a listening socket whose `ws_accept` completes upgrade handshakes (TLS
//! first for `wss://`) and returns ordinary connections.
//!
//! Handshakes in progress are kept across `ws_accept` calls and driven together with one
//! poll, so a slow or broken client (a wrong path, garbage, a request that never completes, a
//! failed TLS handshake) never delays a good one. Only the descriptors that poll reports
//! ready are read, and each request is scanned only where new bytes arrived
//! ([`ServerHandshake`]), so a thousand clients trickling partial requests cost the listener
//! their bytes, not their bytes times the wake-ups.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use once_cell::sync::OnceCell;
use parking_lot::Mutex;

use super::io::{write_all, Limit, Signals};
use super::link::{Busy, Link};
use super::options::{parse_subprotocols, DeflateOptions, Opt, Timeouts, Value};
use super::url::WsUrl;
use super::Connection;
use crate::error::{Error, Result, WS_ERROR_CANNOT_CONNECT, WS_ERROR_INVALID_OPTION};
use crate::protocol::deflate::Agreed;
use crate::protocol::handshake::server::{unavailable, Policy, ServerHandshake, Verdict};
use crate::protocol::handshake::Headers;
use crate::protocol::Role;
use crate::reactor::event_loop::Posted;
use crate::reactor::{AsyncListener, Binder};
use crate::transport::tls::{self, TlsOptions};
use crate::transport::{self, Transport};

/// At most this many handshakes may be in progress; the oldest is dropped to make room.
const MAX_PENDING: usize = 1024;
/// How long `ws_accept` stops accepting after the process ran out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// An accepted socket whose upgrade request is being read (or answered with an error).
pub struct Pending {
    t: Transport,
    hs: ServerHandshake,
    deadline: Option<Instant>,
    /// An error response being written before the connection is dropped.
    reply: Option<(Vec<u8>, usize)>,
}

/// A valid upgrade request, ready to be answered with 101.
pub struct Ready {
    response: Vec<u8>,
    subprotocol: Option<String>,
    headers: Headers,
    /// permessage-deflate's answer and what it agreed.
    deflate: Option<(String, Agreed)>,
}

/// Where an upgrade stands after a non-blocking step.
pub enum Step {
    /// Waiting for the client (or for the socket to take an error response).
    Wait,
    /// Done with this client: drop it.
    Drop,
    /// A valid request: answer it with 101.
    Ready(Ready),
}

impl Pending {
    /// The socket's descriptor.
    pub fn raw_fd(&self) -> libc::c_int {
        self.t.raw_fd()
    }

    /// When the request must be complete.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

#[derive(Default)]
struct ListenerConfig {
    subprotocols: Vec<String>,
    max_message: u64,
    tls: TlsOptions,
    deflate: DeflateOptions,
    /// Built from `tls` on first use, dropped when a TLS option changes.
    server_tls: Option<Arc<rustls::ServerConfig>>,
}

/// A listener handle's object.
pub struct Listener {
    sock: TcpListener,
    url: WsUrl,
    sig: Signals,
    timeouts: Timeouts,
    config: Mutex<ListenerConfig>,
    pending: Mutex<Vec<Pending>>,
    accept_busy: std::sync::atomic::AtomicBool,
    /// Blocking, or bound to a callback or a queue.
    binder: Binder,
    /// The asynchronous driver's listener, from the first asynchronous `ws_accept` on.
    driver: OnceCell<Arc<AsyncListener>>,
}

impl Listener {
    /// Binds `ws://` or `wss://host:port/path` at once (port 0 picks a free port).
    pub fn bind(url: &str) -> Result<Listener> {
        let url = WsUrl::parse(url)?;
        let addrs = transport::resolve(&url.host, url.port, None, &|| false)?;
        let what = format!("cannot listen on {}:{}", url.host, url.port);
        let cannot = |e: std::io::Error| Error::from_io(WS_ERROR_CANNOT_CONNECT, &what, &e);
        let sock = transport::listen(&addrs).map_err(cannot)?;
        Ok(Listener {
            sock,
            url,
            sig: Signals::new()?,
            timeouts: Timeouts::default(),
            config: Mutex::new(ListenerConfig::default()),
            pending: Mutex::new(Vec::new()),
            accept_busy: Default::default(),
            binder: Binder::default(),
            driver: OnceCell::new(),
        })
    }

    /// `ws_close_handle` on handle `h`: cancels a waiting `ws_accept` (an asynchronous one
    /// through the loop, which then delivers `HANDLE_CLOSING`).
    pub fn cancel(&self, h: u64) {
        if let Some(d) = self.driver.get() {
            d.release();
        } else if let Some(binding) = self.binder.binding() {
            binding.lp.post(Posted::Closing(h, binding.clone()));
        }
        self.sig.cancel();
    }

    /// Its mode: blocking, or bound to a callback or a queue.
    pub fn binder(&self) -> &Binder {
        &self.binder
    }

    /// Whether `ws_accept` completes asynchronously.
    pub fn is_async(&self) -> bool {
        self.binder.binding().is_some()
    }

    /// `ws_accept` on listener handle `h`: blocking (see [`Listener::accept`]), or started
    /// on an asynchronous listener (`WS_ERROR_IO_PENDING`; `ACCEPT_COMPLETE` carries the new
    /// handle).
    pub fn accept_on(self: &Arc<Self>, h: u64) -> Result<Connection> {
        let Some(binding) = self.binder.start() else {
            return self.accept();
        };
        let driver = match self.driver.get() {
            Some(d) => d.clone(),
            None => {
                let d = AsyncListener::create(h, binding, self.clone())?;
                self.driver.get_or_init(|| d).clone()
            }
        };
        driver.start_accept(self.timeouts.duration(Opt::ReceiveTimeout))?;
        Err(Error::pending())
    }

    /// `ws_set_option` on a listener: timeouts (inherited by accepted connections),
    /// subprotocols, the message size limit and, for `wss://`, the certificate and key; at
    /// any time, for the connections accepted afterwards.
    pub fn set_option(&self, opt: Opt, value: Value) -> Result<()> {
        opt.check_settable()?;
        let mut c = self.config.lock();
        match (opt, value) {
            (o, Value::U32(ms)) if Timeouts::covers(o) => self.timeouts.set(o, ms),
            (Opt::MaxMessageSize, Value::U64(n)) => c.max_message = n,
            (Opt::Subprotocols, Value::Str(s)) => c.subprotocols = parse_subprotocols(&s)?,
            (o, v) if DeflateOptions::covers(o) => c.deflate.set(o, &v)?,
            (Opt::TlsCertFile | Opt::TlsKeyFile, Value::Str(path)) if self.url.secure => {
                match opt {
                    Opt::TlsCertFile => c.tls.cert_file = Some(path),
                    _ => c.tls.key_file = Some(path),
                }
                c.server_tls = None;
            }
            _ => return Err(not_for_listener()),
        }
        Ok(())
    }

    /// `ws_query_option` on a listener.
    pub fn query_option(&self, opt: Opt) -> Result<Value> {
        let c = self.config.lock();
        Ok(match opt {
            o if Timeouts::covers(o) => Value::U32(self.timeouts.get(o)),
            Opt::MaxMessageSize => Value::U64(c.max_message),
            Opt::Subprotocols => Value::Str(c.subprotocols.join(", ")),
            o if DeflateOptions::covers(o) => c.deflate.get(o),
            Opt::LocalPort => Value::U32(u32::from(self.sock.local_addr().map_or(0, |a| a.port()))),
            Opt::TlsCertFile if self.url.secure => {
                Value::Str(c.tls.cert_file.clone().unwrap_or_default())
            }
            Opt::TlsKeyFile if self.url.secure => {
                Value::Str(c.tls.key_file.clone().unwrap_or_default())
            }
            _ => return Err(not_for_listener()),
        })
    }

    /// The TLS configuration of a `wss://` listener (`None` for `ws://`).
    fn server_tls(&self) -> Result<Option<Arc<rustls::ServerConfig>>> {
        if !self.url.secure {
            return Ok(None);
        }
        let mut c = self.config.lock();
        if c.server_tls.is_none() {
            c.server_tls = Some(tls::server_config(&c.tls)?);
        }
        Ok(c.server_tls.clone())
    }

    /// `ws_accept`: blocks until one client completes a valid upgrade on our path, or
    /// `WS_OPTION_RECEIVE_TIMEOUT` passes, or the listener is closed. When a valid request
    /// comes in but its connection cannot be set up (out of descriptors), the client is
    /// answered with 503 and the failure is returned.
    pub fn accept(&self) -> Result<Connection> {
        let _busy = Busy::take(
            &self.accept_busy,
            "another ws_accept is running on this listener; at most one may run at a time",
        )?;
        let server_tls = self.server_tls()?;
        let deadline = self.timeouts.deadline(Opt::ReceiveTimeout);
        let path = self.url.path_only();
        let mut pending = self.pending.lock();
        let mut backoff: Option<Instant> = None;
        let mut last_error: Option<std::io::Error> = None;
        loop {
            self.sig.check()?;
            let (fresh, error) = self.take_new(&mut pending, &server_tls);
            if let Some(e) = error {
                backoff = Some(Instant::now() + ACCEPT_BACKOFF);
                last_error = Some(e);
            }
            // a new client's request may be there already
            let n = pending.len();
            for i in (n - fresh..n).rev() {
                if let Some(conn) = self.drive(&mut pending, i, &path)? {
                    return Ok(conn);
                }
            }
            // Out of descriptors (EMFILE and the like): the connection stays queued and the
            // listening socket stays readable, so look away from it for a moment instead of
            // spinning.
            let backing_off = backoff.is_some_and(|b| Instant::now() < b);
            let mut fds = Vec::with_capacity(pending.len() + 2);
            fds.push(transport::pollfd(
                self.sig.waker()?.as_raw_fd(),
                true,
                false,
            ));
            fds.push(transport::pollfd(
                self.sock.as_raw_fd(),
                !backing_off,
                false,
            ));
            fds.extend(pending.iter().map(|p| {
                let writing = p.reply.is_some() || p.t.has_pending_output();
                transport::pollfd(p.t.raw_fd(), p.reply.is_none(), writing)
            }));
            let earliest = pending
                .iter()
                .filter_map(|p| p.deadline)
                .chain(backoff.filter(|_| backing_off))
                .min();
            let wake_at = match (deadline, earliest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            transport::poll(&mut fds, wake_at)
                .map_err(|e| Error::connection(format!("poll failed: {e}")))?;
            // Drive only the handshakes that poll reported ready, and those whose time is up
            // (from the end: removing entry i moves one that was already looked at).
            let now = Instant::now();
            for i in (0..pending.len()).rev() {
                let ready = fds[i + 2].revents != 0;
                if ready || pending[i].deadline.is_some_and(|d| now >= d) {
                    if let Some(conn) = self.drive(&mut pending, i, &path)? {
                        return Ok(conn);
                    }
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let why =
                    last_error.map_or(String::new(), |e| format!("; accepting failed with: {e}"));
                return Err(Error::timeout(format!(
                    "no client completed an upgrade within WS_OPTION_RECEIVE_TIMEOUT{why}"
                )));
            }
        }
    }

    /// Accepts every connection waiting in the kernel's queue; they are added at the end of
    /// `pending`. Returns how many were added, and an error other than "none left" (out of
    /// descriptors or memory) so that the caller backs off.
    fn take_new(
        &self,
        pending: &mut Vec<Pending>,
        server_tls: &Option<Arc<rustls::ServerConfig>>,
    ) -> (usize, Option<std::io::Error>) {
        let mut fresh = 0;
        loop {
            match self.accept_one(server_tls) {
                Ok(Some(p)) => {
                    if pending.len() >= MAX_PENDING {
                        pending.remove(0);
                    }
                    pending.push(p);
                    fresh = (fresh + 1).min(pending.len());
                }
                Ok(None) => return (fresh, None),
                Err(e) => return (fresh, Some(e)),
            }
        }
    }

    /// Accepts one connection from the kernel's queue (`Ok(None)`: none left). An error other
    /// than "none left" (out of descriptors or memory) means the caller should back off.
    fn accept_one(
        &self,
        server_tls: &Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Option<Pending>> {
        // A request must complete within the receive timeout, or the connect timeout when
        // there is none, so a client that never finishes cannot hold a slot for ever.
        let limit = self
            .timeouts
            .duration(Opt::ReceiveTimeout)
            .or_else(|| self.timeouts.duration(Opt::ConnectTimeout));
        loop {
            let stream = match self.sock.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
                Err(e) => return Err(e),
            };
            let t = match server_tls {
                Some(config) => rustls::ServerConnection::new(config.clone())
                    .map_err(std::io::Error::other)
                    .and_then(|s| Transport::with_tls(stream, s.into())),
                None => Transport::new(stream),
            };
            let Ok(t) = t else { continue };
            return Ok(Some(Pending {
                t,
                hs: ServerHandshake::default(),
                deadline: limit.map(|d| Instant::now() + d),
                reply: None,
            }));
        }
    }

    /// The asynchronous listener's accept: one connection from the kernel's queue, TLS set up
    /// for `wss://` (`Ok(None)`: none left; an error: back off).
    pub fn take_one(&self) -> Result<Option<Pending>> {
        let server_tls = self.server_tls()?;
        self.accept_one(&server_tls)
            .map_err(|e| Error::from_io(WS_ERROR_CANNOT_CONNECT, "accepting failed", &e))
    }

    /// The asynchronous listener's step: moves one upgrade forward without blocking.
    pub fn step(&self, p: &mut Pending) -> Step {
        self.progress(p, &self.url.path_only())
    }

    /// The asynchronous listener's set-up of a valid upgrade: the connection (with the
    /// listener's timeouts), its transport, the bytes that followed the request and the 101
    /// to send first. When the set-up fails the client gets 503 (best effort, without
    /// blocking) and the failure is returned.
    #[allow(clippy::type_complexity)]
    pub fn set_up(
        &self,
        mut p: Pending,
        ready: Ready,
    ) -> Result<(Connection, Transport, Vec<u8>, Vec<u8>, Option<Agreed>)> {
        match Connection::server(
            self.url.clone(),
            &self.timeouts,
            ready.subprotocol,
            ready.headers,
        ) {
            Ok(conn) => {
                let leftover = p.hs.leftover().to_vec();
                let (extensions, agreed) = ready.deflate.unzip();
                conn.negotiated.lock().extensions = extensions.unwrap_or_default();
                Ok((conn, p.t, leftover, ready.response, agreed))
            }
            Err(e) => {
                p.reply = Some((unavailable(), 0));
                let _ = self.progress(&mut p, "");
                Err(Error::new(
                    e.code,
                    format!(
                        "a client's upgrade request was answered with 503 Service Unavailable: {}",
                        e.detail
                    ),
                ))
            }
        }
    }

    /// `WS_OPTION_MAX_MESSAGE_SIZE` for accepted connections.
    pub fn max_message(&self) -> u64 {
        self.config.lock().max_message
    }

    /// The listening socket's descriptor.
    pub fn raw_fd(&self) -> libc::c_int {
        self.sock.as_raw_fd()
    }

    /// Moves handshake `i` forward; a connection once it is accepted. Entry `i` may be
    /// removed (swapped with the last one).
    fn drive(
        &self,
        pending: &mut Vec<Pending>,
        i: usize,
        path: &str,
    ) -> Result<Option<Connection>> {
        match self.progress(&mut pending[i], path) {
            Step::Wait => Ok(None),
            Step::Drop => {
                pending.swap_remove(i);
                Ok(None)
            }
            Step::Ready(ready) => {
                let p = pending.swap_remove(i);
                self.finish(p, ready, pending)
            }
        }
    }

    /// Moves one handshake forward without blocking (for TLS, reading drives the TLS
    /// handshake too).
    fn progress(&self, p: &mut Pending, path: &str) -> Step {
        if p.deadline.is_some_and(|d| Instant::now() >= d) {
            return Step::Drop;
        }
        if p.t.has_pending_output() && p.t.flush().is_err() {
            return Step::Drop;
        }
        if let Some((response, sent)) = &mut p.reply {
            while *sent < response.len() {
                match p.t.write(&response[*sent..]) {
                    Ok(n) if n > 0 => *sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Wait,
                    _ => return Step::Drop,
                }
            }
            return match p.t.flush() {
                Ok(false) => Step::Wait,
                _ => Step::Drop, // the error response is out: close
            };
        }
        let mut chunk = [0u8; 4096];
        loop {
            let n = match p.t.read(&mut chunk) {
                Ok(0) => return Step::Drop,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Wait,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Step::Drop, // includes a failed TLS handshake
            };
            let verdict = {
                let c = self.config.lock();
                let policy = Policy {
                    path,
                    subprotocols: &c.subprotocols,
                    deflate: c.deflate.offered(),
                };
                p.hs.feed(&chunk[..n], policy)
            };
            match verdict {
                None => {}
                Some(Verdict::Reject { response }) => {
                    p.reply = Some((response, 0));
                    return self.progress(p, path);
                }
                Some(Verdict::Accept {
                    response,
                    subprotocol,
                    headers,
                    deflate,
                }) => {
                    return Step::Ready(Ready {
                        response,
                        subprotocol,
                        headers,
                        deflate,
                    })
                }
            }
        }
    }

    /// Sets up the connection, then sends the 101 response and starts it. When the set-up
    /// fails, the client is answered with 503 instead (queued in `pending` if it cannot be
    /// written at once) and the failure is returned; a client that vanished before its 101
    /// went out is dropped (`Ok(None)`).
    fn finish(
        &self,
        mut p: Pending,
        ready: Ready,
        pending: &mut Vec<Pending>,
    ) -> Result<Option<Connection>> {
        let conn = match Connection::server(
            self.url.clone(),
            &self.timeouts,
            ready.subprotocol,
            ready.headers,
        ) {
            Ok(conn) => conn,
            Err(e) => {
                p.reply = Some((unavailable(), 0));
                if let Step::Wait = self.progress(&mut p, "") {
                    pending.push(p);
                }
                return Err(Error::new(
                    e.code,
                    format!(
                        "a client's upgrade request was answered with 503 Service Unavailable: {}",
                        e.detail
                    ),
                ));
            }
        };
        let limit = Limit::At(p.deadline);
        let sent = write_all(
            &p.t,
            &self.sig,
            &ready.response,
            limit,
            "the upgrade response",
            "WS_OPTION_RECEIVE_TIMEOUT",
        );
        if sent.is_err() {
            self.sig.check()?;
            return Ok(None);
        }
        let max_message = self.config.lock().max_message;
        let (extensions, agreed) = ready.deflate.unzip();
        conn.negotiated.lock().extensions = extensions.unwrap_or_default();
        conn.attach(
            Link::new(p.t, Role::Server, max_message, p.hs.leftover()).with_deflate(agreed),
        );
        Ok(Some(conn))
    }
}

fn not_for_listener() -> Error {
    Error::new(
        WS_ERROR_INVALID_OPTION,
        "this option does not apply to this listener (listeners take the timeouts, WS_OPTION_SUBPROTOCOLS, WS_OPTION_MAX_MESSAGE_SIZE, WS_OPTION_LOCAL_PORT and the compression options WS_OPTION_PERMESSAGE_DEFLATE and WS_OPTION_DEFLATE_*; wss:// listeners also WS_OPTION_TLS_CERT_FILE and WS_OPTION_TLS_KEY_FILE)",
    )
}
