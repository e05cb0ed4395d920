//! Where a run's edge comes from: the closed trades broken down by the signals
//! and the regime their entry decision saw, by symbol, by exit reason, by month
//! (UTC, of the exit) and by hold time, each bucket with
//! the same figures – trades, wins, losses, win rate, net PnL, expectancy in $
//! and in R, profit factor – computed by one function ([`Bucket::of`]) over
//! the trade rows. Conventions are the report's (`report.rs`): a win has net
//! PnL > 0, a figure undefined for its bucket is `None`.

use crate::model::{TradeDetail, TradeRow, HOUR_MS};
use crate::report::{ratio, round};
use anx_journal::UnixMs;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// The figures of one bucket of trades.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub trades: u64,
    pub wins: u64,
    pub losses: u64,
    /// Wins over trades, a fraction (0.5 = half).
    pub win_rate: Option<Decimal>,
    pub net_pnl: Decimal,
    /// Mean net PnL per trade, in the quote currency.
    pub expectancy: Option<Decimal>,
    /// Mean realized R per trade.
    pub expectancy_r: Option<Decimal>,
    /// Σ wins / |Σ losses|.
    pub profit_factor: Option<Decimal>,
}

impl Bucket {
    pub fn of<'a>(trades: impl Iterator<Item = &'a TradeRow>) -> Bucket {
        let mut bucket = Bucket::default();
        let (mut win_sum, mut loss_sum, mut r_sum) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        for trade in trades {
            bucket.trades += 1;
            if trade.net_pnl > Decimal::ZERO {
                bucket.wins += 1;
                win_sum += trade.net_pnl;
            } else if trade.net_pnl < Decimal::ZERO {
                bucket.losses += 1;
                loss_sum += trade.net_pnl;
            }
            bucket.net_pnl += trade.net_pnl;
            r_sum += trade.realized_r;
        }
        let trades = Decimal::from(bucket.trades);
        bucket.win_rate = ratio(Decimal::from(bucket.wins), trades);
        bucket.expectancy = ratio(bucket.net_pnl, trades);
        bucket.expectancy_r = ratio(r_sum, trades);
        bucket.profit_factor = ratio(win_sum, loss_sum.abs());
        bucket.net_pnl = round(bucket.net_pnl);
        bucket
    }
}

/// Hold-time buckets: (label, upper bound in hours, exclusive; the last has none).
pub const HOLD_BUCKETS: [(&str, Option<i64>); 6] = [
    ("< 1 h", Some(1)),
    ("1-4 h", Some(4)),
    ("4-24 h", Some(24)),
    ("1-3 d", Some(72)),
    ("3-7 d", Some(168)),
    (">= 7 d", None),
];

/// The hold-time bucket a trade held `hold_ms` falls in.
pub fn hold_bucket(hold_ms: i64) -> &'static str {
    HOLD_BUCKETS
        .iter()
        .find(|(_, below_h)| below_h.is_none_or(|h| hold_ms < h * HOUR_MS))
        .map_or(HOLD_BUCKETS[HOLD_BUCKETS.len() - 1].0, |(label, _)| label)
}

/// `YYYY-MM` of a UTC market time.
pub fn utc_month(ms: UnixMs) -> String {
    let day = crate::engine::order::compact_utc(ms);
    format!("{}-{}", &day[..4], &day[4..6])
}

/// One hold-time bucket and its figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HoldBucket {
    pub hold: &'static str,
    #[serde(flatten)]
    pub figures: Bucket,
}

/// The closed trades, broken down.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Breakdowns {
    /// The entry decision's fired signals, joined by `+` (`none` if none).
    pub by_signal: BTreeMap<String, Bucket>,
    /// The entry decision's regime (`unknown` without one).
    pub by_regime: BTreeMap<String, Bucket>,
    pub by_symbol: BTreeMap<String, Bucket>,
    pub by_exit_reason: BTreeMap<String, Bucket>,
    /// `YYYY-MM` (UTC) of the exit → the month's trades: a monthly returns table.
    pub by_month: BTreeMap<String, Bucket>,
    /// Every hold-time bucket that holds a trade, shortest first.
    pub by_hold_time: Vec<HoldBucket>,
}

/// A closed trade and its detail ([`crate::State::closed_trades`]).
pub type ClosedTrade<'a> = (&'a TradeRow, &'a TradeDetail);

impl Breakdowns {
    pub fn of(closed: &[ClosedTrade]) -> Breakdowns {
        let by = |key: &dyn Fn(&ClosedTrade) -> String| -> BTreeMap<String, Bucket> {
            let mut groups: BTreeMap<String, Vec<&TradeRow>> = BTreeMap::new();
            for trade in closed {
                groups.entry(key(trade)).or_default().push(trade.0);
            }
            groups
                .into_iter()
                .map(|(k, rows)| (k, Bucket::of(rows.into_iter())))
                .collect()
        };
        let by_hold_time = HOLD_BUCKETS
            .iter()
            .map(|(label, _)| HoldBucket {
                hold: label,
                figures: Bucket::of(
                    closed
                        .iter()
                        .map(|(t, _)| *t)
                        .filter(|t| hold_bucket(t.hold_ms()) == *label),
                ),
            })
            .filter(|b| b.figures.trades > 0)
            .collect();
        Breakdowns {
            by_signal: by(&|(_, d)| d.entry.signals_key().to_string()),
            by_regime: by(&|(_, d)| d.entry.regime_key().to_string()),
            by_symbol: by(&|(t, _)| t.symbol.clone()),
            by_exit_reason: by(&|(t, _)| t.exit_reason.name().to_string()),
            by_month: by(&|(t, _)| utc_month(t.exit_ms)),
            by_hold_time,
        }
    }
}
