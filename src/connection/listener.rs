//! The server role: a listening socket whose `ws_accept` completes upgrade handshakes (TLS
//! first for `wss://`) and returns ordinary connections.
//!
//! Handshakes in progress are kept across `ws_accept` calls and driven together with one
//! poll, so a slow or broken client (a wrong path, garbage, a request that never completes, a
//! failed TLS handshake) never delays a good one.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::handshake::{answer_request, Headers, Verdict, MAX_HEAD};
use super::io::{write_all, Limit, Signals};
use super::link::{Busy, Link};
use super::options::{parse_subprotocols, DeflateOptions, Opt, Timeouts, Value};
use super::url::WsUrl;
use super::Connection;
use crate::error::{Error, Result, WS_ERROR_CANNOT_CONNECT, WS_ERROR_INVALID_OPTION};
use crate::protocol::Role;
use crate::transport::tls::{self, TlsOptions};
use crate::transport::{self, Transport};

/// At most this many handshakes may be in progress; the oldest is dropped to make room.
const MAX_PENDING: usize = 1024;
/// How long `ws_accept` stops accepting after the process ran out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

struct Pending {
    t: Transport,
    head: Vec<u8>,
    deadline: Option<Instant>,
    /// An error response being written before the connection is dropped.
    reply: Option<(Vec<u8>, usize)>,
}

/// A valid upgrade request, ready to be answered with 101.
struct Ready {
    used: usize,
    response: Vec<u8>,
    subprotocol: Option<String>,
    headers: Headers,
}

enum Step {
    Wait,
    Drop,
    Ready(Ready),
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
}

impl Listener {
    /// Binds `ws://` or `wss://host:port/path` at once (port 0 picks a free port).
    pub fn bind(url: &str) -> Result<Listener> {
        let url = WsUrl::parse(url)?;
        let addrs = transport::resolve(&url.host, url.port, None, &|| false)?;
        let cannot = |e: std::io::Error| {
            Error::new(
                WS_ERROR_CANNOT_CONNECT,
                format!("cannot listen on {}:{}: {e}", url.host, url.port),
            )
        };
        let sock = TcpListener::bind(&addrs[..]).map_err(cannot)?;
        sock.set_nonblocking(true).map_err(cannot)?;
        Ok(Listener {
            sock,
            url,
            sig: Signals::new()?,
            timeouts: Timeouts::default(),
            config: Mutex::new(ListenerConfig::default()),
            pending: Mutex::new(Vec::new()),
            accept_busy: Default::default(),
        })
    }

    /// `ws_close_handle`: cancels a waiting `ws_accept`.
    pub fn cancel(&self) {
        self.sig.cancel();
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
    /// `WS_OPTION_RECEIVE_TIMEOUT` passes, or the listener is closed.
    pub fn accept(&self) -> Result<Connection> {
        let _busy = Busy::take(
            &self.accept_busy,
            "another ws_accept is running on this listener; at most one may run at a time",
        )?;
        let server_tls = self.server_tls()?;
        let deadline = self.timeouts.deadline(Opt::ReceiveTimeout);
        let mut pending = self.pending.lock();
        let mut backoff: Option<Instant> = None;
        let mut last_error: Option<std::io::Error> = None;
        loop {
            self.sig.check()?;
            if let Err(e) = self.take_new(&mut pending, &server_tls) {
                backoff = Some(Instant::now() + ACCEPT_BACKOFF);
                last_error = Some(e);
            }
            let mut i = 0;
            while i < pending.len() {
                match self.progress(&mut pending[i]) {
                    Step::Wait => i += 1,
                    Step::Drop => {
                        pending.swap_remove(i);
                    }
                    Step::Ready(ready) => {
                        let p = pending.swap_remove(i);
                        // a client that vanished mid-handshake is just dropped
                        if let Ok(conn) = self.finish(p, ready) {
                            return Ok(conn);
                        }
                    }
                }
            }
            // Out of descriptors (EMFILE and the like): the connection stays queued and the
            // listening socket stays readable, so look away from it for a moment instead of
            // spinning.
            let backing_off = backoff.is_some_and(|b| Instant::now() < b);
            let mut fds = vec![
                transport::pollfd(self.sig.waker.as_raw_fd(), true, false),
                transport::pollfd(self.sock.as_raw_fd(), !backing_off, false),
            ];
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
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let why =
                    last_error.map_or(String::new(), |e| format!("; accepting failed with: {e}"));
                return Err(Error::timeout(format!(
                    "no client completed an upgrade within WS_OPTION_RECEIVE_TIMEOUT{why}"
                )));
            }
        }
    }

    /// Accepts every connection waiting in the kernel's queue. An error other than "none
    /// left" (out of descriptors or memory) is returned so the caller backs off.
    fn take_new(
        &self,
        pending: &mut Vec<Pending>,
        server_tls: &Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<()> {
        // A request must complete within the receive timeout, or the connect timeout when
        // there is none, so a client that never finishes cannot hold a slot for ever.
        let limit = self
            .timeouts
            .duration(Opt::ReceiveTimeout)
            .or_else(|| self.timeouts.duration(Opt::ConnectTimeout));
        loop {
            let stream = match self.sock.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
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
            if pending.len() >= MAX_PENDING {
                pending.remove(0);
            }
            pending.push(Pending {
                t,
                head: Vec::new(),
                deadline: limit.map(|d| Instant::now() + d),
                reply: None,
            });
        }
    }

    /// Moves one handshake forward without blocking (for TLS, reading drives the TLS
    /// handshake too).
    fn progress(&self, p: &mut Pending) -> Step {
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
        if p.deadline.is_some_and(|d| Instant::now() >= d) {
            return Step::Drop;
        }
        let mut chunk = [0u8; 4096];
        loop {
            let room = (MAX_HEAD - p.head.len()).min(chunk.len());
            if room == 0 {
                break;
            }
            match p.t.read(&mut chunk[..room]) {
                Ok(0) => return Step::Drop,
                Ok(n) => p.head.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Step::Drop, // includes a failed TLS handshake
            }
        }
        let accepted = self.config.lock().subprotocols.clone();
        match answer_request(&p.head, &self.url.path_only(), &accepted) {
            None => Step::Wait,
            Some((_, Verdict::Reject { response })) => {
                p.reply = Some((response, 0));
                self.progress(p)
            }
            Some((
                used,
                Verdict::Accept {
                    response,
                    subprotocol,
                    headers,
                },
            )) => Step::Ready(Ready {
                used,
                response,
                subprotocol,
                headers,
            }),
        }
    }

    /// Sends the 101 response and wraps the transport as a server-side connection.
    fn finish(&self, p: Pending, mut ready: Ready) -> Result<Connection> {
        let limit = Limit::At(p.deadline);
        let (max_message, deflate) = {
            let c = self.config.lock();
            (c.max_message, c.deflate)
        };
        let offers: Vec<String> = ready
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Extensions"))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect();
        let answer = deflate
            .offered()
            .and_then(|s| crate::protocol::deflate::answer_offers(s, &offers.join(", ")));
        if let Some((ext, _)) = &answer {
            // the response ends with its blank line: the header goes just before it
            ready.response.truncate(ready.response.len() - 2);
            ready
                .response
                .extend_from_slice(format!("Sec-WebSocket-Extensions: {ext}\r\n\r\n").as_bytes());
        }
        write_all(
            &p.t,
            &self.sig,
            &ready.response,
            limit,
            "the upgrade response",
            "WS_OPTION_RECEIVE_TIMEOUT",
        )?;
        let link = Link::new(p.t, Role::Server, max_message, &p.head[ready.used..])
            .with_deflate(answer.as_ref().map(|a| a.1));
        let conn = Connection::accepted(
            self.url.clone(),
            link,
            &self.timeouts,
            ready.subprotocol,
            ready.headers,
        )?;
        conn.negotiated.lock().extensions = answer.map_or(String::new(), |a| a.0);
        Ok(conn)
    }
}

fn not_for_listener() -> Error {
    Error::new(
        WS_ERROR_INVALID_OPTION,
        "this option does not apply to this listener (listeners take the timeouts, WS_OPTION_SUBPROTOCOLS, WS_OPTION_MAX_MESSAGE_SIZE, WS_OPTION_LOCAL_PORT and the compression options WS_OPTION_PERMESSAGE_DEFLATE and WS_OPTION_DEFLATE_*; wss:// listeners also WS_OPTION_TLS_CERT_FILE and WS_OPTION_TLS_KEY_FILE)",
    )
}
