//! `anx compare A B [--json]`: two runs over the market time they share – the
//! decisions aligned by the candle they read (how many agree, the first that differs with both glass
//! boxes and the fields that differ), the trades matched by entry decision,
//! the reports' metrics side by side, and the thresholds of
//! `config/compare.toml` judged (exit 1 when B crosses one). The comparison
//! itself is `anx_projections::compare`; this reads the journals and renders.

use crate::cli::CompareArgs;
use crate::output::market_time;
use crate::render::{fmt_dec, fmt_opt, num, opt_num};
use crate::store::{self, LoadOptions};
use anx_journal::{Event, Reader, TailPolicy};
use anx_projections::compare::*;
use anx_projections::{Projection, Report};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

/// One side of the comparison, read from its journal.
struct Run {
    projection: Projection,
    decisions: BTreeMap<DecisionKey, DecisionPrint>,
}

/// Everything compared, ready to render.
struct Comparison {
    window: Window,
    decisions: DecisionAlignment,
    /// The first differing decision of each side, in full (when both made one).
    first: Option<(crate::why::FullDecision, crate::why::FullDecision)>,
    /// Every field of the first differing pair, side by side.
    fields: Vec<FieldDifference>,
    trades: TradeComparison,
    metrics: Vec<MetricRow>,
    verdicts: Vec<ThresholdVerdict>,
}

pub fn compare(args: &CompareArgs) -> Result<ExitCode> {
    let thresholds = read_thresholds(&args.thresholds)?;
    let a = read_run(&args.a)?;
    let b = read_run(&args.b)?;
    let comparison = compare_runs(&args.a, &a, &args.b, &b, &thresholds)?;
    if args.json {
        println!("{}", comparison_json(&comparison));
    } else {
        print!("{}", comparison_text(&comparison, &args.a, &args.b));
    }
    let crossed = comparison.verdicts.iter().any(|v| v.crossed);
    Ok(if crossed {
        ExitCode::from(crate::EXIT_CHECK_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The thresholds file (`config/compare.toml` by default), read and checked:
/// for `anx compare` and a trader's edge-decay watch alike.
pub fn read_thresholds(path: &Path) -> Result<Thresholds> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the thresholds {}", path.display()))?;
    Thresholds::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.trim()))
}

/// A run's projection and the fingerprint of each of its decisions.
fn read_run(dir: &Path) -> Result<Run> {
    crate::journal_cmd::check_dir(dir)?;
    let loaded = store::load(dir, LoadOptions::HEAD)
        .with_context(|| format!("cannot read {}", dir.display()))?;
    crate::journal_cmd::warn_all(&loaded.warnings);
    let mut reader = Reader::open_with(dir, TailPolicy::StopAtTorn)
        .with_context(|| format!("cannot read {}", dir.display()))?;
    let mut decisions = BTreeMap::new();
    // Candle seq → open time: a decision is placed by the candle it read.
    let mut candles: std::collections::HashMap<u64, i64> = std::collections::HashMap::new();
    while let Some(stored) = reader
        .next_event()
        .with_context(|| format!("cannot read {}", dir.display()))?
    {
        match &stored.event {
            Event::Candle(c) => {
                candles.insert(stored.seq, c.open_ms);
            }
            Event::Decision(e) => {
                let print = DecisionPrint::of(stored.seq, e)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
                let candle_ms = candles.get(&e.candle_seq).copied().with_context(|| {
                    format!(
                        "{}: the decision at seq {} reads candle seq {}, which is not a candle",
                        dir.display(),
                        stored.seq,
                        e.candle_seq
                    )
                })?;
                let mut place = 0;
                while decisions.contains_key(&(e.symbol.to_string(), candle_ms, place)) {
                    place += 1;
                }
                decisions.insert((e.symbol.to_string(), candle_ms, place), print);
            }
            _ => {}
        }
    }
    Ok(Run {
        projection: loaded.projection,
        decisions,
    })
}

fn compare_runs(
    a_dir: &Path,
    a: &Run,
    b_dir: &Path,
    b: &Run,
    thresholds: &Thresholds,
) -> Result<Comparison> {
    let Some(window) = Window::shared(&a.decisions, &b.decisions) else {
        bail!(
            "{} and {} share no market time: no decision of one lies within the other's",
            a_dir.display(),
            b_dir.display()
        );
    };
    let decisions = DecisionAlignment::of(&a.decisions, &b.decisions, window);
    let (first, fields) = first_difference(a_dir, b_dir, &decisions)?;
    let (sa, sb) = (&a.projection.state, &b.projection.state);
    let closed_a: Vec<_> = sa.closed_trades().collect();
    let closed_b: Vec<_> = sb.closed_trades().collect();
    let trades = TradeComparison::of(&closed_a, &closed_b, window);
    let metrics = metric_rows(
        &Report::from_projection(&a.projection),
        &Report::from_projection(&b.projection),
    );
    let verdicts = crossings(thresholds, &trades, &sb.trades);
    Ok(Comparison {
        window,
        decisions,
        first,
        fields,
        trades,
        metrics,
        verdicts,
    })
}

type FirstPair = Option<(crate::why::FullDecision, crate::why::FullDecision)>;

/// The first differing decision of each side in full (a committed glass box
/// recomputed and proven, as `anx why --decision` does), and their fields side
/// by side; nothing when one side made no decision there.
fn first_difference(
    a_dir: &Path,
    b_dir: &Path,
    decisions: &DecisionAlignment,
) -> Result<(FirstPair, Vec<FieldDifference>)> {
    let Some(FirstDifference {
        seq_a: Some(seq_a),
        seq_b: Some(seq_b),
        ..
    }) = decisions.first_difference
    else {
        return Ok((None, Vec::new()));
    };
    let da = crate::why::full_decision(a_dir, seq_a)?;
    let db = crate::why::full_decision(b_dir, seq_b)?;
    let fields = decision_fields(
        &da.decision,
        &db.decision,
        da.decision.glass.full(),
        db.decision.glass.full(),
    );
    Ok((Some((da, db)), fields))
}

fn decisions_text(c: &Comparison, out: &mut String) {
    let d = &c.decisions;
    let _ = writeln!(
        out,
        "decisions        {} agree, {} differ, {} in A only, {} in B only",
        d.agree, d.differ, d.only_a, d.only_b
    );
    let Some(first) = &d.first_difference else {
        return;
    };
    let seq = |s: Option<u64>| s.map_or("none".to_string(), |s| format!("seq {s}"));
    let _ = writeln!(
        out,
        "first difference {} on the candle of {}: A {}, B {}",
        first.symbol,
        market_time(first.candle_ms),
        seq(first.seq_a),
        seq(first.seq_b)
    );
    side_by_side(&c.fields, out);
}

/// The first differing decisions' fields side by side, those that differ
/// marked `*` (the values of long risk-check prose run on).
fn side_by_side(fields: &[FieldDifference], out: &mut String) {
    if fields.is_empty() {
        return;
    }
    let width = fields.iter().map(|f| f.field.len()).max().unwrap_or(0);
    let a_width = fields
        .iter()
        .map(|f| f.a.chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    let _ = writeln!(out, "    {:<width$}  {:<a_width$}  B", "", "A");
    for f in fields {
        let mark = if f.a == f.b { ' ' } else { '*' };
        let _ = writeln!(
            out,
            "  {mark} {:<width$}  {:<a_width$}  {}",
            f.field, f.a, f.b
        );
    }
}

/// The trades: counts, then each matched pair that differs, side by side
/// (identical pairs are only counted), then the trades of one side only.
fn trades_text(t: &TradeComparison, out: &mut String) {
    let differing: Vec<&TradeMatch> = t.matched.iter().filter(|m| m.differs()).collect();
    let _ = writeln!(
        out,
        "trades           {} matched ({} identical), {} in A only, {} in B only; fills {} bps worse in B on average",
        t.matched.len(),
        t.matched.len() - differing.len(),
        t.only_a.len(),
        t.only_b.len(),
        fmt_opt(t.fill_bps_mean, 2)
    );
    if !differing.is_empty() {
        let _ = writeln!(
            out,
            "  {:<24} {:>21} {:>21} {:>15} {:>15} {:>27} {:>15}",
            "trade (A)",
            "entry A / B",
            "exit A / B",
            "fees A / B",
            "slip A / B",
            "exit reason A / B",
            "R A / B"
        );
    }
    for m in differing {
        let pair = |x: rust_decimal::Decimal, y: rust_decimal::Decimal, dp: u32| {
            format!("{} / {}", fmt_dec(x, dp), fmt_dec(y, dp))
        };
        let _ = writeln!(
            out,
            "  {:<24} {:>21} {:>21} {:>15} {:>15} {:>27} {:>15}",
            m.a.trade_id,
            pair(m.a.entry_price, m.b.entry_price, 2),
            pair(m.a.exit_price, m.b.exit_price, 2),
            pair(m.a.fees, m.b.fees, 2),
            pair(m.a.slippage, m.b.slippage, 2),
            format!("{} / {}", m.a.exit_reason.name(), m.b.exit_reason.name()),
            pair(m.a.realized_r, m.b.realized_r, 2),
        );
    }
    for (side, rows) in [("A", &t.only_a), ("B", &t.only_b)] {
        if !rows.is_empty() {
            let ids: Vec<&str> = rows.iter().map(|r| r.trade_id.as_str()).collect();
            let _ = writeln!(out, "  only in {side}: {}", ids.join(", "));
        }
    }
}

fn comparison_text(c: &Comparison, a: &Path, b: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "A                {}", a.display());
    let _ = writeln!(out, "B                {}", b.display());
    let _ = writeln!(
        out,
        "shared time      {} .. {}",
        market_time(c.window.from_ms),
        market_time(c.window.to_ms)
    );
    decisions_text(c, &mut out);
    trades_text(&c.trades, &mut out);
    let _ = writeln!(
        out,
        "\nmetrics (whole runs)          A              B          B - A"
    );
    for m in &c.metrics {
        let _ = writeln!(
            out,
            "  {:<20} {:>14} {:>14} {:>14}",
            m.name,
            fmt_opt(m.a, 4),
            fmt_opt(m.b, 4),
            fmt_opt(m.diff, 4)
        );
    }
    let _ = writeln!(out, "\nthresholds (config/compare.toml)");
    for v in &c.verdicts {
        let mark = match (v.crossed, v.value) {
            (true, _) => "CROSSED",
            (false, Some(_)) => "ok",
            (false, None) => "-",
        };
        let _ = writeln!(
            out,
            "  {:<16} {:<8} {} (limit {})",
            v.check,
            mark,
            v.detail,
            fmt_dec(v.limit, 4)
        );
    }
    out
}

fn trade_pair_json(m: &TradeMatch) -> Value {
    let side = |t: &anx_projections::TradeRow| {
        json!({
            "trade_id": t.trade_id,
            "entry_price": num(t.entry_price),
            "exit_price": num(t.exit_price),
            "fees": num(t.fees),
            "slippage": num(t.slippage),
            "exit_reason": t.exit_reason.name(),
            "realized_r": num(t.realized_r),
            "net_pnl": num(t.net_pnl),
        })
    };
    json!({
        "symbol": m.symbol,
        "candle": market_time(m.decided_ms),
        "a": side(&m.a),
        "b": side(&m.b),
        "entry_fill_bps": num(m.entry_fill_bps),
        "exit_fill_bps": num(m.exit_fill_bps),
    })
}

fn comparison_json(c: &Comparison) -> Value {
    let d = &c.decisions;
    let first = d.first_difference.as_ref().map(|f| {
        let glass = |full: Option<&crate::why::FullDecision>| {
            full.and_then(|x| x.decision.glass.full().cloned())
        };
        json!({
            "symbol": f.symbol,
            "candle": market_time(f.candle_ms),
            "seq_a": f.seq_a,
            "seq_b": f.seq_b,
            "fields": c.fields.iter().filter(|f| f.a != f.b).collect::<Vec<_>>(),
            "side_by_side": c.fields,
            "glass_a": glass(c.first.as_ref().map(|p| &p.0)),
            "glass_b": glass(c.first.as_ref().map(|p| &p.1)),
        })
    });
    let t = &c.trades;
    let ids = |rows: &[anx_projections::TradeRow]| -> Vec<String> {
        rows.iter().map(|r| r.trade_id.clone()).collect()
    };
    json!({
        "shared": {"from": market_time(c.window.from_ms), "to": market_time(c.window.to_ms)},
        "decisions": {
            "agree": d.agree, "differ": d.differ, "only_a": d.only_a, "only_b": d.only_b,
            "first_difference": first,
        },
        "trades": {
            "matched": t.matched.iter().map(trade_pair_json).collect::<Vec<_>>(),
            "only_a": ids(&t.only_a),
            "only_b": ids(&t.only_b),
            "fill_bps_mean": opt_num(t.fill_bps_mean),
        },
        "metrics": c.metrics.iter().map(|m| json!({
            "name": m.name, "a": opt_num(m.a), "b": opt_num(m.b), "diff": opt_num(m.diff),
        })).collect::<Vec<_>>(),
        "thresholds": c.verdicts.iter().map(|v| json!({
            "check": v.check, "crossed": v.crossed, "value": opt_num(v.value),
            "limit": num(v.limit), "detail": v.detail,
        })).collect::<Vec<_>>(),
        "crossed": c.verdicts.iter().any(|v| v.crossed),
    })
}
