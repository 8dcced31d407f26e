//! A process-wide pool of I/O buffers, shared by every connection: a connection takes one
//! when a read (or, in the asynchronous driver, a burst of frames to write) needs it and gives
//! it back as soon as it holds no unread (or unwritten) bytes, so an idle connection holds
//! none, and a busy one reuses a buffer that is already allocated and initialised (no
//! allocation, no zeroing per message).

use parking_lot::Mutex;

/// The size of every pooled buffer: one read can bring in many small frames.
pub(crate) const BUF_SIZE: usize = 64 * 1024;

/// At most this many free buffers are kept (4 MiB); more are freed.
const MAX_FREE: usize = 64;

static FREE: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());

/// A buffer of [`BUF_SIZE`] bytes (contents unspecified).
pub fn take() -> Box<[u8]> {
    FREE.lock()
        .pop()
        .unwrap_or_else(|| vec![0; BUF_SIZE].into_boxed_slice())
}

/// Returns a buffer taken with [`take`].
pub fn give(buf: Box<[u8]>) {
    if buf.len() != BUF_SIZE {
        return;
    }
    let mut free = FREE.lock();
    if free.len() < MAX_FREE {
        free.push(buf);
    }
}

/// An empty output buffer with room for [`BUF_SIZE`] bytes, from the pool.
pub fn take_vec() -> Vec<u8> {
    let mut v = take().into_vec();
    v.clear();
    v
}

/// Returns an output buffer taken with [`take_vec`] (one that grew past its room is freed).
pub fn give_vec(mut v: Vec<u8>) {
    if v.capacity() != BUF_SIZE {
        return;
    }
    // SAFETY: a pooled buffer's BUF_SIZE bytes were all initialised when it was made (`take`),
    // and bytes (no drop, no invalid values) stay initialised through `clear` and writes.
    unsafe { v.set_len(BUF_SIZE) };
    give(v.into_boxed_slice());
}

/// Bytes held by free buffers in the pool (not by any connection).
pub fn pooled_bytes() -> usize {
    FREE.lock().len() * BUF_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_the_pool_is_bounded() {
        let a = take();
        let p = a.as_ptr();
        give(a);
        // another test thread may take it first; then a fresh one of the right size comes
        let b = take();
        assert_eq!(b.len(), BUF_SIZE);
        let reused = b.as_ptr() == p;
        give(b);
        let many: Vec<_> = (0..MAX_FREE + 8).map(|_| take()).collect();
        for b in many {
            give(b);
        }
        assert!(FREE.lock().len() <= MAX_FREE);
        let _ = reused;
        let mut v = take_vec();
        assert_eq!((v.len(), v.capacity()), (0, BUF_SIZE));
        v.extend_from_slice(b"frames");
        give_vec(v);
        let grown = take_vec();
        give_vec(Vec::with_capacity(3 * BUF_SIZE)); // freed, not pooled
        assert!(FREE.lock().iter().all(|b| b.len() == BUF_SIZE));
        give_vec(grown);
    }
}
