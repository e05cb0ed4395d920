//! Property test: any sequence of events written (with any segment size and
//! durability) and read back is identical, market times included.

mod common;

use anx_journal::*;
use proptest::collection::vec;
use proptest::prelude::*;
use rust_decimal::Decimal;

fn dec() -> impl Strategy<Value = Decimal> {
    (any::<i128>(), 0u32..=28).prop_map(|(m, scale)| {
        let m = m % (1i128 << 96);
        Decimal::try_from_i128_with_scale(m, scale).unwrap_or(Decimal::ZERO)
    })
}

fn opt_dec() -> impl Strategy<Value = Option<Decimal>> {
    proptest::option::of(dec())
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,24}"
}

fn hash() -> impl Strategy<Value = Hash32> {
    any::<[u8; 32]>().prop_map(Hash32)
}

fn state() -> impl Strategy<Value = EngineState> {
    prop_oneof![
        Just(EngineState::Idle),
        Just(EngineState::EntryPending),
        Just(EngineState::PositionOpen),
        Just(EngineState::Reconcile),
        Just(EngineState::FailClosed)
    ]
}

fn exit_reason() -> impl Strategy<Value = ExitReason> {
    prop_oneof![
        Just(ExitReason::Signal),
        Just(ExitReason::TakeProfit),
        Just(ExitReason::StopLoss),
        Just(ExitReason::Manual),
        Just(ExitReason::Emergency)
    ]
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn candle() -> impl Strategy<Value = Event> {
    (
        text(),
        any::<u32>(),
        any::<i64>(),
        [dec(), dec(), dec(), dec(), dec()],
    )
        .prop_map(|(symbol, g, t, p)| {
            Event::Candle(Candle {
                symbol,
                granularity_s: g,
                open_ms: t,
                open: p[0],
                high: p[1],
                low: p[2],
                close: p[3],
                volume: p[4],
            })
        })
}

fn run_events() -> impl Strategy<Value = Event> {
    prop_oneof![
        (
            text(),
            0u8..3,
            any::<bool>(),
            hash(),
            text(),
            vec(text(), 0..4),
            any::<u32>(),
            any::<i64>(),
            proptest::option::of(any::<i64>()),
            dec()
        )
            .prop_map(
                |(
                    run_id,
                    paper,
                    portfolio,
                    config_hash,
                    config_text,
                    symbols,
                    g,
                    start,
                    end,
                    capital,
                )| {
                    Event::RunStarted(RunStarted {
                        run_id,
                        run_mode: match paper {
                            0 => RunMode::ReplayBacktest,
                            1 => RunMode::PaperLive,
                            _ => RunMode::Live,
                        },
                        capital_mode: if portfolio {
                            CapitalMode::Portfolio
                        } else {
                            CapitalMode::Independent
                        },
                        market_time_basis: if paper > 0 {
                            MarketTimeBasis::WallClock
                        } else {
                            MarketTimeBasis::CandleTimestamp
                        },
                        data_integrity: if portfolio {
                            DataIntegrity::DegradedSkipVolume
                        } else {
                            DataIntegrity::Ok
                        },
                        created_by: "prop".into(),
                        git_sha: "abc".into(),
                        config_hash,
                        config_text,
                        symbols,
                        granularity_s: g,
                        start_ms: start,
                        end_ms: end,
                        starting_capital: capital,
                    })
                }
            ),
        (text(), any::<i64>(), any::<u64>(), text()).prop_map(
            |(run_id, end_ms, candles, reason)| {
                Event::RunCompleted(RunCompleted {
                    run_id,
                    end_ms,
                    candles,
                    reason,
                })
            }
        ),
        (any::<u64>(), hash()).prop_map(|(through_seq, state_hash)| Event::Checkpoint(
            Checkpoint {
                through_seq,
                state_hash
            }
        )),
        (text(), any::<u64>(), any::<u64>(), any::<u64>(), text()).prop_map(
            |(segment, offset, bytes_dropped, last_good_seq, reason)| {
                Event::Recovered(Recovered {
                    segment,
                    offset,
                    bytes_dropped,
                    last_good_seq,
                    reason,
                })
            }
        ),
        (
            text(),
            0u8..6,
            any::<i64>(),
            any::<i64>(),
            any::<u64>(),
            dec()
        )
            .prop_map(|(symbol, which, a, b, n, v)| {
                let issue = match which {
                    0 => QualityIssue::Gap {
                        after_ms: a,
                        before_ms: b,
                        missing_bars: n,
                    },
                    1 => QualityIssue::Duplicate { open_ms: a },
                    2 => QualityIssue::OutOfOrder {
                        open_ms: a,
                        previous_ms: b,
                    },
                    3 => QualityIssue::VolumeAnomaly {
                        open_ms: a,
                        volume: v,
                    },
                    4 => QualityIssue::InvalidCandle { open_ms: a },
                    _ => QualityIssue::Stale {
                        newest_ms: a,
                        age_ms: b,
                    },
                };
                Event::DataQuality(DataQuality {
                    symbol,
                    granularity_s: 3600,
                    issue,
                    source: "f.csv:1".into(),
                    detail: String::new(),
                })
            }),
    ]
}

fn decision() -> impl Strategy<Value = Event> {
    let signal = (
        text(),
        any::<bool>(),
        dec(),
        dec(),
        opt_dec(),
        opt_dec(),
        opt_dec(),
    )
        .prop_map(
            |(name, fired, strength, confidence, entry, stop, take_profit)| SignalOutput {
                name: name.into(),
                fired,
                strength,
                confidence,
                entry,
                stop,
                take_profit,
                note: "n".into(),
            },
        );
    let sizing = proptest::option::of(vec(dec(), 11).prop_map(|v| Sizing {
        capital: v[0],
        risk_fraction: v[1],
        risk_budget: v[2],
        entry: v[3],
        stop_trigger: v[4],
        worst_case_fill: v[5],
        risk_per_unit: v[6],
        quantity_raw: v[7],
        quantity: v[8],
        notional: v[9],
        multiplier: v[10],
    }));
    let outcome = prop_oneof![
        Just(DecisionOutcome::Hold),
        Just(DecisionOutcome::Enter),
        exit_reason().prop_map(|reason| DecisionOutcome::Exit { reason }),
        text().prop_map(|reason_code| DecisionOutcome::Rejected { reason_code }),
    ];
    (
        text(),
        any::<i64>(),
        any::<u64>(),
        vec(
            (text(), opt_dec()).prop_map(|(name, value)| Indicator {
                name: name.into(),
                value,
            }),
            0..4,
        ),
        vec(signal, 0..3),
        vec(
            (text(), any::<bool>(), text()).prop_map(|(code, passed, detail)| RiskCheck {
                code: code.into(),
                passed,
                detail: detail.into(),
            }),
            0..4,
        ),
        sizing,
        outcome,
        hash(),
    )
        .prop_map(
            |(
                symbol,
                as_of_ms,
                candle_seq,
                indicators,
                signals,
                risk_checks,
                sizing,
                outcome,
                config_hash,
            )| {
                Event::Decision(Decision {
                    symbol,
                    as_of_ms,
                    candle_seq,
                    glass: Glass::Full(GlassBox {
                        regime: "trend".into(),
                        indicators,
                        signals,
                        risk_checks,
                    }),
                    sizing,
                    outcome,
                    config_hash: Some(config_hash),
                })
            },
        )
}

fn order_events() -> impl Strategy<Value = Event> {
    prop_oneof![
        (
            text(),
            any::<u64>(),
            side(),
            opt_dec(),
            opt_dec(),
            dec(),
            any::<bool>(),
            proptest::option::of([dec(), dec(), dec()]),
            text()
        )
            .prop_map(
                |(
                    coid,
                    decision_seq,
                    side,
                    limit_price,
                    stop_trigger,
                    base_size,
                    post_only,
                    bracket,
                    payload,
                )| {
                    Event::OrderPlaced(OrderPlaced {
                        client_order_id: coid,
                        decision_seq,
                        product_id: "BTC-USD".into(),
                        side,
                        order_type: if post_only {
                            OrderType::Limit
                        } else {
                            OrderType::StopLimit
                        },
                        purpose: if bracket.is_some() {
                            OrderPurpose::Entry
                        } else {
                            OrderPurpose::Exit
                        },
                        limit_price,
                        stop_trigger,
                        base_size,
                        post_only,
                        bracket: bracket.map(|b| BracketLegs {
                            take_profit_limit: b[0],
                            stop_trigger: b[1],
                            stop_limit: b[2],
                        }),
                        payload,
                    })
                }
            ),
        (text(), any::<u64>(), text()).prop_map(|(c, s, x)| Event::OrderAcknowledged(
            OrderAcknowledged {
                client_order_id: c,
                order_seq: s,
                exchange_order_id: x
            }
        )),
        (text(), any::<u64>(), text()).prop_map(|(c, s, x)| Event::OrderRejected(OrderRejected {
            client_order_id: c,
            order_seq: s,
            reason: x
        })),
        (text(), any::<u64>(), text()).prop_map(|(c, s, x)| Event::OrderCancelled(
            OrderCancelled {
                client_order_id: c,
                order_seq: s,
                reason: x
            }
        )),
        (text(), any::<u64>(), text(), text()).prop_map(|(c, s, a, b)| Event::BracketVerified(
            BracketVerified {
                client_order_id: c,
                order_seq: s,
                take_profit_order_id: a,
                stop_order_id: b
            }
        )),
        (
            text(),
            any::<u64>(),
            side(),
            [dec(), dec(), dec()],
            any::<bool>()
        )
            .prop_map(|(c, s, side, v, maker)| Event::Fill(Fill {
                client_order_id: c,
                order_seq: s,
                fill_id: "f".into(),
                leg: if maker {
                    FillLeg::TakeProfit
                } else {
                    FillLeg::StopLoss
                },
                side,
                price: v[0],
                size: v[1],
                fee: v[2],
                liquidity: if maker {
                    Liquidity::Maker
                } else {
                    Liquidity::Taker
                },
            })),
    ]
}

fn lifecycle_events() -> impl Strategy<Value = Event> {
    prop_oneof![
        (
            text(),
            dec(),
            dec(),
            vec(text(), 0..3),
            vec(text(), 0..3),
            0u8..3
        )
            .prop_map(|(symbol, b, o, bo, oo, which)| Event::Reconciliation(
                Reconciliation {
                    symbol,
                    broker_position: b,
                    our_position: o,
                    broker_open_orders: bo,
                    our_open_orders: oo,
                    outcome: [
                        ReconcileOutcome::Match,
                        ReconcileOutcome::ExitDetected,
                        ReconcileOutcome::Mismatch
                    ][which as usize],
                    detail: String::new(),
                }
            )),
        (text(), state(), state(), text(), any::<u64>()).prop_map(
            |(symbol, from, to, reason, cause_seq)| Event::EngineTransition(EngineTransition {
                symbol,
                from,
                to,
                reason,
                cause_seq
            })
        ),
        (
            text(),
            vec(dec(), 12),
            exit_reason(),
            vec(any::<u64>(), 3),
            any::<i64>()
        )
            .prop_map(
                |(id, v, exit_reason, seqs, t)| Event::TradeClosed(TradeClosed {
                    trade_id: id,
                    symbol: "ETH-USD".into(),
                    entry_client_order_id: "c".into(),
                    entry_order_seq: seqs[0],
                    entry_fill_seq: seqs[1],
                    exit_fill_seq: seqs[2],
                    entry_ms: t,
                    exit_ms: t.wrapping_add(1),
                    entry_price: v[0],
                    exit_price: v[1],
                    size: v[2],
                    initial_stop: v[3],
                    exit_reason,
                    fees: v[4],
                    slippage: v[5],
                    gross_pnl: v[6],
                    net_pnl: v[7],
                    theoretical_r: v[8],
                    realized_r: v[9],
                })
            ),
        (text(), any::<u64>(), text()).prop_map(|(symbol, cause_seq, reason)| Event::FailClosed(
            FailClosed {
                symbol,
                cause_seq,
                reason
            }
        )),
        (text(), text(), text()).prop_map(|(symbol, operator, reason)| Event::OperatorReset(
            OperatorReset {
                symbol,
                operator,
                reason
            }
        )),
    ]
}

/// Operator actions, cancel requests and unconfirmed brackets.
fn later_events() -> impl Strategy<Value = Event> {
    let command = prop_oneof![
        Just(OperatorCommand::Exit),
        Just(OperatorCommand::Halt),
        Just(OperatorCommand::Resume),
    ];
    prop_oneof![
        (command, text(), text(), text()).prop_map(|(command, symbol, operator, reason)| {
            Event::OperatorAction(OperatorAction {
                command,
                symbol,
                operator,
                reason,
            })
        }),
        (text(), any::<u64>(), text()).prop_map(|(client_order_id, order_seq, reason)| {
            Event::CancelRequested(CancelRequested {
                client_order_id,
                order_seq,
                reason,
            })
        }),
        (any::<u64>(), any::<i64>(), any::<[u8; 32]>()).prop_map(
            |(answer_seq, broker_time_ms, raw)| {
                Event::AnswerReceipt(AnswerReceipt {
                    answer_seq,
                    broker_time_ms,
                    raw_blake3: Hash32(raw),
                })
            }
        ),
        (
            text(),
            text(),
            any::<bool>(),
            proptest::option::of(dec()),
            dec(),
            text()
        )
            .prop_map(|(check, symbol, raised, value, limit, detail)| {
                Event::Finding(Finding {
                    check,
                    symbol,
                    raised,
                    value,
                    limit,
                    detail,
                })
            }),
        (text(), any::<u64>(), text()).prop_map(|(client_order_id, order_seq, reason)| {
            Event::BracketUnconfirmed(BracketUnconfirmed {
                client_order_id,
                order_seq,
                reason,
            })
        }),
    ]
}

fn any_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        candle(),
        run_events(),
        decision(),
        order_events(),
        lifecycle_events(),
        later_events()
    ]
}

fn durability() -> impl Strategy<Value = Durability> {
    prop_oneof![
        Just(Durability::OnClose),
        Just(Durability::Batch {
            events_max: 4,
            delay_ms_max: 1000
        }),
        Just(Durability::Always),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn written_events_read_back_identical(
        events in vec((any::<i64>(), any_event()), 0..60),
        segment_bytes_max in 200u64..4096,
        durability in durability(),
        schema in 1u16..=2,
    ) {
        // A decision is journaled at its own market time (schema 2 stores it once).
        let events: Vec<(i64, Event)> = events
            .into_iter()
            .map(|(market_ms, mut event)| {
                if let Event::Decision(d) = &mut event {
                    d.as_of_ms = market_ms;
                }
                (market_ms, event)
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let options = WriterOptions { durability, segment_bytes_max, open_check: OpenCheck::FullChain, schema };
        let mut writer = Writer::create(dir.path(), sample::GOLDEN_META, options).unwrap();
        let mut heads = Vec::new();
        for (market_ms, event) in &events {
            heads.push(writer.append(*market_ms, event).unwrap());
        }
        let head = writer.close().unwrap();
        prop_assert_eq!(head.seq, events.len() as u64);
        let mut reader = Reader::open(dir.path()).unwrap();
        let mut read = 0usize;
        while let Some(stored) = reader.next_event().unwrap() {
            let (market_ms, event) = &events[read];
            prop_assert_eq!(stored.seq, read as u64 + 1);
            prop_assert_eq!(stored.market_ms, *market_ms);
            // Schema 1 reads back every field; schema 2 a decision's commitment.
            prop_assert_eq!(&stored.event, &event.as_read_back(schema).unwrap());
            prop_assert_eq!(stored.schema_version, event.kind().written_at(schema));
            // And the record re-encodes to its stored body.
            let body = body_bytes(&stored.event, stored.schema_version, *market_ms).unwrap();
            prop_assert_eq!(body, body_bytes(event, stored.schema_version, *market_ms).unwrap());
            prop_assert_eq!(stored.hash, heads[read].hash);
            read += 1;
        }
        prop_assert_eq!(read, events.len());
        let report = verify(dir.path(), Some(head)).unwrap();
        prop_assert!(report.ok());
    }
}

/// FORMAT.md §5: a negative zero Decimal "decodes as zero". The stored bytes
/// keep the sign (hashes are over them), the decoded value does not.
#[test]
fn a_negative_zero_decimal_is_zero_re_encodes_as_stored_and_renders_as_zero() {
    let mut negative_zero = Decimal::ZERO;
    negative_zero.set_sign_negative(true);
    let mut negative_zero_scaled = Decimal::new(0, 2);
    negative_zero_scaled.set_sign_negative(true);
    assert_eq!(
        negative_zero.to_string(),
        "-0",
        "rust_decimal keeps the sign"
    );
    let candle = Event::Candle(Candle {
        symbol: "BTC-USD".into(),
        granularity_s: 3600,
        open_ms: 0,
        open: Decimal::ONE,
        high: Decimal::ONE,
        low: Decimal::ONE,
        close: Decimal::ONE,
        volume: negative_zero,
    });
    let fill = Event::Fill(Fill {
        client_order_id: "c".into(),
        order_seq: 1,
        fill_id: "f".into(),
        leg: FillLeg::Entry,
        side: Side::Buy,
        price: Decimal::ONE,
        size: Decimal::ONE,
        fee: negative_zero_scaled,
        liquidity: Liquidity::Maker,
    });
    let dir = tempfile::tempdir().unwrap();
    // Schema 1's 16-byte decimals (schema 2 keeps the sign bit too: `compact`).
    let options = WriterOptions {
        schema: 1,
        ..WriterOptions::default()
    };
    let mut writer = Writer::create(dir.path(), sample::GOLDEN_META, options).unwrap();
    let first = writer.append(3_600_000, &candle).unwrap();
    writer.append(3_600_000, &fill).unwrap();
    let head = writer.close().unwrap();

    let mut reader = Reader::open(dir.path()).unwrap();
    let record = reader.next_record().unwrap().unwrap();
    // The stored form still carries the sign bit: the volume is the payload's
    // last 16 bytes, flags first.
    let stored = &record.payload[record.payload.len() - 16..];
    assert_eq!(
        stored,
        negative_zero.serialize(),
        "stored bytes are never changed"
    );
    assert_eq!(stored[3], 0x80);
    assert_eq!(record.hash, first.hash);
    let Event::Candle(decoded) = record.decode().unwrap() else {
        panic!("a candle");
    };
    // Its value is zero; decoding keeps the sign, so the event re-encodes to
    // exactly the stored body (a re-drive compares bytes).
    assert_eq!(decoded.volume, Decimal::ZERO);
    let mut body = Vec::new();
    body_bytes_into(&Event::Candle(decoded.clone()), 1, 3_600_000, &mut body).unwrap();
    assert_eq!(body, record.payload[12..]);
    // Text renderings show it as zero.
    let json = serde_json::to_value(Event::Candle(decoded)).unwrap();
    assert_eq!(json["volume"], "0", "{json}");
    assert_eq!(json.to_string().matches("\"-0").count(), 0, "{json}");
    let Event::Fill(decoded) = reader.next_event().unwrap().unwrap().event else {
        panic!("a fill");
    };
    assert_eq!(decoded.fee, Decimal::ZERO);
    let json = serde_json::to_value(Event::Fill(decoded)).unwrap();
    assert_eq!(json["fee"], "0.00", "the scale is kept: {json}");
    assert!(verify(dir.path(), Some(head)).unwrap().ok());
}
