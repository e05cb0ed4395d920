//! Data quality per symbol: candles counted, and each `DataQuality` finding
//! (gaps, duplicates, out-of-order and invalid bars, volume anomalies, stale
//! data) counted in the hashed state. Feed outages and the last stale finding
//! are kept in the links instead: how often a feed failed says nothing about
//! the market, and the stale finding's seq is a journal position.

use super::{fail, Projection};
use crate::error::{FoldResult, Rule};
use crate::model::QualityCounts;
use anx_journal::*;
use std::collections::BTreeMap;

/// Counts a finding for one of the run's symbols.
pub(super) fn finding(p: &mut Projection, seq: Seq, e: &DataQuality) -> FoldResult {
    // The lookup is the only check: nothing changes before it passes.
    let Some(counts) = p.state.quality.get_mut(&e.symbol) else {
        return fail(
            seq,
            Rule::UnknownSymbol,
            format!("symbol {} is not in the run", e.symbol),
        );
    };
    match &e.issue {
        QualityIssue::Gap { missing_bars, .. } => {
            counts.gaps += 1;
            counts.missing_bars += missing_bars;
        }
        QualityIssue::Duplicate { .. } => counts.duplicates += 1,
        QualityIssue::OutOfOrder { .. } => counts.out_of_order += 1,
        QualityIssue::VolumeAnomaly { .. } => counts.volume_anomalies += 1,
        QualityIssue::InvalidCandle { .. } => counts.invalid += 1,
        QualityIssue::Stale { newest_ms, .. } => {
            counts.stale += 1;
            p.links
                .last_stale
                .insert(e.symbol.clone(), (seq, *newest_ms));
        }
        QualityIssue::FeedFault { .. } => {
            *p.links.feed_faults.entry(e.symbol.clone()).or_default() += 1;
        }
    }
    Ok(())
}

/// Counts a folded candle of `symbol`.
pub(super) fn count_candle(quality: &mut BTreeMap<String, QualityCounts>, symbol: &str) {
    if let Some(counts) = quality.get_mut(symbol) {
        counts.candles += 1;
    }
}
