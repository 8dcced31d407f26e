//! The documentation's code samples (docs/examples/, included verbatim into the site by
//! `literalinclude`), compiled with the flags users get and run against wshandle's own
//! listeners on loopback: the C echo server (c-examples/echo_server.c) and the Python one
//! from the getting-started page (docs/examples/hello_server.py). The docs build refuses a C,
//! C++ or Python sample that is not included from a file some test names (docs/_ext).

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn example(file: &str) -> PathBuf {
    repo().join("docs/examples").join(file)
}

fn build_c(file: &str) -> PathBuf {
    build_source(&format!("docs/examples/{file}"), "doc-examples", &[])
}

fn build_cpp(file: &str) -> PathBuf {
    compile(&example(file), "doc-examples", "c++", &["-std=c++17"])
}

/// `python docs/examples/FILE ARGS` with the package from python/ and the library under test.
fn python(file: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.arg("120")
        .arg(&*PYTHON)
        .arg(example(file))
        .args(args)
        .env("WSHANDLE_LIBRARY", target_dir().join("libwshandle.so"))
        .env("PYTHONPATH", repo().join("python"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

/// `docs/examples/hello_client.py URL`: its stdout.
fn python_client(url: &str) -> String {
    output_of(&mut python("hello_client.py", &[url]), "hello_client.py").1
}

#[test]
fn samples_against_the_c_echo_server() {
    let server = CServer::start("echo_server", &["ws://127.0.0.1:0/echo", "60"]);
    let url = server.url("/echo");

    // Getting started, C: c-examples/echo_client.c (also run by tests/c_examples.rs).
    let (_, out) = run(&build("echo_client"), &[&url]);
    assert!(
        out.contains("server closed with 1000 \"bye\"\necho ok"),
        "{out}"
    );

    // Getting started, C++: the C API with a small RAII owner.
    let (_, out) = run(&build_cpp("hello.cpp"), &[&url]);
    assert_eq!(
        out,
        "got \"hello from C++\" (text)\nserver closed with 1000 \"done\"\n"
    );

    // Porting from WinHTTP.
    let (_, out) = run(&build_c("winhttp_port.c"), &[&url]);
    assert_eq!(
        out,
        "Successfully upgraded to websocket protocol\n\
         Sent message to the server: 'Hello world'\n\
         Received message from the server: 'Hello world'\n\
         The server closed the connection with status code: '1000' and reason: ''\n"
    );

    // Getting started, Python client.
    let out = python_client(&url);
    assert_eq!(
        out,
        "got 'hello from Python'\nserver closed with (1000, 'done')\n"
    );
}

#[test]
fn winhttp_port_reports_a_failure_like_the_original() {
    // A port nobody listens on (the listener is closed before the client connects).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = Command::new(build_c("winhttp_port.c"))
        .arg(format!("ws://127.0.0.1:{port}/echo"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("Application failed with error: 12029 WS_ERROR_CANNOT_CONNECT: "),
        "{stdout}"
    );
}

#[test]
fn samples_against_the_python_echo_server() {
    let mut server = python("hello_server.py", &["2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = lines
        .next()
        .expect("hello_server.py printed nothing")
        .unwrap();
    let port: u16 = first
        .strip_prefix("listening on port ")
        .unwrap_or_else(|| panic!("{first}"))
        .parse()
        .unwrap();
    let url = format!("ws://127.0.0.1:{port}/echo");

    let out = python_client(&url);
    // The Python server's `with ws:` answers a close with 1000 and no reason.
    assert_eq!(
        out,
        "got 'hello from Python'\nserver closed with (1000, '')\n"
    );
    let (_, out) = run(&build_cpp("hello.cpp"), &[&url]);
    assert_eq!(
        out,
        "got \"hello from C++\" (text)\nserver closed with 1000 \"\"\n"
    );

    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(rest, ["served 2 connections"]);
    assert!(server.wait().unwrap().success());
}
