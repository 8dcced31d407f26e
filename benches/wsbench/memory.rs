//! Resident memory per idle open connection, each contender in a fresh process (so freed
//! memory of one cannot flatter the other), against a wshandle server in another process.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use crate::util::*;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no memory-safety preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// `wsbench mem-server N`: accepts N connections and keeps them until stdin closes.
pub fn serve(n: usize) {
    let (l, port) = listen();
    println!("{port}");
    let mut keep = Vec::with_capacity(n);
    for _ in 0..n {
        keep.push(accept(l));
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
    let open = |url: &str| -> Box<dyn std::any::Any> {
        match kind {
            "wshandle" => Box::new(connect(url)),
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

/// Bytes per idle connection for `kind` ("wshandle" or "tungstenite"), `n` connections.
pub fn measure(kind: &str, n: usize) -> f64 {
    let exe = std::env::current_exe().unwrap();
    let mut server = Command::new(&exe)
        .args(["mem-server", &(n + 1).to_string()])
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
