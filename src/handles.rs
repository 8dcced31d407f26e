//! The handle table: generation-checked `uint64_t` handles.
//!
//! A handle is `generation << 32 | (slot + 1)`, so 0 is never valid and a handle that was
//! closed never becomes valid again (its slot's generation moved on, and a slot whose
//! generations are used up is retired instead of wrapping). The table lock is held
//! only to look up or change a slot — never across I/O: a call clones the object's `Arc` and
//! releases the lock before it blocks, and the object is freed when the last call using it
//! returns.

use std::sync::Arc;

use once_cell::sync::Lazy;
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

struct Slot {
    generation: u32,
    object: Option<Object>,
}

#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

static TABLE: Lazy<Mutex<Table>> = Lazy::new(|| Mutex::new(Table::default()));

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
    let mut t = TABLE.lock();
    let index = match t.free.pop() {
        Some(i) => i as usize,
        None => {
            t.slots.push(Slot {
                generation: 1,
                object: None,
            });
            t.slots.len() - 1
        }
    };
    let slot = &mut t.slots[index];
    slot.object = Some(object);
    (u64::from(slot.generation) << 32) | (index as u64 + 1)
}

/// The object behind a handle.
pub fn get(h: u64) -> Result<Object> {
    let (index, generation) = split(h).ok_or_else(|| invalid(h))?;
    let t = TABLE.lock();
    match t.slots.get(index) {
        Some(Slot {
            generation: g,
            object: Some(o),
        }) if *g == generation => Ok(o.clone()),
        _ => Err(invalid(h)),
    }
}

/// Removes a handle; its value never becomes valid again.
pub fn remove(h: u64) -> Result<Object> {
    let (index, generation) = split(h).ok_or_else(|| invalid(h))?;
    let mut t = TABLE.lock();
    let slot = match t.slots.get_mut(index) {
        Some(s) if s.generation == generation && s.object.is_some() => s,
        _ => return Err(invalid(h)),
    };
    let object = slot.object.take().expect("checked above");
    if slot.generation == u32::MAX {
        // Every generation of this slot has been issued: retire it for good rather than let
        // a wrapped generation make an old handle valid again (16 bytes per 2^32 handles).
        return Ok(object);
    }
    slot.generation += 1;
    t.free.push(index as u32);
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_and_forged_handles_are_rejected() {
        let c = Arc::new(Connection::open("ws://127.0.0.1:1/").unwrap());
        let h = insert(Object::Connection(c.clone()));
        assert!(get(h).is_ok());
        assert_eq!(get(0).err().unwrap().code, WS_ERROR_INVALID_HANDLE);
        assert_eq!(
            get(h ^ (1 << 40)).err().unwrap().code,
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
    fn a_slot_is_retired_before_its_generation_wraps() {
        let c = Arc::new(Connection::open("ws://127.0.0.1:1/").unwrap());
        let h = insert(Object::Connection(c.clone()));
        let index = (h & 0xFFFF_FFFF) as usize - 1;
        // fast-forward this slot to its last generation
        let last = {
            let mut t = TABLE.lock();
            t.slots[index].generation = u32::MAX;
            (u64::from(u32::MAX) << 32) | (index as u64 + 1)
        };
        assert!(get(h).is_err());
        assert!(get(last).is_ok());
        remove(last).unwrap();
        assert!(!TABLE.lock().free.contains(&(index as u32)), "slot reused");
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
}
