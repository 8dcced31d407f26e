//! Servers for the Python benchmarks (`wsbench serve KIND [SIZE]`): each prints its port,
//! serves every connection on its own thread, and exits after 600 s at the latest.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use crate::util::*;

pub fn serve(kind: &str, size: usize) {
    thread::spawn(|| {
        thread::sleep(Duration::from_secs(600));
        std::process::exit(0);
    });
    match kind {
        "ws-echo" | "ws-sink" => {
            let echo = kind == "ws-echo";
            let (l, port) = listen();
            println!("{port}");
            loop {
                let s = accept(l);
                thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 16];
                    loop {
                        let (mut n, mut ty) = (0usize, 0u32);
                        if ws_receive(s, buf.as_mut_ptr().cast(), buf.len(), &mut n, &mut ty)
                            != WS_OK
                        {
                            break;
                        }
                        if ty == WS_BUFFER_CLOSE {
                            let _ = ws_close(s, 1000, std::ptr::null(), 0);
                            break;
                        }
                        if echo && ws_send(s, ty, buf.as_ptr().cast(), n) != WS_OK {
                            break;
                        }
                    }
                    ws_close_handle(s);
                });
            }
        }
        "raw-echo" | "raw-sink" => {
            let echo = kind == "raw-echo";
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            println!("{}", l.local_addr().unwrap().port());
            for s in l.incoming() {
                let mut s = s.unwrap();
                s.set_nodelay(true).unwrap();
                thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 16];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || (echo && s.write_all(&buf[..n]).is_err()) {
                            break;
                        }
                    }
                });
            }
        }
        "ws-blast" => {
            // every connection gets an endless stream of `size`-byte binary frames
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            println!("{}", l.local_addr().unwrap().port());
            for s in l.incoming() {
                let s = s.unwrap();
                thread::spawn(move || crate::scenarios::blast(s, size, usize::MAX));
            }
        }
        other => panic!("unknown server kind {other}"),
    }
}
