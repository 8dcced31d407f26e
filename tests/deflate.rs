//! permessage-deflate (RFC 7692) against independent peers in both roles: Python `websockets`
//! (its defaults, no context takeover, small windows) and Node `ws` with `perMessageDeflate`.
//! Each peer counts the compressed messages it receives from us, so the tests see that we
//! really compress, and every echo is compared byte for byte.

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

/// A peer process (tests/peers/deflate_peer.*), killed by its PID when dropped.
struct DeflatePeer {
    child: Child,
    port: u16,
    events: mpsc::Receiver<Value>,
}

impl DeflatePeer {
    fn start(program: &str, args: &[&str]) -> DeflatePeer {
        let mut child = peer_command(program)
            .args(args)
            .args(["--deadline", "90"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start peer");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut port = 0;
        if args.contains(&"server") {
            let first = lines.next().expect("peer printed nothing").unwrap();
            port = first
                .strip_prefix("PORT ")
                .expect("PORT line")
                .parse()
                .unwrap();
        }
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        DeflatePeer {
            child,
            port,
            events,
        }
    }

    /// The peer's next JSON event (an "error" event fails the test).
    fn event(&self) -> Value {
        let v = self
            .events
            .recv_timeout(Duration::from_secs(60))
            .expect("the peer printed no event within 60 s");
        assert_ne!(v["event"], "error", "{v}");
        v
    }
}

impl Drop for DeflatePeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn extensions(h: ws_handle) -> String {
    let mut buf = [0u8; 256];
    let mut len = buf.len();
    assert_code!(
        ws_query_option(h, WS_OPTION_EXTENSIONS, buf.as_mut_ptr().cast(), &mut len),
        WS_OK
    );
    String::from_utf8(buf[..len - 1].to_vec()).unwrap()
}

/// Receives one whole message through a 64 KiB buffer: (buffer type of the last piece, bytes).
fn receive_message(h: ws_handle) -> (u32, Vec<u8>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut msg = Vec::new();
    loop {
        let (mut n, mut ty) = (0usize, 0u32);
        assert_code!(
            ws_receive(h, buf.as_mut_ptr().cast(), buf.len(), &mut n, &mut ty),
            WS_OK
        );
        msg.extend_from_slice(&buf[..n]);
        if ty != WS_BUFFER_UTF8_FRAGMENT && ty != WS_BUFFER_BINARY_FRAGMENT {
            return (ty, msg);
        }
    }
}

/// Our server: accepts one connection with compression on (`options` on top) and echoes every
/// message piece by piece, as echo_server.c does, until the client closes. Returns the agreed
/// extensions and the client's close status.
fn our_server(options: &[(u32, u32)]) -> (u16, JoinHandle<(String, u16)>) {
    let url = std::ffi::CString::new("ws://127.0.0.1:0/").unwrap();
    let mut l: ws_handle = 0;
    assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
    set_u32(l, WS_OPTION_PERMESSAGE_DEFLATE, 1);
    set_u32(l, WS_OPTION_RECEIVE_TIMEOUT, 60_000);
    for &(o, v) in options {
        set_u32(l, o, v);
    }
    let port = local_port(l);
    let t = std::thread::spawn(move || {
        let mut h: ws_handle = 0;
        assert_code!(ws_accept(l, &mut h), WS_OK);
        let ext = extensions(h);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let (mut n, mut ty) = (0usize, 0u32);
            assert_code!(
                ws_receive(h, buf.as_mut_ptr().cast(), buf.len(), &mut n, &mut ty),
                WS_OK
            );
            if ty == WS_BUFFER_CLOSE {
                break;
            }
            assert_code!(ws_send(h, ty, buf.as_ptr().cast(), n), WS_OK);
        }
        let (status, reason) = close_status(h);
        assert_code!(
            ws_close(h, status, reason.as_ptr().cast(), reason.len()),
            WS_OK
        );
        ws_close_handle(h);
        ws_close_handle(l);
        (ext, status)
    });
    (port, t)
}

/// What our client sends: similar JSON texts, empty and tiny messages, a text in three
/// fragments, 1 MiB of compressible and 200 KiB of random binary.
fn our_messages() -> Vec<(u32, Vec<Vec<u8>>)> {
    let mut out = Vec::new();
    for i in 0..20 {
        let json = format!(
            r#"{{"type":"trade","seq":{i},"symbol":"BTC-USD","price":"{:.2}","size":"0.0125"}}"#,
            43000.0 + f64::from(i) * 1.25
        );
        out.push((WS_BUFFER_UTF8_MESSAGE, vec![json.into_bytes()]));
    }
    out.push((WS_BUFFER_UTF8_MESSAGE, vec![vec![]]));
    out.push((WS_BUFFER_BINARY_MESSAGE, vec![vec![]]));
    out.push((WS_BUFFER_UTF8_MESSAGE, vec![b"hi".to_vec()]));
    out.push((
        WS_BUFFER_UTF8_MESSAGE,
        vec![
            b"frag".to_vec(),
            b"ment".to_vec(),
            "ed é€".as_bytes().to_vec(),
        ],
    ));
    let text: Vec<u8> = (0..1usize << 20)
        .map(|i| b"ABCD    \n"[i * 7919 % 9])
        .collect();
    out.push((WS_BUFFER_BINARY_MESSAGE, vec![text]));
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..200 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    out.push((WS_BUFFER_BINARY_MESSAGE, vec![random]));
    out
}

/// A client handle for `url` with compression on and `options` on top.
fn open_deflate(url: &str, options: &[(u32, u32)]) -> ws_handle {
    let h = open(url);
    set_u32(h, WS_OPTION_PERMESSAGE_DEFLATE, 1);
    for &(o, v) in options {
        set_u32(h, o, v);
    }
    h
}

/// Sends one message as `pieces` (fragments, then `last`), each `ws_send` returning `want`;
/// returns the fragment type of the message's kind.
fn send_pieces(h: ws_handle, last: u32, pieces: &[Vec<u8>], want: ws_error) -> u32 {
    let frag = if last == WS_BUFFER_UTF8_MESSAGE {
        WS_BUFFER_UTF8_FRAGMENT
    } else {
        WS_BUFFER_BINARY_FRAGMENT
    };
    for (i, p) in pieces.iter().enumerate() {
        let ty = if i + 1 == pieces.len() { last } else { frag };
        assert_code!(ws_send(h, ty, p.as_ptr().cast(), p.len()), want);
    }
    frag
}

/// Our client: connects to `url` with compression on (`options` on top), sends
/// [`our_messages`] and checks each echo, closes with 1000 "done". Returns the agreed
/// extensions and the number of messages sent.
fn our_client(url: &str, options: &[(u32, u32)]) -> (String, u64) {
    let h = open_deflate(url, options);
    assert_code!(ws_connect(h), WS_OK);
    let ext = extensions(h);
    let msgs = our_messages();
    for (last, pieces) in &msgs {
        send_pieces(h, *last, pieces, WS_OK);
        let (ty, got) = receive_message(h);
        assert_eq!(ty, *last);
        assert!(got == pieces.concat(), "echo differs ({} bytes)", got.len());
    }
    assert_code!(ws_close(h, 1000, b"done".as_ptr().cast(), 4), WS_OK);
    assert_eq!(close_status(h), (1000, b"done".to_vec()));
    ws_close_handle(h);
    (ext, msgs.len() as u64)
}

/// Python `websockets` configurations (see deflate_peer.py) with what our listener answers.
const PY_CONFIGS: [(&str, &str); 3] = [
    ("default", "permessage-deflate; client_max_window_bits=12"),
    (
        "no_takeover",
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=12",
    ),
    (
        "bits",
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
    ),
];

#[test]
fn python_websockets_client_against_our_server() {
    for (config, answer) in PY_CONFIGS {
        // threshold 0: the server compresses every message, so the count below is exact
        let (port, server) = our_server(&[(WS_OPTION_DEFLATE_THRESHOLD, 0)]);
        let url = format!("ws://127.0.0.1:{port}/");
        let peer = DeflatePeer::start(
            "deflate_peer.py",
            &["--role", "client", "--url", &url, "--config", config],
        );
        let ev = peer.event();
        let (ext, status) = server.join().unwrap();
        assert_eq!(ext, answer, "{config}");
        assert_eq!(ev["extensions"], answer, "{config}");
        assert_eq!(ev["ok"], true, "{config}: {ev}");
        assert_eq!(
            ev["compressed_in"], 26,
            "{config}: every echo came compressed"
        );
        assert_eq!((ev["close_code"].as_u64(), status), (Some(1000), 1000));
    }
}

#[test]
fn our_client_against_python_websockets_server() {
    type Case<'a> = (&'a str, &'a [(u32, u32)], &'a str);
    let cases: [Case; 4] = [
        ("default", &[], "permessage-deflate; server_max_window_bits=12"),
        (
            "no_takeover",
            &[],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12",
        ),
        (
            "bits",
            &[],
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
        ),
        (
            // our side asks for no context takeover and 9-bit windows
            "default",
            &[
                (WS_OPTION_DEFLATE_CONTEXT_TAKEOVER, 0),
                (WS_OPTION_DEFLATE_WINDOW_BITS, 9),
                (WS_OPTION_DEFLATE_LEVEL, 9),
            ],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9",
        ),
    ];
    for (config, options, answer) in cases {
        let peer = DeflatePeer::start("deflate_peer.py", &["--role", "server", "--config", config]);
        let url = format!("ws://127.0.0.1:{}/", peer.port);
        let mut opts = vec![(WS_OPTION_DEFLATE_THRESHOLD, 0)];
        opts.extend_from_slice(options);
        let (ext, sent) = our_client(&url, &opts);
        assert_eq!(ext, answer, "{config} {options:?}");
        let ev = peer.event();
        assert_eq!(ev["event"], "closed");
        assert_eq!(ev["messages"], sent);
        assert_eq!(
            ev["compressed_in"], sent,
            "{config}: every message went compressed"
        );
        assert_eq!(
            (ev["rcvd_code"].as_u64(), ev["rcvd_reason"].as_str()),
            (Some(1000), Some("done"))
        );
    }
}

#[test]
fn node_ws_with_per_message_deflate_in_both_roles() {
    // Node's client against our server (with its default threshold: small echoes go plain)
    let (port, server) = our_server(&[]);
    let url = format!("ws://127.0.0.1:{port}/");
    let peer = DeflatePeer::start("deflate_peer.mjs", &["--role", "client", "--url", &url]);
    let ev = peer.event();
    let (ext, status) = server.join().unwrap();
    assert_eq!(ext, "permessage-deflate; client_max_window_bits=12");
    assert_eq!(ev["ok"], true, "{ev}");
    // 20 JSON texts and the two large binaries are over the 64-byte threshold
    assert_eq!(ev["compressed_in"], 22);
    assert_eq!((ev["close_code"].as_u64(), status), (Some(1000), 1000));

    // our client against Node's server
    let peer = DeflatePeer::start("deflate_peer.mjs", &["--role", "server"]);
    let url = format!("ws://127.0.0.1:{}/", peer.port);
    let (ext, sent) = our_client(&url, &[(WS_OPTION_DEFLATE_THRESHOLD, 0)]);
    assert_eq!(ext, "permessage-deflate; server_max_window_bits=12");
    let ev = peer.event();
    assert_eq!(ev["messages"], sent);
    assert_eq!(ev["compressed_in"], sent);
    assert_eq!(
        (ev["rcvd_code"].as_u64(), ev["rcvd_reason"].as_str()),
        (Some(1000), Some("done"))
    );
}

fn query_u32(h: ws_handle, option: u32) -> (ws_error, u32) {
    let (mut v, mut len) = (0u32, 4usize);
    let code = ws_query_option(h, option, (&mut v as *mut u32).cast(), &mut len);
    (code, v)
}

#[test]
fn option_defaults_ranges_and_states() {
    let h = open("ws://127.0.0.1:1/");
    let set = |h, o, v: u32| ws_set_option(h, o, (&v as *const u32).cast(), 4);
    // defaults
    for (o, v) in [
        (WS_OPTION_PERMESSAGE_DEFLATE, 0),
        (WS_OPTION_DEFLATE_WINDOW_BITS, 12),
        (WS_OPTION_DEFLATE_CONTEXT_TAKEOVER, 1),
        (WS_OPTION_DEFLATE_LEVEL, 3),
        (WS_OPTION_DEFLATE_THRESHOLD, 64),
    ] {
        assert_eq!(query_u32(h, o), (WS_OK, v), "option {o}");
    }
    // ranges: no 8-bit window (zlib cannot compress with one), levels 0-9, booleans 0/1
    for (o, v) in [
        (WS_OPTION_DEFLATE_WINDOW_BITS, 8),
        (WS_OPTION_DEFLATE_WINDOW_BITS, 16),
        (WS_OPTION_DEFLATE_LEVEL, 10),
        (WS_OPTION_PERMESSAGE_DEFLATE, 2),
        (WS_OPTION_DEFLATE_CONTEXT_TAKEOVER, 2),
    ] {
        assert_code!(set(h, o, v), WS_ERROR_INVALID_PARAMETER);
    }
    assert_code!(set(h, WS_OPTION_DEFLATE_WINDOW_BITS, 9), WS_OK);
    assert_eq!(query_u32(h, WS_OPTION_DEFLATE_WINDOW_BITS), (WS_OK, 9));
    // WS_OPTION_EXTENSIONS: query only, known after the handshake
    let mut buf = [0u8; 8];
    let mut len = buf.len();
    assert_code!(
        ws_query_option(h, WS_OPTION_EXTENSIONS, buf.as_mut_ptr().cast(), &mut len),
        WS_ERROR_INCORRECT_HANDLE_STATE
    );
    assert_code!(
        ws_set_option(h, WS_OPTION_EXTENSIONS, b"x".as_ptr().cast(), 1),
        WS_ERROR_INVALID_OPTION
    );
    ws_close_handle(h);
    // a listener takes the compression options, not WS_OPTION_EXTENSIONS; an accepted
    // connection's are fixed
    let (port, server) = our_server(&[(WS_OPTION_DEFLATE_LEVEL, 9)]);
    let h = open(&format!("ws://127.0.0.1:{port}/"));
    set_u32(h, WS_OPTION_PERMESSAGE_DEFLATE, 1);
    assert_code!(ws_connect(h), WS_OK);
    assert_code!(
        set(h, WS_OPTION_PERMESSAGE_DEFLATE, 0),
        WS_ERROR_INCORRECT_HANDLE_STATE
    );
    assert_code!(close(h, 1000, b""), WS_OK);
    ws_close_handle(h);
    assert_eq!(
        server.join().unwrap(),
        (
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12".to_owned(),
            1000
        )
    );
    let url = std::ffi::CString::new("ws://127.0.0.1:0/").unwrap();
    let mut l: ws_handle = 0;
    assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
    assert_code!(set(l, WS_OPTION_DEFLATE_THRESHOLD, 0), WS_OK);
    assert_eq!(query_u32(l, WS_OPTION_DEFLATE_THRESHOLD), (WS_OK, 0));
    let mut len = buf.len();
    assert_code!(
        ws_query_option(l, WS_OPTION_EXTENSIONS, buf.as_mut_ptr().cast(), &mut len),
        WS_ERROR_INVALID_OPTION
    );
    ws_close_handle(l);
}

/// [`our_client`]'s asynchronous twin: the same messages through a completion queue, every
/// piece of a message pending at once while the echo's receive is pending.
fn our_async_client(url: &str, options: &[(u32, u32)]) -> (String, u64) {
    let q = asyncq::Completions::queue();
    let h = open_deflate(url, options);
    q.bind(h);
    assert_code!(ws_connect(h), WS_ERROR_IO_PENDING);
    asyncq::is(&q.next(), h, WS_CALLBACK_STATUS_CONNECT_COMPLETE);
    let ext = extensions(h);
    let msgs = our_messages();
    let mut buf = vec![0u8; 64 * 1024];
    for (last, pieces) in &msgs {
        let frag = send_pieces(h, *last, pieces, WS_ERROR_IO_PENDING);
        assert_code!(asyncq::receive(h, &mut buf), WS_ERROR_IO_PENDING);
        let (mut got, mut writes, mut done) = (Vec::new(), 0, false);
        while !done || writes < pieces.len() {
            let c = q.next();
            assert_eq!(c.handle, h, "{c:?}");
            match c.status {
                WS_CALLBACK_STATUS_WRITE_COMPLETE => writes += 1,
                WS_CALLBACK_STATUS_READ_COMPLETE => {
                    got.extend_from_slice(&buf[..c.io.bytes_transferred]);
                    if c.io.buffer_type == *last {
                        done = true;
                    } else {
                        assert_eq!(c.io.buffer_type, frag, "{c:?}");
                        assert_code!(asyncq::receive(h, &mut buf), WS_ERROR_IO_PENDING);
                    }
                }
                _ => panic!("unexpected completion {c:?}"),
            }
        }
        assert!(got == pieces.concat(), "echo differs ({} bytes)", got.len());
    }
    assert_code!(
        ws_close(h, 1000, b"done".as_ptr().cast(), 4),
        WS_ERROR_IO_PENDING
    );
    asyncq::is(&q.next(), h, WS_CALLBACK_STATUS_CLOSE_COMPLETE);
    assert_eq!(close_status(h), (1000, b"done".to_vec()));
    assert_code!(ws_close_handle(h), WS_OK);
    asyncq::is(&q.next(), h, WS_CALLBACK_STATUS_HANDLE_CLOSING);
    (ext, msgs.len() as u64)
}

/// [`our_server`]'s asynchronous twin: a listener and its one connection on a completion
/// queue, echoing every piece (each echo's copy lives until its WRITE_COMPLETE) until the
/// client's close, which it answers with the same status and reason.
fn our_async_server(options: &[(u32, u32)]) -> (u16, JoinHandle<(String, u16)>) {
    let url = std::ffi::CString::new("ws://127.0.0.1:0/").unwrap();
    let mut l: ws_handle = 0;
    assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
    set_u32(l, WS_OPTION_PERMESSAGE_DEFLATE, 1);
    for &(o, v) in options {
        set_u32(l, o, v);
    }
    let port = local_port(l);
    let t = std::thread::spawn(move || {
        let q = asyncq::Completions::queue();
        q.bind(l);
        assert_code!(ws_accept(l, std::ptr::null_mut()), WS_ERROR_IO_PENDING);
        let a = q.next();
        asyncq::is(&a, l, WS_CALLBACK_STATUS_ACCEPT_COMPLETE);
        let h = a.accepted;
        let ext = extensions(h);
        let mut buf = vec![0u8; 64 * 1024];
        let mut echoes = std::collections::VecDeque::new();
        assert_code!(asyncq::receive(h, &mut buf), WS_ERROR_IO_PENDING);
        let status = loop {
            let c = q.next();
            assert_eq!(c.handle, h, "{c:?}");
            match c.status {
                WS_CALLBACK_STATUS_WRITE_COMPLETE => {
                    let _: Vec<u8> = echoes.pop_front().expect("an echo in flight");
                }
                WS_CALLBACK_STATUS_READ_COMPLETE if c.io.buffer_type == WS_BUFFER_CLOSE => {
                    let (status, reason) = close_status(h);
                    assert_code!(
                        ws_close(h, status, reason.as_ptr().cast(), reason.len()),
                        WS_ERROR_IO_PENDING
                    );
                    break status;
                }
                WS_CALLBACK_STATUS_READ_COMPLETE => {
                    let echo = buf[..c.io.bytes_transferred].to_vec();
                    assert_code!(
                        ws_send(h, c.io.buffer_type, echo.as_ptr().cast(), echo.len()),
                        WS_ERROR_IO_PENDING
                    );
                    echoes.push_back(echo); // the heap copy stays put while it waits
                    assert_code!(asyncq::receive(h, &mut buf), WS_ERROR_IO_PENDING);
                }
                _ => panic!("unexpected completion {c:?}"),
            }
        };
        // the echoes still in flight complete before the close
        loop {
            let c = q.next();
            match c.status {
                WS_CALLBACK_STATUS_WRITE_COMPLETE => {
                    echoes.pop_front();
                }
                WS_CALLBACK_STATUS_CLOSE_COMPLETE => break,
                _ => panic!("unexpected completion {c:?}"),
            }
        }
        assert!(echoes.is_empty());
        assert_code!(ws_close_handle(h), WS_OK);
        assert_code!(ws_close_handle(l), WS_OK);
        let closing = q.take(2);
        assert!(closing
            .iter()
            .all(|c| c.status == WS_CALLBACK_STATUS_HANDLE_CLOSING));
        (ext, status)
    });
    (port, t)
}

#[test]
fn asynchronous_handles_compress_too() {
    // our asynchronous client against Python websockets' server: every message compressed
    let peer = DeflatePeer::start(
        "deflate_peer.py",
        &["--role", "server", "--config", "default"],
    );
    let url = format!("ws://127.0.0.1:{}/", peer.port);
    let (ext, sent) = our_async_client(&url, &[(WS_OPTION_DEFLATE_THRESHOLD, 0)]);
    assert_eq!(ext, "permessage-deflate; server_max_window_bits=12");
    let ev = peer.event();
    assert_eq!(
        (ev["messages"].as_u64(), ev["compressed_in"].as_u64()),
        (Some(sent), Some(sent))
    );
    assert_eq!(
        (ev["rcvd_code"].as_u64(), ev["rcvd_reason"].as_str()),
        (Some(1000), Some("done"))
    );

    // Python websockets' client against our asynchronous listener: every echo compressed
    let (port, server) = our_async_server(&[(WS_OPTION_DEFLATE_THRESHOLD, 0)]);
    let url = format!("ws://127.0.0.1:{port}/");
    let peer = DeflatePeer::start(
        "deflate_peer.py",
        &["--role", "client", "--url", &url, "--config", "no_takeover"],
    );
    let ev = peer.event();
    let (ext, status) = server.join().unwrap();
    let answer = "permessage-deflate; server_no_context_takeover; client_max_window_bits=12";
    assert_eq!(
        (ext.as_str(), ev["extensions"].as_str()),
        (answer, Some(answer))
    );
    assert_eq!(ev["ok"], true, "{ev}");
    assert_eq!(ev["compressed_in"], 26, "every echo came compressed");
    assert_eq!((ev["close_code"].as_u64(), status), (Some(1000), 1000));

    // both ends ours and asynchronous, context takeover both ways
    let (port, server) = our_async_server(&[]);
    let (ext, _) = our_async_client(&format!("ws://127.0.0.1:{port}/"), &[]);
    let (server_ext, status) = server.join().unwrap();
    assert_eq!(ext, server_ext);
    assert!(ext.starts_with("permessage-deflate"), "{ext}");
    assert_eq!(status, 1000);
}
