//! permessage-deflate against hostile peers, in both roles: in-process raw sockets that agree
//! to compression (or claim it without agreeing) and then misbehave.
//!
//! - a compression bomb: 1 GiB of zeros, deflated on the fly (about 1 MB), against a 1 MiB
//!   WS_OPTION_MAX_MESSAGE_SIZE: 1009, with the process's RSS flat;
//! - RSV1 on a control frame, on a continuation frame, and without negotiation: 1002;
//! - corrupt deflate data: 1007;
//! - a huge window-bits value in the handshake: declined by a listener, refused by a client.

mod common;

use std::ffi::CString;
use std::io::Write;
use std::net::TcpStream;
use std::time::Instant;

use common::raw::{self, read_head, report, rss_bytes, RawConn, RawServer};
use common::*;
use flate2::{Compress, Compression, FlushCompress};

const LIMIT: u64 = 1 << 20;

/// Compression on, and WS_OPTION_MAX_MESSAGE_SIZE of 1 MiB, for a client or a listener.
fn deflate_with_limit(h: ws_handle) {
    set_u32(h, WS_OPTION_PERMESSAGE_DEFLATE, 1);
    let max = LIMIT;
    set_u64(h, WS_OPTION_MAX_MESSAGE_SIZE, max);
}

/// Our listener with compression on and a 1 MiB limit; a raw client offering `offer`.
/// Returns the accepted handle, the raw client and the 101 response's head.
fn server_side(offer: &str) -> (ws_handle, RawConn, String) {
    let url = CString::new("ws://127.0.0.1:0/z").unwrap();
    let mut l = 0;
    assert_code!(ws_listen(url.as_ptr(), &mut l), WS_OK);
    set_u32(l, WS_OPTION_RECEIVE_TIMEOUT, 10_000);
    deflate_with_limit(l);
    let port = local_port(l);
    let offer = offer.to_owned();
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(raw::PEER_READ_TIMEOUT)).unwrap();
        let mut req = String::from_utf8(raw::upgrade_request("/z")).unwrap();
        req.truncate(req.len() - 2);
        req.push_str(&format!("Sec-WebSocket-Extensions: {offer}\r\n\r\n"));
        s.write_all(req.as_bytes()).unwrap();
        let (head, rest) = read_head(&mut s, Vec::new(), 64 * 1024).unwrap();
        assert!(rest.is_empty());
        (RawConn::wrap(s, true), head)
    });
    let mut h = 0;
    assert_code!(ws_accept(l, &mut h), WS_OK);
    ws_close_handle(l);
    let (c, head) = client.join().unwrap();
    (h, c, head)
}

/// A raw server answering the upgrade with `answer` (None: no extension header), and our
/// client offering compression with a 1 MiB limit. Returns the handle (or the connect error)
/// and the raw side, which the server thread hands over.
fn client_side(answer: Option<&str>) -> (Result<ws_handle, (ws_error, String)>, Option<RawConn>) {
    let answer = answer.map(str::to_owned);
    let (tx, rx) = std::sync::mpsc::channel();
    let server = RawServer::start(move |mut s| {
        let (head, _) = read_head(&mut s, Vec::new(), 64 * 1024).unwrap();
        let key = raw::header(&head, "sec-websocket-key").unwrap();
        let mut resp = raw::upgrade_response(&key);
        if let Some(a) = &answer {
            resp.truncate(resp.len() - 2);
            resp.push_str(&format!("Sec-WebSocket-Extensions: {a}\r\n\r\n"));
        }
        s.write_all(resp.as_bytes()).unwrap();
        let _ = tx.send(RawConn::wrap(s, false));
    });
    let h = open(&format!("ws://127.0.0.1:{}/z", server.port));
    set_u32(h, WS_OPTION_CONNECT_TIMEOUT, 10_000);
    set_u32(h, WS_OPTION_CLOSE_TIMEOUT, 10_000);
    deflate_with_limit(h);
    let code = ws_connect(h);
    let raw = rx.recv_timeout(std::time::Duration::from_secs(10)).ok();
    if code != WS_OK {
        let detail = last_error();
        ws_close_handle(h);
        return (Err((code, detail)), raw);
    }
    (Ok(h), raw)
}

/// A connection in the given role that agreed to permessage-deflate (no context takeover).
fn agreed(server_role: bool) -> (ws_handle, RawConn) {
    if server_role {
        let (h, c, head) = server_side("permessage-deflate; client_no_context_takeover");
        assert!(
            head.contains("Sec-WebSocket-Extensions: permessage-deflate"),
            "{head}"
        );
        (h, c)
    } else {
        let (h, c) = client_side(Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ));
        (h.unwrap(), c.unwrap())
    }
}

/// The raw peer's frame with RSV1 as given (masked with an all-zero key when it plays a
/// client, which leaves the payload as is).
fn frame(c: &RawConn, opcode: u8, fin: bool, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    raw::encode_with(
        opcode,
        fin,
        if rsv1 { 4 } else { 0 },
        payload,
        c.masks.then_some([0u8; 4]),
        None,
    )
}

/// Receives until an error; returns it with the close status the peer got from us.
fn violation(h: ws_handle, mut c: RawConn) -> (ws_error, Option<u16>) {
    let reader = std::thread::spawn(move || {
        let (frames, _) = c.read_all();
        frames
            .iter()
            .find(|f| f.opcode == raw::OP_CLOSE)
            .and_then(|f| f.close_status())
    });
    set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 20_000);
    let mut buf = vec![0u8; 64 * 1024];
    let code = loop {
        let (code, _, _) = recv(h, &mut buf);
        if code != WS_OK {
            break code;
        }
    };
    ws_close_handle(h);
    (code, reader.join().unwrap())
}

fn role(server_role: bool) -> &'static str {
    if server_role {
        "server"
    } else {
        "client"
    }
}

#[test]
fn a_compression_bomb_ends_with_1009_and_no_memory_growth() {
    for server_role in [false, true] {
        let (h, mut c) = agreed(server_role);
        let before = rss_bytes();
        let t = Instant::now();
        let sender = std::thread::spawn(move || {
            // 1 GiB of zeros, deflated at level 9 as it goes: frames of what comes out
            let zeros = vec![0u8; 1 << 20];
            let mut z = Compress::new_with_window_bits(Compression::best(), false, 15);
            let mut out = vec![0u8; 64 * 1024];
            let mut first = true;
            let mut sent = 0usize;
            for i in 0..1024 {
                let flush = if i == 1023 {
                    FlushCompress::Sync
                } else {
                    FlushCompress::None
                };
                let mut input = &zeros[..];
                loop {
                    let (in0, out0) = (z.total_in(), z.total_out());
                    z.compress(input, &mut out, flush).unwrap();
                    input = &input[(z.total_in() - in0) as usize..];
                    let n = (z.total_out() - out0) as usize;
                    if n > 0 {
                        let f = frame(
                            &c,
                            if first { raw::OP_BINARY } else { raw::OP_CONT },
                            false,
                            first,
                            &out[..n],
                        );
                        first = false;
                        sent += n;
                        if c.send_raw(&f).is_err() {
                            return (sent, c); // the library closed the connection
                        }
                    }
                    if input.is_empty() && n < out.len() {
                        break;
                    }
                }
            }
            let f = frame(&c, raw::OP_CONT, true, false, &[]);
            let _ = c.send_raw(&f);
            (sent, c)
        });
        let (code, status) = {
            set_u32(h, WS_OPTION_RECEIVE_TIMEOUT, 60_000);
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0usize;
            let code = loop {
                let (code, n, _) = recv(h, &mut buf);
                if code != WS_OK {
                    break code;
                }
                got += n;
            };
            assert!(got as u64 <= LIMIT, "{got} bytes delivered");
            let after = rss_bytes();
            let (sent, mut c) = sender.join().unwrap();
            let (frames, _) = c.read_all();
            let status = frames
                .iter()
                .find(|f| f.opcode == raw::OP_CLOSE)
                .and_then(|f| f.close_status());
            report(&format!(
                "deflate {:<6} a bomb of 1 GiB of zeros: stopped after {got} inflated bytes ({} KiB of deflate data sent) in {:.2} s with close {status:?}; RSS {} -> {} KiB",
                role(server_role),
                sent >> 10,
                t.elapsed().as_secs_f64(),
                before >> 10,
                after >> 10
            ));
            assert!(
                after.saturating_sub(before) < 4 << 20,
                "RSS grew from {} to {} KiB",
                before >> 10,
                after >> 10
            );
            (code, status)
        };
        ws_close_handle(h);
        assert_eq!(
            (code, status),
            (WS_ERROR_INVALID_SERVER_RESPONSE, Some(1009)),
            "{}",
            role(server_role)
        );
    }
}

#[test]
fn rsv1_on_a_control_frame_or_a_continuation_is_1002() {
    for server_role in [false, true] {
        let (h, mut c) = agreed(server_role);
        let f = frame(&c, raw::OP_PING, true, true, b"p");
        c.send_raw(&f).unwrap();
        assert_eq!(
            violation(h, c),
            (WS_ERROR_INVALID_SERVER_RESPONSE, Some(1002)),
            "{} ping",
            role(server_role)
        );

        let (h, mut c) = agreed(server_role);
        let mut z = Compress::new_with_window_bits(Compression::fast(), false, 15);
        let mut out = [0u8; 64];
        z.compress(b"hello", &mut out, FlushCompress::Sync).unwrap();
        let n = z.total_out() as usize;
        let mut bytes = frame(&c, raw::OP_TEXT, false, true, &out[..n]);
        bytes.extend(frame(&c, raw::OP_CONT, true, true, &[0x00]));
        c.send_raw(&bytes).unwrap();
        assert_eq!(
            violation(h, c),
            (WS_ERROR_INVALID_SERVER_RESPONSE, Some(1002)),
            "{} continuation",
            role(server_role)
        );
    }
}

#[test]
fn rsv1_without_negotiation_is_1002() {
    for server_role in [false, true] {
        // our side offered (or accepts) compression, but the peer did not agree to it
        let (h, mut c) = if server_role {
            let (h, c, head) = server_side("x-webkit-deflate-frame");
            assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
            (h, c)
        } else {
            let (h, c) = client_side(None);
            (h.unwrap(), c.unwrap())
        };
        let mut buf = [0u8; 64];
        let mut len = buf.len();
        assert_code!(
            ws_query_option(h, WS_OPTION_EXTENSIONS, buf.as_mut_ptr().cast(), &mut len),
            WS_OK
        );
        assert_eq!(len, 1, "no extension agreed: an empty string");
        let f = frame(&c, raw::OP_TEXT, true, true, &[0x4a, 0x4c, 0x02, 0x00]);
        c.send_raw(&f).unwrap();
        assert_eq!(
            violation(h, c),
            (WS_ERROR_INVALID_SERVER_RESPONSE, Some(1002)),
            "{}",
            role(server_role)
        );
    }
}

#[test]
fn corrupt_deflate_data_is_1007() {
    for server_role in [false, true] {
        let (h, mut c) = agreed(server_role);
        // a block of the reserved type 11
        let f = frame(&c, raw::OP_BINARY, true, true, &[0xff, 0xff, 0xff]);
        c.send_raw(&f).unwrap();
        assert_eq!(
            violation(h, c),
            (WS_ERROR_INVALID_SERVER_RESPONSE, Some(1007)),
            "{}",
            role(server_role)
        );
    }
}

#[test]
fn a_huge_window_bits_value_is_declined_or_refused() {
    // a listener declines the offer (and a later valid one in the list is taken)
    let (h, _c, head) =
        server_side("permessage-deflate; server_max_window_bits=18446744073709551617");
    assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
    ws_close_handle(h);
    let (h, _c, head) = server_side(
        "permessage-deflate; client_max_window_bits=99999999999, permessage-deflate; server_max_window_bits=8, permessage-deflate",
    );
    assert!(
        head.contains("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n")
            || head.ends_with("\r\nSec-WebSocket-Extensions: permessage-deflate"),
        "{head}"
    );
    ws_close_handle(h);
    // a client fails the connection on such an answer
    for answer in [
        "permessage-deflate; server_max_window_bits=4294967311",
        "permessage-deflate; client_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=0",
    ] {
        let (r, _c) = client_side(Some(answer));
        let (code, detail) = r.unwrap_err();
        assert_eq!(code, WS_ERROR_INVALID_SERVER_RESPONSE, "{answer}: {detail}");
    }
}
