//! Market data and what the engine read of it. A candle must be well formed,
//! of the run's granularity and after its symbol's previous one; it moves the
//! symbol's last close, marks held units to it, and is counted. A decision
//! must read its symbol's newest candle; orders link to the newest decision.

use super::{equity, fail, quality, Projection};
use crate::engine::risk::ReasonCode;
use crate::error::{FoldResult, Rule};
use crate::model::{EntryContext, NoOrderReason};
use anx_journal::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// A closed candle: checked ([`check_candle`]), then folded.
pub(super) fn candle(p: &mut Projection, seq: Seq, market_ms: UnixMs, e: &Candle) -> FoldResult {
    check_candle(p, seq, e)?;
    let state = &mut p.state;
    if let Some(symbol) = state.symbols.get_mut(&e.symbol) {
        symbol.last_candle_open_ms = Some(e.open_ms);
        // Held units move with the close; before a symbol's first close they
        // are marked at their fill price (see `positions.rs`).
        let moved = match symbol.last_close {
            Some(previous) if !symbol.position.quantity.is_zero() => {
                symbol.position.quantity * (e.close - previous)
            }
            _ => Decimal::ZERO,
        };
        symbol.last_close = Some(e.close);
        state.equity.marked += moved;
    }
    quality::count_candle(&mut state.quality, &e.symbol);
    if let Some(run) = &mut state.run {
        run.candles += 1;
    }
    set_by_symbol(&mut p.links.last_candle, &e.symbol, seq);
    equity::sample(&mut p.state.equity, market_ms);
    Ok(())
}

/// A candle's prices are positive and consistent, its granularity the run's,
/// its symbol the run's, and it opens after the symbol's previous candle.
fn check_candle(p: &Projection, seq: Seq, e: &Candle) -> FoldResult {
    let prices = [e.open, e.high, e.low, e.close];
    if prices.iter().any(|p| *p <= Decimal::ZERO) || e.volume < Decimal::ZERO {
        return fail(
            seq,
            Rule::Domain,
            "candle with a non-positive price or negative volume",
        );
    }
    if e.low > e.open.min(e.close) || e.high < e.open.max(e.close) {
        return fail(
            seq,
            Rule::Domain,
            "candle with low/high inconsistent with open/close",
        );
    }
    let run_granularity_s = p
        .state
        .run
        .as_ref()
        .map_or(e.granularity_s, |r| r.granularity_s);
    if e.granularity_s != run_granularity_s {
        return fail(
            seq,
            Rule::Domain,
            format!("{}s candle in a {run_granularity_s}s run", e.granularity_s),
        );
    }
    let symbol = p.symbol(seq, &e.symbol)?;
    match symbol.last_candle_open_ms {
        Some(last) if e.open_ms <= last => fail(
            seq,
            Rule::CandleOrder,
            format!(
                "{} candle at {} is not after the previous one at {last}",
                e.symbol, e.open_ms
            ),
        ),
        _ => Ok(()),
    }
}

/// A decision must read the newest candle of its symbol; the newest decision
/// per symbol is what the next order links to.
pub(super) fn decision(p: &mut Projection, seq: Seq, e: &Decision) -> FoldResult {
    p.symbol(seq, &e.symbol)?;
    let newest = p.links.last_candle.get(&e.symbol).copied();
    if newest != Some(e.candle_seq) {
        return fail(
            seq,
            Rule::DecisionLink,
            format!(
                "decision on {} reads candle seq {}, but the newest {} candle is {}",
                e.symbol,
                e.candle_seq,
                e.symbol,
                newest.map_or("none".to_string(), |s| format!("seq {s}"))
            ),
        );
    }
    if let Some(reason) = no_order_reason(p, e) {
        count_no_order(&mut p.links.no_order, &e.symbol, reason.name());
    }
    count_by_symbol(&mut p.links.decisions, &e.symbol, 1);
    let entered = matches!(e.outcome, DecisionOutcome::Enter);
    match &e.outcome {
        DecisionOutcome::Enter => set_by_symbol(&mut p.links.rejected_since_entry, &e.symbol, 0),
        DecisionOutcome::Rejected { reason_code } if !told_not_to_trade(reason_code) => {
            count_by_symbol(&mut p.links.rejected_since_entry, &e.symbol, 1)
        }
        _ => {}
    }
    if entered {
        // The decision reads its symbol's newest candle (checked above).
        let candle_ms = p
            .state
            .symbols
            .get(e.symbol.as_str())
            .and_then(|s| s.last_candle_open_ms)
            .unwrap_or(e.as_of_ms);
        p.links
            .entry_context
            .insert(e.symbol.to_string(), entry_context(e, candle_ms));
    }
    set_by_symbol(
        &mut p.links.last_decision,
        &e.symbol,
        (seq, e.candle_seq, entered),
    );
    Ok(())
}

/// What an `enter` decision saw: its fired signals and its regime (its glass
/// box is inline: schema 2 keeps an entry's whole glass box), and the open
/// time of the candle it read (`candle_ms`).
fn entry_context(e: &Decision, candle_ms: UnixMs) -> EntryContext {
    let signals: Vec<String> = e.glass.fired().iter().map(|s| s.to_string()).collect();
    EntryContext {
        signals: signals.join("+"),
        regime: e
            .glass
            .full()
            .map_or(String::new(), |g| g.regime.to_string()),
        decided_ms: candle_ms,
    }
}

/// Why decision `e` led to no order, if it led to none: a rejection's code,
/// or for a hold what its symbol was doing as it was decided.
fn no_order_reason<'e>(p: &Projection, e: &'e Decision) -> Option<NoOrderReason<'e>> {
    let reason = match &e.outcome {
        DecisionOutcome::Enter | DecisionOutcome::Exit { .. } => return None,
        DecisionOutcome::Rejected { reason_code } => NoOrderReason::Rejected(reason_code),
        DecisionOutcome::Hold => {
            let state = p.state.symbols.get(&e.symbol)?;
            if state.engine.0 == EngineState::FailClosed || state.fail_closed.is_some() {
                NoOrderReason::FailClosed
            } else if !state.position.quantity.is_zero() {
                NoOrderReason::PositionOpen
            } else if state.engine.0 != EngineState::Idle || state.in_flight.is_some() {
                NoOrderReason::OrderPending
            } else {
                NoOrderReason::NoSignal
            }
        }
    };
    Some(reason)
}

/// Counts one decision without an order (allocating keys only the first
/// time: this runs for nearly every candle).
fn count_no_order(
    counts: &mut BTreeMap<String, BTreeMap<String, u64>>,
    symbol: &str,
    reason: &str,
) {
    if !counts.contains_key(symbol) {
        counts.insert(symbol.to_string(), BTreeMap::new());
    }
    let Some(by_reason) = counts.get_mut(symbol) else {
        return;
    };
    match by_reason.get_mut(reason) {
        Some(count) => *count += 1,
        None => {
            by_reason.insert(reason.to_string(), 1);
        }
    }
}

/// Rejections by a state the trader was put in on purpose or is told of
/// elsewhere – a breaker, a halt, a regime that allows no entry – do not
/// count towards `Links::rejected_since_entry`: no entry then is the design
/// working, not a possible bug.
const TOLD_NOT_TO_TRADE: [ReasonCode; 6] = [
    ReasonCode::StaleData,
    ReasonCode::SymbolFailClosed,
    ReasonCode::MaxDrawdownBreaker,
    ReasonCode::DailyLossLimit,
    ReasonCode::OperatorHalt,
    ReasonCode::RegimeBlocked,
];

fn told_not_to_trade(reason_code: &str) -> bool {
    TOLD_NOT_TO_TRADE.iter().any(|r| r.code() == reason_code)
}

/// Adds `by` to `map[symbol]`, allocating a key only the first time.
fn count_by_symbol(map: &mut BTreeMap<String, u64>, symbol: &str, by: u64) {
    match map.get_mut(symbol) {
        Some(count) => *count += by,
        None => {
            map.insert(symbol.to_string(), by);
        }
    }
}

/// Sets `map[symbol]`, allocating a key only the first time (this runs for
/// every candle and decision).
fn set_by_symbol<V>(map: &mut BTreeMap<String, V>, symbol: &str, value: V) {
    match map.get_mut(symbol) {
        Some(slot) => *slot = value,
        None => {
            map.insert(symbol.to_string(), value);
        }
    }
}
