//! The report: strategy-level metrics computed from the trades and equity
//! projections only. Trade-level facts live on the trade rows; aggregates such
//! as win rate and expectancy exist only here, never stored per trade.
//!
//! Conventions: a win is a trade with net PnL > 0, a loss one with net PnL < 0
//! (a trade at exactly 0 is neither). Sharpe and Sortino use daily returns
//! (UTC days, the last equity sample of each day, the current day included),
//! annualized by √365 (crypto trades every day); Sharpe uses the sample
//! standard deviation, Sortino the downside deviation √(Σ min(r,0)² / n).
//! A metric that is undefined for the data (no trades, no losses, fewer than
//! two days) is `None`, never a division by zero.

use crate::fold::return_sums_with_day;
use crate::model::{EquityCurve, State, TradeRow};
use rust_decimal::{Decimal, MathematicalOps};
use serde::Serialize;
use std::collections::BTreeMap;

/// Decimal places kept in reported figures.
pub const REPORT_DP: u32 = 8;

/// How Sharpe and Sortino are computed, for the report's readers.
pub const RATIO_BASIS: &str = "daily returns (UTC days), annualized by sqrt(365)";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub trades_opened: u64,
    pub trades_closed: u64,
    pub wins: u64,
    pub losses: u64,
    pub win_rate: Option<Decimal>,
    pub avg_win: Option<Decimal>,
    pub avg_loss: Option<Decimal>,
    /// Average win / |average loss|.
    pub rr_actual: Option<Decimal>,
    /// Mean net PnL per closed trade.
    pub expectancy: Option<Decimal>,
    /// Mean realized R per closed trade.
    pub expectancy_r: Option<Decimal>,
    /// Σ wins / |Σ losses|.
    pub profit_factor: Option<Decimal>,
    pub net_pnl: Decimal,
    pub starting_equity: Decimal,
    pub final_equity: Decimal,
    pub peak_equity: Decimal,
    pub return_pct: Option<Decimal>,
    pub max_drawdown: Decimal,
    pub max_drawdown_pct: Decimal,
    pub max_consecutive_losses: u64,
    pub max_consecutive_losses_usd: Decimal,
    pub sharpe: Option<Decimal>,
    pub sortino: Option<Decimal>,
    pub ratio_basis: &'static str,
    pub return_days: u64,
    /// Share of symbol-time with a position open.
    pub exposure_pct: Option<Decimal>,
    pub fees_total: Decimal,
    pub exits_by_reason: BTreeMap<String, u64>,
    /// The same figures per symbol, for the per-symbol panels.
    pub symbols: BTreeMap<String, SymbolReport>,
    /// Why decisions led to no order ([`Report::from_projection`]; empty
    /// from the state alone).
    pub no_order: NoOrder,
    /// The closed trades by signal, regime, symbol, exit reason, month and
    /// hold time.
    pub breakdowns: crate::breakdown::Breakdowns,
    /// The closed trades' PnL taken apart: edge, fees, slippage, risk.
    pub attribution: PnlAttribution,
}

/// The closed trades' PnL taken apart (the cost model's decomposition,
/// summed: net = edge − fees − slippage), with theoretical and realized R
/// side by side, the risk taken and the reward it brought in the quote
/// currency, and which side of the book the fills took.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PnlAttribution {
    /// Σ price move alone (before fees and slippage).
    pub edge: Decimal,
    pub fees: Decimal,
    pub slippage: Decimal,
    pub net_pnl: Decimal,
    /// Mean theoretical R (edge over risk: no costs).
    pub expectancy_r_theoretical: Option<Decimal>,
    /// Mean realized R (net over risk).
    pub expectancy_r_realized: Option<Decimal>,
    /// Mean risk per trade: size × (entry fill − initial stop).
    pub avg_risk: Option<Decimal>,
    /// Mean realized reward per trade (net PnL).
    pub avg_reward: Option<Decimal>,
    pub maker_notional: Decimal,
    pub taker_notional: Decimal,
    /// Maker notional over all fill notional, a fraction.
    pub maker_share: Option<Decimal>,
}

impl PnlAttribution {
    pub fn of(closed: &[crate::breakdown::ClosedTrade]) -> PnlAttribution {
        let mut a = PnlAttribution::default();
        let (mut theoretical, mut realized, mut risk) =
            (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        let mut liquidity = crate::model::LiquiditySplit::default();
        for (t, detail) in closed {
            a.edge += t.edge();
            a.fees += t.fees;
            a.slippage += t.slippage;
            a.net_pnl += t.net_pnl;
            theoretical += t.theoretical_r;
            realized += t.realized_r;
            risk += t.risk();
            liquidity.maker_notional += detail.liquidity.maker_notional;
            liquidity.taker_notional += detail.liquidity.taker_notional;
        }
        let n = Decimal::from(closed.len() as u64);
        PnlAttribution {
            edge: round(a.edge),
            fees: round(a.fees),
            slippage: round(a.slippage),
            net_pnl: round(a.net_pnl),
            expectancy_r_theoretical: ratio(theoretical, n),
            expectancy_r_realized: ratio(realized, n),
            avg_risk: ratio(risk, n),
            avg_reward: ratio(a.net_pnl, n),
            maker_notional: round(liquidity.maker_notional),
            taker_notional: round(liquidity.taker_notional),
            maker_share: liquidity.maker_share().map(round),
        }
    }
}

/// The decisions that led to no order, by reason: a rejection's code, or for
/// a hold `no_signal`, `position_open`, `order_pending` or `fail_closed`.
/// What stopped a run's candles from trading – a run with few or no trades
/// explains itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NoOrder {
    /// Reason → decisions, over every symbol.
    pub by_reason: BTreeMap<String, u64>,
    /// Symbol → reason → decisions.
    pub by_symbol: BTreeMap<String, BTreeMap<String, u64>>,
}

impl NoOrder {
    /// The tallies the fold keeps ([`crate::model::Links::no_order`]).
    pub fn of(counts: &BTreeMap<String, BTreeMap<String, u64>>) -> NoOrder {
        let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
        for reasons in counts.values() {
            for (reason, count) in reasons {
                *by_reason.entry(reason.clone()).or_default() += count;
            }
        }
        NoOrder {
            by_reason,
            by_symbol: counts.clone(),
        }
    }

    /// The reasons, the most frequent first (ties by name).
    pub fn ranked(&self) -> Vec<(&str, u64)> {
        let mut ranked: Vec<(&str, u64)> = self
            .by_reason
            .iter()
            .map(|(r, c)| (r.as_str(), *c))
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        ranked
    }
}

/// Per-symbol aggregates over the closed trades.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SymbolReport {
    pub trades_closed: u64,
    pub wins: u64,
    pub losses: u64,
    pub win_rate: Option<Decimal>,
    pub net_pnl: Decimal,
    pub fees: Decimal,
    pub expectancy_r: Option<Decimal>,
    pub exits_by_reason: BTreeMap<String, u64>,
}

impl SymbolReport {
    /// The aggregates over `trades` (all of a run's, or one symbol's).
    fn of<'a>(trades: impl Iterator<Item = &'a TradeRow>) -> SymbolReport {
        let mut report = SymbolReport::default();
        let mut r_sum = Decimal::ZERO;
        for trade in trades {
            report.trades_closed += 1;
            report.wins += u64::from(trade.net_pnl > Decimal::ZERO);
            report.losses += u64::from(trade.net_pnl < Decimal::ZERO);
            report.net_pnl += trade.net_pnl;
            report.fees += trade.fees;
            *report
                .exits_by_reason
                .entry(trade.exit_reason.name().to_string())
                .or_insert(0) += 1;
            r_sum += trade.realized_r;
        }
        let closed = Decimal::from(report.trades_closed);
        report.win_rate = ratio(Decimal::from(report.wins), closed);
        report.expectancy_r = ratio(r_sum, closed);
        report.net_pnl = round(report.net_pnl);
        report.fees = round(report.fees);
        report
    }
}

/// Every symbol's aggregates (a symbol without trades too).
fn symbol_reports(state: &State) -> BTreeMap<String, SymbolReport> {
    let symbols: std::collections::BTreeSet<&str> = state
        .symbols
        .keys()
        .map(String::as_str)
        .chain(state.trades.iter().map(|t| t.symbol.as_str()))
        .collect();
    symbols
        .into_iter()
        .map(|symbol| {
            let trades = state.trades.iter().filter(|t| t.symbol == symbol);
            (symbol.to_string(), SymbolReport::of(trades))
        })
        .collect()
}

/// A fraction (a share, a win rate) in percent: how every rendering shows one.
pub fn percent(fraction: Option<Decimal>) -> Option<Decimal> {
    fraction.map(|f| f * Decimal::ONE_HUNDRED)
}

pub(crate) fn round(value: Decimal) -> Decimal {
    value.round_dp(REPORT_DP).normalize()
}

pub(crate) fn ratio(numerator: Decimal, denominator: Decimal) -> Option<Decimal> {
    (!denominator.is_zero()).then(|| round(numerator / denominator))
}

/// The longest losing streak, and its total loss (the larger loss on ties).
pub fn max_consecutive_losses(trades: &[TradeRow]) -> (u64, Decimal) {
    let (mut best, mut best_usd) = (0u64, Decimal::ZERO);
    let (mut run, mut run_usd) = (0u64, Decimal::ZERO);
    for trade in trades {
        if trade.net_pnl < Decimal::ZERO {
            run += 1;
            run_usd += trade.net_pnl;
            if run > best || (run == best && run_usd < best_usd) {
                best = run;
                best_usd = run_usd;
            }
        } else {
            run = 0;
            run_usd = Decimal::ZERO;
        }
    }
    (best, best_usd)
}

/// (Sharpe, Sortino, number of daily returns) over the curve, the current day included.
fn risk_ratios(
    curve: &EquityCurve,
    current_equity: Decimal,
) -> (Option<Decimal>, Option<Decimal>, u64) {
    let (n, sum, sum_sq, down_sum_sq) = if curve.day.is_some() {
        return_sums_with_day(curve, current_equity)
    } else {
        (
            curve.returns_n,
            curve.returns_sum,
            curve.returns_sum_sq,
            curve.returns_down_sum_sq,
        )
    };
    if n < 2 {
        return (None, None, n);
    }
    let count = Decimal::from(n);
    let mean = sum / count;
    let variance = (sum_sq - count * mean * mean) / (count - Decimal::ONE);
    let annualize = Decimal::from(365).sqrt().unwrap_or(Decimal::ZERO);
    let sharpe = variance
        .max(Decimal::ZERO)
        .sqrt()
        .and_then(|std| (!std.is_zero()).then(|| round(mean / std * annualize)));
    let downside = (down_sum_sq / count).sqrt();
    let sortino = downside.and_then(|dd| (!dd.is_zero()).then(|| round(mean / dd * annualize)));
    (sharpe, sortino, n)
}

impl Report {
    /// The report over a whole projection: [`Report::from_state`] and why
    /// decisions led to no order.
    pub fn from_projection(projection: &crate::Projection) -> Report {
        Report {
            no_order: NoOrder::of(&projection.links.no_order),
            ..Report::from_state(&projection.state)
        }
    }

    pub fn from_state(state: &State) -> Report {
        let trades = &state.trades;
        let wins: Vec<Decimal> = trades
            .iter()
            .map(|t| t.net_pnl)
            .filter(|p| *p > Decimal::ZERO)
            .collect();
        let losses: Vec<Decimal> = trades
            .iter()
            .map(|t| t.net_pnl)
            .filter(|p| *p < Decimal::ZERO)
            .collect();
        let sum = |values: &[Decimal]| values.iter().copied().sum::<Decimal>();
        let (win_sum, loss_sum) = (sum(&wins), sum(&losses));
        let closed = Decimal::from(trades.len() as u64);
        let avg_win = ratio(win_sum, Decimal::from(wins.len() as u64));
        let avg_loss = ratio(loss_sum, Decimal::from(losses.len() as u64));
        let net_pnl: Decimal = trades.iter().map(|t| t.net_pnl).sum();
        let curve = &state.equity;
        let final_equity = curve.equity();
        let peak = curve.peak_now();
        let (streak, streak_usd) = max_consecutive_losses(trades);
        let (sharpe, sortino, return_days) = risk_ratios(curve, final_equity);
        let all = SymbolReport::of(trades.iter());
        let details: Vec<_> = state.closed_trades().collect();
        Report {
            trades_opened: state.run.as_ref().map_or(0, |r| r.trades_opened),
            trades_closed: trades.len() as u64,
            wins: all.wins,
            losses: all.losses,
            win_rate: all.win_rate,
            avg_win,
            avg_loss,
            rr_actual: match (avg_win, avg_loss) {
                (Some(win), Some(loss)) => ratio(win, loss.abs()),
                _ => None,
            },
            expectancy: ratio(net_pnl, closed),
            expectancy_r: all.expectancy_r,
            profit_factor: ratio(win_sum, loss_sum.abs()),
            net_pnl: round(net_pnl),
            starting_equity: round(curve.start),
            final_equity: round(final_equity),
            peak_equity: round(peak),
            return_pct: ratio(
                (final_equity - curve.start) * Decimal::ONE_HUNDRED,
                curve.start,
            ),
            max_drawdown: round(curve.max_drawdown),
            max_drawdown_pct: ratio(
                curve.max_drawdown_pct_fall * Decimal::ONE_HUNDRED,
                curve.max_drawdown_pct_peak,
            )
            .unwrap_or(Decimal::ZERO),
            max_consecutive_losses: streak,
            max_consecutive_losses_usd: round(streak_usd),
            sharpe,
            sortino,
            ratio_basis: RATIO_BASIS,
            return_days,
            exposure_pct: exposure_pct(state),
            fees_total: round(state.fees_total),
            exits_by_reason: all.exits_by_reason,
            symbols: symbol_reports(state),
            no_order: NoOrder::default(),
            breakdowns: crate::breakdown::Breakdowns::of(&details),
            attribution: PnlAttribution::of(&details),
        }
    }
}

/// Position time (closed trades plus any open one) over symbol-time of the run.
fn exposure_pct(state: &State) -> Option<Decimal> {
    let run = state.run.as_ref()?;
    let end = state.last_market_ms?;
    let span = end - run.started_ms;
    let open: i64 = state
        .symbols
        .values()
        .filter_map(|s| s.open_trade.as_ref())
        .map(|t| end - t.opened_ms)
        .sum();
    let symbol_time = Decimal::from(span) * Decimal::from(run.symbols.len() as u64);
    ratio(
        Decimal::from(state.exposure_ms + open) * Decimal::ONE_HUNDRED,
        symbol_time,
    )
}
