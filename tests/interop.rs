//! wshandle's server (the C examples) against independent clients: Python `websockets`,
//! Python `websocket-client` and Node `ws`, each in its own process on 127.0.0.1.

mod common;
use common::*;
use serde_json::Value;

/// Runs one of tests/peers' clients and returns its final event for `scenario`.
fn client(program: &str, scenario: &str, url: &str) -> Value {
    let out = peer_command(program)
        .args(["--url", url, "--scenario", scenario, "--deadline", "60"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{program} {scenario} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == scenario)
        .unwrap_or_else(|| panic!("{program} printed no {scenario} event:\n{stdout}"))
}

const CLIENTS: [&str; 3] = ["ws_client.py", "wsc_client.py", "node_client.mjs"];

#[test]
fn echo_of_text_binary_fragmented_empty_and_large_messages() {
    for program in CLIENTS {
        let server = CServer::start("echo_server", &["ws://127.0.0.1:0/", "60"]);
        let ev = client(program, "echo", &server.url("/"));
        assert_eq!(ev["ok"], true, "{program}: {ev}");
        // the echo server answers the client's close with the same status and reason
        assert_eq!(
            (ev["close_code"].as_u64(), ev["close_reason"].as_str()),
            (Some(1000), Some("done")),
            "{program}"
        );
    }
}

#[test]
fn seed_scenario_last_word_arrives_before_the_servers_close() {
    for program in CLIENTS {
        let server = CServer::start("seed_server", &["ws://127.0.0.1:0/seed", "1", "60"]);
        let ev = client(program, "seed", &server.url("/seed"));
        assert_eq!(ev["ok"], true, "{program}: {ev}");
        assert_eq!(ev["replies"], 33, "{program}");
        assert_eq!(ev["last"], "Server got 0 bytes\n", "{program}");
        assert_eq!(ev["close_code"], 1000, "{program}");
        let log = server.finish();
        assert!(
            log.contains("server: 33 replies, 134217728 bytes, client closed with 1000"),
            "{program}: {log}"
        );
    }
}
