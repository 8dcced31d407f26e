//! The C API: every `extern "C"` function, the panic boundary and the argument checks.
//! No protocol logic lives here: each function checks its arguments, finds the handle's object
//! and calls into [`crate::connection`].
//!
//! The functions take raw pointers from C, which cannot see Rust's `unsafe`: each one checks
//! its pointers for NULL and documents what the caller must guarantee about the rest.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod async_api;
mod close;
mod error;
mod handle;
mod io;
mod listen;
mod options;
mod types;

pub use async_api::*;
pub use close::*;
pub use error::*;
pub use handle::*;
pub use io::*;
pub use listen::*;
pub use options::*;
pub use types::*;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::handles::{self, Object};

/// Runs an exported function's body: a panic becomes `WS_ERROR_INTERNAL`, and every failure
/// records its detail for `ws_last_error_message`. The recording happens inside the panic
/// boundary too, so nothing can unwind out of an `extern "C"` function.
pub(crate) fn guard(body: impl FnOnce() -> Result<()>) -> ws_error {
    let run = AssertUnwindSafe(|| match body() {
        Ok(()) => WS_OK,
        Err(e) if e.code == WS_ERROR_IO_PENDING => e.code, // started, not failed
        Err(e) => {
            error::set_last_error(&e.detail);
            e.code
        }
    });
    catch_unwind(run).unwrap_or_else(|_| {
        let _ = catch_unwind(|| {
            error::set_last_error(
                "internal error: the library caught a panic (a bug in wshandle; please report it); the connection is aborted",
            )
        });
        WS_ERROR_INTERNAL
    })
}

/// Finds a connection handle's object and runs `f` on it. A panic inside aborts the connection.
pub(crate) fn with_conn(h: ws_handle, f: impl FnOnce(&Connection) -> Result<()>) -> Result<()> {
    let pinned = handles::pin(h)?; // no lock, no reference count: the call holds its slot
    let conn = pinned.as_connection()?;
    let result = catch_unwind(AssertUnwindSafe(|| f(conn)));
    match result {
        Ok(r) => r,
        Err(panic) => {
            conn.cancel_after_panic();
            std::panic::resume_unwind(panic)
        }
    }
}

/// Stores a new object and writes its handle.
pub(crate) fn issue(out: *mut ws_handle, object: Object) {
    let h = handles::insert(object);
    // SAFETY: the caller checked `out` is not NULL; C owns the pointee.
    unsafe { *out = h };
}

/// Stores a new connection and writes its handle.
pub(crate) fn issue_conn(out: *mut ws_handle, conn: Connection) {
    issue(out, Object::Connection(Arc::new(conn)));
}

/// `Err(INVALID_PARAMETER)` when `p` is NULL.
pub(crate) fn non_null<T>(p: *const T, name: &str) -> Result<()> {
    if p.is_null() {
        Err(Error::new(
            WS_ERROR_INVALID_PARAMETER,
            format!("{name} is NULL"),
        ))
    } else {
        Ok(())
    }
}

/// A byte slice from a C pointer and length; NULL is allowed only with length 0.
pub(crate) fn bytes<'a>(p: *const u8, len: usize, name: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    non_null(p, name)?;
    if len > isize::MAX as usize {
        return Err(Error::param(format!("{name}'s length is impossibly large")));
    }
    // SAFETY: the C caller promises `p` points to `len` readable bytes that stay valid and
    // unchanged for the duration of the call.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A UTF-8 string from a NUL-terminated C string.
pub(crate) fn c_str<'a>(p: *const std::ffi::c_char, name: &str) -> Result<&'a str> {
    non_null(p, name)?;
    // SAFETY: the C caller promises a NUL-terminated string valid for the call.
    let s = unsafe { std::ffi::CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| Error::param(format!("{name} is not valid UTF-8")))
}
