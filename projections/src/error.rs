//! The fold's one error: an event that is impossible in the current state, named
//! by its seq and the rule it breaks. Never skipped, never repaired.

use anx_journal::Seq;
use std::fmt;

/// Which invariant an event broke. Stable names, so tests and operators can
/// match on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Trading events before the run's `RunStarted`, or a second run.
    RunLifecycle,
    /// A symbol the run did not declare.
    UnknownSymbol,
    /// Candles for a symbol must move forward in time.
    CandleOrder,
    /// A decision must read the newest candle of its symbol.
    DecisionLink,
    /// An order must come from the newest decision of its symbol.
    OrderLink,
    /// A second entry while one is in flight or a position is open.
    SecondPosition,
    /// Entries are blocked while a symbol is fail-closed.
    FailClosedBlocks,
    /// An event about an order the journal never placed.
    UnknownOrder,
    /// An order event that does not fit the order's lifecycle.
    OrderLifecycle,
    /// A fill that does not fit the order or the position.
    FillMismatch,
    /// Cash would go negative.
    Cash,
    /// A transition the engine state machine does not allow.
    Transition,
    /// A closed-trade record that disagrees with the fills.
    TradeMismatch,
    /// An operator reset of a symbol that is not fail-closed.
    Reset,
    /// An operator action the state does not allow (an exit with no
    /// position, a halt while halted, a resume while not halted).
    Operator,
    /// A checkpoint whose state hash differs from the fold's.
    Checkpoint,
    /// A value out of its domain (non-positive price, negative fee …).
    Domain,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::RunLifecycle => "run_lifecycle",
            Rule::UnknownSymbol => "unknown_symbol",
            Rule::CandleOrder => "candle_order",
            Rule::DecisionLink => "decision_link",
            Rule::OrderLink => "order_link",
            Rule::SecondPosition => "second_position",
            Rule::FailClosedBlocks => "fail_closed_blocks_entry",
            Rule::UnknownOrder => "unknown_order",
            Rule::OrderLifecycle => "order_lifecycle",
            Rule::FillMismatch => "fill_mismatch",
            Rule::Cash => "cash_negative",
            Rule::Transition => "transition_not_allowed",
            Rule::TradeMismatch => "trade_mismatch",
            Rule::Reset => "reset_not_fail_closed",
            Rule::Operator => "operator_action_not_allowed",
            Rule::Checkpoint => "checkpoint_mismatch",
            Rule::Domain => "value_out_of_domain",
        }
    }
}

/// An impossible event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct FoldError {
    pub seq: Seq,
    pub rule: Rule,
    pub detail: String,
}

impl fmt::Display for FoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seq {}: rule {} broken: {}",
            self.seq,
            self.rule.name(),
            self.detail
        )
    }
}

pub type FoldResult<T = ()> = Result<T, FoldError>;

/// What the engine found missing. Each is impossible when the caller keeps the
/// engine's contract (every journaled event folded, then observed, before
/// `run_tick`); meeting one means that contract was broken, so it is a loud
/// error naming the seq instead of a silently missing Decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineFault {
    /// The input's symbol is not one of the run's.
    UnknownSymbol,
    /// The engine never observed a candle of this symbol.
    NoMemory,
    /// The symbol's indicators were never fed.
    NoSnapshot,
    /// A fill or order event names an order the projection does not hold.
    UnknownOrder,
    /// An exit fill flattened a position with no open trade.
    NoOpenTrade,
    /// A position is open on a symbol with no candle to decide on.
    NoCandle,
}

impl EngineFault {
    pub fn name(self) -> &'static str {
        match self {
            EngineFault::UnknownSymbol => "unknown_symbol",
            EngineFault::NoMemory => "no_engine_memory",
            EngineFault::NoSnapshot => "no_indicator_snapshot",
            EngineFault::UnknownOrder => "unknown_order",
            EngineFault::NoOpenTrade => "no_open_trade",
            EngineFault::NoCandle => "no_candle",
        }
    }
}

/// The engine could not react to the input journaled at `seq`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("seq {seq}: the engine cannot react ({}): {detail}", fault.name())]
pub struct EngineError {
    pub seq: Seq,
    pub fault: EngineFault,
    pub detail: String,
}

impl EngineError {
    pub fn new(seq: Seq, fault: EngineFault, detail: impl Into<String>) -> EngineError {
        EngineError {
            seq,
            fault,
            detail: detail.into(),
        }
    }
}

pub type EngineResult<T = ()> = Result<T, EngineError>;
