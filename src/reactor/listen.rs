//! An asynchronous listener: the listening socket and every accepted socket's upgrade are
//! entries of the loop, each moved forward by its own readiness (a slow or garbage client
//! never delays another). Upgrades are the blocking listener's non-blocking steps
//! ([`Listener::progress`]) over the shared sans-IO `ServerHandshake`; a valid one waits in a
//! queue until a `ws_accept` takes it, and then becomes an asynchronous connection whose
//! first output is its 101.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::conn::{Open, Phase, Session};
use super::event_loop::{Cx, Driven, Posted};
use super::pending::{Completion, Operation, Pending};
use super::Binding;
use crate::connection::{Handshaking, Listener, Progress, Ready};
use crate::error::{Error, Result, WS_ERROR_TIMEOUT};
use crate::protocol::Role;

/// At most this many valid upgrades wait for a `ws_accept`; beyond it, new connections wait
/// in the kernel's backlog.
const MAX_WAITING: usize = 1024;
/// At most this many upgrades in progress: a new connection beyond it drops the oldest, so a
/// flood of slow or silent clients cannot keep good ones out (as in the blocking listener).
const MAX_UPGRADING: usize = 1024;
/// How long the listener stops accepting after the process ran out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

struct LSt {
    pending: Pending<(), ()>,
    listener: Option<Arc<Listener>>,
    readable: bool,
    posted: bool,
    registered: Option<i32>,
    /// Upgrades in progress, oldest first.
    upgrading: VecDeque<Arc<Upgrade>>,
    ready: VecDeque<(Handshaking, Ready)>,
    accept_deadline: Option<Instant>,
    backoff: Option<Instant>,
    scheduled: Option<Instant>,
}

/// An asynchronous listener handle's driver state.
pub struct AsyncListener {
    me: std::sync::Weak<AsyncListener>,
    handle: u64,
    binding: Arc<Binding>,
    token: AtomicUsize,
    st: Mutex<LSt>,
}

impl AsyncListener {
    /// Puts `listener` (handle `handle`) on its binding's loop.
    pub fn create(
        handle: u64,
        binding: Arc<Binding>,
        listener: Arc<Listener>,
    ) -> Result<Arc<AsyncListener>> {
        let fd = listener.raw_fd();
        let l = Arc::new_cyclic(|me| AsyncListener {
            me: me.clone(),
            handle,
            binding,
            token: AtomicUsize::new(usize::MAX),
            st: Mutex::new(LSt {
                pending: Pending::default(),
                listener: Some(listener),
                readable: true,
                posted: false,
                registered: None,
                upgrading: VecDeque::new(),
                ready: VecDeque::new(),
                accept_deadline: None,
                backoff: None,
                scheduled: None,
            }),
        });
        let token = l.binding.lp.insert(l.clone());
        l.token.store(token, Ordering::SeqCst);
        l.binding
            .lp
            .register(fd, token)
            .map_err(|e| Error::connection(format!("cannot watch the listening socket: {e}")))?;
        l.st.lock().registered = Some(fd);
        Ok(l)
    }

    fn post(&self, st: &mut LSt) {
        if !st.posted {
            st.posted = true;
            self.binding
                .lp
                .post(Posted::Token(self.token.load(Ordering::SeqCst)));
        }
    }

    /// `ws_accept`: one may be pending; `WS_OPTION_RECEIVE_TIMEOUT` bounds it.
    pub fn start_accept(&self, timeout: Option<Duration>) -> Result<()> {
        let mut st = self.st.lock();
        st.pending.start_opening(Operation::Accept)?;
        st.accept_deadline = timeout.map(|t| Instant::now() + t);
        self.post(&mut st);
        Ok(())
    }

    /// `ws_close_handle` on the listener.
    pub fn release(&self) {
        let mut st = self.st.lock();
        st.pending.release();
        self.post(&mut st);
    }

    fn finished_upgrade(&self, token: usize, ready: Option<(Handshaking, Ready)>) {
        let mut st = self.st.lock();
        st.upgrading.retain(|u| u.token() != token);
        if let Some(r) = ready {
            if !st.pending.is_released() {
                st.ready.push_back(r);
            }
        }
        self.post(&mut st);
    }
}

impl Driven for AsyncListener {
    fn drive(&self, cx: &mut Cx<'_>) {
        let mut guard = self.st.lock();
        let st = &mut *guard;
        st.posted = false;
        st.readable |= cx.readable;
        if st.pending.is_released() {
            if let Some(fd) = st.registered.take() {
                cx.lp.deregister(fd);
            }
            for u in st.upgrading.drain(..) {
                cx.lp.post(Posted::Token(u.token())); // each sees the listener released and ends
            }
            st.ready.clear();
            st.listener = None;
            cx.deliver(self.handle, &self.binding, st.pending.take_completions());
            cx.gone = true;
            return;
        }
        let Some(listener) = st.listener.clone() else {
            return;
        };
        if st.backoff.is_some_and(|b| cx.now >= b) {
            st.backoff = None;
        }
        while st.readable && st.backoff.is_none() && st.ready.len() < MAX_WAITING {
            if st.upgrading.len() >= MAX_UPGRADING {
                // make room: the oldest upgrade in progress is dropped (its socket closes)
                if let Some(old) = st.upgrading.pop_front() {
                    if let Some(h) = old.h.lock().take() {
                        cx.lp.deregister(h.raw_fd());
                    }
                    cx.lp.post(Posted::Token(old.token())); // it sees nothing left and ends
                }
            }
            match listener.take_one() {
                Ok(Some(h)) => self.start_upgrade(st, h, cx),
                Ok(None) => st.readable = false,
                Err(_) => st.backoff = Some(cx.now + ACCEPT_BACKOFF),
            }
        }
        while st.pending.opening() == Some(Operation::Accept) {
            let Some((h, ready)) = st.ready.pop_front() else {
                break;
            };
            let c = match claim(&listener, &self.binding, h, ready) {
                Ok(handle) => Completion::Accepted(handle),
                Err(e) => Completion::Failed {
                    op: Operation::Accept,
                    error: e.code,
                },
            };
            st.pending.finish_opening(c);
        }
        if st.pending.opening() == Some(Operation::Accept)
            && st.accept_deadline.is_some_and(|d| cx.now >= d)
        {
            st.pending.finish_opening(Completion::Failed {
                op: Operation::Accept,
                error: WS_ERROR_TIMEOUT,
            });
        }
        cx.deliver(self.handle, &self.binding, st.pending.take_completions());
        let mut next = st.backoff;
        if st.pending.opening().is_some() {
            if let Some(d) = st.accept_deadline {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        if let Some(at) = next {
            if st.scheduled.is_none_or(|s| at < s || s <= cx.now) {
                st.scheduled = Some(at);
                cx.schedule(at);
            }
        }
    }
}

impl AsyncListener {
    fn start_upgrade(&self, st: &mut LSt, h: Handshaking, cx: &mut Cx<'_>) {
        let fd = h.raw_fd();
        let entry = Arc::new(Upgrade {
            listener: self.me.upgrade().expect("alive while driven"),
            token: AtomicUsize::new(usize::MAX),
            h: Mutex::new(Some(h)),
        });
        let token = cx.lp.insert(entry.clone());
        entry.token.store(token, Ordering::SeqCst);
        if cx.lp.register(fd, token).is_err() {
            entry.h.lock().take();
            cx.lp.post(Posted::Token(token)); // it sees nothing left and ends
            return;
        }
        st.upgrading.push_back(entry);
        cx.lp.post(Posted::Token(token)); // its request may be there already
    }
}

/// One accepted socket's upgrade.
struct Upgrade {
    listener: Arc<AsyncListener>,
    token: AtomicUsize,
    h: Mutex<Option<Handshaking>>,
}

impl Upgrade {
    fn token(&self) -> usize {
        self.token.load(Ordering::SeqCst)
    }
}

impl Driven for Upgrade {
    fn drive(&self, cx: &mut Cx<'_>) {
        let mut slot = self.h.lock();
        let token = self.token.load(Ordering::SeqCst);
        let listener = self.listener.st.lock().listener.clone();
        let (Some(h), Some(listener)) = (slot.as_mut(), listener) else {
            if let Some(h) = slot.take() {
                cx.lp.deregister(h.raw_fd());
            }
            cx.gone = true;
            return;
        };
        match listener.step(h) {
            Progress::Wait => {
                if let Some(d) = h.deadline() {
                    cx.schedule(d);
                }
            }
            Progress::Drop => {
                let h = slot.take().expect("checked");
                cx.lp.deregister(h.raw_fd());
                cx.gone = true;
                drop(slot);
                self.listener.finished_upgrade(token, None);
            }
            Progress::Ready(ready) => {
                let h = slot.take().expect("checked");
                cx.lp.deregister(h.raw_fd());
                cx.gone = true;
                drop(slot);
                self.listener.finished_upgrade(token, Some((h, ready)));
            }
        }
    }
}

/// Turns a valid upgrade into an asynchronous connection handle bound like the listener.
fn claim(
    listener: &Arc<Listener>,
    binding: &Arc<Binding>,
    h: Handshaking,
    ready: Ready,
) -> Result<u64> {
    let (conn, t, leftover, response, agreed) = listener.set_up(h, ready)?;
    let b = conn.binder().inherit(binding)?;
    let timeouts = conn.timeouts_arc();
    let max_message = listener.max_message();
    let fd = t.raw_fd();
    let conn = Arc::new(conn);
    let handle = crate::handles::insert(crate::handles::Object::Connection(conn.clone()));
    let open = Open::new(t, Role::Server, max_message, &leftover, response, agreed);
    let session = Session::create(handle, b, timeouts, Phase::Open(Box::new(open)));
    {
        let mut st = session.st.lock();
        if session.binding.lp.register(fd, session.token()).is_ok() {
            st.registered = Some(fd);
        }
        st.readable = true;
        st.writable = true;
        session.post(&mut st);
    }
    conn.attach_session(session);
    Ok(handle)
}
