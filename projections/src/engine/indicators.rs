//! Rolling indicators over a bounded window of bars, O(1) per bar: running sums
//! for the simple averages, a monotonic deque for the Donchian high, recursive
//! EMAs. Nothing rescans the window.
//!
//! Definitions (all on closed bars):
//! - true range = max(high − low, |high − previous close|, |low − previous close|);
//!   ATR = simple average of the last `atr_bars` true ranges;
//! - Donchian high = highest high of the `lookback_bars` bars *before* the
//!   current one; average volume likewise over the previous bars;
//! - EMA(n): seeded with the first close, then ema += 2/(n+1) × (close − ema);
//! - SMA(n): simple average of the last n closes (current included);
//! - regime slope: SMA(regime) now minus SMA(regime) `slope_bars` bars ago.

use super::config::Config;
use rust_decimal::Decimal;
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bar {
    close: Decimal,
    volume: Decimal,
    true_range: Decimal,
}

/// A running sum over the last `n` values of one series in the window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RunningSum {
    n: usize,
    sum: Decimal,
}

impl RunningSum {
    /// Adds the newest value and takes off the one leaving the last `n`
    /// (added first, as the running sum always has been).
    fn add(&mut self, value: Decimal, leaving: Option<Decimal>) {
        self.sum += value;
        if let Some(old) = leaving {
            self.sum -= old;
        }
    }
}

/// A Donchian high over the last `n` bars: (bar number, high), highs decreasing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct MaxDeque {
    n: u64,
    items: VecDeque<(u64, Decimal)>,
}

impl MaxDeque {
    fn push(&mut self, number: u64, value: Decimal) {
        while self.items.back().is_some_and(|(_, v)| *v <= value) {
            self.items.pop_back();
        }
        self.items.push_back((number, value));
        while self
            .items
            .front()
            .is_some_and(|(i, _)| *i + self.n <= number)
        {
            self.items.pop_front();
        }
    }

    fn max(&self) -> Option<Decimal> {
        self.items.front().map(|(_, v)| *v)
    }
}

/// What the indicators say after the newest bar.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub bars: u64,
    pub close: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub volume: Decimal,
    /// Highest high of the previous `lookback_bars` bars.
    pub donchian_high: Option<Decimal>,
    /// Average volume of the previous `volume_lookback_bars` bars.
    pub avg_volume: Option<Decimal>,
    pub atr: Option<Decimal>,
    pub ema_fast: Option<Decimal>,
    pub ema_slow: Option<Decimal>,
    pub ema_fast_prev: Option<Decimal>,
    pub ema_slow_prev: Option<Decimal>,
    pub sma_mean: Option<Decimal>,
    pub sma_regime: Option<Decimal>,
    pub regime_slope: Option<Decimal>,
}

/// One symbol's rolling indicator state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Indicators {
    window_bars: usize,
    bars: VecDeque<Bar>,
    count: u64,
    atr: RunningSum,
    volume: RunningSum,
    mean: RunningSum,
    regime: RunningSum,
    donchian: MaxDeque,
    ema_slow_n: u32,
    /// 2/(n+1) for each EMA, worked out once rather than on every bar.
    ema_fast_alpha: Decimal,
    ema_slow_alpha: Decimal,
    ema_fast: Option<Decimal>,
    ema_slow: Option<Decimal>,
    regime_history: VecDeque<Decimal>,
    slope_bars: usize,
}

fn alpha(n: u32) -> Decimal {
    Decimal::TWO / Decimal::from(n + 1)
}

impl Indicators {
    pub fn new(config: &Config) -> Indicators {
        let s = &config.strategy;
        Indicators {
            window_bars: s.window_bars as usize,
            atr: RunningSum {
                n: s.atr_bars as usize,
                sum: Decimal::ZERO,
            },
            volume: RunningSum {
                n: s.breakout.volume_lookback_bars as usize,
                sum: Decimal::ZERO,
            },
            mean: RunningSum {
                n: s.mean_reversion.sma_bars as usize,
                sum: Decimal::ZERO,
            },
            regime: RunningSum {
                n: config.regime.sma_bars as usize,
                sum: Decimal::ZERO,
            },
            donchian: MaxDeque {
                n: u64::from(s.breakout.lookback_bars),
                items: VecDeque::new(),
            },
            ema_slow_n: s.momentum.slow_ema_bars,
            ema_fast_alpha: alpha(s.momentum.fast_ema_bars),
            ema_slow_alpha: alpha(s.momentum.slow_ema_bars),
            slope_bars: config.regime.slope_bars as usize,
            ..Indicators::default()
        }
    }

    /// The value `back` bars before the newest (0 = newest).
    fn back(&self, back: usize) -> Option<&Bar> {
        self.bars
            .len()
            .checked_sub(back + 1)
            .and_then(|i| self.bars.get(i))
    }

    fn average(sum: &RunningSum, available: usize) -> Option<Decimal> {
        (available >= sum.n && sum.n > 0).then(|| sum.sum / Decimal::from(sum.n as u64))
    }

    /// Adds a closed bar and returns the indicators as of it.
    pub fn push(
        &mut self,
        high: Decimal,
        low: Decimal,
        close: Decimal,
        volume: Decimal,
    ) -> Snapshot {
        // "Previous bars" figures first, before the new bar enters the window.
        let donchian_high = (self.count >= self.donchian.n)
            .then(|| self.donchian.max())
            .flatten();
        let avg_volume = Self::average(&self.volume, self.bars.len());
        let true_range = self.true_range(high, low);
        // Volume average is over previous bars: add this bar after reading it.
        self.enter_window(Bar {
            close,
            volume,
            true_range,
        });
        self.update_sums(true_range, close, volume);
        self.donchian.push(self.count, high);
        self.count += 1;
        let (ema_fast_prev, ema_slow_prev) = self.update_emas(close);
        let len = self.bars.len();
        let sma_regime = Self::average(&self.regime, len);
        let regime_slope = self.update_regime_slope(sma_regime);
        let warm = |n: u32| self.count >= u64::from(n);
        Snapshot {
            bars: self.count,
            close,
            high,
            low,
            volume,
            donchian_high,
            avg_volume,
            atr: Self::average(&self.atr, len),
            ema_fast: self.ema_fast.filter(|_| warm(self.ema_slow_n)),
            ema_slow: self.ema_slow.filter(|_| warm(self.ema_slow_n)),
            ema_fast_prev: ema_fast_prev.filter(|_| warm(self.ema_slow_n + 1)),
            ema_slow_prev: ema_slow_prev.filter(|_| warm(self.ema_slow_n + 1)),
            sma_mean: Self::average(&self.mean, len),
            sma_regime,
            regime_slope,
        }
    }

    /// The true range of a bar from `high` to `low`, against the previous
    /// close (the first bar has none: its range alone).
    fn true_range(&self, high: Decimal, low: Decimal) -> Decimal {
        match self.back(0) {
            Some(previous) => (high - low)
                .max((high - previous.close).abs())
                .max((low - previous.close).abs()),
            None => high - low,
        }
    }

    /// Appends `bar`, dropping the oldest once the window is full.
    fn enter_window(&mut self, bar: Bar) {
        self.bars.push_back(bar);
        if self.bars.len() > self.window_bars {
            self.bars.pop_front();
        }
    }

    /// The value leaving an n-sum as the newest bar enters: the one n bars
    /// before the newest. The window always holds more bars than any n
    /// (validated), so it is there once n + 1 bars have been seen.
    fn leaving(&self, n: usize, pick: fn(&Bar) -> Decimal) -> Option<Decimal> {
        self.back(n).map(pick)
    }

    /// Moves each running sum on by the newest bar (already in the window).
    fn update_sums(&mut self, true_range: Decimal, close: Decimal, volume: Decimal) {
        let atr_leaving = self.leaving(self.atr.n, |b| b.true_range);
        self.atr.add(true_range, atr_leaving);
        let mean_leaving = self.leaving(self.mean.n, |b| b.close);
        self.mean.add(close, mean_leaving);
        let regime_leaving = self.leaving(self.regime.n, |b| b.close);
        self.regime.add(close, regime_leaving);
        let volume_leaving = self.leaving(self.volume.n, |b| b.volume);
        self.volume.add(volume, volume_leaving);
    }

    /// Moves both EMAs on by `close`; returns their values before it.
    fn update_emas(&mut self, close: Decimal) -> (Option<Decimal>, Option<Decimal>) {
        let previous = (self.ema_fast, self.ema_slow);
        self.ema_fast = Some(match self.ema_fast {
            Some(ema) => ema + self.ema_fast_alpha * (close - ema),
            None => close,
        });
        self.ema_slow = Some(match self.ema_slow {
            Some(ema) => ema + self.ema_slow_alpha * (close - ema),
            None => close,
        });
        previous
    }

    /// Records the regime SMA (once there is one) and returns its change over
    /// the last `slope_bars` bars, once that many are recorded.
    fn update_regime_slope(&mut self, sma_regime: Option<Decimal>) -> Option<Decimal> {
        if let Some(sma) = sma_regime {
            self.regime_history.push_back(sma);
            if self.regime_history.len() > self.slope_bars + 1 {
                self.regime_history.pop_front();
            }
        }
        (self.regime_history.len() == self.slope_bars + 1).then(|| {
            self.regime_history.back().copied().unwrap_or_default()
                - self.regime_history.front().copied().unwrap_or_default()
        })
    }

    pub fn bars_seen(&self) -> u64 {
        self.count
    }
}
