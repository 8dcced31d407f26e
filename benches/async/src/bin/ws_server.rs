//! wshandle's asynchronous server as its users write it in C: queue mode, one thread, one
//! completion queue for the listener and every connection (through the C ABI). A receive is
//! always pending on each connection; `echo` sends each piece back with its buffer type from a
//! copy kept until its WRITE_COMPLETE (the echoes of one turn are written together); `sink`
//! drops it. An idle connection's only buffer is its receive buffer of `--buffer` bytes
//! (default 256; a larger message comes in pieces and goes back in pieces).
//!
//!   ws_server echo|sink [--buffer BYTES] [--deadline SECONDS]
//!
//! Prints "PORT <n>", then serves until the deadline (default 600 s).

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::time::{Duration, Instant};

use wshandle::ffi::*;

/// A connection's receive buffer (the only buffer of an idle one) and its echoes in flight.
struct Conn {
    buf: Box<[u8]>,
    echoes: VecDeque<Box<[u8]>>,
}

fn check(what: &str, code: ws_error, want: ws_error) {
    if code != want {
        eprintln!("ws_server: {what}: {}", wshandle::error::name(code));
        std::process::exit(1);
    }
}

fn receive(h: ws_handle, buf: &mut [u8]) -> ws_error {
    ws_receive(
        h,
        buf.as_mut_ptr().cast(),
        buf.len(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let echo = wshandle_async_bench::echo_or_sink(
        &args,
        "ws_server echo|sink [--buffer BYTES] [--deadline SECONDS]",
    );
    let opt = |name: &str| wshandle_async_bench::option(&args, name);
    let size = opt("--buffer").unwrap_or(256);
    let deadline = Instant::now() + Duration::from_secs(opt("--deadline").unwrap_or(600) as u64);
    wshandle_async_bench::raise_nofile();

    let mut q = 0;
    check("ws_queue_create", ws_queue_create(&mut q), WS_OK);
    let url = CString::new("ws://127.0.0.1:0/").unwrap();
    let mut l = 0;
    check("ws_listen", ws_listen(url.as_ptr(), &mut l), WS_OK);
    let bind = |h: ws_handle| {
        let code = ws_set_option(h, WS_OPTION_COMPLETION_QUEUE, (&q as *const u64).cast(), 8);
        check("bind", code, WS_OK);
    };
    bind(l);
    let (mut port, mut len) = (0u32, 4usize);
    let code = ws_query_option(
        l,
        WS_OPTION_LOCAL_PORT,
        (&mut port as *mut u32).cast(),
        &mut len,
    );
    check("WS_OPTION_LOCAL_PORT", code, WS_OK);
    check(
        "ws_accept",
        ws_accept(l, std::ptr::null_mut()),
        WS_ERROR_IO_PENDING,
    );
    println!("PORT {port}");

    let mut conns: HashMap<ws_handle, Conn> = HashMap::new();
    let mut out = vec![ws_completion::default(); 256];
    while Instant::now() < deadline {
        let mut n = 0;
        match ws_queue_wait(q, out.as_mut_ptr(), out.len(), &mut n, 200) {
            WS_OK | WS_ERROR_TIMEOUT => {}
            code => check("ws_queue_wait", code, WS_OK),
        }
        for c in &out[..n] {
            let h = c.handle;
            match c.status {
                WS_CALLBACK_STATUS_ACCEPT_COMPLETE => {
                    let mut conn = Conn {
                        buf: vec![0u8; size].into_boxed_slice(),
                        echoes: VecDeque::new(),
                    };
                    if receive(c.accepted, &mut conn.buf) == WS_ERROR_IO_PENDING {
                        conns.insert(c.accepted, conn);
                    } else {
                        ws_close_handle(c.accepted);
                    }
                    check(
                        "ws_accept",
                        ws_accept(l, std::ptr::null_mut()),
                        WS_ERROR_IO_PENDING,
                    );
                }
                WS_CALLBACK_STATUS_READ_COMPLETE => {
                    let conn = conns.get_mut(&h).expect("a connection");
                    let ty = c.io.buffer_type;
                    if ty == WS_BUFFER_CLOSE {
                        if ws_close(h, 1000, std::ptr::null(), 0) != WS_ERROR_IO_PENDING {
                            ws_close_handle(h);
                        }
                        continue;
                    }
                    if echo {
                        // the echo goes from its own copy, kept until its WRITE_COMPLETE, so
                        // the next receive starts at once and echoes of one turn leave together
                        let copy: Box<[u8]> = conn.buf[..c.io.bytes_transferred].into();
                        if ws_send(h, ty, copy.as_ptr().cast(), copy.len()) != WS_ERROR_IO_PENDING {
                            ws_close_handle(h);
                            continue;
                        }
                        conn.echoes.push_back(copy);
                    }
                    if receive(h, &mut conn.buf) != WS_ERROR_IO_PENDING {
                        ws_close_handle(h);
                    }
                }
                WS_CALLBACK_STATUS_WRITE_COMPLETE => {
                    // sends complete in call order
                    conns.get_mut(&h).expect("a connection").echoes.pop_front();
                }
                WS_CALLBACK_STATUS_CLOSE_COMPLETE => {
                    ws_close_handle(h);
                }
                WS_CALLBACK_STATUS_REQUEST_ERROR if h == l => {
                    check(
                        "ws_accept",
                        ws_accept(l, std::ptr::null_mut()),
                        WS_ERROR_IO_PENDING,
                    );
                }
                WS_CALLBACK_STATUS_REQUEST_ERROR => {
                    // a vanished or misbehaving client: release it (its other pending
                    // operations complete as cancelled, then HANDLE_CLOSING)
                    ws_close_handle(h);
                }
                WS_CALLBACK_STATUS_HANDLE_CLOSING => {
                    conns.remove(&h);
                }
                _ => {}
            }
        }
    }
}
