//! Report metrics against hand-computed values: trade statistics on small trade
//! lists (plain `State` values), drawdown, daily returns and exposure on
//! equity curves driven through the fold with `testkit::Scenario`.

mod common;

use anx_journal::*;
use anx_projections::report::max_consecutive_losses;
use anx_projections::testkit::{Exit, Scenario};
use anx_projections::*;
use common::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// A closed trade with net PnL `net` and realized R `r` (the other figures are
/// not read by the report's trade statistics).
fn row(id: usize, net: &str, r: &str, reason: ExitReason) -> TradeRow {
    TradeRow {
        trade_id: format!("T{id}"),
        symbol: BTC.into(),
        entry_client_order_id: format!("C{id}"),
        entry_ms: T0,
        exit_ms: T0 + HOUR,
        entry_price: d("100"),
        exit_price: d("100"),
        size: d("1"),
        initial_stop: d("95"),
        exit_reason: reason,
        fees: d("1"),
        slippage: Decimal::ZERO,
        gross_pnl: d(net) + d("1"),
        net_pnl: d(net),
        theoretical_r: d(r),
        realized_r: d(r),
    }
}

/// `trades` with the default detail each, as breakdowns take them.
fn closed(trades: &[TradeRow]) -> Vec<(&TradeRow, &TradeDetail)> {
    static NONE: std::sync::OnceLock<TradeDetail> = std::sync::OnceLock::new();
    let none = NONE.get_or_init(TradeDetail::default);
    trades.iter().map(|t| (t, none)).collect()
}

fn rows(nets: &[&str]) -> Vec<TradeRow> {
    nets.iter()
        .enumerate()
        .map(|(i, net)| row(i + 1, net, "0", ExitReason::Signal))
        .collect()
}

fn state_with(trades: Vec<TradeRow>) -> State {
    State {
        trades,
        ..State::default()
    }
}

/// Scenario on BTC alone, capital 1000, one candle at 100 (the first equity sample).
fn btc_only() -> Scenario {
    let mut s = Scenario::new(&[BTC], CapitalMode::Independent, d("1000"), T0);
    s.candle(BTC, d("100"));
    s
}

/// Buys 5 BTC at 100 with no fee (cash 1000 → 500) and leaves the position open:
/// equity is then 500 + 5 × close.
fn hold_five(s: &mut Scenario) {
    let entry = entry_pending(s, BTC, "5");
    let seq = push(
        s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::Entry,
            Side::Buy,
            "100",
            "5",
            "0",
        ),
    );
    push(
        s,
        transition(
            BTC,
            EngineState::EntryPending,
            EngineState::PositionOpen,
            seq,
        ),
    );
}

#[test]
fn trade_statistics_match_hand_computed_values() {
    use ExitReason::*;
    let mut state = state_with(vec![
        row(1, "40", "2", TakeProfit),
        row(2, "-10", "-0.5", StopLoss),
        row(3, "20", "1", Signal),
        row(4, "-30", "-1.5", StopLoss),
        row(5, "30", "1.5", TakeProfit),
        row(6, "0", "0", Manual),
    ]);
    state.fees_total = d("6");
    state.equity.start = d("1000");
    state.equity.cash = d("1050");
    let report = Report::from_state(&state);
    // Wins 40, 20, 30; losses −10, −30; the flat trade is neither.
    assert_eq!(
        (report.trades_closed, report.wins, report.losses),
        (6, 3, 2)
    );
    // 3 wins of 6 closed trades.
    assert_eq!(report.win_rate, Some(d("0.5")));
    // 90 / 3 and −40 / 2.
    assert_eq!(report.avg_win, Some(d("30")));
    assert_eq!(report.avg_loss, Some(d("-20")));
    // 30 / |−20|
    assert_eq!(report.rr_actual, Some(d("1.5")));
    // 50 / 6 = 8.333…, kept to 8 places.
    assert_eq!(report.expectancy, Some(d("8.33333333")));
    // (2 − 0.5 + 1 − 1.5 + 1.5 + 0) / 6 = 2.5 / 6 = 0.41666…
    assert_eq!(report.expectancy_r, Some(d("0.41666667")));
    // 90 / |−40|
    assert_eq!(report.profit_factor, Some(d("2.25")));
    assert_eq!(report.net_pnl, d("50"));
    // Two single losses; the tie goes to the larger (−30).
    assert_eq!(
        (
            report.max_consecutive_losses,
            report.max_consecutive_losses_usd
        ),
        (1, d("-30"))
    );
    assert_eq!(report.fees_total, d("6"));
    // (1050 − 1000) × 100 / 1000
    assert_eq!(
        (report.starting_equity, report.final_equity),
        (d("1000"), d("1050"))
    );
    assert_eq!(report.return_pct, Some(d("5")));
    let exits: BTreeMap<&str, u64> = report
        .exits_by_reason
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        exits,
        BTreeMap::from([
            ("manual", 1),
            ("signal", 1),
            ("stop_loss", 2),
            ("take_profit", 2)
        ])
    );
    assert_eq!(report.ratio_basis, RATIO_BASIS);
}

#[test]
fn rounding_keeps_eight_places() {
    // Wins 10, 10, 1 → avg 7, losses −3 → rr 7/3; win rate 3/4 exact; expectancy 18/4.
    let report = Report::from_state(&state_with(rows(&["10", "10", "1", "-3"])));
    assert_eq!(report.avg_win, Some(d("7")));
    assert_eq!(report.rr_actual, Some(d("2.33333333")));
    assert_eq!(report.win_rate, Some(d("0.75")));
    assert_eq!(report.expectancy, Some(d("4.5")));
    // 21 / 3
    assert_eq!(report.profit_factor, Some(d("7")));
    // Win rate 2/3 rounds up at the eighth place.
    let report = Report::from_state(&state_with(rows(&["1", "1", "-1"])));
    assert_eq!(report.win_rate, Some(d("0.66666667")));
}

#[test]
fn no_losses_leaves_loss_ratios_undefined() {
    let report = Report::from_state(&state_with(rows(&["10", "20", "0"])));
    assert_eq!((report.wins, report.losses), (2, 0));
    assert_eq!(report.profit_factor, None);
    assert_eq!(report.avg_loss, None);
    assert_eq!(report.rr_actual, None);
    assert_eq!(report.avg_win, Some(d("15")));
    assert_eq!(report.win_rate, Some(d("0.66666667")));
    assert_eq!(report.expectancy, Some(d("10")));
    assert_eq!(
        (
            report.max_consecutive_losses,
            report.max_consecutive_losses_usd
        ),
        (0, Decimal::ZERO)
    );
    // Only losses: no wins to average, and a profit factor of zero.
    let report = Report::from_state(&state_with(rows(&["-10", "-5"])));
    assert_eq!(report.avg_win, None);
    assert_eq!(report.rr_actual, None);
    assert_eq!(report.profit_factor, Some(Decimal::ZERO));
    assert_eq!(report.win_rate, Some(Decimal::ZERO));
    assert_eq!(report.avg_loss, Some(d("-7.5")));
}

#[test]
fn no_trades_leaves_every_ratio_undefined() {
    let empty = Report::from_state(&State::default());
    let mut s = btc_only();
    s.candle(BTC, d("101"));
    let candles_only = Report::from_state(&s.projection.state);
    for report in [&empty, &candles_only] {
        assert_eq!(
            (
                report.trades_opened,
                report.trades_closed,
                report.wins,
                report.losses
            ),
            (0, 0, 0, 0)
        );
        assert_eq!(report.win_rate, None);
        assert_eq!(report.avg_win, None);
        assert_eq!(report.avg_loss, None);
        assert_eq!(report.rr_actual, None);
        assert_eq!(report.expectancy, None);
        assert_eq!(report.expectancy_r, None);
        assert_eq!(report.profit_factor, None);
        assert_eq!(report.sharpe, None);
        assert_eq!(report.sortino, None);
        assert_eq!(report.net_pnl, Decimal::ZERO);
        assert_eq!(report.max_consecutive_losses, 0);
        assert!(report.exits_by_reason.is_empty());
    }
    // No run at all: no capital to return on, no time to be exposed in.
    assert_eq!(
        (empty.return_pct, empty.exposure_pct, empty.return_days),
        (None, None, 0)
    );
    assert_eq!(empty.max_drawdown_pct, Decimal::ZERO);
    // A run with candles but no trades: flat, never exposed, one (current) day.
    assert_eq!(
        (
            candles_only.return_pct,
            candles_only.exposure_pct,
            candles_only.return_days
        ),
        (Some(Decimal::ZERO), Some(Decimal::ZERO), 1)
    );
    assert_eq!(candles_only.final_equity, d("1000"));
}

#[test]
fn the_longest_losing_streak_wins_and_ties_take_the_larger_loss() {
    let nets = |v: &[&str]| rows(v);
    // Streaks: 2 (−10), 3 (−3), 2 (−40), 3 (−9): the longest are the two threes,
    // and of those the −9 is the larger loss.
    let trades = nets(&[
        "-5", "-5", "10", "-1", "-1", "-1", "0", "-20", "-20", "5", "-2", "-3", "-4",
    ]);
    assert_eq!(max_consecutive_losses(&trades), (3, d("-9")));
    let report = Report::from_state(&state_with(trades));
    assert_eq!(
        (
            report.max_consecutive_losses,
            report.max_consecutive_losses_usd
        ),
        (3, d("-9"))
    );
    // Same, with the larger tie first: it stays.
    assert_eq!(
        max_consecutive_losses(&nets(&["-2", "-3", "-4", "1", "-1", "-1", "-1"])),
        (3, d("-9"))
    );
    // Length beats size.
    assert_eq!(
        max_consecutive_losses(&nets(&["-100", "1", "-1", "-1"])),
        (2, d("-2"))
    );
    // A flat trade ends a streak.
    assert_eq!(
        max_consecutive_losses(&nets(&["-1", "0", "-1"])),
        (1, d("-1"))
    );
    // A streak running to the end counts.
    assert_eq!(
        max_consecutive_losses(&nets(&["-7", "1", "-1", "-1"])),
        (2, d("-2"))
    );
    assert_eq!(
        max_consecutive_losses(&nets(&["1", "2"])),
        (0, Decimal::ZERO)
    );
    assert_eq!(max_consecutive_losses(&[]), (0, Decimal::ZERO));
}

#[test]
fn max_drawdown_in_dollars_and_percent_over_several_peaks() {
    let mut s = btc_only();
    hold_five(&mut s);
    // Equity = 500 cash + 5 × close, sampled on each candle:
    //   close 110 → 1050  new peak
    //   close  80 →  900  fall 150 from 1050 = 14.2857…%
    //   close 120 → 1100  new peak
    //   close 200 → 1500  new peak
    //   close 166 → 1330  fall 170 from 1500 = 11.33…%  (largest in $)
    //   close 180 → 1400  fall 100 from 1500
    // Max drawdown: 170 $; max drawdown %: 150 / 1050 = 14.28571428…% (an earlier,
    // smaller fall from a lower peak).
    for close in ["110", "80", "120", "200", "166", "180"] {
        s.candle(BTC, d(close));
    }
    let curve = &s.projection.state.equity;
    assert_eq!(
        (curve.peak, curve.last, curve.max_drawdown),
        (d("1500"), d("1400"), d("170"))
    );
    assert_eq!(
        (curve.max_drawdown_pct_fall, curve.max_drawdown_pct_peak),
        (d("150"), d("1050"))
    );
    // One sample per candle (7) and one at the entry fill.
    assert_eq!(curve.samples, 8);
    let report = Report::from_state(&s.projection.state);
    assert_eq!(report.max_drawdown, d("170"));
    assert_eq!(report.max_drawdown_pct, d("14.28571429"));
    assert_eq!(
        (
            report.starting_equity,
            report.peak_equity,
            report.final_equity
        ),
        (d("1000"), d("1500"), d("1400"))
    );
    // (1400 − 1000) × 100 / 1000
    assert_eq!(report.return_pct, Some(d("40")));
}

#[test]
fn a_rising_curve_has_no_drawdown() {
    let mut s = btc_only();
    hold_five(&mut s);
    for close in ["101", "102", "102", "150"] {
        s.candle(BTC, d(close));
    }
    let report = Report::from_state(&s.projection.state);
    assert_eq!(
        (report.max_drawdown, report.max_drawdown_pct),
        (Decimal::ZERO, Decimal::ZERO)
    );
    assert_eq!(report.peak_equity, d("1250"));
}

/// Daily closes 1100, 1045 and (current day) 1149.5 from a start of 1000:
/// returns +10 %, −5 %, +10 %.
fn three_days() -> Scenario {
    // Candle k is sampled at T0 + 4 h × k; candle 6 is the first of day 1.
    let mut s = btc_only(); // k = 1, day 0, equity 1000
    hold_five(&mut s);
    // k = 2..5 (day 0): the last, 120, closes day 0 at 500 + 600 = 1100.
    for close in ["110", "90", "105", "120"] {
        s.candle(BTC, d(close));
    }
    // k = 6..11 (day 1): the last, 109, closes day 1 at 1045.
    for close in ["115", "100", "95", "104", "112", "109"] {
        s.candle(BTC, d(close));
    }
    // k = 12 (day 2): 129.9 → 1149.5.
    s.candle(BTC, d("129.9"));
    s
}

#[test]
fn daily_returns_are_the_last_sample_of_each_utc_day() {
    let s = three_days();
    let curve = &s.projection.state.equity;
    // Days 0 and 1 are closed; day 2 is current.
    assert_eq!(curve.day, Some(T0 / 86_400_000 + 2));
    assert_eq!(curve.returns_n, 2);
    // 0.1 − 0.05
    assert_eq!(curve.returns_sum, d("0.05"));
    // 0.01 + 0.0025
    assert_eq!(curve.returns_sum_sq, d("0.0125"));
    assert_eq!(curve.returns_down_sum_sq, d("0.0025"));
    assert_eq!(curve.day_open, d("1045"));
    assert_eq!(curve.last, d("1149.5"));
}

#[test]
fn sharpe_and_sortino_on_hand_computed_daily_returns() {
    // Returns r = (0.1, −0.05, 0.1), the current day included:
    //   mean = 0.15 / 3 = 0.05
    //   sample variance = (0.05² + 0.1² + 0.05²) / 2 = 0.0075, std = 0.0866025403784…
    //   Sharpe = 0.05 / 0.0866025403784 × √365 = 0.5773502691896 × 19.104973174542
    //          = 11.030261405182864…
    //   downside deviation = √(0.05² … only −0.05 counts: 0.0025 / 3) = 0.0288675134595
    //   Sortino = 0.05 / 0.0288675134595 × √365 = 33.090784215548594…
    let exact_sharpe = d("11.030261405182864779605521");
    let exact_sortino = d("33.090784215548594338816564");
    let close = |got: Option<Decimal>, exact: Decimal| {
        let got = got.expect("defined with three daily returns");
        // Rounded to 8 places; allow for the last digit of Decimal's square roots.
        assert!(
            (got - exact).abs() < d("0.00000002"),
            "got {got}, expected {exact}"
        );
    };
    let report = Report::from_state(&three_days().projection.state);
    assert_eq!(report.return_days, 3);
    close(report.sharpe, exact_sharpe);
    close(report.sortino, exact_sortino);

    // The same returns handed to the report as running sums (no current day).
    let state = State {
        equity: EquityCurve {
            start: d("1000"),
            cash: d("1149.5"),
            returns_n: 3,
            returns_sum: d("0.15"),
            returns_sum_sq: d("0.0225"),
            returns_down_sum_sq: d("0.0025"),
            ..EquityCurve::default()
        },
        ..State::default()
    };
    let direct = Report::from_state(&state);
    assert_eq!(direct.return_days, 3);
    close(direct.sharpe, exact_sharpe);
    close(direct.sortino, exact_sortino);
    assert_eq!(
        (direct.sharpe, direct.sortino),
        (report.sharpe, report.sortino)
    );
}

#[test]
fn sharpe_and_sortino_need_two_daily_returns() {
    // No day at all.
    let report = Report::from_state(&State::default());
    assert_eq!(
        (report.sharpe, report.sortino, report.return_days),
        (None, None, 0)
    );
    // One day (the current one): a return, but no deviation.
    let mut s = btc_only();
    hold_five(&mut s);
    s.candle(BTC, d("110"));
    s.candle(BTC, d("90"));
    let report = Report::from_state(&s.projection.state);
    assert_eq!(
        (report.sharpe, report.sortino, report.return_days),
        (None, None, 1)
    );
    // A second day makes them defined: candles 4 and 5 end day 0 at 90 (equity
    // 950, −5 %), candle 6 opens day 1 at 109 (1045, +10 %).
    for close in ["95", "90", "109"] {
        s.candle(BTC, d(close));
    }
    let report = Report::from_state(&s.projection.state);
    assert_eq!(report.return_days, 2);
    // mean 0.025; sample std √((0.075² + 0.075²) / 1) = 0.1060660…;
    // Sharpe 0.025 / 0.1060660 × √365 = 4.50308536…
    let sharpe = report.sharpe.unwrap();
    assert!(
        (sharpe - d("4.503085362035432")).abs() < d("0.00000002"),
        "{sharpe}"
    );
    // downside √(0.0025 / 2) = 0.0353553…; Sortino 0.025 / 0.0353553 × √365 = 13.5092560…
    let sortino = report.sortino.unwrap();
    assert!(
        (sortino - d("13.509256086106296")).abs() < d("0.00000002"),
        "{sortino}"
    );
}

#[test]
fn flat_days_have_no_deviation_and_no_ratio() {
    let mut s = btc_only();
    // 12 candles at the same price: three days of zero returns.
    for _ in 0..12 {
        s.candle(BTC, d("100"));
    }
    let report = Report::from_state(&s.projection.state);
    assert_eq!(report.return_days, 3);
    assert_eq!((report.sharpe, report.sortino), (None, None));
}

#[test]
fn exposure_is_position_time_over_symbol_time() {
    let mut s = btc_only(); // RunStarted at T0, candle sampled at T0 + 4 h
                            // Entry candle at T0 + 8 h (fill), two bars held, exit at T0 + 16 h.
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
    assert_eq!(s.projection.state.exposure_ms, 8 * HOUR);
    let report = Report::from_state(&s.projection.state);
    // 8 h of 16 h.
    assert_eq!(report.exposure_pct, Some(d("50")));
    // Net 10 − 0.4 − 0.44 = 9.16 on 1000.
    assert_eq!(report.return_pct, Some(d("0.916")));
    assert_eq!((report.trades_opened, report.trades_closed), (1, 1));
    s.candle(BTC, d("110"));
    // 8 h of 20 h.
    assert_eq!(
        Report::from_state(&s.projection.state).exposure_pct,
        Some(d("40"))
    );
    // An open position counts up to the last event: entry candle at T0 + 24 h,
    // fill there, one more bar to T0 + 28 h → 8 + 4 h of 28 h.
    s.candle(BTC, d("100"));
    let (coid, order_seq) = s.place_entry(BTC, d("100"), d("95"), d("110"), d("1"));
    let fill_seq = push(
        &mut s,
        fill(&coid, order_seq, FillLeg::Entry, Side::Buy, "100", "1", "0"),
    );
    push(
        &mut s,
        transition(
            BTC,
            EngineState::EntryPending,
            EngineState::PositionOpen,
            fill_seq,
        ),
    );
    s.candle(BTC, d("101"));
    assert_eq!(s.now_ms(), T0 + 28 * HOUR);
    let report = Report::from_state(&s.projection.state);
    assert_eq!(report.exposure_pct, Some(d("42.85714286")));
    assert_eq!(report.trades_opened, 2);
    // Two symbols double the symbol-time.
    let mut s = Scenario::new(&[BTC, ETH], CapitalMode::Independent, d("1000"), T0);
    s.candle(BTC, d("100"));
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
    assert_eq!(
        Report::from_state(&s.projection.state).exposure_pct,
        Some(d("25"))
    );
}

/// Breakdowns, by hand: four trades over two symbols, two exit reasons, two
/// months and three hold times.
#[test]
fn breakdowns_split_the_trades_and_give_each_bucket_the_same_figures() {
    use anx_projections::breakdown::{hold_bucket, utc_month, Breakdowns, Bucket};
    let mut trades = vec![
        row(1, "10", "2", ExitReason::TakeProfit),
        row(2, "-5", "-1", ExitReason::StopLoss),
        row(3, "-3", "-0.6", ExitReason::StopLoss),
        row(4, "6", "1.2", ExitReason::TakeProfit),
    ];
    trades[1].exit_ms = T0 + 30 * 60 * 1000; // half an hour
    trades[2].symbol = "ETH-USD".into();
    trades[2].exit_ms = T0 + 5 * 24 * HOUR; // five days, the same month
    trades[3].symbol = "ETH-USD".into();
    trades[3].exit_ms = T0 + 40 * 24 * HOUR; // forty days: another month
    let b = Breakdowns::of(&closed(&trades));
    // BTC: +10 and -5 → 2 trades, 1 win, PF 10/5 = 2, expectancy 2.5 $, 0.5 R.
    assert_eq!(
        b.by_symbol["BTC-USD"],
        Bucket {
            trades: 2,
            wins: 1,
            losses: 1,
            win_rate: Some(d("0.5")),
            net_pnl: d("5"),
            expectancy: Some(d("2.5")),
            expectancy_r: Some(d("0.5")),
            profit_factor: Some(d("2")),
        }
    );
    // Stop losses: no win, profit factor 0, never a division by zero.
    let stops = &b.by_exit_reason["stop_loss"];
    assert_eq!((stops.trades, stops.wins, stops.losses), (2, 0, 2));
    assert_eq!(stops.profit_factor, Some(Decimal::ZERO));
    assert_eq!(stops.expectancy, Some(d("-4")));
    // Take profits: no loss, so no profit factor.
    assert_eq!(b.by_exit_reason["take_profit"].profit_factor, None);
    // Months of the exit, and hold times, shortest first, empty ones left out.
    let months: Vec<&String> = b.by_month.keys().collect();
    assert_eq!(months.len(), 2, "{months:?}");
    assert_eq!(b.by_month.values().map(|m| m.trades).sum::<u64>(), 4);
    let holds: Vec<(&str, u64)> = b
        .by_hold_time
        .iter()
        .map(|h| (h.hold, h.figures.trades))
        .collect();
    assert_eq!(
        holds,
        [("< 1 h", 1), ("1-4 h", 1), ("3-7 d", 1), (">= 7 d", 1)]
    );
    // The bucket edges.
    assert_eq!(hold_bucket(HOUR - 1), "< 1 h");
    assert_eq!(hold_bucket(HOUR), "1-4 h");
    assert_eq!(hold_bucket(24 * HOUR), "1-3 d");
    assert_eq!(hold_bucket(7 * 24 * HOUR), ">= 7 d");
    assert_eq!(utc_month(1_704_067_200_000), "2024-01");
    assert_eq!(utc_month(1_709_251_199_999), "2024-02");
    // The whole report carries them; an empty run has none.
    assert_eq!(Report::from_state(&state_with(trades)).breakdowns, b);
    assert_eq!(Breakdowns::of(&[]), Breakdowns::default());
}

/// By signal and by regime: the entry decision's context, with `none` and
/// `unknown` for a trade whose entry saw no signal or regime.
#[test]
fn breakdowns_by_signal_and_regime_key_on_the_entry_context() {
    use anx_projections::breakdown::Breakdowns;
    let trades = vec![
        row(1, "10", "2", ExitReason::TakeProfit),
        row(2, "-5", "-1", ExitReason::StopLoss),
        row(3, "4", "0.8", ExitReason::TakeProfit),
    ];
    let seen = TradeDetail {
        entry: EntryContext {
            signals: "ema_cross+rsi_reclaim".into(),
            regime: "trend_up".into(),
            decided_ms: T0,
        },
        ..TradeDetail::default()
    };
    let blank = TradeDetail::default();
    let pairs = vec![
        (&trades[0], &seen),
        (&trades[1], &seen),
        (&trades[2], &blank),
    ];
    let b = Breakdowns::of(&pairs);
    let signals: Vec<(&str, u64)> = b
        .by_signal
        .iter()
        .map(|(k, v)| (k.as_str(), v.trades))
        .collect();
    assert_eq!(signals, [("ema_cross+rsi_reclaim", 2), ("none", 1)]);
    assert_eq!(b.by_signal["ema_cross+rsi_reclaim"].net_pnl, d("5"));
    assert_eq!(
        b.by_signal["ema_cross+rsi_reclaim"].win_rate,
        Some(d("0.5"))
    );
    let regimes: Vec<(&str, u64)> = b
        .by_regime
        .iter()
        .map(|(k, v)| (k.as_str(), v.trades))
        .collect();
    assert_eq!(regimes, [("trend_up", 2), ("unknown", 1)]);
    // The state pairs each row with its detail, in order.
    let mut state = state_with(trades.clone());
    state.trade_details = vec![seen.clone(), seen.clone(), blank.clone()];
    assert_eq!(Report::from_state(&state).breakdowns, b);
}

/// The attribution, by hand: net = edge − fees − slippage per trade and in
/// total, risk = size × (entry − stop), maker share of the fill notional.
#[test]
fn attribution_takes_the_closed_trades_pnl_apart() {
    let mut trades = vec![
        row(1, "10", "2", ExitReason::TakeProfit),
        row(2, "-5", "-1", ExitReason::StopLoss),
    ];
    trades[0].slippage = d("0.5");
    trades[0].theoretical_r = d("2.3");
    trades[1].slippage = d("0.25");
    trades[1].theoretical_r = d("-0.75");
    let details = [
        TradeDetail {
            liquidity: LiquiditySplit {
                maker_notional: d("100"),
                taker_notional: d("110"),
            },
            ..TradeDetail::default()
        },
        TradeDetail {
            liquidity: LiquiditySplit {
                maker_notional: d("100"),
                taker_notional: d("90"),
            },
            ..TradeDetail::default()
        },
    ];
    // Edge: net + fees (1 each) + slippage.
    assert_eq!(trades[0].edge(), d("11.5"));
    assert_eq!(trades[1].edge(), d("-3.75"));
    // Risk: 1 × (100 − 95).
    assert_eq!(trades[0].risk(), d("5"));
    let pairs = vec![(&trades[0], &details[0]), (&trades[1], &details[1])];
    let a = PnlAttribution::of(&pairs);
    assert_eq!(a.edge, d("7.75"));
    assert_eq!(a.fees, d("2"));
    assert_eq!(a.slippage, d("0.75"));
    assert_eq!(a.net_pnl, d("5"));
    assert_eq!(a.edge - a.fees - a.slippage, a.net_pnl);
    assert_eq!(a.expectancy_r_theoretical, Some(d("0.775")));
    assert_eq!(a.expectancy_r_realized, Some(d("0.5")));
    assert_eq!(a.avg_risk, Some(d("5")));
    assert_eq!(a.avg_reward, Some(d("2.5")));
    assert_eq!(a.maker_share, Some(d("0.5")));
    let share = details[0].liquidity.maker_share().expect("fills");
    assert_eq!((share * d("210")).round_dp(20), d("100"));
    // No trades: nothing undefined is divided.
    let none = PnlAttribution::of(&[]);
    assert_eq!(
        (none.avg_risk, none.maker_share, none.expectancy_r_realized),
        (None, None, None)
    );
    let mut state = state_with(trades.clone());
    state.trade_details = details.to_vec();
    assert_eq!(Report::from_state(&state).attribution, a);
}

/// Through the fold: a trade's detail is what its entry decision saw (the
/// testkit's glass box: `breakout` fired in a `trend` regime) and the
/// notional of its fills by liquidity – a take-profit exit is a maker fill, a
/// stop a taker one.
#[test]
fn the_fold_gives_each_closed_trade_its_entry_context_and_fill_liquidity() {
    let mut s = btc_only();
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
    assert!(s.projection.state.open_details.is_empty());
    s.candle(BTC, d("100"));
    s.trade(
        BTC,
        d("100"),
        d("95"),
        d("110"),
        d("2"),
        Exit::StopLoss,
        d("95"),
        1,
    );
    let state = &s.projection.state;
    assert_eq!(state.trade_details.len(), 2);
    let (take_profit, stop) = (&state.trade_details[0], &state.trade_details[1]);
    for detail in [take_profit, stop] {
        assert_eq!(detail.entry.signals, "breakout");
        assert_eq!(detail.entry.regime, "trend");
    }
    assert_eq!(take_profit.liquidity.maker_notional, d("210"));
    assert_eq!(take_profit.liquidity.taker_notional, Decimal::ZERO);
    assert_eq!(stop.liquidity.maker_notional, d("200"));
    assert!(stop.liquidity.taker_notional > Decimal::ZERO);
    assert!(state.open_details.is_empty());
    let report = Report::from_state(state);
    assert_eq!(report.breakdowns.by_signal["breakout"].trades, 2);
    assert_eq!(report.breakdowns.by_regime["trend"].trades, 2);
    let a = &report.attribution;
    assert_eq!(a.edge - a.fees - a.slippage, a.net_pnl);
    assert_eq!(a.net_pnl, report.net_pnl);
}
