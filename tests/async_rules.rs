//! The rules of the asynchronous mode (API.md, "Asynchronous mode"), each checked in both
//! modes: completions taken from a queue with ws_queue_wait on the test's thread, and the same
//! completions delivered to a status callback on the library's I/O threads (recorded by
//! `common::asyncq::Completions`, which also checks that callbacks come from an I/O thread
//! and never overlap for one handle). Asynchronous listeners and clients against each other and
//! against blocking peers.

mod common;
use common::asyncq::*;
use common::*;
use std::time::{Duration, Instant};

both_modes!(
    client_and_server_pipelined_then_both_closes,
    receive_timeout_then_close_cancels_the_receive_first,
    close_handle_cancels_everything_then_handle_closing,
    connect_failures_are_request_errors,
    keepalive_in_async_mode,
    send_and_close_timeouts_in_async_mode,
    close_after_pending_sends_and_accept_timeout,
);

/// An async client and an async server in one process (one queue, one thread in queue mode):
/// connect, accept, pipelined sends while a receive is pending on each side, shutdown both
/// ways, close.
fn client_and_server_pipelined_then_both_closes(q: &Completions) {
    let (l, port) = listen("ws://127.0.0.1:0/chat");
    q.bind(l);
    assert_code!(ws_accept(l, std::ptr::null_mut()), WS_ERROR_IO_PENDING);
    assert_code!(
        ws_accept(l, std::ptr::null_mut()),
        WS_ERROR_INVALID_OPERATION
    );

    let c = open(&format!("ws://127.0.0.1:{port}/chat"));
    q.bind(c);
    assert_eq!(state(c), WS_STATE_NONE);
    assert_code!(ws_connect(c), WS_ERROR_IO_PENDING);
    assert_eq!(state(c), WS_STATE_CONNECTING);
    assert_code!(ws_connect(c), WS_ERROR_INVALID_OPERATION);

    let got = q.take(2);
    let (acc, conn) = if got[0].handle == l {
        (got[0], got[1])
    } else {
        (got[1], got[0])
    };
    is(&acc, l, WS_CALLBACK_STATUS_ACCEPT_COMPLETE);
    is(&conn, c, WS_CALLBACK_STATUS_CONNECT_COMPLETE);
    let s = acc.accepted;
    assert_ne!(s, 0);
    assert_eq!(state(c), WS_STATE_OPEN);
    assert_eq!(state(s), WS_STATE_OPEN);

    // the server waits for a message while the client pipelines three
    let mut sbuf = vec![0u8; 64];
    assert_code!(receive(s, &mut sbuf), WS_ERROR_IO_PENDING);
    assert_code!(receive(s, &mut sbuf), WS_ERROR_INVALID_OPERATION);
    let msgs: [&[u8]; 3] = [b"one", b"two!", b"three"];
    for m in msgs {
        assert_code!(send(c, WS_BUFFER_UTF8_MESSAGE, m), WS_ERROR_IO_PENDING);
    }
    // refused calls change nothing and complete nothing
    assert_code!(send(c, WS_BUFFER_CLOSE, b"x"), WS_ERROR_INVALID_PARAMETER);
    assert_code!(
        send(c, WS_BUFFER_UTF8_MESSAGE, b"\xff"),
        WS_ERROR_INVALID_PARAMETER
    );

    let mut received = Vec::new();
    let mut writes = Vec::new();
    while received.len() < 3 || writes.len() < 3 {
        let x = q.next();
        if x.handle == c {
            writes.push(x);
        } else {
            io(
                &x,
                s,
                WS_CALLBACK_STATUS_READ_COMPLETE,
                x.io.bytes_transferred,
                WS_BUFFER_UTF8_MESSAGE,
            );
            received.push(sbuf[..x.io.bytes_transferred].to_vec());
            if received.len() < 3 {
                assert_code!(receive(s, &mut sbuf), WS_ERROR_IO_PENDING);
            }
        }
    }
    for (w, m) in writes.iter().zip(msgs) {
        io(
            w,
            c,
            WS_CALLBACK_STATUS_WRITE_COMPLETE,
            m.len(),
            WS_BUFFER_UTF8_MESSAGE,
        );
    }
    assert_eq!(
        received,
        msgs.iter().map(|m| m.to_vec()).collect::<Vec<_>>()
    );

    // client: a receive pending, then ws_shutdown; server: receives the close, answers
    let mut cbuf = vec![0u8; 64];
    assert_code!(receive(c, &mut cbuf), WS_ERROR_IO_PENDING);
    assert_code!(
        ws_shutdown(c, 1000, b"bye".as_ptr().cast(), 3),
        WS_ERROR_IO_PENDING
    );
    assert_code!(
        ws_shutdown(c, 1000, std::ptr::null(), 0),
        WS_ERROR_INVALID_OPERATION
    );
    if q.is_queue() {
        // (with the shutdown still pending: in callback mode an I/O thread may have completed
        // it already, and ws_close is allowed in CLOSE_SENT)
        assert_code!(
            ws_close(c, 1000, std::ptr::null(), 0),
            WS_ERROR_INVALID_OPERATION
        );
    }
    assert_eq!(state(c), WS_STATE_CLOSE_SENT);
    assert_code!(receive(s, &mut sbuf), WS_ERROR_IO_PENDING);
    let got = q.take(2);
    let (sd, rd) = if got[0].handle == c {
        (got[0], got[1])
    } else {
        (got[1], got[0])
    };
    is(&sd, c, WS_CALLBACK_STATUS_SHUTDOWN_COMPLETE);
    io(&rd, s, WS_CALLBACK_STATUS_READ_COMPLETE, 0, WS_BUFFER_CLOSE);
    assert_eq!(close_status(s), (1000, b"bye".to_vec()));
    assert_eq!(state(s), WS_STATE_CLOSE_RECEIVED);
    // the server may still send after the peer's close, then closes
    assert_code!(
        send(s, WS_BUFFER_BINARY_MESSAGE, b"late"),
        WS_ERROR_IO_PENDING
    );
    assert_code!(ws_close(s, 1001, std::ptr::null(), 0), WS_ERROR_IO_PENDING);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(q.next());
    }
    let of = |h| {
        seen.iter()
            .filter(|x| x.handle == h)
            .copied()
            .collect::<Vec<_>>()
    };
    let (cs, ss) = (of(c), of(s));
    assert_eq!(ss.len(), 2, "{seen:?}");
    io(
        &ss[0],
        s,
        WS_CALLBACK_STATUS_WRITE_COMPLETE,
        4,
        WS_BUFFER_BINARY_MESSAGE,
    );
    is(&ss[1], s, WS_CALLBACK_STATUS_CLOSE_COMPLETE);
    io(
        &cs[0],
        c,
        WS_CALLBACK_STATUS_READ_COMPLETE,
        4,
        WS_BUFFER_BINARY_MESSAGE,
    );
    assert_eq!(&cbuf[..4], b"late");
    assert_code!(receive(c, &mut cbuf), WS_ERROR_IO_PENDING);
    let x = q.next();
    io(&x, c, WS_CALLBACK_STATUS_READ_COMPLETE, 0, WS_BUFFER_CLOSE);
    assert_eq!(close_status(c), (1001, Vec::new()));
    assert_eq!(state(c), WS_STATE_CLOSED);
    assert_eq!(state(s), WS_STATE_CLOSED);

    // close_handle: HANDLE_CLOSING last, never from inside the call, then nothing
    for h in [c, s, l] {
        assert_code!(ws_close_handle(h), WS_OK);
    }
    let got = q.take(3);
    for x in &got {
        is(x, x.handle, WS_CALLBACK_STATUS_HANDLE_CLOSING);
    }
    let mut hs: Vec<_> = got.iter().map(|x| x.handle).collect();
    hs.sort();
    let mut want = vec![c, s, l];
    want.sort();
    assert_eq!(hs, want);
    assert!(q.poll(4, 50).is_empty(), "nothing after HANDLE_CLOSING");
}

/// Blocking and asynchronous handles in one process; a receive timeout keeps the connection
/// and loses nothing; ws_close cancels a pending receive first.
fn receive_timeout_then_close_cancels_the_receive_first(q: &Completions) {
    let (port, server) = blocking_server(|h| {
        let (m, ty) = recv_message(h);
        assert_eq!((m.as_slice(), ty), (&b"ready"[..], WS_BUFFER_UTF8_MESSAGE));
        assert_code!(send(h, WS_BUFFER_BINARY_MESSAGE, b"data"), WS_OK);
        let (_, ty) = recv_message(h);
        assert_eq!(ty, WS_BUFFER_CLOSE);
        assert_code!(close(h, 1000, b""), WS_OK);
    });
    let c = async_client(q, port);
    set_u32(c, WS_OPTION_RECEIVE_TIMEOUT, 100);
    let mut buf = [0u8; 16];
    let started = Instant::now();
    assert_code!(receive(c, &mut buf), WS_ERROR_IO_PENDING);
    failed(&q.next(), c, WS_OPERATION_RECEIVE, WS_ERROR_TIMEOUT);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(90) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(state(c), WS_STATE_OPEN);
    set_u32(c, WS_OPTION_RECEIVE_TIMEOUT, 0);
    assert_code!(
        send(c, WS_BUFFER_UTF8_MESSAGE, b"ready"),
        WS_ERROR_IO_PENDING
    );
    assert_code!(receive(c, &mut buf), WS_ERROR_IO_PENDING);
    let got = q.take(2);
    io(
        &got[0],
        c,
        WS_CALLBACK_STATUS_WRITE_COMPLETE,
        5,
        WS_BUFFER_UTF8_MESSAGE,
    );
    io(
        &got[1],
        c,
        WS_CALLBACK_STATUS_READ_COMPLETE,
        4,
        WS_BUFFER_BINARY_MESSAGE,
    );
    assert_eq!(&buf[..4], b"data");
    // a receive pending, then ws_close: the receive is cancelled first
    assert_code!(receive(c, &mut buf), WS_ERROR_IO_PENDING);
    assert_code!(ws_close(c, 1000, std::ptr::null(), 0), WS_ERROR_IO_PENDING);
    assert_code!(receive(c, &mut buf), WS_ERROR_INVALID_OPERATION);
    let got = q.take(2);
    failed(
        &got[0],
        c,
        WS_OPERATION_RECEIVE,
        WS_ERROR_OPERATION_CANCELLED,
    );
    is(&got[1], c, WS_CALLBACK_STATUS_CLOSE_COMPLETE);
    assert_eq!(state(c), WS_STATE_CLOSED);
    assert_eq!(close_status(c), (1000, Vec::new()));
    // ws_close in CLOSED: nothing to do, still one completion, never from inside the call
    assert_code!(ws_close(c, 1000, std::ptr::null(), 0), WS_ERROR_IO_PENDING);
    is(&q.next(), c, WS_CALLBACK_STATUS_CLOSE_COMPLETE);
    server.join().unwrap();
    assert_code!(ws_close_handle(c), WS_OK);
    is(&q.next(), c, WS_CALLBACK_STATUS_HANDLE_CLOSING);
}

/// ws_close_handle with a receive and several large sends pending (the peer does not read):
/// CANCELLED for each, in order, then HANDLE_CLOSING, then nothing.
fn close_handle_cancels_everything_then_handle_closing(q: &Completions) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (port, server) = blocking_server(move |_h| {
        let _ = rx.recv_timeout(Duration::from_secs(20)); // never reads
    });
    let c = async_client(q, port);
    let big = vec![7u8; 8 << 20];
    let mut buf = [0u8; 16];
    assert_code!(receive(c, &mut buf), WS_ERROR_IO_PENDING);
    for _ in 0..3 {
        assert_code!(send(c, WS_BUFFER_BINARY_MESSAGE, &big), WS_ERROR_IO_PENDING);
    }
    assert_code!(
        ws_shutdown(c, 1000, std::ptr::null(), 0),
        WS_ERROR_IO_PENDING
    );
    // the sends cannot finish: the peer does not read
    assert!(q.poll(4, 200).is_empty());
    assert_code!(ws_close_handle(c), WS_OK);
    assert_code!(ws_close_handle(c), WS_ERROR_INVALID_HANDLE);
    let got = q.take(6);
    failed(
        &got[0],
        c,
        WS_OPERATION_RECEIVE,
        WS_ERROR_OPERATION_CANCELLED,
    );
    for x in &got[1..4] {
        failed(x, c, WS_OPERATION_SEND, WS_ERROR_OPERATION_CANCELLED);
    }
    failed(
        &got[4],
        c,
        WS_OPERATION_SHUTDOWN,
        WS_ERROR_OPERATION_CANCELLED,
    );
    is(&got[5], c, WS_CALLBACK_STATUS_HANDLE_CLOSING);
    assert!(q.poll(4, 100).is_empty(), "nothing after HANDLE_CLOSING");
    drop(big); // only now may the buffers go
    tx.send(()).unwrap();
    server.join().unwrap();
}

/// Connect failures complete with REQUEST_ERROR {CONNECT} and leave the handle in NONE.
fn connect_failures_are_request_errors(q: &Completions) {
    // refused: a port nobody listens on
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    // a server that accepts TCP and never answers the upgrade
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    for (url, timeout, want) in [
        (
            format!("ws://127.0.0.1:{port}/"),
            10_000,
            WS_ERROR_CANNOT_CONNECT,
        ),
        (
            "ws://no-such-host.invalid/".to_owned(),
            10_000,
            WS_ERROR_NAME_NOT_RESOLVED,
        ),
        (
            format!("ws://127.0.0.1:{silent_port}/"),
            300,
            WS_ERROR_TIMEOUT,
        ),
    ] {
        let c = open(&url);
        q.bind(c);
        set_u32(c, WS_OPTION_CONNECT_TIMEOUT, timeout);
        assert_code!(ws_connect(c), WS_ERROR_IO_PENDING);
        failed(&q.next(), c, WS_OPERATION_CONNECT, want);
        assert_eq!(state(c), WS_STATE_NONE, "{url}");
        let mut buf = [0u8; 4];
        assert_code!(receive(c, &mut buf), WS_ERROR_INVALID_OPERATION);
        assert_code!(ws_close_handle(c), WS_OK);
        is(&q.next(), c, WS_CALLBACK_STATUS_HANDLE_CLOSING);
    }
    drop(silent);
}

/// A handle that never started an operation still gets HANDLE_CLOSING, from the queue, never
/// from inside ws_close_handle; a queue cannot close while a handle bound to it waits for it.
#[test]
fn handle_closing_for_an_idle_handle_and_queue_close_rules() {
    let q = Completions::queue();
    let c = open("ws://127.0.0.1:1/");
    q.bind(c);
    assert_code!(
        ws_close_handle(q.queue_handle()),
        WS_ERROR_INVALID_OPERATION
    );
    assert_code!(ws_close_handle(c), WS_OK);
    assert_code!(
        ws_close_handle(q.queue_handle()),
        WS_ERROR_INVALID_OPERATION
    );
    is(&q.next(), c, WS_CALLBACK_STATUS_HANDLE_CLOSING);
    assert!(q.poll(2, 20).is_empty());
    // a queue handle where a connection is needed, and the reverse
    assert_code!(ws_connect(q.queue_handle()), WS_ERROR_INCORRECT_HANDLE_TYPE);
    let c2 = open("ws://127.0.0.1:1/");
    let mut n = 0;
    let mut rec = [ws_completion::default(); 1];
    assert_code!(
        ws_queue_wait(c2, rec.as_mut_ptr(), 1, &mut n, 0),
        WS_ERROR_INCORRECT_HANDLE_TYPE
    );
    assert_code!(
        ws_set_option(
            c2,
            WS_OPTION_COMPLETION_QUEUE,
            (&c2 as *const u64).cast(),
            8
        ),
        WS_ERROR_INCORRECT_HANDLE_TYPE
    );
    ws_close_handle(c2);
}

fn readable(fd: i32, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    assert!(r >= 0);
    r == 1 && p.revents & libc::POLLIN != 0
}

/// ws_queue_fd is level-triggered: readable for posted calls, due deadlines and waiting
/// completions, and not otherwise, so an outside loop needs no timeout of its own; a call
/// from another thread wakes a thread blocked in ws_queue_wait.
#[test]
fn the_queue_fd_is_level_triggered_and_wakes_for_deadlines() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (port, server) = blocking_server(move |h| {
        for _ in 0..3 {
            let (m, _) = recv_message(h);
            assert_code!(send(h, WS_BUFFER_BINARY_MESSAGE, &m), WS_OK);
        }
        let _ = rx.recv_timeout(Duration::from_secs(20));
    });
    let q = Completions::queue();
    let mut fd = -1;
    assert_code!(ws_queue_fd(q.queue_handle(), &mut fd), WS_OK);
    assert!(fd >= 0);
    assert!(!readable(fd, 0), "a fresh queue has nothing to do");
    let c = async_client(&q, port);
    assert!(
        !readable(fd, 0),
        "nothing pending after the connect completed"
    );

    // a receive with a deadline: the call makes the fd readable (posted work) ...
    set_u32(c, WS_OPTION_RECEIVE_TIMEOUT, 300);
    let mut buf = [0u8; 64];
    let started = Instant::now();
    assert_code!(receive(c, &mut buf), WS_ERROR_IO_PENDING);
    assert!(readable(fd, 0));
    assert!(q.poll(4, 0).is_empty());
    // ... and then only the deadline does, with nobody in ws_queue_wait
    assert!(!readable(fd, 0));
    assert!(readable(fd, 5000), "the deadline must make the fd readable");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    failed(&q.poll(4, 0)[0], c, WS_OPERATION_RECEIVE, WS_ERROR_TIMEOUT);
    assert!(!readable(fd, 0), "nothing left to do");

    // more completions than one wait takes: the fd stays readable until all are taken
    set_u32(c, WS_OPTION_RECEIVE_TIMEOUT, 0);
    for m in [&b"a"[..], b"bb", b"ccc"] {
        assert_code!(send(c, WS_BUFFER_BINARY_MESSAGE, m), WS_ERROR_IO_PENDING);
    }
    let mut writes = Vec::new();
    while writes.len() < 3 {
        assert!(readable(fd, 5000));
        writes.extend(q.poll(1, 0));
        if writes.len() < 3 && !writes.is_empty() {
            // one taken, the others wait: still readable at once
            assert!(readable(fd, 0));
        }
    }
    for (w, n) in writes.iter().zip([1, 2, 3]) {
        io(
            w,
            c,
            WS_CALLBACK_STATUS_WRITE_COMPLETE,
            n,
            WS_BUFFER_BINARY_MESSAGE,
        );
    }

    // a thread blocked in ws_queue_wait is woken by a call from another thread; a second
    // waiter meanwhile is refused
    let qh = q.queue_handle();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        let q = Queue(qh);
        let started = Instant::now();
        let got: Vec<_> = q
            .poll(1, 10_000)
            .iter()
            .map(|x| (x.handle, x.status, x.io.bytes_transferred, x.io.buffer_type))
            .collect();
        std::mem::forget(q); // (the test's own Queue closes it)
        (got, started.elapsed())
    });
    wait_blocked(tid_rx.recv().unwrap());
    let mut n = 7;
    let mut rec = [ws_completion::default(); 1];
    assert_code!(
        ws_queue_wait(q.queue_handle(), rec.as_mut_ptr(), 1, &mut n, 0),
        WS_ERROR_INVALID_OPERATION
    );
    assert_eq!(n, 0, "*count is always written");
    let mut rbuf = vec![0u8; 16];
    assert_code!(receive(c, &mut rbuf), WS_ERROR_IO_PENDING);
    let (got, took) = other.join().unwrap();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        got,
        vec![(
            c,
            WS_CALLBACK_STATUS_READ_COMPLETE,
            1,
            WS_BUFFER_BINARY_MESSAGE
        )]
    );
    assert_eq!(rbuf[0], b'a');
    tx.send(()).unwrap();
    assert_code!(ws_close_handle(c), WS_OK);
    is(&q.next(), c, WS_CALLBACK_STATUS_HANDLE_CLOSING);
    assert!(!readable(fd, 0));
    server.join().unwrap();
}

/// A blocking server that holds the connection without reading (so it answers no ping and
/// takes no bytes) until the test is done.
fn idle_server() -> (
    u16,
    std::thread::JoinHandle<()>,
    std::sync::mpsc::Sender<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (port, t) = blocking_server(move |_h| {
        let _ = rx.recv_timeout(Duration::from_secs(20));
    });
    (port, t, tx)
}

/// `c` is ABORTED; the idle server ends, `c` is released and its HANDLE_CLOSING arrives.
fn aborted_then_released(
    q: &Completions,
    c: ws_handle,
    tx: std::sync::mpsc::Sender<()>,
    server: std::thread::JoinHandle<()>,
) {
    assert_eq!(state(c), WS_STATE_ABORTED);
    tx.send(()).unwrap();
    server.join().unwrap();
    assert_code!(ws_close_handle(c), WS_OK);
    is(&q.next(), c, WS_CALLBACK_STATUS_HANDLE_CLOSING);
}

fn within(started: Instant, min_ms: u64) {
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(min_ms) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

/// Keepalive pings and dead-peer detection while a receive is pending: a peer that answers
/// keeps the connection; one that does not is detected (REQUEST_ERROR {RECEIVE, TIMEOUT},
/// ABORTED).
fn keepalive_in_async_mode(q: &Completions) {
    // a peer that answers pings (a blocking ws_receive does), then sends a message
    let (port, server) = blocking_server(|h| {
        set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 500);
        let mut buf = [0u8; 16];
        let (code, _, _) = recv(h, &mut buf);
        assert_code!(code, WS_ERROR_TIMEOUT);
        assert_code!(send(h, WS_BUFFER_UTF8_MESSAGE, b"alive"), WS_OK);
        let (_, ty) = recv_message(h);
        assert_eq!(ty, WS_BUFFER_CLOSE);
        assert_code!(close(h, 1000, b""), WS_OK);
    });
    let c = async_client(q, port);
    set_u32(c, WS_OPTION_KEEPALIVE_INTERVAL, 50);
    set_u32(c, WS_OPTION_KEEPALIVE_TIMEOUT, 300);
    let mut buf = [0u8; 16];
    assert_code!(receive(c, &mut buf), WS_ERROR_IO_PENDING);
    let x = q.next();
    io(
        &x,
        c,
        WS_CALLBACK_STATUS_READ_COMPLETE,
        5,
        WS_BUFFER_UTF8_MESSAGE,
    );
    assert_code!(ws_close(c, 1000, std::ptr::null(), 0), WS_ERROR_IO_PENDING);
    is(&q.next(), c, WS_CALLBACK_STATUS_CLOSE_COMPLETE);
    server.join().unwrap();
    assert_code!(ws_close_handle(c), WS_OK);
    is(&q.next(), c, WS_CALLBACK_STATUS_HANDLE_CLOSING);

    // a peer that never answers
    let (port, server, tx) = idle_server();
    let c = async_client(q, port);
    set_u32(c, WS_OPTION_KEEPALIVE_INTERVAL, 100);
    set_u32(c, WS_OPTION_KEEPALIVE_TIMEOUT, 200);
    let started = Instant::now();
    assert_code!(receive(c, &mut buf), WS_ERROR_IO_PENDING);
    failed(&q.next(), c, WS_OPERATION_RECEIVE, WS_ERROR_TIMEOUT);
    within(started, 280);
    assert_eq!(close_status(c), (1006, Vec::new()));
    aborted_then_released(q, c, tx, server);
}

/// The send and close timeouts against a peer that reads nothing: the pending operations fail
/// with WS_ERROR_TIMEOUT and the connection is aborted.
fn send_and_close_timeouts_in_async_mode(q: &Completions) {
    // send timeout: 16 MiB cannot be written; every pending operation ends
    let (port, server, tx) = idle_server();
    let c = async_client(q, port);
    set_u32(c, WS_OPTION_SEND_TIMEOUT, 300);
    let big = vec![1u8; 16 << 20];
    let started = Instant::now();
    assert_code!(send(c, WS_BUFFER_BINARY_MESSAGE, &big), WS_ERROR_IO_PENDING);
    assert_code!(
        send(c, WS_BUFFER_BINARY_MESSAGE, b"after"),
        WS_ERROR_IO_PENDING
    );
    let got = q.take(2);
    failed(&got[0], c, WS_OPERATION_SEND, WS_ERROR_TIMEOUT);
    failed(&got[1], c, WS_OPERATION_SEND, WS_ERROR_TIMEOUT);
    within(started, 280);
    aborted_then_released(q, c, tx, server);

    // close timeout: the peer never answers our close frame
    let (port, server, tx) = idle_server();
    let c = async_client(q, port);
    set_u32(c, WS_OPTION_CLOSE_TIMEOUT, 300);
    let started = Instant::now();
    assert_code!(ws_close(c, 1000, std::ptr::null(), 0), WS_ERROR_IO_PENDING);
    failed(&q.next(), c, WS_OPERATION_CLOSE, WS_ERROR_TIMEOUT);
    within(started, 280);
    aborted_then_released(q, c, tx, server);
}

/// ws_close with sends pending: the sends complete in order, then the close; the peer gets
/// every message before the close frame. A listener's receive timeout ends a pending
/// ws_accept with REQUEST_ERROR {ACCEPT, TIMEOUT}.
fn close_after_pending_sends_and_accept_timeout(q: &Completions) {
    let (port, server) = blocking_server(|h| {
        for i in 0..20 {
            let (m, _) = recv_message(h);
            assert_eq!(m, format!("message {i}").into_bytes());
        }
        let (_, ty) = recv_message(h);
        assert_eq!(ty, WS_BUFFER_CLOSE);
        assert_eq!(close_status(h), (1000, b"end".to_vec()));
        assert_code!(close(h, 1000, b""), WS_OK);
    });
    let c = async_client(q, port);
    let msgs: Vec<String> = (0..20).map(|i| format!("message {i}")).collect();
    for m in &msgs {
        assert_code!(
            send(c, WS_BUFFER_UTF8_MESSAGE, m.as_bytes()),
            WS_ERROR_IO_PENDING
        );
    }
    assert_code!(
        ws_close(c, 1000, b"end".as_ptr().cast(), 3),
        WS_ERROR_IO_PENDING
    );
    let got = q.take(21);
    for (x, m) in got.iter().zip(&msgs) {
        io(
            x,
            c,
            WS_CALLBACK_STATUS_WRITE_COMPLETE,
            m.len(),
            WS_BUFFER_UTF8_MESSAGE,
        );
    }
    is(&got[20], c, WS_CALLBACK_STATUS_CLOSE_COMPLETE);
    server.join().unwrap();
    assert_code!(ws_close_handle(c), WS_OK);
    is(&q.next(), c, WS_CALLBACK_STATUS_HANDLE_CLOSING);

    let (l, _) = listen("ws://127.0.0.1:0/");
    q.bind(l);
    set_u32(l, WS_OPTION_RECEIVE_TIMEOUT, 200);
    let started = Instant::now();
    assert_code!(ws_accept(l, std::ptr::null_mut()), WS_ERROR_IO_PENDING);
    failed(&q.next(), l, WS_OPERATION_ACCEPT, WS_ERROR_TIMEOUT);
    within(started, 180);
    // the listener stays usable
    assert_code!(ws_accept(l, std::ptr::null_mut()), WS_ERROR_IO_PENDING);
    assert_code!(ws_close_handle(l), WS_OK);
    let got = q.take(2);
    failed(
        &got[0],
        l,
        WS_OPERATION_ACCEPT,
        WS_ERROR_OPERATION_CANCELLED,
    );
    is(&got[1], l, WS_CALLBACK_STATUS_HANDLE_CLOSING);
}

/// `bounded_in_both_modes!(f, ...)`: like `both_modes!`, each run on its own thread with a
/// time limit, for a test whose failure would be a hang.
macro_rules! bounded_in_both_modes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn queue() {
                super::bounded(|| super::$name(&super::Completions::queue()));
            }
            #[test]
            fn callbacks() {
                super::bounded(|| super::$name(&super::Completions::callbacks()));
            }
        }
    )*};
}

bounded_in_both_modes!(a_frame_header_split_across_reads_after_a_completed_receive);

/// Runs `body` on its own thread and fails (instead of hanging) when it has not returned
/// within 30 s: a loop that spins inside ws_queue_wait never gives the thread back.
fn bounded<F: FnOnce() + Send + 'static>(body: F) {
    let limit = Duration::from_secs(30);
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        body();
        let _ = tx.send(());
    });
    match rx.recv_timeout(limit) {
        Ok(()) => t.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            t.join().unwrap(); // the body panicked: report its panic
        }
        Err(_) => panic!("not finished within {limit:?}: the loop hangs"),
    }
}

/// Three messages and the first byte of a fourth frame arrive in one read; the three
/// receives complete from what is left of it, and the fourth must wait for the rest of the
/// header from the socket (a loop that fed the lone byte again and again hung here, with the
/// client's own send stuck behind it).
fn a_frame_header_split_across_reads_after_a_completed_receive(q: &Completions) {
    use common::raw::{close_payload, RawConn, RawServer, OP_CLOSE, OP_TEXT};
    let server = RawServer::start(|s| {
        let mut c = RawConn::server(s).unwrap();
        let mut burst = Vec::new();
        for m in [&b"one"[..], b"two", b"three"] {
            burst.extend(c.frame(OP_TEXT, true, m));
        }
        let fourth = c.frame(OP_TEXT, true, b"four");
        burst.push(fourth[0]);
        c.send_raw(&burst).unwrap();
        // the client asks for the rest once it has the three
        let f = c.read_frame().unwrap();
        assert_eq!(f.payload, b"more");
        c.send_raw(&fourth[1..]).unwrap();
        let f = c.read_frame().unwrap();
        assert_eq!(f.close_status(), Some(1000));
        c.send_frame(OP_CLOSE, true, &close_payload(1000, b""))
            .unwrap();
    });
    let c = async_client(q, server.port);
    let mut buf = [0u8; 16];
    for m in [&b"one"[..], b"two", b"three"] {
        assert_code!(receive(c, &mut buf), WS_ERROR_IO_PENDING);
        let x = q.next();
        io(
            &x,
            c,
            WS_CALLBACK_STATUS_READ_COMPLETE,
            m.len(),
            WS_BUFFER_UTF8_MESSAGE,
        );
        assert_eq!(&buf[..m.len()], m);
    }
    let more = (WS_BUFFER_BINARY_MESSAGE, &b"more"[..]);
    send_then_receive(q, c, &mut buf, more, (4, WS_BUFFER_UTF8_MESSAGE));
    assert_eq!(&buf[..4], b"four");
    assert_code!(ws_close(c, 1000, std::ptr::null(), 0), WS_ERROR_IO_PENDING);
    is(&q.next(), c, WS_CALLBACK_STATUS_CLOSE_COMPLETE);
    assert_code!(ws_close_handle(c), WS_OK);
    is(&q.next(), c, WS_CALLBACK_STATUS_HANDLE_CLOSING);
}

both_modes!(large_and_small_messages_pipelined_both_ways);

/// Large and small messages pipelined both ways on one queue: the server's unmasked echoes of
/// large payloads go from its buffer to the socket directly, large payloads are read straight
/// into the receivers' buffers, and everything arrives whole and in order, in pieces where a
/// buffer is smaller than the message.
fn large_and_small_messages_pipelined_both_ways(q: &Completions) {
    let (l, port) = listen("ws://127.0.0.1:0/");
    q.bind(l);
    assert_code!(ws_accept(l, std::ptr::null_mut()), WS_ERROR_IO_PENDING);
    let c = open(&format!("ws://127.0.0.1:{port}/"));
    q.bind(c);
    assert_code!(ws_connect(c), WS_ERROR_IO_PENDING);
    let got = q.take(2);
    let s = got.iter().find(|x| x.handle == l).unwrap().accepted;

    let sizes = [10usize, 3 << 20, 20, 1 << 20, 17 * 1024, 0, 100_000];
    let msgs: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|k| (k * 7 + i * 13 + k / 251) as u8).collect())
        .collect();
    for m in &msgs {
        assert_code!(send(c, WS_BUFFER_BINARY_MESSAGE, m), WS_ERROR_IO_PENDING);
    }
    // the server receives messages into one large buffer (whole, or in pieces when the
    // socket had no more for the moment) and echoes each from its own copy (kept until its
    // WRITE_COMPLETE)
    let mut sbuf = vec![0u8; 4 << 20];
    let mut echoes: Vec<Vec<u8>> = Vec::new();
    let mut spiece = Vec::new();
    assert_code!(receive(s, &mut sbuf), WS_ERROR_IO_PENDING);
    // the client receives in 256 KiB pieces
    let mut cbuf = vec![0u8; 256 * 1024];
    let mut piece = Vec::new();
    let mut back: Vec<Vec<u8>> = Vec::new();
    assert_code!(receive(c, &mut cbuf), WS_ERROR_IO_PENDING);
    let (mut client_writes, mut server_writes) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while back.len() < msgs.len() || client_writes < msgs.len() || server_writes < msgs.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} echoed",
            back.len(),
            msgs.len()
        );
        for x in q.poll(16, 100) {
            match (x.handle, x.status) {
                (h, WS_CALLBACK_STATUS_WRITE_COMPLETE) if h == c => {
                    io(
                        &x,
                        c,
                        x.status,
                        sizes[client_writes],
                        WS_BUFFER_BINARY_MESSAGE,
                    );
                    client_writes += 1;
                }
                (h, WS_CALLBACK_STATUS_WRITE_COMPLETE) if h == s => {
                    io(
                        &x,
                        s,
                        x.status,
                        sizes[server_writes],
                        WS_BUFFER_BINARY_MESSAGE,
                    );
                    server_writes += 1;
                }
                (h, WS_CALLBACK_STATUS_READ_COMPLETE) if h == s => {
                    // a receive completes with what has arrived when the socket has no more
                    // (in callback mode the loop reads as the bytes come)
                    spiece.extend_from_slice(&sbuf[..x.io.bytes_transferred]);
                    match x.io.buffer_type {
                        WS_BUFFER_BINARY_MESSAGE => {
                            assert_eq!(spiece.len(), sizes[echoes.len()]);
                            echoes.push(std::mem::take(&mut spiece));
                            let e = echoes.last().unwrap();
                            assert_code!(send(s, WS_BUFFER_BINARY_MESSAGE, e), WS_ERROR_IO_PENDING);
                        }
                        WS_BUFFER_BINARY_FRAGMENT => {}
                        other => panic!("buffer type {other}"),
                    }
                    if echoes.len() < msgs.len() {
                        assert_code!(receive(s, &mut sbuf), WS_ERROR_IO_PENDING);
                    }
                }
                (h, WS_CALLBACK_STATUS_READ_COMPLETE) if h == c => {
                    let n = x.io.bytes_transferred;
                    piece.extend_from_slice(&cbuf[..n]);
                    match x.io.buffer_type {
                        WS_BUFFER_BINARY_MESSAGE => back.push(std::mem::take(&mut piece)),
                        WS_BUFFER_BINARY_FRAGMENT => assert!(n > 0),
                        other => panic!("buffer type {other}"),
                    }
                    if back.len() < msgs.len() {
                        assert_code!(receive(c, &mut cbuf), WS_ERROR_IO_PENDING);
                    }
                }
                _ => panic!("unexpected {x:?}"),
            }
        }
    }
    assert_eq!(echoes, msgs);
    assert_eq!(back, msgs);
    for h in [c, s, l] {
        assert_code!(ws_close_handle(h), WS_OK);
    }
    for x in q.take(3) {
        is(&x, x.handle, WS_CALLBACK_STATUS_HANDLE_CLOSING);
    }
}

both_modes!(many_pending_small_sends_complete_in_linear_time);

/// 200,000 small sends posted at once (a Python asyncio client does that when it sends in a
/// loop without yielding): all complete, in order, in linear time. Framing used to look for
/// the next unframed send from the front of the queue, n² steps for n pending sends. The
/// bound is generous: it only tells linear from quadratic.
fn many_pending_small_sends_complete_in_linear_time(q: &Completions) {
    const N: usize = 200_000;
    static PAYLOAD: [u8; 16] = *b"0123456789abcdef";
    let (port, server) = blocking_server(|h| {
        for _ in 0..N {
            let (m, ty) = recv_message(h);
            assert_eq!((m.as_slice(), ty), (&PAYLOAD[..], WS_BUFFER_BINARY_MESSAGE));
        }
        let (_, ty) = recv_message(h);
        assert_eq!(ty, WS_BUFFER_CLOSE);
        assert_code!(close(h, 1000, b""), WS_OK);
    });
    let c = async_client(q, port);
    let started = Instant::now();
    for _ in 0..N {
        assert_code!(
            send(c, WS_BUFFER_BINARY_MESSAGE, &PAYLOAD),
            WS_ERROR_IO_PENDING
        );
    }
    let mut written = 0;
    while written < N {
        for x in q.poll(4096, 100) {
            io(
                &x,
                c,
                WS_CALLBACK_STATUS_WRITE_COMPLETE,
                16,
                WS_BUFFER_BINARY_MESSAGE,
            );
            written += 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "only {written} of {N} sends completed in 20 s"
        );
    }
    assert_code!(ws_close(c, 1000, std::ptr::null(), 0), WS_ERROR_IO_PENDING);
    is(&q.next(), c, WS_CALLBACK_STATUS_CLOSE_COMPLETE);
    server.join().unwrap();
    assert_code!(ws_close_handle(c), WS_OK);
    is(&q.next(), c, WS_CALLBACK_STATUS_HANDLE_CLOSING);
}
