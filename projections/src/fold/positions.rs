//! Positions and cash. A fill moves its symbol's position (quantity, cost,
//! fees, realized PnL), the cash pot the symbol trades from, the fees total
//! and the equity curve; a reconciliation must agree with the position the
//! fills built.
//!
//! Every check of a fill is here, in the order its refusals are reported;
//! what a checked fill changes in its order and in the open trade is
//! `orders.rs`'s and `trades.rs`'s.

use super::{equity, fail, orders, trades, Projection};
use crate::error::{FoldResult, Rule};
use crate::model::*;
use anx_journal::*;
use rust_decimal::Decimal;

/// What the checks of a fill found, for applying it.
struct CheckedFill {
    /// The symbol of the fill's order.
    symbol: String,
    /// The cash pot that symbol trades from.
    pot: String,
    /// Price × size.
    notional: Decimal,
    /// Cash received (a sell) or paid (a buy, negative), after the fee.
    cash_change: Decimal,
}

/// A fill: checked ([`check_fill`]), then applied ([`apply_fill`]).
pub(super) fn fill(p: &mut Projection, seq: Seq, market_ms: UnixMs, e: &Fill) -> FoldResult {
    let checked = check_fill(p, seq, e)?;
    apply_fill(p, seq, market_ms, e, checked);
    p.links.last_fill_seq = Some(seq);
    Ok(())
}

/// A fill names its order's seq, has a positive price and size and a fee of
/// at least zero, fits its order, leaves its pot's cash at zero or above, and
/// fits its symbol's position (see [`check_buy`], [`check_sell`]).
fn check_fill(p: &Projection, seq: Seq, e: &Fill) -> FoldResult<CheckedFill> {
    orders::check_order_seq(p, seq, &e.client_order_id, e.order_seq)?;
    if e.price <= Decimal::ZERO || e.size <= Decimal::ZERO || e.fee < Decimal::ZERO {
        return fail(
            seq,
            Rule::Domain,
            format!(
                "fill {} with non-positive price or size, or a negative fee",
                e.fill_id
            ),
        );
    }
    let order = orders::check_fill(p, seq, e)?;
    let notional = e.price * e.size;
    let pot = p.state.pot(&order.symbol).to_string();
    let cash_change = match e.side {
        Side::Buy => -(notional + e.fee),
        Side::Sell => notional - e.fee,
    };
    let cash_before = p.state.cash.get(&pot).map_or(Decimal::ZERO, |c| c.0);
    if cash_before + cash_change < Decimal::ZERO {
        return fail(
            seq,
            Rule::Cash,
            format!(
                "cash in pot {pot} would be {} after fill {}",
                cash_before + cash_change,
                e.fill_id
            ),
        );
    }
    let symbol = p.symbol(seq, &order.symbol)?;
    match e.side {
        Side::Buy => check_buy(symbol, seq, e, &order.symbol)?,
        Side::Sell => check_sell(symbol, seq, e, &order.symbol)?,
    }
    Ok(CheckedFill {
        symbol: order.symbol.clone(),
        pot,
        notional,
        cash_change,
    })
}

/// A buy fills an entry while it is pending (or the position it opened, or a
/// symbol that failed closed with it in flight), and opens or adds to the
/// symbol's one trade: never a second position.
fn check_buy(symbol: &SymbolState, seq: Seq, e: &Fill, symbol_name: &str) -> FoldResult {
    if !matches!(
        symbol.engine.0,
        EngineState::EntryPending | EngineState::PositionOpen | EngineState::FailClosed
    ) {
        return fail(
            seq,
            Rule::FillMismatch,
            format!(
                "entry fill {} on {symbol_name} while {:?}",
                e.fill_id, symbol.engine.0
            ),
        );
    }
    match &symbol.open_trade {
        None if !symbol.position.quantity.is_zero() => fail(
            seq,
            Rule::SecondPosition,
            format!("{symbol_name} already holds a position"),
        ),
        Some(trade) if trade.entry_client_order_id != e.client_order_id => fail(
            seq,
            Rule::SecondPosition,
            format!(
                "entry fill for {} while trade {} is open on {symbol_name}",
                e.client_order_id, trade.entry_client_order_id
            ),
        ),
        _ => Ok(()),
    }
}

/// A sell sells no more than the position holds, of the open trade, through
/// the trade's entry (its bracket legs) or one of its exit orders.
fn check_sell(symbol: &SymbolState, seq: Seq, e: &Fill, symbol_name: &str) -> FoldResult {
    if symbol.position.quantity < e.size {
        return fail(
            seq,
            Rule::FillMismatch,
            format!(
                "sell fill {} of {} exceeds the {symbol_name} position of {}",
                e.fill_id, e.size, symbol.position.quantity
            ),
        );
    }
    let Some(trade) = &symbol.open_trade else {
        return fail(
            seq,
            Rule::FillMismatch,
            format!(
                "sell fill {} with no open trade on {symbol_name}",
                e.fill_id
            ),
        );
    };
    let belongs = trade.entry_client_order_id == e.client_order_id
        || trade.exit_orders.contains(&e.client_order_id);
    if !belongs {
        return fail(
            seq,
            Rule::FillMismatch,
            format!(
                "sell fill {} on order {} which is not part of the open {symbol_name} trade",
                e.fill_id, e.client_order_id
            ),
        );
    }
    Ok(())
}

/// Applies a checked fill: the position, the open trade, the marked value of
/// held units, cash, fees, the order, and an equity sample.
fn apply_fill(p: &mut Projection, seq: Seq, market_ms: UnixMs, e: &Fill, c: CheckedFill) {
    let state = &mut p.state;
    if let Some(symbol) = state.symbols.get_mut(&c.symbol) {
        // Held units are marked at the last close, or at the fill price before
        // the symbol's first candle.
        let mark = *symbol.last_close.get_or_insert(e.price);
        match e.side {
            Side::Buy => {
                let opening = trades::record_buy(&mut symbol.open_trade, e, c.notional, market_ms);
                if opening {
                    let entry = p.links.entry_context.get(&c.symbol).cloned();
                    state.open_details.insert(
                        c.symbol.clone(),
                        TradeDetail {
                            entry: entry.unwrap_or_default(),
                            ..TradeDetail::default()
                        },
                    );
                }
                buy(&mut symbol.position, e, c.notional);
                if symbol.in_flight.as_deref() == Some(e.client_order_id.as_str()) {
                    symbol.in_flight = None;
                }
                if opening {
                    symbol.trades_opened += 1;
                    if let Some(run) = &mut state.run {
                        run.trades_opened += 1;
                    }
                }
                state.equity.marked += e.size * mark;
            }
            Side::Sell => {
                trades::record_sell(&mut symbol.open_trade, e, c.notional);
                sell(&mut symbol.position, e, c.notional);
                state.equity.marked -= e.size * mark;
                p.links.last_exit_fill.insert(c.symbol.clone(), seq);
            }
        }
    }
    if let Some(detail) = state.open_details.get_mut(&c.symbol) {
        detail.liquidity.add(e.liquidity, c.notional);
    }
    state.cash.entry(c.pot).or_default().0 += c.cash_change;
    state.equity.cash += c.cash_change;
    state.fees_total += e.fee;
    orders::record_fill(p, seq, e);
    equity::sample(&mut p.state.equity, market_ms);
}

/// Bought units add their notional to the position's cost.
fn buy(position: &mut Position, e: &Fill, notional: Decimal) {
    position.quantity += e.size;
    position.cost += notional;
    position.fees_paid += e.fee;
}

/// Sold units take their share of the cost (average entry) with them and
/// realize the difference to what they sold for.
fn sell(position: &mut Position, e: &Fill, notional: Decimal) {
    let cost_removed = if e.size == position.quantity {
        position.cost
    } else {
        position.cost * e.size / position.quantity
    };
    position.realized_gross += notional - cost_removed;
    position.quantity -= e.size;
    position.cost -= cost_removed;
    position.fees_paid += e.fee;
}

/// A reconciliation must agree with the position the journal's fills built.
pub(super) fn reconciliation(p: &mut Projection, seq: Seq, e: &Reconciliation) -> FoldResult {
    let symbol = p.symbol(seq, &e.symbol)?;
    if e.our_position != symbol.position.quantity {
        return fail(
            seq,
            Rule::FillMismatch,
            format!(
                "reconciliation says our {} position is {}, the journal's fills say {}",
                e.symbol, e.our_position, symbol.position.quantity
            ),
        );
    }
    if let Some(symbol) = p.state.symbols.get_mut(&e.symbol) {
        symbol.last_reconciliation = Some(e.outcome);
    }
    Ok(())
}
