//! API.md "The close handshake": every call in every state, status and reason rules, TCP
//! teardown and ws_query_close_status.

mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn send_is_allowed_in_open_and_close_received_only() {
    // NONE
    let h = open("ws://127.0.0.1:9/");
    assert_code!(
        send(h, WS_BUFFER_BINARY_MESSAGE, b"x"),
        WS_ERROR_INVALID_OPERATION
    );
    ws_close_handle(h);
    // CLOSE_SENT
    let peer = Peer::ws("echo", &[]);
    let h = connect(&peer.url("/"));
    assert_code!(shutdown(h, 1000, b""), WS_OK);
    assert_eq!(state(h), WS_STATE_CLOSE_SENT);
    assert_code!(
        send(h, WS_BUFFER_BINARY_MESSAGE, b"x"),
        WS_ERROR_INVALID_OPERATION
    );
    // CLOSED
    assert_eq!(recv_message(h).1, WS_BUFFER_CLOSE);
    assert_eq!(state(h), WS_STATE_CLOSED);
    assert_code!(
        send(h, WS_BUFFER_BINARY_MESSAGE, b"x"),
        WS_ERROR_INVALID_OPERATION
    );
    let (code, _, _) = recv(h, &mut [0u8; 8]);
    assert_code!(code, WS_ERROR_INVALID_OPERATION);
    ws_close_handle(h);
}

#[test]
fn shutdown_then_receive_until_close() {
    let mut peer = Peer::ws("echo", &[]);
    let h = connect(&peer.url("/"));
    assert_code!(send(h, WS_BUFFER_UTF8_MESSAGE, b"before"), WS_OK);
    assert_eq!(
        recv_message(h),
        (b"before".to_vec(), WS_BUFFER_UTF8_MESSAGE)
    );
    assert_code!(shutdown(h, 3001, b"no more from me"), WS_OK);
    assert_code!(shutdown(h, 1000, b""), WS_ERROR_INVALID_OPERATION); // a second shutdown
    assert_eq!(recv_message(h), (vec![], WS_BUFFER_CLOSE));
    assert_eq!(state(h), WS_STATE_CLOSED);
    assert_eq!(close_status(h), (3001, b"no more from me".to_vec()));
    let closed = peer.event("closed");
    assert_eq!(closed["rcvd_code"], 3001);
    assert_code!(shutdown(h, 1000, b""), WS_ERROR_INVALID_OPERATION);
    // ws_close in CLOSED returns at once
    let t = Instant::now();
    assert_code!(close(h, 1000, b""), WS_OK);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_code!(close(h, 1000, b""), WS_OK);
    ws_close_handle(h);
}

#[test]
fn data_the_peer_sends_after_our_shutdown_still_arrives() {
    // the seed's server answers our close with one last reply, then its own close
    let mut peer = Peer::raw("seed", &[]);
    let h = connect(&peer.url("/"));
    assert_code!(send(h, WS_BUFFER_BINARY_MESSAGE, &[1u8; 1000]), WS_OK);
    assert_code!(shutdown(h, 1000, b""), WS_OK);
    assert_eq!(
        recv_message(h),
        (b"Server got 1000 bytes\n".to_vec(), WS_BUFFER_UTF8_MESSAGE)
    );
    assert_eq!(recv_message(h), (vec![], WS_BUFFER_CLOSE));
    assert_eq!(state(h), WS_STATE_CLOSED);
    assert_eq!(peer.event("done")["replies"], 1);
    ws_close_handle(h);
}

#[test]
fn shutdown_answers_a_received_close() {
    let mut peer = Peer::raw("server-close", &["--code", "1001", "--reason", "bye"]);
    let h = connect(&peer.url("/"));
    assert_eq!(recv_message(h), (vec![], WS_BUFFER_CLOSE));
    assert_eq!(state(h), WS_STATE_CLOSE_RECEIVED);
    let (code, _, _) = recv(h, &mut [0u8; 8]);
    assert_code!(code, WS_ERROR_INVALID_OPERATION);
    assert_code!(send(h, WS_BUFFER_UTF8_MESSAGE, b"last"), WS_OK);
    assert_code!(shutdown(h, 1000, b"ok"), WS_OK);
    assert_eq!(state(h), WS_STATE_CLOSED);
    let frames = peer.frames_until("close");
    assert_eq!(frames[0], (1, true, 4, hex(b"last")));
    assert_eq!(frames[1].0, 8);
    assert_eq!(peer.seen.last().unwrap()["code"], 1000);
    ws_close_handle(h);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn close_from_open_close_sent_and_close_received() {
    // OPEN: the full handshake
    let peer = Peer::ws("echo", &[]);
    let h = connect(&peer.url("/"));
    assert_code!(close(h, 1000, b""), WS_OK);
    assert_eq!(state(h), WS_STATE_CLOSED);
    assert_eq!(close_status(h), (1000, vec![]));
    // ws_receive after ws_close
    let (code, _, _) = recv(h, &mut [0u8; 8]);
    assert_code!(code, WS_ERROR_INVALID_OPERATION);
    ws_close_handle(h);

    // CLOSE_SENT: ws_close waits for the peer's close, discarding data
    let h = connect(&peer.url("/"));
    assert_code!(send(h, WS_BUFFER_BINARY_MESSAGE, &[7u8; 100_000]), WS_OK);
    assert_code!(shutdown(h, 1000, b""), WS_OK);
    assert_code!(close(h, 1000, b""), WS_OK);
    assert_eq!(state(h), WS_STATE_CLOSED);
    ws_close_handle(h);

    // CLOSE_RECEIVED: ws_close answers and returns without waiting for another close
    let mut peer = Peer::raw("server-close", &["--code", "4000", "--reason", "r"]);
    let h = connect(&peer.url("/"));
    assert_eq!(recv_message(h).1, WS_BUFFER_CLOSE);
    let t = Instant::now();
    assert_code!(close(h, 4000, b""), WS_OK);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(state(h), WS_STATE_CLOSED);
    assert_eq!(peer.event("close")["code"], 4000);
    assert_eq!(close_status(h), (4000, b"r".to_vec()));
    ws_close_handle(h);
}

#[test]
fn close_times_out_against_a_silent_peer() {
    let mut peer = Peer::raw("silent", &[]);
    let h = connect(&peer.url("/"));
    set_u32(h, WS_OPTION_CLOSE_TIMEOUT, 500);
    let t = Instant::now();
    assert_code!(close(h, 1000, b"bye"), WS_ERROR_TIMEOUT);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(state(h), WS_STATE_ABORTED);
    assert_eq!(close_status(h), (1006, vec![]));
    assert_eq!(peer.event("close")["reason"], "bye");
    // the transport is closed afterwards: the peer sees EOF
    peer.event("eof");
    ws_close_handle(h);
}

#[test]
fn client_waits_at_most_a_second_for_the_servers_fin() {
    let mut peer = Peer::raw("linger", &[]);
    let h = connect(&peer.url("/"));
    let t = Instant::now();
    assert_code!(close(h, 1000, b""), WS_OK);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let after = peer.event("eof")["after_ms"].as_f64().unwrap();
    assert!((800.0..3000.0).contains(&after), "{after}");
    ws_close_handle(h);

    // ... and never past the close deadline
    let mut peer = Peer::raw("linger", &[]);
    let h = connect(&peer.url("/"));
    set_u32(h, WS_OPTION_CLOSE_TIMEOUT, 300);
    let t = Instant::now();
    assert_code!(close(h, 1000, b""), WS_OK);
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    peer.event("eof");
    ws_close_handle(h);
}

#[test]
fn close_with_the_seed_server_discards_its_last_reply() {
    let mut peer = Peer::raw("seed", &[]);
    let h = connect(&peer.url("/"));
    assert_code!(
        send(h, WS_BUFFER_BINARY_MESSAGE, &vec![0u8; 4 * 1024 * 1024]),
        WS_OK
    );
    assert_eq!(
        recv_message(h),
        (
            b"Server got 4194304 bytes\n".to_vec(),
            WS_BUFFER_UTF8_MESSAGE
        )
    );
    assert_code!(close(h, 1000, b""), WS_OK);
    assert_eq!(close_status(h), (1000, vec![]));
    assert_eq!(peer.event("done")["replies"], 2);
    ws_close_handle(h);
}

#[test]
fn status_and_reason_rules() {
    let mut peer = Peer::raw("record", &[]);
    let h = connect(&peer.url("/"));
    for bad in [0u16, 999, 1004, 1006, 1015, 1016, 2999, 5000, 65535] {
        assert_code!(shutdown(h, bad, b""), WS_ERROR_INVALID_PARAMETER);
        assert_code!(close(h, bad, b""), WS_ERROR_INVALID_PARAMETER);
    }
    assert_code!(shutdown(h, 1005, b"x"), WS_ERROR_INVALID_PARAMETER);
    assert_code!(shutdown(h, 1000, &[b'a'; 124]), WS_ERROR_INVALID_PARAMETER);
    assert_code!(shutdown(h, 1000, b"\xff"), WS_ERROR_INVALID_PARAMETER);
    assert_code!(
        ws_shutdown(h, 1000, std::ptr::null(), 3),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(
        ws_close(h, 1000, std::ptr::null(), 3),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_eq!(state(h), WS_STATE_OPEN, "rejected calls change nothing");
    // 1005 sends a close frame with no payload; NULL reason with length 0 is fine
    assert_code!(ws_shutdown(h, 1005, std::ptr::null(), 0), WS_OK);
    let frames = peer.frames_until("close");
    assert_eq!(
        frames,
        vec![(8, true, 0, String::new())],
        "only the one close frame went out"
    );
    assert_eq!(peer.seen.last().unwrap()["code"], 1005);
    ws_close_handle(h);

    // every sendable status and a 123-byte reason go through
    for status in [1000u16, 1003, 1007, 1014, 3000, 4999] {
        let mut peer = Peer::raw("record", &[]);
        let h = connect(&peer.url("/"));
        let reason = "é".repeat(61) + "z"; // 123 bytes
        assert_code!(close(h, status, reason.as_bytes()), WS_OK);
        let ev = peer.event("close");
        assert_eq!(
            (ev["code"].as_u64(), ev["reason"].as_str()),
            (Some(status.into()), Some(reason.as_str()))
        );
        ws_close_handle(h);
    }
}

#[test]
fn query_close_status_rules() {
    let peer = Peer::raw(
        "server-close",
        &["--code", "4321", "--reason", "twelve bytes"],
    );
    let h = connect(&peer.url("/"));
    let (mut status, mut used) = (7u16, 9usize);
    let mut reason = [0u8; 4];
    // before the close: invalid operation and outputs untouched
    assert_code!(
        ws_query_close_status(h, &mut status, reason.as_mut_ptr().cast(), 4, &mut used),
        WS_ERROR_INVALID_OPERATION
    );
    assert_eq!((status, used), (7, 9));
    assert_eq!(recv_message(h).1, WS_BUFFER_CLOSE);
    // size query
    assert_code!(
        ws_query_close_status(h, &mut status, std::ptr::null_mut(), 0, &mut used),
        WS_ERROR_INSUFFICIENT_BUFFER
    );
    assert_eq!((status, used), (7, 12));
    assert_code!(
        ws_query_close_status(h, &mut status, reason.as_mut_ptr().cast(), 4, &mut used),
        WS_ERROR_INSUFFICIENT_BUFFER
    );
    assert_eq!((status, used), (7, 12));
    assert_code!(
        ws_query_close_status(h, std::ptr::null_mut(), std::ptr::null_mut(), 0, &mut used),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(
        ws_query_close_status(
            h,
            &mut status,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut()
        ),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(
        ws_query_close_status(h, &mut status, std::ptr::null_mut(), 5, &mut used),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_eq!(close_status(h), (4321, b"twelve bytes".to_vec()));
    ws_close_handle(h);

    // a close frame with no payload reads as 1005; an empty reason needs no buffer
    let peer = Peer::ws("echo", &[]);
    let h = connect(&peer.url("/"));
    assert_code!(ws_close(h, 1005, std::ptr::null(), 0), WS_OK);
    assert_code!(
        ws_query_close_status(h, &mut status, std::ptr::null_mut(), 0, &mut used),
        WS_OK
    );
    assert_eq!((status, used), (1005, 0));
    ws_close_handle(h);
}

#[test]
fn a_rejected_call_sends_nothing_and_keeps_the_message_open() {
    let mut peer = Peer::raw("record", &[]);
    let h = connect(&peer.url("/"));
    let euro = "€".as_bytes();
    assert_code!(send(h, WS_BUFFER_UTF8_FRAGMENT, &euro[..2]), WS_OK);
    // wrong type, invalid continuation, close type, unknown type, bad close: all rejected
    assert_code!(
        send(h, WS_BUFFER_BINARY_FRAGMENT, b"x"),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(
        send(h, WS_BUFFER_BINARY_MESSAGE, b"x"),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(
        send(h, WS_BUFFER_UTF8_MESSAGE, b"\x41"),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(
        send(h, WS_BUFFER_UTF8_MESSAGE, b""),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(send(h, WS_BUFFER_CLOSE, b""), WS_ERROR_INVALID_PARAMETER);
    assert_code!(send(h, 5, b"x"), WS_ERROR_INVALID_PARAMETER);
    assert_code!(
        ws_send(h, WS_BUFFER_UTF8_MESSAGE, std::ptr::null(), 1),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(shutdown(h, 1006, b""), WS_ERROR_INVALID_PARAMETER);
    assert_eq!(state(h), WS_STATE_OPEN);
    // the message in progress is still open with its UTF-8 state
    assert_code!(send(h, WS_BUFFER_UTF8_MESSAGE, &euro[2..]), WS_OK);
    assert_code!(
        send(h, WS_BUFFER_UTF8_MESSAGE, b"\xff"),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(close(h, 1000, b""), WS_OK);
    let frames = peer.frames_until("close");
    assert_eq!(
        frames,
        vec![
            (1, false, 2, hex(&euro[..2])),
            (0, true, 1, hex(&euro[2..])),
            (8, true, 2, hex(&1000u16.to_be_bytes())),
        ]
    );
    ws_close_handle(h);
}
