//! The C examples under AddressSanitizer + UndefinedBehaviorSanitizer and under valgrind
//! memcheck: echo_server with echo_client (and this process's client), seed_server with
//! seed_client in both modes. Each must exit 0 with no sanitizer report, and valgrind must
//! find no error and no definite or indirect leak.
//!
//! Only the C side is instrumented (`-fsanitize=address,undefined`): the Rust library is the
//! ordinary build. ASan still checks every heap block the library allocates (its malloc
//! interposes the process's) and LeakSanitizer reports any the library loses; valgrind sees
//! everything. Memory still reachable at exit is expected and not a leak: the library's global
//! handle table and TLS root store (static, built on first use) and parking_lot's global hash
//! table of parked threads (sized to the number of threads that ever waited).
//!
//! valgrind runs twice: against the debug build the other tests use, and against the release
//! library as `scripts/install.sh` installs it (stripped, with its SONAME and a gnu-debuglink
//! to the split debug information), with no suppression file.
//!
//! The seed scenario streams 1024 messages (128 MiB) under ASan, 64 (8 MiB) under valgrind.
//! Programs under test are killed after 120 s. autobahn_client.c runs under ASan + UBSan in
//! scripts/autobahn.sh.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::raw::report;
use common::*;

/// Held by each valgrind run: programs under valgrind are slow, and two sets at once on a
/// loaded 2-core machine can outlast the servers' lifetimes.
static VALGRIND: Mutex<()> = Mutex::new(());

/// Takes [`VALGRIND`] for a valgrind run (nothing for ASan).
fn one_at_a_time(tool: Tool) -> Option<std::sync::MutexGuard<'static, ()>> {
    (tool != Tool::Asan).then(|| VALGRIND.lock().unwrap_or_else(|e| e.into_inner()))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Asan,
    Valgrind,
    /// valgrind, the programs linked against the installed release library
    ValgrindRelease,
}

/// The program built for `tool`, once per test process.
fn exe(name: &str, tool: Tool) -> PathBuf {
    static BUILT: Mutex<Vec<(String, Tool, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, p)) = built.iter().find(|(n, t, _)| n == name && *t == tool) {
        return p.clone();
    }
    let p = match tool {
        Tool::Asan => build_with(name, "c-examples-asan", &ASAN_FLAGS),
        Tool::Valgrind => build_with(name, "c-examples-valgrind", &["-g", "-O1"]),
        Tool::ValgrindRelease => build_against(
            name,
            "c-examples-valgrind-release",
            &["-g", "-O1"],
            &release_lib_dir(),
        ),
    };
    built.push((name.to_owned(), tool, p.clone()));
    p
}

/// The release library installed by `scripts/install.sh` into a prefix under the target
/// directory, once per test process; its `lib/`. The script's build is the packaging build
/// (a no-op when `scripts/test-packaging.sh` or an earlier run built it).
fn release_lib_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let prefix = target_dir().join("memcheck-release");
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("scripts/install.sh"))
            .arg("--prefix")
            .arg(&prefix);
        // Without the variables cargo sets for this test: ring's build script reruns when
        // CARGO_MANIFEST_DIR, CARGO_PKG_* or OUT_DIR differ from the last build's, which would
        // rebuild the release library that scripts/test-packaging.sh built from a shell.
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            let set_by_cargo = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_"]
                .iter()
                .any(|p| k.starts_with(p))
                || [
                    "CARGO_CRATE_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&k.as_ref());
            if set_by_cargo {
                cmd.env_remove(&key);
            }
        }
        let out = cmd.output().expect("bash scripts/install.sh");
        assert!(
            out.status.success(),
            "scripts/install.sh --prefix {}: {}{}",
            prefix.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        prefix.join("lib")
    })
    .clone()
}

/// A program under a tool, its stdout piped; the tool's report goes to `log`.
fn spawn(tool: Tool, name: &str, args: &[&str], tag: &str) -> (Child, PathBuf) {
    let exe = exe(name, tool);
    let log = target_dir().join(format!(
        "memcheck-{}-{name}-{tag}.log",
        match tool {
            Tool::Asan => "asan",
            Tool::Valgrind => "valgrind",
            Tool::ValgrindRelease => "valgrind-release",
        }
    ));
    let _ = std::fs::remove_file(&log);
    let mut cmd = match tool {
        Tool::Asan => {
            let mut c = Command::new(&exe);
            c.env(
                "ASAN_OPTIONS",
                "detect_leaks=1:halt_on_error=1:abort_on_error=0",
            )
            .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
            .stderr(std::fs::File::create(&log).unwrap());
            c
        }
        Tool::Valgrind | Tool::ValgrindRelease => {
            let mut c = Command::new("valgrind");
            c.args([
                "--leak-check=full",
                "--errors-for-leak-kinds=definite,indirect",
                "--show-leak-kinds=definite,indirect",
                "--error-exitcode=1",
            ])
            .arg(format!("--log-file={}", log.display()))
            .arg(&exe)
            .stderr(Stdio::inherit());
            c
        }
    };
    let child = cmd
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} under {}: {e}", tool_name(tool)));
    (child, log)
}

fn tool_name(tool: Tool) -> &'static str {
    match tool {
        Tool::Asan => "ASan+UBSan",
        Tool::Valgrind => "valgrind",
        Tool::ValgrindRelease => "valgrind (installed release library)",
    }
}

/// Waits (at most 120 s) for a program and checks its exit status and the tool's report.
/// Returns its stdout and a one-line summary of the report.
fn finish(tool: Tool, name: &str, mut child: Child, log: &Path) -> (String, String) {
    let until = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} under {} did not finish in 120 s", tool_name(tool));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    let report_text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        status.success(),
        "{name} under {} failed ({status}):\n{report_text}\nstdout:\n{stdout}",
        tool_name(tool)
    );
    let summary = match tool {
        Tool::Asan => {
            for bad in [
                "ERROR: AddressSanitizer",
                "ERROR: LeakSanitizer",
                "runtime error:",
            ] {
                assert!(!report_text.contains(bad), "{name}: {report_text}");
            }
            "exit 0, no AddressSanitizer, LeakSanitizer or UBSan report".to_owned()
        }
        Tool::Valgrind | Tool::ValgrindRelease => valgrind_summary(name, &report_text),
    };
    (stdout, summary)
}

/// Checks valgrind's report: 0 errors, nothing definitely or indirectly lost.
fn valgrind_summary(name: &str, text: &str) -> String {
    let field = |label: &str| -> String {
        text.lines()
            .find_map(|l| l.split_once(label).map(|(_, v)| v.trim().to_owned()))
            .unwrap_or_else(|| "0 bytes in 0 blocks".to_owned())
    };
    let errors = field("ERROR SUMMARY:");
    assert!(
        errors.starts_with("0 errors"),
        "{name}: valgrind found errors:\n{text}"
    );
    let definite = field("definitely lost:");
    let indirect = field("indirectly lost:");
    for (kind, v) in [("definitely", &definite), ("indirectly", &indirect)] {
        assert!(v.starts_with("0 bytes"), "{name}: {kind} lost {v}:\n{text}");
    }
    format!(
        "ERROR SUMMARY: {}{}; definitely lost: {definite}; indirectly lost: {indirect}; possibly lost: {}; still reachable: {}",
        errors.split(" (").next().unwrap_or(&errors),
        errors
            .split_once("(suppressed: ")
            .map(|(_, s)| format!(" ({}", s))
            .unwrap_or_default(),
        field("possibly lost:"),
        field("still reachable:")
    )
}

/// A C server under a tool, as far as its "listening on port N" line.
fn server(tool: Tool, name: &str, args: &[&str]) -> (Child, PathBuf, u16) {
    server_tagged(tool, name, args, "server")
}

/// [`server`] with its own log file tag (tests running at once never share a log).
fn server_tagged(tool: Tool, name: &str, args: &[&str], tag: &str) -> (Child, PathBuf, u16) {
    let (mut child, log) = spawn(tool, name, args, tag);
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening on port ")
        .unwrap_or_else(|| {
            let _ = child.kill();
            panic!(
                "{name}: {line:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })
        .parse()
        .unwrap();
    (child, log, port)
}

fn client(tool: Tool, name: &str, args: &[&str], tag: &str) -> (String, String) {
    let (child, log) = spawn(tool, name, args, tag);
    finish(tool, name, child, &log)
}

fn echo(tool: Tool, seconds: &str) {
    let _turn = one_at_a_time(tool);
    // both built before the server's clock starts
    exe("echo_server", tool);
    exe("echo_client", tool);
    let t = Instant::now();
    let (srv, srv_log, port) = server(tool, "echo_server", &["ws://127.0.0.1:0/", seconds]);
    let url = format!("ws://127.0.0.1:{port}/");
    let (out, cli) = client(tool, "echo_client", &[&url], "echo");
    assert!(out.contains("echo ok"), "{out}");
    echo_through(&url);
    let (out, srv_summary) = finish(tool, "echo_server", srv, &srv_log);
    assert!(out.contains("served 2 connections"), "{out}");
    report(&format!("memcheck {}: echo_client: {cli}", tool_name(tool)));
    report(&format!(
        "memcheck {}: echo_server (2 connections, {:.1} s): {srv_summary}",
        tool_name(tool),
        t.elapsed().as_secs_f64()
    ));
}

/// This process's client through an echo server: fragments and a large message.
fn echo_through(url: &str) {
    let h = connect(url);
    assert_code!(send(h, WS_BUFFER_UTF8_FRAGMENT, "frag".as_bytes()), WS_OK);
    assert_code!(send(h, WS_BUFFER_UTF8_MESSAGE, "ménté".as_bytes()), WS_OK);
    assert_eq!(
        recv_message(h),
        ("fragménté".as_bytes().to_vec(), WS_BUFFER_UTF8_MESSAGE)
    );
    let big = vec![0x42u8; 1 << 20];
    assert_code!(send(h, WS_BUFFER_BINARY_MESSAGE, &big), WS_OK);
    assert_eq!(recv_message(h), (big, WS_BUFFER_BINARY_MESSAGE));
    assert_code!(close(h, 4000, b"bye"), WS_OK);
    ws_close_handle(h);
}

/// The asynchronous examples: the queue-mode echo server with the epoll client and this
/// process's blocking client; the asynchronous seed client in both closing modes and both
/// drivers (queue, callback) against the library's own seed server.
fn async_examples(tool: Tool, seconds: &str, count: &str) {
    let _turn = one_at_a_time(tool);
    for name in [
        "async_echo_server",
        "async_callback_echo_server",
        "async_epoll",
        "seed_server",
        "async_seed_client",
    ] {
        exe(name, tool);
    }
    let t = Instant::now();
    let (srv, srv_log, port) = server(tool, "async_echo_server", &["ws://127.0.0.1:0/", seconds]);
    let url = format!("ws://127.0.0.1:{port}/");
    let (out, cli) = client(tool, "async_epoll", &[&url], "epoll");
    assert!(out.contains("epoll ok: 5 echoes"), "{out}");
    echo_through(&url);
    let (out, srv_summary) = finish(tool, "async_echo_server", srv, &srv_log);
    assert!(out.contains("served 2 connections"), "{out}");
    report(&format!("memcheck {}: async_epoll: {cli}", tool_name(tool)));
    report(&format!(
        "memcheck {}: async_echo_server (2 connections, {:.1} s): {srv_summary}",
        tool_name(tool),
        t.elapsed().as_secs_f64()
    ));
    // the callback-mode echo server (library I/O threads) the same way
    let t = Instant::now();
    let (srv, srv_log, port) = server(
        tool,
        "async_callback_echo_server",
        &["ws://127.0.0.1:0/", seconds],
    );
    let url = format!("ws://127.0.0.1:{port}/");
    let (out, cli) = client(tool, "async_epoll", &[&url], "epoll-callback");
    assert!(out.contains("epoll ok: 5 echoes"), "{out}");
    echo_through(&url);
    let (out, srv_summary) = finish(tool, "async_callback_echo_server", srv, &srv_log);
    assert!(out.contains("served 2 connections"), "{out}");
    report(&format!("memcheck {}: async_epoll: {cli}", tool_name(tool)));
    report(&format!(
        "memcheck {}: async_callback_echo_server (2 connections, {:.1} s): {srv_summary}",
        tool_name(tool),
        t.elapsed().as_secs_f64()
    ));
    let args = ["ws://127.0.0.1:0/seed", "4", "100"];
    let (srv, srv_log, port) = server_tagged(tool, "seed_server", &args, "async-server");
    let url = format!("ws://127.0.0.1:{port}/seed");
    for driver in ["queue", "callback"] {
        for mode in ["shutdown", "close"] {
            let tag = format!("{mode}-{driver}");
            let (out, summary) = client(
                tool,
                "async_seed_client",
                &[&url, mode, count, driver],
                &tag,
            );
            assert!(
                out.contains(&format!("async seed {mode} ok ({driver})")),
                "{out}"
            );
            report(&format!(
                "memcheck {}: async_seed_client {mode} {driver} ({count} x 128 KiB): {summary}",
                tool_name(tool)
            ));
        }
    }
    let (out, _) = finish(tool, "seed_server", srv, &srv_log);
    assert_eq!(out.matches("server: ").count(), 4, "{out}");
}

#[test]
fn async_examples_under_asan_and_ubsan() {
    async_examples(Tool::Asan, "5", "1024");
}

#[test]
fn async_examples_under_valgrind() {
    async_examples(Tool::Valgrind, "12", "64");
}

fn seed(tool: Tool, count: &str) {
    let _turn = one_at_a_time(tool);
    exe("seed_server", tool);
    exe("seed_client", tool);
    let t = Instant::now();
    let (srv, srv_log, port) = server(tool, "seed_server", &["ws://127.0.0.1:0/seed", "2", "100"]);
    let url = format!("ws://127.0.0.1:{port}/seed");
    for mode in ["shutdown", "close"] {
        let (out, summary) = client(tool, "seed_client", &[&url, mode, count], mode);
        assert!(out.contains(&format!("seed {mode} ok")), "{out}");
        report(&format!(
            "memcheck {}: seed_client {mode} ({count} x 128 KiB): {summary}",
            tool_name(tool)
        ));
    }
    let (out, summary) = finish(tool, "seed_server", srv, &srv_log);
    assert_eq!(out.matches("server: ").count(), 2, "{out}");
    report(&format!(
        "memcheck {}: seed_server (2 connections, {:.1} s): {summary}",
        tool_name(tool),
        t.elapsed().as_secs_f64()
    ));
}

#[test]
fn echo_under_asan_and_ubsan() {
    echo(Tool::Asan, "5");
}

#[test]
fn seed_under_asan_and_ubsan() {
    seed(Tool::Asan, "1024");
}

fn have_valgrind() -> bool {
    let ok = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "valgrind is missing: scripts/setup-test-env.sh installs it (apt-get install valgrind)"
    );
    ok
}

#[test]
fn echo_under_valgrind() {
    have_valgrind();
    echo(Tool::Valgrind, "12");
}

#[test]
fn seed_under_valgrind() {
    have_valgrind();
    seed(Tool::Valgrind, "64");
}

#[test]
fn echo_under_valgrind_release() {
    have_valgrind();
    echo(Tool::ValgrindRelease, "12");
}

#[test]
fn seed_under_valgrind_release() {
    have_valgrind();
    seed(Tool::ValgrindRelease, "64");
}
