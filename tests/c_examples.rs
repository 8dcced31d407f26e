//! The C examples, built with the exact flags users get (`-Wall -Wextra -Werror -pedantic`)
//! against the shared library, and run end to end against real peers on loopback.

mod common;
use common::*;

#[test]
fn echo_client_against_websockets() {
    let exe = build("echo_client");
    let mut peer = Peer::ws("echo", &[]);
    let (_, stdout) = run(&exe, &[&peer.url("/echo")]);
    assert!(stdout.contains("echo ok"), "{stdout}");
    assert!(
        stdout.contains("WS_BUFFER_UTF8_FRAGMENT"),
        "the text arrives in pieces: {stdout}"
    );
    let closed = peer.event("closed");
    assert_eq!(
        (closed["rcvd_code"].as_u64(), closed["rcvd_reason"].as_str()),
        (Some(1000), Some("bye"))
    );
}

#[test]
fn seed_scenario_with_shutdown() {
    let exe = build("seed_client");
    let mut peer = Peer::raw("seed", &[]);
    let (_, stdout) = run(&exe, &[&peer.url("/seed"), "shutdown"]);
    assert!(
        stdout.contains("seed shutdown ok: 33 replies, close 1000"),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .matches("client got: Server got 4194304 bytes")
            .count(),
        32
    );
    assert!(stdout.contains("client got: Server got 0 bytes"));
    let done = peer.event("done");
    assert_eq!(
        (done["replies"].as_u64(), done["bytes"].as_u64()),
        (Some(33), Some(128 << 20))
    );
}

#[test]
fn seed_scenario_with_close_while_receiving() {
    let exe = build("seed_client");
    let mut peer = Peer::raw("seed", &[]);
    let (_, stdout) = run(&exe, &[&peer.url("/seed"), "close"]);
    // The receiver is normally blocked in ws_receive when ws_close starts (cancelled); it may
    // also be between two calls, and then its next ws_receive is refused. Both are correct;
    // tests/concurrency.rs checks the blocked case deterministically.
    assert!(
        stdout.contains("seed close ok: 32 replies, receive cancelled, close 1000")
            || stdout.contains(
                "seed close ok: 32 replies, receive refused (it began after ws_close), close 1000"
            ),
        "{stdout}"
    );
    assert_eq!(peer.event("done")["replies"], 33);
}

#[test]
fn seed_scenario_in_c_on_both_sides() {
    let server = CServer::start("seed_server", &["ws://127.0.0.1:0/seed", "2", "60"]);
    let client = build("seed_client");
    let (_, stdout) = run(&client, &[&server.url("/seed"), "shutdown"]);
    assert!(
        stdout.contains("seed shutdown ok: 33 replies, close 1000"),
        "{stdout}"
    );
    let (_, stdout) = run(&client, &[&server.url("/seed"), "close"]);
    assert!(stdout.contains("seed close ok: 32 replies"), "{stdout}");
    let log = server.finish();
    assert_eq!(
        log.matches("server: 33 replies, 134217728 bytes, client closed with 1000")
            .count(),
        2,
        "{log}"
    );
}

#[test]
fn echo_server_with_the_c_and_rust_clients() {
    let server = CServer::start("echo_server", &["ws://127.0.0.1:0/", "60"]);
    let (_, stdout) = run(&build("echo_client"), &[&server.url("/")]);
    assert!(
        stdout.contains("echo ok") && stdout.contains("server closed with 1000 \"bye\""),
        "{stdout}"
    );
    let h = connect(&server.url("/"));
    for (ty, data) in [
        (WS_BUFFER_UTF8_MESSAGE, "ünïcödé".as_bytes().to_vec()),
        (WS_BUFFER_BINARY_MESSAGE, vec![]),
        (WS_BUFFER_BINARY_MESSAGE, vec![7u8; 1 << 20]),
    ] {
        assert_code!(send(h, ty, &data), WS_OK);
        assert_eq!(recv_message(h), (data, ty));
    }
    assert_code!(send(h, WS_BUFFER_UTF8_FRAGMENT, b"frag"), WS_OK);
    assert_code!(send(h, WS_BUFFER_UTF8_MESSAGE, b"mented"), WS_OK);
    assert_eq!(
        recv_message(h),
        (b"fragmented".to_vec(), WS_BUFFER_UTF8_MESSAGE)
    );
    assert_code!(close(h, 4000, b""), WS_OK);
    assert_eq!(close_status(h).0, 4000, "the server echoes the status");
    ws_close_handle(h);
}
