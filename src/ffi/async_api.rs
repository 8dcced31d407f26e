//! The asynchronous mode's C API: status callbacks, completion queues, the completion
//! records and their numbers, and the two options that bind a handle (API.md, "Asynchronous
//! mode"). Only translation: the work is in [`crate::reactor`].

use std::ffi::c_void;
use std::sync::Arc;
use std::time::Duration;

use super::types::*;
use super::{guard, issue, non_null};
use crate::error::{Error, Result};
use crate::handles::{self, Object};
use crate::reactor::pending::{Completion, Operation};
use crate::reactor::{Delivery, Loop};

/// `ws_receive` completed: `info` is a `ws_web_socket_status` {bytes, buffer type};
/// `WS_BUFFER_CLOSE` with 0 bytes for the peer's close frame (WinHTTP's value).
pub const WS_CALLBACK_STATUS_READ_COMPLETE: u32 = 0x0008_0000;
/// `ws_send` completed (every byte handed to the OS): `info` is a `ws_web_socket_status`
/// with the length and buffer type the send was given (WinHTTP's value).
pub const WS_CALLBACK_STATUS_WRITE_COMPLETE: u32 = 0x0010_0000;
/// An operation failed or was cancelled: `info` is a `ws_async_result` {operation, error},
/// the error being what the blocking call would have returned (WinHTTP's value).
pub const WS_CALLBACK_STATUS_REQUEST_ERROR: u32 = 0x0020_0000;
/// `ws_close` succeeded: the peer's close frame arrived and TCP is closed; `info` is NULL
/// (WinHTTP's value).
pub const WS_CALLBACK_STATUS_CLOSE_COMPLETE: u32 = 0x0200_0000;
/// `ws_shutdown` succeeded: the close frame is handed to the OS; `info` is NULL (WinHTTP's
/// value).
pub const WS_CALLBACK_STATUS_SHUTDOWN_COMPLETE: u32 = 0x0400_0000;
/// `ws_close_handle` was called: always the handle's last completion; after it nothing for
/// the handle is delivered and its context and buffers may be freed. `info` is NULL
/// (WinHTTP's value).
pub const WS_CALLBACK_STATUS_HANDLE_CLOSING: u32 = 0x0000_0800;
/// `ws_connect` succeeded: the handle is `WS_STATE_OPEN`; `info` is NULL. (wshandle's
/// number: a bit WinHTTP's callback statuses do not use.)
pub const WS_CALLBACK_STATUS_CONNECT_COMPLETE: u32 = 0x2000_0000;
/// `ws_accept` succeeded: `info` points to the new connection's `ws_handle` (in a queue
/// record: `accepted`). The connection is asynchronous like its listener. (wshandle's number:
/// a bit WinHTTP's callback statuses do not use.)
pub const WS_CALLBACK_STATUS_ACCEPT_COMPLETE: u32 = 0x4000_0000;

/// `ws_async_result.operation`: `ws_send` (WinHTTP's value).
pub const WS_OPERATION_SEND: u32 = 0;
/// `ws_async_result.operation`: `ws_receive` (WinHTTP's value).
pub const WS_OPERATION_RECEIVE: u32 = 1;
/// `ws_async_result.operation`: `ws_close` (WinHTTP's value).
pub const WS_OPERATION_CLOSE: u32 = 2;
/// `ws_async_result.operation`: `ws_shutdown` (WinHTTP's value).
pub const WS_OPERATION_SHUTDOWN: u32 = 3;
/// `ws_async_result.operation`: `ws_connect` (wshandle's number).
pub const WS_OPERATION_CONNECT: u32 = 4;
/// `ws_async_result.operation`: `ws_accept` (wshandle's number).
pub const WS_OPERATION_ACCEPT: u32 = 5;

/// Pointer-sized, `value` points to a `void *` (len `sizeof(void *)`): the `context` passed
/// with every completion of the handle, read when the completion is delivered. Settable at
/// any time, on connections and listeners, blocking or not (WinHTTP's
/// `WINHTTP_OPTION_CONTEXT_VALUE`, 45). Connections accepted by a listener start with the
/// listener's value.
pub const WS_OPTION_CONTEXT_VALUE: u32 = 45;
/// `ws_handle` (len 8): binds a connection (before `ws_connect`) or listener (before its
/// first `ws_accept`) to the completion queue with this handle, making it asynchronous in
/// queue mode; 0 makes it blocking again. `WS_ERROR_INVALID_OPERATION` on a handle that has
/// a status callback; `WS_ERROR_INCORRECT_HANDLE_STATE` once I/O began;
/// `WS_ERROR_INCORRECT_HANDLE_TYPE` when the value is not a queue handle (or 0). Reads back
/// the queue's handle (0 for none).
pub const WS_OPTION_COMPLETION_QUEUE: u32 = 1100;

/// A status callback (WinHTTP's `WINHTTP_STATUS_CALLBACK` shape): the handle, its
/// `WS_OPTION_CONTEXT_VALUE`, the `WS_CALLBACK_STATUS_*`, and the status's information
/// (`NULL` and 0 when it has none; valid only during the call).
#[allow(non_camel_case_types)]
pub type ws_status_callback = Option<
    unsafe extern "C" fn(
        h: ws_handle,
        context: *mut c_void,
        status: u32,
        info: *mut c_void,
        info_len: usize,
    ),
>;

/// WinHTTP's `WINHTTP_WEB_SOCKET_STATUS`: the information of READ_COMPLETE and
/// WRITE_COMPLETE.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ws_web_socket_status {
    /// Bytes received into the buffer, or the length of the send.
    pub bytes_transferred: usize,
    /// `WS_BUFFER_*`.
    pub buffer_type: u32,
}

/// WinHTTP's `WINHTTP_WEB_SOCKET_ASYNC_RESULT`: the information of REQUEST_ERROR.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ws_async_result {
    /// `WS_OPERATION_*`.
    pub operation: u32,
    /// What the blocking call would have returned.
    pub error: ws_error,
}

/// One completion from `ws_queue_wait`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ws_completion {
    /// The handle the completion belongs to.
    pub handle: ws_handle,
    /// The handle's `WS_OPTION_CONTEXT_VALUE` when the completion was delivered.
    pub context: *mut c_void,
    /// `WS_CALLBACK_STATUS_*`.
    pub status: u32,
    /// READ_COMPLETE and WRITE_COMPLETE: bytes and buffer type (zero otherwise).
    pub io: ws_web_socket_status,
    /// REQUEST_ERROR: the operation and its error (zero otherwise).
    pub result: ws_async_result,
    /// ACCEPT_COMPLETE: the new connection (0 otherwise).
    pub accepted: ws_handle,
}

impl Default for ws_completion {
    /// An all-zero record (a NULL context), for arrays handed to `ws_queue_wait`.
    fn default() -> Self {
        ws_completion {
            handle: 0,
            context: std::ptr::null_mut(),
            status: 0,
            io: ws_web_socket_status::default(),
            result: ws_async_result::default(),
            accepted: 0,
        }
    }
}

fn operation(op: Operation) -> u32 {
    match op {
        Operation::Send => WS_OPERATION_SEND,
        Operation::Receive => WS_OPERATION_RECEIVE,
        Operation::Close => WS_OPERATION_CLOSE,
        Operation::Shutdown => WS_OPERATION_SHUTDOWN,
        Operation::Connect => WS_OPERATION_CONNECT,
        Operation::Accept => WS_OPERATION_ACCEPT,
    }
}

/// The C record of a delivery.
fn record(d: &Delivery) -> ws_completion {
    let mut c = ws_completion {
        handle: d.handle,
        context: d.binding.context.load(std::sync::atomic::Ordering::SeqCst) as *mut c_void,
        ..ws_completion::default()
    };
    c.status = match d.completion {
        Completion::Connected => WS_CALLBACK_STATUS_CONNECT_COMPLETE,
        Completion::Accepted(h) => {
            c.accepted = h;
            WS_CALLBACK_STATUS_ACCEPT_COMPLETE
        }
        Completion::Read { bytes, buffer_type } => {
            c.io = ws_web_socket_status {
                bytes_transferred: bytes,
                buffer_type,
            };
            WS_CALLBACK_STATUS_READ_COMPLETE
        }
        Completion::Written { bytes, buffer_type } => {
            c.io = ws_web_socket_status {
                bytes_transferred: bytes,
                buffer_type,
            };
            WS_CALLBACK_STATUS_WRITE_COMPLETE
        }
        Completion::ShutdownDone => WS_CALLBACK_STATUS_SHUTDOWN_COMPLETE,
        Completion::Closed => WS_CALLBACK_STATUS_CLOSE_COMPLETE,
        Completion::Failed { op, error } => {
            c.result = ws_async_result {
                operation: operation(op),
                error,
            };
            WS_CALLBACK_STATUS_REQUEST_ERROR
        }
        Completion::HandleClosing => WS_CALLBACK_STATUS_HANDLE_CLOSING,
    };
    c
}

/// Calls a C status callback with a delivery, WinHTTP's way.
fn call(cb: unsafe extern "C" fn(ws_handle, *mut c_void, u32, *mut c_void, usize), d: &Delivery) {
    let mut c = record(d);
    let (info, len): (*mut c_void, usize) = match c.status {
        WS_CALLBACK_STATUS_READ_COMPLETE | WS_CALLBACK_STATUS_WRITE_COMPLETE => (
            (&mut c.io as *mut ws_web_socket_status).cast(),
            std::mem::size_of::<ws_web_socket_status>(),
        ),
        WS_CALLBACK_STATUS_REQUEST_ERROR => (
            (&mut c.result as *mut ws_async_result).cast(),
            std::mem::size_of::<ws_async_result>(),
        ),
        WS_CALLBACK_STATUS_ACCEPT_COMPLETE => (
            (&mut c.accepted as *mut ws_handle).cast(),
            std::mem::size_of::<ws_handle>(),
        ),
        _ => (std::ptr::null_mut(), 0),
    };
    // SAFETY: the C caller gave us this callback for this purpose; `info` points to a live
    // local for the duration of the call.
    unsafe { cb(c.handle, c.context, c.status, info, len) };
}

/// Makes a connection (before `ws_connect`) or listener (before its first `ws_accept`)
/// asynchronous in callback mode: the library's I/O threads do its work and call `cb` with
/// every completion, one at a time per handle and in order (never from inside the call that
/// started the operation). The callback may call any `ws_*` function except
/// `ws_queue_wait`; it should not block, since it delays the other handles of its thread.
/// `cb` NULL makes the handle blocking again. The callback gets `HANDLE_CLOSING` last, after
/// `ws_close_handle`, even when no operation was ever started.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INCORRECT_HANDLE_TYPE` for a queue;
/// `WS_ERROR_INVALID_OPERATION` when the handle is bound to a queue;
/// `WS_ERROR_INCORRECT_HANDLE_STATE` once I/O began (after `ws_connect` or `ws_accept`).
#[no_mangle]
pub extern "C" fn ws_set_status_callback(h: ws_handle, cb: ws_status_callback) -> ws_error {
    guard(|| {
        let object = handles::get(h)?;
        let deliver = cb.map(|cb| {
            let f: crate::reactor::StatusCallback = Arc::new(move |d: &Delivery| call(cb, d));
            f
        });
        object.binder()?.set_callback(deliver)
    })
}

/// Creates a completion queue and writes its handle to `*out_queue`: an event loop that no
/// library thread touches. Bind connections and listeners to it with
/// `WS_OPTION_COMPLETION_QUEUE`; `ws_queue_wait` then does their I/O on the calling thread
/// and returns their completions. Release it with `ws_close_handle` once every handle bound
/// to it has had its `HANDLE_CLOSING` delivered.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_PARAMETER` when `out_queue` is NULL;
/// `WS_ERROR_NOT_ENOUGH_MEMORY` or `WS_ERROR_OUT_OF_HANDLES` when its descriptors cannot be
/// created.
#[no_mangle]
pub extern "C" fn ws_queue_create(out_queue: *mut ws_handle) -> ws_error {
    guard(|| {
        non_null(out_queue, "out_queue")?;
        issue(out_queue, Object::Queue(Loop::new()?));
        Ok(())
    })
}

/// Drives the queue on the calling thread: does the ready I/O of its handles, fires their
/// due timeouts and keepalives, and returns up to `max` completions in `out` (in order; per
/// handle in the order they happened), writing their number to `*count`. Waits at most
/// `timeout_ms` for the first one: 0 does the ready work and returns at once,
/// `0xFFFFFFFF` waits without limit (Win32's `INFINITE`). One thread waits on a queue at a
/// time; other threads' calls on the queue's handles wake it.
///
/// Returns `WS_OK` with `*count` ≥ 1; `WS_ERROR_TIMEOUT` with `*count` 0 when nothing
/// completed in time; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INCORRECT_HANDLE_TYPE` for a
/// connection or listener; `WS_ERROR_INVALID_PARAMETER` when `out` or `count` is NULL or `max`
/// is 0; `WS_ERROR_INVALID_OPERATION` while another thread waits on the queue (or when called
/// from a status callback); `WS_ERROR_OPERATION_CANCELLED` when `ws_close_handle` closed the
/// queue meanwhile. `*count` is written whatever the result (0 on failure).
#[no_mangle]
pub extern "C" fn ws_queue_wait(
    queue: ws_handle,
    out: *mut ws_completion,
    max: usize,
    count: *mut usize,
    timeout_ms: u32,
) -> ws_error {
    guard(|| {
        non_null(count, "count")?;
        // SAFETY: checked non-NULL; the caller owns the pointee.
        unsafe { *count = 0 };
        let q = handles::get(queue)?.queue()?;
        non_null(out, "out")?;
        if crate::reactor::on_io_thread() {
            return Err(Error::operation(
                "ws_queue_wait cannot be called from a status callback (it would hold up the other handles of the callback's I/O thread)",
            ));
        }
        if max == 0 || max > isize::MAX as usize / std::mem::size_of::<ws_completion>() {
            return Err(Error::param("max must be at least 1 (and fit in memory)"));
        }
        let timeout = match timeout_ms {
            u32::MAX => Duration::MAX,
            ms => Duration::from_millis(u64::from(ms)),
        };
        let got = q.wait(max, timeout)?;
        if got.is_empty() {
            return Err(Error::timeout(
                "no completion arrived within the timeout given to ws_queue_wait",
            ));
        }
        for (i, d) in got.iter().enumerate() {
            // SAFETY: the caller promised `out` has room for `max` records; i < max.
            unsafe { out.add(i).write(record(d)) };
        }
        // SAFETY: as above.
        unsafe { *count = got.len() };
        Ok(())
    })
}

/// Writes the queue's descriptor to `*fd`, for an outside event loop (epoll, libuv, Qt,
/// Python's `loop.add_reader`). It is level-triggered: readable while I/O is ready, a
/// completion waits, or a deadline (a timeout, a keepalive ping) has fallen due — and not
/// otherwise, except for a moment after another thread's call woke it. When it is readable,
/// call `ws_queue_wait` with timeout 0. Only wait for readability on it; never read it or
/// close it (it belongs to the queue until `ws_close_handle`).
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INCORRECT_HANDLE_TYPE`;
/// `WS_ERROR_INVALID_PARAMETER` when `fd` is NULL.
#[no_mangle]
pub extern "C" fn ws_queue_fd(queue: ws_handle, fd: *mut std::ffi::c_int) -> ws_error {
    guard(|| {
        let q = handles::get(queue)?.queue()?;
        non_null(fd, "fd")?;
        // SAFETY: checked non-NULL; the caller owns the pointee.
        unsafe { *fd = q.fd() };
        Ok(())
    })
}

/// Whether `option` is one of the options that bind a handle (handled here).
pub(crate) fn is_binding_option(option: u32) -> bool {
    matches!(option, WS_OPTION_CONTEXT_VALUE | WS_OPTION_COMPLETION_QUEUE)
}

/// `ws_set_option` for `WS_OPTION_CONTEXT_VALUE` and `WS_OPTION_COMPLETION_QUEUE`.
pub(crate) fn set_binding_option(
    object: &Object,
    option: u32,
    value: *const c_void,
    len: usize,
) -> Result<()> {
    let binder = object.binder()?;
    let want = if option == WS_OPTION_CONTEXT_VALUE {
        std::mem::size_of::<*mut c_void>()
    } else {
        8
    };
    if len != want {
        return Err(Error::param(format!(
            "this option takes a {want}-byte value; len was {len}"
        )));
    }
    if option == WS_OPTION_CONTEXT_VALUE {
        // SAFETY: `value` points to a `void *` per the caller (checked non-NULL, len fits).
        let v = unsafe { value.cast::<*mut c_void>().read_unaligned() };
        binder.set_context(v as usize);
        return Ok(());
    }
    // SAFETY: `value` points to a `ws_handle` per the caller (checked non-NULL, len 8).
    let q = unsafe { value.cast::<ws_handle>().read_unaligned() };
    if q == 0 {
        return binder.set_queue(None);
    }
    let lp = handles::get(q)
        .map_err(|_| {
            Error::new(
                WS_ERROR_INCORRECT_HANDLE_TYPE,
                "the value of WS_OPTION_COMPLETION_QUEUE is not an open queue handle (from ws_queue_create)",
            )
        })?
        .queue()?;
    binder.set_queue(Some((q, lp)))
}

/// `ws_query_option` for `WS_OPTION_CONTEXT_VALUE` and `WS_OPTION_COMPLETION_QUEUE`.
pub(crate) fn query_binding_option(
    object: &Object,
    option: u32,
    value: *mut c_void,
    len: *mut usize,
) -> Result<()> {
    let binder = object.binder()?;
    let bytes: Vec<u8> = if option == WS_OPTION_CONTEXT_VALUE {
        binder.context().to_ne_bytes().to_vec()
    } else {
        binder.queue().to_ne_bytes().to_vec()
    };
    super::options::put_value(&bytes, value, len)
}
