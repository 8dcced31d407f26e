//! Bounded memory against hostile peers, measured: this process's resident set size
//! (/proc/self/statm) before and after traffic that would make a buffering library grow.
//! The peers are in-process raw sockets (tests/common/raw.rs) that reuse one buffer, so
//! whatever grows is the library. Tests run one at a time (a lock), in their own process.
//!
//! - a frame announcing 2^40 bytes, then 256 MiB of it streamed through a 64 KiB buffer;
//! - a ping flood (100,000 pings) from a peer that never reads, so every pong backs up;
//! - one message of 200,000 one-byte fragments.
//!
//! Each in both roles. The bound is generous (16 MiB of growth) against traffic of 12 to
//! 256 MiB: a library that buffered a message, a frame or the pongs would exceed it.

mod common;

use std::ffi::CString;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::raw::{self, report, rss_bytes, RawConn, RawServer};
use common::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
const GROWTH_LIMIT: u64 = 16 << 20;

/// Runs `peer` on the other end of a connection in the given role and returns the library's
/// handle (the peer runs on its own thread).
fn connection(server_role: bool, peer: fn(RawConn)) -> (ws_handle, Option<RawServer>) {
    if server_role {
        let url = CString::new("ws://127.0.0.1:0/mem").unwrap();
        let mut l = 0;
        assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
        set_u32(l, WS_OPTION_RECEIVE_TIMEOUT, 10_000);
        let port = local_port(l);
        std::thread::spawn(move || {
            if let Ok(c) = RawConn::client(port, "/mem") {
                peer(c);
            }
        });
        let mut h = 0;
        assert_code!(ws_accept(l, &mut h), WS_OK);
        ws_close_handle(l);
        (h, None)
    } else {
        let server = RawServer::start(move |s| {
            if let Ok(c) = RawConn::server(s) {
                peer(c);
            }
        });
        let h = connect(&server.url("/mem"));
        (h, Some(server))
    }
}

/// A frame header for `len` payload bytes; a client's is masked with an all-zero key, which
/// leaves the payload unchanged (so the peer can stream one static buffer).
fn header(c: &RawConn, opcode: u8, fin: bool, len: u64) -> Vec<u8> {
    let key = c.masks.then_some([0u8; 4]);
    raw::encode_with(opcode, fin, 0, b"", key, Some(len))
}

fn role_name(server_role: bool) -> &'static str {
    if server_role {
        "server"
    } else {
        "client"
    }
}

const STREAMED: u64 = 256 << 20;

#[test]
fn a_2_pow_40_byte_frame_streams_through_a_small_buffer() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for server_role in [false, true] {
        let (h, _server) = connection(server_role, |mut c| {
            let head = header(&c, raw::OP_BINARY, true, 1 << 40);
            let chunk = vec![0u8; 1 << 20];
            let _ = c.send_raw(&head);
            let mut sent = 0;
            while sent < STREAMED + (16 << 20) {
                if c.stream.write_all(&chunk).is_err() {
                    return; // the library closed the connection
                }
                sent += chunk.len() as u64;
            }
            let _ = c.read_all(); // until the library closes
        });
        set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 10_000);
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        let mut before = 0;
        let t = Instant::now();
        while got < STREAMED + (8 << 20) {
            if got >= 8 << 20 && before == 0 {
                before = rss_bytes(); // buffers are allocated by now
            }
            let (code, n, ty) = recv(h, &mut buf);
            assert_code!(code, WS_OK);
            assert_eq!(ty, WS_BUFFER_BINARY_FRAGMENT);
            got += n as u64;
        }
        let after = rss_bytes();
        let took = t.elapsed();
        assert_code!(ws_close_handle(h), WS_OK);
        let growth = after.saturating_sub(before);
        report(&format!(
            "memory {:<6} a frame of 2^40 bytes: {} MiB received through a 64 KiB buffer in {:.1} s; RSS {} -> {} KiB (+{} KiB)",
            role_name(server_role),
            got >> 20,
            took.as_secs_f64(),
            before >> 10,
            after >> 10,
            growth >> 10
        ));
        assert!(growth < GROWTH_LIMIT, "RSS grew by {} KiB", growth >> 10);
    }
}

const PINGS: usize = 100_000;

#[test]
fn a_ping_flood_from_a_peer_that_never_reads() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for server_role in [false, true] {
        let (h, _server) = connection(server_role, |mut c| {
            // never read: the library's pongs back up in both socket buffers, then in the
            // library (which must bound them)
            let _ = socket2::SockRef::from(&c.stream).set_recv_buffer_size(4096);
            let mut batch = Vec::new();
            for i in 0..100 {
                let key = c.masks.then_some([0u8; 4]);
                batch.extend(raw::encode(raw::OP_PING, true, &[i as u8; 125], key));
            }
            for _ in 0..PINGS / 100 {
                if c.send_raw(&batch).is_err() {
                    return;
                }
            }
            let end = c.frame(raw::OP_TEXT, true, b"end of the flood");
            let _ = c.send_raw(&end);
            std::thread::sleep(Duration::from_secs(30)); // hold the connection, unread
        });
        set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 20_000);
        let before = rss_bytes();
        let t = Instant::now();
        let (msg, ty) = recv_message(h);
        let took = t.elapsed();
        let after = rss_bytes();
        assert_eq!(
            (msg.as_slice(), ty),
            (&b"end of the flood"[..], WS_BUFFER_UTF8_MESSAGE)
        );
        assert_eq!(state(h), WS_STATE_OPEN);
        assert_code!(ws_close_handle(h), WS_OK);
        let growth = after.saturating_sub(before);
        report(&format!(
            "memory {:<6} a flood of {PINGS} pings ({} MiB) from a peer that never reads: every ping parsed in {:.1} s, the message after it delivered; RSS {} -> {} KiB (+{} KiB)",
            role_name(server_role),
            (PINGS * 131) >> 20,
            took.as_secs_f64(),
            before >> 10,
            after >> 10,
            growth >> 10
        ));
        assert!(growth < GROWTH_LIMIT, "RSS grew by {} KiB", growth >> 10);
    }
}

const FRAGMENTS: usize = 200_000;

#[test]
fn a_message_of_200000_fragments() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for server_role in [false, true] {
        let (h, _server) = connection(server_role, |mut c| {
            let key = c.masks.then_some([0u8; 4]);
            let mut batch = Vec::new();
            for _ in 0..1000 {
                batch.extend(raw::encode(raw::OP_CONT, false, b"y", key));
            }
            let _ = c.send_raw(&raw::encode(raw::OP_TEXT, false, b"x", key));
            for _ in 0..FRAGMENTS / 1000 {
                if c.send_raw(&batch).is_err() {
                    return;
                }
            }
            let _ = c.send_raw(&raw::encode(raw::OP_CONT, true, b"z", key));
            let _ = c.read_all();
        });
        set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 20_000);
        let before = rss_bytes();
        let t = Instant::now();
        let mut buf = vec![0u8; 4096];
        let mut total = 0usize;
        loop {
            let (code, n, ty) = recv(h, &mut buf);
            assert_code!(code, WS_OK);
            total += n;
            if ty == WS_BUFFER_UTF8_MESSAGE {
                break;
            }
            assert_eq!(ty, WS_BUFFER_UTF8_FRAGMENT);
        }
        let took = t.elapsed();
        let after = rss_bytes();
        assert_eq!(total, FRAGMENTS + 2);
        assert_code!(ws_close_handle(h), WS_OK);
        let growth = after.saturating_sub(before);
        report(&format!(
            "memory {:<6} one message of {FRAGMENTS} one-byte fragments through a 4 KiB buffer in {:.1} s; RSS {} -> {} KiB (+{} KiB)",
            role_name(server_role),
            took.as_secs_f64(),
            before >> 10,
            after >> 10,
            growth >> 10
        ));
        assert!(growth < GROWTH_LIMIT, "RSS grew by {} KiB", growth >> 10);
    }
}
