//! The self-contained HTML report of a replay: one file that works offline –
//! inline CSS, interactive charts (`html_charts.rs`: equity, drawdown and a
//! price chart per symbol with its trades, drawn by an inlined charting
//! library), per-symbol panels, the trades table with a link from each trade
//! to its decision trail, data quality and audit coverage. Every number comes
//! from the projections (the same `Report` as the table and JSON formats); the
//! trails are read from the journal through the index, as `anx why` reads
//! them, with prices rounded to the product's quote increment.

use crate::output::market_time;
use crate::render::{fmt_dec, fmt_opt, ReplayView};
use crate::store::{self, LoadOptions};
use anx_projections::model::HOUR_MS;
use anx_projections::Report;
use anyhow::{Context, Result};
use rust_decimal::Decimal;
use std::fmt::Write;
use std::path::Path;

/// The first `n` characters (a date or a minute of a time), whatever the text.
fn prefix(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

pub(crate) fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn row(out: &mut String, cells: &[String]) {
    out.push_str("<tr>");
    for cell in cells {
        let _ = write!(out, "<td>{cell}</td>");
    }
    out.push_str("</tr>\n");
}

/// The closed trades broken down (by symbol, exit reason, month, hold time):
/// the table's rows, as an HTML table; nothing for a run without trades.
fn breakdowns(out: &mut String, b: &anx_projections::breakdown::Breakdowns) {
    let rows = crate::render::breakdown_rows(b);
    if rows.is_empty() {
        return;
    }
    out.push_str("<h2 id=\"breakdowns\">Breakdowns (closed trades; month of the exit, UTC)</h2><table>\n<tr>");
    for name in crate::render::BREAKDOWN_HEADER {
        let _ = write!(out, "<th>{}</th>", esc(name));
    }
    out.push_str("</tr>\n");
    for cells in rows {
        row(out, &cells.map(|c| esc(&c)));
    }
    out.push_str("</table>\n");
}

/// Renders the report of the replay whose journal is `journal`.
pub fn report(journal: &Path, view: &ReplayView) -> Result<String> {
    let state = &view.projection.state;
    let report = Report::from_projection(view.projection);
    let loaded = store::load(journal, LoadOptions::HEAD)
        .with_context(|| format!("cannot index {}", journal.display()))?;
    let index = loaded
        .store
        .as_ref()
        .context("the index store was not opened")?;
    let mut out = String::with_capacity(1 << 20);
    let title = state.run.as_ref().map_or("anx replay".to_string(), |r| {
        format!("anx replay {}", r.run_id)
    });
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
         body{{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1b1f24;max-width:1100px}}\
         h1{{font-size:22px}}h2{{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}}\
         table{{border-collapse:collapse;margin:8px 0}}td,th{{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}th{{background:#f6f8fa}}\
         .cards{{display:flex;flex-wrap:wrap;gap:12px}}.card{{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:240px}}\
         .muted{{color:#777}}.neg{{color:#b42318}}.pos{{color:#067647}}\
         pre{{white-space:pre-wrap;font-size:12px;background:#f6f8fa;padding:8px}}\
         {}</style></head><body>\n<h1>{}</h1>\n<p class=\"muted\">What a replay produced, read back from its journal. Past results are not a promise of future profit.</p>\n",
        esc(&title),
        crate::html_charts::CSS,
        esc(&title)
    );
    if let Some(run) = &state.run {
        out.push_str("<h2 id=\"run\">Run</h2><table>\n");
        for (k, v) in [
            ("run id", run.run_id.clone()),
            (
                "mode",
                format!(
                    "{:?} / {:?} capital / {:?}",
                    run.run_mode, run.capital_mode, run.data_integrity
                ),
            ),
            ("symbols", run.symbols.join(", ")),
            (
                "range",
                format!(
                    "{} .. {}",
                    market_time(run.start_ms),
                    run.end_ms.map_or("open".into(), market_time)
                ),
            ),
            ("starting capital", fmt_dec(run.starting_capital, 2)),
            ("candles", run.candles.to_string()),
            ("config hash", run.config_hash.clone()),
            ("git", run.git_sha.clone()),
            ("journal", journal.display().to_string()),
            ("head", format!("{}:{}", view.head_seq, view.head_hash)),
            ("state hash", view.projection.state_hash().to_hex()),
        ] {
            row(&mut out, &[esc(k), esc(&v)]);
        }
        out.push_str("</table>\n");
    }
    out.push_str("<h2 id=\"summary\">Summary</h2><table>\n");
    for (k, v) in crate::render::report_rows(&report) {
        row(&mut out, &[esc(k), esc(&v)]);
    }
    out.push_str("</table>\n");
    breakdowns(&mut out, &report.breakdowns);
    let charts = crate::html_charts::Charts::read(journal, state)?;
    out.push_str(&charts.equity_html());
    out.push_str(&charts.price_html());
    out.push_str("<h2 id=\"symbols\">Per symbol</h2><div class=\"cards\">\n");
    for (symbol, s) in &state.symbols {
        let r = report.symbols.get(symbol).cloned().unwrap_or_default();
        let exits: Vec<String> = r
            .exits_by_reason
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let class = if r.net_pnl < Decimal::ZERO {
            "neg"
        } else {
            "pos"
        };
        let _ = write!(
            out,
            "<div class=\"card\"><b>{}</b> – {}<br>position {} @ {}<br>trades {} (wins {}, losses {}, win rate {} %)<br>net <span class=\"{class}\">{}</span>, fees {}, expectancy {} R<br><span class=\"muted\">{}</span></div>",
            esc(symbol),
            s.engine.0.name(),
            fmt_dec(s.position.quantity, 8),
            fmt_opt(s.position.average_entry(), 2),
            r.trades_closed,
            r.wins,
            r.losses,
            fmt_opt(anx_projections::report::percent(r.win_rate), 1),
            fmt_dec(r.net_pnl, 2),
            fmt_dec(r.fees, 2),
            fmt_opt(r.expectancy_r, 3),
            esc(&exits.join(", "))
        );
    }
    out.push_str("</div>\n<h2 id=\"trades\">Trades</h2><table>\n<tr><th>trade</th><th>symbol</th><th>entry</th><th>exit</th><th>entry price</th><th>exit price</th><th>size</th><th>signal (regime)</th><th>exit reason</th><th>edge / fees / slip</th><th>net</th><th>R (theo / real)</th><th>held h</th></tr>\n");
    for (t, detail) in state.closed_trades() {
        let class = if t.net_pnl < Decimal::ZERO {
            "neg"
        } else {
            "pos"
        };
        row(
            &mut out,
            &[
                format!(
                    "<a href=\"#trail-{}\">{}</a>",
                    esc(&t.trade_id),
                    esc(&t.trade_id)
                ),
                esc(&t.symbol),
                prefix(&market_time(t.entry_ms), 16),
                prefix(&market_time(t.exit_ms), 16),
                fmt_dec(t.entry_price, 2),
                fmt_dec(t.exit_price, 2),
                fmt_dec(t.size, 8),
                format!(
                    "{} ({})",
                    esc(detail.entry.signals_key()),
                    esc(detail.entry.regime_key())
                ),
                t.exit_reason.name().to_string(),
                format!(
                    "{} / {} / {}",
                    fmt_dec(t.edge(), 2),
                    fmt_dec(t.fees, 2),
                    fmt_dec(t.slippage, 2)
                ),
                format!("<span class=\"{class}\">{}</span>", fmt_dec(t.net_pnl, 4)),
                format!(
                    "{} / {}",
                    fmt_dec(t.theoretical_r, 2),
                    fmt_dec(t.realized_r, 2)
                ),
                (t.hold_ms() / HOUR_MS).to_string(),
            ],
        );
    }
    out.push_str("</table>\n<h2 id=\"quality\">Data quality</h2><table>\n<tr><th>symbol</th><th>candles</th><th>gaps</th><th>missing bars</th><th>duplicates</th><th>out of order</th><th>volume anomalies</th><th>invalid</th><th>stale</th></tr>\n");
    for (symbol, q) in &state.quality {
        row(
            &mut out,
            &[
                esc(symbol),
                q.candles.to_string(),
                q.gaps.to_string(),
                q.missing_bars.to_string(),
                q.duplicates.to_string(),
                q.out_of_order.to_string(),
                q.volume_anomalies.to_string(),
                q.invalid.to_string(),
                q.stale.to_string(),
            ],
        );
    }
    let audit = &state.audit;
    let _ = write!(out, "</table>\n<h2 id=\"audit\">Audit coverage</h2><p>{} of {} closed trades have the full trail candle → decision → order → bracket verified → fill → exit.</p>\n", audit.complete, audit.trades);
    for (id, gaps) in &audit.incomplete {
        let _ = writeln!(
            out,
            "<p class=\"neg\">{}: missing {}</p>",
            esc(id),
            gaps.iter().map(|g| g.name()).collect::<Vec<_>>().join(", ")
        );
    }
    out.push_str("<h2 id=\"trails\">Decision trails</h2>\n");
    if state.trades.is_empty() {
        out.push_str("<p class=\"muted\">No closed trades.</p>\n");
    }
    for t in &state.trades {
        let trail = crate::why::lookup(index, journal, &loaded.segments, &t.trade_id)?;
        let body = crate::why::trail_text_rounded(&trail);
        let _ = writeln!(
            out,
            "<details id=\"trail-{}\"><summary>{} ({}, net {})</summary><pre>{}</pre></details>",
            esc(&t.trade_id),
            esc(&t.trade_id),
            t.exit_reason.name(),
            fmt_dec(t.net_pnl, 4),
            esc(body.trim_end())
        );
    }
    out.push_str(&charts.scripts());
    out.push_str("</body></html>\n");
    Ok(out)
}
