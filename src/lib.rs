//! # wshandle
//!
//! WebSockets behind a C ABI in the style of WinHTTP's WebSocket API: integer handles, plain
//! result codes and blocking calls that are safe from any thread, with the close handshake done
//! right (`ws_shutdown` sends a close frame and keeps reading; `ws_close` runs the whole
//! handshake under one deadline).
//!
//! The crate is layered so that every way of doing I/O can reuse the hard parts:
//!
//! - [`protocol`]: sans-IO. Bytes in, events out: frame parsing, message assembly, UTF-8 checks
//!   and the close-handshake state machine. No sockets, no threads, no FFI.
//! - [`transport`]: a non-blocking TCP stream with a wake-up descriptor, polled with deadlines.
//! - [`connection`]: drives the protocol over the transport for the blocking API: the read and
//!   write sides, cancellation, deadlines, the upgrade request.
//! - [`reactor`]: drives the same protocol core for the asynchronous API: event loops (one per
//!   completion queue, or a few library threads for callbacks), pending operations, timers.
//! - [`handles`]: the generation-checked handle table.
//! - [`ffi`]: every `extern "C"` function, the panic boundary and argument checks.
//!
//! The C contract is `include/wshandle.h`, generated from [`ffi`] by cbindgen.
#![deny(missing_docs)]

pub mod connection;
pub mod error;
pub mod ffi;
pub mod handles;
pub mod protocol;
pub mod reactor;
pub mod transport;
