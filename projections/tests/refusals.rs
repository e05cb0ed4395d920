//! A refused event changes nothing: every handler of the fold checks before it
//! applies, so after a refusal the projection – state and links – is exactly
//! as it was, and so is its state hash.
//!
//! Table-driven twice over: the cases where a handler once changed the
//! projection before its last check (an acknowledgement naming the wrong
//! order seq, an order refused after its id was taken), and a sweep that folds
//! the events of whole journals – each as journaled and mutated to break one
//! rule or several – at every point of those journals.

mod common;

use anx_journal::codec::Hash32;
use anx_journal::*;
use anx_projections::testkit::{fixture_events, Exit};
use anx_projections::*;
use common::*;

/// Folds `event` as the next event of `projection`; if the fold refuses it,
/// checks that nothing changed and returns the refusal.
fn refused_unchanged(projection: &Projection, market_ms: UnixMs, event: &Event) -> Option<Rule> {
    let mut after = projection.clone();
    let error = after.apply(projection.seq() + 1, market_ms, event).err()?;
    assert_eq!(
        after.state_hash(),
        projection.state_hash(),
        "refused {event:?} ({error}) changed the state hash"
    );
    assert_eq!(
        &after, projection,
        "refused {event:?} ({error}) changed the projection"
    );
    Some(error.rule)
}

#[test]
fn an_acknowledgement_naming_the_wrong_order_seq_changes_nothing() {
    let mut s = start(CapitalMode::Independent, "1000");
    let decision = s.decision(BTC, DecisionOutcome::Enter, None);
    let order_seq = push(
        &mut s,
        order("A", decision, BTC, Side::Buy, OrderPurpose::Entry, "1"),
    );
    let wrong = OrderAcknowledged {
        client_order_id: "A".into(),
        order_seq: order_seq + 1,
        exchange_order_id: "x-A".into(),
    };
    let rule = refused_unchanged(&s.projection, s.now_ms(), &wrong.into());
    assert_eq!(rule, Some(Rule::OrderLink));
    let order = &s.projection.state.orders["A"];
    assert_eq!(
        (order.status, order.exchange_order_id.as_str()),
        (OrderStatus::Placed, "")
    );
}

#[test]
fn a_refused_order_does_not_take_its_client_order_id() {
    let mut s = start(CapitalMode::Independent, "1000");
    let decision = s.decision(BTC, DecisionOutcome::Enter, None);
    let good = order("A", decision, BTC, Side::Buy, OrderPurpose::Entry, "1");
    let refusals = [
        (
            OrderPlaced {
                decision_seq: decision - 1,
                ..good.clone()
            },
            Rule::OrderLink,
        ),
        (
            OrderPlaced {
                base_size: d("0"),
                ..good.clone()
            },
            Rule::Domain,
        ),
        (
            OrderPlaced {
                side: Side::Sell,
                ..good.clone()
            },
            Rule::OrderLifecycle,
        ),
    ];
    for (bad, rule) in refusals {
        let refused = refused_unchanged(&s.projection, s.now_ms(), &bad.into());
        assert_eq!(refused, Some(rule));
        assert!(!s.projection.links.placed.contains("A"));
    }
    // The id is still free: the order as it should have been is placed.
    push(&mut s, good);
    assert!(s.projection.state.orders.contains_key("A"));
}

#[test]
fn every_refusal_in_whole_journals_changes_nothing() {
    let journals = [
        ("fixture", fixture_events()),
        ("partial", partial_fills(CapitalMode::Independent)),
        ("portfolio", partial_fills(CapitalMode::Portfolio)),
    ];
    let mut refused: Vec<Rule> = Vec::new();
    for (name, events) in &journals {
        let mut projection = Projection::new();
        for k in 0..=events.len() {
            // The events around position k, as journaled and mutated, folded
            // as event k + 1.
            let near = &events[k.saturating_sub(6)..(k + 4).min(events.len())];
            let market_ms = events.get(k).unwrap_or(&events[events.len() - 1]).0;
            for (_, event) in near {
                for candidate in variants(event) {
                    refused.extend(refused_unchanged(&projection, market_ms, &candidate));
                }
            }
            if let Some((ms, event)) = events.get(k) {
                projection
                    .apply(k as Seq + 1, *ms, event)
                    .unwrap_or_else(|e| panic!("{name} folds: {e}"));
            }
        }
    }
    // The sweep reaches every rule of the fold.
    refused.sort_by_key(|rule| rule.name());
    refused.dedup();
    let names: Vec<&str> = refused.iter().map(|rule| rule.name()).collect();
    for rule in [
        Rule::RunLifecycle,
        Rule::UnknownSymbol,
        Rule::CandleOrder,
        Rule::DecisionLink,
        Rule::OrderLink,
        Rule::SecondPosition,
        Rule::FailClosedBlocks,
        Rule::UnknownOrder,
        Rule::OrderLifecycle,
        Rule::FillMismatch,
        Rule::Cash,
        Rule::Transition,
        Rule::TradeMismatch,
        Rule::Reset,
        Rule::Checkpoint,
        Rule::Domain,
    ] {
        assert!(
            names.contains(&rule.name()),
            "no {} refusal in {names:?}",
            rule.name()
        );
    }
}

/// A trade on BTC filled in part, its entry's remainder cancelled, sold in
/// three pieces (a take-profit leg and an exit order's two fills); a whole
/// trade on ETH; ETH then fails closed with a stale-data finding.
fn partial_fills(mode: CapitalMode) -> Vec<(UnixMs, Event)> {
    let mut s = start(mode, "1000");
    let entry = entry_pending(&mut s, BTC, "2");
    entry_filled(&mut s, BTC, &entry, "100", "1", "0.1");
    push(&mut s, cancel(&entry));
    s.candle(BTC, d("105"));
    push(
        &mut s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::TakeProfit,
            Side::Sell,
            "110",
            "0.5",
            "0.05",
        ),
    );
    let reason = ExitReason::Signal;
    let decision = s.decision(BTC, DecisionOutcome::Exit { reason }, None);
    let exit_seq = push(
        &mut s,
        order(
            "exit-1",
            decision,
            BTC,
            Side::Sell,
            OrderPurpose::Exit,
            "0.5",
        ),
    );
    push(
        &mut s,
        fill(
            "exit-1",
            exit_seq,
            FillLeg::Exit,
            Side::Sell,
            "108",
            "0.25",
            "0.02",
        ),
    );
    push(
        &mut s,
        fill(
            "exit-1",
            exit_seq,
            FillLeg::Exit,
            Side::Sell,
            "107",
            "0.25",
            "0.02",
        ),
    );
    s.trade(
        ETH,
        d("100"),
        d("95"),
        d("110"),
        d("1"),
        Exit::StopLoss,
        d("94"),
        1,
    );
    let cause_seq = s.checkpoint();
    let reason = "test".into();
    push(
        &mut s,
        FailClosed {
            symbol: ETH.into(),
            cause_seq,
            reason,
        },
    );
    s.quality(
        ETH,
        QualityIssue::Stale {
            newest_ms: T0,
            age_ms: HOUR,
        },
    );
    s.events
}

/// The other of the two symbols.
fn other(symbol: &str) -> String {
    if symbol == BTC { ETH } else { BTC }.into()
}

const STATES: [EngineState; 5] = [
    EngineState::Idle,
    EngineState::EntryPending,
    EngineState::PositionOpen,
    EngineState::Reconcile,
    EngineState::FailClosed,
];

/// `event` as journaled, and changed to break one rule or several: another
/// symbol, other seqs, sizes, prices, sides, legs, every transition.
fn variants(event: &Event) -> Vec<Event> {
    let mut out = vec![event.clone()];
    let mut add = |changed: &[Event]| out.extend_from_slice(changed);
    match event {
        Event::Candle(c) => add(&[
            Candle {
                symbol: other(&c.symbol),
                ..c.clone()
            }
            .into(),
            Candle {
                open_ms: c.open_ms - 4 * HOUR,
                ..c.clone()
            }
            .into(),
            Candle {
                low: d("0"),
                ..c.clone()
            }
            .into(),
            Candle {
                granularity_s: c.granularity_s * 2,
                ..c.clone()
            }
            .into(),
        ]),
        Event::Decision(c) => add(&[
            Decision {
                symbol: other(&c.symbol),
                ..c.clone()
            }
            .into(),
            Decision {
                candle_seq: c.candle_seq + 1,
                ..c.clone()
            }
            .into(),
        ]),
        Event::OrderPlaced(c) => add(&[
            OrderPlaced {
                product_id: other(&c.product_id),
                ..c.clone()
            }
            .into(),
            OrderPlaced {
                decision_seq: c.decision_seq - 1,
                ..c.clone()
            }
            .into(),
            OrderPlaced {
                base_size: d("0"),
                ..c.clone()
            }
            .into(),
            OrderPlaced {
                side: flip(c.side),
                ..c.clone()
            }
            .into(),
            // A fresh id: on the same symbol, and on the other one.
            OrderPlaced {
                client_order_id: format!("{}y", c.client_order_id),
                ..c.clone()
            }
            .into(),
            OrderPlaced {
                client_order_id: format!("{}x", c.client_order_id),
                product_id: other(&c.product_id),
                ..c.clone()
            }
            .into(),
        ]),
        Event::OrderAcknowledged(c) => add(&[OrderAcknowledged {
            order_seq: c.order_seq + 1,
            ..c.clone()
        }
        .into()]),
        Event::OrderCancelled(c) => add(&[OrderRejected {
            client_order_id: c.client_order_id.clone(),
            order_seq: c.order_seq,
            reason: "x".into(),
        }
        .into()]),
        Event::BracketVerified(c) => add(&[BracketVerified {
            order_seq: c.order_seq + 1,
            ..c.clone()
        }
        .into()]),
        Event::Fill(c) => {
            add(&[
                Fill {
                    size: c.size * d("2"),
                    ..c.clone()
                }
                .into(),
                Fill {
                    fee: d("-1"),
                    ..c.clone()
                }
                .into(),
                Fill {
                    order_seq: c.order_seq + 1,
                    ..c.clone()
                }
                .into(),
                Fill {
                    price: c.price * d("100000"),
                    ..c.clone()
                }
                .into(),
                Fill {
                    side: flip(c.side),
                    ..c.clone()
                }
                .into(),
            ]);
            for leg in [
                FillLeg::Entry,
                FillLeg::TakeProfit,
                FillLeg::StopLoss,
                FillLeg::Exit,
            ] {
                let side = if leg == FillLeg::Entry {
                    Side::Buy
                } else {
                    Side::Sell
                };
                add(&[Fill {
                    leg,
                    side,
                    ..c.clone()
                }
                .into()]);
            }
        }
        Event::Reconciliation(c) => add(&[Reconciliation {
            our_position: c.our_position + d("1"),
            ..c.clone()
        }
        .into()]),
        Event::EngineTransition(c) => {
            for from in STATES {
                for to in STATES {
                    add(&[EngineTransition {
                        from,
                        to,
                        ..c.clone()
                    }
                    .into()]);
                }
            }
        }
        Event::TradeClosed(c) => add(&[
            TradeClosed {
                fees: c.fees + d("1"),
                ..c.clone()
            }
            .into(),
            TradeClosed {
                exit_fill_seq: c.exit_fill_seq + 1,
                ..c.clone()
            }
            .into(),
            TradeClosed {
                entry_fill_seq: c.entry_fill_seq + 1,
                ..c.clone()
            }
            .into(),
            TradeClosed {
                symbol: other(&c.symbol),
                ..c.clone()
            }
            .into(),
        ]),
        Event::FailClosed(c) => add(&[
            FailClosed {
                symbol: other(&c.symbol),
                ..c.clone()
            }
            .into(),
            FailClosed {
                symbol: "XXX-USD".into(),
                ..c.clone()
            }
            .into(),
        ]),
        Event::OperatorReset(c) => add(&[OperatorReset {
            symbol: other(&c.symbol),
            ..c.clone()
        }
        .into()]),
        Event::Checkpoint(c) => add(&[Checkpoint {
            state_hash: Hash32::default(),
            ..c.clone()
        }
        .into()]),
        Event::RunCompleted(c) => add(&[RunCompleted {
            run_id: format!("{}x", c.run_id),
            ..c.clone()
        }
        .into()]),
        _ => {}
    }
    out
}

fn flip(side: Side) -> Side {
    match side {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    }
}
