//! The replay runner (`runner.rs`) end to end: synthetic hourly cache files in
//! a temporary directory, resampled to 4h, through the production engine and
//! the simulated exchange into a journal that is read back and checked event
//! by event. The centre piece is the gap path: a stop-limit that cannot fill
//! because the market gapped through it, noticed by the engine on that bar's
//! close and closed at market through the one finalize path.

mod common;

use anx_journal::*;
use anx_projections::engine::config::Config;
use anx_projections::{Projection, PORTFOLIO_POT};
use anx_replays::data::DataError;
use anx_replays::runner::{self, ReplayError, ReplayOutcome, ReplaySpec};
use common::*;
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};

const BTC: &str = "BTC-USD";
const ETH: &str = "ETH-USD";
const EXCHANGE: &str = "SIM";

/// One 4h bar: open, high, low, close.
#[derive(Clone, Copy, Debug)]
struct Bar {
    o: Decimal,
    h: Decimal,
    l: Decimal,
    c: Decimal,
}

fn b(o: &str, h: &str, l: &str, c: &str) -> Bar {
    Bar {
        o: d(o),
        h: d(h),
        l: d(l),
        c: d(c),
    }
}

/// The gap scenario. Bars 0–6: a steady uptrend (close 100 + n, high just above
/// the close, true range 2), so once the indicators are warm (bar 6) the
/// breakout fires in a trend: entry limit 106, stop trigger 106 − 2 × ATR 2 =
/// 102, stop-limit 102 × 0.95 = 96.90, take-profit 116. Bar 7 dips to 105.5:
/// the entry fills at 106 and the stop is untouched. Bar 8 opens at 92, more
/// than 5% under the trigger and below the stop-limit: the stop triggers but
/// cannot fill. Bar 9 opens at 93: the emergency market exit fills there.
/// Bar 10 trades back up through 96.90, where a leftover stop-limit would fill.
fn gap_scenario() -> Vec<Bar> {
    let mut bars: Vec<Bar> = (0..7)
        .map(|n| {
            let close = Decimal::from(100 + n);
            let open = close - Decimal::ONE;
            Bar {
                o: open,
                h: close + d("0.5"),
                l: open - d("0.5"),
                c: close,
            }
        })
        .collect();
    bars.extend([
        b("106.2", "106.6", "105.5", "106.3"), // 7: the entry fills at its limit
        b("92", "93", "91", "92.5"),           // 8: gaps below the stop-limit
        b("93", "94", "92.5", "93.5"),         // 9: the market exit fills at the open
        b("93.5", "98", "93", "97"),           // 10: back above the stop-limit
        b("97", "97.5", "96.5", "97.2"),       // 11
    ]);
    bars
}

const GAP_BAR: i64 = 8;

/// The hourly rows of 4h bars starting at bar `first` (4 rows each, whose
/// aggregate is exactly the bar; 0.25 volume each).
fn hourly_rows(first: i64, bars: &[Bar]) -> Vec<String> {
    let mut rows = Vec::new();
    for (i, bar) in bars.iter().enumerate() {
        let start = T0_S + (first + i as i64) * 4 * HOUR_S;
        let (lo, hi) = (bar.o.min(bar.c), bar.o.max(bar.c));
        let hours = [
            (bar.o, bar.h, lo, bar.o),
            (bar.o, hi, bar.l, bar.o),
            (bar.o, hi, lo, bar.c),
            (bar.c, bar.c, bar.c, bar.c),
        ];
        for (k, (o, h, l, c)) in hours.iter().enumerate() {
            rows.push(row(
                start + k as i64 * HOUR_S,
                &o.to_string(),
                &h.to_string(),
                &l.to_string(),
                &c.to_string(),
                "0.25",
            ));
        }
    }
    rows
}

fn write_cache(dir: &Path, symbol: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{EXCHANGE}_{symbol}_1h.csv"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The shipped defaults with short indicator periods (warm after 7 bars),
/// only the breakout signal, and a volume filter every bar passes.
fn test_config(symbols: &[&str], capital_mode: CapitalMode) -> Config {
    let mut config = default_config();
    config.run.symbols = symbols.iter().map(|s| s.to_string()).collect();
    config.run.capital_mode = capital_mode;
    config.strategy.signals = vec!["breakout".into()];
    config.strategy.atr_bars = 5;
    config.strategy.breakout.lookback_bars = 5;
    config.strategy.breakout.volume_lookback_bars = 5;
    config.strategy.breakout.volume_factor = Decimal::ZERO;
    config.regime.sma_bars = 5;
    config.regime.slope_bars = 2;
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    // The override as TOML text reads back to the same configuration.
    assert_eq!(Config::from_toml(&config.canonical_text()).unwrap(), config);
    config
}

fn spec(cache: &Path, journal: PathBuf, config: Config, bars: i64) -> ReplaySpec {
    ReplaySpec {
        config,
        exchange: EXCHANGE.into(),
        start_ms: T0,
        end_ms: T0 + bars * BAR_MS,
        cache_dir: cache.to_path_buf(),
        journal_dir: journal,
        run_mode: RunMode::ReplayBacktest,
        skip_volume_filter: false,
        created_by: "anx-replays tests".into(),
        git_sha: "0000000".into(),
    }
}

fn run(spec: &ReplaySpec) -> ReplayOutcome {
    runner::run(spec, &mut |_| {}).unwrap_or_else(|e| panic!("replay failed: {e}"))
}

/// When bar `i` closes.
fn close_ms(i: i64) -> UnixMs {
    T0 + (i + 1) * BAR_MS
}

fn index_of(events: &[StoredEvent], what: &str, pred: impl Fn(&Event) -> bool) -> usize {
    events
        .iter()
        .position(|e| pred(&e.event))
        .unwrap_or_else(|| panic!("no {what} in the journal"))
}

fn candle_index(events: &[StoredEvent], symbol: &str, bar: i64) -> usize {
    index_of(
        events,
        "candle",
        |e| matches!(e, Event::Candle(c) if c.symbol == symbol && c.open_ms == T0 + bar * BAR_MS),
    )
}

fn fills(events: &[StoredEvent]) -> Vec<(UnixMs, Fill)> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Fill(f) => Some((e.market_ms, f.clone())),
            _ => None,
        })
        .collect()
}

fn transition(from: EngineState, to: EngineState, reason: &str, cause_seq: Seq) -> Event {
    Event::EngineTransition(EngineTransition {
        symbol: BTC.into(),
        from,
        to,
        reason: reason.into(),
        cause_seq,
    })
}

#[track_caller]
fn assert_market_time_ordered(events: &[StoredEvent]) {
    for pair in events.windows(2) {
        assert!(
            pair[0].market_ms <= pair[1].market_ms,
            "market time goes back from seq {} ({}) to seq {} ({})",
            pair[0].seq,
            pair[0].event.kind().name(),
            pair[1].seq,
            pair[1].event.kind().name()
        );
    }
}

// ----------------------------------------------------------------- gap path

#[test]
fn a_stop_limit_gapped_through_leaves_a_naked_position_closed_at_market_as_emergency() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let bars = gap_scenario();
    write_cache(&cache, BTC, &csv(&hourly_rows(0, &bars)));
    let journal = work.path().join("journal");
    let config = test_config(&[BTC], CapitalMode::Independent);
    let outcome = run(&spec(&cache, journal.clone(), config, bars.len() as i64));
    let events = read_journal(&journal);
    assert_eq!(events.len() as u64, outcome.head.seq);
    assert_eq!(events.last().unwrap().hash, outcome.head.hash);
    assert_eq!(outcome.progress.candles, bars.len() as u64);
    assert_market_time_ordered(&events);

    // Bar 6: the breakout enters with a bracket.
    let entry_decision = index_of(
        &events,
        "entry decision",
        |e| matches!(e, Event::Decision(d) if d.outcome == DecisionOutcome::Enter),
    );
    assert_eq!(events[entry_decision].market_ms, close_ms(6));
    let Event::OrderPlaced(entry) = &events[entry_decision + 1].event else {
        panic!(
            "the entry order follows its decision: {:?}",
            events[entry_decision + 1]
        )
    };
    assert_eq!(entry.limit_price, Some(d("106")));
    assert_eq!(
        entry.bracket,
        Some(BracketLegs {
            take_profit_limit: d("116"),
            stop_trigger: d("102"),
            stop_limit: d("96.90"),
        })
    );
    // 1% of 500 over the worst-case fill: 5 / (106 − 96.9).
    assert_eq!(entry.base_size, d("0.54945054"));
    let entry_seq = events[entry_decision + 1].seq;
    // The engine's events are all in before the order reaches the exchange.
    assert_eq!(
        events[entry_decision + 2].event,
        transition(
            EngineState::Idle,
            EngineState::EntryPending,
            "bracket entry placed",
            entry_seq
        )
    );
    assert!(matches!(
        &events[entry_decision + 3].event,
        Event::OrderAcknowledged(a) if a.order_seq == entry_seq
    ));
    assert!(matches!(
        &events[entry_decision + 4].event,
        Event::BracketVerified(v) if v.order_seq == entry_seq
    ));

    // Exactly two fills in the whole run: the entry on bar 7 and the market
    // exit on bar 9. The stop never fills, not even when bar 10 trades back
    // above its limit.
    let all_fills = fills(&events);
    assert_eq!(all_fills.len(), 2, "{all_fills:#?}");
    let (entry_ms, entry_fill) = &all_fills[0];
    assert_eq!(*entry_ms, close_ms(7));
    assert_eq!(
        (entry_fill.leg, entry_fill.price, entry_fill.liquidity),
        (FillLeg::Entry, d("106"), Liquidity::Maker)
    );
    let (exit_ms, exit_fill) = &all_fills[1];
    assert_eq!(*exit_ms, close_ms(9));
    assert_eq!(exit_fill.leg, FillLeg::Exit);
    assert_eq!(exit_fill.side, Side::Sell);
    // Bar 9's open less 2 bps (BTC-USD is high liquidity): 92.9814 → 92.98.
    assert_eq!(exit_fill.price, d("92.98"));
    assert_eq!(exit_fill.liquidity, Liquidity::Taker);
    assert_eq!(exit_fill.size, entry.base_size);
    assert_eq!(
        exit_fill.fee,
        (exit_fill.price * exit_fill.size * d("0.006")).round_dp(8)
    );

    // Bar 8: the candle, then nothing from the exchange (no fill: the
    // position stays open and naked), then the engine's decision on the close.
    let gap = candle_index(&events, BTC, GAP_BAR);
    assert_eq!(events[gap].market_ms, close_ms(GAP_BAR));
    let Event::Decision(decision) = &events[gap + 1].event else {
        panic!(
            "the gap bar's decision follows its candle directly: {:?}",
            events[gap + 1]
        )
    };
    assert_eq!(decision.candle_seq, events[gap].seq);
    assert_eq!(decision.as_of_ms, close_ms(GAP_BAR));
    assert_eq!(
        decision.outcome,
        DecisionOutcome::Exit {
            reason: ExitReason::Emergency
        }
    );
    let protection: Vec<&RiskCheck> = decision
        .glass
        .full()
        .unwrap()
        .risk_checks
        .iter()
        .filter(|c| c.code == "protection")
        .collect();
    assert_eq!(
        protection.len(),
        1,
        "{:#?}",
        decision.glass.full().unwrap().risk_checks
    );
    assert!(!protection[0].passed);
    assert!(
        protection[0].detail.contains("stop-limit unfilled"),
        "{}",
        protection[0].detail
    );
    // Its market SELL for the whole position, acknowledged.
    let Event::OrderPlaced(exit) = &events[gap + 2].event else {
        panic!("the exit order follows: {:?}", events[gap + 2])
    };
    assert_eq!(exit.decision_seq, events[gap + 1].seq);
    assert_eq!(
        (exit.side, exit.order_type, exit.purpose),
        (Side::Sell, OrderType::Market, OrderPurpose::Exit)
    );
    assert_eq!(exit.base_size, entry.base_size);
    assert_eq!(exit.limit_price, None);
    assert!(exit.bracket.is_none());
    assert!(matches!(
        &events[gap + 3].event,
        Event::OrderAcknowledged(a) if a.client_order_id == exit.client_order_id
    ));
    assert_eq!(exit_fill.client_order_id, exit.client_order_id);
    assert_eq!(exit_fill.order_seq, events[gap + 2].seq);

    // Bar 9: the exit fill and the one finalize path.
    let next = candle_index(&events, BTC, GAP_BAR + 1);
    assert_eq!(next, gap + 4, "nothing else happens between the bars");
    let fill_seq = events[next + 1].seq;
    assert!(matches!(&events[next + 1].event, Event::Fill(f) if f.leg == FillLeg::Exit));
    assert_eq!(
        events[next + 2].event,
        transition(
            EngineState::PositionOpen,
            EngineState::Reconcile,
            "exit detected",
            fill_seq
        )
    );
    let Event::TradeClosed(trade) = &events[next + 3].event else {
        panic!("the trade closes: {:?}", events[next + 3])
    };
    assert_eq!(trade.exit_reason, ExitReason::Emergency);
    assert_eq!(trade.symbol, BTC);
    assert_eq!(trade.entry_client_order_id, entry.client_order_id);
    assert_eq!(trade.entry_order_seq, entry_seq);
    assert_eq!(trade.exit_fill_seq, fill_seq);
    assert_eq!(trade.entry_ms, close_ms(7));
    assert_eq!(trade.exit_ms, close_ms(9));
    assert_eq!(trade.entry_price, d("106"));
    assert_eq!(trade.exit_price, d("92.98"));
    assert_eq!(trade.initial_stop, d("102"));
    assert_eq!(trade.size, entry.base_size);
    assert_eq!(trade.fees, entry_fill.fee + exit_fill.fee);
    assert_eq!(trade.gross_pnl, (d("92.98") - d("106")) * trade.size);
    assert_eq!(trade.net_pnl, trade.gross_pnl - trade.fees);
    assert!(trade.net_pnl < Decimal::ZERO);
    assert_eq!(
        events[next + 4].event,
        transition(
            EngineState::Reconcile,
            EngineState::Idle,
            "trade finalized",
            events[next + 3].seq
        )
    );
    assert!(
        matches!(&events[next + 5].event, Event::Decision(d) if d.outcome == DecisionOutcome::Hold)
    );

    // The projection: flat, idle, one emergency trade with its whole trail.
    let state = &outcome.projection.state;
    let btc = &state.symbols[BTC];
    assert_eq!(btc.engine.0, EngineState::Idle);
    assert!(btc.position.quantity.is_zero());
    assert!(btc.open_trade.is_none());
    assert_eq!(state.trades.len(), 1);
    assert_eq!(state.trades[0].exit_reason, ExitReason::Emergency);
    assert_eq!(state.trades[0].net_pnl, trade.net_pnl);
    assert_eq!((state.audit.trades, state.audit.complete), (1, 1));
    assert_eq!(state.cash[BTC].0, d("500") + trade.net_pnl);

    // Folding the journal from disk gives the runner's state.
    let mut fold = Projection::new();
    for e in &events {
        fold.apply(e.seq, e.market_ms, &e.event).unwrap();
    }
    assert_eq!(fold.state_hash(), outcome.projection.state_hash());
}

// ------------------------------------------------------------- determinism

fn bytes_of(journal: &Path) -> Vec<(String, Vec<u8>)> {
    list_segments(journal)
        .unwrap()
        .into_iter()
        .map(|s| (s.name, std::fs::read(s.path).unwrap()))
        .collect()
}

#[test]
fn the_same_inputs_give_the_same_journal_bytes_and_one_changed_candle_changes_the_head() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let bars = gap_scenario();
    let rows = hourly_rows(0, &bars);
    write_cache(&cache, BTC, &csv(&rows));
    let config = test_config(&[BTC], CapitalMode::Independent);
    let n = bars.len() as i64;

    let first = run(&spec(&cache, work.path().join("a"), config.clone(), n));
    let second = run(&spec(&cache, work.path().join("b"), config.clone(), n));
    assert_eq!(first.run_id, second.run_id);
    assert_eq!(first.head, second.head);
    assert_eq!(
        first.projection.state_hash(),
        second.projection.state_hash()
    );
    let (a, b_) = (
        bytes_of(&work.path().join("a")),
        bytes_of(&work.path().join("b")),
    );
    assert!(!a.is_empty());
    assert_eq!(a, b_, "the journals must be byte-identical");

    // One hourly volume changed (bar 3's last hour): same run, different head.
    let mut changed = rows.clone();
    changed[3 * 4 + 3] = changed[3 * 4 + 3].replace(",0.25", ",0.5");
    assert_ne!(changed, rows);
    write_cache(&cache, BTC, &csv(&changed));
    let third = run(&spec(&cache, work.path().join("c"), config, n));
    assert_eq!(
        third.run_id, first.run_id,
        "the inputs' identity is unchanged"
    );
    assert_eq!(third.head.seq, first.head.seq);
    assert_ne!(third.head.hash, first.head.hash);
    assert_ne!(bytes_of(&work.path().join("c")), a);
}

// ------------------------------------------------------------ capital modes

#[test]
fn portfolio_and_independent_capital_modes_keep_their_own_cash_pots() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let bars = gap_scenario();
    write_cache(&cache, BTC, &csv(&hourly_rows(0, &bars)));
    // ETH: the same shape one bar later, so both symbols trade (entries 4h apart).
    write_cache(&cache, ETH, &csv(&hourly_rows(1, &bars)));
    let n = bars.len() as i64 + 1;

    let mut outcomes = Vec::new();
    for (mode, dir) in [
        (CapitalMode::Portfolio, "portfolio"),
        (CapitalMode::Independent, "independent"),
    ] {
        let config = test_config(&[BTC, ETH], mode);
        let journal = work.path().join(dir);
        let outcome = run(&spec(&cache, journal.clone(), config, n));
        let events = read_journal(&journal);
        assert_market_time_ordered(&events);
        let Event::RunStarted(started) = &events[0].event else {
            panic!("the run starts the journal")
        };
        assert_eq!(started.capital_mode, mode);
        let state = &outcome.projection.state;
        assert_eq!(outcome.progress.candles, 2 * bars.len() as u64);
        // Both symbols traded once, both closed by the emergency path.
        let traded: Vec<(&str, ExitReason)> = state
            .trades
            .iter()
            .map(|t| (t.symbol.as_str(), t.exit_reason))
            .collect();
        assert_eq!(
            traded,
            vec![(BTC, ExitReason::Emergency), (ETH, ExitReason::Emergency)],
            "{mode:?}"
        );
        let net = |symbol: &str| -> Decimal {
            state
                .trades
                .iter()
                .filter(|t| t.symbol == symbol)
                .map(|t| t.net_pnl)
                .sum()
        };
        let pots: Vec<(&str, Decimal)> =
            state.cash.iter().map(|(k, v)| (k.as_str(), v.0)).collect();
        // The ETH entry's sizing capital: the shared pool's equity, or ETH's own pot.
        let eth_capital = events
            .iter()
            .find_map(|e| match &e.event {
                Event::Decision(d) if d.symbol == ETH && d.outcome == DecisionOutcome::Enter => {
                    d.sizing.as_ref().map(|s| s.capital)
                }
                _ => None,
            })
            .expect("ETH entered");
        match mode {
            CapitalMode::Portfolio => {
                assert_eq!(pots, vec![(PORTFOLIO_POT, d("500") + net(BTC) + net(ETH))]);
                assert_eq!(state.equity.start, d("500"));
                // BTC's entry (fee paid, position marked) already moved the pool.
                assert_ne!(eth_capital, d("500"));
            }
            CapitalMode::Independent => {
                assert_eq!(
                    pots,
                    vec![(BTC, d("500") + net(BTC)), (ETH, d("500") + net(ETH))]
                );
                assert_eq!(state.equity.start, d("1000"));
                assert_eq!(eth_capital, d("500"));
            }
        }
        assert_eq!(
            state.equity.cash,
            pots.iter().map(|(_, v)| *v).sum::<Decimal>()
        );
        outcomes.push(outcome);
    }
    assert_ne!(outcomes[0].run_id, outcomes[1].run_id);
    assert_ne!(outcomes[0].head.hash, outcomes[1].head.hash);
}

/// Two symbols of the portfolio pot entering in the same bar: the second
/// entry is sized against what the first (working, not yet filled) will take
/// from the pot, so both fills fit in it. Before the engine reserved working
/// entries, each sized against the whole pot and the second fill overdrew it
/// (the fold refused it: `cash_negative`).
#[test]
fn entries_working_in_the_portfolio_pot_are_reserved_from_its_cash() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let bars = gap_scenario();
    // The same bars for both: both breakouts fire, and both entries fill, together.
    write_cache(&cache, BTC, &csv(&hourly_rows(0, &bars)));
    write_cache(&cache, ETH, &csv(&hourly_rows(0, &bars)));
    let mut config = test_config(&[BTC, ETH], CapitalMode::Portfolio);
    // Each entry wants about 60% of the pot (risk 5% of 500 over 106 − 96.90
    // per unit is 2.75 units, 291 notional), and no spacing keeps them apart.
    config.risk.risk_per_trade = d("0.05");
    config.pacing.global_trade_spacing_s = 0;
    config.risk.max_position_notional = d("1000000");
    config.risk.max_total_exposure = d("1000000");
    let journal = work.path().join("journal");
    let outcome = run(&spec(
        &cache,
        journal.clone(),
        config,
        bars.len() as i64 + 1,
    ));
    let events = read_journal(&journal);
    let entries: Vec<&Decision> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Decision(d) if d.outcome == DecisionOutcome::Enter => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(entries.len(), 2, "both symbols entered in the same bar");
    assert_eq!(entries[0].as_of_ms, entries[1].as_of_ms);
    let capped = |d: &Decision| {
        d.glass
            .full()
            .unwrap()
            .risk_checks
            .iter()
            .any(|c| c.code == "insufficient_cash" && c.passed && c.detail.contains("capped"))
    };
    let notional = |d: &Decision| {
        let s = d.sizing.as_ref().expect("an entry is sized");
        s.quantity * s.entry
    };
    // The first fits in the pot; the second is cut to what the first left.
    assert!(
        !capped(entries[0]),
        "{:?}",
        entries[0].glass.full().unwrap().risk_checks
    );
    assert!(
        capped(entries[1]),
        "{:?}",
        entries[1].glass.full().unwrap().risk_checks
    );
    assert!(notional(entries[1]) < notional(entries[0]));
    assert!(notional(entries[0]) + notional(entries[1]) <= d("500"));
    let state = &outcome.projection.state;
    assert_eq!(state.trades.len(), 2, "both traded");
    assert!(state.cash.values().all(|c| c.0 >= Decimal::ZERO));
}

// -------------------------------------------------------------- data errors

#[test]
fn a_malformed_cache_file_fails_the_run_naming_file_and_line() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let bars = gap_scenario();
    let mut rows = hourly_rows(0, &bars);
    // Data row 20 is line 21 of the file (after the header).
    rows[19] = rows[19].replace(",0.25", ",zero");
    let path = write_cache(&cache, BTC, &csv(&rows));
    let config = test_config(&[BTC], CapitalMode::Independent);
    let spec = spec(&cache, work.path().join("j"), config, bars.len() as i64);
    let error = match runner::run(&spec, &mut |_| {}) {
        Ok(_) => panic!("a malformed file must fail the replay"),
        Err(error) => error,
    };
    let file = path.display().to_string();
    match &error {
        ReplayError::Data(DataError::Malformed {
            file: named,
            line,
            message,
        }) => {
            assert_eq!(named, &file);
            assert_eq!(*line, 21);
            assert!(message.contains("volume \"zero\""), "{message}");
        }
        other => panic!("expected a malformed-data error, got {other:?}"),
    }
    assert!(
        error.to_string().starts_with(&format!("{file}:21: ")),
        "{error}"
    );
}

#[test]
fn a_symbol_without_cached_data_fails_before_any_journal_exists() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    write_cache(&cache, BTC, &csv(&hourly_rows(0, &gap_scenario())));
    let config = test_config(&[BTC, ETH], CapitalMode::Independent);
    let journal = work.path().join("j");
    let error = match runner::run(&spec(&cache, journal.clone(), config, 12), &mut |_| {}) {
        Ok(_) => panic!("ETH has no data"),
        Err(error) => error,
    };
    assert!(
        matches!(&error, ReplayError::Data(DataError::NoData { symbol, .. }) if symbol == ETH),
        "{error:?}"
    );
    assert!(!journal.exists());
}

#[test]
fn data_findings_are_journaled_in_market_time_order_and_counted() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let bars = gap_scenario();
    let mut rows = hourly_rows(0, &bars);
    // Bar 2's first hour missing (one gap, one bar lost), bar 4's second hour
    // repeated, bar 5's first hour with zero volume.
    rows[5 * 4] = rows[5 * 4].replace(",0.25", ",0");
    rows.insert(4 * 4 + 2, rows[4 * 4 + 1].clone());
    rows.remove(2 * 4);
    write_cache(&cache, BTC, &csv(&rows));
    let journal = work.path().join("j");
    let config = test_config(&[BTC], CapitalMode::Independent);
    let outcome = run(&spec(&cache, journal.clone(), config, bars.len() as i64));
    let events = read_journal(&journal);
    assert_market_time_ordered(&events);
    let issues: Vec<(UnixMs, QualityIssue)> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::DataQuality(q) => Some((e.market_ms, q.issue.clone())),
            _ => None,
        })
        .collect();
    let hour = |bar: i64, h: i64| T0 + bar * BAR_MS + h * HOUR_MS;
    assert_eq!(
        issues,
        vec![
            (
                hour(2, 2),
                QualityIssue::Gap {
                    after_ms: hour(1, 3),
                    before_ms: hour(2, 1),
                    missing_bars: 1,
                }
            ),
            (
                hour(4, 2),
                QualityIssue::Duplicate {
                    open_ms: hour(4, 1)
                }
            ),
            (
                hour(5, 1),
                QualityIssue::VolumeAnomaly {
                    open_ms: hour(5, 0),
                    volume: Decimal::ZERO,
                }
            ),
        ]
    );
    let quality = &outcome.projection.state.quality[BTC];
    assert_eq!(
        (
            quality.gaps,
            quality.missing_bars,
            quality.duplicates,
            quality.volume_anomalies
        ),
        (1, 1, 1, 1)
    );
    // Bar 2 is incomplete, so not a candle; every other bar is.
    assert_eq!(quality.candles, bars.len() as u64 - 1);
    assert!(events
        .iter()
        .all(|e| !matches!(&e.event, Event::Candle(c) if c.open_ms == T0 + 2 * BAR_MS)));
}
