//! A running trader's health and anomalies against hand-built journals: the
//! fold's counters, the rejection streak, each anomaly raised once while it
//! holds and cleared once when it stops, and the health's verdicts.

mod engine_support;

use anx_journal::*;
use anx_projections::anomaly::{changes, judge, AnomalyThresholds, Observed};
use anx_projections::health::{texts, Health, HealthInput, JournalKind, ProblemKind, Protection};
use anx_projections::testkit::{fixture_events, Exit, Scenario};
use anx_projections::Projection;
use engine_support::{d, default_config};
use rust_decimal::Decimal;

const BTC: &str = "BTC-USD";
const ETH: &str = "ETH-USD";
const T0: UnixMs = 1_704_067_200_000;
const HOUR: i64 = 3_600_000;

fn thresholds() -> AnomalyThresholds {
    AnomalyThresholds {
        signals_without_entry_max: 3,
        trade_rate_window_h: 24,
        trade_rate_max_pct_of_cap: d("50"),
        broker_errors_max: 2,
    }
}

fn rejected(code: &str) -> DecisionOutcome {
    DecisionOutcome::Rejected {
        reason_code: code.into(),
    }
}

/// Journals every change `judge` finds (as a trader does), returning them.
fn watch(s: &mut Scenario, seen: &Observed) -> Vec<Finding> {
    let config = default_config();
    let found = changes(
        &s.projection,
        judge(&thresholds(), &config, &s.projection, seen),
    );
    for finding in &found {
        s.push(s.now_ms(), Event::Finding(finding.clone()));
    }
    found
}

/// [`watch`] with the exchange answering, at the scenario's time.
fn watch_quiet(s: &mut Scenario) -> Vec<Finding> {
    let seen = Observed {
        now_ms: s.now_ms(),
        ..Observed::default()
    };
    watch(s, &seen)
}

fn names(found: &[Finding]) -> Vec<String> {
    found
        .iter()
        .map(|f| format!("{} {} {}", f.check, f.symbol, f.raised))
        .collect()
}

#[test]
fn the_fold_counts_events_by_kind_and_decisions_by_symbol() {
    let events = fixture_events();
    let mut projection = Projection::new();
    for (index, (market_ms, event)) in events.iter().enumerate() {
        projection
            .apply(index as u64 + 1, *market_ms, event)
            .unwrap();
    }
    for kind in EventKind::ALL {
        let count = events.iter().filter(|(_, e)| e.kind() == *kind).count() as u64;
        assert_eq!(projection.links.events_of(*kind), count, "{kind:?}");
    }
    for symbol in [BTC, ETH] {
        let decisions = events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Decision(d) if d.symbol == symbol))
            .count() as u64;
        assert!(decisions > 0);
        assert_eq!(projection.links.decisions[symbol], decisions, "{symbol}");
    }
}

#[test]
fn rejections_make_a_streak_unless_the_trader_was_told_not_to_trade_and_an_entry_ends_it() {
    let mut s = Scenario::new(&[BTC], CapitalMode::Independent, d("500"), T0);
    let streak = |s: &Scenario| s.projection.links.rejected_since_entry.get(BTC).copied();
    s.candle(BTC, d("100"));
    assert_eq!(streak(&s), None);
    for code in ["rr_after_costs", "global_trade_spacing", "min_notional"] {
        s.decision(BTC, rejected(code), None);
    }
    // A breaker, a halt or the regime: the design at work, not counted.
    for code in [
        "stale_data",
        "regime_blocked",
        "operator_halt",
        "max_drawdown_breaker",
        "daily_loss_limit",
        "symbol_fail_closed",
    ] {
        s.candle(BTC, d("100"));
        s.decision(BTC, rejected(code), None);
    }
    s.candle(BTC, d("100"));
    s.decision(BTC, DecisionOutcome::Hold, None);
    assert_eq!(streak(&s), Some(3));
    s.candle(BTC, d("100"));
    s.decision(BTC, DecisionOutcome::Enter, None);
    assert_eq!(streak(&s), Some(0));
}

#[test]
fn signals_without_entry_is_raised_once_while_it_holds_and_cleared_by_an_entry() {
    let mut s = Scenario::new(&[BTC, ETH], CapitalMode::Independent, d("500"), T0);
    s.candle(BTC, d("100"));
    s.candle_same_bar(ETH, d("10"));
    for _ in 0..2 {
        s.decision(BTC, rejected("rr_after_costs"), None);
    }
    assert_eq!(names(&watch_quiet(&mut s)), Vec::<String>::new());
    s.decision(BTC, rejected("rr_after_costs"), None);
    let found = watch_quiet(&mut s);
    assert_eq!(
        names(&found),
        ["anomaly.signals_without_entry BTC-USD true"]
    );
    assert_eq!(found[0].value, Some(d("3")));
    assert_eq!(found[0].limit, d("3"));
    // Still holding, a fourth time: nothing new.
    s.decision(BTC, rejected("rr_after_costs"), None);
    assert!(watch_quiet(&mut s).is_empty());
    s.candle(BTC, d("100"));
    s.decision(BTC, DecisionOutcome::Enter, None);
    assert_eq!(
        names(&watch_quiet(&mut s)),
        ["anomaly.signals_without_entry BTC-USD false"]
    );
    assert!(watch_quiet(&mut s).is_empty());
}

/// A BTC trade entered and taken profit on within one bar.
fn take_profit_trade(s: &mut Scenario) {
    let (entry, stop, target) = (d("100"), d("95"), d("110"));
    s.trade(
        BTC,
        entry,
        stop,
        target,
        d("0.1"),
        Exit::TakeProfit,
        target,
        0,
    );
}

#[test]
fn the_trade_rate_is_judged_against_what_the_pacing_caps_allow_over_the_window() {
    // Default caps: 2 an hour, 6 a day; over 24 h at most 6. 50 % is 3.
    let mut s = Scenario::new(&[BTC], CapitalMode::Independent, d("500"), T0);
    s.candle(BTC, d("100"));
    for _ in 0..3 {
        take_profit_trade(&mut s);
    }
    let found = watch_quiet(&mut s);
    assert_eq!(
        names(&found),
        Vec::<String>::new(),
        "3 of 6 is 50 %: not above"
    );
    take_profit_trade(&mut s);
    let found = watch_quiet(&mut s);
    assert_eq!(names(&found), ["anomaly.trade_rate  true"]);
    assert_eq!(found[0].value, Some(d("66.67")));
    // A day later without an entry, the window is empty.
    for _ in 0..7 {
        s.candle(BTC, d("110"));
    }
    let found = watch_quiet(&mut s);
    assert_eq!(names(&found), ["anomaly.trade_rate  false"]);
    assert_eq!(found[0].value, Some(d("0")));
}

#[test]
fn broker_errors_are_raised_at_the_limit_and_cleared_only_by_a_poll_without_a_failure() {
    let mut s = Scenario::new(&[BTC], CapitalMode::Independent, d("500"), T0);
    s.candle(BTC, d("100"));
    let failing = |polls| Observed {
        now_ms: T0 + 4 * HOUR,
        failing_polls: polls,
        last_error: "HTTP 503".into(),
    };
    assert!(watch(&mut s, &failing(1)).is_empty());
    let found = watch(&mut s, &failing(2));
    assert_eq!(names(&found), ["anomaly.broker_errors  true"]);
    assert!(found[0].detail.contains("HTTP 503"), "{}", found[0].detail);
    assert!(watch(&mut s, &failing(5)).is_empty());
    // A restart's streak starts again from 1 while the exchange still
    // fails: still raised, not cleared and raised again.
    assert!(watch(&mut s, &failing(1)).is_empty());
    assert_eq!(
        names(&watch(&mut s, &failing(0))),
        ["anomaly.broker_errors  false"]
    );
}

#[test]
fn data_stale_follows_the_traders_stale_finding_about_the_newest_candle() {
    let mut s = Scenario::new(&[BTC], CapitalMode::Independent, d("500"), T0);
    s.candle(BTC, d("100"));
    let newest_ms = s.projection.state.last_close_ms(BTC).unwrap();
    s.quality(
        BTC,
        QualityIssue::Stale {
            newest_ms,
            age_ms: 9 * HOUR,
        },
    );
    assert_eq!(
        names(&watch_quiet(&mut s)),
        ["anomaly.data_stale BTC-USD true"]
    );
    assert!(watch_quiet(&mut s).is_empty());
    s.candle(BTC, d("101"));
    assert_eq!(
        names(&watch_quiet(&mut s)),
        ["anomaly.data_stale BTC-USD false"]
    );
}

/// `s`'s events as a paper trader's journal.
fn as_trader(s: &Scenario) -> Projection {
    let mut projection = Projection::new();
    for (index, (market_ms, event)) in s.events.iter().enumerate() {
        let mut event = event.clone();
        if let Event::RunStarted(run) = &mut event {
            run.run_mode = RunMode::PaperLive;
        }
        projection
            .apply(index as u64 + 1, *market_ms, &event)
            .unwrap();
    }
    projection
}

fn assess(projection: &Projection, now_ms: UnixMs, locked: bool) -> Health {
    let config = default_config();
    Health::assess(&HealthInput {
        projection,
        config: Some(&config),
        now_ms,
        locked,
        time_text: |ms| format!("t{ms}"),
    })
}

#[test]
fn health_judges_the_lock_the_age_of_data_and_the_findings_a_trader_cannot_trade_through() {
    let mut s = Scenario::new(&[BTC], CapitalMode::Independent, d("500"), T0);
    s.candle(BTC, d("100"));
    let close = s.projection.state.last_close_ms(BTC).unwrap();
    let trader = as_trader(&s);
    let fresh = assess(&trader, close + HOUR, true);
    assert!(fresh.healthy, "{fresh:?}");
    assert_eq!(
        fresh.kind,
        JournalKind::Trader {
            running: true,
            live: false
        }
    );
    assert_eq!(fresh.newest_age_s, Some(3600));
    let unlocked = assess(&trader, close + HOUR, false);
    assert_eq!(
        texts(&unlocked.problems),
        ["no trader holds the journal's lock"]
    );
    assert_eq!(unlocked.problems[0].kind, ProblemKind::NoTrader);
    // Default limit 28800 s: stale one second past it.
    let stale = assess(&trader, close + 28_801_000, true);
    assert_eq!(texts(&stale.problems), ["market data is stale"]);
    assert_eq!(stale.problems[0].kind, ProblemKind::StaleData);
    assert!(
        stale.breakers[0].starts_with("stale_data: BTC-USD"),
        "{stale:?}"
    );
    // A raised broker_errors finding is a problem; a trade_rate one is not.
    for (check, problem) in [
        ("anomaly.trade_rate", false),
        ("anomaly.broker_errors", true),
    ] {
        let mut s = Scenario::new(&[BTC], CapitalMode::Independent, d("500"), T0);
        s.candle(BTC, d("100"));
        s.push(
            s.now_ms(),
            Event::Finding(Finding {
                check: check.into(),
                symbol: String::new(),
                raised: true,
                value: Some(d("9")),
                limit: d("6"),
                detail: "it holds".into(),
            }),
        );
        let health = assess(&as_trader(&s), close + HOUR, true);
        assert_eq!(health.findings.len(), 1);
        assert_eq!(!health.healthy, problem, "{check}: {health:?}");
    }
}

#[test]
fn health_shows_positions_with_their_protection_and_a_backtest_is_judged_by_completion() {
    let mut s = Scenario::new(&[BTC], CapitalMode::Independent, d("500"), T0);
    s.candle(BTC, d("100"));
    take_profit_trade(&mut s);
    let backtest = assess(&s.projection, T0, false);
    assert_eq!(backtest.kind, JournalKind::ReplayInterrupted);
    assert!(!backtest.healthy);
    let done = s.finish();
    let mut projection = Projection::new();
    for (index, (market_ms, event)) in done.iter().enumerate() {
        projection
            .apply(index as u64 + 1, *market_ms, event)
            .unwrap();
    }
    // Judged long after, a completed backtest is healthy: its data is history.
    let completed = assess(&projection, T0 + 1000 * HOUR, false);
    assert!(completed.healthy, "{completed:?}");
    assert_eq!(completed.open_positions, 0);
    assert_eq!(completed.exposure, Decimal::ZERO);
    assert_eq!(completed.symbols[0].protection, None::<Protection>);
}
