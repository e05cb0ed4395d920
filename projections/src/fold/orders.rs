//! Orders: each order's lifecycle – placed, acknowledged, bracket verified,
//! filled, rejected or cancelled – and its causal links (the seqs of its
//! decision, candle, ack, bracket verification and fills) that audit coverage
//! and `TradeClosed` are checked against. Placing an order also marks the
//! symbol's entry in flight, or adds an exit order to the open trade.

use super::{fail, Projection};
use crate::error::{FoldResult, Rule};
use crate::model::*;
use anx_journal::*;
use rust_decimal::Decimal;

/// The newest decision on a symbol, as an order links to it: (decision seq,
/// the candle it read, whether it said `enter`).
type DecisionLink = (Seq, Seq, bool);

/// An order placed: checked ([`check_placed`]), then recorded as live.
pub(super) fn placed(p: &mut Projection, seq: Seq, e: &OrderPlaced) -> FoldResult {
    let decision = check_placed(p, seq, e)?;
    record_placed(p, seq, e, decision);
    Ok(())
}

/// An order is placed once, from its symbol's newest decision, with a
/// positive size and price, and fits the symbol's position (see
/// [`check_entry`], [`check_exit`]).
fn check_placed(p: &Projection, seq: Seq, e: &OrderPlaced) -> FoldResult<DecisionLink> {
    let symbol = p.symbol(seq, &e.product_id)?;
    if p.links.placed.contains(&e.client_order_id) {
        return fail(
            seq,
            Rule::OrderLifecycle,
            format!(
                "client_order_id {} was placed before: an order is never placed twice",
                e.client_order_id
            ),
        );
    }
    let decision = check_decision_link(p, seq, e)?;
    if e.base_size <= Decimal::ZERO || e.limit_price.is_some_and(|p| p <= Decimal::ZERO) {
        return fail(
            seq,
            Rule::Domain,
            format!(
                "order {} with a non-positive size or price",
                e.client_order_id
            ),
        );
    }
    match e.purpose {
        OrderPurpose::Entry => check_entry(symbol, seq, e)?,
        OrderPurpose::Exit => check_exit(symbol, seq, e)?,
    }
    Ok(decision)
}

/// The order names the newest decision on its symbol.
fn check_decision_link(p: &Projection, seq: Seq, e: &OrderPlaced) -> FoldResult<DecisionLink> {
    let Some(&decision) = p.links.last_decision.get(&e.product_id) else {
        return fail(
            seq,
            Rule::OrderLink,
            format!(
                "order {} on {} without a decision",
                e.client_order_id, e.product_id
            ),
        );
    };
    let decision_seq = decision.0;
    if decision_seq != e.decision_seq {
        return fail(
            seq,
            Rule::OrderLink,
            format!(
                "order {} names decision seq {}, but the newest {} decision is seq {decision_seq}",
                e.client_order_id, e.decision_seq, e.product_id
            ),
        );
    }
    Ok(decision)
}

/// An entry is a buy (spot, long only) on a symbol that is not fail-closed,
/// idle, flat and has no other entry in flight.
fn check_entry(symbol: &SymbolState, seq: Seq, e: &OrderPlaced) -> FoldResult {
    let symbol_name = &e.product_id;
    if e.side != Side::Buy {
        return fail(
            seq,
            Rule::OrderLifecycle,
            "entries are buys (spot, long only)",
        );
    }
    if let Some(reason) = &symbol.fail_closed {
        return fail(
            seq,
            Rule::FailClosedBlocks,
            format!(
                "{symbol_name} is fail-closed ({reason}); entry {} refused",
                e.client_order_id
            ),
        );
    }
    if symbol.in_flight.is_some()
        || !symbol.position.quantity.is_zero()
        || symbol.engine.0 != EngineState::Idle
    {
        return fail(
            seq,
            Rule::SecondPosition,
            format!(
                "entry {} on {symbol_name} while {:?} (in flight: {:?}, position {})",
                e.client_order_id, symbol.engine.0, symbol.in_flight, symbol.position.quantity
            ),
        );
    }
    Ok(())
}

/// An exit is a sell of the symbol's open trade.
fn check_exit(symbol: &SymbolState, seq: Seq, e: &OrderPlaced) -> FoldResult {
    if e.side != Side::Sell {
        return fail(seq, Rule::OrderLifecycle, "exits are sells");
    }
    if symbol.open_trade.is_none() {
        return fail(
            seq,
            Rule::OrderLifecycle,
            format!(
                "exit {} on {} with no open position",
                e.client_order_id, e.product_id
            ),
        );
    }
    Ok(())
}

/// Records a checked order: live, linked to its decision, its id taken for
/// good, and as the symbol's entry in flight or one of its trade's exits.
fn record_placed(p: &mut Projection, seq: Seq, e: &OrderPlaced, decision: DecisionLink) {
    let (decision_seq, candle_seq, entered) = decision;
    let client_order_id = &e.client_order_id;
    if let Some(symbol) = p.state.symbols.get_mut(&e.product_id) {
        match e.purpose {
            OrderPurpose::Entry => symbol.in_flight = Some(client_order_id.clone()),
            OrderPurpose::Exit => {
                if let Some(trade) = symbol.open_trade.as_mut() {
                    trade.exit_orders.push(client_order_id.clone());
                }
            }
        }
    }
    p.links.placed.insert(client_order_id.clone());
    p.state.orders.insert(
        client_order_id.clone(),
        OrderState {
            client_order_id: client_order_id.clone(),
            symbol: e.product_id.clone(),
            side: e.side,
            purpose: e.purpose,
            has_bracket: e.bracket.is_some(),
            status: OrderStatus::Placed,
            bracket_verified: false,
            exchange_order_id: String::new(),
            size: e.base_size,
            filled: Decimal::ZERO,
        },
    );
    p.links.orders.insert(
        client_order_id.clone(),
        OrderLinks {
            order_seq: seq,
            decision_seq,
            candle_seq,
            decision_entered: entered,
            ..OrderLinks::default()
        },
    );
}

/// An event about an order names the seq the order was placed at.
pub(super) fn check_order_seq(
    p: &Projection,
    seq: Seq,
    client_order_id: &str,
    order_seq: Seq,
) -> FoldResult {
    match p.links.orders.get(client_order_id) {
        Some(links) if links.order_seq == order_seq => Ok(()),
        Some(links) => fail(
            seq,
            Rule::OrderLink,
            format!("event names order seq {order_seq} for {client_order_id}, which was placed at seq {}", links.order_seq),
        ),
        None => fail(seq, Rule::UnknownOrder, format!("no live order {client_order_id}")),
    }
}

/// The broker acknowledged a placed order.
pub(super) fn acknowledged(p: &mut Projection, seq: Seq, e: &OrderAcknowledged) -> FoldResult {
    let order = p.order(seq, &e.client_order_id)?;
    if order.status != OrderStatus::Placed {
        return fail(
            seq,
            Rule::OrderLifecycle,
            format!(
                "order {} acknowledged while {:?}",
                e.client_order_id, order.status
            ),
        );
    }
    check_order_seq(p, seq, &e.client_order_id, e.order_seq)?;
    if let Some(order) = p.state.orders.get_mut(&e.client_order_id) {
        order.status = OrderStatus::Acknowledged;
        order.exchange_order_id = e.exchange_order_id.clone();
    }
    if let Some(links) = p.links.orders.get_mut(&e.client_order_id) {
        links.ack_seq = Some(seq);
    }
    Ok(())
}

/// The broker confirmed an order's bracket legs.
pub(super) fn bracket_verified(p: &mut Projection, seq: Seq, e: &BracketVerified) -> FoldResult {
    check_order_seq(p, seq, &e.client_order_id, e.order_seq)?;
    let order = p.order(seq, &e.client_order_id)?;
    if !order.has_bracket {
        return fail(
            seq,
            Rule::OrderLifecycle,
            format!("bracket verified for {}, which has none", e.client_order_id),
        );
    }
    if let Some(order) = p.state.orders.get_mut(&e.client_order_id) {
        order.bracket_verified = true;
    }
    if let Some(links) = p.links.orders.get_mut(&e.client_order_id) {
        links.bracket_seq.get_or_insert(seq);
    }
    Ok(())
}

/// The broker found no protection attached to an entry that carries a
/// bracket: never confirmed, or – a real exchange – confirmed and since
/// gone (the attached order cancelled at the exchange while the position is
/// open). The order is no longer protected; the engine fails the symbol
/// closed in reaction.
pub(super) fn bracket_unconfirmed(
    p: &mut Projection,
    seq: Seq,
    e: &BracketUnconfirmed,
) -> FoldResult {
    check_order_seq(p, seq, &e.client_order_id, e.order_seq)?;
    let order = p.order(seq, &e.client_order_id)?;
    if !order.has_bracket {
        return fail(
            seq,
            Rule::OrderLifecycle,
            format!(
                "bracket of {} unconfirmed, but it has none",
                e.client_order_id
            ),
        );
    }
    if let Some(order) = p.state.orders.get_mut(&e.client_order_id) {
        order.bracket_verified = false;
    }
    Ok(())
}

/// A receipt follows the broker answer it describes, right after it.
pub(super) fn answer_receipt(p: &mut Projection, seq: Seq, e: &AnswerReceipt) -> FoldResult {
    let previous = p.links.seq;
    if e.answer_seq != previous || p.links.last_answer_seq != Some(previous) {
        return fail(
            seq,
            Rule::OrderLifecycle,
            format!(
                "receipt of seq {}, but the event before it (seq {previous}) is not a broker answer",
                e.answer_seq
            ),
        );
    }
    if p.links.last_fill_seq == Some(e.answer_seq) {
        p.links.last_fill_broker_ms = Some(e.broker_time_ms);
    }
    Ok(())
}

/// A cancel request names a working order, by its seq. It changes nothing
/// yet: the broker's `OrderCancelled` ends the order.
pub(super) fn cancel_requested(p: &Projection, seq: Seq, e: &CancelRequested) -> FoldResult {
    check_order_seq(p, seq, &e.client_order_id, e.order_seq)?;
    let order = p.order(seq, &e.client_order_id)?;
    if !order.is_open() {
        return fail(
            seq,
            Rule::OrderLifecycle,
            format!(
                "cancel of {}, which is {:?}, not working",
                e.client_order_id, order.status
            ),
        );
    }
    Ok(())
}

/// A rejection or cancellation. A rejected order has filled nothing; a
/// cancelled entry may have filled in part, and then only its remainder ends
/// (the order stays live for its bracket legs and the open trade).
pub(super) fn ended(
    p: &mut Projection,
    seq: Seq,
    client_order_id: &str,
    status: OrderStatus,
) -> FoldResult {
    let order = p.order(seq, client_order_id)?;
    let partial_cancel = status == OrderStatus::Cancelled
        && order.purpose == OrderPurpose::Entry
        && order.status == OrderStatus::Acknowledged
        && !order.filled.is_zero();
    if !partial_cancel && (!order.is_open() || !order.filled.is_zero()) {
        return fail(
            seq,
            Rule::OrderLifecycle,
            format!(
                "order {client_order_id} {status:?} while {:?} with {} filled",
                order.status, order.filled
            ),
        );
    }
    let symbol_name = order.symbol.clone();
    p.symbol(seq, &symbol_name)?;
    if partial_cancel {
        if let Some(order) = p.state.orders.get_mut(client_order_id) {
            order.size = order.filled;
            order.status = OrderStatus::Filled;
        }
    } else {
        p.state.orders.remove(client_order_id);
        p.links.orders.remove(client_order_id);
        let symbol = p.state.symbols.get_mut(&symbol_name);
        if let Some(trade) = symbol.and_then(|s| s.open_trade.as_mut()) {
            trade.exit_orders.retain(|id| id != client_order_id);
        }
    }
    if let Some(symbol) = p.state.symbols.get_mut(&symbol_name) {
        if symbol.in_flight.as_deref() == Some(client_order_id) {
            symbol.in_flight = None;
        }
    }
    Ok(())
}

/// The order a fill is for: live, not already holding this fill, of the
/// purpose and side the fill's leg belongs to (a bracket leg needs a
/// bracket), and not overfilled.
pub(super) fn check_fill<'p>(p: &'p Projection, seq: Seq, e: &Fill) -> FoldResult<&'p OrderState> {
    let order = p.order(seq, &e.client_order_id)?;
    if let Some(at) = p.links.fills.get(&e.fill_id) {
        return fail(
            seq,
            Rule::FillMismatch,
            format!(
                "fill {} of {} was journaled before, at seq {at}: a fill counts once",
                e.fill_id, e.client_order_id
            ),
        );
    }
    let expected = match e.leg {
        FillLeg::Entry => (OrderPurpose::Entry, Side::Buy, false),
        FillLeg::TakeProfit | FillLeg::StopLoss => (OrderPurpose::Entry, Side::Sell, true),
        FillLeg::Exit => (OrderPurpose::Exit, Side::Sell, false),
    };
    if (order.purpose, e.side) != (expected.0, expected.1) || (expected.2 && !order.has_bracket) {
        return fail(
            seq,
            Rule::FillMismatch,
            format!(
                "{:?} {:?} fill {} does not fit {:?} order {}",
                e.leg, e.side, e.fill_id, order.purpose, e.client_order_id
            ),
        );
    }
    if matches!(e.leg, FillLeg::Entry | FillLeg::Exit) && order.filled + e.size > order.size {
        return fail(
            seq,
            Rule::FillMismatch,
            format!(
                "fill {} overfills order {} ({} + {} > {})",
                e.fill_id, e.client_order_id, order.filled, e.size, order.size
            ),
        );
    }
    Ok(order)
}

/// Counts a checked fill against its order (bracket legs fill the legs, not
/// the order) and links the order to its first and last fill.
pub(super) fn record_fill(p: &mut Projection, seq: Seq, e: &Fill) {
    if let Some(order) = p.state.orders.get_mut(&e.client_order_id) {
        if matches!(e.leg, FillLeg::Entry | FillLeg::Exit) {
            order.filled += e.size;
            if order.filled == order.size {
                order.status = OrderStatus::Filled;
            }
        }
    }
    if let Some(links) = p.links.orders.get_mut(&e.client_order_id) {
        links.first_fill_seq.get_or_insert(seq);
        links.last_fill_seq = Some(seq);
    }
    p.links.fills.insert(e.fill_id.clone(), seq);
}
