//! Reliability regressions (issue 10), each failing on 60431d7: a C program with the default
//! SIGPIPE disposition under ASan + UBSan (peers that vanish, calls from thread-exit
//! destructors, no descriptors left), and Rust tests against raw peers for dead-peer detection
//! after `ws_shutdown`, a violation that arrives while a send is blocked; tests/idle_memory.rs
//! checks the buffers an idle connection keeps.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use common::raw::{self, RawConn, RawServer};
use common::*;

/// Runs tests/c/reliability.c (ASan + UBSan) with `args`; every check must pass.
fn run_c(args: &[&str]) -> String {
    let exe = build_source("tests/c/reliability.c", "tests-c-asan", &ASAN_FLAGS);
    let out = Command::new("timeout")
        .arg("120")
        .arg(&exe)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "reliability {args:?} failed ({:?}, signal {:?}):\n{stdout}\n{stderr}",
        out.status,
        out.status.signal()
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    println!("{stdout}");
    stdout
}

#[test]
fn vanished_peers_never_raise_sigpipe() {
    let pki = &*PKI;
    let out = run_c(&[
        "vanish",
        pki.ca.to_str().unwrap(),
        pki.good.0.to_str().unwrap(),
        pki.good.1.to_str().unwrap(),
    ]);
    // 2 schemes x 2 roles x (4 calls after the peer vanished + 2 during)
    assert!(out.matches("peer gone before").count() >= 16, "{out}");
    assert!(out.matches("peer gone during").count() >= 8, "{out}");
}

#[test]
fn calls_from_thread_exit_destructors_do_not_abort() {
    run_c(&["thread-exit"]);
}

#[test]
fn no_descriptors_left_is_out_of_handles() {
    run_c(&["emfile"]);
}

/// A client connected to a raw peer that runs `script` on its side of the connection and
/// sends back what it returns.
fn raw_peer<T: Send + 'static>(
    script: impl Fn(RawConn) -> T + Send + Sync + 'static,
) -> (RawServer, mpsc::Receiver<T>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = RawServer::start(move |s| {
        if let Ok(c) = RawConn::server(s) {
            let _ = tx.lock().unwrap().send(script(c));
        }
    });
    (server, rx)
}

#[test]
fn keepalive_detects_a_peer_that_vanished_after_ws_shutdown() {
    // The peer reads everything and answers nothing, and never closes TCP (it vanished).
    let (server, seen) = raw_peer(|mut c| c.read_all().0);
    let h = open(&server.url("/silent"));
    set_u32(h, WS_OPTION_KEEPALIVE_INTERVAL, 100);
    set_u32(h, WS_OPTION_KEEPALIVE_TIMEOUT, 300);
    set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 10_000); // a backstop, far past the keepalive
    assert_code!(ws_connect(h), WS_OK);
    assert_code!(shutdown(h, 1000, b"bye"), WS_OK);
    assert_eq!(state(h), WS_STATE_CLOSE_SENT);
    let t = Instant::now();
    let (code, _, _) = recv(h, &mut [0u8; 64]);
    let took = t.elapsed();
    assert_eq!(code, WS_ERROR_TIMEOUT, "{}", last_error());
    assert!(
        last_error().contains("KEEPALIVE_TIMEOUT"),
        "{}",
        last_error()
    );
    assert_eq!(state(h), WS_STATE_ABORTED);
    // 100 ms idle + 300 ms without an answer; far below the 10 s backstop
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(close_status(h).0, 1006);
    let frames = seen.recv_timeout(Duration::from_secs(20)).unwrap();
    let opcodes: Vec<u8> = frames.iter().map(|f| f.opcode).collect();
    assert_eq!(opcodes.first(), Some(&raw::OP_CLOSE), "{opcodes:?}");
    assert!(
        opcodes[1..].contains(&raw::OP_PING),
        "no ping after the close: {opcodes:?}"
    );
    assert!(
        opcodes[1..].iter().all(|&o| o == raw::OP_PING),
        "only pings may follow our close frame: {opcodes:?}"
    );
    assert_code!(ws_close_handle(h), WS_OK);
}

#[test]
fn keepalive_after_ws_shutdown_keeps_a_peer_that_answers_pings() {
    // The peer answers pings for a second after our close, then says its last word and closes.
    let (server, seen) = raw_peer(|mut c| {
        let until = Instant::now() + Duration::from_secs(1);
        let mut pings = 0;
        while Instant::now() < until {
            match c.read_frame() {
                Ok(f) if f.opcode == raw::OP_PING => {
                    pings += 1;
                    c.send_frame(raw::OP_PONG, true, &f.payload).unwrap();
                }
                Ok(_) => {}
                Err(_) => return (pings, false),
            }
        }
        c.send_frame(raw::OP_TEXT, true, b"last words").unwrap();
        c.send_frame(raw::OP_CLOSE, true, &raw::close_payload(1000, b""))
            .unwrap();
        (pings, true)
    });
    let h = open(&server.url("/slow"));
    set_u32(h, WS_OPTION_KEEPALIVE_INTERVAL, 100);
    set_u32(h, WS_OPTION_KEEPALIVE_TIMEOUT, 300);
    assert_code!(ws_connect(h), WS_OK);
    assert_code!(shutdown(h, 1000, b""), WS_OK);
    assert_eq!(
        recv_message(h),
        (b"last words".to_vec(), WS_BUFFER_UTF8_MESSAGE)
    );
    let (code, n, ty) = recv(h, &mut [0u8; 64]);
    assert_eq!(
        (code, n, ty),
        (WS_OK, 0, WS_BUFFER_CLOSE),
        "{}",
        last_error()
    );
    assert_eq!(state(h), WS_STATE_CLOSED);
    let (pings, finished) = seen.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(finished && pings >= 3, "pings answered: {pings}");
    assert_code!(ws_close_handle(h), WS_OK);
}

#[test]
fn a_violation_is_reported_at_once_while_a_send_is_blocked() {
    // The peer never reads; once the client's send is blocked it sends a frame with a
    // reserved opcode, then waits (holding TCP open) until the test is done.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let (server, done) = raw_peer(move |mut c| {
        go_rx.lock().unwrap().recv().unwrap();
        c.send_raw(&[0x83, 0x00]).unwrap(); // FIN + opcode 3, unmasked
        let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(30));
        drop(c);
    });
    let h = open(&server.url("/violation"));
    set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 30_000);
    assert_code!(ws_connect(h), WS_OK); // CLOSE_TIMEOUT stays at its default, 10 s
    let sender = spawn_blocked(move || {
        let big = vec![0u8; 64 << 20];
        let code = send(h, WS_BUFFER_BINARY_MESSAGE, &big);
        (code, Instant::now())
    });
    go_tx.send(()).unwrap();
    let t = Instant::now();
    let (code, _, _) = recv(h, &mut [0u8; 64]);
    let took = t.elapsed();
    assert_eq!(code, WS_ERROR_INVALID_SERVER_RESPONSE, "{}", last_error());
    assert!(
        took < Duration::from_secs(3),
        "the receive waited {took:?} for the sender"
    );
    let (send_code, send_end) = sender.join().unwrap();
    assert_eq!(send_code, WS_ERROR_CONNECTION_ERROR);
    assert!(send_end.duration_since(t) < Duration::from_secs(3));
    assert_eq!(state(h), WS_STATE_ABORTED);
    let _ = go_tx.send(());
    drop(done);
    assert_code!(ws_close_handle(h), WS_OK);
}
