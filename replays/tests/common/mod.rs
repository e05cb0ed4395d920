//! Helpers shared by the replays test files: the shipped configuration,
//! decimals, times, and cache-file rows in the common CSV layout.
#![allow(dead_code)]

use anx_journal::{Reader, StoredEvent, UnixMs};
use anx_projections::engine::config::Config;
use anx_projections::engine::order::compact_utc;
use rust_decimal::Decimal;

/// The shipped default configuration text (it has no `extends`).
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// 2024-01-01T00:00:00Z: a UTC midnight, so also a 4h boundary.
pub const T0_S: i64 = 1_704_067_200;
pub const T0: UnixMs = T0_S * 1000;
pub const HOUR_S: i64 = 3600;
pub const HOUR_MS: i64 = 3_600_000;
pub const BAR_MS: i64 = 4 * HOUR_MS;

pub fn d(text: &str) -> Decimal {
    text.parse()
        .unwrap_or_else(|e| panic!("bad decimal {text:?}: {e}"))
}

/// The shipped `config/default.toml`.
pub fn default_config() -> Config {
    Config::from_toml(DEFAULT_TOML).expect("the shipped default.toml is valid")
}

/// ISO-8601 UTC of a Unix time in seconds (`2024-01-01T00:00:00Z`).
pub fn iso(unix_s: i64) -> String {
    let c = compact_utc(unix_s * 1000);
    format!(
        "{}-{}-{}T{}:{}:00Z",
        &c[0..4],
        &c[4..6],
        &c[6..8],
        &c[9..11],
        &c[11..13]
    )
}

/// One cache-file row (no newline).
pub fn row(unix_s: i64, o: &str, h: &str, l: &str, c: &str, v: &str) -> String {
    format!("{},{unix_s},{o},{h},{l},{c},{v}", iso(unix_s))
}

/// The header and `rows`, one per line.
pub fn csv(rows: &[String]) -> String {
    let mut text = String::from(anx_replays::data::HEADER);
    text.push('\n');
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    text
}

/// Every event of the journal in `dir`, read and verified.
pub fn read_journal(dir: &std::path::Path) -> Vec<StoredEvent> {
    let mut reader = Reader::open(dir).expect("open the journal");
    let mut events = Vec::new();
    while let Some(event) = reader.next_event().expect("a verified record") {
        events.push(event);
    }
    events
}
