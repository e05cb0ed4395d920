//! The fold: [`Projection::apply`] takes one event (with its seq and market
//! time) and updates every projection, or refuses it with the rule it breaks.
//! No I/O, no clock, no randomness; maps are ordered, so folding the same
//! events always yields the same bytes.
//!
//! This file holds the [`Projection`], the order events must come in, the
//! dispatch of each event kind to the sub-fold that owns it, and the journal
//! side events (checkpoints, repairs, sessions). The sub-folds, one concern
//! each:
//!
//! - `run.rs`: the run row – one run per journal – and its market-time span;
//! - `market.rs`: candles (last close, marking held units) and the decisions
//!   that read them;
//! - `quality.rs`: data-quality counts per symbol;
//! - `orders.rs`: each order's lifecycle and its causal links;
//! - `positions.rs`: fills – positions, cash and fees – and reconciliations;
//! - `trades.rs`: the open trade the fills build and the ledger row that
//!   closes it;
//! - `machine.rs`: the per-symbol engine state machine and fail-closed;
//! - `operator.rs`: operator actions – resets, exits, halts and resumes;
//! - `equity.rs`: the equity curve and its daily returns;
//! - `audit.rs`: audit coverage of each closed trade.
//!
//! **Check, then apply.** Every handler first runs all the checks that can
//! refuse its event – they only read the projection (the longer ones are
//! `check_*` functions taking `&Projection`) – and only then changes it, in
//! steps that cannot fail. So a refused event leaves the projection exactly
//! as it was (`projections/tests/refusals.rs` holds the fold to this). The
//! checks run in a fixed order, and the order is behaviour: when an event
//! breaks several rules, the first check that fails names the rule reported.
//! The apply steps look up again what their checks found; the checks ran on
//! the same projection, so those lookups cannot miss.

mod audit;
mod equity;
mod machine;
mod market;
mod operator;
mod orders;
mod positions;
mod quality;
mod run;
mod trades;

use crate::error::{FoldError, FoldResult, Rule};
use crate::model::*;
use anx_journal::codec::Hash32;
use anx_journal::*;
use serde::{Deserialize, Serialize};

pub(crate) use equity::return_sums_with_day;
pub use machine::transition_allowed;
pub use operator::reset_refusal;

/// Name of the single cash pot in `portfolio` capital mode.
pub const PORTFOLIO_POT: &str = "portfolio";

/// The whole projected state plus the causal links used to check new events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projection {
    pub state: State,
    pub links: Links,
}

/// The refusal of the event at `seq`.
fn fail<T>(seq: Seq, rule: Rule, detail: impl Into<String>) -> FoldResult<T> {
    Err(FoldError {
        seq,
        rule,
        detail: detail.into(),
    })
}

impl Projection {
    pub fn new() -> Projection {
        Projection::default()
    }

    /// The canonical state hash: BLAKE3 over the state's canonical form
    /// ([`crate::state_form`], FORMAT.md §10), written field by field – not
    /// over the Rust layout of [`State`], so a field added for a new figure
    /// changes no hash.
    /// Whether the fold would take `event` as the next one, without taking
    /// it: the check `anx operator` runs before it journals an action, so the
    /// rule it is held to is the fold's own.
    pub fn check_next(&self, market_ms: UnixMs, event: &Event) -> FoldResult {
        if let Event::OperatorReset(e) = event {
            if let Some(why) = operator::reset_refusal(self, &e.symbol) {
                return fail(self.seq() + 1, Rule::Reset, why);
            }
        }
        self.clone().apply(self.seq() + 1, market_ms, event)
    }

    pub fn state_hash(&self) -> Hash32 {
        Hash32::from(blake3::hash(&crate::state_form::encode_v1(&self.state)))
    }

    /// A `Checkpoint` of everything folded so far: its seq and state hash.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            through_seq: self.seq(),
            state_hash: self.state_hash(),
        }
    }

    /// The last seq folded (0 before any).
    pub fn seq(&self) -> Seq {
        self.links.seq
    }

    /// Folds one verified event, or refuses it with the rule it breaks. A
    /// refused event changes nothing: the projection is as it was before the
    /// call. The fold still stops at the first impossible event: a journal is
    /// never folded past one.
    pub fn apply(&mut self, seq: Seq, market_ms: UnixMs, event: &Event) -> FoldResult {
        if seq != self.links.seq + 1 {
            return fail(
                seq,
                Rule::RunLifecycle,
                format!(
                    "events must be folded in order: expected seq {}",
                    self.links.seq + 1
                ),
            );
        }
        run::check_phase(&self.state, seq, event)?;
        self.dispatch(seq, market_ms, event)?;
        run::extend_span(&mut self.state, market_ms, event);
        let kind = event.kind();
        if kind.role() == EventRole::BrokerAnswer && kind != EventKind::AnswerReceipt {
            self.links.last_answer_seq = Some(seq);
        }
        count_kind(&mut self.links.events_by_kind, kind);
        #[cfg(test)]
        {
            self.state.simulated_future_figure += 1;
        }
        self.links.seq = seq;
        Ok(())
    }

    /// Hands the event to the sub-fold that owns its kind. Each handler checks
    /// before it changes anything, so an error here has changed nothing.
    fn dispatch(&mut self, seq: Seq, market_ms: UnixMs, event: &Event) -> FoldResult {
        match event {
            Event::RunStarted(e) => run::started(&mut self.state, market_ms, e),
            Event::RunCompleted(e) => run::completed(&mut self.state, seq, market_ms, e)?,
            Event::Candle(e) => market::candle(self, seq, market_ms, e)?,
            Event::Decision(e) => market::decision(self, seq, e)?,
            Event::DataQuality(e) => quality::finding(self, seq, e)?,
            Event::OrderPlaced(e) => orders::placed(self, seq, e)?,
            Event::OrderAcknowledged(e) => orders::acknowledged(self, seq, e)?,
            Event::OrderRejected(e) => {
                orders::ended(self, seq, &e.client_order_id, OrderStatus::Rejected)?
            }
            Event::OrderCancelled(e) => {
                orders::ended(self, seq, &e.client_order_id, OrderStatus::Cancelled)?
            }
            Event::BracketVerified(e) => orders::bracket_verified(self, seq, e)?,
            Event::CancelRequested(e) => orders::cancel_requested(self, seq, e)?,
            Event::BracketUnconfirmed(e) => orders::bracket_unconfirmed(self, seq, e)?,
            Event::AnswerReceipt(e) => orders::answer_receipt(self, seq, e)?,
            Event::Fill(e) => positions::fill(self, seq, market_ms, e)?,
            Event::Reconciliation(e) => positions::reconciliation(self, seq, e)?,
            Event::TradeClosed(e) => trades::closed(self, seq, market_ms, e)?,
            Event::EngineTransition(e) => machine::transition(self, seq, e)?,
            Event::FailClosed(e) => machine::fail_closed(self, seq, e)?,
            Event::OperatorReset(e) => operator::reset(self, seq, market_ms, e)?,
            Event::OperatorAction(e) => operator::action(self, seq, market_ms, e)?,
            Event::Checkpoint(e) => self.verify_checkpoint(seq, e)?,
            Event::Recovered(e) => self.links.recoveries.push(RecoveryNote {
                seq,
                segment: e.segment.clone(),
                offset: e.offset,
                bytes_dropped: e.bytes_dropped,
            }),
            Event::Finding(e) => {
                let note = FindingNote {
                    seq,
                    market_ms,
                    check: e.check.clone(),
                    symbol: e.symbol.clone(),
                    raised: e.raised,
                    value: e.value,
                    limit: e.limit,
                    detail: e.detail.clone(),
                };
                let key = FindingNote::key(&e.check, &e.symbol);
                self.links.findings.insert(key, note);
            }
            Event::Session(e) => self.links.sessions.push(SessionNote {
                seq,
                market_ms,
                action: e.action,
                reason: e.reason.clone(),
            }),
        }
        Ok(())
    }

    /// A journaled checkpoint must be placed right after the seq it covers and
    /// carry the state hash the fold computes there.
    fn verify_checkpoint(&mut self, seq: Seq, e: &Checkpoint) -> FoldResult {
        if e.through_seq != self.links.seq {
            return fail(
                seq,
                Rule::Checkpoint,
                format!(
                    "checkpoint through seq {} placed after seq {}",
                    e.through_seq, self.links.seq
                ),
            );
        }
        let ours = self.state_hash();
        if ours != e.state_hash {
            return fail(
                seq,
                Rule::Checkpoint,
                format!(
                    "journal says state hash {} through seq {}, the fold computes {ours}",
                    e.state_hash, e.through_seq
                ),
            );
        }
        self.links.checkpoints_verified += 1;
        Ok(())
    }

    /// The state of `symbol`, which must be one of the run's.
    fn symbol(&self, seq: Seq, symbol: &str) -> FoldResult<&SymbolState> {
        match self.state.symbols.get(symbol) {
            Some(state) => Ok(state),
            None => fail(
                seq,
                Rule::UnknownSymbol,
                format!("symbol {symbol} is not in the run"),
            ),
        }
    }

    /// The live order `client_order_id`.
    fn order(&self, seq: Seq, client_order_id: &str) -> FoldResult<&OrderState> {
        match self.state.orders.get(client_order_id) {
            Some(order) => Ok(order),
            None => fail(
                seq,
                Rule::UnknownOrder,
                format!("no live order {client_order_id}"),
            ),
        }
    }
}

/// Counts one event of `kind` (the vector grows to the largest code once).
fn count_kind(counts: &mut Vec<u64>, kind: EventKind) {
    let index = usize::from(kind.code());
    if counts.len() <= index {
        counts.resize(index + 1, 0);
    }
    counts[index] += 1;
}
