//! The asynchronous mode in callback mode: the library's I/O threads call a WinHTTP-shaped
//! status callback; the callback starts the next operation itself (an echo server written
//! as callbacks), one completion at a time per handle, never re-entrantly.

mod common;
use common::asyncq::Queue;
use common::*;
use std::cell::Cell;
use std::collections::HashMap;
use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// What the callbacks saw: per handle, its statuses in order; and faults.
#[derive(Default)]
struct Log {
    by_handle: HashMap<u64, Vec<u32>>,
    faults: Vec<String>,
    in_callback: HashMap<u64, bool>,
}

static LOG: Mutex<Option<Log>> = Mutex::new(None);
/// HANDLE_CLOSINGs seen, with a condition variable to wait on.
static CLOSED: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

fn wait_closed(n: usize) {
    let (m, cv) = &CLOSED;
    let g = m.lock().unwrap();
    let (g, timeout) = cv
        .wait_timeout_while(g, Duration::from_secs(10), |c| *c < n)
        .unwrap();
    assert!(!timeout.timed_out(), "only {} of {n} HANDLE_CLOSINGs", *g);
}

fn log<R>(f: impl FnOnce(&mut Log) -> R) -> R {
    f(LOG.lock().unwrap().get_or_insert_with(Log::default))
}

/// A queue a callback tries to wait on (refused on an I/O thread).
static QUEUE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Per connection: its receive buffer and its echoes in flight (oldest first).
struct Conn {
    buf: Vec<u8>,
    echoes: VecDeque<Vec<u8>>,
}

unsafe extern "C" fn on_status(
    h: ws_handle,
    ctx: *mut c_void,
    status: u32,
    info: *mut c_void,
    len: usize,
) {
    let depth = DEPTH.with(|d| {
        d.set(d.get() + 1);
        d.get()
    });
    log(|l| {
        if depth != 1 {
            l.faults.push(format!("re-entrant callback for {h:#x}"));
        }
        if l.in_callback.insert(h, true) == Some(true) {
            l.faults.push(format!("two callbacks at once for {h:#x}"));
        }
        l.by_handle.entry(h).or_default().push(status);
    });
    handle(h, ctx, status, info, len);
    log(|l| {
        l.in_callback.insert(h, false);
    });
    DEPTH.with(|d| d.set(d.get() - 1));
}

fn fault(s: String) {
    log(|l| l.faults.push(s));
}

fn handle(h: ws_handle, ctx: *mut c_void, status: u32, info: *mut c_void, len: usize) {
    match status {
        WS_CALLBACK_STATUS_ACCEPT_COMPLETE => {
            assert_eq!(len, 8);
            // SAFETY: ACCEPT_COMPLETE's info is the new handle.
            let c = unsafe { *info.cast::<ws_handle>() };
            let conn = Box::into_raw(Box::new(Conn {
                buf: vec![0; 4096],
                echoes: VecDeque::new(),
            }));
            let p = conn as *mut c_void;
            if ws_set_option(
                c,
                WS_OPTION_CONTEXT_VALUE,
                (&p as *const *mut c_void).cast(),
                8,
            ) != WS_OK
            {
                fault("context".into());
            }
            // SAFETY: just allocated; freed only at HANDLE_CLOSING
            start_receive(c, unsafe { &mut *conn });
            // a callback must not block its I/O thread in ws_queue_wait
            let mut out = [ws_completion::default(); 1];
            let mut n = 9;
            let q = QUEUE.load(std::sync::atomic::Ordering::SeqCst);
            let code = ws_queue_wait(q, out.as_mut_ptr(), 1, &mut n, 0);
            if code != WS_ERROR_INVALID_OPERATION || n != 0 {
                fault(format!("ws_queue_wait from a callback: {code}"));
            }
            // the listener accepts the next client
            let code = ws_accept(h, std::ptr::null_mut());
            if code != WS_ERROR_IO_PENDING {
                fault(format!("ws_accept from a callback: {code}"));
            }
        }
        WS_CALLBACK_STATUS_READ_COMPLETE => {
            // SAFETY: READ_COMPLETE's info is a ws_web_socket_status; ctx our Conn.
            let st = unsafe { *info.cast::<ws_web_socket_status>() };
            let conn = ctx.cast::<Conn>();
            if st.buffer_type == WS_BUFFER_CLOSE {
                let code = ws_close(h, 1000, std::ptr::null(), 0);
                if code != WS_ERROR_IO_PENDING {
                    fault(format!("ws_close: {code}"));
                }
                return;
            }
            // echo the piece, and receive the next one at once (the send's buffer is a copy)
            let conn = unsafe { &mut *conn };
            let copy = conn.buf[..st.bytes_transferred].to_vec();
            let (ptr, n) = (copy.as_ptr(), copy.len());
            conn.echoes.push_back(copy); // (moving a Vec keeps its heap buffer in place)
            if ws_send(h, st.buffer_type, ptr.cast(), n) != WS_ERROR_IO_PENDING {
                fault("ws_send from a callback".into());
            }
            start_receive(h, conn);
        }
        WS_CALLBACK_STATUS_WRITE_COMPLETE => {
            // SAFETY: ctx is our Conn; sends complete in call order
            unsafe { (*ctx.cast::<Conn>()).echoes.pop_front() };
        }
        WS_CALLBACK_STATUS_CLOSE_COMPLETE => {
            ws_close_handle(h);
        }
        WS_CALLBACK_STATUS_HANDLE_CLOSING => {
            if !ctx.is_null() {
                // SAFETY: nothing more comes for this handle: its context may be freed.
                drop(unsafe { Box::from_raw(ctx.cast::<Conn>()) });
            }
            *CLOSED.0.lock().unwrap() += 1;
            CLOSED.1.notify_all();
        }
        WS_CALLBACK_STATUS_REQUEST_ERROR => {
            // SAFETY: REQUEST_ERROR's info is a ws_async_result.
            let r = unsafe { *info.cast::<ws_async_result>() };
            if r.error != WS_ERROR_OPERATION_CANCELLED {
                fault(format!("request error {r:?} on {h:#x}"));
            }
        }
        other => fault(format!("unexpected status {other:#x}")),
    }
}

fn start_receive(h: ws_handle, conn: &mut Conn) {
    // (the buffer lives in the Conn, freed only at HANDLE_CLOSING)
    let buf = &mut conn.buf;
    let code = ws_receive(
        h,
        buf.as_mut_ptr().cast(),
        buf.len(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    );
    if code != WS_ERROR_IO_PENDING {
        fault(format!("ws_receive from a callback: {code}"));
    }
}

/// An echo server made of callbacks, with blocking clients on threads: every message comes
/// back, each handle's completions are in order and never overlap, callbacks are never
/// re-entered, and HANDLE_CLOSING comes last for every handle.
#[test]
fn echo_server_in_callbacks() {
    let q = Queue::new();
    QUEUE.store(q.0, std::sync::atomic::Ordering::SeqCst);
    let (l, port) = listen("ws://127.0.0.1:0/");
    assert_code!(ws_set_status_callback(l, Some(on_status)), WS_OK);
    // a handle has a callback or a queue, never both
    assert_code!(
        ws_set_option(
            l,
            WS_OPTION_COMPLETION_QUEUE,
            (&q.0 as *const u64).cast(),
            8
        ),
        WS_ERROR_INVALID_OPERATION
    );
    assert_code!(ws_accept(l, std::ptr::null_mut()), WS_ERROR_IO_PENDING);
    // a callback cannot change once I/O began
    assert_code!(
        ws_set_status_callback(l, None),
        WS_ERROR_INCORRECT_HANDLE_STATE
    );
    let clients: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let c = connect(&format!("ws://127.0.0.1:{port}/"));
                for j in 0..20 {
                    let m = format!("client {i} message {j}");
                    assert_code!(send(c, WS_BUFFER_UTF8_MESSAGE, m.as_bytes()), WS_OK);
                    let (got, ty) = recv_message(c);
                    assert_eq!((got, ty), (m.into_bytes(), WS_BUFFER_UTF8_MESSAGE));
                }
                assert_code!(close(c, 1000, b"done"), WS_OK);
                assert_eq!(state(c), WS_STATE_CLOSED);
                ws_close_handle(c);
            })
        })
        .collect();
    for t in clients {
        t.join().unwrap();
    }
    // each server connection closes itself after CLOSE_COMPLETE; 8 HANDLE_CLOSINGs
    wait_closed(8);
    assert_code!(ws_close_handle(l), WS_OK);
    wait_closed(9);
    let log = LOG.lock().unwrap().take().unwrap();
    assert!(log.faults.is_empty(), "{:?}", log.faults);
    assert_eq!(log.by_handle.len(), 9);
    for (h, statuses) in &log.by_handle {
        assert_eq!(
            statuses.last(),
            Some(&WS_CALLBACK_STATUS_HANDLE_CLOSING),
            "{h:#x}"
        );
        assert_eq!(
            statuses
                .iter()
                .filter(|s| **s == WS_CALLBACK_STATUS_HANDLE_CLOSING)
                .count(),
            1
        );
        if *h != l {
            // 20 echoes, then the client's close, then our close
            let reads = statuses
                .iter()
                .filter(|s| **s == WS_CALLBACK_STATUS_READ_COMPLETE)
                .count();
            let writes = statuses
                .iter()
                .filter(|s| **s == WS_CALLBACK_STATUS_WRITE_COMPLETE)
                .count();
            assert_eq!((reads, writes), (21, 20), "{h:#x}: {statuses:x?}");
            let n = statuses.len();
            assert_eq!(
                &statuses[n - 2..],
                &[
                    WS_CALLBACK_STATUS_CLOSE_COMPLETE,
                    WS_CALLBACK_STATUS_HANDLE_CLOSING
                ]
            );
        }
    }
    let accepts = log.by_handle[&l]
        .iter()
        .filter(|s| **s == WS_CALLBACK_STATUS_ACCEPT_COMPLETE)
        .count();
    assert_eq!(accepts, 8);
}

/// (handle, status, operation, error) of each completion `record` saw.
type Seen = Vec<(u64, u32, u32, u32)>;

/// Completions recorded by `record`, for the client-role tests.
static RECORDED: (Mutex<Seen>, Condvar) = (Mutex::new(Vec::new()), Condvar::new());

unsafe extern "C" fn record(
    h: ws_handle,
    _ctx: *mut c_void,
    status: u32,
    info: *mut c_void,
    _len: usize,
) {
    let (op, error) = if status == WS_CALLBACK_STATUS_REQUEST_ERROR {
        // SAFETY: REQUEST_ERROR's info is a ws_async_result.
        let r = unsafe { *info.cast::<ws_async_result>() };
        (r.operation, r.error)
    } else {
        (0, 0)
    };
    RECORDED.0.lock().unwrap().push((h, status, op, error));
    RECORDED.1.notify_all();
}

/// The completions of `h` once there are `n` of them (10 s at most).
fn recorded(h: ws_handle, n: usize) -> Vec<(u32, u32, u32)> {
    let (m, cv) = &RECORDED;
    let mine = |v: &Seen| {
        v.iter()
            .filter(|x| x.0 == h)
            .map(|x| (x.1, x.2, x.3))
            .collect::<Vec<_>>()
    };
    let g = m.lock().unwrap();
    let (g, t) = cv
        .wait_timeout_while(g, Duration::from_secs(10), |v| mine(v).len() < n)
        .unwrap();
    assert!(!t.timed_out(), "only {:?}", mine(&g));
    mine(&g)
}

/// Callback mode, client role: a receive timeout keeps the connection; ws_close_handle with a
/// receive and sends pending cancels each, then HANDLE_CLOSING, then nothing.
#[test]
fn client_timeouts_and_close_handle_in_callback_mode() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (port, server) = common::asyncq::blocking_server(move |_h| {
        let _ = rx.recv_timeout(Duration::from_secs(20)); // reads nothing
    });
    let c = open(&format!("ws://127.0.0.1:{port}/"));
    assert_code!(ws_set_status_callback(c, Some(record)), WS_OK);
    assert_code!(ws_connect(c), WS_ERROR_IO_PENDING);
    assert_eq!(
        recorded(c, 1),
        vec![(WS_CALLBACK_STATUS_CONNECT_COMPLETE, 0, 0)]
    );
    set_u32(c, WS_OPTION_RECEIVE_TIMEOUT, 100);
    let mut buf = vec![0u8; 16];
    let receive = |buf: &mut Vec<u8>| {
        ws_receive(
            c,
            buf.as_mut_ptr().cast(),
            buf.len(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    assert_code!(receive(&mut buf), WS_ERROR_IO_PENDING);
    let got = recorded(c, 2);
    assert_eq!(
        got[1],
        (
            WS_CALLBACK_STATUS_REQUEST_ERROR,
            WS_OPERATION_RECEIVE,
            WS_ERROR_TIMEOUT
        )
    );
    assert_eq!(state(c), WS_STATE_OPEN);
    set_u32(c, WS_OPTION_RECEIVE_TIMEOUT, 0);
    assert_code!(receive(&mut buf), WS_ERROR_IO_PENDING);
    let big = vec![3u8; 8 << 20];
    for _ in 0..2 {
        assert_code!(send(c, WS_BUFFER_BINARY_MESSAGE, &big), WS_ERROR_IO_PENDING);
    }
    assert_code!(ws_close_handle(c), WS_OK);
    let got = recorded(c, 6);
    let cancelled = |op| {
        (
            WS_CALLBACK_STATUS_REQUEST_ERROR,
            op,
            WS_ERROR_OPERATION_CANCELLED,
        )
    };
    assert_eq!(
        &got[2..],
        &[
            cancelled(WS_OPERATION_RECEIVE),
            cancelled(WS_OPERATION_SEND),
            cancelled(WS_OPERATION_SEND),
            (WS_CALLBACK_STATUS_HANDLE_CLOSING, 0, 0)
        ]
    );
    drop(big); // only after HANDLE_CLOSING may the buffers go
    tx.send(()).unwrap();
    server.join().unwrap();
    // nothing after HANDLE_CLOSING: a later completion of another handle comes, none of c's
    let c2 = open("ws://127.0.0.1:1/");
    assert_code!(ws_set_status_callback(c2, Some(record)), WS_OK);
    assert_code!(ws_close_handle(c2), WS_OK);
    assert_eq!(
        recorded(c2, 1),
        vec![(WS_CALLBACK_STATUS_HANDLE_CLOSING, 0, 0)]
    );
    assert_eq!(recorded(c, 6).len(), 6);
}
