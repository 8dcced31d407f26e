//! Version, error names and the thread-local error detail.

use std::cell::RefCell;
use std::ffi::c_char;

use super::types::ws_error;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records the detail of this thread's latest failure. During thread exit (a call from a
/// pthread-key or C++ `thread_local` destructor, after Rust's thread-locals are gone) there is
/// nowhere to keep it, and the detail is dropped: the result code still tells what happened.
pub(crate) fn set_last_error(detail: &str) {
    let _ = LAST_ERROR.try_with(|e| {
        if let Ok(mut e) = e.try_borrow_mut() {
            e.clear();
            e.push_str(detail);
        }
    });
}

/// The library's version as `"MAJOR.MINOR.PATCH"`, the same as `WSHANDLE_VERSION` in the
/// header it was built with. The string is static; never free it.
#[no_mangle]
pub extern "C" fn ws_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The name of a result code, e.g. `"WS_ERROR_TIMEOUT"`, as a static string;
/// `"WS_ERROR_UNKNOWN"` for numbers that are no result code. Never NULL; never free it.
#[no_mangle]
pub extern "C" fn ws_error_name(code: ws_error) -> *const c_char {
    crate::error::name_with_nul(code).as_ptr().cast()
}

/// Copies a human-readable detail of the latest call *on this thread* that failed into `buf`
/// (NUL-terminated, truncated at a UTF-8 character boundary when `len` is too small; nothing
/// is written when `buf` is NULL or `len` is 0) and returns the full length of the message
/// in bytes, without the NUL. Returns 0 when no call on this thread has failed yet.
/// Successful calls do not clear it. Usable with any handle state, from any thread.
#[no_mangle]
pub extern "C" fn ws_last_error_message(buf: *mut c_char, len: usize) -> usize {
    std::panic::catch_unwind(|| {
        LAST_ERROR
            .try_with(|e| {
                let Ok(msg) = e.try_borrow() else {
                    return 0;
                };
                if !buf.is_null() && len > 0 {
                    let mut n = msg.len().min(len - 1);
                    while !msg.is_char_boundary(n) {
                        n -= 1;
                    }
                    // SAFETY: the caller promises `buf` has room for `len` bytes; n < len.
                    unsafe {
                        std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
                        *buf.add(n) = 0;
                    }
                }
                msg.len()
            })
            .unwrap_or(0) // during thread exit: no detail kept
    })
    .unwrap_or(0)
}
