//! The fold's rules, one projection at a time: valid prefixes built with
//! `testkit::Scenario`, then one hand-written event folded with
//! `Projection::apply`, refused with the exact seq and rule – and the positive
//! cases (positions, cash, fees, capital modes, audit coverage, data quality,
//! the run row) checked against hand-computed numbers.

mod common;

use anx_journal::codec::Hash32;
use anx_journal::*;
use anx_projections::testkit::{fixture_events, Exit, Scenario};
use anx_projections::*;
use common::*;
use rust_decimal::Decimal;

/// Refuses `event` as the scenario's next event with exactly `rule` at the next seq.
fn expect(s: &Scenario, event: impl Into<Event>, rule: Rule) -> FoldError {
    let error = refuse(s, event);
    assert_eq!(
        (error.seq, error.rule),
        (s.next_seq(), rule),
        "unexpected refusal: {error}"
    );
    error
}

fn expect_detail(s: &Scenario, event: impl Into<Event>, rule: Rule, needle: &str) {
    let error = expect(s, event, rule);
    assert!(
        error.detail.contains(needle),
        "detail {:?} does not mention {needle:?}",
        error.detail
    );
}

fn accepts(s: &Scenario, event: impl Into<Event>) {
    let mut projection = s.projection.clone();
    let event = event.into();
    if let Err(error) = projection.apply(s.next_seq(), s.now_ms(), &event) {
        panic!("valid event refused: {error}\n{event:?}");
    }
}

fn engine(s: &Scenario, symbol: &str) -> EngineState {
    s.projection.state.symbols[symbol].engine.0
}

fn run_started(run_id: &str) -> RunStarted {
    RunStarted {
        run_id: run_id.into(),
        run_mode: RunMode::ReplayBacktest,
        capital_mode: CapitalMode::Independent,
        market_time_basis: MarketTimeBasis::CandleTimestamp,
        data_integrity: DataIntegrity::Ok,
        created_by: "test".into(),
        git_sha: "test".into(),
        config_hash: Hash32::default(),
        config_text: String::new(),
        symbols: vec![BTC.into()],
        granularity_s: 14_400,
        start_ms: T0,
        end_ms: None,
        starting_capital: d("1000"),
    }
}

fn run_completed() -> RunCompleted {
    RunCompleted {
        run_id: "testkit1".into(),
        end_ms: T0,
        candles: 0,
        reason: "end of data".into(),
    }
}

fn ack(entry: &Entry) -> OrderAcknowledged {
    OrderAcknowledged {
        client_order_id: entry.coid.clone(),
        order_seq: entry.order_seq,
        exchange_order_id: "x".into(),
    }
}

fn reconciliation(symbol: &str, our_position: &str) -> Reconciliation {
    Reconciliation {
        symbol: symbol.into(),
        broker_position: d(our_position),
        our_position: d(our_position),
        broker_open_orders: vec![],
        our_open_orders: vec![],
        outcome: ReconcileOutcome::Match,
        detail: String::new(),
    }
}

fn checkpoint(s: &Scenario) -> Checkpoint {
    Checkpoint {
        through_seq: s.projection.seq(),
        state_hash: s.projection.state_hash(),
    }
}

const STATES: [EngineState; 5] = [
    EngineState::Idle,
    EngineState::EntryPending,
    EngineState::PositionOpen,
    EngineState::Reconcile,
    EngineState::FailClosed,
];

/// A scenario whose BTC engine is in `state`, reached by valid events.
fn btc_in(state: EngineState) -> Scenario {
    let mut s = start(CapitalMode::Independent, "1000");
    match state {
        EngineState::Idle => {}
        EngineState::EntryPending => {
            entry_pending(&mut s, BTC, "1");
        }
        EngineState::PositionOpen => {
            position_open(&mut s, BTC, "1", "0");
        }
        EngineState::Reconcile => {
            let (entry, _) = position_open(&mut s, BTC, "1", "0");
            exit_to_reconcile(&mut s, BTC, &entry, "1", "110", "0");
        }
        EngineState::FailClosed => {
            fail_closed(&mut s, BTC);
        }
    }
    assert_eq!(engine(&s, BTC), state);
    s
}

// ---------------------------------------------------------------- errors, names

#[test]
fn rule_names_are_distinct_and_shown_in_the_error() {
    let rules = [
        Rule::RunLifecycle,
        Rule::UnknownSymbol,
        Rule::CandleOrder,
        Rule::DecisionLink,
        Rule::OrderLink,
        Rule::SecondPosition,
        Rule::FailClosedBlocks,
        Rule::UnknownOrder,
        Rule::OrderLifecycle,
        Rule::FillMismatch,
        Rule::Cash,
        Rule::Transition,
        Rule::TradeMismatch,
        Rule::Reset,
        Rule::Operator,
        Rule::Checkpoint,
        Rule::Domain,
    ];
    let names: std::collections::BTreeSet<&str> = rules.iter().map(|r| r.name()).collect();
    assert_eq!(names.len(), rules.len());
    let error = FoldError {
        seq: 7,
        rule: Rule::Transition,
        detail: "why".into(),
    };
    assert_eq!(
        error.to_string(),
        "seq 7: rule transition_not_allowed broken: why"
    );
}

// ---------------------------------------------------------------- run lifecycle

#[test]
fn events_before_run_started_are_refused() {
    let mut p = Projection::new();
    let error = p.apply(1, T0, &candle(BTC, T0, "100").into()).unwrap_err();
    assert_eq!((error.seq, error.rule), (1, Rule::RunLifecycle));
    assert!(error.detail.contains("Candle before RunStarted"), "{error}");
    let error = p.apply(1, T0, &run_completed().into()).unwrap_err();
    assert_eq!((error.seq, error.rule), (1, Rule::RunLifecycle));
    assert_eq!(p, Projection::new());
}

#[test]
fn checkpoints_and_repairs_may_precede_run_started() {
    let mut p = Projection::new();
    let empty_hash = p.state_hash();
    p.apply(
        1,
        T0,
        &Checkpoint {
            through_seq: 0,
            state_hash: empty_hash,
        }
        .into(),
    )
    .unwrap();
    let recovered = Recovered {
        segment: "00000001.seg".into(),
        offset: 4096,
        bytes_dropped: 17,
        last_good_seq: 1,
        reason: "torn tail".into(),
    };
    p.apply(2, T0, &recovered.into()).unwrap();
    p.apply(3, T0 + 5, &run_started("r").into()).unwrap();
    assert_eq!(p.links.checkpoints_verified, 1);
    assert_eq!(
        p.links.recoveries,
        vec![RecoveryNote {
            seq: 2,
            segment: "00000001.seg".into(),
            offset: 4096,
            bytes_dropped: 17,
        }]
    );
    // Neither counts as market activity.
    assert_eq!(p.state.first_market_ms, Some(T0 + 5));
}

#[test]
fn a_second_run_started_is_refused() {
    let s = start(CapitalMode::Independent, "1000");
    let error = expect(&s, run_started("another"), Rule::RunLifecycle);
    assert!(error.detail.contains("testkit1"), "{error}");
}

#[test]
fn events_after_run_completed_are_refused() {
    let mut s = start(CapitalMode::Independent, "1000");
    push(&mut s, run_completed());
    let next_open = s.projection.state.symbols[BTC].last_candle_open_ms.unwrap() + 4 * HOUR;
    expect_detail(
        &s,
        candle(BTC, next_open, "100"),
        Rule::RunLifecycle,
        "after run testkit1 completed",
    );
    expect(&s, run_completed(), Rule::RunLifecycle);
    expect(&s, run_started("again"), Rule::RunLifecycle);
    // A checkpoint (and a repair) still may follow.
    accepts(&s, checkpoint(&s));
}

#[test]
fn seqs_must_follow_on() {
    let s = start(CapitalMode::Independent, "1000");
    let event: Event = reconciliation(BTC, "0").into();
    for seq in [s.next_seq() + 1, s.next_seq() - 1, 0] {
        let error = s
            .projection
            .clone()
            .apply(seq, s.now_ms(), &event)
            .unwrap_err();
        assert_eq!((error.seq, error.rule), (seq, Rule::RunLifecycle));
    }
    accepts(&s, event);
}

// ---------------------------------------------------------------- unknown symbols

#[test]
fn events_for_a_symbol_outside_the_run_are_refused() {
    let mut s = start(CapitalMode::Independent, "1000");
    let (entry, entry_fill) = position_open(&mut s, BTC, "1", "0");
    let exit_fill = exit_to_reconcile(&mut s, BTC, &entry, "1", "110", "0");
    const DOGE: &str = "DOGE-USD";
    expect(&s, candle(DOGE, T0, "1"), Rule::UnknownSymbol);
    let quality = DataQuality {
        symbol: DOGE.into(),
        granularity_s: 14_400,
        issue: QualityIssue::Duplicate { open_ms: T0 },
        source: "test".into(),
        detail: String::new(),
    };
    expect(&s, quality, Rule::UnknownSymbol);
    let decision = Decision {
        symbol: DOGE.into(),
        as_of_ms: T0,
        candle_seq: 2,
        glass: Glass::Full(GlassBox {
            regime: Default::default(),
            ..GlassBox::default()
        }),
        sizing: None,
        outcome: DecisionOutcome::Hold,
        config_hash: None,
    };
    expect(&s, decision, Rule::UnknownSymbol);
    expect(
        &s,
        transition(DOGE, EngineState::Idle, EngineState::EntryPending, 2),
        Rule::UnknownSymbol,
    );
    let fail = FailClosed {
        symbol: DOGE.into(),
        cause_seq: 2,
        reason: "x".into(),
    };
    expect(&s, fail, Rule::UnknownSymbol);
    expect(&s, reset(DOGE), Rule::UnknownSymbol);
    expect(&s, reconciliation(DOGE, "0"), Rule::UnknownSymbol);
    let mut close = closed(
        "T1",
        BTC,
        &entry,
        entry_fill,
        exit_fill,
        "1",
        "100",
        "110",
        "0",
        s.now_ms(),
    );
    accepts(&s, close.clone());
    close.symbol = DOGE.into();
    expect(&s, close, Rule::UnknownSymbol);
}

// ---------------------------------------------------------------- candles

#[test]
fn candles_must_move_forward_per_symbol() {
    let s = start(CapitalMode::Independent, "1000");
    let last = s.projection.state.symbols[BTC].last_candle_open_ms.unwrap();
    expect_detail(
        &s,
        candle(BTC, last, "100"),
        Rule::CandleOrder,
        "not after the previous one",
    );
    expect(&s, candle(BTC, last - 4 * HOUR, "100"), Rule::CandleOrder);
    accepts(&s, candle(BTC, last + 1, "100"));
    // Order is per symbol: ETH may have a candle at BTC's time, but not go back itself.
    let eth_last = s.projection.state.symbols[ETH].last_candle_open_ms.unwrap();
    assert_eq!(eth_last, last + 4 * HOUR);
    accepts(&s, candle(ETH, eth_last + 4 * HOUR, "100"));
    expect(&s, candle(ETH, last, "100"), Rule::CandleOrder);
}

#[test]
fn candle_prices_must_be_positive_and_consistent() {
    let s = start(CapitalMode::Independent, "1000");
    let open_ms = s.projection.state.symbols[BTC].last_candle_open_ms.unwrap() + 4 * HOUR;
    let good = Candle {
        open: d("100"),
        high: d("104"),
        low: d("97"),
        close: d("101"),
        ..candle(BTC, open_ms, "100")
    };
    accepts(&s, good.clone());
    accepts(
        &s,
        Candle {
            volume: Decimal::ZERO,
            ..good.clone()
        },
    );
    let bad = [
        Candle {
            open: Decimal::ZERO,
            ..good.clone()
        },
        Candle {
            high: d("-104"),
            ..good.clone()
        },
        Candle {
            low: Decimal::ZERO,
            ..good.clone()
        },
        Candle {
            close: d("-1"),
            ..good.clone()
        },
        Candle {
            volume: d("-0.01"),
            ..good.clone()
        },
        // low above the open, high below the close
        Candle {
            low: d("100.5"),
            ..good.clone()
        },
        Candle {
            high: d("100.5"),
            ..good.clone()
        },
    ];
    for candle in bad {
        expect(&s, candle, Rule::Domain);
    }
}

// ---------------------------------------------------------------- decisions and orders

#[test]
fn a_decision_must_read_the_newest_candle_of_its_symbol() {
    let mut s = Scenario::new(&[BTC, ETH], CapitalMode::Independent, d("1000"), T0);
    let decision = |candle_seq| Decision {
        symbol: BTC.into(),
        as_of_ms: T0,
        candle_seq,
        glass: Glass::Full(GlassBox {
            regime: "trend".into(),
            ..GlassBox::default()
        }),
        sizing: None,
        outcome: DecisionOutcome::Hold,
        config_hash: None,
    };
    // No BTC candle yet.
    expect_detail(&s, decision(1), Rule::DecisionLink, "none");
    let old = s.candle(BTC, d("100"));
    let newest = s.candle(BTC, d("101"));
    let eth = s.candle(ETH, d("50"));
    expect(&s, decision(old), Rule::DecisionLink);
    expect(&s, decision(eth), Rule::DecisionLink);
    expect(&s, decision(newest + 100), Rule::DecisionLink);
    accepts(&s, decision(newest));
}

#[test]
fn an_order_must_name_the_newest_decision_of_its_symbol() {
    let mut s = start(CapitalMode::Independent, "1000");
    let entry = |decision_seq| order("A", decision_seq, BTC, Side::Buy, OrderPurpose::Entry, "1");
    expect_detail(&s, entry(2), Rule::OrderLink, "without a decision");
    let old = s.decision(BTC, DecisionOutcome::Enter, None);
    s.candle(BTC, d("100"));
    let newest = s.decision(BTC, DecisionOutcome::Enter, None);
    expect(&s, entry(old), Rule::OrderLink);
    // ETH has no decision at all, a BTC decision does not count for it.
    expect(
        &s,
        order("A", newest, ETH, Side::Buy, OrderPurpose::Entry, "1"),
        Rule::OrderLink,
    );
    accepts(&s, entry(newest));
}

#[test]
fn order_events_must_name_the_order_seq() {
    let mut s = start(CapitalMode::Independent, "1000");
    let entry = entry_pending(&mut s, BTC, "1");
    let wrong = entry.order_seq - 1;
    let verified = BracketVerified {
        client_order_id: entry.coid.clone(),
        order_seq: wrong,
        take_profit_order_id: "tp".into(),
        stop_order_id: "sl".into(),
    };
    expect(&s, verified, Rule::OrderLink);
    expect(
        &s,
        fill(
            &entry.coid,
            wrong,
            FillLeg::Entry,
            Side::Buy,
            "100",
            "1",
            "0",
        ),
        Rule::OrderLink,
    );
    accepts(
        &s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::Entry,
            Side::Buy,
            "100",
            "1",
            "0",
        ),
    );
    let mut s = start(CapitalMode::Independent, "1000");
    let decision = s.decision(BTC, DecisionOutcome::Enter, None);
    let order_seq = push(
        &mut s,
        order("A", decision, BTC, Side::Buy, OrderPurpose::Entry, "1"),
    );
    let ack = OrderAcknowledged {
        client_order_id: "A".into(),
        order_seq: order_seq + 1,
        exchange_order_id: "x".into(),
    };
    expect(&s, ack.clone(), Rule::OrderLink);
    accepts(&s, OrderAcknowledged { order_seq, ..ack });
}

#[test]
fn orders_need_positive_size_and_price() {
    let mut s = start(CapitalMode::Independent, "1000");
    let decision = s.decision(BTC, DecisionOutcome::Enter, None);
    let good = order("A", decision, BTC, Side::Buy, OrderPurpose::Entry, "1");
    accepts(&s, good.clone());
    accepts(
        &s,
        OrderPlaced {
            limit_price: None,
            ..good.clone()
        },
    );
    expect(
        &s,
        OrderPlaced {
            base_size: Decimal::ZERO,
            ..good.clone()
        },
        Rule::Domain,
    );
    expect(
        &s,
        OrderPlaced {
            base_size: d("-1"),
            ..good.clone()
        },
        Rule::Domain,
    );
    expect(
        &s,
        OrderPlaced {
            limit_price: Some(Decimal::ZERO),
            ..good.clone()
        },
        Rule::Domain,
    );
    expect(
        &s,
        OrderPlaced {
            limit_price: Some(d("-100")),
            ..good
        },
        Rule::Domain,
    );
}

#[test]
fn a_client_order_id_is_placed_once() {
    let mut s = start(CapitalMode::Independent, "1000");
    let (entry, _) = position_open(&mut s, BTC, "1", "0");
    let decision = s.decision(
        BTC,
        DecisionOutcome::Exit {
            reason: ExitReason::Signal,
        },
        None,
    );
    // The entry's id again, as an exit (the entry order is live until its trade closes).
    let dup = order(
        &entry.coid,
        decision,
        BTC,
        Side::Sell,
        OrderPurpose::Exit,
        "1",
    );
    expect_detail(&s, dup, Rule::OrderLifecycle, "placed twice");
    push(
        &mut s,
        order(
            "EXIT-1",
            decision,
            BTC,
            Side::Sell,
            OrderPurpose::Exit,
            "0.5",
        ),
    );
    expect_detail(
        &s,
        order(
            "EXIT-1",
            decision,
            BTC,
            Side::Sell,
            OrderPurpose::Exit,
            "0.5",
        ),
        Rule::OrderLifecycle,
        "placed twice",
    );
    accepts(
        &s,
        order(
            "EXIT-2",
            decision,
            BTC,
            Side::Sell,
            OrderPurpose::Exit,
            "0.5",
        ),
    );
}

#[test]
fn entries_are_buys_and_exits_are_sells_of_an_open_position() {
    let mut s = start(CapitalMode::Independent, "1000");
    let decision = s.decision(BTC, DecisionOutcome::Enter, None);
    expect_detail(
        &s,
        order("A", decision, BTC, Side::Sell, OrderPurpose::Entry, "1"),
        Rule::OrderLifecycle,
        "entries are buys",
    );
    expect_detail(
        &s,
        order("A", decision, BTC, Side::Sell, OrderPurpose::Exit, "1"),
        Rule::OrderLifecycle,
        "no open position",
    );
    let (_, _) = position_open(&mut s, BTC, "1", "0");
    let decision = s.decision(
        BTC,
        DecisionOutcome::Exit {
            reason: ExitReason::Manual,
        },
        None,
    );
    expect_detail(
        &s,
        order("B", decision, BTC, Side::Buy, OrderPurpose::Exit, "1"),
        Rule::OrderLifecycle,
        "exits are sells",
    );
    accepts(
        &s,
        order("B", decision, BTC, Side::Sell, OrderPurpose::Exit, "1"),
    );
}

#[test]
fn a_second_entry_is_refused_while_one_is_in_flight_or_open() {
    let second = |s: &mut Scenario| {
        let decision = s.decision(BTC, DecisionOutcome::Enter, None);
        order("SECOND", decision, BTC, Side::Buy, OrderPurpose::Entry, "1")
    };
    for state in [
        EngineState::EntryPending,
        EngineState::PositionOpen,
        EngineState::Reconcile,
    ] {
        let mut s = btc_in(state);
        let event = second(&mut s);
        expect(&s, event, Rule::SecondPosition);
    }
    // The other symbol is unaffected.
    let mut s = btc_in(EngineState::PositionOpen);
    let decision = s.decision(ETH, DecisionOutcome::Enter, None);
    accepts(
        &s,
        order("ETH-1", decision, ETH, Side::Buy, OrderPurpose::Entry, "1"),
    );
    // And once BTC's trade is finalized, a new entry is fine.
    let mut s = start(CapitalMode::Independent, "1000");
    s.trade(
        BTC,
        d("100"),
        d("95"),
        d("110"),
        d("1"),
        Exit::TakeProfit,
        d("110"),
        1,
    );
    let event = second(&mut s);
    accepts(&s, event);
}

#[test]
fn entries_are_blocked_while_fail_closed() {
    // Failed closed during an entry.
    let mut s = btc_in(EngineState::FailClosed);
    let decision = s.decision(BTC, DecisionOutcome::Enter, None);
    expect_detail(
        &s,
        order("B", decision, BTC, Side::Buy, OrderPurpose::Entry, "1"),
        Rule::FailClosedBlocks,
        "fail-closed",
    );
    // Failed closed while idle (the engine never left IDLE): blocked until reset.
    let mut s = start(CapitalMode::Independent, "1000");
    push(
        &mut s,
        FailClosed {
            symbol: BTC.into(),
            cause_seq: 2,
            reason: "broker unreachable".into(),
        },
    );
    let decision = s.decision(BTC, DecisionOutcome::Enter, None);
    expect(
        &s,
        order("B", decision, BTC, Side::Buy, OrderPurpose::Entry, "1"),
        Rule::FailClosedBlocks,
    );
    push(&mut s, reset(BTC));
    accepts(
        &s,
        order("B", decision, BTC, Side::Buy, OrderPurpose::Entry, "1"),
    );
}

// ---------------------------------------------------------------- order lifecycle

#[test]
fn events_about_unknown_orders_are_refused() {
    let mut s = start(CapitalMode::Independent, "1000");
    expect(
        &s,
        fill("NOPE", 3, FillLeg::Entry, Side::Buy, "100", "1", "0"),
        Rule::UnknownOrder,
    );
    let ghost = Entry {
        coid: "NOPE".into(),
        order_seq: 3,
    };
    expect(&s, ack(&ghost), Rule::UnknownOrder);
    expect(&s, cancel(&ghost), Rule::UnknownOrder);
    let rejected = OrderRejected {
        client_order_id: "NOPE".into(),
        order_seq: 3,
        reason: "x".into(),
    };
    expect(&s, rejected, Rule::UnknownOrder);
    let verified = BracketVerified {
        client_order_id: "NOPE".into(),
        order_seq: 3,
        take_profit_order_id: "tp".into(),
        stop_order_id: "sl".into(),
    };
    expect(&s, verified, Rule::UnknownOrder);
    // An order that ended is no longer live: a late fill names an unknown order.
    let entry = entry_pending(&mut s, BTC, "1");
    push(&mut s, cancel(&entry));
    expect(
        &s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::Entry,
            Side::Buy,
            "100",
            "1",
            "0",
        ),
        Rule::UnknownOrder,
    );
    expect(&s, cancel(&entry), Rule::UnknownOrder);
}

#[test]
fn order_lifecycle_violations_are_refused() {
    // Acknowledged twice.
    let mut s = start(CapitalMode::Independent, "1000");
    let entry = entry_pending(&mut s, BTC, "2");
    expect_detail(
        &s,
        ack(&entry),
        Rule::OrderLifecycle,
        "acknowledged while Acknowledged",
    );
    // Cancelled or rejected after a fill.
    push(
        &mut s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::Entry,
            Side::Buy,
            "100",
            "1",
            "0",
        ),
    );
    let rejected = OrderRejected {
        client_order_id: entry.coid.clone(),
        order_seq: entry.order_seq,
        reason: "x".into(),
    };
    expect(&s, rejected, Rule::OrderLifecycle);
    // A cancellation after a partial fill ends only the unfilled remainder: the
    // order stays live (for its bracket) at the filled size, nothing in flight.
    {
        let mut partial = s.projection.clone();
        partial
            .apply(partial.seq() + 1, s.now_ms(), &cancel(&entry).into())
            .expect("a partly filled entry can be cancelled");
        let order = &partial.state.orders[&entry.coid];
        assert_eq!(
            (order.status, order.size, order.filled),
            (OrderStatus::Filled, d("1"), d("1"))
        );
        assert_eq!(partial.state.symbols[BTC].in_flight, None);
        assert_eq!(partial.state.symbols[BTC].position.quantity, d("1"));
    }
    push(
        &mut s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::Entry,
            Side::Buy,
            "100",
            "1",
            "0",
        ),
    );
    assert_eq!(
        s.projection.state.orders[&entry.coid].status,
        OrderStatus::Filled
    );
    expect(&s, cancel(&entry), Rule::OrderLifecycle);
    // A bracket verified on an order that carries none.
    let filled = s.projection.seq();
    push(
        &mut s,
        transition(
            BTC,
            EngineState::EntryPending,
            EngineState::PositionOpen,
            filled,
        ),
    );
    let decision = s.decision(
        BTC,
        DecisionOutcome::Exit {
            reason: ExitReason::Signal,
        },
        None,
    );
    let exit_seq = push(
        &mut s,
        order("EXIT", decision, BTC, Side::Sell, OrderPurpose::Exit, "2"),
    );
    let verified = BracketVerified {
        client_order_id: "EXIT".into(),
        order_seq: exit_seq,
        take_profit_order_id: "tp".into(),
        stop_order_id: "sl".into(),
    };
    expect_detail(&s, verified, Rule::OrderLifecycle, "which has none");
    // A cancelled exit order leaves the trade, and its id cannot be filled.
    push(
        &mut s,
        OrderCancelled {
            client_order_id: "EXIT".into(),
            order_seq: exit_seq,
            reason: "replaced".into(),
        },
    );
    assert!(s.projection.state.symbols[BTC]
        .open_trade
        .as_ref()
        .unwrap()
        .exit_orders
        .is_empty());
    expect(
        &s,
        fill("EXIT", exit_seq, FillLeg::Exit, Side::Sell, "100", "2", "0"),
        Rule::UnknownOrder,
    );
}

// ---------------------------------------------------------------- fills

#[test]
fn fill_values_must_be_in_domain() {
    let mut s = start(CapitalMode::Independent, "1000");
    let entry = entry_pending(&mut s, BTC, "1");
    let f = |price, size, fee| {
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::Entry,
            Side::Buy,
            price,
            size,
            fee,
        )
    };
    expect(&s, f("0", "1", "0"), Rule::Domain);
    expect(&s, f("-100", "1", "0"), Rule::Domain);
    expect(&s, f("100", "0", "0"), Rule::Domain);
    expect(&s, f("100", "-1", "0"), Rule::Domain);
    expect(&s, f("100", "1", "-0.01"), Rule::Domain);
    accepts(&s, f("100", "1", "0"));
}

#[test]
fn fills_must_fit_their_order() {
    let mut s = start(CapitalMode::Independent, "1000");
    let entry = entry_pending(&mut s, BTC, "2");
    let f = |leg, side, size| fill(&entry.coid, entry.order_seq, leg, side, "100", size, "0");
    // Overfill in one go, and after a partial fill.
    expect_detail(
        &s,
        f(FillLeg::Entry, Side::Buy, "2.0001"),
        Rule::FillMismatch,
        "overfills",
    );
    push(&mut s, f(FillLeg::Entry, Side::Buy, "1.5"));
    expect(&s, f(FillLeg::Entry, Side::Buy, "0.6"), Rule::FillMismatch);
    accepts(&s, f(FillLeg::Entry, Side::Buy, "0.5"));
    // Leg, side and purpose must agree.
    expect(&s, f(FillLeg::Entry, Side::Sell, "0.5"), Rule::FillMismatch);
    expect(
        &s,
        f(FillLeg::TakeProfit, Side::Buy, "0.5"),
        Rule::FillMismatch,
    );
    expect(&s, f(FillLeg::Exit, Side::Sell, "0.5"), Rule::FillMismatch);
    // Selling more than is held (1.5) through the bracket.
    expect_detail(
        &s,
        f(FillLeg::StopLoss, Side::Sell, "1.6"),
        Rule::FillMismatch,
        "exceeds",
    );
    accepts(&s, f(FillLeg::StopLoss, Side::Sell, "1.5"));
}

#[test]
fn exit_order_fills_must_fit_the_exit_order_and_the_position() {
    let mut s = start(CapitalMode::Independent, "1000");
    let (_, _) = position_open(&mut s, BTC, "1", "0");
    let decision = s.decision(
        BTC,
        DecisionOutcome::Exit {
            reason: ExitReason::Signal,
        },
        None,
    );
    let exit_seq = push(
        &mut s,
        order("EXIT", decision, BTC, Side::Sell, OrderPurpose::Exit, "0.4"),
    );
    let f = |leg, size| fill("EXIT", exit_seq, leg, Side::Sell, "100", size, "0");
    expect(&s, f(FillLeg::Exit, "0.5"), Rule::FillMismatch);
    expect(&s, f(FillLeg::TakeProfit, "0.4"), Rule::FillMismatch);
    expect(&s, f(FillLeg::Entry, "0.4"), Rule::FillMismatch);
    push(&mut s, f(FillLeg::Exit, "0.4"));
    assert_eq!(
        s.projection.state.orders["EXIT"].status,
        OrderStatus::Filled
    );
    expect(&s, f(FillLeg::Exit, "0.1"), Rule::FillMismatch);
}

#[test]
fn a_bracket_leg_fill_needs_a_bracket() {
    let mut s = start(CapitalMode::Independent, "1000");
    let decision = s.decision(BTC, DecisionOutcome::Enter, None);
    let naked = OrderPlaced {
        bracket: None,
        ..order("NAKED", decision, BTC, Side::Buy, OrderPurpose::Entry, "1")
    };
    let order_seq = push(&mut s, naked);
    push(
        &mut s,
        transition(BTC, EngineState::Idle, EngineState::EntryPending, order_seq),
    );
    let entry_fill = push(
        &mut s,
        fill(
            "NAKED",
            order_seq,
            FillLeg::Entry,
            Side::Buy,
            "100",
            "1",
            "0",
        ),
    );
    push(
        &mut s,
        transition(
            BTC,
            EngineState::EntryPending,
            EngineState::PositionOpen,
            entry_fill,
        ),
    );
    expect_detail(
        &s,
        fill(
            "NAKED",
            order_seq,
            FillLeg::TakeProfit,
            Side::Sell,
            "110",
            "1",
            "0",
        ),
        Rule::FillMismatch,
        "does not fit",
    );
    expect(
        &s,
        fill(
            "NAKED",
            order_seq,
            FillLeg::StopLoss,
            Side::Sell,
            "90",
            "1",
            "0",
        ),
        Rule::FillMismatch,
    );
}

#[test]
fn an_entry_fill_needs_the_engine_to_be_pending() {
    let mut s = start(CapitalMode::Independent, "1000");
    let decision = s.decision(BTC, DecisionOutcome::Enter, None);
    let order_seq = push(
        &mut s,
        order("A", decision, BTC, Side::Buy, OrderPurpose::Entry, "1"),
    );
    // No IDLE → ENTRY_PENDING transition was journaled.
    let f = fill("A", order_seq, FillLeg::Entry, Side::Buy, "100", "1", "0");
    expect_detail(&s, f.clone(), Rule::FillMismatch, "while Idle");
    push(
        &mut s,
        transition(BTC, EngineState::Idle, EngineState::EntryPending, order_seq),
    );
    accepts(&s, f);
}

#[test]
fn reconciliation_must_agree_with_the_fills() {
    let mut s = start(CapitalMode::Independent, "1000");
    position_open(&mut s, BTC, "1.25", "0");
    expect_detail(
        &s,
        reconciliation(BTC, "1"),
        Rule::FillMismatch,
        "fills say 1.25",
    );
    expect(&s, reconciliation(ETH, "1.25"), Rule::FillMismatch);
    push(
        &mut s,
        Reconciliation {
            outcome: ReconcileOutcome::Mismatch,
            ..reconciliation(BTC, "1.25")
        },
    );
    assert_eq!(
        s.projection.state.symbols[BTC].last_reconciliation,
        Some(ReconcileOutcome::Mismatch)
    );
}

#[test]
fn cash_may_not_go_negative() {
    let mut s = start(CapitalMode::Independent, "1000");
    let entry = entry_pending(&mut s, BTC, "10");
    // 10 × 100 = 1000 exactly is fine; one cent of fee more is not.
    let f = |fee| {
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::Entry,
            Side::Buy,
            "100",
            "10",
            fee,
        )
    };
    expect_detail(&s, f("0.01"), Rule::Cash, "-0.01");
    accepts(&s, f("0"));
    let f = fill(
        &entry.coid,
        entry.order_seq,
        FillLeg::Entry,
        Side::Buy,
        "100.01",
        "10",
        "0",
    );
    expect(&s, f, Rule::Cash);
}

#[test]
fn a_portfolio_shares_one_pot_and_independent_symbols_do_not() {
    for mode in [CapitalMode::Portfolio, CapitalMode::Independent] {
        let mut s = start(mode, "1000");
        position_open(&mut s, BTC, "6", "0");
        let eth = entry_pending(&mut s, ETH, "6");
        let eth_fill = fill(
            &eth.coid,
            eth.order_seq,
            FillLeg::Entry,
            Side::Buy,
            "100",
            "6",
            "0",
        );
        match mode {
            CapitalMode::Portfolio => {
                let error = expect(&s, eth_fill, Rule::Cash);
                assert!(
                    error.detail.contains("pot portfolio would be -200"),
                    "{error}"
                );
            }
            CapitalMode::Independent => {
                push(&mut s, eth_fill);
                let cash: Vec<(String, Decimal)> = s
                    .projection
                    .state
                    .cash
                    .iter()
                    .map(|(k, v)| (k.clone(), v.0))
                    .collect();
                assert_eq!(
                    cash,
                    vec![(BTC.to_string(), d("400")), (ETH.to_string(), d("400"))]
                );
            }
        }
    }
}

// ---------------------------------------------------------------- transitions

#[test]
fn transition_allowed_is_exactly_the_state_machine() {
    use EngineState::*;
    let allowed = [
        (Idle, EntryPending),
        (EntryPending, PositionOpen),
        (EntryPending, Idle),
        (EntryPending, FailClosed),
        (PositionOpen, Reconcile),
        (PositionOpen, FailClosed),
        (Reconcile, Idle),
        (Reconcile, FailClosed),
        (FailClosed, Idle),
    ];
    for from in STATES {
        for to in STATES {
            assert_eq!(
                transition_allowed(from, to),
                allowed.contains(&(from, to)),
                "{from:?} -> {to:?}"
            );
        }
    }
}

#[test]
fn every_transition_outside_the_state_machine_is_refused() {
    let mut refused = 0;
    for from in STATES {
        let s = btc_in(from);
        for to in STATES {
            if transition_allowed(from, to) {
                continue;
            }
            expect_detail(
                &s,
                transition(BTC, from, to, 1),
                Rule::Transition,
                "is not a transition of the engine state machine",
            );
            refused += 1;
        }
    }
    // 25 pairs, 9 allowed.
    assert_eq!(refused, 16);
}

#[test]
fn a_transition_from_a_state_other_than_the_current_one_is_refused() {
    for current in STATES {
        let s = btc_in(current);
        for from in STATES.into_iter().filter(|f| *f != current) {
            // An edge the machine has, so only the wrong `from` is at fault.
            let to = STATES
                .into_iter()
                .find(|to| transition_allowed(from, *to))
                .unwrap();
            expect_detail(
                &s,
                transition(BTC, from, to, 1),
                Rule::Transition,
                &format!("but the state is {current:?}"),
            );
        }
        // The other symbol has its own machine.
        if current != EngineState::Idle {
            expect(
                &s,
                transition(ETH, current, EngineState::Idle, 1),
                Rule::Transition,
            );
        }
    }
}

#[test]
fn idle_to_entry_pending_needs_an_entry_in_flight() {
    let s = btc_in(EngineState::Idle);
    expect_detail(
        &s,
        transition(BTC, EngineState::Idle, EngineState::EntryPending, 2),
        Rule::Transition,
        "no entry order in flight",
    );
}

#[test]
fn entry_pending_to_position_open_needs_the_fill() {
    let mut s = btc_in(EngineState::EntryPending);
    let t = transition(BTC, EngineState::EntryPending, EngineState::PositionOpen, 2);
    expect_detail(&s, t.clone(), Rule::Transition, "has not filled");
    let coid = s.projection.state.symbols[BTC].in_flight.clone().unwrap();
    let order_seq = s.projection.links.orders[&coid].order_seq;
    // A partial fill is enough to hold a position.
    push(
        &mut s,
        fill(
            &coid,
            order_seq,
            FillLeg::Entry,
            Side::Buy,
            "100",
            "0.5",
            "0",
        ),
    );
    accepts(&s, t);
}

#[test]
fn entry_pending_to_idle_needs_the_entry_ended_unfilled() {
    let t = transition(BTC, EngineState::EntryPending, EngineState::Idle, 2);
    // Still in flight.
    let mut s = start(CapitalMode::Independent, "1000");
    let entry = entry_pending(&mut s, BTC, "2");
    expect_detail(&s, t.clone(), Rule::Transition, "still in flight or filled");
    // Filled (partly): the position is held.
    let entry_fill = push(
        &mut s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::Entry,
            Side::Buy,
            "100",
            "1",
            "0",
        ),
    );
    expect(&s, t.clone(), Rule::Transition);
    // The partial position was taken out by the bracket: flat, nothing in flight,
    // but the trade is open and not finalized.
    let exit_fill = push(
        &mut s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::TakeProfit,
            Side::Sell,
            "110",
            "1",
            "0",
        ),
    );
    assert!(s.projection.state.symbols[BTC].position.quantity.is_zero());
    assert!(s.projection.state.symbols[BTC].in_flight.is_none());
    expect_detail(&s, t.clone(), Rule::Transition, "still in flight or filled");
    // Once the trade is finalized the engine may return to IDLE.
    let now = s.now_ms();
    push(
        &mut s,
        closed(
            "T1", BTC, &entry, entry_fill, exit_fill, "1", "100", "110", "0", now,
        ),
    );
    accepts(&s, t.clone());
    // Cancelled before any fill: back to IDLE.
    let mut s = start(CapitalMode::Independent, "1000");
    let entry = entry_pending(&mut s, BTC, "2");
    push(&mut s, cancel(&entry));
    accepts(&s, t);
}

#[test]
fn reconcile_to_idle_needs_the_trade_closed() {
    let mut s = start(CapitalMode::Independent, "1000");
    let (entry, entry_fill) = position_open(&mut s, BTC, "1", "0");
    let exit_fill = exit_to_reconcile(&mut s, BTC, &entry, "1", "110", "0");
    let t = transition(BTC, EngineState::Reconcile, EngineState::Idle, exit_fill);
    expect_detail(&s, t.clone(), Rule::Transition, "not been finalized");
    let now = s.now_ms();
    push(
        &mut s,
        closed(
            "T1", BTC, &entry, entry_fill, exit_fill, "1", "100", "110", "0", now,
        ),
    );
    accepts(&s, t);
}

#[test]
fn fail_closed_needs_a_fail_closed_event() {
    for from in [
        EngineState::EntryPending,
        EngineState::PositionOpen,
        EngineState::Reconcile,
    ] {
        let mut s = btc_in(from);
        let t = transition(BTC, from, EngineState::FailClosed, 2);
        expect_detail(&s, t.clone(), Rule::Transition, "no FailClosed event");
        // A FailClosed for the other symbol does not count.
        push(
            &mut s,
            FailClosed {
                symbol: ETH.into(),
                cause_seq: 2,
                reason: "x".into(),
            },
        );
        expect(&s, t.clone(), Rule::Transition);
        push(
            &mut s,
            FailClosed {
                symbol: BTC.into(),
                cause_seq: 2,
                reason: "x".into(),
            },
        );
        accepts(&s, t);
    }
}

#[test]
fn fail_closed_to_idle_needs_an_operator_reset_and_nothing_open() {
    let t = transition(BTC, EngineState::FailClosed, EngineState::Idle, 2);
    let in_flight = |s: &Scenario| {
        let coid = s.projection.state.symbols[BTC].in_flight.clone().unwrap();
        Entry {
            order_seq: s.projection.links.orders[&coid].order_seq,
            coid,
        }
    };
    // Entry still in flight, no reset.
    let s = btc_in(EngineState::FailClosed);
    expect_detail(&s, t.clone(), Rule::Transition, "no operator reset");
    // Reset, but the entry is still in flight.
    let mut s = btc_in(EngineState::FailClosed);
    push(&mut s, reset(BTC));
    expect_detail(
        &s,
        t.clone(),
        Rule::Transition,
        "a position or entry is still open",
    );
    // Cancelled, but not reset.
    let mut s = btc_in(EngineState::FailClosed);
    let entry = in_flight(&s);
    push(&mut s, cancel(&entry));
    expect_detail(&s, t.clone(), Rule::Transition, "no operator reset");
    push(&mut s, reset(BTC));
    accepts(&s, t.clone());

    // Failed closed with a position open: it must be exited and finalized first.
    let mut s = start(CapitalMode::Independent, "1000");
    let (entry, entry_fill) = position_open(&mut s, BTC, "1", "0");
    let fc = push(
        &mut s,
        FailClosed {
            symbol: BTC.into(),
            cause_seq: entry_fill,
            reason: "stop leg vanished".into(),
        },
    );
    push(
        &mut s,
        transition(BTC, EngineState::PositionOpen, EngineState::FailClosed, fc),
    );
    push(&mut s, reset(BTC));
    expect_detail(
        &s,
        t.clone(),
        Rule::Transition,
        "a position or entry is still open",
    );
    let exit_fill = push(
        &mut s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::StopLoss,
            Side::Sell,
            "94",
            "1",
            "0",
        ),
    );
    // Flat, but the trade is not finalized.
    expect(&s, t.clone(), Rule::Transition);
    let now = s.now_ms();
    push(
        &mut s,
        closed(
            "T1", BTC, &entry, entry_fill, exit_fill, "1", "100", "94", "0", now,
        ),
    );
    accepts(&s, t);
}

#[test]
fn accepted_transitions_move_the_engine() {
    let mut s = start(CapitalMode::Independent, "1000");
    let entry = entry_pending(&mut s, BTC, "1");
    assert_eq!(
        (engine(&s, BTC), engine(&s, ETH)),
        (EngineState::EntryPending, EngineState::Idle)
    );
    push(
        &mut s,
        OrderRejected {
            client_order_id: entry.coid.clone(),
            order_seq: entry.order_seq,
            reason: "x".into(),
        },
    );
    push(
        &mut s,
        transition(BTC, EngineState::EntryPending, EngineState::Idle, 2),
    );
    assert_eq!(engine(&s, BTC), EngineState::Idle);
    assert!(s.projection.state.orders.is_empty());
    assert!(s.projection.links.orders.is_empty());
}

// ---------------------------------------------------------------- trade close

#[test]
fn trade_closed_must_agree_with_the_fills() {
    let mut s = start(CapitalMode::Independent, "1000");
    let (entry, entry_fill) = position_open(&mut s, BTC, "2", "0.4");
    let exit_fill = exit_to_reconcile(&mut s, BTC, &entry, "2", "110", "0.44");
    let good = closed(
        "T1",
        BTC,
        &entry,
        entry_fill,
        exit_fill,
        "2",
        "100",
        "110",
        "0.84",
        s.now_ms(),
    );
    assert_eq!((good.gross_pnl, good.net_pnl), (d("20"), d("19.16")));
    accepts(&s, good.clone());
    let bad = [
        (
            TradeClosed {
                gross_pnl: d("20.01"),
                net_pnl: d("19.17"),
                ..good.clone()
            },
            "gross PnL",
        ),
        (
            TradeClosed {
                fees: d("0.4"),
                net_pnl: d("19.6"),
                ..good.clone()
            },
            "fees",
        ),
        (
            TradeClosed {
                size: d("1"),
                ..good.clone()
            },
            "size",
        ),
        (
            TradeClosed {
                net_pnl: d("20"),
                ..good.clone()
            },
            "net PnL",
        ),
        (
            TradeClosed {
                exit_fill_seq: exit_fill - 1,
                ..good.clone()
            },
            "exit fill seq",
        ),
        (
            TradeClosed {
                entry_fill_seq: entry_fill + 1,
                ..good.clone()
            },
            "entry order/fill seqs",
        ),
        (
            TradeClosed {
                entry_order_seq: entry.order_seq - 1,
                ..good.clone()
            },
            "entry order/fill seqs",
        ),
        (
            TradeClosed {
                entry_client_order_id: "OTHER".into(),
                ..good.clone()
            },
            "open trade's is",
        ),
    ];
    for (event, what) in bad {
        expect_detail(&s, event, Rule::TradeMismatch, what);
    }
    push(&mut s, good.clone());
    // Closed once only.
    expect_detail(
        &s,
        TradeClosed {
            trade_id: "T2".into(),
            ..good
        },
        Rule::TradeMismatch,
        "no open trade",
    );
}

#[test]
fn trade_closed_while_still_holding_is_refused() {
    let mut s = start(CapitalMode::Independent, "1000");
    let (entry, entry_fill) = position_open(&mut s, BTC, "2", "0");
    let exit_fill = push(
        &mut s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::TakeProfit,
            Side::Sell,
            "110",
            "1",
            "0",
        ),
    );
    let mut close = closed(
        "T1",
        BTC,
        &entry,
        entry_fill,
        exit_fill,
        "2",
        "100",
        "105",
        "0",
        s.now_ms(),
    );
    close.gross_pnl = d("10");
    close.net_pnl = d("10");
    expect_detail(&s, close, Rule::TradeMismatch, "still held");
}

// ---------------------------------------------------------------- reset, checkpoint

#[test]
fn operator_reset_needs_a_fail_closed_symbol() {
    let s = btc_in(EngineState::Idle);
    expect_detail(&s, reset(BTC), Rule::Reset, "not fail-closed");
    let mut s = btc_in(EngineState::FailClosed);
    expect(&s, reset(ETH), Rule::Reset);
    push(&mut s, reset(BTC));
    assert_eq!(s.projection.state.symbols[BTC].fail_closed, None);
    // A second reset finds nothing to clear.
    expect(&s, reset(BTC), Rule::Reset);
}

#[test]
fn checkpoints_must_match_the_fold() {
    let mut s = start(CapitalMode::Independent, "1000");
    s.trade(
        BTC,
        d("100"),
        d("95"),
        d("110"),
        d("1"),
        Exit::StopLoss,
        d("96"),
        1,
    );
    let good = checkpoint(&s);
    let mut wrong_hash = good.clone();
    wrong_hash.state_hash.0[31] ^= 1;
    expect_detail(&s, wrong_hash, Rule::Checkpoint, "the fold computes");
    expect(
        &s,
        Checkpoint {
            through_seq: good.through_seq - 1,
            ..good.clone()
        },
        Rule::Checkpoint,
    );
    expect(
        &s,
        Checkpoint {
            through_seq: good.through_seq + 1,
            ..good.clone()
        },
        Rule::Checkpoint,
    );
    // A hash of an earlier state is not this state's.
    let earlier = fold(&s.events[..s.events.len() - 1]).unwrap();
    expect(
        &s,
        Checkpoint {
            state_hash: earlier.state_hash(),
            ..good.clone()
        },
        Rule::Checkpoint,
    );
    let before = s.projection.links.checkpoints_verified;
    push(&mut s, good);
    assert_eq!(s.projection.links.checkpoints_verified, before + 1);
}

// ---------------------------------------------------------------- positive: positions, cash, fees

#[test]
fn a_trade_moves_position_cash_fees_and_equity() {
    let mut s = start(CapitalMode::Independent, "1000");
    let (entry, entry_fill) = position_open(&mut s, BTC, "2", "0.4");
    {
        let state = &s.projection.state;
        let btc = &state.symbols[BTC];
        // 1000 − 2 × 100 − 0.4
        assert_eq!(state.cash[BTC].0, d("799.6"));
        assert_eq!(state.cash[ETH].0, d("1000"));
        assert_eq!(
            (
                btc.position.quantity,
                btc.position.cost,
                btc.position.fees_paid
            ),
            (d("2"), d("200"), d("0.4"))
        );
        assert_eq!(btc.position.average_entry(), Some(d("100")));
        assert_eq!(btc.in_flight, None);
        assert_eq!(btc.trades_opened, 1);
        assert_eq!(state.run.as_ref().unwrap().trades_opened, 1);
        assert_eq!(
            (state.equity.cash, state.equity.marked),
            (d("1799.6"), d("200"))
        );
    }
    s.candle(BTC, d("105"));
    // Marked at the last close: 2 × 105; equity 1799.6 + 210.
    assert_eq!(s.projection.state.equity.marked, d("210"));
    assert_eq!(s.projection.state.equity.last, d("2009.6"));
    let exit_fill = exit_to_reconcile(&mut s, BTC, &entry, "2", "110", "0.44");
    let exit_ms = s.now_ms();
    push(
        &mut s,
        closed(
            "T1", BTC, &entry, entry_fill, exit_fill, "2", "100", "110", "0.84", exit_ms,
        ),
    );
    push(
        &mut s,
        transition(
            BTC,
            EngineState::Reconcile,
            EngineState::Idle,
            exit_fill + 2,
        ),
    );
    let state = &s.projection.state;
    let btc = &state.symbols[BTC];
    // 799.6 + 2 × 110 − 0.44
    assert_eq!(state.cash[BTC].0, d("1019.16"));
    assert_eq!(btc.position.quantity, Decimal::ZERO);
    assert_eq!(btc.position.cost, Decimal::ZERO);
    assert_eq!(btc.position.average_entry(), None);
    assert_eq!(btc.position.realized_gross, d("20"));
    assert_eq!(btc.position.fees_paid, d("0.84"));
    assert_eq!(btc.position.realized_net(), d("19.16"));
    assert_eq!(btc.open_trade, None);
    assert_eq!(btc.trades_closed, 1);
    assert_eq!(state.fees_total, d("0.84"));
    assert_eq!(
        (state.equity.cash, state.equity.marked, state.equity.last),
        (d("2019.16"), d("0"), d("2019.16"))
    );
    assert_eq!(state.exposure_ms, 4 * HOUR);
    assert!(state.orders.is_empty());
    assert_eq!(state.trades.len(), 1);
    let row = &state.trades[0];
    assert_eq!((row.trade_id.as_str(), row.symbol.as_str()), ("T1", BTC));
    assert_eq!(
        (row.size, row.gross_pnl, row.fees, row.net_pnl),
        (d("2"), d("20"), d("0.84"), d("19.16"))
    );
    assert_eq!(row.exit_reason, ExitReason::TakeProfit);
    // (19.16) / ((100 − 95) × 2)
    assert_eq!(row.realized_r, d("1.916"));
    assert_eq!(row.hold_ms(), 4 * HOUR);
}

#[test]
fn partial_fills_average_the_entry_and_realize_against_it() {
    let mut s = start(CapitalMode::Independent, "1000");
    let entry = entry_pending(&mut s, BTC, "2");
    let first = entry_filled(&mut s, BTC, &entry, "100", "1", "0.1");
    push(
        &mut s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::Entry,
            Side::Buy,
            "102",
            "1",
            "0.1",
        ),
    );
    let position = &s.projection.state.symbols[BTC].position;
    assert_eq!((position.quantity, position.cost), (d("2"), d("202")));
    assert_eq!(position.average_entry(), Some(d("101")));
    assert_eq!(s.projection.state.symbols[BTC].trades_opened, 1);
    // Half out at 110: realizes 110 − 101 = 9 and keeps cost 101.
    push(
        &mut s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::TakeProfit,
            Side::Sell,
            "110",
            "1",
            "0.11",
        ),
    );
    let position = &s.projection.state.symbols[BTC].position;
    assert_eq!(
        (position.quantity, position.cost, position.realized_gross),
        (d("1"), d("101"), d("9"))
    );
    // The rest at 99: realizes 99 − 101 = −2.
    let exit_fill = push(
        &mut s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::StopLoss,
            Side::Sell,
            "99",
            "1",
            "0.099",
        ),
    );
    let position = &s.projection.state.symbols[BTC].position;
    assert_eq!(
        (position.quantity, position.cost, position.realized_gross),
        (d("0"), d("0"), d("7"))
    );
    assert_eq!(position.fees_paid, d("0.409"));
    // 1000 − 100.1 − 102.1 + 109.89 + 98.901
    assert_eq!(s.projection.state.cash[BTC].0, d("1006.591"));
    let mut close = closed(
        "T1",
        BTC,
        &entry,
        first,
        exit_fill,
        "2",
        "101",
        "104.5",
        "0.409",
        s.now_ms(),
    );
    assert_eq!(close.gross_pnl, d("7"));
    close.exit_reason = ExitReason::StopLoss;
    push(&mut s, close);
    assert_eq!(s.projection.state.trades[0].net_pnl, d("6.591"));
}

#[test]
fn capital_modes_split_cash_into_pots() {
    let mut s = start(CapitalMode::Independent, "1000");
    let pots: Vec<&str> = s.projection.state.cash.keys().map(String::as_str).collect();
    assert_eq!(pots, vec![BTC, ETH]);
    assert_eq!(s.projection.state.equity.start, d("2000"));
    s.trade(
        ETH,
        d("100"),
        d("95"),
        d("110"),
        d("1"),
        Exit::TakeProfit,
        d("110"),
        1,
    );
    // ETH: +10 gross, fees 0.4% of 100 and 0.4% of 110.
    assert_eq!(s.projection.state.cash[ETH].0, d("1009.16"));
    assert_eq!(s.projection.state.cash[BTC].0, d("1000"));

    let mut s = start(CapitalMode::Portfolio, "1000");
    let pots: Vec<&str> = s.projection.state.cash.keys().map(String::as_str).collect();
    assert_eq!(pots, vec![PORTFOLIO_POT]);
    assert_eq!(PORTFOLIO_POT, "portfolio");
    assert_eq!(s.projection.state.equity.start, d("1000"));
    s.trade(
        ETH,
        d("100"),
        d("95"),
        d("110"),
        d("1"),
        Exit::TakeProfit,
        d("110"),
        1,
    );
    s.trade(
        BTC,
        d("100"),
        d("95"),
        d("110"),
        d("1"),
        Exit::StopLoss,
        d("95"),
        1,
    );
    // + 10 − 0.84 (ETH), − 5 − 0.4 − 0.57 (BTC, the stop fills as taker)
    assert_eq!(s.projection.state.cash.len(), 1);
    assert_eq!(s.projection.state.cash[PORTFOLIO_POT].0, d("1003.19"));
    assert_eq!(s.projection.state.equity.cash, d("1003.19"));
}

// ---------------------------------------------------------------- audit coverage

struct Manual {
    outcome: DecisionOutcome,
    bracket: bool,
    ack: bool,
    verify: bool,
    ack_after_first_fill: bool,
}

const COMPLETE: Manual = Manual {
    outcome: DecisionOutcome::Enter,
    bracket: true,
    ack: true,
    verify: true,
    ack_after_first_fill: false,
};

/// A whole BTC trade written event by event (entry of 2 in two fills at 100,
/// exit at 110), with the trail `m` asks for. Returns the trade id.
fn manual_trade(s: &mut Scenario, id: &str, m: Manual) -> String {
    s.candle(BTC, d("100"));
    let decision = s.decision(BTC, m.outcome, None);
    let coid = format!("{id}-entry");
    let mut entry_order = order(&coid, decision, BTC, Side::Buy, OrderPurpose::Entry, "2");
    if !m.bracket {
        entry_order.bracket = None;
    }
    let order_seq = push(s, entry_order);
    let entry = Entry {
        coid: coid.clone(),
        order_seq,
    };
    push(
        s,
        transition(BTC, EngineState::Idle, EngineState::EntryPending, order_seq),
    );
    if m.ack && !m.ack_after_first_fill {
        push(s, ack(&entry));
    }
    if m.verify {
        push(
            s,
            BracketVerified {
                client_order_id: coid.clone(),
                order_seq,
                take_profit_order_id: "tp".into(),
                stop_order_id: "sl".into(),
            },
        );
    }
    let first = push(
        s,
        fill(&coid, order_seq, FillLeg::Entry, Side::Buy, "100", "1", "0"),
    );
    if m.ack_after_first_fill {
        push(s, ack(&entry));
    }
    push(
        s,
        fill(&coid, order_seq, FillLeg::Entry, Side::Buy, "100", "1", "0"),
    );
    push(
        s,
        transition(
            BTC,
            EngineState::EntryPending,
            EngineState::PositionOpen,
            first,
        ),
    );
    let exit_fill = if m.bracket {
        push(
            s,
            fill(
                &coid,
                order_seq,
                FillLeg::TakeProfit,
                Side::Sell,
                "110",
                "2",
                "0",
            ),
        )
    } else {
        let decision = s.decision(
            BTC,
            DecisionOutcome::Exit {
                reason: ExitReason::Signal,
            },
            None,
        );
        let exit_coid = format!("{id}-exit");
        let exit_seq = push(
            s,
            order(
                &exit_coid,
                decision,
                BTC,
                Side::Sell,
                OrderPurpose::Exit,
                "2",
            ),
        );
        push(
            s,
            fill(
                &exit_coid,
                exit_seq,
                FillLeg::Exit,
                Side::Sell,
                "110",
                "2",
                "0",
            ),
        )
    };
    push(
        s,
        transition(
            BTC,
            EngineState::PositionOpen,
            EngineState::Reconcile,
            exit_fill,
        ),
    );
    let close = closed(
        id,
        BTC,
        &entry,
        first,
        exit_fill,
        "2",
        "100",
        "110",
        "0",
        s.now_ms(),
    );
    let closed_seq = push(s, close);
    push(
        s,
        transition(BTC, EngineState::Reconcile, EngineState::Idle, closed_seq),
    );
    id.to_string()
}

#[test]
fn audit_coverage_counts_complete_trails_and_names_the_gaps() {
    let mut s = start(CapitalMode::Independent, "1000");
    s.trade(
        BTC,
        d("100"),
        d("95"),
        d("110"),
        d("1"),
        Exit::TakeProfit,
        d("110"),
        1,
    );
    s.trade(
        ETH,
        d("100"),
        d("95"),
        d("110"),
        d("1"),
        Exit::Order(ExitReason::Signal),
        d("104"),
        2,
    );
    manual_trade(&mut s, "M-complete", COMPLETE);
    assert_eq!(s.projection.state.audit.trades, 3);
    assert_eq!(s.projection.state.audit.complete, 3);
    assert!(s.projection.state.audit.incomplete.is_empty());

    manual_trade(
        &mut s,
        "M-unverified",
        Manual {
            verify: false,
            ..COMPLETE
        },
    );
    manual_trade(
        &mut s,
        "M-naked",
        Manual {
            bracket: false,
            verify: false,
            ..COMPLETE
        },
    );
    manual_trade(
        &mut s,
        "M-unacked",
        Manual {
            ack: false,
            ..COMPLETE
        },
    );
    manual_trade(
        &mut s,
        "M-hold",
        Manual {
            outcome: DecisionOutcome::Hold,
            ..COMPLETE
        },
    );
    manual_trade(
        &mut s,
        "M-late-ack",
        Manual {
            ack_after_first_fill: true,
            ..COMPLETE
        },
    );
    manual_trade(
        &mut s,
        "M-worst",
        Manual {
            outcome: DecisionOutcome::Rejected {
                reason_code: "min_notional".into(),
            },
            bracket: false,
            ack: false,
            verify: false,
            ack_after_first_fill: false,
        },
    );
    let audit = &s.projection.state.audit;
    assert_eq!((audit.trades, audit.complete), (9, 3));
    let incomplete: Vec<(&str, &[AuditGap])> = audit
        .incomplete
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    assert_eq!(
        incomplete,
        vec![
            ("M-hold", &[AuditGap::DecisionNotEnter][..]),
            ("M-late-ack", &[AuditGap::OutOfOrder][..]),
            ("M-naked", &[AuditGap::NoBracket][..]),
            ("M-unacked", &[AuditGap::NotAcknowledged][..]),
            ("M-unverified", &[AuditGap::BracketNotVerified][..]),
            (
                "M-worst",
                &[
                    AuditGap::DecisionNotEnter,
                    AuditGap::NoBracket,
                    AuditGap::NotAcknowledged
                ][..]
            ),
        ]
    );
    assert_eq!(AuditGap::BracketNotVerified.name(), "bracket_not_verified");
}

// ---------------------------------------------------------------- data quality, runs

#[test]
fn data_quality_is_counted_per_symbol() {
    let mut s = start(CapitalMode::Independent, "1000");
    s.candle(BTC, d("101"));
    s.quality(
        BTC,
        QualityIssue::Gap {
            after_ms: T0,
            before_ms: T0 + 16 * HOUR,
            missing_bars: 3,
        },
    );
    s.quality(
        BTC,
        QualityIssue::Gap {
            after_ms: T0,
            before_ms: T0 + 12 * HOUR,
            missing_bars: 2,
        },
    );
    s.quality(BTC, QualityIssue::Duplicate { open_ms: T0 });
    s.quality(
        BTC,
        QualityIssue::OutOfOrder {
            open_ms: T0,
            previous_ms: T0 + 1,
        },
    );
    s.quality(
        BTC,
        QualityIssue::VolumeAnomaly {
            open_ms: T0,
            volume: d("1000000"),
        },
    );
    s.quality(BTC, QualityIssue::InvalidCandle { open_ms: T0 });
    s.quality(
        BTC,
        QualityIssue::InvalidCandle {
            open_ms: T0 + 4 * HOUR,
        },
    );
    s.quality(
        ETH,
        QualityIssue::Stale {
            newest_ms: T0,
            age_ms: 60_000,
        },
    );
    let quality = &s.projection.state.quality;
    assert_eq!(
        quality.keys().map(String::as_str).collect::<Vec<_>>(),
        vec![BTC, ETH]
    );
    assert_eq!(
        quality[BTC],
        QualityCounts {
            candles: 2,
            gaps: 2,
            missing_bars: 5,
            duplicates: 1,
            out_of_order: 1,
            volume_anomalies: 1,
            invalid: 2,
            stale: 0,
        }
    );
    assert_eq!(
        quality[ETH],
        QualityCounts {
            candles: 1,
            stale: 1,
            ..QualityCounts::default()
        }
    );
}

#[test]
fn the_run_row_describes_the_run() {
    let mut s = Scenario::new(&[BTC, ETH], CapitalMode::Portfolio, d("2500"), T0);
    {
        let run = s.projection.state.run.as_ref().unwrap();
        assert_eq!(run.run_id, "testkit1");
        assert_eq!(
            (run.run_mode, run.capital_mode),
            (RunMode::ReplayBacktest, CapitalMode::Portfolio)
        );
        assert_eq!(
            (run.market_time_basis, run.data_integrity),
            (MarketTimeBasis::CandleTimestamp, DataIntegrity::Ok)
        );
        assert_eq!(
            (run.created_by.as_str(), run.git_sha.as_str()),
            ("testkit", "testkit")
        );
        assert_eq!(
            run.config_hash,
            Hash32::from(blake3::hash(b"testkit config")).to_hex()
        );
        assert_eq!(run.symbols, vec![BTC.to_string(), ETH.to_string()]);
        assert_eq!(
            (run.granularity_s, run.start_ms, run.end_ms),
            (14_400, T0, None)
        );
        assert_eq!(run.starting_capital, d("2500"));
        assert_eq!(
            (run.started_ms, run.completed_ms, run.completion.as_deref()),
            (T0, None, None)
        );
        assert_eq!(
            (run.candles, run.trades_opened, run.trades_closed),
            (0, 0, 0)
        );
    }
    s.candle(BTC, d("100"));
    s.candle_same_bar(ETH, d("100"));
    s.trade(
        BTC,
        d("100"),
        d("95"),
        d("110"),
        d("1"),
        Exit::TakeProfit,
        d("110"),
        2,
    );
    s.cancelled_entry(ETH, d("100"), d("1"));
    s.candle(ETH, d("100"));
    let end = s.now_ms();
    let p = fold(&s.finish()).unwrap();
    let run = p.state.run.as_ref().unwrap();
    // 2 + 1 (entry bar) + 2 (held) + 1
    assert_eq!(run.candles, 6);
    assert_eq!((run.trades_opened, run.trades_closed), (1, 1));
    assert_eq!(
        (run.completed_ms, run.completion.as_deref()),
        (Some(end), Some("end of data"))
    );
    assert_eq!(
        (p.state.first_market_ms, p.state.last_market_ms),
        (Some(T0), Some(end))
    );
    // finish() writes a checkpoint, verified by the fold.
    assert_eq!(p.links.checkpoints_verified, 1);
}

#[test]
fn the_fixture_folds_through_every_state_and_exit() {
    let events = fixture_events();
    let p = fold(&events).unwrap();
    let state = &p.state;
    assert_eq!(state.trades.len(), 6);
    assert_eq!((state.audit.trades, state.audit.complete), (6, 6));
    let reasons: Vec<ExitReason> = state.trades.iter().map(|t| t.exit_reason).collect();
    use ExitReason::*;
    assert_eq!(
        reasons,
        vec![TakeProfit, StopLoss, Signal, Manual, Emergency, StopLoss]
    );
    for symbol in [BTC, ETH] {
        let s = &state.symbols[symbol];
        assert_eq!(s.engine.0, EngineState::Idle);
        assert_eq!(
            (
                s.in_flight.as_ref(),
                s.fail_closed.as_ref(),
                s.open_trade.as_ref()
            ),
            (None, None, None)
        );
        assert!(s.position.quantity.is_zero());
        // Cash per pot is the starting capital plus what the symbol's trades netted.
        let netted: Decimal = state
            .trades
            .iter()
            .filter(|t| t.symbol == symbol)
            .map(|t| t.net_pnl)
            .sum();
        assert_eq!(state.cash[symbol].0, d("500") + netted);
        assert_eq!(s.position.realized_net(), netted);
    }
    assert_eq!(
        state.fees_total,
        state.trades.iter().map(|t| t.fees).sum::<Decimal>()
    );
    assert!(state.orders.is_empty());
    assert_eq!(state.quality[BTC].gaps, 1);
    assert_eq!(state.quality[ETH].duplicates, 1);
    assert_eq!(p.links.checkpoints_verified, 2);
    assert_eq!(state.run.as_ref().unwrap().trades_opened, 6);
}

#[test]
fn a_client_order_id_is_never_placed_twice_even_after_it_ended() {
    let mut s = start(CapitalMode::Independent, "1000");
    let entry = entry_pending(&mut s, BTC, "1");
    push(&mut s, cancel(&entry));
    let idle_at = s.projection.seq();
    push(
        &mut s,
        transition(BTC, EngineState::EntryPending, EngineState::Idle, idle_at),
    );
    let decision = s.decision(BTC, DecisionOutcome::Enter, None);
    expect_detail(
        &s,
        order(
            &entry.coid,
            decision,
            BTC,
            Side::Buy,
            OrderPurpose::Entry,
            "1",
        ),
        Rule::OrderLifecycle,
        "placed before",
    );
    accepts(
        &s,
        order(
            "A-NEW-ID",
            decision,
            BTC,
            Side::Buy,
            OrderPurpose::Entry,
            "1",
        ),
    );
}

#[test]
fn run_completed_and_candles_must_match_the_run() {
    let mut s = start(CapitalMode::Independent, "1000");
    let mut wrong_run = RunCompleted {
        run_id: "another-run".into(),
        end_ms: s.now_ms(),
        candles: 0,
        reason: "end".into(),
    };
    expect_detail(&s, wrong_run.clone(), Rule::RunLifecycle, "another-run");
    wrong_run.run_id = s.projection.state.run.as_ref().unwrap().run_id.clone();
    accepts(&s, wrong_run);
    let mut hourly = candle(BTC, s.now_ms(), "100");
    hourly.granularity_s = 3600;
    expect_detail(&s, hourly, Rule::Domain, "3600s candle in a 14400s run");
    s.candle(BTC, d("100"));
}

#[test]
fn a_fill_counts_once() {
    // A broker's answers can repeat (overlapping polls of a real exchange's
    // fills): the same fill id of the same order is refused the second time.
    let mut s = start(CapitalMode::Independent, "1000");
    let entry = entry_pending(&mut s, BTC, "2");
    let part = fill(
        &entry.coid,
        entry.order_seq,
        FillLeg::Entry,
        Side::Buy,
        "100",
        "1",
        "0.1",
    );
    push(&mut s, part.clone());
    expect_detail(&s, part.clone(), Rule::FillMismatch, "journaled before");
    // The same size at the same price under another fill id is another fill.
    accepts(
        &s,
        Fill {
            fill_id: "another".into(),
            ..part
        },
    );
}
