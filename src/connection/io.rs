//! Blocking reads and writes on the non-blocking transport: every wait has a deadline and is
//! interrupted by the handle's wake-up descriptor.

use std::io::ErrorKind;
use std::sync::atomic::{fence, AtomicBool, Ordering};

use once_cell::sync::OnceCell;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::transport::{Transport, Wait, Waker};

/// How other threads interrupt the calls blocked on a handle.
///
/// The wake-up descriptor is created by the first call that waits (an asynchronous handle,
/// which never waits, has none: one descriptor per connection, not two, so a process holds
/// twice the connections). A signal given before it exists is kept and delivered to it.
#[derive(Debug, Default)]
pub struct Signals {
    waker: OnceCell<Waker>,
    /// A wake-up signalled before the descriptor existed.
    early: AtomicBool,
    /// Set by `ws_close_handle`: every call on the handle returns `WS_ERROR_OPERATION_CANCELLED`.
    pub cancelled: AtomicBool,
}

impl Signals {
    /// New, unsignalled (no descriptor yet).
    pub fn new() -> Result<Self> {
        Ok(Signals::default())
    }

    /// The wake-up descriptor, created on first use.
    pub fn waker(&self) -> Result<&Waker> {
        let w = self.waker.get_or_try_init(|| {
            Waker::new().map_err(|e| {
                Error::from_io(
                    crate::error::WS_ERROR_NOT_ENOUGH_MEMORY,
                    "cannot create the handle's wake-up descriptor",
                    &e,
                )
            })
        })?;
        // pairs with the fence in `wake`: either it sees the descriptor or this sees `early`
        fence(Ordering::SeqCst);
        if self.early.swap(false, Ordering::SeqCst) {
            w.wake();
        }
        Ok(w)
    }

    /// Signals the wake-up descriptor (or keeps the signal until it exists).
    pub fn wake(&self) {
        if let Some(w) = self.waker.get() {
            return w.wake();
        }
        self.early.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if let Some(w) = self.waker.get() {
            // created meanwhile: a second signal is harmless, a lost one is not
            w.wake();
        }
    }

    /// Clears the signal.
    pub fn drain(&self) {
        self.early.store(false, Ordering::SeqCst);
        if let Some(w) = self.waker.get() {
            w.drain();
        }
    }

    /// Whether `ws_close_handle` was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
    /// `Err(cancelled)` once `ws_close_handle` was called.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::cancelled(
                "the handle was closed by ws_close_handle on another thread",
            ))
        } else {
            Ok(())
        }
    }
    /// Cancels every call on the handle, for good.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.wake();
    }
}

/// Waits for the socket; `Ok(false)` when the deadline passed.
pub fn wait(
    t: &Transport,
    sig: &Signals,
    readable: bool,
    writable: bool,
    deadline: Option<Instant>,
) -> Result<bool> {
    match t.wait(readable, writable, sig.waker()?, deadline) {
        Ok(Wait::Ready) => Ok(true),
        Ok(Wait::TimedOut) => Ok(false),
        // The waker is signalled by ws_close_handle (cancelled) or by ws_close taking over the
        // receiving side: either way this wait is over.
        Ok(Wait::Woken) => {
            sig.check()?;
            Err(Error::cancelled("ws_close was called on another thread"))
        }
        Err(e) => Err(Error::connection(format!("poll failed: {e}"))),
    }
}

/// How long a write may take.
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    /// A fixed deadline for the whole call (`None`: no limit).
    At(Option<Instant>),
    /// A limit on time without progress: a peer that keeps reading is never timed out
    /// (`WS_OPTION_SEND_TIMEOUT`; `None`: no limit).
    Idle(Option<Duration>),
}

impl Limit {
    /// The deadline of a wait that starts now (an idle limit restarts with every wait that
    /// follows progress).
    fn deadline(self) -> Option<Instant> {
        match self {
            Limit::At(d) => d,
            Limit::Idle(d) => d.map(|d| Instant::now() + d),
        }
    }
}

/// Writes all of `buf` before the deadline, and everything a TLS session still buffers.
/// `what` and `option` name the data and the timeout option in error details.
pub fn write_all(
    t: &Transport,
    sig: &Signals,
    buf: &[u8],
    limit: Limit,
    what: &str,
    option: &str,
) -> Result<()> {
    write_all2(t, sig, buf, &[], limit, what, option)
}

/// Writes all of `a` and then all of `b` (gathered into as few system calls as the socket
/// allows), then everything a TLS session still buffers.
pub fn write_all2(
    t: &Transport,
    sig: &Signals,
    a: &[u8],
    b: &[u8],
    limit: Limit,
    what: &str,
    option: &str,
) -> Result<()> {
    let total = a.len() + b.len();
    let mut done = 0;
    // Computed at the first wait (most writes never wait, and then read no clock), and again
    // after progress for an idle limit.
    let mut deadline = None;
    loop {
        let step = if done < a.len() {
            t.write2(&a[done..], b)
        } else if done < total {
            t.write(&b[done - a.len()..])
        } else {
            match t.flush() {
                Ok(true) => return Ok(()),
                Ok(false) => Err(ErrorKind::WouldBlock.into()),
                Err(e) => Err(e),
            }
        };
        match step {
            Ok(0) => return Err(Error::connection("the socket accepted no bytes")),
            Ok(n) => {
                done += n;
                if let Limit::Idle(_) = limit {
                    deadline = None;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                sig.check()?;
                let d = *deadline.get_or_insert_with(|| limit.deadline());
                if !wait(t, sig, false, true, d)? {
                    return Err(Error::timeout(format!(
                        "{what} could not be written within {option}: the peer is not reading"
                    )));
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                sig.check()?;
                return Err(Error::connection(format!("sending {what} failed: {e}")));
            }
        }
    }
}

/// Reads at least one byte (or 0 at end of stream) before the deadline.
pub fn read_some(
    t: &Transport,
    sig: &Signals,
    buf: &mut [u8],
    deadline: Option<Instant>,
    what: &str,
    option: &str,
) -> Result<usize> {
    loop {
        match t.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                sig.check()?;
                if !wait(t, sig, true, false, deadline)? {
                    return Err(Error::timeout(format!(
                        "{what} did not arrive within {option}"
                    )));
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                sig.check()?;
                return Err(Error::connection(format!("reading {what} failed: {e}")));
            }
        }
    }
}

/// Reads what arrives and hands it to `feed` (a sans-IO exchange) until `feed` has an
/// answer. Reads take whatever is there (up to 4 KiB): `feed` keeps the bytes that follow
/// its answer for the next layer. `eof` is the error for a stream that ends first.
pub fn read_until<T>(
    t: &Transport,
    sig: &Signals,
    deadline: Option<Instant>,
    what: &str,
    option: &str,
    eof: &dyn Fn() -> Error,
    mut feed: impl FnMut(&[u8]) -> Result<Option<T>>,
) -> Result<T> {
    let mut chunk = [0u8; 4096];
    loop {
        let n = read_some(t, sig, &mut chunk, deadline, what, option)?;
        if n == 0 {
            return Err(eof());
        }
        if let Some(answer) = feed(&chunk[..n])? {
            return Ok(answer);
        }
    }
}
