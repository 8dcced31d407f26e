//! An established connection: the protocol core driven over the transport.
//!
//! The two directions are separate: the receiving side (parser, input buffer) is owned by
//! whoever receives — `ws_receive`, or `ws_close` while it drains — and the sending side
//! (framer, output buffer) by whoever sends. The close handshake is small and shared.
//!
//! Lock order: `rx` before `tx`, and the receiving side only ever *tries* to take `tx`
//! (pongs are queued and flushed by whoever holds it), so a blocked sender can never stall a
//! receiver. No lock is held while polling except the side's own.

use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::io::{self, write_all, Limit, Signals};
use super::options::{Opt, Timeouts};
use crate::error::{Error, Result};
use crate::protocol::close::{self, CloseHandshake, State};
use crate::protocol::deflate::Compressor;
use crate::protocol::frame::{self, ControlPayload, Opcode};
use crate::protocol::keepalive::{Keepalive, Tick};
use crate::protocol::recv::{Event, Receiver};
use crate::protocol::send::Framer;
use crate::protocol::{MessageKind, Role, Violation};
use crate::transport::{buffers, Transport};

/// After a send, an output buffer larger than this (a large masked message) is released, so
/// an idle connection keeps at most this much for its next small frames.
const TX_KEEP: usize = 4 * 1024;
/// Payload at least this large is read straight into the caller's buffer.
const DIRECT_MIN: usize = 16 * 1024;
/// The header of a frame with a 64-bit length, unmasked (a server's masked ones have 4 more).
const BULK_HEADER_LEN: usize = 10;
/// Large payloads are masked and written in pieces of this size, so memory stays bounded
/// (and is released after the send). 1 MiB rather than 256 KiB: a quarter of the system calls
/// for bulk client sends, and a peer that reads more per wake-up (measured: 6,312 system calls
/// per GiB of 1 MiB messages instead of 23,355, `strace -f -c wsbench profile bulk`).
pub(super) const TX_CHUNK: usize = 1024 * 1024;
/// How long a client waits for the server to close TCP after the close handshake
/// (RFC 6455 §7.1.1), never past the call's deadline.
const CLIENT_FIN_WAIT: Duration = Duration::from_secs(1);

/// How long a receiver that found a protocol violation waits for a sender to finish its frame
/// before it gives up on sending the close frame (a sender between two messages releases the
/// sending side within microseconds; one blocked by a peer that does not read never does).
const VIOLATION_TX_WAIT: Duration = Duration::from_millis(50);

/// What a receive produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Got {
    /// `n` bytes of a data message; `end` on its last piece.
    Data {
        /// Bytes written to the caller's buffer.
        n: usize,
        /// Text or binary.
        kind: MessageKind,
        /// The message is complete.
        end: bool,
    },
    /// The peer's close frame.
    Close,
}

pub(super) struct RxSide {
    pub(super) receiver: Receiver,
    /// Taken from [`buffers`] when a read needs it, given back when it holds no unread bytes
    /// (empty: none held).
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// A close frame held back because data was returned first.
    pending_close: Option<ControlPayload>,
    keepalive: Keepalive,
    /// The last read left the socket empty: poll before the next read.
    poll_first: bool,
    /// The last frame was larger than the input buffer and read straight into the caller's
    /// buffer: the next frame is probably large too, so its header is read alone (then its
    /// payload goes straight to the caller as well, instead of up to 64 KiB of it through the
    /// input buffer). Smaller frames keep one read per message (a 16 KiB ping-pong would
    /// otherwise pay a second read to save a 16 KiB copy).
    bulk: bool,
}

pub(super) struct TxSide {
    pub(super) framer: Framer,
    pub(super) out: Vec<u8>,
    /// How much of `out` is already on the wire (a control frame the receiver could only
    /// partly write without blocking).
    pub(super) sent: usize,
    /// permessage-deflate's sending state, when agreed (see `compressed.rs`).
    pub(super) deflate: Option<Compressor>,
}

/// At most this many pongs wait to be sent; a peer that pings faster than we can write
/// loses the oldest answers (RFC 6455 §5.5.3 allows answering only the latest ping).
const MAX_QUEUED_PONGS: usize = 16;

#[derive(Default)]
struct PendingControl {
    pongs: std::collections::VecDeque<ControlPayload>,
    ping: bool,
}

/// Marks a kind of call as in progress on a handle; a second one is refused.
pub(super) struct Busy<'a>(&'a AtomicBool);

impl<'a> Busy<'a> {
    pub(super) fn take(flag: &'a AtomicBool, detail: &str) -> Result<Busy<'a>> {
        if flag
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(Error::operation(detail));
        }
        Ok(Busy(flag))
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// An established WebSocket connection.
pub struct Link {
    pub(super) t: Transport,
    pub(super) role: Role,
    pub(super) rx: Mutex<RxSide>,
    pub(super) tx: Mutex<TxSide>,
    /// The close handshake; change it only through [`Link::update`].
    pub(super) hs: Mutex<CloseHandshake>,
    /// `hs.state()`, readable without the lock (the hot paths check it on every call).
    state: AtomicU8,
    control: Mutex<PendingControl>,
    /// Control frames are queued, or `tx.out` holds bytes not yet written.
    tx_dirty: AtomicBool,
    pub(super) tx_busy: AtomicBool,
    /// `ws_close` has started: receives are refused from now on.
    pub(super) closing: AtomicBool,
    /// Our close frame is completely on the wire.
    pub(super) close_written: AtomicBool,
    torn_down: AtomicBool,
    /// One call performs the final teardown.
    finishing: AtomicBool,
}

/// The C name of a state, for error details.
pub fn state_name(s: State) -> &'static str {
    match s {
        State::None => "NONE",
        State::Connecting => "CONNECTING",
        State::Open => "OPEN",
        State::CloseSent => "CLOSE_SENT",
        State::CloseReceived => "CLOSE_RECEIVED",
        State::Closed => "CLOSED",
        State::Aborted => "ABORTED",
    }
}

impl Link {
    /// Wraps an upgraded transport. `leftover` holds bytes that arrived after the upgrade.
    pub fn new(t: Transport, role: Role, max_message: u64, leftover: &[u8]) -> Link {
        let mut rx = RxSide {
            receiver: Receiver::new(role, max_message),
            buf: Box::default(),
            start: 0,
            end: 0,
            pending_close: None,
            keepalive: Keepalive::new(Instant::now()),
            poll_first: false,
            bulk: false,
        };
        if !leftover.is_empty() {
            rx.buf = if leftover.len() <= buffers::BUF_SIZE {
                buffers::take()
            } else {
                vec![0; leftover.len()].into_boxed_slice()
            };
            rx.buf[..leftover.len()].copy_from_slice(leftover);
            rx.end = leftover.len();
        }
        Link {
            t,
            role,
            rx: Mutex::new(rx),
            tx: Mutex::new(TxSide {
                framer: Framer::default(),
                out: Vec::new(),
                sent: 0,
                deflate: None,
            }),
            hs: Mutex::new(CloseHandshake::default()),
            state: AtomicU8::new(State::Open as u8),
            control: Mutex::new(PendingControl::default()),
            tx_dirty: AtomicBool::new(false),
            tx_busy: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            close_written: AtomicBool::new(false),
            torn_down: AtomicBool::new(false),
            finishing: AtomicBool::new(false),
        }
    }

    /// The connection's state.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Changes the close handshake (and the state others read without the lock).
    pub(super) fn update<R>(&self, f: impl FnOnce(&mut CloseHandshake) -> R) -> R {
        let mut hs = self.hs.lock();
        let r = f(&mut hs);
        self.state.store(hs.state() as u8, Ordering::Release);
        r
    }

    /// A fresh masking key for a client, none for a server.
    pub(super) fn mask(&self) -> Option<[u8; 4]> {
        match self.role {
            Role::Client => Some(crate::protocol::mask_key()),
            Role::Server => None,
        }
    }

    /// Ends the connection: nothing more passes either way.
    pub fn abort(&self) {
        self.update(|hs| hs.abort());
        self.teardown_now();
    }

    pub(super) fn teardown_now(&self) {
        self.torn_down.store(true, Ordering::SeqCst);
        self.t.shutdown();
    }

    /// The transport failed: abort and describe it (or report the cancellation that caused it).
    pub(super) fn lost(&self, sig: &Signals, detail: String) -> Error {
        if let Err(e) = sig.check() {
            return e;
        }
        self.abort();
        Error::connection(detail)
    }

    /// The peer broke the protocol: answer with a close frame where the transport allows it
    /// at once, then abort. It allows it when the sending side is free within
    /// [`VIOLATION_TX_WAIT`] (nothing may come between a frame's bytes, and a sender blocked
    /// by a peer that does not read would hold us for its whole timeout) and the socket takes
    /// the frame without waiting. The violation is reported at once either way; a blocked
    /// sender fails when the transport is torn down.
    fn violated(&self, sig: &Signals, v: Violation) -> Error {
        self.update(|hs| hs.abort());
        // A close frame already on the wire (ws_shutdown) is not followed by a second one; a
        // sender that has not started sees ABORTED and sends nothing.
        if let Some(mut tx) = self.tx.try_lock_for(VIOLATION_TX_WAIT) {
            if !self.close_written.load(Ordering::SeqCst) {
                let payload = close::status_only(v.status);
                let now = Limit::At(Some(Instant::now()));
                let _ = self.write_control(&mut tx, sig, Opcode::Close, payload.as_slice(), now);
            }
            self.teardown_now(); // still holding tx: nothing can follow the close frame
        } else {
            self.teardown_now();
        }
        if let Err(e) = sig.check() {
            return e;
        }
        Error::peer(format!(
            "{} (the connection was failed with close status {})",
            v.detail, v.status
        ))
    }

    fn queue_control(&self, f: impl FnOnce(&mut PendingControl)) {
        f(&mut self.control.lock());
        self.tx_dirty.store(true, Ordering::SeqCst);
    }

    /// Moves queued control frames into `out`, after any unsent bytes.
    pub(super) fn take_control(&self, out: &mut Vec<u8>) {
        // a plain load first: the common case (nothing queued) costs no atomic write
        if !self.tx_dirty.load(Ordering::SeqCst) || !self.tx_dirty.swap(false, Ordering::SeqCst) {
            return;
        }
        let mut c = self.control.lock();
        for p in c.pongs.drain(..) {
            frame::write_frame(out, Opcode::Pong, true, p.as_slice(), self.mask());
        }
        if std::mem::take(&mut c.ping) {
            frame::write_frame(out, Opcode::Ping, true, b"", self.mask());
        }
    }

    /// Writes queued control frames and then `opcode`'s frame, blocking until the deadline.
    pub(super) fn write_control(
        &self,
        tx: &mut TxSide,
        sig: &Signals,
        opcode: Opcode,
        payload: &[u8],
        limit: Limit,
    ) -> Result<()> {
        self.take_control(&mut tx.out);
        frame::write_frame(&mut tx.out, opcode, true, payload, self.mask());
        self.write_out(tx, sig, limit, "the close frame")
    }

    /// Writes everything in `tx.out` (blocking) and empties it.
    pub(super) fn write_out(
        &self,
        tx: &mut TxSide,
        sig: &Signals,
        limit: Limit,
        what: &str,
    ) -> Result<()> {
        let r = write_all(
            &self.t,
            sig,
            &tx.out[tx.sent..],
            limit,
            what,
            "WS_OPTION_SEND_TIMEOUT",
        );
        tx.out.clear();
        tx.sent = 0;
        r
    }

    /// Writes queued control frames (blocking).
    pub(super) fn flush_control(&self, tx: &mut TxSide, sig: &Signals, limit: Limit) -> Result<()> {
        self.take_control(&mut tx.out);
        if tx.out.is_empty() {
            return Ok(());
        }
        self.write_out(tx, sig, limit, "a pong")
    }

    /// After releasing `tx`: flush control frames queued while it was held.
    pub(super) fn flush_queued(&self, sig: &Signals, limit: Limit) {
        if !self.tx_dirty.load(Ordering::SeqCst) {
            return;
        }
        if let Some(mut tx) = self.tx.try_lock() {
            if self.flush_control(&mut tx, sig, limit).is_err() {
                drop(tx);
                self.abort();
            }
        }
    }

    /// The receiver's non-blocking flush of queued control frames. Returns whether bytes are
    /// left to write (then the caller polls for writability too).
    fn service_tx(&self) -> bool {
        if !self.tx_dirty.load(Ordering::SeqCst) {
            // a TLS session may still hold records of a frame written without blocking
            return matches!(self.t.flush(), Ok(false));
        }
        let Some(mut tx) = self.tx.try_lock() else {
            return false; // the holder flushes when it releases
        };
        if tx.sent == tx.out.len() {
            // New control frames only once the previous ones are out: a peer that pings
            // without reading cannot grow this buffer (the queue itself is bounded).
            tx.out.clear();
            tx.sent = 0;
            self.take_control(&mut tx.out);
        }
        while tx.sent < tx.out.len() {
            let sent = tx.sent;
            match self.t.write(&tx.out[sent..]) {
                Ok(n) if n > 0 => tx.sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                _ => break, // would block, or failed: the next write reports it
            }
        }
        if tx.sent == tx.out.len() {
            tx.out.clear();
            tx.sent = 0;
            matches!(self.t.flush(), Ok(false))
        } else {
            self.tx_dirty.store(true, Ordering::SeqCst);
            true
        }
    }

    /// Records the peer's close frame.
    fn on_peer_close(&self, p: ControlPayload, sig: &Signals, deadline: Option<Instant>) {
        self.update(|hs| hs.on_close_received(p));
        self.finish_if_closed(sig, deadline);
    }

    /// TCP teardown once both close frames have passed (RFC 6455 §7.1.1), by whichever call
    /// completed the handshake: a server closes TCP at once; a client waits for the server's
    /// FIN, at most 1 s and never past `deadline`, then closes.
    pub(super) fn finish_if_closed(&self, sig: &Signals, deadline: Option<Instant>) {
        if !self.close_written.load(Ordering::SeqCst)
            || self.state() != State::Closed
            || self.finishing.swap(true, Ordering::SeqCst)
        {
            return;
        }
        if self.role == Role::Client && !self.is_torn_down() {
            let fin_by = Instant::now() + CLIENT_FIN_WAIT;
            let fin_by = deadline.map_or(fin_by, |d| d.min(fin_by));
            let mut scratch = [0u8; 1024];
            while let Ok(n) = io::read_some(&self.t, sig, &mut scratch, Some(fin_by), "FIN", "") {
                // a server that keeps sending after its close frame does not hold us past
                // fin_by either
                if n == 0 || Instant::now() >= fin_by {
                    break;
                }
            }
        }
        self.teardown_now();
    }

    /// Whether the transport was already shut down.
    pub(super) fn is_torn_down(&self) -> bool {
        self.torn_down.load(Ordering::SeqCst)
    }

    fn keepalive_due(&self, rx: &RxSide, to: &Timeouts) -> Option<Instant> {
        // After our close (CLOSE_SENT) pings go on: RFC 6455 forbids only data frames after a
        // close frame, and without them a peer that vanished after ws_shutdown would keep the
        // receive waiting forever.
        if matches!(self.state(), State::Closed | State::Aborted) {
            return None;
        }
        rx.keepalive.due(
            to.duration(Opt::KeepaliveInterval),
            to.duration(Opt::KeepaliveTimeout),
        )
    }

    /// Sends a keepalive ping when one is due, or fails a peer that did not answer in time.
    fn keepalive_tick(&self, rx: &mut RxSide, sig: &Signals, to: &Timeouts) -> Result<()> {
        if matches!(self.state(), State::Closed | State::Aborted) {
            return Ok(());
        }
        let tick = rx.keepalive.tick(
            Instant::now(),
            to.duration(Opt::KeepaliveInterval),
            to.duration(Opt::KeepaliveTimeout),
        );
        match tick {
            Tick::Wait => {}
            Tick::Ping => self.queue_control(|c| c.ping = true),
            Tick::Dead => {
                sig.check()?;
                self.abort();
                return Err(Error::timeout(
                    "the peer sent nothing within WS_OPTION_KEEPALIVE_TIMEOUT after a keepalive ping; the connection is aborted",
                ));
            }
        }
        Ok(())
    }

    /// Receives the next piece of data or the close frame into `out` (not empty).
    ///
    /// `user` is set for `ws_receive`: then `ws_close` on another thread cancels the call and
    /// keepalive pings are sent while it waits; `ws_close`'s own drain clears it.
    pub(super) fn next(
        &self,
        rx: &mut RxSide,
        sig: &Signals,
        to: &Timeouts,
        out: &mut [u8],
        deadline: Option<Instant>,
        user: bool,
    ) -> Result<Option<Got>> {
        let mut filled = 0usize;
        let mut kind = MessageKind::Binary;
        let mut looped = false; // this call has read from the socket and found no data yet
        loop {
            sig.check()?;
            if user && self.closing.load(Ordering::SeqCst) {
                return Err(Error::cancelled("ws_close was called on another thread"));
            }
            if let Some(p) = rx.pending_close.take() {
                self.on_peer_close(p, sig, deadline);
                return Ok(Some(Got::Close));
            }
            while rx.start < rx.end || rx.receiver.has_pending_output() {
                let (used, ev) = rx
                    .receiver
                    .feed(&rx.buf[rx.start..rx.end], &mut out[filled..])
                    .map_err(|v| self.violated(sig, v))?;
                rx.start += used;
                match ev {
                    None => break,
                    Some(Event::Data { n, kind: k, end }) => {
                        filled += n;
                        kind = k;
                        if end || filled == out.len() {
                            return Ok(Some(Got::Data {
                                n: filled,
                                kind,
                                end,
                            }));
                        }
                    }
                    Some(Event::Ping(p)) => self.queue_control(|c| {
                        if c.pongs.len() == MAX_QUEUED_PONGS {
                            c.pongs.pop_front();
                        }
                        c.pongs.push_back(p);
                    }),
                    Some(Event::Pong) => {}
                    Some(Event::Close(p)) if filled > 0 => {
                        rx.pending_close = Some(p);
                        return Ok(Some(Got::Data {
                            n: filled,
                            kind,
                            end: false,
                        }));
                    }
                    Some(Event::Close(p)) => {
                        self.on_peer_close(p, sig, deadline);
                        return Ok(Some(Got::Close));
                    }
                }
            }
            if filled > 0 {
                return Ok(Some(Got::Data {
                    n: filled,
                    kind,
                    end: false,
                }));
            }
            // The deadline holds however fast the peer sends. A peer that keeps the socket
            // readable (a ping flood, data that ws_close discards) never lets a wait time out,
            // so check before reading again: in ws_close's drain, which calls this once per
            // piece, before every read; in ws_receive, once a read brought nothing to deliver.
            if (looped || !user) && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            let want_write = self.service_tx();
            // Large payload goes straight into the caller's buffer; everything else through
            // the input buffer, where one read can bring in many frames.
            let direct = rx.receiver.direct_len().min(out.len() as u64) as usize;
            let read = if rx.poll_first {
                // The last read found the socket drained: wait before reading, which saves
                // a read that would only say "nothing yet" (one system call per round trip).
                rx.poll_first = false;
                Err(ErrorKind::WouldBlock.into())
            } else if rx.start == rx.end && direct >= DIRECT_MIN {
                // a frame too large for the input buffer: its successor's header is read alone
                let large = rx.receiver.direct_len() >= buffers::BUF_SIZE as u64;
                match self.t.read(&mut out[..direct]) {
                    Ok(n) if n > 0 => {
                        // less than asked for: the socket is drained, so the next read of
                        // this stream polls first instead of failing once with EAGAIN
                        rx.poll_first = n < direct && !self.t.is_tls();
                        rx.bulk = large;
                        rx.seen_bytes();
                        return match rx.receiver.accept_direct(&mut out[..n]) {
                            Ok(Event::Data { n, kind, end }) => {
                                Ok(Some(Got::Data { n, kind, end }))
                            }
                            Ok(_) => unreachable!("direct payload is always data"),
                            Err(v) => Err(self.violated(sig, v)),
                        };
                    }
                    other => other,
                }
            } else {
                rx.make_room();
                let end = rx.end;
                // Header alone: nothing buffered, between frames, after a large frame, for a
                // caller whose buffer takes a large payload directly. A guess only: a shorter
                // header leaves a few payload bytes in the buffer, a longer one reads on.
                let header_only = std::mem::take(&mut rx.bulk)
                    && rx.start == rx.end
                    && out.len() >= DIRECT_MIN
                    && rx.receiver.direct_len() == 0;
                let want = if header_only {
                    BULK_HEADER_LEN + usize::from(self.role == Role::Server) * 4
                } else {
                    rx.buf.len() - end
                };
                match self.t.read(&mut rx.buf[end..end + want]) {
                    Ok(n) if n > 0 => {
                        // (TLS may hold decrypted bytes the socket cannot show: no guessing)
                        rx.poll_first = n < want && !self.t.is_tls();
                        rx.end += n;
                        rx.seen_bytes();
                        looped = true;
                        continue;
                    }
                    other => other,
                }
            };
            match read {
                Ok(_) => {
                    return Err(self.lost(
                        sig,
                        "the peer closed the TCP connection without a close frame".into(),
                    ))
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.lost(sig, format!("the connection failed: {e}"))),
            }
            let keepalive = if user {
                self.keepalive_due(rx, to)
            } else {
                None
            };
            rx.release_if_empty(); // about to wait: hold no buffer meanwhile
            let wake_at = match (deadline, keepalive) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if !io::wait(&self.t, sig, true, want_write, wake_at)? {
                if user {
                    self.keepalive_tick(rx, sig, to)?;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(None);
                }
            }
        }
    }
}

impl RxSide {
    fn seen_bytes(&mut self) {
        self.keepalive.seen_bytes(Instant::now());
    }

    /// Makes room at the end of the input buffer (taking one from the pool when none is
    /// held). Only a partial frame header (under 14 bytes) is ever left over, so moving it
    /// costs little.
    fn make_room(&mut self) {
        if self.buf.is_empty() {
            self.buf = buffers::take();
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < frame::MAX_HEADER_LEN {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Gives the input buffer back to the pool when it holds no unread bytes: when a receive
    /// returns (an idle connection holds none) and before a wait.
    pub(super) fn release_if_empty(&mut self) {
        if self.start == self.end && !self.buf.is_empty() {
            buffers::give(std::mem::take(&mut self.buf));
            self.start = 0;
            self.end = 0;
        }
    }
}

impl TxSide {
    /// Releases an output buffer that a large message grew (after the send).
    pub(super) fn trim(&mut self) {
        if self.sent == self.out.len() && self.out.capacity() > TX_KEEP {
            self.out = Vec::new();
            self.sent = 0;
        }
    }
}
