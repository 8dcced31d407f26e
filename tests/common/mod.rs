//! Shared test support: real peers over loopback (Python `websockets` and a raw-socket peer,
//! installed by scripts/setup-test-env.sh), and small wrappers over the C API.
#![allow(dead_code)]

pub mod asyncq;
mod certs;
mod cprog;
mod hostile;
pub mod raw;
#[allow(unused_imports)]
pub use certs::PKI;
#[allow(unused_imports)]
pub use cprog::*;
#[allow(unused_imports)]
pub use hostile::*;

use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use serde_json::Value;
pub use wshandle::ffi::*;

/// How long any peer lives before it exits by itself.
const PEER_DEADLINE_S: &str = "120";
/// How long a test waits for a peer's event.
pub const EVENT_WAIT: Duration = Duration::from_secs(20);

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The test venv's python, created on first use by the repo's own set-up script.
pub static PYTHON: Lazy<PathBuf> = Lazy::new(|| {
    let out = Command::new("bash")
        .arg(repo().join("scripts/setup-test-env.sh"))
        .arg("--print-python")
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/setup-test-env.sh");
    assert!(out.status.success(), "scripts/setup-test-env.sh failed");
    let text = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(text.lines().last().expect("python path").trim())
});

/// Where Node's `ws` package was installed by the set-up script (for `NODE_PATH`).
pub static NODE_PATH: Lazy<PathBuf> = Lazy::new(|| {
    let out = Command::new("bash")
        .arg(repo().join("scripts/setup-test-env.sh"))
        .arg("--print-node-path")
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/setup-test-env.sh");
    assert!(out.status.success(), "scripts/setup-test-env.sh failed");
    let text = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(text.lines().last().expect("node path").trim())
});

/// The command that runs one of tests/peers' scripts: `node` (with `NODE_PATH`) for `.mjs`,
/// the test venv's python otherwise.
pub fn peer_command(program: &str) -> Command {
    let script = repo().join("tests/peers").join(program);
    let mut cmd = if program.ends_with(".mjs") {
        let mut c = Command::new("node");
        c.env("NODE_PATH", &*NODE_PATH);
        c
    } else {
        Command::new(&*PYTHON)
    };
    cmd.arg(script);
    cmd
}

/// A peer process on 127.0.0.1, killed (by its PID) when dropped.
pub struct Peer {
    child: Child,
    pub port: u16,
    events: Receiver<Value>,
    pub seen: Vec<Value>,
}

impl Peer {
    /// `tests/peers/raw_server.py --mode MODE`.
    pub fn raw(mode: &str, extra: &[&str]) -> Peer {
        Peer::start("raw_server.py", mode, extra)
    }
    /// `tests/peers/ws_server.py --mode MODE` (the `websockets` library).
    pub fn ws(mode: &str, extra: &[&str]) -> Peer {
        Peer::start("ws_server.py", mode, extra)
    }

    fn start(script: &str, mode: &str, extra: &[&str]) -> Peer {
        let mut child = Command::new(&*PYTHON)
            .arg(repo().join("tests/peers").join(script))
            .args(["--mode", mode, "--deadline", PEER_DEADLINE_S])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start peer");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("peer printed nothing").unwrap();
        let port = first
            .strip_prefix("PORT ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        Peer {
            child,
            port,
            events: rx,
            seen: Vec::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, path)
    }

    /// Waits for the next event named `name`; earlier events are kept in `seen`.
    pub fn event(&mut self, name: &str) -> Value {
        let until = Instant::now() + EVENT_WAIT;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if v["event"] == name {
                        return v;
                    }
                }
                Err(_) => panic!("peer sent no {name:?} event; seen: {:?}", self.seen),
            }
        }
    }

    /// The frames (opcode, fin, len, head) the raw peer printed before the event `until`.
    pub fn frames_until(&mut self, until: &str) -> Vec<(u64, bool, u64, String)> {
        self.event(until);
        self.seen
            .iter()
            .filter(|v| v["event"] == "frame")
            .map(|v| {
                (
                    v["opcode"].as_u64().unwrap(),
                    v["fin"].as_bool().unwrap(),
                    v["len"].as_u64().unwrap(),
                    v["head"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This thread's last error detail.
pub fn last_error() -> String {
    let n = ws_last_error_message(std::ptr::null_mut(), 0);
    let mut buf = vec![0u8; n + 1];
    ws_last_error_message(buf.as_mut_ptr().cast(), buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Asserts a result code, showing names and the detail on failure.
#[macro_export]
macro_rules! assert_code {
    ($call:expr, $want:expr) => {{
        let got = $call;
        let want = $want;
        assert!(
            got == want,
            "{} returned {} (detail: {}), expected {}",
            stringify!($call),
            wshandle::error::name(got),
            $crate::common::last_error(),
            wshandle::error::name(want)
        );
    }};
}

pub fn open(url: &str) -> ws_handle {
    let url = CString::new(url).unwrap();
    let mut h = 0;
    assert_code!(ws_open(url.as_ptr(), &mut h), WS_OK);
    h
}

/// The local port of a connection or listener (`WS_OPTION_LOCAL_PORT`).
/// A listener on `url` (`ws_listen`) and its port.
pub fn listen(url: &str) -> (ws_handle, u16) {
    let url = CString::new(url).unwrap();
    let mut l = 0;
    assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
    (l, local_port(l))
}

pub fn local_port(h: ws_handle) -> u16 {
    let mut port = 0u32;
    let mut len = 4usize;
    assert_code!(
        ws_query_option(
            h,
            WS_OPTION_LOCAL_PORT,
            (&mut port as *mut u32).cast(),
            &mut len
        ),
        WS_OK
    );
    port as u16
}

pub fn set_u32(h: ws_handle, opt: u32, v: u32) {
    assert_code!(ws_set_option(h, opt, (&v as *const u32).cast(), 4), WS_OK);
}

pub fn set_u64(h: ws_handle, opt: u32, v: u64) {
    assert_code!(ws_set_option(h, opt, (&v as *const u64).cast(), 8), WS_OK);
}

/// Opens and connects, with every timeout short enough that no test can hang.
pub fn connect(url: &str) -> ws_handle {
    let h = open(url);
    set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 10_000);
    set_u32(h, WS_OPTION_SEND_TIMEOUT, 20_000);
    set_u32(h, WS_OPTION_CLOSE_TIMEOUT, 10_000);
    assert_code!(ws_connect(h), WS_OK);
    h
}

pub fn send(h: ws_handle, ty: u32, data: &[u8]) -> ws_error {
    ws_send(h, ty, data.as_ptr().cast(), data.len())
}

pub fn recv(h: ws_handle, buf: &mut [u8]) -> (ws_error, usize, u32) {
    let (mut n, mut ty) = (usize::MAX, u32::MAX);
    let code = ws_receive(h, buf.as_mut_ptr().cast(), buf.len(), &mut n, &mut ty);
    (code, n, ty)
}

/// Receives one whole message (or the close), asserting every piece is `WS_OK`.
pub fn recv_message(h: ws_handle) -> (Vec<u8>, u32) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut msg = Vec::new();
    loop {
        let (code, n, ty) = recv(h, &mut buf);
        assert_code!(code, WS_OK);
        msg.extend_from_slice(&buf[..n]);
        if ty != WS_BUFFER_BINARY_FRAGMENT && ty != WS_BUFFER_UTF8_FRAGMENT {
            return (msg, ty);
        }
    }
}

pub fn state(h: ws_handle) -> u32 {
    let mut s = u32::MAX;
    assert_code!(ws_query_state(h, &mut s), WS_OK);
    s
}

pub fn close_status(h: ws_handle) -> (u16, Vec<u8>) {
    let mut status = 0u16;
    let mut reason = [0u8; 123];
    let mut used = 0usize;
    assert_code!(
        ws_query_close_status(
            h,
            &mut status,
            reason.as_mut_ptr().cast(),
            reason.len(),
            &mut used
        ),
        WS_OK
    );
    (status, reason[..used].to_vec())
}

pub fn close(h: ws_handle, status: u16, reason: &[u8]) -> ws_error {
    ws_close(h, status, reason.as_ptr().cast(), reason.len())
}

pub fn shutdown(h: ws_handle, status: u16, reason: &[u8]) -> ws_error {
    ws_shutdown(h, status, reason.as_ptr().cast(), reason.len())
}

pub fn gettid() -> i32 {
    // SAFETY: no arguments.
    unsafe { libc::gettid() }
}

/// Waits until thread `tid` of this process is blocked in poll or epoll (no sleeping
/// guesswork: the kernel says which system call the thread is in).
pub fn wait_blocked(tid: i32) {
    let path = format!("/proc/self/task/{tid}/syscall");
    let until = Instant::now() + EVENT_WAIT;
    loop {
        if let Ok(s) = std::fs::read_to_string(&path) {
            let nr: i64 = s
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(-1);
            if [
                libc::SYS_poll,
                libc::SYS_ppoll,
                libc::SYS_epoll_wait,
                libc::SYS_epoll_pwait,
            ]
            .contains(&nr)
            {
                return;
            }
        }
        assert!(Instant::now() < until, "thread {tid} never blocked in poll");
        std::thread::yield_now();
    }
}

/// Runs `f` on a new thread and returns once that thread is blocked inside the library.
pub fn spawn_blocked<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        tx.send(gettid()).unwrap();
        f()
    });
    wait_blocked(rx.recv().unwrap());
    t
}
