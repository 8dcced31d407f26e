//! A listener among slow clients (issue 10, defect 6): 1,000 clients hold partial upgrade
//! requests of 15 KB and drip 1,000 bytes a second in all, while good clients connect one by
//! one. Measured: the CPU the thread in `ws_accept` uses while that goes on (per cent of a
//! core), and a good client's handshake (TCP connect to the 101's last byte, median).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::*;

const PAD: usize = 15 * 1024;
const GOOD: usize = 20;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn raise_fd_limit(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: live rlimit structs.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        if lim.rlim_cur < need {
            lim.rlim_cur = need.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// One good client's handshake: connect, request, read the 101 head.
fn good_handshake(port: u16) -> (Duration, TcpStream) {
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(REQUEST).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the listener hung up");
        head.extend_from_slice(&buf[..n]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "));
    (t.elapsed(), s)
}

/// (listener CPU in per cent of a core, median handshake in ms) with `n` slow clients.
pub fn slow_handshakes(n: usize) -> (f64, f64) {
    raise_fd_limit(2 * n as u64 + 512);
    let (l, port) = listen();
    set_u32(l, WS_OPTION_RECEIVE_TIMEOUT, 120_000);
    // the acceptor: one ws_accept per good client; CPU from the first one's return
    let (tx, rx) = mpsc::channel();
    let acceptor = thread::spawn(move || {
        let mut start = None;
        for _ in 0..GOOD {
            let mut h = 0;
            check(ws_accept(l, &mut h), "ws_accept");
            ws_close_handle(h);
            start.get_or_insert((Instant::now(), thread_cpu()));
        }
        let (wall, cpu) = start.unwrap();
        let _ = tx.send((wall.elapsed(), thread_cpu() - cpu));
    });
    let mut slow: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let mut partial = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ".to_vec();
            partial.resize(partial.len() + PAD, b'a');
            s.write_all(&partial).unwrap();
            s
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let dripper = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut next = 0;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..10.min(slow.len()) {
                    let _ = slow[next].write_all(b"a");
                    next = (next + 1) % slow.len();
                }
                thread::sleep(Duration::from_millis(10));
            }
            slow
        })
    };
    let mut times = Vec::with_capacity(GOOD);
    for _ in 0..GOOD {
        let (t, s) = good_handshake(port);
        times.push(t);
        drop(s);
        thread::sleep(Duration::from_millis(100));
    }
    let (wall, cpu) = rx.recv().unwrap();
    acceptor.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    drop(dripper.join().unwrap());
    ws_close_handle(l);
    times.sort();
    (
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        percentile(&times, 50.0).as_secs_f64() * 1e3,
    )
}
