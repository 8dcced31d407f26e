//! An in-process raw RFC 6455 peer on std `TcpStream`s, for what no conforming library does:
//! hostile frames, hostile handshakes, byte-by-byte trickles, resets mid-frame. It parses
//! frames itself (not with wshandle's codec), so what the library sends is checked
//! independently. Every socket has a read timeout: no peer thread can hang a test.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a peer's socket read may block before the peer gives up.
pub const PEER_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest frame payload a peer accepts from the library (keeps the peer bounded).
const MAX_PEER_PAYLOAD: u64 = 64 << 20;

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// A frame as it was on the wire (payload unmasked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A close frame's status (1005 for an empty payload); None for other frames.
    pub fn close_status(&self) -> Option<u16> {
        (self.opcode == OP_CLOSE).then(|| match self.payload.len() {
            0 => 1005,
            1 => 0, // malformed: never sent by a correct library
            _ => u16::from_be_bytes([self.payload[0], self.payload[1]]),
        })
    }
}

/// Encodes a frame; `len_override` writes a different length than the payload's (for lies).
pub fn encode(opcode: u8, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    encode_with(opcode, fin, 0, payload, mask, None)
}

pub fn encode_with(
    opcode: u8,
    fin: bool,
    rsv: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
    len_override: Option<u64>,
) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | (rsv & 7) << 4 | (opcode & 0x0F)];
    let len = len_override.unwrap_or(payload.len() as u64);
    let m = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(m | len as u8);
    } else if len < 65536 {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A close frame's payload.
pub fn close_payload(status: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = status.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// How a peer's reading ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Orderly EOF at a frame boundary.
    Eof,
    /// EOF inside a frame.
    Truncated,
    /// Connection reset (or another socket error).
    Reset,
    /// Nothing arrived within the read timeout.
    Timeout,
}

/// One side of an upgraded connection, played by the test.
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Whether this side masks its frames (it plays a client).
    pub masks: bool,
    /// Whether this side has sent a close frame (set by `send_frame`; scripts that send a
    /// close with `send_raw` set it themselves).
    pub closed: bool,
}

impl RawConn {
    fn new(stream: TcpStream, leftover: Vec<u8>, masks: bool) -> RawConn {
        stream.set_read_timeout(Some(PEER_READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(PEER_READ_TIMEOUT)).unwrap();
        let _ = stream.set_nodelay(true);
        RawConn {
            stream,
            buf: leftover,
            masks,
            closed: false,
        }
    }

    /// Wraps a stream as is (no handshake): for peers that misbehave before the upgrade.
    pub fn wrap(stream: TcpStream, masks: bool) -> RawConn {
        RawConn::new(stream, Vec::new(), masks)
    }

    /// The server side of a connection a wshandle client opened: answers the upgrade.
    pub fn server(mut stream: TcpStream) -> io::Result<RawConn> {
        stream.set_read_timeout(Some(PEER_READ_TIMEOUT))?;
        let (head, rest) = read_head(&mut stream, Vec::new(), 64 * 1024)?;
        let key = header(&head, "sec-websocket-key")
            .ok_or_else(|| io::Error::other("no Sec-WebSocket-Key"))?;
        stream.write_all(upgrade_response(&key).as_bytes())?;
        Ok(RawConn::new(stream, rest, false))
    }

    /// A client of a wshandle listener on `port`, upgraded on `path`.
    pub fn client(port: u16, path: &str) -> io::Result<RawConn> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(PEER_READ_TIMEOUT))?;
        stream.write_all(&upgrade_request(path))?;
        let (head, rest) = read_head(&mut stream, Vec::new(), 64 * 1024)?;
        if !head.starts_with("HTTP/1.1 101") {
            return Err(io::Error::other(format!("upgrade refused: {head}")));
        }
        Ok(RawConn::new(stream, rest, true))
    }

    /// A fresh masking key when this side masks.
    pub fn key(&self) -> Option<[u8; 4]> {
        static KEYS: AtomicU64 = AtomicU64::new(0x2545_F491_4F6C_DD1D);
        self.masks.then(|| {
            let k = Rng::new(KEYS.fetch_add(1, Ordering::Relaxed)).next_u64();
            (k as u32).to_le_bytes()
        })
    }

    /// Encodes a frame the way this side sends them (masked when it plays a client).
    pub fn frame(&self, opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        encode(opcode, fin, payload, self.key())
    }

    pub fn send_frame(&mut self, opcode: u8, fin: bool, payload: &[u8]) -> io::Result<()> {
        self.closed |= opcode == OP_CLOSE;
        let bytes = self.frame(opcode, fin, payload);
        self.stream.write_all(&bytes)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends `bytes` one at a time, `gap` apart.
    pub fn trickle(&mut self, bytes: &[u8], gap: Duration) -> io::Result<()> {
        for b in bytes {
            self.stream.write_all(&[*b])?;
            std::thread::sleep(gap);
        }
        Ok(())
    }

    fn fill(&mut self, n: usize) -> Result<(), End> {
        let mut chunk = [0u8; 64 * 1024];
        while self.buf.len() < n {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(if self.buf.is_empty() {
                        End::Eof
                    } else {
                        End::Truncated
                    })
                }
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Err(End::Timeout)
                }
                Err(_) => return Err(End::Reset),
            }
        }
        Ok(())
    }

    /// Reads one frame.
    pub fn read_frame(&mut self) -> Result<Frame, End> {
        let at_start = |e: End, got: bool| {
            if got && e == End::Eof {
                End::Truncated
            } else {
                e
            }
        };
        self.fill(2)?;
        let (b0, b1) = (self.buf[0], self.buf[1]);
        let mut need = 2;
        let mut len = u64::from(b1 & 0x7F);
        if len == 126 {
            self.fill(4).map_err(|e| at_start(e, true))?;
            len = u64::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
            need = 4;
        } else if len == 127 {
            self.fill(10).map_err(|e| at_start(e, true))?;
            len = u64::from_be_bytes(self.buf[2..10].try_into().unwrap());
            need = 10;
        }
        let masked = b1 & 0x80 != 0;
        let mut key = [0u8; 4];
        if masked {
            self.fill(need + 4).map_err(|e| at_start(e, true))?;
            key.copy_from_slice(&self.buf[need..need + 4]);
            need += 4;
        }
        if len > MAX_PEER_PAYLOAD {
            return Err(End::Reset); // the library never sends this much in one frame here
        }
        let total = need + len as usize;
        self.fill(total).map_err(|e| at_start(e, true))?;
        let mut payload: Vec<u8> = self.buf[need..total].to_vec();
        self.buf.drain(..total);
        if masked {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        Ok(Frame {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 7,
            opcode: b0 & 0x0F,
            masked,
            payload,
        })
    }

    /// Reads frames until the connection ends; answers nothing.
    pub fn read_all(&mut self) -> (Vec<Frame>, End) {
        let mut frames = Vec::new();
        loop {
            match self.read_frame() {
                Ok(f) => frames.push(f),
                Err(end) => return (frames, end),
            }
        }
    }

    /// Ends the connection with a TCP RST (SO_LINGER 0).
    pub fn reset(self) {
        let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        drop(self.stream);
    }
}

/// Reads an HTTP head (up to CRLFCRLF) of at most `max` bytes; returns it and what followed.
pub fn read_head(s: &mut TcpStream, mut buf: Vec<u8>, max: usize) -> io::Result<(String, Vec<u8>)> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).into_owned();
            return Ok((head, buf[i + 4..].to_vec()));
        }
        if buf.len() > max {
            return Err(io::Error::other("head too long"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A header's value from an HTTP head, by case-insensitive name.
pub fn header(head: &str, name: &str) -> Option<String> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

pub fn accept_key(key: &str) -> String {
    tungstenite::handshake::derive_accept_key(key.as_bytes())
}

pub fn upgrade_response(key: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
}

pub fn upgrade_request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// An in-process TCP server on 127.0.0.1 that hands every accepted stream (before any
/// handshake) to `handler` on its own thread. Stops accepting when dropped; connection
/// threads end by themselves (their sockets have read timeouts).
pub struct RawServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RawServer {
    pub fn start<F>(handler: F) -> RawServer
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(false).unwrap();
                            let _ = s.set_read_timeout(Some(PEER_READ_TIMEOUT));
                            let h = handler.clone();
                            std::thread::spawn(move || h(s));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        };
        RawServer {
            port,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, path)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A small seeded PRNG (SplitMix64): reproducible runs without new dependencies.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `num`/`den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A seed from `WSHANDLE_*_SEED` (decimal or 0x-hex), or a fresh one from the clock.
pub fn seed_from_env(var: &str) -> u64 {
    match std::env::var(var) {
        Ok(s) => {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => s.parse(),
            }
            .unwrap_or_else(|_| panic!("{var}={s} is not a number"))
        }
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

/// A number from the environment, or `default`.
pub fn env_num(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// This process's resident set size in bytes (/proc/self/statm).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

/// Writes one line straight to the test's stderr, past cargo test's output capture, so that
/// figures (executions per second, rounds) show in the test command's log.
pub fn report(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Aborts the test process when a round makes no progress for `limit`, so that a hang or a
/// deadlock fails the run with the round's seed instead of holding CI until its timeout.
pub struct Watchdog {
    beat: Arc<AtomicU64>,
    seed: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts watching; `what` names the test in the message.
    pub fn start(what: &'static str, limit: Duration) -> Watchdog {
        let (beat, seed, done) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let thread = {
            let (beat, seed, done) = (beat.clone(), seed.clone(), done.clone());
            std::thread::spawn(move || {
                let mut last = (u64::MAX, std::time::Instant::now());
                while !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                    let b = beat.load(Ordering::SeqCst);
                    if b != last.0 {
                        last = (b, std::time::Instant::now());
                    } else if last.1.elapsed() > limit {
                        report(&format!(
                            "{what}: round {b} (seed {:#x}) has run for {} s: a hang or a deadlock",
                            seed.load(Ordering::SeqCst),
                            limit.as_secs()
                        ));
                        std::process::abort();
                    }
                }
            })
        };
        Watchdog {
            beat,
            seed,
            done,
            thread: Some(thread),
        }
    }

    /// Round `round`, with seed `seed`, begins.
    pub fn beat(&self, round: u64, seed: u64) {
        self.seed.store(seed, Ordering::SeqCst);
        self.beat.store(round, Ordering::SeqCst);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
