//! Signals, the regime classifier and how the engine honours them
//! (`engine::signals` and `Engine::run_tick`):
//!
//! - `signals::invalid_reason` for every way a fired signal cannot be traded;
//! - `signals::classify` for trend, chop, bear and unknown snapshots;
//! - end to end through `run_tick` on synthetic candles: the regime's allowed
//!   signals and size multiplier (bear: no entries with the default config),
//!   and an untradable signal recorded as a rejected Decision with no order.
//!
//! Reachability note: with a configuration that passes `Config::validate`,
//! every fired signal has its stop, a stop below the entry (stop multiples and
//! ATR are positive; a zero ATR never fires) and a take-profit above the entry
//! (`reward_risk > 0`). So `signal_missing_stop`, `signal_stop_wrong_side` and
//! `signal_nonpositive_reward_risk` are tested on `invalid_reason` directly;
//! the rejected-signal paths that *can* be reached through `run_tick` –
//! `signal_nonpositive_price` (a stop multiple larger than the price allows)
//! and `signal_rounding` (a stop that rounds onto the entry) – are tested end to
//! end.

mod engine_support;

use anx_journal::*;
use anx_projections::engine::config::Config;
use anx_projections::engine::indicators::Snapshot;
use anx_projections::engine::signals::{self, Regime};
use anx_projections::engine::{order, product, risk};
use engine_support::*;
use rust_decimal::Decimal;

// ------------------------------------------------------------------ invalid_reason

fn signal(entry: Option<&str>, stop: Option<&str>, take_profit: Option<&str>) -> SignalOutput {
    SignalOutput {
        name: "breakout".into(),
        fired: true,
        strength: d("1"),
        confidence: d("1"),
        entry: entry.map(d),
        stop: stop.map(d),
        take_profit: take_profit.map(d),
        note: Default::default(),
    }
}

#[test]
fn a_well_formed_signal_is_valid() {
    assert_eq!(
        signals::invalid_reason(&signal(Some("100"), Some("90"), Some("125"))),
        None
    );
    // Just on the right side of every boundary.
    assert_eq!(
        signals::invalid_reason(&signal(Some("100"), Some("99.99"), Some("100.01"))),
        None
    );
}

#[test]
fn a_signal_without_a_stop_is_rejected() {
    let reason = |s: &SignalOutput| signals::invalid_reason(s);
    assert_eq!(
        reason(&signal(Some("100"), None, Some("125"))),
        Some("signal_missing_stop")
    );
    // Missing levels of any kind cannot be traded either.
    assert_eq!(
        reason(&signal(None, Some("90"), Some("125"))),
        Some("signal_missing_stop")
    );
    assert_eq!(
        reason(&signal(Some("100"), Some("90"), None)),
        Some("signal_missing_stop")
    );
    assert_eq!(
        reason(&signal(None, None, None)),
        Some("signal_missing_stop")
    );
}

#[test]
fn a_signal_with_the_stop_on_the_wrong_side_is_rejected() {
    for stop in ["100", "100.01", "150"] {
        assert_eq!(
            signals::invalid_reason(&signal(Some("100"), Some(stop), Some("125"))),
            Some("signal_stop_wrong_side"),
            "stop {stop} against entry 100"
        );
    }
}

#[test]
fn a_signal_without_a_positive_reward_risk_is_rejected() {
    for take_profit in ["100", "99.99", "50"] {
        assert_eq!(
            signals::invalid_reason(&signal(Some("100"), Some("90"), Some(take_profit))),
            Some("signal_nonpositive_reward_risk"),
            "take-profit {take_profit} against entry 100"
        );
    }
}

#[test]
fn a_signal_with_a_non_positive_price_is_rejected() {
    for (entry, stop) in [("100", "0"), ("100", "-5"), ("0", "-1"), ("-1", "-2")] {
        assert_eq!(
            signals::invalid_reason(&signal(Some(entry), Some(stop), Some("125"))),
            Some("signal_nonpositive_price"),
            "entry {entry} stop {stop}"
        );
    }
}

// ------------------------------------------------------------------------ classify

fn snapshot(close: &str, sma: Option<&str>, slope: Option<&str>) -> Snapshot {
    Snapshot {
        bars: 200,
        close: d(close),
        high: d(close),
        low: d(close),
        volume: d("1"),
        sma_regime: sma.map(d),
        regime_slope: slope.map(d),
        ..Snapshot::default()
    }
}

#[test]
fn trend_is_close_above_a_rising_average() {
    assert_eq!(
        signals::classify(&snapshot("101", Some("100"), Some("0.5"))),
        Regime::Trend
    );
    assert_eq!(
        signals::classify(&snapshot("100.01", Some("100"), Some("0.0001"))),
        Regime::Trend
    );
    assert_eq!(Regime::Trend.name(), "trend");
}

#[test]
fn bear_is_close_below_a_falling_average() {
    assert_eq!(
        signals::classify(&snapshot("99", Some("100"), Some("-0.5"))),
        Regime::Bear
    );
    assert_eq!(
        signals::classify(&snapshot("99.99", Some("100"), Some("-0.0001"))),
        Regime::Bear
    );
    assert_eq!(Regime::Bear.name(), "bear");
}

#[test]
fn chop_is_everything_else() {
    for (close, slope) in [
        ("101", "-0.5"), // above a falling average
        ("99", "0.5"),   // below a rising average
        ("100", "0.5"),  // on the average
        ("100", "-0.5"),
        ("101", "0"), // a flat average
        ("99", "0"),
    ] {
        assert_eq!(
            signals::classify(&snapshot(close, Some("100"), Some(slope))),
            Regime::Chop,
            "close {close} slope {slope}"
        );
    }
    assert_eq!(Regime::Chop.name(), "chop");
}

#[test]
fn unknown_until_the_average_and_its_slope_exist() {
    assert_eq!(
        signals::classify(&snapshot("101", None, None)),
        Regime::Unknown
    );
    assert_eq!(
        signals::classify(&snapshot("101", Some("100"), None)),
        Regime::Unknown
    );
    assert_eq!(
        signals::classify(&snapshot("101", None, Some("1"))),
        Regime::Unknown
    );
    assert_eq!(Regime::Unknown.name(), "unknown");
}

// ------------------------------------------------------------- through the engine

/// A bar `i` bars after T0 closing at `close`, 1% either side, with `volume`.
fn bar(symbol: &str, i: i64, close: Decimal, volume: &str) -> Candle {
    let spread = close / Decimal::ONE_HUNDRED;
    candle(
        symbol,
        T0 + i * BAR_MS,
        close + spread,
        close - spread,
        close,
        d(volume),
    )
}

/// Feeds `closes` (volume 10 each) and then a breakout bar at `breakout` on
/// triple volume; returns the harness and the engine's output on the last bar.
fn breakout_after(
    config: Config,
    symbol: &str,
    closes: &[Decimal],
    breakout: Decimal,
) -> (Harness, Vec<(UnixMs, Event)>) {
    let mut h = Harness::new(config, &[symbol]);
    for (i, close) in closes.iter().enumerate() {
        let out = h.candle(bar(symbol, i as i64, *close, "10"));
        assert!(
            orders(&out).is_empty(),
            "no order expected before the breakout bar (bar {i}): {out:#?}"
        );
    }
    let out = h.candle(bar(symbol, closes.len() as i64, breakout, "30"));
    (h, out)
}

/// 130 bars rising 0.2 per bar from 100: close above a rising 100-bar average.
fn rising() -> Vec<Decimal> {
    (0..130)
        .map(|i| d("100") + d("0.2") * Decimal::from(i))
        .collect()
}

/// 130 bars falling 0.2 per bar from 150: close below a falling average.
fn falling() -> Vec<Decimal> {
    (0..130)
        .map(|i| d("150") - d("0.2") * Decimal::from(i))
        .collect()
}

/// 10 bars at 200, then 99 at 100: the 100-bar average is still falling as the
/// spike leaves it, so a breakout to 103 closes above a falling average.
fn after_a_spike() -> Vec<Decimal> {
    let mut closes = vec![d("200"); 10];
    closes.extend(vec![d("100"); 99]);
    closes
}

fn the_decision(out: &[(UnixMs, Event)]) -> &Decision {
    let found = decisions(out);
    assert_eq!(found.len(), 1, "one decision per candle: {out:#?}");
    found[0]
}

fn fired(decision: &Decision, name: &str) -> bool {
    decision
        .glass
        .full()
        .unwrap()
        .signals
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name} signal in {decision:#?}"))
        .fired
}

/// Asserts an entry: Decision(Enter), OrderPlaced, IDLE → ENTRY_PENDING, in that
/// order, consistent with each other; returns the decision and the order.
fn assert_entry(out: &[(UnixMs, Event)]) -> (Decision, OrderPlaced) {
    assert_eq!(out.len(), 3, "{out:#?}");
    let (Event::Decision(decision), Event::OrderPlaced(placed), Event::EngineTransition(t)) =
        (&out[0].1, &out[1].1, &out[2].1)
    else {
        panic!("expected Decision, OrderPlaced, EngineTransition: {out:#?}");
    };
    assert_eq!(decision.outcome, DecisionOutcome::Enter);
    assert!(
        decision
            .glass
            .full()
            .unwrap()
            .risk_checks
            .iter()
            .all(|c| c.passed),
        "{:#?}",
        decision.glass.full().unwrap().risk_checks
    );
    let sizing = decision.sizing.as_ref().expect("an entry is sized");
    assert_eq!(placed.purpose, OrderPurpose::Entry);
    assert_eq!(placed.side, Side::Buy);
    assert_eq!(placed.base_size, sizing.quantity);
    assert_eq!(placed.limit_price, Some(sizing.entry));
    let bracket = placed.bracket.as_ref().expect("entries carry a bracket");
    assert_eq!(bracket.stop_trigger, sizing.stop_trigger);
    assert_eq!(
        (t.from, t.to),
        (EngineState::Idle, EngineState::EntryPending)
    );
    (decision.clone(), placed.clone())
}

/// Asserts a rejection with `code` and nothing else: no order, no transition.
fn assert_rejected(out: &[(UnixMs, Event)], code: &str) -> Decision {
    assert_eq!(out.len(), 1, "a rejection is one Decision only: {out:#?}");
    let decision = the_decision(out).clone();
    assert_eq!(
        decision.outcome,
        DecisionOutcome::Rejected {
            reason_code: code.into()
        },
        "{decision:#?}"
    );
    let failed: Vec<&str> = decision
        .glass
        .full()
        .unwrap()
        .risk_checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.code.as_str())
        .collect();
    assert_eq!(
        failed.first(),
        Some(&code),
        "{:#?}",
        decision.glass.full().unwrap().risk_checks
    );
    decision
}

#[test]
fn trend_allows_a_breakout_at_full_size() {
    let config = default_config();
    let (h, out) = breakout_after(config.clone(), BTC, &rising(), d("130"));
    let (decision, placed) = assert_entry(&out);
    assert_eq!(decision.glass.full().unwrap().regime, "trend");
    assert!(fired(&decision, "breakout"));
    let sizing = decision.sizing.as_ref().unwrap();
    assert_eq!(sizing.multiplier, Decimal::ONE);
    assert_eq!(sizing.capital, d("500"));
    assert_eq!(sizing.risk_budget, d("5"));
    // The order is exactly the breakout's levels, rounded the safe way, and the
    // quantity is the bracket-aware size on them.
    let breakout = decision
        .glass
        .full()
        .unwrap()
        .signals
        .iter()
        .find(|s| s.name == "breakout")
        .unwrap();
    let spec = &config.products[BTC];
    let entry = product::entry_limit(breakout.entry.unwrap(), spec);
    let stop = product::stop_trigger(breakout.stop.unwrap(), spec);
    let take_profit = product::take_profit_limit(breakout.take_profit.unwrap(), spec);
    assert_eq!(placed.limit_price, Some(entry));
    let bracket = placed.bracket.as_ref().unwrap();
    assert_eq!(bracket.stop_trigger, stop);
    assert_eq!(bracket.take_profit_limit, take_profit);
    assert_eq!(
        bracket.stop_limit,
        product::stop_limit(stop, d("0.05"), spec)
    );
    let expected = risk::size(&config, spec, d("500"), Decimal::ONE, entry, stop);
    assert_eq!(decision.sizing.as_ref(), Some(&expected));
    // The id and payload are the order module's, for this very decision.
    assert_eq!(
        placed.client_order_id,
        order::client_order_id("enginetest-run", BTC, &decision)
    );
    assert_eq!(
        placed.payload,
        order::entry_payload(
            &placed.client_order_id,
            BTC,
            expected.quantity,
            entry,
            config.orders.entry_post_only,
            take_profit,
            stop
        )
    );
    assert_eq!(decision.config_hash, Some(config.hash()));
    assert_eq!(
        h.projection.state.symbols[BTC].engine.0,
        EngineState::EntryPending
    );
}

#[test]
fn bear_allows_no_entries_with_the_default_config() {
    let config = default_config();
    assert!(config.regime.bear.allowed_signals.is_empty());
    assert_eq!(config.regime.bear.size_multiplier, Decimal::ZERO);
    let (h, out) = breakout_after(config, BTC, &falling(), d("131"));
    let decision = assert_rejected(&out, "regime_blocked");
    assert_eq!(decision.glass.full().unwrap().regime, "bear");
    assert!(fired(&decision, "breakout"), "{decision:#?}");
    assert_eq!(
        decision.sizing.as_ref().map(|s| s.multiplier),
        Some(Decimal::ZERO)
    );
    assert!(orders(&h.events).is_empty());
    assert_eq!(h.projection.state.symbols[BTC].engine.0, EngineState::Idle);
}

#[test]
fn bear_entries_follow_the_configured_rule() {
    // The mapping comes from the configuration, not from the code: a bear rule
    // that allows breakouts at a quarter size enters at a quarter size.
    let mut config = default_config();
    config.regime.bear.allowed_signals = vec!["breakout".into()];
    config.regime.bear.size_multiplier = d("0.25");
    assert!(config.validate().is_empty());
    let (_, out) = breakout_after(config, BTC, &falling(), d("131"));
    let (decision, _) = assert_entry(&out);
    assert_eq!(decision.glass.full().unwrap().regime, "bear");
    let sizing = decision.sizing.as_ref().unwrap();
    assert_eq!(sizing.multiplier, d("0.25"));
    assert_eq!(sizing.risk_budget, d("1.25"));
}

#[test]
fn chop_allows_a_breakout_at_half_size() {
    let config = default_config();
    let (_, out) = breakout_after(config.clone(), BTC, &after_a_spike(), d("103"));
    let (decision, _) = assert_entry(&out);
    assert_eq!(decision.glass.full().unwrap().regime, "chop");
    let sizing = decision.sizing.as_ref().unwrap();
    assert_eq!(sizing.multiplier, d("0.5"));
    assert_eq!(sizing.risk_budget, d("2.5"));
    // Half the budget, half the (rounded-down) quantity of a full-size entry.
    let spec = &config.products[BTC];
    let full = risk::size(
        &config,
        spec,
        d("500"),
        Decimal::ONE,
        sizing.entry,
        sizing.stop_trigger,
    );
    assert_eq!(
        sizing.quantity,
        product::quantity(full.quantity_raw / Decimal::TWO, spec)
    );
    assert!(sizing.quantity < full.quantity);
}

#[test]
fn a_fired_signal_the_regime_allows_is_preferred() {
    // Momentum is listed (and fires) first, but chop allows only mean reversion
    // and breakout: the engine trades the breakout rather than refusing.
    let mut config = default_config();
    config.strategy.signals = vec![
        "momentum".into(),
        "breakout".into(),
        "mean_reversion".into(),
    ];
    let (_, out) = breakout_after(config, BTC, &after_a_spike(), d("103"));
    let decision = the_decision(&out);
    assert_eq!(decision.glass.full().unwrap().regime, "chop");
    assert_eq!(decision.glass.full().unwrap().signals[0].name, "momentum");
    assert!(fired(decision, "momentum"), "{decision:#?}");
    assert!(fired(decision, "breakout"));
    assert_entry(&out);
}

#[test]
fn chop_blocks_a_signal_it_does_not_allow() {
    // Only momentum enabled: it fires, chop does not allow it.
    let mut config = default_config();
    config.strategy.signals = vec!["momentum".into()];
    let (_, out) = breakout_after(config, BTC, &after_a_spike(), d("103"));
    let decision = assert_rejected(&out, "regime_blocked");
    assert_eq!(decision.glass.full().unwrap().regime, "chop");
    assert!(fired(&decision, "momentum"));
    assert_eq!(
        decision.sizing.as_ref().map(|s| s.multiplier),
        Some(d("0.5")),
        "the regime's multiplier is still recorded"
    );
}

#[test]
fn unknown_regime_allows_no_entries() {
    // 40 bars: the breakout is warm (20-bar channel, 14-bar ATR) but the 100-bar
    // regime average is not.
    let closes: Vec<Decimal> = rising().into_iter().take(40).collect();
    let (_, out) = breakout_after(default_config(), BTC, &closes, d("112"));
    let decision = assert_rejected(&out, "regime_blocked");
    assert_eq!(decision.glass.full().unwrap().regime, "unknown");
    assert!(fired(&decision, "breakout"));
    assert_eq!(
        decision.sizing.as_ref().map(|s| s.quantity),
        Some(Decimal::ZERO)
    );
}

#[test]
fn skipping_the_volume_filter_fires_on_ordinary_volume() {
    // The same trend breakout on ordinary volume: quiet with the filter, fired
    // (and tagged) without it.
    let run = |skip: bool| {
        let mut h = Harness::new(default_config(), &[BTC]);
        h.engine = anx_projections::engine::Engine::new(default_config(), "enginetest-run", skip);
        let closes = rising();
        for (i, close) in closes.iter().enumerate() {
            h.candle(bar(BTC, i as i64, *close, "10"));
        }
        let out = h.candle(bar(BTC, closes.len() as i64, d("130"), "10"));
        the_decision(&out).clone()
    };
    let filtered = run(false);
    assert!(!fired(&filtered, "breakout"));
    assert_eq!(filtered.outcome, DecisionOutcome::Hold);
    let skipped = run(true);
    assert!(fired(&skipped, "breakout"));
    assert_eq!(skipped.outcome, DecisionOutcome::Enter);
    let note = &skipped
        .glass
        .full()
        .unwrap()
        .signals
        .iter()
        .find(|s| s.name == "breakout")
        .unwrap()
        .note;
    assert_eq!(note, "volume filter skipped");
}

#[test]
fn a_stop_below_zero_is_recorded_as_a_rejected_signal_with_no_order() {
    // A valid configuration whose breakout stop (100 ATRs) lies below zero.
    let mut config = default_config();
    config.strategy.breakout.stop_atr_multiple = d("100");
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    let (h, out) = breakout_after(config, BTC, &rising(), d("130"));
    let decision = assert_rejected(&out, "signal_nonpositive_price");
    let breakout = decision
        .glass
        .full()
        .unwrap()
        .signals
        .iter()
        .find(|s| s.name == "breakout")
        .unwrap();
    assert!(breakout.fired);
    assert!(breakout.stop.unwrap() < Decimal::ZERO, "{breakout:#?}");
    assert_eq!(
        decision.glass.full().unwrap().risk_checks.len(),
        1,
        "{:#?}",
        decision.glass.full().unwrap().risk_checks
    );
    assert!(decision.glass.full().unwrap().risk_checks[0]
        .detail
        .starts_with("signal breakout:"));
    assert_eq!(decision.sizing, None);
    assert!(orders(&h.events).is_empty());
    assert_eq!(h.projection.state.symbols[BTC].engine.0, EngineState::Idle);
}

#[test]
fn a_stop_that_rounds_onto_the_entry_is_recorded_as_rejected() {
    // A sub-cent product (the `default` spec, price step 0.01): the breakout at
    // 0.0535 enters at 0.05 (down), its stop 0.051… triggers at 0.06 (up).
    let symbol = "PENNY-USD";
    let config = default_config();
    let closes: Vec<Decimal> = (0..130)
        .map(|i| d("0.05") + d("0.00001") * Decimal::from(i))
        .collect();
    let (h, out) = breakout_after(config.clone(), symbol, &closes, d("0.0535"));
    let decision = assert_rejected(&out, "signal_rounding");
    let breakout = decision
        .glass
        .full()
        .unwrap()
        .signals
        .iter()
        .find(|s| s.name == "breakout")
        .unwrap();
    assert!(breakout.fired, "{decision:#?}");
    // Valid before rounding, not after.
    assert_eq!(signals::invalid_reason(breakout), None);
    let spec = config.product(symbol).unwrap();
    let entry = product::entry_limit(breakout.entry.unwrap(), spec);
    let stop = product::stop_trigger(breakout.stop.unwrap(), spec);
    let take_profit = product::take_profit_limit(breakout.take_profit.unwrap(), spec);
    assert_eq!(
        (entry, stop, take_profit),
        (d("0.05"), d("0.06"), d("0.05"))
    );
    assert_eq!(
        decision.glass.full().unwrap().risk_checks[0].detail,
        format!("after rounding: stop {stop} entry {entry} take-profit {take_profit}")
    );
    assert_eq!(decision.sizing, None);
    assert!(orders(&h.events).is_empty());
}

#[test]
fn warm_up_bars_hold_and_name_the_regime_unknown() {
    let mut h = Harness::new(default_config(), &[BTC]);
    for i in 0..5 {
        let out = h.candle(bar(BTC, i, d("100"), "10"));
        let decision = the_decision(&out);
        assert_eq!(decision.outcome, DecisionOutcome::Hold);
        assert_eq!(decision.glass.full().unwrap().regime, "unknown");
        assert!(decision
            .glass
            .full()
            .unwrap()
            .signals
            .iter()
            .all(|s| !s.fired));
        let names: Vec<&str> = decision
            .glass
            .full()
            .unwrap()
            .signals
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["breakout", "momentum", "mean_reversion"]);
    }
}
