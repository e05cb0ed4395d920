//! Audit coverage: for each closed trade, is its causal trail – candle →
//! decision → order → (ack, bracket verified) → entry fill → exit fill →
//! close – complete and in seq order? Complete trails are counted; an
//! incomplete one is kept with the gaps it has. Nothing here can refuse an
//! event: a gap is a finding, not an impossible event.

use crate::model::*;
use anx_journal::Seq;

/// Counts the trail of the trade closed at `close_seq`. `entry_order` is the
/// entry order as it stood before the close forgot it.
pub(super) fn record_trade(
    audit: &mut AuditCoverage,
    entry_order: Option<&OrderState>,
    close_seq: Seq,
    row: &TradeRow,
    links: &OrderLinks,
    exit_fill_seq: Seq,
) {
    let gaps = gaps(entry_order, close_seq, links, exit_fill_seq);
    audit.trades += 1;
    if gaps.is_empty() {
        audit.complete += 1;
    } else {
        audit.incomplete.insert(row.trade_id.clone(), gaps);
    }
}

/// What the trail lacks, in [`AuditGap`] order.
fn gaps(
    entry_order: Option<&OrderState>,
    close_seq: Seq,
    links: &OrderLinks,
    exit_fill_seq: Seq,
) -> Vec<AuditGap> {
    let mut gaps = Vec::new();
    if !links.decision_entered {
        gaps.push(AuditGap::DecisionNotEnter);
    }
    match entry_order {
        Some(order) if !order.has_bracket => gaps.push(AuditGap::NoBracket),
        Some(order) if !order.bracket_verified => gaps.push(AuditGap::BracketNotVerified),
        _ => {}
    }
    if links.ack_seq.is_none() {
        gaps.push(AuditGap::NotAcknowledged);
    }
    let mut chain = vec![links.candle_seq, links.decision_seq, links.order_seq];
    chain.extend(links.ack_seq);
    chain.extend(links.first_fill_seq);
    chain.push(exit_fill_seq);
    chain.push(close_seq);
    if chain.windows(2).any(|w| w[0] >= w[1])
        || links.bracket_seq.is_some_and(|b| b <= links.order_seq)
    {
        gaps.push(AuditGap::OutOfOrder);
    }
    gaps
}
