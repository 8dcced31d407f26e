//! Helpers for the asynchronous mode's tests: a completion queue whose waits are all bounded,
//! the same interface over status callbacks (so one test runs in both modes), checks of
//! completion records, a blocking server thread and an asynchronous client.

use super::*;
use crate::assert_code;
use std::collections::{HashMap, VecDeque};
use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex};
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
        let mut out = vec![ws_completion::default(); max];
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
}

impl Drop for Queue {
    fn drop(&mut self) {
        ws_close_handle(self.0);
    }
}

/// `both_modes!(f, ...)` runs `f(&Completions)` as two tests, `f::queue` (completions from
/// ws_queue_wait on the test's thread) and `f::callbacks` (from a status callback on the
/// library's I/O threads).
#[macro_export]
macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn queue() {
                super::$name(&$crate::common::asyncq::Completions::queue());
            }
            #[test]
            fn callbacks() {
                super::$name(&$crate::common::asyncq::Completions::callbacks());
            }
        }
    )*};
}

/// Where a test's completions come from: a completion queue (`ws_queue_wait` on the test's
/// thread) or status callbacks (the library's I/O threads, recorded as the queue's records).
/// The same test body runs against both.
pub enum Completions {
    Queue(Queue),
    Callbacks(Arc<Sink>),
}

impl Completions {
    pub fn queue() -> Completions {
        Completions::Queue(Queue::new())
    }

    pub fn callbacks() -> Completions {
        Completions::Callbacks(Arc::new(Sink::default()))
    }

    /// Binds `h` (before its first operation) to this queue, or gives it the recording callback.
    pub fn bind(&self, h: ws_handle) {
        match self {
            Completions::Queue(q) => q.bind(h),
            Completions::Callbacks(sink) => {
                SINKS
                    .lock()
                    .unwrap()
                    .get_or_insert_with(HashMap::new)
                    .insert(h, sink.clone());
                assert_code!(ws_set_status_callback(h, Some(record)), WS_OK);
            }
        }
    }

    /// Queue mode: nothing happens between two `poll`s (no library thread runs the I/O).
    pub fn is_queue(&self) -> bool {
        matches!(self, Completions::Queue(_))
    }

    /// The completion queue's handle (queue mode only).
    pub fn queue_handle(&self) -> ws_handle {
        match self {
            Completions::Queue(q) => q.0,
            Completions::Callbacks(_) => panic!("a callback-mode test has no queue"),
        }
    }

    /// Up to `max` completions within `ms` (possibly none).
    pub fn poll(&self, max: usize, ms: u32) -> Vec<ws_completion> {
        match self {
            Completions::Queue(q) => q.poll(max, ms),
            Completions::Callbacks(sink) => sink.poll(max, ms),
        }
    }

    /// The next completion, within 10 s.
    pub fn next(&self) -> ws_completion {
        self.take(1)[0]
    }

    /// Completions until `n` have arrived (10 s at most).
    pub fn take(&self, n: usize) -> Vec<ws_completion> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < n {
            got.extend(self.poll(n - got.len(), 100));
            assert!(
                Instant::now() < deadline,
                "only {} of {n} completions: {got:?}",
                got.len()
            );
        }
        got
    }
}

impl Drop for Completions {
    fn drop(&mut self) {
        if let Completions::Callbacks(sink) = self {
            let faults = std::mem::take(&mut *sink.faults.lock().unwrap());
            if !std::thread::panicking() {
                assert!(faults.is_empty(), "{faults:?}");
            }
        }
    }
}

/// A completion record made from a callback's arguments (it holds the context pointer).
#[derive(Clone, Copy)]
struct Record(ws_completion);
// SAFETY: the context pointer is only compared and printed, never dereferenced.
unsafe impl Send for Record {}

/// The completions the recording callback delivered for the handles of one test.
#[derive(Default)]
pub struct Sink {
    records: Mutex<VecDeque<Record>>,
    arrived: Condvar,
    /// Broken rules seen by the callback (checked when the test's `Completions` goes).
    faults: Mutex<Vec<String>>,
    /// Per handle: a callback is running for it now.
    running: Mutex<HashMap<ws_handle, bool>>,
}

impl Sink {
    fn poll(&self, max: usize, ms: u32) -> Vec<ws_completion> {
        let g = self.records.lock().unwrap();
        let (mut g, _) = self
            .arrived
            .wait_timeout_while(g, Duration::from_millis(ms.into()), |r| r.is_empty())
            .unwrap();
        let n = g.len().min(max);
        g.drain(..n).map(|r| r.0).collect()
    }

    fn fault(&self, f: String) {
        self.faults.lock().unwrap().push(f);
    }
}

/// Which test's sink each callback-mode handle reports to.
static SINKS: Mutex<Option<HashMap<ws_handle, Arc<Sink>>>> = Mutex::new(None);

/// The recording status callback: checks that it runs on a library I/O thread (never inside
/// the call that started the operation) and never twice at once for one handle, and turns its
/// arguments into the record `ws_queue_wait` would have returned.
unsafe extern "C" fn record(
    h: ws_handle,
    context: *mut c_void,
    status: u32,
    info: *mut c_void,
    info_len: usize,
) {
    let Some(sink) = SINKS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(&h).cloned())
    else {
        eprintln!("a completion for {h:#x}, which no test bound");
        std::process::abort();
    };
    let thread = std::thread::current();
    if !thread.name().is_some_and(|n| n.starts_with("wshandle-io-")) {
        sink.fault(format!(
            "{status:#x} for {h:#x} on thread {:?}",
            thread.name()
        ));
    }
    if sink.running.lock().unwrap().insert(h, true) == Some(true) {
        sink.fault(format!("two callbacks at once for {h:#x}"));
    }
    let mut c = ws_completion {
        handle: h,
        context,
        status,
        ..Default::default()
    };
    match status {
        WS_CALLBACK_STATUS_READ_COMPLETE | WS_CALLBACK_STATUS_WRITE_COMPLETE => {
            assert_eq!(info_len, std::mem::size_of::<ws_web_socket_status>());
            // SAFETY: these statuses' info is a ws_web_socket_status.
            c.io = unsafe { *info.cast::<ws_web_socket_status>() };
        }
        WS_CALLBACK_STATUS_REQUEST_ERROR => {
            assert_eq!(info_len, std::mem::size_of::<ws_async_result>());
            // SAFETY: REQUEST_ERROR's info is a ws_async_result.
            c.result = unsafe { *info.cast::<ws_async_result>() };
        }
        WS_CALLBACK_STATUS_ACCEPT_COMPLETE => {
            assert_eq!(info_len, 8);
            // SAFETY: ACCEPT_COMPLETE's info is the new handle, which inherits the callback.
            c.accepted = unsafe { *info.cast::<ws_handle>() };
            SINKS
                .lock()
                .unwrap()
                .as_mut()
                .unwrap()
                .insert(c.accepted, sink.clone());
        }
        _ if info.is_null() && info_len == 0 => {}
        _ => sink.fault(format!(
            "{status:#x} for {h:#x} with info of {info_len} bytes"
        )),
    }
    if status == WS_CALLBACK_STATUS_HANDLE_CLOSING {
        SINKS.lock().unwrap().as_mut().unwrap().remove(&h);
    }
    sink.running.lock().unwrap().insert(h, false);
    sink.records.lock().unwrap().push_back(Record(c));
    sink.arrived.notify_all();
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
pub fn async_client(q: &Completions, port: u16) -> ws_handle {
    let c = open(&format!("ws://127.0.0.1:{port}/"));
    q.bind(c);
    assert_code!(ws_connect(c), WS_ERROR_IO_PENDING);
    is(&q.next(), c, WS_CALLBACK_STATUS_CONNECT_COMPLETE);
    c
}

/// With a receive into `buf` started, sends `data` as `ty`: the send completes first, then the
/// receive, with `want` bytes of type `want_ty` (an echo, or the peer's answer).
pub fn send_then_receive(
    q: &Completions,
    h: ws_handle,
    buf: &mut [u8],
    (ty, data): (u32, &[u8]),
    (want, want_ty): (usize, u32),
) {
    assert_code!(receive(h, buf), WS_ERROR_IO_PENDING);
    assert_code!(send(h, ty, data), WS_ERROR_IO_PENDING);
    let got = q.take(2);
    io(
        &got[0],
        h,
        WS_CALLBACK_STATUS_WRITE_COMPLETE,
        data.len(),
        ty,
    );
    io(&got[1], h, WS_CALLBACK_STATUS_READ_COMPLETE, want, want_ty);
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
