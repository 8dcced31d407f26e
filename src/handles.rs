//! The handle table: generation-checked `uint64_t` handles.
//!
//! A handle is `generation << 32 | (slot + 1)`, so 0 is never valid and a handle that was
//! closed never becomes valid again (its slot's generation moved on, and a slot whose
//! generations are used up is retired instead of wrapping). A lookup takes no lock: the slots
//! live in segments that are never freed, and a call pins its slot with one compare-and-swap
//! on the slot's word (generation, open flag, user count) and unpins it with one subtraction;
//! the object is freed when the last call using it returns. Only `insert` and the freeing of
//! a slot take the free list's lock.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::connection::{Connection, Listener};
use crate::error::{Error, Result, WS_ERROR_INCORRECT_HANDLE_TYPE, WS_ERROR_INVALID_HANDLE};
use crate::reactor::{Binder, Loop};

/// What a handle refers to.
#[derive(Clone)]
pub enum Object {
    /// A connection: a client's, or one a listener accepted.
    Connection(Arc<Connection>),
    /// A listener.
    Listener(Arc<Listener>),
    /// A completion queue: an event loop that `ws_queue_wait` drives.
    Queue(Arc<Loop>),
}

impl Object {
    /// The connection behind a handle, or `WS_ERROR_INCORRECT_HANDLE_TYPE`.
    pub fn connection(self) -> Result<Arc<Connection>> {
        self.as_connection().map(Arc::clone)
    }

    /// [`Object::connection`] without taking a reference (for a pinned handle's call).
    pub fn as_connection(&self) -> Result<&Arc<Connection>> {
        match self {
            Object::Connection(c) => Ok(c),
            Object::Listener(_) => Err(Error::new(
                WS_ERROR_INCORRECT_HANDLE_TYPE,
                "this is a listener handle; the call needs a connection handle (from ws_open or ws_accept)",
            )),
            Object::Queue(_) => Err(queue_here("a connection handle (from ws_open or ws_accept)")),
        }
    }

    /// The listener behind a handle, or `WS_ERROR_INCORRECT_HANDLE_TYPE`.
    pub fn listener(self) -> Result<Arc<Listener>> {
        match self {
            Object::Listener(l) => Ok(l),
            Object::Connection(_) => Err(Error::new(
                WS_ERROR_INCORRECT_HANDLE_TYPE,
                "this is a connection handle; the call needs a listener handle (from ws_listen)",
            )),
            Object::Queue(_) => Err(queue_here("a listener handle (from ws_listen)")),
        }
    }

    /// The completion queue behind a handle, or `WS_ERROR_INCORRECT_HANDLE_TYPE`.
    pub fn queue(self) -> Result<Arc<Loop>> {
        match self {
            Object::Queue(q) => Ok(q),
            _ => Err(Error::new(
                WS_ERROR_INCORRECT_HANDLE_TYPE,
                "this is a connection or listener handle; the call needs a queue handle (from ws_queue_create)",
            )),
        }
    }

    /// The mode of a connection or listener, or `WS_ERROR_INCORRECT_HANDLE_TYPE` for a queue.
    pub fn binder(&self) -> Result<&Binder> {
        match self {
            Object::Connection(c) => Ok(c.binder()),
            Object::Listener(l) => Ok(l.binder()),
            Object::Queue(_) => Err(queue_here("a connection or listener handle")),
        }
    }

    /// `ws_close_handle` on handle `h`: cancels every call blocked on the object (or every
    /// operation pending on it) and drops its connection.
    pub fn cancel(&self, h: u64) {
        match self {
            Object::Connection(c) => c.cancel(h),
            Object::Listener(l) => l.cancel(h),
            Object::Queue(q) => q.close(),
        }
    }
}

fn queue_here(needed: &str) -> Error {
    Error::new(
        WS_ERROR_INCORRECT_HANDLE_TYPE,
        format!("this is a queue handle (from ws_queue_create); the call needs {needed}"),
    )
}

/// A slot's object, and its word: `generation << 32 | OPEN | users`, where `users` counts the
/// calls that hold the object (pinned). Only the call that brings `users` to 0 on a slot that
/// is no longer OPEN (or `remove`, if none is left) frees the object, so nothing is freed
/// while a call uses it, and a stale handle (wrong generation, or not OPEN) pins nothing.
struct Slot {
    word: AtomicU64,
    object: UnsafeCell<Option<Object>>,
}

// SAFETY: `object` is written only by the thread that owns the slot exclusively (inserting
// into a slot that is not OPEN and has no users, or freeing it once the last user left), and
// read only by callers that pinned it (OPEN, with the generation checked); the word's
// acquire/release orders the two.
unsafe impl Sync for Slot {}

const OPEN: u64 = 1 << 31;
const USERS: u64 = OPEN - 1;
/// Segment `k` holds `FIRST << k` slots; segments are allocated when first needed and never
/// freed (a slot is reused, with a new generation), so a lookup reads them without a lock.
const FIRST: usize = 64;
const SEGMENTS: usize = 27; // 64 * (2^27 - 1) slots: more than a u32 index can name

static SEGS: [AtomicPtr<Slot>; SEGMENTS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; SEGMENTS];

/// Free slots and how many slots exist; taken only by `insert` and when a slot is freed.
struct Free {
    list: Vec<u32>,
    created: usize,
}

static FREE: Mutex<Free> = Mutex::new(Free {
    list: Vec::new(),
    created: 0,
});

/// Segment and offset of slot `index`.
fn place(index: usize) -> (usize, usize) {
    let n = index + FIRST;
    let seg = (usize::BITS - 1 - n.leading_zeros()) as usize - FIRST.trailing_zeros() as usize;
    (seg, n - (FIRST << seg))
}

fn slot(index: usize) -> Option<&'static Slot> {
    let (seg, off) = place(index);
    let base = SEGS.get(seg)?.load(Ordering::Acquire);
    // SAFETY: a published segment is never freed and holds `FIRST << seg` slots.
    (!base.is_null()).then(|| unsafe { &*base.add(off) })
}

fn split(h: u64) -> Option<(usize, u32)> {
    let index = (h & 0xFFFF_FFFF) as u32;
    let generation = (h >> 32) as u32;
    (index != 0 && generation != 0).then(|| ((index - 1) as usize, generation))
}

fn invalid(h: u64) -> Error {
    Error::new(
        WS_ERROR_INVALID_HANDLE,
        format!(
            "handle {h:#x} is not open (0, never issued, or already passed to ws_close_handle)"
        ),
    )
}

/// Stores an object and returns its new handle.
pub fn insert(object: Object) -> u64 {
    let mut free = FREE.lock();
    let index = match free.list.pop() {
        Some(i) => i as usize,
        None => {
            let index = free.created;
            let (seg, off) = place(index);
            if off == 0 {
                let slots: Box<[Slot]> = (0..FIRST << seg)
                    .map(|_| Slot {
                        word: AtomicU64::new(1 << 32), // generation 1, not open
                        object: UnsafeCell::new(None),
                    })
                    .collect();
                SEGS[seg].store(Box::leak(slots).as_mut_ptr(), Ordering::Release);
            }
            free.created += 1;
            index
        }
    };
    drop(free);
    let s = slot(index).expect("the slot's segment exists");
    let generation = s.word.load(Ordering::Acquire) >> 32;
    // SAFETY: a free slot is not OPEN and has no users: no one else touches its object.
    unsafe { *s.object.get() = Some(object) };
    s.word.store((generation << 32) | OPEN, Ordering::Release);
    (generation << 32) | (index as u64 + 1)
}

/// A call's hold on a handle's object: the object lives at least until it is dropped.
pub struct Pinned {
    slot: &'static Slot,
    index: usize,
}

impl std::ops::Deref for Pinned {
    type Target = Object;
    fn deref(&self) -> &Object {
        // SAFETY: pinned: the object is set and stays until the last user has left.
        unsafe { (*self.slot.object.get()).as_ref() }.expect("a pinned slot holds its object")
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let left = self.slot.word.fetch_sub(1, Ordering::AcqRel) - 1;
        if left & (OPEN | USERS) == 0 {
            free(self.slot, self.index, left >> 32);
        }
    }
}

/// The last user of a removed handle's slot is gone: drop the object and recycle the slot.
fn free(s: &Slot, index: usize, generation: u64) {
    // SAFETY: not OPEN and no users: this thread alone owns the slot now.
    let object = unsafe { (*s.object.get()).take() };
    if generation < u64::from(u32::MAX) {
        s.word.store((generation + 1) << 32, Ordering::Release);
        FREE.lock().list.push(index as u32);
    }
    // else: every generation of this slot has been issued: retire it for good rather than
    // let a wrapped generation make an old handle valid again
    drop(object);
}

/// Holds the object behind a handle for the duration of a call, without a lock: one atomic
/// read-modify-write to take it and one to let it go.
pub fn pin(h: u64) -> Result<Pinned> {
    let (index, generation) = split(h).ok_or_else(|| invalid(h))?;
    let s = slot(index).ok_or_else(|| invalid(h))?;
    let mut w = s.word.load(Ordering::Acquire);
    loop {
        if (w >> 32) as u32 != generation || w & OPEN == 0 || w & USERS == USERS {
            return Err(invalid(h));
        }
        match s
            .word
            .compare_exchange_weak(w, w + 1, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => return Ok(Pinned { slot: s, index }),
            Err(now) => w = now,
        }
    }
}

/// The object behind a handle (its `Arc`s cloned: for holders that outlive the call).
pub fn get(h: u64) -> Result<Object> {
    pin(h).map(|p| p.clone())
}

/// Removes a handle; its value never becomes valid again. The table's own reference goes
/// when the last call using the object returns.
pub fn remove(h: u64) -> Result<Object> {
    let p = pin(h)?;
    let mut w = p.slot.word.load(Ordering::Acquire);
    loop {
        if w & OPEN == 0 {
            return Err(invalid(h)); // a concurrent remove won
        }
        match p
            .slot
            .word
            .compare_exchange_weak(w, w & !OPEN, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => break,
            Err(now) => w = now,
        }
    }
    Ok(p.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Arc<Connection> {
        Arc::new(Connection::open("ws://127.0.0.1:1/").unwrap())
    }

    #[test]
    fn stale_and_forged_handles_are_rejected() {
        let c = conn();
        let h = insert(Object::Connection(c.clone()));
        assert!(get(h).is_ok());
        assert_eq!(get(0).err().unwrap().code, WS_ERROR_INVALID_HANDLE);
        assert_eq!(
            get(h ^ (1 << 40)).err().unwrap().code,
            WS_ERROR_INVALID_HANDLE
        );
        assert_eq!(
            get(u64::from(u32::MAX) << 32 | 0xFFFF_FFF0)
                .err()
                .unwrap()
                .code,
            WS_ERROR_INVALID_HANDLE
        );
        assert!(remove(h).is_ok());
        assert!(get(h).is_err());
        assert!(remove(h).is_err());
        // the slot is reused with a new generation; the old value stays dead
        let h2 = insert(Object::Connection(c));
        assert_ne!(h, h2);
        assert!(get(h).is_err());
        remove(h2).unwrap();
    }

    #[test]
    fn an_object_lives_until_its_last_call_returns() {
        let c = conn();
        let h = insert(Object::Connection(c.clone()));
        let call = pin(h).unwrap();
        drop(remove(h).unwrap());
        assert!(pin(h).is_err(), "removed: no new call may start");
        assert_eq!(Arc::strong_count(&c), 2, "freed while a call used it");
        assert!(call.as_connection().is_ok());
        drop(call);
        assert_eq!(Arc::strong_count(&c), 1, "not freed after the last call");
    }

    #[test]
    fn pins_race_with_removes_and_inserts() {
        let c = conn();
        let handles: Vec<u64> = (0..8)
            .map(|_| insert(Object::Connection(c.clone())))
            .collect();
        let handles = Arc::new(parking_lot::Mutex::new(handles));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let handles = handles.clone();
                std::thread::spawn(move || {
                    let mut held = 0u32;
                    for i in 0..20_000usize {
                        let h = handles.lock()[i % 8];
                        if let Ok(p) = pin(h) {
                            held += u32::from(p.as_connection().is_ok());
                        }
                    }
                    held
                })
            })
            .collect();
        for round in 0..2_000usize {
            let fresh = insert(Object::Connection(c.clone()));
            let old = std::mem::replace(&mut handles.lock()[round % 8], fresh);
            remove(old).unwrap();
            assert!(pin(old).is_err());
        }
        for t in threads {
            t.join().unwrap();
        }
        for h in handles.lock().drain(..) {
            remove(h).unwrap();
        }
        assert_eq!(
            Arc::strong_count(&c),
            1,
            "every slot's reference was released"
        );
    }

    #[test]
    fn a_slot_is_retired_before_its_generation_wraps() {
        let c = conn();
        let h = insert(Object::Connection(c.clone()));
        let index = (h & 0xFFFF_FFFF) as usize - 1;
        // fast-forward this slot to its last generation
        let s = slot(index).unwrap();
        s.word
            .store((u64::from(u32::MAX) << 32) | OPEN, Ordering::SeqCst);
        let last = (u64::from(u32::MAX) << 32) | (index as u64 + 1);
        assert!(get(h).is_err());
        assert!(get(last).is_ok());
        remove(last).unwrap();
        assert!(!FREE.lock().list.contains(&(index as u32)), "slot reused");
        // no handle issued from now on is one that was issued before
        let mut issued = Vec::new();
        for _ in 0..4 {
            let n = insert(Object::Connection(c.clone()));
            assert_ne!(n & 0xFFFF_FFFF, index as u64 + 1);
            issued.push(n);
        }
        for gen in [1u64, 2, u64::from(u32::MAX)] {
            assert!(get((gen << 32) | (index as u64 + 1)).is_err());
        }
        for n in issued {
            remove(n).unwrap();
        }
    }

    #[test]
    fn segments_double() {
        assert_eq!(place(0), (0, 0));
        assert_eq!(place(63), (0, 63));
        assert_eq!(place(64), (1, 0));
        assert_eq!(place(191), (1, 127));
        assert_eq!(place(192), (2, 0));
        assert_eq!(place(u32::MAX as usize - 1).0, SEGMENTS - 1);
    }
}
