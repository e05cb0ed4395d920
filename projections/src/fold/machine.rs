//! The per-symbol engine state machine: IDLE → ENTRY_PENDING → POSITION_OPEN
//! → RECONCILE → IDLE, ENTRY_PENDING → IDLE, → FAIL_CLOSED, and FAIL_CLOSED →
//! IDLE after an operator reset. A transition must start from the symbol's
//! state, be one of the machine's, and have the facts it needs ([`guard`]).
//! `FailClosed` sets why a symbol is fail-closed (an `OperatorReset`, in
//! `operator.rs`, clears it).

use super::{fail, Projection};
use crate::error::{FoldResult, Rule};
use crate::model::*;
use anx_journal::*;

/// The engine state machine's allowed transitions.
pub fn transition_allowed(from: EngineState, to: EngineState) -> bool {
    use EngineState::*;
    matches!(
        (from, to),
        (Idle, EntryPending)
            | (EntryPending, PositionOpen)
            | (EntryPending, Idle)
            | (EntryPending, FailClosed)
            | (PositionOpen, Reconcile)
            | (PositionOpen, FailClosed)
            | (Reconcile, Idle)
            | (Reconcile, FailClosed)
            | (FailClosed, Idle)
    )
}

/// A transition of a symbol's engine state, from its current state, allowed
/// by the machine, with the facts its [`guard`] needs.
pub(super) fn transition(p: &mut Projection, seq: Seq, e: &EngineTransition) -> FoldResult {
    let symbol_name = &e.symbol;
    let symbol = p.symbol(seq, symbol_name)?;
    let current = symbol.engine.0;
    if e.from != current {
        return fail(
            seq,
            Rule::Transition,
            format!(
                "{symbol_name} transition from {:?}, but the state is {current:?}",
                e.from
            ),
        );
    }
    if !transition_allowed(e.from, e.to) {
        return fail(
            seq,
            Rule::Transition,
            format!(
                "{symbol_name} {:?} -> {:?} is not a transition of the engine state machine",
                e.from, e.to
            ),
        );
    }
    if let Err(why) = guard(symbol, e.from, e.to) {
        return fail(
            seq,
            Rule::Transition,
            format!("{symbol_name} {:?} -> {:?} refused: {why}", e.from, e.to),
        );
    }
    if let Some(symbol) = p.state.symbols.get_mut(symbol_name) {
        symbol.engine = EngineStateCell(e.to);
    }
    Ok(())
}

/// The facts an allowed transition needs, or why they are missing.
fn guard(symbol: &SymbolState, from: EngineState, to: EngineState) -> Result<(), &'static str> {
    use EngineState::*;
    let flat = symbol.position.quantity.is_zero();
    let refuse_if = |refused: bool, why| if refused { Err(why) } else { Ok(()) };
    match (from, to) {
        (Idle, EntryPending) => refuse_if(symbol.in_flight.is_none(), "no entry order in flight"),
        (EntryPending, PositionOpen) => refuse_if(flat, "the entry has not filled"),
        // A partly filled entry whose units the bracket already sold is flat
        // with nothing in flight, but its trade still has to be finalized.
        (EntryPending, Idle) => refuse_if(
            symbol.in_flight.is_some() || !flat || symbol.open_trade.is_some(),
            "the entry is still in flight or filled",
        ),
        (Reconcile, Idle) => refuse_if(
            symbol.open_trade.is_some() || !flat,
            "the trade has not been finalized",
        ),
        (_, FailClosed) => refuse_if(
            symbol.fail_closed.is_none(),
            "no FailClosed event for this symbol",
        ),
        (FailClosed, Idle) => {
            refuse_if(
                symbol.fail_closed.is_some(),
                "no operator reset since it failed closed",
            )?;
            refuse_if(
                symbol.open_trade.is_some() || !flat || symbol.in_flight.is_some(),
                "a position or entry is still open",
            )
        }
        _ => Ok(()),
    }
}

/// Records why the symbol failed closed; entries stay blocked until an
/// operator resets it.
pub(super) fn fail_closed(p: &mut Projection, seq: Seq, e: &FailClosed) -> FoldResult {
    p.symbol(seq, &e.symbol)?;
    if let Some(symbol) = p.state.symbols.get_mut(&e.symbol) {
        symbol.fail_closed = Some(e.reason.clone());
    }
    Ok(())
}
