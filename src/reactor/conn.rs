//! An asynchronous connection: the protocol core (Receiver, Framer, CloseHandshake) over a
//! non-blocking [`Transport`], moved forward by its loop and never waiting.
//!
//! Calls from any thread check and record an operation under the connection's lock and post
//! the connection to its loop ([`Session`]'s `start_*` methods); the loop does all I/O in
//! [`Driven::drive`] and turns the [`Pending`] operations' outcomes into completions.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::connect::Opening;
use super::event_loop::{Cx, Driven, Posted};
use super::pending::{Closer, Completion, Operation, Pending};
use super::{Binding, Raw};
use crate::connection::options::{Opt, Timeouts};
use crate::error::{
    ws_error, Error, Result, WS_ERROR_CONNECTION_ERROR, WS_ERROR_INTERNAL,
    WS_ERROR_INVALID_SERVER_RESPONSE, WS_ERROR_TIMEOUT,
};
use crate::protocol::close::{self, CloseHandshake, State};
use crate::protocol::deflate::{self, Agreed, Compressor};
use crate::protocol::frame::{self, ControlPayload, Opcode};
use crate::protocol::keepalive::{Keepalive, Tick};
use crate::protocol::recv::{Event, Receiver};
use crate::protocol::send::{Framer, SendKind};
use crate::protocol::{MessageKind, Role, Violation};
use crate::transport::{buffers, Transport};

/// Outgoing frames are built in pieces of at most this many unwritten bytes, so that they fit
/// a pooled buffer (memory stays bounded whatever the message size).
const TX_CHUNK: usize = buffers::BUF_SIZE - 1024;
/// A payload at least this large goes between the socket and the caller's buffer directly:
/// a receive's (unless compressed), and an unmasked send's over plain TCP.
const DIRECT_MIN: usize = 16 * 1024;
/// Unread bytes up to this many are copied out of the loop's buffer; more keep it.
const SMALL_LEFTOVER: usize = 1024;
/// At most this many pongs wait; older ones are dropped (RFC 6455 §5.5.3).
const MAX_QUEUED_PONGS: usize = 16;
/// How long a client waits for the server's FIN after the close handshake (RFC 6455 §7.1.1).
const CLIENT_FIN_WAIT: Duration = Duration::from_secs(1);

/// `WS_BUFFER_*` numbers (fixed by the API).
const BUFFER_BINARY_MESSAGE: u32 = 0;
const BUFFER_BINARY_FRAGMENT: u32 = 1;
const BUFFER_UTF8_MESSAGE: u32 = 2;
const BUFFER_UTF8_FRAGMENT: u32 = 3;
const BUFFER_CLOSE: u32 = 4;

/// The `WS_BUFFER_*` number of a received piece.
fn buffer_type(kind: MessageKind, end: bool) -> u32 {
    match (kind, end) {
        (MessageKind::Binary, true) => BUFFER_BINARY_MESSAGE,
        (MessageKind::Binary, false) => BUFFER_BINARY_FRAGMENT,
        (MessageKind::Text, true) => BUFFER_UTF8_MESSAGE,
        (MessageKind::Text, false) => BUFFER_UTF8_FRAGMENT,
    }
}

/// The `WS_BUFFER_*` number of a send.
fn send_type(what: SendKind) -> u32 {
    match what {
        SendKind::BinaryMessage => BUFFER_BINARY_MESSAGE,
        SendKind::BinaryFragment => BUFFER_BINARY_FRAGMENT,
        SendKind::TextMessage => BUFFER_UTF8_MESSAGE,
        SendKind::TextFragment => BUFFER_UTF8_FRAGMENT,
    }
}

/// A pending receive: the caller's buffer and how much of it is filled.
#[derive(Debug)]
pub struct RecvBuf {
    ptr: Raw<u8>,
    len: usize,
    filled: usize,
    kind: MessageKind,
    deadline: Option<Instant>,
}

impl RecvBuf {
    /// The caller's buffer (`len` ≥ 1 bytes that stay valid until the completion).
    pub fn new(ptr: *mut u8, len: usize) -> RecvBuf {
        RecvBuf {
            ptr: Raw(ptr),
            len,
            filled: 0,
            kind: MessageKind::Binary,
            deadline: None,
        }
    }

    fn rest(&mut self) -> &mut [u8] {
        // SAFETY: the caller promised `len` writable bytes at `ptr` until the completion,
        // which has not been delivered while this operation is pending.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.0.add(self.filled), self.len - self.filled)
        }
    }
}

/// A pending send: the caller's payload and how far it is framed.
#[derive(Debug)]
pub struct SendOp {
    ptr: Raw<u8>,
    len: usize,
    buffer_type: u32,
    opcode: Opcode,
    fin: bool,
    mask: Option<[u8; 4]>,
    started: bool,
    /// Goes out compressed (permessage-deflate), as one or more frames.
    compress: bool,
    /// A (compressed) frame of it is framed already: the next one is a continuation.
    framed: bool,
    copied: usize,
    /// The stream position after its last byte, once it is all framed (or, when `direct`,
    /// written).
    end: Option<u64>,
    /// Its payload goes from the caller's buffer to the socket, after its header.
    direct: bool,
}

impl SendOp {
    fn payload(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the caller promised `len` readable bytes at `ptr` until the completion.
        unsafe { std::slice::from_raw_parts(self.ptr.0, self.len) }
    }
}

/// An open connection's protocol state and buffers.
pub(super) struct Open {
    pub(super) t: Transport,
    role: Role,
    receiver: Receiver,
    framer: Framer,
    /// Our permessage-deflate compressor, when the handshake agreed it.
    deflate: Option<Box<Compressor>>,
    pub(super) hs: CloseHandshake,
    /// Bytes read but not yet fed to the receiver (after a receive completed mid-input):
    /// `leftover[left_pos..left_end]`, in a pooled buffer or a small copy.
    leftover: Option<Box<[u8]>>,
    left_pos: usize,
    left_end: usize,
    /// Frames being written: `out[sent..]` is not on the wire yet; `base` is the stream
    /// position of `out[0]`.
    out: Vec<u8>,
    sent: usize,
    base: u64,
    pongs: VecDeque<ControlPayload>,
    ping: bool,
    keepalive: Keepalive,
    /// Our close frame, committed, not yet framed.
    close_frame: Option<Box<ControlPayload>>,
    close_end: Option<u64>,
    close_written: bool,
    /// A close frame held back because data was delivered first.
    held_close: Option<Box<ControlPayload>>,
    close_deadline: Option<Instant>,
    /// Output has been waiting without progress since then.
    stalled_since: Option<Instant>,
    /// A client waiting for the server's FIN after the close handshake, until then.
    fin_by: Option<Instant>,
    torn_down: bool,
}

impl Open {
    /// An upgraded transport; `leftover` arrived after the upgrade, `first_out` (a server's
    /// 101) goes out before any frame; `deflate`: what the handshake agreed on compression.
    pub(super) fn new(
        t: Transport,
        role: Role,
        max_message: u64,
        leftover: &[u8],
        first_out: Vec<u8>,
        deflate: Option<Agreed>,
    ) -> Open {
        let mut receiver = Receiver::new(role, max_message);
        if let Some(a) = &deflate {
            receiver.enable_deflate(a);
        }
        Open {
            t,
            role,
            receiver,
            framer: Framer::default(),
            deflate: deflate.map(|a| Box::new(Compressor::new(a))),
            hs: CloseHandshake::default(),
            leftover: (!leftover.is_empty()).then(|| leftover.into()),
            left_pos: 0,
            left_end: leftover.len(),
            out: first_out,
            sent: 0,
            base: 0,
            pongs: VecDeque::new(),
            ping: false,
            keepalive: Keepalive::new(Instant::now()),
            close_frame: None,
            close_end: None,
            close_written: false,
            held_close: None,
            close_deadline: None,
            stalled_since: None,
            fin_by: None,
            torn_down: false,
        }
    }

    fn mask(&self) -> Option<[u8; 4]> {
        match self.role {
            Role::Client => Some(crate::protocol::mask_key()),
            Role::Server => None,
        }
    }

    fn written(&self) -> u64 {
        self.base + self.sent as u64
    }

    fn teardown(&mut self) {
        if !self.torn_down {
            self.torn_down = true;
            self.t.shutdown();
        }
    }
}

pub(super) enum Phase {
    /// Before `ws_connect`, or after a failed one.
    None,
    /// `ws_connect` is under way.
    Opening(Box<Opening>),
    /// Upgraded.
    Open(Box<Open>),
    /// `ws_close_handle` was processed: nothing is left.
    Released,
}

pub(super) struct St {
    pub(super) pending: Pending<RecvBuf, SendOp>,
    pub(super) phase: Phase,
    posted: bool,
    scheduled: Option<Instant>,
    pub(super) readable: bool,
    pub(super) writable: bool,
    /// The descriptor registered with the loop.
    pub(super) registered: Option<i32>,
    /// Its writability is watched too (registration starts with both).
    pub(super) write_interest: bool,
}

/// An asynchronous connection handle's driver state, shared between the callers and its loop.
pub struct Session {
    pub(super) handle: u64,
    pub(super) binding: Arc<Binding>,
    pub(super) timeouts: Arc<Timeouts>,
    pub(super) token: AtomicUsize,
    pub(super) st: Mutex<St>,
}

fn refuse(call: &str, allowed: &str, state: State) -> Error {
    Error::operation(format!(
        "{call} is allowed in {allowed}; the connection is {}",
        crate::connection::state_name(state)
    ))
}

impl Session {
    /// A session for `handle` on its binding's loop, in `phase`.
    pub(super) fn create(
        handle: u64,
        binding: Arc<Binding>,
        timeouts: Arc<Timeouts>,
        phase: Phase,
    ) -> Arc<Session> {
        let s = Arc::new(Session {
            handle,
            binding,
            timeouts,
            token: AtomicUsize::new(usize::MAX),
            st: Mutex::new(St {
                pending: Pending::default(),
                phase,
                posted: false,
                scheduled: None,
                readable: false,
                writable: false,
                registered: None,
                write_interest: true,
            }),
        });
        let token = s.binding.lp.insert(s.clone());
        s.token.store(token, Ordering::SeqCst);
        s
    }

    /// A client's session before its first `ws_connect`.
    pub fn idle(h: u64, binding: Arc<Binding>, timeouts: Arc<Timeouts>) -> Arc<Session> {
        Session::create(h, binding, timeouts, Phase::None)
    }

    pub(super) fn token(&self) -> usize {
        self.token.load(Ordering::SeqCst)
    }

    /// Hands the session to its loop (once until the loop has driven it).
    pub(super) fn post(&self, st: &mut St) {
        if !st.posted {
            st.posted = true;
            self.binding.lp.post(Posted::Token(self.token()));
        }
    }

    /// The state, as `ws_query_state` reports it.
    pub fn state(&self) -> State {
        match &self.st.lock().phase {
            Phase::None | Phase::Released => State::None,
            Phase::Opening(_) => State::Connecting,
            Phase::Open(o) => o.hs.state(),
        }
    }

    /// Whether the upgrade succeeded.
    pub fn is_open(&self) -> bool {
        matches!(self.st.lock().phase, Phase::Open(_))
    }

    /// The local port once connected.
    pub fn local_port(&self) -> Option<u16> {
        match &self.st.lock().phase {
            Phase::Open(o) => Some(o.t.local_port()),
            _ => None,
        }
    }

    /// The peer's close status and reason (see `ws_query_close_status`).
    pub fn close_status(&self) -> Option<(u16, Vec<u8>)> {
        match &self.st.lock().phase {
            Phase::Open(o) => o.hs.peer_status().map(|(s, r)| (s, r.to_vec())),
            _ => None,
        }
    }

    fn with_open<R>(
        &self,
        call: &str,
        allowed: &str,
        f: impl FnOnce(&mut Pending<RecvBuf, SendOp>, &mut Open) -> Result<R>,
    ) -> Result<R> {
        let mut st = self.st.lock();
        let st = &mut *st;
        let r = match &mut st.phase {
            Phase::Open(o) => f(&mut st.pending, o)?,
            Phase::Opening(_) => return Err(refuse(call, allowed, State::Connecting)),
            _ => return Err(refuse(call, allowed, State::None)),
        };
        self.post(st);
        Ok(r)
    }

    /// `ws_send`: checks and queues the frame; its completion follows.
    pub fn start_send(&self, what: SendKind, payload: &[u8]) -> Result<()> {
        let (ptr, len) = (payload.as_ptr(), payload.len());
        self.with_open("ws_send", "OPEN and CLOSE_RECEIVED", |p, o| {
            if !o.hs.may_send() {
                return Err(refuse("ws_send", "OPEN and CLOSE_RECEIVED", o.hs.state()));
            }
            let planned = o.framer.plan(what, payload).map_err(Error::param)?;
            p.start_send(SendOp {
                ptr: Raw(ptr.cast_mut()),
                len,
                buffer_type: send_type(what),
                opcode: planned.opcode,
                fin: planned.fin,
                mask: None,
                started: false,
                compress: false,
                framed: false,
                copied: 0,
                end: None,
                direct: false,
            })?;
            o.framer.commit(planned);
            Ok(())
        })
    }

    /// `ws_receive`: records the caller's buffer; its completion follows.
    pub fn start_receive(&self, out: &mut [u8]) -> Result<()> {
        let (ptr, len) = (out.as_mut_ptr(), out.len());
        let timeout = self.timeouts.duration(Opt::ReceiveTimeout);
        self.with_open("ws_receive", "OPEN and CLOSE_SENT", |p, o| {
            if p.closer() != Some(Closer::Close) && !o.hs.may_receive() {
                return Err(refuse("ws_receive", "OPEN and CLOSE_SENT", o.hs.state()));
            }
            let mut r = RecvBuf::new(ptr, len);
            r.deadline = timeout.map(|t| Instant::now() + t);
            p.start_receive(r)
        })
    }

    /// `ws_shutdown` (`Closer::Shutdown`) or `ws_close` (`Closer::Close`) with their close
    /// payload: the close frame follows the pending sends.
    pub fn start_closer(&self, c: Closer, payload: ControlPayload) -> Result<()> {
        let close_timeout = self.timeouts.deadline(Opt::CloseTimeout);
        let (call, allowed) = match c {
            Closer::Shutdown => ("ws_shutdown", "OPEN and CLOSE_RECEIVED"),
            Closer::Close => ("ws_close", "OPEN, CLOSE_SENT, CLOSE_RECEIVED and CLOSED"),
        };
        self.with_open(call, allowed, |p, o| {
            let state = o.hs.state();
            let ok = match c {
                Closer::Shutdown => state.may_send(),
                Closer::Close => state != State::Aborted,
            };
            if !ok {
                return Err(refuse(call, allowed, state));
            }
            p.start_closer(c)?;
            if o.hs.commit_close() {
                o.close_frame = Some(Box::new(payload));
            }
            if c == Closer::Close {
                o.close_deadline = close_timeout;
            }
            Ok(())
        })
    }

    /// `ws_close_handle`: everything pending is cancelled by the loop, then
    /// `HANDLE_CLOSING`.
    pub fn release(&self) {
        let mut st = self.st.lock();
        st.pending.release();
        self.post(&mut st);
    }
}

impl Driven for Session {
    fn drive(&self, cx: &mut Cx<'_>) {
        let mut guard = self.st.lock();
        let st = &mut *guard;
        st.posted = false;
        st.readable |= cx.readable;
        st.writable |= cx.writable;
        if st.pending.is_released() {
            if let Some(fd) = st.registered.take() {
                cx.lp.deregister(fd);
            }
            st.phase = Phase::Released; // drops the transport: the socket closes
            cx.deliver(self.handle, &self.binding, st.pending.take_completions());
            cx.gone = true;
            return;
        }
        if let Phase::Opening(_) = st.phase {
            super::connect::step(self, st, cx);
        }
        if let Phase::Open(o) = &mut st.phase {
            let o = &mut **o;
            let flags = (&mut st.readable, &mut st.writable);
            if let Err(e) = drive_open(o, &mut st.pending, flags, cx, &self.timeouts) {
                fail(o, &mut st.pending, e);
            }
            let want = !o.torn_down && (o.sent < o.out.len() || o.t.has_pending_output());
            if want != st.write_interest {
                if let Some(fd) = st.registered {
                    if cx.lp.watch_writes(fd, cx.token, want).is_ok() {
                        st.write_interest = want;
                        // (re-registering reports the current state again)
                    }
                }
            }
        }
        cx.deliver(self.handle, &self.binding, st.pending.take_completions());
        let next = match &st.phase {
            Phase::Open(o) => next_deadline(o, &mut st.pending, &self.timeouts),
            Phase::Opening(op) => op.deadline(),
            _ => None,
        };
        if let Some(at) = next {
            if st.scheduled.is_none_or(|s| at < s || s <= cx.now) {
                st.scheduled = Some(at);
                cx.schedule(at);
            }
        }
    }
}

/// A failure that ends the connection: abort, and every pending operation ends with `code`.
struct Failure(ws_error);

impl From<Violation> for Failure {
    fn from(_: Violation) -> Self {
        Failure(WS_ERROR_INVALID_SERVER_RESPONSE)
    }
}

fn fail(o: &mut Open, p: &mut Pending<RecvBuf, SendOp>, e: Failure) {
    o.hs.abort();
    o.teardown();
    p.fail_all(e.0);
}

fn io_failed(_: std::io::Error) -> Failure {
    Failure(WS_ERROR_CONNECTION_ERROR)
}

/// One round for an open connection: frame and write what is pending, read what a receive
/// (or `ws_close`'s wait for the peer's close) needs, fire due timers, finish the close.
fn drive_open(
    o: &mut Open,
    p: &mut Pending<RecvBuf, SendOp>,
    (readable, writable): (&mut bool, &mut bool),
    cx: &mut Cx<'_>,
    to: &Timeouts,
) -> std::result::Result<(), Failure> {
    write_side(o, p, writable, cx.now)?;
    read_side(o, p, readable, cx)?;
    timers(o, p, cx.now, to)?;
    // pongs or a ping queued while reading, and a close frame after the last send, go out in
    // this round
    write_side(o, p, writable, cx.now)?;
    finish_close(o, p, cx.now);
    Ok(())
}

/// Frames pending sends (and control frames at frame boundaries, and our close frame after
/// the sends) into the output buffer, writes as much as the socket takes, and completes the
/// sends that are on the wire. A large unmasked payload goes from the caller's buffer straight
/// to the socket (gathered with the frames before it), never through the output buffer.
fn write_side(
    o: &mut Open,
    p: &mut Pending<RecvBuf, SendOp>,
    writable: &mut bool,
    now: Instant,
) -> std::result::Result<(), Failure> {
    if o.torn_down {
        return Ok(());
    }
    loop {
        frame_pending(o, p)?;
        // at most one send goes out directly: the last thing after the output buffer
        let direct = p.sends().iter().position(|s| s.direct && s.end.is_none());
        if o.sent == o.out.len() && direct.is_none() {
            break;
        }
        let mut moved = false;
        let mut blocked = false;
        loop {
            let unsent = o.out.len() - o.sent;
            let step = match direct {
                Some(i) => {
                    let s = &p.sends()[i];
                    let rest = &s.payload()[s.copied..];
                    if unsent == 0 && rest.is_empty() {
                        break;
                    }
                    o.t.write2(&o.out[o.sent..], rest)
                }
                None if unsent == 0 => break,
                None => o.t.write(&o.out[o.sent..]),
            };
            match step {
                Ok(n) if n > 0 => {
                    moved = true;
                    let framed = n.min(unsent);
                    o.sent += framed;
                    if let Some(i) = direct.filter(|_| n > framed) {
                        // the output buffer is all out, and some of the payload after it
                        o.base += (o.out.len() + n - framed) as u64;
                        o.out.clear();
                        o.sent = 0;
                        let s = &mut p.sends()[i];
                        s.copied += n - framed;
                        if s.copied == s.len {
                            s.end = Some(o.base);
                        }
                    }
                }
                Ok(_) => return Err(Failure(WS_ERROR_CONNECTION_ERROR)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    *writable = false;
                    blocked = true;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_failed(e)),
            }
        }
        if moved {
            o.stalled_since = None;
        }
        if o.sent == o.out.len() && o.sent > 0 {
            o.base += o.out.len() as u64;
            o.sent = 0;
            o.out.clear();
        }
        if blocked {
            break; // the socket is full: wait for writability
        }
    }
    if o.out.is_empty() && p.sends().is_empty() {
        // an idle connection holds no output buffer
        buffers::give_vec(std::mem::take(&mut o.out));
    }
    let flushed = o.t.flush().map_err(io_failed)?;
    if !flushed {
        *writable = false;
    }
    let unsent =
        o.sent < o.out.len() || p.sends().iter().any(|s| s.direct && s.end.is_none()) || !flushed;
    if unsent && o.stalled_since.is_none() {
        o.stalled_since = Some(now);
    }
    if !unsent {
        o.stalled_since = None;
    }
    // everything before `on_wire` has been handed to the OS
    let on_wire = if flushed { o.written() } else { o.base };
    while let Some(s) = p.sends().front() {
        match s.end {
            Some(end) if end <= on_wire => {
                let c = Completion::Written {
                    bytes: s.len,
                    buffer_type: s.buffer_type,
                };
                p.finish_send(c);
            }
            _ => break,
        }
    }
    if !o.close_written && o.close_end.is_some_and(|e| e <= on_wire) {
        o.close_written = true;
        if p.closer() == Some(Closer::Shutdown) && p.sends().is_empty() {
            p.finish_closer(Completion::ShutdownDone);
        }
    }
    Ok(())
}

/// Makes room in the output buffer: takes one from the pool, or drops the bytes already
/// written so that the buffer does not grow past its room.
fn room(o: &mut Open) {
    if o.out.capacity() == 0 {
        o.out = buffers::take_vec();
    } else if o.sent > 0 {
        o.out.drain(..o.sent);
        o.base += o.sent as u64;
        o.sent = 0;
    }
}

/// Moves pending frames into the output buffer, at most [`TX_CHUNK`] unwritten bytes. Stops
/// after the header of a send that goes out directly, until its payload is written.
fn frame_pending(
    o: &mut Open,
    p: &mut Pending<RecvBuf, SendOp>,
) -> std::result::Result<(), Failure> {
    if p.sends().iter().any(|s| s.direct && s.end.is_none()) {
        return Ok(());
    }
    let nothing = o.pongs.is_empty()
        && !o.ping
        && o.close_frame.is_none()
        && p.sends().iter().all(|s| s.end.is_some());
    if nothing || o.out.len() - o.sent >= TX_CHUNK {
        return Ok(());
    }
    room(o);
    loop {
        if o.out.len() - o.sent >= TX_CHUNK {
            return Ok(());
        }
        // Sends are framed in call order, so the framed ones (`end` set) are a prefix of the
        // queue: find the first unframed one by binary search, not by a scan from the front
        // (which made framing n pending sends cost n² steps).
        let first = p.sends().partition_point(|s| s.end.is_some());
        let mid_frame = p.sends().get(first).is_some_and(|s| s.started);
        if !mid_frame {
            for pong in std::mem::take(&mut o.pongs) {
                let m = o.mask();
                frame::write_frame(&mut o.out, Opcode::Pong, true, pong.as_slice(), m);
            }
            if std::mem::take(&mut o.ping) {
                let m = o.mask();
                frame::write_frame(&mut o.out, Opcode::Ping, true, b"", m);
            }
        }
        let Some(s) = p.sends().get_mut(first) else {
            if let Some(c) = o.close_frame.take() {
                let m = o.mask();
                frame::write_frame(&mut o.out, Opcode::Close, true, c.as_slice(), m);
                o.close_end = Some(o.base + o.out.len() as u64);
            }
            return Ok(());
        };
        if !s.started {
            s.started = true;
            s.compress = o
                .deflate
                .as_ref()
                .is_some_and(|c| c.applies(s.opcode == Opcode::Continue, s.len, s.fin));
            if !s.compress {
                // one key for the whole frame (compressed frames draw one each, below)
                s.mask = o.mask();
                frame::write_header(&mut o.out, s.opcode, s.fin, s.len as u64, s.mask);
                s.direct = s.mask.is_none() && s.len >= DIRECT_MIN && !o.t.is_tls();
                if s.direct {
                    return Ok(()); // the payload follows the buffer, from the caller's memory
                }
            }
        }
        if s.compress {
            // one compressed frame per round (at most OUT_CHUNK bytes), the same framing as
            // the blocking driver's
            let mask = o.mask();
            let c = o.deflate.as_mut().expect("compression agreed");
            let opcode = if s.framed { Opcode::Continue } else { s.opcode };
            let rest = &s.payload()[s.copied..];
            let (consumed, done) = deflate::append_frame(c, rest, opcode, s.fin, mask, &mut o.out)
                .map_err(|_| Failure(WS_ERROR_INTERNAL))?;
            s.copied += consumed;
            s.framed = true;
            if done {
                s.end = Some(o.base + o.out.len() as u64);
            }
            continue;
        }
        let room = TX_CHUNK.saturating_sub(o.out.len() - o.sent).max(1);
        let from = s.copied;
        let to = s.len.min(from + room);
        let piece = &s.payload()[from..to];
        frame::append_masked(&mut o.out, piece, s.mask, from as u64);
        s.copied = to;
        if s.copied == s.len {
            s.end = Some(o.base + o.out.len() as u64);
        }
    }
}

/// Who wants the bytes that arrive.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// A pending `ws_receive`.
    User,
    /// `ws_close` waits for the peer's close frame: data is discarded.
    Drain,
    /// A client waits for the server's FIN: everything is discarded.
    Fin,
}

fn reader(o: &Open, p: &mut Pending<RecvBuf, SendOp>) -> Option<Reader> {
    if o.torn_down {
        return None;
    }
    if o.fin_by.is_some() {
        return Some(Reader::Fin);
    }
    if p.receive().is_some() {
        return Some(Reader::User);
    }
    if p.closer() == Some(Closer::Close) && o.close_written && !o.hs.close_received() {
        return Some(Reader::Drain);
    }
    None
}

/// What one read brought.
enum Read {
    /// This many bytes.
    Got(usize),
    /// Nothing now: the readiness flag is cleared.
    Nothing,
}

/// One read from the socket into `buf`; the end of the stream is a failure unless the client
/// was waiting for it (`Fin`).
fn read_some(
    o: &mut Open,
    who: Reader,
    readable: &mut bool,
    buf: &mut [u8],
) -> std::result::Result<Option<Read>, Failure> {
    match o.t.read(buf) {
        Ok(0) if who == Reader::Fin => {
            o.fin_by = None;
            o.teardown();
            Ok(None)
        }
        Ok(0) => Err(Failure(WS_ERROR_CONNECTION_ERROR)),
        // (a short read does not clear the readable flag: the end of the stream may already
        // follow the bytes read, and no new readiness would announce it; the next read finds
        // it or EAGAIN)
        Ok(n) => Ok(Some(Read::Got(n))),
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            *readable = false;
            Ok(Some(Read::Nothing))
        }
        Err(e) if e.kind() == ErrorKind::Interrupted => read_some(o, who, readable, buf),
        Err(e) => Err(io_failed(e)),
    }
}

/// Reads while someone wants bytes: the leftover of an earlier read first, then the socket —
/// a large payload straight into the caller's buffer, everything else through the loop's
/// scratch buffer.
fn read_side(
    o: &mut Open,
    p: &mut Pending<RecvBuf, SendOp>,
    readable: &mut bool,
    cx: &mut Cx<'_>,
) -> std::result::Result<(), Failure> {
    let mut drained = false; // fed the receiver once with no new input since the last read
    let mut starved = false; // the leftover ends inside a frame header: the socket must add to it
    while let Some(who) = reader(o, p) {
        if who == Reader::User {
            if let Some(c) = o.held_close.take() {
                peer_close(o, p, *c);
                continue;
            }
        }
        if who != Reader::Fin && !drained && o.receiver.has_pending_output() {
            // the rest of a compressed message that arrived whole: no socket bytes will come
            drained = true;
            feed(o, p, who, &[])?;
            continue;
        }
        if let Some(input) = if starved { None } else { o.leftover.take() } {
            let (used, wants_more) = feed(o, p, who, &input[o.left_pos..o.left_end])?;
            o.left_pos += used;
            if o.left_pos < o.left_end {
                o.leftover = Some(input);
                starved = wants_more;
            } else {
                buffers::give(input); // consumed: back to the pool
            }
            continue;
        }
        if !*readable {
            deliver_partial(p);
            return Ok(());
        }
        let direct = o.receiver.direct_len().min(usize::MAX as u64) as usize;
        if who == Reader::User && direct >= DIRECT_MIN {
            let r = p.receive().expect("a receive is pending");
            let rest = r.rest();
            let want = direct.min(rest.len());
            if want >= DIRECT_MIN {
                let n = match read_some(o, who, readable, &mut rest[..want])? {
                    Some(Read::Got(n)) => n,
                    Some(Read::Nothing) => {
                        deliver_partial(p);
                        return Ok(());
                    }
                    None => return Ok(()),
                };
                o.keepalive.seen_bytes(cx.now);
                drained = false;
                let r = p.receive().expect("a receive is pending");
                let ev = o.receiver.accept_direct(&mut r.rest()[..n]);
                match ev {
                    Ok(Event::Data { n, kind, end }) => {
                        on_data(p, n, kind, end);
                    }
                    Ok(_) => unreachable!("direct payload is always data"),
                    Err(v) => return Err(violated(o, p, v)),
                }
                continue;
            }
        }
        // an incomplete frame header left over goes first in the scratch buffer, the socket's
        // next bytes right after it
        let head = match if starved { o.leftover.take() } else { None } {
            Some(input) => {
                let head = o.left_end - o.left_pos;
                cx.scratch[..head].copy_from_slice(&input[o.left_pos..o.left_end]);
                buffers::give(input);
                head
            }
            None => 0,
        };
        let n = match read_some(o, who, readable, &mut cx.scratch[head..])? {
            Some(Read::Got(n)) => head + n,
            Some(Read::Nothing) => {
                if head > 0 {
                    o.leftover = Some(cx.scratch[..head].to_vec().into_boxed_slice());
                    (o.left_pos, o.left_end) = (0, head);
                }
                deliver_partial(p);
                return Ok(());
            }
            None => return Ok(()),
        };
        starved = false;
        o.keepalive.seen_bytes(cx.now);
        drained = false;
        if who == Reader::Fin {
            continue; // whatever the server sends after its close frame is dropped
        }
        let (used, _) = feed(o, p, who, &cx.scratch[..n])?;
        if used < n {
            // bytes for a later receive: a few are copied out; a burst keeps the loop's
            // buffer, which takes a fresh one from the pool
            o.leftover = Some(if n - used <= SMALL_LEFTOVER {
                cx.scratch[used..n].to_vec().into_boxed_slice()
            } else {
                std::mem::replace(cx.scratch, buffers::take())
            });
            (o.left_pos, o.left_end) = if n - used <= SMALL_LEFTOVER {
                (0, n - used)
            } else {
                (used, n)
            };
        }
    }
    Ok(())
}

/// A receive that got some bytes and found no more input completes with them.
fn deliver_partial(p: &mut Pending<RecvBuf, SendOp>) {
    if let Some(r) = p.receive() {
        if r.filled > 0 {
            let c = Completion::Read {
                bytes: r.filled,
                buffer_type: buffer_type(r.kind, false),
            };
            p.finish_receive(c);
        }
    }
}

/// `n` more bytes of a message in the pending receive's buffer: it completes at the message's
/// end or when its buffer is full. Returns whether it completed.
fn on_data(p: &mut Pending<RecvBuf, SendOp>, n: usize, kind: MessageKind, end: bool) -> bool {
    let Some(r) = p.receive() else { return false };
    r.filled += n;
    r.kind = kind;
    if end || r.filled == r.len {
        let c = Completion::Read {
            bytes: r.filled,
            buffer_type: buffer_type(kind, end),
        };
        p.finish_receive(c);
        return true;
    }
    false
}

/// Feeds `input` to the receiver until the reader is satisfied; returns the bytes used, and
/// whether it stopped for want of input (the rest, if any, is an incomplete frame header,
/// which the receiver leaves to be fed again with the bytes that follow it).
fn feed(
    o: &mut Open,
    p: &mut Pending<RecvBuf, SendOp>,
    who: Reader,
    input: &[u8],
) -> std::result::Result<(usize, bool), Failure> {
    let mut pos = 0;
    let mut discard = [0u8; 4096];
    // a compressed message's output can outlast its input (the decompressor still holds some
    // after filling a buffer): then the receiver makes progress with no new input
    while pos < input.len() || o.receiver.has_pending_output() {
        let r = p.receive();
        let out: &mut [u8] = match (who, r) {
            (Reader::User, Some(r)) => r.rest(),
            _ => &mut discard,
        };
        let (used, ev) = match o.receiver.feed(&input[pos..], out) {
            Ok(x) => x,
            Err(v) => return Err(violated(o, p, v)),
        };
        pos += used;
        match ev {
            None => break,
            Some(Event::Data { n, kind, end }) => {
                if who == Reader::User && on_data(p, n, kind, end) {
                    return Ok((pos, false));
                }
            }
            Some(Event::Ping(payload)) => {
                if o.pongs.len() == MAX_QUEUED_PONGS {
                    o.pongs.pop_front();
                }
                o.pongs.push_back(payload);
            }
            Some(Event::Pong) => {}
            Some(Event::Close(c)) => {
                let filled = p.receive().map_or(0, |r| r.filled);
                if who == Reader::User && filled > 0 {
                    o.held_close = Some(Box::new(c));
                    deliver_partial(p);
                } else {
                    peer_close(o, p, c);
                }
                return Ok((pos, false));
            }
        }
    }
    Ok((pos, true))
}

/// The peer's close frame: recorded, and a pending receive completes with `WS_BUFFER_CLOSE`.
fn peer_close(o: &mut Open, p: &mut Pending<RecvBuf, SendOp>, c: ControlPayload) {
    o.hs.on_close_received(c);
    p.finish_receive(Completion::Read {
        bytes: 0,
        buffer_type: BUFFER_CLOSE,
    });
}

/// A protocol violation: a close frame with its status goes out where the stream allows
/// (at a frame boundary, not after our own close frame), then the connection ends.
fn violated(o: &mut Open, p: &mut Pending<RecvBuf, SendOp>, v: Violation) -> Failure {
    let mid_frame = p.sends().iter().any(|s| s.started && s.end.is_none());
    if o.close_end.is_none() && o.close_frame.is_none() && !mid_frame {
        // frames already built stay whole; the close frame follows them at once if the
        // socket takes it, never blocking
        let payload = close::status_only(v.status);
        let mask = o.mask();
        frame::write_frame(&mut o.out, Opcode::Close, true, payload.as_slice(), mask);
        while o.sent < o.out.len() {
            match o.t.write(&o.out[o.sent..]) {
                Ok(n) if n > 0 => o.sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                _ => break,
            }
        }
        let _ = o.t.flush();
    }
    Failure(WS_ERROR_INVALID_SERVER_RESPONSE)
}

/// Fires what is due: the receive timeout (the connection stays usable), keepalive pings and
/// dead-peer detection, the send timeout, the close deadline, the client's FIN wait.
fn timers(
    o: &mut Open,
    p: &mut Pending<RecvBuf, SendOp>,
    now: Instant,
    to: &Timeouts,
) -> std::result::Result<(), Failure> {
    if let Some(by) = o.fin_by {
        if now >= by {
            o.fin_by = None;
            o.teardown();
        }
    }
    if o.torn_down {
        return Ok(());
    }
    if o.close_deadline.is_some_and(|d| now >= d) && p.closer() == Some(Closer::Close) {
        return Err(Failure(WS_ERROR_TIMEOUT));
    }
    if let (Some(since), Some(limit)) = (o.stalled_since, to.duration(Opt::SendTimeout)) {
        if now >= since + limit {
            return Err(Failure(WS_ERROR_TIMEOUT));
        }
    }
    if let Some(r) = p.receive() {
        if r.filled == 0 && r.deadline.is_some_and(|d| now >= d) {
            p.finish_receive(Completion::Failed {
                op: Operation::Receive,
                error: WS_ERROR_TIMEOUT,
            });
        }
    }
    if p.receive().is_some() && !matches!(o.hs.state(), State::Closed | State::Aborted) {
        let tick = o.keepalive.tick(
            now,
            to.duration(Opt::KeepaliveInterval),
            to.duration(Opt::KeepaliveTimeout),
        );
        match tick {
            Tick::Wait => {}
            Tick::Ping => o.ping = true,
            Tick::Dead => return Err(Failure(WS_ERROR_TIMEOUT)),
        }
    }
    Ok(())
}

/// Once both close frames have passed: a server closes TCP at once, a client waits for the
/// server's FIN first (at most 1 s, never past the close deadline); a pending `ws_close`
/// completes when TCP is closed.
fn finish_close(o: &mut Open, p: &mut Pending<RecvBuf, SendOp>, now: Instant) {
    if o.close_written && o.hs.state() == State::Closed && !o.torn_down && o.fin_by.is_none() {
        match o.role {
            Role::Server => o.teardown(),
            Role::Client => {
                let by = now + CLIENT_FIN_WAIT;
                o.fin_by = Some(o.close_deadline.map_or(by, |d| d.min(by)));
            }
        }
    }
    if o.torn_down
        && o.fin_by.is_none()
        && p.closer() == Some(Closer::Close)
        && p.sends().is_empty()
        && o.hs.state() == State::Closed
    {
        p.finish_closer(Completion::Closed);
    }
}

/// The earliest moment this connection must be driven again.
fn next_deadline(o: &Open, p: &mut Pending<RecvBuf, SendOp>, to: &Timeouts) -> Option<Instant> {
    let mut next: Option<Instant> = None;
    let mut at = |t: Option<Instant>| {
        if let Some(t) = t {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
    };
    at(o.fin_by);
    if o.torn_down {
        return next;
    }
    if p.closer() == Some(Closer::Close) {
        at(o.close_deadline);
    }
    if let Some(since) = o.stalled_since {
        at(to.duration(Opt::SendTimeout).map(|l| since + l));
    }
    if let Some(r) = p.receive() {
        if r.filled == 0 {
            at(r.deadline);
        }
        if !matches!(o.hs.state(), State::Closed | State::Aborted) {
            at(o.keepalive.due(
                to.duration(Opt::KeepaliveInterval),
                to.duration(Opt::KeepaliveTimeout),
            ));
        }
    }
    next
}
