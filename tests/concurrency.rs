//! API.md "Concurrency": calls from several threads on one handle, cancellation, and a stress
//! test of ws_close_handle racing a blocked ws_receive.

mod common;
use common::*;
use std::time::{Duration, Instant};

const PROMPT: Duration = Duration::from_millis(100);

#[test]
fn a_second_receive_is_refused_and_changes_nothing() {
    let peer = Peer::ws("echo", &[]);
    let h = connect(&peer.url("/"));
    let first = spawn_blocked(move || recv_message(h));
    let (code, n, ty) = recv(h, &mut [0u8; 8]);
    assert_code!(code, WS_ERROR_INVALID_OPERATION);
    assert_eq!((n, ty), (usize::MAX, u32::MAX), "outputs untouched");
    // the blocked receive is undisturbed; a send runs beside it
    assert_code!(send(h, WS_BUFFER_UTF8_MESSAGE, b"ping me"), WS_OK);
    assert_eq!(
        first.join().unwrap(),
        (b"ping me".to_vec(), WS_BUFFER_UTF8_MESSAGE)
    );
    assert_code!(close(h, 1000, b""), WS_OK);
    ws_close_handle(h);
}

#[test]
fn a_second_sending_call_is_refused_while_a_send_blocks() {
    let mut peer = Peer::raw("stall", &[]);
    let h = connect(&peer.url("/"));
    peer.event("stalled");
    set_u32(h, WS_OPTION_SEND_TIMEOUT, 0);
    // a peer that never reads: this send fills the socket buffers and blocks
    let big = spawn_blocked(move || send(h, WS_BUFFER_BINARY_MESSAGE, &vec![0u8; 64 << 20]));
    assert_code!(
        send(h, WS_BUFFER_BINARY_MESSAGE, b"x"),
        WS_ERROR_INVALID_OPERATION
    );
    assert_code!(shutdown(h, 1000, b""), WS_ERROR_INVALID_OPERATION);
    assert_code!(close(h, 1000, b""), WS_ERROR_INVALID_OPERATION);
    assert_eq!(state(h), WS_STATE_OPEN);
    // ws_close_handle cancels the blocked send within 100 ms
    let t = Instant::now();
    assert_code!(ws_close_handle(h), WS_OK);
    assert_code!(big.join().unwrap(), WS_ERROR_OPERATION_CANCELLED);
    assert!(t.elapsed() < PROMPT, "{:?}", t.elapsed());
}

#[test]
fn send_timeout_aborts_the_connection() {
    let mut peer = Peer::raw("stall", &[]);
    let h = connect(&peer.url("/"));
    peer.event("stalled");
    set_u32(h, WS_OPTION_SEND_TIMEOUT, 300);
    let t = Instant::now();
    assert_code!(
        send(h, WS_BUFFER_BINARY_MESSAGE, &vec![0u8; 64 << 20]),
        WS_ERROR_TIMEOUT
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(state(h), WS_STATE_ABORTED);
    ws_close_handle(h);
}

#[test]
fn send_timeout_spares_a_peer_that_keeps_reading() {
    // WS_OPTION_SEND_TIMEOUT is about a peer that stops reading, not about slow links
    let mut peer = Peer::raw("slow-reader", &[]);
    let h = connect(&peer.url("/"));
    set_u32(h, WS_OPTION_SEND_TIMEOUT, 300);
    let t = Instant::now();
    assert_code!(
        send(h, WS_BUFFER_BINARY_MESSAGE, &vec![1u8; 16 << 20]),
        WS_OK
    );
    assert!(
        t.elapsed() > Duration::from_millis(600),
        "the peer was not slow: {:?}",
        t.elapsed()
    );
    assert_eq!(state(h), WS_STATE_OPEN);
    ws_close_handle(h);
    assert!(peer.event("eof")["bytes"].as_u64().unwrap() > 16 << 20);
}

#[test]
fn close_cancels_a_blocked_receive_and_carries_on() {
    let mut peer = Peer::ws("echo", &[]);
    let h = connect(&peer.url("/"));
    let receiver = spawn_blocked(move || {
        let r = recv(h, &mut [0u8; 64]);
        (r, Instant::now())
    });
    let t = Instant::now();
    assert_code!(close(h, 1000, b"bye"), WS_OK);
    let ((code, _, _), returned) = receiver.join().unwrap();
    assert_code!(code, WS_ERROR_OPERATION_CANCELLED);
    assert!(returned.duration_since(t) < PROMPT);
    assert_eq!(state(h), WS_STATE_CLOSED);
    assert_eq!(close_status(h), (1000, b"bye".to_vec()));
    assert_eq!(peer.event("closed")["rcvd_reason"], "bye");
    ws_close_handle(h);
}

#[test]
fn receive_during_close_is_refused() {
    let mut peer = Peer::raw("silent", &[]);
    let h = connect(&peer.url("/"));
    set_u32(h, WS_OPTION_CLOSE_TIMEOUT, 5_000);
    let closer = spawn_blocked(move || close(h, 1000, b""));
    peer.event("close");
    let (code, _, _) = recv(h, &mut [0u8; 8]);
    assert_code!(code, WS_ERROR_INVALID_OPERATION);
    assert_code!(
        send(h, WS_BUFFER_BINARY_MESSAGE, b"x"),
        WS_ERROR_INVALID_OPERATION
    );
    assert_eq!(state(h), WS_STATE_CLOSE_SENT);
    // ws_close_handle cancels a blocked ws_close too
    let t = Instant::now();
    assert_code!(ws_close_handle(h), WS_OK);
    assert_code!(closer.join().unwrap(), WS_ERROR_OPERATION_CANCELLED);
    assert!(t.elapsed() < PROMPT, "{:?}", t.elapsed());
}

#[test]
fn shutdown_leaves_a_blocked_receive_running() {
    let peer = Peer::raw("seed", &[]);
    let h = connect(&peer.url("/"));
    let receiver = spawn_blocked(move || (recv_message(h), recv_message(h)));
    assert_code!(shutdown(h, 1000, b""), WS_OK);
    let (last, close) = receiver.join().unwrap();
    assert_eq!(
        last,
        (b"Server got 0 bytes\n".to_vec(), WS_BUFFER_UTF8_MESSAGE)
    );
    assert_eq!(close, (vec![], WS_BUFFER_CLOSE));
    assert_eq!(state(h), WS_STATE_CLOSED);
    ws_close_handle(h);
}

#[test]
fn close_handle_cancels_a_blocked_receive_and_connect() {
    let peer = Peer::ws("echo", &[]);
    let h = connect(&peer.url("/"));
    let receiver = spawn_blocked(move || recv(h, &mut [0u8; 8]).0);
    let t = Instant::now();
    assert_code!(ws_close_handle(h), WS_OK);
    assert_code!(receiver.join().unwrap(), WS_ERROR_OPERATION_CANCELLED);
    assert!(t.elapsed() < PROMPT, "{:?}", t.elapsed());
    assert_code!(ws_close_handle(h), WS_ERROR_INVALID_HANDLE);
    let mut s = 0;
    assert_code!(ws_query_state(h, &mut s), WS_ERROR_INVALID_HANDLE);

    // a server that accepts TCP and never answers the upgrade
    let mut silent = Peer::raw("no-upgrade", &[]);
    let h = open(&silent.url("/"));
    let connecting = spawn_blocked(move || ws_connect(h));
    silent.event("tcp");
    assert_eq!(state(h), WS_STATE_CONNECTING);
    assert_code!(
        send(h, WS_BUFFER_BINARY_MESSAGE, b"x"),
        WS_ERROR_INVALID_OPERATION
    );
    assert_code!(ws_connect(h), WS_ERROR_INVALID_OPERATION);
    let t = Instant::now();
    assert_code!(ws_close_handle(h), WS_OK);
    assert_code!(connecting.join().unwrap(), WS_ERROR_OPERATION_CANCELLED);
    assert!(t.elapsed() < PROMPT, "{:?}", t.elapsed());
}

#[test]
fn send_and_receive_run_at_the_same_time() {
    // the seed scenario: 128 MiB up while replies come down on another thread
    let peer = Peer::raw("seed", &[]);
    let h = connect(&peer.url("/"));
    let receiver = std::thread::spawn(move || {
        let mut replies = Vec::new();
        loop {
            let (msg, ty) = recv_message(h);
            if ty == WS_BUFFER_CLOSE {
                return replies;
            }
            replies.push(String::from_utf8(msg).unwrap());
        }
    });
    let chunk = vec![0x5Au8; 128 * 1024];
    for _ in 0..1024 {
        assert_code!(send(h, WS_BUFFER_BINARY_MESSAGE, &chunk), WS_OK);
    }
    assert_code!(shutdown(h, 1000, b""), WS_OK);
    let replies = receiver.join().unwrap();
    assert_eq!(replies.len(), 33);
    assert!(replies[..32]
        .iter()
        .all(|r| r == "Server got 4194304 bytes\n"));
    assert_eq!(replies[32], "Server got 0 bytes\n");
    assert_eq!(close_status(h), (1000, vec![]));
    ws_close_handle(h);
}

#[test]
fn receive_timeout_is_not_fatal_and_loses_nothing() {
    let peer = Peer::ws("echo", &[]);
    let h = connect(&peer.url("/"));
    set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 200);
    let t = Instant::now();
    assert_code!(recv(h, &mut [0u8; 8]).0, WS_ERROR_TIMEOUT);
    assert!(
        t.elapsed() >= Duration::from_millis(180),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(state(h), WS_STATE_OPEN);
    assert_code!(send(h, WS_BUFFER_UTF8_MESSAGE, b"still here"), WS_OK);
    assert_eq!(
        recv_message(h),
        (b"still here".to_vec(), WS_BUFFER_UTF8_MESSAGE)
    );
    assert_code!(close(h, 1000, b""), WS_OK);
    ws_close_handle(h);
}

#[test]
fn stress_close_handle_racing_a_blocked_receive() {
    let peer = Peer::ws("echo", &[]);
    let url = peer.url("/");
    let mut seed = 0x2545F4914F6CDD1Du64;
    for round in 0..200 {
        let h = connect(&url);
        let receiver = std::thread::spawn(move || recv(h, &mut [0u8; 64]).0);
        // a random delay from 0 to ~0.5 ms: sometimes before, sometimes during the receive
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let spin = seed % 50_000;
        let t = Instant::now();
        while (t.elapsed().as_nanos() as u64) < spin * 10 {
            std::hint::spin_loop();
        }
        let started = Instant::now();
        assert_code!(ws_close_handle(h), WS_OK);
        let code = receiver.join().unwrap();
        assert!(
            code == WS_ERROR_OPERATION_CANCELLED || code == WS_ERROR_INVALID_HANDLE,
            "round {round}: {}",
            wshandle::error::name(code)
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "round {round} hung"
        );
    }
}
