//! permessage-deflate: a JSON corpus, its compression ratio, compressed JSON echo throughput
//! against Node `ws` with `perMessageDeflate` (benches/node_deflate.mjs). Memory per idle
//! compressed connection is measured with the others in memory.rs.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use wshandle::protocol::deflate::{answer_offers, client_offer, Compressor, Settings};

use crate::util::*;

/// The JSON corpus: 2,000 market-data-like messages (trades, tickers, order-book snapshots,
/// candles), 123 to 943 bytes, 394,583 in all, deterministic.
pub fn corpus() -> Vec<Vec<u8>> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let syms = [
        "BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "DOGE-USD", "ADA-USD",
    ];
    (0..2000u64)
        .map(|i| {
            let sym = syms[rnd(syms.len() as u64) as usize];
            let px = 1000 + rnd(90_000);
            let ts = 1_700_000_000_000u64 + i * 37 + rnd(20);
            match rnd(10) {
                0..=4 => format!(
                    r#"{{"type":"trade","symbol":"{sym}","trade_id":{},"price":"{}.{:02}","size":"0.{:05}","side":"{}","time":{ts}}}"#,
                    8_000_000 + i,
                    px,
                    rnd(100),
                    rnd(100_000),
                    if rnd(2) == 0 { "buy" } else { "sell" }
                ),
                5..=7 => format!(
                    r#"{{"type":"ticker","symbol":"{sym}","bid":"{px}.{:02}","ask":"{px}.{:02}","bid_size":"{}.{:03}","ask_size":"{}.{:03}","volume_24h":"{}.{:02}","time":{ts}}}"#,
                    rnd(50),
                    50 + rnd(50),
                    rnd(10),
                    rnd(1000),
                    rnd(10),
                    rnd(1000),
                    rnd(1_000_000),
                    rnd(100)
                ),
                8 => {
                    let levels: Vec<String> = (0..20 + rnd(20))
                        .map(|k| format!(r#"["{}.{:02}","{}.{:04}"]"#, px - k, rnd(100), rnd(5), rnd(10_000)))
                        .collect();
                    format!(
                        r#"{{"type":"snapshot","symbol":"{sym}","sequence":{},"bids":[{}],"time":{ts}}}"#,
                        90_000 + i,
                        levels.join(",")
                    )
                }
                _ => format!(
                    r#"{{"type":"candle","symbol":"{sym}","interval":"1m","open":"{px}.00","high":"{}.50","low":"{}.25","close":"{}.75","volume":"{}.{:03}","start":{ts}}}"#,
                    px + rnd(30),
                    px - rnd(30),
                    px + rnd(10),
                    rnd(500),
                    rnd(1000)
                ),
            }
            .into_bytes()
        })
        .collect()
}

/// JSON bytes ÷ compressed bytes over the corpus, as this library's compressor sends them
/// (default settings; with or without context takeover), every message compressed.
pub fn ratio(takeover: bool) -> f64 {
    let s = Settings {
        context_takeover: takeover,
        threshold: 0,
        ..Settings::default()
    };
    let agreed = answer_offers(&s, &client_offer(&s)).unwrap().1;
    let mut c = Compressor::new(agreed);
    let mut out = vec![0u8; 16 * 1024];
    let (mut raw, mut packed) = (0usize, 0usize);
    for m in corpus() {
        let mut rest = &m[..];
        loop {
            let p = c.compress(rest, true, &mut out).unwrap();
            rest = &rest[p.consumed..];
            packed += p.written;
            if p.done {
                break;
            }
        }
        raw += m.len();
    }
    raw as f64 / packed as f64
}

/// Compression on `h` (a client or a listener), every message compressed.
pub fn deflate_options(h: ws_handle, takeover: bool, level: u32) {
    set_u32(h, WS_OPTION_PERMESSAGE_DEFLATE, 1);
    set_u32(h, WS_OPTION_DEFLATE_CONTEXT_TAKEOVER, u32::from(takeover));
    set_u32(h, WS_OPTION_DEFLATE_LEVEL, level);
    set_u32(h, WS_OPTION_DEFLATE_THRESHOLD, 0);
}

/// `wsbench deflate-serve LEVEL`: an echo server with compression (context takeover) on a
/// thread per connection; prints its port; exits when stdin closes.
pub fn serve(level: u32) {
    let (l, port) = listen();
    deflate_options(l, true, level);
    println!("{port}");
    std::thread::spawn(move || loop {
        let s = accept(l);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let (mut n, mut ty) = (0usize, 0u32);
                if ws_receive(s, buf.as_mut_ptr().cast(), buf.len(), &mut n, &mut ty) != WS_OK
                    || ty == WS_BUFFER_CLOSE
                    || ws_send(s, ty, buf.as_ptr().cast(), n) != WS_OK
                {
                    break;
                }
            }
            ws_close_handle(s);
        });
    });
    let _ = std::io::stdin().read(&mut [0u8; 1]);
}

/// Echoes of the corpus per second, `rounds` times through it, one message in flight: our
/// client against `wsbench deflate-serve` in another process, both at `level`.
pub fn echo_ws(level: u32, rounds: usize) -> f64 {
    let exe = std::env::current_exe().unwrap();
    let mut server = Command::new(exe)
        .args(["deflate-serve", &level.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let port = BufReader::new(server.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let h = ws_open_url(&format!("ws://127.0.0.1:{port}/"));
    deflate_options(h, true, level);
    check(ws_connect(h), "ws_connect");
    let msgs = corpus();
    let mut buf = vec![0u8; 1 << 16];
    let t = Instant::now();
    for _ in 0..rounds {
        for m in &msgs {
            send(h, WS_BUFFER_UTF8_MESSAGE, m);
            let n = recv_message(h, &mut buf);
            assert_eq!(n, m.len());
        }
    }
    let rate = (rounds * msgs.len()) as f64 / t.elapsed().as_secs_f64();
    ws_close_handle(h);
    drop(server.stdin.take());
    let _ = server.wait();
    rate
}

/// The same with Node's `ws` in both roles (benches/node_deflate.mjs, two processes), at
/// its defaults but threshold 0 (level 6, 15-bit windows, context takeover).
pub fn echo_node(rounds: usize) -> Option<f64> {
    let corpus_path = "target/bench-json-corpus.json";
    let list: Vec<String> = corpus()
        .into_iter()
        .map(|m| String::from_utf8(m).unwrap())
        .collect();
    std::fs::write(corpus_path, serde_json::to_string(&list).unwrap()).unwrap();
    let node_path = std::env::var("NODE_PATH").ok()?;
    let node = |args: &[&str]| {
        let mut c = Command::new("node");
        c.env("NODE_PATH", &node_path)
            .arg("benches/node_deflate.mjs")
            .args(args);
        c
    };
    let mut server = node(&["server"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let port = BufReader::new(server.stdout.take().unwrap())
        .lines()
        .next()?
        .ok()?;
    let out = node(&["client", &port, corpus_path, &rounds.to_string()])
        .output()
        .ok()?;
    let _ = server.stdin.take().map(|mut s| s.write_all(b"x"));
    let _ = server.kill();
    let _ = server.wait();
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// `ws_open` without connecting (options go first).
pub fn ws_open_url(url: &str) -> ws_handle {
    let c = std::ffi::CString::new(url).unwrap();
    let mut h = 0;
    check(ws_open(c.as_ptr(), &mut h), "ws_open");
    h
}
