//! Anomalies a running trader watches for (seed 001 §F), judged from the
//! journal's fold and what the trader saw of the exchange, and journaled as
//! `Finding`s: raised once when a check starts to hold, cleared once when it
//! stops ([`changes`], which the edge-decay watch uses too).
//!
//! - `anomaly.signals_without_entry` (per symbol): signals fired and a check
//!   refused the entry this many times in a row since the symbol's last
//!   entry – a strategy that never trades may be a bug (a check that cannot
//!   pass, a size that always rounds to nothing); refusals by a breaker, a
//!   halt or the regime do not count (`Links::rejected_since_entry`);
//! - `anomaly.trade_rate`: entries over a trailing window above a share of
//!   what the pacing caps allow over it – churn that bleeds fees;
//! - `anomaly.data_stale` (per symbol): the trader journaled its newest
//!   candle stale (the engine's limit, `breakers.stale_data_max_age_s`, by
//!   the exchange's clock); cleared by a fresh candle;
//! - `anomaly.broker_errors`: in each of this many polls in a row a request
//!   to the exchange failed after its retries (market data, and a live
//!   trader's orders and account); cleared by a poll without a failure. A
//!   health problem while raised.
//!
//! The win rate of the last trades (edge decay) is the edge-decay watch's
//! `edge_decay.win_rate`, judged with or without a reference run.

use crate::engine::config::Config;
use crate::model::FindingNote;
use crate::Projection;
use anx_journal::{Finding, UnixMs};
use rust_decimal::Decimal;
use serde::Deserialize;

/// The family the checks are journaled under.
pub const FAMILY: &str = "anomaly";
const HOUR_MS: i64 = 3_600_000;

/// The thresholds (`config/operations.toml`, `[anomalies]`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyThresholds {
    /// Rejected entries in a row on one symbol, since its last entry.
    pub signals_without_entry_max: u64,
    /// The trailing window entries are counted over, in hours.
    pub trade_rate_window_h: u32,
    /// Entries over the window above this percent of what the pacing caps
    /// allow over it.
    pub trade_rate_max_pct_of_cap: Decimal,
    /// Polls in a row in which a request to the exchange failed.
    pub broker_errors_max: u32,
}

impl AnomalyThresholds {
    /// Every threshold in its range: one that is 0 would hold from the
    /// first pass, one beyond its range is a typo.
    pub fn check(&self) -> Result<(), String> {
        let fits = (1..=1_000_000).contains(&self.signals_without_entry_max)
            && (1..=24 * 366).contains(&self.trade_rate_window_h)
            && self.trade_rate_max_pct_of_cap > Decimal::ZERO
            && self.trade_rate_max_pct_of_cap <= Decimal::ONE_HUNDRED
            && (1..=10_000).contains(&self.broker_errors_max);
        if fits {
            Ok(())
        } else {
            Err("[anomalies]: a threshold is out of its range (signals_without_entry_max 1..=1000000, trade_rate_window_h 1..=8784, trade_rate_max_pct_of_cap above 0 up to 100, broker_errors_max 1..=10000)".into())
        }
    }
}

/// What the trader saw of the exchange (not in the journal).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The exchange's time.
    pub now_ms: UnixMs,
    /// Polls in a row in which a request to the exchange failed after its
    /// retries, and the newest failure.
    pub failing_polls: u64,
    pub last_error: String,
}

/// One check judged now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    pub check: String,
    /// Empty for a check about the whole run.
    pub symbol: String,
    pub holds: bool,
    pub value: Option<Decimal>,
    pub limit: Decimal,
    pub detail: String,
}

/// Every anomaly check, judged now.
pub fn judge(
    t: &AnomalyThresholds,
    config: &Config,
    projection: &Projection,
    seen: &Observed,
) -> Vec<Judged> {
    let mut out = Vec::new();
    for symbol in projection.state.symbols.keys() {
        out.push(signals_without_entry(t, projection, symbol));
        out.push(data_stale(config, projection, symbol));
    }
    out.push(trade_rate(t, config, projection, seen.now_ms));
    out.push(broker_errors(t, projection, seen));
    out
}

fn check(name: &str) -> String {
    format!("{FAMILY}.{name}")
}

fn signals_without_entry(t: &AnomalyThresholds, projection: &Projection, symbol: &str) -> Judged {
    let streak = projection
        .links
        .rejected_since_entry
        .get(symbol)
        .copied()
        .unwrap_or(0);
    Judged {
        check: check("signals_without_entry"),
        symbol: symbol.to_string(),
        holds: streak >= t.signals_without_entry_max,
        value: Some(Decimal::from(streak)),
        limit: Decimal::from(t.signals_without_entry_max),
        detail: format!(
            "{symbol}: signals fired and the entry was refused {streak} times in a row since its last entry (limit {})",
            t.signals_without_entry_max
        ),
    }
}

fn data_stale(config: &Config, projection: &Projection, symbol: &str) -> Judged {
    let newest = projection.state.last_close_ms(symbol);
    let flagged = projection.links.last_stale.get(symbol).map(|(_, ms)| *ms);
    let holds = newest.is_some() && flagged >= newest;
    let limit_s = config.breakers.stale_data_max_age_s;
    Judged {
        check: check("data_stale"),
        symbol: symbol.to_string(),
        holds,
        value: None,
        limit: Decimal::from(limit_s),
        detail: if holds {
            format!("{symbol}: the newest candle is older than {limit_s} s; no entries until fresh data")
        } else {
            format!("{symbol}: fresh data")
        },
    }
}

/// Entries in the trailing window against what the pacing caps allow in it.
fn trade_rate(
    t: &AnomalyThresholds,
    config: &Config,
    projection: &Projection,
    now_ms: UnixMs,
) -> Judged {
    let window_h = i64::from(t.trade_rate_window_h);
    let from_ms = now_ms - window_h * HOUR_MS;
    let state = &projection.state;
    let closed = state.trades.iter().filter(|tr| tr.entry_ms > from_ms);
    let open = state
        .symbols
        .values()
        .filter_map(|s| s.open_trade.as_ref())
        .filter(|tr| tr.opened_ms > from_ms);
    let entries = (closed.count() + open.count()) as i64;
    let pacing = &config.pacing;
    let by_day = i64::from(pacing.max_trades_per_day) * ((window_h + 23) / 24);
    let by_hour = i64::from(pacing.max_trades_per_hour) * window_h;
    let cap = by_day.min(by_hour).max(1);
    let pct = (Decimal::from(entries) * Decimal::ONE_HUNDRED / Decimal::from(cap)).round_dp(2);
    Judged {
        check: check("trade_rate"),
        symbol: String::new(),
        holds: pct > t.trade_rate_max_pct_of_cap,
        value: Some(pct),
        limit: t.trade_rate_max_pct_of_cap,
        detail: format!(
            "{entries} entries in the last {window_h} h, {pct} % of the {cap} the pacing caps allow (limit {} %)",
            t.trade_rate_max_pct_of_cap
        ),
    }
}

/// Raised from `broker_errors_max` failing polls in a row; once raised, it
/// holds until a poll without a failure (so a restart, whose streak starts
/// again from nothing, does not clear it while the exchange still fails).
fn broker_errors(t: &AnomalyThresholds, projection: &Projection, seen: &Observed) -> Judged {
    let name = check("broker_errors");
    let raised = is_raised(projection, &name, "");
    let holds = if raised {
        seen.failing_polls > 0
    } else {
        seen.failing_polls >= u64::from(t.broker_errors_max)
    };
    Judged {
        check: name,
        symbol: String::new(),
        holds,
        value: Some(Decimal::from(seen.failing_polls)),
        limit: Decimal::from(t.broker_errors_max),
        detail: if seen.failing_polls == 0 {
            "the exchange answers".into()
        } else {
            format!(
                "a request to the exchange failed in each of the last {} polls; the newest failure: {}",
                seen.failing_polls, seen.last_error
            )
        },
    }
}

/// The findings to journal: a raised one for each check that holds while
/// the journal's newest finding for it is not raised, a cleared one for each
/// that no longer holds while raised. Nothing for a check that never held.
pub fn changes(projection: &Projection, judged: Vec<Judged>) -> Vec<Finding> {
    judged
        .into_iter()
        .filter(|j| j.holds != is_raised(projection, &j.check, &j.symbol))
        .map(|j| Finding {
            check: j.check,
            symbol: j.symbol,
            raised: j.holds,
            value: j.value,
            limit: j.limit,
            detail: j.detail,
        })
        .collect()
}

/// Whether the journal's newest finding of `check` (and `symbol`) is raised.
fn is_raised(projection: &Projection, check: &str, symbol: &str) -> bool {
    projection
        .links
        .findings
        .get(&FindingNote::key(check, symbol))
        .is_some_and(|note| note.raised)
}
