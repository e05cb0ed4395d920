//! Risk, sizing and trade pacing: one module, every rule a stable reason code
//! recorded in the Decision with pass/fail and the numbers it compared. All
//! time is market time (`as_of`), never the wall clock.
//!
//! Codes: `symbol_fail_closed`, `stale_data`, `max_drawdown_breaker`,
//! `daily_loss_limit`, `max_trades_per_hour`, `max_trades_per_day`,
//! `global_trade_spacing`, `symbol_cooldown_active`, `regime_blocked`,
//! `rr_after_costs`, `max_position_notional`, `max_total_exposure`,
//! `insufficient_cash`, `min_size`, `min_notional`.
//!
//! Sizing is bracket-aware: Coinbase turns a triggered stop into a stop-limit
//! `stop_limit_buffer` (5%) beyond the trigger, so the worst-case fill is
//! `stop_trigger × (1 − buffer)`, the risk per unit is `entry − worst_case_fill`
//! and the quantity is `risk_budget / risk_per_unit`, rounded down to the
//! product's size step. The caps (position notional, total exposure, cash)
//! reduce the quantity; a quantity that then falls below the product's minimum
//! size or notional is rejected, never bumped up.

use super::config::{Config, ProductSpec};
use super::cost::CostModel;
use super::product;
use crate::model::{utc_day, DAY_MS, HOUR_MS};
use anx_journal::Text;
use anx_journal::{RiskCheck, Sizing, UnixMs};
use rust_decimal::Decimal;
use std::collections::VecDeque;

/// Every reason code a decision records: the risk checks, the breakers and
/// the engine's own verdicts. Code here, text (the journaled, stable code)
/// only where it is written or shown – one exhaustive match, so a new rule
/// does not compile until its code is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReasonCode {
    SymbolFailClosed,
    StaleData,
    MaxDrawdownBreaker,
    DailyLossLimit,
    MaxTradesPerHour,
    MaxTradesPerDay,
    GlobalTradeSpacing,
    SymbolCooldownActive,
    RegimeBlocked,
    RrAfterCosts,
    MaxPositionNotional,
    MaxTotalExposure,
    InsufficientCash,
    MinSize,
    MinNotional,
    /// The engine: a position without working protection (exit at market).
    Protection,
    /// The engine: the trailing (chandelier) stop was crossed.
    ChandelierExit,
    /// The engine: no product spec for the symbol.
    NoProductSpec,
    /// The engine: the signal's prices no longer order after rounding.
    SignalRounding,
    /// The engine: which fired signal an entry is built on.
    SignalSelected,
    /// An operator halted new entries (`anx operator halt`).
    OperatorHalt,
    /// An operator asked for the position to be closed (`anx operator exit`).
    OperatorExit,
    /// The engine: a crossed post-only entry placed again, re-priced.
    PostOnlyReprice,
}

impl ReasonCode {
    /// Every code, in the order a decision records the risk checks.
    pub const ALL: [ReasonCode; 23] = [
        ReasonCode::SymbolFailClosed,
        ReasonCode::StaleData,
        ReasonCode::MaxDrawdownBreaker,
        ReasonCode::DailyLossLimit,
        ReasonCode::MaxTradesPerHour,
        ReasonCode::MaxTradesPerDay,
        ReasonCode::GlobalTradeSpacing,
        ReasonCode::SymbolCooldownActive,
        ReasonCode::RegimeBlocked,
        ReasonCode::RrAfterCosts,
        ReasonCode::MaxPositionNotional,
        ReasonCode::MaxTotalExposure,
        ReasonCode::InsufficientCash,
        ReasonCode::MinSize,
        ReasonCode::MinNotional,
        ReasonCode::Protection,
        ReasonCode::ChandelierExit,
        ReasonCode::NoProductSpec,
        ReasonCode::SignalRounding,
        ReasonCode::SignalSelected,
        ReasonCode::OperatorHalt,
        ReasonCode::OperatorExit,
        ReasonCode::PostOnlyReprice,
    ];

    /// The stable code journaled in `RiskCheck.code` and `Rejected.reason_code`.
    pub const fn code(self) -> &'static str {
        match self {
            ReasonCode::SymbolFailClosed => "symbol_fail_closed",
            ReasonCode::StaleData => "stale_data",
            ReasonCode::MaxDrawdownBreaker => "max_drawdown_breaker",
            ReasonCode::DailyLossLimit => "daily_loss_limit",
            ReasonCode::MaxTradesPerHour => "max_trades_per_hour",
            ReasonCode::MaxTradesPerDay => "max_trades_per_day",
            ReasonCode::GlobalTradeSpacing => "global_trade_spacing",
            ReasonCode::SymbolCooldownActive => "symbol_cooldown_active",
            ReasonCode::RegimeBlocked => "regime_blocked",
            ReasonCode::RrAfterCosts => "rr_after_costs",
            ReasonCode::MaxPositionNotional => "max_position_notional",
            ReasonCode::MaxTotalExposure => "max_total_exposure",
            ReasonCode::InsufficientCash => "insufficient_cash",
            ReasonCode::MinSize => "min_size",
            ReasonCode::MinNotional => "min_notional",
            ReasonCode::Protection => "protection",
            ReasonCode::ChandelierExit => "chandelier_exit",
            ReasonCode::NoProductSpec => "no_product_spec",
            ReasonCode::SignalRounding => "signal_rounding",
            ReasonCode::SignalSelected => "signal_selected",
            ReasonCode::OperatorHalt => "operator_halt",
            ReasonCode::OperatorExit => "operator_exit",
            ReasonCode::PostOnlyReprice => "post_only_reprice",
        }
    }

    /// The code as journal text (static: no allocation).
    pub const fn text(self) -> Text {
        Text::const_new(self.code())
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Everything the rules look at, gathered by the engine.
pub struct RiskContext<'a> {
    pub config: &'a Config,
    pub spec: &'a ProductSpec,
    pub as_of_ms: UnixMs,
    /// When the candle the decision reads closed.
    pub candle_close_ms: UnixMs,
    pub fail_closed: bool,
    pub equity: Decimal,
    pub peak_equity: Decimal,
    pub starting_equity: Decimal,
    /// Net PnL of trades closed on the UTC day of `as_of`.
    pub realized_today: Decimal,
    /// Market times of the entries placed so far (oldest first).
    pub entries_ms: &'a VecDeque<UnixMs>,
    /// The symbol's last exit: when, and whether it was a win.
    pub last_exit: Option<(UnixMs, bool)>,
    pub regime: &'a str,
    pub regime_allows: bool,
    pub size_multiplier: Decimal,
    /// The capital sizing is based on (the symbol's pot or the pool).
    pub capital: Decimal,
    pub cash_available: Decimal,
    /// Notional held over all symbols, at the last marks.
    pub exposure_total: Decimal,
}

/// The verdict: every check, the sizing, and the first failure if any.
pub struct Verdict {
    pub checks: Vec<RiskCheck>,
    pub sizing: Option<Sizing>,
    pub rejected: Option<ReasonCode>,
}

struct Checks {
    checks: Vec<RiskCheck>,
    /// The first check that failed.
    rejected: Option<ReasonCode>,
}

impl Checks {
    fn breaker(&mut self, b: Breaker) {
        self.check(b.code, b.passed, b.detail);
    }

    fn check(&mut self, code: ReasonCode, passed: bool, detail: String) {
        if !passed && self.rejected.is_none() {
            self.rejected = Some(code);
        }
        self.checks.push(RiskCheck {
            code: code.text(),
            passed,
            detail: detail.into(),
        });
    }
}

fn count_since(entries: &VecDeque<UnixMs>, since_ms: UnixMs) -> usize {
    entries.iter().rev().take_while(|t| **t > since_ms).count()
}

/// How far `equity` is below `peak`, in percent (4 decimals).
pub fn drawdown_pct(equity: Decimal, peak: Decimal) -> Decimal {
    if peak > Decimal::ZERO {
        ((peak - equity) / peak * Decimal::ONE_HUNDRED).round_dp(4)
    } else {
        Decimal::ZERO
    }
}

/// The day's loss, in quote currency, at which entries stop for the UTC day.
pub fn daily_loss_limit(config: &Config, starting_equity: Decimal) -> Decimal {
    starting_equity * config.breakers.daily_loss_limit_pct / Decimal::ONE_HUNDRED
}

/// One breaker's verdict: whether entries may go on, and why (the detail a
/// `RiskCheck` journals; `anx status` and the paper trader show the same).
pub struct Breaker {
    pub code: ReasonCode,
    pub passed: bool,
    pub detail: String,
}

/// The stale-data breaker for a newest candle closing at `close_ms`, at `as_of_ms`.
pub fn stale_breaker(config: &Config, close_ms: UnixMs, as_of_ms: UnixMs) -> Breaker {
    Breaker {
        code: ReasonCode::StaleData,
        passed: !is_stale(config, close_ms, as_of_ms),
        detail: format!(
            "newest candle closed {}s ago, limit {}s",
            (as_of_ms - close_ms) / 1000,
            config.breakers.stale_data_max_age_s
        ),
    }
}

/// The drawdown breaker at `equity` against `peak`.
pub fn drawdown_breaker(config: &Config, equity: Decimal, peak: Decimal) -> Breaker {
    let drawdown_pct = drawdown_pct(equity, peak);
    Breaker {
        code: ReasonCode::MaxDrawdownBreaker,
        passed: drawdown_pct < config.breakers.max_drawdown_pct,
        detail: format!(
            "drawdown {drawdown_pct}% from peak {}, limit {}%",
            peak.round_dp(2),
            config.breakers.max_drawdown_pct
        ),
    }
}

/// The daily-loss breaker with `realized_today` (net PnL of the UTC day).
pub fn daily_loss_breaker(
    config: &Config,
    realized_today: Decimal,
    starting_equity: Decimal,
) -> Breaker {
    let loss_limit = daily_loss_limit(config, starting_equity);
    Breaker {
        code: ReasonCode::DailyLossLimit,
        passed: -realized_today < loss_limit,
        detail: format!(
            "realized today {}, limit -{}",
            realized_today.round_dp(2),
            loss_limit.round_dp(2)
        ),
    }
}

/// Whether data whose newest candle closed at `close_ms` is stale at
/// `as_of_ms`. Compared in milliseconds: a candle that closed even 1 ms longer
/// ago than `breakers.stale_data_max_age_s` is stale (whole seconds are only
/// for display).
pub fn is_stale(config: &Config, close_ms: UnixMs, as_of_ms: UnixMs) -> bool {
    as_of_ms - close_ms > config.breakers.stale_data_max_age_s as i64 * 1000
}

/// Net PnL of the trades closed on the UTC day of `as_of_ms` (`trades` in
/// closing order).
pub fn realized_on_day(trades: &[crate::model::TradeRow], as_of_ms: UnixMs) -> Decimal {
    let day_start = utc_day(as_of_ms) * DAY_MS;
    trades
        .iter()
        .rev()
        .take_while(|t| t.exit_ms >= day_start)
        .map(|t| t.net_pnl)
        .sum()
}

/// Bracket-aware sizing (before caps): the worked example in this module's doc.
pub fn size(
    config: &Config,
    spec: &ProductSpec,
    capital: Decimal,
    multiplier: Decimal,
    entry: Decimal,
    stop_trigger: Decimal,
) -> Sizing {
    let risk_fraction = config.risk.risk_per_trade;
    let risk_budget = capital * risk_fraction * multiplier;
    let worst_case_fill = product::worst_case_fill(stop_trigger, config.exchange.stop_limit_buffer);
    let risk_per_unit = entry - worst_case_fill;
    let quantity_raw = if risk_per_unit > Decimal::ZERO {
        risk_budget / risk_per_unit
    } else {
        Decimal::ZERO
    };
    let quantity = product::quantity(quantity_raw, spec);
    Sizing {
        capital,
        risk_fraction,
        risk_budget,
        entry,
        stop_trigger,
        worst_case_fill,
        risk_per_unit,
        quantity_raw: quantity_raw.round_dp(12),
        quantity,
        notional: quantity * entry,
        multiplier,
    }
}

/// Evaluates every rule for an entry at `entry` with `stop_trigger` and
/// `take_profit` (already rounded to the product's increments). The checks
/// are journaled in the order they run here: the breakers, the pacing, the
/// regime, reward:risk, the caps on the size, then the product's minimums.
pub fn evaluate(
    ctx: &RiskContext,
    entry: Decimal,
    stop_trigger: Decimal,
    take_profit: Decimal,
) -> Verdict {
    let costs = CostModel::new(ctx.config);
    let mut c = Checks {
        checks: Vec::new(),
        rejected: None,
    };
    check_breakers(ctx, &mut c);
    check_trade_counts(ctx, &mut c);
    check_spacing(ctx, &mut c);
    check_cooldown(ctx, &mut c);
    c.check(
        ReasonCode::RegimeBlocked,
        ctx.regime_allows,
        format!("regime {} (size x{})", ctx.regime, ctx.size_multiplier),
    );
    check_rr_after_costs(ctx, &costs, entry, stop_trigger, take_profit, &mut c);
    let mut sizing = size(
        ctx.config,
        ctx.spec,
        ctx.capital,
        ctx.size_multiplier,
        entry,
        stop_trigger,
    );
    check_caps(ctx, &costs, entry, &mut sizing, &mut c);
    check_minimums(ctx, &sizing, &mut c);
    Verdict {
        checks: c.checks,
        sizing: Some(sizing),
        rejected: c.rejected,
    }
}

/// The symbol's fail-closed latch, then the breakers shared with `anx status`
/// and the paper trader (stale data, drawdown, daily loss).
fn check_breakers(ctx: &RiskContext, c: &mut Checks) {
    let config = ctx.config;
    c.check(
        ReasonCode::SymbolFailClosed,
        !ctx.fail_closed,
        if ctx.fail_closed {
            "entries blocked until an operator reset".into()
        } else {
            "not fail-closed".into()
        },
    );
    c.breaker(stale_breaker(config, ctx.candle_close_ms, ctx.as_of_ms));
    c.breaker(drawdown_breaker(config, ctx.equity, ctx.peak_equity));
    c.breaker(daily_loss_breaker(
        config,
        ctx.realized_today,
        ctx.starting_equity,
    ));
}

/// Entries over all symbols in the last hour and the last 24 hours.
fn check_trade_counts(ctx: &RiskContext, c: &mut Checks) {
    let pacing = &ctx.config.pacing;
    let last_hour = count_since(ctx.entries_ms, ctx.as_of_ms - HOUR_MS);
    c.check(
        ReasonCode::MaxTradesPerHour,
        last_hour < pacing.max_trades_per_hour as usize,
        format!(
            "{last_hour} entries in the last hour, limit {}",
            pacing.max_trades_per_hour
        ),
    );
    let last_day = count_since(ctx.entries_ms, ctx.as_of_ms - DAY_MS);
    c.check(
        ReasonCode::MaxTradesPerDay,
        last_day < pacing.max_trades_per_day as usize,
        format!(
            "{last_day} entries in the last 24h, limit {}",
            pacing.max_trades_per_day
        ),
    );
}

/// The time since the last entry on any symbol.
fn check_spacing(ctx: &RiskContext, c: &mut Checks) {
    let spacing_ms = ctx.config.pacing.global_trade_spacing_s as i64 * 1000;
    match ctx.entries_ms.back() {
        Some(last) => c.check(
            ReasonCode::GlobalTradeSpacing,
            ctx.as_of_ms - last >= spacing_ms,
            format!(
                "last entry {}s ago, minimum {}s",
                (ctx.as_of_ms - last) / 1000,
                spacing_ms / 1000
            ),
        ),
        None => c.check(
            ReasonCode::GlobalTradeSpacing,
            true,
            "no earlier entry".into(),
        ),
    }
}

/// The symbol's cooldown after its last exit, longer after a loss.
fn check_cooldown(ctx: &RiskContext, c: &mut Checks) {
    let pacing = &ctx.config.pacing;
    match ctx.last_exit {
        Some((exit_ms, win)) => {
            let cooldown_s = if win {
                pacing.cooldown_after_win_s
            } else {
                pacing.cooldown_after_loss_s
            } as i64;
            let since_s = (ctx.as_of_ms - exit_ms) / 1000;
            c.check(
                ReasonCode::SymbolCooldownActive,
                since_s >= cooldown_s,
                format!(
                    "last exit ({}) {since_s}s ago, cooldown {cooldown_s}s",
                    if win { "win" } else { "loss" }
                ),
            );
        }
        None => c.check(
            ReasonCode::SymbolCooldownActive,
            true,
            "no earlier exit".into(),
        ),
    }
}

/// Reward:risk of the brackets as placed, after a round trip's fees and
/// slippage (the stop leg is a taker fill); sizing, not this check, covers
/// the worst case of a stop-limit filling at its buffer.
fn check_rr_after_costs(
    ctx: &RiskContext,
    costs: &CostModel,
    entry: Decimal,
    stop_trigger: Decimal,
    take_profit: Decimal,
    c: &mut Checks,
) {
    let minimum = ctx.config.risk.min_reward_risk_after_costs;
    let cost_per_unit = entry * costs.round_trip_fraction(ctx.spec);
    let reward = take_profit - entry - cost_per_unit;
    let risk = entry - stop_trigger + cost_per_unit;
    let rr = if risk > Decimal::ZERO {
        (reward / risk).round_dp(4)
    } else {
        Decimal::ZERO
    };
    c.check(
        ReasonCode::RrAfterCosts,
        rr >= minimum,
        format!("reward:risk after costs {rr}, minimum {minimum}"),
    );
}

/// The caps on the size, in order: the position notional, what is left of the
/// total exposure, and the cash.
fn check_caps(
    ctx: &RiskContext,
    costs: &CostModel,
    entry: Decimal,
    sizing: &mut Sizing,
    c: &mut Checks,
) {
    let risk = &ctx.config.risk;
    let exposure_left = risk.max_total_exposure - ctx.exposure_total;
    // Cash must cover the notional and the entry fee, reserved at the taker rate
    // (the higher one) so a fill as taker cannot overdraw the pot.
    let fee_factor = Decimal::ONE + costs.fee_fraction(anx_journal::Liquidity::Taker);
    for (code, limit) in [
        (ReasonCode::MaxPositionNotional, risk.max_position_notional),
        (ReasonCode::MaxTotalExposure, exposure_left),
        (
            ReasonCode::InsufficientCash,
            ctx.cash_available / fee_factor,
        ),
    ] {
        cap(ctx.spec, entry, code, limit, sizing, c);
    }
}

/// One cap: the quantity is cut down to what `limit` (a notional) allows at
/// `entry`, never raised.
fn cap(
    spec: &ProductSpec,
    entry: Decimal,
    code: ReasonCode,
    limit: Decimal,
    sizing: &mut Sizing,
    c: &mut Checks,
) {
    let allowed = product::quantity((limit / entry).max(Decimal::ZERO), spec);
    if sizing.quantity > allowed {
        // A cap that leaves less than the product's minimum is a rejection.
        let tradable = allowed >= spec.base_min_size
            && allowed > Decimal::ZERO
            && allowed * entry >= spec.quote_min_size;
        c.check(
            code,
            tradable,
            format!(
                "quantity capped from {} to {allowed} (limit {})",
                sizing.quantity,
                limit.round_dp(2)
            ),
        );
        sizing.quantity = allowed;
        sizing.notional = allowed * entry;
    } else {
        c.check(
            code,
            true,
            format!(
                "notional {} within {}",
                sizing.notional.round_dp(2),
                limit.round_dp(2)
            ),
        );
    }
}

/// The product's minimum size and notional, after the caps (a size below
/// them is rejected, never bumped up).
fn check_minimums(ctx: &RiskContext, sizing: &Sizing, c: &mut Checks) {
    let spec = ctx.spec;
    let size_ok = sizing.quantity >= spec.base_min_size && sizing.quantity > Decimal::ZERO;
    c.check(
        ReasonCode::MinSize,
        size_ok,
        format!(
            "quantity {} (raw {}), minimum {}",
            sizing.quantity, sizing.quantity_raw, spec.base_min_size
        ),
    );
    c.check(
        ReasonCode::MinNotional,
        sizing.notional >= spec.quote_min_size,
        format!(
            "notional {}, minimum {}",
            sizing.notional.round_dp(2),
            spec.quote_min_size
        ),
    );
}
