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

/// The seed scenario (128 MiB) as an asynchronous client, both ways of closing, in queue and
/// in callback mode, against the Python peer's seed server. (tests/memcheck.rs runs the same
/// four against the library's own seed_server.c under ASan.)
#[test]
fn async_seed_client_in_both_modes() {
    let exe = build("async_seed_client");
    for driver in ["queue", "callback"] {
        for mode in ["shutdown", "close"] {
            let mut peer = Peer::raw("seed", &[]);
            let (_, stdout) = run(&exe, &[&peer.url("/seed"), mode, "1024", driver]);
            let want = match mode {
                "shutdown" => format!("async seed shutdown ok ({driver}): 33 replies"),
                _ => format!("async seed close ok ({driver}): 32 replies, receive cancelled"),
            };
            assert!(stdout.contains(&want), "{stdout}");
            assert_eq!(
                stdout
                    .matches("client got: Server got 4194304 bytes")
                    .count(),
                32
            );
            let done = peer.event("done");
            assert_eq!(
                (done["replies"].as_u64(), done["bytes"].as_u64()),
                (Some(33), Some(128 << 20))
            );
        }
    }
}

/// The seed scenario against Python `websockets` (its own protocol answers the ping and the
/// close; tests/peers/ws_server.py's seed mode only counts and replies): the blocking client,
/// and the asynchronous client in queue and callback mode, each with both ways of closing.
#[test]
fn seed_scenario_against_websockets_in_every_c_mode() {
    let blocking = build("seed_client");
    let asynchronous = build("async_seed_client");
    for (exe, driver) in [
        (&blocking, "blocking"),
        (&asynchronous, "queue"),
        (&asynchronous, "callback"),
    ] {
        for mode in ["shutdown", "close"] {
            let mut peer = Peer::ws("seed", &[]);
            let url = peer.url("/seed");
            let args: Vec<&str> = match driver {
                "blocking" => vec![&url, mode],
                _ => vec![&url, mode, "1024", driver],
            };
            let (_, stdout) = run(exe, &args);
            let want = match (driver, mode) {
                ("blocking", "shutdown") => "seed shutdown ok: 33 replies, close 1000".to_owned(),
                ("blocking", _) => "seed close ok: 32 replies".to_owned(),
                (_, "shutdown") => format!("async seed shutdown ok ({driver}): 33 replies"),
                _ => format!("async seed close ok ({driver}): 32 replies, receive cancelled"),
            };
            assert!(stdout.contains(&want), "{driver} {mode}: {stdout}");
            let done = peer.event("done");
            assert_eq!(
                (
                    done["replies"].as_u64(),
                    done["bytes"].as_u64(),
                    done["rcvd_code"].as_u64()
                ),
                (Some(33), Some(128 << 20), Some(1000)),
                "{driver} {mode}"
            );
        }
    }
}

/// ws_queue_fd in the program's own epoll loop, against Python `websockets`.
#[test]
fn async_epoll_against_websockets() {
    let exe = build("async_epoll");
    let mut peer = Peer::ws("echo", &[]);
    let (_, stdout) = run(&exe, &[&peer.url("/echo"), "5"]);
    assert!(stdout.contains("epoll ok: 5 echoes"), "{stdout}");
    let closed = peer.event("closed");
    assert_eq!(
        (closed["rcvd_code"].as_u64(), closed["rcvd_reason"].as_str()),
        (Some(1000), Some("done"))
    );
}

/// The asynchronous echo servers, queue mode and callback mode, with several clients at once:
/// the C echo client, the epoll client, and blocking clients of this process.
#[test]
fn async_echo_server_with_many_clients() {
    for program in ["async_echo_server", "async_callback_echo_server"] {
        echo_server_with_many_clients(program);
    }
}

/// `program` (an echo server) serves six clients at once, with small and 3 MiB messages,
/// and the echo and epoll examples.
fn echo_server_with_many_clients(program: &str) {
    let server = CServer::start(program, &["ws://127.0.0.1:0/", "5"]);
    let url = server.url("/");
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let h = connect(&url);
                for j in 0..50 {
                    let m = format!("{i}:{j}");
                    assert_code!(send(h, WS_BUFFER_UTF8_MESSAGE, m.as_bytes()), WS_OK);
                    assert_eq!(recv_message(h), (m.into_bytes(), WS_BUFFER_UTF8_MESSAGE));
                }
                let big = vec![i as u8; 3 << 20];
                assert_code!(send(h, WS_BUFFER_BINARY_MESSAGE, &big), WS_OK);
                assert_eq!(recv_message(h), (big, WS_BUFFER_BINARY_MESSAGE));
                assert_code!(close(h, 4000 + i as u16, b"bye"), WS_OK);
                assert_eq!(close_status(h), (4000 + i as u16, b"bye".to_vec()));
                ws_close_handle(h);
            })
        })
        .collect();
    let (_, out) = run(&build("echo_client"), &[&url]);
    assert!(out.contains("echo ok"), "{out}");
    let (_, out) = run(&build("async_epoll"), &[&url]);
    assert!(out.contains("epoll ok: 5 echoes"), "{out}");
    for t in threads {
        t.join().unwrap();
    }
    let log = server.finish();
    assert!(log.contains("served 8 connections"), "{log}");
}
