//! wshandle's asynchronous server as its users write it in C: queue mode, one thread, one
//! completion queue for the listener and every connection (through the C ABI). `echo` sends
//! each piece back with its buffer type, from the receive buffer, and receives again once the
//! echo is written; `sink` receives and drops. Each connection's only buffer is its receive
//! buffer of `--buffer` bytes (default 256; a larger message comes in pieces and goes back in
//! pieces).
//!
//!   ws_server echo|sink [--buffer BYTES] [--deadline SECONDS]
//!
//! Prints "PORT <n>", then serves until the deadline (default 600 s).

use std::collections::HashMap;
use std::ffi::CString;
use std::time::{Duration, Instant};

use wshandle::ffi::*;

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

    let mut buffers: HashMap<ws_handle, Box<[u8]>> = HashMap::new();
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
                    let mut buf = vec![0u8; size].into_boxed_slice();
                    if receive(c.accepted, &mut buf) == WS_ERROR_IO_PENDING {
                        buffers.insert(c.accepted, buf);
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
                    let buf = buffers.get_mut(&h).expect("a connection's buffer");
                    let ty = c.io.buffer_type;
                    let code = if ty == WS_BUFFER_CLOSE {
                        ws_close(h, 1000, std::ptr::null(), 0)
                    } else if echo {
                        ws_send(h, ty, buf.as_ptr().cast(), c.io.bytes_transferred)
                    } else {
                        receive(h, buf)
                    };
                    if code != WS_ERROR_IO_PENDING {
                        ws_close_handle(h);
                    }
                }
                WS_CALLBACK_STATUS_WRITE_COMPLETE => {
                    let buf = buffers.get_mut(&h).expect("a connection's buffer");
                    if receive(h, buf) != WS_ERROR_IO_PENDING {
                        ws_close_handle(h);
                    }
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
                    buffers.remove(&h);
                }
                _ => {}
            }
        }
    }
}
