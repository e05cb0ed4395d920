//! The edge-decay watch of a running trader (`anx paper|live --reference
//! DIR`): after each step that closed a trade, the run's closed trades are
//! held against the reference run's (typically the backtest the strategy was
//! chosen on) with the thresholds of `config/compare.toml` – the same judgement
//! as `anx compare` (`anx_projections::compare::crossings`), over every trade
//! of both runs rather than a shared window, since a live run trades after its
//! backtest ended. (So the fill-slippage check is judged only where the
//! reference covers the run's own period – trades both took, matched by the
//! candle their entry decision read – and is otherwise "not judged".) A check that starts to hold is journaled as a raised
//! `Finding`, one that stops holding as a cleared one: each once, since the
//! journal's newest finding per check (re-driven at a restart) is what the
//! watch compares with.

use crate::store::{self, LoadOptions};
use anx_journal::Finding;
use anx_projections::compare::{crossings, Thresholds, TradeComparison, Window};
use anx_projections::{FindingNote, Projection, TradeDetail, TradeRow};
use anyhow::{Context, Result};
use std::path::Path;

/// The family the watch's checks are journaled under.
const FAMILY: &str = "edge_decay";

/// Every trade of both runs: a live run's trades come after its backtest's.
const ALL_TIME: Window = Window {
    from_ms: i64::MIN,
    to_ms: i64::MAX,
};

pub struct EdgeWatch {
    reference: Vec<(TradeRow, TradeDetail)>,
    thresholds: Thresholds,
    /// The run's closed trades when it last judged (none yet: judge at once).
    judged_trades: Option<usize>,
}

impl EdgeWatch {
    /// Reads the reference run's closed trades and the thresholds; an error
    /// here stops the trader before it journals anything.
    pub fn open(reference: &Path, thresholds: &Path) -> Result<EdgeWatch> {
        let thresholds = crate::compare::read_thresholds(thresholds)?;
        crate::journal_cmd::check_dir(reference)?;
        let loaded = store::load(reference, LoadOptions::HEAD)
            .with_context(|| format!("cannot read the reference run {}", reference.display()))?;
        let state = &loaded.projection.state;
        let reference = state
            .closed_trades()
            .map(|(t, d)| (t.clone(), d.clone()))
            .collect();
        Ok(EdgeWatch {
            reference,
            thresholds,
            judged_trades: None,
        })
    }

    /// The findings to journal now: for each check, a raised one if it holds
    /// and the journal's newest finding for it is not raised, a cleared one
    /// if it was measured and no longer holds while raised. Nothing unless a
    /// trade closed since the last judgement.
    pub fn findings(&mut self, projection: &Projection) -> Vec<Finding> {
        let state = &projection.state;
        if self.judged_trades == Some(state.trades.len()) {
            return Vec::new();
        }
        self.judged_trades = Some(state.trades.len());
        let reference: Vec<_> = self.reference.iter().map(|(t, d)| (t, d)).collect();
        let own: Vec<_> = state.closed_trades().collect();
        let trades = TradeComparison::of(&reference, &own, ALL_TIME);
        let mut out = Vec::new();
        for verdict in crossings(&self.thresholds, &trades, &state.trades) {
            let check = format!("{FAMILY}.{}", verdict.check);
            let raised = projection
                .links
                .findings
                .get(&FindingNote::key(&check, ""))
                .is_some_and(|note| note.raised);
            // A raised check is cleared once it no longer holds, measured or
            // not (a restart with another reference may leave it unjudgeable).
            if verdict.crossed != raised {
                out.push(Finding {
                    check,
                    symbol: String::new(),
                    raised: verdict.crossed,
                    value: verdict.value,
                    limit: verdict.limit,
                    detail: verdict.detail,
                });
            }
        }
        out
    }
}
