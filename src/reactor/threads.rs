//! Callback mode: a few library I/O threads, each driving its own [`Loop`] for ever and
//! delivering its completions to the handles' callbacks. A handle is assigned to one loop
//! when it gets its callback, so its callbacks come from one thread, one at a time, in order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use once_cell::sync::OnceCell;

use super::event_loop::Loop;
use crate::error::{Error, Result, WS_ERROR_NOT_ENOUGH_MEMORY};

/// At most this many I/O threads (fewer on machines with fewer cores).
const MAX_THREADS: usize = 4;

static POOL: OnceCell<Vec<Arc<Loop>>> = OnceCell::new();

thread_local! {
    /// This thread is one of the I/O threads (it runs callbacks).
    static IO_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread is a callback-mode I/O thread (`ws_queue_wait` is refused
/// there: a callback must not block its thread's other handles).
pub fn on_io_thread() -> bool {
    IO_THREAD.try_with(|t| t.get()).unwrap_or(false)
}
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn start() -> Result<Vec<Arc<Loop>>> {
    let n = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS);
    let mut loops = Vec::with_capacity(n);
    for i in 0..n {
        let lp = Loop::new()?;
        let mine = lp.clone();
        std::thread::Builder::new()
            .name(format!("wshandle-io-{i}"))
            .spawn(move || run(&mine))
            .map_err(|e| {
                Error::from_io(WS_ERROR_NOT_ENOUGH_MEMORY, "cannot start an I/O thread", &e)
            })?;
        loops.push(lp);
    }
    Ok(loops)
}

/// The loop for the next callback-mode handle (round robin; the threads start on first use).
pub fn next_loop() -> Result<Arc<Loop>> {
    let pool = POOL.get_or_try_init(start)?;
    let i = NEXT.fetch_add(1, Ordering::Relaxed) % pool.len();
    Ok(pool[i].clone())
}

fn run(lp: &Arc<Loop>) {
    IO_THREAD.with(|t| t.set(true));
    loop {
        lp.turn(None);
        for d in lp.take_all() {
            if let Some(cb) = &d.binding.callback {
                cb(&d);
            }
            if d.completion == super::pending::Completion::HandleClosing {
                lp.unbind();
            }
        }
    }
}
