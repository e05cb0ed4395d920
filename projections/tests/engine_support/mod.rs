//! Helpers shared by the engine test files (`engine_*.rs`): the shipped
//! configuration, decimals, candles, and a harness that drives the engine the
//! way the replay runner's pipeline does (append, fold, observe, run_tick),
//! without an exchange.
#![allow(dead_code)]

use anx_journal::codec::Hash32;
use anx_journal::*;
use anx_projections::engine::config::{Config, ConfigError};
use anx_projections::engine::{Engine, TickInput};
use anx_projections::Projection;
use rust_decimal::Decimal;

pub const BTC: &str = "BTC-USD";
pub const ETH: &str = "ETH-USD";
pub const SOL: &str = "SOL-USD";
/// 2024-01-01T00:00:00Z, a UTC midnight.
pub const T0: UnixMs = 1_704_067_200_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const BAR_MS: i64 = 4 * HOUR_MS;

/// The shipped default configuration text (it has no `extends`).
pub const DEFAULT_TOML: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../config/default.toml"
));

pub fn d(text: &str) -> Decimal {
    text.parse()
        .unwrap_or_else(|e| panic!("bad decimal {text:?}: {e}"))
}

/// The shipped `config/default.toml`.
pub fn default_config() -> Config {
    Config::from_toml(DEFAULT_TOML).expect("the shipped default.toml is valid")
}

/// Loads `name` from the workspace's `config/` directory, through the file system.
pub fn load_shipped(name: &str) -> Result<Config, ConfigError> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../config");
    let mut read = |path: &str| std::fs::read_to_string(path).map_err(|e| e.to_string());
    Config::load(&format!("{dir}/{name}"), &mut read)
}

/// Loads `file` from an in-memory set of files.
pub fn load_from(files: &[(&str, &str)], file: &str) -> Result<Config, ConfigError> {
    let mut read = |path: &str| {
        files
            .iter()
            .find(|(name, _)| *name == path)
            .map(|(_, text)| text.to_string())
            .ok_or_else(|| format!("no such file {path}"))
    };
    Config::load(file, &mut read)
}

/// `text` with `from` replaced by `to` exactly once (panics if `from` is not
/// found exactly once, so a stale edit cannot silently test nothing).
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur exactly once in the text being edited"
    );
    text.replacen(from, to, 1)
}

/// A 4h candle with the given prices.
pub fn candle(
    symbol: &str,
    open_ms: UnixMs,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: Decimal,
) -> Candle {
    Candle {
        symbol: symbol.into(),
        granularity_s: 14_400,
        open_ms,
        open: close.clamp(low, high),
        high,
        low,
        close,
        volume,
    }
}

/// The engine and the projection it decides on, fed like the replay runner's
/// pipeline: every event is appended (here: to `events`), folded and observed;
/// the engine's outputs are appended in order right away.
pub struct Harness {
    pub projection: Projection,
    pub engine: Engine,
    pub events: Vec<(UnixMs, Event)>,
}

impl Harness {
    /// A run on `symbols` with `config` (its capital mode and starting capital).
    pub fn new(config: Config, symbols: &[&str]) -> Harness {
        let started = RunStarted {
            run_id: "enginetest-run".into(),
            run_mode: RunMode::ReplayBacktest,
            capital_mode: config.run.capital_mode,
            market_time_basis: MarketTimeBasis::CandleTimestamp,
            data_integrity: DataIntegrity::Ok,
            created_by: "engine tests".into(),
            git_sha: "test".into(),
            config_hash: config.hash(),
            config_text: config.canonical_text(),
            symbols: symbols.iter().map(|s| s.to_string()).collect(),
            granularity_s: config.granularity_s(),
            start_ms: T0,
            end_ms: None,
            starting_capital: config.run.starting_capital,
        };
        let mut harness = Harness {
            projection: Projection::new(),
            engine: Engine::new(config, "enginetest-run", false),
            events: Vec::new(),
        };
        harness.append(T0, started.into());
        harness
    }

    /// Appends one event: folds it (panicking, with the fold's reason, if the
    /// fold refuses it) and lets the engine observe it. Returns its seq.
    pub fn append(&mut self, market_ms: UnixMs, event: Event) -> Seq {
        let seq = self.projection.seq() + 1;
        if let Err(error) = self.projection.apply(seq, market_ms, &event) {
            panic!("the fold refused an event: {error}\n{event:?}");
        }
        if let Err(error) = self.engine.observe(&self.projection, market_ms, &event) {
            panic!("the engine refused an event: {error}\n{event:?}");
        }
        self.events.push((market_ms, event));
        seq
    }

    /// Appends the engine's outputs for `input`; returns them.
    pub fn step(&mut self, input: TickInput) -> Vec<(UnixMs, Event)> {
        let outputs = match self.engine.run_tick(&self.projection, input) {
            Ok(outputs) => outputs,
            Err(error) => panic!("the engine refused an input: {error}"),
        };
        for (market_ms, event) in &outputs {
            self.append(*market_ms, event.clone());
        }
        outputs
    }

    /// Journals a closed candle and lets the engine decide on it at its close.
    pub fn candle(&mut self, candle: Candle) -> Vec<(UnixMs, Event)> {
        let as_of_ms = candle.open_ms + i64::from(candle.granularity_s) * 1000;
        let seq = self.append(as_of_ms, candle.clone().into());
        self.step(TickInput::Candle {
            seq,
            candle: &candle,
            as_of_ms,
        })
    }

    /// Journals a fill and lets the engine react to it.
    pub fn fill(&mut self, fill: Fill, as_of_ms: UnixMs) -> Vec<(UnixMs, Event)> {
        let seq = self.append(as_of_ms, fill.clone().into());
        self.step(TickInput::Fill {
            seq,
            fill: &fill,
            as_of_ms,
        })
    }

    pub fn config_hash(&self) -> Hash32 {
        self.engine.config_hash()
    }
}

/// The decisions among `events`.
pub fn decisions(events: &[(UnixMs, Event)]) -> Vec<&Decision> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Decision(d) => Some(d),
            _ => None,
        })
        .collect()
}

/// The orders placed among `events`.
pub fn orders(events: &[(UnixMs, Event)]) -> Vec<&OrderPlaced> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::OrderPlaced(o) => Some(o),
            _ => None,
        })
        .collect()
}

/// The one risk check named `code` in `decision`.
pub fn check<'a>(checks: &'a [RiskCheck], code: &str) -> &'a RiskCheck {
    let found: Vec<&RiskCheck> = checks.iter().filter(|c| c.code == code).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {code} check in {checks:#?}"
    );
    found[0]
}
