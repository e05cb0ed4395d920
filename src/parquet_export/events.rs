//! Each journaled event as a row of its kind's file: the envelope (`seq`,
//! `hash`, `schema_version`, `market_time`), then the body's fields under the
//! names `anx journal export --format jsonl` gives them.
//!
//! Flattening, the same for every kind: a nested record's fields are columns
//! `outer_inner` (`sizing_notional`, `bracket_stop_trigger`), null when the
//! record is absent; an enum with data is its variant's name in `outer` and
//! the variant's fields in `outer_field` (`outcome` = `exit`,
//! `outcome_reason` = `stop_loss`). Lists stay lists: of strings, or of
//! records (a decision's indicators, signals and risk checks). Times (`_ms`
//! fields that are instants) are UTC timestamps under their JSON names;
//! `age_ms`, a duration, stays an integer.

use super::table::Row;
use anx_journal::{
    AnswerReceipt, BracketLegs, BracketUnconfirmed, BracketVerified, CancelRequested, Candle,
    Checkpoint, DataQuality, Decision, DecisionOutcome, EngineTransition, Event, FailClosed, Fill,
    Finding, Glass, Indicator, OperatorAction, OperatorReset, OrderAcknowledged, OrderCancelled,
    OrderPlaced, OrderRejected, QualityIssue, Reconciliation, Recovered, RiskCheck, RunCompleted,
    RunStarted, Session, SignalOutput, Sizing, TradeClosed,
};
use anx_journal::{Hash32, StreamedEvent};
use rust_decimal::Decimal;
use serde::Serialize;

/// One event as a row: the envelope, then its body.
pub fn event_row(stored: &StreamedEvent, row: &mut Row) {
    row.u64("seq", stored.seq);
    row.text("hash", stored.hash.to_hex().as_str());
    row.u16("schema_version", stored.schema_version);
    row.time("market_time", stored.market_ms);
    body_row(&stored.event, row);
}

fn body_row(event: &Event, row: &mut Row) {
    match event {
        Event::RunStarted(e) => run_started(e, row),
        Event::Candle(e) => candle(e, row),
        Event::DataQuality(e) => data_quality(e, row),
        Event::Decision(e) => decision(e, row),
        Event::OrderPlaced(e) => order_placed(e, row),
        Event::OrderAcknowledged(e) => order_acknowledged(e, row),
        Event::OrderRejected(OrderRejected {
            client_order_id,
            order_seq,
            reason,
        })
        | Event::OrderCancelled(OrderCancelled {
            client_order_id,
            order_seq,
            reason,
        })
        | Event::CancelRequested(CancelRequested {
            client_order_id,
            order_seq,
            reason,
        })
        | Event::BracketUnconfirmed(BracketUnconfirmed {
            client_order_id,
            order_seq,
            reason,
        }) => order_reason(client_order_id, *order_seq, reason, row),
        Event::BracketVerified(e) => bracket_verified(e, row),
        Event::Fill(e) => fill(e, row),
        Event::Reconciliation(e) => reconciliation(e, row),
        Event::EngineTransition(e) => engine_transition(e, row),
        Event::TradeClosed(e) => trade_closed(e, row),
        Event::FailClosed(e) => fail_closed(e, row),
        Event::OperatorReset(e) => operator_reset(e, row),
        Event::Checkpoint(e) => checkpoint(e, row),
        Event::Recovered(e) => recovered(e, row),
        Event::RunCompleted(e) => run_completed(e, row),
        Event::Session(e) => session(e, row),
        Event::OperatorAction(e) => operator_action(e, row),
        Event::AnswerReceipt(e) => answer_receipt(e, row),
        Event::Finding(e) => finding(e, row),
    }
}

/// An enum's JSON name (its serde name), as the JSON export writes it.
fn name_of(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        other => format!("{other:?}"),
    }
}

fn hex(hash: &Hash32) -> String {
    hash.to_hex()
}

fn run_started(e: &RunStarted, row: &mut Row) {
    row.text("run_id", e.run_id.as_str());
    row.text("run_mode", name_of(&e.run_mode).as_str());
    row.text("capital_mode", name_of(&e.capital_mode).as_str());
    row.text("market_time_basis", name_of(&e.market_time_basis).as_str());
    row.text("data_integrity", name_of(&e.data_integrity).as_str());
    row.text("created_by", e.created_by.as_str());
    row.text("git_sha", e.git_sha.as_str());
    row.text("config_hash", hex(&e.config_hash).as_str());
    row.text("config_text", e.config_text.as_str());
    row.texts("symbols", Some(&e.symbols));
    row.u32("granularity_s", e.granularity_s);
    row.time("start_ms", e.start_ms);
    row.time("end_ms", e.end_ms);
    row.dec("starting_capital", e.starting_capital);
}

fn candle(e: &Candle, row: &mut Row) {
    row.symbol("symbol", e.symbol.as_str());
    row.u32("granularity_s", e.granularity_s);
    row.time("open_ms", e.open_ms);
    row.dec("open", e.open);
    row.dec("high", e.high);
    row.dec("low", e.low);
    row.dec("close", e.close);
    row.dec("volume", e.volume);
}

fn data_quality(e: &DataQuality, row: &mut Row) {
    row.symbol("symbol", e.symbol.as_str());
    row.u32("granularity_s", e.granularity_s);
    quality_issue(&e.issue, row);
    row.text("source", e.source.as_str());
    row.text("detail", e.detail.as_str());
}

/// A finding's variant and the union of every variant's fields.
#[derive(Default)]
struct IssueFields {
    after_ms: Option<i64>,
    before_ms: Option<i64>,
    missing_bars: Option<u64>,
    open_ms: Option<i64>,
    previous_ms: Option<i64>,
    volume: Option<Decimal>,
    newest_ms: Option<i64>,
    age_ms: Option<i64>,
    attempts: Option<u32>,
}

fn quality_issue(issue: &QualityIssue, row: &mut Row) {
    let mut f = IssueFields::default();
    let variant = match issue {
        QualityIssue::Gap {
            after_ms,
            before_ms,
            missing_bars,
        } => {
            (f.after_ms, f.before_ms) = (Some(*after_ms), Some(*before_ms));
            f.missing_bars = Some(*missing_bars);
            "gap"
        }
        QualityIssue::Duplicate { open_ms } => {
            f.open_ms = Some(*open_ms);
            "duplicate"
        }
        QualityIssue::OutOfOrder {
            open_ms,
            previous_ms,
        } => {
            (f.open_ms, f.previous_ms) = (Some(*open_ms), Some(*previous_ms));
            "out_of_order"
        }
        QualityIssue::VolumeAnomaly { open_ms, volume } => {
            (f.open_ms, f.volume) = (Some(*open_ms), Some(*volume));
            "volume_anomaly"
        }
        QualityIssue::InvalidCandle { open_ms } => {
            f.open_ms = Some(*open_ms);
            "invalid_candle"
        }
        QualityIssue::Stale { newest_ms, age_ms } => {
            (f.newest_ms, f.age_ms) = (Some(*newest_ms), Some(*age_ms));
            "stale"
        }
        QualityIssue::FeedFault { attempts } => {
            f.attempts = Some(*attempts);
            "feed_fault"
        }
    };
    row.text("issue", variant);
    row.time("issue_after_ms", f.after_ms);
    row.time("issue_before_ms", f.before_ms);
    row.u64("issue_missing_bars", f.missing_bars);
    row.time("issue_open_ms", f.open_ms);
    row.time("issue_previous_ms", f.previous_ms);
    row.dec("issue_volume", f.volume);
    row.time("issue_newest_ms", f.newest_ms);
    row.i64("issue_age_ms", f.age_ms);
    row.u32("issue_attempts", f.attempts);
}

/// A decision: its facts, its sizing, and its glass box – whole (a decision
/// that led to an order, or any schema-1 decision) or, for a schema-2
/// decision that led to none, the digest it commits to. `fired` is filled
/// either way (from the signals of a whole glass box).
fn decision(e: &Decision, row: &mut Row) {
    row.symbol("symbol", e.symbol.as_str());
    row.time("as_of_ms", e.as_of_ms);
    row.u64("candle_seq", e.candle_seq);
    let (outcome, reason, reason_code) = match &e.outcome {
        DecisionOutcome::Hold => ("hold", None, None),
        DecisionOutcome::Enter => ("enter", None, None),
        DecisionOutcome::Exit { reason } => ("exit", Some(reason.name()), None),
        DecisionOutcome::Rejected { reason_code } => ("rejected", None, Some(reason_code.as_str())),
    };
    row.text("outcome", outcome);
    row.text("outcome_reason", reason);
    row.text("outcome_reason_code", reason_code);
    sizing(e.sizing.as_ref(), row);
    let glass = e.glass.full();
    row.text("regime", glass.map(|g| g.regime.as_str()));
    row.records("indicators", glass.map(|g| &g.indicators[..]), indicator);
    row.records("signals", glass.map(|g| &g.signals[..]), signal);
    row.records("risk_checks", glass.map(|g| &g.risk_checks[..]), risk_check);
    row.texts("fired", Some(&e.glass.fired()));
    let digest = match &e.glass {
        Glass::Committed { digest, .. } => Some(hex(digest)),
        Glass::Full(_) => None,
    };
    row.text("glass_digest", digest.as_deref());
    row.text("config_hash", e.config_hash.as_ref().map(hex).as_deref());
}

fn sizing(s: Option<&Sizing>, row: &mut Row) {
    let field = |get: fn(&Sizing) -> Decimal| s.map(get);
    row.dec("sizing_capital", field(|s| s.capital));
    row.dec("sizing_risk_fraction", field(|s| s.risk_fraction));
    row.dec("sizing_risk_budget", field(|s| s.risk_budget));
    row.dec("sizing_entry", field(|s| s.entry));
    row.dec("sizing_stop_trigger", field(|s| s.stop_trigger));
    row.dec("sizing_worst_case_fill", field(|s| s.worst_case_fill));
    row.dec("sizing_risk_per_unit", field(|s| s.risk_per_unit));
    row.dec("sizing_quantity_raw", field(|s| s.quantity_raw));
    row.dec("sizing_quantity", field(|s| s.quantity));
    row.dec("sizing_notional", field(|s| s.notional));
    row.dec("sizing_multiplier", field(|s| s.multiplier));
}

fn indicator(i: Option<&Indicator>, row: &mut Row) {
    row.text("name", i.map(|i| i.name.as_str()));
    row.dec("value", i.and_then(|i| i.value));
}

fn signal(s: Option<&SignalOutput>, row: &mut Row) {
    row.text("name", s.map(|s| s.name.as_str()));
    row.bool("fired", s.map(|s| s.fired));
    row.dec("strength", s.map(|s| s.strength));
    row.dec("confidence", s.map(|s| s.confidence));
    row.dec("entry", s.and_then(|s| s.entry));
    row.dec("stop", s.and_then(|s| s.stop));
    row.dec("take_profit", s.and_then(|s| s.take_profit));
    row.text("note", s.map(|s| s.note.as_str()));
}

fn risk_check(c: Option<&RiskCheck>, row: &mut Row) {
    row.text("code", c.map(|c| c.code.as_str()));
    row.bool("passed", c.map(|c| c.passed));
    row.text("detail", c.map(|c| c.detail.as_str()));
}

fn order_placed(e: &OrderPlaced, row: &mut Row) {
    row.text("client_order_id", e.client_order_id.as_str());
    row.u64("decision_seq", e.decision_seq);
    row.symbol("product_id", e.product_id.as_str());
    row.text("side", name_of(&e.side).as_str());
    row.text("order_type", name_of(&e.order_type).as_str());
    row.text("purpose", name_of(&e.purpose).as_str());
    row.dec("limit_price", e.limit_price);
    row.dec("stop_trigger", e.stop_trigger);
    row.dec("base_size", e.base_size);
    row.bool("post_only", e.post_only);
    let leg = |get: fn(&BracketLegs) -> Decimal| e.bracket.as_ref().map(get);
    row.dec("bracket_take_profit_limit", leg(|b| b.take_profit_limit));
    row.dec("bracket_stop_trigger", leg(|b| b.stop_trigger));
    row.dec("bracket_stop_limit", leg(|b| b.stop_limit));
    row.text("payload", e.payload.as_str());
}

fn order_acknowledged(e: &OrderAcknowledged, row: &mut Row) {
    row.text("client_order_id", e.client_order_id.as_str());
    row.u64("order_seq", e.order_seq);
    row.text("exchange_order_id", e.exchange_order_id.as_str());
}

/// The four kinds that are an order and a reason: rejected, cancelled, a
/// cancel requested, protection unconfirmed.
fn order_reason(client_order_id: &str, order_seq: u64, reason: &str, row: &mut Row) {
    row.text("client_order_id", client_order_id);
    row.u64("order_seq", order_seq);
    row.text("reason", reason);
}

fn bracket_verified(e: &BracketVerified, row: &mut Row) {
    row.text("client_order_id", e.client_order_id.as_str());
    row.u64("order_seq", e.order_seq);
    row.text("take_profit_order_id", e.take_profit_order_id.as_str());
    row.text("stop_order_id", e.stop_order_id.as_str());
}

fn fill(e: &Fill, row: &mut Row) {
    row.text("client_order_id", e.client_order_id.as_str());
    row.u64("order_seq", e.order_seq);
    row.text("fill_id", e.fill_id.as_str());
    row.text("leg", name_of(&e.leg).as_str());
    row.text("side", name_of(&e.side).as_str());
    row.dec("price", e.price);
    row.dec("size", e.size);
    row.dec("fee", e.fee);
    row.text("liquidity", name_of(&e.liquidity).as_str());
}

fn reconciliation(e: &Reconciliation, row: &mut Row) {
    row.symbol("symbol", e.symbol.as_str());
    row.dec("broker_position", e.broker_position);
    row.dec("our_position", e.our_position);
    row.texts("broker_open_orders", Some(&e.broker_open_orders));
    row.texts("our_open_orders", Some(&e.our_open_orders));
    row.text("outcome", name_of(&e.outcome).as_str());
    row.text("detail", e.detail.as_str());
}

fn engine_transition(e: &EngineTransition, row: &mut Row) {
    row.symbol("symbol", e.symbol.as_str());
    row.text("from", e.from.name());
    row.text("to", e.to.name());
    row.text("reason", e.reason.as_str());
    row.u64("cause_seq", e.cause_seq);
}

fn trade_closed(e: &TradeClosed, row: &mut Row) {
    row.text("trade_id", e.trade_id.as_str());
    row.symbol("symbol", e.symbol.as_str());
    row.text("entry_client_order_id", e.entry_client_order_id.as_str());
    row.u64("entry_order_seq", e.entry_order_seq);
    row.u64("entry_fill_seq", e.entry_fill_seq);
    row.u64("exit_fill_seq", e.exit_fill_seq);
    row.time("entry_ms", e.entry_ms);
    row.time("exit_ms", e.exit_ms);
    row.dec("entry_price", e.entry_price);
    row.dec("exit_price", e.exit_price);
    row.dec("size", e.size);
    row.dec("initial_stop", e.initial_stop);
    row.text("exit_reason", e.exit_reason.name());
    row.dec("fees", e.fees);
    row.dec("slippage", e.slippage);
    row.dec("gross_pnl", e.gross_pnl);
    row.dec("net_pnl", e.net_pnl);
    row.dec("theoretical_r", e.theoretical_r);
    row.dec("realized_r", e.realized_r);
}

fn fail_closed(e: &FailClosed, row: &mut Row) {
    row.symbol("symbol", e.symbol.as_str());
    row.u64("cause_seq", e.cause_seq);
    row.text("reason", e.reason.as_str());
}

fn operator_reset(e: &OperatorReset, row: &mut Row) {
    row.symbol("symbol", e.symbol.as_str());
    row.text("operator", e.operator.as_str());
    row.text("reason", e.reason.as_str());
}

fn checkpoint(e: &Checkpoint, row: &mut Row) {
    row.u64("through_seq", e.through_seq);
    row.text("state_hash", hex(&e.state_hash).as_str());
}

fn recovered(e: &Recovered, row: &mut Row) {
    row.text("segment", e.segment.as_str());
    row.u64("offset", e.offset);
    row.u64("bytes_dropped", e.bytes_dropped);
    row.u64("last_good_seq", e.last_good_seq);
    row.text("reason", e.reason.as_str());
}

fn run_completed(e: &RunCompleted, row: &mut Row) {
    row.text("run_id", e.run_id.as_str());
    row.time("end_ms", e.end_ms);
    row.u64("candles", e.candles);
    row.text("reason", e.reason.as_str());
}

fn session(e: &Session, row: &mut Row) {
    row.text("action", name_of(&e.action).as_str());
    row.text("reason", e.reason.as_str());
}

fn operator_action(e: &OperatorAction, row: &mut Row) {
    row.text("command", e.command.name());
    row.symbol("symbol", e.symbol.as_str());
    row.text("operator", e.operator.as_str());
    row.text("reason", e.reason.as_str());
}

fn finding(e: &Finding, row: &mut Row) {
    row.text("check", e.check.as_str());
    row.symbol("symbol", e.symbol.as_str());
    row.bool("raised", e.raised);
    row.dec("value", e.value);
    row.dec("limit", e.limit);
    row.text("detail", e.detail.as_str());
}

fn answer_receipt(e: &AnswerReceipt, row: &mut Row) {
    row.u64("answer_seq", e.answer_seq);
    row.time("broker_time_ms", e.broker_time_ms);
    row.text("raw_blake3", hex(&e.raw_blake3).as_str());
}
