//! The committed header: up to date, self-contained, clean as C11 and C++17, fixed constants
//! usable as constant expressions, version in step with Cargo.toml, and only ws_* exported.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;

fn target_dir() -> PathBuf {
    // target/<profile>/deps/<test binary> -> target/<profile>
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("header-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn committed_header_matches_the_generated_one() {
    let generated = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/wshandle.h")).unwrap();
    let committed = std::fs::read_to_string(repo().join("include/wshandle.h")).unwrap();
    assert!(
        generated == committed,
        "include/wshandle.h is stale: run scripts/update-header.sh and commit it"
    );
}

const CHECKS: &str = r#"
#include "wshandle.h"
#include "wshandle.h" /* the include guard works */
/* fixed values, usable in constant expressions */
_Static_assert(WS_OK == 0 && WS_ERROR_INVALID_HANDLE == 6 && WS_ERROR_NOT_ENOUGH_MEMORY == 8, "");
_Static_assert(WS_ERROR_INVALID_PARAMETER == 87 && WS_ERROR_INSUFFICIENT_BUFFER == 122, "");
_Static_assert(WS_ERROR_IO_PENDING == 997 && WS_ERROR_INVALID_OPERATION == 4317, "");
_Static_assert(WS_ERROR_TIMEOUT == 12002 && WS_ERROR_INTERNAL == 12004, "");
_Static_assert(WS_ERROR_INVALID_URL == 12005 && WS_ERROR_UNRECOGNIZED_SCHEME == 12006, "");
_Static_assert(WS_ERROR_NAME_NOT_RESOLVED == 12007 && WS_ERROR_INVALID_OPTION == 12009, "");
_Static_assert(WS_ERROR_OPERATION_CANCELLED == 12017 && WS_ERROR_INCORRECT_HANDLE_TYPE == 12018, "");
_Static_assert(WS_ERROR_INCORRECT_HANDLE_STATE == 12019 && WS_ERROR_CANNOT_CONNECT == 12029, "");
_Static_assert(WS_ERROR_CONNECTION_ERROR == 12030 && WS_ERROR_HEADER_NOT_FOUND == 12150, "");
_Static_assert(WS_ERROR_INVALID_SERVER_RESPONSE == 12152 && WS_ERROR_SECURE_FAILURE == 12175, "");
_Static_assert(WS_BUFFER_BINARY_MESSAGE == 0 && WS_BUFFER_BINARY_FRAGMENT == 1, "");
_Static_assert(WS_BUFFER_UTF8_MESSAGE == 2 && WS_BUFFER_UTF8_FRAGMENT == 3 && WS_BUFFER_CLOSE == 4, "");
_Static_assert(WS_CLOSE_STATUS_SUCCESS == 1000 && WS_CLOSE_STATUS_ENDPOINT_TERMINATED == 1001, "");
_Static_assert(WS_CLOSE_STATUS_PROTOCOL_ERROR == 1002 && WS_CLOSE_STATUS_INVALID_DATA_TYPE == 1003, "");
_Static_assert(WS_CLOSE_STATUS_EMPTY == 1005 && WS_CLOSE_STATUS_ABORTED == 1006, "");
_Static_assert(WS_CLOSE_STATUS_INVALID_PAYLOAD == 1007 && WS_CLOSE_STATUS_POLICY_VIOLATION == 1008, "");
_Static_assert(WS_CLOSE_STATUS_MESSAGE_TOO_BIG == 1009 && WS_CLOSE_STATUS_UNSUPPORTED_EXTENSIONS == 1010, "");
_Static_assert(WS_CLOSE_STATUS_SERVER_ERROR == 1011 && WS_CLOSE_STATUS_SECURE_HANDSHAKE_ERROR == 1015, "");
_Static_assert(WS_MAX_CLOSE_REASON_LENGTH == 123, "");
_Static_assert(WS_STATE_NONE == 0 && WS_STATE_CONNECTING == 1 && WS_STATE_OPEN == 2, "");
_Static_assert(WS_STATE_CLOSE_SENT == 3 && WS_STATE_CLOSE_RECEIVED == 4, "");
_Static_assert(WS_STATE_CLOSED == 5 && WS_STATE_ABORTED == 6, "");
_Static_assert(WS_OPTION_CONNECT_TIMEOUT == 3 && WS_OPTION_SEND_TIMEOUT == 5, "");
_Static_assert(WS_OPTION_RECEIVE_TIMEOUT == 6 && WS_OPTION_CLOSE_TIMEOUT == 115, "");
_Static_assert(WS_OPTION_KEEPALIVE_INTERVAL == 116, "");
_Static_assert(sizeof(ws_handle) == 8 && sizeof(ws_error) == 4, "");
/* the asynchronous mode's fixed numbers and records (WinHTTP's) */
_Static_assert(WS_CALLBACK_STATUS_READ_COMPLETE == 0x00080000 && WS_CALLBACK_STATUS_WRITE_COMPLETE == 0x00100000, "");
_Static_assert(WS_CALLBACK_STATUS_REQUEST_ERROR == 0x00200000 && WS_CALLBACK_STATUS_CLOSE_COMPLETE == 0x02000000, "");
_Static_assert(WS_CALLBACK_STATUS_SHUTDOWN_COMPLETE == 0x04000000 && WS_CALLBACK_STATUS_HANDLE_CLOSING == 0x00000800, "");
_Static_assert(WS_OPERATION_SEND == 0 && WS_OPERATION_RECEIVE == 1 && WS_OPERATION_CLOSE == 2 && WS_OPERATION_SHUTDOWN == 3, "");
_Static_assert(WS_OPTION_CONTEXT_VALUE == 45, "");
_Static_assert(WS_CALLBACK_STATUS_CONNECT_COMPLETE != WS_CALLBACK_STATUS_ACCEPT_COMPLETE, "");
_Static_assert(WS_OPERATION_CONNECT != WS_OPERATION_ACCEPT && WS_OPERATION_CONNECT > WS_OPERATION_SHUTDOWN, "");
static void on_status(ws_handle h, void *context, uint32_t status, void *info, size_t info_len) {
    (void)h; (void)context; (void)status; (void)info; (void)info_len;
}
int use_async(ws_handle q, ws_handle c) {
    ws_status_callback cb = on_status;
    ws_completion out[4];
    size_t count = 0;
    int fd = -1;
    ws_web_socket_status io;
    ws_async_result r;
    out[0].io.bytes_transferred = 0; out[0].io.buffer_type = WS_BUFFER_CLOSE;
    out[0].result.operation = WS_OPERATION_SEND; out[0].result.error = WS_OK;
    out[0].handle = c; out[0].context = 0; out[0].status = 0; out[0].accepted = 0;
    io = out[0].io;
    r = out[0].result;
    (void)cb; (void)io; (void)r;
    return (int)ws_set_status_callback(c, on_status) + (int)ws_queue_create(&q)
        + (int)ws_queue_wait(q, out, 4, &count, 0) + (int)ws_queue_fd(q, &fd);
}
int classify(ws_error e) {
    switch (e) { case WS_OK: return 0; case WS_ERROR_TIMEOUT: return 1; default: return 2; }
}
"#;

fn compile(compiler: &str, std: &str, file: &str, source: &str) {
    let path = scratch(file);
    std::fs::write(&path, source).unwrap();
    let out = Command::new(compiler)
        .args([
            std,
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Werror",
            "-fsyntax-only",
            "-I",
        ])
        .arg(repo().join("include"))
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{compiler} {std} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn header_compiles_cleanly_as_c11_and_cpp17() {
    compile("cc", "-std=c11", "checks.c", CHECKS);
    let cpp = CHECKS.replace("_Static_assert", "static_assert");
    compile("c++", "-std=c++17", "checks.cpp", &cpp);
    // self-contained: included first, alone
    compile(
        "cc",
        "-std=c11",
        "alone.c",
        "#include \"wshandle.h\"\nint main(void) { return 0; }\n",
    );
}

#[test]
fn versions_match_cargo_toml() {
    let version = env!("CARGO_PKG_VERSION");
    let got = unsafe { std::ffi::CStr::from_ptr(ws_version()) }
        .to_str()
        .unwrap();
    assert_eq!(got, version);
    let toml = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    assert!(toml.contains(&format!("version = \"{version}\"")));
    let header = std::fs::read_to_string(repo().join("include/wshandle.h")).unwrap();
    let mut parts = version.split('.');
    for name in ["MAJOR", "MINOR", "PATCH"] {
        let line = format!("#define WSHANDLE_VERSION_{name} {}", parts.next().unwrap());
        assert!(header.contains(&line), "missing {line}");
    }
    assert!(header.contains(&format!("#define WSHANDLE_VERSION \"{version}\"")));
}

#[test]
fn the_header_declares_only_the_api_namespace() {
    // cbindgen exports every public constant of the crate: an internal one (a buffer size)
    // must never become a macro in users' programs.
    let header = std::fs::read_to_string(repo().join("include/wshandle.h")).unwrap();
    let foreign: Vec<&str> = header
        .lines()
        .filter_map(|l| l.strip_prefix("#define "))
        .map(|l| l.split([' ', '(']).next().unwrap_or(""))
        .filter(|name| {
            !(name.starts_with("WS_") || name.starts_with("WSHANDLE_") || *name == "WSHANDLE_H")
        })
        .collect();
    assert!(
        foreign.is_empty(),
        "macros outside WS_/WSHANDLE_: {foreign:?}"
    );
}

#[test]
fn only_ws_symbols_are_exported() {
    let lib = target_dir().join("libwshandle.so");
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .expect("nm (binutils)");
    assert!(out.status.success(), "nm {lib:?} failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let exported: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, kind, name) = (f.next()?, f.next()?, f.next()?);
            (kind == "T").then_some(name)
        })
        .collect();
    assert!(exported.len() >= 15, "{exported:?}");
    for name in &exported {
        assert!(name.starts_with("ws_"), "{name} is exported");
    }
    // every exported function is declared in the header
    let header = std::fs::read_to_string(repo().join("include/wshandle.h")).unwrap();
    for name in &exported {
        assert!(
            header.contains(&format!("{name}(")),
            "{name} is not in the header"
        );
    }
}
