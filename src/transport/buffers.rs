//! A process-wide pool of input buffers, shared by every connection: a connection takes one
//! when a read needs it and gives it back as soon as it holds no unread bytes, so an idle
//! connection holds none, and a busy one reuses a buffer that is already allocated and
//! initialised (no allocation, no zeroing per message).

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
    }
}
