//! A fixed, deterministic sequence of events that uses every event kind: the
//! golden journal, the worked example in `journal/FORMAT.md`, the benchmarks and
//! the CLI tests are built from it. Changing it changes the golden bytes.

use crate::codec::Hash32;
use crate::event::*;
use crate::format::JournalMeta;
use rust_decimal::Decimal;
use std::str::FromStr;

/// The identity of the golden journal.
pub const GOLDEN_META: JournalMeta = JournalMeta {
    journal_id: *b"anx-golden-jrnl1",
    created_ms: 1_704_067_200_000, // 2024-01-01T00:00:00Z
};

const HOUR_MS: i64 = 3_600_000;
const START_MS: i64 = 1_704_067_200_000;

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap_or_else(|_| panic!("sample decimal {text:?} is invalid"))
}

/// A 4h BTC-USD candle opening at `open_ms`.
pub fn candle(open_ms: UnixMs, ohlcv: [&str; 5]) -> Candle {
    Candle {
        symbol: "BTC-USD".into(),
        granularity_s: 14_400,
        open_ms,
        open: d(ohlcv[0]),
        high: d(ohlcv[1]),
        low: d(ohlcv[2]),
        close: d(ohlcv[3]),
        volume: d(ohlcv[4]),
    }
}

/// Every kind at least once, in an order a real run could produce:
/// a bracketed entry that exits at take-profit, then a rejected and a cancelled
/// order, a fail-closed symbol reset by an operator, a checkpoint, a repair, a
/// feed fault, unconfirmed protection and its cancel request, an operator's
/// halt and the run's end. Returns `(market_ms, event)` pairs.
pub fn golden_events() -> Vec<(UnixMs, Event)> {
    let ids = golden_ids();
    let parts = [
        golden_run_start(&ids),
        golden_entry_decision(&ids),
        golden_entry_order(&ids),
        golden_position(&ids),
        golden_take_profit(&ids),
        golden_failures(&ids),
        golden_late_answers(&ids),
        golden_closing(&ids),
    ];
    parts.into_iter().flatten().collect()
}

/// Identifiers the golden events share.
struct GoldenIds {
    config_hash: Hash32,
    coid: String,
}

fn golden_ids() -> GoldenIds {
    GoldenIds {
        config_hash: Hash32(*blake3::hash(b"sample config").as_bytes()),
        coid: "ANX4_run00001_BTCUSD_20240101T0800_1a2b3c4d".to_string(),
    }
}

/// The golden run's market time `hours` after its start.
fn t(hours: i64) -> UnixMs {
    START_MS + hours * HOUR_MS
}

/// Golden events: the run starts and its first candle closes.
fn golden_run_start(ids: &GoldenIds) -> Vec<(UnixMs, Event)> {
    let config_hash = ids.config_hash;
    vec![
        (
            t(0),
            RunStarted {
                run_id: "run00001".into(),
                run_mode: RunMode::ReplayBacktest,
                capital_mode: CapitalMode::Independent,
                market_time_basis: MarketTimeBasis::CandleTimestamp,
                data_integrity: DataIntegrity::Ok,
                created_by: "anx-golden".into(),
                git_sha: "0000000".into(),
                config_hash,
                config_text: "[risk]\nrisk_per_trade = 0.01\n".into(),
                symbols: vec!["BTC-USD".into()],
                granularity_s: 14_400,
                start_ms: START_MS,
                end_ms: Some(t(24)),
                starting_capital: d("500"),
            }
            .into(),
        ),
        (
            t(4),
            candle(t(0), ["104000", "104600.5", "103900", "104550", "12.5"]).into(),
        ),
        (
            t(4),
            DataQuality {
                symbol: "BTC-USD".into(),
                granularity_s: 14_400,
                issue: QualityIssue::Gap {
                    after_ms: t(0),
                    before_ms: t(8),
                    missing_bars: 0,
                },
                source: "COINBASE_BTC-USD_1h.csv:2".into(),
                detail: "sample finding".into(),
            }
            .into(),
        ),
    ]
}

/// A decision that led to no order (FORMAT.md §9a's committed example): the
/// golden entry's glass box, rejected by a risk check, with no sizing. Its
/// schema-2 record keeps the fired signals and the glass box's digest.
pub fn golden_rejected_decision() -> Decision {
    let (_, entry) = golden_entry_decision(&golden_ids()).remove(0);
    let Event::Decision(mut decision) = entry else {
        panic!("the golden entry decision is a Decision")
    };
    decision.sizing = None;
    decision.outcome = DecisionOutcome::Rejected {
        reason_code: "rr_after_costs".into(),
    };
    decision
}

/// Golden events: the decision to enter, with its glass box.
fn golden_entry_decision(ids: &GoldenIds) -> Vec<(UnixMs, Event)> {
    let config_hash = ids.config_hash;
    vec![(
        t(4),
        Decision {
            symbol: "BTC-USD".into(),
            as_of_ms: t(4),
            candle_seq: 2,
            glass: Glass::Full(GlassBox {
                regime: "trend".into(),
                indicators: vec![
                    Indicator {
                        name: "donchian_high".into(),
                        value: Some(d("104400")),
                    },
                    Indicator {
                        name: "atr".into(),
                        value: None,
                    },
                ],
                signals: vec![SignalOutput {
                    name: "breakout".into(),
                    fired: true,
                    strength: d("0.8"),
                    confidence: d("0.6"),
                    entry: Some(d("104500")),
                    stop: Some(d("102361")),
                    take_profit: Some(d("108778")),
                    note: "close above 20-bar high".into(),
                }],
                risk_checks: vec![RiskCheck {
                    code: "min_notional".into(),
                    passed: true,
                    detail: "72.00 >= 1.00".into(),
                }],
            }),
            sizing: Some(Sizing {
                capital: d("500"),
                risk_fraction: d("0.01"),
                risk_budget: d("5"),
                entry: d("104500"),
                stop_trigger: d("102361"),
                worst_case_fill: d("97242.95"),
                risk_per_unit: d("7257.05"),
                quantity_raw: d("0.000688985"),
                quantity: d("0.00068898"),
                notional: d("71.99841"),
                multiplier: d("1"),
            }),
            outcome: DecisionOutcome::Enter,
            config_hash: Some(config_hash),
        }
        .into(),
    )]
}

/// Golden events: the bracketed entry is placed and acknowledged.
fn golden_entry_order(ids: &GoldenIds) -> Vec<(UnixMs, Event)> {
    let coid = &ids.coid;
    vec![
        (
            t(4),
            OrderPlaced {
                client_order_id: coid.clone(),
                decision_seq: 4,
                product_id: "BTC-USD".into(),
                side: Side::Buy,
                order_type: OrderType::Limit,
                purpose: OrderPurpose::Entry,
                limit_price: Some(d("104500")),
                stop_trigger: None,
                base_size: d("0.00068898"),
                post_only: false,
                bracket: Some(BracketLegs {
                    take_profit_limit: d("108778"),
                    stop_trigger: d("102361"),
                    stop_limit: d("97242.95"),
                }),
                payload: "{}".into(),
            }
            .into(),
        ),
        (
            t(4),
            EngineTransition {
                symbol: "BTC-USD".into(),
                from: EngineState::Idle,
                to: EngineState::EntryPending,
                reason: "bracket entry placed".into(),
                cause_seq: 5,
            }
            .into(),
        ),
        (
            t(4),
            OrderAcknowledged {
                client_order_id: coid.clone(),
                order_seq: 5,
                exchange_order_id: "sim-1".into(),
            }
            .into(),
        ),
        (
            t(4),
            BracketVerified {
                client_order_id: coid.clone(),
                order_seq: 5,
                take_profit_order_id: "sim-1-tp".into(),
                stop_order_id: "sim-1-sl".into(),
            }
            .into(),
        ),
    ]
}

/// Golden events: the entry fills, protected, and the next candle closes.
fn golden_position(ids: &GoldenIds) -> Vec<(UnixMs, Event)> {
    let coid = &ids.coid;
    vec![
        (
            t(8),
            candle(t(4), ["104550", "105000", "104400", "104900", "9.75"]).into(),
        ),
        (
            t(8),
            Fill {
                client_order_id: coid.clone(),
                order_seq: 5,
                fill_id: "sim-1-f1".into(),
                leg: FillLeg::Entry,
                side: Side::Buy,
                price: d("104500"),
                size: d("0.00068898"),
                fee: d("0.2879933"),
                liquidity: Liquidity::Maker,
            }
            .into(),
        ),
        (
            t(8),
            EngineTransition {
                symbol: "BTC-USD".into(),
                from: EngineState::EntryPending,
                to: EngineState::PositionOpen,
                reason: "entry filled".into(),
                cause_seq: 10,
            }
            .into(),
        ),
        (
            t(12),
            Fill {
                client_order_id: coid.clone(),
                order_seq: 5,
                fill_id: "sim-1-tp-f1".into(),
                leg: FillLeg::TakeProfit,
                side: Side::Sell,
                price: d("108778"),
                size: d("0.00068898"),
                fee: d("0.2997760"),
                liquidity: Liquidity::Maker,
            }
            .into(),
        ),
        (
            t(12),
            Reconciliation {
                symbol: "BTC-USD".into(),
                broker_position: d("0"),
                our_position: d("0.00068898"),
                broker_open_orders: vec![],
                our_open_orders: vec!["sim-1-sl".into()],
                outcome: ReconcileOutcome::ExitDetected,
                detail: "take-profit filled".into(),
            }
            .into(),
        ),
    ]
}

/// Golden events: the take-profit fills and the trade is closed.
fn golden_take_profit(ids: &GoldenIds) -> Vec<(UnixMs, Event)> {
    let coid = &ids.coid;
    vec![
        (
            t(12),
            EngineTransition {
                symbol: "BTC-USD".into(),
                from: EngineState::PositionOpen,
                to: EngineState::Reconcile,
                reason: "exit detected".into(),
                cause_seq: 12,
            }
            .into(),
        ),
        (
            t(12),
            TradeClosed {
                trade_id: "T-BTC-USD-5".into(),
                symbol: "BTC-USD".into(),
                entry_client_order_id: coid.clone(),
                entry_order_seq: 5,
                entry_fill_seq: 10,
                exit_fill_seq: 12,
                entry_ms: t(8),
                exit_ms: t(12),
                entry_price: d("104500"),
                exit_price: d("108778"),
                size: d("0.00068898"),
                initial_stop: d("102361"),
                exit_reason: ExitReason::TakeProfit,
                fees: d("0.5877693"),
                slippage: d("0"),
                gross_pnl: d("2.94745644"),
                net_pnl: d("2.35968714"),
                theoretical_r: d("2.0"),
                realized_r: d("0.4719"),
            }
            .into(),
        ),
        (
            t(12),
            EngineTransition {
                symbol: "BTC-USD".into(),
                from: EngineState::Reconcile,
                to: EngineState::Idle,
                reason: "trade finalized".into(),
                cause_seq: 15,
            }
            .into(),
        ),
        (
            t(16),
            OrderRejected {
                client_order_id: "ANX4_run00001_BTCUSD_20240101T1600_00000000".into(),
                order_seq: 5,
                reason: "INSUFFICIENT_FUND".into(),
            }
            .into(),
        ),
    ]
}

/// Golden events: a rejected and a cancelled order, a fail-closed symbol reset by an operator.
fn golden_failures(_ids: &GoldenIds) -> Vec<(UnixMs, Event)> {
    vec![
        (
            t(16),
            OrderCancelled {
                client_order_id: "ANX4_run00001_BTCUSD_20240101T1600_00000001".into(),
                order_seq: 5,
                reason: "time to live expired".into(),
            }
            .into(),
        ),
        (
            t(16),
            FailClosed {
                symbol: "BTC-USD".into(),
                cause_seq: 17,
                reason: "protection not confirmed".into(),
            }
            .into(),
        ),
        (
            t(20),
            OperatorReset {
                symbol: "BTC-USD".into(),
                operator: "ops".into(),
                reason: "checked by hand".into(),
            }
            .into(),
        ),
        (
            t(20),
            Checkpoint {
                through_seq: 20,
                state_hash: Hash32(*blake3::hash(b"state").as_bytes()),
            }
            .into(),
        ),
        (
            t(20),
            Recovered {
                segment: "seg-00000000000000000001.anxj".into(),
                offset: 3931,
                bytes_dropped: 17,
                last_good_seq: 21,
                reason: "incomplete record".into(),
            }
            .into(),
        ),
    ]
}

/// Golden events: a feed fault, unconfirmed protection with its receipt and
/// its cancel request.
fn golden_late_answers(_ids: &GoldenIds) -> Vec<(UnixMs, Event)> {
    vec![
        (
            t(24),
            DataQuality {
                symbol: "BTC-USD".into(),
                granularity_s: 14_400,
                issue: QualityIssue::FeedFault { attempts: 6 },
                source: "https://api.coinbase.com/api/v3/brokerage/market/products/BTC-USD/candles"
                    .into(),
                detail: "HTTP 503 Service Unavailable".into(),
            }
            .into(),
        ),
        (
            t(24),
            BracketUnconfirmed {
                client_order_id: "ANX4_run00001_BTCUSD_20240102T0000_00000002".into(),
                order_seq: 23,
                reason: "attached take-profit and stop not found".into(),
            }
            .into(),
        ),
        (
            t(24),
            AnswerReceipt {
                answer_seq: 24,
                broker_time_ms: t(24) - 1_500,
                raw_blake3: Hash32(*blake3::hash(b"{\"success\":true}").as_bytes()),
            }
            .into(),
        ),
        (
            t(24),
            CancelRequested {
                client_order_id: "ANX4_run00001_BTCUSD_20240102T0000_00000002".into(),
                order_seq: 23,
                reason: "shutting down".into(),
            }
            .into(),
        ),
    ]
}

/// Golden events: an operator's halt, a finding and the run's end.
fn golden_closing(_ids: &GoldenIds) -> Vec<(UnixMs, Event)> {
    vec![
        (
            t(24),
            OperatorAction {
                command: OperatorCommand::Halt,
                symbol: String::new(),
                operator: "ops".into(),
                reason: "exchange maintenance".into(),
            }
            .into(),
        ),
        (
            t(24),
            Finding {
                check: "edge_decay.expectancy_drop".into(),
                symbol: String::new(),
                raised: true,
                value: Some(Decimal::new(6250, 2)),
                limit: Decimal::from(50),
                detail: "expectancy -0.3 R against the reference's -0.8 R".into(),
            }
            .into(),
        ),
        (
            t(24),
            RunCompleted {
                run_id: "run00001".into(),
                end_ms: t(24),
                candles: 2,
                reason: "end of data".into(),
            }
            .into(),
        ),
        (
            t(24),
            Session {
                action: SessionAction::Stopped,
                reason: "SIGTERM".into(),
            }
            .into(),
        ),
    ]
}
