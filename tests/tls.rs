//! wss:// and the upgrade request: TLS against Python `websockets` and wshandle's own
//! listener, certificate failures, the CA option, an HTTP CONNECT proxy (tinyproxy),
//! response headers, subprotocol and status checks.

mod common;
use common::asyncq::*;
use common::*;
use std::ffi::CString;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

fn set_str(h: ws_handle, opt: u32, v: &str) -> ws_error {
    ws_set_option(h, opt, v.as_ptr().cast(), v.len())
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A `websockets` echo server over TLS with the given certificate.
fn tls_peer(cert: &(std::path::PathBuf, std::path::PathBuf)) -> Peer {
    Peer::ws(
        "echo",
        &["--tls-cert", path(&cert.0), "--tls-key", path(&cert.1)],
    )
}

fn wss_connect(url: &str, ca: Option<&Path>) -> (ws_handle, ws_error) {
    let h = open(url);
    set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 10_000);
    if let Some(ca) = ca {
        assert_code!(set_str(h, WS_OPTION_TLS_CA_FILE, path(ca)), WS_OK);
    }
    let code = ws_connect(h);
    (h, code)
}

#[test]
fn wss_echo_against_websockets_with_a_private_ca() {
    let mut peer = tls_peer(&PKI.good);
    let url = format!("wss://127.0.0.1:{}/tls", peer.port);
    let (h, code) = wss_connect(&url, Some(&PKI.ca));
    assert_code!(code, WS_OK);
    assert_eq!(peer.event("request")["path"], "/tls");
    for (ty, data) in [
        (WS_BUFFER_UTF8_MESSAGE, b"over TLS".to_vec()),
        (WS_BUFFER_BINARY_MESSAGE, vec![9u8; 300_000]),
    ] {
        assert_code!(send(h, ty, &data), WS_OK);
        assert_eq!(recv_message(h), (data, ty));
    }
    assert_code!(close(h, 1000, b"tls bye"), WS_OK);
    assert_eq!(close_status(h), (1000, b"tls bye".to_vec()));
    assert_eq!(peer.event("closed")["rcvd_reason"], "tls bye");
    ws_close_handle(h);
}

fn expect_secure_failure(
    cert: &(std::path::PathBuf, std::path::PathBuf),
    host: &str,
    ca: Option<&Path>,
    words: &str,
) {
    let peer = tls_peer(cert);
    let (h, code) = wss_connect(&format!("wss://{host}:{}/", peer.port), ca);
    assert_code!(code, WS_ERROR_SECURE_FAILURE);
    let detail = last_error();
    assert!(detail.contains(words), "{detail:?} does not say {words:?}");
    assert_eq!(state(h), WS_STATE_NONE);
    ws_close_handle(h);
}

#[test]
fn the_close_handshake_over_tls_ends_with_close_notify() {
    let mut peer = Peer::raw(
        "record",
        &[
            "--tls-cert",
            path(&PKI.good.0),
            "--tls-key",
            path(&PKI.good.1),
        ],
    );
    let (h, code) = wss_connect(&format!("wss://127.0.0.1:{}/", peer.port), Some(&PKI.ca));
    assert_code!(code, WS_OK);
    assert_code!(send(h, WS_BUFFER_BINARY_MESSAGE, b"x"), WS_OK);
    assert_code!(close(h, 1000, b""), WS_OK);
    assert_eq!(peer.event("close")["code"], 1000);
    let ev = peer.event("tls-closed");
    assert_eq!(ev["close_notify"], true, "{ev}");
    ws_close_handle(h);
}

#[test]
fn certificate_failures_say_what_is_wrong() {
    // not trusted: the system roots do not know our CA
    expect_secure_failure(&PKI.good, "127.0.0.1", None, "unknown issuer");
    expect_secure_failure(
        &PKI.unknown_issuer,
        "127.0.0.1",
        Some(&PKI.ca),
        "unknown issuer",
    );
    expect_secure_failure(&PKI.expired, "127.0.0.1", Some(&PKI.ca), "expired");
    expect_secure_failure(&PKI.wrong_name, "127.0.0.1", Some(&PKI.ca), "name mismatch");
    // the same server passes once its CA is trusted, by IP and by name (SNI)
    for host in ["127.0.0.1", "localhost"] {
        let peer = tls_peer(&PKI.good);
        let (h, code) = wss_connect(&format!("wss://{host}:{}/", peer.port), Some(&PKI.ca));
        assert_code!(code, WS_OK);
        assert_code!(close(h, 1000, b""), WS_OK);
        ws_close_handle(h);
    }
}

#[test]
fn insecure_skip_verify_accepts_any_certificate() {
    let peer = tls_peer(&PKI.unknown_issuer);
    let h = open(&format!("wss://127.0.0.1:{}/", peer.port));
    set_u32(h, WS_OPTION_TLS_INSECURE_SKIP_VERIFY, 1);
    assert_code!(ws_connect(h), WS_OK);
    assert_code!(close(h, 1000, b""), WS_OK);
    ws_close_handle(h);
}

fn wss_listener() -> (ws_handle, u16) {
    let url = CString::new("wss://127.0.0.1:0/secure").unwrap();
    let mut l = 0;
    assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
    assert_code!(
        set_str(l, WS_OPTION_TLS_CERT_FILE, path(&PKI.good.0)),
        WS_OK
    );
    assert_code!(set_str(l, WS_OPTION_TLS_KEY_FILE, path(&PKI.good.1)), WS_OK);
    let port = local_port(l);
    (l, port)
}

fn accept(l: ws_handle) -> ws_handle {
    let mut h = 0;
    assert_code!(ws_accept(l, &mut h), WS_OK);
    h
}

#[test]
fn wshandle_wss_listener_with_wshandle_and_websockets_clients() {
    let (l, port) = wss_listener();
    let url = format!("wss://localhost:{port}/secure");
    let client = std::thread::spawn(move || wss_connect(&url, Some(&PKI.ca)));
    let s = accept(l);
    let (c, code) = client.join().unwrap();
    assert_code!(code, WS_OK);
    assert_code!(
        send(c, WS_BUFFER_UTF8_MESSAGE, b"hello secure server"),
        WS_OK
    );
    assert_eq!(
        recv_message(s),
        (b"hello secure server".to_vec(), WS_BUFFER_UTF8_MESSAGE)
    );
    assert_code!(shutdown(c, 1000, b""), WS_OK);
    assert_eq!(recv_message(s).1, WS_BUFFER_CLOSE);
    assert_code!(send(s, WS_BUFFER_UTF8_MESSAGE, b"last"), WS_OK);
    assert_code!(close(s, 1000, b""), WS_OK);
    assert_eq!(recv_message(c), (b"last".to_vec(), WS_BUFFER_UTF8_MESSAGE));
    assert_eq!(recv_message(c).1, WS_BUFFER_CLOSE);
    ws_close_handle(c);
    ws_close_handle(s);

    // the websockets client, trusting our CA, against an echo loop on the same listener
    let server = std::thread::spawn(move || {
        let s = accept(l);
        let mut buf = vec![0u8; 65536];
        loop {
            let (code, n, ty) = recv(s, &mut buf);
            assert_code!(code, WS_OK);
            if ty == WS_BUFFER_CLOSE {
                let (status, reason) = close_status(s);
                assert_code!(close(s, status, &reason), WS_OK);
                break;
            }
            assert_code!(send(s, ty, &buf[..n]), WS_OK);
        }
        ws_close_handle(s);
    });
    let out = Command::new(&*PYTHON)
        .arg(repo().join("tests/peers/ws_client.py"))
        .args([
            "--url",
            &format!("wss://localhost:{port}/secure"),
            "--scenario",
            "echo",
        ])
        .args(["--ca", path(&PKI.ca), "--deadline", "60"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("\"ok\":true"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.join().unwrap();
    ws_close_handle(l);
}

#[test]
fn a_wss_listener_without_a_certificate_says_so() {
    let url = CString::new("wss://127.0.0.1:0/").unwrap();
    let mut l = 0;
    assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
    let mut h = 0;
    assert_code!(ws_accept(l, &mut h), WS_ERROR_SECURE_FAILURE);
    assert!(
        last_error().contains("WS_OPTION_TLS_CERT_FILE"),
        "{}",
        last_error()
    );
    ws_close_handle(l);
    // TLS options do not apply to a ws:// listener
    let url = CString::new("ws://127.0.0.1:0/").unwrap();
    assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
    assert_code!(
        set_str(l, WS_OPTION_TLS_CERT_FILE, "x.pem"),
        WS_ERROR_INVALID_OPTION
    );
    ws_close_handle(l);
}

/// tinyproxy on 127.0.0.1 with its own config; killed (by PID) on drop.
struct Tinyproxy {
    child: Child,
    port: u16,
}

impl Tinyproxy {
    fn start(extra_config: &str) -> Tinyproxy {
        let _ = &*PYTHON; // the set-up script installs tinyproxy
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = target_dir().join(format!("tinyproxy-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 20\nLogLevel Info\nLogFile \"{}\"\nPidFile \"{}\"\nAllow 127.0.0.1\n{extra_config}\n",
                dir.join("log").display(),
                dir.join("pid").display()
            ),
        )
        .unwrap();
        let child = Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy (installed by scripts/setup-test-env.sh)");
        // ready once it accepts
        let until = Instant::now() + EVENT_WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "tinyproxy did not start");
            std::thread::yield_now();
        }
        Tinyproxy { child, port }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_http_connect_proxy_carries_ws_and_wss() {
    let proxy = Tinyproxy::start("");
    echo_through(&proxy.url(), "/via-proxy");
}

#[test]
fn a_proxy_that_refuses_connect() {
    // tinyproxy allows CONNECT to port 1 only: our peer's port is refused with 403
    let proxy = Tinyproxy::start("ConnectPort 1");
    let peer = Peer::ws("echo", &[]);
    let h = open(&peer.url("/"));
    set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 10_000);
    assert_code!(set_str(h, WS_OPTION_PROXY, &proxy.url()), WS_OK);
    assert_code!(ws_connect(h), WS_ERROR_CANNOT_CONNECT);
    assert!(last_error().contains("HTTP 403"), "{}", last_error());
    ws_close_handle(h);
}

/// A raw CONNECT proxy (in this process) that answers with `answer` — which may hold
/// interim answers and many headers — in pieces of `piece` bytes, then tunnels to the
/// requested target. The request's target is checked.
fn raw_proxy(answer: Vec<u8>, piece: usize) -> common::raw::RawServer {
    use std::io::Write;
    common::raw::RawServer::start(move |mut client| {
        let Ok((head, early)) = common::raw::read_head(&mut client, Vec::new(), 16 * 1024) else {
            return;
        };
        let target = head
            .strip_prefix("CONNECT ")
            .and_then(|r| r.split(' ').next())
            .expect("a CONNECT request")
            .to_owned();
        assert!(early.is_empty(), "the client sent before the answer");
        let Ok(mut server) = std::net::TcpStream::connect(&target) else {
            return;
        };
        for chunk in answer.chunks(piece) {
            if client.write_all(chunk).is_err() {
                return;
            }
        }
        let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let up = std::thread::spawn(move || {
            let _ = std::io::copy(&mut c2, &mut s2);
            let _ = s2.shutdown(std::net::Shutdown::Write);
        });
        let _ = std::io::copy(&mut server, &mut client);
        let _ = client.shutdown(std::net::Shutdown::Write);
        let _ = up.join();
    })
}

/// Connects through the proxy at `proxy_url` to an echo peer on `path`, over ws:// and
/// wss://, and echoes one message.
/// The websockets echo peer, over TLS with our good certificate when `secure`, and its scheme.
fn echo_peer(secure: bool) -> (Peer, &'static str) {
    if secure {
        (tls_peer(&PKI.good), "wss")
    } else {
        (Peer::ws("echo", &[]), "ws")
    }
}

fn echo_through(proxy_url: &str, path: &str) {
    for secure in [false, true] {
        let (mut peer, scheme) = echo_peer(secure);
        let h = open(&format!("{scheme}://127.0.0.1:{}{path}", peer.port));
        set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 10_000);
        assert_code!(set_str(h, WS_OPTION_PROXY, proxy_url), WS_OK);
        assert_code!(
            set_str(h, WS_OPTION_TLS_CA_FILE, self::path(&PKI.ca)),
            WS_OK
        );
        assert_code!(ws_connect(h), WS_OK);
        assert_eq!(peer.event("request")["path"], path);
        assert_code!(send(h, WS_BUFFER_BINARY_MESSAGE, b"tunnelled"), WS_OK);
        assert_eq!(
            recv_message(h),
            (b"tunnelled".to_vec(), WS_BUFFER_BINARY_MESSAGE)
        );
        assert_code!(close(h, 1000, b""), WS_OK);
        ws_close_handle(h);
    }
}

#[test]
fn a_proxy_may_send_interim_answers_before_its_200() {
    // 100 Continue and 102 Processing, then the 200: all at once, and a byte at a time
    let answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX-Step: 1\r\n\r\nHTTP/1.1 200 Connection established\r\n\r\n".to_vec();
    for piece in [usize::MAX, 1] {
        let proxy = raw_proxy(answer.clone(), piece);
        echo_through(&format!("http://127.0.0.1:{}", proxy.port), "/raw-proxy");
    }
}

#[test]
fn a_proxy_answer_with_a_hundred_headers() {
    let mut answer = b"HTTP/1.0 200 Connection established\r\n".to_vec();
    for i in 0..100 {
        answer.extend(format!("X-Proxy-Header-{i}: value {i}\r\n").bytes());
    }
    answer.extend_from_slice(b"\r\n");
    let proxy = raw_proxy(answer, 1000);
    echo_through(&format!("http://127.0.0.1:{}", proxy.port), "/raw-proxy");
}

#[test]
fn a_proxy_answer_that_is_refused() {
    // a final answer after an interim one; a head over 16 KiB; garbage
    let mut long = b"HTTP/1.1 200 OK\r\n".to_vec();
    long.extend(format!("X-Long: {}\r\n\r\n", "x".repeat(16 * 1024)).bytes());
    for (answer, detail) in [
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 407 Proxy Authentication Required\r\n\r\n"
                .to_vec(),
            "HTTP 407 Proxy Authentication Required",
        ),
        (long, "longer than 16384 bytes"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec(), "not valid HTTP"),
    ] {
        let proxy = raw_proxy(answer, 512);
        let peer = Peer::ws("echo", &[]);
        let h = open(&peer.url("/"));
        set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 10_000);
        let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
        assert_code!(set_str(h, WS_OPTION_PROXY, &proxy_url), WS_OK);
        assert_code!(ws_connect(h), WS_ERROR_CANNOT_CONNECT);
        assert!(last_error().contains(detail), "{detail}: {}", last_error());
        assert_eq!(state(h), WS_STATE_NONE);
        ws_close_handle(h);
    }
}

#[test]
fn response_headers_status_and_subprotocol_checks() {
    // a refused upgrade: the status and the response's headers are readable
    let peer = Peer::raw(
        "record",
        &[
            "--status",
            "401",
            "--header",
            "WWW-Authenticate: Basic realm=\"ws\"",
        ],
    );
    let h = open(&peer.url("/"));
    assert_code!(ws_connect(h), WS_ERROR_INVALID_SERVER_RESPONSE);
    assert!(last_error().contains("HTTP 401"), "{}", last_error());
    let mut status = 0u32;
    let mut len = 4;
    assert_code!(
        ws_query_option(
            h,
            WS_OPTION_HTTP_STATUS,
            (&mut status as *mut u32).cast(),
            &mut len
        ),
        WS_OK
    );
    assert_eq!(status, 401);
    let name = CString::new("www-authenticate").unwrap();
    let mut needed = 0usize;
    assert_code!(
        ws_query_response_header(h, name.as_ptr(), std::ptr::null_mut(), 0, &mut needed),
        WS_ERROR_INSUFFICIENT_BUFFER
    );
    assert_eq!(needed, "Basic realm=\"ws\"".len() + 1);
    let mut buf = vec![0xFFu8; needed];
    let mut used = 0usize;
    assert_code!(
        ws_query_response_header(
            h,
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut used
        ),
        WS_OK
    );
    assert_eq!((&buf[..used], buf[used]), (&b"Basic realm=\"ws\""[..], 0));
    let absent = CString::new("X-Absent").unwrap();
    assert_code!(
        ws_query_response_header(
            h,
            absent.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut used
        ),
        WS_ERROR_HEADER_NOT_FOUND
    );
    assert_eq!(WS_ERROR_HEADER_NOT_FOUND, 12150);
    ws_close_handle(h);

    // before any response
    let h = open(&peer.url("/"));
    assert_code!(
        ws_query_response_header(
            h,
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut used
        ),
        WS_ERROR_INCORRECT_HANDLE_STATE
    );
    ws_close_handle(h);

    // a server that picks a subprotocol the client did not offer
    let peer = Peer::raw("record", &["--header", "Sec-WebSocket-Protocol: bogus"]);
    let h = open(&peer.url("/"));
    assert_code!(set_str(h, WS_OPTION_SUBPROTOCOLS, "chat"), WS_OK);
    assert_code!(ws_connect(h), WS_ERROR_INVALID_SERVER_RESPONSE);
    assert!(last_error().contains("bogus"), "{}", last_error());
    ws_close_handle(h);

    // a successful upgrade: the websockets server's own headers
    let peer = Peer::ws("echo", &[]);
    let h = connect(&peer.url("/"));
    let upgrade = CString::new("Upgrade").unwrap();
    assert_code!(
        ws_query_response_header(
            h,
            upgrade.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut used
        ),
        WS_OK
    );
    assert_eq!(&buf[..used], b"websocket");
    assert_code!(close(h, 1000, b""), WS_OK);
    ws_close_handle(h);
}

/// The seed scenario (128 MiB up, a reply per 4 MiB, the last word after the client's
/// close) between wshandle's client and server, over ws:// and wss:// in one run.
#[test]
fn seed_scenario_over_ws_and_wss() {
    for secure in [false, true] {
        let scheme = if secure { "wss" } else { "ws" };
        let url = CString::new(format!("{scheme}://127.0.0.1:0/seed")).unwrap();
        let mut l = 0;
        assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
        if secure {
            assert_code!(
                set_str(l, WS_OPTION_TLS_CERT_FILE, path(&PKI.good.0)),
                WS_OK
            );
            assert_code!(set_str(l, WS_OPTION_TLS_KEY_FILE, path(&PKI.good.1)), WS_OK);
        }
        let port = local_port(l);
        let server = std::thread::spawn(move || {
            let s = accept(l);
            let mut buf = vec![0u8; 65536];
            let (mut count, mut total) = (0usize, 0usize);
            loop {
                let (code, n, ty) = recv(s, &mut buf);
                assert_code!(code, WS_OK);
                if ty == WS_BUFFER_CLOSE {
                    break;
                }
                total += n;
                count += n;
                while count >= 4 << 20 {
                    assert_code!(
                        send(s, WS_BUFFER_UTF8_MESSAGE, b"Server got 4194304 bytes\n"),
                        WS_OK
                    );
                    count -= 4 << 20;
                }
            }
            let last = format!("Server got {count} bytes\n");
            assert_code!(send(s, WS_BUFFER_UTF8_MESSAGE, last.as_bytes()), WS_OK);
            assert_code!(close(s, 1000, b""), WS_OK);
            ws_close_handle(s);
            ws_close_handle(l);
            total
        });
        let started = Instant::now();
        let (c, code) = wss_connect(
            &format!("{scheme}://localhost:{port}/seed"),
            secure.then_some(PKI.ca.as_path()),
        );
        assert_code!(code, WS_OK);
        let receiver = std::thread::spawn(move || {
            let mut replies = Vec::new();
            loop {
                let (msg, ty) = recv_message(c);
                if ty == WS_BUFFER_CLOSE {
                    return replies;
                }
                replies.push(String::from_utf8(msg).unwrap());
            }
        });
        let chunk = vec![0x42u8; 128 * 1024];
        for _ in 0..1024 {
            assert_code!(send(c, WS_BUFFER_BINARY_MESSAGE, &chunk), WS_OK);
        }
        assert_code!(shutdown(c, 1000, b""), WS_OK);
        let replies = receiver.join().unwrap();
        let took = started.elapsed();
        assert_eq!(server.join().unwrap(), 128 << 20);
        assert_eq!(replies.len(), 33);
        assert_eq!(replies[32], "Server got 0 bytes\n");
        assert_eq!(close_status(c), (1000, vec![]));
        ws_close_handle(c);
        eprintln!(
            "seed scenario over {scheme}://: 128 MiB in {:.0} ms ({:.0} MiB/s, {} build)",
            took.as_secs_f64() * 1e3,
            128.0 / took.as_secs_f64(),
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        );
    }
}

/// An asynchronous client through `proxy_url` (or none) to the websockets echo peer, over
/// ws:// and wss://: connect, a message and its echo, the full close.
fn async_echo_through(q: &Completions, proxy_url: Option<&str>, path: &str) {
    for secure in [false, true] {
        let (mut peer, scheme) = echo_peer(secure);
        let h = open(&format!("{scheme}://127.0.0.1:{}{path}", peer.port));
        q.bind(h);
        set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 10_000);
        if let Some(p) = proxy_url {
            assert_code!(set_str(h, WS_OPTION_PROXY, p), WS_OK);
        }
        assert_code!(
            set_str(h, WS_OPTION_TLS_CA_FILE, self::path(&PKI.ca)),
            WS_OK
        );
        assert_code!(ws_connect(h), WS_ERROR_IO_PENDING);
        is(&q.next(), h, WS_CALLBACK_STATUS_CONNECT_COMPLETE);
        assert_eq!(peer.event("request")["path"], path);
        let mut buf = [0u8; 64];
        let echo = (WS_BUFFER_BINARY_MESSAGE, &b"tunnelled"[..]);
        send_then_receive(q, h, &mut buf, echo, (9, WS_BUFFER_BINARY_MESSAGE));
        assert_eq!(&buf[..9], b"tunnelled");
        assert_code!(
            ws_close(h, 1000, b"ok".as_ptr().cast(), 2),
            WS_ERROR_IO_PENDING
        );
        is(&q.next(), h, WS_CALLBACK_STATUS_CLOSE_COMPLETE);
        assert_eq!(state(h), WS_STATE_CLOSED);
        assert_code!(ws_close_handle(h), WS_OK);
        is(&q.next(), h, WS_CALLBACK_STATUS_HANDLE_CLOSING);
    }
}

both_modes!(
    async_client_over_wss_and_proxies,
    async_connect_failures_over_tls_and_proxies,
    async_wss_listener_with_a_blocking_client,
);

/// The asynchronous mode over every transport: ws:// and wss://, directly, through tinyproxy
/// and through a proxy that answers a byte at a time.
fn async_client_over_wss_and_proxies(q: &Completions) {
    async_echo_through(q, None, "/async");
    let proxy = Tinyproxy::start("");
    async_echo_through(q, Some(&proxy.url()), "/async-via-proxy");
    let answer =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\n\r\n".to_vec();
    let raw = raw_proxy(answer, 1);
    async_echo_through(
        q,
        Some(&format!("http://127.0.0.1:{}", raw.port)),
        "/async-raw-proxy",
    );
}

/// Asynchronous TLS failures and refusals are REQUEST_ERROR {CONNECT} with the blocking
/// call's code; the handle is back in NONE.
fn async_connect_failures_over_tls_and_proxies(q: &Completions) {
    let peer = tls_peer(&PKI.good);
    let refusing = Tinyproxy::start("ConnectPort 1");
    for (proxy, ca, want) in [
        (None, false, WS_ERROR_SECURE_FAILURE),
        (Some(refusing.url()), true, WS_ERROR_CANNOT_CONNECT),
    ] {
        let h = open(&format!("wss://127.0.0.1:{}/", peer.port));
        q.bind(h);
        set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 10_000);
        if let Some(p) = &proxy {
            assert_code!(set_str(h, WS_OPTION_PROXY, p), WS_OK);
        }
        if ca {
            assert_code!(set_str(h, WS_OPTION_TLS_CA_FILE, path(&PKI.ca)), WS_OK);
        }
        assert_code!(ws_connect(h), WS_ERROR_IO_PENDING);
        failed(&q.next(), h, WS_OPERATION_CONNECT, want);
        assert_eq!(state(h), WS_STATE_NONE);
        assert_code!(ws_close_handle(h), WS_OK);
        is(&q.next(), h, WS_CALLBACK_STATUS_HANDLE_CLOSING);
    }
}

/// An asynchronous wss:// listener with a blocking wss:// client in this process: the TLS
/// handshake and the upgrade are driven by the loop.
fn async_wss_listener_with_a_blocking_client(q: &Completions) {
    let (l, port) = wss_listener();
    q.bind(l);
    assert_code!(ws_accept(l, std::ptr::null_mut()), WS_ERROR_IO_PENDING);
    let url = format!("wss://localhost:{port}/secure");
    let client = std::thread::spawn(move || {
        let (c, code) = wss_connect(&url, Some(&PKI.ca));
        assert_code!(code, WS_OK);
        assert_code!(send(c, WS_BUFFER_UTF8_MESSAGE, b"hello async"), WS_OK);
        assert_eq!(
            recv_message(c),
            (b"hello async".to_vec(), WS_BUFFER_UTF8_MESSAGE)
        );
        assert_code!(close(c, 1000, b""), WS_OK);
        ws_close_handle(c);
    });
    let acc = q.next();
    is(&acc, l, WS_CALLBACK_STATUS_ACCEPT_COMPLETE);
    let s = acc.accepted;
    let mut buf = [0u8; 64];
    assert_code!(receive(s, &mut buf), WS_ERROR_IO_PENDING);
    let x = q.next();
    io(
        &x,
        s,
        WS_CALLBACK_STATUS_READ_COMPLETE,
        11,
        WS_BUFFER_UTF8_MESSAGE,
    );
    assert_code!(
        send(s, WS_BUFFER_UTF8_MESSAGE, &buf[..11]),
        WS_ERROR_IO_PENDING
    );
    assert_code!(receive(s, &mut buf), WS_ERROR_IO_PENDING);
    let got = q.take(2);
    io(
        &got[0],
        s,
        WS_CALLBACK_STATUS_WRITE_COMPLETE,
        11,
        WS_BUFFER_UTF8_MESSAGE,
    );
    io(
        &got[1],
        s,
        WS_CALLBACK_STATUS_READ_COMPLETE,
        0,
        WS_BUFFER_CLOSE,
    );
    assert_code!(ws_close(s, 1000, std::ptr::null(), 0), WS_ERROR_IO_PENDING);
    is(&q.next(), s, WS_CALLBACK_STATUS_CLOSE_COMPLETE);
    client.join().unwrap();
    for h in [s, l] {
        assert_code!(ws_close_handle(h), WS_OK);
        is(&q.next(), h, WS_CALLBACK_STATUS_HANDLE_CLOSING);
    }
}
