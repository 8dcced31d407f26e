//! Boost.Beast's synchronous client (benches/beast_client.cpp, built by benches/run.sh)
//! against wshandle's server.

use std::process::Command;
use std::thread;

use serde_json::Value;

use crate::util::*;

/// Runs the Beast client in `mode` against a wshandle server thread that does `serve` on
/// the accepted connection; returns the client's JSON answer.
fn run(
    exe: &str,
    mode: &str,
    a: usize,
    b: usize,
    serve: impl FnOnce(ws_handle) + Send + 'static,
) -> Value {
    let (l, port) = listen();
    let server = thread::spawn(move || {
        let s = accept(l);
        ws_close_handle(l);
        serve(s);
        // answer the client's close
        let mut buf = vec![0u8; 65536];
        while recv(s, &mut buf).1 != WS_BUFFER_CLOSE {}
        let _ = ws_close(s, 1000, std::ptr::null(), 0);
        ws_close_handle(s);
    });
    let out = Command::new(exe)
        .args([mode, &port.to_string(), &a.to_string(), &b.to_string()])
        .output()
        .expect("run beast_client");
    assert!(
        out.status.success(),
        "beast_client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.join().unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits for `total` bytes, then says "d".
fn drain_bytes(total: usize) -> impl FnOnce(ws_handle) + Send {
    move |s| {
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0;
        while got < total {
            got += recv(s, &mut buf).0;
        }
        send(s, WS_BUFFER_UTF8_MESSAGE, b"d");
    }
}

pub fn bulk_up(exe: &str) -> f64 {
    let v = run(
        exe,
        "bulk-up",
        crate::scenarios::BULK_TOTAL,
        crate::scenarios::BULK_MSG,
        drain_bytes(crate::scenarios::BULK_TOTAL),
    );
    v["gib_per_s"].as_f64().unwrap()
}

pub fn small_send(exe: &str, size: usize, n: usize) -> f64 {
    let v = run(exe, "small-send", size, n, move |s| {
        let mut buf = vec![0u8; 65536];
        for _ in 0..n {
            recv_message(s, &mut buf);
        }
        send(s, WS_BUFFER_UTF8_MESSAGE, b"d");
    });
    v["msgs_per_s"].as_f64().unwrap()
}

pub fn pingpong(exe: &str, size: usize, iters: usize) -> (f64, f64) {
    let v = run(exe, "pingpong", size, iters, move |s| {
        let mut buf = vec![0u8; 65536];
        for _ in 0..iters {
            let n = recv_message(s, &mut buf);
            send(s, WS_BUFFER_BINARY_MESSAGE, &buf[..n]);
        }
    });
    (v["p50_us"].as_f64().unwrap(), v["p99_us"].as_f64().unwrap())
}
