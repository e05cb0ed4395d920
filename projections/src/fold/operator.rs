//! Operator actions: a reset of a fail-closed symbol, a manual exit, a halt
//! of new entries and its resume. The fold holds each to what the state
//! allows (the same check `anx operator` runs, through
//! [`Projection::check_next`], before it journals anything) and keeps the
//! newest of them for `anx status`.

use super::{fail, Projection};
use crate::error::{FoldResult, Rule};
use crate::model::{OperatorNote, OPERATOR_LOG_MAX};
use anx_journal::{OperatorAction, OperatorCommand, OperatorReset, Seq, UnixMs};

/// A reset clears a fail-closed symbol (and only one). The engine moves it to
/// IDLE when nothing is open; `anx operator` refuses a reset with a position
/// open (`reset_refusal`), since the position must be closed first.
pub(super) fn reset(
    p: &mut Projection,
    seq: Seq,
    market_ms: UnixMs,
    e: &OperatorReset,
) -> FoldResult {
    let symbol = p.symbol(seq, &e.symbol)?;
    if symbol.fail_closed.is_none() {
        return fail(
            seq,
            Rule::Reset,
            format!("operator reset of {}, which is not fail-closed", e.symbol),
        );
    }
    if let Some(symbol) = p.state.symbols.get_mut(&e.symbol) {
        symbol.fail_closed = None;
    }
    log(
        p,
        note(seq, market_ms, "reset", &e.symbol, &e.operator, &e.reason),
    );
    Ok(())
}

/// An exit, a halt or a resume.
pub(super) fn action(
    p: &mut Projection,
    seq: Seq,
    market_ms: UnixMs,
    e: &OperatorAction,
) -> FoldResult {
    match e.command {
        OperatorCommand::Exit => check_exit(p, seq, e)?,
        OperatorCommand::Halt | OperatorCommand::Resume => check_halt(p, seq, e)?,
    }
    let command = e.command.name();
    match e.command {
        OperatorCommand::Exit => {}
        OperatorCommand::Halt => {
            p.state.halted = Some(note(seq, market_ms, command, "", &e.operator, &e.reason));
        }
        OperatorCommand::Resume => p.state.halted = None,
    }
    log(
        p,
        note(seq, market_ms, command, &e.symbol, &e.operator, &e.reason),
    );
    Ok(())
}

/// An exit needs a position, and no exit of it already working.
fn check_exit(p: &Projection, seq: Seq, e: &OperatorAction) -> FoldResult {
    let symbol = p.symbol(seq, &e.symbol)?;
    if symbol.position.quantity.is_zero() {
        return fail(
            seq,
            Rule::Operator,
            format!("operator exit of {}, which holds no position", e.symbol),
        );
    }
    let working = symbol.open_trade.as_ref().and_then(|t| {
        t.exit_orders
            .iter()
            .find(|id| p.state.orders.get(*id).is_some_and(|o| o.is_open()))
    });
    if let Some(id) = working {
        return fail(
            seq,
            Rule::Operator,
            format!(
                "operator exit of {}: its exit {id} is already working",
                e.symbol
            ),
        );
    }
    Ok(())
}

/// A halt or a resume is run-wide (no symbol) and changes the halt.
fn check_halt(p: &Projection, seq: Seq, e: &OperatorAction) -> FoldResult {
    if !e.symbol.is_empty() {
        return fail(
            seq,
            Rule::Domain,
            format!(
                "operator {} names symbol {}: it is run-wide",
                e.command.name(),
                e.symbol
            ),
        );
    }
    match (e.command, &p.state.halted) {
        (OperatorCommand::Halt, Some(halt)) => fail(
            seq,
            Rule::Operator,
            format!(
                "operator halt while already halted (seq {}: {})",
                halt.seq, halt.reason
            ),
        ),
        (OperatorCommand::Resume, None) => {
            fail(seq, Rule::Operator, "operator resume while not halted")
        }
        _ => Ok(()),
    }
}

fn note(
    seq: Seq,
    market_ms: UnixMs,
    command: &str,
    symbol: &str,
    operator: &str,
    reason: &str,
) -> OperatorNote {
    OperatorNote {
        seq,
        market_ms,
        command: command.into(),
        symbol: symbol.into(),
        operator: operator.into(),
        reason: reason.into(),
    }
}

/// Remembers the action, keeping the newest `OPERATOR_LOG_MAX`.
fn log(p: &mut Projection, note: OperatorNote) {
    let log = &mut p.state.operator_log;
    if log.len() == OPERATOR_LOG_MAX {
        log.remove(0);
    }
    log.push(note);
}

/// Why a reset the fold would take cannot bring `symbol` back to IDLE: a
/// position, an open trade or an entry still in flight (the transition's own
/// guard). `anx operator` refuses such a reset (close or wait first), and the
/// engine moves a reset symbol to IDLE only when there is none.
pub fn reset_refusal(p: &Projection, symbol: &str) -> Option<String> {
    let state = p.state.symbols.get(symbol)?;
    if !state.position.quantity.is_zero() || state.open_trade.is_some() {
        return Some(format!(
            "operator reset of {symbol} with a position of {} open: exit it first",
            state.position.quantity
        ));
    }
    state.in_flight.as_ref().map(|id| {
        format!(
            "operator reset of {symbol} while its entry {id} is still working: wait for it to end"
        )
    })
}
