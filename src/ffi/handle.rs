//! Opening, querying and releasing handles.

use super::types::*;
use super::{c_str, guard, issue_conn, non_null, with_conn};
use crate::connection::Connection;
use crate::handles;

/// Creates a client handle for `url` (`ws://` or `wss://host[:port]/path?query`) and writes it to
/// `*out_ws`. No I/O happens until `ws_connect`. The handle starts in `WS_STATE_NONE`; set
/// options and request headers now.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_PARAMETER` when `url` or `out_ws` is NULL or `url` is not
/// UTF-8; `WS_ERROR_INVALID_URL` when the URL cannot be parsed (or has user info or a
/// fragment); `WS_ERROR_UNRECOGNIZED_SCHEME` for a scheme other than `ws` or `wss`. Release
/// the handle with `ws_close_handle`.
#[no_mangle]
pub extern "C" fn ws_open(url: *const std::ffi::c_char, out_ws: *mut ws_handle) -> ws_error {
    guard(|| {
        non_null(out_ws, "out_ws")?;
        let url = c_str(url, "url")?;
        issue_conn(out_ws, Connection::open(url)?);
        Ok(())
    })
}

/// Writes the handle's state (`WS_STATE_*`) to `*state`. Allowed in every state.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INCORRECT_HANDLE_TYPE` for a
/// listener; `WS_ERROR_INVALID_PARAMETER` when `state` is NULL.
#[no_mangle]
pub extern "C" fn ws_query_state(h: ws_handle, state: *mut u32) -> ws_error {
    guard(|| {
        with_conn(h, |c| {
            non_null(state, "state")?;
            // SAFETY: checked non-NULL; the caller owns the pointee.
            unsafe { *state = c.state() as u32 };
            Ok(())
        })
    })
}

/// Releases a connection or listener handle, in any state and from any thread. A listener
/// stops listening, and a `ws_accept` waiting on it returns `WS_ERROR_OPERATION_CANCELLED`
/// within 100 ms; connections it accepted live on. An open connection is dropped at once
/// without a close handshake (use `ws_close` first for a clean close); calls blocked on the
/// handle on other threads return `WS_ERROR_OPERATION_CANCELLED` within 100 ms (a blocked
/// `ws_close` included); the handle value never becomes valid again; the memory is freed when
/// the last call using the handle has returned.
///
/// Asynchronous handles (a status callback or a queue): `ws_close_handle` returns at once;
/// every pending operation then completes with `WS_ERROR_OPERATION_CANCELLED` (the receive,
/// the sends in call order, the shutdown or close, the connect or accept) and
/// `WS_CALLBACK_STATUS_HANDLE_CLOSING` comes last, also for a handle that never started an
/// operation; after it nothing for the handle is delivered, and its context and buffers may
/// be freed. A queue handle can be closed only when every handle bound to it has had its
/// `HANDLE_CLOSING` delivered (`WS_ERROR_INVALID_OPERATION` before); a thread waiting in
/// `ws_queue_wait` on it then returns `WS_ERROR_OPERATION_CANCELLED`.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE` for 0, an unknown handle, or a second call;
/// `WS_ERROR_INVALID_OPERATION` for a queue that still has handles bound.
#[no_mangle]
pub extern "C" fn ws_close_handle(h: ws_handle) -> ws_error {
    guard(|| {
        if let handles::Object::Queue(q) = handles::get(h)? {
            if q.bound() > 0 {
                return Err(crate::error::Error::operation(format!(
                    "{} handle(s) bound to this queue have not had their WS_CALLBACK_STATUS_HANDLE_CLOSING delivered yet: close them and run ws_queue_wait until it arrives",
                    q.bound()
                )));
            }
        }
        handles::remove(h)?.cancel(h);
        Ok(())
    })
}
