//! The asynchronous driver (docs/async.md): event loops that move asynchronous handles
//! forward without blocking, over the same sans-IO protocol core as the blocking driver.
//!
//! A connection or listener handle becomes asynchronous through its [`Binder`]: a status
//! callback (callback mode: one of the library's I/O threads drives it) or a completion queue
//! (queue mode: the queue's own [`Loop`], driven by `ws_queue_wait`).

mod conn;
mod connect;
pub mod event_loop;
mod listen;
pub mod pending;
mod threads;

pub use conn::{RecvBuf, Session};
pub use connect::Target;
pub use event_loop::{Delivery, Loop};
pub use listen::AsyncListener;
pub use threads::on_io_thread;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result, WS_ERROR_INCORRECT_HANDLE_STATE, WS_ERROR_INVALID_OPERATION};

/// Delivers one completion to a callback (the FFI layer builds it around the C callback).
pub type StatusCallback = Arc<dyn Fn(&Delivery) + Send + Sync>;

/// Where an asynchronous handle's work is done and its completions go.
pub struct Binding {
    /// The loop that drives the handle.
    pub lp: Arc<Loop>,
    /// Callback mode: the callback; queue mode: `None`.
    pub callback: Option<StatusCallback>,
    /// `WS_OPTION_CONTEXT_VALUE`, read when a completion is delivered.
    pub context: Arc<AtomicUsize>,
    /// Queue mode: the queue's handle (0 in callback mode).
    pub queue: u64,
}

/// How a handle was made asynchronous.
enum Mode {
    Blocking,
    Callback(Arc<Binding>),
    Queue(u64, Arc<Binding>),
}

/// A connection's or listener's choice of mode, fixed once I/O begins.
pub struct Binder {
    mode: Mutex<Mode>,
    started: AtomicBool,
    context: Arc<AtomicUsize>,
}

impl Default for Binder {
    fn default() -> Self {
        Binder {
            mode: Mutex::new(Mode::Blocking),
            started: AtomicBool::new(false),
            context: Arc::new(AtomicUsize::new(0)),
        }
    }
}

fn too_late() -> Error {
    Error::new(
        WS_ERROR_INCORRECT_HANDLE_STATE,
        "the callback or queue of a handle can only change before its first ws_connect or ws_accept",
    )
}

impl Binder {
    /// `WS_OPTION_CONTEXT_VALUE`, settable at any time.
    pub fn set_context(&self, v: usize) {
        self.context.store(v, Ordering::SeqCst);
    }

    /// The context value.
    pub fn context(&self) -> usize {
        self.context.load(Ordering::SeqCst)
    }

    /// `ws_set_status_callback`: `None` makes the handle blocking again.
    pub fn set_callback(&self, cb: Option<StatusCallback>) -> Result<()> {
        let mut m = self.mode.lock();
        if self.started.load(Ordering::SeqCst) {
            return Err(too_late());
        }
        if let Mode::Queue(..) = *m {
            return Err(Error::new(
                WS_ERROR_INVALID_OPERATION,
                "this handle is bound to a completion queue; a handle has a callback or a queue, never both",
            ));
        }
        *m = match cb {
            Some(cb) => {
                if let Mode::Callback(b) = &*m {
                    b.lp.unbind();
                }
                let lp = threads::next_loop()?;
                lp.bind();
                Mode::Callback(Arc::new(Binding {
                    lp,
                    callback: Some(cb),
                    context: self.context.clone(),
                    queue: 0,
                }))
            }
            None => {
                if let Mode::Callback(b) = &*m {
                    b.lp.unbind();
                }
                Mode::Blocking
            }
        };
        Ok(())
    }

    /// `WS_OPTION_COMPLETION_QUEUE`: binds to the queue `handle` (its loop `lp`), or makes
    /// the handle blocking again with `None`.
    pub fn set_queue(&self, queue: Option<(u64, Arc<Loop>)>) -> Result<()> {
        let mut m = self.mode.lock();
        if self.started.load(Ordering::SeqCst) {
            return Err(too_late());
        }
        if let Mode::Callback(_) = *m {
            return Err(Error::new(
                WS_ERROR_INVALID_OPERATION,
                "this handle has a status callback; a handle has a callback or a queue, never both",
            ));
        }
        if let Mode::Queue(_, b) = &*m {
            b.lp.unbind();
        }
        *m = match queue {
            Some((h, lp)) => {
                lp.bind();
                Mode::Queue(
                    h,
                    Arc::new(Binding {
                        lp,
                        callback: None,
                        context: self.context.clone(),
                        queue: h,
                    }),
                )
            }
            None => Mode::Blocking,
        };
        Ok(())
    }

    /// The queue handle bound (0 for none), for `ws_query_option`.
    pub fn queue(&self) -> u64 {
        match *self.mode.lock() {
            Mode::Queue(h, _) => h,
            _ => 0,
        }
    }

    /// The binding of an asynchronous handle (`None`: blocking).
    pub fn binding(&self) -> Option<Arc<Binding>> {
        match &*self.mode.lock() {
            Mode::Blocking => None,
            Mode::Callback(b) | Mode::Queue(_, b) => Some(b.clone()),
        }
    }

    /// Makes an accepted connection asynchronous like its listener (`from`): the same queue,
    /// or the same callback on the next I/O thread; the listener's context value.
    pub fn inherit(&self, from: &Binding) -> Result<Arc<Binding>> {
        self.set_context(from.context.load(Ordering::SeqCst));
        match &from.callback {
            Some(cb) => self.set_callback(Some(cb.clone()))?,
            None => self.set_queue(Some((from.queue, from.lp.clone())))?,
        }
        Ok(self.start().expect("just bound"))
    }

    /// I/O begins: the mode is fixed from now on. Returns the binding of an asynchronous
    /// handle.
    pub fn start(&self) -> Option<Arc<Binding>> {
        let m = self.mode.lock();
        self.started.store(true, Ordering::SeqCst);
        match &*m {
            Mode::Blocking => None,
            Mode::Callback(b) | Mode::Queue(_, b) => Some(b.clone()),
        }
    }
}

/// A raw pointer that a pending operation keeps until its completion (the caller promised
/// the buffer stays valid until then).
#[derive(Clone, Copy, Debug)]
pub struct Raw<T>(pub *mut T);

// SAFETY: the pointee belongs to the C caller, who keeps it valid and untouched until the
// operation's completion; only the loop that drives the handle uses it, one thread at a time
// (under the connection's lock).
unsafe impl<T> Send for Raw<T> {}
