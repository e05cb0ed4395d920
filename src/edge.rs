//! The edge-decay watch of a running trader, always on: after each step
//! that closed a trade, the win rate of the run's last trades is judged with
//! the thresholds of `config/compare.toml` (`--thresholds`); given a
//! reference run (`--reference DIR`, typically the backtest the strategy was
//! chosen on), the run's closed trades are also held against its trades –
//! the same judgement as `anx compare` (`anx_projections::compare::crossings`),
//! over every trade of both runs rather than a shared window, since a live run
//! trades after its backtest ended. (So the fill-slippage check is judged only
//! where the reference covers the run's own period – trades both took,
//! matched by the candle their entry decision read – and is otherwise "not
//! judged".) A check that starts to hold is journaled as a raised `Finding`,
//! one that stops holding as a cleared one: each once, since the journal's
//! newest finding per check (re-driven at a restart) is what the watch
//! compares with ([`anomaly::changes`]).

use crate::store::{self, LoadOptions};
use anx_journal::Finding;
use anx_projections::anomaly::{self, Judged};
use anx_projections::compare::{
    crossings, win_rate_verdict, ThresholdVerdict, Thresholds, TradeComparison, Window,
};
use anx_projections::{Projection, TradeDetail, TradeRow};
use anyhow::{Context, Result};
use std::path::Path;

/// The shipped `config/compare.toml`, built in: the thresholds of a trader
/// started without `--thresholds`, wherever it is started from.
const SHIPPED_THRESHOLDS: &str = include_str!("../config/compare.toml");

/// The family the watch's checks are journaled under.
const FAMILY: &str = "edge_decay";

/// Every trade of both runs: a live run's trades come after its backtest's.
const ALL_TIME: Window = Window {
    from_ms: i64::MIN,
    to_ms: i64::MAX,
};

pub struct EdgeWatch {
    /// The reference run's closed trades; none without `--reference`, when
    /// only the win rate of the run's own last trades is judged.
    reference: Option<Vec<(TradeRow, TradeDetail)>>,
    thresholds: Thresholds,
    /// The run's closed trades when it last judged (none yet: judge at once).
    judged_trades: Option<usize>,
}

impl EdgeWatch {
    /// Reads the thresholds and the reference run's closed trades, if any;
    /// an error here stops the trader before it journals anything.
    pub fn open(reference: Option<&Path>, thresholds: Option<&Path>) -> Result<EdgeWatch> {
        let thresholds = match thresholds {
            Some(path) => crate::compare::read_thresholds(path)?,
            None => Thresholds::from_toml(SHIPPED_THRESHOLDS)
                .map_err(|e| anyhow::anyhow!("the shipped config/compare.toml: {}", e.trim()))?,
        };
        let reference = match reference {
            Some(dir) => Some(reference_trades(dir)?),
            None => None,
        };
        Ok(EdgeWatch {
            reference,
            thresholds,
            judged_trades: None,
        })
    }

    /// The findings to journal now ([`anomaly::changes`]): nothing unless a
    /// trade closed since the last judgement.
    pub fn findings(&mut self, projection: &Projection) -> Vec<Finding> {
        let state = &projection.state;
        if self.judged_trades == Some(state.trades.len()) {
            return Vec::new();
        }
        self.judged_trades = Some(state.trades.len());
        let verdicts = match &self.reference {
            Some(reference) => {
                let reference: Vec<_> = reference.iter().map(|(t, d)| (t, d)).collect();
                let own: Vec<_> = state.closed_trades().collect();
                let trades = TradeComparison::of(&reference, &own, ALL_TIME);
                crossings(&self.thresholds, &trades, &state.trades)
            }
            // Without a reference only the win rate is judged; the checks
            // that need one are not judged, so any raised in an earlier
            // session with a reference clears.
            None => {
                let t = &self.thresholds;
                let not_judged = |check, limit| ThresholdVerdict {
                    check,
                    crossed: false,
                    value: None,
                    limit,
                    detail: "not judged: no --reference".into(),
                };
                vec![
                    not_judged("expectancy_drop", t.expectancy_drop_pct_max),
                    not_judged("fill_slippage", t.fill_slippage_bps_max),
                    win_rate_verdict(t, &state.trades),
                ]
            }
        };
        let judged = verdicts
            .into_iter()
            .map(|v| Judged {
                check: format!("{FAMILY}.{}", v.check),
                symbol: String::new(),
                holds: v.crossed,
                value: v.value,
                limit: v.limit,
                detail: v.detail,
            })
            .collect();
        anomaly::changes(projection, judged)
    }
}

/// A reference run's closed trades.
fn reference_trades(dir: &Path) -> Result<Vec<(TradeRow, TradeDetail)>> {
    crate::journal_cmd::check_dir(dir)?;
    let loaded = store::load(dir, LoadOptions::HEAD)
        .with_context(|| format!("cannot read the reference run {}", dir.display()))?;
    Ok(loaded
        .projection
        .state
        .closed_trades()
        .map(|(t, d)| (t.clone(), d.clone()))
        .collect())
}
