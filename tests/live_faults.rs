//! `anx live` under exchange faults, end to end: the real binary against the
//! fake Coinbase exchange (`tools/src/bin/fake-coinbase.rs`, its own process)
//! on the shared real 1h candles, the market moving in lock-step with the
//! trader; each scenario with its own fake and journal, a fault armed
//! (`POST /fake/fault`) right before the moment it should hit:
//!
//! - protection that never appears (`withhold_bracket`, children shown on
//!   fill): `BracketUnconfirmed` after the fill, `FailClosed`, the emergency
//!   exit at market and its trade, nothing held at the exchange, no entry since;
//! - an operator's exit: the bracket cancelled before the market SELL, the
//!   trade closed as manual;
//! - lost create answers (`lose_create_response`): each order made once,
//!   acknowledged once, the run deciding and trading as the replay does;
//! - a partly filled entry (`partial_fill`): the trade is the sum of its fills;
//! - a refused entry (`insufficient_fund`): rejected, fail-closed, no order;
//! - a 429 storm, 5xx answers and stalls: retried (a 429 after its
//!   Retry-After), nothing made twice, the run as the replay's;
//! - an entry that filled unseen when its time to live ends: its cancel
//!   leaves the bracket working;
//! - SIGKILL at chosen and random points of orders' lives: the same
//!   decisions and trades as an uninterrupted run, nothing made twice;
//! - an exchange restart (`restart`): survived, in agreement with the fake.

mod common;

use anx_journal::*;
use anx_projections::Projection;
use common::live::*;
use common::*;
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use std::process::Child;

/// The bar whose close the first BTC entry is decided on (the parity run's
/// first trade: `live_cli.rs`).
const BTC_ENTRY_S: i64 = 1_736_110_800; // 2025-01-05T21:00Z

/// One scenario: its directory, its fake, its journal and its trader.
struct Scenario {
    temp: tempfile::TempDir,
    fake: Fake,
    journal: PathBuf,
    trader: Child,
}

/// A trader left running by a failed test is killed with it.
impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = self.trader.kill();
        let _ = self.trader.wait();
    }
}

impl Scenario {
    fn start(fake_args: &[&str]) -> Scenario {
        let temp = tempfile::tempdir().unwrap();
        let cache = temp.path().join("cache");
        write_feed(&cache);
        let fake = Fake::start(&cache, fake_args);
        let journal = temp.path().join("live");
        let trader = spawn_live(&journal, &fake, &[]);
        Scenario {
            temp,
            fake,
            journal,
            trader,
        }
    }

    /// The market moves in lock-step with the trader from `from_s` to `to_s`.
    fn drive(&mut self, from_s: i64, to_s: i64) {
        drive(&self.fake, &self.journal, &mut self.trader, from_s, to_s);
    }

    /// Arms a fault at the fake (`POST /fake/fault`).
    fn arm(&self, fault: &str) {
        let answer = self.fake.control("POST", "/fake/fault", fault);
        assert!(answer.get("armed").is_some(), "{fault}: {answer}");
    }

    fn events(&self) -> Vec<StoredEvent> {
        events(&self.journal)
    }

    /// Waits (a minute at most) until the journal satisfies `done`.
    fn wait_until(&mut self, what: &str, done: impl Fn(&[StoredEvent]) -> bool) {
        let journal = self.journal.clone();
        wait_for(what, &self.journal, &mut self.trader, || {
            done(&events(&journal))
        });
    }

    /// A clean stop, then the journal verified.
    fn stop_and_verify(&mut self) {
        assert!(sigterm(&mut self.trader).success(), "{}", self.log());
        let verify = anx(&["journal", "verify", path_str(&self.journal)]);
        assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    }

    fn log(&self) -> String {
        log_of(&self.journal)
    }
}

fn folded(journal: &Path) -> Projection {
    let mut projection = Projection::new();
    for stored in events(journal) {
        projection
            .apply(stored.seq, stored.market_ms, &stored.event)
            .unwrap_or_else(|e| panic!("fold: {e}"));
    }
    projection
}

fn dec(value: &serde_json::Value) -> Decimal {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a decimal string: {value}"))
        .parse()
        .unwrap()
}

/// The fake's total balance (available + hold) of `currency`.
fn balance(state: &serde_json::Value, currency: &str) -> Decimal {
    let b = &state["balances"][currency];
    if b.is_null() {
        return Decimal::ZERO;
    }
    dec(&b["available"]) + dec(&b["hold"])
}

/// The journal's position in each symbol equals what the fake's account holds.
fn positions_agree(journal: &Path, state: &serde_json::Value) {
    let projection = folded(journal);
    for symbol in SYMBOLS {
        let ours = projection
            .state
            .symbols
            .get(symbol)
            .map(|s| s.position.quantity)
            .unwrap_or_default();
        let base = symbol.split('-').next().unwrap();
        assert_eq!(
            ours,
            balance(state, base),
            "{symbol}: the journal holds {ours}, the exchange {}",
            state["balances"]
        );
    }
}

/// Each client order id made at most one order at the fake.
fn one_order_per_client_order_id(state: &serde_json::Value) {
    let made = state["orders_created_per_client_order_id"]
        .as_object()
        .unwrap();
    for (id, count) in made {
        assert_eq!(
            count.as_u64(),
            Some(1),
            "{id}: {count} orders at the exchange"
        );
    }
}

fn placed(all: &[StoredEvent]) -> Vec<(Seq, OrderPlaced)> {
    all.iter()
        .filter_map(|e| match &e.event {
            Event::OrderPlaced(o) => Some((e.seq, o.clone())),
            _ => None,
        })
        .collect()
}

fn trades(all: &[StoredEvent]) -> Vec<TradeClosed> {
    all.iter()
        .filter_map(|e| match &e.event {
            Event::TradeClosed(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

fn fills_of<'a>(all: &'a [StoredEvent], client_order_id: &'a str) -> Vec<(Seq, Fill)> {
    all.iter()
        .filter_map(|e| match &e.event {
            Event::Fill(f) if f.client_order_id == client_order_id => Some((e.seq, f.clone())),
            _ => None,
        })
        .collect()
}

fn seq_of(all: &[StoredEvent], what: impl Fn(&Event) -> bool) -> Option<Seq> {
    all.iter().find(|e| what(&e.event)).map(|e| e.seq)
}

/// What the journal holds but candles, receipts and decisions to hold, one
/// line each (a failure's context).
fn outline(all: &[StoredEvent]) -> String {
    let mut text = String::new();
    for e in all {
        match &e.event {
            Event::Candle(_) | Event::AnswerReceipt(_) => continue,
            Event::Decision(d) if d.outcome == DecisionOutcome::Hold => continue,
            _ => {}
        }
        let body: String = format!("{:?}", e.event).chars().take(240).collect();
        text.push_str(&format!("{} {} {body}\n", e.seq, rfc3339(e.market_ms)));
    }
    text
}

#[test]
fn protection_that_never_appears_fails_closed_and_closes_the_position() {
    // The child shows only once the entry fills; the fault keeps it away.
    let mut s = Scenario::start(&["--child-appears", "on-fill"]);
    s.drive(FEED_START_S + HOUR_S, BTC_ENTRY_S - HOUR_S);
    s.arm(r#"{"kind": "withhold_bracket"}"#);
    // Past the parity run's next BTC entry (2025-01-06T16:00Z).
    s.drive(BTC_ENTRY_S - HOUR_S, BTC_ENTRY_S + 20 * HOUR_S);
    s.stop_and_verify();
    let all = s.events();
    let context = outline(&all);

    let (entry_seq, entry) = placed(&all)
        .into_iter()
        .find(|(_, o)| o.product_id == "BTC-USD")
        .unwrap_or_else(|| panic!("no BTC entry:\n{context}"));
    assert_eq!(entry.purpose, OrderPurpose::Entry);
    let unconfirmed = seq_of(
        &all,
        |e| matches!(e, Event::BracketUnconfirmed(b) if b.client_order_id == entry.client_order_id),
    )
    .unwrap_or_else(|| panic!("no BracketUnconfirmed:\n{context}"));
    assert!(!all.iter().any(|e| matches!(&e.event,
        Event::BracketVerified(b) if b.client_order_id == entry.client_order_id)));
    let entry_fills = fills_of(&all, &entry.client_order_id);
    assert_eq!(entry_fills.len(), 1, "{context}");
    assert!(entry_fills[0].0 < unconfirmed, "noticed after the fill");
    let fail = all
        .iter()
        .find_map(|e| match &e.event {
            Event::FailClosed(f) if f.symbol == "BTC-USD" => Some((e.seq, f.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("BTC-USD never failed closed:\n{context}"));
    assert!(
        fail.0 > unconfirmed && fail.1.cause_seq == unconfirmed,
        "{context}"
    );
    // The emergency exit: its decision, a market SELL of what the entry bought.
    let exit_decision = seq_of(&all, |e| {
        matches!(e, Event::Decision(d) if d.symbol == "BTC-USD"
            && d.outcome == (DecisionOutcome::Exit { reason: ExitReason::Emergency }))
    })
    .unwrap_or_else(|| panic!("no emergency exit decision:\n{context}"));
    assert!(exit_decision > fail.0);
    let (exit_seq, exit) = placed(&all)
        .into_iter()
        .find(|(_, o)| o.product_id == "BTC-USD" && o.purpose == OrderPurpose::Exit)
        .unwrap_or_else(|| panic!("no exit order:\n{context}"));
    assert_eq!(exit.decision_seq, exit_decision);
    assert_eq!(
        (exit.side, exit.order_type),
        (Side::Sell, OrderType::Market)
    );
    assert_eq!(exit.base_size, entry_fills[0].1.size);
    let exit_fills = fills_of(&all, &exit.client_order_id);
    assert_eq!(exit_fills.len(), 1, "{context}");
    assert!(exit_fills[0].0 > exit_seq);
    assert_eq!(exit_fills[0].1.size, exit.base_size);
    let closed = trades(&all);
    assert_eq!(closed.len(), 1, "{context}");
    assert_eq!(closed[0].entry_client_order_id, entry.client_order_id);
    assert_eq!(closed[0].exit_reason, ExitReason::Emergency);
    // The symbol stays closed: no further entry, however the signals fire.
    assert!(
        !placed(&all).iter().any(|(seq, o)| o.product_id == "BTC-USD"
            && *seq > entry_seq
            && o.purpose == OrderPurpose::Entry),
        "{context}"
    );
    // (FAIL_CLOSED holds: a signal that fires decides no entry.)
    let fired_later = all.iter().filter(|e| e.seq > fail.0).any(|e| {
        matches!(&e.event, Event::Decision(d) if d.symbol == "BTC-USD"
            && !d.glass.fired().is_empty() && d.outcome == DecisionOutcome::Hold)
    });
    assert!(
        fired_later,
        "a later BTC signal fires and is not acted on:\n{context}"
    );
    let projection = folded(&s.journal);
    assert!(projection.state.symbols["BTC-USD"].fail_closed.is_some());
    // The exchange agrees: no BTC held, no child ever made for the entry.
    let state = s.fake.state();
    assert_eq!(
        balance(&state, "BTC"),
        Decimal::ZERO,
        "{}",
        state["balances"]
    );
    positions_agree(&s.journal, &state);
    let exchange_entry = state["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["client_order_id"] == entry.client_order_id.as_str())
        .unwrap();
    assert!(!state["orders"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| { o["originating_order_id"] == exchange_entry["order_id"] }));
    one_order_per_client_order_id(&state);
}

/// Runs `anx operator ARGS` as operator `alice`; the seq it journaled at.
fn operator(args: &[&str]) -> Seq {
    let mut all = vec!["operator"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--operator", "alice", "--wait", "20"]);
    let run = anx(&all);
    assert_eq!(run.code, 0, "anx {all:?}: {}{}", run.stdout, run.stderr);
    run.stdout
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{}", run.stdout))
}

#[test]
fn an_operator_exit_cancels_the_bracket_then_sells_at_market() {
    let mut s = Scenario::start(&[]);
    // The BTC entry (21:00) filled at 22:00; its bracket works.
    s.drive(FEED_START_S + HOUR_S, BTC_ENTRY_S + 3 * HOUR_S);
    let before = s.events();
    let (_, entry) = placed(&before)
        .into_iter()
        .find(|(_, o)| o.product_id == "BTC-USD")
        .unwrap_or_else(|| panic!("no BTC entry:\n{}", outline(&before)));
    let bought = fills_of(&before, &entry.client_order_id);
    assert_eq!(bought.len(), 1, "{}", outline(&before));
    assert!(seq_of(
        &before,
        |e| matches!(e, Event::BracketVerified(b) if b.client_order_id == entry.client_order_id)
    )
    .is_some());

    let dir = path_str(&s.journal).to_string();
    let action = operator(&["exit", &dir, "BTC-USD", "--reason", "test"]);
    // The exchange's request log, read at once (it keeps the last 1000).
    let requests = s.fake.state()["requests"].as_array().unwrap().clone();
    s.wait_until("the manual exit's trade", |all| {
        trades(all)
            .iter()
            .any(|t| t.exit_reason == ExitReason::Manual)
    });
    s.stop_and_verify();
    let all = s.events();
    let context = outline(&all);
    assert!(
        matches!(&all[action as usize - 1].event,
        Event::OperatorAction(a) if a.command == OperatorCommand::Exit && a.symbol == "BTC-USD"
            && a.operator == "alice" && a.reason == "test"),
        "{context}"
    );
    assert!(
        matches!(&all[action as usize].event, Event::Decision(d)
        if d.outcome == (DecisionOutcome::Exit { reason: ExitReason::Manual })),
        "{context}"
    );
    let Event::OrderPlaced(exit) = &all[action as usize + 1].event else {
        panic!("no exit order after the decision:\n{context}")
    };
    assert_eq!(
        (exit.side, exit.order_type, exit.purpose, exit.base_size),
        (
            Side::Sell,
            OrderType::Market,
            OrderPurpose::Exit,
            bought[0].1.size
        )
    );
    let sold = fills_of(&all, &exit.client_order_id);
    assert_eq!(sold.len(), 1, "{context}");
    assert_eq!(sold[0].1.size, exit.base_size);
    let closed = trades(&all);
    assert_eq!(closed.len(), 1, "{context}");
    assert_eq!(closed[0].exit_reason, ExitReason::Manual);
    assert_eq!(closed[0].entry_client_order_id, entry.client_order_id);
    assert!(closed[0].exit_fill_seq == sold[0].0);

    // At the exchange: the bracket child was cancelled, before the exit was sent.
    let state = s.fake.state();
    let orders = state["orders"].as_array().unwrap();
    let exchange_entry = orders
        .iter()
        .find(|o| o["client_order_id"] == entry.client_order_id.as_str())
        .unwrap();
    let child = orders
        .iter()
        .find(|o| o["originating_order_id"] == exchange_entry["order_id"])
        .unwrap_or_else(|| panic!("no child: {orders:?}"));
    assert_eq!(child["status"], "CANCELLED", "{child}");
    let exchange_exit = orders
        .iter()
        .find(|o| o["client_order_id"] == exit.client_order_id.as_str())
        .unwrap();
    assert_eq!(exchange_exit["status"], "FILLED", "{exchange_exit}");
    let position = |method: &str, path: &str| {
        requests
            .iter()
            .rposition(|r| r["method"] == method && r["path"] == path && r["status"] == 200)
            .unwrap_or_else(|| panic!("no {method} {path} in {requests:?}"))
    };
    assert!(
        position("POST", "/api/v3/brokerage/orders/batch_cancel")
            < position("POST", "/api/v3/brokerage/orders"),
        "the child is cancelled before the exit is sent"
    );
    assert_eq!(balance(&state, "BTC"), Decimal::ZERO);
    positions_agree(&s.journal, &state);
    one_order_per_client_order_id(&state);
}

/// Trades as values to compare: numbers by value (the exchange writes
/// "100215.6" for the simulator's "100215.60"), the run's client order ids
/// left out (`live_cli.rs`'s rule).
fn comparable(trades: &[serde_json::Value]) -> Vec<serde_json::Value> {
    trades
        .iter()
        .map(|t| {
            let mut t = t.clone();
            let fields = t.as_object_mut().unwrap();
            fields.remove("entry_client_order_id");
            for value in fields.values_mut() {
                let number = value.as_str().and_then(|s| s.parse::<Decimal>().ok());
                if let Some(number) = number {
                    *value = serde_json::Value::String(number.normalize().to_string());
                }
            }
            t
        })
        .collect()
}

impl Scenario {
    /// The same candles through `anx replay run` up to `end_s` decide and
    /// trade as the live run did: the faults changed nothing the engine saw.
    fn assert_replay_parity(&self, end_s: i64) {
        let run = self
            .events()
            .iter()
            .find_map(|e| match &e.event {
                Event::RunStarted(r) => Some(r.clone()),
                _ => None,
            })
            .unwrap();
        let replay_journal = self.temp.path().join("replay");
        let replay = anx(&[
            "replay",
            "run",
            "--config",
            path_str(&config()),
            "--cache-dir",
            path_str(&self.temp.path().join("cache")),
            "--start",
            &rfc3339(run.start_ms),
            "--end",
            &rfc3339(end_s * 1000),
            "--journal",
            path_str(&replay_journal),
            "--report-format",
            "json",
        ]);
        assert_eq!(replay.code, 0, "{}", replay.stderr);
        let (live_decisions, live_trades) = decisions_and_trades(&self.journal);
        let (replay_decisions, replay_trades) = decisions_and_trades(&replay_journal);
        assert_eq!(live_decisions.len(), replay_decisions.len());
        for (i, (l, r)) in live_decisions.iter().zip(&replay_decisions).enumerate() {
            assert_eq!(l, r, "decision {i} differs between live and replay");
        }
        assert_eq!(comparable(&live_trades), comparable(&replay_trades));
    }
}

/// The parity run's first ETH entry (2025-01-06T03:00Z).
const ETH_ENTRY_S: i64 = BTC_ENTRY_S + 6 * HOUR_S;

#[test]
fn a_lost_create_answer_is_looked_up_and_the_order_made_once() {
    let mut s = Scenario::start(&["--market-fills", "at-bar-close"]);
    s.drive(FEED_START_S + HOUR_S, BTC_ENTRY_S - HOUR_S);
    // One answer lost: the client's own retry (same body) gets the order back.
    s.arm(r#"{"kind": "lose_create_response"}"#);
    s.drive(BTC_ENTRY_S - HOUR_S, ETH_ENTRY_S - HOUR_S);
    // Every attempt's answer lost: the outcome is unknown until the broker
    // looks the order up by its client_order_id.
    s.arm(r#"{"kind": "lose_create_response", "count": 4}"#);
    let end_s = ETH_ENTRY_S + 4 * HOUR_S;
    s.drive(ETH_ENTRY_S - HOUR_S, end_s);
    s.stop_and_verify();
    let all = s.events();
    let context = outline(&all);
    let entries: Vec<OrderPlaced> = placed(&all).into_iter().map(|(_, o)| o).collect();
    assert_eq!(
        entries
            .iter()
            .map(|o| o.product_id.as_str())
            .collect::<Vec<_>>(),
        ["BTC-USD", "ETH-USD"],
        "{context}"
    );
    let state = s.fake.state();
    let creates = state["creates"].as_object().unwrap();
    for (entry, posts) in entries.iter().zip([2, 4]) {
        let id = entry.client_order_id.as_str();
        let acks = all
            .iter()
            .filter(|e| matches!(&e.event, Event::OrderAcknowledged(a) if a.client_order_id == id))
            .count();
        assert_eq!(acks, 1, "{id} acknowledged {acks} times:\n{context}");
        assert_eq!(fills_of(&all, id).len(), 1, "{id} fills:\n{context}");
        // Created once, though POSTed again: the first answer lost, the retry
        // answered with the existing order; or every answer lost (4 attempts),
        // then found by its id and not sent again.
        assert_eq!(state["orders_created_per_client_order_id"][id], 1, "{id}");
        assert_eq!(creates[id], posts, "{id}: POST /orders requests");
    }
    one_order_per_client_order_id(&state);
    positions_agree(&s.journal, &state);
    assert!(
        log_of(&s.journal).contains("outcome unknown"),
        "the lost creates are logged"
    );
    // Trading went on as if nothing had happened.
    s.assert_replay_parity(end_s);
}

#[test]
fn a_partly_filled_entry_is_a_trade_of_the_sum_of_its_fills() {
    let mut s = Scenario::start(&["--market-fills", "at-bar-close"]);
    s.drive(FEED_START_S + HOUR_S, BTC_ENTRY_S - HOUR_S);
    s.arm(r#"{"kind": "partial_fill", "parts": 3}"#);
    // Through the take-profit (2025-01-06T15:00Z).
    let end_s = BTC_ENTRY_S + 19 * HOUR_S;
    s.drive(BTC_ENTRY_S - HOUR_S, end_s);
    s.stop_and_verify();
    let all = s.events();
    let context = outline(&all);
    let (_, entry) = placed(&all)
        .into_iter()
        .find(|(_, o)| o.product_id == "BTC-USD")
        .unwrap_or_else(|| panic!("no BTC entry:\n{context}"));
    let fills = fills_of(&all, &entry.client_order_id);
    let parts: Vec<&Fill> = fills
        .iter()
        .map(|(_, f)| f)
        .filter(|f| f.leg == FillLeg::Entry)
        .collect();
    assert_eq!(parts.len(), 3, "three entry fills:\n{context}");
    let ids: std::collections::BTreeSet<&str> = parts.iter().map(|f| f.fill_id.as_str()).collect();
    assert_eq!(ids.len(), 3, "each part its own fill id");
    let bought: Decimal = parts.iter().map(|f| f.size).sum();
    assert_eq!(bought, entry.base_size, "the parts make the whole order");
    let closed = trades(&all);
    assert_eq!(closed.len(), 1, "{context}");
    let trade = &closed[0];
    assert_eq!(trade.entry_client_order_id, entry.client_order_id);
    assert_eq!(trade.size, bought, "the trade is the sum of the parts");
    let cost: Decimal = parts.iter().map(|f| f.price * f.size).sum();
    let average = cost / bought;
    assert!(
        (trade.entry_price - average).abs() < Decimal::new(1, 6),
        "entry price {} is the parts' average {average}",
        trade.entry_price
    );
    let fees: Decimal = fills.iter().map(|(_, f)| f.fee).sum();
    assert_eq!(trade.fees, fees, "every part's fee is the trade's");
    assert_eq!(trade.exit_reason, ExitReason::TakeProfit);
    let exit: Vec<&Fill> = fills
        .iter()
        .map(|(_, f)| f)
        .filter(|f| f.leg != FillLeg::Entry)
        .collect();
    assert_eq!(exit.len(), 1);
    assert_eq!(
        exit[0].size, bought,
        "the take-profit sells the whole position"
    );
    let state = s.fake.state();
    positions_agree(&s.journal, &state);
    one_order_per_client_order_id(&state);
}

#[test]
fn an_entry_refused_for_insufficient_funds_fails_the_symbol_closed() {
    let mut s = Scenario::start(&["--market-fills", "at-bar-close"]);
    s.drive(FEED_START_S + HOUR_S, BTC_ENTRY_S - HOUR_S);
    s.arm(r#"{"kind": "insufficient_fund"}"#);
    // Past the parity run's next BTC entry (2025-01-06T16:00Z).
    s.drive(BTC_ENTRY_S - HOUR_S, BTC_ENTRY_S + 20 * HOUR_S);
    s.stop_and_verify();
    let all = s.events();
    let context = outline(&all);
    let orders = placed(&all);
    let (entry_seq, entry) = orders
        .iter()
        .find(|(_, o)| o.product_id == "BTC-USD")
        .cloned()
        .unwrap_or_else(|| panic!("no BTC entry:\n{context}"));
    let (rejected_seq, rejected) = all
        .iter()
        .find_map(|e| match &e.event {
            Event::OrderRejected(r) if r.client_order_id == entry.client_order_id => {
                Some((e.seq, r.clone()))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no rejection:\n{context}"));
    assert!(
        rejected.reason.contains("INSUFFICIENT_FUND"),
        "{rejected:?}"
    );
    assert!(
        matches!(&all[rejected_seq as usize].event, Event::AnswerReceipt(r) if r.answer_seq == rejected_seq),
        "the exchange's answer has its receipt"
    );
    let fail = all
        .iter()
        .find_map(|e| match &e.event {
            Event::FailClosed(f) if f.symbol == "BTC-USD" => Some(f.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("BTC-USD never failed closed:\n{context}"));
    assert_eq!(fail.cause_seq, rejected_seq, "caused by the rejection");
    assert!(fail.reason.contains("INSUFFICIENT_FUND"), "{fail:?}");
    // Nothing more for BTC, though its signal fires again; ETH trades on.
    assert!(
        !orders
            .iter()
            .any(|(seq, o)| o.product_id == "BTC-USD" && *seq > entry_seq),
        "{context}"
    );
    assert!(all.iter().filter(|e| e.seq > rejected_seq).any(|e| {
        matches!(&e.event, Event::Decision(d) if d.symbol == "BTC-USD" && !d.glass.fired().is_empty())
    }));
    let eth = orders
        .iter()
        .find(|(_, o)| o.product_id == "ETH-USD")
        .unwrap_or_else(|| panic!("ETH trades on:\n{context}"));
    assert_eq!(fills_of(&all, &eth.1.client_order_id).len(), 1, "{context}");
    // The exchange made no order for it, and was asked once (a refusal is not retried).
    let state = s.fake.state();
    assert!(!state["orders"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["client_order_id"] == entry.client_order_id.as_str()));
    assert_eq!(state["creates"][entry.client_order_id.as_str()], 1);
    positions_agree(&s.journal, &state);
    one_order_per_client_order_id(&state);
}

impl Scenario {
    /// Waits until every armed fault has been used up.
    fn wait_faults_spent(&mut self) {
        let fake = &self.fake;
        wait_for(
            "the faults to be spent",
            &self.journal,
            &mut self.trader,
            || {
                fake.state()["faults"]
                    .as_array()
                    .is_some_and(|f| f.is_empty())
            },
        );
    }
}

#[test]
fn a_rate_limit_storm_is_waited_out() {
    let mut s = Scenario::start(&["--market-fills", "at-bar-close"]);
    s.drive(FEED_START_S + HOUR_S, BTC_ENTRY_S - HOUR_S);
    // Every request: whatever the trader asks next (market data, the account, orders).
    s.arm(r#"{"kind": "rate_limit", "retry_after_s": 1, "count": 6}"#);
    s.wait_faults_spent();
    // Then the entry's create: refused on every attempt, so its outcome is
    // unknown; looked up, absent, sent again (refused twice more), made.
    s.arm(r#"{"kind": "rate_limit", "retry_after_s": 1, "count": 6, "path": "/api/v3/brokerage/orders", "method": "POST"}"#);
    let end_s = ETH_ENTRY_S + 2 * HOUR_S;
    s.drive(BTC_ENTRY_S - HOUR_S, end_s);
    s.stop_and_verify();
    let all = s.events();
    let context = outline(&all);
    let log = s.log();
    // Every 429 was waited out for as long as it asked, market data included.
    let waits: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("429") && l.contains("retrying in "))
        .map(|l| {
            let after = l.split("retrying in ").nth(1).unwrap();
            after.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert!(waits.len() >= 6, "the storm was retried: {log}");
    assert!(
        waits.iter().all(|ms| *ms >= 1000),
        "a 429 retried before its Retry-After (1 s): {waits:?}\n{log}"
    );
    let (_, entry) = placed(&all)
        .into_iter()
        .find(|(_, o)| o.product_id == "BTC-USD")
        .unwrap_or_else(|| panic!("no BTC entry:\n{context}"));
    assert!(
        log.contains(&format!("{}: outcome unknown", entry.client_order_id)),
        "{log}"
    );
    let acks = all
        .iter()
        .filter(|e| matches!(&e.event, Event::OrderAcknowledged(a) if a.client_order_id == entry.client_order_id))
        .count();
    assert_eq!(acks, 1, "{context}");
    assert_eq!(fills_of(&all, &entry.client_order_id).len(), 1, "{context}");
    let state = s.fake.state();
    // The refused attempts never reached the order book: one create, one order.
    assert_eq!(state["creates"][entry.client_order_id.as_str()], 1);
    for (id, count) in state["creates"].as_object().unwrap() {
        assert_eq!(count, 1, "{id} POSTed {count} times");
    }
    one_order_per_client_order_id(&state);
    positions_agree(&s.journal, &state);
    let statuses: Vec<u64> = state["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert!(!statuses.is_empty() && statuses.iter().rev().take(50).all(|s| *s == 200));
    // Decisions went on: every bar decided, as the replay decides.
    s.assert_replay_parity(end_s);
}

#[test]
fn server_errors_and_stalls_are_retried_without_a_second_order() {
    let mut s = Scenario::start(&["--market-fills", "at-bar-close"]);
    s.drive(FEED_START_S + HOUR_S, BTC_ENTRY_S - HOUR_S);
    // Whatever the trader asks next: three 503s, then two answers that come
    // after the trader's 2 s request timeout.
    s.arm(r#"{"kind": "server_error", "count": 3}"#);
    s.wait_faults_spent();
    s.arm(r#"{"kind": "stall", "seconds": 3, "count": 2}"#);
    s.wait_faults_spent();
    // The stalled requests land after the trader gave up on them; a stalled
    // public GET /time would move the lock-step clock behind its back, so
    // they land while the clock stands still.
    std::thread::sleep(std::time::Duration::from_millis(3500));
    // The entry's create stalls past the timeout: the retry (same body) makes
    // the order, the stalled request lands after it and makes nothing.
    s.arm(
        r#"{"kind": "stall", "seconds": 3, "path": "/api/v3/brokerage/orders", "method": "POST"}"#,
    );
    s.drive(BTC_ENTRY_S - HOUR_S, ETH_ENTRY_S - HOUR_S);
    // The next entry's create meets three 500s, then gets through.
    s.arm(r#"{"kind": "server_error", "status": 500, "count": 3, "path": "/api/v3/brokerage/orders", "method": "POST"}"#);
    let end_s = ETH_ENTRY_S + 2 * HOUR_S;
    s.drive(ETH_ENTRY_S - HOUR_S, end_s);
    s.stop_and_verify();
    let all = s.events();
    let context = outline(&all);
    let log = s.log();
    let entries: Vec<OrderPlaced> = placed(&all).into_iter().map(|(_, o)| o).collect();
    assert_eq!(
        entries
            .iter()
            .map(|o| o.product_id.as_str())
            .collect::<Vec<_>>(),
        ["BTC-USD", "ETH-USD"],
        "{context}\n{log}"
    );
    let state = s.fake.state();
    // The stalled create and its retry both reached the exchange; the 500s did not.
    for (entry, posts) in entries.iter().zip([2, 1]) {
        let id = entry.client_order_id.as_str();
        let acks = all
            .iter()
            .filter(|e| matches!(&e.event, Event::OrderAcknowledged(a) if a.client_order_id == id))
            .count();
        assert_eq!(acks, 1, "{id}:\n{context}");
        assert_eq!(fills_of(&all, id).len(), 1, "{id}:\n{context}");
        assert_eq!(state["creates"][id], posts, "{id}: POST /orders requests");
    }
    one_order_per_client_order_id(&state);
    positions_agree(&s.journal, &state);
    assert!(
        log.contains("POST /api/v3/brokerage/orders: HTTP 500"),
        "{log}"
    );
    assert!(
        log.contains("timed out") || log.contains("timeout"),
        "{log}"
    );
    s.assert_replay_parity(end_s);
}

#[test]
fn an_entry_filled_unseen_keeps_its_protection_when_its_time_to_live_ends() {
    let mut s = Scenario::start(&["--market-fills", "at-bar-close"]);
    s.drive(FEED_START_S + HOUR_S, BTC_ENTRY_S);
    // The entry is working (acknowledged, bracket verified). Every read of
    // orders and fills is refused from now until past its time to live (two
    // bars): it fills at 22:00, unseen, and at 23:00 the broker cancels it as
    // expired. The cancel must not take its take-profit/stop down with it.
    s.arm(r#"{"kind": "rate_limit", "retry_after_s": 0, "count": 300, "path": "/api/v3/brokerage/orders/historical"}"#);
    s.drive(BTC_ENTRY_S, BTC_ENTRY_S + 2 * HOUR_S);
    s.wait_faults_spent();
    // Through the parity run's take-profit (2025-01-06T15:00Z).
    s.drive(BTC_ENTRY_S + 2 * HOUR_S, BTC_ENTRY_S + 19 * HOUR_S);
    s.stop_and_verify();
    let all = s.events();
    let context = outline(&all);
    let log = s.log();
    let (_, entry) = placed(&all)
        .into_iter()
        .find(|(_, o)| o.product_id == "BTC-USD")
        .unwrap_or_else(|| panic!("no BTC entry:\n{context}"));
    // The expiry was tried while the fill was unseen, and refused by the exchange.
    assert!(
        log.contains(&format!(
            "{}: not cancelled (time to live expired)",
            entry.client_order_id
        )),
        "{log}"
    );
    assert!(
        !all.iter().any(|e| matches!(&e.event,
        Event::OrderCancelled(c) if c.client_order_id == entry.client_order_id)),
        "{context}"
    );
    let fills = fills_of(&all, &entry.client_order_id);
    assert_eq!(
        fills.iter().map(|(_, f)| f.leg).collect::<Vec<_>>(),
        [FillLeg::Entry, FillLeg::TakeProfit],
        "the bracket took profit:\n{context}"
    );
    let closed = trades(&all);
    assert_eq!(closed.len(), 1, "{context}");
    assert_eq!(closed[0].exit_reason, ExitReason::TakeProfit);
    let state = s.fake.state();
    let orders = state["orders"].as_array().unwrap();
    let exchange_entry = orders
        .iter()
        .find(|o| o["client_order_id"] == entry.client_order_id.as_str())
        .unwrap();
    let child = orders
        .iter()
        .find(|o| o["originating_order_id"] == exchange_entry["order_id"])
        .unwrap();
    assert_eq!(child["status"], "FILLED", "{child}");
    positions_agree(&s.journal, &state);
    one_order_per_client_order_id(&state);
}

/// A small deterministic generator for the kill points (seed printed on failure).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// The market time (s) of the journal's newest event.
fn journal_time_s(all: &[StoredEvent]) -> i64 {
    all.last().map_or(0, |e| e.market_ms / 1000)
}

/// A trader against its own fake, killed with SIGKILL and restarted on the
/// same journal when a test says so.
struct Trading {
    fake: Fake,
    journal: PathBuf,
    child: Child,
    /// Where each kill landed: why, the journal's market time and last event.
    kills: Vec<String>,
}

impl Drop for Trading {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Trading {
    /// The market moves in lock-step with the trader up to `until_s`.
    fn lockstep(&self, until_s: i64) {
        self.fake.control(
            "POST",
            "/fake/clock",
            &format!(
                "{{\"step_on_public_time_s\": {HOUR_S}, \"until_ms\": {}}}",
                until_s * 1000
            ),
        );
    }

    fn now_s(&self) -> i64 {
        self.fake.state()["now_ms"].as_i64().unwrap() / 1000
    }

    /// SIGKILL, then a restart on the same journal. Killed after its
    /// market-data poll moved the lock-step clock but before it decided on
    /// that bar, the trader would come back to a market one bar further on
    /// (its first poll moves the clock again) and its orders would meet other
    /// bars than the uninterrupted run's: so the clock waits for it to catch
    /// up (a restart skips no bar and loses no market time). The clock is
    /// left standing where it is; the caller moves it on.
    fn kill(&mut self, why: &str) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
        let all = events(&self.journal);
        let last = all
            .last()
            .map(|e| format!("seq {} {}", e.seq, e.event.kind()))
            .unwrap_or_default();
        self.kills.push(format!(
            "{why}: {} ({last})",
            rfc3339(journal_time_s(&all) * 1000)
        ));
        let now_s = self.now_s();
        self.lockstep(now_s);
        let started = |all: &[StoredEvent]| {
            all.iter()
                .filter(
                    |e| matches!(&e.event, Event::Session(s) if s.action == SessionAction::Started),
                )
                .count()
        };
        let before = started(&events(&self.journal));
        self.child = spawn_live(&self.journal, &self.fake, &[]);
        // Up and trading (its signal handlers installed) before anything
        // else is done to it: a SIGTERM earlier would be the default action.
        self.wait_until("the restarted trader's session", |all| {
            started(all) > before
        });
        wait_for_decisions(&self.journal, &mut self.child, now_s);
    }

    /// Waits (a minute at most) until the journal satisfies `done`.
    fn wait_until(&mut self, what: &str, done: impl Fn(&[StoredEvent]) -> bool) {
        let journal = self.journal.clone();
        wait_for(what, &self.journal, &mut self.child, || {
            done(&events(&journal))
        });
    }

    /// Up to `kills` kills, each after 1 to 12 new journal events, while the
    /// market moves on in lock-step up to `until_s`; then the trader decides
    /// on `until_s`.
    fn random_kills(&mut self, lcg: &mut Lcg, kills: u32, until_s: i64) {
        for _ in 0..kills {
            self.lockstep(until_s);
            let all = events(&self.journal);
            if journal_time_s(&all) >= until_s {
                break;
            }
            let target = all.len() + 1 + lcg.below(12) as usize;
            let started = std::time::Instant::now();
            while events(&self.journal).len() < target
                && started.elapsed() < std::time::Duration::from_secs(5)
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            self.kill("random");
        }
        self.lockstep(until_s);
        wait_for_decisions(&self.journal, &mut self.child, until_s);
    }

    /// Arms `fault`, lets the market move to `until_s` and kills the trader
    /// once `ready` holds (the fault keeps it where it should be killed).
    fn targeted_kill(
        &mut self,
        why: &str,
        fault: &str,
        until_s: i64,
        ready: impl Fn(&Trading) -> bool,
    ) {
        let answer = self.fake.control("POST", "/fake/fault", fault);
        assert!(answer.get("armed").is_some(), "{fault}: {answer}");
        self.lockstep(until_s);
        let started = std::time::Instant::now();
        while !ready(self) {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "{why}: never ready; {:?}\n{}",
                self.kills,
                log_of(&self.journal)
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.kill(why);
    }
}

/// Whether the journal holds an order placed for `symbol` with `purpose`
/// after market time `after_s`.
fn placed_after(
    journal: &Path,
    symbol: &str,
    purpose: OrderPurpose,
    after_s: i64,
) -> Option<OrderPlaced> {
    events(journal).into_iter().find_map(|e| match e.event {
        Event::OrderPlaced(o)
            if o.product_id == symbol && o.purpose == purpose && e.market_ms / 1000 >= after_s =>
        {
            Some(o)
        }
        _ => None,
    })
}

/// The parity run's ETH signal exit (2025-01-07T07:00Z, a market SELL).
const ETH_EXIT_S: i64 = BTC_ENTRY_S + 34 * HOUR_S;

#[test]
fn sigkill_at_any_step_of_an_orders_life_changes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let cache = temp.path().join("cache");
    write_feed(&cache);
    // Through two entries' whole lives and two exits at market: BTC placed,
    // filled, taken profit (2025-01-06T15:00Z), placed again, signal exit
    // (2025-01-07T11:00Z); ETH placed, filled, signal exit (07:00Z).
    let end_s = BTC_ENTRY_S + 40 * HOUR_S;

    // The uninterrupted run.
    let calm = temp.path().join("calm");
    {
        let fake = Fake::start(&cache, &["--market-fills", "at-bar-close"]);
        let child = spawn_live(&calm, &fake, &[]);
        let mut t = Trading {
            fake,
            journal: calm.clone(),
            child,
            kills: Vec::new(),
        };
        drive(
            &t.fake,
            &t.journal,
            &mut t.child,
            FEED_START_S + HOUR_S,
            end_s,
        );
        assert!(sigterm(&mut t.child).success(), "{}", log_of(&calm));
    }

    // The same market, the trader killed at chosen points of the orders'
    // lives (held there by a stalled request) and at random ones.
    let seed: u64 = std::env::var("ANX_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0011_fe0f_0de5);
    let kills: u32 = std::env::var("ANX_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let mut lcg = Lcg(seed);
    let fake = Fake::start(&cache, &["--market-fills", "at-bar-close"]);
    let journal = temp.path().join("crashy");
    let child = spawn_live(&journal, &fake, &[]);
    let mut c = Trading {
        fake,
        journal: journal.clone(),
        child,
        kills: Vec::new(),
    };
    drive(
        &c.fake,
        &c.journal,
        &mut c.child,
        FEED_START_S + HOUR_S,
        BTC_ENTRY_S - HOUR_S,
    );
    // The entry's intent is journaled, its create is in flight (and lands
    // after the kill).
    c.targeted_kill(
        "entry create in flight",
        r#"{"kind": "stall", "seconds": 1, "path": "/api/v3/brokerage/orders", "method": "POST"}"#,
        BTC_ENTRY_S,
        |c| placed_after(&c.journal, "BTC-USD", OrderPurpose::Entry, 0).is_some(),
    );
    c.wait_until("the entry's acknowledgement", |all| {
        all.iter()
            .any(|e| matches!(e.event, Event::OrderAcknowledged(_)))
    });
    // The exchange has filled the entry; the trader has not journaled the bar.
    c.targeted_kill(
        "entry filled, its bar not journaled",
        r#"{"kind": "stall", "seconds": 1, "path": "/api/v3/brokerage/market/products/BTC-USD/candles"}"#,
        BTC_ENTRY_S + HOUR_S,
        |c| c.now_s() == BTC_ENTRY_S + HOUR_S,
    );
    c.random_kills(&mut lcg, kills, ETH_EXIT_S - HOUR_S);
    // The exit's intent is journaled, the bracket's cancel is in flight.
    c.targeted_kill(
        "exit placed, bracket cancel in flight",
        r#"{"kind": "stall", "seconds": 1, "path": "/api/v3/brokerage/orders/batch_cancel"}"#,
        ETH_EXIT_S,
        |c| placed_after(&c.journal, "ETH-USD", OrderPurpose::Exit, 0).is_some(),
    );
    c.random_kills(&mut lcg, kills / 2, end_s);
    let context = format!("seed {seed}, killed at: {:#?}", c.kills);
    assert!(
        sigterm(&mut c.child).success(),
        "{context}\n{}",
        log_of(&journal)
    );
    let verify = anx(&["journal", "verify", path_str(&journal)]);
    assert_eq!(
        verify.code, 0,
        "{context}: {}{}",
        verify.stdout, verify.stderr
    );

    // Nothing was made twice; the exchange holds what the journal says.
    let all = events(&journal);
    let state = c.fake.state();
    one_order_per_client_order_id(&state);
    let entry = placed_after(&journal, "BTC-USD", OrderPurpose::Entry, 0).unwrap();
    for (id, count) in state["creates"].as_object().unwrap() {
        // The create in flight at the first kill lands a second after it:
        // normally after the restarted trader has looked for it, found
        // nothing and sent it again (the exchange answers the late one with
        // the order the second made), else before the look-up (adopted).
        let posts = if *id == entry.client_order_id {
            1..=2
        } else {
            1..=1
        };
        assert!(
            count.as_u64().is_some_and(|n| posts.contains(&n)),
            "{context}: {id} POSTed {count} times"
        );
    }
    positions_agree(&journal, &state);
    // The same decisions and trades as the uninterrupted run (the same run
    // id: the same client order ids).
    let (calm_decisions, calm_trades) = decisions_and_trades(&calm);
    let (decisions, trades) = decisions_and_trades(&journal);
    assert!(calm_trades.len() >= 3, "{calm_trades:?}");
    assert_eq!(decisions.len(), calm_decisions.len(), "{context}");
    for (i, (c, k)) in calm_decisions.iter().zip(&decisions).enumerate() {
        assert_eq!(
            c,
            k,
            "{context}: decision {i} differs from the uninterrupted run's:\n{}",
            outline(&all)
        );
    }
    assert_eq!(trades, calm_trades, "{context}\n{}", outline(&all));
    let crash_restarts = all
        .iter()
        .filter(|e| matches!(&e.event, Event::Session(s) if s.reason == "restart after a crash"))
        .count();
    assert_eq!(crash_restarts, c.kills.len(), "{context}");
    assert!(c.kills.len() >= 12, "{context}");
}

#[test]
fn an_exchange_restart_is_survived() {
    let mut s = Scenario::start(&["--market-fills", "at-bar-close"]);
    s.drive(FEED_START_S + HOUR_S, BTC_ENTRY_S - HOUR_S);
    // The next bar's market-data poll is held up on BTC's candles; meanwhile
    // the exchange goes down for 2 s (every API request answered 502):
    // ETH's candles, the orders and fills polls, then the entry's create
    // meet it.
    s.arm(r#"{"kind": "stall", "seconds": 1, "path": "/api/v3/brokerage/market/products/BTC-USD/candles"}"#);
    s.fake.control(
        "POST",
        "/fake/clock",
        &format!(
            "{{\"step_on_public_time_s\": {HOUR_S}, \"until_ms\": {}}}",
            BTC_ENTRY_S * 1000
        ),
    );
    let fake = &s.fake;
    wait_for("the market to move", &s.journal, &mut s.trader, || {
        fake.state()["now_ms"].as_i64() == Some(BTC_ENTRY_S * 1000)
    });
    s.arm(r#"{"kind": "restart", "down_s": 8}"#);
    let end_s = ETH_ENTRY_S + 2 * HOUR_S;
    s.drive(BTC_ENTRY_S, end_s);
    s.stop_and_verify();
    let all = s.events();
    let context = outline(&all);
    let log = s.log();
    // The market data it could not read is journaled.
    let outages: Vec<&DataQuality> = all
        .iter()
        .filter_map(|e| match &e.event {
            Event::DataQuality(d) if matches!(d.issue, QualityIssue::FeedFault { .. }) => Some(d),
            _ => None,
        })
        .collect();
    assert!(
        outages.iter().any(|d| d.detail.contains("502")),
        "{outages:?}\n{context}"
    );
    // The entry's create met the restart on every attempt: its outcome was
    // unknown until the exchange was back, then it was looked up, not
    // found, and sent again – made once, acknowledged once.
    let (_, entry) = placed(&all)
        .into_iter()
        .find(|(_, o)| o.product_id == "BTC-USD")
        .unwrap_or_else(|| panic!("no BTC entry:\n{context}"));
    assert!(
        log.contains("POST /api/v3/brokerage/orders: HTTP 502"),
        "{log}"
    );
    assert!(
        log.contains(&format!("{}: outcome unknown", entry.client_order_id)),
        "{log}"
    );
    let acks = all
        .iter()
        .filter(|e| matches!(&e.event, Event::OrderAcknowledged(a) if a.client_order_id == entry.client_order_id))
        .count();
    assert_eq!(acks, 1, "{context}");
    assert_eq!(fills_of(&all, &entry.client_order_id).len(), 1, "{context}");
    let state = s.fake.state();
    for (id, count) in state["creates"].as_object().unwrap() {
        assert_eq!(
            count, 1,
            "{id} POSTed {count} times (the refused ones never arrived)"
        );
    }
    one_order_per_client_order_id(&state);
    positions_agree(&s.journal, &state);
    // Every bar was decided, as the replay decides.
    s.assert_replay_parity(end_s);
}
