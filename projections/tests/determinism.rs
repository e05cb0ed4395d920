//! Determinism of the fold: the same events always give the same state (hash and
//! bytes), and a snapshot taken anywhere, serialized and restored, then folded
//! on with the rest of the journal, gives exactly the full fold.

mod common;

use anx_journal::codec::BODY_CONFIG;
use anx_journal::*;
use anx_projections::testkit::{fixture_events, Exit, Scenario};
use anx_projections::{Projection, Report};
use common::*;
use proptest::prelude::*;
use rust_decimal::Decimal;

const SYMBOLS: [&str; 3] = ["BTC-USD", "ETH-USD", "SOL-USD"];

fn encode(projection: &Projection) -> Vec<u8> {
    bincode::serde::encode_to_vec(projection, BODY_CONFIG).expect("encode projection")
}

fn decode(bytes: &[u8]) -> Projection {
    let (projection, used): (Projection, usize) =
        bincode::serde::decode_from_slice(bytes, BODY_CONFIG).expect("decode projection");
    assert_eq!(used, bytes.len(), "trailing bytes after the snapshot");
    projection
}

/// Folds `events[..k]`, round-trips the projection through bincode, folds the rest.
fn snapshot_then_tail(events: &[(UnixMs, Event)], k: usize) -> Projection {
    let head = fold(&events[..k]).expect("head folds");
    let bytes = encode(&head);
    let restored = decode(&bytes);
    assert_eq!(restored, head, "snapshot round trip changed the projection");
    assert_eq!(restored.state_hash(), head.state_hash());
    assert_eq!(
        encode(&restored),
        bytes,
        "snapshot round trip changed the bytes"
    );
    let mut projection = restored;
    fold_into(&mut projection, &events[k..], k as Seq + 1).expect("tail folds");
    projection
}

fn assert_same(a: &Projection, b: &Projection) {
    assert_eq!(a, b);
    assert_eq!(a.state_hash(), b.state_hash());
    assert_eq!(encode(a), encode(b));
    assert_eq!(Report::from_state(&a.state), Report::from_state(&b.state));
}

// ---------------------------------------------------------------- random journals

#[derive(Clone, Copy, Debug)]
enum ExitKind {
    TakeProfit,
    StopLoss,
    Signal,
    Manual,
    Emergency,
}

#[derive(Clone, Debug)]
enum Action {
    Candle {
        symbol: usize,
        close_cents: i64,
    },
    Trade {
        symbol: usize,
        entry_cents: i64,
        /// Stop distance, in tenths of a percent of the entry (1–100).
        stop_permille: i64,
        /// Size in units of 0.0001.
        size: i64,
        exit: ExitKind,
        /// Exit price relative to the entry, in percent (50–150).
        exit_pct: i64,
        bars: u32,
    },
    Cancelled {
        symbol: usize,
        entry_cents: i64,
        size: i64,
    },
    Rejected {
        symbol: usize,
        entry_cents: i64,
        size: i64,
    },
    FailClosed {
        symbol: usize,
        entry_cents: i64,
        size: i64,
    },
    Quality {
        symbol: usize,
        missing_bars: u64,
    },
    Checkpoint,
}

#[derive(Clone, Debug)]
struct Journal {
    symbols: usize,
    portfolio: bool,
    actions: Vec<Action>,
    /// Leave a position open on this symbol at the end, marked by a few candles.
    open_at_end: Option<(usize, Vec<i64>)>,
    finish: bool,
}

fn exit_kind() -> impl Strategy<Value = ExitKind> {
    prop_oneof![
        Just(ExitKind::TakeProfit),
        Just(ExitKind::StopLoss),
        Just(ExitKind::Signal),
        Just(ExitKind::Manual),
        Just(ExitKind::Emergency),
    ]
}

fn action(symbols: usize) -> impl Strategy<Value = Action> {
    let symbol = 0..symbols;
    let price = 1_000i64..=100_000; // 10.00 to 1000.00
    let size = 1i64..=5_000; // 0.0001 to 0.5: at most 500 of notional
    prop_oneof![
        4 => (symbol.clone(), 1i64..=150_000).prop_map(|(symbol, close_cents)| Action::Candle { symbol, close_cents }),
        5 => (symbol.clone(), price.clone(), 1i64..=100, size.clone(), exit_kind(), 50i64..=150, 0u32..4).prop_map(
            |(symbol, entry_cents, stop_permille, size, exit, exit_pct, bars)| Action::Trade {
                symbol,
                entry_cents,
                stop_permille,
                size,
                exit,
                exit_pct,
                bars,
            }
        ),
        1 => (symbol.clone(), price.clone(), size.clone()).prop_map(|(symbol, entry_cents, size)| Action::Cancelled { symbol, entry_cents, size }),
        1 => (symbol.clone(), price.clone(), size.clone()).prop_map(|(symbol, entry_cents, size)| Action::Rejected { symbol, entry_cents, size }),
        1 => (symbol.clone(), price, size).prop_map(|(symbol, entry_cents, size)| Action::FailClosed { symbol, entry_cents, size }),
        1 => (symbol, 0u64..5).prop_map(|(symbol, missing_bars)| Action::Quality { symbol, missing_bars }),
        1 => Just(Action::Checkpoint),
    ]
}

fn journal() -> impl Strategy<Value = Journal> {
    (1usize..=3, any::<bool>(), any::<bool>()).prop_flat_map(|(symbols, portfolio, finish)| {
        (
            proptest::collection::vec(action(symbols), 0..24),
            proptest::option::of((0..symbols, proptest::collection::vec(1i64..=150_000, 0..4))),
        )
            .prop_map(move |(actions, open_at_end)| Journal {
                symbols,
                portfolio,
                actions,
                open_at_end,
                finish,
            })
    })
}

fn cents(c: i64) -> Decimal {
    Decimal::new(c, 2)
}

/// Runs the journal's actions through `Scenario` (which folds and checks every
/// event as it is built) and returns the events.
fn build(journal: &Journal) -> Vec<(UnixMs, Event)> {
    let symbols = &SYMBOLS[..journal.symbols];
    let mode = if journal.portfolio {
        CapitalMode::Portfolio
    } else {
        CapitalMode::Independent
    };
    // Fewer than 24 trades of at most 500 notional, each losing at most half of it
    // plus fees, cannot empty a pot of 15 000.
    let mut s = Scenario::new(symbols, mode, d("15000"), T0);
    s.candle(symbols[0], d("100"));
    for symbol in &symbols[1..] {
        s.candle_same_bar(symbol, d("100"));
    }
    for action in &journal.actions {
        match *action {
            Action::Candle {
                symbol,
                close_cents,
            } => {
                s.candle(symbols[symbol], cents(close_cents));
            }
            Action::Trade {
                symbol,
                entry_cents,
                stop_permille,
                size,
                exit,
                exit_pct,
                bars,
            } => {
                let entry = cents(entry_cents);
                let stop = (entry - entry * Decimal::new(stop_permille, 3))
                    .round_dp(2)
                    .min(entry - d("0.01"));
                let take_profit = (entry * d("1.1")).round_dp(2);
                let exit_price = (entry * Decimal::new(exit_pct, 2)).round_dp(2);
                let exit = match exit {
                    ExitKind::TakeProfit => Exit::TakeProfit,
                    ExitKind::StopLoss => Exit::StopLoss,
                    ExitKind::Signal => Exit::Order(ExitReason::Signal),
                    ExitKind::Manual => Exit::Order(ExitReason::Manual),
                    ExitKind::Emergency => Exit::Order(ExitReason::Emergency),
                };
                s.trade(
                    symbols[symbol],
                    entry,
                    stop,
                    take_profit,
                    Decimal::new(size, 4),
                    exit,
                    exit_price,
                    bars,
                );
            }
            Action::Cancelled {
                symbol,
                entry_cents,
                size,
            } => s.cancelled_entry(symbols[symbol], cents(entry_cents), Decimal::new(size, 4)),
            Action::Rejected {
                symbol,
                entry_cents,
                size,
            } => s.rejected_entry(symbols[symbol], cents(entry_cents), Decimal::new(size, 4)),
            Action::FailClosed {
                symbol,
                entry_cents,
                size,
            } => s.fail_closed_entry(symbols[symbol], cents(entry_cents), Decimal::new(size, 4)),
            Action::Quality {
                symbol,
                missing_bars,
            } => {
                let now = s.now_ms();
                s.quality(
                    symbols[symbol],
                    QualityIssue::Gap {
                        after_ms: now - 8 * HOUR,
                        before_ms: now,
                        missing_bars,
                    },
                );
            }
            Action::Checkpoint => {
                s.checkpoint();
            }
        }
    }
    if let Some((symbol, closes)) = &journal.open_at_end {
        let symbol = symbols[*symbol];
        let (coid, order_seq) = s.place_entry(symbol, d("100"), d("95"), d("110"), d("1.5"));
        let fill_seq = push(
            &mut s,
            fill(
                &coid,
                order_seq,
                FillLeg::Entry,
                Side::Buy,
                "100",
                "1.5",
                "0.6",
            ),
        );
        push(
            &mut s,
            transition(
                symbol,
                EngineState::EntryPending,
                EngineState::PositionOpen,
                fill_seq,
            ),
        );
        for close in closes {
            s.candle(symbol, cents(*close));
        }
    }
    if journal.finish {
        s.finish()
    } else {
        s.checkpoint();
        s.events
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The same events fold to equal state hashes and byte-identical projections.
    #[test]
    fn folding_twice_is_identical(journal in journal()) {
        let events = build(&journal);
        let a = fold(&events).unwrap();
        let b = fold(&events).unwrap();
        prop_assert_eq!(a.state_hash(), b.state_hash());
        prop_assert_eq!(encode(&a), encode(&b));
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.seq(), events.len() as Seq);
        // Every checkpoint in the journal (at least the final one) was verified.
        let checkpoints = events.iter().filter(|(_, e)| matches!(e, Event::Checkpoint(_))).count() as u64;
        prop_assert!(checkpoints >= 1);
        prop_assert_eq!(a.links.checkpoints_verified, checkpoints);
        // The state's canonical form (what the hash covers) is byte for byte
        // the encoding checkpoints were made from before it had a name.
        // (Figures added since, outside form 1, follow the old ones.)
        let config = anx_journal::codec::BODY_CONFIG;
        let mut old = bincode::serde::encode_to_vec(&a.state, config).unwrap();
        let added = anx_projections::testkit::added_since_form_one(&a.state);
        prop_assert!(old.ends_with(&added));
        old.truncate(old.len() - added.len());
        prop_assert_eq!(anx_projections::state_form::encode_v1(&a.state), old);
    }

    /// Snapshot at any k, restored from bincode, plus the tail = the full fold.
    #[test]
    fn snapshot_plus_tail_is_the_full_fold(journal in journal(), at in any::<prop::sample::Index>()) {
        let events = build(&journal);
        let full = fold(&events).unwrap();
        let k = at.index(events.len() + 1);
        let resumed = snapshot_then_tail(&events, k);
        prop_assert_eq!(&resumed, &full, "snapshot at {} of {}", k, events.len());
        prop_assert_eq!(resumed.state_hash(), full.state_hash());
        prop_assert_eq!(encode(&resumed), encode(&full));
    }
}

// ---------------------------------------------------------------- the fixture, exhaustively

#[test]
fn the_fixture_resumes_from_every_snapshot_point() {
    let events = fixture_events();
    let full = fold(&events).unwrap();
    assert_same(&full, &fold(&events).unwrap());
    for k in 0..=events.len() {
        assert_same(&snapshot_then_tail(&events, k), &full);
    }
}

#[test]
fn a_different_history_gives_a_different_hash() {
    // The hash is not trivially constant: one fill price a cent off changes it.
    let mut s = Scenario::new(&[BTC], CapitalMode::Independent, d("1000"), T0);
    s.candle(BTC, d("100"));
    let base = s.projection.clone();
    let mut other = s.projection.clone();
    let mut a = Scenario::new(&[BTC], CapitalMode::Independent, d("1000"), T0);
    a.candle(BTC, d("100"));
    a.trade(
        BTC,
        d("100"),
        d("95"),
        d("110"),
        d("1"),
        Exit::TakeProfit,
        d("110"),
        1,
    );
    let mut b = Scenario::new(&[BTC], CapitalMode::Independent, d("1000"), T0);
    b.candle(BTC, d("100"));
    b.trade(
        BTC,
        d("100"),
        d("95"),
        d("110"),
        d("1"),
        Exit::TakeProfit,
        d("110.01"),
        1,
    );
    assert_ne!(a.projection.state_hash(), b.projection.state_hash());
    assert_ne!(a.projection.state_hash(), base.state_hash());
    // The hash covers the state only, not the journal positions in the links.
    other.links.seq += 100;
    other.links.checkpoints_verified += 1;
    assert_eq!(other.state_hash(), base.state_hash());
    assert_ne!(encode(&other), encode(&base));
}
