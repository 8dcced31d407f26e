//! The pending operations of one asynchronous handle, as a plain state machine.
//!
//! This is where the asynchronous mode's rules about operations live, apart from any I/O:
//! which calls are accepted (a refusal changes nothing), that every accepted operation ends
//! with exactly one completion, that sends complete in call order, that `ws_close` cancels a
//! pending receive first, and that `ws_close_handle` cancels everything and is followed by
//! `HANDLE_CLOSING`, after which nothing more is produced. The driver (`super::conn`) owns the
//! operations' payloads through this struct and tells it what happened; the completions come
//! out in order from [`Pending::take_completions`].

use std::collections::VecDeque;

use crate::error::{
    ws_error, Error, Result, WS_ERROR_INVALID_OPERATION, WS_ERROR_OPERATION_CANCELLED,
};

/// The kinds of asynchronous operation (`WS_OPERATION_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `ws_send`.
    Send,
    /// `ws_receive`.
    Receive,
    /// `ws_close`.
    Close,
    /// `ws_shutdown`.
    Shutdown,
    /// `ws_connect`.
    Connect,
    /// `ws_accept`.
    Accept,
}

/// One completion of one handle (the status and its information).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// `ws_connect` succeeded.
    Connected,
    /// `ws_accept` succeeded: the new connection's handle.
    Accepted(u64),
    /// `ws_receive` delivered `bytes` of `buffer_type` (`WS_BUFFER_*`).
    Read {
        /// Bytes written to the caller's buffer.
        bytes: usize,
        /// `WS_BUFFER_*`.
        buffer_type: u32,
    },
    /// `ws_send` handed its frame to the OS: the bytes and buffer type it was given.
    Written {
        /// The payload's length.
        bytes: usize,
        /// `WS_BUFFER_*`.
        buffer_type: u32,
    },
    /// `ws_shutdown` succeeded.
    ShutdownDone,
    /// `ws_close` succeeded.
    Closed,
    /// An operation failed (or was cancelled).
    Failed {
        /// Which operation.
        op: Operation,
        /// What the blocking call would have returned.
        error: ws_error,
    },
    /// `ws_close_handle`: always the handle's last completion.
    HandleClosing,
}

/// `ws_shutdown` or `ws_close`, once accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closer {
    /// `ws_shutdown`: our close frame after the pending sends; receiving goes on.
    Shutdown,
    /// `ws_close`: our close frame (unless sent), then the peer's, then teardown.
    Close,
}

impl Closer {
    fn operation(self) -> Operation {
        match self {
            Closer::Shutdown => Operation::Shutdown,
            Closer::Close => Operation::Close,
        }
    }
}

/// The pending operations of one handle. `R` is a receive's payload (the caller's buffer),
/// `S` a send's (its buffer and framing).
#[derive(Debug)]
pub struct Pending<R, S> {
    /// `ws_connect` or `ws_accept`.
    opening: Option<Operation>,
    receive: Option<R>,
    sends: VecDeque<S>,
    closer: Option<Closer>,
    /// `ws_close_handle` was called: everything is over.
    released: bool,
    out: VecDeque<Completion>,
}

impl<R, S> Default for Pending<R, S> {
    fn default() -> Self {
        Pending {
            opening: None,
            receive: None,
            sends: VecDeque::new(),
            closer: None,
            released: false,
            out: VecDeque::new(),
        }
    }
}

fn refuse(detail: &str) -> Error {
    Error::new(WS_ERROR_INVALID_OPERATION, detail.to_owned())
}

impl<R, S> Pending<R, S> {
    fn check_open(&self) -> Result<()> {
        if self.released {
            // (the handle table refuses first; this guards the driver's own calls)
            return Err(refuse("the handle was passed to ws_close_handle"));
        }
        Ok(())
    }

    /// Accepts `ws_connect` or `ws_accept`: at most one at a time.
    pub fn start_opening(&mut self, op: Operation) -> Result<()> {
        self.check_open()?;
        if self.opening.is_some() {
            return Err(refuse(match op {
                Operation::Accept => "a ws_accept is already pending on this listener; at most one may be pending at a time",
                _ => "ws_connect is already pending on this handle",
            }));
        }
        self.opening = Some(op);
        Ok(())
    }

    /// Accepts `ws_receive`: at most one pending, none once `ws_close` was accepted.
    pub fn start_receive(&mut self, r: R) -> Result<()> {
        self.check_open()?;
        if self.closer == Some(Closer::Close) {
            return Err(refuse(
                "ws_close has been called on this handle; use ws_shutdown when data that arrives after your close still matters",
            ));
        }
        if self.receive.is_some() {
            return Err(refuse(
                "a ws_receive is already pending on this handle; at most one may be pending at a time",
            ));
        }
        self.receive = Some(r);
        Ok(())
    }

    /// Accepts `ws_send`: any number pending, none once a close frame is queued.
    pub fn start_send(&mut self, s: S) -> Result<()> {
        self.check_open()?;
        if self.closer.is_some() {
            return Err(refuse(
                "ws_shutdown or ws_close has been called on this handle: no data may follow the close frame",
            ));
        }
        self.sends.push_back(s);
        Ok(())
    }

    /// Accepts `ws_shutdown` or `ws_close` (one of them, once). `ws_close` cancels a pending
    /// receive at once: its completion comes first.
    pub fn start_closer(&mut self, c: Closer) -> Result<()> {
        self.check_open()?;
        if self.closer.is_some() {
            return Err(refuse(
                "ws_shutdown or ws_close is already pending on this handle",
            ));
        }
        self.closer = Some(c);
        if c == Closer::Close && self.receive.take().is_some() {
            self.emit(Completion::Failed {
                op: Operation::Receive,
                error: WS_ERROR_OPERATION_CANCELLED,
            });
        }
        Ok(())
    }

    /// `ws_close_handle`: every pending operation completes with `CANCELLED` (the receive,
    /// the sends in call order, the shutdown or close, the connect or accept), then
    /// `HANDLE_CLOSING`; nothing is produced after that. Returns the payloads, for the driver
    /// to drop.
    pub fn release(&mut self) -> (Option<R>, Vec<S>) {
        if self.released {
            return (None, Vec::new());
        }
        let taken = self.fail_all(WS_ERROR_OPERATION_CANCELLED);
        if let Some(op) = self.opening.take() {
            self.emit(Completion::Failed {
                op,
                error: WS_ERROR_OPERATION_CANCELLED,
            });
        }
        self.emit(Completion::HandleClosing);
        self.released = true;
        taken
    }

    /// Whether `ws_close_handle` was called.
    pub fn is_released(&self) -> bool {
        self.released
    }

    /// The pending connect or accept.
    pub fn opening(&self) -> Option<Operation> {
        self.opening
    }

    /// Ends the connect or accept with `c` (`Connected`, `Accepted` or `Failed`).
    pub fn finish_opening(&mut self, c: Completion) -> bool {
        self.opening.take().is_some() && self.emit(c)
    }

    /// The pending receive.
    pub fn receive(&mut self) -> Option<&mut R> {
        self.receive.as_mut()
    }

    /// Ends the pending receive with `c` (`Read` or `Failed`).
    pub fn finish_receive(&mut self, c: Completion) -> Option<R> {
        let r = self.receive.take()?;
        self.emit(c);
        Some(r)
    }

    /// The pending sends, oldest first.
    pub fn sends(&mut self) -> &mut VecDeque<S> {
        &mut self.sends
    }

    /// Ends the oldest pending send with `c` (`Written` or `Failed`).
    pub fn finish_send(&mut self, c: Completion) -> Option<S> {
        let s = self.sends.pop_front()?;
        self.emit(c);
        Some(s)
    }

    /// The pending shutdown or close.
    pub fn closer(&self) -> Option<Closer> {
        self.closer
    }

    /// Ends the shutdown or close with `c` (`ShutdownDone`, `Closed` or `Failed`). A close
    /// may end only after the sends before it.
    pub fn finish_closer(&mut self, c: Completion) -> bool {
        debug_assert!(self.sends.is_empty() || matches!(c, Completion::Failed { .. }));
        self.closer.take().is_some() && self.emit(c)
    }

    /// Ends every pending operation with `error` (the connection failed): the receive, the
    /// sends in order, then the shutdown or close. The connect or accept is left alone (a
    /// connection fails only once it is open).
    pub fn fail_all(&mut self, error: ws_error) -> (Option<R>, Vec<S>) {
        let failed = |op| Completion::Failed { op, error };
        let r = self.receive.take();
        if r.is_some() {
            self.emit(failed(Operation::Receive));
        }
        let sends: Vec<S> = self.sends.drain(..).collect();
        for _ in &sends {
            self.emit(failed(Operation::Send));
        }
        if let Some(c) = self.closer.take() {
            self.emit(failed(c.operation()));
        }
        (r, sends)
    }

    /// Whether nothing is pending.
    pub fn is_idle(&self) -> bool {
        self.opening.is_none()
            && self.receive.is_none()
            && self.sends.is_empty()
            && self.closer.is_none()
    }

    fn emit(&mut self, c: Completion) -> bool {
        if self.released {
            return false;
        }
        self.out.push_back(c);
        true
    }

    /// Completions produced so far, in order.
    pub fn take_completions(&mut self) -> VecDeque<Completion> {
        std::mem::take(&mut self.out)
    }

    /// Whether completions wait to be taken.
    pub fn has_completions(&self) -> bool {
        !self.out.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WS_ERROR_CONNECTION_ERROR;

    type P = Pending<&'static str, u32>;

    fn cancelled(op: Operation) -> Completion {
        Completion::Failed {
            op,
            error: WS_ERROR_OPERATION_CANCELLED,
        }
    }

    fn written(n: u32) -> Completion {
        Completion::Written {
            bytes: n as usize,
            buffer_type: 0,
        }
    }

    fn drain(p: &mut P) -> Vec<Completion> {
        p.take_completions().into_iter().collect()
    }

    #[test]
    fn one_receive_many_sends_in_call_order() {
        let mut p = P::default();
        p.start_receive("buf").unwrap();
        let e = p.start_receive("other").unwrap_err();
        assert_eq!(e.code, WS_ERROR_INVALID_OPERATION);
        assert_eq!(
            p.receive().copied(),
            Some("buf"),
            "the refusal changed nothing"
        );
        for n in 1..=5 {
            p.start_send(n).unwrap();
        }
        assert!(drain(&mut p).is_empty(), "nothing completes when started");
        // the driver finishes them front to back
        while let Some(&n) = p.sends().front() {
            assert_eq!(p.finish_send(written(n)), Some(n));
        }
        assert_eq!(drain(&mut p), (1..=5).map(written).collect::<Vec<_>>());
        let read = Completion::Read {
            bytes: 3,
            buffer_type: 2,
        };
        assert_eq!(p.finish_receive(read), Some("buf"));
        assert_eq!(p.finish_receive(read), None, "a receive ends once");
        assert_eq!(drain(&mut p), vec![read]);
        assert!(p.is_idle());
        // a new receive may start once the last one completed
        p.start_receive("again").unwrap();
    }

    #[test]
    fn shutdown_and_close_follow_pending_sends() {
        for closer in [Closer::Shutdown, Closer::Close] {
            let mut p = P::default();
            p.start_send(1).unwrap();
            p.start_send(2).unwrap();
            p.start_closer(closer).unwrap();
            // nothing more may be queued behind the close frame
            assert_eq!(
                p.start_send(3).unwrap_err().code,
                WS_ERROR_INVALID_OPERATION
            );
            for c in [Closer::Shutdown, Closer::Close] {
                assert_eq!(
                    p.start_closer(c).unwrap_err().code,
                    WS_ERROR_INVALID_OPERATION
                );
            }
            assert_eq!(p.sends().len(), 2);
            assert_eq!(p.closer(), Some(closer));
            p.finish_send(written(1));
            p.finish_send(written(2));
            let done = match closer {
                Closer::Shutdown => Completion::ShutdownDone,
                Closer::Close => Completion::Closed,
            };
            assert!(p.finish_closer(done));
            assert_eq!(drain(&mut p), vec![written(1), written(2), done]);
        }
    }

    #[test]
    fn close_cancels_a_pending_receive_first_and_shutdown_leaves_it() {
        let mut p = P::default();
        p.start_receive("buf").unwrap();
        p.start_closer(Closer::Shutdown).unwrap();
        assert!(
            drain(&mut p).is_empty(),
            "shutdown leaves the receive pending"
        );
        assert!(p.receive().is_some());

        let mut p = P::default();
        p.start_receive("buf").unwrap();
        p.start_send(7).unwrap();
        p.start_closer(Closer::Close).unwrap();
        assert_eq!(drain(&mut p), vec![cancelled(Operation::Receive)]);
        assert_eq!(
            p.start_receive("late").unwrap_err().code,
            WS_ERROR_INVALID_OPERATION,
            "no receive once ws_close was accepted"
        );
        p.finish_send(written(7));
        assert!(p.finish_closer(Completion::Closed));
        assert_eq!(drain(&mut p), vec![written(7), Completion::Closed]);
    }

    #[test]
    fn release_cancels_everything_then_handle_closing_then_nothing() {
        let mut p = P::default();
        p.start_receive("buf").unwrap();
        p.start_send(1).unwrap();
        p.start_send(2).unwrap();
        p.start_closer(Closer::Shutdown).unwrap();
        let (r, sends) = p.release();
        assert_eq!((r, sends), (Some("buf"), vec![1, 2]));
        assert_eq!(
            drain(&mut p),
            vec![
                cancelled(Operation::Receive),
                cancelled(Operation::Send),
                cancelled(Operation::Send),
                cancelled(Operation::Shutdown),
                Completion::HandleClosing,
            ]
        );
        // nothing after HANDLE_CLOSING, whatever the driver reports late
        assert_eq!(p.release(), (None, vec![]));
        assert!(!p.finish_closer(Completion::ShutdownDone));
        assert!(p
            .finish_receive(Completion::Read {
                bytes: 0,
                buffer_type: 4
            })
            .is_none());
        assert!(p.start_send(3).is_err() && p.start_receive("x").is_err());
        assert!(drain(&mut p).is_empty());

        // a handle that never started anything still gets HANDLE_CLOSING
        let mut idle = P::default();
        idle.release();
        assert_eq!(drain(&mut idle), vec![Completion::HandleClosing]);

        // a pending connect or accept is cancelled too
        let mut c = P::default();
        c.start_opening(Operation::Connect).unwrap();
        assert!(c.start_opening(Operation::Connect).is_err());
        c.release();
        assert_eq!(
            drain(&mut c),
            vec![cancelled(Operation::Connect), Completion::HandleClosing]
        );
    }

    #[test]
    fn completions_already_produced_stay_before_handle_closing() {
        let mut p = P::default();
        p.start_send(1).unwrap();
        p.finish_send(written(1));
        p.release();
        assert_eq!(drain(&mut p), vec![written(1), Completion::HandleClosing]);
    }

    #[test]
    fn a_failed_connection_fails_each_pending_operation_once() {
        let mut p = P::default();
        p.start_receive("buf").unwrap();
        p.start_send(1).unwrap();
        p.start_closer(Closer::Shutdown).unwrap();
        let failed = |op| Completion::Failed {
            op,
            error: WS_ERROR_CONNECTION_ERROR,
        };
        p.fail_all(WS_ERROR_CONNECTION_ERROR);
        assert_eq!(
            drain(&mut p),
            vec![
                failed(Operation::Receive),
                failed(Operation::Send),
                failed(Operation::Shutdown)
            ]
        );
        assert!(p.is_idle());
        p.release();
        assert_eq!(drain(&mut p), vec![Completion::HandleClosing]);
    }

    #[test]
    fn exactly_one_completion_per_accepted_operation() {
        // a seeded walk of random calls and driver events: every accepted operation
        // completes once, refused ones never, HANDLE_CLOSING last
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let mut p = P::default();
            let mut accepted = 0usize;
            let mut completed = 0usize;
            for _ in 0..40 {
                let ok = match next() % 9 {
                    0 => p.start_receive("r").is_ok(),
                    1 | 2 => p.start_send(1).is_ok(),
                    3 => p.start_closer(Closer::Shutdown).is_ok(),
                    4 => p.start_closer(Closer::Close).is_ok(),
                    5 => {
                        p.finish_receive(Completion::Read {
                            bytes: 1,
                            buffer_type: 0,
                        });
                        false
                    }
                    6 => {
                        p.finish_send(written(1));
                        false
                    }
                    7 => {
                        if p.sends().is_empty() {
                            p.finish_closer(Completion::ShutdownDone);
                        }
                        false
                    }
                    _ => {
                        if next() % 4 == 0 {
                            p.fail_all(WS_ERROR_CONNECTION_ERROR);
                        }
                        false
                    }
                };
                accepted += usize::from(ok);
                completed += p.take_completions().len();
            }
            p.release();
            let rest: Vec<_> = p.take_completions().into_iter().collect();
            assert_eq!(rest.last(), Some(&Completion::HandleClosing));
            completed += rest.len() - 1;
            assert_eq!(accepted, completed);
        }
    }
}
