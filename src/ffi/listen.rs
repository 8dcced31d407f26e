//! The server role: listening and accepting.

use super::types::*;
use super::{c_str, guard, issue, issue_conn, non_null};
use crate::connection::Listener;
use crate::handles::{self, Object};
use std::sync::Arc;

/// Creates a listener for `url` (`ws://host:port/path`; port 0 picks a free port, read it
/// back with `WS_OPTION_LOCAL_PORT`) and binds it at once. Writes the listener handle to
/// `*out_listener`. Set the subprotocols it accepts and the timeouts its connections inherit
/// with `ws_set_option`; release it with `ws_close_handle`.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_PARAMETER` when a pointer is NULL or `url` is not UTF-8;
/// `WS_ERROR_INVALID_URL`; `WS_ERROR_UNRECOGNIZED_SCHEME`; `WS_ERROR_NAME_NOT_RESOLVED`;
/// `WS_ERROR_CANNOT_CONNECT` when the address cannot be bound (in use, not local, no
/// permission).
#[no_mangle]
pub extern "C" fn ws_listen(
    url: *const std::ffi::c_char,
    out_listener: *mut ws_handle,
) -> ws_error {
    guard(|| {
        non_null(out_listener, "out_listener")?;
        let url = c_str(url, "url")?;
        issue(
            out_listener,
            Object::Listener(Arc::new(Listener::bind(url)?)),
        );
        Ok(())
    })
}

/// Blocks until one client completes a valid WebSocket upgrade on the listener's path, and
/// writes the new connection's handle (state `WS_STATE_OPEN`) to `*out_ws`. Connections
/// inherit the listener's timeouts; `WS_OPTION_SELECTED_SUBPROTOCOL` tells the subprotocol
/// chosen (the listener's most preferred one that the client offered).
///
/// Requests for another path are answered with HTTP 404, malformed ones with 400 (426 for a
/// WebSocket version other than 13), and requests that do not complete within the listener's
/// `WS_OPTION_RECEIVE_TIMEOUT` (or `WS_OPTION_CONNECT_TIMEOUT` when that is 0) are dropped;
/// none of them disturbs the waiting call or another client. One `ws_accept` may run at a time
/// per listener. Accepted connections follow the server's rules: frames are sent unmasked,
/// an unmasked frame from the client fails the connection with 1002, and TCP is closed as soon
/// as the close handshake is done.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INCORRECT_HANDLE_TYPE` for a
/// connection handle; `WS_ERROR_INVALID_PARAMETER` when `out_ws` is NULL;
/// `WS_ERROR_INVALID_OPERATION` while another `ws_accept` runs; `WS_ERROR_TIMEOUT` after the
/// listener's `WS_OPTION_RECEIVE_TIMEOUT` (not fatal); `WS_ERROR_OPERATION_CANCELLED` when
/// `ws_close_handle` closes the listener meanwhile. When a valid request arrives but its
/// connection cannot be set up (the process is out of descriptors), the client is answered
/// with HTTP 503 (never with a 101) and `ws_accept` returns `WS_ERROR_OUT_OF_HANDLES`; the
/// listener stays usable.
#[no_mangle]
pub extern "C" fn ws_accept(listener: ws_handle, out_ws: *mut ws_handle) -> ws_error {
    guard(|| {
        let l = handles::get(listener)?.listener()?;
        if !l.is_async() {
            // (an asynchronous accept's new handle comes with its completion)
            non_null(out_ws, "out_ws")?;
        }
        issue_conn(out_ws, l.accept_on(listener)?);
        Ok(())
    })
}
