//! `anx why`: the full causal trail of a trade or an order – the candle the
//! decision read, its indicators, signals, risk checks and sizing, the order
//! payload, acknowledgement, bracket verification, fills and the exit – found
//! through the id index and read record by record (each checked against its
//! predecessor's hash).

use crate::output::market_time;
use crate::store::Store;
use anx_journal::reader::SegmentFileInfo;
use anx_journal::{DecisionOutcome, Event, Glass, GlassBox, Seq, StoredEvent};
use anx_projections::model::HOUR_MS;
use anyhow::{anyhow, bail, Context, Result};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// What an id turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Trade,
    ClientOrderId,
    OrderId,
}

impl IdKind {
    pub fn name(self) -> &'static str {
        match self {
            IdKind::Trade => "trade",
            IdKind::ClientOrderId => "client_order_id",
            IdKind::OrderId => "order_id",
        }
    }
}

pub struct Trail {
    pub id: String,
    pub kind: IdKind,
    pub events: Vec<StoredEvent>,
    /// The run's configuration (its `RunStarted`, seq 1): the cost model a
    /// fill's fee is compared with.
    pub config: Option<anx_projections::engine::config::Config>,
    /// The run's configuration hash as journaled (`RunStarted`): what a
    /// schema-2 decision, which does not repeat it, is shown with.
    pub config_hash: Option<anx_journal::Hash32>,
}

fn read(
    store: &Store,
    journal: &Path,
    segments: &[SegmentFileInfo],
    seq: Seq,
) -> Result<StoredEvent> {
    Ok(store.read_record(journal, segments, seq)?.0)
}

/// Finds the trail of `id` (a trade id, a client order id or an exchange order id).
pub fn lookup(
    store: &Store,
    journal: &Path,
    segments: &[SegmentFileInfo],
    id: &str,
) -> Result<Trail> {
    let (kind, order_seqs) = {
        let trade = store.seqs(&format!("t:{id}"))?;
        if let Some(&closed) = trade.first() {
            let record = read(store, journal, segments, closed)?;
            let Event::TradeClosed(e) = &record.event else {
                bail!(
                    "index points trade {id} at seq {closed}, which is a {}",
                    record.event.kind()
                );
            };
            (
                IdKind::Trade,
                store.seqs(&format!("c:{}", e.entry_client_order_id))?,
            )
        } else {
            let direct = store.seqs(&format!("c:{id}"))?;
            if !direct.is_empty() {
                (IdKind::ClientOrderId, direct)
            } else {
                let acks = store.seqs(&format!("x:{id}"))?;
                let Some(&ack) = acks.first() else {
                    bail!("no trade, client_order_id or order id {id:?} in this journal");
                };
                let record = read(store, journal, segments, ack)?;
                let Event::OrderAcknowledged(e) = &record.event else {
                    bail!(
                        "index points order id {id} at seq {ack}, which is a {}",
                        record.event.kind()
                    );
                };
                (
                    IdKind::OrderId,
                    store.seqs(&format!("c:{}", e.client_order_id))?,
                )
            }
        }
    };
    let mut events: BTreeMap<Seq, StoredEvent> = BTreeMap::new();
    for seq in order_seqs {
        let record = read(store, journal, segments, seq)?;
        if let Event::OrderPlaced(order) = &record.event {
            let decision = read(store, journal, segments, order.decision_seq)?;
            if let Event::Decision(d) = &decision.event {
                let candle = read(store, journal, segments, d.candle_seq)?;
                events.insert(candle.seq, candle);
            }
            events.insert(decision.seq, decision);
        }
        events.insert(record.seq, record);
    }
    if events.is_empty() {
        return Err(anyhow!("the index lists no events for {id:?}"));
    }
    let (config, config_hash) = match read(store, journal, segments, 1).map(|r| r.event) {
        Ok(Event::RunStarted(run)) => (
            crate::replay_cmd::run_config(&run).ok(),
            Some(run.config_hash),
        ),
        _ => (None, None),
    };
    Ok(Trail {
        id: id.to_string(),
        kind,
        events: events.into_values().collect(),
        config,
        config_hash,
    })
}

fn d(value: Decimal) -> String {
    value.normalize().to_string()
}

fn od(value: Option<Decimal>) -> String {
    value.map_or("-".into(), d)
}

/// A price as shown: exact, or rounded to the product's quote increment
/// (`tick`) for a reader (the HTML report) – a signal's level is computed
/// exactly and can run to 28 decimals.
fn p(value: Decimal, tick: Option<Decimal>) -> String {
    match tick {
        Some(tick) if tick > Decimal::ZERO => d((value / tick).round() * tick),
        _ => d(value),
    }
}

fn op(value: Option<Decimal>, tick: Option<Decimal>) -> String {
    value.map_or("-".into(), |v| p(v, tick))
}

/// How a trail is written: the run's configuration (for a fill's fee against
/// the cost model), its configuration hash, and the quote increment prices
/// are rounded to (`None`: exact).
#[derive(Clone, Copy)]
struct Style<'a> {
    config: Option<&'a anx_projections::engine::config::Config>,
    config_hash: Option<anx_journal::Hash32>,
    tick: Option<Decimal>,
}

/// A fill's fee against the cost model's estimate, when they differ (a real
/// exchange's commission; the simulator charges the model's own).
fn fee_against_model(
    f: &anx_journal::Fill,
    config: Option<&anx_projections::engine::config::Config>,
) -> String {
    let Some(config) = config else {
        return String::new();
    };
    let model =
        anx_projections::engine::cost::CostModel::new(config).fee(f.price * f.size, f.liquidity);
    if model == f.fee {
        return String::new();
    }
    format!(
        " (cost model {}, charged {} more)",
        d(model),
        d(f.fee - model)
    )
}

/// A decision, in words: its outcome and glass box (kept inline for a
/// decision that led to an order, in every schema).
fn describe_decision(
    e: &anx_journal::Decision,
    out: &mut String,
    run_config_hash: Option<anx_journal::Hash32>,
    tick: Option<Decimal>,
) {
    let outcome = match &e.outcome {
        DecisionOutcome::Hold => "hold".to_string(),
        DecisionOutcome::Enter => "enter".to_string(),
        DecisionOutcome::Exit { reason } => format!("exit ({reason:?})"),
        DecisionOutcome::Rejected { reason_code } => format!("rejected: {reason_code}"),
    };
    // Schema 2 declares the configuration once, in `RunStarted`.
    let config_hash = e
        .config_hash
        .or(run_config_hash)
        .map_or("-".to_string(), |h| h.to_hex());
    let regime = e.glass.full().map_or("-", |g| g.regime.as_str());
    let _ = writeln!(
        out,
        "decision on {} (candle seq {}): {outcome}; regime {regime}; config {config_hash}",
        e.symbol, e.candle_seq
    );
    match &e.glass {
        Glass::Full(glass) => describe_glass(glass, out, tick),
        Glass::Committed { fired, digest } => {
            let fired: Vec<&str> = fired.iter().map(|f| f.as_str()).collect();
            let _ = writeln!(
                out,
                "      glass box not kept inline: fired [{}], digest {digest}",
                fired.join(", ")
            );
        }
    }
    if let Some(s) = &e.sizing {
        let _ = writeln!(out, "      sizing: capital {} x risk {} = budget {}; entry {}, stop trigger {} -> worst-case fill {}; risk/unit {}; quantity {} -> {} (rounded); notional {}; multiplier {}",
            d(s.capital), d(s.risk_fraction), d(s.risk_budget), p(s.entry, tick), p(s.stop_trigger, tick), p(s.worst_case_fill, tick), p(s.risk_per_unit, tick), d(s.quantity_raw), d(s.quantity), d(s.notional), d(s.multiplier));
    }
}

/// A glass box's indicators, signals and risk checks, a line each.
pub fn describe_glass(e: &GlassBox, out: &mut String, tick: Option<Decimal>) {
    let indicators: Vec<String> = e
        .indicators
        .iter()
        .map(|i| format!("{}={}", i.name, od(i.value)))
        .collect();
    let _ = writeln!(out, "      indicators: {}", indicators.join(", "));
    for s in &e.signals {
        let note = if s.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.note)
        };
        let _ = writeln!(
            out,
            "      signal {}: {} strength {} confidence {} entry {} stop {} take-profit {}{note}",
            s.name,
            if s.fired { "FIRED" } else { "quiet" },
            d(s.strength),
            d(s.confidence),
            op(s.entry, tick),
            op(s.stop, tick),
            op(s.take_profit, tick)
        );
    }
    for r in &e.risk_checks {
        let detail = if r.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", r.detail)
        };
        let _ = writeln!(
            out,
            "      risk {} {}{detail}",
            r.code,
            if r.passed { "pass" } else { "FAIL" }
        );
    }
}

/// One event of the trail, in words.
fn describe(event: &Event, out: &mut String, style: Style) {
    let tick = style.tick;
    match event {
        Event::Candle(c) => {
            let _ = writeln!(
                out,
                "{} {}s candle opened {}: open {} high {} low {} close {} volume {}",
                c.symbol,
                c.granularity_s,
                market_time(c.open_ms),
                p(c.open, tick),
                p(c.high, tick),
                p(c.low, tick),
                p(c.close, tick),
                d(c.volume)
            );
        }
        Event::Decision(e) => describe_decision(e, out, style.config_hash, tick),
        Event::OrderPlaced(o) => {
            let _ = writeln!(
                out,
                "order {} placed: {:?} {:?} {:?} {} {} limit {} stop {} post-only {}",
                o.client_order_id,
                o.purpose,
                o.side,
                o.order_type,
                d(o.base_size),
                o.product_id,
                op(o.limit_price, tick),
                op(o.stop_trigger, tick),
                o.post_only
            );
            if let Some(b) = &o.bracket {
                let _ = writeln!(
                    out,
                    "      bracket: take-profit {} / stop trigger {} (stop-limit {})",
                    p(b.take_profit_limit, tick),
                    p(b.stop_trigger, tick),
                    p(b.stop_limit, tick)
                );
            }
            if !o.payload.is_empty() {
                let _ = writeln!(out, "      payload: {}", o.payload);
            }
        }
        Event::OrderAcknowledged(a) => {
            let _ = writeln!(
                out,
                "acknowledged: {} is exchange order {}",
                a.client_order_id, a.exchange_order_id
            );
        }
        Event::OrderRejected(r) => {
            let _ = writeln!(out, "rejected: {}: {}", r.client_order_id, r.reason);
        }
        Event::OrderCancelled(c) => {
            let _ = writeln!(out, "cancelled: {}: {}", c.client_order_id, c.reason);
        }
        Event::BracketVerified(b) => {
            let _ = writeln!(
                out,
                "bracket verified: take-profit {} and stop {} are live",
                b.take_profit_order_id, b.stop_order_id
            );
        }
        Event::Fill(f) => {
            let _ = writeln!(
                out,
                "fill {} ({:?} leg, {:?}): {:?} {} @ {} fee {}{} ({:?})",
                f.fill_id,
                f.leg,
                f.liquidity,
                f.side,
                d(f.size),
                p(f.price, tick),
                d(f.fee),
                fee_against_model(f, style.config),
                f.client_order_id
            );
        }
        Event::TradeClosed(t) => {
            let _ = writeln!(out, "trade {} closed ({:?}): {} {} from {} to {}; gross {} fees {} slippage {} net {}; R theoretical {} realized {}; held {} h",
                t.trade_id, t.exit_reason, d(t.size), t.symbol, p(t.entry_price, tick), p(t.exit_price, tick), d(t.gross_pnl), d(t.fees), d(t.slippage), d(t.net_pnl), d(t.theoretical_r), d(t.realized_r), (t.exit_ms - t.entry_ms) / HOUR_MS);
        }
        Event::EngineTransition(t) => {
            let _ = writeln!(
                out,
                "{}: {} -> {} ({})",
                t.symbol,
                t.from.name(),
                t.to.name(),
                t.reason
            );
        }
        other => {
            let _ = writeln!(out, "{}", other.kind());
        }
    }
}

/// The trail as text, every number exact; with `lookup_ms`, a closing line
/// says how long the lookup took.
pub fn trail_text(trail: &Trail, lookup_ms: Option<f64>) -> String {
    trail_text_with(trail, lookup_ms, None)
}

/// The trail as text with its prices rounded to the product's quote increment
/// (the run's configuration's product spec): for the HTML report.
pub fn trail_text_rounded(trail: &Trail) -> String {
    let symbol = trail.events.iter().find_map(|e| match &e.event {
        Event::Candle(c) => Some(c.symbol.as_str()),
        Event::Decision(d) => Some(d.symbol.as_str()),
        Event::OrderPlaced(o) => Some(o.product_id.as_str()),
        Event::TradeClosed(t) => Some(t.symbol.as_str()),
        _ => None,
    });
    let tick = trail
        .config
        .as_ref()
        .zip(symbol)
        .and_then(|(config, symbol)| config.product(symbol))
        .map(|spec| spec.quote_increment);
    trail_text_with(trail, None, tick)
}

fn trail_text_with(trail: &Trail, lookup_ms: Option<f64>, tick: Option<Decimal>) -> String {
    let style = Style {
        config: trail.config.as_ref(),
        config_hash: trail.config_hash,
        tick,
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "why {} ({}): {} events",
        trail.id,
        trail.kind.name(),
        trail.events.len()
    );
    for event in &trail.events {
        let _ = write!(
            out,
            "seq {:<8} {}  {:<17} ",
            event.seq,
            market_time(event.market_ms),
            event.event.kind().name()
        );
        describe(&event.event, &mut out, style);
    }
    if let Some(lookup_ms) = lookup_ms {
        let _ = writeln!(
            out,
            "lookup took {lookup_ms:.3} ms (each record checked against its predecessor's hash)"
        );
    }
    out
}

pub fn trail_json(trail: &Trail, lookup_ms: f64) -> Value {
    let events: Vec<Value> = trail
        .events
        .iter()
        .map(|e| {
            json!({
                "seq": e.seq,
                "hash": e.hash.to_hex(),
                "kind": e.event.kind().name(),
                "market_time": market_time(e.market_ms),
                "body": serde_json::to_value(&e.event).unwrap_or(Value::Null),
            })
        })
        .collect();
    json!({
        "id": trail.id,
        "kind": trail.kind.name(),
        "events": events,
        "lookup_ms": (lookup_ms * 1000.0).round() / 1000.0,
    })
}

/// `anx why DIR --decision SEQ`: the decision at `seq` with its whole glass
/// box – as journaled, or recomputed by re-driving the journal and proven to
/// hash to the digest a schema-2 record committed to. A glass box this build
/// does not reproduce is an error naming the seq, and nothing is shown.
pub fn decision(journal: &Path, seq: Seq, json: bool) -> Result<std::process::ExitCode> {
    let started = std::time::Instant::now();
    let full = full_decision(journal, seq)?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if json {
        println!(
            "{}",
            decision_json(&full.stored, &full.decision, &full.source, elapsed_ms)
        );
    } else {
        print!(
            "{}",
            decision_text(
                &full.stored,
                &full.decision,
                &full.source,
                Some(full.run_config_hash),
                elapsed_ms
            )
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// A journaled decision with its whole glass box.
pub struct FullDecision {
    /// The record as journaled.
    pub stored: anx_journal::StoredEvent,
    /// The decision shown: the record's, its glass box recomputed if the
    /// record committed to it.
    pub decision: anx_journal::Decision,
    source: GlassSource,
    run_config_hash: anx_journal::Hash32,
}

/// The decision at `seq` with its whole glass box: as journaled, or
/// recomputed by re-driving the journal and proven to hash to the digest the
/// record committed to (else an error naming the seq).
pub fn full_decision(journal: &Path, seq: Seq) -> Result<FullDecision> {
    use anx_replays::recompute::{read_upto, recompute_decision, RecomputeError};
    let upto = read_upto(journal, seq)?;
    let stored = upto
        .events
        .last()
        .cloned()
        .context("an event at the seq read")?;
    let Event::Decision(journaled) = &stored.event else {
        bail!("seq {seq} is a {}, not a Decision", stored.event.kind());
    };
    let run_config_hash = upto.run.config_hash;
    let (mut shown, source) = match &journaled.glass {
        Glass::Full(_) => (journaled.clone(), GlassSource::Journaled),
        Glass::Committed { digest, .. } => {
            let scratch = Scratch::new(seq)?;
            let proven = recompute_decision(upto, &scratch.0).map_err(|e| match e {
                RecomputeError::Diverged { seq: at, .. } if at == seq => anyhow!(
                    "seq {seq}: this build's glass box for the decision does not hash to the \
                     digest the journal committed to ({digest}); it is not shown (the journal \
                     was written by another build of anx, or altered): {e}"
                ),
                other => anyhow!(other),
            })?;
            let source = GlassSource::Recomputed {
                digest: proven.digest,
                events: proven.events_redriven,
            };
            (proven.decision, source)
        }
    };
    // The configuration hash shown is the journal's: the record's own
    // (schema 1) or the run's (schema 2), never one worked out here.
    shown.config_hash = journaled.config_hash;
    Ok(FullDecision {
        stored,
        decision: shown,
        source,
        run_config_hash,
    })
}

/// Where a shown glass box comes from.
enum GlassSource {
    Journaled,
    Recomputed {
        digest: anx_journal::Hash32,
        events: usize,
    },
}

/// A directory for a recomputation's re-drive, in the system's temporary
/// directory (the journal's own may be read-only), removed when done.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(seq: Seq) -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("anx-recompute-{}-{seq}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn decision_text(
    stored: &StoredEvent,
    shown: &anx_journal::Decision,
    source: &GlassSource,
    run_config_hash: Option<anx_journal::Hash32>,
    elapsed_ms: f64,
) -> String {
    let mut out = format!(
        "seq {:<8} {}  {:<17} ",
        stored.seq,
        market_time(stored.market_ms),
        "Decision"
    );
    describe_decision(shown, &mut out, run_config_hash, None);
    let _ = match source {
        GlassSource::Journaled => writeln!(
            out,
            "glass box journaled whole (schema {}); read in {elapsed_ms:.1} ms",
            stored.schema_version
        ),
        GlassSource::Recomputed { digest, events } => writeln!(
            out,
            "glass box recomputed by this build, re-driving {events} events in {elapsed_ms:.1} ms, \
             and proven: its BLAKE3 is {digest}, the digest journaled at seq {}",
            stored.seq
        ),
    };
    out
}

fn decision_json(
    stored: &StoredEvent,
    shown: &anx_journal::Decision,
    source: &GlassSource,
    elapsed_ms: f64,
) -> Value {
    let (name, digest, events) = match source {
        GlassSource::Journaled => ("journaled", None, None),
        GlassSource::Recomputed { digest, events } => {
            ("recomputed", Some(digest.to_hex()), Some(*events))
        }
    };
    json!({
        "seq": stored.seq,
        "market_ms": stored.market_ms,
        "market_time": market_time(stored.market_ms),
        "schema_version": stored.schema_version,
        "decision": shown,
        "glass_source": name,
        "glass_digest": digest,
        "events_redriven": events,
        "elapsed_ms": elapsed_ms,
    })
}
