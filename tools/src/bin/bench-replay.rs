//! Start-up and lookup benchmark, through the real `anx` binary:
//! - `anx journal replay` on a long journal (default 10,000,000 events) once its
//!   snapshot exists: wall time per start-up (median of several runs);
//! - `anx why` on a 1,000,000-event journal: many lookups in one process,
//!   avg / p95 / max per lookup.
//!
//! Build first: `cargo build --release`, then
//! `cargo run --release -p anx-tools --bin bench-replay [-- --events N --why-events N --lookups N --runs R]`.

use anx_journal::{Event, Reader};
use anx_tools::{arg, median, write_synthetic_journal};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn anx_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let anx = exe.with_file_name("anx");
    assert!(
        anx.exists(),
        "{} not found: run `cargo build --release` first",
        anx.display()
    );
    anx
}

fn run(anx: &Path, args: &[&str]) -> (f64, String, String) {
    let started = Instant::now();
    let output = Command::new(anx).args(args).output().expect("spawn anx");
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "anx {args:?} failed: {stderr}");
    (seconds, stdout, stderr)
}

fn main() {
    let events = arg("--events", 10_000_000);
    let why_events = arg("--why-events", 1_000_000);
    let lookups = arg("--lookups", 1000) as usize;
    let runs = arg("--runs", 5) as usize;
    let anx = anx_binary();
    let base = tempfile::tempdir().expect("temp dir");

    let big = base.path().join("big");
    let started = Instant::now();
    let written = write_synthetic_journal(&big, events);
    println!(
        "wrote a {written}-event journal in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let dir = big.to_str().expect("utf-8 path");
    let (seconds, _, _) = run(&anx, &["journal", "reindex", dir]);
    println!(
        "anx journal reindex (full fold + index + snapshot): {seconds:.2} s ({:.0} events/s)",
        written as f64 / seconds
    );
    let mut startups = Vec::new();
    for _ in 0..runs {
        let (seconds, stdout, _) = run(&anx, &["journal", "replay", dir, "--format", "json"]);
        let out: serde_json::Value = serde_json::from_str(&stdout).expect("json");
        assert_eq!(
            out["fold"]["from_snapshot"], out["head_seq"],
            "start-up did not use the snapshot"
        );
        startups.push(seconds);
    }
    println!(
        "anx journal replay start-up via snapshot on {written} events: median {:.3} s (runs: {:?})",
        median(&mut startups),
        startups
            .iter()
            .map(|s| (s * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    std::fs::remove_dir_all(&big).expect("clean up");

    let small = base.path().join("why");
    let written = write_synthetic_journal(&small, why_events);
    let dir = small.to_str().expect("utf-8 path");
    run(&anx, &["journal", "reindex", dir]);
    let mut ids = Vec::new();
    let mut reader = Reader::open(&small).expect("open");
    while let Some(stored) = reader.next_event().expect("read") {
        match &stored.event {
            Event::TradeClosed(t) => ids.push(t.trade_id.clone()),
            Event::OrderAcknowledged(a) if ids.len() % 3 == 0 => {
                ids.push(a.exchange_order_id.clone())
            }
            Event::OrderPlaced(o) if ids.len() % 5 == 0 => ids.push(o.client_order_id.clone()),
            _ => {}
        }
    }
    // Spread the lookups over the whole journal.
    let step = (ids.len() / lookups.max(1)).max(1);
    let chosen: Vec<&str> = ids
        .iter()
        .step_by(step)
        .take(lookups)
        .map(String::as_str)
        .collect();
    let mut args = vec!["why", dir];
    args.extend(&chosen);
    let (_, _, stderr) = run(&anx, &args);
    let summary = stderr.lines().last().unwrap_or_default();
    println!("anx why on a {written}-event journal: {summary}");
}
