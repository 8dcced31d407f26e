//! 16-byte sends through the C ABI, to a server that reads and drops them:
//!
//!   sendrate blocking URL COUNT          ws_send in a loop (one system call per message)
//!   sendrate async URL COUNT PENDING     queue mode, one thread: up to PENDING sends pending
//!                                        at once, a new one started at each WRITE_COMPLETE
//!
//! Prints {"messages_per_s": ...} for the COUNT sends (from the first ws_send to the last
//! completion), then closes (ws_close, the whole handshake).

use std::ffi::CString;
use std::time::Instant;

use wshandle::ffi::*;

const SIZE: usize = 16;

fn check(what: &str, code: ws_error, want: ws_error) {
    if code != want {
        eprintln!("sendrate: {what}: {}", wshandle::error::name(code));
        std::process::exit(1);
    }
}

/// Waits for completions of `q` (10 s at most per wait); fails on an error.
fn wait(q: ws_handle, out: &mut [ws_completion]) -> usize {
    let mut n = 0;
    check(
        "ws_queue_wait",
        ws_queue_wait(q, out.as_mut_ptr(), out.len(), &mut n, 10_000),
        WS_OK,
    );
    for c in &out[..n] {
        if c.status == WS_CALLBACK_STATUS_REQUEST_ERROR {
            check("an operation", c.result.error, WS_OK);
        }
    }
    n
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 || (args[1] == "async" && args.len() < 5) {
        eprintln!("usage: sendrate blocking URL COUNT | async URL COUNT PENDING");
        std::process::exit(2);
    }
    let url = CString::new(args[2].as_str()).unwrap();
    let count: usize = args[3].parse().expect("COUNT");
    let payload = [b'x'; SIZE];
    let mut h = 0;
    check("ws_open", ws_open(url.as_ptr(), &mut h), WS_OK);
    let started;
    if args[1] == "blocking" {
        check("ws_connect", ws_connect(h), WS_OK);
        started = Instant::now();
        for _ in 0..count {
            check(
                "ws_send",
                ws_send(h, WS_BUFFER_BINARY_MESSAGE, payload.as_ptr().cast(), SIZE),
                WS_OK,
            );
        }
    } else {
        let pending: usize = args[4].parse().expect("PENDING");
        let mut q = 0;
        check("ws_queue_create", ws_queue_create(&mut q), WS_OK);
        check(
            "bind",
            ws_set_option(h, WS_OPTION_COMPLETION_QUEUE, (&q as *const u64).cast(), 8),
            WS_OK,
        );
        check("ws_connect", ws_connect(h), WS_ERROR_IO_PENDING);
        let mut out = vec![ws_completion::default(); 256];
        wait(q, &mut out);
        started = Instant::now();
        let (mut sent, mut done) = (0, 0);
        while done < count {
            while sent < count && sent - done < pending {
                let code = ws_send(h, WS_BUFFER_BINARY_MESSAGE, payload.as_ptr().cast(), SIZE);
                check("ws_send", code, WS_ERROR_IO_PENDING);
                sent += 1;
            }
            done += wait(q, &mut out);
        }
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    println!("{{\"messages_per_s\": {rate:.1}}}");
    // (the async handle's close completes through its queue; this program simply exits)
}
