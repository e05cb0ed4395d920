//! The fold: [`Projection::apply`] takes one event (with its seq and market
//! time) and updates every projection, or refuses it with the rule it breaks.
//! No I/O, no clock, no randomness; maps are ordered, so folding the same
//! events always yields the same bytes.

use crate::error::{FoldError, FoldResult, Rule};
use crate::model::*;
use anx_journal::codec::Hash32;
use anx_journal::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Name of the single cash pot in `portfolio` capital mode.
pub const PORTFOLIO_POT: &str = "portfolio";

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

/// The whole projected state plus the causal links used to check new events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projection {
    pub state: State,
    pub links: Links,
}

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

    /// Folds one verified event. After an error the projection may hold part
    /// of the refused event and must be discarded: the fold stops at the first
    /// impossible event, it never continues past one.
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
        self.check_run_phase(seq, event)?;
        match event {
            Event::RunStarted(e) => self.run_started(market_ms, e),
            Event::Candle(e) => self.candle(seq, market_ms, e)?,
            Event::DataQuality(e) => self.data_quality(seq, e)?,
            Event::Decision(e) => self.decision(seq, e)?,
            Event::OrderPlaced(e) => self.order_placed(seq, e)?,
            Event::OrderAcknowledged(e) => self.order_acknowledged(seq, e)?,
            Event::OrderRejected(e) => {
                self.order_ended(seq, &e.client_order_id, OrderStatus::Rejected)?
            }
            Event::OrderCancelled(e) => {
                self.order_ended(seq, &e.client_order_id, OrderStatus::Cancelled)?
            }
            Event::BracketVerified(e) => self.bracket_verified(seq, e)?,
            Event::Fill(e) => self.fill(seq, market_ms, e)?,
            Event::Reconciliation(e) => self.reconciliation(seq, e)?,
            Event::EngineTransition(e) => self.transition(seq, e)?,
            Event::TradeClosed(e) => self.trade_closed(seq, market_ms, e)?,
            Event::FailClosed(e) => self.fail_closed(seq, e)?,
            Event::OperatorReset(e) => self.operator_reset(seq, e)?,
            Event::Checkpoint(e) => self.verify_checkpoint(seq, e)?,
            Event::Recovered(e) => self.links.recoveries.push(RecoveryNote {
                seq,
                segment: e.segment.clone(),
                offset: e.offset,
                bytes_dropped: e.bytes_dropped,
            }),
            Event::RunCompleted(e) => self.run_completed(seq, market_ms, e)?,
            Event::Session(e) => self.links.sessions.push(SessionNote {
                seq,
                market_ms,
                action: e.action,
                reason: e.reason.clone(),
            }),
        }
        // Journal side events (repairs, checkpoints, trader sessions) are
        // not the run's: its market-time span is its own events'.
        if event.kind().role().in_run() {
            let state = &mut self.state;
            state.first_market_ms.get_or_insert(market_ms);
            state.last_market_ms =
                Some(state.last_market_ms.map_or(market_ms, |m| m.max(market_ms)));
        }
        self.links.seq = seq;
        Ok(())
    }

    /// One run per journal: `RunStarted` first, nothing of the run after
    /// `RunCompleted`; journal side events (repairs, checkpoints, trader
    /// sessions: [`EventRole::JournalSide`]) may come anywhere.
    fn check_run_phase(&self, seq: Seq, event: &Event) -> FoldResult {
        if !event.kind().role().in_run() {
            return Ok(());
        }
        match (&self.state.run, event) {
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

    fn run_started(&mut self, market_ms: UnixMs, e: &RunStarted) {
        let state = &mut self.state;
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
        state.run = Some(RunRow {
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
        });
    }

    fn run_completed(&mut self, seq: Seq, market_ms: UnixMs, e: &RunCompleted) -> FoldResult {
        if let Some(run) = &mut self.state.run {
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
            run.completed_ms = Some(market_ms);
            run.completion = Some(e.reason.clone());
        }
        Ok(())
    }

    fn symbol_mut(&mut self, seq: Seq, symbol: &str) -> FoldResult<&mut SymbolState> {
        match self.state.symbols.get_mut(symbol) {
            Some(state) => Ok(state),
            None => fail(
                seq,
                Rule::UnknownSymbol,
                format!("symbol {symbol} is not in the run"),
            ),
        }
    }

    fn candle(&mut self, seq: Seq, market_ms: UnixMs, e: &Candle) -> FoldResult {
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
        let run_granularity_s = self
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
        let symbol = self.symbol_mut(seq, &e.symbol)?;
        if let Some(last) = symbol.last_candle_open_ms {
            if e.open_ms <= last {
                return fail(
                    seq,
                    Rule::CandleOrder,
                    format!(
                        "{} candle at {} is not after the previous one at {last}",
                        e.symbol, e.open_ms
                    ),
                );
            }
        }
        symbol.last_candle_open_ms = Some(e.open_ms);
        let moved = match symbol.last_close {
            Some(previous) if !symbol.position.quantity.is_zero() => {
                symbol.position.quantity * (e.close - previous)
            }
            _ => Decimal::ZERO,
        };
        symbol.last_close = Some(e.close);
        self.state.equity.marked += moved;
        if let Some(counts) = self.state.quality.get_mut(&e.symbol) {
            counts.candles += 1;
        }
        if let Some(run) = &mut self.state.run {
            run.candles += 1;
        }
        set_by_symbol(&mut self.links.last_candle, &e.symbol, seq);
        self.sample_equity(market_ms);
        Ok(())
    }

    fn data_quality(&mut self, seq: Seq, e: &DataQuality) -> FoldResult {
        let Some(counts) = self.state.quality.get_mut(&e.symbol) else {
            return fail(
                seq,
                Rule::UnknownSymbol,
                format!("symbol {} is not in the run", e.symbol),
            );
        };
        match &e.issue {
            QualityIssue::Gap { missing_bars, .. } => {
                counts.gaps += 1;
                counts.missing_bars += missing_bars;
            }
            QualityIssue::Duplicate { .. } => counts.duplicates += 1,
            QualityIssue::OutOfOrder { .. } => counts.out_of_order += 1,
            QualityIssue::VolumeAnomaly { .. } => counts.volume_anomalies += 1,
            QualityIssue::InvalidCandle { .. } => counts.invalid += 1,
            QualityIssue::Stale { newest_ms, .. } => {
                counts.stale += 1;
                self.links
                    .last_stale
                    .insert(e.symbol.clone(), (seq, *newest_ms));
            }
            QualityIssue::FeedFault { .. } => {
                *self.links.feed_faults.entry(e.symbol.clone()).or_default() += 1;
            }
        }
        Ok(())
    }

    fn decision(&mut self, seq: Seq, e: &Decision) -> FoldResult {
        self.symbol_mut(seq, &e.symbol)?;
        let newest = self.links.last_candle.get(&e.symbol).copied();
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
        let entered = matches!(e.outcome, DecisionOutcome::Enter);
        set_by_symbol(
            &mut self.links.last_decision,
            &e.symbol,
            (seq, e.candle_seq, entered),
        );
        Ok(())
    }

    fn order_placed(&mut self, seq: Seq, e: &OrderPlaced) -> FoldResult {
        let symbol_name = e.product_id.clone();
        self.symbol_mut(seq, &symbol_name)?;
        if !self.links.placed.insert(e.client_order_id.clone()) {
            return fail(
                seq,
                Rule::OrderLifecycle,
                format!(
                    "client_order_id {} was placed before: an order is never placed twice",
                    e.client_order_id
                ),
            );
        }
        let Some(&(decision_seq, candle_seq, entered)) = self.links.last_decision.get(&symbol_name)
        else {
            return fail(
                seq,
                Rule::OrderLink,
                format!(
                    "order {} on {} without a decision",
                    e.client_order_id, symbol_name
                ),
            );
        };
        if decision_seq != e.decision_seq {
            return fail(
                seq,
                Rule::OrderLink,
                format!("order {} names decision seq {}, but the newest {} decision is seq {decision_seq}", e.client_order_id, e.decision_seq, symbol_name),
            );
        }
        if e.base_size <= Decimal::ZERO || e.limit_price.is_some_and(|p| p <= Decimal::ZERO) {
            return fail(
                seq,
                Rule::Domain,
                format!(
                    "order {} with a non-positive size or price",
                    e.client_order_id
                ),
            );
        }
        let symbol = self.symbol_mut(seq, &symbol_name)?;
        match e.purpose {
            OrderPurpose::Entry => {
                if e.side != Side::Buy {
                    return fail(
                        seq,
                        Rule::OrderLifecycle,
                        "entries are buys (spot, long only)",
                    );
                }
                if let Some(reason) = &symbol.fail_closed {
                    return fail(
                        seq,
                        Rule::FailClosedBlocks,
                        format!(
                            "{symbol_name} is fail-closed ({reason}); entry {} refused",
                            e.client_order_id
                        ),
                    );
                }
                if symbol.in_flight.is_some()
                    || !symbol.position.quantity.is_zero()
                    || symbol.engine.0 != EngineState::Idle
                {
                    return fail(
                        seq,
                        Rule::SecondPosition,
                        format!(
                            "entry {} on {symbol_name} while {:?} (in flight: {:?}, position {})",
                            e.client_order_id,
                            symbol.engine.0,
                            symbol.in_flight,
                            symbol.position.quantity
                        ),
                    );
                }
                symbol.in_flight = Some(e.client_order_id.clone());
            }
            OrderPurpose::Exit => {
                if e.side != Side::Sell {
                    return fail(seq, Rule::OrderLifecycle, "exits are sells");
                }
                let Some(trade) = symbol.open_trade.as_mut() else {
                    return fail(
                        seq,
                        Rule::OrderLifecycle,
                        format!(
                            "exit {} on {symbol_name} with no open position",
                            e.client_order_id
                        ),
                    );
                };
                trade.exit_orders.push(e.client_order_id.clone());
            }
        }
        self.state.orders.insert(
            e.client_order_id.clone(),
            OrderState {
                client_order_id: e.client_order_id.clone(),
                symbol: symbol_name,
                side: e.side,
                purpose: e.purpose,
                has_bracket: e.bracket.is_some(),
                status: OrderStatus::Placed,
                bracket_verified: false,
                exchange_order_id: String::new(),
                size: e.base_size,
                filled: Decimal::ZERO,
            },
        );
        self.links.orders.insert(
            e.client_order_id.clone(),
            OrderLinks {
                order_seq: seq,
                decision_seq,
                candle_seq,
                decision_entered: entered,
                ..OrderLinks::default()
            },
        );
        Ok(())
    }

    fn order_mut(&mut self, seq: Seq, client_order_id: &str) -> FoldResult<&mut OrderState> {
        match self.state.orders.get_mut(client_order_id) {
            Some(order) => Ok(order),
            None => fail(
                seq,
                Rule::UnknownOrder,
                format!("no live order {client_order_id}"),
            ),
        }
    }

    fn order_acknowledged(&mut self, seq: Seq, e: &OrderAcknowledged) -> FoldResult {
        let order = self.order_mut(seq, &e.client_order_id)?;
        if order.status != OrderStatus::Placed {
            return fail(
                seq,
                Rule::OrderLifecycle,
                format!(
                    "order {} acknowledged while {:?}",
                    e.client_order_id, order.status
                ),
            );
        }
        order.status = OrderStatus::Acknowledged;
        order.exchange_order_id = e.exchange_order_id.clone();
        self.check_order_seq(seq, &e.client_order_id, e.order_seq)?;
        if let Some(links) = self.links.orders.get_mut(&e.client_order_id) {
            links.ack_seq = Some(seq);
        }
        Ok(())
    }

    fn check_order_seq(&self, seq: Seq, client_order_id: &str, order_seq: Seq) -> FoldResult {
        match self.links.orders.get(client_order_id) {
            Some(links) if links.order_seq == order_seq => Ok(()),
            Some(links) => fail(
                seq,
                Rule::OrderLink,
                format!("event names order seq {order_seq} for {client_order_id}, which was placed at seq {}", links.order_seq),
            ),
            None => fail(seq, Rule::UnknownOrder, format!("no live order {client_order_id}")),
        }
    }

    /// A rejection or cancellation. A rejected order has filled nothing; a
    /// cancelled entry may have filled in part, and then only its remainder ends
    /// (the order stays live for its bracket legs and the open trade).
    fn order_ended(&mut self, seq: Seq, client_order_id: &str, status: OrderStatus) -> FoldResult {
        let order = self.order_mut(seq, client_order_id)?;
        let partial_cancel = status == OrderStatus::Cancelled
            && order.purpose == OrderPurpose::Entry
            && order.status == OrderStatus::Acknowledged
            && !order.filled.is_zero();
        if partial_cancel {
            order.size = order.filled;
            order.status = OrderStatus::Filled;
            let symbol_name = order.symbol.clone();
            let symbol = self.symbol_mut(seq, &symbol_name)?;
            if symbol.in_flight.as_deref() == Some(client_order_id) {
                symbol.in_flight = None;
            }
            return Ok(());
        }
        if !order.is_open() || !order.filled.is_zero() {
            return fail(
                seq,
                Rule::OrderLifecycle,
                format!(
                    "order {client_order_id} {status:?} while {:?} with {} filled",
                    order.status, order.filled
                ),
            );
        }
        let symbol_name = order.symbol.clone();
        self.state.orders.remove(client_order_id);
        self.links.orders.remove(client_order_id);
        let symbol = self.symbol_mut(seq, &symbol_name)?;
        if symbol.in_flight.as_deref() == Some(client_order_id) {
            symbol.in_flight = None;
        }
        if let Some(trade) = &mut symbol.open_trade {
            trade.exit_orders.retain(|id| id != client_order_id);
        }
        Ok(())
    }

    fn bracket_verified(&mut self, seq: Seq, e: &BracketVerified) -> FoldResult {
        self.check_order_seq(seq, &e.client_order_id, e.order_seq)?;
        let order = self.order_mut(seq, &e.client_order_id)?;
        if !order.has_bracket {
            return fail(
                seq,
                Rule::OrderLifecycle,
                format!("bracket verified for {}, which has none", e.client_order_id),
            );
        }
        order.bracket_verified = true;
        if let Some(links) = self.links.orders.get_mut(&e.client_order_id) {
            links.bracket_seq.get_or_insert(seq);
        }
        Ok(())
    }

    fn fill(&mut self, seq: Seq, market_ms: UnixMs, e: &Fill) -> FoldResult {
        self.check_order_seq(seq, &e.client_order_id, e.order_seq)?;
        if e.price <= Decimal::ZERO || e.size <= Decimal::ZERO || e.fee < Decimal::ZERO {
            return fail(
                seq,
                Rule::Domain,
                format!(
                    "fill {} with non-positive price or size, or a negative fee",
                    e.fill_id
                ),
            );
        }
        let order = self
            .state
            .orders
            .get(&e.client_order_id)
            .cloned()
            .ok_or(FoldError {
                seq,
                rule: Rule::UnknownOrder,
                detail: format!("no live order {}", e.client_order_id),
            })?;
        let expected = match e.leg {
            FillLeg::Entry => (OrderPurpose::Entry, Side::Buy, false),
            FillLeg::TakeProfit | FillLeg::StopLoss => (OrderPurpose::Entry, Side::Sell, true),
            FillLeg::Exit => (OrderPurpose::Exit, Side::Sell, false),
        };
        if (order.purpose, e.side) != (expected.0, expected.1) || (expected.2 && !order.has_bracket)
        {
            return fail(
                seq,
                Rule::FillMismatch,
                format!(
                    "{:?} {:?} fill {} does not fit {:?} order {}",
                    e.leg, e.side, e.fill_id, order.purpose, e.client_order_id
                ),
            );
        }
        if matches!(e.leg, FillLeg::Entry | FillLeg::Exit) && order.filled + e.size > order.size {
            return fail(
                seq,
                Rule::FillMismatch,
                format!(
                    "fill {} overfills order {} ({} + {} > {})",
                    e.fill_id, e.client_order_id, order.filled, e.size, order.size
                ),
            );
        }
        let notional = e.price * e.size;
        let pot = self.state.pot(&order.symbol).to_string();
        let symbol_name = order.symbol.clone();
        let cash_change = match e.side {
            Side::Buy => -(notional + e.fee),
            Side::Sell => notional - e.fee,
        };
        let cash_before = self.state.cash.get(&pot).map_or(Decimal::ZERO, |c| c.0);
        if cash_before + cash_change < Decimal::ZERO {
            return fail(
                seq,
                Rule::Cash,
                format!(
                    "cash in pot {pot} would be {} after fill {}",
                    cash_before + cash_change,
                    e.fill_id
                ),
            );
        }
        let symbol = self.symbol_mut(seq, &symbol_name)?;
        // Held units are marked at the last close, or at the fill price before the
        // symbol's first candle.
        let mark = *symbol.last_close.get_or_insert(e.price);
        match e.side {
            Side::Buy => {
                if !matches!(
                    symbol.engine.0,
                    EngineState::EntryPending | EngineState::PositionOpen | EngineState::FailClosed
                ) {
                    return fail(
                        seq,
                        Rule::FillMismatch,
                        format!(
                            "entry fill {} on {symbol_name} while {:?}",
                            e.fill_id, symbol.engine.0
                        ),
                    );
                }
                let opening = symbol.open_trade.is_none();
                if opening && !symbol.position.quantity.is_zero() {
                    return fail(
                        seq,
                        Rule::SecondPosition,
                        format!("{symbol_name} already holds a position"),
                    );
                }
                let trade = symbol.open_trade.get_or_insert_with(|| OpenTrade {
                    entry_client_order_id: e.client_order_id.clone(),
                    opened_ms: market_ms,
                    ..OpenTrade::default()
                });
                if trade.entry_client_order_id != e.client_order_id {
                    return fail(
                        seq,
                        Rule::SecondPosition,
                        format!(
                            "entry fill for {} while trade {} is open on {symbol_name}",
                            e.client_order_id, trade.entry_client_order_id
                        ),
                    );
                }
                trade.bought += e.size;
                trade.buy_notional += notional;
                trade.fees += e.fee;
                symbol.position.quantity += e.size;
                symbol.position.cost += notional;
                symbol.position.fees_paid += e.fee;
                if symbol.in_flight.as_deref() == Some(e.client_order_id.as_str()) {
                    symbol.in_flight = None;
                }
                if opening {
                    symbol.trades_opened += 1;
                    if let Some(run) = &mut self.state.run {
                        run.trades_opened += 1;
                    }
                }
                self.state.equity.marked += e.size * mark;
            }
            Side::Sell => {
                if symbol.position.quantity < e.size {
                    return fail(
                        seq,
                        Rule::FillMismatch,
                        format!(
                            "sell fill {} of {} exceeds the {symbol_name} position of {}",
                            e.fill_id, e.size, symbol.position.quantity
                        ),
                    );
                }
                let Some(trade) = symbol.open_trade.as_mut() else {
                    return fail(
                        seq,
                        Rule::FillMismatch,
                        format!(
                            "sell fill {} with no open trade on {symbol_name}",
                            e.fill_id
                        ),
                    );
                };
                let belongs = trade.entry_client_order_id == e.client_order_id
                    || trade.exit_orders.contains(&e.client_order_id);
                if !belongs {
                    return fail(seq, Rule::FillMismatch, format!("sell fill {} on order {} which is not part of the open {symbol_name} trade", e.fill_id, e.client_order_id));
                }
                trade.sell_notional += notional;
                trade.fees += e.fee;
                let position = &mut symbol.position;
                let cost_removed = if e.size == position.quantity {
                    position.cost
                } else {
                    position.cost * e.size / position.quantity
                };
                position.realized_gross += notional - cost_removed;
                position.quantity -= e.size;
                position.cost -= cost_removed;
                position.fees_paid += e.fee;
                self.state.equity.marked -= e.size * mark;
                self.links.last_exit_fill.insert(symbol_name.clone(), seq);
            }
        }
        self.state.cash.entry(pot).or_default().0 += cash_change;
        self.state.equity.cash += cash_change;
        self.state.fees_total += e.fee;
        if let Some(order) = self.state.orders.get_mut(&e.client_order_id) {
            if matches!(e.leg, FillLeg::Entry | FillLeg::Exit) {
                order.filled += e.size;
                if order.filled == order.size {
                    order.status = OrderStatus::Filled;
                }
            }
        }
        if let Some(links) = self.links.orders.get_mut(&e.client_order_id) {
            links.first_fill_seq.get_or_insert(seq);
            links.last_fill_seq = Some(seq);
        }
        self.sample_equity(market_ms);
        Ok(())
    }

    fn reconciliation(&mut self, seq: Seq, e: &Reconciliation) -> FoldResult {
        let symbol = self.symbol_mut(seq, &e.symbol)?;
        if e.our_position != symbol.position.quantity {
            return fail(
                seq,
                Rule::FillMismatch,
                format!(
                    "reconciliation says our {} position is {}, the journal's fills say {}",
                    e.symbol, e.our_position, symbol.position.quantity
                ),
            );
        }
        symbol.last_reconciliation = Some(e.outcome);
        Ok(())
    }

    fn transition(&mut self, seq: Seq, e: &EngineTransition) -> FoldResult {
        let symbol_name = e.symbol.clone();
        let symbol = self.symbol_mut(seq, &symbol_name)?;
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
        let flat = symbol.position.quantity.is_zero();
        let guard: Result<(), String> = match (e.from, e.to) {
            (EngineState::Idle, EngineState::EntryPending) => match &symbol.in_flight {
                Some(_) => Ok(()),
                None => Err("no entry order in flight".into()),
            },
            (EngineState::EntryPending, EngineState::PositionOpen) => {
                if flat {
                    Err("the entry has not filled".into())
                } else {
                    Ok(())
                }
            }
            (EngineState::EntryPending, EngineState::Idle) => {
                // A partly filled entry whose units the bracket already sold is flat
                // with nothing in flight, but its trade still has to be finalized.
                if symbol.in_flight.is_some() || !flat || symbol.open_trade.is_some() {
                    Err("the entry is still in flight or filled".into())
                } else {
                    Ok(())
                }
            }
            (EngineState::Reconcile, EngineState::Idle) => {
                if symbol.open_trade.is_some() || !flat {
                    Err("the trade has not been finalized".into())
                } else {
                    Ok(())
                }
            }
            (_, EngineState::FailClosed) => match &symbol.fail_closed {
                Some(_) => Ok(()),
                None => Err("no FailClosed event for this symbol".into()),
            },
            (EngineState::FailClosed, EngineState::Idle) => {
                if symbol.fail_closed.is_some() {
                    Err("no operator reset since it failed closed".into())
                } else if symbol.open_trade.is_some() || !flat || symbol.in_flight.is_some() {
                    Err("a position or entry is still open".into())
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        };
        if let Err(why) = guard {
            return fail(
                seq,
                Rule::Transition,
                format!("{symbol_name} {:?} -> {:?} refused: {why}", e.from, e.to),
            );
        }
        symbol.engine = EngineStateCell(e.to);
        Ok(())
    }

    fn trade_closed(&mut self, seq: Seq, market_ms: UnixMs, e: &TradeClosed) -> FoldResult {
        let last_exit_fill = self.links.last_exit_fill.get(&e.symbol).copied();
        let entry_links = self.links.orders.get(&e.entry_client_order_id).cloned();
        let symbol = self.symbol_mut(seq, &e.symbol)?;
        let Some(trade) = symbol.open_trade.clone() else {
            return fail(
                seq,
                Rule::TradeMismatch,
                format!(
                    "trade {} closed on {} with no open trade",
                    e.trade_id, e.symbol
                ),
            );
        };
        let mismatch = |what: String| {
            fail(
                seq,
                Rule::TradeMismatch,
                format!("trade {}: {what}", e.trade_id),
            )
        };
        if trade.entry_client_order_id != e.entry_client_order_id {
            return mismatch(format!(
                "entry order {} but the open trade's is {}",
                e.entry_client_order_id, trade.entry_client_order_id
            ));
        }
        if !symbol.position.quantity.is_zero() {
            return mismatch(format!(
                "closed while {} {} is still held",
                symbol.position.quantity, e.symbol
            ));
        }
        if e.size != trade.bought {
            return mismatch(format!(
                "size {} but the fills bought {}",
                e.size, trade.bought
            ));
        }
        if e.gross_pnl != trade.sell_notional - trade.buy_notional {
            return mismatch(format!(
                "gross PnL {} but the fills give {}",
                e.gross_pnl,
                trade.sell_notional - trade.buy_notional
            ));
        }
        if e.fees != trade.fees {
            return mismatch(format!("fees {} but the fills paid {}", e.fees, trade.fees));
        }
        if e.net_pnl != e.gross_pnl - e.fees {
            return mismatch(format!(
                "net PnL {} is not gross {} minus fees {}",
                e.net_pnl, e.gross_pnl, e.fees
            ));
        }
        if last_exit_fill != Some(e.exit_fill_seq) {
            return mismatch(format!(
                "exit fill seq {} but the last exit fill is {:?}",
                e.exit_fill_seq, last_exit_fill
            ));
        }
        let Some(entry_links) = entry_links else {
            return mismatch(format!("entry order {} unknown", e.entry_client_order_id));
        };
        if entry_links.order_seq != e.entry_order_seq
            || entry_links.first_fill_seq != Some(e.entry_fill_seq)
        {
            return mismatch(format!(
                "entry order/fill seqs {}/{} but the journal has {}/{:?}",
                e.entry_order_seq,
                e.entry_fill_seq,
                entry_links.order_seq,
                entry_links.first_fill_seq
            ));
        }
        symbol.open_trade = None;
        symbol.trades_closed += 1;
        let exit_orders = trade.exit_orders.clone();
        let row = TradeRow {
            trade_id: e.trade_id.clone(),
            symbol: e.symbol.clone(),
            entry_client_order_id: e.entry_client_order_id.clone(),
            entry_ms: e.entry_ms,
            exit_ms: e.exit_ms,
            entry_price: e.entry_price,
            exit_price: e.exit_price,
            size: e.size,
            initial_stop: e.initial_stop,
            exit_reason: e.exit_reason,
            fees: e.fees,
            slippage: e.slippage,
            gross_pnl: e.gross_pnl,
            net_pnl: e.net_pnl,
            theoretical_r: e.theoretical_r,
            realized_r: e.realized_r,
        };
        self.audit_trade(seq, &row, &entry_links, e.exit_fill_seq);
        self.state.exposure_ms += row.hold_ms();
        if let Some(run) = &mut self.state.run {
            run.trades_closed += 1;
        }
        self.state.trades.push(row);
        for id in std::iter::once(&e.entry_client_order_id).chain(&exit_orders) {
            self.state.orders.remove(id);
            self.links.orders.remove(id);
        }
        self.links.last_exit_fill.remove(&e.symbol);
        self.sample_equity(market_ms);
        Ok(())
    }

    /// Audit coverage of one closed trade: is candle → decision → order →
    /// (ack, bracket verified) → entry fill → exit fill → close complete and in
    /// seq order?
    fn audit_trade(&mut self, seq: Seq, row: &TradeRow, links: &OrderLinks, exit_fill_seq: Seq) {
        let order = self.state.orders.get(&row.entry_client_order_id);
        let mut gaps = Vec::new();
        if !links.decision_entered {
            gaps.push(AuditGap::DecisionNotEnter);
        }
        match order {
            Some(order) if !order.has_bracket => gaps.push(AuditGap::NoBracket),
            Some(order) if !order.bracket_verified => gaps.push(AuditGap::BracketNotVerified),
            _ => {}
        }
        if links.ack_seq.is_none() {
            gaps.push(AuditGap::NotAcknowledged);
        }
        let mut chain = vec![links.candle_seq, links.decision_seq, links.order_seq];
        chain.extend(links.ack_seq);
        chain.extend(links.first_fill_seq);
        chain.push(exit_fill_seq);
        chain.push(seq);
        if chain.windows(2).any(|w| w[0] >= w[1])
            || links.bracket_seq.is_some_and(|b| b <= links.order_seq)
        {
            gaps.push(AuditGap::OutOfOrder);
        }
        let audit = &mut self.state.audit;
        audit.trades += 1;
        if gaps.is_empty() {
            audit.complete += 1;
        } else {
            audit.incomplete.insert(row.trade_id.clone(), gaps);
        }
    }

    fn fail_closed(&mut self, seq: Seq, e: &FailClosed) -> FoldResult {
        let symbol = self.symbol_mut(seq, &e.symbol)?;
        symbol.fail_closed = Some(e.reason.clone());
        Ok(())
    }

    fn operator_reset(&mut self, seq: Seq, e: &OperatorReset) -> FoldResult {
        let symbol = self.symbol_mut(seq, &e.symbol)?;
        if symbol.fail_closed.is_none() {
            return fail(
                seq,
                Rule::Reset,
                format!("operator reset of {}, which is not fail-closed", e.symbol),
            );
        }
        symbol.fail_closed = None;
        Ok(())
    }

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

    /// Records an equity sample: peak, drawdown and daily returns.
    fn sample_equity(&mut self, market_ms: UnixMs) {
        let curve = &mut self.state.equity;
        let equity = curve.equity();
        let day = utc_day(market_ms);
        match curve.day {
            None => {
                curve.day = Some(day);
                curve.day_open = curve.start;
            }
            Some(current) if day > current => {
                // The last equity seen on the previous day closes it.
                close_day(curve);
                curve.day = Some(day);
            }
            _ => {}
        }
        curve.last = equity;
        curve.samples += 1;
        if equity > curve.peak {
            curve.peak = equity;
            return;
        }
        let fall = curve.peak - equity;
        if fall > curve.max_drawdown {
            curve.max_drawdown = fall;
        }
        // fall / peak > best_fall / best_peak, by cross-multiplying (no division).
        if fall * curve.max_drawdown_pct_peak > curve.max_drawdown_pct_fall * curve.peak
            || curve.max_drawdown_pct_peak.is_zero() && !fall.is_zero()
        {
            curve.max_drawdown_pct_fall = fall;
            curve.max_drawdown_pct_peak = curve.peak;
        }
    }
}

/// Sets `map[symbol]`, allocating a key only the first time (this runs for
/// every candle and decision).
fn set_by_symbol<V>(map: &mut std::collections::BTreeMap<String, V>, symbol: &str, value: V) {
    match map.get_mut(symbol) {
        Some(slot) => *slot = value,
        None => {
            map.insert(symbol.to_string(), value);
        }
    }
}

/// The daily-return sums (n, Σr, Σr², Σ of negative r²) with the current day
/// closed at `day_close` (from `day_open`) added.
pub(crate) fn return_sums_with_day(
    curve: &EquityCurve,
    day_close: Decimal,
) -> (u64, Decimal, Decimal, Decimal) {
    let mut sums = (
        curve.returns_n,
        curve.returns_sum,
        curve.returns_sum_sq,
        curve.returns_down_sum_sq,
    );
    if curve.day_open > Decimal::ZERO {
        let r = day_close / curve.day_open - Decimal::ONE;
        sums.0 += 1;
        sums.1 += r;
        sums.2 += r * r;
        if r < Decimal::ZERO {
            sums.3 += r * r;
        }
    }
    sums
}

/// Adds the day that just ended (from `day_open` to `last`) to the return sums.
pub(crate) fn close_day(curve: &mut EquityCurve) {
    (
        curve.returns_n,
        curve.returns_sum,
        curve.returns_sum_sq,
        curve.returns_down_sum_sq,
    ) = return_sums_with_day(curve, curve.last);
    curve.day_open = curve.last;
    curve.daily.push(DailyEquity {
        day: curve.day.unwrap_or_default(),
        equity: curve.last,
        peak: curve.peak.max(curve.last),
    });
}
