//! `anx live` end to end: the real binary against the fake Coinbase exchange
//! (`tools/src/bin/fake-coinbase.rs`, started as its own process on
//! 127.0.0.1) serving the shared real 1h candles, with a market clock that
//! moves in lock-step with the trader.
//!
//! - parity: the same candles through `anx live` against the fake and through
//!   `anx replay run` give the same decisions, and the same trades where the
//!   fake fills as the simulator does (take-profit, stop-loss and signal exits);
//! - every order's answers carry receipts; the fake saw at most one order per
//!   client_order_id.

mod common;

use anx_journal::Event;
use common::live::*;
use common::*;

/// Trades as values to compare: the run's client order ids left out,
/// numbers compared by value.
fn comparable(trades: &[serde_json::Value]) -> Vec<serde_json::Value> {
    trades
        .iter()
        .map(|t| {
            let mut t = t.clone();
            let fields = t.as_object_mut().unwrap();
            fields.remove("entry_client_order_id");
            for value in fields.values_mut() {
                let number = value
                    .as_str()
                    .and_then(|s| s.parse::<rust_decimal::Decimal>().ok());
                if let Some(number) = number {
                    *value = serde_json::Value::String(number.normalize().to_string());
                }
            }
            t
        })
        .collect()
}

#[test]
fn live_trader_against_the_fake_exchange_matches_the_replay() {
    let temp = tempfile::tempdir().unwrap();
    let cache = temp.path().join("cache");
    write_feed(&cache);
    // Market orders fill at their bar's close, as the simulator learns of
    // them (Coinbase fills them at once, at the same price).
    let fake = Fake::start(&cache, &["--market-fills", "at-bar-close"]);
    let journal = temp.path().join("live");
    // Served while it trades: the parity below holds with it.
    let addr = free_addr();
    let mut child = spawn_live(&journal, &fake, &["--listen", &addr]);
    let end_s = FEED_START_S + FEED_HOURS * HOUR_S;
    drive(&fake, &journal, &mut child, FEED_START_S + HOUR_S, end_s);
    let (code, health) = http_get(&addr, "/healthz").expect("/healthz answers");
    let health = json(&health);
    assert_eq!(health["journal_kind"], "live", "{health}");
    assert_eq!(code, if health["healthy"] == true { 200 } else { 503 });
    let (_, metrics) = http_get(&addr, "/metrics").expect("/metrics answers");
    let trading_calls = metrics
        .lines()
        .find_map(|l| l.strip_prefix("anx_broker_request_duration_seconds_count{api=\"trading\"} "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(
        trading_calls > 0,
        "every call to Coinbase's trading API is timed"
    );
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
    let verify = anx(&["journal", "verify", path_str(&journal)]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);

    let all = events(&journal);
    let run = all
        .iter()
        .find_map(|e| match &e.event {
            Event::RunStarted(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(run.run_mode, anx_journal::RunMode::Live);
    let replay_journal = temp.path().join("replay");
    let replay = anx(&[
        "replay",
        "run",
        "--config",
        path_str(&config()),
        "--cache-dir",
        path_str(&cache),
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
    let (live_decisions, live_trades) = decisions_and_trades(&journal);
    let (replay_decisions, replay_trades) = decisions_and_trades(&replay_journal);
    assert!(
        replay_trades.len() >= 3,
        "the feed trades: {replay_trades:?}"
    );
    assert_eq!(live_decisions.len(), replay_decisions.len());
    for (i, (l, r)) in live_decisions.iter().zip(&replay_decisions).enumerate() {
        assert_eq!(l, r, "decision {i} differs between live and replay");
    }
    // The same trades: ids differ by run, and the exchange writes its
    // numbers without trailing zeros ("100215.6" for the simulator's "100215.60").
    assert_eq!(comparable(&live_trades), comparable(&replay_trades));

    // Every answer from the exchange has its receipt; each order went once.
    let answers = all
        .iter()
        .filter(|e| matches!(e.event, Event::Fill(_) | Event::OrderAcknowledged(_)))
        .count();
    let receipts = all
        .iter()
        .filter(|e| matches!(e.event, Event::AnswerReceipt(_)))
        .count();
    assert!(
        receipts >= answers && answers > 0,
        "{answers} answers, {receipts} receipts"
    );
    let state = fake.state();
    let creates = state["creates"].as_object().unwrap();
    assert!(!creates.is_empty());
    for (id, count) in creates {
        assert_eq!(count.as_u64(), Some(1), "{id} created {count} times");
    }

    // A restart re-drives the journal without asking the exchange about the
    // past – candle steps with several answers and the engine's reactions
    // between them (an entry and its stop filled in one bar) included.
    let several = all.windows(4).any(|w| {
        matches!(
            (&w[0].event, &w[2].event, &w[3].event),
            (Event::Fill(_), Event::EngineTransition(_), Event::Fill(_))
        )
    });
    assert!(
        several,
        "the run has a step with two fills and a reaction between them"
    );
    let requests_before = fake.state()["requests"].as_array().unwrap().len();
    let mut child = spawn_live(&journal, &fake, &[]);
    wait_for("the restart's session", &journal, &mut child, || {
        events(&journal).iter().any(
            |e| matches!(&e.event, Event::Session(s) if s.reason == "restart after a clean stop"),
        )
    });
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
    let again = events(&journal);
    assert_eq!(&again[..all.len()], &all[..], "the journal only grew");
    assert!(fake.state()["requests"].as_array().unwrap().len() >= requests_before);
    let verify = anx(&["journal", "verify", path_str(&journal)]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    // A glass box kept as its digest, recomputed from the journal's own
    // answers (the exchange is not asked about the past) and proven; the
    // last one comes after the steps with several answers.
    let committed: Vec<u64> = again
        .iter()
        .filter(|e| matches!(&e.event, Event::Decision(d) if d.glass.full().is_none()))
        .map(|e| e.seq)
        .collect();
    let requests_before = fake.state()["requests"].as_array().unwrap().len();
    for seq in [committed[0], committed[committed.len() - 1]] {
        let run = anx(&["why", path_str(&journal), "--decision", &seq.to_string()]);
        assert_eq!(run.code, 0, "seq {seq}: {}", run.stderr);
        assert!(run.stdout.contains("and proven"), "{}", run.stdout);
    }
    let requests = fake.state()["requests"].as_array().unwrap().len();
    assert_eq!(requests, requests_before, "why asks the exchange nothing");
}

/// 2025-01-05T23:00Z: the first BTC entry (placed 21:00) filled at 22:00.
const FIRST_ENTRY_OPEN_S: i64 = 1_736_118_000;

#[test]
fn a_bracket_cancelled_by_hand_at_the_exchange_fails_the_symbol_closed_and_closes_the_position() {
    let temp = tempfile::tempdir().unwrap();
    let cache = temp.path().join("cache");
    write_feed(&cache);
    let fake = Fake::start(&cache, &[]);
    let journal = temp.path().join("live");
    let mut child = spawn_live(&journal, &fake, &[]);
    drive(
        &fake,
        &journal,
        &mut child,
        FEED_START_S + HOUR_S,
        FIRST_ENTRY_OPEN_S,
    );
    let state = fake.state();
    let bracket = state["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            o["order_type"] == "BRACKET" && o["status"] == "OPEN" && o["product_id"] == "BTC-USD"
        })
        .unwrap_or_else(|| panic!("an open BTC bracket: {state}"))["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    let held = state["balances"]["BTC"]["available"]
        .as_str()
        .unwrap()
        .to_string();
    let hold: rust_decimal::Decimal = state["balances"]["BTC"]["hold"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        hold > rust_decimal::Decimal::ZERO,
        "the bracket holds the position: {}",
        state["balances"]
    );
    assert_eq!(held, "0");
    // Someone cancels the take-profit/stop on the website.
    fake.control(
        "POST",
        "/fake/cancel",
        &format!("{{\"order_id\": \"{bracket}\"}}"),
    );
    drive(
        &fake,
        &journal,
        &mut child,
        FIRST_ENTRY_OPEN_S,
        FIRST_ENTRY_OPEN_S + 3 * HOUR_S,
    );
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
    let all = events(&journal);
    let lost = all
        .iter()
        .position(|e| matches!(&e.event, Event::BracketUnconfirmed(b) if b.reason.contains(&bracket) && b.reason.contains("cancelled at the exchange")))
        .unwrap_or_else(|| panic!("no BracketUnconfirmed for {bracket}:\n{}", log_of(&journal)));
    let after = &all[lost..];
    assert!(after
        .iter()
        .any(|e| matches!(&e.event, Event::FailClosed(f) if f.symbol == "BTC-USD")));
    let closed = after
        .iter()
        .find_map(|e| match &e.event {
            Event::TradeClosed(t) if t.symbol == "BTC-USD" => Some(t),
            _ => None,
        })
        .expect("the bare position closed");
    assert_eq!(closed.exit_reason, anx_journal::ExitReason::Emergency);
    let balances = &fake.state()["balances"]["BTC"];
    assert_eq!(
        (balances["available"].as_str(), balances["hold"].as_str()),
        (Some("0"), Some("0"))
    );
    let verify = anx(&["journal", "verify", path_str(&journal)]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
}

#[test]
fn fills_carry_coinbases_commission_and_why_shows_it_against_the_cost_model() {
    let temp = tempfile::tempdir().unwrap();
    let cache = temp.path().join("cache");
    write_feed(&cache);
    // The exchange charges more than the configuration's model (10/20 bps).
    let fake = Fake::start(&cache, &["--maker-fee-bps", "25", "--taker-fee-bps", "35"]);
    let journal = temp.path().join("live");
    let mut child = spawn_live(&journal, &fake, &[]);
    drive(
        &fake,
        &journal,
        &mut child,
        FEED_START_S + HOUR_S,
        FIRST_ENTRY_OPEN_S,
    );
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
    let fill = events(&journal)
        .into_iter()
        .find_map(|e| match e.event {
            Event::Fill(f) => Some(f),
            _ => None,
        })
        .expect("the entry filled");
    // 25 bps of the fill's value, as the exchange charged it.
    let charged = (fill.price * fill.size * rust_decimal::Decimal::new(25, 4)).round_dp(8);
    assert_eq!(fill.fee, charged);
    let why = anx(&["why", path_str(&journal), &fill.client_order_id]);
    assert_eq!(why.code, 0, "{}", why.stderr);
    let model = (fill.price * fill.size * rust_decimal::Decimal::new(10, 4)).round_dp(8);
    assert!(
        why.stdout.contains(&format!(
            "cost model {}, charged {} more",
            model.normalize(),
            (charged - model).normalize()
        )),
        "{}",
        why.stdout
    );
}
