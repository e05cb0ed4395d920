//! The projection's tables: `trades.parquet`, one row per closed trade, and
//! `equity.parquet`, one row per UTC day. Column names are those of the
//! `trade_list` and `equity_daily` arrays of `anx journal replay --json`
//! (`src/render.rs`), so the two can be compared row for row.

use super::table::Row;
use anx_projections::engine::risk::drawdown_pct;
use anx_projections::{DailyEquity, TradeDetail, TradeRow, HOUR_MS};

/// One closed trade as a row of `trades.parquet`: the one place a
/// [`TradeRow`] field becomes a column (a new field is one more line here).
/// Its instants are the `_time` columns of `trade_list` (as timestamps, so
/// its `_ms` twins are left out); `hold_hours` is the hold as a float, since
/// hours of a millisecond hold are seldom a finite decimal. Its detail (the
/// entry's signals and regime, the fills' liquidity) follows, with the
/// derived `edge` and `risk`, as in `trade_list`.
pub fn trade_row(t: &TradeRow, detail: &TradeDetail, row: &mut Row) {
    row.text("trade_id", t.trade_id.as_str());
    row.symbol("symbol", t.symbol.as_str());
    row.text("entry_client_order_id", t.entry_client_order_id.as_str());
    row.time("entry_time", t.entry_ms);
    row.time("exit_time", t.exit_ms);
    row.f64("hold_hours", t.hold_ms() as f64 / HOUR_MS as f64);
    row.dec("entry_price", t.entry_price);
    row.dec("exit_price", t.exit_price);
    row.dec("size", t.size);
    row.dec("initial_stop", t.initial_stop);
    row.text("exit_reason", t.exit_reason.name());
    row.dec("gross_pnl", t.gross_pnl);
    row.dec("fees", t.fees);
    row.dec("slippage", t.slippage);
    row.dec("net_pnl", t.net_pnl);
    row.dec("theoretical_r", t.theoretical_r);
    row.dec("realized_r", t.realized_r);
    row.dec("edge", t.edge());
    row.dec("risk", t.risk());
    row.text("entry_signals", detail.entry.signals.as_str());
    row.text("entry_regime", detail.entry.regime.as_str());
    row.dec("maker_notional", detail.liquidity.maker_notional);
    row.dec("taker_notional", detail.liquidity.taker_notional);
    row.dec(
        "maker_share_pct",
        anx_projections::report::percent(detail.liquidity.maker_share()),
    );
}

/// One UTC day of the equity curve: its closing equity, the peak so far and
/// the drawdown from it in percent (the `--json` report's own figure).
pub fn equity_row(day: &DailyEquity, row: &mut Row) {
    match i32::try_from(day.day) {
        Ok(date) => row.date("date", date),
        Err(_) => {
            row.date("date", None);
            row.fail(format!("day {} is out of DATE's range", day.day));
        }
    }
    row.dec("equity", day.equity);
    row.dec("peak", day.peak);
    row.dec("drawdown_pct", drawdown_pct(day.equity, day.peak));
}
