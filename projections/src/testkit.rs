//! Builds valid event sequences – whole trades through every state of the engine
//! state machine – for tests, fixture journals and benchmarks. Every event is
//! folded as it is built, so a scenario that breaks a rule fails at once, and
//! checkpoints carry the real state hash.
//!
//! This is test support: production events come from the engine.

use crate::fold::Projection;
use anx_journal::*;
use rust_decimal::Decimal;

/// How a scripted trade ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    TakeProfit,
    StopLoss,
    /// An exit order placed by a decision (`signal`, `manual` or `emergency`).
    Order(ExitReason),
}

/// Fee rates used by scripted fills (basis points of notional).
const MAKER_FEE_BPS: i64 = 40;
const TAKER_FEE_BPS: i64 = 60;

/// A scenario under construction: the events so far and their fold.
pub struct Scenario {
    pub events: Vec<(UnixMs, Event)>,
    pub projection: Projection,
    granularity_ms: i64,
    now_ms: UnixMs,
    config_hash: Hash32,
    run_id: String,
    order_counter: u64,
}

fn fee(notional: Decimal, bps: i64) -> Decimal {
    (notional * Decimal::new(bps, 4)).round_dp(8)
}

impl Scenario {
    /// Starts a run on `symbols` with `capital` (per symbol or shared).
    pub fn new(
        symbols: &[&str],
        capital_mode: CapitalMode,
        capital: Decimal,
        start_ms: UnixMs,
    ) -> Scenario {
        let mut scenario = Scenario {
            events: Vec::new(),
            projection: Projection::new(),
            granularity_ms: 4 * 3_600_000,
            now_ms: start_ms,
            config_hash: Hash32::from(blake3::hash(b"testkit config")),
            run_id: "testkit1".into(),
            order_counter: 0,
        };
        let config_hash = scenario.config_hash;
        scenario.push(
            start_ms,
            RunStarted {
                run_id: scenario.run_id.clone(),
                run_mode: RunMode::ReplayBacktest,
                capital_mode,
                market_time_basis: MarketTimeBasis::CandleTimestamp,
                data_integrity: DataIntegrity::Ok,
                created_by: "testkit".into(),
                git_sha: "testkit".into(),
                config_hash,
                config_text: "# testkit\n".into(),
                symbols: symbols.iter().map(|s| s.to_string()).collect(),
                granularity_s: 14_400,
                start_ms,
                end_ms: None,
                starting_capital: capital,
            }
            .into(),
        );
        scenario
    }

    /// The seq the next event gets.
    pub fn next_seq(&self) -> Seq {
        self.projection.seq() + 1
    }

    /// Takes the events built so far (for streaming long scenarios to disk).
    pub fn drain(&mut self) -> Vec<(UnixMs, Event)> {
        std::mem::take(&mut self.events)
    }

    /// Appends and folds one event; panics (naming the rule) if the fold refuses it.
    pub fn push(&mut self, market_ms: UnixMs, event: Event) -> Seq {
        let seq = self.next_seq();
        if let Err(error) = self.projection.apply(seq, market_ms, &event) {
            panic!("testkit built an invalid event: {error}\n{event:?}");
        }
        self.events.push((market_ms, event));
        seq
    }

    /// A closed candle for `symbol` around `close`; advances market time one bar.
    pub fn candle(&mut self, symbol: &str, close: Decimal) -> Seq {
        let open_ms = self.now_ms;
        self.now_ms += self.granularity_ms;
        let spread = (close / Decimal::from(100)).round_dp(2);
        let candle = Candle {
            symbol: symbol.into(),
            granularity_s: (self.granularity_ms / 1000) as u32,
            open_ms,
            open: close,
            high: close + spread,
            low: close - spread,
            close,
            volume: Decimal::new(1234, 2),
        };
        self.push(self.now_ms, candle.into())
    }

    /// A candle for `symbol` at the same market time as the previous one (for
    /// several symbols per bar).
    pub fn candle_same_bar(&mut self, symbol: &str, close: Decimal) -> Seq {
        self.now_ms -= self.granularity_ms;
        self.candle(symbol, close)
    }

    pub fn quality(&mut self, symbol: &str, issue: QualityIssue) -> Seq {
        let event = DataQuality {
            symbol: symbol.into(),
            granularity_s: 14_400,
            issue,
            source: "testkit".into(),
            detail: String::new(),
        };
        self.push(self.now_ms, event.into())
    }

    /// A decision on the newest candle of `symbol`.
    pub fn decision(
        &mut self,
        symbol: &str,
        outcome: DecisionOutcome,
        sizing: Option<Sizing>,
    ) -> Seq {
        let candle_seq = self.projection.links.last_candle[symbol];
        let event = Decision {
            symbol: symbol.into(),
            as_of_ms: self.now_ms,
            candle_seq,
            glass: Glass::Full(GlassBox {
                regime: "trend".into(),
                indicators: vec![Indicator {
                    name: "atr".into(),
                    value: Some(Decimal::new(15, 1)),
                }],
                signals: vec![SignalOutput {
                    name: "breakout".into(),
                    fired: outcome == DecisionOutcome::Enter,
                    strength: Decimal::new(7, 1),
                    confidence: Decimal::new(6, 1),
                    entry: None,
                    stop: None,
                    take_profit: None,
                    note: Default::default(),
                }],
                risk_checks: vec![RiskCheck {
                    code: "min_notional".into(),
                    passed: true,
                    detail: Default::default(),
                }],
            }),
            sizing,
            outcome,
            config_hash: Some(self.config_hash),
        };
        self.push(self.now_ms, event.into())
    }

    fn next_client_order_id(&mut self, symbol: &str) -> String {
        self.order_counter += 1;
        format!(
            "ANX4_{}_{}_{:06}",
            self.run_id,
            symbol.replace('-', ""),
            self.order_counter
        )
    }

    fn transition(
        &mut self,
        symbol: &str,
        from: EngineState,
        to: EngineState,
        reason: &str,
        cause_seq: Seq,
    ) {
        let event = EngineTransition {
            symbol: symbol.into(),
            from,
            to,
            reason: reason.into(),
            cause_seq,
        };
        self.push(self.now_ms, event.into());
    }

    /// Decision to enter, bracket entry at `entry` with `stop` and `take_profit`,
    /// acknowledged and verified: the symbol ends ENTRY_PENDING. Returns the
    /// client order id and the order's seq.
    pub fn place_entry(
        &mut self,
        symbol: &str,
        entry: Decimal,
        stop: Decimal,
        take_profit: Decimal,
        size: Decimal,
    ) -> (String, Seq) {
        let decision_seq = self.decision(
            symbol,
            DecisionOutcome::Enter,
            Some(sizing(entry, stop, size)),
        );
        let client_order_id = self.next_client_order_id(symbol);
        let order = OrderPlaced {
            client_order_id: client_order_id.clone(),
            decision_seq,
            product_id: symbol.into(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            purpose: OrderPurpose::Entry,
            limit_price: Some(entry),
            stop_trigger: None,
            base_size: size,
            post_only: false,
            bracket: Some(BracketLegs {
                take_profit_limit: take_profit,
                stop_trigger: stop,
                stop_limit: (stop * Decimal::new(95, 2)).round_dp(2),
            }),
            payload: String::new(),
        };
        let order_seq = self.push(self.now_ms, order.into());
        self.transition(
            symbol,
            EngineState::Idle,
            EngineState::EntryPending,
            "bracket entry placed",
            order_seq,
        );
        self.push(
            self.now_ms,
            OrderAcknowledged {
                client_order_id: client_order_id.clone(),
                order_seq,
                exchange_order_id: format!("x-{client_order_id}"),
            }
            .into(),
        );
        (client_order_id, order_seq)
    }

    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        client_order_id: &str,
        order_seq: Seq,
        leg: FillLeg,
        side: Side,
        price: Decimal,
        size: Decimal,
        maker: bool,
    ) -> (Seq, Decimal) {
        let fee = fee(
            price * size,
            if maker { MAKER_FEE_BPS } else { TAKER_FEE_BPS },
        );
        let event = Fill {
            client_order_id: client_order_id.into(),
            order_seq,
            fill_id: format!("f{}", self.next_seq()),
            leg,
            side,
            price,
            size,
            fee,
            liquidity: if maker {
                Liquidity::Maker
            } else {
                Liquidity::Taker
            },
        };
        (self.push(self.now_ms, event.into()), fee)
    }

    /// A whole trade: entry decision, bracket order, ack, bracket verification,
    /// entry fill, `bars_held` candles at `hold_close`, the exit and its
    /// finalization. Returns the trade id.
    #[allow(clippy::too_many_arguments)]
    pub fn trade(
        &mut self,
        symbol: &str,
        entry: Decimal,
        stop: Decimal,
        take_profit: Decimal,
        size: Decimal,
        exit: Exit,
        exit_price: Decimal,
        bars_held: u32,
    ) -> String {
        let (coid, order_seq, entry_fill_seq, entry_fee) =
            self.protected_entry(symbol, entry, stop, take_profit, size);
        let entry_ms = self.now_ms;
        for _ in 0..bars_held {
            self.candle(symbol, exit_price);
        }
        let (exit_fill_seq, exit_fee, reason) =
            self.exit_fill(symbol, &coid, order_seq, exit, exit_price, size);
        self.transition(
            symbol,
            EngineState::PositionOpen,
            EngineState::Reconcile,
            "exit detected",
            exit_fill_seq,
        );
        let trade_id = crate::engine::order::trade_id(symbol, entry_ms);
        let close = TradeClosed {
            trade_id: trade_id.clone(),
            symbol: symbol.into(),
            entry_client_order_id: coid,
            entry_order_seq: order_seq,
            entry_fill_seq,
            exit_fill_seq,
            entry_ms,
            exit_ms: self.now_ms,
            entry_price: entry,
            exit_price,
            size,
            initial_stop: stop,
            exit_reason: reason,
            fees: entry_fee + exit_fee,
            slippage: Decimal::ZERO,
            gross_pnl: Decimal::ZERO,
            net_pnl: Decimal::ZERO,
            theoretical_r: Decimal::ZERO,
            realized_r: Decimal::ZERO,
        };
        let close = with_pnl(close);
        let closed_seq = self.push(self.now_ms, close.into());
        self.transition(
            symbol,
            EngineState::Reconcile,
            EngineState::Idle,
            "trade finalized",
            closed_seq,
        );
        trade_id
    }

    /// A bracketed entry placed, its protection verified, a candle and the
    /// entry's fill (ENTRY_PENDING → POSITION_OPEN). Returns the entry's
    /// client order id, order seq, fill seq and fee.
    fn protected_entry(
        &mut self,
        symbol: &str,
        entry: Decimal,
        stop: Decimal,
        take_profit: Decimal,
        size: Decimal,
    ) -> (String, Seq, Seq, Decimal) {
        let (coid, order_seq) = self.place_entry(symbol, entry, stop, take_profit, size);
        self.push(
            self.now_ms,
            BracketVerified {
                client_order_id: coid.clone(),
                order_seq,
                take_profit_order_id: format!("x-{coid}-tp"),
                stop_order_id: format!("x-{coid}-sl"),
            }
            .into(),
        );
        self.candle(symbol, entry);
        let (entry_fill_seq, entry_fee) = self.fill(
            &coid,
            order_seq,
            FillLeg::Entry,
            Side::Buy,
            entry,
            size,
            true,
        );
        self.transition(
            symbol,
            EngineState::EntryPending,
            EngineState::PositionOpen,
            "entry filled",
            entry_fill_seq,
        );
        (coid, order_seq, entry_fill_seq, entry_fee)
    }

    /// The fill that ends a trade: a bracket leg, or a market exit order
    /// placed on an exit decision. Returns its seq, fee and exit reason.
    fn exit_fill(
        &mut self,
        symbol: &str,
        coid: &str,
        order_seq: Seq,
        exit: Exit,
        exit_price: Decimal,
        size: Decimal,
    ) -> (Seq, Decimal, ExitReason) {
        match exit {
            Exit::TakeProfit => {
                let (seq, fee) = self.fill(
                    coid,
                    order_seq,
                    FillLeg::TakeProfit,
                    Side::Sell,
                    exit_price,
                    size,
                    true,
                );
                (seq, fee, ExitReason::TakeProfit)
            }
            Exit::StopLoss => {
                let (seq, fee) = self.fill(
                    coid,
                    order_seq,
                    FillLeg::StopLoss,
                    Side::Sell,
                    exit_price,
                    size,
                    false,
                );
                (seq, fee, ExitReason::StopLoss)
            }
            Exit::Order(reason) => {
                let decision_seq = self.decision(symbol, DecisionOutcome::Exit { reason }, None);
                let exit_coid = self.next_client_order_id(symbol);
                let exit_seq = self.push(
                    self.now_ms,
                    OrderPlaced {
                        client_order_id: exit_coid.clone(),
                        decision_seq,
                        product_id: symbol.into(),
                        side: Side::Sell,
                        order_type: OrderType::Market,
                        purpose: OrderPurpose::Exit,
                        limit_price: None,
                        stop_trigger: None,
                        base_size: size,
                        post_only: false,
                        bracket: None,
                        payload: String::new(),
                    }
                    .into(),
                );
                let (seq, fee) = self.fill(
                    &exit_coid,
                    exit_seq,
                    FillLeg::Exit,
                    Side::Sell,
                    exit_price,
                    size,
                    false,
                );
                (seq, fee, reason)
            }
        }
    }

    /// An entry that is cancelled before it fills (ENTRY_PENDING → IDLE).
    pub fn cancelled_entry(&mut self, symbol: &str, entry: Decimal, size: Decimal) {
        let (coid, order_seq) = self.place_entry(
            symbol,
            entry,
            entry * Decimal::new(95, 2),
            entry * Decimal::new(110, 2),
            size,
        );
        let seq = self.push(
            self.now_ms,
            OrderCancelled {
                client_order_id: coid,
                order_seq,
                reason: "time to live expired".into(),
            }
            .into(),
        );
        self.transition(
            symbol,
            EngineState::EntryPending,
            EngineState::Idle,
            "entry cancelled",
            seq,
        );
    }

    /// An entry whose protection cannot be confirmed: FAIL_CLOSED, the entry is
    /// cancelled, and an operator resets the symbol (FAIL_CLOSED → IDLE).
    pub fn fail_closed_entry(&mut self, symbol: &str, entry: Decimal, size: Decimal) {
        let (coid, order_seq) = self.place_entry(
            symbol,
            entry,
            entry * Decimal::new(95, 2),
            entry * Decimal::new(110, 2),
            size,
        );
        let seq = self.push(
            self.now_ms,
            FailClosed {
                symbol: symbol.into(),
                cause_seq: order_seq,
                reason: "bracket legs not confirmed".into(),
            }
            .into(),
        );
        self.transition(
            symbol,
            EngineState::EntryPending,
            EngineState::FailClosed,
            "protection unverified",
            seq,
        );
        self.push(
            self.now_ms,
            OrderCancelled {
                client_order_id: coid,
                order_seq,
                reason: "fail-closed".into(),
            }
            .into(),
        );
        let reset = self.push(
            self.now_ms,
            OperatorReset {
                symbol: symbol.into(),
                operator: "ops".into(),
                reason: "checked at the exchange".into(),
            }
            .into(),
        );
        self.transition(
            symbol,
            EngineState::FailClosed,
            EngineState::Idle,
            "operator reset",
            reset,
        );
    }

    /// An entry rejected by the broker (ENTRY_PENDING → IDLE).
    pub fn rejected_entry(&mut self, symbol: &str, entry: Decimal, size: Decimal) {
        let (coid, order_seq) = self.place_entry(
            symbol,
            entry,
            entry * Decimal::new(95, 2),
            entry * Decimal::new(110, 2),
            size,
        );
        let seq = self.push(
            self.now_ms,
            OrderRejected {
                client_order_id: coid,
                order_seq,
                reason: "INSUFFICIENT_FUND".into(),
            }
            .into(),
        );
        self.transition(
            symbol,
            EngineState::EntryPending,
            EngineState::Idle,
            "entry rejected",
            seq,
        );
    }

    /// A checkpoint carrying the fold's state hash.
    pub fn checkpoint(&mut self) -> Seq {
        let event = self.projection.checkpoint();
        self.push(self.now_ms, event.into())
    }

    /// Ends the run and writes a final checkpoint.
    pub fn finish(mut self) -> Vec<(UnixMs, Event)> {
        let event = RunCompleted {
            run_id: self.run_id.clone(),
            end_ms: self.now_ms,
            candles: self.projection.state.run.as_ref().map_or(0, |r| r.candles),
            reason: "end of data".into(),
        };
        self.push(self.now_ms, event.into());
        self.checkpoint();
        self.events
    }

    pub fn now_ms(&self) -> UnixMs {
        self.now_ms
    }
}

fn sizing(entry: Decimal, stop: Decimal, quantity: Decimal) -> Sizing {
    let worst = (stop * Decimal::new(95, 2)).round_dp(2);
    Sizing {
        capital: Decimal::from(500),
        risk_fraction: Decimal::new(1, 2),
        risk_budget: Decimal::from(5),
        entry,
        stop_trigger: stop,
        worst_case_fill: worst,
        risk_per_unit: entry - worst,
        quantity_raw: quantity,
        quantity,
        notional: entry * quantity,
        multiplier: Decimal::ONE,
    }
}

/// The fixture scenario: every engine state transition and every exit reason,
/// on two symbols, with data-quality findings and checkpoints.
pub fn fixture_events() -> Vec<(UnixMs, Event)> {
    let d = |text: &str| text.parse::<Decimal>().expect("fixture decimal");
    let mut s = Scenario::new(
        &["BTC-USD", "ETH-USD"],
        CapitalMode::Independent,
        d("500"),
        1_704_067_200_000,
    );
    for close in ["42000", "42100", "42300"] {
        s.candle("BTC-USD", d(close));
        s.candle_same_bar("ETH-USD", d("2300"));
    }
    s.quality(
        "BTC-USD",
        QualityIssue::Gap {
            after_ms: 1_704_067_200_000,
            before_ms: 1_704_096_000_000,
            missing_bars: 1,
        },
    );
    fixture_trade(
        &mut s,
        "BTC-USD",
        ["42300", "41800", "43300", "0.00238"],
        Exit::TakeProfit,
        "43300",
        2,
    );
    fixture_trade(
        &mut s,
        "ETH-USD",
        ["2300", "2250", "2400", "0.021"],
        Exit::StopLoss,
        "2245.5",
        1,
    );
    s.checkpoint();
    fixture_later_trades(&mut s);
    s.candle("BTC-USD", d("43000"));
    s.finish()
}

/// The fixture after its checkpoint: exits on a signal, by hand and in an
/// emergency, a cancelled, a rejected and a fail-closed entry, a duplicate.
fn fixture_later_trades(s: &mut Scenario) {
    let d = |text: &str| text.parse::<Decimal>().expect("fixture decimal");
    fixture_trade(
        s,
        "BTC-USD",
        ["43300", "42800", "44300", "0.0023"],
        Exit::Order(ExitReason::Signal),
        "43650",
        3,
    );
    s.cancelled_entry("ETH-USD", d("2300"), d("0.02"));
    fixture_trade(
        s,
        "ETH-USD",
        ["2300", "2260", "2420", "0.02"],
        Exit::Order(ExitReason::Manual),
        "2310",
        1,
    );
    s.rejected_entry("BTC-USD", d("43650"), d("0.002"));
    s.fail_closed_entry("BTC-USD", d("43650"), d("0.002"));
    s.quality(
        "ETH-USD",
        QualityIssue::Duplicate {
            open_ms: 1_704_081_600_000,
        },
    );
    fixture_trade(
        s,
        "BTC-USD",
        ["43650", "43100", "44700", "0.0021"],
        Exit::Order(ExitReason::Emergency),
        "42900",
        1,
    );
    fixture_trade(
        s,
        "ETH-USD",
        ["2310", "2270", "2430", "0.02"],
        Exit::StopLoss,
        "2268",
        2,
    );
}

/// One fixture trade, its prices and size as text.
fn fixture_trade(
    s: &mut Scenario,
    symbol: &str,
    prices: [&str; 4],
    exit: Exit,
    exit_price: &str,
    bars_held: u32,
) {
    let d = |text: &str| text.parse::<Decimal>().expect("fixture decimal");
    let [entry, stop, take_profit, size] = prices.map(d);
    s.trade(
        symbol,
        entry,
        stop,
        take_profit,
        size,
        exit,
        d(exit_price),
        bars_held,
    );
}

/// A closed trade's PnL and R from its prices, size, stop and fees (no
/// slippage: the kit fills at the asked price).
fn with_pnl(mut close: TradeClosed) -> TradeClosed {
    let (entry, exit, size, stop) = (
        close.entry_price,
        close.exit_price,
        close.size,
        close.initial_stop,
    );
    let gross = exit * size - entry * size;
    let risk = (entry - stop) * size;
    close.gross_pnl = gross;
    close.net_pnl = gross - close.fees;
    close.theoretical_r = ((exit - entry) / (entry - stop)).round_dp(4);
    close.realized_r = ((gross - close.fees) / risk).round_dp(4);
    close
}

/// The bincode encoding of the state's figures added since form 1 (the halt,
/// the operator log, the trades' details): they follow the old figures in
/// `State`, so the old encoding – what checkpoints were made from before the
/// form had a name – is today's with these bytes cut from its end. One list,
/// for every test that checks form 1 against it.
pub fn added_since_form_one(state: &crate::State) -> Vec<u8> {
    bincode::serde::encode_to_vec(
        (
            &state.halted,
            &state.operator_log,
            &state.trade_details,
            &state.open_details,
        ),
        anx_journal::codec::BODY_CONFIG,
    )
    .expect("plain data encodes")
}
