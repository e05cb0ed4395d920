//! The equity curve, kept as running figures so memory does not grow with the
//! journal: equity now (cash plus held units marked at their last close), its
//! peak, the drawdowns, and the daily returns as running sums plus one point
//! per UTC day. Cash and the marked value are moved by the sub-folds that move
//! them (`positions.rs`, `market.rs`); this file samples the result.

use crate::model::*;
use anx_journal::UnixMs;
use rust_decimal::Decimal;

/// Records an equity sample: peak, drawdown and daily returns. Taken on every
/// candle, fill and closed trade.
pub(super) fn sample(curve: &mut EquityCurve, market_ms: UnixMs) {
    let equity = curve.equity();
    let day = utc_day(market_ms);
    match curve.day {
        None => {
            curve.day = Some(day);
            curve.day_open = curve.start;
        }
        Some(current) if day > current => {
            // The last equity seen on the previous day closes it.
            close_day(curve);
            curve.day = Some(day);
        }
        _ => {}
    }
    curve.last = equity;
    curve.samples += 1;
    if equity > curve.peak {
        curve.peak = equity;
        return;
    }
    let fall = curve.peak - equity;
    if fall > curve.max_drawdown {
        curve.max_drawdown = fall;
    }
    // fall / peak > best_fall / best_peak, by cross-multiplying (no division).
    if fall * curve.max_drawdown_pct_peak > curve.max_drawdown_pct_fall * curve.peak
        || curve.max_drawdown_pct_peak.is_zero() && !fall.is_zero()
    {
        curve.max_drawdown_pct_fall = fall;
        curve.max_drawdown_pct_peak = curve.peak;
    }
}

/// The daily-return sums (n, Σr, Σr², Σ of negative r²) with the current day
/// closed at `day_close` (from `day_open`) added. The report uses it to count
/// the day still open.
pub(crate) fn return_sums_with_day(
    curve: &EquityCurve,
    day_close: Decimal,
) -> (u64, Decimal, Decimal, Decimal) {
    let mut sums = (
        curve.returns_n,
        curve.returns_sum,
        curve.returns_sum_sq,
        curve.returns_down_sum_sq,
    );
    if curve.day_open > Decimal::ZERO {
        let r = day_close / curve.day_open - Decimal::ONE;
        sums.0 += 1;
        sums.1 += r;
        sums.2 += r * r;
        if r < Decimal::ZERO {
            sums.3 += r * r;
        }
    }
    sums
}

/// Adds the day that just ended (from `day_open` to `last`) to the return sums.
fn close_day(curve: &mut EquityCurve) {
    (
        curve.returns_n,
        curve.returns_sum,
        curve.returns_sum_sq,
        curve.returns_down_sum_sq,
    ) = return_sums_with_day(curve, curve.last);
    curve.day_open = curve.last;
    curve.daily.push(DailyEquity {
        day: curve.day.unwrap_or_default(),
        equity: curve.last,
        peak: curve.peak.max(curve.last),
    });
}
