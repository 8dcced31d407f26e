//! Small sends share system calls in the asynchronous mode: a C program (tests/c/coalesce.c,
//! default signal dispositions) starts 64 sends of 16 bytes and a ws_close before its queue's
//! loop runs; under strace every write-like system call on its TCP socket is counted (and all
//! the system calls of the 130 calls that start and take the 65 operations), and the raw peer
//! checks every frame, in order, byte for byte.

mod common;

use std::process::Command;

use common::*;

/// The socket writes (write, writev, send, sendto, sendmsg) that `trace` (strace -f -yy)
/// shows on the TCP connection to `port`, between the lines that wrote `from` and `to` to
/// the program's stdout: (call, bytes written).
fn socket_writes(trace: &str, port: u16, from: &str, to: &str) -> Vec<(String, usize)> {
    let peer = format!("->127.0.0.1:{port}]>");
    let mut inside = false;
    let mut writes = Vec::new();
    for line in trace.lines() {
        // "<pid> <call>(<fd><TCP:[a->b]>, ..., ) = <n>"
        let call = line.split_whitespace().nth(1).unwrap_or("");
        let name = call.split('(').next().unwrap_or("");
        if name == "write" && call.starts_with("write(1<") {
            if line.contains(&format!("\"{from}\\n\"")) {
                inside = true;
            } else if line.contains(&format!("\"{to}\\n\"")) {
                inside = false;
            }
            continue;
        }
        let writes_data = matches!(name, "write" | "writev" | "send" | "sendto" | "sendmsg");
        if inside && writes_data && line.contains(&peer) {
            let n = line
                .rsplit("= ")
                .next()
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("unfinished or failed write: {line}"));
            writes.push((name.to_owned(), n));
        }
    }
    writes
}

/// Every system call `trace` shows between the writes of `from` and `to` to stdout.
fn between<'a>(trace: &'a str, from: &str, to: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = trace.lines().collect();
    let at = |m: &str| {
        lines
            .iter()
            .position(|l| l.contains("write(1<") && l.contains(&format!("\"{m}\\n\"")))
            .unwrap_or_else(|| panic!("no {m:?} in the trace"))
    };
    lines[at(from) + 1..at(to)].to_vec()
}

#[test]
fn sixty_four_small_sends_and_a_close_leave_in_one_system_call() {
    let exe = build_source("tests/c/coalesce.c", "tests-c", &[]);
    let mut peer = Peer::raw("record", &[]);
    let trace_file = target_dir().join(format!("coalesce-{}.strace", std::process::id()));
    let out = Command::new("timeout")
        .arg("60")
        .arg("strace")
        .args(["-f", "-qq", "-yy", "-s", "16"])
        .arg("-o")
        .arg(&trace_file)
        .arg(&exe)
        .args([&peer.url("/coalesce"), "64"])
        .output()
        .expect("strace (installed by scripts/setup-test-env.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("coalesce ok: 64 sends, peer closed with 1000"),
        "{stdout}"
    );

    // every frame arrived, in call order: 64 binary frames of 16 bytes, then the close
    let frames = peer.frames_until("close");
    assert_eq!(frames.len(), 65, "{frames:?}");
    for (i, f) in frames[..64].iter().enumerate() {
        let payload = format!("message {i:06}\n\n");
        let hex: String = payload.bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!((f.0, f.1, f.2), (2, true, 16), "frame {i}");
        assert_eq!(f.3, hex, "frame {i}");
    }
    assert_eq!((frames[64].0, frames[64].2), (8, 6));

    // 64 masked frames of 6 + 16 bytes and the masked close frame (6 + 2 + 4): one call
    let trace = std::fs::read_to_string(&trace_file).unwrap();
    let writes = socket_writes(&trace, peer.port, "posting", "closed");
    assert_eq!(
        writes.iter().map(|w| w.1).sum::<usize>(),
        64 * 22 + 12,
        "{writes:?}"
    );
    assert_eq!(writes.len(), 1, "{writes:?}");
    // 65 calls that start operations and 65 ws_queue_wait calls that take one completion
    // each: the wake-ups are not one system call per call (22 measured)
    let calls = between(&trace, "posting", "closed");
    assert!(
        calls.len() <= 40,
        "{} system calls:\n{}",
        calls.len(),
        calls.join("\n")
    );
    let _ = std::fs::remove_file(&trace_file);
}
