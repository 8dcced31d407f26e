//! Fuzzing the HTTP upgrade in both roles: a wshandle client against raw servers that answer
//! with valid and mutated 101 responses, and a wshandle listener against raw clients that send
//! valid and mutated upgrade requests.
//!
//! Client role: `ws_connect` must return WS_OK exactly when the response is a valid 101 for its
//! key (status 101, `Upgrade: websocket`, `Connection` with the `upgrade` token, the right
//! `Sec-WebSocket-Accept`, no extension or subprotocol that was not offered), and
//! `WS_ERROR_INVALID_SERVER_RESPONSE` (or `WS_ERROR_CONNECTION_ERROR` when the server hangs up
//! early) otherwise; a frame sent right behind the response must be the first thing received.
//! For randomly corrupted responses only the set of codes is checked, plus HTTP status 101 on
//! success. Never `WS_ERROR_INTERNAL`, never a hang (the connect timeout is 2 s).
//!
//! Server role: with a `ws_accept` always waiting (handshakes progress inside it), a request
//! is answered with 101 (and `ws_accept` returns it) exactly when it is a valid upgrade on the
//! listener's path; otherwise 400, 404, 426 or 431, or the connection is dropped; and after
//! every 25 requests a good client is accepted — the one it should be, checked with a message
//! — so nothing disturbs the waiting `ws_accept`.
//!
//! Budget: a third of `WSHANDLE_FUZZ_SECS` per role (default 10 s); `WSHANDLE_FUZZ_SEED`.

mod common;

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use common::raw::{self, env_num, report, seed_from_env, RawConn, RawServer, Rng};
use common::*;

fn budget() -> Duration {
    Duration::from_secs(env_num("WSHANDLE_FUZZ_SECS", 30).div_ceil(3))
}

/// A response head as lines, so that mutations can work on its structure.
struct Head {
    status_line: String,
    headers: Vec<(String, String)>,
    newline: &'static str,
}

impl Head {
    fn bytes(&self) -> Vec<u8> {
        let mut s = format!("{}{}", self.status_line, self.newline);
        for (n, v) in &self.headers {
            s.push_str(&format!("{n}:{v}{}", self.newline));
        }
        s.push_str(self.newline);
        s.into_bytes()
    }
    fn remove(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
    fn set(&mut self, name: &str, value: &str) {
        self.remove(name);
        self.headers.push((name.to_owned(), value.to_owned()));
    }
}

fn random_case(rng: &mut Rng, s: &str) -> String {
    s.chars()
        .map(|c| {
            if rng.chance(1, 3) {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// What a mutation does to a response's validity.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Valid,
    Invalid,
    /// Randomly corrupted: any documented code.
    Unknown,
    /// The server hangs up before the head is complete.
    HangUp,
}

/// A 101 response for `key`, varied in ways that keep it valid, then maybe broken.
fn response(rng: &mut Rng, key: &str) -> (Vec<u8>, Expect, String) {
    let mut h = Head {
        status_line: "HTTP/1.1 101 Switching Protocols".into(),
        headers: vec![
            ("Upgrade".into(), " websocket".into()),
            ("Connection".into(), " Upgrade".into()),
            (
                "Sec-WebSocket-Accept".into(),
                format!(" {}", raw::accept_key(key)),
            ),
        ],
        newline: "\r\n",
    };
    let mut what = Vec::new();
    // valid variations
    if rng.chance(1, 3) {
        for (n, _) in h.headers.iter_mut() {
            *n = random_case(rng, n);
        }
        what.push("header name case");
    }
    if rng.chance(1, 4) {
        let v = random_case(rng, "websocket");
        h.set("Upgrade", &format!("  {v}\t"));
        what.push("Upgrade value case and spaces");
    }
    if rng.chance(1, 4) {
        h.set("Connection", " keep-alive, Upgrade");
        what.push("Connection: keep-alive, Upgrade");
    }
    if rng.chance(1, 3) {
        for i in 0..rng.range(1, 5) {
            let at = rng.range(0, h.headers.len() as u64) as usize;
            h.headers
                .insert(at, (format!("X-Extra-{i}"), format!(" value {i}")));
        }
        what.push("extra headers");
    }
    if rng.chance(1, 5) {
        h.status_line = "HTTP/1.1 101 Whatever".into();
        what.push("another reason phrase");
    }
    if rng.chance(1, 6) {
        h.set("Sec-WebSocket-Extensions", "");
        what.push("an empty Sec-WebSocket-Extensions");
    }
    // breaking it
    let mut expect = Expect::Valid;
    let roll = rng.below(20);
    match roll {
        0 => {
            let s = *rng.pick(&[100u16, 200, 204, 301, 400, 404, 426, 500, 503]);
            h.status_line = format!("HTTP/1.1 {s} Nope");
            what.push("status not 101");
            expect = Expect::Invalid;
        }
        1 => {
            h.remove("Upgrade");
            what.push("no Upgrade");
            expect = Expect::Invalid;
        }
        2 => {
            h.set("Upgrade", " h2c");
            what.push("Upgrade: h2c");
            expect = Expect::Invalid;
        }
        3 => {
            h.remove("Connection");
            what.push("no Connection");
            expect = Expect::Invalid;
        }
        4 => {
            h.set("Connection", " keep-alive");
            what.push("Connection without upgrade");
            expect = Expect::Invalid;
        }
        5 => {
            h.remove("Sec-WebSocket-Accept");
            what.push("no Sec-WebSocket-Accept");
            expect = Expect::Invalid;
        }
        6 => {
            let wrong = raw::accept_key("dGhlIHNhbXBsZSBub25jZQ==");
            let v = if rng.chance(1, 2) {
                wrong
            } else {
                raw::accept_key(key).to_lowercase()
            };
            h.set("Sec-WebSocket-Accept", &format!(" {v}"));
            what.push("a wrong Sec-WebSocket-Accept");
            expect = Expect::Invalid;
        }
        7 => {
            h.set("Sec-WebSocket-Protocol", " chat");
            what.push("a subprotocol that was not offered");
            expect = Expect::Invalid;
        }
        8 => {
            h.set("Sec-WebSocket-Extensions", " permessage-deflate");
            what.push("an extension that was not offered");
            expect = Expect::Invalid;
        }
        9 => {
            h.status_line = "HTTP/1.0 101 Switching Protocols".into();
            what.push("HTTP/1.0");
            expect = Expect::Invalid;
        }
        10 => {
            h.status_line = "HTTP/1.1 1O1 Switching".into();
            what.push("a garbled status line");
            expect = Expect::Invalid;
        }
        11 => {
            let big = "x".repeat(1000);
            for i in 0..20 {
                h.headers.push((format!("X-Big-{i}"), big.clone()));
            }
            what.push("a head over 16 KiB");
            expect = Expect::Invalid;
        }
        12 => {
            what.push("cut short, then FIN");
            expect = Expect::HangUp;
        }
        13 | 14 => {
            what.push("random bytes flipped");
            expect = Expect::Unknown;
        }
        _ => {}
    }
    let mut bytes = h.bytes();
    match expect {
        Expect::HangUp => {
            let keep = rng.below(bytes.len() as u64 - 2) as usize;
            bytes.truncate(keep);
        }
        Expect::Unknown => {
            for _ in 0..rng.range(1, 4) {
                let i = rng.below(bytes.len() as u64) as usize;
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        _ => {}
    }
    (bytes, expect, what.join(", "))
}

type Job = (u64, mpsc::Sender<String>);
static NEXT: Mutex<Option<Job>> = Mutex::new(None);

#[test]
fn upgrade_responses_to_a_client() {
    let master = seed_from_env("WSHANDLE_FUZZ_SEED");
    let server = RawServer::start(|mut s: TcpStream| {
        let Some((seed, tx)) = NEXT.lock().unwrap().take() else {
            return;
        };
        let Ok((head, _)) = raw::read_head(&mut s, Vec::new(), 64 * 1024) else {
            return;
        };
        let key = raw::header(&head, "sec-websocket-key").unwrap_or_default();
        let mut rng = Rng::new(seed);
        let (mut bytes, expect, _) = response(&mut rng, &key);
        if expect == Expect::Valid || expect == Expect::Unknown {
            bytes.extend(raw::encode(raw::OP_TEXT, true, b"first", None));
        }
        // sometimes in pieces
        let cut = rng.below(bytes.len() as u64 + 1) as usize;
        let _ = s.write_all(&bytes[..cut]);
        let _ = s.flush();
        if cut < bytes.len() {
            std::thread::sleep(Duration::from_millis(rng.below(3)));
            let _ = s.write_all(&bytes[cut..]);
        }
        if expect == Expect::HangUp {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        // hold the connection until the client is done with it
        let mut c = RawConn::wrap(s, false);
        let (frames, _) = c.read_all();
        let _ = tx.send(format!("{} frames", frames.len()));
    });
    let mut seeds = Rng::new(master);
    let start = Instant::now();
    let mut n = 0u64;
    let mut outcomes = std::collections::BTreeMap::new();
    while start.elapsed() < budget() {
        let seed = seeds.next_u64();
        let (tx, rx) = mpsc::channel();
        NEXT.lock().unwrap().replace((seed, tx));
        // the expectation, from the same seed (the key does not change it)
        let (_, expect, what) = response(&mut Rng::new(seed), "dGhlIHNhbXBsZSBub25jZQ==");
        let h = open(&server.url("/hs"));
        set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 2_000);
        set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 2_000);
        let code = ws_connect(h);
        let detail = last_error();
        let ctx = format!(
            "response {seed:#x} ({what}): {} ({detail})",
            wshandle::error::name(code)
        );
        let allowed: &[ws_error] = match expect {
            Expect::Valid => &[WS_OK],
            Expect::Invalid => &[WS_ERROR_INVALID_SERVER_RESPONSE],
            Expect::HangUp => &[WS_ERROR_CONNECTION_ERROR, WS_ERROR_INVALID_SERVER_RESPONSE],
            Expect::Unknown => &[
                WS_OK,
                WS_ERROR_INVALID_SERVER_RESPONSE,
                WS_ERROR_CONNECTION_ERROR,
                WS_ERROR_TIMEOUT,
            ],
        };
        assert!(allowed.contains(&code), "{ctx}");
        if code == WS_OK {
            assert_eq!(state(h), WS_STATE_OPEN, "{ctx}");
            let mut status = 0u32;
            let mut len = 4usize;
            assert_code!(
                ws_query_option(
                    h,
                    WS_OPTION_HTTP_STATUS,
                    (&mut status as *mut u32).cast(),
                    &mut len
                ),
                WS_OK
            );
            assert_eq!(status, 101, "{ctx}");
            assert_eq!(
                recv_message(h),
                (b"first".to_vec(), WS_BUFFER_UTF8_MESSAGE),
                "{ctx}: the frame behind the response"
            );
        } else {
            assert_eq!(state(h), WS_STATE_NONE, "{ctx}");
        }
        assert_code!(ws_close_handle(h), WS_OK);
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{ctx}: the server never saw the end"));
        *outcomes
            .entry(format!("{expect:?} -> {}", wshandle::error::name(code)))
            .or_insert(0u64) += 1;
        n += 1;
    }
    report(&format!(
        "fuzz handshake, client role: {n} upgrade responses in {:.1} s, seed {master:#x}; {outcomes:?}",
        start.elapsed().as_secs_f64()
    ));
}

/// An upgrade request, varied and maybe broken; the status the listener must answer with
/// (None: any of 400/404/426/431 or a dropped connection).
fn request(rng: &mut Rng) -> (Vec<u8>, Option<u16>, String) {
    let mut method = "GET".to_string();
    let mut path = "/hs".to_string();
    let mut version = "HTTP/1.1";
    let mut headers: Vec<(String, String)> = vec![
        ("Host".into(), "127.0.0.1".into()),
        ("Upgrade".into(), "websocket".into()),
        ("Connection".into(), "Upgrade".into()),
        (
            "Sec-WebSocket-Key".into(),
            "dGhlIHNhbXBsZSBub25jZQ==".into(),
        ),
        ("Sec-WebSocket-Version".into(), "13".into()),
    ];
    let mut what = Vec::new();
    if rng.chance(1, 3) {
        for (n, _) in headers.iter_mut() {
            *n = random_case(rng, n);
        }
        what.push("header name case");
    }
    if rng.chance(1, 4) {
        headers[2].1 = "keep-alive, Upgrade".into();
        what.push("Connection: keep-alive, Upgrade");
    }
    if rng.chance(1, 4) {
        headers.push(("Origin".into(), "http://example.com".into()));
        headers.push(("Sec-WebSocket-Protocol".into(), "chat, superchat".into()));
        what.push("Origin and subprotocols");
    }
    if rng.chance(1, 4) {
        path.push_str("?x=1&y=%20");
        what.push("a query string");
    }
    let mut want = Some(101);
    let mut truncate = false;
    let mut flip = false;
    let remove = |headers: &mut Vec<(String, String)>, name: &str| {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name))
    };
    match rng.below(16) {
        0 => {
            path = "/elsewhere".into();
            want = Some(404);
            what.push("another path");
        }
        1 => {
            remove(&mut headers, "Sec-WebSocket-Key");
            want = Some(400);
            what.push("no key");
        }
        2 => {
            headers[3].1 = "short".into();
            want = Some(400);
            what.push("a malformed key");
        }
        3 => {
            headers[4].1 = "8".into();
            want = Some(426);
            what.push("version 8");
        }
        4 => {
            method = "POST".into();
            want = Some(400);
            what.push("POST");
        }
        5 => {
            version = "HTTP/1.0";
            want = Some(400);
            what.push("HTTP/1.0");
        }
        6 => {
            remove(&mut headers, "Upgrade");
            want = Some(400);
            what.push("no Upgrade");
        }
        7 => {
            remove(&mut headers, "Connection");
            want = Some(400);
            what.push("no Connection");
        }
        8 => {
            remove(&mut headers, "Host");
            want = Some(400);
            what.push("no Host");
        }
        9 => {
            let big = "y".repeat(1000);
            for i in 0..20 {
                headers.push((format!("X-Big-{i}"), big.clone()));
            }
            want = Some(431);
            what.push("a head over 16 KiB");
        }
        10 => {
            truncate = true;
            want = None;
            what.push("cut short, then FIN");
        }
        11 | 12 => {
            flip = true;
            want = None;
            what.push("random bytes flipped");
        }
        _ => {}
    }
    let mut s = format!("{method} {path} {version}\r\n");
    for (n, v) in &headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str("\r\n");
    let mut bytes = s.into_bytes();
    if truncate {
        let keep = rng.below(bytes.len() as u64 - 2) as usize;
        bytes.truncate(keep);
    }
    if flip {
        for _ in 0..rng.range(1, 4) {
            let i = rng.below(bytes.len() as u64) as usize;
            bytes[i] ^= 1 << rng.below(8);
        }
    }
    (bytes, want, what.join(", "))
}

/// Handshakes progress while a `ws_accept` runs (the listener drives them in that call), so,
/// as a real server does, one thread accepts all the time and hands the connections over.
/// Returns the connections, the thread and its id (to know when it waits inside ws_accept).
fn accept_loop(
    l: ws_handle,
) -> (
    mpsc::Receiver<ws_handle>,
    std::thread::JoinHandle<ws_error>,
    i32,
) {
    let (tx, rx) = mpsc::channel();
    let (tid_tx, tid_rx) = mpsc::channel();
    let t = std::thread::spawn(move || loop {
        let _ = tid_tx.send(gettid());
        let mut h = 0;
        let code = ws_accept(l, &mut h);
        if code != WS_OK {
            return code;
        }
        if tx.send(h).is_err() {
            ws_close_handle(h);
        }
    });
    let tid = tid_rx.recv().unwrap();
    (rx, t, tid)
}

fn accept_one(accepted: &mpsc::Receiver<ws_handle>, ctx: &str) -> ws_handle {
    accepted
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{ctx}: ws_accept returned nothing"))
}

#[test]
fn upgrade_requests_to_a_listener() {
    let master = seed_from_env("WSHANDLE_FUZZ_SEED");
    let url = CString::new("ws://127.0.0.1:0/hs").unwrap();
    let mut l = 0;
    assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
    set_u32(l, WS_OPTION_RECEIVE_TIMEOUT, 3_000);
    let port = local_port(l);
    let (accepted, acceptor, acceptor_tid) = accept_loop(l);
    let mut seeds = Rng::new(master);
    let start = Instant::now();
    let (mut n, mut good) = (0u64, 0u64);
    let mut outcomes = std::collections::BTreeMap::new();
    while start.elapsed() < budget() {
        let seed = seeds.next_u64();
        let (bytes, want, what) = request(&mut Rng::new(seed));
        let t = Instant::now();
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(&bytes);
        if want.is_none() {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => answer.extend_from_slice(&buf[..k]),
            }
        }
        let text = String::from_utf8_lossy(&answer);
        let status: Option<u16> = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok());
        let ctx = format!(
            "request {seed:#x} (run seed {master:#x}; {what}): answered {status:?} after {} ms: {:?}",
            t.elapsed().as_millis(),
            String::from_utf8_lossy(&bytes)
        );
        match want {
            Some(w) => assert_eq!(status, Some(w), "{ctx}"),
            None => assert!(
                matches!(status, None | Some(101 | 400 | 404 | 426 | 431)),
                "{ctx}"
            ),
        }
        if status == Some(101) {
            let h = accept_one(&accepted, &ctx);
            assert_eq!(state(h), WS_STATE_OPEN, "{ctx}");
            assert_code!(ws_close_handle(h), WS_OK);
        }
        drop(s);
        *outcomes
            .entry(status.map_or("dropped".to_owned(), |s| s.to_string()))
            .or_insert(0u64) += 1;
        n += 1;
        // every 25 requests: a good client is accepted, and it is the one accepted
        if n % 25 == 0 {
            let mut c = RawConn::client(port, "/hs").expect("a good client");
            let h = accept_one(&accepted, &ctx);
            c.send_frame(raw::OP_BINARY, true, &seed.to_le_bytes())
                .unwrap();
            assert_eq!(
                recv_message(h),
                (seed.to_le_bytes().to_vec(), WS_BUFFER_BINARY_MESSAGE),
                "after {ctx}"
            );
            assert_code!(ws_close_handle(h), WS_OK);
            good += 1;
        }
    }
    // close the listener while the acceptor waits inside ws_accept (not between two calls,
    // where the next call would rightly say WS_ERROR_INVALID_HANDLE)
    wait_blocked(acceptor_tid);
    assert_code!(ws_close_handle(l), WS_OK);
    assert_code!(acceptor.join().unwrap(), WS_ERROR_OPERATION_CANCELLED);
    assert!(
        accepted.try_recv().is_err(),
        "a connection nobody asked for"
    );
    report(&format!(
        "fuzz handshake, server role: {n} upgrade requests in {:.1} s, seed {master:#x}; answers {outcomes:?}; {good} good clients accepted in between",
        start.elapsed().as_secs_f64()
    ));
}
