//! Rendering projected state for people (tables) and machines (JSON with stable
//! keys; money and ratios as exact JSON numbers, undefined metrics as null).

use crate::output::market_time;
use anx_journal::codec::Hash32;
use anx_journal::Seq;
use anx_projections::breakdown::{Breakdowns, Bucket};
use anx_projections::report::percent;
use anx_projections::{Projection, Report, State};
use rust_decimal::Decimal;
use serde_json::{json, Map, Number, Value};
use std::fmt::Write;

/// An exact decimal as a JSON number.
pub fn num(value: Decimal) -> Value {
    let text = value.normalize().to_string();
    text.parse::<Number>()
        .map(Value::Number)
        .unwrap_or(Value::String(text))
}

pub fn opt_num(value: Option<Decimal>) -> Value {
    value.map_or(Value::Null, num)
}

/// A fraction as a JSON percent: every share in the JSON is a percent under a
/// key ending `_pct`, never a fraction.
pub fn opt_pct(fraction: Option<Decimal>) -> Value {
    opt_num(percent(fraction))
}

/// What `anx journal replay` shows, besides the state itself.
pub struct ReplayView<'a> {
    pub projection: &'a Projection,
    pub head_seq: Seq,
    pub head_hash: Hash32,
    pub from_snapshot: Option<Seq>,
    pub folded: u64,
    pub elapsed_ms: f64,
}

pub fn report_json(report: &Report) -> Value {
    json!({
        "trades_opened": report.trades_opened,
        "trades_closed": report.trades_closed,
        "wins": report.wins,
        "losses": report.losses,
        "win_rate_pct": opt_pct(report.win_rate),
        "avg_win": opt_num(report.avg_win),
        "avg_loss": opt_num(report.avg_loss),
        "rr_actual": opt_num(report.rr_actual),
        "expectancy": opt_num(report.expectancy),
        "expectancy_r": opt_num(report.expectancy_r),
        "profit_factor": opt_num(report.profit_factor),
        "net_pnl": num(report.net_pnl),
        "starting_equity": num(report.starting_equity),
        "final_equity": num(report.final_equity),
        "peak_equity": num(report.peak_equity),
        "return_pct": opt_num(report.return_pct),
        "max_drawdown": num(report.max_drawdown),
        "max_drawdown_pct": num(report.max_drawdown_pct),
        "max_consecutive_losses": report.max_consecutive_losses,
        "max_consecutive_losses_usd": num(report.max_consecutive_losses_usd),
        "sharpe": opt_num(report.sharpe),
        "sortino": opt_num(report.sortino),
        "ratio_basis": report.ratio_basis,
        "return_days": report.return_days,
        "exposure_pct": opt_num(report.exposure_pct),
        "fees_total": num(report.fees_total),
        "exits_by_reason": report.exits_by_reason,
        "symbols": report.symbols.iter().map(|(symbol, r)| (symbol.clone(), json!({
            "trades_closed": r.trades_closed,
            "wins": r.wins,
            "losses": r.losses,
            "win_rate_pct": opt_pct(r.win_rate),
            "net_pnl": num(r.net_pnl),
            "fees": num(r.fees),
            "expectancy_r": opt_num(r.expectancy_r),
            "exits_by_reason": r.exits_by_reason,
        }))).collect::<Map<String, Value>>(),
        "no_order": {
            "by_reason": report.no_order.by_reason,
            "by_symbol": report.no_order.by_symbol,
        },
        "breakdowns": breakdowns_json(&report.breakdowns),
        "attribution": attribution_json(&report.attribution),
    })
}

/// The closed trades' PnL taken apart, as JSON (money in the quote currency).
fn attribution_json(a: &anx_projections::PnlAttribution) -> Value {
    json!({
        "edge": num(a.edge),
        "fees": num(a.fees),
        "slippage": num(a.slippage),
        "net_pnl": num(a.net_pnl),
        "expectancy_r_theoretical": opt_num(a.expectancy_r_theoretical),
        "expectancy_r_realized": opt_num(a.expectancy_r_realized),
        "avg_risk": opt_num(a.avg_risk),
        "avg_reward": opt_num(a.avg_reward),
        "maker_notional": num(a.maker_notional),
        "taker_notional": num(a.taker_notional),
        "maker_share_pct": opt_pct(a.maker_share),
    })
}

fn audit_pct(state: &State) -> Value {
    let audit = &state.audit;
    if audit.trades == 0 {
        return Value::Null;
    }
    num(
        (Decimal::from(audit.complete) * Decimal::ONE_HUNDRED / Decimal::from(audit.trades))
            .round_dp(2),
    )
}

/// The JSON document of `anx journal replay --format json`.
pub fn replay_json(view: &ReplayView) -> Value {
    let state = &view.projection.state;
    let report = Report::from_projection(view.projection);
    let mut engine = Map::new();
    let mut positions = Map::new();
    for (symbol, s) in &state.symbols {
        engine.insert(
            symbol.clone(),
            json!({
                "state": s.engine.0.name(),
                "in_flight": s.in_flight,
                "fail_closed": s.fail_closed,
                "trades_opened": s.trades_opened,
                "trades_closed": s.trades_closed,
            }),
        );
        let p = &s.position;
        positions.insert(
            symbol.clone(),
            json!({
                "quantity": num(p.quantity),
                "avg_entry": opt_num(p.average_entry().map(|d| d.round_dp(8))),
                "cost": num(p.cost),
                "fees_paid": num(p.fees_paid),
                "realized_pnl": num(p.realized_gross),
                "realized_pnl_net": num(p.realized_net()),
                "last_price": opt_num(s.last_close),
                "market_value": num(s.last_close.map_or(Decimal::ZERO, |c| c * p.quantity)),
            }),
        );
    }
    let cash: Map<String, Value> = state
        .cash
        .iter()
        .map(|(pot, c)| (pot.clone(), num(c.0)))
        .collect();
    let incomplete: Vec<Value> = state
        .audit
        .incomplete
        .iter()
        .map(|(id, gaps)| json!({"trade_id": id, "missing": gaps.iter().map(|g| g.name()).collect::<Vec<_>>()}))
        .collect();
    let quality: Map<String, Value> = state
        .quality
        .iter()
        .map(|(symbol, q)| {
            (
                symbol.clone(),
                json!({
                    "candles": q.candles, "gaps": q.gaps, "missing_bars": q.missing_bars,
                    "duplicates": q.duplicates, "out_of_order": q.out_of_order,
                    "volume_anomalies": q.volume_anomalies, "invalid": q.invalid, "stale": q.stale,
                }),
            )
        })
        .collect();
    let runs: Vec<Value> = state
        .run
        .iter()
        .map(|run| run_json(view.projection, run))
        .collect();
    json!({
        "state_hash": view.projection.state_hash().to_hex(),
        "head_seq": view.head_seq,
        "head_hash": view.head_hash.to_hex(),
        "engine": engine,
        "positions": positions,
        "cash": cash,
        "trades": state.trades.len(),
        "trade_list": state.closed_trades().map(trade_json).collect::<Vec<_>>(),
        "equity_daily": state.equity.daily.iter().map(day_json).collect::<Vec<_>>(),
        "report": report_json(&report),
        "audit_coverage": {
            "trades": state.audit.trades,
            "complete": state.audit.complete,
            "pct": audit_pct(state),
            "incomplete": incomplete,
        },
        "data_quality": quality,
        "runs": runs,
        "fold": {
            "events": view.folded,
            "from_snapshot": view.from_snapshot,
            "elapsed_ms": (view.elapsed_ms * 1000.0).round() / 1000.0,
            "checkpoints_verified": view.projection.links.checkpoints_verified,
            "recoveries": view.projection.links.recoveries.len(),
        },
    })
}

fn run_json(projection: &Projection, run: &anx_projections::RunRow) -> Value {
    let notes: Vec<String> = projection
        .links
        .recoveries
        .iter()
        .map(|r| {
            format!(
                "seq {}: repaired a torn tail ({} bytes at {} offset {})",
                r.seq, r.bytes_dropped, r.segment, r.offset
            )
        })
        .collect();
    json!({
        "run_id": run.run_id,
        "run_mode": run.run_mode,
        "capital_mode": run.capital_mode,
        "market_time_basis": run.market_time_basis,
        "data_integrity": run.data_integrity,
        "created_by": run.created_by,
        "git_sha": run.git_sha,
        "config_hash": run.config_hash,
        "symbols": run.symbols,
        "granularity_s": run.granularity_s,
        "start": market_time(run.start_ms),
        "end": run.end_ms.map(market_time),
        "starting_capital": num(run.starting_capital),
        "started_at": market_time(run.started_ms),
        "completed_at": run.completed_ms.map(market_time),
        "completion": run.completion,
        "candles": run.candles,
        "trades_opened": run.trades_opened,
        "trades_closed": run.trades_closed,
        "notes": notes,
    })
}

/// A figure for people: rounded to `dp` decimals, trailing zeros dropped.
pub fn fmt_dec(value: Decimal, dp: u32) -> String {
    value.round_dp(dp).normalize().to_string()
}

/// [`fmt_dec`], or `n/a` for an undefined figure.
pub fn fmt_opt(value: Option<Decimal>, dp: u32) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| fmt_dec(v, dp))
}

/// The report's metrics as (label, value) rows: the one rendering shared by the
/// table and the HTML report.
pub fn report_rows(report: &Report) -> Vec<(&'static str, String)> {
    vec![
        (
            "trades opened / closed",
            format!("{} / {}", report.trades_opened, report.trades_closed),
        ),
        (
            "wins / losses",
            format!("{} / {}", report.wins, report.losses),
        ),
        ("win rate", fmt_opt(percent(report.win_rate), 2) + " %"),
        (
            "avg win / avg loss",
            format!(
                "{} / {}",
                fmt_opt(report.avg_win, 2),
                fmt_opt(report.avg_loss, 2)
            ),
        ),
        ("actual R:R", fmt_opt(report.rr_actual, 2)),
        (
            "expectancy",
            format!(
                "{} $ / {} R",
                fmt_opt(report.expectancy, 2),
                fmt_opt(report.expectancy_r, 3)
            ),
        ),
        ("profit factor", fmt_opt(report.profit_factor, 2)),
        ("net PnL", fmt_dec(report.net_pnl, 2)),
        (
            "equity start / final / peak",
            format!(
                "{} / {} / {}",
                fmt_dec(report.starting_equity, 2),
                fmt_dec(report.final_equity, 2),
                fmt_dec(report.peak_equity, 2)
            ),
        ),
        ("return", fmt_opt(report.return_pct, 2) + " %"),
        (
            "max drawdown",
            format!(
                "{} $ ({} %)",
                fmt_dec(report.max_drawdown, 2),
                fmt_dec(report.max_drawdown_pct, 2)
            ),
        ),
        (
            "max consecutive losses",
            format!(
                "{} ({} $)",
                report.max_consecutive_losses,
                fmt_dec(report.max_consecutive_losses_usd, 2)
            ),
        ),
        (
            "sharpe / sortino",
            format!(
                "{} / {}  ({}, {} days)",
                fmt_opt(report.sharpe, 2),
                fmt_opt(report.sortino, 2),
                report.ratio_basis,
                report.return_days
            ),
        ),
        ("exposure", fmt_opt(report.exposure_pct, 2) + " %"),
        ("fees total", fmt_dec(report.fees_total, 2)),
        (
            "edge - fees - slippage",
            attribution_text(&report.attribution),
        ),
        (
            "R theoretical / realized",
            format!(
                "{} / {}",
                fmt_opt(report.attribution.expectancy_r_theoretical, 3),
                fmt_opt(report.attribution.expectancy_r_realized, 3)
            ),
        ),
        (
            "avg risk / avg reward",
            format!(
                "{} $ / {} $",
                fmt_opt(report.attribution.avg_risk, 2),
                fmt_opt(report.attribution.avg_reward, 2)
            ),
        ),
        (
            "maker share of fills",
            fmt_opt(percent(report.attribution.maker_share), 1) + " % of notional",
        ),
        (
            "exits by reason",
            report
                .exits_by_reason
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("no order, by reason", no_order_text(&report.no_order)),
    ]
}

/// `edge − fees − slippage = net` over the closed trades.
fn attribution_text(a: &anx_projections::PnlAttribution) -> String {
    format!(
        "{} - {} - {} = {}",
        fmt_dec(a.edge, 2),
        fmt_dec(a.fees, 2),
        fmt_dec(a.slippage, 2),
        fmt_dec(a.net_pnl, 2)
    )
}

/// One closed trade as JSON: money in the quote currency, R multiples, times
/// in UTC (RFC 3339) and milliseconds, the hold in seconds, shares in
/// percent. `edge` is the price move alone (net = edge − fees − slippage);
/// `risk` is size × (entry − initial stop), so realized R = net / risk.
fn trade_json((t, detail): (&anx_projections::TradeRow, &anx_projections::TradeDetail)) -> Value {
    json!({
        "trade_id": t.trade_id,
        "symbol": t.symbol,
        "entry_client_order_id": t.entry_client_order_id,
        "entry_time": market_time(t.entry_ms),
        "exit_time": market_time(t.exit_ms),
        "entry_ms": t.entry_ms,
        "exit_ms": t.exit_ms,
        "hold_s": t.hold_ms() / 1000,
        "entry_price": num(t.entry_price),
        "exit_price": num(t.exit_price),
        "size": num(t.size),
        "initial_stop": num(t.initial_stop),
        "exit_reason": t.exit_reason.name(),
        "gross_pnl": num(t.gross_pnl),
        "fees": num(t.fees),
        "slippage": num(t.slippage),
        "net_pnl": num(t.net_pnl),
        "theoretical_r": num(t.theoretical_r),
        "realized_r": num(t.realized_r),
        "edge": num(t.edge()),
        "risk": num(t.risk()),
        "entry_signals": detail.entry.signals,
        "entry_regime": detail.entry.regime,
        "maker_notional": num(detail.liquidity.maker_notional),
        "taker_notional": num(detail.liquidity.taker_notional),
        "maker_share_pct": opt_pct(detail.liquidity.maker_share()),
    })
}

/// One UTC day's closing equity and the peak so far, in the quote currency;
/// the drawdown from that peak in percent (`_pct`, as everywhere).
fn day_json(p: &anx_projections::DailyEquity) -> Value {
    let drawdown_pct = anx_projections::engine::risk::drawdown_pct(p.equity, p.peak);
    json!({
        "date": &market_time(p.day * anx_projections::model::DAY_MS)[..10],
        "equity": num(p.equity),
        "peak": num(p.peak),
        "drawdown_pct": num(drawdown_pct),
    })
}

/// One breakdown bucket as JSON (win rate a percent, money in the quote
/// currency, expectancy also in R).
fn bucket_json(b: &Bucket) -> Value {
    json!({
        "trades": b.trades,
        "wins": b.wins,
        "losses": b.losses,
        "win_rate_pct": opt_pct(b.win_rate),
        "net_pnl": num(b.net_pnl),
        "expectancy": opt_num(b.expectancy),
        "expectancy_r": opt_num(b.expectancy_r),
        "profit_factor": opt_num(b.profit_factor),
    })
}

fn breakdowns_json(b: &Breakdowns) -> Value {
    let keyed = |map: &std::collections::BTreeMap<String, Bucket>| -> Value {
        map.iter()
            .map(|(k, v)| (k.clone(), bucket_json(v)))
            .collect::<Map<String, Value>>()
            .into()
    };
    let by_hold: Vec<Value> = b
        .by_hold_time
        .iter()
        .map(|h| {
            let mut value = bucket_json(&h.figures);
            value["hold"] = json!(h.hold);
            value
        })
        .collect();
    json!({
        "by_signal": keyed(&b.by_signal),
        "by_regime": keyed(&b.by_regime),
        "by_symbol": keyed(&b.by_symbol),
        "by_exit_reason": keyed(&b.by_exit_reason),
        "by_month": keyed(&b.by_month),
        "by_hold_time": by_hold,
    })
}

/// The breakdowns' column names (the first, the bucket, has none).
pub const BREAKDOWN_HEADER: [&str; 8] = [
    "", "trades", "wins", "win rate", "net PnL", "expect $", "expect R", "PF",
];

/// The breakdowns as rows of cells under [`BREAKDOWN_HEADER`]: the one
/// rendering shared by the table and the HTML report.
pub fn breakdown_rows(b: &Breakdowns) -> Vec<[String; 8]> {
    let cells = |label: String, x: &Bucket| {
        [
            label,
            x.trades.to_string(),
            x.wins.to_string(),
            fmt_opt(percent(x.win_rate), 1) + " %",
            fmt_dec(x.net_pnl, 2),
            fmt_opt(x.expectancy, 2),
            fmt_opt(x.expectancy_r, 3),
            fmt_opt(x.profit_factor, 2),
        ]
    };
    let keyed = |prefix: &str, map: &std::collections::BTreeMap<String, Bucket>| {
        map.iter()
            .map(|(k, v)| cells(format!("{prefix} {k}"), v))
            .collect::<Vec<_>>()
    };
    let mut rows = keyed("signal", &b.by_signal);
    rows.extend(keyed("regime", &b.by_regime));
    rows.extend(keyed("symbol", &b.by_symbol));
    rows.extend(keyed("exit", &b.by_exit_reason));
    rows.extend(keyed("month", &b.by_month));
    rows.extend(
        b.by_hold_time
            .iter()
            .map(|h| cells(format!("held {}", h.hold), &h.figures)),
    );
    rows
}

/// The breakdowns as table lines: the header, then one line per bucket.
/// The bucket column is as wide as its longest label (signal combinations
/// such as `breakout+momentum` are long), at least 22.
pub fn breakdown_lines(b: &Breakdowns) -> Vec<String> {
    let rows = breakdown_rows(b);
    let width = rows
        .iter()
        .map(|r| r[0].chars().count())
        .max()
        .unwrap_or(0)
        .max(22);
    let line = |c: [&str; 8]| {
        format!(
            "  {:<width$} {:>6} {:>5} {:>9} {:>10} {:>9} {:>9} {:>8}",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
        )
    };
    let mut lines = vec![line(BREAKDOWN_HEADER)];
    for row in rows {
        lines.push(line(row.each_ref().map(String::as_str)));
    }
    lines
}

/// Why decisions led to no order, the most frequent reason first.
fn no_order_text(no_order: &anx_projections::report::NoOrder) -> String {
    let ranked = no_order.ranked();
    if ranked.is_empty() {
        return "none (every decision led to an order)".into();
    }
    ranked
        .iter()
        .map(|(reason, count)| format!("{reason} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table of `anx journal replay`.
pub fn replay_table(view: &ReplayView) -> String {
    let state = &view.projection.state;
    let report = Report::from_projection(view.projection);
    let mut out = String::new();
    let w = &mut out;
    if let Some(run) = &state.run {
        let _ = writeln!(
            w,
            "run        {} ({:?}, {:?} capital, {:?})",
            run.run_id, run.run_mode, run.capital_mode, run.data_integrity
        );
        let _ = writeln!(
            w,
            "           symbols {} | {} .. {} | starting capital {}",
            run.symbols.join(","),
            market_time(run.start_ms),
            run.end_ms.map_or("open".into(), market_time),
            fmt_dec(run.starting_capital, 2)
        );
        let _ = writeln!(
            w,
            "           config {} | git {} | by {}",
            &run.config_hash[..16.min(run.config_hash.len())],
            run.git_sha,
            run.created_by
        );
        let _ = writeln!(
            w,
            "           {} candles | {}",
            run.candles,
            run.completion
                .as_deref()
                .map_or("running".to_string(), |c| format!("completed: {c}"))
        );
    }
    for note in &view.projection.links.recoveries {
        let _ = writeln!(
            w,
            "note       seq {}: repaired a torn tail ({} bytes at {} offset {})",
            note.seq, note.bytes_dropped, note.segment, note.offset
        );
    }
    let _ = writeln!(w, "\nsymbol     state          position       avg entry      last price     cash           realized net   trades");
    for (symbol, s) in &state.symbols {
        let cash = state
            .cash
            .get(symbol)
            .map_or("(pool)".to_string(), |c| fmt_dec(c.0, 2));
        let _ = writeln!(
            w,
            "{:<10} {:<14} {:<14} {:<14} {:<14} {:<14} {:<14} {}/{}{}",
            symbol,
            s.engine.0.name(),
            fmt_dec(s.position.quantity, 8),
            fmt_opt(s.position.average_entry(), 2),
            fmt_opt(s.last_close, 2),
            cash,
            fmt_dec(s.position.realized_net(), 2),
            s.trades_opened,
            s.trades_closed,
            s.fail_closed
                .as_ref()
                .map_or(String::new(), |r| format!("  FAIL_CLOSED: {r}")),
        );
    }
    if let Some(pool) = state.cash.get(anx_projections::PORTFOLIO_POT) {
        let _ = writeln!(w, "portfolio cash {}", fmt_dec(pool.0, 2));
    }
    let _ = writeln!(w, "\nreport");
    let rows = report_rows(&report);
    for (name, value) in rows {
        let _ = writeln!(w, "  {name:<28} {value}");
    }
    if report.trades_closed > 0 {
        let _ = writeln!(w, "\nbreakdowns (closed trades; month of the exit, UTC)");
        for line in breakdown_lines(&report.breakdowns) {
            let _ = writeln!(w, "{}", line.trim_end());
        }
    }
    let audit = &state.audit;
    let _ = writeln!(
        w,
        "\naudit coverage  {} of {} trades have the full trail ({} %)",
        audit.complete,
        audit.trades,
        audit_pct(state)
    );
    for (id, gaps) in &audit.incomplete {
        let _ = writeln!(
            w,
            "  {id}: missing {}",
            gaps.iter().map(|g| g.name()).collect::<Vec<_>>().join(", ")
        );
    }
    let _ = writeln!(
        w,
        "\ndata quality    candles  gaps  missing  dup  out-of-order  volume  invalid  stale"
    );
    for (symbol, q) in &state.quality {
        let _ = writeln!(
            w,
            "  {symbol:<13} {:>7} {:>5} {:>8} {:>4} {:>13} {:>7} {:>8} {:>6}",
            q.candles,
            q.gaps,
            q.missing_bars,
            q.duplicates,
            q.out_of_order,
            q.volume_anomalies,
            q.invalid,
            q.stale
        );
    }
    let _ = writeln!(w, "\nstate hash      {}", view.projection.state_hash());
    let _ = writeln!(w, "head            {}:{}", view.head_seq, view.head_hash);
    let _ = writeln!(
        w,
        "fold            {} events{} in {:.1} ms, {} checkpoint(s) verified",
        view.folded,
        view.from_snapshot
            .map_or(String::new(), |s| format!(" after the snapshot at seq {s}")),
        view.elapsed_ms,
        view.projection.links.checkpoints_verified
    );
    out
}
