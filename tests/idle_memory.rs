//! The buffers an idle connection keeps (issue 10, defect 7): after a large message in each
//! direction, a connection goes back to holding no input buffer and a small output buffer.
//! Measured as the allocator's bytes in use (glibc's mallinfo2), in a test binary of its own
//! so that no other test allocates meanwhile.

mod common;

use common::raw;
use common::*;

/// Bytes the process has allocated and not freed (every malloc arena, and mmapped blocks),
/// less the free input buffers the library's pool keeps for the next read (at most 4 MiB for
/// the whole process, whatever the number of connections).
fn heap_in_use() -> u64 {
    // SAFETY: mallinfo2 has no preconditions.
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks + m.hblkhd) as u64 - wshandle::transport::buffers::pooled_bytes() as u64
}

/// Sends `len` bytes as one binary message and receives one message, on two threads at once.
fn exchange(me: ws_handle, peer: ws_handle, len: usize) {
    let echo = std::thread::spawn(move || {
        let (got, _) = recv_message(peer);
        assert_code!(send(peer, WS_BUFFER_BINARY_MESSAGE, &got), WS_OK);
        got.len()
    });
    assert_code!(send(me, WS_BUFFER_BINARY_MESSAGE, &vec![7u8; len]), WS_OK);
    assert_eq!(recv_message(me).0.len(), len);
    assert_eq!(echo.join().unwrap(), len);
}

#[test]
fn idle_connections_give_their_large_buffers_back() {
    const PAIRS: usize = 32;
    const BIG: usize = 300 * 1024;
    let mut l = 0;
    assert_code!(ws_listen(c"ws://127.0.0.1:0/idle".as_ptr(), &mut l), WS_OK);
    let url = format!("ws://127.0.0.1:{}/idle", local_port(l));
    let pairs: Vec<(ws_handle, ws_handle)> = (0..PAIRS)
        .map(|_| {
            let acceptor = std::thread::spawn(move || {
                let mut s = 0;
                assert_code!(ws_accept(l, &mut s), WS_OK);
                s
            });
            let c = connect(&url);
            let s = acceptor.join().unwrap();
            exchange(c, s, 16); // both sides have taken their small buffers
            (c, s)
        })
        .collect();
    let (heap0, rss0) = (heap_in_use(), raw::rss_bytes());
    for &(c, s) in &pairs {
        exchange(c, s, BIG); // client: masked 300 KiB out, 300 KiB in; server the same unmasked
    }
    let (heap1, rss1) = (heap_in_use(), raw::rss_bytes());
    let per_pair = heap1.saturating_sub(heap0) / PAIRS as u64;
    println!(
        "after a {} KiB message each way on {PAIRS} pairs, now idle: heap in use {:+} B per pair (client + server), RSS {:+} KiB in all (freed memory the allocator keeps counts there)",
        BIG / 1024,
        (heap1 as i64 - heap0 as i64) / PAIRS as i64,
        (rss1 as i64 - rss0 as i64) / 1024,
    );
    // Kept buffers would be up to 1 MiB (masked output) + 2 x 64 KiB (input) per pair.
    assert!(
        per_pair < 4 * 1024,
        "{per_pair} B per idle pair still in use"
    );
    for (c, s) in pairs {
        assert_code!(ws_close_handle(c), WS_OK);
        assert_code!(ws_close_handle(s), WS_OK);
    }
    assert_code!(ws_close_handle(l), WS_OK);
}
