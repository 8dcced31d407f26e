//! One measurement per call: each scenario for each contender, on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::{Bytes, Message};

use crate::util::*;

pub const BULK_TOTAL: usize = 1 << 30;
pub const BULK_MSG: usize = 1 << 20;

fn raw_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_nodelay(true).unwrap();
    s.set_nodelay(true).unwrap();
    (c, s)
}

/// A wshandle client and server connected to each other.
pub fn ws_pair() -> (ws_handle, ws_handle) {
    let (l, port) = listen();
    let t = thread::spawn(move || accept(l));
    let c = connect(&format!("ws://127.0.0.1:{port}/"));
    let s = t.join().unwrap();
    ws_close_handle(l);
    (c, s)
}

/// CPU seconds (user + system) this process has used so far, all threads.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Bulk: GiB/s for 1 GiB as 1 MiB messages (or 1 MiB writes), in the given direction, and
/// the CPU seconds both ends used per GiB.
pub fn bulk_ws(up: bool) -> (f64, f64) {
    let (c, s) = ws_pair();
    let (tx, rx) = if up { (c, s) } else { (s, c) };
    let receiver = thread::spawn(move || {
        let mut buf = vec![0u8; BULK_MSG];
        let mut total = 0;
        while total < BULK_TOTAL {
            total += recv(rx, &mut buf).0;
        }
        Instant::now()
    });
    let data = vec![0xA5u8; BULK_MSG];
    let cpu = cpu_seconds();
    let start = Instant::now();
    for _ in 0..BULK_TOTAL / BULK_MSG {
        send(tx, WS_BUFFER_BINARY_MESSAGE, &data);
    }
    let end = receiver.join().unwrap();
    let cpu = cpu_seconds() - cpu;
    ws_close_handle(c);
    ws_close_handle(s);
    (gib_per_s(BULK_TOTAL, end - start), cpu / gib(BULK_TOTAL))
}

fn gib(bytes: usize) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

pub fn bulk_raw() -> (f64, f64) {
    let (mut c, mut s) = raw_pair();
    let receiver = thread::spawn(move || {
        let mut buf = vec![0u8; BULK_MSG];
        let mut total = 0;
        while total < BULK_TOTAL {
            total += s.read(&mut buf).unwrap();
        }
        Instant::now()
    });
    let data = vec![0xA5u8; BULK_MSG];
    let cpu = cpu_seconds();
    let start = Instant::now();
    for _ in 0..BULK_TOTAL / BULK_MSG {
        c.write_all(&data).unwrap();
    }
    let end = receiver.join().unwrap();
    let cpu = cpu_seconds() - cpu;
    (gib_per_s(BULK_TOTAL, end - start), cpu / gib(BULK_TOTAL))
}

fn gib_per_s(bytes: usize, d: Duration) -> f64 {
    gib(bytes) / d.as_secs_f64()
}

/// Unbatched sends of `size`-byte messages, one call each: messages per second until the
/// receiver has them all.
pub fn small_send_ws(size: usize, n: usize) -> f64 {
    let (c, s) = ws_pair();
    let receiver = thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        for _ in 0..n {
            recv_message(s, &mut buf);
        }
        Instant::now()
    });
    let msg = vec![7u8; size];
    let start = Instant::now();
    for _ in 0..n {
        send(c, WS_BUFFER_BINARY_MESSAGE, &msg);
    }
    let end = receiver.join().unwrap();
    ws_close_handle(c);
    ws_close_handle(s);
    n as f64 / (end - start).as_secs_f64()
}

pub fn small_send_raw(size: usize, n: usize) -> f64 {
    let (mut c, mut s) = raw_pair();
    let receiver = thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        while total < size * n {
            total += s.read(&mut buf).unwrap();
        }
        Instant::now()
    });
    let msg = vec![7u8; size];
    let start = Instant::now();
    for _ in 0..n {
        c.write_all(&msg).unwrap(); // one write system call per message
    }
    let end = receiver.join().unwrap();
    n as f64 / (end - start).as_secs_f64()
}

pub fn small_send_tungstenite(size: usize, n: usize) -> f64 {
    let (l, port) = listen();
    let receiver = thread::spawn(move || {
        let s = accept(l);
        ws_close_handle(l);
        let mut buf = vec![0u8; 65536];
        for _ in 0..n {
            recv_message(s, &mut buf);
        }
        let end = Instant::now();
        ws_close_handle(s);
        end
    });
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}/"), stream).unwrap();
    let msg = Bytes::from(vec![7u8; size]);
    let start = Instant::now();
    for _ in 0..n {
        ws.send(Message::Binary(msg.clone())).unwrap(); // write + flush per message
    }
    let end = receiver.join().unwrap();
    n as f64 / (end - start).as_secs_f64()
}

/// A server that completes the upgrade by hand and then streams `n` unmasked `size`-byte
/// binary frames in large writes, so the receiver is the bottleneck.
pub fn frame_blaster(size: usize, n: usize) -> (u16, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        blast(s, size, n);
    });
    (port, t)
}

/// Answers a client's upgrade request by hand; false when the client left or sent no key.
fn upgrade_by_hand(s: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read_exact(&mut b).is_err() {
            return false;
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let Some(key) = text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    }) else {
        return false;
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
    s.write_all(response.as_bytes()).is_ok()
}

/// A server that upgrades one client by hand and then only counts bytes until it has
/// `total` (no WebSocket work: the sender is what is measured). Joins to the arrival time.
fn byte_sink(total: usize, upgrade: bool) -> (u16, thread::JoinHandle<Instant>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        assert!(!upgrade || upgrade_by_hand(&mut s), "upgrade failed");
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0;
        while got < total {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "the sender left early");
            got += n;
        }
        Instant::now()
    });
    (port, t)
}

/// Batched sends: `n` messages of `size` bytes, `per` to a `ws_send_batch` call, into a
/// byte sink: messages per second until the sink has every byte.
pub fn batch_send_ws(size: usize, per: usize, n: usize) -> f64 {
    let frame = 2 + 4 + size; // a client's masked frame of up to 125 bytes
    let (port, sink) = byte_sink(frame * n, true);
    let c = connect(&format!("ws://127.0.0.1:{port}/"));
    let msg = vec![7u8; size];
    let items: Vec<ws_batch_item> = (0..per)
        .map(|_| ws_batch_item {
            buffer_type: WS_BUFFER_BINARY_MESSAGE,
            buf: msg.as_ptr().cast(),
            len: size,
        })
        .collect();
    let start = Instant::now();
    for _ in 0..n / per {
        check(ws_send_batch(c, items.as_ptr(), per), "ws_send_batch");
    }
    let end = sink.join().unwrap();
    ws_close_handle(c);
    n as f64 / (end - start).as_secs_f64()
}

/// The same batching on raw TCP: one write of `per` messages of `size` bytes, into the same
/// byte sink.
pub fn batch_send_raw(size: usize, per: usize, n: usize) -> f64 {
    let (port, sink) = byte_sink(size * n, false);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_nodelay(true).unwrap();
    let batch = vec![7u8; size * per];
    let start = Instant::now();
    for _ in 0..n / per {
        c.write_all(&batch).unwrap();
    }
    let end = sink.join().unwrap();
    n as f64 / (end - start).as_secs_f64()
}

/// Upgrades `s` by hand, then writes `n` frames of `size` bytes (until the client leaves).
pub fn blast(mut s: TcpStream, size: usize, n: usize) {
    if !upgrade_by_hand(&mut s) {
        return;
    }
    let mut frame = Vec::new();
    wshandle::protocol::frame::write_frame(
        &mut frame,
        wshandle::protocol::frame::Opcode::Binary,
        true,
        &vec![3u8; size],
        None,
    );
    let per_batch = (65536 / frame.len()).max(1);
    let batch = frame.repeat(per_batch);
    let mut sent = 0;
    while sent < n {
        let k = per_batch.min(n - sent);
        if s.write_all(&batch[..k * frame.len()]).is_err() {
            return;
        }
        sent += k;
    }
    let mut sink = [0u8; 1024];
    let _ = s.read(&mut sink); // hold the connection until the client is done
}

/// Receiving `n` messages of `size` bytes that arrive as fast as the receiver can take them.
pub fn recv_stream_ws(size: usize, n: usize) -> f64 {
    let (port, server) = frame_blaster(size, n);
    let c = connect(&format!("ws://127.0.0.1:{port}/"));
    let mut buf = vec![0u8; 65536];
    let start = Instant::now();
    for _ in 0..n {
        recv(c, &mut buf);
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    ws_close_handle(c);
    server.join().unwrap();
    rate
}

pub fn recv_stream_tungstenite(size: usize, n: usize) -> f64 {
    let (port, server) = frame_blaster(size, n);
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}/"), stream).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        ws.read().unwrap();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(ws);
    server.join().unwrap();
    rate
}

/// Round trips of `size` bytes: sorted latencies.
pub fn pingpong_ws(size: usize, iters: usize) -> Vec<Duration> {
    let (c, s) = ws_pair();
    let echo = thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        for _ in 0..iters {
            let n = recv_message(s, &mut buf);
            send(s, WS_BUFFER_BINARY_MESSAGE, &buf[..n]);
        }
    });
    let msg = vec![1u8; size];
    let mut buf = vec![0u8; 65536];
    let mut lat = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        send(c, WS_BUFFER_BINARY_MESSAGE, &msg);
        recv_message(c, &mut buf);
        lat.push(t.elapsed());
    }
    echo.join().unwrap();
    ws_close_handle(c);
    ws_close_handle(s);
    lat.sort();
    lat
}

pub fn pingpong_raw(size: usize, iters: usize) -> Vec<Duration> {
    let (mut c, mut s) = raw_pair();
    let echo = thread::spawn(move || {
        let mut buf = vec![0u8; size];
        for _ in 0..iters {
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        }
    });
    let msg = vec![1u8; size];
    let mut buf = vec![0u8; size];
    let mut lat = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        c.write_all(&msg).unwrap();
        c.read_exact(&mut buf).unwrap();
        lat.push(t.elapsed());
    }
    echo.join().unwrap();
    lat.sort();
    lat
}

/// The time of a client's `ws_close` against a server that answers at once (median of
/// `n`, in µs).
pub fn close_ws(n: usize) -> f64 {
    let (l, port) = listen();
    let server = thread::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..n {
            let s = accept(l);
            while recv(s, &mut buf).1 != WS_BUFFER_CLOSE {}
            check(ws_close(s, 1000, std::ptr::null(), 0), "server ws_close");
            ws_close_handle(s);
        }
        ws_close_handle(l);
    });
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let c = connect(&format!("ws://127.0.0.1:{port}/"));
        let t = Instant::now();
        check(ws_close(c, 1000, std::ptr::null(), 0), "client ws_close");
        times.push(t.elapsed().as_secs_f64() * 1e6);
        ws_close_handle(c);
    }
    server.join().unwrap();
    stats(times).0
}

/// GiB/s of masking 1 MiB pieces into a reused output buffer (`append_masked`, what a client's
/// send does), or of a plain copy (`masked` false), 4 GiB in all.
pub fn mask_speed(masked: bool) -> f64 {
    let src = vec![0xA5u8; BULK_MSG];
    let mut out: Vec<u8> = Vec::with_capacity(BULK_MSG + 64);
    let mask = masked.then_some([1, 2, 3, 4]);
    let start = Instant::now();
    for i in 0..4096u64 {
        out.clear();
        wshandle::protocol::frame::append_masked(&mut out, &src, mask, i);
        std::hint::black_box(&out);
    }
    gib_per_s(4096 * BULK_MSG, start.elapsed())
}
