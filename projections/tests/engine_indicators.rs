//! The O(1) running indicators (`engine::indicators`) against a naive
//! recomputation over the whole history at every bar: the Donchian high of the
//! previous N bars, the average volume of the previous N bars, ATR as the
//! simple average of the true range, the SMAs and the regime slope, and the
//! EMAs (by the recursion from scratch, and by its closed form).
//!
//! Checked on the shipped configuration (400 bars, so the 300-bar window
//! evicts) and as a property over random periods, windows barely larger than
//! the longest period, and a few hundred random bars.

mod engine_support;

use anx_projections::engine::config::Config;
use anx_projections::engine::indicators::{Indicators, Snapshot};
use engine_support::*;
use proptest::prelude::*;
use rust_decimal::Decimal;

#[derive(Clone, Copy, Debug)]
struct Bar {
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: Decimal,
}

/// The periods the indicators read.
#[derive(Clone, Copy, Debug)]
struct Periods {
    window: usize,
    atr: usize,
    lookback: usize,
    volume_lookback: usize,
    fast: usize,
    slow: usize,
    sma: usize,
    regime: usize,
    slope: usize,
}

impl Periods {
    fn of(config: &Config) -> Periods {
        let s = &config.strategy;
        Periods {
            window: s.window_bars as usize,
            atr: s.atr_bars as usize,
            lookback: s.breakout.lookback_bars as usize,
            volume_lookback: s.breakout.volume_lookback_bars as usize,
            fast: s.momentum.fast_ema_bars as usize,
            slow: s.momentum.slow_ema_bars as usize,
            sma: s.mean_reversion.sma_bars as usize,
            regime: config.regime.sma_bars as usize,
            slope: config.regime.slope_bars as usize,
        }
    }

    fn apply(&self, config: &mut Config) {
        let s = &mut config.strategy;
        s.window_bars = self.window as u32;
        s.atr_bars = self.atr as u32;
        s.breakout.lookback_bars = self.lookback as u32;
        s.breakout.volume_lookback_bars = self.volume_lookback as u32;
        s.momentum.fast_ema_bars = self.fast as u32;
        s.momentum.slow_ema_bars = self.slow as u32;
        s.mean_reversion.sma_bars = self.sma as u32;
        config.regime.sma_bars = self.regime as u32;
        config.regime.slope_bars = self.slope as u32;
    }
}

fn mean(values: &[Decimal]) -> Decimal {
    values.iter().copied().sum::<Decimal>() / Decimal::from(values.len() as u64)
}

fn true_range(bars: &[Bar], i: usize) -> Decimal {
    let b = bars[i];
    let range = b.high - b.low;
    match i.checked_sub(1) {
        None => range,
        Some(p) => {
            let prev = bars[p].close;
            range.max((b.high - prev).abs()).max((b.low - prev).abs())
        }
    }
}

/// The SMA of the `n` closes ending at bar `t`, if there are that many.
fn sma(bars: &[Bar], t: usize, n: usize) -> Option<Decimal> {
    (t + 1 >= n).then(|| {
        mean(
            &bars[t + 1 - n..=t]
                .iter()
                .map(|b| b.close)
                .collect::<Vec<_>>(),
        )
    })
}

fn alpha(n: usize) -> Decimal {
    Decimal::TWO / Decimal::from(n as u64 + 1)
}

/// EMA(n) at bar `t`, by the recursion from the first close.
fn ema(bars: &[Bar], t: usize, n: usize) -> Decimal {
    let a = alpha(n);
    let mut e = bars[0].close;
    for b in &bars[1..=t] {
        e += a * (b.close - e);
    }
    e
}

/// EMA(n) at bar `t` in closed form: (1−α)^t·c0 + Σ α(1−α)^k·c(t−k).
fn ema_closed_form(bars: &[Bar], t: usize, n: usize) -> Decimal {
    let a = alpha(n);
    let keep = Decimal::ONE - a;
    let mut weight = Decimal::ONE;
    let mut sum = Decimal::ZERO;
    for k in 0..t {
        sum += a * weight * bars[t - k].close;
        weight *= keep;
    }
    sum + weight * bars[0].close
}

/// What the snapshot after bar `t` must say, recomputed from scratch.
fn naive(bars: &[Bar], t: usize, p: &Periods) -> Snapshot {
    let b = bars[t];
    let donchian_high = (t >= p.lookback).then(|| {
        bars[t - p.lookback..t]
            .iter()
            .map(|b| b.high)
            .max()
            .expect("lookback >= 1")
    });
    let avg_volume = (t >= p.volume_lookback).then(|| {
        mean(
            &bars[t - p.volume_lookback..t]
                .iter()
                .map(|b| b.volume)
                .collect::<Vec<_>>(),
        )
    });
    let atr = (t + 1 >= p.atr).then(|| {
        mean(
            &(t + 1 - p.atr..=t)
                .map(|i| true_range(bars, i))
                .collect::<Vec<_>>(),
        )
    });
    let warm = t + 1 >= p.slow;
    let warm_prev = t + 1 > p.slow;
    let sma_regime = sma(bars, t, p.regime);
    let regime_slope = match (sma_regime, t.checked_sub(p.slope)) {
        (Some(now), Some(then)) => sma(bars, then, p.regime).map(|before| now - before),
        _ => None,
    };
    Snapshot {
        bars: t as u64 + 1,
        close: b.close,
        high: b.high,
        low: b.low,
        volume: b.volume,
        donchian_high,
        avg_volume,
        atr,
        ema_fast: warm.then(|| ema(bars, t, p.fast)),
        ema_slow: warm.then(|| ema(bars, t, p.slow)),
        ema_fast_prev: warm_prev.then(|| ema(bars, t - 1, p.fast)),
        ema_slow_prev: warm_prev.then(|| ema(bars, t - 1, p.slow)),
        sma_mean: sma(bars, t, p.sma),
        sma_regime,
        regime_slope,
    }
}

/// Pushes every bar and compares each snapshot with the naive one.
fn check_all(config: &Config, bars: &[Bar]) -> Result<(), TestCaseError> {
    let p = Periods::of(config);
    let mut indicators = Indicators::new(config);
    let tolerance = d("0.0000000001");
    for t in 0..bars.len() {
        let b = bars[t];
        let got = indicators.push(b.high, b.low, b.close, b.volume);
        let want = naive(bars, t, &p);
        prop_assert_eq!(&got, &want, "bar {} with {:?}", t, p);
        if let Some(fast) = got.ema_fast {
            let closed = ema_closed_form(bars, t, p.fast);
            prop_assert!(
                (fast - closed).abs() < tolerance,
                "EMA closed form at bar {}",
                t
            );
        }
        if let Some(slow) = got.ema_slow {
            let closed = ema_closed_form(bars, t, p.slow);
            prop_assert!(
                (slow - closed).abs() < tolerance,
                "EMA closed form at bar {}",
                t
            );
        }
    }
    prop_assert_eq!(indicators.bars_seen(), bars.len() as u64);
    Ok(())
}

/// Bars from (close step, up wick, down wick, volume) in cents.
fn bars_from(steps: &[(i64, i64, i64, i64)]) -> Vec<Bar> {
    let mut close = 10_000i64; // $100.00
    steps
        .iter()
        .map(|&(step, up, down, volume)| {
            let previous = close;
            close = (close + step).max(100);
            let top = close.max(previous) + up;
            let bottom = (close.min(previous) - down).max(50);
            Bar {
                high: Decimal::new(top, 2),
                low: Decimal::new(bottom.min(close), 2),
                close: Decimal::new(close, 2),
                volume: Decimal::new(volume, 2),
            }
        })
        .collect()
}

fn steps(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<(i64, i64, i64, i64)>> {
    prop::collection::vec(
        (-400i64..=400, 0i64..=300, 0i64..=300, 0i64..=1_000_000),
        len,
    )
}

#[test]
fn the_default_configuration_over_a_full_window_and_beyond() {
    let config = default_config();
    // Deterministic pseudo-random walk (an LCG), 400 bars: the 300-bar window
    // evicts for the last 100.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |m: i64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as i64).rem_euclid(m)
    };
    let raw: Vec<(i64, i64, i64, i64)> = (0..400)
        .map(|_| (next(801) - 400, next(301), next(301), next(1_000_001)))
        .collect();
    let bars = bars_from(&raw);
    check_all(&config, &bars).unwrap();
}

#[test]
fn a_flat_market_has_zero_slope_and_its_range_as_atr() {
    let config = default_config();
    let mut indicators = Indicators::new(&config);
    let mut last = None;
    for _ in 0..150 {
        last = Some(indicators.push(d("101"), d("99"), d("100"), d("5")));
    }
    let s = last.unwrap();
    assert_eq!(s.atr, Some(d("2")));
    assert_eq!(s.donchian_high, Some(d("101")));
    assert_eq!(s.avg_volume, Some(d("5")));
    assert_eq!(s.sma_mean, Some(d("100")));
    assert_eq!(s.sma_regime, Some(d("100")));
    assert_eq!(s.regime_slope, Some(Decimal::ZERO));
    assert_eq!(s.ema_fast, Some(d("100")));
    assert_eq!(s.ema_slow, Some(d("100")));
}

#[test]
fn warm_up_reports_nothing_it_cannot_know() {
    let config = default_config();
    let mut indicators = Indicators::new(&config);
    let first = indicators.push(d("101"), d("99"), d("100"), d("5"));
    assert_eq!(first.bars, 1);
    assert_eq!(first.donchian_high, None);
    assert_eq!(first.avg_volume, None);
    assert_eq!(first.atr, None);
    assert_eq!(first.ema_fast, None);
    assert_eq!(first.sma_regime, None);
    assert_eq!(first.regime_slope, None);
}

fn periods() -> impl Strategy<Value = Periods> {
    (
        (1usize..=20, 1usize..=30, 1usize..=30),
        (1usize..=15, 1usize..=25),
        (1usize..=30, 1usize..=60, 1usize..=15),
        0usize..=20,
    )
        .prop_map(
            |((atr, lookback, volume_lookback), (fast, extra), (sma, regime, slope), slack)| {
                let slow = fast + extra;
                let longest = [atr, lookback, volume_lookback, slow, sma, regime, slope]
                    .into_iter()
                    .max()
                    .unwrap();
                Periods {
                    window: longest + 1 + slack,
                    atr,
                    lookback,
                    volume_lookback,
                    fast,
                    slow,
                    sma,
                    regime,
                    slope,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn running_indicators_match_a_naive_recomputation(p in periods(), raw in steps(200..400)) {
        let mut config = default_config();
        p.apply(&mut config);
        prop_assert!(config.validate().is_empty(), "{:?}", config.validate());
        check_all(&config, &bars_from(&raw))?;
    }
}
