//! Masking keys for client frames (RFC 6455 §5.3: "derived from a strong source of entropy").

use std::cell::RefCell;

use rand::rngs::{StdRng, SysRng};
use rand::{Rng, SeedableRng, TryRng};

/// Keys drawn from the generator at once: one ChaCha block serves 16 frames, so a batch of
/// small frames does not pay the generator's per-call overhead for each.
const KEYS: usize = 16;

struct Keys {
    rng: StdRng,
    bytes: [u8; 4 * KEYS],
    next: usize,
}

thread_local! {
    // A ChaCha generator per thread, seeded from the OS. Reached with `try_with`: once the
    // thread's Rust thread-locals are gone (a `ws_send` from a pthread-key or C++
    // `thread_local` destructor), keys come straight from the OS instead, where rand's own
    // thread-local generator would panic.
    static RNG: RefCell<Option<Keys>> = const { RefCell::new(None) };
}

/// Fresh, unpredictable masking keys for several frames at once (one thread-local access:
/// a batch of small frames pays the generator's overhead once).
pub fn mask_keys(keys: &mut [[u8; 4]]) {
    let filled = RNG
        .try_with(|cell| {
            let mut cell = cell.borrow_mut();
            let k = cell.as_mut()?;
            k.rng.fill_bytes(keys.as_flattened_mut());
            Some(())
        })
        .ok()
        .flatten();
    if filled.is_none() {
        for k in keys {
            *k = mask_key();
        }
    }
}

/// A fresh, unpredictable masking key.
pub fn mask_key() -> [u8; 4] {
    RNG.try_with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = StdRng::try_from_rng(&mut SysRng).ok().map(|rng| Keys {
                rng,
                bytes: [0; 4 * KEYS],
                next: KEYS,
            });
        }
        cell.as_mut().map(|k| {
            if k.next == KEYS {
                k.rng.fill_bytes(&mut k.bytes);
                k.next = 0;
            }
            let i = 4 * k.next;
            k.next += 1;
            let key = [k.bytes[i], k.bytes[i + 1], k.bytes[i + 2], k.bytes[i + 3]];
            k.bytes[i..i + 4].fill(0); // a key once used is not kept
            key
        })
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| {
        // no thread-local storage left (or no seed): ask the OS for these four bytes
        let mut key = [0u8; 4];
        let _ = SysRng.try_fill_bytes(&mut key);
        key
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ() {
        let mut many = [[0u8; 4]; 32];
        mask_keys(&mut many);
        let keys: std::collections::HashSet<[u8; 4]> =
            (0..64).map(|_| mask_key()).chain(many).collect();
        assert!(keys.len() > 92, "keys repeat: {keys:?}");
    }
}
