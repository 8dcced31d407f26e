//! The blocking calls on an established connection: send, receive, shutdown and close.

use std::sync::atomic::Ordering;

use super::io::{self, Limit, Signals};
use super::link::{state_name, Busy, Got, Link, TX_CHUNK};

/// Unmasked payloads at least this large are written from the caller's buffer (no copy).
const TX_GATHER_MIN: usize = 16 * 1024;
use super::options::{Opt, Timeouts};
use crate::error::{Error, Result, WS_ERROR_TIMEOUT};
use crate::protocol::close::{CloseHandshake, State};
use crate::protocol::frame::ControlPayload;
use crate::protocol::frame::{self, Opcode};
use crate::protocol::send::{Planned, SendKind};
use crate::protocol::Role;

/// One frame to put on the wire: a checked piece and its masking key (a client's).
struct Piece<'a> {
    planned: Planned,
    payload: &'a [u8],
    mask: Option<[u8; 4]>,
}

const SEND_BUSY: &str =
    "another ws_send, ws_shutdown or ws_close is in progress on this handle; at most one sending call may run at a time";

impl Link {
    fn refuse(&self, call: &str, allowed: &str) -> Error {
        Error::operation(format!(
            "{call} is allowed in {allowed}; the connection is {}",
            state_name(self.state())
        ))
    }

    /// `ws_send`: one frame, returned once every byte is handed to the OS.
    pub fn send(&self, sig: &Signals, to: &Timeouts, what: SendKind, payload: &[u8]) -> Result<()> {
        self.transmit(sig, to, &[(what, payload)], false)
    }

    /// `ws_send_batch`: every piece is checked first, then framed into the output buffer and
    /// written with as few system calls as it allows.
    pub fn send_batch(
        &self,
        sig: &Signals,
        to: &Timeouts,
        pieces: &[(SendKind, &[u8])],
    ) -> Result<()> {
        self.transmit(sig, to, pieces, true)
    }

    fn transmit(
        &self,
        sig: &Signals,
        to: &Timeouts,
        pieces: &[(SendKind, &[u8])],
        batch: bool,
    ) -> Result<()> {
        let _busy = Busy::take(&self.tx_busy, SEND_BUSY)?;
        sig.check()?;
        if !self.state().may_send() {
            return Err(self.refuse("ws_send", "OPEN and CLOSE_RECEIVED"));
        }
        let limit = Limit::Idle(to.duration(Opt::SendTimeout));
        let mut tx = self.tx.lock();
        if !self.state().may_send() {
            // aborted (a protocol violation) while we waited for the sending side
            return Err(self.refuse("ws_send", "OPEN and CLOSE_RECEIVED"));
        }
        let (one, many);
        let plans: &[Planned] = match pieces {
            [(what, payload)] if !batch => {
                // ws_send: no allocation
                one = [tx.framer.plan(*what, payload).map_err(Error::param)?];
                &one
            }
            _ => {
                many = tx
                    .framer
                    .plan_batch(pieces.iter().copied())
                    .map_err(|(i, e)| {
                        Error::param(format!("element {i}: {e}; nothing was sent"))
                    })?;
                &many
            }
        };
        // queued pongs go out first, in the same write (those queued meanwhile follow the
        // batch: flush_queued below)
        self.take_control(&mut tx.out);
        let mut result = Ok(());
        // a client's masking keys, drawn 16 at a time
        let mut keys = [[0u8; 4]; 16];
        for (i, (planned, (_, payload))) in plans.iter().zip(pieces).enumerate() {
            tx.framer.commit(*planned);
            let last = i + 1 == pieces.len();
            let mask = match self.role {
                Role::Server => None,
                Role::Client => {
                    if i % keys.len() == 0 {
                        let left = (pieces.len() - i).min(keys.len());
                        crate::protocol::mask_keys(&mut keys[..left]);
                    }
                    Some(keys[i % keys.len()])
                }
            };
            let frame = Piece {
                planned: *planned,
                payload,
                mask,
            };
            result = self.put_frame(&mut tx, sig, frame, limit, last);
            if result.is_err() {
                break;
            }
        }
        tx.trim();
        drop(tx);
        match result {
            Ok(()) => {
                self.flush_queued(sig, limit);
                Ok(())
            }
            Err(e) => Err(self.fail_send(sig, e)),
        }
    }

    /// Frames one planned piece into the output buffer (masked with `mask`, a client's).
    /// Small frames wait there for the next ones unless `last` (or the buffer is full); large
    /// ones are written at once.
    fn put_frame(
        &self,
        tx: &mut super::link::TxSide,
        sig: &Signals,
        Piece {
            planned,
            payload,
            mask,
        }: Piece,
        limit: Limit,
        last: bool,
    ) -> Result<()> {
        if Link::compresses(tx, &planned, payload.len()) {
            // (each compressed frame draws its own key)
            return self.send_compressed(tx, sig, planned, payload, limit);
        }
        frame::write_header(
            &mut tx.out,
            planned.opcode,
            planned.fin,
            payload.len() as u64,
            mask,
        );
        if mask.is_none() && payload.len() >= TX_GATHER_MIN {
            // unmasked (a server): the payload goes from the caller's buffer to the socket
            let r = io::write_all2(
                &self.t,
                sig,
                &tx.out[tx.sent..],
                payload,
                limit,
                "the message",
                "WS_OPTION_SEND_TIMEOUT",
            );
            tx.out.clear();
            tx.sent = 0;
            r
        } else if !last && tx.out.len() + payload.len() < TX_CHUNK {
            frame::append_masked(&mut tx.out, payload, mask, 0);
            Ok(())
        } else {
            self.write_pieces(tx, sig, payload, mask, limit)
        }
    }

    /// Copies (and masks) the payload into the output buffer piece by piece, so memory stays
    /// bounded whatever the message size; small messages go out in a single write.
    fn write_pieces(
        &self,
        tx: &mut super::link::TxSide,
        sig: &Signals,
        payload: &[u8],
        mask: Option<[u8; 4]>,
        limit: Limit,
    ) -> Result<()> {
        let mut offset = 0;
        loop {
            let piece = &payload[offset..payload.len().min(offset + TX_CHUNK)];
            frame::append_masked(&mut tx.out, piece, mask, offset as u64);
            offset += piece.len();
            self.write_out(tx, sig, limit, "the message")?;
            if offset == payload.len() {
                return Ok(());
            }
        }
    }

    /// A send that failed part-way leaves the stream unusable: abort.
    fn fail_send(&self, sig: &Signals, e: Error) -> Error {
        if let Err(c) = sig.check() {
            return c;
        }
        self.abort();
        if e.code == WS_ERROR_TIMEOUT {
            Error::timeout(format!("{}; the connection is aborted", e.detail))
        } else {
            e
        }
    }

    /// `ws_receive`: the next piece of a message, or the peer's close.
    pub fn receive(&self, sig: &Signals, to: &Timeouts, out: &mut [u8]) -> Result<Got> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(Error::operation(
                "ws_close has been called on this handle; use ws_shutdown when data that arrives after your close still matters",
            ));
        }
        sig.check()?;
        if !self.state().may_receive() {
            return Err(self.refuse("ws_receive", "OPEN and CLOSE_SENT"));
        }
        // Holding the receiving side is what makes a ws_receive "in progress".
        let Some(mut rx) = self.rx.try_lock() else {
            return Err(Error::operation(if self.closing.load(Ordering::SeqCst) {
                "ws_close is in progress on this handle"
            } else {
                "another ws_receive is in progress on this handle; at most one may run at a time"
            }));
        };
        let deadline = to.deadline(Opt::ReceiveTimeout);
        let got = self.next(&mut rx, sig, to, out, deadline, true);
        rx.release_if_empty(); // an idle connection holds no input buffer
        match got? {
            Some(got) => Ok(got),
            None => Err(Error::timeout(
                "nothing arrived within WS_OPTION_RECEIVE_TIMEOUT; the connection is still open and nothing was lost",
            )),
        }
    }

    /// `ws_shutdown`: sends our close frame and returns; receiving goes on.
    pub fn shutdown(&self, sig: &Signals, to: &Timeouts, payload: ControlPayload) -> Result<()> {
        let _busy = Busy::take(&self.tx_busy, SEND_BUSY)?;
        sig.check()?;
        if !self.update(CloseHandshake::commit_close) {
            return Err(self.refuse("ws_shutdown", "OPEN and CLOSE_RECEIVED"));
        }
        let limit = Limit::Idle(to.duration(Opt::SendTimeout));
        let mut tx = self.tx.lock();
        if self.state() == State::Aborted {
            // a protocol violation was answered while we waited: no second close frame
            return Err(self.refuse("ws_shutdown", "OPEN and CLOSE_RECEIVED"));
        }
        let r = self.write_control(&mut tx, sig, Opcode::Close, payload.as_slice(), limit);
        if r.is_ok() {
            self.close_written.store(true, Ordering::SeqCst);
        }
        drop(tx);
        match r {
            Ok(()) => {
                self.finish_if_closed(sig, to.deadline(Opt::SendTimeout));
                Ok(())
            }
            Err(e) => Err(self.fail_send(sig, e)),
        }
    }

    /// `ws_close`: the whole handshake under one deadline, then TCP teardown.
    pub fn close(&self, sig: &Signals, to: &Timeouts, payload: ControlPayload) -> Result<()> {
        match self.state() {
            State::Closed => {
                // The handshake is done (by ws_shutdown and ws_receive): TCP is torn down, or
                // will be by the call that completes the last step.
                self.finish_if_closed(sig, to.deadline(Opt::CloseTimeout));
                return Ok(());
            }
            State::Aborted => {
                return Err(self.refuse("ws_close", "OPEN, CLOSE_SENT, CLOSE_RECEIVED and CLOSED"))
            }
            _ => {}
        }
        let _busy = Busy::take(&self.tx_busy, SEND_BUSY)?;
        let deadline = to.deadline(Opt::CloseTimeout);
        // Take the receiving side: a ws_receive blocked on another thread returns
        // WS_ERROR_OPERATION_CANCELLED, and new ones are refused.
        self.closing.store(true, Ordering::SeqCst);
        sig.wake();
        let mut rx = self.rx.lock();
        sig.drain();
        sig.check()?;

        let result = (|| {
            if self.update(CloseHandshake::commit_close) {
                let mut tx = self.tx.lock();
                let limit = Limit::At(deadline);
                self.write_control(&mut tx, sig, Opcode::Close, payload.as_slice(), limit)?;
                self.close_written.store(true, Ordering::SeqCst);
            }
            let mut scratch = [0u8; 4096];
            while !self.hs.lock().close_received() {
                match self.next(&mut rx, sig, to, &mut scratch, deadline, false)? {
                    Some(Got::Close) => break,
                    Some(Got::Data { .. }) => {} // discarded, as WinHTTP does
                    None => {
                        return Err(Error::timeout(
                            "the peer did not answer the close frame within WS_OPTION_CLOSE_TIMEOUT; the connection is aborted",
                        ))
                    }
                }
                // pongs queued while draining go out now
                self.flush_control(&mut self.tx.lock(), sig, Limit::At(deadline))?;
            }
            Ok(())
        })();
        drop(rx);
        match result {
            Ok(()) => {
                self.finish_if_closed(sig, deadline);
                Ok(())
            }
            Err(e) => {
                sig.check()?;
                self.abort();
                Err(e)
            }
        }
    }
}
