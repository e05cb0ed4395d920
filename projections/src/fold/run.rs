//! The run: one per journal. `RunStarted` opens it – the run row, a cash pot
//! per symbol or one shared pot, each symbol's state and quality counts, the
//! equity curve's start – and `RunCompleted` closes it. Also the run's
//! market-time span, which only the run's own events extend.

use super::{fail, PORTFOLIO_POT};
use crate::error::{FoldResult, Rule};
use crate::model::*;
use anx_journal::*;
use rust_decimal::Decimal;

/// One run per journal: `RunStarted` first, nothing of the run after
/// `RunCompleted`; journal side events (repairs, checkpoints, trader
/// sessions: [`EventRole::JournalSide`]) may come anywhere.
pub(super) fn check_phase(state: &State, seq: Seq, event: &Event) -> FoldResult {
    if !event.kind().role().in_run() {
        return Ok(());
    }
    match (&state.run, event) {
        (None, Event::RunStarted(_)) => Ok(()),
        (None, other) => fail(
            seq,
            Rule::RunLifecycle,
            format!("{} before RunStarted", other.kind()),
        ),
        (Some(run), Event::RunStarted(_)) => fail(
            seq,
            Rule::RunLifecycle,
            format!(
                "a journal holds one run; run {} already started",
                run.run_id
            ),
        ),
        (Some(run), other) if run.completed_ms.is_some() => fail(
            seq,
            Rule::RunLifecycle,
            format!("{} after run {} completed", other.kind(), run.run_id),
        ),
        _ => Ok(()),
    }
}

/// Journal side events (repairs, checkpoints, trader sessions) are not the
/// run's: its market-time span is its own events'.
pub(super) fn extend_span(state: &mut State, market_ms: UnixMs, event: &Event) {
    if event.kind().role().in_run() {
        state.first_market_ms.get_or_insert(market_ms);
        state.last_market_ms = Some(state.last_market_ms.map_or(market_ms, |m| m.max(market_ms)));
    }
}

/// Opens the run. Nothing to check: [`check_phase`] has made sure it is the
/// journal's first and only one.
pub(super) fn started(state: &mut State, market_ms: UnixMs, e: &RunStarted) {
    let pots: Vec<String> = match e.capital_mode {
        CapitalMode::Independent => e.symbols.clone(),
        CapitalMode::Portfolio => vec![PORTFOLIO_POT.to_string()],
    };
    for pot in &pots {
        state
            .cash
            .insert(pot.clone(), DecimalCell(e.starting_capital));
    }
    for symbol in &e.symbols {
        state.symbols.insert(symbol.clone(), SymbolState::default());
        state
            .quality
            .insert(symbol.clone(), QualityCounts::default());
    }
    let start = e.starting_capital * Decimal::from(pots.len() as u64);
    state.equity = EquityCurve {
        start,
        cash: start,
        last: start,
        peak: start,
        ..EquityCurve::default()
    };
    state.run = Some(run_row(market_ms, e));
}

/// The run row as `RunStarted` describes it, with nothing counted yet.
fn run_row(market_ms: UnixMs, e: &RunStarted) -> RunRow {
    RunRow {
        run_id: e.run_id.clone(),
        run_mode: e.run_mode,
        capital_mode: e.capital_mode,
        market_time_basis: e.market_time_basis,
        data_integrity: e.data_integrity,
        created_by: e.created_by.clone(),
        git_sha: e.git_sha.clone(),
        config_hash: e.config_hash.to_hex(),
        symbols: e.symbols.clone(),
        granularity_s: e.granularity_s,
        start_ms: e.start_ms,
        end_ms: e.end_ms,
        starting_capital: e.starting_capital,
        started_ms: market_ms,
        completed_ms: None,
        completion: None,
        candles: 0,
        trades_opened: 0,
        trades_closed: 0,
    }
}

/// Closes the run, which must be the journal's.
pub(super) fn completed(
    state: &mut State,
    seq: Seq,
    market_ms: UnixMs,
    e: &RunCompleted,
) -> FoldResult {
    if let Some(run) = &state.run {
        if run.run_id != e.run_id {
            return fail(
                seq,
                Rule::RunLifecycle,
                format!(
                    "RunCompleted for run {}, but the journal's run is {}",
                    e.run_id, run.run_id
                ),
            );
        }
    }
    if let Some(run) = &mut state.run {
        run.completed_ms = Some(market_ms);
        run.completion = Some(e.reason.clone());
    }
    Ok(())
}
