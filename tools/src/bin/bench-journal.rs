//! Journal benchmark: events/s and MB/s for buffered append, batch-durable
//! append, always-durable append and full verification, over ~150-byte candle
//! events. Reports the median of several runs. Not a test: run it with
//! `cargo run --release -p anx-tools --bin bench-journal [-- --events N --runs R]`.

use anx_journal::sample::{candle, GOLDEN_META};
use anx_journal::{verify, Durability, Event, OpenCheck, Writer, WriterOptions};
use anx_tools::{journal_bytes, median};
use std::path::Path;
use std::time::Instant;

struct Args {
    events: usize,
    always_events: usize,
    runs: usize,
    dir: Option<std::path::PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args {
        events: 2_000_000,
        always_events: 2_000,
        runs: 5,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--events" => args.events = value().parse().unwrap_or_else(|_| usage("bad --events")),
            "--always-events" => {
                args.always_events = value()
                    .parse()
                    .unwrap_or_else(|_| usage("bad --always-events"))
            }
            "--runs" => args.runs = value().parse().unwrap_or_else(|_| usage("bad --runs")),
            "--dir" => args.dir = Some(value().into()),
            _ => usage(&format!("unknown argument {flag}")),
        }
    }
    args
}

fn usage(problem: &str) -> ! {
    eprintln!("bench-journal: {problem}\nusage: bench-journal [--events N] [--always-events N] [--runs R] [--dir DIR]");
    std::process::exit(2)
}

/// Distinct candle events (prices vary), built before timing starts.
fn make_events(count: usize) -> Vec<(i64, Event)> {
    (0..count)
        .map(|i| {
            let open_ms = 1_704_067_200_000 + i as i64 * 60_000;
            let base = 40_000 + (i % 20_000) as i64;
            let p = |delta: i64| format!("{}.{:02}", base + delta, i % 100);
            let prices = [
                p(0),
                p(25),
                p(-25),
                p(10),
                format!("{}.{:04}", i % 97, i % 10_000),
            ];
            let refs = [
                prices[0].as_str(),
                prices[1].as_str(),
                prices[2].as_str(),
                prices[3].as_str(),
                prices[4].as_str(),
            ];
            (open_ms + 60_000, Event::Candle(candle(open_ms, refs)))
        })
        .collect()
}

fn append_all(dir: &Path, events: &[(i64, Event)], durability: Durability) -> f64 {
    let options = WriterOptions {
        durability,
        open_check: OpenCheck::FullChain,
        ..WriterOptions::default()
    };
    let started = Instant::now();
    let mut writer = Writer::create(dir, GOLDEN_META, options).expect("create journal");
    for (market_ms, event) in events {
        writer.append(*market_ms, event).expect("append");
    }
    writer.close().expect("close");
    started.elapsed().as_secs_f64()
}

fn report(name: &str, events: usize, bytes: u64, mut seconds: Vec<f64>) {
    let runs = seconds.len();
    let best = seconds.iter().copied().fold(f64::INFINITY, f64::min);
    let mid = median(&mut seconds);
    println!(
        "{name:<24} {events:>9} events  median {:>10.0} events/s {:>8.1} MB/s  (best {:>10.0} events/s, {runs} runs)",
        events as f64 / mid,
        bytes as f64 / mid / 1e6,
        events as f64 / best,
    );
}

fn main() {
    let args = parse_args();
    let base = match &args.dir {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let events = make_events(args.events);
    let always = &events[..args.always_events.min(events.len())];
    println!(
        "anx journal benchmark: {} candle events, {} runs each, in {}",
        events.len(),
        args.runs,
        base.path().display()
    );

    type Case<'a> = (&'static str, &'a [(i64, Event)], Durability);
    let mut cases: Vec<Case> = vec![
        ("append buffered", &events, Durability::OnClose),
        (
            "append batch (1000/10ms)",
            &events,
            Durability::Batch {
                events_max: 1000,
                delay_ms_max: 10,
            },
        ),
        ("append always", always, Durability::Always),
    ];
    let mut verify_dir = None;
    for (name, slice, durability) in cases.drain(..) {
        let mut seconds = Vec::new();
        let mut bytes = 0;
        for run in 0..args.runs {
            let dir = base
                .path()
                .join(format!("{}-{run}", name.replace(' ', "_")));
            seconds.push(append_all(&dir, slice, durability));
            bytes = journal_bytes(&dir);
            if durability == Durability::OnClose && verify_dir.is_none() {
                verify_dir = Some(dir);
            } else {
                std::fs::remove_dir_all(&dir).expect("clean up");
            }
        }
        let per_event = bytes as f64 / slice.len().max(1) as f64;
        report(name, slice.len(), bytes, seconds);
        if durability == Durability::OnClose {
            println!("{:<24} {per_event:.1} bytes per record on disk", "");
        }
    }

    let dir = verify_dir.expect("a buffered journal to verify");
    let bytes = journal_bytes(&dir);
    let mut seconds = Vec::new();
    for _ in 0..args.runs {
        let started = Instant::now();
        let report = verify(&dir, None).expect("verify");
        seconds.push(started.elapsed().as_secs_f64());
        assert!(report.ok() && report.events == events.len() as u64);
    }
    report("verify (full chain)", events.len(), bytes, seconds);
}
