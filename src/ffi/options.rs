//! Options and request headers.

use super::types::*;
use super::{bytes, c_str, guard, non_null, with_conn};
use crate::connection::options::{Opt, Value, ValueType};
use crate::error::{Error, Result};
use crate::handles::{self, Object};

/// Maps a C option number to the option.
fn option(id: u32) -> Result<Opt> {
    Ok(match id {
        WS_OPTION_CONNECT_TIMEOUT => Opt::ConnectTimeout,
        WS_OPTION_SEND_TIMEOUT => Opt::SendTimeout,
        WS_OPTION_RECEIVE_TIMEOUT => Opt::ReceiveTimeout,
        WS_OPTION_CLOSE_TIMEOUT => Opt::CloseTimeout,
        WS_OPTION_KEEPALIVE_INTERVAL => Opt::KeepaliveInterval,
        WS_OPTION_KEEPALIVE_TIMEOUT => Opt::KeepaliveTimeout,
        WS_OPTION_MAX_MESSAGE_SIZE => Opt::MaxMessageSize,
        WS_OPTION_SUBPROTOCOLS => Opt::Subprotocols,
        WS_OPTION_SELECTED_SUBPROTOCOL => Opt::SelectedSubprotocol,
        WS_OPTION_HTTP_STATUS => Opt::HttpStatus,
        WS_OPTION_LOCAL_PORT => Opt::LocalPort,
        WS_OPTION_TLS_CA_FILE => Opt::TlsCaFile,
        WS_OPTION_TLS_INSECURE_SKIP_VERIFY => Opt::TlsInsecureSkipVerify,
        WS_OPTION_TLS_CERT_FILE => Opt::TlsCertFile,
        WS_OPTION_TLS_KEY_FILE => Opt::TlsKeyFile,
        WS_OPTION_PROXY => Opt::Proxy,
        WS_OPTION_PERMESSAGE_DEFLATE => Opt::PermessageDeflate,
        WS_OPTION_EXTENSIONS => Opt::Extensions,
        WS_OPTION_DEFLATE_WINDOW_BITS => Opt::DeflateWindowBits,
        WS_OPTION_DEFLATE_CONTEXT_TAKEOVER => Opt::DeflateContextTakeover,
        WS_OPTION_DEFLATE_LEVEL => Opt::DeflateLevel,
        WS_OPTION_DEFLATE_THRESHOLD => Opt::DeflateThreshold,
        _ => {
            return Err(Error::new(
                WS_ERROR_INVALID_OPTION,
                format!("{id} is not a WS_OPTION_* number"),
            ))
        }
    })
}

fn no_queue_options() -> Error {
    Error::new(
        WS_ERROR_INVALID_OPTION,
        "a queue handle has no options (WS_OPTION_COMPLETION_QUEUE and WS_OPTION_CONTEXT_VALUE are set on the connections and listeners bound to it)",
    )
}

fn decode(opt: Opt, raw: &[u8]) -> Result<Value> {
    let fits = |n: usize| {
        if raw.len() == n {
            Ok(())
        } else {
            Err(Error::param(format!(
                "this option takes a {n}-byte value; len was {}",
                raw.len()
            )))
        }
    };
    Ok(match opt.value_type() {
        ValueType::U32 => {
            fits(4)?;
            Value::U32(u32::from_ne_bytes(raw.try_into().expect("4 bytes")))
        }
        ValueType::U64 => {
            fits(8)?;
            Value::U64(u64::from_ne_bytes(raw.try_into().expect("8 bytes")))
        }
        ValueType::Str => {
            let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
            if raw.contains(&0) {
                return Err(Error::param("the string value contains a NUL byte"));
            }
            let s = std::str::from_utf8(raw)
                .map_err(|_| Error::param("the string value is not valid UTF-8"))?;
            Value::Str(s.to_owned())
        }
    })
}

/// Sets an option on a handle. `value` points to `len` bytes: a `uint32_t` (len 4), a
/// `uint64_t` (len 8) or a string (its bytes, with or without one terminating NUL) as each
/// `WS_OPTION_*` says.
///
/// Timeouts may be set in any state and apply to calls that start afterwards. The other
/// settable options (`WS_OPTION_MAX_MESSAGE_SIZE`, `WS_OPTION_SUBPROTOCOLS`, the TLS and proxy
/// options, `WS_OPTION_PERMESSAGE_DEFLATE` and `WS_OPTION_DEFLATE_*`) only in `WS_STATE_NONE`.
///
/// On a listener (from `ws_listen`): the timeouts, `WS_OPTION_SUBPROTOCOLS` (the subprotocols
/// accepted, in order of preference), `WS_OPTION_MAX_MESSAGE_SIZE`, `WS_OPTION_PERMESSAGE_DEFLATE`
/// and `WS_OPTION_DEFLATE_*`, at any time; they apply to the connections `ws_accept` returns
/// afterwards. Other options are `WS_ERROR_INVALID_OPTION` there.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INVALID_OPTION` for a number that is
/// no option, a query-only option, or an option this build does not support (TLS, proxy);
/// `WS_ERROR_INVALID_PARAMETER` when `value` is NULL, `len` does not fit the option's type, a
/// string is not UTF-8, or a number is outside the option's range (the `WS_OPTION_DEFLATE_*`); `WS_ERROR_INCORRECT_HANDLE_STATE` for a connect-time option after
/// `ws_connect`.
#[no_mangle]
pub extern "C" fn ws_set_option(
    h: ws_handle,
    option: u32,
    value: *const std::ffi::c_void,
    len: usize,
) -> ws_error {
    guard(|| {
        let object = handles::get(h)?;
        if super::async_api::is_binding_option(option) {
            non_null(value, "value")?;
            return super::async_api::set_binding_option(&object, option, value, len);
        }
        let opt = self::option(option)?;
        opt.check_settable()?;
        non_null(value, "value")?;
        let value = decode(opt, bytes(value.cast(), len, "value")?)?;
        match object {
            Object::Connection(c) => c.set_option(opt, value),
            Object::Listener(l) => l.set_option(opt, value),
            Object::Queue(_) => Err(no_queue_options()),
        }
    })
}

/// Reads an option. On entry `*len` is the size of `value` in bytes; on `WS_OK` it is the
/// number of bytes written (a string is written with its terminating NUL, which `*len`
/// counts). When `value` is NULL or `*len` is too small, nothing is written to `value`, `*len`
/// receives the size needed, and the call returns `WS_ERROR_INSUFFICIENT_BUFFER` (pass
/// `value` NULL and `*len` 0 to ask for the size).
///
/// A listener answers the options it takes and `WS_OPTION_LOCAL_PORT` (the bound port).
/// On a connection, every option can be read in every state except `WS_OPTION_SELECTED_SUBPROTOCOL`,
/// `WS_OPTION_EXTENSIONS` and `WS_OPTION_LOCAL_PORT` (after `ws_connect`) and `WS_OPTION_HTTP_STATUS` (after a response
/// arrived, even a failed one): before that they return `WS_ERROR_INCORRECT_HANDLE_STATE`.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INVALID_OPTION`;
/// `WS_ERROR_INVALID_PARAMETER` when `len` is NULL; `WS_ERROR_INSUFFICIENT_BUFFER`;
/// `WS_ERROR_INCORRECT_HANDLE_STATE`.
#[no_mangle]
pub extern "C" fn ws_query_option(
    h: ws_handle,
    option: u32,
    value: *mut std::ffi::c_void,
    len: *mut usize,
) -> ws_error {
    guard(|| {
        let object = handles::get(h)?;
        if super::async_api::is_binding_option(option) {
            non_null(len, "len")?;
            return super::async_api::query_binding_option(&object, option, value, len);
        }
        let opt = self::option(option)?;
        non_null(len, "len")?;
        let got = match object {
            Object::Connection(c) => c.query_option(opt)?,
            Object::Listener(l) => l.query_option(opt)?,
            Object::Queue(_) => return Err(no_queue_options()),
        };
        let encoded: Vec<u8> = match got {
            Value::U32(v) => v.to_ne_bytes().to_vec(),
            Value::U64(v) => v.to_ne_bytes().to_vec(),
            Value::Str(s) => {
                let mut b = s.into_bytes();
                b.push(0);
                b
            }
        };
        put_value(&encoded, value, len)
    })
}

/// Writes a queried option's bytes to `value` (room: `*len`), or reports the size needed.
/// `len` must not be NULL.
pub(crate) fn put_value(
    encoded: &[u8],
    value: *mut std::ffi::c_void,
    len: *mut usize,
) -> Result<()> {
    // SAFETY: `len` checked non-NULL by the caller; the C caller owns it.
    let room = unsafe { *len };
    if value.is_null() || room < encoded.len() {
        // SAFETY: as above.
        unsafe { *len = encoded.len() };
        return Err(Error::new(
            WS_ERROR_INSUFFICIENT_BUFFER,
            format!("the option's value needs {} bytes", encoded.len()),
        ));
    }
    // SAFETY: `value` has room for `room >= encoded.len()` bytes, per the caller.
    unsafe {
        std::ptr::copy_nonoverlapping(encoded.as_ptr(), value.cast::<u8>(), encoded.len());
        *len = encoded.len();
    }
    Ok(())
}

/// Adds a header to the upgrade request, e.g. `Authorization` or `Origin`. Allowed in
/// `WS_STATE_NONE` only; headers are sent in the order added.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INVALID_PARAMETER` when a pointer is
/// NULL, the name is not an HTTP token, the value holds CR, LF, NUL or another control
/// character, either is not UTF-8, or the name is one the handshake owns (`Host`, `Upgrade`,
/// `Connection`, `Sec-WebSocket-Key`, `-Version`, `-Accept`, `-Protocol`: use
/// `WS_OPTION_SUBPROTOCOLS` for the last); `WS_ERROR_INCORRECT_HANDLE_STATE` after
/// `ws_connect`.
#[no_mangle]
pub extern "C" fn ws_add_request_header(
    h: ws_handle,
    name: *const std::ffi::c_char,
    value: *const std::ffi::c_char,
) -> ws_error {
    guard(|| {
        with_conn(h, |c| {
            let name = c_str(name, "name")?;
            let value = c_str(value, "value")?;
            c.add_request_header(name, value)
        })
    })
}

/// Reads a header of the upgrade handshake by case-insensitive `name`: on a client handle, of
/// the server's response (also after a failed `ws_connect` that got a response, e.g. a 401's
/// `WWW-Authenticate`); on a connection from `ws_accept`, of the client's request (e.g.
/// `Origin`, `Authorization`). A header that appears several times is joined with ", ".
///
/// The value is copied to `value` with a terminating NUL, WinHTTP's way: on `WS_OK`,
/// `*consumed` is its length without the NUL; when `value` is NULL or `len` is too small,
/// nothing is written to `value`, `*consumed` is the size needed *including* the NUL, and the
/// call returns `WS_ERROR_INSUFFICIENT_BUFFER`.
///
/// Returns `WS_OK`; `WS_ERROR_INVALID_HANDLE`; `WS_ERROR_INCORRECT_HANDLE_TYPE` for a listener;
/// `WS_ERROR_INVALID_PARAMETER` when `name` or `consumed` is NULL or `name` is not UTF-8;
/// `WS_ERROR_INCORRECT_HANDLE_STATE` before any response arrived;
/// `WS_ERROR_HEADER_NOT_FOUND` (12150) when the header is absent;
/// `WS_ERROR_INSUFFICIENT_BUFFER`.
#[no_mangle]
pub extern "C" fn ws_query_response_header(
    h: ws_handle,
    name: *const std::ffi::c_char,
    value: *mut std::ffi::c_void,
    len: usize,
    consumed: *mut usize,
) -> ws_error {
    guard(|| {
        with_conn(h, |c| {
            let name = c_str(name, "name")?;
            non_null(consumed, "consumed")?;
            let v = c.response_header(name)?;
            // SAFETY: `consumed` checked non-NULL; `value` has `len` bytes of room per the
            // caller, and is written only when the value and its NUL fit.
            unsafe {
                if value.is_null() || len < v.len() + 1 {
                    *consumed = v.len() + 1;
                    return Err(Error::new(
                        WS_ERROR_INSUFFICIENT_BUFFER,
                        format!(
                            "the header's value needs {} bytes with its NUL",
                            v.len() + 1
                        ),
                    ));
                }
                std::ptr::copy_nonoverlapping(v.as_ptr(), value.cast::<u8>(), v.len());
                *value.cast::<u8>().add(v.len()) = 0;
                *consumed = v.len();
            }
            Ok(())
        })
    })
}
