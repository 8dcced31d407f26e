//! A listener under pressure: a thousand clients trickling partial upgrade requests must not
//! slow a good client down or keep the listener busy (each request is scanned only where new
//! bytes arrived, and only ready descriptors are read), and a connection accepted with the
//! process's last descriptor needs no other (a valid request whose connection cannot be set
//! up is answered with 503, never with a 101 that no connection backs).

mod common;
use common::raw::{read_head, report, upgrade_request};
use common::*;
use std::ffi::CString;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const SLOW_CLIENTS: usize = 1000;
/// Each slow client's partial request starts with this much of a header value.
const PARTIAL_PAD: usize = 8 * 1024;

/// Raises the soft limit on open descriptors to what `need` takes (up to the hard limit).
fn allow_descriptors(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read a live rlimit struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < need {
            assert!(
                lim.rlim_max >= need,
                "the hard limit on open files ({}) is below the {need} this test needs",
                lim.rlim_max
            );
            lim.rlim_cur = need;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
}

/// CPU time used by the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes a live timespec.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) },
        0
    );
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[test]
fn a_thousand_slow_partial_requests_do_not_slow_a_good_client() {
    allow_descriptors(2 * SLOW_CLIENTS as u64 + 512);
    let (l, port) = listen("ws://127.0.0.1:0/fast");
    set_u32(l, WS_OPTION_RECEIVE_TIMEOUT, 60_000);
    let (work_scanned, work_parsed) = wshandle::protocol::handshake::work_done();

    // one ws_accept, on its own thread, measuring its CPU time
    let (tx, accepted) = mpsc::channel();
    let acceptor = std::thread::spawn(move || {
        let (wall, cpu) = (Instant::now(), thread_cpu());
        let mut h = 0;
        let code = ws_accept(l, &mut h);
        let _ = tx.send((code, h, wall.elapsed(), thread_cpu() - cpu));
    });

    // slow clients: a partial request each, then a byte now and then
    let sent = Arc::new(AtomicU64::new(0));
    let mut slow = Vec::with_capacity(SLOW_CLIENTS);
    for _ in 0..SLOW_CLIENTS {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut partial = b"GET /fast HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ".to_vec();
        partial.resize(partial.len() + PARTIAL_PAD, b'a');
        s.write_all(&partial).unwrap();
        sent.fetch_add(partial.len() as u64, Ordering::Relaxed);
        slow.push(s);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (dripping_tx, dripping) = mpsc::channel();
    let dripper = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            // about 2,000 bytes a second in all, spread over the clients; bounded
            let mut next = 0;
            for round in 0..3_000u32 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                for _ in 0..20 {
                    let _ = slow[next].write_all(b"a");
                    sent.fetch_add(1, Ordering::Relaxed);
                    next = (next + 1) % slow.len();
                }
                if round == 50 {
                    let _ = dripping_tx.send(());
                }
                std::thread::sleep(Duration::from_millis(10)); // pacing, not synchronisation
            }
            slow
        })
    };
    dripping.recv_timeout(Duration::from_secs(60)).unwrap();

    // the good client, while the others drip
    let t = Instant::now();
    let mut good = TcpStream::connect(("127.0.0.1", port)).unwrap();
    good.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = upgrade_request("/fast");
    good.write_all(&request).unwrap();
    let (head, _) = read_head(&mut good, Vec::new(), 16 * 1024).unwrap();
    let handshake = t.elapsed();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let (code, h, wall, cpu) = accepted.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_code!(code, WS_OK);
    stop.store(true, Ordering::Relaxed);
    let slow = dripper.join().unwrap();
    acceptor.join().unwrap();

    // the handshake works: a message goes through
    good.write_all(&common::raw::encode(
        common::raw::OP_TEXT,
        true,
        b"hi",
        Some([1, 2, 3, 4]),
    ))
    .unwrap();
    assert_eq!(recv_message(h), (b"hi".to_vec(), WS_BUFFER_UTF8_MESSAGE));

    // the work done: every byte received scanned at most once; one complete head parsed
    let (scanned, parsed) = wshandle::protocol::handshake::work_done();
    let total = sent.load(Ordering::Relaxed) + request.len() as u64;
    report(&format!(
        "{SLOW_CLIENTS} slow partial requests: good client's handshake {:.2} ms; ws_accept used {:.0} ms of CPU in {:.0} ms ({:.1} %); scanned {} of {total} bytes sent, parsed {} heads",
        handshake.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3,
        wall.as_secs_f64() * 1e3,
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        scanned - work_scanned,
        parsed - work_parsed,
    ));
    assert!(scanned - work_scanned <= total, "bytes were scanned twice");
    assert_eq!(parsed - work_parsed, 1, "only the good request is complete");
    // generous bounds: unloaded, the handshake takes well under 10 ms and the listener a few
    // per cent of a core (re-reading every pending request on every wake-up took 100 %)
    assert!(handshake < Duration::from_secs(5), "{handshake:?}");
    assert!(
        cpu.as_secs_f64() < 0.5 * wall.as_secs_f64(),
        "ws_accept used {cpu:?} of CPU in {wall:?}"
    );
    assert_code!(ws_close_handle(h), WS_OK);
    assert_code!(ws_close_handle(l), WS_OK);
    drop(slow);
}

/// Runs the test `name` (ignored in normal runs) alone in a child process with `env` set.
fn run_child(name: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WSHANDLE_TEST_CHILD", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} failed:\n{text}");
    assert!(text.contains("1 passed"), "{name} did not run:\n{text}");
    text
}

#[test]
fn a_connection_accepted_with_the_last_descriptor_needs_no_other() {
    run_child("child_accept_without_a_descriptor_left");
}

/// Run by `a_connection_accepted_with_the_last_descriptor_needs_no_other` in a process of
/// its own: it lowers the limit on open descriptors so that the accepted socket takes the
/// last one.
#[test]
#[ignore = "run in a child process by a_connection_accepted_with_the_last_descriptor_needs_no_other"]
fn child_accept_without_a_descriptor_left() {
    assert_eq!(std::env::var("WSHANDLE_TEST_CHILD").as_deref(), Ok("1"));
    let (l, port) = listen("ws://127.0.0.1:0/x");
    set_u32(l, WS_OPTION_RECEIVE_TIMEOUT, 5_000);
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.write_all(&upgrade_request("/x")).unwrap();

    // the lowest free descriptor is the one accept() will take: allow no more than it
    // SAFETY: plain descriptor and rlimit calls on live values.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let free = unsafe { libc::fcntl(0, libc::F_DUPFD, 0) };
    assert!(free > 0);
    unsafe {
        libc::close(free);
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
    }
    let lim = lim;
    let limit_to = |n: libc::rlim_t| {
        let low = libc::rlimit {
            rlim_cur: n,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: a live rlimit struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
    };
    limit_to(free as libc::rlim_t + 1);
    let mut h = 0;
    let code = ws_accept(l, &mut h);
    // the accepted socket took the last descriptor: a connection needs no other (its wake-up
    // descriptor is made by its first blocking wait, if it ever waits)
    assert_code!(code, WS_OK);
    // a call that needs a descriptor now fails with OUT_OF_HANDLES: a completion queue's
    // poller; ws_open needs none
    let mut other = 0;
    let queue_code = ws_queue_create(&mut other);
    let detail = last_error();
    let url = CString::new("ws://127.0.0.1:1/").unwrap();
    let mut unused = 0;
    let open_code = ws_open(url.as_ptr(), &mut unused);
    limit_to(lim.rlim_cur);
    assert_code!(queue_code, WS_ERROR_OUT_OF_HANDLES);
    assert!(detail.contains("descriptor"), "{detail}");
    assert_code!(open_code, WS_OK);
    assert_code!(ws_close_handle(unused), WS_OK);

    // the client got its 101, and the connection works (its first wait makes its descriptor)
    let (head, _) = read_head(&mut client, Vec::new(), 16 * 1024).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    client
        .write_all(&common::raw::encode_with(
            common::raw::OP_TEXT,
            true,
            0,
            b"last",
            Some([1, 2, 3, 4]),
            None,
        ))
        .unwrap();
    assert_eq!(recv_message(h), (b"last".to_vec(), WS_BUFFER_UTF8_MESSAGE));
    assert_code!(ws_close_handle(h), WS_OK);

    // the listener goes on: the next client is accepted
    let acceptor = std::thread::spawn(move || {
        let mut h = 0;
        assert_code!(ws_accept(l, &mut h), WS_OK);
        h
    });
    let mut c = common::raw::RawConn::client(port, "/x").unwrap();
    let h = acceptor.join().unwrap();
    c.send_frame(common::raw::OP_TEXT, true, b"after").unwrap();
    assert_eq!(recv_message(h), (b"after".to_vec(), WS_BUFFER_UTF8_MESSAGE));
    assert_code!(ws_close_handle(h), WS_OK);
    assert_code!(ws_close_handle(l), WS_OK);
}
