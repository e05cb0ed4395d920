//! The simulated exchange (`exchange.rs`) driven by hand: orders go in through
//! `Broker::place`, bars through `Broker::on_candle`, and every fill, price,
//! fee, liquidity and id that comes back is checked against the rules in the
//! module's documentation and the shipped cost model (config/default.toml).

mod common;

use anx_journal::*;
use anx_projections::engine::config::Config;
use anx_replays::exchange::{exchange_id, Broker, BrokerEvent, SimExchange};
use common::*;
use rust_decimal::Decimal;

/// High liquidity tier: 2 bps slippage.
const BTC: &str = "BTC-USD";
/// Medium tier: 5 bps.
const SOL: &str = "SOL-USD";
/// No spec of its own: `products.default`, low tier, 10 bps.
const XRP: &str = "XRP-USD";

const ENTRY_SEQ: Seq = 10;
const ENTRY_ID: &str = "ANX4_test_entry";
const EXIT_SEQ: Seq = 20;
const EXIT_ID: &str = "ANX4_test_exit";

fn bar(symbol: &str, i: i64, o: &str, h: &str, l: &str, c: &str) -> Candle {
    Candle {
        symbol: symbol.into(),
        granularity_s: 14_400,
        open_ms: T0 + i * BAR_MS,
        open: d(o),
        high: d(h),
        low: d(l),
        close: d(c),
        volume: d("10"),
    }
}

/// Take-profit 110, stop trigger 95, stop-limit 95 × (1 − 5%) = 90.25.
fn legs() -> BracketLegs {
    BracketLegs {
        take_profit_limit: d("110"),
        stop_trigger: d("95"),
        stop_limit: d("90.25"),
    }
}

fn entry(symbol: &str, limit: &str, bracket: Option<BracketLegs>, post_only: bool) -> OrderPlaced {
    OrderPlaced {
        client_order_id: ENTRY_ID.into(),
        decision_seq: ENTRY_SEQ - 1,
        product_id: symbol.into(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        purpose: OrderPurpose::Entry,
        limit_price: Some(d(limit)),
        stop_trigger: None,
        base_size: d("0.5"),
        post_only,
        bracket,
        payload: "{}".into(),
    }
}

fn market_exit(symbol: &str) -> OrderPlaced {
    OrderPlaced {
        client_order_id: EXIT_ID.into(),
        decision_seq: EXIT_SEQ - 1,
        product_id: symbol.into(),
        side: Side::Sell,
        order_type: OrderType::Market,
        purpose: OrderPurpose::Exit,
        limit_price: None,
        stop_trigger: None,
        base_size: d("0.5"),
        post_only: false,
        bracket: None,
        payload: "{}".into(),
    }
}

/// The journal events a broker answered with.
fn journal(events: Vec<BrokerEvent>) -> Vec<Event> {
    events
        .into_iter()
        .map(|answer| answer.event().clone())
        .collect()
}

fn fill(leg: FillLeg, side: Side, price: &str, fee: &str, liquidity: Liquidity, n: u32) -> Event {
    let (id, seq) = match leg {
        FillLeg::Exit => (EXIT_ID, EXIT_SEQ),
        _ => (ENTRY_ID, ENTRY_SEQ),
    };
    Event::Fill(Fill {
        client_order_id: id.into(),
        order_seq: seq,
        fill_id: format!("{}-F{n}", exchange_id(id)),
        leg,
        side,
        price: d(price),
        size: d("0.5"),
        fee: d(fee),
        liquidity,
    })
}

fn ack(id: &str, seq: Seq) -> Event {
    Event::OrderAcknowledged(OrderAcknowledged {
        client_order_id: id.into(),
        order_seq: seq,
        exchange_order_id: exchange_id(id),
    })
}

/// Asserts a broker's answer as journal events (decimals compare by value:
/// 110 == 110.00).
#[track_caller]
fn assert_events(got: Vec<BrokerEvent>, want: Vec<Event>) {
    assert_eq!(journal(got), want);
}

/// An exchange that saw a bar close at 100, then took the bracketed entry
/// (limit 99) and filled it on the next bar (low 98.9, above the stop).
fn filled_long(config: Config, symbol: &str) -> SimExchange {
    let mut ex = SimExchange::new(config);
    assert!(ex
        .on_candle(&bar(symbol, 0, "100", "101", "99.5", "100"))
        .is_empty());
    ex.place(ENTRY_SEQ, &entry(symbol, "99", Some(legs()), false));
    assert_events(
        ex.on_candle(&bar(symbol, 1, "100", "100.5", "98.9", "99.5")),
        vec![fill(
            FillLeg::Entry,
            Side::Buy,
            "99",
            "0.198", // 99 × 0.5 × 40 bps
            Liquidity::Maker,
            1,
        )],
    );
    ex
}

// ------------------------------------------------------------- placement

#[test]
fn a_bracketed_entry_is_acknowledged_and_its_bracket_verified_with_deterministic_ids() {
    let mut ex = SimExchange::new(default_config());
    // The exchange's ids derive from the client order id, never from a seq:
    // the same order placed at another seq gets the same ids.
    let id = exchange_id(ENTRY_ID);
    assert!(id.starts_with("SIM-") && id.len() == 24, "{id}");
    assert!(
        !id.contains(ENTRY_ID),
        "opaque, like a real exchange's: {id}"
    );
    assert_ne!(id, exchange_id(EXIT_ID));
    assert_events(
        ex.place(42, &entry(BTC, "99", Some(legs()), false)),
        vec![
            Event::OrderAcknowledged(OrderAcknowledged {
                client_order_id: ENTRY_ID.into(),
                order_seq: 42,
                exchange_order_id: id.clone(),
            }),
            Event::BracketVerified(BracketVerified {
                client_order_id: ENTRY_ID.into(),
                order_seq: 42,
                take_profit_order_id: format!("{id}-TP"),
                stop_order_id: format!("{id}-SL"),
            }),
        ],
    );
    let mut elsewhere = SimExchange::new(default_config());
    let acked = journal(elsewhere.place(7, &entry(BTC, "99", Some(legs()), false)));
    assert!(
        matches!(&acked[0], Event::OrderAcknowledged(a) if a.exchange_order_id == id),
        "{acked:?}"
    );
    // Without attached legs there is nothing to verify.
    let mut ex = SimExchange::new(default_config());
    assert_events(
        ex.place(7, &entry(BTC, "99", None, false)),
        vec![ack(ENTRY_ID, 7)],
    );
    // A market exit is acknowledged only.
    assert_events(ex.place(8, &market_exit(BTC)), vec![ack(EXIT_ID, 8)]);
}

#[test]
fn the_same_orders_and_bars_give_the_same_events() {
    let script = || {
        let mut ex = SimExchange::new(default_config());
        let mut all = Vec::new();
        all.extend(journal(
            ex.on_candle(&bar(BTC, 0, "100", "101", "99", "100")),
        ));
        all.extend(journal(
            ex.place(ENTRY_SEQ, &entry(BTC, "99", Some(legs()), false)),
        ));
        all.extend(journal(
            ex.on_candle(&bar(BTC, 1, "100", "100", "98", "99")),
        ));
        all.extend(journal(
            ex.on_candle(&bar(BTC, 2, "99", "112", "98", "111")),
        ));
        all
    };
    let first = script();
    assert_eq!(first.len(), 4, "{first:#?}");
    assert_eq!(first, script());
}

// ------------------------------------------------------------------ entries

#[test]
fn an_entry_fills_at_its_limit_when_a_later_bar_trades_through_it() {
    let mut ex = SimExchange::new(default_config());
    ex.on_candle(&bar(BTC, 0, "100", "101", "99.5", "100"));
    ex.place(ENTRY_SEQ, &entry(BTC, "99", Some(legs()), false));
    // Opens above the limit, trades down through it: filled at the limit, maker.
    assert_events(
        ex.on_candle(&bar(BTC, 1, "100", "100.5", "98.5", "99.5")),
        vec![fill(
            FillLeg::Entry,
            Side::Buy,
            "99",
            "0.198",
            Liquidity::Maker,
            1,
        )],
    );
}

#[test]
fn an_entry_fills_at_the_open_when_the_bar_opens_below_the_limit() {
    let mut ex = SimExchange::new(default_config());
    ex.on_candle(&bar(BTC, 0, "100", "101", "99.5", "100"));
    ex.place(ENTRY_SEQ, &entry(BTC, "99", Some(legs()), false));
    assert_events(
        ex.on_candle(&bar(BTC, 1, "98", "98.5", "97", "98.2")),
        vec![fill(
            FillLeg::Entry,
            Side::Buy,
            "98",
            "0.196", // 98 × 0.5 × 40 bps
            Liquidity::Maker,
            1,
        )],
    );
}

#[test]
fn an_entry_never_fills_on_the_bar_it_was_placed_after() {
    let mut ex = SimExchange::new(default_config());
    // This bar traded far below the limit, but the order did not exist yet.
    assert!(ex
        .on_candle(&bar(BTC, 0, "100", "101", "90", "100"))
        .is_empty());
    let placed = journal(ex.place(ENTRY_SEQ, &entry(BTC, "99", Some(legs()), false)));
    assert!(
        !placed.iter().any(|e| matches!(e, Event::Fill(_))),
        "{placed:#?}"
    );
    // The next bar stays above the limit: still working.
    assert!(ex
        .on_candle(&bar(BTC, 1, "100", "101", "99.5", "100"))
        .is_empty());
    // The one after trades through it: filled (its last bar before the TTL).
    assert_events(
        ex.on_candle(&bar(BTC, 2, "100", "100", "98.5", "99")),
        vec![fill(
            FillLeg::Entry,
            Side::Buy,
            "99",
            "0.198",
            Liquidity::Maker,
            1,
        )],
    );
}

#[test]
fn a_post_only_entry_above_the_last_close_is_rejected() {
    let mut ex = SimExchange::new(default_config());
    ex.on_candle(&bar(BTC, 0, "100", "101", "99.5", "100"));
    assert_events(
        ex.place(ENTRY_SEQ, &entry(BTC, "100.01", Some(legs()), true)),
        vec![Event::OrderRejected(OrderRejected {
            client_order_id: ENTRY_ID.into(),
            order_seq: ENTRY_SEQ,
            reason: "INVALID_LIMIT_PRICE_POST_ONLY".into(),
        })],
    );
    // A rejected order never works: a bar through its limit fills nothing.
    assert!(ex
        .on_candle(&bar(BTC, 1, "100", "100", "90", "95"))
        .is_empty());

    // At the last close it rests on the book: accepted.
    let mut ex = SimExchange::new(default_config());
    ex.on_candle(&bar(BTC, 0, "100", "101", "99.5", "100"));
    let placed = journal(ex.place(ENTRY_SEQ, &entry(BTC, "100", Some(legs()), true)));
    assert_eq!(placed[0], ack(ENTRY_ID, ENTRY_SEQ));

    // Not post-only, the same limit is accepted and fills at the open below it.
    let mut ex = SimExchange::new(default_config());
    ex.on_candle(&bar(BTC, 0, "100", "101", "99.5", "100"));
    let placed = journal(ex.place(ENTRY_SEQ, &entry(BTC, "100.01", Some(legs()), false)));
    assert_eq!(placed[0], ack(ENTRY_ID, ENTRY_SEQ));
    assert_events(
        ex.on_candle(&bar(BTC, 1, "100", "100.5", "99.8", "100.2")),
        vec![fill(
            FillLeg::Entry,
            Side::Buy,
            "100",
            "0.2",
            Liquidity::Maker,
            1,
        )],
    );
}

#[test]
fn an_unfilled_entry_is_cancelled_after_its_time_to_live() {
    let config = default_config();
    assert_eq!(config.orders.entry_ttl_bars, 2);
    for ttl in [1u32, 2, 3] {
        let mut config = default_config();
        config.orders.entry_ttl_bars = ttl;
        let mut ex = SimExchange::new(config);
        ex.on_candle(&bar(BTC, 0, "100", "101", "99.5", "100"));
        ex.place(ENTRY_SEQ, &entry(BTC, "95", Some(legs()), false));
        for i in 1..i64::from(ttl) {
            assert!(
                ex.on_candle(&bar(BTC, i, "100", "101", "96", "100"))
                    .is_empty(),
                "ttl {ttl}: bar {i} must leave the entry working"
            );
        }
        assert_events(
            ex.on_candle(&bar(BTC, i64::from(ttl), "100", "101", "96", "100")),
            vec![Event::OrderCancelled(OrderCancelled {
                client_order_id: ENTRY_ID.into(),
                order_seq: ENTRY_SEQ,
                reason: "time to live expired".into(),
            })],
        );
        // Gone: a later bar through the limit fills nothing.
        assert!(
            ex.on_candle(&bar(BTC, i64::from(ttl) + 1, "96", "97", "90", "91"))
                .is_empty(),
            "ttl {ttl}"
        );
    }
}

#[test]
fn cancel_ends_a_working_entry_only() {
    let mut ex = SimExchange::new(default_config());
    ex.on_candle(&bar(BTC, 0, "100", "101", "99.5", "100"));
    ex.place(ENTRY_SEQ, &entry(BTC, "95", Some(legs()), false));
    assert!(ex.cancel("no-such-order", "operator").is_empty());
    assert_events(
        ex.cancel(ENTRY_ID, "operator"),
        vec![Event::OrderCancelled(OrderCancelled {
            client_order_id: ENTRY_ID.into(),
            order_seq: ENTRY_SEQ,
            reason: "operator".into(),
        })],
    );
    assert!(ex.cancel(ENTRY_ID, "again").is_empty());
    assert!(ex
        .on_candle(&bar(BTC, 1, "96", "97", "90", "91"))
        .is_empty());

    // A filled entry is a position with a bracket, not a cancellable order.
    let mut ex = filled_long(default_config(), BTC);
    assert!(ex.cancel(ENTRY_ID, "operator").is_empty());
    assert_events(
        ex.on_candle(&bar(BTC, 2, "105", "110.5", "104", "109")),
        vec![fill(
            FillLeg::TakeProfit,
            Side::Sell,
            "110",
            "0.22",
            Liquidity::Maker,
            2,
        )],
    );
}

#[test]
fn bars_of_another_symbol_do_not_touch_an_order() {
    let mut ex = SimExchange::new(default_config());
    ex.on_candle(&bar(BTC, 0, "100", "101", "99.5", "100"));
    ex.place(ENTRY_SEQ, &entry(BTC, "99", Some(legs()), false));
    assert!(ex
        .on_candle(&bar(SOL, 1, "90", "91", "80", "85"))
        .is_empty());
    assert!(ex
        .on_candle(&bar(SOL, 2, "85", "86", "80", "85"))
        .is_empty());
    // Its time to live counts its own symbol's bars: still working.
    assert_eq!(
        journal(ex.on_candle(&bar(BTC, 1, "100", "100", "98", "99"))).len(),
        1
    );
}

// ------------------------------------------------------------------ bracket

#[test]
fn the_take_profit_fills_at_its_limit_as_maker() {
    let mut ex = filled_long(default_config(), BTC);
    assert_events(
        ex.on_candle(&bar(BTC, 2, "105", "110.5", "104", "109")),
        vec![fill(
            FillLeg::TakeProfit,
            Side::Sell,
            "110",
            "0.22", // 110 × 0.5 × 40 bps
            Liquidity::Maker,
            2,
        )],
    );
    // Done: the stop leg went with it.
    assert!(ex
        .on_candle(&bar(BTC, 3, "100", "101", "80", "85"))
        .is_empty());
}

#[test]
fn the_take_profit_fills_at_the_open_when_the_bar_opens_above_it() {
    let mut ex = filled_long(default_config(), BTC);
    assert_events(
        ex.on_candle(&bar(BTC, 2, "111", "112", "110.5", "111.5")),
        vec![fill(
            FillLeg::TakeProfit,
            Side::Sell,
            "111",
            "0.222",
            Liquidity::Maker,
            2,
        )],
    );
}

#[test]
fn a_bar_short_of_both_legs_fills_nothing() {
    let mut ex = filled_long(default_config(), BTC);
    assert!(ex
        .on_candle(&bar(BTC, 2, "100", "109.99", "95.01", "105"))
        .is_empty());
    assert_eq!(
        journal(ex.on_candle(&bar(BTC, 3, "105", "110", "104", "109"))).len(),
        1
    );
}

#[test]
fn the_stop_fills_at_its_trigger_less_the_tier_slippage_as_taker() {
    // Trigger 95 reached inside the bar (opened above it).
    for (symbol, price, fee) in [
        (BTC, "94.98", "0.28494"), // 95 × (1 − 2 bps) = 94.981 → 94.98
        (SOL, "94.95", "0.28485"), // 95 × (1 − 5 bps) = 94.9525 → 94.95
        (XRP, "94.90", "0.2847"),  // 95 × (1 − 10 bps) = 94.905 → 94.90
    ] {
        let mut ex = filled_long(default_config(), symbol);
        assert_events(
            ex.on_candle(&bar(symbol, 2, "97", "97.5", "94", "94.5")),
            vec![fill(
                FillLeg::StopLoss,
                Side::Sell,
                price,
                fee, // price × 0.5 × 60 bps
                Liquidity::Taker,
                2,
            )],
        );
        // Done: the take-profit went with it.
        assert!(
            ex.on_candle(&bar(symbol, 3, "100", "120", "99", "115"))
                .is_empty(),
            "{symbol}"
        );
    }
}

#[test]
fn a_stop_gapped_through_fills_at_the_open_less_slippage() {
    // Opens at 93: below the trigger, above the 90.25 stop-limit.
    let mut ex = filled_long(default_config(), BTC);
    assert_events(
        ex.on_candle(&bar(BTC, 2, "93", "93.5", "92", "92.5")),
        vec![fill(
            FillLeg::StopLoss,
            Side::Sell,
            "92.98", // 93 × (1 − 2 bps) = 92.9814
            "0.27894",
            Liquidity::Taker,
            2,
        )],
    );
}

#[test]
fn a_stop_fill_is_never_below_the_stop_limit() {
    // Opens a cent above the stop-limit: 90.26 less 10 bps is 90.16, below the
    // limit; a stop-limit cannot sell below its limit.
    let mut ex = filled_long(default_config(), XRP);
    assert_events(
        ex.on_candle(&bar(XRP, 2, "90.26", "90.5", "89", "89.5")),
        vec![fill(
            FillLeg::StopLoss,
            Side::Sell,
            "90.25",
            "0.270750",
            Liquidity::Taker,
            2,
        )],
    );
    // Opening exactly at the limit still fills, at the limit.
    let mut ex = filled_long(default_config(), BTC);
    let events = journal(ex.on_candle(&bar(BTC, 2, "90.25", "90.5", "89", "89.5")));
    assert_eq!(events.len(), 1);
    let Event::Fill(f) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!((f.leg, f.price), (FillLeg::StopLoss, d("90.25")));
}

#[test]
fn a_bar_that_could_hit_both_legs_takes_the_stop() {
    let mut ex = filled_long(default_config(), BTC);
    assert_events(
        ex.on_candle(&bar(BTC, 2, "100", "111", "94", "100")),
        vec![fill(
            FillLeg::StopLoss,
            Side::Sell,
            "94.98",
            "0.28494",
            Liquidity::Taker,
            2,
        )],
    );
    assert!(ex
        .on_candle(&bar(BTC, 3, "100", "115", "99", "112"))
        .is_empty());
}

#[test]
fn a_bar_opening_below_the_stop_limit_leaves_the_stop_resting_until_price_returns() {
    let mut ex = filled_long(default_config(), BTC);
    // Gaps to 88, below the 90.25 limit: triggered but unfilled, no event.
    assert!(ex
        .on_candle(&bar(BTC, 2, "88", "89", "85", "86"))
        .is_empty());
    // Still below the limit: still resting.
    assert!(ex
        .on_candle(&bar(BTC, 3, "86", "90.2", "85", "90"))
        .is_empty());
    // Trades back up through the limit (and past the take-profit, which no
    // longer exists): the resting stop-limit fills at its limit.
    assert_events(
        ex.on_candle(&bar(BTC, 4, "89", "111", "88", "108")),
        vec![fill(
            FillLeg::StopLoss,
            Side::Sell,
            "90.25",
            "0.1805", // a resting limit: maker, 40 bps
            Liquidity::Maker,
            2,
        )],
    );
    assert!(ex
        .on_candle(&bar(BTC, 5, "108", "115", "80", "100"))
        .is_empty());
}

#[test]
fn in_the_entry_bar_only_the_stop_may_fill() {
    // The entry bar also reaches the take-profit: only the entry fills.
    let mut ex = SimExchange::new(default_config());
    ex.on_candle(&bar(BTC, 0, "100", "101", "99.5", "100"));
    ex.place(ENTRY_SEQ, &entry(BTC, "99", Some(legs()), false));
    assert_events(
        ex.on_candle(&bar(BTC, 1, "100", "111", "98", "108")),
        vec![fill(
            FillLeg::Entry,
            Side::Buy,
            "99",
            "0.198",
            Liquidity::Maker,
            1,
        )],
    );
    assert!(ex
        .on_candle(&bar(BTC, 2, "108", "109", "100", "108.5"))
        .is_empty());
    assert_events(
        ex.on_candle(&bar(BTC, 3, "108.5", "110.2", "108", "110")),
        vec![fill(
            FillLeg::TakeProfit,
            Side::Sell,
            "110",
            "0.22",
            Liquidity::Maker,
            2,
        )],
    );

    // The entry bar reaches the stop: entry and stop fill in the same bar,
    // the stop at the trigger less slippage.
    let mut ex = SimExchange::new(default_config());
    ex.on_candle(&bar(BTC, 0, "100", "101", "99.5", "100"));
    ex.place(ENTRY_SEQ, &entry(BTC, "99", Some(legs()), false));
    assert_events(
        ex.on_candle(&bar(BTC, 1, "100", "100.5", "94", "94.5")),
        vec![
            fill(
                FillLeg::Entry,
                Side::Buy,
                "99",
                "0.198",
                Liquidity::Maker,
                1,
            ),
            fill(
                FillLeg::StopLoss,
                Side::Sell,
                "94.98",
                "0.28494",
                Liquidity::Taker,
                2,
            ),
        ],
    );

    // The entry bar opens below the stop-limit: the entry fills at the open,
    // the stop triggers at once but cannot fill; it rests.
    let mut ex = SimExchange::new(default_config());
    ex.on_candle(&bar(BTC, 0, "100", "101", "99.5", "100"));
    ex.place(ENTRY_SEQ, &entry(BTC, "99", Some(legs()), false));
    assert_events(
        ex.on_candle(&bar(BTC, 1, "89", "89.5", "88", "89")),
        vec![fill(
            FillLeg::Entry,
            Side::Buy,
            "89",
            "0.178",
            Liquidity::Maker,
            1,
        )],
    );
    let later = journal(ex.on_candle(&bar(BTC, 2, "89", "91", "88", "90")));
    assert_eq!(later.len(), 1);
    let Event::Fill(f) = &later[0] else {
        panic!("{later:?}")
    };
    assert_eq!((f.leg, f.price), (FillLeg::StopLoss, d("90.25")));
}

// -------------------------------------------------------------- market exit

#[test]
fn a_market_exit_fills_at_the_next_open_less_slippage_and_cancels_the_bracket() {
    let mut ex = filled_long(default_config(), BTC);
    assert_events(
        ex.place(EXIT_SEQ, &market_exit(BTC)),
        vec![ack(EXIT_ID, EXIT_SEQ)],
    );
    // This bar reaches both legs, but the exit executes at its open, first.
    assert_events(
        ex.on_candle(&bar(BTC, 2, "104", "111", "94", "100")),
        vec![fill(
            FillLeg::Exit,
            Side::Sell,
            "103.97", // 104 × (1 − 2 bps) = 103.9792
            "0.31191",
            Liquidity::Taker,
            1,
        )],
    );
    // The legs are gone.
    assert!(ex
        .on_candle(&bar(BTC, 3, "100", "120", "80", "100"))
        .is_empty());
    assert!(ex
        .on_candle(&bar(BTC, 4, "100", "120", "80", "100"))
        .is_empty());
}

#[test]
fn a_market_exit_also_cancels_a_resting_stop_limit() {
    let mut ex = filled_long(default_config(), BTC);
    assert!(ex
        .on_candle(&bar(BTC, 2, "88", "89", "85", "86"))
        .is_empty());
    ex.place(EXIT_SEQ, &market_exit(BTC));
    // Trades back above the resting stop-limit: only the exit fills.
    assert_events(
        ex.on_candle(&bar(BTC, 3, "86", "95", "85", "94")),
        vec![fill(
            FillLeg::Exit,
            Side::Sell,
            "85.98", // 86 × (1 − 2 bps) = 85.9828
            "0.25794",
            Liquidity::Taker,
            1,
        )],
    );
    assert!(ex
        .on_candle(&bar(BTC, 4, "94", "120", "80", "100"))
        .is_empty());
}

#[test]
fn fees_come_from_the_cost_model() {
    // Change the fee schedule and the slippage: the fills follow.
    let mut config = default_config();
    config.costs.maker_fee_bps = d("10");
    config.costs.taker_fee_bps = d("20");
    config.costs.slippage_bps.high = Decimal::ZERO;
    let mut ex = SimExchange::new(config.clone());
    ex.on_candle(&bar(BTC, 0, "100", "101", "99.5", "100"));
    ex.place(ENTRY_SEQ, &entry(BTC, "99", Some(legs()), false));
    assert_events(
        ex.on_candle(&bar(BTC, 1, "100", "100.5", "98.9", "99.5")),
        vec![fill(
            FillLeg::Entry,
            Side::Buy,
            "99",
            "0.0495",
            Liquidity::Maker,
            1,
        )],
    );
    assert_events(
        ex.on_candle(&bar(BTC, 2, "97", "97.5", "94", "94.5")),
        vec![fill(
            FillLeg::StopLoss,
            Side::Sell,
            "95",
            "0.095",
            Liquidity::Taker,
            2,
        )],
    );
}
