//! Resident memory per idle open connection, each contender in a fresh process (so freed
//! memory of one cannot flatter the other), against a wshandle server in another process.
//! The kinds "echoed", "deflate" and "deflate-no-takeover" echo 20 JSON messages (about 6 KiB)
//! on every connection first (the last two compressed), so the input buffer and the windows
//! that context takeover keeps between messages are filled; "echoed" is their uncompressed
//! baseline.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use crate::compress;
use crate::util::*;

pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no memory-safety preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// Messages each connection of the echoing kinds exchanges before it idles.
const ECHOES: usize = 20;

/// Whether connections of this kind echo messages before they idle.
fn echoes(kind: &str) -> bool {
    kind == "echoed" || deflate_kind(kind).is_some()
}

/// Compression settings of a kind: `Some(context takeover)` for the compressed ones.
fn deflate_kind(kind: &str) -> Option<bool> {
    match kind {
        "deflate" => Some(true),
        "deflate-no-takeover" => Some(false),
        _ => None,
    }
}

/// `wsbench mem-server N KIND`: accepts N connections (echoing one message on each, for the
/// compressed kinds) and keeps them until stdin closes.
pub fn serve(n: usize, kind: &str) {
    let (l, port) = listen();
    let deflate = deflate_kind(kind);
    if let Some(takeover) = deflate {
        compress::deflate_options(l, takeover, 3);
    }
    println!("{port}");
    let mut keep = Vec::with_capacity(n);
    let mut buf = vec![0u8; 1 << 16];
    for _ in 0..n {
        let h = accept(l);
        for _ in 0..if echoes(kind) { ECHOES } else { 0 } {
            let len = recv_message(h, &mut buf);
            send(h, WS_BUFFER_UTF8_MESSAGE, &buf[..len]);
        }
        keep.push(h);
    }
    println!("ready");
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    for h in keep {
        ws_close_handle(h);
    }
}

/// `wsbench mem-client KIND PORT N`: opens N idle connections, prints bytes per connection.
pub fn client(kind: &str, port: u16, n: usize) {
    let url = format!("ws://127.0.0.1:{port}/");
    let msgs = compress::corpus();
    let mut buf = vec![0u8; 1 << 16];
    let mut i = 0;
    let mut open = |url: &str| -> Box<dyn std::any::Any> {
        match kind {
            "wshandle" => Box::new(connect(url)),
            _ if echoes(kind) => {
                let h = compress::ws_open_url(url);
                if let Some(takeover) = deflate_kind(kind) {
                    compress::deflate_options(h, takeover, 3);
                }
                set_u32(h, WS_OPTION_KEEPALIVE_INTERVAL, 0);
                check(ws_connect(h), "ws_connect");
                for _ in 0..ECHOES {
                    i += 1;
                    let m = &msgs[i % msgs.len()];
                    send(h, WS_BUFFER_UTF8_MESSAGE, m);
                    assert_eq!(recv_message(h, &mut buf), m.len());
                }
                Box::new(h)
            }
            _ => {
                let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                Box::new(tungstenite::client(url, stream).unwrap().0)
            }
        }
    };
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::with_capacity(n + 1);
    keep.push(open(&url)); // warm-up: lazy statics, the first allocations
    let before = rss_bytes();
    for _ in 0..n {
        keep.push(open(&url));
    }
    let after = rss_bytes();
    println!("{}", (after.saturating_sub(before)) / n as u64);
}

/// Bytes per idle connection for `kind` ("wshandle", "tungstenite", "deflate" or
/// "deflate-no-takeover"), `n` connections.
pub fn measure(kind: &str, n: usize) -> f64 {
    let exe = std::env::current_exe().unwrap();
    let mut server = Command::new(&exe)
        .args(["mem-server", &(n + 1).to_string(), kind])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let port = lines.next().unwrap().unwrap();
    let out = Command::new(&exe)
        .args(["mem-client", kind, &port, &n.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mem-client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(server.stdin.take()); // the server exits
    let _ = server.wait();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
