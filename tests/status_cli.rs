//! `anx status`: read-only health of a trader's journal – the lock holder,
//! stale data, FAIL_CLOSED symbols – with exit 1 when unhealthy.

mod common;

use anx_journal::{
    CapitalMode, EngineState, Event, JournalMeta, RunMode, Session, SessionAction, Writer,
    WriterOptions,
};
use anx_projections::testkit::{fixture_events, Scenario};
use common::*;
use rust_decimal::Decimal;

const META: JournalMeta = JournalMeta {
    journal_id: *b"anx-status-test1",
    created_ms: 1_704_067_200_000,
};

/// Writes `events` (a backtest's shape) as a paper trader's journal: `anx
/// status` judges a trader's health, and only says what a backtest's journal
/// is. The run is `paper_live`; checkpoints (whose state hash covers the run
/// mode) and the run's completion become session markers in the same places,
/// so every seq link still holds.
fn write(dir: &std::path::Path, events: &[(i64, Event)]) {
    let mut writer = Writer::create(dir, META, WriterOptions::default()).unwrap();
    for (ms, event) in events {
        let event = match event.clone() {
            Event::RunStarted(mut run) => {
                run.run_mode = RunMode::PaperLive;
                run.end_ms = None;
                Event::RunStarted(run)
            }
            Event::Checkpoint(_) | Event::RunCompleted(_) => Event::Session(Session {
                action: SessionAction::Started,
                reason: "test: a trader's session".into(),
            }),
            other => other,
        };
        writer.append(*ms, &event).unwrap();
    }
    writer.close().unwrap();
}

/// A backtest's events as a trader's journal in `dir` (see [`write`]).
fn trader_copy_of(backtest: &std::path::Path, dir: &std::path::Path) {
    let mut reader = anx_journal::Reader::open(backtest).unwrap();
    let mut events = Vec::new();
    while let Some(stored) = reader.next_event().unwrap() {
        events.push((stored.market_ms, stored.event));
    }
    write(dir, &events);
}

#[test]
fn a_journal_without_a_trader_is_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &fixture_events());
    let run = anx(&["status", path_str(dir.path()), "--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let out = json(&run.stdout);
    assert_eq!(out["healthy"], false);
    assert_eq!(out["trader_running"], false);
    assert!(out["problems"][0].as_str().unwrap().contains("lock"));
    assert_eq!(out["symbols"]["BTC-USD"]["state"], "IDLE");
    assert_eq!(out["head_seq"], fixture_events().len());
    let text = anx(&["status", path_str(dir.path())]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains("trader     NOT running"),
        "{}",
        text.stdout
    );
}

#[test]
fn status_reads_while_the_trader_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &fixture_events());
    let writer = Writer::open(dir.path(), WriterOptions::default()).unwrap();
    let run = anx(&["status", path_str(dir.path()), "--json"]);
    let out = json(&run.stdout);
    assert_eq!(out["trader_running"], true);
    // The fixture's symbols are IDLE and its (test) configuration has no breakers.
    assert_eq!(out["healthy"], true, "{out}");
    assert_eq!(run.code, 0);
    drop(writer);
}

#[test]
fn fail_closed_and_open_positions_are_reported() {
    let d = |t: &str| t.parse::<Decimal>().unwrap();
    let mut s = Scenario::new(
        &["BTC-USD"],
        CapitalMode::Independent,
        d("1000"),
        1_704_067_200_000,
    );
    s.candle("BTC-USD", d("100"));
    let (coid, order_seq) = s.place_entry("BTC-USD", d("100"), d("95"), d("110"), d("1"));
    s.push(
        s.now_ms(),
        anx_journal::FailClosed {
            symbol: "BTC-USD".into(),
            cause_seq: order_seq,
            reason: "legs missing".into(),
        }
        .into(),
    );
    s.push(
        s.now_ms(),
        anx_journal::EngineTransition {
            symbol: "BTC-USD".into(),
            from: EngineState::EntryPending,
            to: EngineState::FailClosed,
            reason: "protection".into(),
            cause_seq: order_seq,
        }
        .into(),
    );
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &s.events);
    let writer = Writer::open(dir.path(), WriterOptions::default()).unwrap();
    let out = json(&anx(&["status", path_str(dir.path()), "--json"]).stdout);
    assert_eq!(out["healthy"], false);
    assert_eq!(out["symbols"]["BTC-USD"]["state"], "FAIL_CLOSED");
    assert!(
        out["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("FAIL_CLOSED")),
        "{out}"
    );
    let pending = out["symbols"]["BTC-USD"]["pending_orders"]
        .as_array()
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["client_order_id"], coid.as_str());
    drop(writer);
}

#[test]
fn stale_data_trips_the_breaker_of_the_run_configuration() {
    // A replay journal carries the real configuration; its candles are old.
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("j");
    let cache = repo_root().join("../shared/data/candles");
    let run = anx(&[
        "replay",
        "run",
        "--symbols",
        "BTC-USD",
        "--start",
        "2025-01-01",
        "--end",
        "2025-02-01",
        "--cache-dir",
        path_str(&cache),
        "--journal",
        path_str(&journal),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let trader = work.path().join("trader");
    trader_copy_of(&journal, &trader);
    let journal = trader;
    let writer = Writer::open(&journal, WriterOptions::default()).unwrap();
    let out = json(&anx(&["status", path_str(&journal), "--json"]).stdout);
    assert_eq!(out["trader_running"], true);
    assert_eq!(out["healthy"], false);
    assert!(
        out["breakers_active"][0]
            .as_str()
            .unwrap()
            .starts_with("stale_data"),
        "{out}"
    );
    assert!(out["last_candle_age_s"].as_i64().unwrap() > 14_400);
    drop(writer);
}
