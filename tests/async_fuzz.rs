//! The asynchronous mode under random call sequences and races, in both modes (queue and
//! callback) and both roles, against a scripted raw peer that echoes, pings, closes first,
//! goes silent or resets TCP at random moments.
//!
//! Two threads call into one connection while its loop runs (in queue mode the test's main
//! thread also drives the loop with ws_queue_wait between its calls; in callback mode the
//! library's I/O threads do): sends of every kind (fragments, UTF-8), receives into buffers
//! of 1 byte to 4 KiB, ws_shutdown, ws_close, option changes, state queries, and arguments a
//! call must refuse (bad UTF-8, a fragment of the other kind, NULL buffers, close statuses
//! and reasons that cannot be sent). A model of the connection, updated under one lock
//! around each call and each completion, checks the rules of API.md's "Asynchronous mode":
//! a refused call completes nothing; every accepted operation completes exactly once; sends
//! complete in call order with their length and type; receives complete in order within
//! their buffer; REQUEST_ERROR names the operation and one of the codes a failure can have;
//! HANDLE_CLOSING comes once, after every other completion of the handle, only after
//! ws_close_handle, and nothing follows it; calls after ws_close_handle are INVALID_HANDLE;
//! WS_ERROR_INTERNAL (a caught panic) never appears. The peer checks the frames it gets
//! (masking for the role, no reserved bits, fragments in order).
//!
//! `race` sequences end the same way but quickly: a receive and several sends (up to 1 MiB)
//! pending, then ws_close and ws_close_handle from two threads after random delays.
//!
//! `WSHANDLE_FUZZ_SECS` (default 20) bounds each test; `WSHANDLE_FUZZ_SEED` fixes the seed.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::asyncq::*;
use common::raw::{self, env_num, report, seed_from_env, RawConn, RawServer, Rng, Watchdog};
use common::*;

/// An operation the library accepted, with the memory it must keep until its completion.
enum Owed {
    Send { data: Box<[u8]>, ty: u32 },
    Receive { buf: Box<[u8]> },
}

/// The connection as the test knows it.
#[derive(Default)]
struct Model {
    sends: VecDeque<Owed>,
    receives: VecDeque<Owed>,
    /// Accepted ws_shutdown / ws_close not yet completed (WS_OPERATION_*).
    closers: VecDeque<u32>,
    connect: bool,
    /// CONNECT_COMPLETE arrived (or the handle was accepted).
    connected: bool,
    /// A binary or text message is being sent in fragments (accepted so far).
    fragment: Option<u32>,
    released: bool,
    closing_seen: bool,
    problems: Vec<String>,
    /// (call, result) counts, for the report.
    codes: BTreeMap<(&'static str, &'static str), u64>,
}

impl Model {
    fn problem(&mut self, p: String) {
        self.problems.push(p);
    }

    fn count(&mut self, call: &'static str, code: ws_error) {
        *self
            .codes
            .entry((call, wshandle::error::name(code)))
            .or_insert(0) += 1;
        if code == WS_ERROR_INTERNAL {
            self.problem(format!("{call}: WS_ERROR_INTERNAL ({})", last_error()));
        }
        if self.released && code != WS_ERROR_INVALID_HANDLE && call != "ws_close_handle" {
            self.problem(format!(
                "{call} after ws_close_handle: {}",
                wshandle::error::name(code)
            ));
        }
    }

    /// Records one completion of handle `h`.
    fn complete(&mut self, c: &ws_completion) {
        if self.closing_seen {
            self.problem(format!("a completion after HANDLE_CLOSING: {c:?}"));
            return;
        }
        match c.status {
            WS_CALLBACK_STATUS_WRITE_COMPLETE => match self.sends.pop_front() {
                Some(Owed::Send { data, ty }) => {
                    if (c.io.bytes_transferred, c.io.buffer_type) != (data.len(), ty) {
                        self.problem(format!(
                            "{c:?} for a send of {} bytes, type {ty}",
                            data.len()
                        ));
                    }
                }
                _ => self.problem(format!("{c:?} with no send pending")),
            },
            WS_CALLBACK_STATUS_READ_COMPLETE => match self.receives.pop_front() {
                Some(Owed::Receive { buf }) => {
                    let (n, ty) = (c.io.bytes_transferred, c.io.buffer_type);
                    let known = ty <= WS_BUFFER_UTF8_FRAGMENT || ty == WS_BUFFER_CLOSE;
                    if n > buf.len() || !known || (ty == WS_BUFFER_CLOSE && n != 0) {
                        self.problem(format!("{c:?} for a buffer of {}", buf.len()));
                    }
                }
                _ => self.problem(format!("{c:?} with no receive pending")),
            },
            WS_CALLBACK_STATUS_SHUTDOWN_COMPLETE | WS_CALLBACK_STATUS_CLOSE_COMPLETE => {
                let op = if c.status == WS_CALLBACK_STATUS_CLOSE_COMPLETE {
                    WS_OPERATION_CLOSE
                } else {
                    WS_OPERATION_SHUTDOWN
                };
                if self.closers.pop_front() != Some(op) {
                    self.problem(format!("{c:?} with no such closer pending"));
                }
            }
            WS_CALLBACK_STATUS_CONNECT_COMPLETE => {
                self.connected = true;
                if !std::mem::take(&mut self.connect) {
                    self.problem(format!("{c:?} with no connect pending"));
                }
            }
            WS_CALLBACK_STATUS_REQUEST_ERROR => {
                let (op, e) = (c.result.operation, c.result.error);
                let allowed = [
                    WS_ERROR_OPERATION_CANCELLED,
                    WS_ERROR_TIMEOUT,
                    WS_ERROR_CONNECTION_ERROR,
                    WS_ERROR_INVALID_SERVER_RESPONSE,
                ];
                if !(allowed.contains(&e)
                    || op == WS_OPERATION_CONNECT && e == WS_ERROR_CANNOT_CONNECT)
                {
                    self.problem(format!("{c:?}: an error a failure cannot have"));
                }
                let ok = match op {
                    WS_OPERATION_SEND => self.sends.pop_front().is_some(),
                    WS_OPERATION_RECEIVE => self.receives.pop_front().is_some(),
                    WS_OPERATION_SHUTDOWN | WS_OPERATION_CLOSE => {
                        self.closers.pop_front() == Some(op)
                    }
                    WS_OPERATION_CONNECT => std::mem::take(&mut self.connect),
                    _ => false,
                };
                if !ok {
                    self.problem(format!("{c:?} for no such pending operation"));
                }
                *self
                    .codes
                    .entry(("REQUEST_ERROR", wshandle::error::name(e)))
                    .or_insert(0) += 1;
            }
            WS_CALLBACK_STATUS_HANDLE_CLOSING => {
                self.closing_seen = true;
                if !self.released {
                    self.problem("HANDLE_CLOSING before ws_close_handle".into());
                }
                let left = self.sends.len() + self.receives.len() + self.closers.len();
                if left > 0 || self.connect {
                    self.problem(format!("HANDLE_CLOSING with {left} operations uncompleted"));
                }
            }
            _ => self.problem(format!("unexpected {c:?}")),
        }
    }
}

/// One call of the kind `pick` (0–99: valid sends, refused sends, receives, closers, state
/// queries, options), its arguments chosen at random, made while holding the model's lock.
fn random_call(h: ws_handle, m: &Mutex<Model>, r: &mut Rng, pick: u64, race: bool) {
    let mut m = m.lock().unwrap();
    match pick {
        // sends, mostly valid
        0..=39 => {
            let n = if race {
                *r.pick(&[0usize, 16, 70_000, 1 << 20])
            } else {
                *r.pick(&[0usize, 1, 16, 125, 200, 5000, 70_000])
            };
            // (a fragmented message goes on with its own kind)
            let text = m
                .fragment
                .map_or(r.chance(1, 3), |k| k == WS_BUFFER_UTF8_FRAGMENT);
            let data: Box<[u8]> = if text {
                "é".repeat(n / 2).into_bytes().into()
            } else {
                r.bytes(n).into()
            };
            let piece = r.chance(1, 3);
            let ty = match (text, piece) {
                (true, true) => WS_BUFFER_UTF8_FRAGMENT,
                (true, false) => WS_BUFFER_UTF8_MESSAGE,
                (false, true) => WS_BUFFER_BINARY_FRAGMENT,
                (false, false) => WS_BUFFER_BINARY_MESSAGE,
            };
            let code = ws_send(h, ty, data.as_ptr().cast(), data.len());
            m.count("ws_send", code);
            if code == WS_ERROR_IO_PENDING {
                m.fragment = piece.then_some(if text {
                    WS_BUFFER_UTF8_FRAGMENT
                } else {
                    WS_BUFFER_BINARY_FRAGMENT
                });
                m.sends.push_back(Owed::Send { data, ty });
            } else if ![WS_ERROR_INVALID_OPERATION, WS_ERROR_INVALID_HANDLE].contains(&code) {
                let p = format!(
                    "a valid send (type {ty}, {} bytes, fragment {:?}): {} ({})",
                    data.len(),
                    m.fragment,
                    wshandle::error::name(code),
                    last_error()
                );
                m.problem(p);
            }
        }
        // sends that must be refused
        40..=47 => {
            let other = if m.fragment == Some(WS_BUFFER_BINARY_FRAGMENT) {
                WS_BUFFER_UTF8_MESSAGE
            } else {
                WS_BUFFER_BINARY_MESSAGE
            };
            let (ty, ptr, len): (u32, *const u8, usize) = match r.below(4) {
                0 => (WS_BUFFER_UTF8_MESSAGE, b"\xc3\x28".as_ptr(), 2),
                1 => (WS_BUFFER_BINARY_MESSAGE, std::ptr::null(), 5),
                2 => (WS_BUFFER_CLOSE, b"x".as_ptr(), 1),
                _ if m.fragment.is_some() => (other, b"ab".as_ptr(), 2),
                _ => (77, b"ab".as_ptr(), 2),
            };
            let code = ws_send(h, ty, ptr.cast(), len);
            m.count("ws_send (refused)", code);
            if code == WS_ERROR_IO_PENDING {
                m.problem(format!(
                    "an invalid send (type {ty}, {len} bytes) was accepted"
                ));
            }
        }
        48..=69 => {
            let buf: Box<[u8]> = vec![0u8; *r.pick(&[1usize, 7, 125, 4096])].into();
            let code = ws_receive(
                h,
                buf.as_ptr() as *mut _,
                buf.len(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            m.count("ws_receive", code);
            if code == WS_ERROR_IO_PENDING {
                m.receives.push_back(Owed::Receive { buf });
            } else if ![WS_ERROR_INVALID_OPERATION, WS_ERROR_INVALID_HANDLE].contains(&code) {
                m.problem(format!("ws_receive: {}", wshandle::error::name(code)));
            }
        }
        70..=72 => {
            let shutdown = r.chance(1, 2);
            let (status, reason): (u16, &[u8]) = match r.below(6) {
                0 => (*r.pick(&[1004u16, 1005, 999, 5000]), b"x"), // cannot be sent
                1 => (1000, &[b'x'; 124]),                         // reason too long
                _ => (*r.pick(&[1000u16, 1001, 4000]), b"bye"),
            };
            let valid = reason.len() <= 123
                && status != 1004
                && status != 999
                && status != 5000
                && (status != 1005 || reason.is_empty());
            let call = if shutdown { ws_shutdown } else { ws_close };
            let code = call(h, status, reason.as_ptr().cast(), reason.len());
            let name = if shutdown { "ws_shutdown" } else { "ws_close" };
            m.count(name, code);
            if code == WS_ERROR_IO_PENDING {
                if !valid {
                    m.problem(format!(
                        "{name}({status}, {} bytes) was accepted",
                        reason.len()
                    ));
                }
                m.closers.push_back(if shutdown {
                    WS_OPERATION_SHUTDOWN
                } else {
                    WS_OPERATION_CLOSE
                });
            } else if valid
                && ![WS_ERROR_INVALID_OPERATION, WS_ERROR_INVALID_HANDLE].contains(&code)
            {
                m.problem(format!("{name}: {}", wshandle::error::name(code)));
            }
        }
        73..=89 => {
            let mut st = 99u32;
            let code = ws_query_state(h, &mut st);
            m.count("ws_query_state", code);
            if code == WS_OK && st > WS_STATE_ABORTED {
                m.problem(format!("state {st}"));
            }
        }
        _ => {
            let v: u32 = *r.pick(&[0u32, 30, 200, 2000]);
            let code = ws_set_option(h, WS_OPTION_RECEIVE_TIMEOUT, (&v as *const u32).cast(), 4);
            m.count("ws_set_option", code);
        }
    }
}

/// Plays the other end at random: pings and a message at the start or not, its own close
/// first or not, echoes data and answers pings and closes; may stop reading (silent) or reset
/// TCP after a few frames. Returns what it found wrong in the library's frames.
fn peer(mut c: RawConn, lib_is_client: bool, seed: u64) -> Vec<String> {
    let mut r = Rng::new(seed);
    let mut problems = Vec::new();
    if r.chance(1, 3) {
        let _ = c.send_frame(raw::OP_PING, true, b"fuzz");
    }
    if r.chance(1, 3) {
        let _ = c.send_frame(raw::OP_TEXT, true, "from the peer é".as_bytes());
    }
    if r.chance(1, 8) {
        let _ = c.send_frame(
            raw::OP_CLOSE,
            true,
            &raw::close_payload(1001, b"peer first"),
        );
    }
    let reset_after = r.chance(1, 6).then(|| r.below(20));
    let silent_after = r.chance(1, 8).then(|| r.below(20));
    let mut in_message = false;
    let mut frames = 0u64;
    loop {
        if reset_after == Some(frames) {
            c.reset();
            return problems;
        }
        if silent_after == Some(frames) {
            std::thread::sleep(Duration::from_millis(300));
            return problems; // (drops the connection)
        }
        let Ok(f) = c.read_frame() else {
            return problems;
        };
        frames += 1;
        if f.masked != lib_is_client || f.rsv != 0 {
            problems.push(format!("a malformed frame: {f:?}"));
        }
        match f.opcode {
            raw::OP_TEXT | raw::OP_BINARY | raw::OP_CONT => {
                if (f.opcode == raw::OP_CONT) != in_message {
                    problems.push(format!("fragments out of order: {f:?}"));
                }
                in_message = !f.fin;
                if !c.closed {
                    let _ = c.send_frame(f.opcode, f.fin, &f.payload);
                }
            }
            raw::OP_PING if !c.closed => {
                let _ = c.send_frame(raw::OP_PONG, true, &f.payload);
            }
            raw::OP_PING | raw::OP_PONG => {}
            raw::OP_CLOSE => {
                if !c.closed {
                    let _ = c.send_frame(raw::OP_CLOSE, true, &f.payload[..f.payload.len().min(2)]);
                }
                if lib_is_client {
                    let _ = c.stream.shutdown(std::net::Shutdown::Write);
                }
            }
            other => problems.push(format!("opcode {other}")),
        }
    }
}

/// Records what the completions source has for the model (under its lock).
fn drain(q: &Completions, m: &Mutex<Model>, ms: u32) {
    let got = q.poll(32, ms);
    let mut m = m.lock().unwrap();
    for c in &got {
        m.complete(c);
    }
}

/// One sequence on handle `h` (connect already started when `connecting`).
fn sequence(q: &Completions, h: ws_handle, m: Arc<Mutex<Model>>, seed: u64, race: bool) {
    let mut r = Rng::new(seed);
    for (opt, v) in [
        (WS_OPTION_SEND_TIMEOUT, 2000u32),
        (WS_OPTION_CLOSE_TIMEOUT, 500),
        (WS_OPTION_RECEIVE_TIMEOUT, 2000),
    ] {
        set_u32(h, opt, v);
    }
    if r.chance(1, 4) {
        set_u32(h, WS_OPTION_KEEPALIVE_INTERVAL, 50);
        set_u32(h, WS_OPTION_KEEPALIVE_TIMEOUT, 300);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let (m, stop, mut r) = (m.clone(), stop.clone(), Rng::new(r.next_u64()));
        std::thread::spawn(move || {
            if race {
                // the racing ends: ws_close, and ws_close_handle shortly after or before
                std::thread::sleep(Duration::from_micros(r.below(3000)));
                let mut m = m.lock().unwrap();
                let code = ws_close(h, 1000, std::ptr::null(), 0);
                m.count("ws_close", code);
                if code == WS_ERROR_IO_PENDING {
                    m.closers.push_back(WS_OPERATION_CLOSE);
                }
                return;
            }
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_micros(r.below(2000)));
                let pick = r.below(100);
                random_call(h, &m, &mut r, pick, false);
            }
        })
    };
    let steps = if race { r.range(2, 8) } else { r.range(10, 60) };
    for i in 0..steps {
        if q.is_queue() || r.chance(1, 2) {
            drain(q, &m, *r.pick(&[0u32, 1, 5]));
        }
        // a race: a receive, then sends (and sometimes a shutdown) pending
        let pick = match (race, i) {
            (false, _) => r.below(100),
            (true, 0) => 48,
            (true, _) if r.chance(1, 6) => 70,
            (true, _) => r.below(40),
        };
        random_call(h, &m, &mut r, pick, race);
    }
    if race {
        std::thread::sleep(Duration::from_micros(r.below(3000)));
    } else {
        let until = Instant::now() + Duration::from_millis(r.below(200));
        while Instant::now() < until {
            drain(q, &m, 5);
        }
    }
    {
        let mut m = m.lock().unwrap();
        let code = ws_close_handle(h);
        m.count("ws_close_handle", code);
        if code != WS_OK {
            m.problem(format!("ws_close_handle: {}", wshandle::error::name(code)));
        }
        m.released = true;
    }
    stop.store(true, Ordering::SeqCst);
    // (in queue mode nobody else drives the loop: the other thread's last calls and the
    // completions are taken here)
    let deadline = Instant::now() + Duration::from_secs(10);
    while !m.lock().unwrap().closing_seen {
        assert!(
            Instant::now() < deadline,
            "no HANDLE_CLOSING within 10 s (seed {seed:#x})"
        );
        drain(q, &m, 20);
    }
    other.join().unwrap();
    drain(q, &m, 20); // nothing may follow HANDLE_CLOSING
}

/// The next connection's peer seed and where its findings go.
type Hand = Arc<Mutex<Option<(u64, mpsc::Sender<Vec<String>>)>>>;

/// Runs sequences for the time budget in both roles, alternating queue and callback mode.
fn run(name: &str, race: bool) {
    let budget = Duration::from_secs(env_num("WSHANDLE_FUZZ_SECS", 20));
    let master = seed_from_env("WSHANDLE_FUZZ_SEED");
    let next_peer: Hand = Arc::default();
    let hand = next_peer.clone();
    let server = RawServer::start(move |s: TcpStream| {
        let Some((seed, tx)) = hand.lock().unwrap().take() else {
            return;
        };
        let problems = match RawConn::server(s) {
            Ok(c) => peer(c, true, seed),
            Err(_) => Vec::new(), // (reset by the library before the upgrade's end)
        };
        let _ = tx.send(problems);
    });
    let queue = Completions::queue();
    let callbacks = Completions::callbacks();
    let listeners: Vec<(ws_handle, u16)> = [&queue, &callbacks]
        .iter()
        .map(|q| {
            let (l, port) = listen("ws://127.0.0.1:0/fuzz");
            q.bind(l);
            (l, port)
        })
        .collect();
    let watchdog = Watchdog::start("async fuzz", Duration::from_secs(30));
    let mut seeds = Rng::new(master);
    let started = Instant::now();
    let mut codes = BTreeMap::new();
    let mut n = 0u64;
    while started.elapsed() < budget {
        let seed = seeds.next_u64();
        watchdog.beat(n, seed);
        let mode = (n / 2) % 2;
        let q = if mode == 0 { &queue } else { &callbacks };
        let lib_is_client = n % 2 == 0;
        let (tx, rx) = mpsc::channel();
        let peer_seed = Rng::new(seed ^ 0x5A5A).next_u64();
        let m = Arc::new(Mutex::new(Model::default()));
        let h = if lib_is_client {
            next_peer.lock().unwrap().replace((peer_seed, tx));
            let h = open(&server.url("/fuzz"));
            q.bind(h);
            set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 5000);
            let mut mm = m.lock().unwrap();
            assert_code!(ws_connect(h), WS_ERROR_IO_PENDING);
            mm.connect = true;
            drop(mm);
            h
        } else {
            let (l, port) = listeners[mode as usize];
            assert_code!(ws_accept(l, std::ptr::null_mut()), WS_ERROR_IO_PENDING);
            std::thread::spawn(move || {
                // (the library may reset the connection before this side read the 101:
                // ws_close_handle can come right after ACCEPT_COMPLETE)
                let problems = match RawConn::client(port, "/fuzz") {
                    Ok(c) => peer(c, false, peer_seed),
                    Err(_) => Vec::new(),
                };
                let _ = tx.send(problems);
            });
            let a = q.next();
            is(&a, l, WS_CALLBACK_STATUS_ACCEPT_COMPLETE);
            m.lock().unwrap().connected = true;
            a.accepted
        };
        sequence(q, h, m.clone(), seed, race);
        let m = m.lock().unwrap();
        let role = if lib_is_client { "client" } else { "server" };
        let mode = if mode == 0 { "queue" } else { "callback" };
        assert!(
            m.problems.is_empty(),
            "{name} sequence {n} (seed {seed:#x}, {role}, {mode} mode): {:#?}",
            m.problems
        );
        if lib_is_client && !m.connected {
            // ws_close_handle may have cancelled the connect before any TCP connection
            // reached the peer: then nobody will report
            next_peer.lock().unwrap().take();
        }
        let problems = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|e| {
            if !m.connected && e == mpsc::RecvTimeoutError::Disconnected {
                return Vec::new();
            }
            panic!("{name} sequence {n} (seed {seed:#x}, {role}, {mode} mode): the peer never ended ({e:?})")
        });
        assert!(
            problems.is_empty(),
            "{name} sequence {n} (seed {seed:#x}), {role}: {problems:?}"
        );
        for (k, v) in &m.codes {
            *codes.entry(*k).or_insert(0u64) += v;
        }
        n += 1;
    }
    drop(watchdog);
    for (l, _) in listeners {
        ws_close_handle(l);
    }
    let _ = (queue.take(1), callbacks.take(1)); // the listeners' HANDLE_CLOSINGs
    report(&format!(
        "{name}: {n} sequences in {:.1} s, seed {master:#x}; results {codes:?}",
        started.elapsed().as_secs_f64()
    ));
    assert!(n >= 4, "too few sequences ran");
}

#[test]
fn random_call_sequences_from_two_threads_in_both_modes_and_roles() {
    run("async fuzz", false);
}

#[test]
fn close_and_close_handle_race_pending_operations() {
    run("async races", true);
}
