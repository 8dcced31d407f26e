//! The client against real peers: Python `websockets` (an independent, strict implementation)
//! and a raw-socket peer for what `websockets` will not do.

mod common;
use common::*;

#[test]
fn echo_of_every_message_kind() {
    let peer = Peer::ws("echo", &[]);
    let h = connect(&peer.url("/echo"));
    assert_eq!(state(h), WS_STATE_OPEN);
    for (ty, data) in [
        (WS_BUFFER_UTF8_MESSAGE, "héllo wörld €".as_bytes().to_vec()),
        (WS_BUFFER_BINARY_MESSAGE, vec![0u8, 1, 2, 255]),
        (WS_BUFFER_BINARY_MESSAGE, vec![]),
        (WS_BUFFER_UTF8_MESSAGE, vec![]),
    ] {
        assert_code!(send(h, ty, &data), WS_OK);
        assert_eq!(recv_message(h), (data, ty));
    }
    // an empty message may pass a NULL buffer
    assert_code!(
        ws_send(h, WS_BUFFER_BINARY_MESSAGE, std::ptr::null(), 0),
        WS_OK
    );
    assert_eq!(recv_message(h), (vec![], WS_BUFFER_BINARY_MESSAGE));
    // fragments, with a text fragment ending inside a code point
    let euro = "€".as_bytes();
    assert_code!(send(h, WS_BUFFER_UTF8_FRAGMENT, &[b'a', euro[0]]), WS_OK);
    assert_code!(send(h, WS_BUFFER_UTF8_FRAGMENT, &euro[1..2]), WS_OK);
    assert_code!(send(h, WS_BUFFER_UTF8_MESSAGE, &euro[2..]), WS_OK);
    assert_eq!(
        recv_message(h),
        ("a€".as_bytes().to_vec(), WS_BUFFER_UTF8_MESSAGE)
    );
    assert_code!(send(h, WS_BUFFER_BINARY_FRAGMENT, b"ab"), WS_OK);
    assert_code!(send(h, WS_BUFFER_BINARY_MESSAGE, b"cd"), WS_OK);
    assert_eq!(
        recv_message(h),
        (b"abcd".to_vec(), WS_BUFFER_BINARY_MESSAGE)
    );
    assert_code!(close(h, 1000, b"done"), WS_OK);
    assert_eq!(close_status(h), (1000, b"done".to_vec()));
    assert_eq!(state(h), WS_STATE_CLOSED);
    assert_code!(ws_close_handle(h), WS_OK);
}

#[test]
fn small_buffers_receive_pieces_in_order() {
    let peer = Peer::ws("echo", &[]);
    let h = connect(&peer.url("/"));
    let text = "κόσμε and more text";
    assert_code!(send(h, WS_BUFFER_UTF8_MESSAGE, text.as_bytes()), WS_OK);
    let mut buf = [0u8; 5];
    let mut got = Vec::new();
    loop {
        let (code, n, ty) = recv(h, &mut buf);
        assert_code!(code, WS_OK);
        assert!(n <= 5 && (n > 0 || ty == WS_BUFFER_UTF8_MESSAGE));
        got.extend_from_slice(&buf[..n]);
        if ty == WS_BUFFER_UTF8_MESSAGE {
            break;
        }
        assert_eq!(ty, WS_BUFFER_UTF8_FRAGMENT);
    }
    assert_eq!(got, text.as_bytes());
    ws_close_handle(h);
}

#[test]
fn a_large_message_streams_through_a_small_buffer() {
    let peer = Peer::ws("echo", &[]);
    let h = connect(&peer.url("/"));
    let data: Vec<u8> = (0..32 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let sender = {
        let data = data.clone();
        std::thread::spawn(move || send(h, WS_BUFFER_BINARY_MESSAGE, &data))
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset = 0;
    loop {
        let (code, n, ty) = recv(h, &mut buf);
        assert_code!(code, WS_OK);
        assert_eq!(&buf[..n], &data[offset..offset + n]);
        offset += n;
        if ty == WS_BUFFER_BINARY_MESSAGE {
            break;
        }
        assert_eq!(ty, WS_BUFFER_BINARY_FRAGMENT);
    }
    assert_eq!(offset, data.len());
    assert_code!(sender.join().unwrap(), WS_OK);
    assert_code!(close(h, 1000, b""), WS_OK);
    ws_close_handle(h);
}

#[test]
fn client_frames_are_masked_with_fresh_keys() {
    let mut peer = Peer::raw("record", &[]);
    let h = connect(&peer.url("/"));
    for _ in 0..4 {
        assert_code!(send(h, WS_BUFFER_BINARY_MESSAGE, b"same"), WS_OK);
    }
    assert_code!(close(h, 1000, b""), WS_OK);
    peer.event("close");
    let masks: Vec<String> = peer
        .seen
        .iter()
        .filter(|v| v["event"] == "frame")
        .map(|v| {
            v["mask"]
                .as_str()
                .expect("client frames are masked")
                .to_owned()
        })
        .collect();
    assert_eq!(masks.len(), 5);
    let unique: std::collections::HashSet<_> = masks.iter().collect();
    assert!(unique.len() >= 4, "masks repeat: {masks:?}");
    ws_close_handle(h);
}

#[test]
fn pings_are_answered_with_the_same_payload() {
    let mut peer = Peer::raw("ping", &[]);
    let h = connect(&peer.url("/"));
    // the ping is answered while ws_receive waits
    let t = std::thread::spawn(move || recv(h, &mut [0u8; 16]));
    assert_eq!(peer.event("pong")["payload"], "7261772d70696e67"); // "raw-ping"
    assert_code!(close(h, 1000, b""), WS_OK);
    assert_code!(t.join().unwrap().0, WS_ERROR_OPERATION_CANCELLED);
    ws_close_handle(h);

    // the `websockets` library pings and awaits the pong
    let mut peer = Peer::ws("ping", &[]);
    let h = connect(&peer.url("/"));
    let t = std::thread::spawn(move || recv(h, &mut [0u8; 16]));
    assert_eq!(peer.event("pong")["ok"], true);
    assert_code!(close(h, 1000, b""), WS_OK);
    t.join().unwrap();
    ws_close_handle(h);
}

#[test]
fn keepalive_pings_an_idle_peer() {
    let mut peer = Peer::raw("record", &[]);
    let h = connect(&peer.url("/"));
    set_u32(h, WS_OPTION_KEEPALIVE_INTERVAL, 100);
    set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 400);
    let (code, _, _) = recv(h, &mut [0u8; 16]);
    assert_code!(code, WS_ERROR_TIMEOUT);
    assert_eq!(state(h), WS_STATE_OPEN, "a receive timeout is not fatal");
    let ping = peer.event("frame");
    assert_eq!(ping["opcode"], 9);
    ws_close_handle(h);
}

#[test]
fn keepalive_timeout_detects_a_dead_peer() {
    let peer = Peer::raw("stall", &[]);
    let h = connect(&peer.url("/"));
    set_u32(h, WS_OPTION_KEEPALIVE_INTERVAL, 100);
    set_u32(h, WS_OPTION_KEEPALIVE_TIMEOUT, 300);
    let started = std::time::Instant::now();
    let (code, _, _) = recv(h, &mut [0u8; 16]);
    assert_code!(code, WS_ERROR_TIMEOUT);
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(350), "{took:?}");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    assert_eq!(state(h), WS_STATE_ABORTED);
    assert_eq!(close_status(h), (1006, vec![]));
    drop(peer);
    ws_close_handle(h);
}

#[test]
fn server_initiated_close_with_a_reason() {
    let mut peer = Peer::ws(
        "server-close",
        &["--code", "4001", "--reason", "server says bye"],
    );
    let h = connect(&peer.url("/"));
    let (code, n, ty) = recv(h, &mut [0u8; 64]);
    assert_code!(code, WS_OK);
    assert_eq!((n, ty), (0, WS_BUFFER_CLOSE));
    assert_eq!(state(h), WS_STATE_CLOSE_RECEIVED);
    assert_eq!(close_status(h), (4001, b"server says bye".to_vec()));
    // the application answers when it is ready: still allowed to send first
    assert_code!(send(h, WS_BUFFER_UTF8_MESSAGE, b"last word"), WS_OK);
    assert_code!(close(h, 1000, b"ok"), WS_OK);
    assert_eq!(state(h), WS_STATE_CLOSED);
    let closed = peer.event("closed");
    assert_eq!(
        (closed["rcvd_code"].as_u64(), closed["rcvd_reason"].as_str()),
        (Some(1000), Some("ok"))
    );
    ws_close_handle(h);
}

#[test]
fn data_before_the_peers_close_is_delivered_first() {
    let mut peer = Peer::raw(
        "send-then-close",
        &["--code", "1001", "--reason", "going away"],
    );
    let h = connect(&peer.url("/"));
    assert_eq!(recv_message(h), (b"hello".to_vec(), WS_BUFFER_UTF8_MESSAGE));
    assert_eq!(recv_message(h), (vec![0, 1, 2], WS_BUFFER_BINARY_MESSAGE));
    assert_eq!(recv_message(h), (vec![], WS_BUFFER_CLOSE));
    assert_eq!(close_status(h), (1001, b"going away".to_vec()));
    assert_code!(shutdown(h, 1001, b""), WS_OK);
    assert_eq!(state(h), WS_STATE_CLOSED);
    assert_eq!(peer.event("close")["code"], 1001);
    ws_close_handle(h);
}

#[test]
fn invalid_utf8_from_the_peer_is_answered_with_1007() {
    let mut peer = Peer::raw("invalid-utf8", &[]);
    let h = connect(&peer.url("/"));
    let (code, _, _) = recv(h, &mut [0u8; 64]);
    assert_code!(code, WS_ERROR_INVALID_SERVER_RESPONSE);
    assert!(last_error().contains("UTF-8"), "{}", last_error());
    assert_eq!(peer.event("close")["code"], 1007);
    assert_eq!(state(h), WS_STATE_ABORTED);
    assert_eq!(close_status(h), (1006, vec![]));
    let (code, _, _) = recv(h, &mut [0u8; 64]);
    assert_code!(code, WS_ERROR_INVALID_OPERATION);
    ws_close_handle(h);
}

fn dropped_tcp(mode: &str) {
    let mut peer = Peer::raw(mode, &[]);
    let h = connect(&peer.url("/"));
    assert_code!(send(h, WS_BUFFER_BINARY_MESSAGE, b"x"), WS_OK);
    peer.event("drop");
    let (code, _, _) = recv(h, &mut [0u8; 64]);
    assert_code!(code, WS_ERROR_CONNECTION_ERROR);
    assert_eq!(state(h), WS_STATE_ABORTED);
    assert_eq!(close_status(h), (1006, vec![]));
    assert_code!(
        send(h, WS_BUFFER_BINARY_MESSAGE, b"x"),
        WS_ERROR_INVALID_OPERATION
    );
    assert_code!(close(h, 1000, b""), WS_ERROR_INVALID_OPERATION);
    ws_close_handle(h);
}

#[test]
fn tcp_dropped_with_fin() {
    dropped_tcp("drop-fin");
}

#[test]
fn tcp_dropped_with_rst() {
    dropped_tcp("drop-rst");
}
