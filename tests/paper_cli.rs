//! `anx paper` end to end: the real binary against a fake Coinbase market-data
//! server on 127.0.0.1 that serves the shared real 1h candles with a clock the
//! test controls. The clock moves one hour when the trader asks the time after
//! fetching every symbol up to the current one, so candles arrive one by one,
//! however often the trader is killed and restarted.
//!
//! - parity: the trader's decisions and trades equal `anx replay run`'s over
//!   the same candles;
//! - crash recovery: killed with SIGKILL at many random points and restarted,
//!   it ends in the same state (hash) as the uninterrupted run, no
//!   client_order_id is placed twice, and the journal verifies;
//! - market-data faults (500s, 429s, malformed JSON, a timeout, high < low, a
//!   feed that stalls) are journaled and survived; `anx status` says so;
//! - a second trader on the same journal is refused;
//! - a run started with `--symbols` resumes without them, and other symbols are refused.

mod common;

use anx_journal::{
    Decision, DecisionOutcome, EngineState, Event, ExitReason, FillLeg, OperatorCommand,
    SessionAction, TradeClosed,
};
use common::market::*;
use common::*;
use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::time::Duration;

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

#[test]
fn paper_trader_matches_replay_and_survives_sigkill_at_random_points() {
    let temp = tempfile::tempdir().unwrap();

    // 1. The uninterrupted run, stopped cleanly.
    let calm = serve(market(feed()));
    let journal = temp.path().join("calm");
    let mut child = spawn_paper(&journal, &calm.url, &[]);
    wait_until_fed(&journal, &calm, &mut child);
    let status = sigterm(&mut child);
    assert!(
        status.success(),
        "clean stop: {status}\n{}",
        log_of(&journal)
    );
    let calm_events = events(&journal);
    let last = calm_events.last().unwrap();
    assert!(
        matches!(&last.event, Event::Session(s) if s.action == SessionAction::Stopped && s.reason == "SIGTERM"),
        "the clean-stop marker ends the journal: {:?}",
        last.event
    );
    assert!(matches!(
        calm_events[calm_events.len() - 2].event,
        Event::Checkpoint(_)
    ));
    let verify = anx(&["journal", "verify", path_str(&journal)]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    let calm_projection = folded(&journal);
    let calm_trades = calm_projection.state.trades.len();
    assert!(
        calm_trades >= 3,
        "the feed should trade: {calm_trades} trades"
    );
    assert!(
        calm_projection.links.placed.len() >= calm_trades,
        "an entry placed per trade"
    );

    // 2. Parity: `anx replay run` over the same candles decides and trades alike.
    let run = calm_events
        .iter()
        .find_map(|e| match &e.event {
            Event::RunStarted(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    let cache = write_cache(temp.path());
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
        &rfc3339((FEED_START_S + FEED_HOURS * HOUR_S) * 1000),
        "--journal",
        path_str(&replay_journal),
        "--report-format",
        "json",
    ]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    let (paper_decisions, paper_trades) = decisions_and_trades(&journal);
    let (replay_decisions, replay_trades) = decisions_and_trades(&replay_journal);
    assert_eq!(paper_decisions.len(), (FEED_HOURS as usize) * SYMBOLS.len());
    assert_eq!(paper_decisions.len(), replay_decisions.len());
    for (i, (p, r)) in paper_decisions.iter().zip(&replay_decisions).enumerate() {
        assert_eq!(p, r, "decision {i} differs between paper and replay");
    }
    assert_eq!(paper_trades, replay_trades);
    assert_eq!(paper_trades.len(), calm_trades);

    // 3. Crash recovery: SIGKILL at random points, restart, finish the feed.
    let seed: u64 = std::env::var("ANX_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0005_eed0_fa11);
    let kills: u32 = std::env::var("ANX_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut lcg = Lcg(seed);
    let crashy = serve(market(feed()));
    let crash_journal = temp.path().join("crashy");
    let mut kill_points = Vec::new();
    for _ in 0..kills {
        let mut child = spawn_paper(&crash_journal, &crashy.url, &[]);
        let delay_ms = 10 + lcg.below(50);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        kill_points.push((delay_ms, events(&crash_journal).len()));
    }
    let context = format!("seed {seed}, kills (ms after start, events then): {kill_points:?}");
    eprintln!("{context}");
    let mut child = spawn_paper(&crash_journal, &crashy.url, &[]);
    wait_until_fed(&crash_journal, &crashy, &mut child);
    assert!(sigterm(&mut child).success(), "{context}");
    let verify = anx(&["journal", "verify", path_str(&crash_journal)]);
    assert_eq!(
        verify.code, 0,
        "{context}: {}{}",
        verify.stdout, verify.stderr
    );
    let crash_projection = folded(&crash_journal);
    let first_difference = {
        let calm_text = serde_json::to_string_pretty(&calm_projection.state).unwrap();
        let crash_text = serde_json::to_string_pretty(&crash_projection.state).unwrap();
        calm_text
            .lines()
            .zip(crash_text.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(n, (a, b))| format!("state line {n}: {a:?} vs {b:?}"))
    };
    assert_eq!(
        crash_projection.state_hash(),
        calm_projection.state_hash(),
        "{context}: the state after crashes differs from the uninterrupted run's ({first_difference:?})"
    );
    let ids = placed_ids(&crash_journal);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "{context}: a client_order_id placed twice"
    );
    assert_eq!(ids.len(), placed_ids(&journal).len(), "{context}");
    let sessions = &crash_projection.links.sessions;
    let crash_restarts = sessions
        .iter()
        .filter(|s| s.reason == "restart after a crash")
        .count();
    assert!(
        crash_restarts >= kills as usize / 2,
        "{context}: most kills land after the journal exists ({crash_restarts} crash restarts)"
    );
    assert_eq!(crashy.now_s(), calm.now_s(), "both runs saw the whole feed");
    // A glass box the journal keeps as its digest, recomputed through the
    // paper trader's own simulator – after every crash and restart – and proven.
    let committed: Vec<u64> = events(&crash_journal)
        .iter()
        .filter(|e| matches!(&e.event, Event::Decision(d) if d.glass.full().is_none()))
        .map(|e| e.seq)
        .collect();
    assert!(committed.len() > 10, "{context}: {committed:?}");
    for seq in [
        committed[0],
        committed[committed.len() / 2],
        committed[committed.len() - 1],
    ] {
        let run = anx(&[
            "why",
            path_str(&crash_journal),
            "--decision",
            &seq.to_string(),
        ]);
        assert_eq!(run.code, 0, "{context}: seq {seq}: {}", run.stderr);
        assert!(run.stdout.contains("and proven"), "{}", run.stdout);
    }
}

#[test]
fn market_data_faults_are_journaled_and_survived_and_status_reports_stale() {
    let temp = tempfile::tempdir().unwrap();
    let mut data = feed();
    // A bar with high < low, in the middle of the feed.
    let bad_hour = FEED_START_S + 30 * HOUR_S;
    let row = data.get_mut("ETH-USD").unwrap().get_mut(&bad_hour).unwrap();
    let (high, low) = (row[1].clone(), row[2].clone());
    row[1] = low;
    row[2] = high;
    let mut state = market(data);
    state.end_s = FEED_START_S + 48 * HOUR_S;
    state.run_past_end = true;
    // Candles from hour 40 withheld for twelve hours: the feed stalls, then
    // the backlog arrives late.
    state.stall = Some((FEED_START_S + 40 * HOUR_S, FEED_START_S + 52 * HOUR_S));
    // The clock waits at hour 50 – stale, the backlog still withheld – until
    // the test has looked at the stale trader.
    state.hold_at = Some(FEED_START_S + 50 * HOUR_S);
    // The first fetches: three 500s (one poll's attempts: a journaled outage),
    // a 429 then a recovery, malformed JSON three times, and a hung request.
    state.faults = VecDeque::from(vec![
        Fault::Status(500),
        Fault::Status(500),
        Fault::Status(500),
        Fault::Status(429),
        Fault::Malformed,
        Fault::Malformed,
        Fault::Malformed,
        Fault::Hang(Duration::from_millis(1500)),
    ]);
    let fake = serve(state);
    let journal = temp.path().join("faulty");
    let mut child = spawn_paper(&journal, &fake.url, &[]);
    let stale_seen = || {
        events(&journal).iter().any(|e| {
            matches!(&e.event, Event::DataQuality(f) if matches!(f.issue, anx_journal::QualityIssue::Stale { .. }))
        })
    };
    wait_for(
        "a stale finding",
        &journal,
        Duration::from_secs(120),
        stale_seen,
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the trader keeps running"
    );
    let stalled_at_ms = fake.now_s() * 1000;
    let status = anx(&[
        "status",
        path_str(&journal),
        "--json",
        "--now",
        &rfc3339(stalled_at_ms),
    ]);
    assert_eq!(status.code, 1, "stale data is unhealthy: {}", status.stdout);
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(doc["trader_running"], true);
    assert!(
        doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("stale")),
        "{doc}"
    );
    // The backlog arrives after the stall; wait for it, then stop.
    fake.release_clock();
    let backlog_close_ms = (FEED_START_S + 48 * HOUR_S) * 1000;
    wait_for("the backlog", &journal, Duration::from_secs(120), || {
        events(&journal).iter().any(
            |e| matches!(&e.event, Event::Candle(c) if c.open_ms + 3_600_000 == backlog_close_ms),
        )
    });
    let polls = fake.time_requests();
    wait_for("another poll", &journal, Duration::from_secs(30), || {
        fake.time_requests() > polls + 1
    });
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));

    let all = events(&journal);
    let findings: Vec<&anx_journal::DataQuality> = all
        .iter()
        .filter_map(|e| match &e.event {
            Event::DataQuality(f) => Some(f),
            _ => None,
        })
        .collect();
    let count = |pred: &dyn Fn(&anx_journal::QualityIssue) -> bool| {
        findings.iter().filter(|f| pred(&f.issue)).count()
    };
    use anx_journal::QualityIssue::*;
    assert!(
        count(&|i| matches!(i, FeedFault { .. })) >= 2,
        "outages journaled: {findings:#?}"
    );
    assert!(findings
        .iter()
        .any(|f| matches!(f.issue, FeedFault { .. }) && f.detail.contains("500")));
    assert_eq!(
        count(&|i| matches!(i, InvalidCandle { open_ms } if *open_ms == bad_hour * 1000)),
        1,
        "the high < low bar is reported once and dropped"
    );
    assert!(!all.iter().any(
        |e| matches!(&e.event, Event::Candle(c) if c.symbol == "ETH-USD" && c.open_ms == bad_hour * 1000)
    ));
    assert!(
        count(&|i| matches!(i, Stale { .. })) >= 2,
        "each symbol went stale"
    );
    // Candles that arrived stale were decided on when they arrived – the
    // engine's stale-data breaker saw their age – and opened nothing.
    let late: Vec<&anx_journal::Decision> = all
        .iter()
        .filter_map(|e| match &e.event {
            Event::Decision(d) if d.as_of_ms > 0 => Some(d),
            _ => None,
        })
        .filter(|d| {
            let close = all.iter().find_map(|e| match &e.event {
                Event::Candle(c) if c.symbol == d.symbol && Some(e.seq) == Some(d.candle_seq) => {
                    Some(c.open_ms + 3_600_000)
                }
                _ => None,
            });
            close.is_some_and(|c| d.as_of_ms - c > 21_600_000)
        })
        .collect();
    assert!(!late.is_empty(), "the backlog held stale candles");
    assert!(late
        .iter()
        .all(|d| !matches!(d.outcome, anx_journal::DecisionOutcome::Enter)));
    let verify = anx(&["journal", "verify", path_str(&journal)]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    // A restart after the clean stop says so.
    let mut again = spawn_paper(&journal, &fake.url, &[]);
    wait_for(
        "the restart marker",
        &journal,
        Duration::from_secs(60),
        || {
            events(&journal).iter().any(|e| {
            matches!(&e.event, Event::Session(s) if s.reason == "restart after a clean stop")
        })
        },
    );
    assert!(sigterm(&mut again).success());
}

#[test]
fn a_second_trader_on_the_same_journal_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let fake = serve(market(feed()));
    let journal = temp.path().join("shared");
    let mut first = spawn_paper(&journal, &fake.url, &[]);
    wait_for(
        "the first trader's journal",
        &journal,
        Duration::from_secs(60),
        || events(&journal).len() >= 3,
    );
    let second = paper_refused(&journal, &fake.url, &[]);
    second.assert_one_line_error(2);
    assert!(
        second.stderr.contains("lock") || second.stderr.contains("locked"),
        "{}",
        second.stderr
    );
    let status = anx(&["status", path_str(&journal), "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(doc["trader_running"], true);
    assert_eq!(doc["last_session"]["reason"], "first start");
    assert!(sigterm(&mut first).success());
    let status = anx(&["status", path_str(&journal), "--json"]);
    assert_eq!(status.code, 1, "no trader running is unhealthy");
    let verify = anx(&["journal", "verify", path_str(&journal)]);
    assert_eq!(verify.code, 0, "{}", verify.stderr);
}

#[test]
fn a_run_started_with_symbols_resumes_without_them_and_refuses_others() {
    let temp = tempfile::tempdir().unwrap();
    let fake = serve(market(feed()));
    let journal = temp.path().join("btc-only");
    let sessions = |journal: &Path| {
        events(journal)
            .into_iter()
            .filter(|e| matches!(e.event, Event::Session(_)))
            .count()
    };
    let mut first = spawn_paper(&journal, &fake.url, &["--symbols", "BTC-USD"]);
    wait_for(
        "the first session",
        &journal,
        Duration::from_secs(60),
        || events(&journal).len() >= 3,
    );
    assert!(sigterm(&mut first).success(), "{}", log_of(&journal));
    let before = sessions(&journal);
    // A plain restart takes the journal's symbols.
    let mut second = spawn_paper(&journal, &fake.url, &[]);
    wait_for(
        "the restart's session",
        &journal,
        Duration::from_secs(60),
        || sessions(&journal) > before,
    );
    assert!(sigterm(&mut second).success(), "{}", log_of(&journal));
    let run = events(&journal)
        .into_iter()
        .find_map(|e| match e.event {
            Event::RunStarted(run) => Some(run),
            _ => None,
        })
        .expect("RunStarted");
    assert_eq!(run.symbols, ["BTC-USD"]);
    // Other symbols are another run.
    let third = paper_refused(&journal, &fake.url, &["--symbols", "ETH-USD"]);
    third.assert_one_line_error(2);
    assert!(third.stderr.contains("--symbols"), "{}", third.stderr);
    refused_starts_leave_a_torn_tail_alone(&journal, &fake);
}

/// A torn tail is cut only by a start that goes on to write: a refused start
/// changes no byte (and journals nothing), `anx journal repair` leaves a
/// trader's journal to its trader, and the trader's own start cuts the tail
/// and journals the cut.
fn refused_starts_leave_a_torn_tail_alone(journal: &Path, fake: &FakeMarket) {
    let segment = cut_last_segment(journal, 20);
    let torn = std::fs::read(&segment).unwrap();
    let refused = paper_refused(journal, &fake.url, &["--symbols", "ETH-USD"]);
    refused.assert_one_line_error(2);
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        torn,
        "a refused start changes nothing"
    );
    let repair = anx(&["journal", "repair", path_str(journal)]);
    repair.assert_one_line_error(2);
    assert!(repair.stderr.contains("anx paper"), "{}", repair.stderr);
    assert_eq!(std::fs::read(&segment).unwrap(), torn);
    // A replay journal with a torn tail is refused by the paper trader, unchanged.
    let temp = tempfile::tempdir().unwrap();
    let replay = temp.path().join("replay");
    btc_backtest(&replay, ("2025-01-01", "2025-02-01"));
    let replay_segment = cut_last_segment(&replay, 20);
    let replay_torn = std::fs::read(&replay_segment).unwrap();
    let refused = paper_refused(&replay, &fake.url, &[]);
    refused.assert_one_line_error(2);
    assert!(
        refused.stderr.contains("ReplayBacktest"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read(&replay_segment).unwrap(), replay_torn);
    // The trader itself repairs its journal, and says so in it.
    let recovered = |journal: &Path| {
        events(journal)
            .into_iter()
            .filter(|e| matches!(e.event, Event::Recovered(_)))
            .count()
    };
    let sessions_before = events(journal).len();
    assert_eq!(recovered(journal), 0);
    let mut trader = spawn_paper(journal, &fake.url, &[]);
    wait_for("the repair note", journal, Duration::from_secs(60), || {
        recovered(journal) == 1 && events(journal).len() > sessions_before
    });
    assert!(sigterm(&mut trader).success(), "{}", log_of(journal));
    let verify = anx(&["journal", "verify", path_str(journal)]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
}

/// The state hash of the last checkpoint in `journal` (a clean stop's).
fn last_checkpoint_hash(journal: &Path) -> anx_journal::Hash32 {
    events(journal)
        .into_iter()
        .rev()
        .find_map(|e| match e.event {
            Event::Checkpoint(c) => Some(c.state_hash),
            _ => None,
        })
        .expect("a clean stop journals a checkpoint")
}

#[test]
fn a_restart_with_no_new_market_data_moves_no_figure() {
    // Stop cleanly, restart on a market with nothing new, stop again: the
    // restart (its session marker and its start-up reconciliation) is not
    // market news, so both stops checkpoint the same state hash – exposure
    // and every other figure measured over market time included.
    let temp = tempfile::tempdir().unwrap();
    let fake = serve(market(feed()));
    let journal = temp.path().join("restarted");
    let mut first = spawn_paper(&journal, &fake.url, &[]);
    wait_until_fed(&journal, &fake, &mut first);
    // Half an hour passes with no candle closing: the stop is journaled at
    // the exchange's time, after the newest candle.
    fake.state.lock().unwrap().now_s += HOUR_S / 2;
    let polls = fake.time_requests();
    wait_for(
        "polls at the later time",
        &journal,
        Duration::from_secs(30),
        || fake.time_requests() > polls + 1,
    );
    assert!(sigterm(&mut first).success(), "{}", log_of(&journal));
    let stopped = last_checkpoint_hash(&journal);
    let report_before = folded(&journal).state.clone();
    let sessions = |journal: &Path| {
        events(journal)
            .into_iter()
            .filter(|e| matches!(e.event, Event::Reconciliation(_)))
            .count()
    };
    let reconciled = sessions(&journal);
    let mut second = spawn_paper(&journal, &fake.url, &[]);
    wait_for(
        "the restart's reconciliation",
        &journal,
        Duration::from_secs(60),
        || sessions(&journal) > reconciled,
    );
    let polls = fake.time_requests();
    wait_for("two more polls", &journal, Duration::from_secs(30), || {
        fake.time_requests() > polls + 1
    });
    assert!(sigterm(&mut second).success(), "{}", log_of(&journal));
    let restarted = folded(&journal).state;
    assert_eq!(restarted.last_market_ms, report_before.last_market_ms);
    assert_eq!(
        restarted.run.as_ref().unwrap().candles,
        report_before.run.as_ref().unwrap().candles
    );
    assert_eq!(
        last_checkpoint_hash(&journal),
        stopped,
        "the same state after the restart"
    );
}

/// A paper trader's journal made by the code of its day and committed: the
/// first 24 hours of the feed, a clean stop, a restart, a clean stop again
/// (checkpoints, stop markers and a resumed session). Every later build must
/// still verify it, fold it (its checkpoints checked) and resume it.
/// `ANX_WRITE_PAPER_FIXTURE=1 cargo test --release --test paper_cli
/// the_committed_paper_journal` writes it anew (only ever on purpose: the
/// point is that it was written by older code).
const PAPER_FIXTURE: &str = "tests/fixtures/paper-v1";
const FIXTURE_HOURS: i64 = 24;

fn fixture_market() -> FakeMarket {
    let mut state = market(feed());
    state.end_s = FEED_START_S + FIXTURE_HOURS * HOUR_S;
    serve(state)
}

/// Runs the trader on `journal` until it has decided on the fixture's last
/// candle and polled again, then stops it cleanly.
fn trade_fixture_hours(journal: &Path, fake: &FakeMarket) {
    let last_close_ms = (FEED_START_S + FIXTURE_HOURS * HOUR_S) * 1000;
    let mut trader = spawn_paper(journal, &fake.url, &[]);
    wait_for("the last candle", journal, Duration::from_secs(120), || {
        events(journal)
            .iter()
            .filter(|e| matches!(&e.event, Event::Decision(d) if d.as_of_ms == last_close_ms))
            .count()
            == SYMBOLS.len()
    });
    let polls = fake.time_requests();
    wait_for("another poll", journal, Duration::from_secs(30), || {
        fake.time_requests() > polls + 1
    });
    assert!(sigterm(&mut trader).success(), "{}", log_of(journal));
}

#[test]
fn the_committed_paper_journal_verifies_folds_and_resumes() {
    let fixture = repo_root().join(PAPER_FIXTURE);
    if std::env::var_os("ANX_WRITE_PAPER_FIXTURE").is_some() {
        let _ = std::fs::remove_dir_all(&fixture);
        let fake = fixture_market();
        trade_fixture_hours(&fixture, &fake);
        trade_fixture_hours(&fixture, &fake);
        let _ = std::fs::remove_dir_all(fixture.join("index"));
        let _ = std::fs::remove_file(fixture.join("LOCK"));
        let _ = std::fs::remove_file(fixture.with_extension("log"));
    }
    let kinds: Vec<Event> = events(&fixture).into_iter().map(|e| e.event).collect();
    let count = |pick: fn(&Event) -> bool| kinds.iter().filter(|e| pick(e)).count();
    assert!(
        count(|e| matches!(e, Event::Checkpoint(_))) >= 2,
        "checkpoints"
    );
    assert!(count(|e| matches!(e, Event::Candle(_))) >= 2 * FIXTURE_HOURS as usize);
    let stops = count(|e| matches!(e, Event::Session(s) if s.action == SessionAction::Stopped));
    assert_eq!(stops, 2, "two clean stops");
    assert!(kinds
        .iter()
        .any(|e| matches!(e, Event::Session(s) if s.reason == "restart after a clean stop")));
    // Verifies, and folds with every checkpoint checked.
    let work = copy_of(&fixture);
    let verify = anx(&["journal", "verify", path_str(work.path())]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
    let replay = anx(&[
        "journal",
        "replay",
        path_str(work.path()),
        "--no-snapshot",
        "--json",
    ]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    // Resumes: re-driven through today's pipeline, then trading on.
    let stopped = last_checkpoint_hash(work.path());
    let fake = fixture_market();
    fake.state.lock().unwrap().now_s = FEED_START_S + FIXTURE_HOURS * HOUR_S;
    let before = events(work.path()).len();
    let mut trader = spawn_paper(work.path(), &fake.url, &[]);
    wait_for(
        "the resumed session",
        work.path(),
        Duration::from_secs(60),
        || events(work.path()).len() > before + 1,
    );
    let polls = fake.time_requests();
    wait_for("another poll", work.path(), Duration::from_secs(30), || {
        fake.time_requests() > polls + 1
    });
    assert!(sigterm(&mut trader).success(), "{}", log_of(work.path()));
    assert_eq!(
        last_checkpoint_hash(work.path()),
        stopped,
        "resumed into the same state"
    );
    assert_eq!(anx(&["journal", "verify", path_str(work.path())]).code, 0);
}

/// Runs `anx operator ARGS` as operator `alice`.
fn operator(args: &[&str]) -> Run {
    let mut all = vec!["operator"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--operator", "alice", "--wait", "20"]);
    anx(&all)
}

#[test]
fn operator_actions_reach_a_running_trader_and_a_stopped_journal() {
    let temp = tempfile::tempdir().unwrap();
    let mut state = market(feed());
    // The clock waits at the start until the halt is in.
    state.hold_at = Some(state.now_s);
    let fake = serve(state);
    let journal = temp.path().join("operated");
    let dir = path_str(&journal).to_string();
    let mut trader = spawn_paper(&journal, &fake.url, &[]);
    wait_for(
        "the first session",
        &journal,
        Duration::from_secs(60),
        || {
            events(&journal)
                .iter()
                .any(|e| matches!(e.event, Event::Session(_)))
        },
    );
    // Start-up done (the clock is held, so nothing more arrives): two polls.
    let polls = fake.time_requests();
    wait_for("two polls", &journal, Duration::from_secs(30), || {
        fake.time_requests() > polls + 1
    });
    // Refused, with the fold's reason, and nothing journaled.
    let before = events(&journal).len();
    for (args, why) in [
        (vec!["resume", &dir], "not halted"),
        (
            vec!["reset", &dir, "BTC-USD", "--reason", "x"],
            "not fail-closed",
        ),
        (
            vec!["exit", &dir, "BTC-USD", "--reason", "x"],
            "holds no position",
        ),
        (
            vec!["exit", &dir, "DOGE-USD", "--reason", "x"],
            "not in the run",
        ),
    ] {
        let run = operator(&args);
        run.assert_one_line_error(2);
        assert!(run.stderr.contains(why), "{args:?}: {}", run.stderr);
    }
    assert_eq!(events(&journal).len(), before, "refusals journal nothing");
    // The running trader takes a halt from its inbox and says where it is.
    let run = operator(&["halt", &dir, "--reason", "exchange maintenance"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seq: u64 = run
        .stdout
        .trim()
        .strip_prefix("operator halt journaled at seq ")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{}", run.stdout));
    let halted = events(&journal);
    assert!(matches!(
        &halted[seq as usize - 1].event,
        Event::OperatorAction(a) if a.command == OperatorCommand::Halt && a.operator == "alice"
            && a.reason == "exchange maintenance"
    ));
    let again = operator(&["halt", &dir, "--reason", "again"]);
    again.assert_one_line_error(2);
    assert!(again.stderr.contains("already halted"), "{}", again.stderr);
    // Trading on while halted: no entry is decided, every fired signal is refused.
    fake.release_clock();
    wait_until_fed(&journal, &fake, &mut trader);
    let decisions: Vec<Decision> = events(&journal)
        .into_iter()
        .filter(|e| e.seq > seq)
        .filter_map(|e| match e.event {
            Event::Decision(d) => Some(d),
            _ => None,
        })
        .collect();
    assert!(decisions.len() > 100, "{} decisions", decisions.len());
    assert!(decisions
        .iter()
        .all(|d| d.outcome != DecisionOutcome::Enter));
    let refused = decisions
        .iter()
        .filter(|d| {
            matches!(&d.outcome, DecisionOutcome::Rejected { reason_code } if reason_code == "operator_halt")
        })
        .count();
    assert!(refused > 0, "the feed's signals fire while halted");
    let status = anx(&["status", &dir, "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(doc["halted"]["operator"], "alice", "{doc}");
    assert_eq!(doc["operator_actions"][0]["command"], "halt");
    assert!(sigterm(&mut trader).success(), "{}", log_of(&journal));

    // No trader: appended directly after the clean stop, acted on at the next start.
    let run = operator(&["resume", &dir]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("operator resume journaled at seq"),
        "{}",
        run.stdout
    );
    assert!(matches!(
        events(&journal).last().map(|e| &e.event),
        Some(Event::OperatorAction(a)) if a.command == OperatorCommand::Resume
    ));
    // One action waits for the trader at a time: its step belongs right after it.
    let second = operator(&["halt", &dir, "--reason", "again"]);
    second.assert_one_line_error(2);
    assert!(second.stderr.contains("already waits"), "{}", second.stderr);
    let before = events(&journal).len();
    let mut trader = spawn_paper(&journal, &fake.url, &[]);
    wait_for("the restart", &journal, Duration::from_secs(60), || {
        events(&journal).len() > before + 1
    });
    assert!(sigterm(&mut trader).success(), "{}", log_of(&journal));
    assert!(events(&journal).iter().any(
        |e| matches!(&e.event, Event::Session(s) if s.reason == "restart after a clean stop")
    ));
    assert!(folded(&journal).state.halted.is_none());
    assert_eq!(anx(&["journal", "verify", &dir]).code, 0);
}

#[test]
fn a_drill_that_withholds_protection_fails_closed_cancels_and_an_operator_resets() {
    let temp = tempfile::tempdir().unwrap();
    let fake = serve(market(feed()));
    let journal = temp.path().join("drill");
    let dir = path_str(&journal).to_string();
    let mut trader = spawn_paper(&journal, &fake.url, &["--drill-withhold-protection"]);
    wait_for(
        "a symbol failed closed",
        &journal,
        Duration::from_secs(240),
        || {
            events(&journal)
                .iter()
                .any(|e| matches!(e.event, Event::FailClosed(_)))
        },
    );
    wait_until_fed(&journal, &fake, &mut trader);
    let all = events(&journal);
    let fail = all
        .iter()
        .position(|e| matches!(e.event, Event::FailClosed(_)))
        .unwrap();
    let Event::FailClosed(failed) = &all[fail].event else {
        unreachable!()
    };
    assert!(failed.reason.contains("not found"), "{failed:?}");
    let symbol = failed.symbol.clone();
    // The entry had not filled: it is withdrawn (asked, then cancelled), never filled bare.
    let step = &all[fail..(fail + 4).min(all.len())];
    assert!(
        step.iter()
            .any(|e| matches!(e.event, Event::CancelRequested(_))),
        "{step:?}"
    );
    assert!(
        step.iter()
            .any(|e| matches!(e.event, Event::OrderCancelled(_))),
        "{step:?}"
    );
    assert!(!all
        .iter()
        .any(|e| matches!(&e.event, Event::Fill(f) if f.leg == FillLeg::Entry)));
    let status = anx(&["status", &dir]);
    assert_eq!(
        status.code, 1,
        "FAIL_CLOSED is unhealthy: {}",
        status.stdout
    );
    assert!(status.stdout.contains("FAIL_CLOSED"), "{}", status.stdout);
    // An operator who has looked brings the symbol back.
    let run = operator(&["reset", &dir, &symbol, "--reason", "drill over"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seq: u64 = run
        .stdout
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{}", run.stdout));
    let after = events(&journal);
    assert!(
        matches!(&after[seq as usize].event, Event::EngineTransition(t)
        if t.from == EngineState::FailClosed && t.to == EngineState::Idle && t.cause_seq == seq)
    );
    assert!(sigterm(&mut trader).success(), "{}", log_of(&journal));
    // The drill journal resumes as a drill (the journal says so), and re-drives.
    let before = events(&journal).len();
    let mut trader = spawn_paper(&journal, &fake.url, &[]);
    wait_for("the restart", &journal, Duration::from_secs(60), || {
        events(&journal).len() > before + 1
    });
    assert!(sigterm(&mut trader).success(), "{}", log_of(&journal));
    assert_eq!(anx(&["journal", "verify", &dir]).code, 0);
    // The report says why the drill's candles did not trade: the symbol was
    // fail-closed.
    let replay = anx(&["journal", "replay", &dir, "--json"]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    let no_order = &json(&replay.stdout)["report"]["no_order"]["by_symbol"][&symbol];
    assert!(no_order["fail_closed"].as_u64() > Some(0), "{no_order}");
    // From a snapshot or folded from seq 1: the same counts.
    let again = anx(&["journal", "replay", &dir, "--json", "--no-snapshot"]);
    assert_eq!(
        json(&again.stdout)["report"]["no_order"],
        json(&replay.stdout)["report"]["no_order"]
    );
}

#[test]
fn an_operator_exit_closes_a_running_traders_position_at_market() {
    let temp = tempfile::tempdir().unwrap();
    // A first run over the whole feed finds a trade held for a few bars.
    let first = temp.path().join("first");
    let fake = serve(market(feed()));
    let mut trader = spawn_paper(&first, &fake.url, &[]);
    wait_until_fed(&first, &fake, &mut trader);
    assert!(sigterm(&mut trader).success(), "{}", log_of(&first));
    let trades: Vec<TradeClosed> = events(&first)
        .into_iter()
        .filter_map(|e| match e.event {
            Event::TradeClosed(t) => Some(t),
            _ => None,
        })
        .collect();
    let held = trades
        .iter()
        .find(|t| t.exit_ms - t.entry_ms >= 3 * HOUR_S * 1000)
        .expect("the feed holds a trade for three hours or more");
    // The same feed, its clock held right after that entry filled.
    let journal = temp.path().join("exited");
    let dir = path_str(&journal).to_string();
    let mut state = market(feed());
    state.hold_at = Some(held.entry_ms / 1000);
    let fake = serve(state);
    let mut trader = spawn_paper(&journal, &fake.url, &[]);
    wait_for("the position", &journal, Duration::from_secs(120), || {
        folded(&journal)
            .state
            .symbols
            .get(&held.symbol)
            .is_some_and(|s| s.position.quantity > Default::default())
    });
    let run = operator(&["exit", &dir, &held.symbol, "--reason", "closing by hand"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seq: u64 = run
        .stdout
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{}", run.stdout));
    let after = events(&journal);
    assert!(matches!(&after[seq as usize].event, Event::Decision(d)
        if d.outcome == (DecisionOutcome::Exit { reason: ExitReason::Manual })));
    assert!(
        matches!(&after[seq as usize + 1].event, Event::OrderPlaced(o)
        if o.product_id == held.symbol && o.base_size == held.size)
    );
    // The next bar fills the market exit: the one finalize path, reason manual.
    fake.release_clock();
    wait_for(
        "the manual exit",
        &journal,
        Duration::from_secs(120),
        || {
            events(&journal).iter().any(|e| {
                matches!(&e.event, Event::TradeClosed(t)
                if t.exit_reason == ExitReason::Manual && t.symbol == held.symbol)
            })
        },
    );
    assert!(sigterm(&mut trader).success(), "{}", log_of(&journal));
    assert_eq!(anx(&["journal", "verify", &dir]).code, 0);
}

/// The edge-decay watch: a trader given a reference run (here a backtest of
/// the same candles without fees, so its expectancy is higher) journals a
/// raised `Finding` once the run's expectancy falls below the reference's by
/// more than the threshold – once, not again at each later trade nor at a
/// restart – `anx status` shows it and `anx compare` agrees; a reference
/// that cannot be read stops the trader before it journals anything.
#[test]
fn a_trader_given_a_reference_journals_edge_decay_once() {
    let temp = tempfile::tempdir().unwrap();
    let cache = write_cache(temp.path());
    let free = temp.path().join("free.toml");
    std::fs::write(
        &free,
        format!(
            "extends = {:?}\n\n[costs]\nmaker_fee_bps = \"0\"\ntaker_fee_bps = \"0\"\n",
            path_str(&config())
        ),
    )
    .unwrap();
    let reference = temp.path().join("reference");
    let replay = anx(&[
        "replay",
        "run",
        "--config",
        path_str(&free),
        "--cache-dir",
        path_str(&cache),
        "--start",
        &rfc3339(FEED_START_S * 1000),
        "--end",
        &rfc3339((FEED_START_S + FEED_HOURS * HOUR_S) * 1000),
        "--journal",
        path_str(&reference),
    ]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    let thresholds = temp.path().join("thresholds.toml");
    let shipped = std::fs::read_to_string(repo_root().join("config/compare.toml")).unwrap();
    let strict = shipped
        .replace("min_trades = 10", "min_trades = 3")
        .replace(
            "expectancy_drop_pct_max = \"50\"",
            "expectancy_drop_pct_max = \"10\"",
        );
    std::fs::write(&thresholds, strict).unwrap();
    let watch = [
        "--reference",
        path_str(&reference),
        "--thresholds",
        path_str(&thresholds),
    ];

    // A reference that is not a journal: refused, nothing journaled.
    let fake = serve(market(feed()));
    let journal = temp.path().join("paper");
    let nowhere = temp.path().join("nowhere");
    let refused = paper_refused(&journal, &fake.url, &["--reference", path_str(&nowhere)]);
    refused.assert_one_line_error(2);
    assert!(!journal.exists(), "nothing journaled");

    let mut child = spawn_paper(&journal, &fake.url, &watch);
    wait_until_fed(&journal, &fake, &mut child);
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
    let findings = |journal: &Path| -> Vec<(u64, anx_journal::Finding)> {
        events(journal)
            .into_iter()
            .filter_map(|e| match e.event {
                Event::Finding(f) => Some((e.seq, f)),
                _ => None,
            })
            .collect()
    };
    let found = findings(&journal);
    assert_eq!(
        found.len(),
        1,
        "one finding: {found:?}\n{}",
        log_of(&journal)
    );
    let (seq, finding) = &found[0];
    assert_eq!(finding.check, "edge_decay.expectancy_drop");
    assert!(finding.raised);
    assert!(finding.value.unwrap() > finding.limit, "{finding:?}");
    // Raised after the third closed trade (the fewest judged), not before.
    let closes: Vec<u64> = events(&journal)
        .into_iter()
        .filter(|e| matches!(e.event, Event::TradeClosed(_)))
        .map(|e| e.seq)
        .collect();
    assert!(closes.len() > 3, "{closes:?}");
    assert!(
        *seq > closes[2],
        "finding at {seq}, trades closed at {closes:?}"
    );

    // A restart re-drives the journal and raises nothing again.
    let fake = serve(market(feed()));
    let mut child = spawn_paper(&journal, &fake.url, &watch);
    wait_until_fed(&journal, &fake, &mut child);
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
    assert_eq!(findings(&journal).len(), 1, "{}", log_of(&journal));

    let status = anx(&["status", path_str(&journal), "--json"]);
    let doc = json(&status.stdout);
    assert_eq!(
        doc["findings"][0]["check"], "edge_decay.expectancy_drop",
        "{doc}"
    );
    assert_eq!(doc["findings"][0]["seq"], *seq);
    let text = anx(&["status", path_str(&journal)]);
    assert!(
        text.stdout
            .contains("finding    edge_decay.expectancy_drop raised"),
        "{}",
        text.stdout
    );
    // `anx compare` judges the same run against the same reference alike.
    let compare = anx(&[
        "compare",
        path_str(&reference),
        path_str(&journal),
        "--thresholds",
        path_str(&thresholds),
        "--json",
    ]);
    assert_eq!(compare.code, 1, "{}{}", compare.stdout, compare.stderr);
    let doc = json(&compare.stdout);
    assert_eq!(doc["thresholds"][0]["check"], "expectancy_drop");
    assert_eq!(doc["thresholds"][0]["crossed"], true, "{doc}");
}

/// A first start cut short between creating the journal and making its
/// `RunStarted` durable (the segment's header alone, or a torn `RunStarted`
/// after it) is finished at the next start as the same run – the run of the
/// exchange time the journal was created at – and trades as the uninterrupted
/// one did; the torn record's repair is journaled first.
#[test]
fn a_first_start_cut_short_is_finished_as_the_same_run() {
    let temp = tempfile::tempdir().unwrap();
    let fake = serve(market(feed()));
    let calm = temp.path().join("calm");
    let mut child = spawn_paper(&calm, &fake.url, &[]);
    wait_until_fed(&calm, &fake, &mut child);
    assert!(sigterm(&mut child).success(), "{}", log_of(&calm));
    let run_of = |journal: &Path| {
        events(journal)
            .into_iter()
            .find_map(|e| match e.event {
                Event::RunStarted(run) => Some(run),
                _ => None,
            })
            .expect("a RunStarted")
    };
    let segment = "seg-00000000000000000001.anxj";
    let bytes = std::fs::read(calm.join(segment)).unwrap();
    for (name, cut) in [("header-only", 112), ("torn-run-started", 112 + 40)] {
        let journal = temp.path().join(name);
        std::fs::create_dir_all(&journal).unwrap();
        std::fs::write(journal.join(segment), &bytes[..cut]).unwrap();
        let fake = serve(market(feed()));
        let mut child = spawn_paper(&journal, &fake.url, &[]);
        wait_until_fed(&journal, &fake, &mut child);
        assert!(
            sigterm(&mut child).success(),
            "{name}: {}",
            log_of(&journal)
        );
        assert_eq!(run_of(&journal), run_of(&calm), "{name}: the same run");
        let kinds: Vec<&str> = events(&journal)
            .iter()
            .take(2)
            .map(|e| e.event.kind().name())
            .collect();
        let expected = if cut > 112 {
            ["Recovered", "RunStarted"]
        } else {
            ["RunStarted", "Session"]
        };
        assert_eq!(kinds, expected, "{name}");
        assert_eq!(
            decisions_and_trades(&journal),
            decisions_and_trades(&calm),
            "{name}: trades as the uninterrupted run did"
        );
        let verify = anx(&["journal", "verify", path_str(&journal)]);
        assert_eq!(verify.code, 0, "{name}: {}", verify.stdout);
        assert!(
            log_of(&journal).contains("finishing a first start a crash cut short"),
            "{name}: {}",
            log_of(&journal)
        );
    }
}
