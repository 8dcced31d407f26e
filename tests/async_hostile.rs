//! Hostile peers against asynchronous handles, in both roles and both modes (queue and
//! callbacks): the raw-socket peers of tests/common/raw.rs break the protocol, reset TCP in
//! the middle of a frame, trickle bytes under a receive timeout, lie in the upgrade, and flood
//! pings at a connection that never reads. For each: the completion (operation and code) the
//! header documents, the close frame the peer received, the state afterwards, refusals that
//! change nothing, and `HANDLE_CLOSING` last.
//!
//! Protocol violations → `REQUEST_ERROR {RECEIVE, WS_ERROR_INVALID_SERVER_RESPONSE}`, a close
//! frame with 1002, 1007 or 1009 to the peer and nothing else, then TCP closed,
//! `WS_STATE_ABORTED`, 1006 from `ws_query_close_status`. The flood test measures this
//! process's resident set (tests run one at a time here: a lock).

mod common;

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::asyncq::*;
use common::raw::{self, report, rss_bytes, End, RawConn, RawServer};
use common::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The library in `server_role` or as a client, asynchronous through `q`, against a raw peer
/// running `script` after the upgrade.
fn pair(q: &Completions, server_role: bool, script: Script, max_message: u64) -> Pair {
    let (tx, rx) = mpsc::channel();
    let set_max = |h: ws_handle| {
        if max_message > 0 {
            set_u64(h, WS_OPTION_MAX_MESSAGE_SIZE, max_message);
        }
    };
    if server_role {
        let (l, port) = listen("ws://127.0.0.1:0/hostile");
        set_u32(l, WS_OPTION_CLOSE_TIMEOUT, 5_000);
        set_max(l);
        q.bind(l);
        assert_code!(ws_accept(l, std::ptr::null_mut()), WS_ERROR_IO_PENDING);
        std::thread::spawn(move || {
            if let Ok(c) = RawConn::client(port, "/hostile") {
                let _ = tx.send(run_script(&script, c, false));
            }
        });
        let x = q.next();
        is(&x, l, WS_CALLBACK_STATUS_ACCEPT_COMPLETE);
        assert_code!(ws_close_handle(l), WS_OK);
        is(&q.next(), l, WS_CALLBACK_STATUS_HANDLE_CLOSING);
        Pair {
            h: x.accepted,
            role: "server",
            view: rx,
            _server: None,
        }
    } else {
        let server = RawServer::start(move |s| {
            if let Ok(c) = RawConn::server(s) {
                let _ = tx.send(run_script(&script, c, true));
            }
        });
        let h = open(&server.url("/hostile"));
        set_u32(h, WS_OPTION_CLOSE_TIMEOUT, 5_000);
        set_max(h);
        q.bind(h);
        assert_code!(ws_connect(h), WS_ERROR_IO_PENDING);
        is(&q.next(), h, WS_CALLBACK_STATUS_CONNECT_COMPLETE);
        Pair {
            h,
            role: "client",
            view: rx,
            _server: Some(server),
        }
    }
}

/// Receives until a receive fails or the close arrives (data pieces before are allowed);
/// returns the last completion.
fn receive_until_failure(q: &Completions, h: ws_handle) -> ws_completion {
    let mut buf = vec![0u8; 4096];
    for _ in 0..1000 {
        assert_code!(receive(h, &mut buf), WS_ERROR_IO_PENDING);
        let x = q.next();
        if x.status != WS_CALLBACK_STATUS_READ_COMPLETE || x.io.buffer_type == WS_BUFFER_CLOSE {
            return x;
        }
    }
    panic!("no failure after 1000 pieces");
}

/// Refusals after the connection ended change nothing; `ws_close_handle` then brings
/// `HANDLE_CLOSING` and nothing more.
fn refused_then_released(q: &Completions, h: ws_handle) {
    assert_code!(receive(h, &mut [0u8; 8]), WS_ERROR_INVALID_OPERATION);
    assert_code!(
        send(h, WS_BUFFER_BINARY_MESSAGE, b"x"),
        WS_ERROR_INVALID_OPERATION
    );
    assert_code!(ws_close_handle(h), WS_OK);
    is(&q.next(), h, WS_CALLBACK_STATUS_HANDLE_CLOSING);
    assert!(q.poll(4, 50).is_empty(), "nothing after HANDLE_CLOSING");
}

/// The violations of tests/hostile.rs: (name, bytes, close status the peer must get,
/// WS_OPTION_MAX_MESSAGE_SIZE).
const VIOLATIONS: [(&str, Wire, u16, u64); 9] = [
    (
        "a 64-bit length of 2^63",
        |k| raw::encode_with(raw::OP_BINARY, true, 0, b"", k, Some(1 << 63)),
        1002,
        0,
    ),
    (
        "a control frame longer than 125 bytes",
        |k| raw::encode(raw::OP_PING, true, &[1; 126], k),
        1002,
        0,
    ),
    (
        "a fragmented control frame",
        |k| raw::encode(raw::OP_PING, false, b"x", k),
        1002,
        0,
    ),
    (
        "a continuation with nothing to continue",
        |k| raw::encode(raw::OP_CONT, true, b"x", k),
        1002,
        0,
    ),
    (
        "a close with a 1-byte payload",
        |k| raw::encode(raw::OP_CLOSE, true, &[3], k),
        1002,
        0,
    ),
    (
        "text that is not UTF-8",
        |k| raw::encode(raw::OP_TEXT, true, b"ok \xC3\x28", k),
        1007,
        0,
    ),
    (
        "a message over WS_OPTION_MAX_MESSAGE_SIZE",
        |k| raw::encode(raw::OP_BINARY, true, &[7; 2000], k),
        1009,
        1000,
    ),
    (
        "reserved opcode 0xB",
        |k| raw::encode(0xB, true, b"", k),
        1002,
        0,
    ),
    (
        "masking the wrong way for the role",
        |k| {
            let flipped = if k.is_some() { None } else { Some(KEY) };
            raw::encode(raw::OP_BINARY, true, b"x", flipped)
        },
        1002,
        0,
    ),
];

fn protocol_violations(q: &Completions) {
    let _one = one_at_a_time();
    for (name, wire, want_status, max_message) in VIOLATIONS {
        for server_role in [false, true] {
            let script: Script = Box::new(move |mut c: RawConn| {
                let key = c.masks.then_some(KEY);
                let _ = c.send_raw(&wire(key));
                Some(c)
            });
            let p = pair(q, server_role, script, max_message);
            let h = p.h;
            let x = receive_until_failure(q, h);
            failed(
                &x,
                h,
                WS_OPERATION_RECEIVE,
                WS_ERROR_INVALID_SERVER_RESPONSE,
            );
            assert_eq!(state(h), WS_STATE_ABORTED, "{name} ({})", p.role);
            assert_eq!(close_status(h), (1006, vec![]), "{name}");
            let view = p.peer(); // the library closed TCP after its close frame
            assert_eq!(
                view.closes(),
                vec![want_status],
                "{name} ({}): the peer saw {:?}",
                p.role,
                view.frames
            );
            assert_eq!(view.frames.len(), 1, "{name}: {:?}", view.frames);
            assert_eq!(
                view.end,
                End::Eof,
                "{name}: TCP closed after the close frame"
            );
            refused_then_released(q, h);
            report(&format!(
                "async hostile {:<6} {name}: REQUEST_ERROR receive WS_ERROR_INVALID_SERVER_RESPONSE, peer got close {want_status} then FIN, ABORTED",
                p.role
            ));
        }
    }
}

fn a_tcp_reset_in_the_middle_of_a_frame(q: &Completions) {
    let _one = one_at_a_time();
    for server_role in [false, true] {
        let script: Script = Box::new(|mut c: RawConn| {
            let f = c.frame(raw::OP_BINARY, true, &[9; 100]);
            let _ = c.send_raw(&f[..f.len() - 90]); // the header and 10 bytes of payload
            std::thread::sleep(Duration::from_millis(50));
            c.reset();
            None
        });
        let p = pair(q, server_role, script, 0);
        let h = p.h;
        let mut got = 0;
        let x = loop {
            let mut buf = [0u8; 64];
            assert_code!(receive(h, &mut buf), WS_ERROR_IO_PENDING);
            let x = q.next();
            if x.status != WS_CALLBACK_STATUS_READ_COMPLETE {
                break x;
            }
            assert_eq!(
                x.io.buffer_type, WS_BUFFER_BINARY_FRAGMENT,
                "the frame never ends"
            );
            got += x.io.bytes_transferred;
        };
        failed(&x, h, WS_OPERATION_RECEIVE, WS_ERROR_CONNECTION_ERROR);
        assert!(got <= 10, "{got} bytes delivered");
        assert_eq!(state(h), WS_STATE_ABORTED);
        assert_eq!(close_status(h), (1006, vec![]));
        assert_code!(
            ws_close(h, 1000, std::ptr::null(), 0),
            WS_ERROR_INVALID_OPERATION
        );
        let _ = p.peer();
        refused_then_released(q, h);
    }
}

/// One byte every 100 ms against a 250 ms receive timeout: each receive that got nothing
/// times out and the connection stays usable; the message arrives whole in the end.
fn slowloris_under_a_receive_timeout(q: &Completions) {
    let _one = one_at_a_time();
    for server_role in [false, true] {
        let script: Script = Box::new(|mut c: RawConn| {
            let f = c.frame(raw::OP_TEXT, true, b"hello");
            let _ = c.trickle(&f, Duration::from_millis(100));
            Some(c)
        });
        let p = pair(q, server_role, script, 0);
        let h = p.h;
        set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 250);
        let mut buf = [0u8; 64];
        let mut text = Vec::new();
        let started = Instant::now();
        loop {
            assert!(started.elapsed() < Duration::from_secs(10), "never arrived");
            assert_code!(receive(h, &mut buf), WS_ERROR_IO_PENDING);
            let x = q.next();
            if x.status == WS_CALLBACK_STATUS_REQUEST_ERROR {
                failed(&x, h, WS_OPERATION_RECEIVE, WS_ERROR_TIMEOUT);
                assert_eq!(
                    state(h),
                    WS_STATE_OPEN,
                    "a receive timeout keeps the connection"
                );
                continue;
            }
            is(&x, h, WS_CALLBACK_STATUS_READ_COMPLETE);
            text.extend_from_slice(&buf[..x.io.bytes_transferred]);
            if x.io.buffer_type == WS_BUFFER_UTF8_MESSAGE {
                break;
            }
        }
        assert_eq!(text, b"hello");
        assert_code!(ws_close(h, 1000, std::ptr::null(), 0), WS_ERROR_IO_PENDING);
        is(&q.next(), h, WS_CALLBACK_STATUS_CLOSE_COMPLETE);
        let view = p.peer();
        assert_eq!(view.closes(), vec![1000]);
        assert_code!(ws_close_handle(h), WS_OK);
        is(&q.next(), h, WS_CALLBACK_STATUS_HANDLE_CLOSING);
    }
}

/// Upgrade responses that must fail an asynchronous `ws_connect` with REQUEST_ERROR {CONNECT}
/// and leave the handle in NONE.
fn hostile_upgrade_responses(q: &Completions) {
    let _one = one_at_a_time();
    let cases: [(&str, &'static [u8], ws_error); 4] = [
        (
            "a wrong Sec-WebSocket-Accept",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
            WS_ERROR_INVALID_SERVER_RESPONSE,
        ),
        (
            "200 OK",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            WS_ERROR_INVALID_SERVER_RESPONSE,
        ),
        (
            "garbage",
            b"\x00\x01garbage\xff\r\n\r\n",
            WS_ERROR_INVALID_SERVER_RESPONSE,
        ),
        ("a close before any answer", b"", WS_ERROR_CONNECTION_ERROR),
    ];
    for (name, answer, want) in cases {
        let server = RawServer::start(move |mut s| {
            let _ = raw::read_head(&mut s, Vec::new(), 16 * 1024);
            let _ = std::io::Write::write_all(&mut s, answer);
        });
        let h = open(&server.url("/"));
        set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 5_000);
        q.bind(h);
        assert_code!(ws_connect(h), WS_ERROR_IO_PENDING);
        let x = q.next();
        assert_eq!(
            (x.handle, x.status, x.result.operation),
            (h, WS_CALLBACK_STATUS_REQUEST_ERROR, WS_OPERATION_CONNECT),
            "{name}: {x:?}"
        );
        assert_eq!(
            wshandle::error::name(x.result.error),
            wshandle::error::name(want),
            "{name}"
        );
        assert_eq!(state(h), WS_STATE_NONE, "{name}");
        assert_code!(ws_close_handle(h), WS_OK);
        is(&q.next(), h, WS_CALLBACK_STATUS_HANDLE_CLOSING);
        report(&format!(
            "async hostile client upgrade answered with {name}: REQUEST_ERROR connect {}, state NONE",
            wshandle::error::name(want)
        ));
    }
}

/// A peer floods pings (100,000) and never reads: the library answers while the socket
/// takes the pongs, keeps at most a few of them queued, and its memory stays flat; the
/// connection then closes normally once the peer reads again.
fn a_ping_flood_from_a_peer_that_never_reads(q: &Completions) {
    let _one = one_at_a_time();
    const PINGS: usize = 100_000;
    const GROWTH_LIMIT: u64 = 16 << 20;
    for server_role in [false, true] {
        let (go, wait) = mpsc::channel::<()>();
        let wait = Mutex::new(wait);
        let script: Script = Box::new(move |mut c: RawConn| {
            let one = c.frame(raw::OP_PING, true, &[0x55; 125]);
            let burst: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
            for _ in 0..PINGS / 1000 {
                if c.send_raw(&burst).is_err() {
                    return None;
                }
            }
            let end = c.frame(raw::OP_TEXT, true, b"end of flood");
            let _ = c.send_raw(&end);
            // read nothing until the library saw the whole flood
            let _ = wait.lock().unwrap().recv_timeout(Duration::from_secs(60));
            Some(c)
        });
        let p = pair(q, server_role, script, 0);
        let h = p.h;
        let rss0 = rss_bytes();
        let mut buf = [0u8; 64];
        assert_code!(receive(h, &mut buf), WS_ERROR_IO_PENDING);
        let x = q.next();
        io(
            &x,
            h,
            WS_CALLBACK_STATUS_READ_COMPLETE,
            12,
            WS_BUFFER_UTF8_MESSAGE,
        );
        assert_eq!(&buf[..12], b"end of flood");
        let grown = rss_bytes().saturating_sub(rss0);
        go.send(()).unwrap();
        assert_code!(ws_close(h, 1000, std::ptr::null(), 0), WS_ERROR_IO_PENDING);
        is(&q.next(), h, WS_CALLBACK_STATUS_CLOSE_COMPLETE);
        let view = p.peer();
        let pongs = view
            .frames
            .iter()
            .filter(|f| f.opcode == raw::OP_PONG)
            .count();
        assert_eq!(view.closes(), vec![1000]);
        assert_code!(ws_close_handle(h), WS_OK);
        is(&q.next(), h, WS_CALLBACK_STATUS_HANDLE_CLOSING);
        report(&format!(
            "async hostile {:<6} {PINGS} pings (12.7 MB) from a peer that did not read: RSS {:+} KiB, {pongs} pongs sent, then a normal close",
            p.role,
            grown / 1024
        ));
        assert!(
            grown < GROWTH_LIMIT,
            "{} KiB more resident during a ping flood",
            grown / 1024
        );
    }
}

/// A message and the end of the stream arrive together, before any receive is pending: the
/// first receive gets the message, the next fails with `WS_ERROR_CONNECTION_ERROR` at once
/// (the end is already known: no new readiness will announce it).
fn a_message_and_the_end_of_the_stream_together(q: &Completions) {
    let _one = one_at_a_time();
    for server_role in [false, true] {
        let (sent, was_sent) = mpsc::channel::<()>();
        let sent = Mutex::new(sent);
        let script: Script = Box::new(move |mut c: RawConn| {
            let mut bytes = c.frame(raw::OP_TEXT, true, b"last words");
            bytes.extend(c.frame(raw::OP_TEXT, true, b"and more"));
            let _ = c.send_raw(&bytes);
            let _ = c.stream.shutdown(std::net::Shutdown::Write);
            let _ = sent.lock().unwrap().send(());
            Some(c)
        });
        let p = pair(q, server_role, script, 0);
        let h = p.h;
        was_sent
            .recv_timeout(Duration::from_secs(10))
            .expect("the peer sent");
        let mut buf = [0u8; 64];
        for want in [&b"last words"[..], b"and more"] {
            assert_code!(receive(h, &mut buf), WS_ERROR_IO_PENDING);
            let x = q.next();
            io(&x, h, x.status, want.len(), WS_BUFFER_UTF8_MESSAGE);
            assert_eq!(&buf[..want.len()], want);
        }
        let started = Instant::now();
        assert_code!(receive(h, &mut buf), WS_ERROR_IO_PENDING);
        let x = q.next();
        failed(&x, h, WS_OPERATION_RECEIVE, WS_ERROR_CONNECTION_ERROR);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(state(h), WS_STATE_ABORTED);
        let _ = p.peer();
        refused_then_released(q, h);
    }
}

both_modes!(
    protocol_violations,
    a_message_and_the_end_of_the_stream_together,
    a_tcp_reset_in_the_middle_of_a_frame,
    slowloris_under_a_receive_timeout,
    hostile_upgrade_responses,
    a_ping_flood_from_a_peer_that_never_reads,
);
