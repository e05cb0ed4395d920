//! Shared helpers for the benchmarks: deterministic synthetic trading journals
//! and timing statistics; and the fake Coinbase exchange (`fake_coinbase`).

pub mod fake_coinbase;

use anx_journal::{CapitalMode, Durability, Event, JournalMeta, UnixMs, Writer, WriterOptions};
use anx_journal::{DecisionOutcome, ExitReason};
use anx_projections::testkit::{Exit, Scenario};
use rust_decimal::Decimal;
use std::path::Path;

pub const SYMBOLS: [&str; 3] = ["BTC-USD", "ETH-USD", "SOL-USD"];
const BASE_PRICES: [i64; 3] = [42_000, 2_300, 100];

/// A small deterministic pseudo-random sequence (no randomness crate needed,
/// and the same numbers on every machine).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Builds a realistic replay journal of about `events` events – per bar, per
/// symbol, a candle and its decision; now and then a whole bracket trade – and
/// hands the events to `sink` in chunks, so memory stays bounded.
pub fn synthetic_run(events: u64, mut sink: impl FnMut(Vec<(UnixMs, Event)>)) {
    let mut rng = Lcg::new(0x5eed);
    let mut scenario = Scenario::new(
        &SYMBOLS,
        CapitalMode::Independent,
        Decimal::from(100_000),
        1_704_067_200_000,
    );
    let mut prices: Vec<i64> = BASE_PRICES.iter().map(|p| p * 100).collect(); // in cents
    while scenario.next_seq() < events {
        for (i, symbol) in SYMBOLS.iter().enumerate() {
            // A bounded random walk around the base price.
            let base = BASE_PRICES[i] * 100;
            let step = base / 400;
            prices[i] = (prices[i] + rng.below(2 * step as u64 + 1) as i64 - step)
                .clamp(base / 2, base * 2);
            let close = Decimal::new(prices[i], 2);
            if i == 0 {
                scenario.candle(symbol, close);
            } else {
                scenario.candle_same_bar(symbol, close);
            }
            if rng.below(40) == 0 {
                let entry = close;
                let stop = (entry * Decimal::new(97, 2)).round_dp(2);
                let target = (entry * Decimal::new(106, 2)).round_dp(2);
                let size = (Decimal::from(1000) / entry).round_dp(6);
                let (exit, price) = match rng.below(4) {
                    0 => (Exit::TakeProfit, target),
                    1 => (Exit::StopLoss, stop),
                    2 => (
                        Exit::Order(ExitReason::Signal),
                        (entry * Decimal::new(101, 2)).round_dp(2),
                    ),
                    _ => (
                        Exit::Order(ExitReason::Manual),
                        (entry * Decimal::new(99, 2)).round_dp(2),
                    ),
                };
                scenario.trade(
                    symbol,
                    entry,
                    stop,
                    target,
                    size,
                    exit,
                    price,
                    1 + rng.below(6) as u32,
                );
            } else {
                scenario.decision(symbol, DecisionOutcome::Hold, None);
            }
        }
        if scenario.events.len() >= 100_000 {
            sink(scenario.drain());
        }
    }
    sink(scenario.finish());
}

/// Writes a synthetic run of about `events` events to a new journal in `dir`.
pub fn write_synthetic_journal(dir: &Path, events: u64) -> u64 {
    let meta = JournalMeta {
        journal_id: *b"anx-bench-synth1",
        created_ms: 1_704_067_200_000,
    };
    let options = WriterOptions {
        durability: Durability::OnClose,
        ..WriterOptions::default()
    };
    let mut writer = Writer::create(dir, meta, options).expect("create journal");
    let mut written = 0;
    synthetic_run(events, |chunk| {
        for (ms, event) in chunk {
            writer.append(ms, &event).expect("append");
            written += 1;
        }
    });
    writer.close().expect("close");
    written
}

/// Median of samples (sorts them).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

/// The number after `name` on the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

/// The repository's root directory.
pub fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A shipped configuration file (`config/replay.toml` …), loaded with its `extends`.
pub fn shipped_config(relative: &str) -> anx_projections::engine::config::Config {
    let path = repo_root().join(relative);
    let mut read = |file: &str| std::fs::read_to_string(file).map_err(|e| e.to_string());
    anx_projections::engine::config::Config::load(path.to_str().expect("utf-8 path"), &mut read)
        .unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// The shared candle data beside the checkout (`../shared/data/candles`);
/// panics, naming the path, when `required_file` is not there.
pub fn shared_candles(required_file: &str) -> std::path::PathBuf {
    let cache = repo_root().join("../shared/data/candles");
    assert!(
        cache.join(required_file).is_file(),
        "shared candle data missing: {} not in {}",
        required_file,
        cache.display()
    );
    cache
}

/// A benchmark's replay of `config` (its symbols and granularity) from `cache`.
pub fn bench_spec(
    config: anx_projections::engine::config::Config,
    cache_dir: std::path::PathBuf,
    exchange: &str,
    (start_ms, end_ms): (anx_journal::UnixMs, anx_journal::UnixMs),
    journal_dir: std::path::PathBuf,
) -> anx_replays::runner::ReplaySpec {
    anx_replays::runner::ReplaySpec {
        config,
        exchange: exchange.into(),
        start_ms,
        end_ms,
        cache_dir,
        journal_dir,
        run_mode: anx_journal::RunMode::ReplayBacktest,
        skip_volume_filter: false,
        created_by: "bench".into(),
        git_sha: "bench".into(),
    }
}

/// Bytes in a journal's segment files.
pub fn journal_bytes(dir: &Path) -> u64 {
    anx_journal::list_segments(dir)
        .expect("list segments")
        .iter()
        .map(|s| std::fs::metadata(&s.path).map(|m| m.len()).unwrap_or(0))
        .sum()
}
