//! Replay throughput, end to end (load → engine → simulated exchange → journal
//! with hashing → projections → report), in-process:
//! - real 1-minute data: BINANCE BTCUSDT and ETHUSDT 1m from ../shared/data/candles;
//! - a deterministic generated file of 5,000,000 1-minute candles in the cache layout.
//!
//! Prints candles/s, events/s, journal bytes per candle and peak RSS (VmHWM) of
//! each case, each run in its own process so the peaks are separate. Medians
//! of `--runs` (default 3). `cargo run --release -p anx-tools --bin bench-replay-run`.
//!
//! `--stages` also times, on the real data and each on one core, the two stages
//! that need no engine: loading (read, inflate, parse, validate) and journaling
//! (encode, hash-chain and write the run's own events, read back from its
//! journal). They bound what the whole run can reach on this machine.

use anx_journal::{Durability, Event, Reader, Writer, WriterOptions};
use anx_projections::Report;
use anx_replays::runner::{run, ReplaySpec};
use anx_tools::{arg, bench_spec, journal_bytes, median, shared_candles, shipped_config, Lcg};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SYNTH_CANDLES: u64 = 5_000_000;
const MINUTE_MS: i64 = 60_000;
const SYNTH_START_MS: i64 = 1_577_836_800_000; // 2020-01-01

/// Writes the synthetic file: a bounded random walk, one row per minute.
fn generate(dir: &Path) -> PathBuf {
    let path = dir.join("GEN_SYNTH_1m.csv");
    let mut out =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).expect("create"));
    writeln!(out, "{}", anx_replays::data::HEADER).expect("write");
    let mut rng = Lcg::new(7);
    let mut price: i64 = 5_000_000; // cents
    for i in 0..SYNTH_CANDLES as i64 {
        let open = price;
        let step = 2_000;
        price = (price + rng.below(2 * step + 1) as i64 - step as i64).clamp(2_500_000, 10_000_000);
        let close = price;
        let high = open.max(close) + rng.below(1500) as i64;
        let low = open.min(close) - rng.below(1500) as i64;
        let volume = 1 + rng.below(5000);
        let unix = (SYNTH_START_MS + i * MINUTE_MS) / 1000;
        let c = |v: i64| format!("{}.{:02}", v / 100, v % 100);
        writeln!(
            out,
            "2020-01-01T00:00:00Z,{unix},{},{},{},{},{}.{:03}",
            c(open),
            c(high),
            c(low),
            c(close),
            volume / 1000,
            volume % 1000
        )
        .expect("write");
    }
    out.flush().expect("flush");
    path
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// What a case replays: 1-minute candles of `symbols` from `cache`.
struct Inputs {
    cache: PathBuf,
    exchange: &'static str,
    symbols: Vec<String>,
    range_ms: (i64, i64),
}

impl Inputs {
    /// The real case: Binance BTCUSDT and ETHUSDT 1m, 2025-05-20 → 2025-08-19.
    fn real() -> Inputs {
        Inputs {
            cache: shared_candles("BINANCE_BTCUSDT_1m.csv.gz"),
            exchange: "BINANCE",
            symbols: vec!["BTCUSDT".to_string(), "ETHUSDT".to_string()],
            range_ms: (1_747_699_200_000, 1_755_561_600_000),
        }
    }

    /// A 1-minute replay of these inputs into `journal_dir`.
    fn spec(self, journal_dir: PathBuf) -> ReplaySpec {
        let mut config = shipped_config("config/replay.toml");
        config.run.granularity = "1m".into();
        // Stale-data and pacing knobs are in seconds; with 1m bars the defaults still apply.
        config.run.symbols = self.symbols;
        bench_spec(
            config,
            self.cache,
            self.exchange,
            self.range_ms,
            journal_dir,
        )
    }
}

/// Loading alone, on one core: every symbol's file read, inflated, parsed and
/// validated in turn.
fn stage_load() {
    let inputs = Inputs::real();
    let (start, end) = inputs.range_ms;
    let started = Instant::now();
    let mut candles = 0u64;
    for symbol in &inputs.symbols {
        let source = anx_replays::data::find_source(&inputs.cache, inputs.exchange, symbol, 60)
            .expect("source");
        let stream =
            anx_replays::data::CandleStream::open(&source, symbol, 60, start, end).expect("open");
        for item in stream {
            candles += u64::from(matches!(
                item.expect("item"),
                anx_replays::data::Item::Candle(_)
            ));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("RESULT load candles={candles} seconds={seconds:.3}");
}

/// Journaling alone, on one core: the real run's own events (the first
/// `STAGE_EVENTS`, held in memory) encoded, hash-chained and written again.
fn stage_journal() {
    const STAGE_EVENTS: usize = 200_000;
    let work = tempfile::tempdir().expect("temp dir");
    let source = work.path().join("source");
    let spec = Inputs::real().spec(source.clone());
    run(&spec, &mut |_| {}).expect("replay");
    // The records as stored (for the chain alone) and decoded (to append again).
    let mut reader = Reader::open(&source).expect("reader");
    let mut records = Vec::with_capacity(STAGE_EVENTS);
    let mut events = Vec::with_capacity(STAGE_EVENTS);
    let mut candles = 0u64;
    while events.len() < STAGE_EVENTS {
        let Some(record) = reader.next_record().expect("read") else {
            break;
        };
        let stored = record.to_stored().expect("decode");
        records.push((record.seq, record.hash, record.payload.to_vec()));
        candles += u64::from(matches!(stored.event, Event::Candle(_)));
        events.push((stored.market_ms, stored.event));
    }
    let meta = reader.meta().expect("meta is known once a segment is read");
    let options = WriterOptions {
        durability: Durability::OnClose,
        ..WriterOptions::default()
    };
    let started = Instant::now();
    let mut writer = Writer::create(&work.path().join("copy"), meta, options).expect("create");
    for (market_ms, event) in &events {
        writer.append(*market_ms, event).expect("append");
    }
    writer.close().expect("close");
    let seconds = started.elapsed().as_secs_f64();
    // The hash chain plus reading the file back: what verification costs.
    let started = Instant::now();
    anx_journal::verify(&work.path().join("copy"), None).expect("verify");
    let verify_s = started.elapsed().as_secs_f64();
    // The hash chain alone, over payloads already in memory (FORMAT.md §4).
    let started = Instant::now();
    let mut prev = meta.genesis();
    for (seq, hash, payload) in &records {
        prev = anx_journal::format::chain_hash(&prev, *seq, payload);
        assert_eq!(prev, *hash, "chain broken at seq {seq}");
    }
    let hash_s = started.elapsed().as_secs_f64();
    println!(
        "RESULT journal candles={candles} events={} seconds={seconds:.3} verify_s={verify_s:.3} hash_s={hash_s:.3}",
        events.len()
    );
}

/// One replay in this process; prints one machine-readable line.
fn case(name: &str) {
    let work = tempfile::tempdir().expect("temp dir");
    let inputs = match name {
        "real" => Inputs::real(),
        _ => {
            generate(work.path());
            Inputs {
                cache: work.path().to_path_buf(),
                exchange: "GEN",
                symbols: vec!["SYNTH".to_string()],
                range_ms: (
                    SYNTH_START_MS,
                    SYNTH_START_MS + SYNTH_CANDLES as i64 * MINUTE_MS,
                ),
            }
        }
    };
    let spec = inputs.spec(work.path().join("journal"));
    let started = Instant::now();
    let outcome = run(&spec, &mut |_| {}).expect("replay");
    let report = Report::from_state(&outcome.projection.state);
    let seconds = started.elapsed().as_secs_f64();
    let bytes = journal_bytes(&spec.journal_dir);
    println!(
        "RESULT {name} candles={} events={} seconds={seconds:.3} bytes={bytes} rss_kb={} trades={}",
        outcome.progress.candles,
        outcome.progress.events,
        peak_rss_kb(),
        report.trades_closed
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--case") {
        match args[pos + 1].as_str() {
            "load" => stage_load(),
            "journal" => stage_journal(),
            name => case(name),
        }
        return;
    }
    let stages = args.iter().any(|a| a == "--stages");
    let runs = arg("--runs", 3) as usize;
    let exe = std::env::current_exe().expect("exe");
    // One process per measurement, so peak RSS figures are separate.
    let measure = |name: &str| -> Vec<String> {
        (0..runs)
            .map(|_| {
                let output = Command::new(&exe)
                    .args(["--case", name])
                    .output()
                    .expect("spawn");
                assert!(
                    output.status.success(),
                    "{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .find(|l| l.starts_with("RESULT"))
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    let field = |line: &str, key: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    // Median candles/s, timed by the `seconds_key` field of each run.
    let rate_by = |lines: &[String], seconds_key: &str| -> f64 {
        let mut rates: Vec<f64> = lines
            .iter()
            .map(|l| field(l, "candles") / field(l, seconds_key))
            .collect();
        median(&mut rates)
    };
    let rate = |lines: &[String]| rate_by(lines, "seconds");
    if stages {
        for (name, what) in [
            ("load", "loading alone (read, inflate, parse, validate)"),
            ("journal", "journaling alone (encode, hash chain, write)"),
        ] {
            let lines = measure(name);
            let last = lines.last().cloned().unwrap_or_default();
            println!(
                "stage {name:<8} median {:>9.0} candles/s on one core  ({what}; {} candles)",
                rate(&lines),
                field(&last, "candles")
            );
            if name == "journal" {
                println!(
                    "      verify           {:>9.0} candles/s on one core  (read back, hash chain checked)",
                    rate_by(&lines, "verify_s")
                );
                println!(
                    "      BLAKE3 chain     {:>9.0} candles/s on one core  (in memory: the hashing alone)",
                    rate_by(&lines, "hash_s")
                );
            }
        }
    }
    for name in ["real", "synthetic"] {
        let lines = measure(name);
        let last = lines.last().cloned().unwrap_or_default();
        let candles = field(&last, "candles");
        let seconds = field(&last, "seconds");
        println!(
            "{name:<10} {candles:>9} candles  median {:>9.0} candles/s  {:>9.0} events/s  {:.0} journal bytes/candle  peak RSS {:.0} MB  ({} trades)",
            rate(&lines),
            field(&last, "events") / seconds,
            field(&last, "bytes") / candles,
            field(&last, "rss_kb") / 1024.0,
            field(&last, "trades")
        );
    }
}
