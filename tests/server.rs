//! The server role: ws_listen / ws_accept, the server's rules, and what must not disturb a
//! waiting ws_accept. Raw TCP clients play the misbehaving parts.

mod common;
use common::*;
use std::ffi::CString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wshandle::protocol::frame::{parse_header, write_frame, Opcode};

const PROMPT: Duration = Duration::from_millis(100);

fn accept(l: ws_handle) -> ws_handle {
    let mut h = 0;
    assert_code!(ws_accept(l, &mut h), WS_OK);
    h
}

/// A raw client: sends `request` and returns the stream and the response head.
fn raw_request(port: u16, request: &[u8]) -> (TcpStream, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

fn upgrade_request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// A raw client that completed the upgrade.
fn raw_client(port: u16, path: &str) -> TcpStream {
    let (s, head) = raw_request(port, &upgrade_request(path));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    s
}

/// Reads one frame: (fin, opcode, masked, payload).
fn read_frame(s: &mut TcpStream) -> (bool, Opcode, bool, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    let h = loop {
        if let Some(h) = parse_header(&buf).unwrap() {
            break h;
        }
        assert_eq!(s.read(&mut byte).unwrap(), 1, "EOF inside a frame header");
        buf.push(byte[0]);
    };
    let mut payload = vec![0u8; h.len as usize];
    s.read_exact(&mut payload).unwrap();
    (h.fin, h.opcode, h.mask.is_some(), payload)
}

fn write_raw(s: &mut TcpStream, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) {
    let mut out = Vec::new();
    write_frame(&mut out, opcode, true, payload, mask);
    s.write_all(&out).unwrap();
}

const MASK: Option<[u8; 4]> = Some([9, 8, 7, 6]);

#[test]
fn echo_between_wshandle_client_and_server() {
    let (l, port) = listen("ws://127.0.0.1:0/echo");
    let protos = b"b, a";
    assert_code!(
        ws_set_option(
            l,
            WS_OPTION_SUBPROTOCOLS,
            protos.as_ptr().cast(),
            protos.len()
        ),
        WS_OK
    );
    let client = std::thread::spawn(move || {
        let h = open(&format!("ws://127.0.0.1:{port}/echo?x=1"));
        let offer = b"a, b";
        assert_code!(
            ws_set_option(
                h,
                WS_OPTION_SUBPROTOCOLS,
                offer.as_ptr().cast(),
                offer.len()
            ),
            WS_OK
        );
        set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 10_000);
        assert_code!(ws_connect(h), WS_OK);
        h
    });
    let s = accept(l);
    let c = client.join().unwrap();
    assert_eq!(
        local_port(s),
        port,
        "an accepted connection's local port is the listener's"
    );
    let mut buf = [0u8; 8];
    let mut len = 8usize;
    assert_code!(
        ws_query_option(
            s,
            WS_OPTION_SELECTED_SUBPROTOCOL,
            buf.as_mut_ptr().cast(),
            &mut len
        ),
        WS_OK
    );
    assert_eq!(&buf[..len], b"b\0", "the listener's preference wins");
    let mut len = 8usize;
    assert_code!(
        ws_query_option(
            c,
            WS_OPTION_SELECTED_SUBPROTOCOL,
            buf.as_mut_ptr().cast(),
            &mut len
        ),
        WS_OK
    );
    assert_eq!(&buf[..len], b"b\0");
    assert_eq!(state(s), WS_STATE_OPEN);
    for (ty, data) in [
        (WS_BUFFER_UTF8_MESSAGE, b"text".to_vec()),
        (WS_BUFFER_BINARY_MESSAGE, vec![1, 2, 3]),
        (WS_BUFFER_BINARY_MESSAGE, vec![]),
        (WS_BUFFER_BINARY_MESSAGE, vec![0xAB; 3 << 20]),
    ] {
        assert_code!(send(c, ty, &data), WS_OK);
        let got = recv_message(s);
        assert_eq!(got, (data.clone(), ty));
        assert_code!(send(s, ty, &got.0), WS_OK);
        assert_eq!(recv_message(c), (data, ty));
    }
    // the client closes; the server answers
    assert_code!(shutdown(c, 1000, b"bye"), WS_OK);
    assert_eq!(recv_message(s), (vec![], WS_BUFFER_CLOSE));
    assert_eq!(close_status(s), (1000, b"bye".to_vec()));
    assert_code!(send(s, WS_BUFFER_UTF8_MESSAGE, b"last word"), WS_OK);
    assert_code!(close(s, 1000, b""), WS_OK);
    assert_eq!(
        recv_message(c),
        (b"last word".to_vec(), WS_BUFFER_UTF8_MESSAGE)
    );
    assert_eq!(recv_message(c), (vec![], WS_BUFFER_CLOSE));
    assert_eq!((state(c), state(s)), (WS_STATE_CLOSED, WS_STATE_CLOSED));
    for h in [c, s, l] {
        assert_code!(ws_close_handle(h), WS_OK);
    }
}

#[test]
fn server_frames_are_unmasked_and_unmasked_client_frames_fail_with_1002() {
    let (l, port) = listen("ws://127.0.0.1:0/");
    let pending = std::thread::spawn(move || raw_client(port, "/"));
    let s = accept(l);
    let mut raw = pending.join().unwrap();
    assert_code!(send(s, WS_BUFFER_UTF8_MESSAGE, b"hi"), WS_OK);
    assert_eq!(
        read_frame(&mut raw),
        (true, Opcode::Text, false, b"hi".to_vec())
    );
    write_raw(&mut raw, Opcode::Text, b"unmasked", None);
    assert_code!(recv(s, &mut [0u8; 16]).0, WS_ERROR_INVALID_SERVER_RESPONSE);
    let (_, op, masked, payload) = read_frame(&mut raw);
    assert_eq!(
        (op, masked, payload),
        (Opcode::Close, false, 1002u16.to_be_bytes().to_vec())
    );
    assert_eq!(raw.read(&mut [0u8; 8]).unwrap(), 0, "then TCP is closed");
    assert_eq!(state(s), WS_STATE_ABORTED);
    ws_close_handle(s);
    ws_close_handle(l);
}

#[test]
fn server_closes_tcp_as_soon_as_the_handshake_is_done() {
    let (l, port) = listen("ws://127.0.0.1:0/");
    let pending = std::thread::spawn(move || raw_client(port, "/"));
    let s = accept(l);
    let mut raw = pending.join().unwrap();
    write_raw(&mut raw, Opcode::Close, b"\x03\xe8", MASK);
    assert_eq!(recv_message(s), (vec![], WS_BUFFER_CLOSE));
    let t = Instant::now();
    assert_code!(close(s, 1000, b""), WS_OK);
    assert!(t.elapsed() < PROMPT, "{:?}", t.elapsed());
    assert_eq!(read_frame(&mut raw).1, Opcode::Close);
    assert_eq!(
        raw.read(&mut [0u8; 8]).unwrap(),
        0,
        "FIN right after the close frame"
    );
    ws_close_handle(s);
    ws_close_handle(l);
}

#[test]
fn a_client_that_never_answers_the_servers_close() {
    let (l, port) = listen("ws://127.0.0.1:0/");
    let pending = std::thread::spawn(move || raw_client(port, "/"));
    let s = accept(l);
    let mut raw = pending.join().unwrap();
    set_u32(s, WS_OPTION_CLOSE_TIMEOUT, 300);
    let t = Instant::now();
    assert_code!(close(s, 1001, b"going"), WS_ERROR_TIMEOUT);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(state(s), WS_STATE_ABORTED);
    assert_eq!(read_frame(&mut raw).3, b"\x03\xe9going".to_vec());
    assert_eq!(raw.read(&mut [0u8; 8]).unwrap(), 0);
    ws_close_handle(s);
    ws_close_handle(l);
}

#[test]
fn a_client_that_drops_tcp() {
    let (l, port) = listen("ws://127.0.0.1:0/");
    let pending = std::thread::spawn(move || raw_client(port, "/"));
    let s = accept(l);
    let raw = pending.join().unwrap();
    drop(raw);
    assert_code!(recv(s, &mut [0u8; 16]).0, WS_ERROR_CONNECTION_ERROR);
    assert_eq!(close_status(s), (1006, vec![]));
    ws_close_handle(s);
    ws_close_handle(l);
}

#[test]
fn bad_requests_do_not_disturb_a_waiting_accept() {
    let (l, port) = listen("ws://127.0.0.1:0/chat");
    set_u32(l, WS_OPTION_RECEIVE_TIMEOUT, 5_000);
    let accepted = spawn_blocked(move || {
        let mut h = 0;
        (ws_accept(l, &mut h), h)
    });
    // a second ws_accept on the same listener is refused
    let mut other = 0;
    assert_code!(ws_accept(l, &mut other), WS_ERROR_INVALID_OPERATION);
    // an unfinished request, then a wrong path, garbage and a wrong version
    let mut unfinished = TcpStream::connect(("127.0.0.1", port)).unwrap();
    unfinished
        .write_all(b"GET /chat HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (_, head) = raw_request(port, &upgrade_request("/other"));
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (_, head) = raw_request(port, b"NOT HTTP AT ALL\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let v8 = String::from_utf8(upgrade_request("/chat"))
        .unwrap()
        .replace("Version: 13", "Version: 8");
    let (_, head) = raw_request(port, v8.as_bytes());
    assert!(
        head.starts_with("HTTP/1.1 426") && head.contains("Sec-WebSocket-Version: 13"),
        "{head}"
    );
    // a good client still gets through
    let client = std::thread::spawn(move || connect(&format!("ws://127.0.0.1:{port}/chat")));
    let (code, s) = accepted.join().unwrap();
    assert_code!(code, WS_OK);
    let c = client.join().unwrap();
    assert_code!(send(c, WS_BUFFER_UTF8_MESSAGE, b"through"), WS_OK);
    assert_eq!(
        recv_message(s),
        (b"through".to_vec(), WS_BUFFER_UTF8_MESSAGE)
    );
    for h in [c, s, l] {
        ws_close_handle(h);
    }
}

#[test]
fn an_unfinished_request_is_dropped_after_the_receive_timeout() {
    let (l, port) = listen("ws://127.0.0.1:0/");
    set_u32(l, WS_OPTION_RECEIVE_TIMEOUT, 300);
    let mut unfinished = TcpStream::connect(("127.0.0.1", port)).unwrap();
    unfinished
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    unfinished.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let mut h = 0;
                let code = ws_accept(l, &mut h);
                assert!(
                    code == WS_ERROR_TIMEOUT || code == WS_ERROR_OPERATION_CANCELLED,
                    "{}",
                    wshandle::error::name(code)
                );
                if code == WS_ERROR_OPERATION_CANCELLED {
                    break;
                }
            }
        })
    };
    let t = Instant::now();
    assert_eq!(
        unfinished.read(&mut [0u8; 64]).unwrap(),
        0,
        "the server drops it"
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    stop.store(true, Ordering::SeqCst);
    ws_close_handle(l);
    server.join().unwrap();
}

#[test]
fn closing_the_listener_cancels_accept_and_spares_accepted_connections() {
    let (l, port) = listen("ws://127.0.0.1:0/");
    let client = std::thread::spawn(move || connect(&format!("ws://127.0.0.1:{port}/")));
    let s = accept(l);
    let c = client.join().unwrap();
    let waiting = spawn_blocked(move || {
        let mut h = 0;
        ws_accept(l, &mut h)
    });
    let t = Instant::now();
    assert_code!(ws_close_handle(l), WS_OK);
    assert_code!(waiting.join().unwrap(), WS_ERROR_OPERATION_CANCELLED);
    assert!(t.elapsed() < PROMPT, "{:?}", t.elapsed());
    // the port is closed
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    // the accepted connection lives on
    assert_code!(send(c, WS_BUFFER_BINARY_MESSAGE, b"alive"), WS_OK);
    assert_eq!(
        recv_message(s),
        (b"alive".to_vec(), WS_BUFFER_BINARY_MESSAGE)
    );
    let answer = std::thread::spawn(move || {
        assert_eq!(recv_message(s), (vec![], WS_BUFFER_CLOSE));
        close(s, 1000, b"")
    });
    assert_code!(close(c, 1000, b""), WS_OK);
    assert_code!(answer.join().unwrap(), WS_OK);
    for h in [c, s] {
        ws_close_handle(h);
    }
}

#[test]
fn handle_type_mix_ups() {
    let (l, _) = listen("ws://127.0.0.1:0/");
    let c = open("ws://127.0.0.1:9/");
    let mut h = 0;
    let mut s = 0u32;
    assert_code!(ws_accept(c, &mut h), WS_ERROR_INCORRECT_HANDLE_TYPE);
    assert_code!(ws_connect(l), WS_ERROR_INCORRECT_HANDLE_TYPE);
    assert_code!(
        send(l, WS_BUFFER_BINARY_MESSAGE, b"x"),
        WS_ERROR_INCORRECT_HANDLE_TYPE
    );
    assert_code!(recv(l, &mut [0u8; 4]).0, WS_ERROR_INCORRECT_HANDLE_TYPE);
    assert_code!(shutdown(l, 1000, b""), WS_ERROR_INCORRECT_HANDLE_TYPE);
    assert_code!(close(l, 1000, b""), WS_ERROR_INCORRECT_HANDLE_TYPE);
    assert_code!(ws_query_state(l, &mut s), WS_ERROR_INCORRECT_HANDLE_TYPE);
    let name = CString::new("X").unwrap();
    assert_code!(
        ws_add_request_header(l, name.as_ptr(), name.as_ptr()),
        WS_ERROR_INCORRECT_HANDLE_TYPE
    );
    // options that do not apply to a listener
    let v = 1u32;
    assert_code!(
        ws_set_option(l, WS_OPTION_PROXY, b"x".as_ptr().cast(), 1),
        WS_ERROR_INVALID_OPTION
    );
    let mut len = 4usize;
    assert_code!(
        ws_query_option(
            l,
            WS_OPTION_HTTP_STATUS,
            (&mut s as *mut u32).cast(),
            &mut len
        ),
        WS_ERROR_INVALID_OPTION
    );
    assert_code!(
        ws_set_option(l, WS_OPTION_CLOSE_TIMEOUT, (&v as *const u32).cast(), 4),
        WS_OK
    );
    assert_code!(
        ws_accept(l, std::ptr::null_mut()),
        WS_ERROR_INVALID_PARAMETER
    );
    let bad = CString::new("http://127.0.0.1:0/").unwrap();
    assert_code!(
        ws_listen(bad.as_ptr(), &mut h),
        WS_ERROR_UNRECOGNIZED_SCHEME
    );
    assert_code!(
        ws_listen(std::ptr::null(), &mut h),
        WS_ERROR_INVALID_PARAMETER
    );
    // a port in use
    let (l2, port) = listen("ws://127.0.0.1:0/");
    let busy = CString::new(format!("ws://127.0.0.1:{port}/")).unwrap();
    assert_code!(ws_listen(busy.as_ptr(), &mut h), WS_ERROR_CANNOT_CONNECT);
    for h in [l, c, l2] {
        assert_code!(ws_close_handle(h), WS_OK);
    }
}

#[test]
fn accepted_connections_inherit_the_listeners_timeouts() {
    let (l, port) = listen("ws://127.0.0.1:0/");
    set_u32(l, WS_OPTION_CLOSE_TIMEOUT, 1234);
    let pending = std::thread::spawn(move || raw_client(port, "/"));
    let s = accept(l);
    let _raw = pending.join().unwrap();
    let mut v = 0u32;
    let mut len = 4usize;
    assert_code!(
        ws_query_option(
            s,
            WS_OPTION_CLOSE_TIMEOUT,
            (&mut v as *mut u32).cast(),
            &mut len
        ),
        WS_OK
    );
    assert_eq!(v, 1234);
    ws_close_handle(s);
    ws_close_handle(l);
}

#[test]
fn sixty_four_clients_at_once_with_a_thread_each() {
    const N: usize = 64;
    let (l, port) = listen("ws://127.0.0.1:0/many");
    let served = Arc::new(AtomicUsize::new(0));
    let server = {
        let served = served.clone();
        std::thread::spawn(move || {
            let mut threads = Vec::new();
            for _ in 0..N {
                let s = accept(l);
                let served = served.clone();
                threads.push(std::thread::spawn(move || {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let (code, n, ty) = recv(s, &mut buf);
                        assert_code!(code, WS_OK);
                        if ty == WS_BUFFER_CLOSE {
                            assert_code!(close(s, 1000, b""), WS_OK);
                            break;
                        }
                        assert_code!(send(s, ty, &buf[..n]), WS_OK);
                    }
                    served.fetch_add(1, Ordering::SeqCst);
                    ws_close_handle(s);
                }));
            }
            for t in threads {
                t.join().unwrap();
            }
        })
    };
    let clients: Vec<_> = (0..N)
        .map(|i| {
            std::thread::spawn(move || {
                let c = connect(&format!("ws://127.0.0.1:{port}/many"));
                for j in 0..20 {
                    let msg = format!("client {i} message {j}").repeat(j + 1);
                    assert_code!(send(c, WS_BUFFER_UTF8_MESSAGE, msg.as_bytes()), WS_OK);
                    assert_eq!(recv_message(c), (msg.into_bytes(), WS_BUFFER_UTF8_MESSAGE));
                }
                assert_code!(close(c, 1000, b""), WS_OK);
                ws_close_handle(c);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    server.join().unwrap();
    assert_eq!(served.load(Ordering::SeqCst), N);
    ws_close_handle(l);
}
