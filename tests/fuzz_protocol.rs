//! Fuzzing the sans-IO protocol core: `wshandle::protocol::recv::Receiver` in both roles, fed
//! peer bytes split at random points, through output buffers of random sizes, sometimes
//! through the direct-read path (`direct_len`/`accept_direct`) as the connection layer uses it.
//!
//! A stable-toolchain harness (cargo-fuzz needs nightly): a seeded PRNG, a time budget, and
//! three kinds of input — structure-aware valid streams (messages in fragments, control
//! frames in between, a close, garbage after it), the same streams mutated (bit flips,
//! splices of hostile frames, lies in length fields, truncation), and raw random bytes; plus
//! the committed corpus `tests/fuzz/receiver-seeds.txt`, replayed exactly and used as a base
//! for mutations. What must hold for every input:
//!
//! - no panic (the tests run with debug assertions and overflow checks), no hang (a watchdog
//!   aborts with the seed after 10 s in one input);
//! - every failure is a `Violation` with status 1002, 1007 or 1009;
//! - the receiver allocates nothing at all while it parses (a counting global allocator
//!   checks every call), writes at most `out.len()` bytes per event, and leaves at most a
//!   partial frame header (< 14 bytes) unconsumed when it asks for more input: memory is
//!   bounded whatever the peer sends;
//! - the outcome does not depend on how the input was split or on the buffer sizes (each
//!   input is also run whole, through a 64 KiB buffer, and the transcripts must agree);
//! - a valid stream yields exactly the messages, control frames and close it was built from;
//! - every input, valid or not, yields what a simple reference model of RFC 6455 in this file
//!   (whole frames, whole messages, `std::str::from_utf8`) says it must.
//!
//! Budget: `WSHANDLE_FUZZ_SECS` seconds per role (default 30), or `WSHANDLE_FUZZ_ITERS`
//! inputs, whichever ends first; `WSHANDLE_FUZZ_SEED` fixes the run's seed;
//! `WSHANDLE_FUZZ_REPLAY=<seed>` runs the one input a failure names. See docs/fuzzing.md.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::raw::{self, env_num, report, seed_from_env, Rng};
use wshandle::protocol::recv::{Event, Receiver};
use wshandle::protocol::{MessageKind, Role};

// ---- a global allocator that counts this thread's allocations -----------------------------

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

// SAFETY: forwards every call to the system allocator unchanged; counting has no effect on
// the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---- what the application would see ---------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Message(MessageKind, Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Vec<u8>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The input ended; the receiver waits for more.
    NeedMore,
    /// A close frame arrived (nothing after it is read).
    Closed,
    /// The peer broke the protocol; answered with this status.
    Violation(u16),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Transcript {
    seen: Vec<Seen>,
    outcome: Outcome,
}

/// How an input is fed: chunk sizes, buffer sizes and the direct path, from `rng` (or all in
/// one piece through a 64 KiB buffer when `rng` is None).
fn run(role: Role, max_message: u64, input: &[u8], mut rng: Option<&mut Rng>) -> Transcript {
    const HEADER_MAX: usize = 14;
    let mut rx = Receiver::new(role, max_message);
    let mut seen = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut partial_kind = None;
    let mut pending: Vec<u8> = Vec::with_capacity(input.len());
    let mut fed = 0usize; // input bytes moved to `pending` (or read directly)
    let mut calls = 0usize;
    let out_len = match rng.as_deref_mut() {
        None => 64 * 1024,
        Some(r) => *r.pick(&[1, 1, 2, 3, 4, 5, 7, 8, 13, 64, 125, 126, 1000, 4096, 65536]),
    };
    let mut out = vec![0xA5u8; out_len];
    let mut deliver = |seen: &mut Vec<Seen>, ev: Event, data: &[u8]| -> bool {
        match ev {
            Event::Data { n, kind, end } => {
                assert!(
                    n <= data.len(),
                    "Data event of {n} bytes from a {}-byte buffer",
                    data.len()
                );
                assert!(
                    n > 0 || end,
                    "an empty Data event that does not end the message"
                );
                if let Some(k) = partial_kind {
                    assert_eq!(k, kind, "a message changed kind between pieces");
                }
                partial_kind = Some(kind);
                partial.extend_from_slice(&data[..n]);
                if end {
                    seen.push(Seen::Message(kind, std::mem::take(&mut partial)));
                    partial_kind = None;
                }
                false
            }
            Event::Ping(p) => {
                assert!(p.as_slice().len() <= 125);
                seen.push(Seen::Ping(p.as_slice().to_vec()));
                false
            }
            Event::Pong => {
                seen.push(Seen::Pong);
                false
            }
            Event::Close(p) => {
                assert!(p.as_slice().len() <= 125);
                seen.push(Seen::Close(p.as_slice().to_vec()));
                true
            }
        }
    };
    loop {
        calls += 1;
        assert!(
            calls <= 4 * input.len() + 16,
            "no progress: {calls} calls for {} input bytes",
            input.len()
        );
        // The direct path: payload read straight into the caller's buffer.
        if let Some(r) = rng.as_deref_mut() {
            let direct = rx.direct_len();
            if pending.is_empty() && direct > 0 && fed < input.len() && r.chance(1, 3) {
                let k = (direct.min(out.len() as u64) as usize).min(input.len() - fed);
                let k = r.range(1, k as u64) as usize;
                out[..k].copy_from_slice(&input[fed..fed + k]);
                fed += k;
                let before = allocs();
                let result = rx.accept_direct(&mut out[..k]);
                assert_eq!(allocs(), before, "accept_direct allocated");
                match result {
                    Ok(ev @ Event::Data { n, .. }) => {
                        assert_eq!(n, k, "accept_direct did not take every byte");
                        let done = deliver(&mut seen, ev, &out[..k]);
                        assert!(!done);
                    }
                    Ok(other) => panic!("accept_direct returned {other:?}"),
                    Err(v) => return violation(seen, v),
                }
                continue;
            }
        }
        // Move the next chunk of input into the pending buffer.
        if fed < input.len() {
            let left = input.len() - fed;
            let take = match rng.as_deref_mut() {
                None => left,
                Some(r) => match r.below(4) {
                    0 => 1,
                    1 => r.range(1, 16.min(left as u64)) as usize,
                    2 => r.range(1, left as u64) as usize,
                    _ => left,
                },
            }
            .min(left);
            pending.extend_from_slice(&input[fed..fed + take]);
            fed += take;
        }
        // Feed until the receiver asks for more.
        loop {
            calls += 1;
            assert!(calls <= 4 * input.len() + 16, "no progress");
            let before = allocs();
            let result = rx.feed(&pending, &mut out);
            assert_eq!(allocs(), before, "Receiver::feed allocated");
            match result {
                Err(v) => return violation(seen, v),
                Ok((used, ev)) => {
                    assert!(used <= pending.len(), "consumed more than it was given");
                    let ev_done = match ev {
                        None => {
                            let left = pending.len() - used;
                            assert!(
                                left < HEADER_MAX,
                                "asked for more input with {left} bytes unconsumed"
                            );
                            pending.drain(..used);
                            break;
                        }
                        Some(ev) => deliver(&mut seen, ev, &out),
                    };
                    pending.drain(..used);
                    if ev_done {
                        return Transcript {
                            seen,
                            outcome: Outcome::Closed,
                        };
                    }
                }
            }
        }
        if fed == input.len() {
            return Transcript {
                seen,
                outcome: Outcome::NeedMore,
            };
        }
    }
}

fn violation(seen: Vec<Seen>, v: wshandle::protocol::Violation) -> Transcript {
    assert!(
        matches!(v.status, 1002 | 1007 | 1009),
        "a violation answered with {}: {}",
        v.status,
        v.detail
    );
    assert!(!v.detail.is_empty());
    Transcript {
        seen,
        outcome: Outcome::Violation(v.status),
    }
}

// ---- inputs -------------------------------------------------------------------------------

/// Frames as `role`'s peer sends them: masked toward a server, unmasked toward a client.
struct Stream {
    role: Role,
    bytes: Vec<u8>,
    /// Where each frame starts (for splices at frame boundaries).
    starts: Vec<usize>,
}

impl Stream {
    fn new(role: Role) -> Stream {
        Stream {
            role,
            bytes: Vec::new(),
            starts: Vec::new(),
        }
    }
    fn key(&self, rng: &mut Rng) -> Option<[u8; 4]> {
        (self.role == Role::Server).then(|| (rng.next_u64() as u32).to_le_bytes())
    }
    fn frame(&mut self, rng: &mut Rng, opcode: u8, fin: bool, payload: &[u8]) {
        let key = self.key(rng);
        self.starts.push(self.bytes.len());
        self.bytes.extend(raw::encode(opcode, fin, payload, key));
    }
}

fn utf8_text(rng: &mut Rng, chars: usize) -> Vec<u8> {
    let mut s = String::new();
    for _ in 0..chars {
        let c = match rng.below(8) {
            0..=3 => rng.range(0x20, 0x7E),
            4 => rng.range(0, 0x7F),
            5 => rng.range(0x80, 0x7FF),
            6 => rng.range(0x800, 0xFFFF),
            _ => rng.range(0x10000, 0x10FFFF),
        } as u32;
        if let Some(c) = char::from_u32(c) {
            s.push(c);
        }
    }
    s.into_bytes()
}

fn payload_len(rng: &mut Rng) -> usize {
    match rng.below(50) {
        0..=4 => 0,
        5..=29 => rng.range(1, 20) as usize,
        30..=45 => rng.range(21, 300) as usize,
        46..=48 => rng.range(65_530, 65_540) as usize, // both sides of the 16-bit length form
        _ => rng.range(125, 130) as usize,
    }
}

fn control_payload(rng: &mut Rng) -> Vec<u8> {
    let n = if rng.chance(1, 8) {
        125
    } else {
        rng.below(20) as usize
    };
    rng.bytes(n)
}

/// What a valid stream holds, in order, for working out what the receiver must report under
/// any message size limit.
enum Item {
    /// A control frame, or a message once its last fragment has passed.
    Event(Seen),
    /// A data frame's header: the message's length so far, this frame included.
    Fragment(u64),
}

struct Plan {
    items: Vec<Item>,
    closed: bool,
}

impl Plan {
    /// The transcript the receiver must produce with `max_message` (0: no limit): everything
    /// up to the first data frame whose header takes its message over the limit, then 1009.
    fn expected(&self, max_message: u64) -> Transcript {
        let mut seen = Vec::new();
        for item in &self.items {
            match item {
                Item::Event(e) => seen.push(e.clone()),
                Item::Fragment(total) if max_message > 0 && *total > max_message => {
                    return Transcript {
                        seen,
                        outcome: Outcome::Violation(1009),
                    }
                }
                Item::Fragment(_) => {}
            }
        }
        Transcript {
            seen,
            outcome: if self.closed {
                Outcome::Closed
            } else {
                Outcome::NeedMore
            },
        }
    }

    /// Limits worth trying: each message length and its neighbours.
    fn limits(&self) -> Vec<u64> {
        let mut v = Vec::new();
        for item in &self.items {
            if let Item::Fragment(t) = item {
                v.extend([t.saturating_sub(1).max(1), *t, t + 1]);
            }
        }
        v
    }
}

/// A valid stream for `role` and the plan of what it holds.
fn valid_stream(rng: &mut Rng, role: Role) -> (Stream, Plan) {
    let mut s = Stream::new(role);
    let mut items = Vec::new();
    for _ in 0..rng.below(6) {
        if rng.chance(1, 4) {
            let p = control_payload(rng);
            if rng.chance(1, 2) {
                s.frame(rng, raw::OP_PING, true, &p);
                items.push(Item::Event(Seen::Ping(p)));
            } else {
                s.frame(rng, raw::OP_PONG, true, &p);
                items.push(Item::Event(Seen::Pong));
            }
        }
        let text = rng.chance(1, 2);
        let len = payload_len(rng);
        let payload = if text {
            let mut t = utf8_text(rng, len);
            t.truncate(t.len().min(70_000));
            while std::str::from_utf8(&t).is_err() {
                t.pop();
            }
            t
        } else {
            rng.bytes(len)
        };
        // cut into 1-5 fragments anywhere (inside code points too), controls in between
        let mut cuts: Vec<usize> = (0..rng.below(5))
            .map(|_| rng.range(0, payload.len() as u64) as usize)
            .collect();
        cuts.sort_unstable();
        cuts.push(payload.len());
        let mut at = 0;
        for (i, &cut) in cuts.iter().enumerate() {
            let first = i == 0;
            let last = i + 1 == cuts.len();
            let op = if !first {
                raw::OP_CONT
            } else if text {
                raw::OP_TEXT
            } else {
                raw::OP_BINARY
            };
            items.push(Item::Fragment(cut as u64));
            s.frame(rng, op, last, &payload[at..cut]);
            at = cut;
            if !last && rng.chance(1, 4) {
                let p = control_payload(rng);
                s.frame(rng, raw::OP_PING, true, &p);
                items.push(Item::Event(Seen::Ping(p)));
            }
        }
        let kind = if text {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        items.push(Item::Event(Seen::Message(kind, payload)));
    }
    let closed = rng.chance(1, 2);
    if closed {
        let p = match rng.below(4) {
            0 => Vec::new(),
            _ => {
                let status = *rng.pick(&[1000u16, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999]);
                let n = rng.below(30) as usize;
                let mut reason = utf8_text(rng, n);
                while reason.len() > 123 || std::str::from_utf8(&reason).is_err() {
                    reason.pop();
                }
                raw::close_payload(status, &reason)
            }
        };
        s.frame(rng, raw::OP_CLOSE, true, &p);
        items.push(Item::Event(Seen::Close(p)));
        if rng.chance(1, 2) {
            let n = rng.below(40) as usize;
            let junk = rng.bytes(n);
            s.bytes.extend(junk); // never read: the receiver stops at the close
        }
    }
    (s, Plan { items, closed })
}

/// A frame no peer may send (or one that stretches the rules), for splicing into streams.
fn hostile_frame(rng: &mut Rng, role: Role) -> Vec<u8> {
    let key = (role == Role::Server).then(|| (rng.next_u64() as u32).to_le_bytes());
    let wrong_key = if key.is_some() {
        None
    } else {
        Some([1, 2, 3, 4])
    };
    match rng.below(16) {
        0 => raw::encode(raw::OP_PING, true, &[0; 126], key), // control > 125
        1 => raw::encode(raw::OP_PING, false, b"", key),      // fragmented control
        2 => raw::encode(raw::OP_CONT, true, b"x", key),      // nothing to continue
        3 => {
            let mut f = raw::encode(raw::OP_TEXT, false, b"a", key);
            f.extend(raw::encode(raw::OP_BINARY, true, b"b", key)); // new message inside one
            f
        }
        4 => raw::encode(raw::OP_CLOSE, true, &[3], key), // 1-byte close
        5 => {
            let code = *rng.pick(&[0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]);
            raw::encode(raw::OP_CLOSE, true, &code.to_be_bytes(), key)
        }
        6 => raw::encode(raw::OP_CLOSE, true, b"\x03\xe8\xc3\x28", key), // reason not UTF-8
        7 => raw::encode(raw::OP_TEXT, true, b"ok\xed\xa0\x80", key),    // a surrogate
        8 => raw::encode(raw::OP_TEXT, true, b"\xf0\x9f\x98", key),      // ends mid code point
        9 => raw::encode_with(raw::OP_BINARY, true, 0, b"", key, Some(1 << 63)),
        10 => raw::encode_with(raw::OP_BINARY, true, 0, b"", key, Some(u64::MAX)),
        11 => raw::encode_with(raw::OP_BINARY, true, rng.range(1, 7) as u8, b"x", key, None),
        12 => raw::encode(
            *rng.pick(&[3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF]),
            true,
            b"",
            key,
        ),
        13 => raw::encode(raw::OP_BINARY, true, b"mask?", wrong_key), // wrong masking for the role
        14 => raw::encode_with(raw::OP_BINARY, true, 0, b"abc", key, Some(5)), // length too long
        _ => raw::encode_with(raw::OP_TEXT, true, 0, b"", key, Some(1 << 40)),
    }
}

const INTERESTING: [u8; 14] = [
    0x00, 0x01, 0x7D, 0x7E, 0x7F, 0x80, 0x81, 0x82, 0x88, 0x89, 0x8A, 0xFF, 0xC0, 0xED,
];

fn mutate(rng: &mut Rng, role: Role, bytes: &mut Vec<u8>, starts: &[usize]) {
    for _ in 0..rng.range(1, 4) {
        let len = bytes.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len as u64) as usize;
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len as u64) as usize;
                bytes[i] = *rng.pick(&INTERESTING);
            }
            2 => {
                let i = rng.range(0, len as u64) as usize;
                let n = rng.range(1, 8) as usize;
                let junk = rng.bytes(n);
                bytes.splice(i..i, junk);
            }
            3 if len > 0 => {
                let i = rng.below(len as u64) as usize;
                let j = (i + rng.range(1, 16) as usize).min(len);
                bytes.drain(i..j);
            }
            4 if len > 0 => {
                let i = rng.below(len as u64) as usize;
                let j = (i + rng.range(1, 32) as usize).min(len);
                let copy = bytes[i..j].to_vec();
                let at = rng.range(0, len as u64) as usize;
                bytes.splice(at..at, copy);
            }
            5 | 6 => {
                // a hostile frame at a frame boundary (or the end)
                let at = if starts.is_empty() || rng.chance(1, 4) {
                    len
                } else {
                    (*rng.pick(starts)).min(len)
                };
                let f = hostile_frame(rng, role);
                bytes.splice(at..at, f);
            }
            7 if len > 0 => {
                let keep = rng.below(len as u64) as usize;
                bytes.truncate(keep);
            }
            _ => {
                // rewrite a frame's length field
                if let Some(&at) = starts.get(rng.below(starts.len().max(1) as u64) as usize) {
                    if at + 1 < bytes.len() {
                        let mask_bit = bytes[at + 1] & 0x80;
                        bytes[at + 1] = mask_bit | *rng.pick(&[0u8, 1, 125, 126, 127]);
                    }
                }
            }
        }
    }
}

struct Corpus {
    entries: Vec<(Option<Role>, Vec<u8>)>,
    /// The outcome an entry must have, when its line says (`=> 1002`, `=> closed`, `=> more`).
    expected: Vec<Option<Outcome>>,
}

fn load_corpus() -> Corpus {
    let path = common::repo().join("tests/fuzz/receiver-seeds.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut entries = Vec::new();
    let mut expected = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (who, hex) = line.split_once(' ').unwrap_or(("any", line));
        let role = match who {
            "client" => Some(Role::Client),
            "server" => Some(Role::Server),
            "any" => None,
            _ => panic!(
                "{}:{}: role must be client, server or any",
                path.display(),
                n + 1
            ),
        };
        let hex = hex.split('#').next().unwrap();
        let (hex, outcome) = match hex.split_once("=>") {
            Some((h, o)) => (h, Some(o.trim())),
            None => (hex, None),
        };
        let outcome = outcome.map(|o| match o {
            "more" => Outcome::NeedMore,
            "closed" => Outcome::Closed,
            status => Outcome::Violation(
                status
                    .parse()
                    .unwrap_or_else(|_| panic!("{}:{}: outcome {o:?}", path.display(), n + 1)),
            ),
        });
        let hex: String = hex.split_whitespace().collect();
        assert!(hex.len() % 2 == 0, "{}:{}: odd hex", path.display(), n + 1);
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        entries.push((role, bytes));
        expected.push(outcome);
    }
    assert!(!entries.is_empty());
    Corpus { entries, expected }
}

// ---- a reference model -------------------------------------------------------------------

/// What RFC 6455 says the receiver must report for `input`, worked out the simple way: whole
/// frames, whole messages, `std::str::from_utf8` — independent of the receiver's incremental
/// machinery. Violations are found as early as the receiver may find them: header checks once
/// the whole header is there, UTF-8 as soon as a bad byte is there (fail fast), close payloads
/// and a text message's last code point once complete.
fn reference(role: Role, max_message: u64, input: &[u8]) -> Transcript {
    let mut seen = Vec::new();
    let mut pos = 0usize;
    let mut message: Option<(MessageKind, Vec<u8>)> = None;
    let fail = |seen: Vec<Seen>, status: u16| Transcript {
        seen,
        outcome: Outcome::Violation(status),
    };
    let more = |seen: Vec<Seen>| Transcript {
        seen,
        outcome: Outcome::NeedMore,
    };
    let utf8_state = |bytes: &[u8]| match std::str::from_utf8(bytes) {
        Ok(_) => Some(true),                              // complete
        Err(e) if e.error_len().is_none() => Some(false), // valid so far, ends mid code point
        Err(_) => None,                                   // invalid
    };
    loop {
        let rest = &input[pos..];
        if rest.len() < 2 {
            return more(seen);
        }
        let (b0, b1) = (rest[0], rest[1]);
        let mut hlen = 2usize;
        let mut len = u64::from(b1 & 0x7F);
        if len == 126 {
            hlen = 4;
        } else if len == 127 {
            hlen = 10;
        }
        let masked = b1 & 0x80 != 0;
        if masked {
            hlen += 4;
        }
        if rest.len() < hlen {
            return more(seen);
        }
        if len == 126 {
            len = u64::from(u16::from_be_bytes([rest[2], rest[3]]));
        } else if len == 127 {
            len = u64::from_be_bytes(rest[2..10].try_into().unwrap());
        }
        let key: Option<[u8; 4]> = masked.then(|| rest[hlen - 4..hlen].try_into().unwrap());
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        let control = opcode >= 8;
        // header checks: all 1002
        let bad_header = b0 & 0x70 != 0
            || !matches!(opcode, 0 | 1 | 2 | 8 | 9 | 10)
            || len > i64::MAX as u64
            || masked != (role == Role::Server)
            || (control && (!fin || len > 125))
            || (!control && opcode == 0 && message.is_none())
            || (!control && opcode != 0 && message.is_some());
        if bad_header {
            return fail(seen, 1002);
        }
        if !control {
            let so_far = message.as_ref().map_or(0, |(_, m)| m.len() as u64);
            if max_message > 0 && so_far.saturating_add(len) > max_message {
                return fail(seen, 1009);
            }
            if message.is_none() {
                let kind = if opcode == 1 {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                message = Some((kind, Vec::new()));
            }
        }
        let avail = (rest.len() - hlen) as u64;
        let take = len.min(avail) as usize;
        let mut payload = rest[hlen..hlen + take].to_vec();
        if let Some(k) = key {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= k[i % 4];
            }
        }
        if !control {
            let (kind, m) = message.as_mut().unwrap();
            m.extend_from_slice(&payload);
            if *kind == MessageKind::Text && utf8_state(m).is_none() {
                return fail(seen, 1007);
            }
        }
        if (take as u64) < len {
            return more(seen);
        }
        pos += hlen + take;
        match opcode {
            9 => seen.push(Seen::Ping(payload)),
            10 => seen.push(Seen::Pong),
            8 => {
                if payload.len() == 1 {
                    return fail(seen, 1002);
                }
                if payload.len() >= 2 {
                    let status = u16::from_be_bytes([payload[0], payload[1]]);
                    if !matches!(status, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                        return fail(seen, 1002);
                    }
                    if std::str::from_utf8(&payload[2..]).is_err() {
                        return fail(seen, 1007);
                    }
                }
                seen.push(Seen::Close(payload));
                return Transcript {
                    seen,
                    outcome: Outcome::Closed,
                };
            }
            _ if fin => {
                let (kind, m) = message.take().unwrap();
                if kind == MessageKind::Text && utf8_state(&m) != Some(true) {
                    return fail(seen, 1007);
                }
                seen.push(Seen::Message(kind, m));
            }
            _ => {}
        }
    }
}

/// One input from one seed: builds it, runs it split and whole, checks the oracles.
fn one_input(role: Role, seed: u64, corpus: &Corpus) -> &'static str {
    let mut rng = Rng::new(seed);
    let mut max_message = if rng.chance(1, 5) {
        rng.range(0, 400)
    } else {
        0
    };
    let (input, expected, kind) = match rng.below(10) {
        0..=3 => {
            let (s, plan) = valid_stream(&mut rng, role);
            let limits = plan.limits();
            if !limits.is_empty() && rng.chance(1, 4) {
                max_message = *rng.pick(&limits); // right at a message's length, or next to it
            }
            (s.bytes, Some(plan.expected(max_message)), "valid")
        }
        4..=6 => {
            let (mut s, _) = valid_stream(&mut rng, role);
            let starts = std::mem::take(&mut s.starts);
            mutate(&mut rng, role, &mut s.bytes, &starts);
            (s.bytes, None, "mutated")
        }
        7..=8 => {
            let fitting: Vec<&Vec<u8>> = corpus
                .entries
                .iter()
                .filter(|(r, _)| r.is_none_or(|r| r == role))
                .map(|(_, b)| b)
                .collect();
            let mut bytes = (*rng.pick(&fitting)).clone();
            mutate(&mut rng, role, &mut bytes, &[0]);
            (bytes, None, "corpus")
        }
        _ => {
            let n = rng.below(300) as usize;
            let mut bytes = rng.bytes(n);
            if !bytes.is_empty() && rng.chance(1, 2) {
                bytes[0] = *rng.pick(&[0x81, 0x82, 0x01, 0x02, 0x80, 0x88, 0x89, 0x8A]);
            }
            (bytes, None, "random")
        }
    };
    let whole = run(role, max_message, &input, None);
    let split = run(role, max_message, &input, Some(&mut rng));
    assert_eq!(
        split,
        whole,
        "the outcome depends on how the input was split ({kind} input of {} bytes)",
        input.len()
    );
    if let Some(t) = expected {
        assert_eq!(whole, t, "a valid stream was not reported as sent");
    }
    assert_eq!(
        whole,
        reference(role, max_message, &input),
        "the receiver and the reference model disagree ({kind} input {input:02x?})"
    );
    kind
}

/// Runs the budget for one role; returns (inputs, elapsed).
fn fuzz_role(role: Role, name: &str) {
    let corpus = load_corpus();
    // Replay: the committed corpus exactly, every entry split many ways.
    for ((r, bytes), want) in corpus.entries.iter().zip(&corpus.expected) {
        if r.is_some_and(|r| r != role) {
            continue;
        }
        let whole = run(role, 0, bytes, None);
        assert_eq!(
            whole,
            reference(role, 0, bytes),
            "corpus entry {bytes:02x?}"
        );
        if let Some(want) = want {
            assert_eq!(whole.outcome, *want, "corpus entry {bytes:02x?}");
        }
        for s in 0..64 {
            let mut rng = Rng::new(s);
            assert_eq!(
                run(role, 0, bytes, Some(&mut rng)),
                whole,
                "corpus entry {bytes:02x?}"
            );
        }
    }
    if let Ok(s) = std::env::var("WSHANDLE_FUZZ_REPLAY") {
        let seed = u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).unwrap();
        one_input(role, seed, &corpus);
        report(&format!("fuzz {name}: replayed input {seed:#x}: ok"));
        return;
    }
    let secs = env_num("WSHANDLE_FUZZ_SECS", 30);
    let max_iters = env_num("WSHANDLE_FUZZ_ITERS", u64::MAX);
    let master = seed_from_env("WSHANDLE_FUZZ_SEED");
    let mut seeds = Rng::new(master);

    // The watchdog: one input may not take 10 s.
    let current = Arc::new(AtomicU64::new(0));
    let beat = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (current, beat, done) = (current.clone(), beat.clone(), done.clone());
        let name = name.to_owned();
        std::thread::spawn(move || {
            let mut last = (u64::MAX, Instant::now());
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                let b = beat.load(Ordering::SeqCst);
                if b != last.0 {
                    last = (b, Instant::now());
                } else if last.1.elapsed() > Duration::from_secs(10) {
                    report(&format!(
                        "fuzz {name}: input {:#x} has run for 10 s: a hang; replay with WSHANDLE_FUZZ_REPLAY={:#x}",
                        current.load(Ordering::SeqCst),
                        current.load(Ordering::SeqCst)
                    ));
                    std::process::abort();
                }
            }
        })
    };

    let start = Instant::now();
    let budget = Duration::from_secs(secs);
    let mut n = 0u64;
    let mut kinds = std::collections::BTreeMap::new();
    while n < max_iters && start.elapsed() < budget {
        let seed = seeds.next_u64();
        current.store(seed, Ordering::SeqCst);
        beat.store(n, Ordering::SeqCst);
        match catch_unwind(AssertUnwindSafe(|| one_input(role, seed, &corpus))) {
            Ok(kind) => *kinds.entry(kind).or_insert(0u64) += 1,
            Err(e) => {
                done.store(true, Ordering::SeqCst);
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!(
                    "fuzz {name}: input {seed:#x} (run seed {master:#x}) failed: {msg}\nreplay with WSHANDLE_FUZZ_REPLAY={seed:#x} cargo test --test fuzz_protocol {name}"
                );
            }
        }
        n += 1;
    }
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    let took = start.elapsed().as_secs_f64();
    report(&format!(
        "fuzz {name}: {n} inputs in {took:.1} s ({:.0} execs/s; each input run twice, split and whole), seed {master:#x}; {kinds:?}; {} corpus entries replayed",
        n as f64 / took,
        corpus.entries.len()
    ));
}

#[test]
fn receiver_client_role() {
    fuzz_role(Role::Client, "receiver_client_role");
}

#[test]
fn receiver_server_role() {
    fuzz_role(Role::Server, "receiver_server_role");
}
