//! The load generator every server of the asynchronous benchmarks gets: tokio-tungstenite
//! clients on one thread (a current-thread runtime), so the servers compete on equal terms.
//!
//!   loadgen echo URL CONNECTIONS SIZE SECONDS [DEPTH]
//!       opens CONNECTIONS connections; each sends DEPTH (default 1) binary messages of SIZE
//!       bytes together and waits for their echoes, again and again; counts the echoes of SECONDS after a 0.5 s warm-up:
//!       prints "window" when the count starts and {"messages_per_s": ..., "messages": ...,
//!       "connections": ...} when it ends; then closes every connection and prints
//!       "closed N".
//!   loadgen hold URL CONNECTIONS [SOURCE_IP]
//!       opens CONNECTIONS connections (from SOURCE_IP, default 127.0.0.1), each does one
//!       64-byte round trip, prints "ready N", waits for a line on stdin, closes every
//!       connection (close handshake) and prints "closed N".
//!
//! Every connection runs through the whole upgrade; at most 128 connect at once.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncBufReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

async fn connect(url: &str, addr: SocketAddr, source: IpAddr) -> Ws {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let tcp = socket.connect(addr).await.expect("connect");
    tcp.set_nodelay(true).unwrap();
    let (ws, _) = tokio_tungstenite::client_async(url, tcp)
        .await
        .expect("upgrade");
    ws
}

async fn round_trip(ws: &mut Ws, payload: &[u8]) {
    round_trips(ws, payload, 1).await
}

/// Sends `depth` messages (written together), then waits for their `depth` echoes.
async fn round_trips(ws: &mut Ws, payload: &[u8], depth: usize) {
    for _ in 0..depth {
        ws.feed(Message::binary(payload.to_vec()))
            .await
            .expect("send");
    }
    ws.flush().await.expect("send");
    let mut echoes = 0;
    while echoes < depth {
        match ws.next().await {
            Some(Ok(m)) if m.is_binary() => {
                assert_eq!(m.len(), payload.len(), "echo of the wrong size");
                echoes += 1;
            }
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

async fn close(mut ws: Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Opens `n` connections, at most 128 at a time, each with one round trip of `size` bytes.
async fn open_all(url: &str, n: usize, source: IpAddr, size: usize) -> Vec<Ws> {
    let addr: SocketAddr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .expect("ws://IP:PORT/");
    let gate = Arc::new(Semaphore::new(128));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (url, gate) = (url.to_owned(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                let mut ws = connect(&url, addr, source).await;
                round_trip(&mut ws, &vec![7u8; size]).await;
                ws
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.push(t.await.expect("a connection failed"));
    }
    all
}

async fn echo(url: &str, n: usize, size: usize, seconds: f64, depth: usize) {
    let all = open_all(url, n, "127.0.0.1".parse().unwrap(), size).await;
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = all
        .into_iter()
        .map(|mut ws| {
            let (count, stop) = (count.clone(), stop.clone());
            tokio::spawn(async move {
                let payload = vec![42u8; size];
                while !stop.load(Ordering::Relaxed) {
                    round_trips(&mut ws, &payload, depth).await;
                    count.fetch_add(depth as u64, Ordering::Relaxed);
                }
                close(ws).await;
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (c0, t0) = (count.load(Ordering::Relaxed), Instant::now());
    println!("window");
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let (c1, t1) = (count.load(Ordering::Relaxed), Instant::now());
    let rate = (c1 - c0) as f64 / (t1 - t0).as_secs_f64();
    println!(
        "{{\"messages_per_s\": {rate:.1}, \"messages\": {}, \"connections\": {n}}}",
        c1 - c0
    );
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    println!("closed {n}");
}

async fn hold(url: &str, n: usize, source: IpAddr) {
    let all = open_all(url, n, source, 64).await;
    println!("ready {}", all.len());
    let mut line = String::new();
    let _ = tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await;
    let tasks: Vec<_> = all.into_iter().map(|ws| tokio::spawn(close(ws))).collect();
    let n = tasks.len();
    for t in tasks {
        t.await.unwrap();
    }
    println!("closed {n}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!("usage: loadgen echo URL CONNECTIONS SIZE SECONDS [DEPTH] | hold URL CONNECTIONS [SOURCE_IP]");
        std::process::exit(2)
    };
    if args.len() < 4 {
        usage();
    }
    wshandle_async_bench::raise_nofile();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let n: usize = args[3].parse().unwrap_or_else(|_| usage());
    match args[1].as_str() {
        "echo" if args.len() == 6 || args.len() == 7 => rt.block_on(echo(
            &args[2],
            n,
            args[4].parse().unwrap_or_else(|_| usage()),
            args[5].parse().unwrap_or_else(|_| usage()),
            args.get(6)
                .map_or(1, |d| d.parse().unwrap_or_else(|_| usage())),
        )),
        "hold" => {
            let source = args.get(4).map_or("127.0.0.1", String::as_str);
            rt.block_on(hold(
                &args[2],
                n,
                source.parse().unwrap_or_else(|_| usage()),
            ))
        }
        _ => usage(),
    }
}
