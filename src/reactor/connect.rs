//! An asynchronous `ws_connect`: DNS on a helper thread, a non-blocking TCP connect, the proxy's
//! CONNECT exchange, TLS and the upgrade, each step moved forward by readiness and each
//! exchange the sans-IO one from `protocol::handshake` that the blocking driver uses too.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::conn::{Open, Phase, Session, St};
use super::event_loop::Cx;
use super::pending::{Completion, Operation};
use crate::connection::{Negotiated, WsUrl};
use crate::error::{Error, Result, WS_ERROR_CANNOT_CONNECT, WS_ERROR_TIMEOUT};
use crate::protocol::handshake::client::{ClientHandshake, Offer, Upgraded};
use crate::protocol::handshake::proxy::ConnectExchange;
use crate::protocol::Role;
use crate::transport::tls::{self, TlsOptions};
use crate::transport::{self, Transport};

/// What a client connects to, taken from its handle at `ws_connect`.
pub struct Target {
    /// The URL.
    pub url: WsUrl,
    /// Request headers and subprotocols.
    pub offer: Offer,
    /// TLS settings.
    pub tls: TlsOptions,
    /// `WS_OPTION_PROXY`: host and port.
    pub proxy: Option<(String, u16)>,
    /// `WS_OPTION_MAX_MESSAGE_SIZE`.
    pub max_message: u64,
    /// Where the upgrade's outcome is recorded for the queries.
    pub negotiated: Arc<Mutex<Negotiated>>,
}

enum Step {
    Resolving,
    Connecting(SocketAddr),
    Proxy(ConnectExchange),
    Tls,
    Upgrade(ClientHandshake),
}

/// A connect under way.
pub struct Opening {
    target: Target,
    deadline: Option<Instant>,
    step: Step,
    resolved: Option<Result<Vec<SocketAddr>>>,
    addrs: Vec<SocketAddr>,
    next_addr: usize,
    sock: Option<TcpStream>,
    t: Option<Transport>,
    /// A request being written.
    out: Vec<u8>,
    sent: usize,
    /// Bytes that arrived behind the proxy's answer.
    early: Vec<u8>,
}

impl Opening {
    /// When the connect times out.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

impl Session {
    /// `ws_connect` on an asynchronous handle: starts the steps; the completion follows.
    pub fn start_connect(
        self: &Arc<Self>,
        target: Target,
        deadline: Option<Instant>,
    ) -> Result<()> {
        let mut st = self.st.lock();
        match st.phase {
            Phase::None => {}
            _ => {
                return Err(Error::operation(
                    "ws_connect is allowed in NONE; this handle has connected or is connecting",
                ))
            }
        }
        st.pending.start_opening(Operation::Connect)?;
        *target.negotiated.lock() = Negotiated::default();
        let (host, port) = match &target.proxy {
            Some((h, p)) => (h.clone(), *p),
            None => (target.url.host.clone(), target.url.port),
        };
        let mut op = Box::new(Opening {
            target,
            deadline,
            step: Step::Resolving,
            resolved: None,
            addrs: Vec::new(),
            next_addr: 0,
            sock: None,
            t: None,
            out: Vec::new(),
            sent: 0,
            early: Vec::new(),
        });
        match transport::literal(&host, port) {
            Some(addrs) => op.resolved = Some(Ok(addrs)),
            None => {
                // the answer comes back from the helper thread through the loop
                let me = self.clone();
                let asked = transport::lookup_on_thread(&host, port, move |r| {
                    let mut st = me.st.lock();
                    if let Phase::Opening(op) = &mut st.phase {
                        op.resolved = Some(r);
                    }
                    me.post(&mut st);
                });
                if let Err(e) = asked {
                    op.resolved = Some(Err(e));
                }
            }
        }
        st.phase = Phase::Opening(op);
        self.post(&mut st);
        Ok(())
    }
}

/// Moves the connect forward; on success the connection is `OPEN` and `CONNECT_COMPLETE`
/// is produced; on failure the handle is back in `NONE` with `REQUEST_ERROR {CONNECT}`.
pub(super) fn step(s: &Session, st: &mut St, cx: &mut Cx<'_>) {
    let Phase::Opening(op) = &mut st.phase else {
        return;
    };
    let outcome = if op.deadline.is_some_and(|d| cx.now >= d) {
        Err(Error::new(
            WS_ERROR_TIMEOUT,
            "the connect took longer than WS_OPTION_CONNECT_TIMEOUT",
        ))
    } else {
        advance(
            op,
            &mut st.readable,
            &mut st.writable,
            &mut st.registered,
            s,
            cx,
        )
    };
    match outcome {
        Ok(None) => {}
        Ok(Some(open)) => {
            st.phase = Phase::Open(open);
            st.pending.finish_opening(Completion::Connected);
        }
        Err(e) => {
            if let Some(fd) = st.registered.take() {
                cx.lp.deregister(fd);
            }
            st.phase = Phase::None; // drops the socket
            st.readable = false;
            st.writable = false;
            st.pending.finish_opening(Completion::Failed {
                op: Operation::Connect,
                error: e.code,
            });
        }
    }
}

fn start_tcp(
    op: &mut Opening,
    registered: &mut Option<i32>,
    s: &Session,
    cx: &mut Cx<'_>,
) -> Result<()> {
    let mut last = None;
    while op.next_addr < op.addrs.len() {
        let addr = op.addrs[op.next_addr];
        op.next_addr += 1;
        if let Some(fd) = registered.take() {
            cx.lp.deregister(fd);
        }
        match transport::connect_start(addr) {
            Ok(sock) => {
                let fd = sock.as_raw_fd();
                cx.lp.register(fd, s.token()).map_err(|e| {
                    Error::from_io(WS_ERROR_CANNOT_CONNECT, "cannot watch the socket", &e)
                })?;
                *registered = Some(fd);
                op.sock = Some(sock);
                op.step = Step::Connecting(addr);
                return Ok(());
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::new(WS_ERROR_CANNOT_CONNECT, "no address to connect to")))
}

/// Writes `op.out`; `Ok(false)` while the socket is full.
fn write_request(op: &mut Opening, writable: &mut bool, what: &str) -> Result<bool> {
    let t = op.t.as_ref().expect("a transport while writing");
    while op.sent < op.out.len() {
        match t.write(&op.out[op.sent..]) {
            Ok(n) if n > 0 => op.sent += n,
            Ok(_) => return Err(Error::connection(format!("sending {what} failed"))),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                *writable = false;
                return Ok(false);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::connection(format!("sending {what} failed: {e}"))),
        }
    }
    match t.flush() {
        Ok(true) => Ok(true),
        Ok(false) => {
            *writable = false;
            Ok(false)
        }
        Err(e) => Err(Error::connection(format!("sending {what} failed: {e}"))),
    }
}

/// Reads what arrived into the loop's scratch buffer: `Ok(None)` when nothing is there.
fn read_some(op: &mut Opening, readable: &mut bool, cx: &mut Cx<'_>) -> Result<Option<usize>> {
    let t = op.t.as_ref().expect("a transport while reading");
    loop {
        return match t.read(&mut cx.scratch[..]) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                *readable = false;
                Ok(None)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => Err(Error::connection(format!("the connection failed: {e}"))),
        };
    }
}

fn after_tunnel(op: &mut Opening) -> Result<()> {
    if op.target.url.secure {
        let early = std::mem::take(&mut op.early);
        let session = tls::client_session(&op.target.tls, &op.target.url.host, &early)?;
        let sock = op.t.take().expect("a transport").into_stream();
        op.t = Some(
            Transport::with_tls(sock, session)
                .map_err(|e| Error::connection(format!("cannot configure the socket: {e}")))?,
        );
        op.step = Step::Tls;
        Ok(())
    } else {
        start_upgrade(op)
    }
}

fn start_upgrade(op: &mut Opening) -> Result<()> {
    let (hs, request) = ClientHandshake::new(&op.target.url.uri, op.target.offer.clone())?;
    op.out = request;
    op.sent = 0;
    op.step = Step::Upgrade(hs);
    Ok(())
}

fn advance(
    op: &mut Opening,
    readable: &mut bool,
    writable: &mut bool,
    registered: &mut Option<i32>,
    s: &Session,
    cx: &mut Cx<'_>,
) -> Result<Option<Box<Open>>> {
    loop {
        match &mut op.step {
            Step::Resolving => match op.resolved.take() {
                None => return Ok(None),
                Some(Err(e)) => return Err(e),
                Some(Ok(addrs)) => {
                    op.addrs = addrs;
                    start_tcp(op, registered, s, cx)?;
                }
            },
            Step::Connecting(addr) => {
                if !*writable {
                    return Ok(None);
                }
                let addr = *addr;
                let sock = op.sock.take().expect("a socket while connecting");
                if let Err(e) = transport::connect_finish(&sock, addr) {
                    *writable = false;
                    *readable = false;
                    if op.next_addr < op.addrs.len() {
                        start_tcp(op, registered, s, cx)?;
                        continue;
                    }
                    return Err(e);
                }
                let t = Transport::new(sock)
                    .map_err(|e| Error::connection(format!("cannot configure the socket: {e}")))?;
                op.t = Some(t);
                match op.target.proxy.clone() {
                    Some(_) => {
                        let (ex, request) =
                            ConnectExchange::new(&op.target.url.host, op.target.url.port);
                        op.out = request;
                        op.sent = 0;
                        op.step = Step::Proxy(ex);
                    }
                    None => after_tunnel(op)?,
                }
            }
            Step::Proxy(_) => {
                if !write_request(op, writable, "the CONNECT request")? {
                    return Ok(None);
                }
                let Some(n) = read_some(op, readable, cx)? else {
                    return Ok(None);
                };
                if n == 0 {
                    return Err(Error::new(
                        WS_ERROR_CANNOT_CONNECT,
                        "the proxy closed the connection instead of answering CONNECT",
                    ));
                }
                let Step::Proxy(ex) = &mut op.step else {
                    unreachable!()
                };
                if let Some(rest) = ex.feed(&cx.scratch[..n])? {
                    op.early = rest;
                    after_tunnel(op)?;
                }
            }
            Step::Tls => {
                let t = op.t.as_ref().expect("a transport");
                match t.handshake_step(&op.target.url.host)? {
                    None => start_upgrade(op)?,
                    Some(wants_write) => {
                        *readable = false;
                        if wants_write {
                            *writable = false;
                        }
                        return Ok(None);
                    }
                }
            }
            Step::Upgrade(_) => {
                if !write_request(op, writable, "the upgrade request")? {
                    return Ok(None);
                }
                let early = std::mem::take(&mut op.early);
                let got = if early.is_empty() {
                    match read_some(op, readable, cx)? {
                        None => return Ok(None),
                        Some(0) => return Err(Error::connection(
                            "the server closed the connection before answering the upgrade request",
                        )),
                        Some(n) => feed_upgrade(op, &cx.scratch[..n]),
                    }
                } else {
                    feed_upgrade(op, &early)
                };
                if let Some(up) = got? {
                    let (extensions, agreed) = up.deflate.unzip();
                    {
                        let mut n = op.target.negotiated.lock();
                        n.subprotocol = up.subprotocol.clone();
                        n.extensions = extensions.unwrap_or_default();
                    }
                    let t = op.t.take().expect("a transport");
                    return Ok(Some(Box::new(Open::new(
                        t,
                        Role::Client,
                        op.target.max_message,
                        &up.leftover,
                        Vec::new(),
                        agreed,
                    ))));
                }
            }
        }
    }
}

/// Feeds the upgrade response; the status and headers are recorded as soon as they are known.
fn feed_upgrade(op: &mut Opening, bytes: &[u8]) -> Result<Option<Upgraded>> {
    let Step::Upgrade(hs) = &mut op.step else {
        unreachable!("only in the upgrade step")
    };
    let r = hs.feed(bytes);
    if !matches!(r, Ok(None)) {
        let info = hs.take_response();
        let mut n = op.target.negotiated.lock();
        n.http_status = info.status;
        n.headers = info.headers;
    }
    r
}
