//! Filling the candle cache from Coinbase's public candles endpoint.
use anyhow::Result;
use std::path::Path;

pub fn fill_cache(
    _base_url: &str,
    _cache_dir: &Path,
    _exchange: &str,
    _symbols: &[String],
    _granularity_s: u32,
    _start_ms: i64,
    _end_ms: i64,
) -> Result<()> {
    anyhow::bail!("--data-source coinbase is not available yet")
}
