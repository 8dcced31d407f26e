//! Hostile peers, in both roles: raw-socket peers (tests/common/raw.rs) that break the protocol
//! on purpose, trickle bytes, lie in handshakes and reset connections mid-frame. For each case:
//! the result code the header documents, the close frame the peer received (its status), what
//! else the peer saw, and the state afterwards.
//!
//! Protocol violations → `WS_ERROR_INVALID_SERVER_RESPONSE`, a close frame with 1002, 1007 or
//! 1009 to the peer, then TCP closed, `WS_STATE_ABORTED`, and 1006 from
//! `ws_query_close_status`. TCP ending without a close frame → `WS_ERROR_CONNECTION_ERROR`.
//! Memory bounds are in tests/hostile_memory.rs (a separate process, so RSS is its own).

mod common;

use std::ffi::CString;
use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::raw::{self, report, End, RawConn, RawServer};
use common::*;

/// A wshandle client against a raw server running `script` after the upgrade.
fn as_client(script: Script, max_message: u64) -> Pair {
    let (tx, rx) = mpsc::channel();
    let server = RawServer::start(move |s| {
        let Ok(c) = RawConn::server(s) else {
            return;
        };
        let _ = tx.send(run_script(&script, c, true));
    });
    let h = open(&server.url("/hostile"));
    set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 10_000);
    set_u32(h, WS_OPTION_CLOSE_TIMEOUT, 5_000);
    set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 10_000);
    if max_message > 0 {
        set_u64(h, WS_OPTION_MAX_MESSAGE_SIZE, max_message);
    }
    assert_code!(ws_connect(h), WS_OK);
    Pair {
        h,
        role: "client",
        view: rx,
        _server: Some(server),
    }
}

/// A wshandle listener's accepted connection against a raw client running `script`.
fn as_server(script: Script, max_message: u64) -> Pair {
    let url = CString::new("ws://127.0.0.1:0/hostile").unwrap();
    let mut l = 0;
    assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
    set_u32(l, WS_OPTION_RECEIVE_TIMEOUT, 10_000);
    set_u32(l, WS_OPTION_CLOSE_TIMEOUT, 5_000);
    if max_message > 0 {
        set_u64(l, WS_OPTION_MAX_MESSAGE_SIZE, max_message);
    }
    let port = local_port(l);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok(c) = RawConn::client(port, "/hostile") else {
            return;
        };
        let _ = tx.send(run_script(&script, c, false));
    });
    let mut h = 0;
    assert_code!(ws_accept(l, &mut h), WS_OK);
    assert_code!(ws_close_handle(l), WS_OK);
    Pair {
        h,
        role: "server",
        view: rx,
        _server: None,
    }
}

/// Receives until a call fails or the close arrives; data pieces before are allowed (a
/// violation may follow data the library already delivered). Returns the final code.
fn receive_until_failure(h: ws_handle) -> ws_error {
    let mut buf = vec![0u8; 4096];
    for _ in 0..1000 {
        let (code, _, ty) = recv(h, &mut buf);
        if code != WS_OK || ty == WS_BUFFER_CLOSE {
            return code;
        }
    }
    panic!("no failure after 1000 pieces");
}

/// Runs a protocol violation against both roles and checks everything the header promises.
fn violation(name: &str, wire: Wire, want_status: u16, max_message: u64) {
    for server_role in [false, true] {
        let script: Script = Box::new(move |mut c: RawConn| {
            let key = c.masks.then_some(KEY);
            let _ = c.send_raw(&wire(key));
            Some(c)
        });
        let pair = if server_role {
            as_server(script, max_message)
        } else {
            as_client(script, max_message)
        };
        let h = pair.h;
        let code = receive_until_failure(h);
        let detail = last_error();
        assert_code!(code, WS_ERROR_INVALID_SERVER_RESPONSE);
        assert_eq!(state(h), WS_STATE_ABORTED, "{name} ({})", pair.role);
        assert_eq!(close_status(h), (1006, vec![]), "{name}");
        assert_code!(recv(h, &mut [0u8; 8]).0, WS_ERROR_INVALID_OPERATION);
        assert_code!(
            send(h, WS_BUFFER_BINARY_MESSAGE, b"x"),
            WS_ERROR_INVALID_OPERATION
        );
        let view = pair.peer(); // the library closed TCP after its close frame
        assert_eq!(
            view.closes(),
            vec![want_status],
            "{name} ({}): the peer saw {:?}",
            pair.role,
            view.frames
        );
        assert_eq!(
            view.frames.len(),
            1,
            "{name}: nothing but the close frame: {:?}",
            view.frames
        );
        assert_eq!(
            view.end,
            End::Eof,
            "{name}: TCP closed after the close frame"
        );
        assert_code!(ws_close_handle(h), WS_OK);
        report(&format!(
            "hostile {:<6} {name}: WS_ERROR_INVALID_SERVER_RESPONSE, peer got close {want_status} then FIN, state ABORTED ({detail})",
            pair.role
        ));
    }
}

#[test]
fn a_64_bit_length_of_2_pow_63() {
    violation(
        "64-bit frame length 2^63",
        |k| raw::encode_with(raw::OP_BINARY, true, 0, b"", k, Some(1 << 63)),
        1002,
        0,
    );
}

#[test]
fn a_control_frame_longer_than_125_bytes() {
    violation(
        "ping of 126 bytes",
        |k| raw::encode(raw::OP_PING, true, &[7; 126], k),
        1002,
        0,
    );
}

#[test]
fn a_fragmented_control_frame() {
    violation(
        "ping without FIN",
        |k| raw::encode(raw::OP_PING, false, b"x", k),
        1002,
        0,
    );
}

#[test]
fn a_continuation_with_nothing_to_continue() {
    violation(
        "continuation frame first",
        |k| raw::encode(raw::OP_CONT, true, b"x", k),
        1002,
        0,
    );
}

#[test]
fn a_new_data_frame_inside_a_fragmented_message() {
    violation(
        "binary frame inside a fragmented text message",
        |k| {
            let mut b = raw::encode(raw::OP_TEXT, false, b"part", k);
            b.extend(raw::encode(raw::OP_BINARY, true, b"other", k));
            b
        },
        1002,
        0,
    );
}

#[test]
fn a_close_with_a_1_byte_payload() {
    violation(
        "close with 1-byte payload",
        |k| raw::encode(raw::OP_CLOSE, true, &[0x03], k),
        1002,
        0,
    );
}

#[test]
fn a_close_with_a_status_that_cannot_be_sent() {
    violation(
        "close with status 1005",
        |k| raw::encode(raw::OP_CLOSE, true, &1005u16.to_be_bytes(), k),
        1002,
        0,
    );
    violation(
        "close with status 1006",
        |k| raw::encode(raw::OP_CLOSE, true, &1006u16.to_be_bytes(), k),
        1002,
        0,
    );
    violation(
        "close with status 999",
        |k| raw::encode(raw::OP_CLOSE, true, &999u16.to_be_bytes(), k),
        1002,
        0,
    );
    violation(
        "close with status 5000",
        |k| raw::encode(raw::OP_CLOSE, true, &5000u16.to_be_bytes(), k),
        1002,
        0,
    );
}

#[test]
fn a_close_reason_that_is_not_utf8() {
    violation(
        "close reason not UTF-8",
        |k| {
            raw::encode(
                raw::OP_CLOSE,
                true,
                &raw::close_payload(1000, b"ok\xC3\x28"),
                k,
            )
        },
        1007,
        0,
    );
}

#[test]
fn text_that_is_not_utf8_and_a_message_too_big() {
    violation(
        "text not UTF-8",
        |k| raw::encode(raw::OP_TEXT, true, b"fine, then \xED\xA0\x80", k),
        1007,
        0,
    );
    violation(
        "message over WS_OPTION_MAX_MESSAGE_SIZE (1000)",
        |k| {
            let mut b = raw::encode(raw::OP_BINARY, false, &[1; 600], k);
            b.extend(raw::encode(raw::OP_CONT, true, &[2; 600], k));
            b
        },
        1009,
        1000,
    );
}

#[test]
fn reserved_opcodes_bits_and_wrong_masking() {
    violation(
        "reserved opcode 0xB",
        |k| raw::encode(0xB, true, b"", k),
        1002,
        0,
    );
    violation(
        "RSV1 without an extension",
        |k| raw::encode_with(raw::OP_TEXT, true, 4, b"x", k, None),
        1002,
        0,
    );
    violation(
        "masking the wrong way for the role",
        |k| {
            let flipped = if k.is_some() { None } else { Some(KEY) };
            raw::encode(raw::OP_BINARY, true, b"x", flipped)
        },
        1002,
        0,
    );
}

#[test]
fn bytes_after_the_close_frame_are_ignored() {
    for server_role in [false, true] {
        let script: Script = Box::new(|mut c: RawConn| {
            let mut b = c.frame(raw::OP_CLOSE, true, &raw::close_payload(1000, b"bye"));
            b.extend(c.frame(raw::OP_TEXT, true, b"after the close"));
            b.extend([0xFF; 300]); // and garbage
            let _ = c.send_raw(&b);
            c.closed = true;
            Some(c)
        });
        let pair = if server_role {
            as_server(script, 0)
        } else {
            as_client(script, 0)
        };
        let h = pair.h;
        let (code, n, ty) = recv(h, &mut [0u8; 64]);
        assert_code!(code, WS_OK);
        assert_eq!((n, ty), (0, WS_BUFFER_CLOSE));
        assert_eq!(state(h), WS_STATE_CLOSE_RECEIVED);
        assert_eq!(close_status(h), (1000, b"bye".to_vec()));
        assert_code!(close(h, 1000, b""), WS_OK);
        assert_eq!(state(h), WS_STATE_CLOSED);
        let view = pair.peer();
        assert_eq!(view.closes(), vec![1000], "{:?}", view.frames);
        assert_eq!(view.frames.len(), 1);
        assert_eq!(view.end, End::Eof);
        ws_close_handle(h);
        report(&format!(
            "hostile {:<6} bytes after the close frame: WS_OK + WS_BUFFER_CLOSE (1000 \"bye\"), ws_close WS_OK, peer got close 1000, state CLOSED",
            pair.role
        ));
    }
}

#[test]
fn a_tcp_reset_in_the_middle_of_a_frame() {
    for server_role in [false, true] {
        let script: Script = Box::new(|mut c: RawConn| {
            let f = c.frame(raw::OP_BINARY, true, &[9; 100]);
            let cut = f.len() - 90; // the header and 10 bytes of payload
            let _ = c.send_raw(&f[..cut]);
            std::thread::sleep(Duration::from_millis(50));
            c.reset();
            None
        });
        let pair = if server_role {
            as_server(script, 0)
        } else {
            as_client(script, 0)
        };
        let h = pair.h;
        let mut got = 0;
        let code = loop {
            let mut buf = [0u8; 64];
            let (code, n, ty) = recv(h, &mut buf);
            if code != WS_OK {
                break code;
            }
            assert_eq!(ty, WS_BUFFER_BINARY_FRAGMENT, "the frame never ends");
            got += n;
        };
        assert_code!(code, WS_ERROR_CONNECTION_ERROR);
        assert!(got <= 10, "{got} bytes delivered");
        assert_eq!(state(h), WS_STATE_ABORTED);
        assert_eq!(close_status(h), (1006, vec![]));
        assert_code!(close(h, 1000, b""), WS_ERROR_INVALID_OPERATION);
        let _ = pair.peer();
        ws_close_handle(h);
        report(&format!(
            "hostile {:<6} TCP RST in the middle of a frame: {got} payload bytes delivered, then WS_ERROR_CONNECTION_ERROR, state ABORTED, close status 1006",
            pair.role
        ));
    }
}

#[test]
fn slowloris_one_byte_every_100_ms_under_a_receive_timeout() {
    for server_role in [false, true] {
        let script: Script = Box::new(|mut c: RawConn| {
            let f = c.frame(raw::OP_TEXT, true, b"hello");
            let _ = c.trickle(&f, Duration::from_millis(100));
            Some(c)
        });
        let pair = if server_role {
            as_server(script, 0)
        } else {
            as_client(script, 0)
        };
        let h = pair.h;
        set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 80);
        let started = Instant::now();
        let (mut timeouts, mut pieces, mut text) = (0, 0, Vec::new());
        loop {
            assert!(started.elapsed() < Duration::from_secs(10), "no end");
            let mut buf = [0u8; 64];
            let (code, n, ty) = recv(h, &mut buf);
            if code == WS_ERROR_TIMEOUT {
                timeouts += 1;
                assert_eq!(state(h), WS_STATE_OPEN, "a receive timeout is not fatal");
                continue;
            }
            assert_code!(code, WS_OK);
            pieces += 1;
            text.extend_from_slice(&buf[..n]);
            if ty == WS_BUFFER_UTF8_MESSAGE {
                break;
            }
            assert_eq!(ty, WS_BUFFER_UTF8_FRAGMENT);
        }
        assert_eq!(text, b"hello", "nothing lost");
        assert!(
            timeouts >= 1,
            "the header alone takes 200 ms: a 150 ms receive times out"
        );
        assert_code!(close(h, 1000, b"done"), WS_OK);
        let view = pair.peer();
        assert_eq!(view.closes(), vec![1000]);
        ws_close_handle(h);
        report(&format!(
            "hostile {:<6} slowloris (a byte every 100 ms, 80 ms receive timeout): {timeouts} x WS_ERROR_TIMEOUT with state OPEN, the text in {pieces} pieces, nothing lost; ws_close WS_OK, peer got close 1000",
            pair.role
        ));
    }
}

/// A wshandle client against a server whose upgrade response is `response(key)`.
fn hostile_handshake(name: &str, response: fn(&str) -> Vec<u8>, want: ws_error, timeout_ms: u32) {
    let (tx, rx) = mpsc::channel();
    let server = RawServer::start(move |mut s| {
        let Ok((head, _)) = raw::read_head(&mut s, Vec::new(), 64 * 1024) else {
            return;
        };
        let key = raw::header(&head, "sec-websocket-key").unwrap_or_default();
        let bytes = response(&key);
        let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
        let t = Instant::now();
        if bytes.len() < 200 && timeout_ms > 0 {
            for b in &bytes {
                if std::io::Write::write_all(&mut s, &[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
                if t.elapsed() > Duration::from_secs(5) {
                    break;
                }
            }
        } else {
            let _ = std::io::Write::write_all(&mut s, &bytes);
        }
        let mut c = RawConn::wrap(s, false);
        let _ = tx.send(record(&mut c, true));
    });
    let h = open(&server.url("/"));
    set_u32(
        h,
        WS_OPTION_CONNECT_TIMEOUT,
        if timeout_ms > 0 { timeout_ms } else { 10_000 },
    );
    let t = Instant::now();
    assert_code!(ws_connect(h), want);
    let took = t.elapsed();
    let detail = last_error();
    assert_eq!(
        state(h),
        WS_STATE_NONE,
        "{name}: a failed connect returns to NONE"
    );
    let mut status = 0u32;
    let mut len = 4usize;
    let status_code = ws_query_option(
        h,
        WS_OPTION_HTTP_STATUS,
        (&mut status as *mut u32).cast(),
        &mut len,
    );
    assert_code!(ws_close_handle(h), WS_OK);
    let view = rx.recv_timeout(Duration::from_secs(20)).expect("peer");
    assert!(
        view.frames.is_empty(),
        "{name}: the peer got frames: {:?}",
        view.frames
    );
    assert!(
        matches!(view.end, End::Eof | End::Reset),
        "{name}: the client closed TCP ({:?})",
        view.end
    );
    report(&format!(
        "hostile client handshake, {name}: {} in {} ms, state NONE, HTTP status {}, peer got no frame, TCP closed ({detail})",
        wshandle::error::name(want),
        took.as_millis(),
        if status_code == WS_OK {
            status.to_string()
        } else {
            "unknown".into()
        }
    ));
}

#[test]
fn hostile_upgrade_responses() {
    hostile_handshake(
        "wrong Sec-WebSocket-Accept",
        |_| {
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: dGhpcyBpcyBub3QgaXQ=\r\n\r\n".to_vec()
        },
        WS_ERROR_INVALID_SERVER_RESPONSE,
        0,
    );
    hostile_handshake(
        "no Upgrade header",
        |key| {
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                raw::accept_key(key)
            )
            .into_bytes()
        },
        WS_ERROR_INVALID_SERVER_RESPONSE,
        0,
    );
    hostile_handshake(
        "status 200",
        |key| {
            format!(
                "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nContent-Length: 0\r\n\r\n",
                raw::accept_key(key)
            )
            .into_bytes()
        },
        WS_ERROR_INVALID_SERVER_RESPONSE,
        0,
    );
    hostile_handshake(
        "a 1 MiB header block",
        |key| {
            let mut r = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
                raw::accept_key(key)
            );
            let line = format!("X-Padding: {}\r\n", "p".repeat(1000));
            while r.len() < 1 << 20 {
                r.push_str(&line);
            }
            r.push_str("\r\n");
            r.into_bytes()
        },
        WS_ERROR_INVALID_SERVER_RESPONSE,
        0,
    );
    hostile_handshake(
        "a response trickled a byte every 100 ms, 500 ms connect timeout",
        |key| raw::upgrade_response(key).into_bytes(),
        WS_ERROR_TIMEOUT,
        500,
    );
}

#[test]
fn a_listener_facing_a_1_mib_request_head_still_accepts_others() {
    let url = CString::new("ws://127.0.0.1:0/").unwrap();
    let mut l = 0;
    assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
    set_u32(l, WS_OPTION_RECEIVE_TIMEOUT, 2_000);
    let port = local_port(l);
    let hostile = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut req = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        let line = format!("X-Padding: {}\r\n", "p".repeat(1000));
        while req.len() < 1 << 20 {
            req.push_str(&line);
        }
        let t = Instant::now();
        let sent = std::io::Write::write_all(&mut s, req.as_bytes()).is_ok();
        let mut answer = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut answer);
        (
            sent,
            String::from_utf8_lossy(&answer).into_owned(),
            t.elapsed(),
        )
    });
    std::thread::sleep(Duration::from_millis(100));
    let good = std::thread::spawn(move || RawConn::client(port, "/").map(|_| ()));
    let mut h = 0;
    assert_code!(ws_accept(l, &mut h), WS_OK);
    assert!(good.join().unwrap().is_ok());
    let (sent, answer, took) = hostile.join().unwrap();
    assert!(
        took < Duration::from_secs(5),
        "the hostile request was held for {took:?}"
    );
    ws_close_handle(h);
    ws_close_handle(l);
    let first = answer
        .lines()
        .next()
        .unwrap_or("(closed without an answer)");
    report(&format!(
        "hostile server handshake, a 1 MiB request head: the listener answered \"{first}\" after {} ms (whole request sent: {sent}); a good client was accepted meanwhile",
        took.as_millis()
    ));
}

/// Floods the connection for up to `secs` seconds: `head` first, then `unit` over and over,
/// from three threads when `unit` is a single byte (zero payload bytes interleave harmlessly
/// inside one huge frame), from one thread otherwise (whole frames must not interleave).
fn flood(c: &RawConn, head: Vec<u8>, unit: Vec<u8>, secs: u64) {
    let mut first = c.stream.try_clone().unwrap();
    if first.write_all(&head).is_err() {
        return;
    }
    let threads = if unit.len() == 1 { 3 } else { 1 };
    let chunk = unit.repeat(((1 << 20) / unit.len()).max(1));
    let mut writers = Vec::new();
    for _ in 0..threads {
        let mut s = c.stream.try_clone().unwrap();
        let chunk = chunk.clone();
        writers.push(std::thread::spawn(move || {
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(secs) {
                if s.write_all(&chunk).is_err() {
                    return;
                }
            }
        }));
    }
    for w in writers {
        let _ = w.join();
    }
}

/// The deadline holds however fast the peer sends: checked before every read, not only when
/// a wait times out (regression: a peer that kept the socket readable held `ws_close` and the
/// client's wait for the server's FIN past their deadlines, and a ping flood held
/// `ws_receive` past `WS_OPTION_RECEIVE_TIMEOUT`).
const LIMIT_MS: u64 = 300;
const NOISE: Duration = Duration::from_millis(700);

#[test]
fn close_timeout_holds_against_a_data_flood() {
    for server_role in [false, true] {
        let script: Script = Box::new(|c: RawConn| {
            let key = c.masks.then_some([0u8; 4]);
            let head = raw::encode_with(raw::OP_BINARY, true, 0, b"", key, Some(1 << 40));
            flood(&c, head, vec![0u8], 6);
            None
        });
        let pair = if server_role {
            as_server(script, 0)
        } else {
            as_client(script, 0)
        };
        let h = pair.h;
        set_u32(h, WS_OPTION_CLOSE_TIMEOUT, LIMIT_MS as u32);
        let t = Instant::now();
        let code = close(h, 1000, b"");
        let took = t.elapsed();
        assert_code!(code, WS_ERROR_TIMEOUT);
        assert!(
            took < Duration::from_millis(LIMIT_MS) + NOISE,
            "ws_close took {took:?} with a {LIMIT_MS} ms close timeout"
        );
        assert_eq!(state(h), WS_STATE_ABORTED);
        ws_close_handle(h);
        report(&format!(
            "hostile {:<6} a data flood while ws_close waits ({LIMIT_MS} ms close timeout): WS_ERROR_TIMEOUT after {} ms, state ABORTED",
            pair.role,
            took.as_millis()
        ));
    }
}

#[test]
fn the_wait_for_the_servers_fin_holds_against_garbage_after_its_close() {
    let script: Script = Box::new(|mut c: RawConn| {
        let _ = c.send_frame(raw::OP_CLOSE, true, &raw::close_payload(1000, b""));
        flood(&c, Vec::new(), vec![0xAB], 6);
        None
    });
    let pair = as_client(script, 0);
    let h = pair.h;
    assert_eq!(recv(h, &mut [0u8; 16]).2, WS_BUFFER_CLOSE);
    set_u32(h, WS_OPTION_CLOSE_TIMEOUT, LIMIT_MS as u32);
    let t = Instant::now();
    let code = close(h, 1000, b"");
    let took = t.elapsed();
    assert_code!(code, WS_OK);
    assert!(
        took < Duration::from_millis(LIMIT_MS) + NOISE,
        "ws_close took {took:?} with a {LIMIT_MS} ms close timeout"
    );
    assert_eq!(state(h), WS_STATE_CLOSED);
    ws_close_handle(h);
    report(&format!(
        "hostile client garbage flooding after the server's close: ws_close WS_OK after {} ms ({LIMIT_MS} ms close timeout bounds the wait for the FIN), state CLOSED",
        took.as_millis()
    ));
}

#[test]
fn receive_timeout_holds_against_a_ping_flood() {
    for server_role in [false, true] {
        let script: Script = Box::new(|c: RawConn| {
            let key = c.masks.then_some([0u8; 4]);
            let ping = raw::encode(raw::OP_PING, true, b"flood", key);
            flood(&c, Vec::new(), ping, 6);
            None
        });
        let pair = if server_role {
            as_server(script, 0)
        } else {
            as_client(script, 0)
        };
        let h = pair.h;
        set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, LIMIT_MS as u32);
        let t = Instant::now();
        let (code, _, _) = recv(h, &mut [0u8; 64]);
        let took = t.elapsed();
        assert_code!(code, WS_ERROR_TIMEOUT);
        assert!(
            took < Duration::from_millis(LIMIT_MS) + NOISE,
            "ws_receive took {took:?} with a {LIMIT_MS} ms receive timeout"
        );
        assert_eq!(state(h), WS_STATE_OPEN, "a receive timeout is not fatal");
        ws_close_handle(h);
        report(&format!(
            "hostile {:<6} a ping flood ({LIMIT_MS} ms receive timeout): WS_ERROR_TIMEOUT after {} ms, state OPEN",
            pair.role,
            took.as_millis()
        ));
    }
}
