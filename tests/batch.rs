//! `ws_send_batch`: many pieces in one call, checked as a whole (all or nothing on a refused
//! element), each following `ws_send`'s rules, against the Python `websockets` library and
//! wshandle's own listener; refused on asynchronous handles.

mod common;

use common::asyncq;
use common::*;

fn item(buffer_type: u32, data: &[u8]) -> ws_batch_item {
    ws_batch_item {
        buffer_type,
        buf: data.as_ptr().cast(),
        len: data.len(),
    }
}

fn batch(h: ws_handle, items: &[ws_batch_item]) -> ws_error {
    ws_send_batch(h, items.as_ptr(), items.len())
}

#[test]
fn a_batch_arrives_as_its_messages_in_order() {
    let mut peer = Peer::ws("echo", &[]);
    let h = connect(&peer.url("/batch"));
    set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 10_000);
    let big = vec![0x5Au8; 300 * 1024]; // larger than one output chunk
    let items = [
        item(WS_BUFFER_UTF8_MESSAGE, "héllo".as_bytes()),
        item(WS_BUFFER_BINARY_MESSAGE, &[0, 1, 2]),
        item(WS_BUFFER_UTF8_FRAGMENT, b"\xe2\x82"), // ends inside a code point
        item(WS_BUFFER_UTF8_MESSAGE, b"\xac!"),
        item(WS_BUFFER_BINARY_MESSAGE, &[]),
        ws_batch_item {
            buffer_type: WS_BUFFER_BINARY_MESSAGE,
            buf: std::ptr::null(), // NULL is fine with length 0
            len: 0,
        },
        item(WS_BUFFER_BINARY_MESSAGE, &big),
        item(WS_BUFFER_UTF8_MESSAGE, b"last"),
    ];
    assert_code!(batch(h, &items), WS_OK);
    let want: [(&[u8], u32); 7] = [
        ("héllo".as_bytes(), WS_BUFFER_UTF8_MESSAGE),
        (&[0, 1, 2], WS_BUFFER_BINARY_MESSAGE),
        ("€!".as_bytes(), WS_BUFFER_UTF8_MESSAGE),
        (&[], WS_BUFFER_BINARY_MESSAGE),
        (&[], WS_BUFFER_BINARY_MESSAGE),
        (&big, WS_BUFFER_BINARY_MESSAGE),
        (b"last", WS_BUFFER_UTF8_MESSAGE),
    ];
    for (i, (data, ty)) in want.iter().enumerate() {
        let (got, got_ty) = recv_message(h);
        assert_eq!((got.as_slice(), got_ty), (*data, *ty), "message {i}");
    }
    // a thousand small messages in one call, in order
    let texts: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    let items: Vec<_> = texts
        .iter()
        .map(|t| item(WS_BUFFER_UTF8_MESSAGE, t.as_bytes()))
        .collect();
    assert_code!(batch(h, &items), WS_OK);
    for t in &texts {
        assert_eq!(
            recv_message(h),
            (t.as_bytes().to_vec(), WS_BUFFER_UTF8_MESSAGE)
        );
    }
    assert_code!(close(h, 1000, b"done"), WS_OK);
    let closed = peer.event("closed");
    assert_eq!(closed["rcvd_code"], 1000);
    ws_close_handle(h);
}

#[test]
fn a_refused_element_sends_nothing_and_keeps_the_open_message() {
    let mut peer = Peer::ws("echo", &[]);
    let h = connect(&peer.url("/batch"));
    set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 10_000);
    assert_code!(send(h, WS_BUFFER_UTF8_FRAGMENT, b"ab"), WS_OK);
    const B: u32 = WS_BUFFER_BINARY_MESSAGE;
    const T: u32 = WS_BUFFER_UTF8_MESSAGE;
    const TF: u32 = WS_BUFFER_UTF8_FRAGMENT;
    type Pieces<'a> = &'a [(u32, &'a [u8])];
    let refusals: [(Pieces, &str); 5] = [
        (&[(TF, b"c"), (B, b"x")], "element 1"), // a binary piece inside the open text
        (&[(T, b"c"), (B, b"x"), (T, b"\xff")], "element 2"), // invalid UTF-8
        (&[(T, b"\xe2")], "element 0"),          // a text message ending inside a code point
        (&[(T, b"c"), (WS_BUFFER_CLOSE, b"")], "element 1"),
        (&[(T, b"c"), (T, b"d"), (T, b"e"), (9, b"x")], "element 3"), // an unknown type
    ];
    let refusals = refusals.map(|(pieces, which)| {
        let items: Vec<_> = pieces.iter().map(|(t, d)| item(*t, d)).collect();
        (items, which)
    });
    for (items, which) in &refusals {
        assert_code!(batch(h, items), WS_ERROR_INVALID_PARAMETER);
        let detail = last_error();
        assert!(detail.starts_with(which), "{detail}");
    }
    // NULL with a length
    let null_buf = [ws_batch_item {
        buffer_type: WS_BUFFER_BINARY_MESSAGE,
        buf: std::ptr::null(),
        len: 1,
    }];
    assert_code!(batch(h, &null_buf), WS_ERROR_INVALID_PARAMETER);
    assert_code!(
        ws_send_batch(h, std::ptr::null(), 1),
        WS_ERROR_INVALID_PARAMETER
    );
    assert_code!(ws_send_batch(h, std::ptr::null(), 0), WS_OK);
    assert_eq!(state(h), WS_STATE_OPEN);
    // nothing of the refused batches went out: the open message continues where it was
    assert_code!(
        batch(
            h,
            &[
                item(WS_BUFFER_UTF8_MESSAGE, b"c"),
                item(WS_BUFFER_BINARY_MESSAGE, b"z")
            ]
        ),
        WS_OK
    );
    assert_eq!(recv_message(h), (b"abc".to_vec(), WS_BUFFER_UTF8_MESSAGE));
    assert_eq!(recv_message(h), (b"z".to_vec(), WS_BUFFER_BINARY_MESSAGE));
    assert_code!(close(h, 1000, b""), WS_OK);
    assert_eq!(peer.event("closed")["rcvd_code"], 1000);
    // after the close: the state rule of ws_send
    assert_code!(
        batch(h, &[item(WS_BUFFER_BINARY_MESSAGE, b"x")]),
        WS_ERROR_INVALID_OPERATION
    );
    ws_close_handle(h);
}

#[test]
fn handle_kinds_and_states() {
    assert_code!(
        ws_send_batch(0, std::ptr::null(), 0),
        WS_ERROR_INVALID_HANDLE
    );
    let (l, port) = listen("ws://127.0.0.1:0/");
    assert_code!(
        ws_send_batch(l, std::ptr::null(), 0),
        WS_ERROR_INCORRECT_HANDLE_TYPE
    );
    let h = open(&format!("ws://127.0.0.1:{port}/"));
    assert_code!(
        batch(h, &[item(WS_BUFFER_BINARY_MESSAGE, b"x")]),
        WS_ERROR_INVALID_OPERATION
    );
    ws_close_handle(h);
    ws_close_handle(l);
    assert_code!(
        ws_send_batch(h, std::ptr::null(), 0),
        WS_ERROR_INVALID_HANDLE
    );
}

/// The next completion from queue `q` (10 s at most).
fn next_completion(q: ws_handle) -> ws_completion {
    let mut c = asyncq::zeroed();
    let mut n = 0;
    assert_code!(ws_queue_wait(q, &mut c, 1, &mut n, 10_000), WS_OK);
    assert_eq!(n, 1);
    c
}

#[test]
fn asynchronous_handles_refuse_a_batch_and_stay_usable() {
    let (port, server) = asyncq::blocking_server(|s| {
        assert_eq!(recv_message(s), (b"one".to_vec(), WS_BUFFER_BINARY_MESSAGE));
    });
    let mut q = 0;
    assert_code!(ws_queue_create(&mut q), WS_OK);
    let c = open(&format!("ws://127.0.0.1:{port}/"));
    assert_code!(
        ws_set_option(c, WS_OPTION_COMPLETION_QUEUE, (&q as *const u64).cast(), 8),
        WS_OK
    );
    // before the connect, too
    assert_code!(
        batch(c, &[item(WS_BUFFER_BINARY_MESSAGE, b"x")]),
        WS_ERROR_INVALID_OPERATION
    );
    assert_code!(ws_connect(c), WS_ERROR_IO_PENDING);
    asyncq::is(&next_completion(q), c, WS_CALLBACK_STATUS_CONNECT_COMPLETE);
    assert_code!(
        batch(c, &[item(WS_BUFFER_BINARY_MESSAGE, b"x")]),
        WS_ERROR_INVALID_OPERATION
    );
    assert!(last_error().contains("asynchronous"), "{}", last_error());
    assert_code!(
        send(c, WS_BUFFER_BINARY_MESSAGE, b"one"),
        WS_ERROR_IO_PENDING
    );
    asyncq::io(
        &next_completion(q),
        c,
        WS_CALLBACK_STATUS_WRITE_COMPLETE,
        3,
        WS_BUFFER_BINARY_MESSAGE,
    );
    server.join().unwrap();
    ws_close_handle(c);
    asyncq::is(&next_completion(q), c, WS_CALLBACK_STATUS_HANDLE_CLOSING);
    assert_code!(ws_close_handle(q), WS_OK);
}

#[test]
fn a_server_batch_with_compression_and_large_unmasked_elements() {
    // a wshandle listener (unmasked frames, gathered writes for large payloads) that agreed
    // permessage-deflate, sending to a wshandle client
    let (l, port) = listen("ws://127.0.0.1:0/");
    set_u32(l, WS_OPTION_PERMESSAGE_DEFLATE, 1);
    let big = vec![7u8; 100 * 1024];
    let json = br#"{"k":"v","k":"v","k":"v","k":"v","k":"v","k":"v","k":"v"}"#.repeat(40);
    let (big2, json2) = (big.clone(), json.clone());
    let server = std::thread::spawn(move || {
        let mut s = 0;
        assert_code!(ws_accept(l, &mut s), WS_OK);
        let items = [
            item(WS_BUFFER_BINARY_MESSAGE, b"a"),
            item(WS_BUFFER_BINARY_MESSAGE, &big2),
            item(WS_BUFFER_UTF8_FRAGMENT, &json2),
            item(WS_BUFFER_UTF8_MESSAGE, b"!"),
            item(WS_BUFFER_BINARY_MESSAGE, b"b"),
        ];
        assert_code!(batch(s, &items), WS_OK);
        s
    });
    let c = open(&format!("ws://127.0.0.1:{port}/"));
    set_u32(c, WS_OPTION_PERMESSAGE_DEFLATE, 1);
    set_u32(c, WS_OPTION_RECEIVE_TIMEOUT, 10_000);
    assert_code!(ws_connect(c), WS_OK);
    let s = server.join().unwrap();
    let mut json_msg = json.clone();
    json_msg.push(b'!');
    assert_eq!(recv_message(c), (b"a".to_vec(), WS_BUFFER_BINARY_MESSAGE));
    assert_eq!(recv_message(c), (big, WS_BUFFER_BINARY_MESSAGE));
    assert_eq!(recv_message(c), (json_msg, WS_BUFFER_UTF8_MESSAGE));
    assert_eq!(recv_message(c), (b"b".to_vec(), WS_BUFFER_BINARY_MESSAGE));
    for h in [c, s, l] {
        ws_close_handle(h);
    }
}

#[test]
fn from_c_with_default_signal_dispositions_under_asan() {
    let exe = build_source("tests/c/batch.c", "tests-c-asan", &ASAN_FLAGS);
    let mut peer = Peer::ws("echo", &[]);
    let (_, stdout) = run(&exe, &[&peer.url("/c")]);
    assert!(stdout.contains("20 passed, 0 failed"), "{stdout}");
    let closed = peer.event("closed");
    assert_eq!(
        (closed["rcvd_code"].as_u64(), closed["rcvd_reason"].as_str()),
        (Some(1000), Some("bye"))
    );
}

/// Sizes around every frame-length format and the direct-read threshold, large after small
/// and small after large, so that header-alone reads meet every header length.
const MIXED: [usize; 12] = [
    300_000,
    5,
    70_000,
    0,
    200,
    1 << 20,
    126,
    65_535,
    65_536,
    16_384,
    1,
    40_000,
];

fn pattern(i: usize, n: usize) -> Vec<u8> {
    (0..n).map(|j| (i * 31 + j * 7) as u8).collect()
}

#[test]
fn large_and_small_messages_interleaved_arrive_intact_both_ways() {
    let (l, port) = listen("ws://127.0.0.1:0/");
    let server = std::thread::spawn(move || {
        let mut s = 0;
        assert_code!(ws_accept(l, &mut s), WS_OK);
        set_u32(s, WS_OPTION_RECEIVE_TIMEOUT, 10_000);
        // server to client: unmasked, 10-byte headers for the large ones
        let msgs: Vec<Vec<u8>> = MIXED
            .iter()
            .enumerate()
            .map(|(i, &n)| pattern(i, n))
            .collect();
        let items: Vec<_> = msgs
            .iter()
            .map(|m| item(WS_BUFFER_BINARY_MESSAGE, m))
            .collect();
        assert_code!(batch(s, &items), WS_OK);
        // client to server: masked, 14-byte headers; received with a 64 KiB buffer
        for (i, &n) in MIXED.iter().enumerate() {
            assert_eq!(
                recv_message(s),
                (pattern(i + 100, n), WS_BUFFER_BINARY_MESSAGE),
                "up {i}"
            );
        }
        s
    });
    let c = open(&format!("ws://127.0.0.1:{port}/"));
    set_u32(c, WS_OPTION_RECEIVE_TIMEOUT, 10_000);
    assert_code!(ws_connect(c), WS_OK);
    let mut big = vec![0u8; 2 << 20]; // a buffer that takes every message whole
    for (i, &n) in MIXED.iter().enumerate() {
        let mut got = 0;
        loop {
            let (code, k, ty) = recv(c, &mut big[got..]);
            assert_code!(code, WS_OK);
            got += k;
            if ty != WS_BUFFER_BINARY_FRAGMENT {
                assert_eq!((got, ty), (n, WS_BUFFER_BINARY_MESSAGE), "down {i}");
                break;
            }
        }
        assert!(big[..n] == pattern(i, n)[..], "down {i}: wrong bytes");
    }
    for (i, &n) in MIXED.iter().enumerate() {
        assert_code!(
            send(c, WS_BUFFER_BINARY_MESSAGE, &pattern(i + 100, n)),
            WS_OK
        );
    }
    let s = server.join().unwrap();
    for h in [c, s, l] {
        ws_close_handle(h);
    }
}
