//! Replay throughput, end to end (load → engine → simulated exchange → journal
//! with hashing → projections → report), in-process:
//! - real 1-minute data: BINANCE BTCUSDT and ETHUSDT 1m from ../shared/data/candles;
//! - a deterministic generated file of 5,000,000 1-minute candles in the cache layout.
//!
//! Prints candles/s, events/s, journal bytes per candle and peak RSS (VmHWM) of
//! each case, each run in its own process so the peaks are separate. Medians
//! of `--runs` (default 3). `cargo run --release -p anx-tools --bin bench-replay-run`.

use anx_journal::RunMode;
use anx_projections::engine::config::Config;
use anx_projections::Report;
use anx_replays::runner::{run, ReplaySpec};
use anx_tools::{journal_bytes, median, repo_root, shipped_config, Lcg};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SYNTH_CANDLES: u64 = 5_000_000;
const MINUTE_MS: i64 = 60_000;
const SYNTH_START_MS: i64 = 1_577_836_800_000; // 2020-01-01

fn config() -> Config {
    let mut config = shipped_config("config/replay.toml");
    config.run.granularity = "1m".into();
    // Stale-data and pacing knobs are in seconds; with 1m bars the defaults still apply.
    config
}

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

/// One replay in this process; prints one machine-readable line.
fn case(name: &str) {
    let work = tempfile::tempdir().expect("temp dir");
    let (cache, exchange, symbols, start, end) = match name {
        "real" => {
            let cache = repo_root().join("../shared/data/candles");
            assert!(
                cache.join("BINANCE_BTCUSDT_1m.csv.gz").is_file(),
                "shared 1m data missing at {}",
                cache.display()
            );
            (
                cache,
                "BINANCE",
                vec!["BTCUSDT".to_string(), "ETHUSDT".to_string()],
                1_747_699_200_000,
                1_755_561_600_000,
            )
        }
        _ => {
            generate(work.path());
            (
                work.path().to_path_buf(),
                "GEN",
                vec!["SYNTH".to_string()],
                SYNTH_START_MS,
                SYNTH_START_MS + SYNTH_CANDLES as i64 * MINUTE_MS,
            )
        }
    };
    let mut config = config();
    config.run.symbols = symbols.clone();
    let spec = ReplaySpec {
        config,
        symbols,
        exchange: exchange.into(),
        granularity_s: 60,
        start_ms: start,
        end_ms: end,
        cache_dir: cache,
        journal_dir: work.path().join("journal"),
        run_mode: RunMode::ReplayBacktest,
        skip_volume_filter: false,
        created_by: "bench".into(),
        git_sha: "bench".into(),
    };
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
        case(&args[pos + 1]);
        return;
    }
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(3);
    let exe = std::env::current_exe().expect("exe");
    for name in ["real", "synthetic"] {
        let mut rates = Vec::new();
        let mut last = String::new();
        for _ in 0..runs {
            let output = Command::new(&exe)
                .args(["--case", name])
                .output()
                .expect("spawn");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let line = String::from_utf8_lossy(&output.stdout)
                .lines()
                .find(|l| l.starts_with("RESULT"))
                .unwrap_or_default()
                .to_string();
            let field = |key: &str| -> f64 {
                line.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0)
            };
            rates.push(field("candles") / field("seconds"));
            last = line;
        }
        let field = |key: &str| -> f64 {
            last.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0)
        };
        let candles = field("candles");
        let seconds = field("seconds");
        println!(
            "{name:<10} {candles:>9} candles  median {:>9.0} candles/s  {:>9.0} events/s  {:.0} journal bytes/candle  peak RSS {:.0} MB  ({} trades)",
            median(&mut rates),
            field("events") / seconds,
            field("bytes") / candles,
            field("rss_kb") / 1024.0,
            field("trades")
        );
    }
}
