//! A tokio-tungstenite server, the Rust ecosystem's asynchronous baseline: `echo` sends every
//! message back, `sink` reads and drops. Multi-thread runtime (one worker per core, tokio's
//! default) unless `--threads N`; tungstenite's default configuration unless `--read-buffer`
//! (its 128 KiB read buffer is the default users get; PEERS.md).
//!
//!   tt_server echo|sink [--threads N] [--read-buffer BYTES] [--deadline SECONDS]
//!
//! Prints "PORT <n>", then serves until the deadline (default 600 s).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let echo = wshandle_async_bench::echo_or_sink(
        &args,
        "tt_server echo|sink [--threads N] [--read-buffer BYTES] [--deadline S]",
    );
    let opt = |name: &str| wshandle_async_bench::option(&args, name);
    wshandle_async_bench::raise_nofile();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = opt("--threads") {
        rt.worker_threads(n);
    }
    let rt = rt.enable_all().build().unwrap();
    let mut config = WebSocketConfig::default();
    if let Some(n) = opt("--read-buffer") {
        config = config.read_buffer_size(n);
    }
    config = config.max_message_size(None).max_frame_size(None);
    let deadline = Duration::from_secs(opt("--deadline").unwrap_or(600) as u64);
    rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("PORT {}", listener.local_addr().unwrap().port());
        let serve = async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                tokio::spawn(async move {
                    let Ok(mut ws) =
                        tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await
                    else {
                        return;
                    };
                    while let Some(Ok(m)) = ws.next().await {
                        if (m.is_text() || m.is_binary()) && echo && ws.send(m).await.is_err() {
                            break;
                        }
                    }
                });
            }
        };
        let _ = tokio::time::timeout(deadline, serve).await;
    });
}
