//! Market data and the market clock: the fake's bars, read once from anx's
//! candle cache (`anx_replays::data`, the same loader and validation the
//! replays use), served as Coinbase candles, and the clock that says which of
//! them have closed.
//!
//! - Bars are the cache's `COINBASE_<SYMBOL>_<granularity>` file at the
//!   fake's `--granularity` (or built from a finer file dividing it, as the
//!   replays do). Gaps stay gaps.
//! - A bar opening at t is closed once the clock is at or past t + granularity.
//! - Candles of a coarser Coinbase granularity are aggregated from whole runs
//!   of the fake's bars (a bucket missing one is not served).
//! - The clock is manual (`--speed 0`: it moves only when told) or runs at
//!   `speed` market seconds per real second from an anchor.

use super::matching::Bar;
use anx_replays::data::{find_source, CandleStream, Item};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// The most candles one request may ask for.
pub const CANDLES_PER_REQUEST_MAX: i64 = 300;

/// Coinbase's candle granularities: (name, seconds).
pub const GRANULARITIES: [(&str, i64); 8] = [
    ("ONE_MINUTE", 60),
    ("FIVE_MINUTE", 300),
    ("FIFTEEN_MINUTE", 900),
    ("THIRTY_MINUTE", 1800),
    ("ONE_HOUR", 3600),
    ("TWO_HOUR", 7200),
    ("SIX_HOUR", 21_600),
    ("ONE_DAY", 86_400),
];

/// Seconds of a granularity written `15m`, `1h`, `1d` or `60s`.
pub fn parse_granularity(text: &str) -> Option<u32> {
    let text = text.trim();
    let split = text.len().checked_sub(1)?;
    let (number, unit) = text.split_at(split);
    let n: u32 = number.parse().ok()?;
    let unit_s = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(unit_s).filter(|s| *s > 0)
}

/// Why a candles request is refused (HTTP 400 INVALID_ARGUMENT).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandleError(pub String);

/// Every product's bars, by open time.
pub struct Market {
    pub granularity_ms: i64,
    bars: BTreeMap<String, BTreeMap<i64, Bar>>,
}

impl Market {
    /// Reads `symbols`' bars from the cache in `dir`; a missing or malformed
    /// file is a one-line error.
    pub fn load(dir: &Path, symbols: &[String], granularity_s: u32) -> Result<Market, String> {
        let mut bars = BTreeMap::new();
        for symbol in symbols {
            let source =
                find_source(dir, "COINBASE", symbol, granularity_s).map_err(|e| e.to_string())?;
            let stream = CandleStream::open(&source, symbol, granularity_s, i64::MIN, i64::MAX)
                .map_err(|e| e.to_string())?;
            let mut series = BTreeMap::new();
            for item in stream {
                if let Item::Candle(c) = item.map_err(|e| e.to_string())? {
                    let bar = Bar {
                        open_ms: c.open_ms,
                        open: c.open,
                        high: c.high,
                        low: c.low,
                        close: c.close,
                        volume: c.volume,
                    };
                    series.insert(c.open_ms, bar);
                }
            }
            if series.is_empty() {
                return Err(format!("{}: no candles", source.path.display()));
            }
            bars.insert(symbol.clone(), series);
        }
        Ok(Market::from_bars(i64::from(granularity_s) * 1000, bars))
    }

    pub fn from_bars(granularity_ms: i64, bars: BTreeMap<String, BTreeMap<i64, Bar>>) -> Market {
        Market {
            granularity_ms,
            bars,
        }
    }

    pub fn has_product(&self, product_id: &str) -> bool {
        self.bars.contains_key(product_id)
    }

    /// The bar of `product_id` opening at `open_ms`.
    pub fn bar(&self, product_id: &str, open_ms: i64) -> Option<Bar> {
        self.bars.get(product_id)?.get(&open_ms).copied()
    }

    /// The bar containing `now_ms` (its open is the current price).
    pub fn current_bar(&self, product_id: &str, now_ms: i64) -> Option<Bar> {
        let g = self.granularity_ms;
        self.bar(product_id, now_ms - now_ms.rem_euclid(g))
    }

    /// The newest bar closed at `now_ms`.
    pub fn last_closed(&self, product_id: &str, now_ms: i64) -> Option<Bar> {
        let latest_open = now_ms - self.granularity_ms;
        let series = self.bars.get(product_id)?;
        series.range(..=latest_open).next_back().map(|(_, b)| *b)
    }

    /// Closed bars of `product_id` with close in `(now − span, now]`.
    pub fn closed_within(&self, product_id: &str, now_ms: i64, span_ms: i64) -> Vec<Bar> {
        let Some(series) = self.bars.get(product_id) else {
            return Vec::new();
        };
        let last_open = now_ms - self.granularity_ms;
        series
            .range(last_open - span_ms + 1..=last_open)
            .map(|(_, b)| *b)
            .collect()
    }

    /// Coinbase candles of `product_id`: buckets of `granularity_s` opening
    /// in `[start_s, end_s)`, closed by `now_ms`, newest first.
    pub fn candles(
        &self,
        product_id: &str,
        start_s: i64,
        end_s: i64,
        granularity_s: i64,
        now_ms: i64,
    ) -> Result<Vec<Bar>, CandleError> {
        let bucket_ms = granularity_s * 1000;
        if bucket_ms <= 0 || bucket_ms % self.granularity_ms != 0 {
            return Err(CandleError(format!(
                "granularity argument is invalid: fake-coinbase holds {}s bars and serves \
                 only multiples of them",
                self.granularity_ms / 1000
            )));
        }
        if end_s < start_s {
            return Err(CandleError(
                "start and end argument is invalid: end is before start".into(),
            ));
        }
        let requested = (end_s - start_s + granularity_s - 1) / granularity_s;
        if requested > CANDLES_PER_REQUEST_MAX {
            return Err(CandleError(format!(
                "start and end argument is invalid - number of candles requested should be \
                 less than {CANDLES_PER_REQUEST_MAX}"
            )));
        }
        let first_ms = (start_s * 1000).div_euclid(bucket_ms) * bucket_ms;
        let first_ms = if first_ms < start_s * 1000 {
            first_ms + bucket_ms
        } else {
            first_ms
        };
        let mut out = Vec::new();
        let mut open_ms = first_ms;
        while open_ms < end_s * 1000 && open_ms + bucket_ms <= now_ms {
            if let Some(bar) = self.bucket(product_id, open_ms, bucket_ms) {
                out.push(bar);
            }
            open_ms += bucket_ms;
        }
        out.reverse();
        Ok(out)
    }

    /// The bucket opening at `open_ms`, from every one of its bars.
    fn bucket(&self, product_id: &str, open_ms: i64, bucket_ms: i64) -> Option<Bar> {
        let series = self.bars.get(product_id)?;
        let parts: Vec<&Bar> = series
            .range(open_ms..open_ms + bucket_ms)
            .map(|(_, b)| b)
            .collect();
        let expected = usize::try_from(bucket_ms / self.granularity_ms).ok()?;
        if parts.len() != expected {
            return None;
        }
        let (first, last) = (parts.first()?, parts.last()?);
        Some(Bar {
            open_ms,
            open: first.open,
            high: parts.iter().map(|b| b.high).max()?,
            low: parts.iter().map(|b| b.low).min()?,
            close: last.close,
            volume: parts.iter().map(|b| b.volume).sum::<Decimal>(),
        })
    }
}

/// The market clock's pace: manual, or `speed` market seconds per real second.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub speed: u64,
    anchor: Option<(Instant, i64)>,
}

impl Clock {
    pub fn new(speed: u64) -> Clock {
        Clock {
            speed,
            anchor: None,
        }
    }

    /// Starts (or restarts) a running clock from `market_ms` now.
    pub fn anchor(&mut self, market_ms: i64) {
        if self.speed > 0 {
            self.anchor = Some((Instant::now(), market_ms));
        }
    }

    /// Where a running clock is now (None for a manual clock).
    pub fn target_ms(&self) -> Option<i64> {
        let (since, market_ms) = self.anchor?;
        let elapsed_ms = i64::try_from(since.elapsed().as_millis()).unwrap_or(i64::MAX);
        let speed = i64::try_from(self.speed).unwrap_or(i64::MAX);
        Some(market_ms.saturating_add(elapsed_ms.saturating_mul(speed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(open_ms: i64, open: i64, high: i64, low: i64, close: i64) -> Bar {
        Bar {
            open_ms,
            open: open.into(),
            high: high.into(),
            low: low.into(),
            close: close.into(),
            volume: Decimal::ONE,
        }
    }

    fn market() -> Market {
        let h = 3_600_000;
        let series: BTreeMap<i64, Bar> = (0..6)
            .map(|i| (i * h, bar(i * h, 100 + i, 110 + i, 90 + i, 101 + i)))
            .collect();
        Market::from_bars(h, BTreeMap::from([("BTC-USD".to_string(), series)]))
    }

    #[test]
    fn granularities_parse() {
        assert_eq!(parse_granularity("1h"), Some(3600));
        assert_eq!(parse_granularity("15m"), Some(900));
        assert_eq!(parse_granularity("1d"), Some(86_400));
        assert_eq!(parse_granularity("h"), None);
        assert_eq!(parse_granularity("0m"), None);
    }

    #[test]
    fn candles_are_closed_ones_newest_first() {
        let m = market();
        // At 03:30 the bars opening 00:00, 01:00, 02:00 are closed.
        let got = m.candles("BTC-USD", 0, 6 * 3600, 3600, 3 * 3_600_000 + 1_800_000);
        let opens: Vec<i64> = got.unwrap().iter().map(|b| b.open_ms / 3_600_000).collect();
        assert_eq!(opens, vec![2, 1, 0]);
    }

    #[test]
    fn coarser_candles_aggregate_whole_buckets() {
        let m = market();
        let got = m
            .candles("BTC-USD", 0, 6 * 3600, 7200, 6 * 3_600_000)
            .unwrap();
        assert_eq!(got.len(), 3);
        let newest = got[0];
        assert_eq!(newest.open_ms, 4 * 3_600_000);
        assert_eq!(newest.open, Decimal::from(104));
        assert_eq!(newest.high, Decimal::from(115));
        assert_eq!(newest.low, Decimal::from(94));
        assert_eq!(newest.close, Decimal::from(106));
        assert_eq!(newest.volume, Decimal::from(2));
        assert!(m.candles("BTC-USD", 0, 3600, 900, 0).is_err());
    }

    #[test]
    fn too_many_candles_are_refused() {
        let m = market();
        assert!(m.candles("BTC-USD", 0, 300 * 3600, 3600, 0).is_ok());
        assert!(m.candles("BTC-USD", 0, 301 * 3600, 3600, 0).is_err());
    }

    #[test]
    fn the_current_bar_contains_the_clock() {
        let m = market();
        let b = m.current_bar("BTC-USD", 2 * 3_600_000 + 5).unwrap();
        assert_eq!(b.open, Decimal::from(102));
        let last = m.last_closed("BTC-USD", 2 * 3_600_000 + 5).unwrap();
        assert_eq!(last.close, Decimal::from(102));
    }
}
