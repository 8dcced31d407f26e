//! The benchmark driver: `benches/run.sh` runs it (release build) and turns its JSON into
//! benches/results.md and benches/results.png.
//!
//! Every scenario runs once per round for every contender, contenders alternating order
//! from round to round, on 127.0.0.1; medians and min–max over the rounds are reported.
//!
//!     wsbench [--rounds N] [--beast PATH] [--out FILE]

mod beast;
mod compress;
mod memory;
mod scenarios;
mod serve;
mod slow;
mod util;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use scenarios::*;
use util::{percentile, stats};

/// Messages per call in the batched-send scenario.
const BATCH: usize = 64;

/// Samples per (scenario, contender), with the unit and whether higher is better.
#[derive(Default)]
struct Results(BTreeMap<(String, String), (String, bool, Vec<f64>)>);

impl Results {
    fn add(&mut self, scenario: &str, contender: &str, unit: &str, higher_better: bool, v: f64) {
        eprintln!("  {scenario:<28} {contender:<14} {v:>14.3} {unit}");
        self.0
            .entry((scenario.to_owned(), contender.to_owned()))
            .or_insert_with(|| (unit.to_owned(), higher_better, Vec::new()))
            .2
            .push(v);
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The permessage-deflate scenarios: echoes of the JSON corpus (one message in flight) against
/// Node `ws`, the corpus's compression ratio, memory per idle compressed connection.
fn deflate_round(r: &mut Results, flip: bool) {
    let mut contenders = vec!["wshandle", "wshandle level 6", "Node ws"];
    if flip {
        contenders.reverse();
    }
    for c in contenders {
        let v = match c {
            "wshandle" => compress::echo_ws(3, 2),
            "wshandle level 6" => compress::echo_ws(6, 2),
            _ => match compress::echo_node(2) {
                Some(v) => v,
                None => continue,
            },
        };
        r.add("compressed JSON echo", c, "msg/s", true, v);
    }
    for (c, takeover) in [("wshandle", true), ("wshandle no context takeover", false)] {
        r.add(
            "JSON corpus compression ratio",
            c,
            "×",
            true,
            compress::ratio(takeover),
        );
    }
    for (c, kind) in [
        ("wshandle", "deflate"),
        ("wshandle no context takeover", "deflate-no-takeover"),
        ("wshandle uncompressed", "echoed"),
    ] {
        let v = memory::measure(kind, 1000);
        r.add(
            "memory per idle compressed connection",
            c,
            "bytes",
            false,
            v,
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("mem-server") => {
            return memory::serve(
                args[2].parse().unwrap(),
                args.get(3).map_or("", String::as_str),
            )
        }
        Some("deflate-serve") => return compress::serve(args[2].parse().unwrap()),
        // the compression scenarios alone: wsbench deflate ROUNDS
        Some("deflate") => {
            let mut r = Results::default();
            for _ in 0..args.get(2).map_or(1, |n| n.parse().unwrap()) {
                deflate_round(&mut r, false);
            }
            return;
        }
        Some("mem-client") => {
            return memory::client(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap())
        }
        Some("serve") => {
            return serve::serve(&args[2], args.get(3).map_or(16, |s| s.parse().unwrap()))
        }
        // the listener among slow clients alone: wsbench slow-handshakes [CLIENTS] [ROUNDS]
        Some("slow-handshakes") => {
            let n = args.get(2).map_or(1000, |s| s.parse().unwrap());
            for _ in 0..args.get(3).map_or(1, |s| s.parse().unwrap()) {
                let (cpu, ms) = slow::slow_handshakes(n);
                println!(
                    "{n} slow clients: listener CPU {cpu:.1} % of a core, handshake p50 {ms:.3} ms"
                );
            }
            return;
        }
        // one scenario alone, for profiling: wsbench profile recv|send|batch|batch-raw|pingpong|pingpong16k|pingpong16k-raw|bulk|bulk-down|bulk-raw|mask|copy
        Some("profile") => {
            let v = match args[2].as_str() {
                "recv" => recv_stream_ws(16, 5_000_000),
                "send" => small_send_ws(16, 1_000_000),
                "batch" => batch_send_ws(16, BATCH, 64 * 100_000),
                "batch-raw" => batch_send_raw(16, BATCH, 64 * 100_000),
                "mask" => mask_speed(true),
                "copy" => mask_speed(false),
                "pingpong" => us(percentile(&pingpong_ws(16, 50_000), 50.0)),
                "pingpong16k" => us(percentile(&pingpong_ws(16 * 1024, 20_000), 50.0)),
                "pingpong16k-raw" => us(percentile(&pingpong_raw(16 * 1024, 20_000), 50.0)),
                "bulk-down" => {
                    let (rate, cpu) = bulk_ws(false);
                    return println!("{rate} GiB/s {cpu} CPU s/GiB");
                }
                "bulk-raw" => {
                    let (rate, cpu) = bulk_raw();
                    return println!("{rate} GiB/s {cpu} CPU s/GiB");
                }
                _ => {
                    let (rate, cpu) = bulk_ws(true);
                    return println!("{rate} GiB/s {cpu} CPU s/GiB");
                }
            };
            return println!("{v}");
        }
        _ => {}
    }
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
    };
    let rounds: usize = opt("--rounds").map_or(5, |r| r.parse().unwrap());
    let beast_exe = opt("--beast");
    let out = opt("--out").unwrap_or_else(|| "target/bench-results.json".to_owned());
    let small_n = 200_000;
    let recv_n = 1_000_000;
    let batch_n = 64 * 40_000;
    let pp_iters = 10_000;

    let mut r = Results::default();
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        // alternate who goes first, round by round
        let flip = round % 2 == 1;
        let order = |mut v: Vec<&'static str>| {
            if flip {
                v.reverse();
            }
            v
        };
        // Bulk: wshandle and raw TCP back to back, per direction, so that the ratio of each
        // pair sees the same machine (a load spike during one 1 GiB sample on a shared
        // machine swung the ratio of medians from 0.64 to 1.41 for the same code); the
        // process's CPU time per GiB, which load does not change, next to it.
        for (up, d) in [
            (true, "up (client→server)"),
            (false, "down (server→client)"),
        ] {
            let scenario = format!("bulk {d}");
            let mut pair = [0.0f64; 2];
            for c in order(vec!["wshandle", "raw TCP"]) {
                let (rate, cpu) = if c == "wshandle" {
                    bulk_ws(up)
                } else {
                    bulk_raw()
                };
                pair[usize::from(c != "wshandle")] = rate;
                r.add(&scenario, c, "GiB/s", true, rate);
                r.add(&format!("{scenario} CPU"), c, "CPU s/GiB", false, cpu);
            }
            r.add(
                &format!("{scenario}, paired ratio"),
                "wshandle ÷ raw TCP",
                "×",
                true,
                pair[0] / pair[1],
            );
        }
        if let Some(b) = &beast_exe {
            r.add(
                "bulk up (client→server)",
                "Beast",
                "GiB/s",
                true,
                beast::bulk_up(b),
            );
        }
        for size in [16usize, 128] {
            let name = format!("send {size} B (unbatched)");
            for c in order(vec!["wshandle", "raw TCP", "tungstenite", "Beast"]) {
                let v = match c {
                    "wshandle" => small_send_ws(size, small_n),
                    "raw TCP" => small_send_raw(size, small_n),
                    "tungstenite" => small_send_tungstenite(size, small_n),
                    _ => match &beast_exe {
                        Some(b) => beast::small_send(b, size, small_n),
                        None => continue,
                    },
                };
                r.add(&name, c, "msg/s", true, v);
            }
            if size == 16 {
                let name = format!("send {size} B batched ({BATCH} per call)");
                for c in order(vec!["wshandle", "raw TCP"]) {
                    let v = match c {
                        "wshandle" => batch_send_ws(size, BATCH, batch_n),
                        _ => batch_send_raw(size, BATCH, batch_n),
                    };
                    r.add(&name, c, "msg/s", true, v);
                }
            }
            let name = format!("receive {size} B");
            for c in order(vec!["wshandle", "tungstenite"]) {
                let v = if c == "wshandle" {
                    recv_stream_ws(size, recv_n)
                } else {
                    recv_stream_tungstenite(size, recv_n)
                };
                r.add(&name, c, "msg/s", true, v);
            }
        }
        for size in [16usize, 16 * 1024] {
            let label = if size == 16 { "16 B" } else { "16 KiB" };
            for c in order(vec!["wshandle", "raw TCP", "Beast"]) {
                let (p50, p99) = match c {
                    "wshandle" => {
                        let l = pingpong_ws(size, pp_iters);
                        (us(percentile(&l, 50.0)), us(percentile(&l, 99.0)))
                    }
                    "raw TCP" => {
                        let l = pingpong_raw(size, pp_iters);
                        (us(percentile(&l, 50.0)), us(percentile(&l, 99.0)))
                    }
                    _ => match &beast_exe {
                        Some(b) => beast::pingpong(b, size, pp_iters),
                        None => continue,
                    },
                };
                r.add(&format!("ping-pong {label} p50"), c, "µs", false, p50);
                r.add(&format!("ping-pong {label} p99"), c, "µs", false, p99);
            }
        }
        r.add("ws_close", "wshandle", "µs", false, close_ws(200));
        deflate_round(&mut r, flip);
        let (cpu, ms) = slow::slow_handshakes(1000);
        r.add(
            "listener CPU, 1000 slow handshakes",
            "wshandle",
            "% core",
            false,
            cpu,
        );
        r.add(
            "handshake among 1000 slow ones",
            "wshandle",
            "ms",
            false,
            ms,
        );
        for c in order(vec!["wshandle", "tungstenite"]) {
            r.add(
                "memory per idle connection",
                c,
                "bytes",
                false,
                memory::measure(c, 1000),
            );
        }
    }

    let mut rows = Vec::new();
    for ((scenario, contender), (unit, higher_better, samples)) in &r.0 {
        let (median, min, max) = stats(samples.clone());
        rows.push(json!({
            "scenario": scenario, "contender": contender, "unit": unit,
            "higher_is_better": higher_better, "median": median, "min": min, "max": max,
            "samples": samples,
        }));
    }
    let doc: Value = json!({ "rounds": rounds, "results": rows });
    std::fs::write(&out, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    eprintln!("wrote {out}");
}
