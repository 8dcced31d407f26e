//! Races on one handle: for thousands of rounds, five threads call ws_send, ws_receive,
//! ws_shutdown, ws_close and ws_close_handle on one connection after random (seeded,
//! bounded) delays, against a raw peer that records every frame. Rounds alternate the
//! library's role (client, server).
//!
//! Checked every round: no crash, no deadlock (a round that takes 20 s aborts the process
//! with its seed; every round's time is measured), every call returns a code API.md allows
//! for it, and the peer's view of the connection is sound: well-formed frames (masking for
//! the role, no reserved bits, no torn frames in the middle of the stream), at most one close
//! frame, and nothing after the library's close frame — except, in rounds where the peer
//! pings, pongs the library still owed (RFC 6455 §5.5.2; API.md lets ws_close answer pings).
//!
//! `WSHANDLE_RACE_ROUNDS` (default 2000) and `WSHANDLE_RACE_SEED` set the run.

mod common;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::net::TcpStream;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::raw::{self, env_num, report, seed_from_env, End, RawConn, RawServer, Rng, Watchdog};
use common::*;

/// What the peer found wrong, and what it saw.
#[derive(Debug, Default)]
struct PeerReport {
    problems: Vec<String>,
    frames: usize,
    close_seen: bool,
    after_close: usize,
    owed_pongs_after_close: usize,
    pinged: bool,
    truncated: bool,
}

/// Plays the other end: optional pings and a message at the start, optionally its own close;
/// echoes data, answers pings, answers the library's close and records everything.
fn peer(mut c: RawConn, lib_is_client: bool, seed: u64) -> PeerReport {
    let mut rng = Rng::new(seed);
    let mut r = PeerReport::default();
    let pings = if rng.chance(1, 2) { rng.range(1, 3) } else { 0 };
    let mut pings_out = 0u64;
    r.pinged = pings > 0;
    for _ in 0..pings {
        if c.send_frame(raw::OP_PING, true, b"race").is_ok() {
            pings_out += 1;
        }
    }
    if rng.chance(1, 2) {
        let _ = c.send_frame(raw::OP_TEXT, true, b"hello from the peer");
    }
    if rng.chance(1, 8) {
        let _ = c.send_frame(
            raw::OP_CLOSE,
            true,
            &raw::close_payload(1001, b"peer first"),
        );
    }
    let mut in_message = false;
    loop {
        let f = match c.read_frame() {
            Ok(f) => f,
            Err(end) => {
                r.truncated = end == End::Truncated;
                return r;
            }
        };
        r.frames += 1;
        let owed_pong = f.opcode == raw::OP_PONG && pings_out > 0;
        if r.close_seen && owed_pong {
            r.owed_pongs_after_close += 1;
        }
        if r.close_seen && !owed_pong {
            r.after_close += 1;
            r.problems.push(format!(
                "a frame after the library's close frame: {:?}",
                f.opcode
            ));
        }
        if f.masked != lib_is_client || f.rsv != 0 {
            r.problems.push(format!("a malformed frame: {f:?}"));
        }
        match f.opcode {
            raw::OP_TEXT | raw::OP_BINARY | raw::OP_CONT => {
                if (f.opcode == raw::OP_CONT) != in_message {
                    r.problems.push("fragments out of order".into());
                }
                in_message = !f.fin;
                if !c.closed {
                    let _ = c.send_frame(f.opcode, f.fin, &f.payload);
                }
            }
            raw::OP_PING => {
                if !c.closed {
                    let _ = c.send_frame(raw::OP_PONG, true, &f.payload);
                }
            }
            raw::OP_PONG => pings_out = pings_out.saturating_sub(1),
            raw::OP_CLOSE => {
                if r.close_seen {
                    r.problems.push("a second close frame".into());
                }
                r.close_seen = true;
                let status = f.close_status().unwrap_or(1005);
                if !(status == 1000 || status == 1005) {
                    r.problems.push(format!("close status {status}"));
                }
                if !c.closed {
                    let _ = c.send_frame(raw::OP_CLOSE, true, &status.to_be_bytes());
                }
                if !lib_is_client {
                    continue; // the library (server) closes TCP
                }
                let _ = c.stream.shutdown(std::net::Shutdown::Write);
            }
            other => r.problems.push(format!("opcode {other}")),
        }
    }
}

fn allowed(call: &str) -> &'static [ws_error] {
    match call {
        // a correct peer never breaks the protocol; 2 s receive timeout as a safety net
        "ws_receive" => &[
            WS_OK,
            WS_ERROR_INVALID_OPERATION,
            WS_ERROR_OPERATION_CANCELLED,
            WS_ERROR_CONNECTION_ERROR,
            WS_ERROR_TIMEOUT,
            WS_ERROR_INVALID_HANDLE,
        ],
        "ws_close_handle" => &[WS_OK],
        // ws_send, ws_shutdown, ws_close
        _ => &[
            WS_OK,
            WS_ERROR_INVALID_OPERATION,
            WS_ERROR_OPERATION_CANCELLED,
            WS_ERROR_CONNECTION_ERROR,
            WS_ERROR_TIMEOUT,
            WS_ERROR_INVALID_HANDLE,
        ],
    }
}

/// A random delay of up to ~2 ms: spinning for the short ones, sleeping for the others.
fn delay(rng: &mut Rng) {
    let us = match rng.below(4) {
        0 => 0,
        1 => rng.below(50),
        2 => rng.below(500),
        _ => rng.below(2000),
    };
    let t = Instant::now();
    if us < 200 {
        while t.elapsed() < Duration::from_micros(us) {
            std::hint::spin_loop();
        }
    } else {
        std::thread::sleep(Duration::from_micros(us));
    }
}

type Codes = Arc<Mutex<BTreeMap<(&'static str, &'static str), u64>>>;

fn record(codes: &Codes, call: &'static str, code: ws_error, round: u64, seed: u64) {
    *codes
        .lock()
        .unwrap()
        .entry((call, wshandle::error::name(code)))
        .or_insert(0) += 1;
    assert!(
        allowed(call).contains(&code),
        "round {round} (seed {seed:#x}): {call} returned {} ({})",
        wshandle::error::name(code),
        last_error()
    );
}

/// One round on handle `h`: the five calls on five threads after random delays.
fn round(h: ws_handle, round: u64, seed: u64, codes: &Codes) {
    let mut rng = Rng::new(seed);
    let mut threads = Vec::new();
    // the sender: a few messages, sometimes in fragments, valid arguments only
    {
        let (mut r, codes) = (Rng::new(rng.next_u64()), codes.clone());
        threads.push(std::thread::spawn(move || {
            delay(&mut r);
            for _ in 0..r.range(1, 4) {
                let n = *r.pick(&[0usize, 10, 1000, 100_000]);
                let data = vec![b'a'; n];
                let ty = *r.pick(&[
                    WS_BUFFER_BINARY_MESSAGE,
                    WS_BUFFER_UTF8_MESSAGE,
                    WS_BUFFER_BINARY_FRAGMENT,
                ]);
                let code = send(h, ty, &data);
                record(&codes, "ws_send", code, round, seed);
                if ty == WS_BUFFER_BINARY_FRAGMENT && code == WS_OK {
                    let code = send(h, WS_BUFFER_BINARY_MESSAGE, b"end");
                    record(&codes, "ws_send", code, round, seed);
                }
                if code != WS_OK {
                    break;
                }
            }
        }));
    }
    // the receiver: until the close, a failure, or a cancellation
    {
        let (mut r, codes) = (Rng::new(rng.next_u64()), codes.clone());
        threads.push(std::thread::spawn(move || {
            delay(&mut r);
            let mut buf = vec![0u8; *r.pick(&[7usize, 4096, 65536])];
            for _ in 0..10_000 {
                let (code, _, ty) = recv(h, &mut buf);
                record(&codes, "ws_receive", code, round, seed);
                if code != WS_OK || ty == WS_BUFFER_CLOSE {
                    break;
                }
            }
        }));
    }
    // ws_shutdown, ws_close and ws_close_handle, each after its own delay (some skipped)
    let shutdown_too = rng.chance(1, 2);
    let close_too = rng.chance(3, 4);
    for call in ["ws_shutdown", "ws_close", "ws_close_handle"] {
        if (call == "ws_shutdown" && !shutdown_too) || (call == "ws_close" && !close_too) {
            continue;
        }
        let (mut r, codes) = (Rng::new(rng.next_u64()), codes.clone());
        let extra = if call == "ws_close_handle" {
            r.below(3000)
        } else {
            0
        };
        threads.push(std::thread::spawn(move || {
            delay(&mut r);
            std::thread::sleep(Duration::from_micros(extra));
            let code = match call {
                "ws_shutdown" => shutdown(h, 1000, b""),
                "ws_close" => close(h, 1000, b"bye"),
                _ => ws_close_handle(h),
            };
            record(&codes, call, code, round, seed);
        }));
    }
    let mut panics = Vec::new();
    for t in threads {
        if let Err(e) = t.join() {
            panics.push(
                e.downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "a panic".into()),
            );
        }
    }
    assert!(panics.is_empty(), "{}", panics.join("\n"));
    assert_code!(ws_close_handle(h), WS_ERROR_INVALID_HANDLE);
}

fn set(h: ws_handle, opt: u32, v: u32) {
    assert_code!(ws_set_option(h, opt, (&v as *const u32).cast(), 4), WS_OK);
}

/// Connection set-up for one round: timeouts short enough that no round can stall.
fn prepare(h: ws_handle) {
    set(h, WS_OPTION_RECEIVE_TIMEOUT, 2_000);
    set(h, WS_OPTION_SEND_TIMEOUT, 2_000);
    set(h, WS_OPTION_CLOSE_TIMEOUT, 1_000);
    set(h, WS_OPTION_KEEPALIVE_INTERVAL, 0);
}

type Hand = (u64, mpsc::Sender<PeerReport>);
static NEXT_PEER: Mutex<Option<Hand>> = Mutex::new(None);

#[test]
fn send_receive_shutdown_close_and_close_handle_race_on_one_handle() {
    let rounds = env_num("WSHANDLE_RACE_ROUNDS", 2000);
    let master = seed_from_env("WSHANDLE_RACE_SEED");
    let server = RawServer::start(|s: TcpStream| {
        let Some((seed, tx)) = NEXT_PEER.lock().unwrap().take() else {
            return;
        };
        if let Ok(c) = RawConn::server(s) {
            let _ = tx.send(peer(c, true, seed));
        }
    });
    let url = CString::new("ws://127.0.0.1:0/race").unwrap();
    let mut l = 0;
    assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
    set(l, WS_OPTION_RECEIVE_TIMEOUT, 10_000);
    let port = local_port(l);

    let watchdog = Watchdog::start("races", Duration::from_secs(20));

    let codes: Codes = Arc::new(Mutex::new(BTreeMap::new()));
    let mut seeds = Rng::new(master);
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let (mut with_close, mut strict, mut owed, mut truncated) = (0u64, 0u64, 0u64, 0u64);
    for i in 0..rounds {
        let seed = seeds.next_u64();
        watchdog.beat(i, seed);
        let t = Instant::now();
        let (tx, rx) = mpsc::channel();
        let peer_seed = Rng::new(seed ^ 0xA5A5).next_u64();
        let h = if i % 2 == 0 {
            NEXT_PEER.lock().unwrap().replace((peer_seed, tx));
            let h = open(&server.url("/race"));
            prepare(h);
            assert_code!(ws_connect(h), WS_OK);
            h
        } else {
            std::thread::spawn(move || {
                if let Ok(c) = RawConn::client(port, "/race") {
                    let _ = tx.send(peer(c, false, peer_seed));
                }
            });
            let mut h = 0;
            assert_code!(ws_accept(l, &mut h), WS_OK);
            prepare(h);
            h
        };
        round(h, i, seed, &codes);
        let r = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("round {i} (seed {seed:#x}): the peer never saw the end"));
        assert!(
            r.problems.is_empty(),
            "round {i} (seed {seed:#x}), library as {}: {:?}",
            if i % 2 == 0 { "client" } else { "server" },
            r.problems
        );
        with_close += u64::from(r.close_seen);
        strict += u64::from(r.close_seen && !r.pinged);
        owed += r.owed_pongs_after_close as u64;
        truncated += u64::from(r.truncated);
        slowest = slowest.max(t.elapsed());
    }
    drop(watchdog);
    ws_close_handle(l);
    let took = start.elapsed();
    report(&format!(
        "races: {rounds} rounds in {:.1} s ({:.1} ms a round, slowest {} ms), seed {master:#x}; the library's close frame reached the peer in {with_close} rounds and no data or close frame followed it: nothing at all in the {strict} of them where the peer never pinged, {owed} pongs owed for the peer's pings in the others; {truncated} connections cut mid-frame by ws_close_handle",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / rounds as f64,
        slowest.as_millis()
    ));
    report(&format!("races: results {:?}", codes.lock().unwrap()));
}
