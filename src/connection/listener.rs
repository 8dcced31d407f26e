//! The server role: a listening socket whose `ws_accept` completes upgrade handshakes and
//! returns ordinary connections.
//!
//! Handshakes in progress are kept across `ws_accept` calls and driven together with one
//! poll, so a slow or broken client (a wrong path, garbage, a request that never completes)
//! never delays a good one.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Instant;

use parking_lot::Mutex;

use super::handshake::{answer_request, Verdict, MAX_HEAD};
use super::io::{write_all, Limit, Signals};
use super::link::{Busy, Link};
use super::options::{parse_subprotocols, Opt, Timeouts, Value};
use super::url::WsUrl;
use super::Connection;
use crate::error::{Error, Result, WS_ERROR_CANNOT_CONNECT, WS_ERROR_INVALID_OPTION};
use crate::protocol::Role;
use crate::transport::{self, Transport};

/// At most this many handshakes may be in progress; the oldest is dropped to make room.
const MAX_PENDING: usize = 1024;
/// How long `ws_accept` stops accepting after the process ran out of descriptors.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

struct Pending {
    stream: TcpStream,
    head: Vec<u8>,
    deadline: Option<Instant>,
    /// An error response being written before the connection is dropped.
    reply: Option<(Vec<u8>, usize)>,
}

enum Step {
    Wait,
    Drop,
    Ready(usize, Vec<u8>, Option<String>),
}

#[derive(Default)]
struct ListenerConfig {
    subprotocols: Vec<String>,
    max_message: u64,
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
    /// Binds `ws://host:port/path` at once (port 0 picks a free port).
    pub fn bind(url: &str) -> Result<Listener> {
        let url = WsUrl::parse(url)?;
        let addrs = transport::resolve(&url.host, url.port, None, &|| false)?;
        let sock = TcpListener::bind(&addrs[..]).map_err(|e| {
            Error::new(
                WS_ERROR_CANNOT_CONNECT,
                format!("cannot listen on {}:{}: {e}", url.host, url.port),
            )
        })?;
        sock.set_nonblocking(true).map_err(|e| {
            Error::new(
                WS_ERROR_CANNOT_CONNECT,
                format!("cannot configure the socket: {e}"),
            )
        })?;
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
    /// subprotocols and the message size limit, at any time.
    pub fn set_option(&self, opt: Opt, value: Value) -> Result<()> {
        opt.check_settable()?;
        match (opt, value) {
            (o, Value::U32(ms)) if Timeouts::covers(o) => self.timeouts.set(o, ms),
            (Opt::MaxMessageSize, Value::U64(n)) => self.config.lock().max_message = n,
            (Opt::Subprotocols, Value::Str(s)) => {
                self.config.lock().subprotocols = parse_subprotocols(&s)?
            }
            _ => return Err(not_for_listener()),
        }
        Ok(())
    }

    /// `ws_query_option` on a listener.
    pub fn query_option(&self, opt: Opt) -> Result<Value> {
        Ok(match opt {
            o if Timeouts::covers(o) => Value::U32(self.timeouts.get(o)),
            Opt::MaxMessageSize => Value::U64(self.config.lock().max_message),
            Opt::Subprotocols => Value::Str(self.config.lock().subprotocols.join(", ")),
            Opt::LocalPort => Value::U32(u32::from(self.local_port())),
            _ => return Err(not_for_listener()),
        })
    }

    fn local_port(&self) -> u16 {
        self.sock.local_addr().map_or(0, |a| a.port())
    }

    /// `ws_accept`: blocks until one client completes a valid upgrade on our path, or
    /// `WS_OPTION_RECEIVE_TIMEOUT` passes, or the listener is closed.
    pub fn accept(&self) -> Result<Connection> {
        let _busy = Busy::take(
            &self.accept_busy,
            "another ws_accept is running on this listener; at most one may run at a time",
        )?;
        let deadline = self.timeouts.deadline(Opt::ReceiveTimeout);
        let mut pending = self.pending.lock();
        let mut backoff: Option<Instant> = None;
        let mut last_error: Option<std::io::Error> = None;
        loop {
            self.sig.check()?;
            if let Err(e) = self.take_new(&mut pending) {
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
                    Step::Ready(used, response, subprotocol) => {
                        let p = pending.swap_remove(i);
                        // a client that vanished mid-handshake is just dropped
                        if let Ok(conn) = self.finish(p, used, &response, subprotocol) {
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
                transport::pollfd(p.stream.as_raw_fd(), p.reply.is_none(), p.reply.is_some())
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
                return Err(Error::timeout(match last_error {
                    Some(e) => format!(
                        "no client completed an upgrade within WS_OPTION_RECEIVE_TIMEOUT; accepting failed with: {e}"
                    ),
                    None => "no client completed an upgrade within WS_OPTION_RECEIVE_TIMEOUT".to_owned(),
                }));
            }
        }
    }

    /// Accepts every connection waiting in the kernel's queue. An error other than "none
    /// left" (out of descriptors or memory) is returned so the caller backs off.
    fn take_new(&self, pending: &mut Vec<Pending>) -> std::io::Result<()> {
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
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if pending.len() >= MAX_PENDING {
                pending.remove(0);
            }
            pending.push(Pending {
                stream,
                head: Vec::new(),
                deadline: limit.map(|d| Instant::now() + d),
                reply: None,
            });
        }
    }

    /// Moves one handshake forward without blocking.
    fn progress(&self, p: &mut Pending) -> Step {
        if let Some((response, sent)) = &mut p.reply {
            while *sent < response.len() {
                match p.stream.write(&response[*sent..]) {
                    Ok(n) if n > 0 => *sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Wait,
                    _ => return Step::Drop,
                }
            }
            return Step::Drop; // the error response is out: close
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
            match p.stream.read(&mut chunk[..room]) {
                Ok(0) => return Step::Drop,
                Ok(n) => p.head.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Step::Drop,
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
                },
            )) => Step::Ready(used, response, subprotocol),
        }
    }

    /// Sends the 101 response and wraps the socket as a server-side connection.
    fn finish(
        &self,
        p: Pending,
        used: usize,
        response: &[u8],
        subprotocol: Option<String>,
    ) -> Result<Connection> {
        let t = Transport::new(p.stream)
            .map_err(|e| Error::connection(format!("cannot configure the socket: {e}")))?;
        write_all(
            &t,
            &self.sig,
            response,
            Limit::At(p.deadline),
            "the upgrade response",
            "WS_OPTION_RECEIVE_TIMEOUT",
        )?;
        let max_message = self.config.lock().max_message;
        let link = Link::new(t, Role::Server, max_message, &p.head[used..]);
        Connection::accepted(self.url.clone(), link, &self.timeouts, subprotocol)
    }
}

fn not_for_listener() -> Error {
    Error::new(
        WS_ERROR_INVALID_OPTION,
        "this option does not apply to a listener (listeners take timeouts, WS_OPTION_SUBPROTOCOLS, WS_OPTION_MAX_MESSAGE_SIZE and WS_OPTION_LOCAL_PORT)",
    )
}
