//! Every WS_ERROR_INVALID_PARAMETER, WS_ERROR_INVALID_HANDLE and WS_ERROR_INVALID_OPERATION
//! case of API.md that needs no peer, plus options and request headers.

mod common;
use common::*;
use std::ffi::CString;
use std::ptr::{null, null_mut};

fn stale_handle() -> ws_handle {
    let h = open("ws://127.0.0.1:9/");
    assert_code!(ws_close_handle(h), WS_OK);
    h
}

#[test]
fn invalid_handles_everywhere() {
    let forged = 0xDEAD_BEEF_0000_0001u64;
    for h in [0, forged, stale_handle()] {
        let (mut n, mut ty, mut s, mut len) = (0usize, 0u32, 0u32, 4usize);
        let mut status = 0u16;
        let mut buf = [0u8; 8];
        let name = CString::new("X-A").unwrap();
        assert_code!(ws_connect(h), WS_ERROR_INVALID_HANDLE);
        assert_code!(
            send(h, WS_BUFFER_BINARY_MESSAGE, b"x"),
            WS_ERROR_INVALID_HANDLE
        );
        assert_code!(
            ws_receive(h, buf.as_mut_ptr().cast(), 8, &mut n, &mut ty),
            WS_ERROR_INVALID_HANDLE
        );
        assert_code!(shutdown(h, 1000, b""), WS_ERROR_INVALID_HANDLE);
        assert_code!(close(h, 1000, b""), WS_ERROR_INVALID_HANDLE);
        assert_code!(ws_query_state(h, &mut s), WS_ERROR_INVALID_HANDLE);
        assert_code!(
            ws_query_close_status(h, &mut status, null_mut(), 0, &mut n),
            WS_ERROR_INVALID_HANDLE
        );
        assert_code!(
            ws_set_option(h, WS_OPTION_RECEIVE_TIMEOUT, (&s as *const u32).cast(), 4),
            WS_ERROR_INVALID_HANDLE
        );
        assert_code!(
            ws_query_option(
                h,
                WS_OPTION_RECEIVE_TIMEOUT,
                buf.as_mut_ptr().cast(),
                &mut len
            ),
            WS_ERROR_INVALID_HANDLE
        );
        assert_code!(
            ws_add_request_header(h, name.as_ptr(), name.as_ptr()),
            WS_ERROR_INVALID_HANDLE
        );
        assert_code!(ws_close_handle(h), WS_ERROR_INVALID_HANDLE);
        assert!(last_error().contains("not open"), "{}", last_error());
    }
}

#[test]
fn open_checks_its_arguments() {
    let mut h = 0;
    let url = CString::new("ws://127.0.0.1:9/").unwrap();
    assert_code!(ws_open(null(), &mut h), WS_ERROR_INVALID_PARAMETER);
    assert_code!(
        ws_open(url.as_ptr(), null_mut()),
        WS_ERROR_INVALID_PARAMETER
    );
    let bad = [
        ("http://example.com/", WS_ERROR_UNRECOGNIZED_SCHEME),
        ("ftp://x/", WS_ERROR_UNRECOGNIZED_SCHEME),
        ("not a url", WS_ERROR_INVALID_URL),
        ("ws://", WS_ERROR_INVALID_URL),
        ("ws://host:99999/", WS_ERROR_INVALID_URL),
    ];
    for (u, code) in bad {
        let u = CString::new(u).unwrap();
        assert_code!(ws_open(u.as_ptr(), &mut h), code);
        assert_eq!(h, 0, "out_ws is written only on success");
    }
    let not_utf8 = b"ws://\xff/\0";
    assert_code!(
        ws_open(not_utf8.as_ptr().cast(), &mut h),
        WS_ERROR_INVALID_PARAMETER
    );
}

#[test]
fn calls_in_state_none() {
    let h = open("ws://127.0.0.1:9/");
    assert_eq!(state(h), WS_STATE_NONE);
    assert_code!(
        send(h, WS_BUFFER_UTF8_MESSAGE, b"x"),
        WS_ERROR_INVALID_OPERATION
    );
    assert_code!(recv(h, &mut [0u8; 4]).0, WS_ERROR_INVALID_OPERATION);
    assert_code!(shutdown(h, 1000, b""), WS_ERROR_INVALID_OPERATION);
    assert_code!(close(h, 1000, b""), WS_ERROR_INVALID_OPERATION);
    let (mut status, mut used) = (0u16, 0usize);
    assert_code!(
        ws_query_close_status(h, &mut status, null_mut(), 0, &mut used),
        WS_ERROR_INVALID_OPERATION
    );
    assert_eq!(state(h), WS_STATE_NONE);
    ws_close_handle(h);
}

#[test]
fn receive_and_state_check_their_pointers() {
    let h = open("ws://127.0.0.1:9/");
    let (mut n, mut ty) = (0usize, 0u32);
    let mut buf = [0u8; 4];
    assert_code!(
        ws_receive(h, null_mut(), 4, &mut n, &mut ty),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(
        ws_receive(h, buf.as_mut_ptr().cast(), 0, &mut n, &mut ty),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(
        ws_receive(h, buf.as_mut_ptr().cast(), 4, null_mut(), &mut ty),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(
        ws_receive(h, buf.as_mut_ptr().cast(), 4, &mut n, null_mut()),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(ws_query_state(h, null_mut()), WS_ERROR_INVALID_PARAMETER);
    ws_close_handle(h);
}

#[test]
fn options_set_query_and_validate() {
    let h = open("ws://127.0.0.1:9/");
    let v: u32 = 1234;
    let v64: u64 = 1 << 20;
    let p32 = (&v as *const u32).cast();
    // unknown option, NULL value, wrong lengths
    assert_code!(ws_set_option(h, 4242, p32, 4), WS_ERROR_INVALID_OPTION);
    assert_code!(
        ws_set_option(h, WS_OPTION_RECEIVE_TIMEOUT, null(), 4),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(
        ws_set_option(h, WS_OPTION_RECEIVE_TIMEOUT, p32, 2),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(
        ws_set_option(h, WS_OPTION_RECEIVE_TIMEOUT, p32, 8),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(
        ws_set_option(h, WS_OPTION_MAX_MESSAGE_SIZE, p32, 4),
        WS_ERROR_INVALID_PARAMETER
    );
    // query-only options cannot be set
    for o in [
        WS_OPTION_SELECTED_SUBPROTOCOL,
        WS_OPTION_HTTP_STATUS,
        WS_OPTION_LOCAL_PORT,
    ] {
        assert_code!(ws_set_option(h, o, p32, 4), WS_ERROR_INVALID_OPTION);
    }
    // defaults, then set values read back
    let q32 = |o: u32| {
        let mut out = 0u32;
        let mut len = 4usize;
        assert_code!(
            ws_query_option(h, o, (&mut out as *mut u32).cast(), &mut len),
            WS_OK
        );
        assert_eq!(len, 4);
        out
    };
    assert_eq!(q32(WS_OPTION_CONNECT_TIMEOUT), 60_000);
    assert_eq!(q32(WS_OPTION_SEND_TIMEOUT), 30_000);
    assert_eq!(q32(WS_OPTION_RECEIVE_TIMEOUT), 0);
    assert_eq!(q32(WS_OPTION_CLOSE_TIMEOUT), 10_000);
    assert_eq!(q32(WS_OPTION_KEEPALIVE_INTERVAL), 30_000);
    assert_eq!(q32(WS_OPTION_KEEPALIVE_TIMEOUT), 0);
    assert_code!(ws_set_option(h, WS_OPTION_RECEIVE_TIMEOUT, p32, 4), WS_OK);
    assert_eq!(q32(WS_OPTION_RECEIVE_TIMEOUT), 1234);
    assert_code!(
        ws_set_option(
            h,
            WS_OPTION_MAX_MESSAGE_SIZE,
            (&v64 as *const u64).cast(),
            8
        ),
        WS_OK
    );
    // size idiom for a string option
    let protos = b"chat, superchat";
    assert_code!(
        ws_set_option(
            h,
            WS_OPTION_SUBPROTOCOLS,
            protos.as_ptr().cast(),
            protos.len()
        ),
        WS_OK
    );
    let mut len = 0usize;
    assert_code!(
        ws_query_option(h, WS_OPTION_SUBPROTOCOLS, null_mut(), &mut len),
        WS_ERROR_INSUFFICIENT_BUFFER
    );
    assert_eq!(len, protos.len() + 1);
    let mut buf = vec![0u8; len];
    assert_code!(
        ws_query_option(h, WS_OPTION_SUBPROTOCOLS, buf.as_mut_ptr().cast(), &mut len),
        WS_OK
    );
    assert_eq!(&buf, b"chat, superchat\0");
    assert_code!(
        ws_query_option(
            h,
            WS_OPTION_SUBPROTOCOLS,
            buf.as_mut_ptr().cast(),
            null_mut()
        ),
        WS_ERROR_INVALID_PARAMETER
    );
    // bad subprotocol names
    let bad = b"bad name";
    assert_code!(
        ws_set_option(h, WS_OPTION_SUBPROTOCOLS, bad.as_ptr().cast(), bad.len()),
        WS_ERROR_INVALID_PARAMETER
    );
    // results of the handshake are not known yet
    for o in [
        WS_OPTION_SELECTED_SUBPROTOCOL,
        WS_OPTION_HTTP_STATUS,
        WS_OPTION_LOCAL_PORT,
    ] {
        let mut len = 64usize;
        assert_code!(
            ws_query_option(h, o, buf.as_mut_ptr().cast(), &mut len),
            WS_ERROR_INCORRECT_HANDLE_STATE
        );
    }
    // proxy and TLS settings are validated and read back
    for bad in [&b"chat"[..], b"https://p:1", b"http://p:port"] {
        assert_code!(
            ws_set_option(h, WS_OPTION_PROXY, bad.as_ptr().cast(), bad.len()),
            WS_ERROR_INVALID_PARAMETER
        );
    }
    let proxy = b"http://127.0.0.1:3128";
    assert_code!(
        ws_set_option(h, WS_OPTION_PROXY, proxy.as_ptr().cast(), proxy.len()),
        WS_OK
    );
    let mut out = [0u8; 64];
    let mut len = out.len();
    assert_code!(
        ws_query_option(h, WS_OPTION_PROXY, out.as_mut_ptr().cast(), &mut len),
        WS_OK
    );
    assert_eq!(&out[..len], b"http://127.0.0.1:3128\0");
    let two = 2u32;
    assert_code!(
        ws_set_option(
            h,
            WS_OPTION_TLS_INSECURE_SKIP_VERIFY,
            (&two as *const u32).cast(),
            4
        ),
        WS_ERROR_INVALID_PARAMETER
    );
    ws_close_handle(h);
}

#[test]
fn request_headers_are_validated() {
    let h = open("ws://127.0.0.1:9/");
    let c = |s: &str| CString::new(s).unwrap();
    let ok = |n: &str, v: &str| ws_add_request_header(h, c(n).as_ptr(), c(v).as_ptr());
    assert_code!(ok("Authorization", "Bearer abc"), WS_OK);
    assert_code!(ok("X-Trace", ""), WS_OK);
    for (n, v) in [
        ("Bad Name", "v"),
        ("X-A", "line\r\nInjected: 1"),
        ("X-A", "a\nb"),
        ("Host", "evil"),
        ("upgrade", "h2c"),
        ("Connection", "close"),
        ("Sec-WebSocket-Key", "k"),
        ("Sec-WebSocket-Version", "8"),
        ("Sec-WebSocket-Accept", "a"),
    ] {
        assert_code!(ok(n, v), WS_ERROR_INVALID_PARAMETER);
    }
    assert_code!(
        ws_add_request_header(h, null(), c("v").as_ptr()),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(
        ws_add_request_header(h, c("X").as_ptr(), null()),
        WS_ERROR_INVALID_PARAMETER
    );
    ws_close_handle(h);
}

#[test]
fn headers_subprotocols_and_status_reach_the_server() {
    let mut peer = Peer::ws("echo", &[]);
    let h = open(&peer.url("/path?q=1"));
    let n = CString::new("X-Wshandle-Test").unwrap();
    let v = CString::new("yes").unwrap();
    assert_code!(ws_add_request_header(h, n.as_ptr(), v.as_ptr()), WS_OK);
    assert_code!(ws_connect(h), WS_OK);
    let req = peer.event("request");
    assert_eq!(req["path"], "/path?q=1");
    assert_eq!(req["headers"]["x-wshandle-test"], "yes");
    let q = |o: u32| {
        let mut buf = [0u8; 16];
        let mut len = buf.len();
        assert_code!(
            ws_query_option(h, o, buf.as_mut_ptr().cast(), &mut len),
            WS_OK
        );
        buf[..len].to_vec()
    };
    assert_eq!(q(WS_OPTION_HTTP_STATUS), 101u32.to_ne_bytes());
    assert_eq!(q(WS_OPTION_SELECTED_SUBPROTOCOL), b"\0");
    assert_ne!(q(WS_OPTION_LOCAL_PORT), 0u32.to_ne_bytes());
    // connect-time settings are fixed now; timeouts are not
    assert_code!(
        ws_add_request_header(h, n.as_ptr(), v.as_ptr()),
        WS_ERROR_INCORRECT_HANDLE_STATE
    );
    let p = b"chat";
    assert_code!(
        ws_set_option(h, WS_OPTION_SUBPROTOCOLS, p.as_ptr().cast(), 4),
        WS_ERROR_INCORRECT_HANDLE_STATE
    );
    set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 50);
    assert_code!(ws_connect(h), WS_ERROR_INVALID_OPERATION);
    assert_code!(close(h, 1000, b""), WS_OK);
    ws_close_handle(h);
}

#[test]
fn connect_failures_leave_the_handle_reusable() {
    // nothing listens on this port: refused
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let h = open(&format!("ws://127.0.0.1:{port}/"));
    assert_code!(ws_connect(h), WS_ERROR_CANNOT_CONNECT);
    assert_eq!(state(h), WS_STATE_NONE);
    ws_close_handle(h);

    // a server that never answers the upgrade: connect timeout
    let peer = Peer::raw("no-upgrade", &[]);
    let h = open(&peer.url("/"));
    set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 300);
    let t = std::time::Instant::now();
    assert_code!(ws_connect(h), WS_ERROR_TIMEOUT);
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(state(h), WS_STATE_NONE);
    ws_close_handle(h);

    // an unknown host name
    let h = open("ws://no-such-host.invalid/");
    set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 10_000);
    assert_code!(ws_connect(h), WS_ERROR_NAME_NOT_RESOLVED);
    ws_close_handle(h);
}

#[test]
fn error_names_and_messages() {
    let name = |c: u32| {
        unsafe { std::ffi::CStr::from_ptr(ws_error_name(c)) }
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(name(WS_OK), "WS_OK");
    assert_eq!(name(WS_ERROR_TIMEOUT), "WS_ERROR_TIMEOUT");
    assert_eq!(name(WS_ERROR_HEADER_NOT_FOUND), "WS_ERROR_HEADER_NOT_FOUND");
    assert_eq!(name(1), "WS_ERROR_UNKNOWN");
    // the detail is per thread, truncated safely, and its full length is returned
    let h = open("ws://127.0.0.1:9/");
    assert_code!(send(h, WS_BUFFER_CLOSE, b""), WS_ERROR_INVALID_PARAMETER);
    let full = last_error();
    assert!(full.contains("ws_shutdown"), "{full}");
    let mut small = [0xAAu8; 8];
    assert_eq!(
        ws_last_error_message(small.as_mut_ptr().cast(), 8),
        full.len()
    );
    assert_eq!(&small[..7], &full.as_bytes()[..7]);
    assert_eq!(small[7], 0);
    std::thread::spawn(|| assert_eq!(last_error(), ""))
        .join()
        .unwrap();
    ws_close_handle(h);
}
