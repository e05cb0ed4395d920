//! The trade ledger. Fills build each symbol's open trade (what was bought and
//! sold, for how much, with what fees); `TradeClosed` must agree with it and
//! with the journal's links to the entry order and the fills, and then becomes
//! a ledger row: the trade's orders are forgotten, its audit coverage counted
//! and its hold time added to the exposure.

use super::{audit, equity, fail, Projection};
use crate::error::{FoldResult, Rule};
use crate::model::*;
use anx_journal::*;
use rust_decimal::Decimal;

/// Adds a checked buy to the open trade, opening it with the first one.
/// Returns whether it opened the trade.
pub(super) fn record_buy(
    open_trade: &mut Option<OpenTrade>,
    e: &Fill,
    notional: Decimal,
    market_ms: UnixMs,
) -> bool {
    let opening = open_trade.is_none();
    let trade = open_trade.get_or_insert_with(|| OpenTrade {
        entry_client_order_id: e.client_order_id.clone(),
        opened_ms: market_ms,
        ..OpenTrade::default()
    });
    trade.bought += e.size;
    trade.buy_notional += notional;
    trade.fees += e.fee;
    opening
}

/// Adds a checked sell to the open trade.
pub(super) fn record_sell(open_trade: &mut Option<OpenTrade>, e: &Fill, notional: Decimal) {
    if let Some(trade) = open_trade {
        trade.sell_notional += notional;
        trade.fees += e.fee;
    }
}

/// A trade closed: checked ([`check_closed`]), then booked ([`record_closed`]).
pub(super) fn closed(
    p: &mut Projection,
    seq: Seq,
    market_ms: UnixMs,
    e: &TradeClosed,
) -> FoldResult {
    let entry_links = check_closed(p, seq, e)?;
    record_closed(p, seq, market_ms, e, &entry_links);
    Ok(())
}

/// A `TradeClosed` that disagrees with what the journal says of its trade.
fn mismatch<T>(seq: Seq, e: &TradeClosed, what: String) -> FoldResult<T> {
    fail(
        seq,
        Rule::TradeMismatch,
        format!("trade {}: {what}", e.trade_id),
    )
}

/// A closed trade is the symbol's open trade, now flat, and agrees with its
/// fills ([`check_against_fills`]) and the journal's links
/// ([`check_against_links`]). Returns the entry order's links.
fn check_closed(p: &Projection, seq: Seq, e: &TradeClosed) -> FoldResult<OrderLinks> {
    let symbol = p.symbol(seq, &e.symbol)?;
    let Some(trade) = &symbol.open_trade else {
        return fail(
            seq,
            Rule::TradeMismatch,
            format!(
                "trade {} closed on {} with no open trade",
                e.trade_id, e.symbol
            ),
        );
    };
    if trade.entry_client_order_id != e.entry_client_order_id {
        return mismatch(
            seq,
            e,
            format!(
                "entry order {} but the open trade's is {}",
                e.entry_client_order_id, trade.entry_client_order_id
            ),
        );
    }
    if !symbol.position.quantity.is_zero() {
        return mismatch(
            seq,
            e,
            format!(
                "closed while {} {} is still held",
                symbol.position.quantity, e.symbol
            ),
        );
    }
    check_against_fills(seq, e, trade)?;
    check_against_links(p, seq, e)
}

/// Size, gross PnL and fees are what the fills say; net is gross minus fees.
fn check_against_fills(seq: Seq, e: &TradeClosed, trade: &OpenTrade) -> FoldResult {
    if e.size != trade.bought {
        return mismatch(
            seq,
            e,
            format!("size {} but the fills bought {}", e.size, trade.bought),
        );
    }
    let gross = trade.sell_notional - trade.buy_notional;
    if e.gross_pnl != gross {
        let what = format!("gross PnL {} but the fills give {}", e.gross_pnl, gross);
        return mismatch(seq, e, what);
    }
    if e.fees != trade.fees {
        let what = format!("fees {} but the fills paid {}", e.fees, trade.fees);
        return mismatch(seq, e, what);
    }
    if e.net_pnl != e.gross_pnl - e.fees {
        let what = format!(
            "net PnL {} is not gross {} minus fees {}",
            e.net_pnl, e.gross_pnl, e.fees
        );
        return mismatch(seq, e, what);
    }
    Ok(())
}

/// The exit fill is the trade's last one, and the entry order and its first
/// fill are where the journal has them. Returns the entry order's links.
fn check_against_links(p: &Projection, seq: Seq, e: &TradeClosed) -> FoldResult<OrderLinks> {
    let last_exit_fill = p.links.last_exit_fill.get(&e.symbol).copied();
    if last_exit_fill != Some(e.exit_fill_seq) {
        let what = format!(
            "exit fill seq {} but the last exit fill is {:?}",
            e.exit_fill_seq, last_exit_fill
        );
        return mismatch(seq, e, what);
    }
    let Some(entry_links) = p.links.orders.get(&e.entry_client_order_id) else {
        let what = format!("entry order {} unknown", e.entry_client_order_id);
        return mismatch(seq, e, what);
    };
    if entry_links.order_seq != e.entry_order_seq
        || entry_links.first_fill_seq != Some(e.entry_fill_seq)
    {
        let what = format!(
            "entry order/fill seqs {}/{} but the journal has {}/{:?}",
            e.entry_order_seq, e.entry_fill_seq, entry_links.order_seq, entry_links.first_fill_seq
        );
        return mismatch(seq, e, what);
    }
    Ok(entry_links.clone())
}

/// Books a checked close: the ledger row, its audit coverage, the exposure,
/// and forgets the trade's orders.
fn record_closed(
    p: &mut Projection,
    seq: Seq,
    market_ms: UnixMs,
    e: &TradeClosed,
    entry_links: &OrderLinks,
) {
    let state = &mut p.state;
    let mut exit_orders = Vec::new();
    if let Some(symbol) = state.symbols.get_mut(&e.symbol) {
        if let Some(trade) = symbol.open_trade.take() {
            exit_orders = trade.exit_orders;
        }
        symbol.trades_closed += 1;
    }
    let row = trade_row(e);
    // Audited before its orders are forgotten: the entry order says whether
    // it carried a bracket and whether the bracket was verified.
    let entry_order = state.orders.get(&row.entry_client_order_id);
    audit::record_trade(
        &mut state.audit,
        entry_order,
        seq,
        &row,
        entry_links,
        e.exit_fill_seq,
    );
    state.exposure_ms += row.hold_ms();
    if let Some(run) = &mut state.run {
        run.trades_closed += 1;
    }
    state.trades.push(row);
    let detail = state.open_details.remove(&e.symbol).unwrap_or_default();
    state.trade_details.push(detail);
    for id in std::iter::once(&e.entry_client_order_id).chain(&exit_orders) {
        state.orders.remove(id);
        p.links.orders.remove(id);
    }
    p.links.last_exit_fill.remove(&e.symbol);
    equity::sample(&mut p.state.equity, market_ms);
}

/// The ledger row, as the checked `TradeClosed` states it.
fn trade_row(e: &TradeClosed) -> TradeRow {
    TradeRow {
        trade_id: e.trade_id.clone(),
        symbol: e.symbol.clone(),
        entry_client_order_id: e.entry_client_order_id.clone(),
        entry_ms: e.entry_ms,
        exit_ms: e.exit_ms,
        entry_price: e.entry_price,
        exit_price: e.exit_price,
        size: e.size,
        initial_stop: e.initial_stop,
        exit_reason: e.exit_reason,
        fees: e.fees,
        slippage: e.slippage,
        gross_pnl: e.gross_pnl,
        net_pnl: e.net_pnl,
        theoretical_r: e.theoretical_r,
        realized_r: e.realized_r,
    }
}
