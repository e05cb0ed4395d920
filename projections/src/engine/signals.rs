//! The signal registry and the regime classifier. Each signal scans the
//! indicators of a closed bar and says whether it fires, how strongly, how
//! confidently, and where it would enter, stop and take profit. Long only.
//!
//! - `breakout`: close above the Donchian high of the previous bars, with the
//!   bar's volume above `volume_factor` × the previous average (the volume
//!   filter, skippable for debugging). Strength = (close − high) / ATR;
//!   confidence = volume / (factor × average), capped at 1.
//! - `momentum`: the fast EMA crosses above the slow EMA on this bar (trend
//!   continuation). Strength = (fast − slow) / ATR.
//! - `mean_reversion`: the close is more than `entry_atr_below` ATRs below the
//!   mean (fade an extreme move down). Strength = (mean − close) / ATR.
//!
//! Every signal stops at entry − `stop_atr_multiple` × ATR and takes profit at
//! entry + `reward_risk` × (entry − stop). Strength and confidence are rounded
//! to 4 decimals.

use super::config::Config;
use super::indicators::Snapshot;
use anx_journal::{SignalOutput, Text};
use rust_decimal::Decimal;

/// The market regime of a bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    Trend,
    Chop,
    Bear,
    /// Not enough bars to tell yet.
    Unknown,
}

impl Regime {
    /// The regime a Decision names (its `name`).
    pub fn from_name(name: &str) -> Regime {
        [Regime::Trend, Regime::Chop, Regime::Bear]
            .into_iter()
            .find(|r| r.name() == name)
            .unwrap_or(Regime::Unknown)
    }

    pub fn name(self) -> &'static str {
        match self {
            Regime::Trend => "trend",
            Regime::Chop => "chop",
            Regime::Bear => "bear",
            Regime::Unknown => "unknown",
        }
    }
}

/// trend = close above the slow SMA and the SMA rising; bear = close below it
/// and it falling; chop = anything else.
pub fn classify(snapshot: &Snapshot) -> Regime {
    match (snapshot.sma_regime, snapshot.regime_slope) {
        (Some(sma), Some(slope)) => {
            if snapshot.close > sma && slope > Decimal::ZERO {
                Regime::Trend
            } else if snapshot.close < sma && slope < Decimal::ZERO {
                Regime::Bear
            } else {
                Regime::Chop
            }
        }
        _ => Regime::Unknown,
    }
}

/// The signals' names: in configs, decisions and trails.
pub const BREAKOUT: &str = "breakout";
pub const MOMENTUM: &str = "momentum";
pub const MEAN_REVERSION: &str = "mean_reversion";

/// A signal that did not fire. Names and notes are static text, stored without
/// a heap allocation (this runs for every signal on every candle).
fn quiet(name: &'static str, note: &'static str) -> SignalOutput {
    SignalOutput {
        name: Text::const_new(name),
        fired: false,
        strength: Decimal::ZERO,
        confidence: Decimal::ZERO,
        entry: None,
        stop: None,
        take_profit: None,
        note: Text::const_new(note),
    }
}

/// Where a fired signal enters, and how its stop and target are placed.
struct Levels {
    entry: Decimal,
    atr: Decimal,
    stop_atr: Decimal,
    reward_risk: Decimal,
}

fn fired(
    name: &'static str,
    strength: Decimal,
    confidence: Decimal,
    levels: Levels,
    note: &'static str,
) -> SignalOutput {
    let stop = levels.entry - levels.stop_atr * levels.atr;
    let take_profit = levels.entry + levels.reward_risk * (levels.entry - stop);
    SignalOutput {
        name: Text::const_new(name),
        fired: true,
        strength: strength.round_dp(4),
        confidence: confidence.round_dp(4).min(Decimal::ONE),
        entry: Some(levels.entry),
        stop: Some(stop),
        take_profit: Some(take_profit),
        note: Text::const_new(note),
    }
}

pub fn breakout(s: &Snapshot, config: &Config, skip_volume_filter: bool) -> SignalOutput {
    let c = &config.strategy.breakout;
    let (Some(high), Some(atr), Some(avg_volume)) = (s.donchian_high, s.atr, s.avg_volume) else {
        return quiet(BREAKOUT, "warming up");
    };
    if s.close <= high {
        return quiet(BREAKOUT, "close not above the channel high");
    }
    let threshold = c.volume_factor * avg_volume;
    if !skip_volume_filter && s.volume <= threshold {
        return quiet(BREAKOUT, "volume filter: volume not above factor x average");
    }
    if atr.is_zero() {
        return quiet(BREAKOUT, "zero ATR");
    }
    let confidence = if threshold.is_zero() {
        Decimal::ONE
    } else {
        s.volume / threshold
    };
    let note = if skip_volume_filter {
        "volume filter skipped"
    } else {
        "close above channel high on volume"
    };
    fired(
        BREAKOUT,
        (s.close - high) / atr,
        confidence,
        Levels {
            entry: s.close,
            atr,
            stop_atr: c.stop_atr_multiple,
            reward_risk: c.reward_risk,
        },
        note,
    )
}

pub fn momentum(s: &Snapshot, config: &Config) -> SignalOutput {
    let c = &config.strategy.momentum;
    let (Some(fast), Some(slow), Some(fast_prev), Some(slow_prev), Some(atr)) = (
        s.ema_fast,
        s.ema_slow,
        s.ema_fast_prev,
        s.ema_slow_prev,
        s.atr,
    ) else {
        return quiet(MOMENTUM, "warming up");
    };
    if !(fast > slow && fast_prev <= slow_prev) || atr.is_zero() {
        return quiet(MOMENTUM, "no fast-over-slow EMA cross");
    }
    fired(
        MOMENTUM,
        (fast - slow) / atr,
        Decimal::new(5, 1),
        Levels {
            entry: s.close,
            atr,
            stop_atr: c.stop_atr_multiple,
            reward_risk: c.reward_risk,
        },
        "fast EMA crossed above slow EMA",
    )
}

pub fn mean_reversion(s: &Snapshot, config: &Config) -> SignalOutput {
    let c = &config.strategy.mean_reversion;
    let (Some(mean), Some(atr)) = (s.sma_mean, s.atr) else {
        return quiet(MEAN_REVERSION, "warming up");
    };
    if atr.is_zero() || s.close >= mean - c.entry_atr_below * atr {
        return quiet(MEAN_REVERSION, "close not stretched below the mean");
    }
    let stretch = (mean - s.close) / atr;
    fired(
        MEAN_REVERSION,
        stretch,
        (stretch / (c.entry_atr_below * Decimal::TWO)).min(Decimal::ONE),
        Levels {
            entry: s.close,
            atr,
            stop_atr: c.stop_atr_multiple,
            reward_risk: c.reward_risk,
        },
        "close stretched below the mean",
    )
}

/// Runs every enabled signal, in the configured order.
pub fn scan(s: &Snapshot, config: &Config, skip_volume_filter: bool) -> Vec<SignalOutput> {
    config
        .strategy
        .signals
        .iter()
        .map(|name| match name.as_str() {
            BREAKOUT => breakout(s, config, skip_volume_filter),
            MOMENTUM => momentum(s, config),
            MEAN_REVERSION => mean_reversion(s, config),
            other => SignalOutput {
                name: other.into(),
                ..quiet("", "unknown signal")
            },
        })
        .collect()
}

/// Why a fired signal cannot be traded as it stands, if it cannot.
pub fn invalid_reason(signal: &SignalOutput) -> Option<&'static str> {
    let (Some(entry), Some(stop), Some(take_profit)) =
        (signal.entry, signal.stop, signal.take_profit)
    else {
        return Some("signal_missing_stop");
    };
    if entry <= Decimal::ZERO || stop <= Decimal::ZERO {
        return Some("signal_nonpositive_price");
    }
    if stop >= entry {
        return Some("signal_stop_wrong_side");
    }
    if take_profit <= entry {
        return Some("signal_nonpositive_reward_risk");
    }
    None
}
