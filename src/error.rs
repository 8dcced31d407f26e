//! Result codes (WinHTTP's numbers) and the crate's error type.

use std::fmt;

/// A result code: `WS_OK` (0) on success, otherwise one of the `WS_ERROR_*` values, which are
/// the Win32/WinHTTP numbers of the same meaning.
#[allow(non_camel_case_types)]
pub type ws_error = u32;

/// Success.
pub const WS_OK: ws_error = 0;
/// The handle is 0, unknown, or was already passed to `ws_close_handle`.
pub const WS_ERROR_INVALID_HANDLE: ws_error = 6;
/// An allocation failed.
pub const WS_ERROR_NOT_ENOUGH_MEMORY: ws_error = 8;
/// A NULL where a pointer is required, a bad length, a bad status code, a reason that is too
/// long or not UTF-8, a bad buffer type, mixed fragment types, or invalid UTF-8 in a text send.
pub const WS_ERROR_INVALID_PARAMETER: ws_error = 87;
/// A query's output buffer is too small; the size needed is reported.
pub const WS_ERROR_INSUFFICIENT_BUFFER: ws_error = 122;
/// Asynchronous mode: the operation has started and exactly one completion will follow
/// (never from inside the call that started it). Never returned by a blocking handle.
pub const WS_ERROR_IO_PENDING: ws_error = 997;
/// The call is not allowed in the handle's state, or a conflicting call is in progress.
pub const WS_ERROR_INVALID_OPERATION: ws_error = 4317;
/// The process has no file descriptors left (`EMFILE`/`ENFILE`: a connection needs its
/// socket, and one that blocks a wake-up descriptor too); close handles or raise
/// `RLIMIT_NOFILE`. WinHTTP's `ERROR_WINHTTP_OUT_OF_HANDLES`.
pub const WS_ERROR_OUT_OF_HANDLES: ws_error = 12001;
/// A timeout option expired.
pub const WS_ERROR_TIMEOUT: ws_error = 12002;
/// A bug inside the library (a caught panic); the connection is aborted.
pub const WS_ERROR_INTERNAL: ws_error = 12004;
/// The URL cannot be parsed.
pub const WS_ERROR_INVALID_URL: ws_error = 12005;
/// The URL's scheme is not `ws` or `wss`.
pub const WS_ERROR_UNRECOGNIZED_SCHEME: ws_error = 12006;
/// The host name could not be resolved.
pub const WS_ERROR_NAME_NOT_RESOLVED: ws_error = 12007;
/// An unknown option, or an option that does not apply to this handle or direction.
pub const WS_ERROR_INVALID_OPTION: ws_error = 12009;
/// The call was cancelled by `ws_close` or `ws_close_handle` on another thread.
pub const WS_ERROR_OPERATION_CANCELLED: ws_error = 12017;
/// A listener handle where a connection handle is needed, or the reverse.
pub const WS_ERROR_INCORRECT_HANDLE_TYPE: ws_error = 12018;
/// The handle is in the wrong phase for the request, e.g. a connect-time option after
/// `ws_connect`.
pub const WS_ERROR_INCORRECT_HANDLE_STATE: ws_error = 12019;
/// TCP connect was refused, or the host is unreachable.
pub const WS_ERROR_CANNOT_CONNECT: ws_error = 12029;
/// The transport failed, or the peer dropped TCP without a close frame.
pub const WS_ERROR_CONNECTION_ERROR: ws_error = 12030;
/// `ws_query_response_header` asked for a header the upgrade response did not carry.
pub const WS_ERROR_HEADER_NOT_FOUND: ws_error = 12150;
/// The peer broke the protocol: a bad handshake response, a bad frame, invalid UTF-8 or a bad
/// close payload.
pub const WS_ERROR_INVALID_SERVER_RESPONSE: ws_error = 12152;
/// The TLS handshake or a certificate check failed.
pub const WS_ERROR_SECURE_FAILURE: ws_error = 12175;

/// Every result code with its name, defined once.
const NAMES: &[(ws_error, &str)] = &[
    (WS_OK, "WS_OK\0"),
    (WS_ERROR_INVALID_HANDLE, "WS_ERROR_INVALID_HANDLE\0"),
    (WS_ERROR_NOT_ENOUGH_MEMORY, "WS_ERROR_NOT_ENOUGH_MEMORY\0"),
    (WS_ERROR_INVALID_PARAMETER, "WS_ERROR_INVALID_PARAMETER\0"),
    (
        WS_ERROR_INSUFFICIENT_BUFFER,
        "WS_ERROR_INSUFFICIENT_BUFFER\0",
    ),
    (WS_ERROR_IO_PENDING, "WS_ERROR_IO_PENDING\0"),
    (WS_ERROR_INVALID_OPERATION, "WS_ERROR_INVALID_OPERATION\0"),
    (WS_ERROR_OUT_OF_HANDLES, "WS_ERROR_OUT_OF_HANDLES\0"),
    (WS_ERROR_TIMEOUT, "WS_ERROR_TIMEOUT\0"),
    (WS_ERROR_INTERNAL, "WS_ERROR_INTERNAL\0"),
    (WS_ERROR_INVALID_URL, "WS_ERROR_INVALID_URL\0"),
    (
        WS_ERROR_UNRECOGNIZED_SCHEME,
        "WS_ERROR_UNRECOGNIZED_SCHEME\0",
    ),
    (WS_ERROR_NAME_NOT_RESOLVED, "WS_ERROR_NAME_NOT_RESOLVED\0"),
    (WS_ERROR_INVALID_OPTION, "WS_ERROR_INVALID_OPTION\0"),
    (
        WS_ERROR_OPERATION_CANCELLED,
        "WS_ERROR_OPERATION_CANCELLED\0",
    ),
    (
        WS_ERROR_INCORRECT_HANDLE_TYPE,
        "WS_ERROR_INCORRECT_HANDLE_TYPE\0",
    ),
    (
        WS_ERROR_INCORRECT_HANDLE_STATE,
        "WS_ERROR_INCORRECT_HANDLE_STATE\0",
    ),
    (WS_ERROR_CANNOT_CONNECT, "WS_ERROR_CANNOT_CONNECT\0"),
    (WS_ERROR_CONNECTION_ERROR, "WS_ERROR_CONNECTION_ERROR\0"),
    (WS_ERROR_HEADER_NOT_FOUND, "WS_ERROR_HEADER_NOT_FOUND\0"),
    (
        WS_ERROR_INVALID_SERVER_RESPONSE,
        "WS_ERROR_INVALID_SERVER_RESPONSE\0",
    ),
    (WS_ERROR_SECURE_FAILURE, "WS_ERROR_SECURE_FAILURE\0"),
];

/// The name of a result code as a NUL-terminated static string; unknown codes are
/// `"WS_ERROR_UNKNOWN"`.
pub fn name_with_nul(code: ws_error) -> &'static str {
    NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("WS_ERROR_UNKNOWN\0", |(_, n)| n)
}

/// The name of a result code, without the terminating NUL.
pub fn name(code: ws_error) -> &'static str {
    let n = name_with_nul(code);
    &n[..n.len() - 1]
}

/// A failure: the code returned to C and a detail for `ws_last_error_message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The result code.
    pub code: ws_error,
    /// A human-readable detail that says what happened and, where it helps, what to do.
    pub detail: String,
}

impl Error {
    /// A failure with a code and a detail.
    pub fn new(code: ws_error, detail: impl Into<String>) -> Self {
        Error {
            code,
            detail: detail.into(),
        }
    }
    /// A system call that needs a descriptor failed: `WS_ERROR_OUT_OF_HANDLES` when the
    /// process ran out of them, otherwise `code`. `what` says what was being created.
    pub fn from_io(code: ws_error, what: &str, e: &std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::EMFILE) | Some(libc::ENFILE) => Error::new(
                WS_ERROR_OUT_OF_HANDLES,
                format!("{what}: the process has no file descriptors left ({e}); close handles or raise RLIMIT_NOFILE"),
            ),
            _ => Error::new(code, format!("{what}: {e}")),
        }
    }

    /// `WS_ERROR_IO_PENDING`: an asynchronous operation started (not a failure: the C
    /// function returns the code and records no detail).
    pub fn pending() -> Self {
        Self::new(WS_ERROR_IO_PENDING, String::new())
    }
    /// `WS_ERROR_INVALID_PARAMETER`.
    pub fn param(detail: impl Into<String>) -> Self {
        Self::new(WS_ERROR_INVALID_PARAMETER, detail)
    }
    /// `WS_ERROR_INVALID_OPERATION`.
    pub fn operation(detail: impl Into<String>) -> Self {
        Self::new(WS_ERROR_INVALID_OPERATION, detail)
    }
    /// `WS_ERROR_OPERATION_CANCELLED`.
    pub fn cancelled(detail: impl Into<String>) -> Self {
        Self::new(WS_ERROR_OPERATION_CANCELLED, detail)
    }
    /// `WS_ERROR_TIMEOUT`.
    pub fn timeout(detail: impl Into<String>) -> Self {
        Self::new(WS_ERROR_TIMEOUT, detail)
    }
    /// `WS_ERROR_CONNECTION_ERROR`.
    pub fn connection(detail: impl Into<String>) -> Self {
        Self::new(WS_ERROR_CONNECTION_ERROR, detail)
    }
    /// `WS_ERROR_INVALID_SERVER_RESPONSE`.
    pub fn peer(detail: impl Into<String>) -> Self {
        Self::new(WS_ERROR_INVALID_SERVER_RESPONSE, detail)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", name(self.code), self.detail)
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_terminated() {
        for (i, (code, n)) in NAMES.iter().enumerate() {
            assert!(n.ends_with('\0'));
            assert_eq!(name(*code), &n[..n.len() - 1]);
            assert!(NAMES[i + 1..].iter().all(|(c, _)| c != code));
        }
        assert_eq!(name(424242), "WS_ERROR_UNKNOWN");
    }
}
