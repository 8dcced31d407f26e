//! Connecting, sending and receiving.

use super::types::*;
use super::{bytes, guard, non_null, with_conn};
use crate::connection::Got;
use crate::error::{Error, Result};
use crate::protocol::send::SendKind;
use crate::protocol::MessageKind;

/// Connects: DNS, TCP connect (through `WS_OPTION_PROXY` if set), the TLS handshake for
/// `wss://`, and the HTTP upgrade, all within `WS_OPTION_CONNECT_TIMEOUT`.
/// Blocks until done. Allowed in `WS_STATE_NONE` (the state is `WS_STATE_CONNECTING` while it
/// runs, `WS_STATE_OPEN` after). After a failure the handle is back in `WS_STATE_NONE` and
/// `ws_connect` may be called again; `WS_OPTION_HTTP_STATUS` then tells a non-101 response's
/// status.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INVALID_OPERATION` when not in
/// `WS_STATE_NONE`; `WS_ERROR_NAME_NOT_RESOLVED`; `WS_ERROR_CANNOT_CONNECT`;
/// `WS_ERROR_TIMEOUT`; `WS_ERROR_SECURE_FAILURE` when TLS fails (the detail says why: unknown
/// issuer, expired, name mismatch, a handshake alert; or unreadable certificate files);
/// `WS_ERROR_CONNECTION_ERROR` when the server closed the connection
/// before answering; `WS_ERROR_INVALID_SERVER_RESPONSE` for a response that is not a valid
/// 101 upgrade (wrong status, missing `Upgrade`/`Connection`, wrong `Sec-WebSocket-Accept`,
/// a subprotocol or extension that was not offered, a head over 16 KiB);
/// `WS_ERROR_OPERATION_CANCELLED` when `ws_close_handle` was called meanwhile.
#[no_mangle]
pub extern "C" fn ws_connect(h: ws_handle) -> ws_error {
    guard(|| with_conn(h, |c| c.connect(h)))
}

/// Sends `len` bytes from `buf` as one frame and returns when every byte has been handed to
/// the OS. Allowed in `WS_STATE_OPEN` and `WS_STATE_CLOSE_RECEIVED` (a side may still answer
/// after the peer's close). One `ws_send` may run at a time per handle, concurrently with a
/// `ws_receive` on another thread.
///
/// `buffer_type`: `WS_BUFFER_BINARY_MESSAGE` / `WS_BUFFER_UTF8_MESSAGE` send a whole message
/// or end one; `WS_BUFFER_BINARY_FRAGMENT` / `WS_BUFFER_UTF8_FRAGMENT` start or continue one.
/// Text is checked as UTF-8 across fragments (a fragment may end inside a code point; the
/// message may not). `buf` may be NULL when `len` is 0 (an empty message is legal). Client
/// frames are masked with a fresh random key.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INVALID_PARAMETER` (nothing is sent and
/// a message in progress stays open) for `buf` NULL with `len` > 0, `WS_BUFFER_CLOSE` or an
/// unknown type, a type that differs from the message in progress, or invalid UTF-8;
/// `WS_ERROR_INVALID_OPERATION` in other states or while another sending call runs;
/// `WS_ERROR_TIMEOUT` after `WS_OPTION_SEND_TIMEOUT` (the connection is aborted);
/// `WS_ERROR_CONNECTION_ERROR` (aborted); `WS_ERROR_OPERATION_CANCELLED`.
#[no_mangle]
pub extern "C" fn ws_send(
    h: ws_handle,
    buffer_type: u32,
    buf: *const std::ffi::c_void,
    len: usize,
) -> ws_error {
    guard(|| {
        with_conn(h, |c| {
            let what = send_kind(buffer_type)?;
            let payload = bytes(buf.cast(), len, "buf")?;
            c.send(what, payload)
        })
    })
}

/// The `ws_send` buffer type of a `WS_BUFFER_*` value.
fn send_kind(buffer_type: u32) -> Result<SendKind> {
    Ok(match buffer_type {
        WS_BUFFER_BINARY_MESSAGE => SendKind::BinaryMessage,
        WS_BUFFER_BINARY_FRAGMENT => SendKind::BinaryFragment,
        WS_BUFFER_UTF8_MESSAGE => SendKind::TextMessage,
        WS_BUFFER_UTF8_FRAGMENT => SendKind::TextFragment,
        WS_BUFFER_CLOSE => {
            return Err(Error::param(
                "WS_BUFFER_CLOSE cannot be sent with ws_send: use ws_shutdown or ws_close",
            ))
        }
        other => return Err(Error::param(format!("{other} is not a WS_BUFFER_* type"))),
    })
}

/// One element of `ws_send_batch`: what one `ws_send` call would take.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ws_batch_item {
    /// `WS_BUFFER_BINARY_MESSAGE`, `WS_BUFFER_BINARY_FRAGMENT`, `WS_BUFFER_UTF8_MESSAGE` or
    /// `WS_BUFFER_UTF8_FRAGMENT`, as for `ws_send`.
    pub buffer_type: u32,
    /// The payload; may be NULL when `len` is 0.
    pub buf: *const std::ffi::c_void,
    /// The payload's length in bytes.
    pub len: usize,
}

/// Sends `count` pieces from `items`, in order, as if by `count` calls of `ws_send`, but
/// framed into one output buffer and handed to the OS with as few system calls as the socket
/// allows (one for a batch of small messages), for blocking callers that send many small
/// messages. Returns when every byte is handed to the OS. The rules of `ws_send` apply to
/// the batch as a whole (states, one sending call at a time per handle, concurrent with a
/// `ws_receive`, `WS_OPTION_SEND_TIMEOUT`, a fresh masking key per client frame) and to each
/// element (its buffer type, fragments continuing the message the previous element or the
/// previous `ws_send` left open, UTF-8 checked across fragments, `buf` NULL only with `len` 0).
///
/// All or nothing on a refused element: every element is checked before anything is written,
/// and if one is refused the call returns `WS_ERROR_INVALID_PARAMETER` (the detail names the
/// element's index), nothing is sent, and a message in progress stays open as it was. A
/// failure while writing (timeout, transport) aborts the connection as it does for `ws_send`;
/// then an unknown prefix of the batch may have reached the peer. `count` 0 is `WS_OK` and
/// sends nothing (`items` may then be NULL).
///
/// Blocking handles only. An asynchronous handle (a status callback or a queue) already
/// writes its pending `ws_send` calls together in one system call, and gets one
/// `WS_CALLBACK_STATUS_WRITE_COMPLETE` per `ws_send`, as WinHTTP users expect; there
/// `ws_send_batch` returns `WS_ERROR_INVALID_OPERATION` and sends nothing.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INCORRECT_HANDLE_TYPE` for a
/// listener or queue; `WS_ERROR_INVALID_PARAMETER` (nothing sent) for `items` NULL with a
/// `count` above 0 or any refused element (a bad type, `buf` NULL with `len` > 0, a type that differs
/// from the message in progress, invalid UTF-8); `WS_ERROR_INVALID_OPERATION` on an
/// asynchronous handle, in other states than `WS_STATE_OPEN` and `WS_STATE_CLOSE_RECEIVED`,
/// or while another sending call runs; `WS_ERROR_TIMEOUT` after `WS_OPTION_SEND_TIMEOUT`
/// (aborted); `WS_ERROR_CONNECTION_ERROR` (aborted); `WS_ERROR_OPERATION_CANCELLED`.
#[no_mangle]
pub extern "C" fn ws_send_batch(
    h: ws_handle,
    items: *const ws_batch_item,
    count: usize,
) -> ws_error {
    guard(|| {
        with_conn(h, |c| {
            let items: &[ws_batch_item] = if count == 0 {
                &[]
            } else {
                non_null(items, "items")?;
                if count > isize::MAX as usize / std::mem::size_of::<ws_batch_item>() {
                    return Err(Error::param("count is impossibly large"));
                }
                // SAFETY: the caller promises `items` points to `count` elements that stay
                // valid and unchanged for the call.
                unsafe { std::slice::from_raw_parts(items, count) }
            };
            let mut pieces = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let at =
                    |e: Error| Error::param(format!("element {i}: {}; nothing was sent", e.detail));
                let what = send_kind(item.buffer_type).map_err(at)?;
                pieces.push((what, bytes(item.buf.cast(), item.len, "buf").map_err(at)?));
            }
            c.send_batch(&pieces)
        })
    })
}

/// Receives the next piece of the next message into `buf` (`len` bytes), writing the byte
/// count to `*bytes_read` and the piece's type to `*buffer_type`. Blocks until something
/// arrives, `WS_OPTION_RECEIVE_TIMEOUT` passes, or the call is cancelled. Allowed in
/// `WS_STATE_OPEN` and `WS_STATE_CLOSE_SENT`; one at a time per handle.
///
/// Messages come one at a time, in order, as many bytes as fit and have arrived:
/// `*_FRAGMENT` when more of the same message follows, `*_MESSAGE` for its last piece
/// (possibly 0 bytes). A message of any size passes through a buffer of any size. Pings are
/// answered and pongs absorbed. The peer's close frame returns `WS_OK` with `WS_BUFFER_CLOSE`
/// and 0 bytes and moves `OPEN` to `CLOSE_RECEIVED` (answer it with `ws_shutdown` or
/// `ws_close` when you are done sending) or `CLOSE_SENT` to `CLOSED`; in the latter case the
/// handshake is complete and TCP is torn down before the call returns (a client waits for the
/// server to close TCP first, at most 1 s and never past `WS_OPTION_RECEIVE_TIMEOUT`).
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INVALID_PARAMETER` when `buf` is NULL,
/// `len` is 0, or an out-pointer is NULL; `WS_ERROR_INVALID_OPERATION` in other states, while
/// another `ws_receive` runs, or once `ws_close` has started; `WS_ERROR_TIMEOUT` (not fatal:
/// the connection stays usable and nothing is lost); `WS_ERROR_OPERATION_CANCELLED` when
/// `ws_close` or `ws_close_handle` is called on another thread; `WS_ERROR_CONNECTION_ERROR`
/// when TCP ends without a close frame (aborted); `WS_ERROR_INVALID_SERVER_RESPONSE` when the
/// peer breaks the protocol — it is sent a close frame with 1002, 1007 or 1009 and the
/// connection is aborted; `WS_ERROR_TIMEOUT` also when `WS_OPTION_KEEPALIVE_TIMEOUT` detects a
/// dead peer (aborted).
#[no_mangle]
pub extern "C" fn ws_receive(
    h: ws_handle,
    buf: *mut std::ffi::c_void,
    len: usize,
    bytes_read: *mut usize,
    buffer_type: *mut u32,
) -> ws_error {
    guard(|| {
        with_conn(h, |c| {
            non_null(buf, "buf")?;
            if len == 0 || len > isize::MAX as usize {
                return Err(Error::param(
                    "len must be at least 1 and at most PTRDIFF_MAX",
                ));
            }
            if !c.is_async() {
                // (an asynchronous receive's results come with its completion)
                non_null(bytes_read, "bytes_read")?;
                non_null(buffer_type, "buffer_type")?;
            }
            // SAFETY: the caller promises `buf` points to `len` writable bytes for the call.
            let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
            let (n, t) = match c.receive(out)? {
                Got::Close => (0, WS_BUFFER_CLOSE),
                Got::Data { n, kind, end } => (
                    n,
                    match (kind, end) {
                        (MessageKind::Binary, true) => WS_BUFFER_BINARY_MESSAGE,
                        (MessageKind::Binary, false) => WS_BUFFER_BINARY_FRAGMENT,
                        (MessageKind::Text, true) => WS_BUFFER_UTF8_MESSAGE,
                        (MessageKind::Text, false) => WS_BUFFER_UTF8_FRAGMENT,
                    },
                ),
            };
            // SAFETY: both checked non-NULL above.
            unsafe {
                *bytes_read = n;
                *buffer_type = t;
            }
            Ok(())
        })
    })
}
