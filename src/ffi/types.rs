//! The C types and constants of the API (fixed names and values, as API.md gives them).

pub use crate::error::{
    ws_error, WS_ERROR_CANNOT_CONNECT, WS_ERROR_CONNECTION_ERROR, WS_ERROR_HEADER_NOT_FOUND,
    WS_ERROR_INCORRECT_HANDLE_STATE, WS_ERROR_INCORRECT_HANDLE_TYPE, WS_ERROR_INSUFFICIENT_BUFFER,
    WS_ERROR_INTERNAL, WS_ERROR_INVALID_HANDLE, WS_ERROR_INVALID_OPERATION,
    WS_ERROR_INVALID_OPTION, WS_ERROR_INVALID_PARAMETER, WS_ERROR_INVALID_SERVER_RESPONSE,
    WS_ERROR_INVALID_URL, WS_ERROR_IO_PENDING, WS_ERROR_NAME_NOT_RESOLVED,
    WS_ERROR_NOT_ENOUGH_MEMORY, WS_ERROR_OPERATION_CANCELLED, WS_ERROR_OUT_OF_HANDLES,
    WS_ERROR_SECURE_FAILURE, WS_ERROR_TIMEOUT, WS_ERROR_UNRECOGNIZED_SCHEME, WS_OK,
};

/// An opaque handle into the library's handle table. `0` is never a valid handle; a handle
/// passed to `ws_close_handle` never becomes valid again.
#[allow(non_camel_case_types)]
pub type ws_handle = u64;

/// `ws_send`: the last (or only) piece of a binary message.
pub const WS_BUFFER_BINARY_MESSAGE: u32 = 0;
/// `ws_send`/`ws_receive`: a piece of a binary message; more pieces follow.
pub const WS_BUFFER_BINARY_FRAGMENT: u32 = 1;
/// `ws_send`: the last (or only) piece of a UTF-8 text message.
pub const WS_BUFFER_UTF8_MESSAGE: u32 = 2;
/// `ws_send`/`ws_receive`: a piece of a UTF-8 text message; more pieces follow.
pub const WS_BUFFER_UTF8_FRAGMENT: u32 = 3;
/// `ws_receive`: the peer's close frame arrived (0 bytes); read it with
/// `ws_query_close_status`. Not valid for `ws_send`.
pub const WS_BUFFER_CLOSE: u32 = 4;

/// 1000: normal closure.
pub const WS_CLOSE_STATUS_SUCCESS: u16 = 1000;
/// 1001: the endpoint is going away.
pub const WS_CLOSE_STATUS_ENDPOINT_TERMINATED: u16 = 1001;
/// 1002: protocol error.
pub const WS_CLOSE_STATUS_PROTOCOL_ERROR: u16 = 1002;
/// 1003: a data type the endpoint cannot accept.
pub const WS_CLOSE_STATUS_INVALID_DATA_TYPE: u16 = 1003;
/// 1005: no status; as an argument, sends a close frame with no payload (reason must be empty).
pub const WS_CLOSE_STATUS_EMPTY: u16 = 1005;
/// 1006: the connection ended without a close frame (reported, never sent).
pub const WS_CLOSE_STATUS_ABORTED: u16 = 1006;
/// 1007: data inconsistent with the message type (e.g. text that is not UTF-8).
pub const WS_CLOSE_STATUS_INVALID_PAYLOAD: u16 = 1007;
/// 1008: policy violation.
pub const WS_CLOSE_STATUS_POLICY_VIOLATION: u16 = 1008;
/// 1009: message too big.
pub const WS_CLOSE_STATUS_MESSAGE_TOO_BIG: u16 = 1009;
/// 1010: an extension the client needs was not negotiated.
pub const WS_CLOSE_STATUS_UNSUPPORTED_EXTENSIONS: u16 = 1010;
/// 1011: the server hit an unexpected condition.
pub const WS_CLOSE_STATUS_SERVER_ERROR: u16 = 1011;
/// 1015: TLS handshake failure (reported, never sent).
pub const WS_CLOSE_STATUS_SECURE_HANDSHAKE_ERROR: u16 = 1015;
/// The longest close reason in bytes (125 bytes of control payload less the status).
pub const WS_MAX_CLOSE_REASON_LENGTH: u32 = 123;

/// Opened with `ws_open`, not connected.
pub const WS_STATE_NONE: u32 = 0;
/// `ws_connect` is running.
pub const WS_STATE_CONNECTING: u32 = 1;
/// Connected; no close frame has passed either way.
pub const WS_STATE_OPEN: u32 = 2;
/// This side sent a close frame (`ws_shutdown` or `ws_close`); the peer's has not arrived.
pub const WS_STATE_CLOSE_SENT: u32 = 3;
/// The peer's close frame arrived (`ws_receive` returned `WS_BUFFER_CLOSE`); this side has
/// not answered yet. Sending is still allowed.
pub const WS_STATE_CLOSE_RECEIVED: u32 = 4;
/// Both close frames have passed.
pub const WS_STATE_CLOSED: u32 = 5;
/// The connection failed (transport error, protocol violation, send or close timeout) or was
/// dropped.
pub const WS_STATE_ABORTED: u32 = 6;

/// `uint32_t` ms, default 60000, 0 = none: DNS, TCP connect and the HTTP upgrade must finish
/// within this time (WinHTTP's value 3).
pub const WS_OPTION_CONNECT_TIMEOUT: u32 = 3;
/// `uint32_t` ms, default 30000, 0 = none: a send blocked by a peer that does not read fails
/// with `WS_ERROR_TIMEOUT` and the connection is aborted (WinHTTP's value 5).
pub const WS_OPTION_SEND_TIMEOUT: u32 = 5;
/// `uint32_t` ms, default 0 = none: `ws_receive` returns `WS_ERROR_TIMEOUT` when nothing
/// arrived in time; the connection stays usable and nothing is lost (WinHTTP's value 6).
pub const WS_OPTION_RECEIVE_TIMEOUT: u32 = 6;
/// `uint32_t` ms, default 10000, 0 = none: one deadline for the whole of `ws_close` —
/// sending, waiting for the peer's close, TCP teardown (WinHTTP's value 115).
pub const WS_OPTION_CLOSE_TIMEOUT: u32 = 115;
/// `uint32_t` ms, default 30000, 0 = off: while `ws_receive` waits and nothing arrived for
/// this long, a ping is sent (any positive value; WinHTTP's value 116). This goes on after
/// `ws_shutdown` (state `CLOSE_SENT`), while the receive waits for the peer's close: RFC 6455
/// forbids only data frames after a close frame, and a peer that still answers pings is
/// alive, however long it takes to say its last words.
pub const WS_OPTION_KEEPALIVE_INTERVAL: u32 = 116;
/// `uint32_t` ms, default 0 = off: when the peer sends nothing at all within this time after a
/// keepalive ping, the connection is aborted and the waiting `ws_receive` returns
/// `WS_ERROR_TIMEOUT` (dead-peer detection), in `OPEN` and after `ws_shutdown` alike, so the
/// shutdown-then-receive pattern never waits forever for a peer that vanished. Needs
/// `WS_OPTION_KEEPALIVE_INTERVAL`.
pub const WS_OPTION_KEEPALIVE_TIMEOUT: u32 = 1001;
/// `uint64_t` bytes, default 0 = no limit: a longer incoming message fails the connection with
/// close status 1009. Set before `ws_connect`.
pub const WS_OPTION_MAX_MESSAGE_SIZE: u32 = 1002;
/// String, comma-separated: the subprotocols a client offers. Set before `ws_connect`.
pub const WS_OPTION_SUBPROTOCOLS: u32 = 1003;
/// String, query only: the subprotocol the handshake agreed ("" for none). After `ws_connect`.
pub const WS_OPTION_SELECTED_SUBPROTOCOL: u32 = 1004;
/// `uint32_t`, query only: the HTTP status of the upgrade response, also after a failed
/// `ws_connect` (e.g. 401 or 404).
pub const WS_OPTION_HTTP_STATUS: u32 = 1005;
/// `uint32_t`, query only: the local port of a connection. After `ws_connect`.
pub const WS_OPTION_LOCAL_PORT: u32 = 1006;
/// String, path: a PEM bundle of CA certificates that replaces the system trust store for
/// `wss://` (the system's is `/etc/ssl/certs`, as libcurl and WinHTTP users expect). Set before
/// `ws_connect`; "" restores the system roots.
pub const WS_OPTION_TLS_CA_FILE: u32 = 1007;
/// `uint32_t` 0/1, default 0: skip the certificate chain and host-name checks of `wss://`.
/// DANGEROUS: anyone on the network path can then impersonate the server and read and change
/// all traffic. For tests against throwaway certificates only; use `WS_OPTION_TLS_CA_FILE` to
/// trust a private CA instead. Set before `ws_connect`.
pub const WS_OPTION_TLS_INSECURE_SKIP_VERIFY: u32 = 1008;
/// String, path: a PEM certificate chain: a `wss://` listener's certificate (required there),
/// or a client certificate for servers that ask for one.
pub const WS_OPTION_TLS_CERT_FILE: u32 = 1009;
/// String, path: the PEM private key (PKCS#8, PKCS#1 or SEC1) for `WS_OPTION_TLS_CERT_FILE`.
pub const WS_OPTION_TLS_KEY_FILE: u32 = 1010;
/// String, `http://host:port`: tunnel `ws://` and `wss://` through this HTTP CONNECT proxy; a
/// proxy that refuses is `WS_ERROR_CANNOT_CONNECT` with its status in the detail. Set before
/// `ws_connect`; "" for none.
pub const WS_OPTION_PROXY: u32 = 1011;
/// `uint32_t`, 0 or 1 (default 0): permessage-deflate (RFC 7692). On a client, offer it; on a
/// listener, accept it when a client offers it (the first offer in the client's list that can
/// be honoured). Set before `ws_connect` (on a listener at any time, for the connections
/// accepted afterwards). Once agreed, each side compresses its own messages above
/// `WS_OPTION_DEFLATE_THRESHOLD`; the calls, states, pieces and close rules do not change, and
/// `WS_OPTION_MAX_MESSAGE_SIZE` counts inflated bytes, checked while inflating. An offer that
/// would need an 8-bit compression window is declined (zlib cannot compress with one).
pub const WS_OPTION_PERMESSAGE_DEFLATE: u32 = 1012;
/// String, query only: the `Sec-WebSocket-Extensions` value the handshake agreed, e.g.
/// `permessage-deflate; client_max_window_bits=12`; "" when none. Known after `ws_connect`
/// (`WS_ERROR_INCORRECT_HANDLE_STATE` before); `WS_ERROR_INVALID_OPTION` on a listener.
pub const WS_OPTION_EXTENSIONS: u32 = 1013;
/// `uint32_t`, 9-15 (default 12): the largest LZ77 window, as a base-2 logarithm, that this
/// side compresses with and asks the peer to compress with (`server_max_window_bits` in a
/// client's offer, `client_max_window_bits` in a listener's answer when the client allows it).
/// It sets what a connection keeps between messages with context takeover: the peer's window
/// (`2^bits` bytes plus about 7 KiB of decompressor) and our own last `2^bits` bytes. 12
/// (4 KiB), as Python `websockets`, compresses small JSON messages nearly as well as 15 at an
/// eighth of the memory. 8 is not offered: zlib cannot compress with an 8-bit raw window.
pub const WS_OPTION_DEFLATE_WINDOW_BITS: u32 = 1014;
/// `uint32_t`, 0 or 1 (default 1): keep compression contexts from one message to the next in
/// both directions. 1 compresses streams of small, similar messages (JSON feeds) several
/// times better and costs, per idle connection, the peer's window with its decompressor and
/// a copy of our last `2^WS_OPTION_DEFLATE_WINDOW_BITS` bytes (about 16 KiB at 12 bits). 0 asks
/// for `client_no_context_takeover` and `server_no_context_takeover`: a connection then keeps
/// no compression state between messages (compressors come from a small shared pool for the
/// length of one message).
pub const WS_OPTION_DEFLATE_CONTEXT_TAKEOVER: u32 = 1015;
/// `uint32_t`, 0-9 (default 3): the zlib compression level of the messages this side sends.
/// On JSON, 3 (greedy matching) compresses within 5% of 6 and 9 at less CPU; 1 (zlib-rs's
/// fastest, fixed Huffman codes only) loses a fifth of the gain and is no faster on small
/// messages, whose cost is mostly setting the compressor up; 0 sends stored blocks.
pub const WS_OPTION_DEFLATE_LEVEL: u32 = 1016;
/// `uint32_t`, bytes (default 64): a message sent whole (one `ws_send`) shorter than this goes
/// uncompressed: below it deflate saves little or nothing and costs a compressor. A message
/// sent in fragments is always compressed (its size is unknown when it starts). 0 compresses
/// every message.
pub const WS_OPTION_DEFLATE_THRESHOLD: u32 = 1017;
