//! The HTML report's interactive charts: per symbol, a candlestick chart of
//! the run's own `Candle` events with every closed trade's entry and exit
//! drawn as markers (each linked to its decision trail) and its take-profit
//! and stop as level segments over the trade's life; and the daily equity and
//! drawdown with axes and hover values. Drawn in the browser by TradingView's
//! Lightweight Charts (Apache-2.0), vendored in `assets/lightweight-charts/`
//! and inlined with the report's own script (`assets/report.js`), so the
//! report stays one file that works offline and fetches nothing.
//!
//! The figures go into the page as JSON in a `<script type="application/json">`
//! block, as plotting floats: money stays `Decimal` everywhere else, and is
//! converted here only to be drawn.

use anx_journal::{BracketLegs, Event, EventKind, Reader, TailPolicy};
use anx_projections::engine::config::Config;
use anx_projections::model::{State, TradeRow, DAY_MS};
use anyhow::{Context, Result};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// At most this many bars per symbol's price chart: longer runs (a quarter of
/// 1-minute candles is 130,000 per symbol) are drawn from consecutive candles
/// merged into coarser bars, so the report stays a few megabytes at most.
pub const BARS_MAX: usize = 5_000;

/// The charting library, inlined into every report (see its LICENSE and NOTICE
/// beside it; the NOTICE is repeated in the report's footer).
const LIBRARY: &str =
    include_str!("assets/lightweight-charts/lightweight-charts.standalone.production.js");
const LIBRARY_NOTICE: &str = include_str!("assets/lightweight-charts/NOTICE");
/// The report's own script: builds the charts from the JSON block and links
/// markers and table rows to the decision trails.
const SCRIPT: &str = include_str!("assets/report.js");

/// Styles for the charts, and overrides that keep the report readable at
/// common widths (cells never wrap; a table wider than the page scrolls).
/// The library lays a chart out as a table of its own: the report's table
/// rules are undone inside `.chart`.
pub const CSS: &str = "body{max-width:1360px}td,th{white-space:nowrap;padding:3px 8px}\
    table{display:block;overflow-x:auto;max-width:100%}\
    .chart{position:relative;height:420px;border:1px solid #eee;margin:6px 0 2px}\
    .chart.small{height:240px}\
    .chart table{display:table;margin:0;overflow:visible;max-width:none;border-collapse:separate}\
    .chart td,.chart th{border:0;white-space:normal}\
    .legend{position:absolute;left:8px;top:6px;z-index:4;font-size:12px;background:rgba(255,255,255,.85);\
    padding:1px 6px;border-radius:3px;pointer-events:none;white-space:nowrap}\
    .caption{font-size:12px;color:#666;margin:0 0 14px}.caption button{font-size:12px;margin-left:8px}\
    tr.to-trail{cursor:pointer}tr.to-trail:hover{background:#f6f8fa}\
    details.hit>summary{background:#fff3bf}.show-on-chart{font-size:12px;margin:4px 0}\
    footer{margin-top:32px;font-size:12px;color:#777;border-top:1px solid #eee;padding-top:8px}";

/// One price bar, for drawing.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Bar {
    open_ms: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
}

/// What the charts need from the journal besides the projection: every
/// symbol's candles, the entry orders' brackets and the run's configuration.
#[derive(Default)]
struct Journaled {
    /// Per symbol, by open time; a repeated open time keeps the first candle
    /// (the chart needs strictly increasing times).
    candles: BTreeMap<String, BTreeMap<i64, Bar>>,
    granularity_s: BTreeMap<String, u32>,
    /// Entry client order id → its bracket.
    brackets: BTreeMap<String, BracketLegs>,
    config: Option<Config>,
}

/// Decimal → f64, for drawing only.
fn plot(value: Decimal) -> f64 {
    value.to_string().parse().unwrap_or(0.0)
}

/// Reads the journal once, decoding only the kinds the charts draw from.
fn read_journal(journal: &Path) -> Result<Journaled> {
    let mut reader = Reader::open_with(journal, TailPolicy::StopAtTorn)
        .with_context(|| format!("cannot read {}", journal.display()))?;
    let wanted = [
        EventKind::RunStarted.code(),
        EventKind::Candle.code(),
        EventKind::OrderPlaced.code(),
    ];
    let mut out = Journaled::default();
    while let Some(record) = reader.next_record()? {
        if !wanted.contains(&record.envelope().kind_code) {
            continue;
        }
        match record.decode()? {
            Event::RunStarted(run) => out.config = crate::replay_cmd::run_config(&run).ok(),
            Event::Candle(c) => {
                out.granularity_s
                    .insert(c.symbol.to_string(), c.granularity_s);
                let bar = Bar {
                    open_ms: c.open_ms,
                    open: plot(c.open),
                    high: plot(c.high),
                    low: plot(c.low),
                    close: plot(c.close),
                };
                let bars = out.candles.entry(c.symbol.to_string()).or_default();
                bars.entry(c.open_ms).or_insert(bar);
            }
            Event::OrderPlaced(o) => {
                if let Some(bracket) = o.bracket {
                    out.brackets.insert(o.client_order_id.to_string(), bracket);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The bar lengths a long run is drawn in (seconds): the first that is a
/// multiple of the candles' and leaves at most `BARS_MAX` bars is used, so bars
/// start on round times (a 30-minute bar at :00 and :30).
const BAR_SPANS_S: [u64; 16] = [
    60, 120, 180, 300, 600, 900, 1_800, 3_600, 7_200, 14_400, 21_600, 43_200, 86_400, 172_800,
    345_600, 604_800,
];

/// How a symbol's candles are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drawn {
    /// One bar per candle.
    AsJournaled,
    /// Merged into bars of this many seconds, aligned to the epoch.
    Span(u64),
    /// Merged by count (no span fits the candles' length).
    Chunks(usize),
}

/// Merges consecutive bars with the same `key` into one OHLC bar opening at
/// the key's time.
fn merge(bars: &[Bar], key: impl Fn(usize, &Bar) -> i64, open_ms: impl Fn(i64) -> i64) -> Vec<Bar> {
    let mut out: Vec<Bar> = Vec::new();
    let mut last_key = None;
    for (i, bar) in bars.iter().enumerate() {
        let k = key(i, bar);
        match out.last_mut() {
            Some(merged) if last_key == Some(k) => {
                merged.high = merged.high.max(bar.high);
                merged.low = merged.low.min(bar.low);
                merged.close = bar.close;
            }
            _ => out.push(Bar {
                open_ms: open_ms(k).max(out.last().map_or(i64::MIN, |b| b.open_ms + 1)),
                ..*bar
            }),
        }
        last_key = Some(k);
    }
    out
}

/// At most `max` bars for `bars` (candles of `granularity_s`, in time order).
fn aggregate(bars: Vec<Bar>, granularity_s: u32, max: usize) -> (Vec<Bar>, Drawn) {
    let max = max.max(1);
    if bars.len() <= max {
        return (bars, Drawn::AsJournaled);
    }
    let g = u64::from(granularity_s);
    for span in BAR_SPANS_S
        .into_iter()
        .filter(|s| g > 0 && *s > g && s % g == 0)
    {
        let span_ms = span as i64 * 1000;
        let merged = merge(&bars, |_, b| b.open_ms.div_euclid(span_ms), |k| k * span_ms);
        if merged.len() <= max {
            return (merged, Drawn::Span(span));
        }
    }
    let per_bar = bars.len().div_ceil(max);
    let merged = merge(
        &bars,
        |i, _| (i / per_bar) as i64,
        |k| bars[k as usize * per_bar].open_ms,
    );
    (merged, Drawn::Chunks(per_bar))
}

/// The bar a moment falls in: the last that opened before it. A replay's
/// fill is journaled at the close of the candle that filled it, which is the
/// next candle's open: that candle is the one drawn with it.
fn bar_at(bars: &[Bar], ms: i64) -> usize {
    bars.partition_point(|b| b.open_ms < ms).saturating_sub(1)
}

/// A price rounded to the product's quote increment, as a float to draw.
fn price(value: Decimal, increment: Option<Decimal>) -> f64 {
    plot(match increment {
        Some(inc) if inc > Decimal::ZERO => ((value / inc).round() * inc).normalize(),
        _ => value,
    })
}

/// One closed trade as its chart draws it: markers at the entry and exit
/// fills, the bracket's take-profit and stop over the bars it was open.
fn trade_json(t: &TradeRow, bars: &[Bar], j: &Journaled, inc: Option<Decimal>) -> Value {
    let (entry_i, exit_i) = (bar_at(bars, t.entry_ms), bar_at(bars, t.exit_ms));
    let bracket = j.brackets.get(&t.entry_client_order_id);
    let stop = bracket.map_or(t.initial_stop, |b| b.stop_trigger);
    json!({
        "id": t.trade_id,
        "entry_i": entry_i,
        "exit_i": exit_i,
        "entry_t": bars[entry_i].open_ms / 1000,
        "exit_t": bars[exit_i].open_ms / 1000,
        "entry_time": crate::output::market_time(t.entry_ms),
        "exit_time": crate::output::market_time(t.exit_ms),
        "entry": price(t.entry_price, inc),
        "exit": price(t.exit_price, inc),
        "take_profit": bracket.map(|b| price(b.take_profit_limit, inc)),
        "stop": price(stop, inc),
        "net": plot(t.net_pnl.round_dp(2)),
        "reason": t.exit_reason.name(),
    })
}

/// Decimals a price is shown with: the quote increment's.
fn precision(increment: Option<Decimal>) -> u32 {
    increment.map_or(2, |inc| inc.normalize().scale())
}

/// A human name for a candle length (`4h`, `1m`, `90s`).
fn span_name(seconds: u64) -> String {
    match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// What a symbol's chart says under it: how many candles, how they are
/// drawn, and how many trades.
fn caption(candles: usize, bars: usize, drawn: Drawn, granularity_s: u32, trades: usize) -> String {
    let span = span_name(u64::from(granularity_s));
    let drawn = match drawn {
        Drawn::AsJournaled => format!("{candles} {span} candles, each drawn as journaled"),
        Drawn::Span(s) => format!(
            "{candles} {span} candles, drawn as {bars} {} bars (at most {BARS_MAX} bars per chart)",
            span_name(s)
        ),
        Drawn::Chunks(n) => format!(
            "{candles} {span} candles, drawn as {bars} bars of {n} candles each \
             (at most {BARS_MAX} bars per chart)"
        ),
    };
    let trades = match trades {
        0 => "no closed trades. ".to_string(),
        1 => "1 closed trade (▲ entry, ▼ exit; dashed: take-profit and stop): click a marker for its decision trail. ".to_string(),
        n => format!("{n} closed trades (▲ entry, ▼ exit; dashed: take-profit and stop): click a marker for its decision trail. "),
    };
    format!("{drawn}; {trades}Wheel or pinch to zoom, drag to pan.")
}

/// One symbol's chart data: its bars, its trades and how to show prices.
fn symbol_json(symbol: &str, bars: Vec<Bar>, state: &State, j: &Journaled) -> Value {
    let candles = bars.len();
    let granularity_s = j.granularity_s.get(symbol).copied().unwrap_or(0);
    let (bars, drawn) = aggregate(bars, granularity_s, BARS_MAX);
    let inc = j
        .config
        .as_ref()
        .and_then(|c| c.product(symbol))
        .map(|p| p.quote_increment);
    let trades: Vec<Value> = state
        .trades
        .iter()
        .filter(|t| t.symbol == symbol)
        .map(|t| trade_json(t, &bars, j, inc))
        .collect();
    let rows: Vec<(i64, f64, f64, f64, f64)> = bars
        .iter()
        .map(|b| (b.open_ms / 1000, b.open, b.high, b.low, b.close))
        .collect();
    json!({
        "symbol": symbol,
        "precision": precision(inc),
        "min_move": inc.map_or(0.01, plot),
        "caption": caption(candles, rows.len(), drawn, granularity_s, trades.len()),
        "bars": rows,
        "trades": trades,
    })
}

/// The daily equity and its drawdown from the peak (in %, never `-0`).
fn equity_json(state: &State) -> (Value, Value) {
    let daily = &state.equity.daily;
    let time = |day: i64| day.saturating_mul(DAY_MS) / 1000;
    let equity: Vec<(i64, f64)> = daily
        .iter()
        .map(|p| (time(p.day), plot(p.equity.round_dp(2))))
        .collect();
    let drawdown: Vec<(i64, f64)> = daily
        .iter()
        .map(|p| {
            let pct = anx_projections::engine::risk::drawdown_pct(p.equity, p.peak).round_dp(4);
            (time(p.day), 0.0 - plot(pct).abs())
        })
        .map(|(t, v)| (t, if v == 0.0 { 0.0 } else { v }))
        .collect();
    (json!(equity), json!(drawdown))
}

/// Everything the report's charts draw, read once per report.
pub struct Charts {
    data: Value,
    symbols: Vec<String>,
}

impl Charts {
    /// Reads the candles and brackets from `journal` for the run in `state`.
    pub fn read(journal: &Path, state: &State) -> Result<Charts> {
        let mut j = read_journal(journal)?;
        let candles = std::mem::take(&mut j.candles);
        let mut symbols = Vec::new();
        let mut series = Vec::new();
        for (symbol, bars) in candles {
            let bars: Vec<Bar> = bars.into_values().collect();
            series.push(symbol_json(&symbol, bars, state, &j));
            symbols.push(symbol);
        }
        let (equity, drawdown) = equity_json(state);
        let data = json!({ "symbols": series, "equity": equity, "drawdown": drawdown });
        Ok(Charts { data, symbols })
    }

    /// The equity and drawdown sections: a chart each, drawn by the script.
    pub fn equity_html(&self) -> String {
        let days = self.data["equity"].as_array().map_or(0, Vec::len);
        let note = match days {
            0 => "No day closed in this run: nothing to draw.".to_string(),
            1 => "One day: a single point.".to_string(),
            n => format!("{n} days. Hover for a day's value; wheel to zoom, drag to pan."),
        };
        format!(
            "<h2 id=\"equity\">Equity (close of each UTC day)</h2>\
             <div class=\"chart small\" id=\"chart-equity\" data-chart=\"equity\"></div>\
             <p class=\"caption\">{note}</p>\n\
             <h2 id=\"drawdown\">Drawdown from peak (%)</h2>\
             <div class=\"chart small\" id=\"chart-drawdown\" data-chart=\"drawdown\"></div>\
             <p class=\"caption\">{note}</p>\n"
        )
    }

    /// The price charts: one per symbol that has candles in the journal.
    pub fn price_html(&self) -> String {
        let mut out = String::from("<h2 id=\"charts\">Price and trades</h2>\n<noscript><p class=\"muted\">The charts need JavaScript.</p></noscript>\n");
        if self.symbols.is_empty() {
            out.push_str("<p class=\"muted\">The journal holds no candles.</p>\n");
        }
        for (i, symbol) in self.symbols.iter().enumerate() {
            let caption = self.data["symbols"][i]["caption"].as_str().unwrap_or("");
            let _ = writeln!(
                out,
                "<h3>{0}</h3><div class=\"chart\" id=\"chart-price-{i}\" data-chart=\"price\" data-index=\"{i}\"></div>\
                 <p class=\"caption\" id=\"caption-price-{i}\">{1}</p>",
                crate::html::esc(symbol),
                crate::html::esc(caption)
            );
        }
        out
    }

    /// The library's attribution, the data block, the library and the
    /// report's script, to close the page with.
    pub fn scripts(&self) -> String {
        // In JSON, `<` occurs only inside strings, where `\u003c` is the same
        // text: the block can never close early.
        let data = self.data.to_string().replace('<', "\\u003c");
        format!(
            "<footer>Charts drawn by {} (Apache License 2.0), inlined in this file: \
             the report loads nothing from the network.</footer>\n\
             <script type=\"application/json\" id=\"anx-chart-data\">{data}</script>\n\
             <script>{LIBRARY}</script>\n<script>{SCRIPT}</script>\n",
            notice_html()
        )
    }
}

/// The library's NOTICE as one line of HTML, its addresses as links (which
/// load nothing unless followed).
fn notice_html() -> String {
    LIBRARY_NOTICE
        .split_whitespace()
        .map(|word| match word.strip_prefix("https://") {
            Some(_) => format!(
                "<a href=\"{0}\" rel=\"noopener noreferrer\">{0}</a>",
                crate::html::esc(word)
            ),
            None => crate::html::esc(word),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(open_ms: i64, low: f64, high: f64) -> Bar {
        Bar {
            open_ms,
            open: low,
            high,
            low,
            close: high,
        }
    }

    #[test]
    fn aggregation_bounds_the_bars_on_round_times_and_keeps_the_extremes() {
        // 12,001 one-minute candles: 3-minute bars are the first span that fits.
        let bars: Vec<Bar> = (0..12_001)
            .map(|i| bar(i * 60_000, i as f64, i as f64 + 1.0))
            .collect();
        let (merged, drawn) = aggregate(bars.clone(), 60, BARS_MAX);
        assert_eq!(drawn, Drawn::Span(180));
        assert!(merged.len() <= BARS_MAX);
        let first = Bar {
            open_ms: 0,
            open: 0.0,
            high: 3.0,
            low: 0.0,
            close: 3.0,
        };
        assert_eq!(merged[0], first);
        assert_eq!(merged.last().unwrap().open_ms, 12_000 * 60_000);
        // A length no span is a multiple of: merged by count.
        let (chunks, drawn) = aggregate(bars, 11, BARS_MAX);
        assert_eq!(drawn, Drawn::Chunks(3));
        assert_eq!(chunks[0], first);
        assert!(chunks.len() <= BARS_MAX);
        let (same, drawn) = aggregate(vec![bar(0, 1.0, 2.0)], 60, BARS_MAX);
        assert_eq!((same.len(), drawn), (1, Drawn::AsJournaled));
    }

    #[test]
    fn the_inlined_scripts_cannot_close_their_script_element() {
        for (name, text) in [("library", LIBRARY), ("report.js", SCRIPT)] {
            let lower = text.to_ascii_lowercase();
            assert!(!lower.contains("</script"), "{name} holds </script");
            assert!(!lower.contains("<!--"), "{name} holds <!--");
        }
        assert!(LIBRARY_NOTICE.contains("TradingView"));
    }

    #[test]
    fn a_moment_falls_in_the_bar_that_opened_before_it() {
        let bars = [bar(0, 1.0, 2.0), bar(100, 1.0, 2.0), bar(200, 1.0, 2.0)];
        assert_eq!(bar_at(&bars, -5), 0);
        assert_eq!(bar_at(&bars, 0), 0);
        assert_eq!(bar_at(&bars, 100), 0, "journaled at the close of the first");
        assert_eq!(bar_at(&bars, 150), 1);
        assert_eq!(bar_at(&bars, 999), 2);
    }

    #[test]
    fn prices_round_to_the_increment() {
        let inc = Some(Decimal::new(1, 2));
        let raw: Decimal = "62757.447142857142857142857143".parse().unwrap();
        assert_eq!(price(raw, inc), 62757.45);
        assert_eq!(price(raw, None), 62_757.447_142_857_14);
        assert_eq!(precision(inc), 2);
        assert_eq!(precision(Some(Decimal::new(5, 1))), 1);
        assert_eq!(span_name(14_400), "4h");
        assert_eq!(span_name(60 * 27), "27m");
    }
}
