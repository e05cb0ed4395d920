//! The paper trader's start-up cost: re-driving a journal through the pipeline
//! (read + verify + decode, then every step redone – engine, simulated broker,
//! fold – with each produced event compared to the journaled one).
//!
//! The journal is a replay of the real Coinbase 1h candles of BTC-USD, ETH-USD
//! and SOL-USD resampled to 4h over the whole shared range (Gate A's run): the
//! same steps a paper trader's journal of that length holds. Prints the median
//! of `--runs` (default 5) re-drives, in candles/s and events/s.
//! `cargo run --release -p anx-tools --bin bench-redrive`.

use anx_journal::*;
use anx_projections::engine::Engine;
use anx_replays::exchange::SimExchange;
use anx_replays::pipeline::{open_to_redrive, Pipeline};
use anx_replays::runner::run;
use anx_tools::{arg, bench_spec, median, shared_candles, shipped_config};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let runs = arg("--runs", 5) as usize;
    let cache = shared_candles("COINBASE_BTC-USD_1h.csv");
    let config = shipped_config("config/replay.toml");
    let work = tempfile::tempdir().expect("temp dir");
    let journal = work.path().join("journal");
    let range_ms = (1_704_067_200_000, 1_765_929_600_000); // 2024-01-01 → 2025-12-17
    let spec = bench_spec(config.clone(), cache, "COINBASE", range_ms, journal.clone());
    let outcome = run(&spec, &mut |_| {}).expect("replay");
    let candles = outcome.progress.candles;
    let events = outcome.head.seq;
    println!(
        "journal: {candles} candles, {events} events, {} trades",
        outcome.projection.state.trades.len()
    );
    let mut seconds = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let (writer, stored) = open_to_redrive(&journal, Durability::OnClose).expect("open");
        let mut pipeline = Pipeline::redriving(
            writer,
            Engine::new(config.clone(), &outcome.run_id, false),
            SimExchange::new(config.clone()),
            &outcome.run_id,
            stored,
        );
        pipeline.redrive(&mut |_| {}).expect("re-drive");
        assert_eq!(
            pipeline.projection.state_hash(),
            outcome.projection.state_hash()
        );
        drop(pipeline);
        seconds.push(started.elapsed().as_secs_f64());
    }
    let s = median(&mut seconds);
    println!(
        "re-drive (start-up): median {s:.3} s of {runs}: {:.0} candles/s, {:.0} events/s",
        candles as f64 / s,
        events as f64 / s
    );
}
