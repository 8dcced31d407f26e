//! One event loop: a mio `Poll`, its wake-up and kick descriptors, a timerfd, one timer heap,
//! the entries it drives and the FIFO of completions it produced (docs/async.md).
//!
//! Whoever drives the loop (the thread in `ws_queue_wait`, or a library I/O thread) runs
//! [`Loop::turn`]; other threads only [`Loop::post`] work to it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};
use parking_lot::Mutex;

use super::pending::Completion;
use super::Binding;
use crate::error::{Error, Result, WS_ERROR_INVALID_OPERATION, WS_ERROR_NOT_ENOUGH_MEMORY};
use crate::transport::{buffers, Waker};

const WAKE: Token = Token(usize::MAX);
const KICK: Token = Token(usize::MAX - 1);
const TIMER: Token = Token(usize::MAX - 2);

/// Nobody drives the loop: a post must signal the fd.
const IDLE: u8 = 0;
/// A driver is running and drains posts before it sleeps.
const ACTIVE: u8 = 1;
/// A driver is (about to be) asleep in the poller.
const SLEEPING: u8 = 2;

/// Something the loop drives: a connection, a listener, a handshake in progress.
pub trait Driven: Send + Sync {
    /// Moves forward after readiness, a post or a due timer. Never blocks.
    fn drive(&self, cx: &mut Cx<'_>);
}

/// One completion on its way to the caller.
pub struct Delivery {
    /// The handle it belongs to.
    pub handle: u64,
    /// The handle's binding (callback and context).
    pub binding: Arc<Binding>,
    /// What happened.
    pub completion: Completion,
}

/// Work posted to a loop from any thread.
pub enum Posted {
    /// Drive this entry.
    Token(usize),
    /// Deliver `HANDLE_CLOSING` for a handle the loop never drove.
    Closing(u64, Arc<Binding>),
}

/// What a driven entry sees of the loop during one `drive`.
pub struct Cx<'a> {
    /// The loop.
    pub lp: &'a Arc<Loop>,
    /// The entry's token.
    pub token: usize,
    /// The poller reported the entry's descriptor readable (or closed, or failed).
    pub readable: bool,
    /// The poller reported it writable (or failed).
    pub writable: bool,
    /// The time of this turn.
    pub now: Instant,
    /// The loop's read buffer (a pooled one of `buffers::BUF_SIZE` bytes). A connection that
    /// must keep unread bytes may take it, leaving a fresh one from the pool in its place.
    pub scratch: &'a mut Box<[u8]>,
    out: &'a mut Vec<Delivery>,
    timers: &'a mut BinaryHeap<Reverse<(Instant, usize)>>,
    /// Set by the entry when it is finished: the loop forgets it.
    pub gone: bool,
}

impl Cx<'_> {
    /// Asks to be driven again at `at`.
    pub fn schedule(&mut self, at: Instant) {
        self.timers.push(Reverse((at, self.token)));
    }

    /// Queues completions of `handle` for delivery, in order.
    pub fn deliver(
        &mut self,
        handle: u64,
        binding: &Arc<Binding>,
        completions: impl IntoIterator<Item = Completion>,
    ) {
        for completion in completions {
            self.out.push(Delivery {
                handle,
                binding: binding.clone(),
                completion,
            });
        }
    }
}

struct Driver {
    poll: Poll,
    events: Events,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    scratch: Box<[u8]>,
    armed: Option<Instant>,
}

#[derive(Default)]
struct Shared {
    posted: Vec<Posted>,
    fifo: VecDeque<Delivery>,
}

#[derive(Default)]
struct Entries {
    slots: Vec<Option<Arc<dyn Driven>>>,
    free: Vec<usize>,
}

/// An event loop.
pub struct Loop {
    driver: Mutex<Driver>,
    registry: Registry,
    poll_fd: RawFd,
    waker: Waker,
    kick: Waker,
    timer: OwnedFd,
    shared: Mutex<Shared>,
    entries: Mutex<Entries>,
    awake: AtomicU8,
    /// Handles bound to this loop whose `HANDLE_CLOSING` has not been delivered yet.
    bound: AtomicUsize,
    /// A thread is in `ws_queue_wait`.
    waiting: AtomicBool,
    /// The queue handle was closed: a waiting `ws_queue_wait` returns.
    closed: AtomicBool,
    /// `kick` is signalled and not yet drained. Only the thread in `ws_queue_wait` signals
    /// and drains it, so this saves one `write` per `ws_queue_wait` that leaves completions
    /// behind (a caller taking them one at a time) without any race.
    kicked: AtomicBool,
}

fn no_loop(e: std::io::Error) -> Error {
    Error::from_io(
        WS_ERROR_NOT_ENOUGH_MEMORY,
        "cannot create the event loop's descriptors",
        &e,
    )
}

fn timerfd() -> std::io::Result<OwnedFd> {
    // SAFETY: no pointer arguments; the result is checked.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Loop {
    /// A new loop with nothing to drive.
    pub fn new() -> Result<Arc<Loop>> {
        let poll = Poll::new().map_err(no_loop)?;
        let registry = poll.registry().try_clone().map_err(no_loop)?;
        let waker = Waker::new().map_err(no_loop)?;
        let kick = Waker::new().map_err(no_loop)?;
        let timer = timerfd().map_err(no_loop)?;
        for (fd, token) in [
            (waker.as_raw_fd(), WAKE),
            (kick.as_raw_fd(), KICK),
            (timer.as_raw_fd(), TIMER),
        ] {
            registry
                .register(&mut SourceFd(&fd), token, Interest::READABLE)
                .map_err(no_loop)?;
        }
        Ok(Arc::new(Loop {
            poll_fd: poll.as_raw_fd(),
            driver: Mutex::new(Driver {
                poll,
                events: Events::with_capacity(256),
                timers: BinaryHeap::new(),
                scratch: Box::default(),
                armed: None,
            }),
            registry,
            waker,
            kick,
            timer,
            shared: Mutex::new(Shared::default()),
            entries: Mutex::new(Entries::default()),
            awake: AtomicU8::new(IDLE),
            bound: AtomicUsize::new(0),
            waiting: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            kicked: AtomicBool::new(false),
        }))
    }

    /// The poller's descriptor: readable while events, posts, due timers or undelivered
    /// completions wait (`ws_queue_fd`).
    pub fn fd(&self) -> RawFd {
        self.poll_fd
    }

    /// Adds an entry; returns its token.
    pub fn insert(&self, entry: Arc<dyn Driven>) -> usize {
        let mut e = self.entries.lock();
        match e.free.pop() {
            Some(t) => {
                e.slots[t] = Some(entry);
                t
            }
            None => {
                e.slots.push(Some(entry));
                e.slots.len() - 1
            }
        }
    }

    /// Registers a descriptor for an entry (edge-triggered, both directions).
    pub fn register(&self, fd: RawFd, token: usize) -> std::io::Result<()> {
        self.registry.register(
            &mut SourceFd(&fd),
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    /// Changes whether a registered descriptor's writability is watched (readability always
    /// is): only while bytes wait to be written, so that a socket's spare room does not keep
    /// waking the loop.
    pub fn watch_writes(&self, fd: RawFd, token: usize, write: bool) -> std::io::Result<()> {
        let interest = if write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        self.registry
            .reregister(&mut SourceFd(&fd), Token(token), interest)
    }

    /// Stops watching a descriptor (before it is closed).
    pub fn deregister(&self, fd: RawFd) {
        let _ = self.registry.deregister(&mut SourceFd(&fd));
    }

    /// Hands work to the loop from any thread; wakes it when it may be asleep or when nobody
    /// drives it (so that the queue's fd becomes readable).
    pub fn post(&self, p: Posted) {
        let first = {
            let mut s = self.shared.lock();
            s.posted.push(p);
            s.posted.len() == 1
        };
        if first && self.awake.load(Ordering::SeqCst) != ACTIVE {
            self.waker.wake();
        }
    }

    /// A handle was bound to this loop.
    pub fn bind(&self) {
        self.bound.fetch_add(1, Ordering::SeqCst);
    }

    /// Handles bound and not yet given their `HANDLE_CLOSING`.
    pub fn bound(&self) -> usize {
        self.bound.load(Ordering::SeqCst)
    }

    /// Runs one turn: posted work, due timers, one poll of at most `timeout` (`None`: until
    /// something happens), the ready entries. Completions go to the FIFO.
    pub fn turn(self: &Arc<Self>, timeout: Option<Duration>) {
        let mut d = self.driver.lock();
        let d = &mut *d;
        if d.scratch.is_empty() {
            d.scratch = buffers::take();
        }
        let mut out = Vec::new();
        self.awake.store(ACTIVE, Ordering::SeqCst);
        self.run_posted(d, &mut out);
        self.run_timers(d, &mut out);
        let mut wait = match d.timers.peek() {
            Some(Reverse((at, _))) => {
                let left = at.saturating_duration_since(Instant::now());
                Some(timeout.map_or(left, |t| t.min(left)))
            }
            None => timeout,
        };
        if !out.is_empty() || !self.shared.lock().fifo.is_empty() {
            wait = Some(Duration::ZERO);
        }
        self.awake.store(SLEEPING, Ordering::SeqCst);
        if !self.shared.lock().posted.is_empty() {
            wait = Some(Duration::ZERO);
        }
        if d.poll.poll(&mut d.events, wait).is_err() {
            // EINTR: the caller turns again
            d.events.clear();
        }
        self.awake.store(ACTIVE, Ordering::SeqCst);
        let ready: Vec<(Token, bool, bool)> = d
            .events
            .iter()
            .map(|e| {
                let r = e.is_readable() || e.is_read_closed() || e.is_error();
                let w = e.is_writable() || e.is_write_closed() || e.is_error();
                (e.token(), r, w)
            })
            .collect();
        for (token, r, w) in ready {
            match token {
                WAKE => self.waker.drain(),
                KICK => {
                    self.kicked.store(false, Ordering::Relaxed);
                    self.kick.drain();
                }
                TIMER => {
                    let mut buf = [0u8; 8];
                    // SAFETY: reads 8 bytes into a live local buffer from our timerfd.
                    unsafe { libc::read(self.timer.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
                    d.armed = None;
                }
                Token(t) => self.drive(d, t, r, w, &mut out),
            }
        }
        self.run_posted(d, &mut out);
        self.run_timers(d, &mut out);
        self.arm(d);
        if !out.is_empty() {
            self.shared.lock().fifo.extend(out);
        }
    }

    fn drive(
        self: &Arc<Self>,
        d: &mut Driver,
        token: usize,
        r: bool,
        w: bool,
        out: &mut Vec<Delivery>,
    ) {
        let entry = self.entries.lock().slots.get(token).cloned().flatten();
        let Some(entry) = entry else { return };
        let mut cx = Cx {
            lp: self,
            token,
            readable: r,
            writable: w,
            now: Instant::now(),
            scratch: &mut d.scratch,
            out,
            timers: &mut d.timers,
            gone: false,
        };
        entry.drive(&mut cx);
        if cx.gone {
            let mut e = self.entries.lock();
            if let Some(slot) = e.slots.get_mut(token) {
                if slot.take().is_some() {
                    e.free.push(token);
                }
            }
            // A gone entry's deadlines stay in the heap until they fall due (a keepalive's is
            // 30 s away): once they outnumber the live entries', drop those of free slots, so
            // that connections that come and go leave nothing behind.
            let live = e.slots.len() - e.free.len();
            if d.timers.len() > 2 * live + 64 {
                let slots = &e.slots;
                d.timers
                    .retain(|Reverse((_, t))| slots.get(*t).is_some_and(Option::is_some));
            }
        }
    }

    fn run_posted(self: &Arc<Self>, d: &mut Driver, out: &mut Vec<Delivery>) {
        loop {
            let posted = std::mem::take(&mut self.shared.lock().posted);
            if posted.is_empty() {
                return;
            }
            for p in posted {
                match p {
                    Posted::Token(t) => self.drive(d, t, false, false, out),
                    Posted::Closing(handle, binding) => out.push(Delivery {
                        handle,
                        binding,
                        completion: Completion::HandleClosing,
                    }),
                }
            }
        }
    }

    fn run_timers(self: &Arc<Self>, d: &mut Driver, out: &mut Vec<Delivery>) {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(Reverse((at, t))) = d.timers.peek().copied() {
            if at > now {
                break;
            }
            d.timers.pop();
            if !due.contains(&t) {
                due.push(t);
            }
        }
        for t in due {
            self.drive(d, t, false, false, out);
        }
    }

    /// Arms the timerfd for the earliest deadline, so the poller's fd becomes readable then.
    fn arm(&self, d: &mut Driver) {
        let next = d.timers.peek().map(|Reverse((at, _))| *at);
        if next == d.armed {
            return;
        }
        d.armed = next;
        let left = next.map_or(Duration::ZERO, |at| {
            at.saturating_duration_since(Instant::now())
                .max(Duration::from_nanos(1))
        });
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: a valid itimerspec for our own timerfd; NULL for the old value.
        unsafe { libc::timerfd_settime(self.timer.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    }

    /// `ws_queue_wait`: drives the loop on the caller's thread until up to `max`
    /// completions are ready or `timeout` passes (`Duration::ZERO`: one turn without
    /// waiting; `Duration::MAX`: no limit). One thread at a time.
    pub fn wait(self: &Arc<Self>, max: usize, timeout: Duration) -> Result<Vec<Delivery>> {
        if self
            .waiting
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(Error::new(
                WS_ERROR_INVALID_OPERATION,
                "another thread is in ws_queue_wait on this queue; one thread waits on a queue at a time",
            ));
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut turned = false;
        let got = loop {
            if self.closed.load(Ordering::SeqCst) {
                self.waiting.store(false, Ordering::SeqCst);
                return Err(Error::cancelled(
                    "the queue was closed with ws_close_handle while this thread waited",
                ));
            }
            {
                let mut s = self.shared.lock();
                if !s.fifo.is_empty() {
                    let n = max.min(s.fifo.len());
                    break s.fifo.drain(..n).collect::<Vec<_>>();
                }
            }
            let now = Instant::now();
            if turned && deadline.is_some_and(|d| now >= d) {
                break Vec::new();
            }
            self.turn(deadline.map(|d| d.saturating_duration_since(now)));
            turned = true;
        };
        for d in &got {
            if d.completion == Completion::HandleClosing {
                self.unbind();
            }
        }
        self.awake.store(IDLE, Ordering::SeqCst);
        {
            let s = self.shared.lock();
            if !s.fifo.is_empty() || !s.posted.is_empty() {
                // level-triggered: still something to do, so the fd stays readable
                if !self.kicked.swap(true, Ordering::Relaxed) {
                    self.kick.wake();
                }
            }
        }
        self.waiting.store(false, Ordering::SeqCst);
        Ok(got)
    }

    /// Takes every completion produced so far (callback mode: the I/O thread delivers them).
    pub fn take_all(&self) -> VecDeque<Delivery> {
        std::mem::take(&mut self.shared.lock().fifo)
    }

    /// The queue handle is closed: a thread waiting on it returns.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    /// A `HANDLE_CLOSING` was delivered, or a handle unbound.
    pub fn unbind(&self) {
        self.bound.fetch_sub(1, Ordering::SeqCst);
    }
}
