//! The asynchronous driver (docs/async.md): event loops that move asynchronous handles
//! forward without blocking, over the same sans-IO protocol core as the blocking driver.

pub mod pending;
