//! `anx compare`'s computation against hand-built inputs: the shared window,
//! the decision alignment and its first difference, the fields two decisions
//! differ in, trades matched by entry decision with their fill differences,
//! and each threshold judged, crossed and not.

mod common;

use anx_journal::*;
use anx_projections::compare::*;
use anx_projections::{EntryContext, TradeDetail, TradeRow};
use common::*;
use std::collections::BTreeMap;

fn print(seq: Seq, byte: u8) -> DecisionPrint {
    DecisionPrint {
        seq,
        print: Hash32([byte; 32]),
    }
}

fn prints(items: &[(&str, i64, Seq, u8)]) -> BTreeMap<DecisionKey, DecisionPrint> {
    items
        .iter()
        .map(|(symbol, hours, seq, byte)| {
            (
                (symbol.to_string(), T0 + hours * HOUR, 0),
                print(*seq, *byte),
            )
        })
        .collect()
}

#[test]
fn decisions_align_over_the_shared_window_and_the_first_difference_is_the_earliest() {
    // A decides at hours 0..=12, B at 4..=16: they share 4..=12.
    let a = prints(&[
        (BTC, 0, 1, 1),
        (BTC, 4, 2, 1),
        (ETH, 8, 3, 7),
        (BTC, 8, 4, 1),
        (BTC, 12, 5, 1),
    ]);
    let b = prints(&[
        (BTC, 4, 11, 1),
        (ETH, 8, 12, 8),
        (BTC, 8, 13, 9),
        (ETH, 12, 14, 1),
        (BTC, 16, 15, 1),
    ]);
    let window = Window::shared(&a, &b).expect("they meet");
    assert_eq!(
        window,
        Window {
            from_ms: T0 + 4 * HOUR,
            to_ms: T0 + 12 * HOUR
        }
    );
    let d = DecisionAlignment::of(&a, &b, window);
    // BTC@4 agrees; BTC@8 and ETH@8 differ; BTC@12 is A's only, ETH@12 B's.
    assert_eq!((d.agree, d.differ, d.only_a, d.only_b), (1, 2, 1, 1));
    // The earliest difference, and by symbol on a tie: BTC before ETH at 8.
    assert_eq!(
        d.first_difference,
        Some(FirstDifference {
            symbol: BTC.into(),
            candle_ms: T0 + 8 * HOUR,
            seq_a: Some(4),
            seq_b: Some(13),
        })
    );
    // Identical runs: everything agrees, nothing to show.
    let same = DecisionAlignment::of(&a, &a, Window::shared(&a, &a).unwrap());
    assert_eq!(
        (same.agree, same.differ, same.first_difference),
        (5, 0, None)
    );
    // Runs that do not meet share no window.
    let later = prints(&[(BTC, 20, 1, 1)]);
    assert_eq!(Window::shared(&a, &later), None);
}

fn decision(outcome: DecisionOutcome, atr: &str, fired: bool) -> Decision {
    Decision {
        symbol: BTC.into(),
        as_of_ms: T0,
        candle_seq: 1,
        glass: Glass::Full(GlassBox {
            regime: "trend".into(),
            indicators: vec![Indicator {
                name: "atr".into(),
                value: Some(d(atr)),
            }],
            signals: vec![SignalOutput {
                name: "breakout".into(),
                fired,
                strength: d("0.5"),
                confidence: d("0.5"),
                entry: None,
                stop: None,
                take_profit: None,
                note: Default::default(),
            }],
            risk_checks: vec![],
        }),
        sizing: None,
        outcome,
        config_hash: None,
    }
}

#[test]
fn decision_prints_and_differences_name_what_changed() {
    let a = decision(DecisionOutcome::Enter, "1.5", true);
    let b = decision(
        DecisionOutcome::Rejected {
            reason_code: "rr_after_costs".into(),
        },
        "1.6",
        true,
    );
    let (pa, pb) = (
        DecisionPrint::of(1, &a).unwrap(),
        DecisionPrint::of(2, &b).unwrap(),
    );
    assert_ne!(pa.print, pb.print);
    // The configuration hash is not part of the print.
    let mut a_hashed = a.clone();
    a_hashed.config_hash = Some(Hash32([9; 32]));
    assert_eq!(DecisionPrint::of(3, &a_hashed).unwrap().print, pa.print);
    let fields: Vec<String> = decision_differences(&a, &b, a.glass.full(), b.glass.full())
        .into_iter()
        .map(|f| format!("{}: {} | {}", f.field, f.a, f.b))
        .collect();
    assert_eq!(
        fields,
        [
            "outcome: Enter | Rejected { reason_code: \"rr_after_costs\" }",
            "indicator atr: 1.5 | 1.6",
        ]
    );
    // Without both glass boxes, only the facts are compared.
    assert_eq!(decision_differences(&a, &b, None, b.glass.full()).len(), 1);
}

fn trade(id: &str, entry: &str, exit: &str, net: &str, r: &str) -> TradeRow {
    TradeRow {
        trade_id: id.into(),
        symbol: BTC.into(),
        entry_client_order_id: format!("c-{id}"),
        entry_ms: T0 + HOUR,
        exit_ms: T0 + 9 * HOUR,
        entry_price: d(entry),
        exit_price: d(exit),
        size: d("1"),
        initial_stop: d("90"),
        exit_reason: ExitReason::TakeProfit,
        fees: d("1"),
        slippage: d("0"),
        gross_pnl: d(net) + d("1"),
        net_pnl: d(net),
        theoretical_r: d(r),
        realized_r: d(r),
    }
}

fn decided(hours: i64) -> TradeDetail {
    TradeDetail {
        entry: EntryContext {
            decided_ms: T0 + hours * HOUR,
            ..EntryContext::default()
        },
        ..TradeDetail::default()
    }
}

#[test]
fn trades_match_by_entry_decision_and_fill_differences_are_adverse_bps() {
    let a = [
        trade("a1", "100", "110", "9", "0.9"),
        trade("a2", "100", "95", "-6", "-0.6"),
    ];
    // B's first trade filled 0.1 % worse on entry and 0.2 % worse on exit.
    let b = [
        trade("b1", "100.1", "109.78", "8.68", "0.86"),
        trade("b3", "100", "110", "9", "0.9"),
    ];
    let (da, db) = ([decided(0), decided(4)], [decided(0), decided(8)]);
    let ca: Vec<_> = a.iter().zip(&da).collect();
    let cb: Vec<_> = b.iter().zip(&db).collect();
    let window = Window {
        from_ms: T0,
        to_ms: T0 + 12 * HOUR,
    };
    let t = TradeComparison::of(&ca, &cb, window);
    assert_eq!(t.matched.len(), 1);
    let m = &t.matched[0];
    assert_eq!((m.a.trade_id.as_str(), m.b.trade_id.as_str()), ("a1", "b1"));
    assert_eq!(m.entry_fill_bps, d("10"));
    assert_eq!(m.exit_fill_bps, d("20"));
    assert!(m.differs());
    assert_eq!(t.fill_bps_mean, Some(d("15")));
    assert_eq!(
        t.only_a
            .iter()
            .map(|r| r.trade_id.as_str())
            .collect::<Vec<_>>(),
        ["a2"]
    );
    assert_eq!(
        t.only_b
            .iter()
            .map(|r| r.trade_id.as_str())
            .collect::<Vec<_>>(),
        ["b3"]
    );
    // A trade whose entry decision lies outside the window is not compared.
    let narrow = Window {
        from_ms: T0 + HOUR,
        to_ms: T0 + 12 * HOUR,
    };
    let t = TradeComparison::of(&ca, &cb, narrow);
    assert!(t.matched.is_empty());
    assert_eq!((t.only_a.len(), t.only_b.len()), (1, 1));
}

fn thresholds() -> Thresholds {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/compare.toml"),
    )
    .expect("config/compare.toml");
    Thresholds::from_toml(&text).expect("the shipped thresholds parse")
}

#[test]
fn each_threshold_is_judged_crossed_or_not_or_said_to_be_unjudgeable() {
    let mut t = thresholds();
    t.min_trades = 2;
    t.win_rate_window_trades = 3;
    t.win_rate_min_pct = d("50");
    t.expectancy_drop_pct_max = d("50");
    t.fill_slippage_bps_max = d("10");
    let a = [
        trade("a1", "100", "110", "9", "1"),
        trade("a2", "100", "110", "9", "1"),
    ];
    let b = [
        trade("b1", "100.1", "109.78", "-2", "-0.2"),
        trade("b2", "100", "110", "1", "0.4"),
    ];
    let (da, db) = ([decided(0), decided(4)], [decided(0), decided(4)]);
    let ca: Vec<_> = a.iter().zip(&da).collect();
    let cb: Vec<_> = b.iter().zip(&db).collect();
    let window = Window {
        from_ms: T0,
        to_ms: T0 + 12 * HOUR,
    };
    let trades = TradeComparison::of(&ca, &cb, window);
    let verdicts = crossings(&t, &trades, &b);
    let by: BTreeMap<&str, &ThresholdVerdict> = verdicts.iter().map(|v| (v.check, v)).collect();
    // Expectancy 1 R against 0.1 R: 90 % below, over the 50 % limit.
    assert_eq!(by["expectancy_drop"].value, Some(d("90")));
    assert!(by["expectancy_drop"].crossed);
    // Fills: (10 + 20 + 0 + 0) / 4 = 7.5 bps, under 10.
    assert_eq!(by["fill_slippage"].value, Some(d("7.5")));
    assert!(!by["fill_slippage"].crossed);
    // Two trades, three needed: the win rate is not judged.
    assert!(!by["win_rate"].crossed);
    assert_eq!(by["win_rate"].value, None);
    assert!(
        by["win_rate"].detail.contains("not judged"),
        "{}",
        by["win_rate"].detail
    );
    // With a window of two: one win in two is 50 %, not below 50.
    t.win_rate_window_trades = 2;
    let v = win_rate_verdict(&t, &b);
    assert_eq!((v.value, v.crossed), (Some(d("50")), false));
    t.win_rate_min_pct = d("50.01");
    assert!(win_rate_verdict(&t, &b).crossed);
    // Too few trades for the expectancy check.
    t.min_trades = 3;
    let v = &crossings(&t, &trades, &b)[0];
    assert_eq!((v.crossed, v.value), (false, None));
    assert!(v.detail.contains("not judged"), "{}", v.detail);
}

#[test]
fn a_thresholds_file_with_an_unknown_or_missing_key_is_refused_by_name() {
    let err =
        Thresholds::from_toml("[thresholds]\nexpectancy_drop_pct_max = \"50\"\n").unwrap_err();
    assert!(err.contains("fill_slippage_bps_max"), "{err}");
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/compare.toml"),
    )
    .unwrap();
    let err = Thresholds::from_toml(&format!("{shipped}\nwin_rate_pct_min = 3\n")).unwrap_err();
    assert!(err.contains("win_rate_pct_min"), "{err}");
}

#[test]
fn trades_sharing_a_key_are_matched_in_order_and_none_is_dropped() {
    let a = [
        trade("a1", "100", "110", "9", "0.9"),
        trade("a2", "100", "110", "9", "0.9"),
    ];
    let b = [trade("b1", "100", "110", "9", "0.9")];
    let (da, db) = ([decided(0), decided(0)], [decided(0)]);
    let ca: Vec<_> = a.iter().zip(&da).collect();
    let cb: Vec<_> = b.iter().zip(&db).collect();
    let window = Window {
        from_ms: T0,
        to_ms: T0 + 12 * HOUR,
    };
    let t = TradeComparison::of(&ca, &cb, window);
    assert_eq!(t.matched.len(), 1);
    assert_eq!(t.matched[0].a.trade_id, "a1");
    assert_eq!(
        t.only_a
            .iter()
            .map(|r| r.trade_id.as_str())
            .collect::<Vec<_>>(),
        ["a2"]
    );
    assert_eq!((t.bucket_a.trades, t.bucket_b.trades), (2, 1));
}

/// A finding judges the run and changes none of its figures: folding one,
/// at a later market time, leaves the state hash and the run's span alone.
#[test]
fn a_finding_changes_no_figure_of_the_run() {
    let mut s =
        anx_projections::testkit::Scenario::new(&[BTC], CapitalMode::Independent, d("1000"), T0);
    s.candle(BTC, d("100"));
    let before = (s.projection.state_hash(), s.projection.state.last_market_ms);
    let seq = s.projection.seq() + 1;
    let finding = Event::Finding(Finding {
        check: "edge_decay.win_rate".into(),
        symbol: String::new(),
        raised: true,
        value: Some(d("5")),
        limit: d("10"),
        detail: "1 win in the last 20 trades".into(),
    });
    s.projection
        .apply(seq, T0 + 100 * HOUR, &finding)
        .expect("a finding folds");
    assert_eq!(
        (s.projection.state_hash(), s.projection.state.last_market_ms),
        before
    );
    let note = &s.projection.links.findings["edge_decay.win_rate"];
    assert!(note.raised);
    assert_eq!(note.seq, seq);
}
