//! The two ways to close, and the close status.

use super::types::*;
use super::{bytes, guard, non_null, with_conn};
use crate::error::Error;

/// Sends a close frame with `status` and `reason` (`reason_len` bytes of UTF-8, at most 123;
/// `reason` may be NULL when `reason_len` is 0) and returns without waiting for the peer:
/// WinHTTP's `WinHttpWebSocketShutdown`, .NET's `CloseOutputAsync`.
///
/// In `WS_STATE_OPEN` it moves to `WS_STATE_CLOSE_SENT`: `ws_send` is refused from now on,
/// and `ws_receive` (also one already blocked on another thread) goes on delivering the peer's
/// data until `WS_BUFFER_CLOSE`. In `WS_STATE_CLOSE_RECEIVED` it answers the peer's close and
/// moves to `WS_STATE_CLOSED` and tears TCP down: a server closes it at once; a client waits
/// for the server to close it first (RFC 6455 §7.1.1), at most 1 s and never past
/// `WS_OPTION_SEND_TIMEOUT`.
///
/// Sendable statuses: 1000–1003, 1007–1014, 3000–4999; `WS_CLOSE_STATUS_EMPTY` (1005) sends
/// a close frame with no payload (the reason must be empty).
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INVALID_PARAMETER` for another status,
/// a reason that is too long, not UTF-8, or NULL with `reason_len` > 0 (nothing is sent);
/// `WS_ERROR_INVALID_OPERATION` in other states (a second shutdown included) or while another
/// sending call runs; `WS_ERROR_TIMEOUT` after `WS_OPTION_SEND_TIMEOUT` (aborted);
/// `WS_ERROR_CONNECTION_ERROR` (aborted); `WS_ERROR_OPERATION_CANCELLED`.
#[no_mangle]
pub extern "C" fn ws_shutdown(
    h: ws_handle,
    status: u16,
    reason: *const std::ffi::c_void,
    reason_len: usize,
) -> ws_error {
    guard(|| {
        with_conn(h, |c| {
            let reason = bytes(reason.cast(), reason_len, "reason")?;
            c.shutdown(status, reason)
        })
    })
}

/// The full close (WinHTTP's `WinHttpWebSocketClose`), all within `WS_OPTION_CLOSE_TIMEOUT`:
/// sends a close frame with `status` and `reason` unless one was sent already, waits for the
/// peer's close frame — reading and discarding data messages and answering pings — and tears
/// TCP down (a client waits up to 1 s for the server to close TCP first, RFC 6455 §7.1.1).
///
/// A `ws_receive` blocked on another thread returns `WS_ERROR_OPERATION_CANCELLED` at once; a
/// `ws_receive` started during or after `ws_close` returns `WS_ERROR_INVALID_OPERATION`. Use
/// `ws_shutdown` and keep receiving when data the peer sends after your close still matters.
///
/// Allowed in `WS_STATE_OPEN`, `WS_STATE_CLOSE_SENT` and `WS_STATE_CLOSE_RECEIVED` (then it
/// answers the peer's close and returns without waiting for another); in `WS_STATE_CLOSED` it
/// returns `WS_OK` at once. Whatever it returns, the transport is closed afterwards and only
/// `ws_query_close_status`, `ws_query_state` and `ws_close_handle` remain useful. Statuses and
/// reasons as for `ws_shutdown`. It never blocks longer than the close timeout plus
/// scheduling noise.
///
/// Returns `WS_OK` when the peer's close frame arrived; `WS_ERROR_INVALID_HANDLE`;
/// `WS_ERROR_INVALID_PARAMETER` (nothing is sent); `WS_ERROR_INVALID_OPERATION` in `NONE`,
/// `CONNECTING` or `ABORTED`, or while another sending call (`ws_send`, `ws_shutdown`,
/// `ws_close`) runs; `WS_ERROR_TIMEOUT` when the deadline passed (aborted);
/// `WS_ERROR_CONNECTION_ERROR` or `WS_ERROR_INVALID_SERVER_RESPONSE` on transport or protocol
/// failure (aborted); `WS_ERROR_OPERATION_CANCELLED` when `ws_close_handle` is called meanwhile.
#[no_mangle]
pub extern "C" fn ws_close(
    h: ws_handle,
    status: u16,
    reason: *const std::ffi::c_void,
    reason_len: usize,
) -> ws_error {
    guard(|| {
        with_conn(h, |c| {
            let reason = bytes(reason.cast(), reason_len, "reason")?;
            c.close(status, reason)
        })
    })
}

/// Reads the peer's close status and reason once its close frame has arrived (status 1005 when
/// the frame had no payload), or status 1006 with an empty reason once the connection ended
/// without one (aborted, dropped, timed out). The reason is copied to `reason` as bytes,
/// without a terminating NUL, and its length written to `*reason_consumed`.
///
/// With `reason` NULL and `reason_len` 0 it reports the size needed in `*reason_consumed`
/// (returning `WS_ERROR_INSUFFICIENT_BUFFER` when the reason is not empty). `*status` is
/// written only on `WS_OK`.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INVALID_PARAMETER` when `status` or
/// `reason_consumed` is NULL, or `reason` is NULL with `reason_len` > 0;
/// `WS_ERROR_INSUFFICIENT_BUFFER` when `reason_len` is too small (the size needed is in
/// `*reason_consumed`); `WS_ERROR_INVALID_OPERATION` before either event (outputs untouched).
#[no_mangle]
pub extern "C" fn ws_query_close_status(
    h: ws_handle,
    status: *mut u16,
    reason: *mut std::ffi::c_void,
    reason_len: usize,
    reason_consumed: *mut usize,
) -> ws_error {
    guard(|| {
        with_conn(h, |c| {
            non_null(status, "status")?;
            non_null(reason_consumed, "reason_consumed")?;
            if reason.is_null() && reason_len > 0 {
                return Err(Error::param("reason is NULL but reason_len is not 0"));
            }
            let (code, text) = c.close_status()?;
            // SAFETY: the pointers were checked above; `reason` has `reason_len` bytes of room
            // per the caller, and we write only when the reason fits.
            unsafe {
                *reason_consumed = text.len();
                if text.len() > reason_len {
                    return Err(Error::new(
                        WS_ERROR_INSUFFICIENT_BUFFER,
                        format!("the close reason needs {} bytes", text.len()),
                    ));
                }
                if !text.is_empty() {
                    std::ptr::copy_nonoverlapping(text.as_ptr(), reason.cast::<u8>(), text.len());
                }
                *status = code;
            }
            Ok(())
        })
    })
}
