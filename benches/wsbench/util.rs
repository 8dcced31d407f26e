//! Small helpers shared by the benchmark scenarios: wshandle through its C API, statistics.

use std::ffi::CString;
use std::time::Duration;

pub use wshandle::ffi::*;

pub fn check(code: ws_error, what: &str) {
    if code != WS_OK {
        let n = ws_last_error_message(std::ptr::null_mut(), 0);
        let mut buf = vec![0u8; n + 1];
        ws_last_error_message(buf.as_mut_ptr().cast(), buf.len());
        panic!(
            "{what}: {} ({})",
            wshandle::error::name(code),
            String::from_utf8_lossy(&buf[..n])
        );
    }
}

pub fn set_u32(h: ws_handle, opt: u32, v: u32) {
    check(
        ws_set_option(h, opt, (&v as *const u32).cast(), 4),
        "ws_set_option",
    );
}

pub fn connect(url: &str) -> ws_handle {
    let url = CString::new(url).unwrap();
    let mut h = 0;
    check(ws_open(url.as_ptr(), &mut h), "ws_open");
    set_u32(h, WS_OPTION_KEEPALIVE_INTERVAL, 0);
    check(ws_connect(h), "ws_connect");
    h
}

/// A wshandle listener on 127.0.0.1 and its port.
pub fn listen() -> (ws_handle, u16) {
    let url = CString::new("ws://127.0.0.1:0/").unwrap();
    let mut l = 0;
    check(ws_listen(url.as_ptr(), &mut l), "ws_listen");
    let mut port = 0u32;
    let mut len = 4usize;
    check(
        ws_query_option(
            l,
            WS_OPTION_LOCAL_PORT,
            (&mut port as *mut u32).cast(),
            &mut len,
        ),
        "local port",
    );
    (l, port as u16)
}

pub fn accept(l: ws_handle) -> ws_handle {
    let mut h = 0;
    check(ws_accept(l, &mut h), "ws_accept");
    set_u32(h, WS_OPTION_KEEPALIVE_INTERVAL, 0);
    h
}

pub fn send(h: ws_handle, ty: u32, data: &[u8]) {
    check(ws_send(h, ty, data.as_ptr().cast(), data.len()), "ws_send");
}

/// One ws_receive: (bytes, buffer type).
pub fn recv(h: ws_handle, buf: &mut [u8]) -> (usize, u32) {
    let (mut n, mut ty) = (0usize, 0u32);
    check(
        ws_receive(h, buf.as_mut_ptr().cast(), buf.len(), &mut n, &mut ty),
        "ws_receive",
    );
    (n, ty)
}

/// Receives one whole message, discarding it; returns its size.
pub fn recv_message(h: ws_handle, buf: &mut [u8]) -> usize {
    let mut total = 0;
    loop {
        let (n, ty) = recv(h, buf);
        total += n;
        if ty != WS_BUFFER_BINARY_FRAGMENT && ty != WS_BUFFER_UTF8_FRAGMENT {
            return total;
        }
    }
}

/// Median, min and max of samples.
pub fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mid = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    (mid, v[0], v[v.len() - 1])
}

/// A percentile (0..=100) of latencies.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p / 100.0).round() as usize;
    sorted[i]
}
