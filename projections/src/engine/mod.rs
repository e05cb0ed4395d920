//! The engine: the pure decision core. It never performs I/O and never reads a
//! clock. Given the projected state, a new journaled input (a closed candle, a
//! fill, an order that ended, protection that could not be confirmed) and the
//! market time `as_of`, [`Engine::run_tick`] returns the events to append –
//! Decisions, order intents, transitions, the finalized trade. The replay runner
//! and the paper trader call exactly this, so a backtest and a live run cannot
//! drift apart.
//!
//! The engine's own memory (indicator windows, pacing history, the brackets
//! and exit reasons of open trades) is a fold too: [`Engine::observe`] is called
//! with every journaled event, so a restart rebuilds it by replaying the
//! journal.
//!
//! Contract with the caller: `run_tick`'s events are appended in order, right
//! away, starting at seq `projection.seq() + 1` (their causal links assume so),
//! each folded into the projection and observed by the engine.

pub mod config;
pub mod cost;
pub mod indicators;
pub mod order;
pub mod product;
pub mod risk;
pub mod signals;

use crate::error::{EngineError, EngineFault, EngineResult};
use crate::fold::{Projection, PORTFOLIO_POT};
use crate::model::DAY_MS;
use anx_journal::codec::Hash32;
use anx_journal::*;
use config::Config;
use cost::CostModel;
use indicators::{Indicators, Snapshot};
use rust_decimal::Decimal;
use signals::Regime;
use std::collections::{BTreeMap, VecDeque};

/// What the engine reacts to. Every input is already in the journal.
#[derive(Clone, Copy, Debug)]
pub enum TickInput<'a> {
    /// A closed candle (journaled at `seq`), decided on at `as_of_ms`.
    Candle {
        seq: Seq,
        candle: &'a Candle,
        as_of_ms: UnixMs,
    },
    /// A fill journaled at `seq`.
    Fill {
        seq: Seq,
        fill: &'a Fill,
        as_of_ms: UnixMs,
    },
    /// An order of `symbol` was cancelled or rejected (journaled at `seq`;
    /// `rejected` is the broker's reason for a rejection).
    OrderEnded {
        seq: Seq,
        symbol: &'a str,
        client_order_id: &'a str,
        rejected: Option<&'a str>,
        as_of_ms: UnixMs,
    },
    /// An operator reset the fail-closed `symbol` (journaled at `seq`).
    OperatorReset {
        seq: Seq,
        symbol: &'a str,
        as_of_ms: UnixMs,
    },
    /// An operator asked for `action.symbol`'s position to be closed
    /// (journaled at `seq`).
    OperatorExit {
        seq: Seq,
        action: &'a OperatorAction,
        as_of_ms: UnixMs,
    },
    /// The broker could not confirm the attached legs of an entry (its
    /// `BracketUnconfirmed`, journaled at `seq`).
    ProtectionUnconfirmed {
        seq: Seq,
        symbol: &'a str,
        client_order_id: &'a str,
        reason: &'a str,
        as_of_ms: UnixMs,
    },
}

#[derive(Clone, Debug)]
struct Bracket {
    client_order_id: String,
    stop_trigger: Decimal,
}

#[derive(Clone, Debug)]
struct SymbolMemory {
    indicators: Indicators,
    snapshot: Option<Snapshot>,
    /// The bracket of the current entry (placed, then held while the trade is open).
    bracket: Option<Bracket>,
    highest_since_entry: Option<Decimal>,
    /// The open trade's first entry fill: its seq, and the broker's own time
    /// of it when a receipt says (a real exchange). With that time, only
    /// bars that began after it raise the high since entry – a fill polled
    /// before its bar's candle must not count that bar's high, which may
    /// have come before the fill. Without it (a simulation, which answers
    /// inside the candle's step), every candle seen after the fill counts.
    entry_fill: Option<(Seq, Option<UnixMs>)>,
    /// Slippage attributed to the open trade's taker fills so far.
    slippage: Decimal,
    /// Why each exit order of the open trade was placed.
    exit_reasons: BTreeMap<String, ExitReason>,
    /// The reason of an exit decision, until its order is placed.
    pending_exit: Option<ExitReason>,
    last_exit: Option<(UnixMs, bool)>,
    /// The newest Decision to enter, kept while its entry may be re-priced
    /// (a crossed post-only limit), and how many re-pricings led to it.
    entry_decision: Option<Decision>,
    reprices: u32,
    /// An acknowledged entry whose protection the broker has not confirmed
    /// yet: (client order id, the acknowledgement's seq and market time).
    awaiting_protection: Option<(String, Seq, UnixMs)>,
}

/// The decision core for one run.
pub struct Engine {
    config: Config,
    config_hash: Hash32,
    run_id: String,
    skip_volume_filter: bool,
    symbols: BTreeMap<String, SymbolMemory>,
    /// Market times of entries placed within the last day (oldest first).
    entries_ms: VecDeque<UnixMs>,
    /// The limit price of every entry placed: what its unfilled rest will
    /// cost when it fills (kept while the order is open, see `reserved`).
    entry_limits: BTreeMap<String, Decimal>,
}

impl Engine {
    /// An engine for `config` (already validated). `skip_volume_filter` is the
    /// debug switch that tags a run `degraded_skip_volume`.
    pub fn new(config: Config, run_id: &str, skip_volume_filter: bool) -> Engine {
        Engine {
            config_hash: config.hash(),
            run_id: run_id.to_string(),
            skip_volume_filter,
            symbols: BTreeMap::new(),
            entries_ms: VecDeque::new(),
            entry_limits: BTreeMap::new(),
            config,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn config_hash(&self) -> Hash32 {
        self.config_hash
    }

    fn memory(&mut self, symbol: &str) -> &mut SymbolMemory {
        if !self.symbols.contains_key(symbol) {
            let memory = SymbolMemory {
                indicators: Indicators::new(&self.config),
                snapshot: None,
                bracket: None,
                highest_since_entry: None,
                entry_fill: None,
                slippage: Decimal::ZERO,
                exit_reasons: BTreeMap::new(),
                pending_exit: None,
                last_exit: None,
                entry_decision: None,
                reprices: 0,
                awaiting_protection: None,
            };
            self.symbols.insert(symbol.to_string(), memory);
        }
        self.symbols.get_mut(symbol).expect("inserted above")
    }

    /// Folds one journaled event into the engine's memory. `projection` is the
    /// state after the event was folded.
    ///
    /// Errors when the event cannot have been folded (a fill of an order the
    /// projection does not hold): the caller broke the contract.
    pub fn observe(
        &mut self,
        projection: &Projection,
        market_ms: UnixMs,
        event: &Event,
    ) -> EngineResult {
        match event {
            Event::Candle(c) => {
                let memory = self.memory(&c.symbol);
                let snapshot = memory.indicators.push(c.high, c.low, c.close, c.volume);
                memory.snapshot = Some(snapshot);
                let began_after_entry = match memory.entry_fill {
                    Some((_, Some(fill_ms))) => c.open_ms > fill_ms,
                    _ => true,
                };
                if let Some(high) = memory
                    .highest_since_entry
                    .as_mut()
                    .filter(|_| began_after_entry)
                {
                    *high = (*high).max(c.high);
                }
            }
            Event::OrderPlaced(o) => self.observe_order_placed(o, market_ms),
            Event::Decision(d) => self.observe_decision(d),
            Event::OrderAcknowledged(e) => self.observe_ack(projection, market_ms, e),
            Event::BracketVerified(e) => self.protection_answered(projection, &e.client_order_id),
            Event::BracketUnconfirmed(e) => {
                self.protection_answered(projection, &e.client_order_id)
            }
            Event::FailClosed(e) => self.memory(&e.symbol).awaiting_protection = None,
            Event::Fill(f) => self.observe_fill(projection, f)?,
            Event::AnswerReceipt(r) => self.observe_receipt(r),
            Event::TradeClosed(t) => {
                let memory = self.memory(&t.symbol);
                memory.awaiting_protection = None;
                memory.last_exit = Some((t.exit_ms, t.net_pnl > Decimal::ZERO));
                memory.bracket = None;
                memory.highest_since_entry = None;
                memory.entry_fill = None;
                memory.slippage = Decimal::ZERO;
                memory.exit_reasons.clear();
                memory.pending_exit = None;
            }
            Event::OrderCancelled(e) => self.forget_unfilled_entry(projection, &e.client_order_id),
            Event::OrderRejected(e) => {
                self.observe_rejection(e);
                self.forget_unfilled_entry(projection, &e.client_order_id)
            }
            _ => {}
        }
        if matches!(
            event,
            Event::Fill(_) | Event::OrderCancelled(_) | Event::OrderRejected(_)
        ) {
            // An entry's limit is needed only while it works (bounded memory).
            let orders = &projection.state.orders;
            self.entry_limits
                .retain(|id, _| orders.get(id).is_some_and(|o| o.is_open()));
        }
        Ok(())
    }

    /// Remembers an exit decision's reason (for the order placed right after
    /// it) and an entry decision (for a re-pricing).
    fn observe_decision(&mut self, d: &Decision) {
        let memory = self.memory(&d.symbol);
        memory.pending_exit = match d.outcome {
            DecisionOutcome::Exit { reason } => Some(reason),
            _ => None,
        };
        if d.outcome == DecisionOutcome::Enter {
            // An entry decision's glass box is whole in every schema.
            let repriced = d
                .glass
                .full()
                .and_then(|g| g.risk_checks.first())
                .is_some_and(|c| c.code == risk::ReasonCode::PostOnlyReprice.code());
            memory.reprices = if repriced { memory.reprices + 1 } else { 0 };
            memory.entry_decision = Some(d.clone());
        }
    }

    /// An entry with a bracket, acknowledged: its protection is awaited.
    fn observe_ack(&mut self, projection: &Projection, market_ms: UnixMs, e: &OrderAcknowledged) {
        let Some(order) = projection.state.orders.get(&e.client_order_id) else {
            return;
        };
        if order.purpose == OrderPurpose::Entry && order.has_bracket && !order.bracket_verified {
            let awaited = (e.client_order_id.clone(), projection.seq(), market_ms);
            self.memory(&order.symbol.clone()).awaiting_protection = Some(awaited);
        }
    }

    /// The broker answered about an entry's protection (either way).
    fn protection_answered(&mut self, projection: &Projection, client_order_id: &str) {
        let Some(order) = projection.state.orders.get(client_order_id) else {
            return;
        };
        let memory = self.memory(&order.symbol.clone());
        if memory
            .awaiting_protection
            .as_ref()
            .is_some_and(|(id, ..)| id == client_order_id)
        {
            memory.awaiting_protection = None;
        }
    }

    /// The awaited protection of `memory`'s entry, if its deadline has passed
    /// at `as_of_ms`: (client order id, the acknowledgement's seq).
    fn protection_overdue(&self, memory: &SymbolMemory, as_of_ms: UnixMs) -> Option<(String, Seq)> {
        let deadline_ms = i64::try_from(self.config.orders.protection_confirm_s)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        let (id, ack_seq, ack_ms) = memory.awaiting_protection.as_ref()?;
        (deadline_ms > 0 && as_of_ms.saturating_sub(*ack_ms) >= deadline_ms)
            .then(|| (id.clone(), *ack_seq))
    }

    /// A crossed post-only entry never traded: with re-pricing on, it does not
    /// count against the pacing rules its re-priced retry is checked by.
    fn observe_rejection(&mut self, e: &OrderRejected) {
        // Every entry is a limit order: `entry_limits` knows it (the fold may
        // already have ended the order).
        let entry = self.entry_limits.contains_key(&e.client_order_id);
        let repricing = self.config.orders.post_only_retries_max > 0;
        if entry && e.reason == order::POST_ONLY_CROSS && repricing {
            self.entries_ms.pop_back();
        }
    }

    /// Remembers an entry's bracket or an exit's reason, and paces entries.
    fn observe_order_placed(&mut self, o: &OrderPlaced, market_ms: UnixMs) {
        let memory = self.memory(&o.product_id);
        match (o.purpose, &o.bracket) {
            (OrderPurpose::Entry, Some(b)) => {
                memory.bracket = Some(Bracket {
                    client_order_id: o.client_order_id.clone(),
                    stop_trigger: b.stop_trigger,
                });
            }
            (OrderPurpose::Entry, None) => memory.bracket = None,
            (OrderPurpose::Exit, _) => {
                // Tie the pending exit reason to the order that carries it.
                if let Some(reason) = memory.pending_exit.take() {
                    memory
                        .exit_reasons
                        .insert(o.client_order_id.clone(), reason);
                }
            }
        }
        if o.purpose == OrderPurpose::Entry {
            if let Some(limit) = o.limit_price {
                self.entry_limits.insert(o.client_order_id.clone(), limit);
            }
            self.entries_ms.push_back(market_ms);
            while self
                .entries_ms
                .front()
                .is_some_and(|t| *t <= market_ms - DAY_MS)
            {
                self.entries_ms.pop_front();
            }
        }
    }

    /// A receipt of a trade's first entry fill gives the fill's broker time.
    fn observe_receipt(&mut self, r: &AnswerReceipt) {
        for memory in self.symbols.values_mut() {
            if let Some((seq, time)) = memory.entry_fill.as_mut() {
                if *seq == r.answer_seq {
                    *time = Some(r.broker_time_ms);
                }
            }
        }
    }

    /// Attributes a taker fill's slippage and tracks the high since entry.
    fn observe_fill(&mut self, projection: &Projection, f: &Fill) -> EngineResult {
        let order = order_of(projection, projection.seq(), &f.client_order_id)?;
        let symbol = order.symbol.clone();
        let purpose = order.purpose;
        let spec = self.config.product(&symbol).copied();
        let slippage = match (f.liquidity, spec) {
            (Liquidity::Taker, Some(spec)) => {
                CostModel::new(&self.config).slippage_cost(f.price * f.size, f.side, &spec)
            }
            _ => Decimal::ZERO,
        };
        let memory = self.memory(&symbol);
        memory.slippage += slippage;
        if f.leg == FillLeg::Entry && purpose == OrderPurpose::Entry {
            memory.entry_fill.get_or_insert((projection.seq(), None));
            memory.highest_since_entry = Some(
                memory
                    .highest_since_entry
                    .map_or(f.price, |h| h.max(f.price)),
            );
        }
        Ok(())
    }

    /// An entry that ended with nothing filled leaves no trade to remember.
    fn forget_unfilled_entry(&mut self, projection: &Projection, client_order_id: &str) {
        for (symbol, memory) in self.symbols.iter_mut() {
            let open = projection
                .state
                .symbols
                .get(symbol)
                .is_some_and(|s| s.open_trade.is_some());
            if !open
                && memory
                    .bracket
                    .as_ref()
                    .is_some_and(|b| b.client_order_id == client_order_id)
            {
                memory.bracket = None;
            }
            // An entry that ended with nothing filled needs no protection.
            let awaited = memory
                .awaiting_protection
                .as_ref()
                .is_some_and(|(id, ..)| id == client_order_id);
            if !open && awaited {
                memory.awaiting_protection = None;
            }
        }
    }

    /// Reacts to one journaled input; returns the events to append next.
    ///
    /// Every closed candle gets exactly one Decision: what would have skipped
    /// it (a symbol, memory or indicator snapshot that cannot be missing when
    /// the contract is kept) is an error naming the input's seq instead.
    pub fn run_tick(
        &mut self,
        projection: &Projection,
        input: TickInput,
    ) -> EngineResult<Vec<(UnixMs, Event)>> {
        let mut out = Out {
            next_seq: projection.seq() + 1,
            events: Vec::new(),
        };
        match input {
            TickInput::Candle {
                seq,
                candle,
                as_of_ms,
            } => self.on_candle(projection, seq, candle, as_of_ms, &mut out)?,
            TickInput::Fill {
                seq,
                fill,
                as_of_ms,
            } => self.on_fill(projection, seq, fill, as_of_ms, &mut out)?,
            TickInput::OrderEnded {
                seq,
                symbol,
                client_order_id,
                rejected,
                as_of_ms,
            } => {
                let ended = Ended {
                    seq,
                    symbol,
                    client_order_id,
                    rejected,
                    as_of_ms,
                };
                self.on_order_ended(projection, ended, &mut out)?
            }
            TickInput::OperatorReset {
                seq,
                symbol,
                as_of_ms,
            } => self.on_operator_reset(projection, seq, symbol, as_of_ms, &mut out)?,
            TickInput::OperatorExit {
                seq,
                action,
                as_of_ms,
            } => self.on_operator_exit(projection, seq, action, as_of_ms, &mut out)?,
            TickInput::ProtectionUnconfirmed {
                seq,
                symbol,
                client_order_id,
                reason,
                as_of_ms,
            } => {
                let unprotected = Unprotected {
                    seq,
                    symbol,
                    client_order_id,
                    reason,
                    as_of_ms,
                };
                self.on_unprotected(projection, unprotected, &mut out)?
            }
        }
        Ok(out.events)
    }

    fn indicator_values(
        snapshot: &Snapshot,
        extra: &[(&'static str, Option<Decimal>)],
    ) -> Vec<Indicator> {
        // Averages come out of divisions with 28 decimals; 8 are kept. Values
        // already that short (prices, volumes) are left exactly as they are.
        let round = |v: Option<Decimal>| v.map(|d| d.round_dp(8));
        let values = [
            ("close", Some(snapshot.close)),
            ("donchian_high", snapshot.donchian_high),
            ("avg_volume", snapshot.avg_volume),
            ("volume", Some(snapshot.volume)),
            ("atr", snapshot.atr),
            ("ema_fast", snapshot.ema_fast),
            ("ema_slow", snapshot.ema_slow),
            ("sma_mean", snapshot.sma_mean),
            ("sma_regime", snapshot.sma_regime),
            ("regime_slope", snapshot.regime_slope),
        ];
        // Static names are stored without a heap allocation: this runs on every candle.
        values
            .iter()
            .chain(extra)
            .map(|&(name, value)| Indicator {
                name: Text::const_new(name),
                value: round(value),
            })
            .collect()
    }

    fn on_candle(
        &self,
        projection: &Projection,
        candle_seq: Seq,
        candle: &Candle,
        as_of_ms: UnixMs,
        out: &mut Out,
    ) -> EngineResult {
        let symbol = candle.symbol.as_str();
        let state = symbol_state(projection, candle_seq, symbol)?;
        // `observe` made the memory and fed the indicators when the candle was folded.
        let memory = self.symbols.get(symbol).ok_or_else(|| {
            EngineError::new(candle_seq, EngineFault::NoMemory, symbol.to_string())
        })?;
        let snapshot = memory.snapshot.as_ref().ok_or_else(|| {
            EngineError::new(candle_seq, EngineFault::NoSnapshot, symbol.to_string())
        })?;
        let regime = signals::classify(snapshot);
        let chandelier = match (memory.highest_since_entry, snapshot.atr) {
            (Some(high), Some(atr)) => Some(high - self.config.exits.chandelier_atr_multiple * atr),
            _ => None,
        };
        let indicators = Self::indicator_values(
            snapshot,
            &[
                ("highest_since_entry", memory.highest_since_entry),
                ("chandelier_stop", chandelier),
            ],
        );
        let decision = Decision {
            symbol: symbol.to_string(),
            as_of_ms,
            candle_seq,
            glass: Glass::Full(GlassBox {
                regime: Text::const_new(regime.name()),
                indicators,
                signals: signals::scan(snapshot, &self.config, self.skip_volume_filter),
                risk_checks: Vec::new(),
            }),
            sizing: None,
            outcome: DecisionOutcome::Hold,
            config_hash: Some(self.config_hash),
        };
        // Protection not confirmed in time: fail closed before deciding, and
        // let this candle's one Decision be the exit of a position.
        let lapsed = self.fail_if_protection_lapsed(projection, memory, symbol, as_of_ms, out)?;
        let holding = !state.position.quantity.is_zero();
        if holding && !exit_pending(projection, state) {
            let exit = self.exit_check(state, memory, candle, chandelier, lapsed);
            self.decide_holding(symbol, state, exit, decision, as_of_ms, out);
        } else if state.engine.0 != EngineState::Idle || state.in_flight.is_some() || holding {
            out.push(as_of_ms, decision.into());
        } else {
            self.decide_entry(projection, regime, memory, decision, as_of_ms, out);
        }
        Ok(())
    }

    /// Fails `symbol` closed if its entry's protection was not confirmed by
    /// the deadline (`orders.protection_confirm_s`); whether it did.
    fn fail_if_protection_lapsed(
        &self,
        projection: &Projection,
        memory: &SymbolMemory,
        symbol: &str,
        as_of_ms: UnixMs,
        out: &mut Out,
    ) -> EngineResult<bool> {
        let Some((id, ack_seq)) = self.protection_overdue(memory, as_of_ms) else {
            return Ok(false);
        };
        let state = symbol_state(projection, ack_seq, symbol)?;
        let reason = anx_journal::compact_str::format_compact!(
            "protection not confirmed within {}s of the acknowledgement",
            self.config.orders.protection_confirm_s
        );
        let u = Unprotected {
            seq: ack_seq,
            symbol,
            client_order_id: &id,
            reason: &reason,
            as_of_ms,
        };
        fail_unprotected(projection, state, u, out);
        Ok(true)
    }

    /// Why an open position with no exit working must go now, if it must.
    fn exit_check(
        &self,
        state: &crate::model::SymbolState,
        memory: &SymbolMemory,
        candle: &Candle,
        chandelier: Option<Decimal>,
        protection_lapsed: bool,
    ) -> Option<(ExitReason, RiskCheck)> {
        // The stop traded through but the position is still open: the stop-limit
        // did not fill (a gap past its limit). The position is naked.
        let stop_failed = memory
            .bracket
            .as_ref()
            .is_some_and(|b| candle.low <= b.stop_trigger);
        let unprotected = state.engine.0 == EngineState::FailClosed || protection_lapsed;
        let trailing_hit =
            self.config.exits.chandelier_enabled && chandelier.is_some_and(|c| candle.close < c);
        if stop_failed || unprotected {
            let check = RiskCheck {
                code: risk::ReasonCode::Protection.text(),
                passed: false,
                detail: if stop_failed {
                    "stop traded through but the position is still open (stop-limit unfilled)"
                        .into()
                } else {
                    "symbol is fail-closed with a position open".into()
                },
            };
            return Some((ExitReason::Emergency, check));
        }
        trailing_hit.then(|| {
            let check = RiskCheck {
                code: risk::ReasonCode::ChandelierExit.text(),
                passed: false,
                detail: anx_journal::compact_str::format_compact!(
                    "close {} below chandelier stop {}",
                    candle.close,
                    chandelier.unwrap_or_default().round_dp(8)
                ),
            };
            (ExitReason::Signal, check)
        })
    }

    /// The Decision on a candle while a position is open: hold, or exit.
    fn decide_holding(
        &self,
        symbol: &str,
        state: &crate::model::SymbolState,
        exit: Option<(ExitReason, RiskCheck)>,
        mut decision: Decision,
        as_of_ms: UnixMs,
        out: &mut Out,
    ) {
        match exit {
            Some((reason, check)) => {
                glass_mut(&mut decision).risk_checks.push(check);
                decision.outcome = DecisionOutcome::Exit { reason };
                self.place_exit(symbol, state.position.quantity, decision, as_of_ms, out);
            }
            None => {
                out.push(as_of_ms, decision.into());
            }
        }
    }

    /// The fired signal an entry is built on: the first the regime allows, in
    /// the configured order, else the first that fired.
    fn select_signal(
        &self,
        decision: &Decision,
        regime: Regime,
    ) -> Option<(SignalOutput, Option<&config::RegimeRule>)> {
        let signals = &decision.glass.full()?.signals;
        let first = signals.iter().find(|s| s.fired)?;
        let rule = self.regime_rule(regime);
        let selected = signals
            .iter()
            .find(|s| s.fired && regime_allows(rule, &s.name))
            .unwrap_or(first);
        Some((selected.clone(), rule))
    }

    fn regime_rule(&self, regime: Regime) -> Option<&config::RegimeRule> {
        match regime {
            Regime::Trend => Some(&self.config.regime.trend),
            Regime::Chop => Some(&self.config.regime.chop),
            Regime::Bear => Some(&self.config.regime.bear),
            Regime::Unknown => None,
        }
    }

    fn decide_entry(
        &self,
        projection: &Projection,
        regime: Regime,
        memory: &SymbolMemory,
        mut decision: Decision,
        as_of_ms: UnixMs,
        out: &mut Out,
    ) {
        let Some((signal, rule)) = self.select_signal(&decision, regime) else {
            // Nothing fired: the Decision is to hold.
            out.push(as_of_ms, decision.into());
            return;
        };
        if let Some((code, check)) = halted(projection).or_else(|| invalid_signal(&signal)) {
            return reject(decision, code, Some(check), as_of_ms, out);
        }
        let Some(spec) = self.config.product(&decision.symbol).copied() else {
            let code = risk::ReasonCode::NoProductSpec.code();
            return reject(decision, code, None, as_of_ms, out);
        };
        let prices = match rounded_prices(&signal, &spec) {
            Ok(prices) => prices,
            Err(check) => {
                let code = risk::ReasonCode::SignalRounding.code();
                return reject(decision, code, Some(check), as_of_ms, out);
            }
        };
        let entry_rule = EntryRule {
            regime,
            allows: regime_allows(rule, &signal.name),
            size_multiplier: rule.map_or(Decimal::ZERO, |r| r.size_multiplier),
        };
        let ctx = self.risk_context(
            projection,
            &decision.symbol,
            memory,
            &spec,
            entry_rule,
            as_of_ms,
        );
        let verdict = risk::evaluate(&ctx, prices.entry, prices.stop, prices.take_profit);
        let checks = &mut glass_mut(&mut decision).risk_checks;
        checks.push(prices.selected_check(&signal.name));
        checks.extend(verdict.checks);
        decision.sizing = verdict.sizing.clone();
        if let Some(code) = verdict.rejected {
            return reject(decision, code.code(), None, as_of_ms, out);
        }
        let quantity = verdict.sizing.map(|s| s.quantity).unwrap_or_default();
        self.place_entry(decision, &spec, prices, quantity, as_of_ms, out);
    }

    /// What the risk checks read of the state, the engine's memory and the regime.
    fn risk_context<'a>(
        &'a self,
        projection: &Projection,
        symbol: &str,
        memory: &SymbolMemory,
        spec: &'a config::ProductSpec,
        rule: EntryRule,
        as_of_ms: UnixMs,
    ) -> risk::RiskContext<'a> {
        let state = &projection.state;
        let pot = state.pot(symbol);
        let reserved = self.reserved(projection, pot);
        let cash = state.cash.get(pot).map_or(Decimal::ZERO, |c| c.0);
        let portfolio = pot == PORTFOLIO_POT;
        let equity = state.equity.equity();
        risk::RiskContext {
            config: &self.config,
            spec,
            as_of_ms,
            candle_close_ms: state.last_close_ms(symbol).unwrap_or(UnixMs::MIN),
            fail_closed: state
                .symbols
                .get(symbol)
                .is_some_and(|s| s.fail_closed.is_some()),
            equity,
            peak_equity: state.equity.peak_now(),
            starting_equity: state.equity.start,
            realized_today: risk::realized_on_day(&state.trades, as_of_ms),
            entries_ms: &self.entries_ms,
            last_exit: memory.last_exit,
            regime: rule.regime.name(),
            regime_allows: rule.allows,
            size_multiplier: rule.size_multiplier,
            capital: if portfolio { equity } else { cash },
            cash_available: cash - reserved.cash,
            exposure_total: state.equity.marked + reserved.notional,
        }
    }

    /// What the entries still working in `pot` will take when they fill: their
    /// unfilled notional at the limit, and the cash for it with the entry fee
    /// at the taker rate (the cash cap's own reservation). Without it, two
    /// symbols sharing the portfolio pot each size against the whole pot in
    /// the same bar and overdraw it when both fill.
    fn reserved(&self, projection: &Projection, pot: &str) -> Reserved {
        let state = &projection.state;
        let fee_factor = Decimal::ONE + CostModel::new(&self.config).fee_fraction(Liquidity::Taker);
        let mut reserved = Reserved::default();
        // `entry_limits` holds exactly the working entries: few, unlike `orders`.
        for (id, limit) in &self.entry_limits {
            let Some(order) = state.orders.get(id) else {
                continue;
            };
            if !order.is_open() || state.pot(&order.symbol) != pot {
                continue;
            }
            let notional = (order.size - order.filled) * *limit;
            reserved.notional += notional;
            reserved.cash += notional * fee_factor;
        }
        reserved
    }

    /// An Enter Decision, its bracket entry order and the move to ENTRY_PENDING.
    fn place_entry(
        &self,
        mut decision: Decision,
        spec: &config::ProductSpec,
        prices: EntryPrices,
        quantity: Decimal,
        as_of_ms: UnixMs,
        out: &mut Out,
    ) {
        let EntryPrices {
            entry,
            stop,
            take_profit,
        } = prices;
        let symbol = decision.symbol.clone();
        decision.outcome = DecisionOutcome::Enter;
        let client_order_id = order::client_order_id(&self.run_id, &symbol, &decision);
        let decision_seq = out.push(as_of_ms, decision.into());
        let buffer = self.config.exchange.stop_limit_buffer;
        let post_only = self.config.orders.entry_post_only;
        let placed = OrderPlaced {
            client_order_id: client_order_id.clone(),
            decision_seq,
            product_id: symbol.clone(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            purpose: OrderPurpose::Entry,
            limit_price: Some(entry),
            stop_trigger: None,
            base_size: quantity,
            post_only,
            bracket: Some(BracketLegs {
                take_profit_limit: take_profit,
                stop_trigger: stop,
                stop_limit: product::stop_limit(stop, buffer, spec),
            }),
            payload: order::entry_payload(
                &client_order_id,
                &symbol,
                quantity,
                entry,
                post_only,
                take_profit,
                stop,
            ),
        };
        let order_seq = out.push(as_of_ms, placed.into());
        out.transition(
            as_of_ms,
            &symbol,
            EngineState::Idle,
            EngineState::EntryPending,
            "bracket entry placed",
            order_seq,
        );
    }

    /// A Decision to exit and its market SELL order.
    fn place_exit(
        &self,
        symbol: &str,
        quantity: Decimal,
        decision: Decision,
        as_of_ms: UnixMs,
        out: &mut Out,
    ) {
        let client_order_id = order::client_order_id(&self.run_id, symbol, &decision);
        let decision_seq = out.push(as_of_ms, decision.into());
        let placed = OrderPlaced {
            client_order_id: client_order_id.clone(),
            decision_seq,
            product_id: symbol.to_string(),
            side: Side::Sell,
            order_type: OrderType::Market,
            purpose: OrderPurpose::Exit,
            limit_price: None,
            stop_trigger: None,
            base_size: quantity,
            post_only: false,
            bracket: None,
            payload: order::exit_payload(&client_order_id, symbol, quantity),
        };
        out.push(as_of_ms, placed.into());
    }

    fn on_fill(
        &mut self,
        projection: &Projection,
        seq: Seq,
        fill: &Fill,
        as_of_ms: UnixMs,
        out: &mut Out,
    ) -> EngineResult {
        let symbol = order_of(projection, seq, &fill.client_order_id)?
            .symbol
            .clone();
        let state = symbol_state(projection, seq, &symbol)?;
        if fill.leg == FillLeg::Entry {
            if state.engine.0 == EngineState::EntryPending {
                out.transition(
                    as_of_ms,
                    &symbol,
                    EngineState::EntryPending,
                    EngineState::PositionOpen,
                    "entry filled",
                    seq,
                );
            }
            return Ok(());
        }
        if !state.position.quantity.is_zero() {
            return Ok(());
        }
        // The position is flat: the one finalize-exit path for every exit kind.
        self.finalize_exit(projection, &symbol, seq, fill, as_of_ms, out)
    }

    fn finalize_exit(
        &mut self,
        projection: &Projection,
        symbol: &str,
        exit_fill_seq: Seq,
        fill: &Fill,
        as_of_ms: UnixMs,
        out: &mut Out,
    ) -> EngineResult {
        let state = symbol_state(projection, exit_fill_seq, symbol)?;
        let trade = state.open_trade.clone().ok_or_else(|| {
            EngineError::new(exit_fill_seq, EngineFault::NoOpenTrade, symbol.to_string())
        })?;
        let memory = self.memory(symbol);
        let remembered = Remembered {
            initial_stop: memory.bracket.as_ref().map(|b| b.stop_trigger),
            slippage: memory.slippage,
            exit_reason: memory.exit_reasons.get(&fill.client_order_id).copied(),
        };
        let engine_state = state.engine.0;
        if engine_state == EngineState::PositionOpen {
            out.transition(
                as_of_ms,
                symbol,
                EngineState::PositionOpen,
                EngineState::Reconcile,
                "exit detected",
                exit_fill_seq,
            );
        }
        let exit = ExitFill {
            seq: exit_fill_seq,
            leg: fill.leg,
            as_of_ms,
        };
        let closed = self.closed_trade(projection, symbol, &trade, exit, remembered);
        let closed_seq = out.push(as_of_ms, closed.into());
        if engine_state != EngineState::FailClosed {
            out.transition(
                as_of_ms,
                symbol,
                EngineState::Reconcile,
                EngineState::Idle,
                "trade finalized",
                closed_seq,
            );
        }
        Ok(())
    }

    /// The closed trade's record: prices from the fills, costs attributed by
    /// the one cost model, the exit reason from the leg or the exit decision.
    fn closed_trade(
        &self,
        projection: &Projection,
        symbol: &str,
        trade: &crate::model::OpenTrade,
        exit: ExitFill,
        remembered: Remembered,
    ) -> TradeClosed {
        let links = projection
            .links
            .orders
            .get(&trade.entry_client_order_id)
            .cloned()
            .unwrap_or_default();
        let exit_reason = match exit.leg {
            FillLeg::TakeProfit => ExitReason::TakeProfit,
            FillLeg::StopLoss => ExitReason::StopLoss,
            _ => remembered.exit_reason.unwrap_or(ExitReason::Manual),
        };
        let size = trade.bought;
        let entry_price = (trade.buy_notional / size).round_dp(8);
        let initial_stop = remembered.initial_stop.unwrap_or(entry_price);
        let attribution = CostModel::new(&self.config).attribute(&cost::TradeFlows {
            buy_notional: trade.buy_notional,
            sell_notional: trade.sell_notional,
            fees: trade.fees,
            slippage: remembered.slippage,
            size,
            entry_price,
            initial_stop,
        });
        TradeClosed {
            trade_id: order::trade_id(symbol, trade.opened_ms),
            symbol: symbol.to_string(),
            entry_client_order_id: trade.entry_client_order_id.clone(),
            entry_order_seq: links.order_seq,
            entry_fill_seq: links.first_fill_seq.unwrap_or(exit.seq),
            exit_fill_seq: exit.seq,
            entry_ms: trade.opened_ms,
            exit_ms: exit.as_of_ms,
            entry_price,
            exit_price: (trade.sell_notional / size).round_dp(8),
            size,
            initial_stop,
            exit_reason,
            fees: attribution.fees,
            slippage: attribution.slippage,
            gross_pnl: attribution.gross,
            net_pnl: attribution.net,
            theoretical_r: attribution.theoretical_r,
            realized_r: attribution.realized_r,
        }
    }

    /// An order ended (cancelled or rejected): an entry that ended unfilled
    /// takes its symbol back to IDLE – or, rejected for any reason but a
    /// post-only cross, to FAIL_CLOSED.
    fn on_order_ended(&self, projection: &Projection, e: Ended, out: &mut Out) -> EngineResult {
        let state = symbol_state(projection, e.seq, e.symbol)?;
        let ended_entry = state.engine.0 == EngineState::EntryPending
            && state.in_flight.is_none()
            && state.position.quantity.is_zero()
            && self.symbols.get(e.symbol).is_none_or(|m| {
                m.bracket
                    .as_ref()
                    .is_none_or(|b| b.client_order_id == e.client_order_id)
            });
        if !ended_entry {
            return Ok(());
        }
        match e.rejected {
            // A post-only limit the price moved through: nothing is wrong with
            // the account or the order; the entry simply did not happen.
            None | Some(order::POST_ONLY_CROSS) => {
                let (from, to) = (EngineState::EntryPending, EngineState::Idle);
                let why = "entry ended unfilled";
                out.transition(e.as_of_ms, e.symbol, from, to, why, e.seq);
                if e.rejected.is_some() {
                    self.reprice_entry(projection, e, out)?;
                }
            }
            // Any other rejection (funds, permissions, a malformed order …)
            // means the next entry would fail the same way: fail closed with
            // the broker's reason until an operator has looked (seed §2.4).
            Some(reason) => {
                let fail_seq = out.push(
                    e.as_of_ms,
                    FailClosed {
                        symbol: e.symbol.to_string(),
                        cause_seq: e.seq,
                        reason: format!("entry {} rejected: {reason}", e.client_order_id),
                    }
                    .into(),
                );
                let (from, to) = (EngineState::EntryPending, EngineState::FailClosed);
                out.transition(e.as_of_ms, e.symbol, from, to, "entry rejected", fail_seq);
            }
        }
        Ok(())
    }

    /// A crossed post-only entry placed again, one quote increment below the
    /// last close (which stands in for the best ask: the engine sees no book),
    /// while re-pricings are left; the retry is its own Decision – the same
    /// glass box, its risk checks run again at the new price.
    fn reprice_entry(&self, projection: &Projection, e: Ended, out: &mut Out) -> EngineResult {
        let memory = self
            .symbols
            .get(e.symbol)
            .ok_or_else(|| EngineError::new(e.seq, EngineFault::NoMemory, e.symbol.to_string()))?;
        let retries_left = memory.reprices < self.config.orders.post_only_retries_max;
        let Some(retry) = self
            .repriced(projection, memory, e)
            .filter(|_| retries_left)
        else {
            // Nothing to re-price (or no retries left): given up, IDLE above.
            return Ok(());
        };
        let Retry {
            mut decision,
            prices,
            spec,
            signal,
            rule,
        } = retry;
        decision.candle_seq = last_candle(projection, e.seq, e.symbol)?;
        let ctx = self.risk_context(projection, e.symbol, memory, &spec, rule, e.as_of_ms);
        let verdict = risk::evaluate(&ctx, prices.entry, prices.stop, prices.take_profit);
        let checks = &mut glass_mut(&mut decision).risk_checks;
        checks.push(prices.selected_check(&signal));
        checks.extend(verdict.checks);
        decision.sizing = verdict.sizing.clone();
        if let Some(code) = verdict.rejected {
            reject(decision, code.code(), None, e.as_of_ms, out);
            return Ok(());
        }
        let quantity = verdict.sizing.map(|s| s.quantity).unwrap_or_default();
        self.place_entry(decision, &spec, prices, quantity, e.as_of_ms, out);
        Ok(())
    }

    /// The re-priced retry of the newest entry decision, if one can be made:
    /// its signal's prices with the entry one quote increment below the last
    /// close (and never above the original), still above the stop.
    fn repriced(&self, projection: &Projection, memory: &SymbolMemory, e: Ended) -> Option<Retry> {
        let original = memory.entry_decision.as_ref()?;
        let spec = self.config.product(e.symbol).copied()?;
        let close = projection.state.symbols.get(e.symbol)?.last_close?;
        if projection.state.halted.is_some() {
            return None;
        }
        let regime = Regime::from_name(&original.glass.full()?.regime);
        let (signal, rule) = self.select_signal(original, regime)?;
        let prices = rounded_prices(&signal, &spec).ok()?;
        let entry = product::entry_limit(close - spec.quote_increment, &spec).min(prices.entry);
        if entry <= prices.stop {
            return None;
        }
        let check = RiskCheck {
            code: risk::ReasonCode::PostOnlyReprice.text(),
            passed: true,
            detail: anx_journal::compact_str::format_compact!(
                "{} crossed the book ({}); re-priced to {entry}, retry {} of {}",
                e.client_order_id,
                order::POST_ONLY_CROSS,
                memory.reprices + 1,
                self.config.orders.post_only_retries_max
            ),
        };
        // The original as journaled: a schema-2 record declares no config
        // hash, which this decision (and its client order id) carries.
        let mut decision = Decision {
            as_of_ms: e.as_of_ms,
            sizing: None,
            outcome: DecisionOutcome::Hold,
            config_hash: Some(self.config_hash),
            ..original.clone()
        };
        glass_mut(&mut decision).risk_checks = vec![check];
        let rule = EntryRule {
            regime,
            allows: regime_allows(rule, &signal.name),
            size_multiplier: rule.map_or(Decimal::ZERO, |r| r.size_multiplier),
        };
        let prices = EntryPrices { entry, ..prices };
        Some(Retry {
            decision,
            prices,
            spec,
            signal: signal.name.to_string(),
            rule,
        })
    }

    /// An operator's reset: a fail-closed engine state goes back to IDLE when
    /// nothing is open (a reset of a reconciliation's fail-closed flag alone
    /// moves nothing).
    fn on_operator_reset(
        &self,
        projection: &Projection,
        seq: Seq,
        symbol: &str,
        as_of_ms: UnixMs,
        out: &mut Out,
    ) -> EngineResult {
        let state = symbol_state(projection, seq, symbol)?;
        let nothing_open = crate::fold::reset_refusal(projection, symbol).is_none();
        if state.engine.0 == EngineState::FailClosed && nothing_open {
            let (from, to) = (EngineState::FailClosed, EngineState::Idle);
            out.transition(as_of_ms, symbol, from, to, "operator reset", seq);
        }
        Ok(())
    }

    /// An operator's exit: a Decision to exit (reason manual, the operator's
    /// words in its glass box) and its market SELL, as any exit.
    fn on_operator_exit(
        &self,
        projection: &Projection,
        seq: Seq,
        action: &OperatorAction,
        as_of_ms: UnixMs,
        out: &mut Out,
    ) -> EngineResult {
        let symbol = action.symbol.as_str();
        let state = symbol_state(projection, seq, symbol)?;
        // The fold took the action: the symbol holds a position, decided on a candle.
        let candle_seq = last_candle(projection, seq, symbol)?;
        let check = RiskCheck {
            code: risk::ReasonCode::OperatorExit.text(),
            passed: false,
            detail: anx_journal::compact_str::format_compact!(
                "exit asked by {} (seq {seq}): {}",
                action.operator,
                action.reason
            ),
        };
        let decision = self.exit_decision(symbol, candle_seq, as_of_ms, ExitReason::Manual, check);
        self.place_exit(symbol, state.position.quantity, decision, as_of_ms, out);
        Ok(())
    }

    fn on_unprotected(
        &mut self,
        projection: &Projection,
        u: Unprotected,
        out: &mut Out,
    ) -> EngineResult {
        let Unprotected {
            seq,
            symbol,
            client_order_id,
            reason,
            as_of_ms,
        } = u;
        let state = symbol_state(projection, seq, symbol)?;
        // The broker's `BracketUnconfirmed` (journaled at `seq`) is the cause;
        // a symbol already fail-closed (an answer repeated, or one after the
        // deadline fired) is not failed again.
        if state.fail_closed.is_none() {
            fail_unprotected(projection, state, u, out);
        }
        // One exit at a time: a position whose exit works is being closed.
        if !state.position.quantity.is_zero() && !exit_pending(projection, state) {
            // A position comes from an entry decided on a candle: one is there.
            let candle_seq = last_candle(projection, seq, symbol)?;
            let check = RiskCheck {
                code: risk::ReasonCode::Protection.text(),
                passed: false,
                detail: anx_journal::compact_str::format_compact!(
                    "bracket of {client_order_id} not confirmed: {reason}"
                ),
            };
            let decision =
                self.exit_decision(symbol, candle_seq, as_of_ms, ExitReason::Emergency, check);
            self.place_exit(symbol, state.position.quantity, decision, as_of_ms, out);
        }
        Ok(())
    }

    /// A Decision to exit for `reason`, outside a candle's glass box (no
    /// indicators or signals: it reads the newest candle, and `check` says why).
    fn exit_decision(
        &self,
        symbol: &str,
        candle_seq: Seq,
        as_of_ms: UnixMs,
        reason: ExitReason,
        check: RiskCheck,
    ) -> Decision {
        Decision {
            symbol: symbol.to_string(),
            as_of_ms,
            candle_seq,
            glass: Glass::Full(GlassBox {
                regime: "unknown".into(),
                indicators: Vec::new(),
                signals: Vec::new(),
                risk_checks: vec![check],
            }),
            sizing: None,
            outcome: DecisionOutcome::Exit { reason },
            config_hash: Some(self.config_hash),
        }
    }
}

/// A crossed post-only entry's re-priced retry, before its risk checks.
struct Retry {
    decision: Decision,
    prices: EntryPrices,
    spec: config::ProductSpec,
    signal: String,
    rule: EntryRule,
}

/// What the engine remembers of an open trade when it closes.
#[derive(Clone, Copy)]
struct Remembered {
    initial_stop: Option<Decimal>,
    slippage: Decimal,
    exit_reason: Option<ExitReason>,
}

/// The fill that flattened a position.
#[derive(Clone, Copy)]
struct ExitFill {
    seq: Seq,
    leg: FillLeg,
    as_of_ms: UnixMs,
}

/// What working entries will take from a pot (see [`Engine::reserved`]).
#[derive(Clone, Copy, Default)]
struct Reserved {
    notional: Decimal,
    cash: Decimal,
}

/// Protection the broker could not confirm, as the engine reacts to it.
#[derive(Clone, Copy)]
struct Unprotected<'a> {
    seq: Seq,
    symbol: &'a str,
    client_order_id: &'a str,
    reason: &'a str,
    as_of_ms: UnixMs,
}

/// An order that ended, as the engine reacts to it.
#[derive(Clone, Copy)]
struct Ended<'a> {
    seq: Seq,
    symbol: &'a str,
    client_order_id: &'a str,
    rejected: Option<&'a str>,
    as_of_ms: UnixMs,
}

/// The rejection of every entry while an operator's halt holds.
fn halted(projection: &Projection) -> Option<(&'static str, RiskCheck)> {
    let halt = projection.state.halted.as_ref()?;
    let check = RiskCheck {
        code: risk::ReasonCode::OperatorHalt.text(),
        passed: false,
        detail: anx_journal::compact_str::format_compact!(
            "entries halted by {} (seq {}): {}",
            halt.operator,
            halt.seq,
            halt.reason
        ),
    };
    Some((risk::ReasonCode::OperatorHalt.code(), check))
}

/// The rejection of a signal whose prices cannot make an entry.
fn invalid_signal(signal: &SignalOutput) -> Option<(&'static str, RiskCheck)> {
    let code = signals::invalid_reason(signal)?;
    let check = RiskCheck {
        code: code.into(),
        passed: false,
        detail: anx_journal::compact_str::format_compact!(
            "signal {}: entry {:?} stop {:?} take-profit {:?}",
            signal.name,
            signal.entry,
            signal.stop,
            signal.take_profit
        ),
    };
    Some((code, check))
}

/// An entry's prices, rounded to the product's increments.
#[derive(Clone, Copy)]
struct EntryPrices {
    entry: Decimal,
    stop: Decimal,
    take_profit: Decimal,
}

impl EntryPrices {
    /// Which fired signal the entry is built on, and its rounded prices.
    fn selected_check(&self, signal: &str) -> RiskCheck {
        let EntryPrices {
            entry,
            stop,
            take_profit,
        } = self;
        RiskCheck {
            code: risk::ReasonCode::SignalSelected.text(),
            passed: true,
            detail: anx_journal::compact_str::format_compact!("{signal}: entry {entry}, stop trigger {stop}, take-profit {take_profit} (rounded to the product's increments)"),
        }
    }
}

/// The signal's prices rounded to the product's increments (each in the
/// direction that cannot make the trade riskier), or the failed check when
/// rounding leaves them out of order.
fn rounded_prices(
    signal: &SignalOutput,
    spec: &config::ProductSpec,
) -> Result<EntryPrices, RiskCheck> {
    let entry = product::entry_limit(signal.entry.unwrap_or_default(), spec);
    let stop = product::stop_trigger(signal.stop.unwrap_or_default(), spec);
    let take_profit = product::take_profit_limit(signal.take_profit.unwrap_or_default(), spec);
    if stop < entry && entry < take_profit {
        return Ok(EntryPrices {
            entry,
            stop,
            take_profit,
        });
    }
    Err(RiskCheck {
        code: risk::ReasonCode::SignalRounding.text(),
        passed: false,
        detail: anx_journal::compact_str::format_compact!(
            "after rounding: stop {stop} entry {entry} take-profit {take_profit}"
        ),
    })
}

/// What the regime says of an entry.
#[derive(Clone, Copy)]
struct EntryRule {
    regime: Regime,
    allows: bool,
    size_multiplier: Decimal,
}

fn regime_allows(rule: Option<&config::RegimeRule>, signal: &str) -> bool {
    rule.is_some_and(|r| r.allowed_signals.iter().any(|a| a == signal))
}

/// The glass box of a decision the engine is making. Whole by construction:
/// the engine built it, or (re-pricing) copied an entry decision's, which
/// every schema keeps whole (`repriced` checks).
fn glass_mut(decision: &mut Decision) -> &mut GlassBox {
    decision
        .glass
        .full_mut()
        .expect("a decision the engine makes has its whole glass box")
}

/// A Decision rejected with `code` (and the failed check that says why).
fn reject(
    mut decision: Decision,
    code: &'static str,
    check: Option<RiskCheck>,
    as_of_ms: UnixMs,
    out: &mut Out,
) {
    glass_mut(&mut decision).risk_checks.extend(check);
    decision.outcome = DecisionOutcome::Rejected {
        reason_code: code.into(),
    };
    out.push(as_of_ms, decision.into());
}

/// Whether an exit order of the open trade is still working.
fn exit_pending(projection: &Projection, state: &crate::model::SymbolState) -> bool {
    state.open_trade.as_ref().is_some_and(|t| {
        t.exit_orders.iter().any(|id| {
            projection
                .state
                .orders
                .get(id)
                .is_some_and(crate::model::OrderState::is_open)
        })
    })
}

/// The projected state of an input's symbol.
fn symbol_state<'p>(
    projection: &'p Projection,
    seq: Seq,
    symbol: &str,
) -> EngineResult<&'p crate::model::SymbolState> {
    projection
        .state
        .symbols
        .get(symbol)
        .ok_or_else(|| EngineError::new(seq, EngineFault::UnknownSymbol, symbol.to_string()))
}

/// A symbol whose entry's protection is not confirmed fails closed: the
/// `FailClosed` (caused by `u.seq`), the move to FAIL_CLOSED, and the
/// withdrawal of the entry if it has not filled. (Closing a position is the
/// caller's: inside a candle's step, its one Decision is that exit.)
fn fail_unprotected(
    projection: &Projection,
    state: &crate::model::SymbolState,
    u: Unprotected,
    out: &mut Out,
) {
    let fail = FailClosed {
        symbol: u.symbol.to_string(),
        cause_seq: u.seq,
        reason: u.reason.to_string(),
    };
    let fail_seq = out.push(u.as_of_ms, fail.into());
    let from = state.engine.0;
    if matches!(
        from,
        EngineState::EntryPending | EngineState::PositionOpen | EngineState::Reconcile
    ) {
        let why = "protection not confirmed";
        out.transition(
            u.as_of_ms,
            u.symbol,
            from,
            EngineState::FailClosed,
            why,
            fail_seq,
        );
    }
    let order_seq = projection
        .links
        .orders
        .get(u.client_order_id)
        .map(|l| l.order_seq);
    if let Some(order_seq) = order_seq {
        withdraw_unfilled_entry(projection, u.client_order_id, order_seq, u.as_of_ms, out);
    }
}

/// Asks the broker to cancel an unprotected entry that has not filled: it
/// must not fill bare.
fn withdraw_unfilled_entry(
    projection: &Projection,
    client_order_id: &str,
    order_seq: Seq,
    as_of_ms: UnixMs,
    out: &mut Out,
) {
    let unfilled = projection
        .state
        .orders
        .get(client_order_id)
        .is_some_and(|o| o.purpose == OrderPurpose::Entry && o.is_open() && o.filled.is_zero());
    if unfilled {
        let cancel = CancelRequested {
            client_order_id: client_order_id.to_string(),
            order_seq,
            reason: "protection not confirmed".into(),
        };
        out.push(as_of_ms, cancel.into());
    }
}

/// The newest candle of `symbol`: what a decision outside a candle's step reads.
fn last_candle(projection: &Projection, seq: Seq, symbol: &str) -> EngineResult<Seq> {
    projection
        .links
        .last_candle
        .get(symbol)
        .copied()
        .ok_or_else(|| EngineError::new(seq, EngineFault::NoCandle, symbol.to_string()))
}

/// The projected order an input names.
fn order_of<'p>(
    projection: &'p Projection,
    seq: Seq,
    client_order_id: &str,
) -> EngineResult<&'p crate::model::OrderState> {
    projection.state.orders.get(client_order_id).ok_or_else(|| {
        EngineError::new(seq, EngineFault::UnknownOrder, client_order_id.to_string())
    })
}

/// Events being produced, with the seqs they will get.
struct Out {
    next_seq: Seq,
    events: Vec<(UnixMs, Event)>,
}

impl Out {
    fn push(&mut self, market_ms: UnixMs, event: Event) -> Seq {
        let seq = self.next_seq;
        self.events.push((market_ms, event));
        self.next_seq += 1;
        seq
    }

    fn transition(
        &mut self,
        market_ms: UnixMs,
        symbol: &str,
        from: EngineState,
        to: EngineState,
        reason: &str,
        cause_seq: Seq,
    ) {
        self.push(
            market_ms,
            EngineTransition {
                symbol: symbol.to_string(),
                from,
                to,
                reason: reason.to_string(),
                cause_seq,
            }
            .into(),
        );
    }
}
