//! Helpers for the asynchronous mode's tests: a completion queue whose waits are all bounded,
//! checks of completion records, a blocking server thread and an asynchronous client.

use super::*;
use crate::assert_code;
use std::time::{Duration, Instant};

/// A completion queue with helpers that keep every wait bounded.
pub struct Queue(pub ws_handle);

impl Queue {
    pub fn new() -> Queue {
        let mut q = 0;
        assert_code!(ws_queue_create(&mut q), WS_OK);
        Queue(q)
    }

    pub fn bind(&self, h: ws_handle) {
        assert_code!(
            ws_set_option(
                h,
                WS_OPTION_COMPLETION_QUEUE,
                (&self.0 as *const u64).cast(),
                8
            ),
            WS_OK
        );
    }

    /// Up to `max` completions within `ms` (possibly none).
    pub fn poll(&self, max: usize, ms: u32) -> Vec<ws_completion> {
        let mut out = vec![zeroed(); max];
        let mut n = usize::MAX;
        let code = ws_queue_wait(self.0, out.as_mut_ptr(), max, &mut n, ms);
        if code == WS_ERROR_TIMEOUT {
            assert_eq!(n, 0);
            return Vec::new();
        }
        assert_code!(code, WS_OK);
        assert!(n >= 1 && n <= max);
        out.truncate(n);
        out
    }

    /// The next completion, within 10 s.
    pub fn next(&self) -> ws_completion {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(c) = self.poll(1, 100).pop() {
                return c;
            }
            assert!(Instant::now() < deadline, "no completion within 10 s");
        }
    }

    /// Completions until `n` have arrived (10 s at most).
    pub fn take(&self, n: usize) -> Vec<ws_completion> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < n {
            got.extend(self.poll(n - got.len(), 100));
            assert!(
                Instant::now() < deadline,
                "only {} of {n} completions",
                got.len()
            );
        }
        got
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        ws_close_handle(self.0);
    }
}

pub fn zeroed() -> ws_completion {
    ws_completion {
        handle: 0,
        context: std::ptr::null_mut(),
        status: 0,
        io: ws_web_socket_status {
            bytes_transferred: 0,
            buffer_type: 0,
        },
        result: ws_async_result {
            operation: 0,
            error: 0,
        },
        accepted: 0,
    }
}

pub fn is(c: &ws_completion, h: ws_handle, status: u32) {
    assert_eq!(
        (c.handle, c.status),
        (h, status),
        "completion {c:?}: expected status {status:#x} for handle {h:#x}"
    );
}

pub fn io(c: &ws_completion, h: ws_handle, status: u32, bytes: usize, ty: u32) {
    is(c, h, status);
    assert_eq!(
        (c.io.bytes_transferred, c.io.buffer_type),
        (bytes, ty),
        "{c:?}"
    );
}

pub fn failed(c: &ws_completion, h: ws_handle, op: u32, error: ws_error) {
    is(c, h, WS_CALLBACK_STATUS_REQUEST_ERROR);
    assert_eq!(
        (c.result.operation, wshandle::error::name(c.result.error)),
        (op, wshandle::error::name(error)),
        "{c:?}"
    );
}

/// A blocking server on its own thread: accepts one client and runs `f` on it.
pub fn blocking_server(
    f: impl FnOnce(ws_handle) + Send + 'static,
) -> (u16, std::thread::JoinHandle<()>) {
    let (l, port) = listen("ws://127.0.0.1:0/");
    set_u32(l, WS_OPTION_RECEIVE_TIMEOUT, 10_000);
    set_u32(l, WS_OPTION_CLOSE_TIMEOUT, 10_000);
    let t = std::thread::spawn(move || {
        let mut h = 0;
        assert_code!(ws_accept(l, &mut h), WS_OK);
        ws_close_handle(l);
        f(h);
        ws_close_handle(h);
    });
    (port, t)
}

/// An asynchronous client connected through `q` to `port`.
pub fn async_client(q: &Queue, port: u16) -> ws_handle {
    let c = open(&format!("ws://127.0.0.1:{port}/"));
    q.bind(c);
    assert_code!(ws_connect(c), WS_ERROR_IO_PENDING);
    is(&q.next(), c, WS_CALLBACK_STATUS_CONNECT_COMPLETE);
    c
}

pub fn receive(h: ws_handle, buf: &mut [u8]) -> ws_error {
    ws_receive(
        h,
        buf.as_mut_ptr().cast(),
        buf.len(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    )
}
