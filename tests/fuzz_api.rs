//! Fuzzing the C API: random sequences of calls — ws_send (or a ws_send_batch of one),
//! ws_receive, ws_shutdown, ws_close, ws_close_handle, ws_connect, the options and queries —
//! with random arguments, bad ones included (NULLs, zero lengths, unknown buffer types and
//! options, wrong value sizes,
//! unsendable statuses, reasons too long or not UTF-8, mixed fragment types, stale handles),
//! on connections in both roles against a scripted raw peer that echoes, pings, closes,
//! stays silent, breaks the protocol or drops TCP at random moments.
//!
//! Every call's result is checked against what API.md allows for that call, and against a
//! model of the connection: the state before and after (a rejected call changes nothing;
//! ws_close always ends CLOSED or ABORTED; a failure that aborts ends ABORTED), the sending
//! side's fragment state, the receiving side's message kinds and UTF-8, out-parameters
//! untouched on failure, 1006 after an abort without a close frame, WS_ERROR_INVALID_HANDLE
//! after ws_close_handle. WS_ERROR_INTERNAL (a caught panic) and WS_ERROR_OPERATION_CANCELLED
//! (no other thread touches the handle) never appear. The peer checks the frames it gets:
//! masked exactly when the library is the client, no reserved bits, control frames short
//! and whole, close payloads valid, and no frame at all after the library's close frame.
//!
//! Budget: `WSHANDLE_FUZZ_SECS` (default 30) or `WSHANDLE_FUZZ_ITERS` sequences;
//! `WSHANDLE_FUZZ_SEED` fixes the seed (peer timing still varies). See docs/fuzzing.md.

mod common;

use std::ffi::CString;
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::raw::{
    self, env_num, report, seed_from_env, End, Frame, RawConn, RawServer, Rng, Watchdog,
};
use common::*;
use wshandle::protocol::utf8::Utf8Validator;

const STATES: [&str; 7] = [
    "NONE",
    "CONNECTING",
    "OPEN",
    "CLOSE_SENT",
    "CLOSE_RECEIVED",
    "CLOSED",
    "ABORTED",
];

fn wire_status(s: u16) -> bool {
    matches!(s, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

// ---- the scripted peer --------------------------------------------------------------------

struct PeerReport {
    frames: usize,
    end: End,
    problems: Vec<String>,
}

/// Plays the other end of one connection until it ends. `lib_is_client` says who masks.
fn peer(mut c: RawConn, seed: u64, lib_is_client: bool) -> PeerReport {
    let mut rng = Rng::new(seed);
    let _ = c.stream.set_read_timeout(Some(Duration::from_millis(10)));
    let chatty = rng.chance(1, 2);
    let echo = rng.chance(3, 4);
    let answers_close = rng.chance(7, 8);
    let started = Instant::now();
    let mut problems = Vec::new();
    let mut frames = 0usize;
    let mut lib_closed = false; // the library's close frame arrived
    let mut we_closed = false; // our close frame went out
    let mut quiet = false; // no more initiatives (after a violation or FIN)
    let mut msg = MessageCheck::default();
    let mut pings_out = 0usize; // our pings not yet answered
    loop {
        if started.elapsed() > Duration::from_secs(20) {
            problems.push("the peer's 20 s deadline passed".into());
            return PeerReport {
                frames,
                end: End::Timeout,
                problems,
            };
        }
        match c.read_frame() {
            Ok(f) => {
                frames += 1;
                // After its close frame the library sends no data, only control frames:
                // pongs it owes (RFC 6455 §5.5.2 says a ping is answered unless the peer's
                // close arrived, and API.md has ws_close answer pings while it waits) and its
                // empty keepalive pings (dead-peer detection goes on after ws_shutdown).
                let owed_pong = f.opcode == raw::OP_PONG && pings_out > 0;
                let keepalive = f.opcode == raw::OP_PING && f.payload.is_empty();
                if lib_closed && !owed_pong && !keepalive {
                    problems.push(format!("a frame after the library's close frame: {f:?}"));
                }
                if f.opcode == raw::OP_PONG {
                    pings_out = pings_out.saturating_sub(1);
                }
                check_frame(&f, lib_is_client, &mut msg, &mut problems);
                match f.opcode {
                    raw::OP_CLOSE => {
                        lib_closed = true;
                        if !we_closed && answers_close && !quiet {
                            let p = match f.close_status() {
                                Some(1005) | None => Vec::new(),
                                Some(s) => s.to_be_bytes().to_vec(),
                            };
                            let _ = c.send_frame(raw::OP_CLOSE, true, &p);
                            we_closed = true;
                        }
                        if we_closed && !lib_is_client {
                            // nothing: the library (server) closes TCP now
                        } else if we_closed {
                            // we are the server: close TCP once both close frames passed
                            let _ = c.stream.shutdown(std::net::Shutdown::Write);
                        }
                    }
                    raw::OP_PING if !we_closed && !quiet => {
                        let _ = c.send_frame(raw::OP_PONG, true, &f.payload);
                    }
                    raw::OP_CONT | raw::OP_TEXT | raw::OP_BINARY
                        if echo && !we_closed && !quiet =>
                    {
                        let _ = c.send_frame(f.opcode, f.fin, &f.payload);
                    }
                    _ => {}
                }
            }
            Err(End::Timeout) => {}
            Err(end) => {
                return PeerReport {
                    frames,
                    end,
                    problems,
                }
            }
        }
        // Initiatives: after every frame and every idle 10 ms.
        if quiet || we_closed {
            continue;
        }
        let roll = rng.below(1000);
        let data_odds = if chatty { 200 } else { 30 };
        if roll < data_odds {
            let n = *rng.pick(&[0usize, 1, 5, 50, 500, 5000, 70_000]);
            if rng.chance(1, 2) {
                let s: String = (0..n).map(|i| ['a', 'é', '€', '𝄞'][i % 4]).collect();
                let cut = s.len() / 2;
                let _ = c.send_frame(raw::OP_TEXT, false, &s.as_bytes()[..cut]);
                let _ = c.send_frame(raw::OP_CONT, true, &s.as_bytes()[cut..]);
            } else {
                let b = rng.bytes(n);
                let _ = c.send_frame(raw::OP_BINARY, true, &b);
            }
        } else if roll < data_odds + 30 {
            if c.send_frame(raw::OP_PING, true, b"peer-ping").is_ok() {
                pings_out += 1;
            }
        } else if roll < data_odds + 40 {
            let s = *rng.pick(&[1000u16, 1001, 1011, 3000, 4999]);
            let _ = c.send_frame(raw::OP_CLOSE, true, &raw::close_payload(s, b"peer"));
            we_closed = true;
            if lib_closed && lib_is_client {
                let _ = c.stream.shutdown(std::net::Shutdown::Write);
            }
        } else if roll < data_odds + 48 {
            let choices: [&[u8]; 5] = [
                &[0x83, 0x00],             // reserved opcode
                &[0x80, 0x01, 0x78],       // continuation of nothing
                &[0x81, 0x02, 0xC3, 0x28], // invalid UTF-8
                &[0x89, 0x7E, 0x00, 0x7E], // ping longer than 125
                &[0x88, 0x01, 0x03],       // 1-byte close
            ];
            let bad = *rng.pick(&choices);
            // a server's frames are unmasked; a client's must be masked
            let bytes = if lib_is_client {
                bad.to_vec()
            } else {
                let mut f = bad.to_vec();
                f[1] |= 0x80;
                let at = if f[1] & 0x7F == 126 { 4 } else { 2 };
                f.splice(at..at, [0u8; 4]); // an all-zero key leaves the payload as is
                f
            };
            let _ = c.send_raw(&bytes);
            quiet = true;
        } else if roll < data_odds + 53 {
            let _ = c.stream.shutdown(std::net::Shutdown::Write);
            quiet = true;
        } else if roll < data_odds + 56 {
            c.reset();
            return PeerReport {
                frames,
                end: End::Reset,
                problems,
            };
        }
    }
}

/// The library's message in progress, as the peer sees it.
#[derive(Default)]
struct MessageCheck {
    in_message: bool,
    text: bool,
    utf8: Utf8Validator,
}

fn check_frame(f: &Frame, lib_is_client: bool, msg: &mut MessageCheck, problems: &mut Vec<String>) {
    let mut bad = |what: &str| problems.push(format!("{what}: {f:?}"));
    if f.masked != lib_is_client {
        bad(if lib_is_client {
            "an unmasked frame from a client"
        } else {
            "a masked frame from a server"
        });
    }
    if f.rsv != 0 {
        bad("reserved bits set");
    }
    match f.opcode {
        raw::OP_CLOSE | raw::OP_PING | raw::OP_PONG => {
            if !f.fin || f.payload.len() > 125 {
                bad("a fragmented or long control frame");
            }
            if f.opcode == raw::OP_CLOSE {
                let ok = match f.payload.len() {
                    0 => true,
                    1 => false,
                    _ => {
                        let s = u16::from_be_bytes([f.payload[0], f.payload[1]]);
                        wire_status(s) && std::str::from_utf8(&f.payload[2..]).is_ok()
                    }
                };
                if !ok {
                    bad("an invalid close payload");
                }
            }
        }
        raw::OP_TEXT | raw::OP_BINARY | raw::OP_CONT => {
            if (f.opcode == raw::OP_CONT) != msg.in_message {
                bad("fragments out of order");
            }
            if f.opcode != raw::OP_CONT {
                msg.text = f.opcode == raw::OP_TEXT;
                msg.utf8 = Utf8Validator::default();
            }
            if msg.text
                && (msg.utf8.feed(&f.payload).is_err() || (f.fin && !msg.utf8.is_complete()))
            {
                bad("text that is not UTF-8");
            }
            msg.in_message = !f.fin;
        }
        _ => bad("a reserved opcode"),
    }
}

// ---- the model ----------------------------------------------------------------------------

struct Driver {
    rng: Rng,
    h: ws_handle,
    is_client: bool,
    released: bool,
    sending: Option<bool>, // a message in progress on the send side: is it text?
    receiving: Option<u32>, // the kind (0 binary, 2 text) of a message being received
    rx_text: Utf8Validator, // the received text so far
    saw_close: bool,       // the peer's close frame has arrived
    connected: bool,       // ws_connect succeeded (or the handle came from ws_accept)
    log: Vec<String>,
    calls: u64,
}

impl Driver {
    fn state(&self) -> Option<u32> {
        let mut s = u32::MAX;
        (ws_query_state(self.h, &mut s) == WS_OK).then_some(s)
    }

    fn fail(&self, what: String) -> ! {
        let tail: Vec<&String> = self.log.iter().rev().take(25).collect::<Vec<_>>();
        let mut lines: Vec<String> = tail.into_iter().rev().cloned().collect();
        lines.push(format!(">>> {what}"));
        panic!("{}", lines.join("\n"));
    }

    /// Checks `code` is in `allowed` (and never INTERNAL), logging the call.
    fn expect(&mut self, call: String, code: ws_error, allowed: &[ws_error], s0: Option<u32>) {
        let s1 = self.state();
        let name =
            |s: Option<u32>| s.map_or("-", |s| STATES.get(s as usize).copied().unwrap_or("?"));
        self.log.push(format!(
            "{call} -> {} [{} -> {}] {}",
            wshandle::error::name(code),
            name(s0),
            name(s1),
            if code == WS_OK {
                String::new()
            } else {
                last_error()
            }
        ));
        self.calls += 1;
        *CODES
            .lock()
            .unwrap()
            .entry(wshandle::error::name(code))
            .or_insert(0) += 1;
        if let Some(s) = s1 {
            STATES_SEEN.fetch_or(1 << s, Ordering::Relaxed);
        }
        if code == WS_ERROR_INTERNAL {
            self.fail("WS_ERROR_INTERNAL: the library caught a panic".into());
        }
        if !allowed.contains(&code) {
            let names: Vec<&str> = allowed.iter().map(|&c| wshandle::error::name(c)).collect();
            self.fail(format!(
                "{} is not one of {names:?}",
                wshandle::error::name(code)
            ));
        }
    }

    fn after(&self, want: &[u32], what: &str) {
        let s = self.state().unwrap_or(u32::MAX);
        if !want.contains(&s) {
            let names: Vec<&str> = want.iter().map(|&w| STATES[w as usize]).collect();
            self.fail(format!(
                "{what}: the state is {}, expected {names:?}",
                STATES.get(s as usize).copied().unwrap_or("?")
            ));
        }
    }

    fn note_state(&mut self) {
        if let Some(WS_STATE_CLOSE_RECEIVED | WS_STATE_CLOSED) = self.state() {
            self.saw_close = true;
        }
    }

    // ---- the calls ----

    fn send(&mut self) {
        let r = &mut self.rng;
        let ty = match r.below(20) {
            0 => WS_BUFFER_CLOSE,
            1 => *r.pick(&[5u32, 17, u32::MAX]),
            _ => r.below(4) as u32,
        };
        let text = ty == WS_BUFFER_UTF8_MESSAGE || ty == WS_BUFFER_UTF8_FRAGMENT;
        let n = *r.pick(&[0usize, 0, 1, 3, 10, 100, 1000, 70_000]);
        let invalid_utf8 = text && n > 0 && r.chance(1, 10);
        let mut payload: Vec<u8> = if text {
            "aé€𝄞".repeat(n / 10 + 1).into_bytes()
        } else {
            r.bytes(n)
        };
        if text {
            let mut cut = n.min(payload.len());
            while !payload.is_char_boundary_at(cut) {
                cut -= 1;
            }
            payload.truncate(cut);
        }
        if invalid_utf8 && !payload.is_empty() {
            let i = r.below(payload.len() as u64) as usize;
            payload[i] = 0xFF;
        }
        let null = !payload.is_empty() && r.chance(1, 20);
        let s0 = self.state();
        let ptr = if null {
            std::ptr::null()
        } else {
            payload.as_ptr().cast()
        };
        // a batch of one follows exactly ws_send's rules
        let batched = self.rng.chance(1, 4);
        let code = if batched {
            let item = ws_batch_item {
                buffer_type: ty,
                buf: ptr,
                len: payload.len(),
            };
            ws_send_batch(self.h, &item, 1)
        } else {
            ws_send(self.h, ty, ptr, payload.len())
        };
        let call = format!(
            "{}(type {ty}, {} bytes{}{})",
            if batched { "ws_send_batch" } else { "ws_send" },
            payload.len(),
            if null { ", NULL" } else { "" },
            if invalid_utf8 { ", invalid UTF-8" } else { "" }
        );
        if self.released {
            return self.expect(call, code, &[WS_ERROR_INVALID_HANDLE], s0);
        }
        let s0v = s0.unwrap();
        let bad_arg = ty > 3 || null;
        let mixed = self.sending.is_some_and(|t| t != text);
        let bad_data = invalid_utf8 || mixed;
        let state_ok = matches!(s0v, WS_STATE_OPEN | WS_STATE_CLOSE_RECEIVED);
        let allowed: &[ws_error] = if (bad_arg || bad_data) && !state_ok {
            &[WS_ERROR_INVALID_PARAMETER, WS_ERROR_INVALID_OPERATION]
        } else if bad_arg || bad_data {
            &[WS_ERROR_INVALID_PARAMETER]
        } else if !state_ok {
            &[WS_ERROR_INVALID_OPERATION]
        } else {
            &[WS_OK, WS_ERROR_TIMEOUT, WS_ERROR_CONNECTION_ERROR]
        };
        self.expect(call, code, allowed, s0);
        match code {
            WS_OK => {
                self.after(&[s0v], "after a successful ws_send");
                let fragment = ty == WS_BUFFER_BINARY_FRAGMENT || ty == WS_BUFFER_UTF8_FRAGMENT;
                self.sending = fragment.then_some(text);
            }
            WS_ERROR_INVALID_PARAMETER | WS_ERROR_INVALID_OPERATION => {
                self.after(&[s0v], "a rejected ws_send changes nothing");
            }
            _ => self.after(&[WS_STATE_ABORTED], "a failed ws_send aborts"),
        }
    }

    fn receive(&mut self) {
        let r = &mut self.rng;
        let len = *r.pick(&[0usize, 1, 2, 3, 7, 16, 125, 4096, 65536]);
        let null_buf = r.chance(1, 25);
        let null_n = r.chance(1, 30);
        let null_ty = r.chance(1, 30);
        let mut buf = vec![0u8; len.max(1)];
        let (mut n, mut ty) = (usize::MAX, u32::MAX);
        let s0 = self.state();
        let code = ws_receive(
            self.h,
            if null_buf {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr().cast()
            },
            len,
            if null_n { std::ptr::null_mut() } else { &mut n },
            if null_ty {
                std::ptr::null_mut()
            } else {
                &mut ty
            },
        );
        let call = format!(
            "ws_receive({len} bytes{}{}{})",
            if null_buf { ", NULL buf" } else { "" },
            if null_n { ", NULL bytes_read" } else { "" },
            if null_ty { ", NULL type" } else { "" }
        );
        if code != WS_OK && (n, ty) != (usize::MAX, u32::MAX) {
            self.fail(format!(
                "{call} failed but wrote its out-parameters ({n}, {ty})"
            ));
        }
        if self.released {
            return self.expect(call, code, &[WS_ERROR_INVALID_HANDLE], s0);
        }
        let s0v = s0.unwrap();
        let bad_arg = null_buf || len == 0 || null_n || null_ty;
        let state_ok = matches!(s0v, WS_STATE_OPEN | WS_STATE_CLOSE_SENT);
        let allowed: &[ws_error] = if bad_arg && !state_ok {
            &[WS_ERROR_INVALID_PARAMETER, WS_ERROR_INVALID_OPERATION]
        } else if bad_arg {
            &[WS_ERROR_INVALID_PARAMETER]
        } else if !state_ok {
            &[WS_ERROR_INVALID_OPERATION]
        } else {
            &[
                WS_OK,
                WS_ERROR_TIMEOUT,
                WS_ERROR_CONNECTION_ERROR,
                WS_ERROR_INVALID_SERVER_RESPONSE,
            ]
        };
        self.expect(format!("{call} = ({n}, {ty})"), code, allowed, s0);
        match code {
            WS_OK => {
                if n > len || ty > WS_BUFFER_CLOSE {
                    self.fail(format!(
                        "ws_receive wrote {n} bytes of type {ty} into {len}"
                    ));
                }
                if ty == WS_BUFFER_CLOSE {
                    if n != 0 {
                        self.fail("a close with data".into());
                    }
                    self.saw_close = true;
                    let want = if s0v == WS_STATE_OPEN {
                        WS_STATE_CLOSE_RECEIVED
                    } else {
                        WS_STATE_CLOSED
                    };
                    self.after(&[want], "after WS_BUFFER_CLOSE");
                    return;
                }
                self.after(&[s0v], "after a data piece");
                let kind = ty & 2;
                let fragment = ty & 1 == 1;
                if let Some(k) = self.receiving {
                    if k != kind {
                        self.fail("a message changed type between pieces".into());
                    }
                } else {
                    self.rx_text = Utf8Validator::default();
                }
                if fragment && n == 0 {
                    self.fail("an empty *_FRAGMENT piece".into());
                }
                if kind == 2 {
                    let ok = self.rx_text.feed(&buf[..n]).is_ok();
                    if !ok || (!fragment && !self.rx_text.is_complete()) {
                        self.fail("received text that is not UTF-8".into());
                    }
                }
                self.receiving = fragment.then_some(kind);
            }
            WS_ERROR_TIMEOUT => self.after(&[s0v, WS_STATE_ABORTED], "after a receive timeout"),
            WS_ERROR_INVALID_PARAMETER | WS_ERROR_INVALID_OPERATION => {
                self.after(&[s0v], "a rejected ws_receive changes nothing")
            }
            _ => self.after(&[WS_STATE_ABORTED], "a failed ws_receive aborts"),
        }
    }

    /// A status and reason for ws_shutdown / ws_close, and whether they are valid.
    fn close_args(&mut self) -> (u16, Vec<u8>, bool, bool) {
        let r = &mut self.rng;
        let status = if r.chance(3, 4) {
            *r.pick(&[
                1000u16, 1001, 1002, 1003, 1005, 1007, 1011, 1014, 3000, 4999,
            ])
        } else {
            *r.pick(&[0u16, 999, 1004, 1006, 1015, 1016, 2999, 5000, 65535])
        };
        let reason: Vec<u8> = match r.below(8) {
            0..=2 => Vec::new(),
            3 | 4 => b"bye".to_vec(),
            5 => "é".repeat(61).into_bytes(), // 122 bytes
            6 => vec![b'x'; 124],             // too long
            _ => b"\xC3\x28".to_vec(),        // not UTF-8
        };
        let null = !reason.is_empty() && r.chance(1, 20);
        let valid_reason = reason.len() <= 123 && std::str::from_utf8(&reason).is_ok() && !null;
        let valid = if status == 1005 {
            reason.is_empty()
        } else {
            wire_status(status) && valid_reason
        };
        (status, reason, null, valid)
    }

    fn shutdown_or_close(&mut self, close: bool) {
        let (status, reason, null, valid) = self.close_args();
        let s0 = self.state();
        let ptr = if null {
            std::ptr::null()
        } else {
            reason.as_ptr().cast()
        };
        let code = if close {
            ws_close(self.h, status, ptr, reason.len())
        } else {
            ws_shutdown(self.h, status, ptr, reason.len())
        };
        let call = format!(
            "{}({status}, {} bytes{})",
            if close { "ws_close" } else { "ws_shutdown" },
            reason.len(),
            if null { ", NULL" } else { "" }
        );
        if self.released {
            return self.expect(call, code, &[WS_ERROR_INVALID_HANDLE], s0);
        }
        let s0v = s0.unwrap();
        let state_ok = if close {
            matches!(
                s0v,
                WS_STATE_OPEN | WS_STATE_CLOSE_SENT | WS_STATE_CLOSE_RECEIVED | WS_STATE_CLOSED
            )
        } else {
            matches!(s0v, WS_STATE_OPEN | WS_STATE_CLOSE_RECEIVED)
        };
        let allowed: &[ws_error] = if !valid && !state_ok {
            &[WS_ERROR_INVALID_PARAMETER, WS_ERROR_INVALID_OPERATION]
        } else if !valid {
            &[WS_ERROR_INVALID_PARAMETER]
        } else if !state_ok {
            &[WS_ERROR_INVALID_OPERATION]
        } else if close && s0v == WS_STATE_CLOSED {
            &[WS_OK]
        } else if close {
            &[
                WS_OK,
                WS_ERROR_TIMEOUT,
                WS_ERROR_CONNECTION_ERROR,
                WS_ERROR_INVALID_SERVER_RESPONSE,
            ]
        } else {
            &[WS_OK, WS_ERROR_TIMEOUT, WS_ERROR_CONNECTION_ERROR]
        };
        self.expect(call, code, allowed, s0);
        match code {
            WS_ERROR_INVALID_PARAMETER | WS_ERROR_INVALID_OPERATION => {
                self.after(&[s0v], "a rejected close call changes nothing")
            }
            WS_OK if close => {
                self.saw_close = true;
                self.after(&[WS_STATE_CLOSED], "after ws_close returned WS_OK")
            }
            WS_OK => {
                let want = if s0v == WS_STATE_OPEN {
                    WS_STATE_CLOSE_SENT
                } else {
                    WS_STATE_CLOSED
                };
                self.after(&[want], "after ws_shutdown");
            }
            _ => self.after(&[WS_STATE_ABORTED], "a failed close call aborts"),
        }
        if code == WS_OK {
            self.sending = None;
        }
    }

    fn set_option(&mut self) {
        let r = &mut self.rng;
        // (number, kind: 0 = u32 timeout-like, 1 = u64, 2 = string, 3 = query only, 4 = unknown)
        let (opt, kind) = *r.pick(&[
            (WS_OPTION_CONNECT_TIMEOUT, 0u8),
            (WS_OPTION_SEND_TIMEOUT, 0),
            (WS_OPTION_RECEIVE_TIMEOUT, 0),
            (WS_OPTION_CLOSE_TIMEOUT, 0),
            (WS_OPTION_KEEPALIVE_INTERVAL, 0),
            (WS_OPTION_KEEPALIVE_TIMEOUT, 0),
            (WS_OPTION_MAX_MESSAGE_SIZE, 1),
            (WS_OPTION_SUBPROTOCOLS, 2),
            (WS_OPTION_SELECTED_SUBPROTOCOL, 3),
            (WS_OPTION_HTTP_STATUS, 3),
            (WS_OPTION_LOCAL_PORT, 3),
            (WS_OPTION_TLS_INSECURE_SKIP_VERIFY, 0),
            (0, 4),
            (7, 4),
            (999, 4),
            (u32::MAX, 4),
        ]);
        // timeouts stay short and never 0 where 0 means "forever"
        let v32: u32 = match opt {
            WS_OPTION_RECEIVE_TIMEOUT => r.range(1, 30) as u32,
            WS_OPTION_CLOSE_TIMEOUT => r.range(20, 300) as u32,
            WS_OPTION_SEND_TIMEOUT => r.range(50, 500) as u32,
            WS_OPTION_CONNECT_TIMEOUT => r.range(200, 3000) as u32,
            WS_OPTION_KEEPALIVE_INTERVAL => *r.pick(&[0u32, 5, 20, 100]),
            WS_OPTION_KEEPALIVE_TIMEOUT => *r.pick(&[0u32, 0, 50, 300]),
            WS_OPTION_TLS_INSECURE_SKIP_VERIFY => *r.pick(&[0u32, 1, 2]),
            _ => r.next_u64() as u32,
        };
        let v64: u64 = *r.pick(&[0u64, 0, 0, 10, 1000, 100_000]);
        let strings: [&[u8]; 6] = [b"chat", b"a, b", b"", b"bad\0nul", b"\xFF", b"chat\0"];
        let s = *r.pick(&strings);
        let mut value: Vec<u8> = match kind {
            1 => v64.to_ne_bytes().to_vec(),
            2 => s.to_vec(),
            _ => v32.to_ne_bytes().to_vec(),
        };
        let wrong_len = r.chance(1, 10);
        if wrong_len {
            value.truncate(*r.pick(&[0usize, 1, 3]));
            if kind != 2 && r.chance(1, 2) {
                value = vec![0; if kind == 1 { 4 } else { 8 }];
            }
        }
        let null = r.chance(1, 20);
        let s0 = self.state();
        let code = ws_set_option(
            self.h,
            opt,
            if null {
                std::ptr::null()
            } else {
                value.as_ptr().cast()
            },
            value.len(),
        );
        let call = format!(
            "ws_set_option({opt}, {} bytes{})",
            value.len(),
            if null { ", NULL" } else { "" }
        );
        if self.released {
            return self.expect(call, code, &[WS_ERROR_INVALID_HANDLE], s0);
        }
        let s0v = s0.unwrap();
        let allowed: &[ws_error] = match kind {
            3 | 4 if null => &[WS_ERROR_INVALID_OPTION, WS_ERROR_INVALID_PARAMETER],
            3 | 4 => &[WS_ERROR_INVALID_OPTION],
            _ if null || (wrong_len && kind != 2) => &[WS_ERROR_INVALID_PARAMETER],
            0 if opt != WS_OPTION_TLS_INSECURE_SKIP_VERIFY => &[WS_OK],
            _ if s0v != WS_STATE_NONE => {
                &[WS_ERROR_INCORRECT_HANDLE_STATE, WS_ERROR_INVALID_PARAMETER]
            }
            _ => &[WS_OK, WS_ERROR_INVALID_PARAMETER],
        };
        self.expect(call, code, allowed, s0);
        self.after(&[s0v], "ws_set_option changes no state");
    }

    fn query(&mut self) {
        let s0 = self.state();
        let r = &mut self.rng;
        match r.below(4) {
            0 => {
                let opt = *r.pick(&[
                    3u32, 5, 6, 115, 116, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1011, 0,
                    4242,
                ]);
                let cap = *r.pick(&[0usize, 1, 4, 8, 64]);
                let mut buf = vec![0u8; cap.max(1)];
                let mut len = cap;
                let null_v = r.chance(1, 10);
                let null_len = r.chance(1, 20);
                let code = ws_query_option(
                    self.h,
                    opt,
                    if null_v {
                        std::ptr::null_mut()
                    } else {
                        buf.as_mut_ptr().cast()
                    },
                    if null_len {
                        std::ptr::null_mut()
                    } else {
                        &mut len
                    },
                );
                let call = format!("ws_query_option({opt}, {cap} bytes)");
                let allowed: &[ws_error] = if self.released {
                    &[WS_ERROR_INVALID_HANDLE]
                } else if null_len {
                    // both argument errors; which one is checked first is not specified
                    &[WS_ERROR_INVALID_PARAMETER, WS_ERROR_INVALID_OPTION]
                } else {
                    &[
                        WS_OK,
                        WS_ERROR_INVALID_OPTION,
                        WS_ERROR_INSUFFICIENT_BUFFER,
                        WS_ERROR_INCORRECT_HANDLE_STATE,
                    ]
                };
                self.expect(call, code, allowed, s0);
                if code == WS_OK && (len > cap || null_v) {
                    self.fail(format!("ws_query_option wrote {len} bytes into {cap}"));
                }
            }
            1 => {
                let cap = *r.pick(&[0usize, 1, 10, 123]);
                let null_s = r.chance(1, 20);
                let null_c = r.chance(1, 20);
                let null_r = cap > 0 && r.chance(1, 10);
                let mut reason = vec![0u8; cap.max(1)];
                let (mut status, mut used) = (u16::MAX, usize::MAX);
                let code = ws_query_close_status(
                    self.h,
                    if null_s {
                        std::ptr::null_mut()
                    } else {
                        &mut status
                    },
                    if null_r || cap == 0 {
                        std::ptr::null_mut()
                    } else {
                        reason.as_mut_ptr().cast()
                    },
                    cap,
                    if null_c {
                        std::ptr::null_mut()
                    } else {
                        &mut used
                    },
                );
                let call = format!("ws_query_close_status({cap} bytes) = ({status}, {used})");
                if code != WS_OK && status != u16::MAX {
                    self.fail(format!("{call} failed but wrote the status"));
                }
                if self.released {
                    return self.expect(call, code, &[WS_ERROR_INVALID_HANDLE], s0);
                }
                let s0v = s0.unwrap();
                let known = matches!(
                    s0v,
                    WS_STATE_CLOSE_RECEIVED | WS_STATE_CLOSED | WS_STATE_ABORTED
                );
                let allowed: &[ws_error] = if null_s || null_c || null_r {
                    &[WS_ERROR_INVALID_PARAMETER]
                } else if !known {
                    &[WS_ERROR_INVALID_OPERATION]
                } else {
                    &[WS_OK, WS_ERROR_INSUFFICIENT_BUFFER]
                };
                self.expect(call, code, allowed, s0);
                if code == WS_ERROR_INVALID_OPERATION && used != usize::MAX {
                    self.fail("ws_query_close_status wrote reason_consumed before a close".into());
                }
                if code == WS_OK {
                    if !(wire_status(status) || status == 1005 || status == 1006) || used > cap {
                        self.fail(format!("a close status of {status} with {used} bytes"));
                    }
                    if s0v == WS_STATE_ABORTED && !self.saw_close && (status, used) != (1006, 0) {
                        self.fail("an abort without a close frame must read as 1006".into());
                    }
                }
            }
            2 => {
                let name = *r.pick(&["Upgrade", "sec-websocket-accept", "X-Nope", "Host"]);
                let cname = CString::new(name).unwrap();
                let cap = *r.pick(&[0usize, 1, 8, 256]);
                let mut buf = vec![0u8; cap.max(1)];
                let mut used = 0usize;
                let code = ws_query_response_header(
                    self.h,
                    cname.as_ptr(),
                    if cap == 0 {
                        std::ptr::null_mut()
                    } else {
                        buf.as_mut_ptr().cast()
                    },
                    cap,
                    &mut used,
                );
                let allowed: &[ws_error] = if self.released {
                    &[WS_ERROR_INVALID_HANDLE]
                } else {
                    &[
                        WS_OK,
                        WS_ERROR_INCORRECT_HANDLE_STATE,
                        WS_ERROR_HEADER_NOT_FOUND,
                        WS_ERROR_INSUFFICIENT_BUFFER,
                    ]
                };
                self.expect(
                    format!("ws_query_response_header({name}, {cap})"),
                    code,
                    allowed,
                    s0,
                );
            }
            _ => {
                let null = r.chance(1, 10);
                let mut st = u32::MAX;
                let code =
                    ws_query_state(self.h, if null { std::ptr::null_mut() } else { &mut st });
                let allowed: &[ws_error] = if self.released {
                    &[WS_ERROR_INVALID_HANDLE]
                } else if null {
                    &[WS_ERROR_INVALID_PARAMETER]
                } else {
                    &[WS_OK]
                };
                self.expect(format!("ws_query_state() = {st}"), code, allowed, s0);
                if code == WS_OK && st > WS_STATE_ABORTED {
                    self.fail(format!("state {st}"));
                }
            }
        }
        if let (Some(s0), false) = (s0, self.released) {
            self.after(&[s0], "a query changes no state");
        }
    }

    fn connect(&mut self) {
        let s0 = self.state();
        let code = ws_connect(self.h);
        let allowed: &[ws_error] = if self.released {
            &[WS_ERROR_INVALID_HANDLE]
        } else if s0 == Some(WS_STATE_NONE) {
            &[WS_OK]
        } else {
            &[WS_ERROR_INVALID_OPERATION]
        };
        self.expect("ws_connect()".into(), code, allowed, s0);
        if code == WS_OK {
            self.connected = true;
            self.after(&[WS_STATE_OPEN], "after ws_connect");
        }
    }

    fn close_handle(&mut self) {
        let s0 = self.state();
        let code = ws_close_handle(self.h);
        let allowed: &[ws_error] = if self.released {
            &[WS_ERROR_INVALID_HANDLE]
        } else {
            &[WS_OK]
        };
        self.expect("ws_close_handle()".into(), code, allowed, s0);
        self.released = true;
    }

    fn bogus_handle(&mut self) {
        let h = *self.rng.pick(&[0u64, u64::MAX, 0xDEAD_BEEF_0000_0001]);
        let mut st = 0;
        let code = ws_query_state(h, &mut st);
        self.expect(
            format!("ws_query_state(bogus {h:#x})"),
            code,
            &[WS_ERROR_INVALID_HANDLE],
            None,
        );
        let code = ws_send(h, WS_BUFFER_BINARY_MESSAGE, std::ptr::null(), 0);
        self.expect(
            format!("ws_send(bogus {h:#x})"),
            code,
            &[WS_ERROR_INVALID_HANDLE],
            None,
        );
    }

    fn step(&mut self) {
        self.note_state();
        match self.rng.below(100) {
            0..=24 => self.send(),
            25..=54 => self.receive(),
            55..=60 => self.shutdown_or_close(false),
            61..=65 => self.shutdown_or_close(true),
            66..=77 => self.set_option(),
            78..=92 => self.query(),
            93..=94 => self.connect(),
            95..=96 => self.bogus_handle(),
            _ => self.close_handle(),
        }
    }
}

trait CharBoundary {
    fn is_char_boundary_at(&self, i: usize) -> bool;
}

impl CharBoundary for Vec<u8> {
    fn is_char_boundary_at(&self, i: usize) -> bool {
        i == 0 || i >= self.len() || (self[i] & 0xC0) != 0x80
    }
}

fn set(h: ws_handle, opt: u32, v: u32) {
    assert_code!(ws_set_option(h, opt, (&v as *const u32).cast(), 4), WS_OK);
}

/// One random sequence on one connection. Returns how many calls it made.
fn one_sequence(seed: u64, server: &RawServer, listener: (ws_handle, u16)) -> u64 {
    let mut rng = Rng::new(seed);
    let peer_seed = rng.next_u64();
    let is_client = rng.chance(1, 2);
    let (tx, rx) = mpsc::channel();
    let h = if is_client {
        NEXT_PEER.lock().unwrap().replace((peer_seed, tx));
        let h = open(&server.url("/fuzz"));
        set(h, WS_OPTION_CONNECT_TIMEOUT, 5_000);
        h
    } else {
        let port = listener.1;
        std::thread::spawn(move || {
            let report = match RawConn::client(port, "/fuzz") {
                Ok(c) => peer(c, peer_seed, false),
                Err(e) => PeerReport {
                    frames: 0,
                    end: End::Reset,
                    problems: vec![format!("cannot connect: {e}")],
                },
            };
            let _ = tx.send(report);
        });
        let mut h = 0;
        assert_code!(ws_accept(listener.0, &mut h), WS_OK);
        h
    };
    let mut d = Driver {
        rng,
        h,
        is_client,
        released: false,
        sending: None,
        receiving: None,
        rx_text: Utf8Validator::default(),
        saw_close: false,
        connected: !is_client,
        log: vec![format!(
            "sequence {seed:#x}, library is the {}",
            if is_client { "client" } else { "server" }
        )],
        calls: 0,
    };
    set(h, WS_OPTION_RECEIVE_TIMEOUT, d.rng.range(1, 20) as u32);
    set(h, WS_OPTION_CLOSE_TIMEOUT, d.rng.range(50, 300) as u32);
    set(h, WS_OPTION_SEND_TIMEOUT, 2_000);
    if d.is_client {
        // calls before ws_connect: options, and I/O that must be refused in NONE
        for _ in 0..d.rng.below(6) {
            d.step();
        }
        if !d.released && !d.connected {
            d.connect();
        }
    }
    let mut after_release = 0;
    for _ in 0..d.rng.range(5, 40) {
        if d.released {
            after_release += 1;
            if after_release > 3 {
                break; // a few calls on the released handle are enough
            }
        }
        d.step();
    }
    if !d.released {
        d.close_handle();
    }
    d.close_handle(); // a second call: WS_ERROR_INVALID_HANDLE
    if !d.connected {
        NEXT_PEER.lock().unwrap().take(); // never connected: no peer ran
        return d.calls;
    }
    match rx.recv_timeout(Duration::from_secs(25)) {
        Ok(report) => {
            if !report.problems.is_empty() {
                d.fail(format!(
                    "the peer saw (after {} frames, end {:?}): {:?}",
                    report.frames, report.end, report.problems
                ));
            }
        }
        Err(_) => d.fail("the peer never finished".into()),
    }
    d.calls
}

/// Result codes seen, by name, and the states visited (a bit per state), for the report.
static CODES: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());
static STATES_SEEN: AtomicU64 = AtomicU64::new(0);

/// The next client connection's peer: its seed and where it reports. Sequences run one at a
/// time, so the raw server's handler takes what the current sequence left here.
type Hand = (u64, mpsc::Sender<PeerReport>);
static NEXT_PEER: std::sync::Mutex<Option<Hand>> = std::sync::Mutex::new(None);

#[test]
fn random_call_sequences_in_both_roles() {
    let secs = env_num("WSHANDLE_FUZZ_SECS", 30);
    let max_iters = env_num("WSHANDLE_FUZZ_ITERS", u64::MAX);
    let master = seed_from_env("WSHANDLE_FUZZ_SEED");
    // One sequence at a time: the raw server hands each connection the seed queued for it.
    let server = RawServer::start(|s: TcpStream| {
        let Some((seed, tx)) = NEXT_PEER.lock().unwrap().take() else {
            return; // not a connection a sequence opened
        };
        let report = match RawConn::server(s) {
            Ok(c) => peer(c, seed, true),
            Err(e) => PeerReport {
                frames: 0,
                end: End::Reset,
                problems: vec![format!("handshake: {e}")],
            },
        };
        let _ = tx.send(report);
    });
    let url = CString::new("ws://127.0.0.1:0/fuzz").unwrap();
    let mut l = 0;
    assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
    set(l, WS_OPTION_RECEIVE_TIMEOUT, 10_000);
    let port = local_port(l);

    let watchdog = Watchdog::start("fuzz api", Duration::from_secs(40));
    let mut seeds = Rng::new(master);
    let start = Instant::now();
    let (mut n, mut calls) = (0u64, 0u64);
    while n < max_iters && start.elapsed() < Duration::from_secs(secs) {
        let seed = seeds.next_u64();
        watchdog.beat(n, seed);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            one_sequence(seed, &server, (l, port))
        }));
        match r {
            Ok(c) => calls += c,
            Err(e) => {
                drop(watchdog);
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("fuzz api: sequence {seed:#x} (run seed {master:#x}) failed:\n{msg}");
            }
        }
        n += 1;
    }
    drop(watchdog);
    ws_close_handle(l);
    let took = start.elapsed().as_secs_f64();
    let seen = STATES_SEEN.load(Ordering::Relaxed);
    let states: Vec<&str> = (0..7)
        .filter(|s| seen & (1 << s) != 0)
        .map(|s| STATES[s])
        .collect();
    report(&format!(
        "fuzz api: {n} call sequences, {calls} calls in {took:.1} s ({:.0} calls/s, {:.1} sequences/s), seed {master:#x}; states visited {states:?}; results {:?}",
        calls as f64 / took,
        n as f64 / took,
        CODES.lock().unwrap()
    ));
    assert!(
        n < 20 || states.len() == 6,
        "the sequences never reached some states: {states:?}"
    );
}
