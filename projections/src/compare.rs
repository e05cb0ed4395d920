//! Two runs compared over the market time they share (`anx compare A B`): A is
//! the reference (typically a backtest), B the run held against it (a paper
//! or live run of the same period, or a backtest with another configuration).
//!
//! - Decisions are aligned by symbol and the candle they read (its open time;
//!   a second decision on one candle, a re-priced retry, by its place among
//!   them) – not by the decision's own time, which for a live run is the
//!   exchange's clock (a stale candle, a retry); each is reduced to a
//!   fingerprint (outcome, sizing and the glass box's digest), so a million
//!   decisions compare in memory without keeping their glass boxes; the first
//!   that differs is then read in full by the caller and taken apart field by
//!   field ([`decision_differences`]).
//! - Trades are matched by their entry decision (symbol and the candle it read).
//! - Thresholds ([`Thresholds`], `config/compare.toml`) say when B has
//!   drifted from A far enough to act: [`crossings`].
//!
//! Pure: the caller reads the journals; nothing here does I/O.

use crate::breakdown::{Bucket, ClosedTrade};
use crate::model::TradeRow;
use anx_journal::codec::BODY_CONFIG;
use anx_journal::{Decision, GlassBox, Hash32, Seq, UnixMs};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a decision sits: its symbol, the open time of the candle it read,
/// and its place among that candle's decisions (0 for the first).
pub type DecisionKey = (String, UnixMs, u32);

/// What the alignment keeps of a decision: its seq and a fingerprint of
/// everything it decided (outcome, sizing, glass box digest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecisionPrint {
    pub seq: Seq,
    pub print: Hash32,
}

impl DecisionPrint {
    /// The fingerprint of `e` (journaled at `seq`). The configuration hash is
    /// left out: a schema-2 record does not carry it, and two configurations
    /// that decide the same are the same here.
    pub fn of(seq: Seq, e: &Decision) -> Result<DecisionPrint, String> {
        let facts = bincode::serde::encode_to_vec((&e.outcome, &e.sizing), BODY_CONFIG)
            .map_err(|err| format!("seq {seq}: {err}"))?;
        let digest = e
            .glass
            .digest()
            .map_err(|err| format!("seq {seq}: {err}"))?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(&facts);
        hasher.update(&digest.0);
        Ok(DecisionPrint {
            seq,
            print: Hash32(*hasher.finalize().as_bytes()),
        })
    }
}

/// The market time both runs decided over: from the later first decision to
/// the earlier last one, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from_ms: UnixMs,
    pub to_ms: UnixMs,
}

impl Window {
    /// The shared window of two decision maps; `None` when they do not meet.
    pub fn shared(
        a: &BTreeMap<DecisionKey, DecisionPrint>,
        b: &BTreeMap<DecisionKey, DecisionPrint>,
    ) -> Option<Window> {
        let span = |m: &BTreeMap<DecisionKey, DecisionPrint>| {
            let times = m.keys().map(|(_, ms, _)| *ms);
            Some((times.clone().min()?, times.max()?))
        };
        let ((a_from, a_to), (b_from, b_to)) = (span(a)?, span(b)?);
        let window = Window {
            from_ms: a_from.max(b_from),
            to_ms: a_to.min(b_to),
        };
        (window.from_ms <= window.to_ms).then_some(window)
    }

    pub fn holds(&self, ms: UnixMs) -> bool {
        (self.from_ms..=self.to_ms).contains(&ms)
    }
}

/// The first decision (by candle time, then symbol) the two runs made
/// differently, or that one made and the other did not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FirstDifference {
    pub symbol: String,
    /// The open time of the candle it read.
    pub candle_ms: UnixMs,
    pub seq_a: Option<Seq>,
    pub seq_b: Option<Seq>,
}

/// Decisions aligned over the shared window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DecisionAlignment {
    pub agree: u64,
    pub differ: u64,
    /// Decided in the window by A only, by B only.
    pub only_a: u64,
    pub only_b: u64,
    pub first_difference: Option<FirstDifference>,
}

impl DecisionAlignment {
    pub fn of(
        a: &BTreeMap<DecisionKey, DecisionPrint>,
        b: &BTreeMap<DecisionKey, DecisionPrint>,
        window: Window,
    ) -> DecisionAlignment {
        let mut out = DecisionAlignment::default();
        let mut first: Option<FirstDifference> = None;
        let keys: std::collections::BTreeSet<&DecisionKey> = a.keys().chain(b.keys()).collect();
        for key in keys.into_iter().filter(|(_, ms, _)| window.holds(*ms)) {
            let (da, db) = (a.get(key), b.get(key));
            match (da, db) {
                (Some(x), Some(y)) if x.print == y.print => {
                    out.agree += 1;
                    continue;
                }
                (Some(_), Some(_)) => out.differ += 1,
                (Some(_), None) => out.only_a += 1,
                (None, _) => out.only_b += 1,
            }
            let earlier = first
                .as_ref()
                .is_none_or(|f| (key.1, &key.0) < (f.candle_ms, &f.symbol));
            if earlier {
                first = Some(FirstDifference {
                    symbol: key.0.clone(),
                    candle_ms: key.1,
                    seq_a: da.map(|d| d.seq),
                    seq_b: db.map(|d| d.seq),
                });
            }
        }
        out.first_difference = first;
        out
    }
}

/// One field of two decisions, each side in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldDifference {
    pub field: String,
    pub a: String,
    pub b: String,
}

fn text<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}")
}

fn opt_text(value: Option<Decimal>) -> String {
    value.map_or("-".to_string(), |v| v.to_string())
}

/// A decision's sizing, field by field (empty without one).
fn sizing_fields(sizing: &Option<anx_journal::Sizing>) -> BTreeMap<String, String> {
    let Some(Ok(serde_json::Value::Object(fields))) = sizing.as_ref().map(serde_json::to_value)
    else {
        return BTreeMap::new();
    };
    fields
        .into_iter()
        .map(|(k, v)| (k, v.as_str().map_or(v.to_string(), str::to_string)))
        .collect()
}

/// Every field two decisions disagree on ([`decision_fields`], those whose
/// two sides differ).
pub fn decision_differences(
    a: &Decision,
    b: &Decision,
    glass_a: Option<&GlassBox>,
    glass_b: Option<&GlassBox>,
) -> Vec<FieldDifference> {
    decision_fields(a, b, glass_a, glass_b)
        .into_iter()
        .filter(|f| f.a != f.b)
        .collect()
}

/// Two decisions side by side, field by field: outcome, each sizing figure,
/// and (given both glass boxes in full) regime, indicators, signals and risk
/// checks, matched by name (`-` where a side has none).
pub fn decision_fields(
    a: &Decision,
    b: &Decision,
    glass_a: Option<&GlassBox>,
    glass_b: Option<&GlassBox>,
) -> Vec<FieldDifference> {
    let mut out = Vec::new();
    let mut field = |name: String, x: String, y: String| {
        out.push(FieldDifference {
            field: name,
            a: x,
            b: y,
        });
    };
    field("outcome".into(), text(&a.outcome), text(&b.outcome));
    let (sa, sb) = (sizing_fields(&a.sizing), sizing_fields(&b.sizing));
    let names: std::collections::BTreeSet<&String> = sa.keys().chain(sb.keys()).collect();
    for name in names {
        let value = |m: &BTreeMap<String, String>| m.get(name).cloned().unwrap_or("-".into());
        field(format!("sizing {name}"), value(&sa), value(&sb));
    }
    if let (Some(x), Some(y)) = (glass_a, glass_b) {
        field("regime".into(), x.regime.to_string(), y.regime.to_string());
        let indicator = |i: &anx_journal::Indicator| opt_text(i.value);
        for (name, (va, vb)) in by_name(&x.indicators, &y.indicators, |i| &i.name, indicator) {
            field(format!("indicator {name}"), va, vb);
        }
        let signal = |s: &anx_journal::SignalOutput| {
            format!(
                "fired {} strength {} confidence {} entry {} stop {} take-profit {}",
                s.fired,
                s.strength,
                s.confidence,
                opt_text(s.entry),
                opt_text(s.stop),
                opt_text(s.take_profit)
            )
        };
        for (name, (va, vb)) in by_name(&x.signals, &y.signals, |s| &s.name, signal) {
            field(format!("signal {name}"), va, vb);
        }
        let check = |r: &anx_journal::RiskCheck| format!("passed {} {}", r.passed, r.detail);
        for (name, (va, vb)) in by_name(&x.risk_checks, &y.risk_checks, |r| &r.code, check) {
            field(format!("risk {name}"), va, vb);
        }
    }
    out
}

/// Items of two lists matched by name, each rendered (`-` where a side has
/// none), in name order.
fn by_name<T>(
    a: &[T],
    b: &[T],
    name: impl Fn(&T) -> &anx_journal::Text,
    render: impl Fn(&T) -> String,
) -> BTreeMap<String, (String, String)> {
    let mut out: BTreeMap<String, (String, String)> = BTreeMap::new();
    for item in a {
        out.entry(name(item).to_string())
            .or_insert(("-".into(), "-".into()))
            .0 = render(item);
    }
    for item in b {
        out.entry(name(item).to_string())
            .or_insert(("-".into(), "-".into()))
            .1 = render(item);
    }
    out
}

/// Two trades opened by the same entry decision, side by side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TradeMatch {
    pub symbol: String,
    pub decided_ms: UnixMs,
    pub a: TradeRow,
    pub b: TradeRow,
    /// How much worse B's entry fill was than A's, in bps of A's price
    /// (positive: B paid more).
    pub entry_fill_bps: Decimal,
    /// How much worse B's exit fill was, in bps of A's price (positive: B
    /// sold for less).
    pub exit_fill_bps: Decimal,
}

impl TradeMatch {
    /// Whether the two trades differ in anything a trader reads: fills, fees,
    /// slippage, exit reason, R or net PnL (their size follows the capital).
    pub fn differs(&self) -> bool {
        let (a, b) = (&self.a, &self.b);
        (
            a.entry_price,
            a.exit_price,
            a.fees,
            a.slippage,
            a.realized_r,
            a.net_pnl,
        ) != (
            b.entry_price,
            b.exit_price,
            b.fees,
            b.slippage,
            b.realized_r,
            b.net_pnl,
        ) || a.exit_reason != b.exit_reason
    }
}

/// The trades of both runs whose entry decision lies in the shared window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TradeComparison {
    pub matched: Vec<TradeMatch>,
    pub only_a: Vec<TradeRow>,
    pub only_b: Vec<TradeRow>,
    /// The window's closed trades of each side, as one bucket each.
    pub bucket_a: Bucket,
    pub bucket_b: Bucket,
    /// Mean of the matched trades' entry and exit fill differences, bps.
    pub fill_bps_mean: Option<Decimal>,
}

/// A trade's entry decision time (its fill time for a trade the journal has
/// no entry decision for).
fn decided_ms(trade: &ClosedTrade) -> UnixMs {
    match trade.1.entry.decided_ms {
        0 => trade.0.entry_ms,
        ms => ms,
    }
}

/// `(worse − better) / reference` in bps, two places.
fn bps(worse_by: Decimal, reference: Decimal) -> Decimal {
    if reference.is_zero() {
        return Decimal::ZERO;
    }
    (worse_by / reference * Decimal::from(10_000)).round_dp(2)
}

impl TradeComparison {
    pub fn of(a: &[ClosedTrade], b: &[ClosedTrade], window: Window) -> TradeComparison {
        // Grouped, not keyed: two trades on one key (a journal without entry
        // decisions) are matched in order, never one dropped.
        let grouped = |trades: &[ClosedTrade]| -> BTreeMap<(String, UnixMs), Vec<TradeRow>> {
            let mut groups: BTreeMap<(String, UnixMs), Vec<TradeRow>> = BTreeMap::new();
            for t in trades.iter().filter(|t| window.holds(decided_ms(t))) {
                let key = (t.0.symbol.clone(), decided_ms(t));
                groups.entry(key).or_default().push(t.0.clone());
            }
            groups
        };
        let (ga, mut gb) = (grouped(a), grouped(b));
        let mut out = TradeComparison {
            bucket_a: Bucket::of(ga.values().flatten()),
            bucket_b: Bucket::of(gb.values().flatten()),
            ..TradeComparison::default()
        };
        let mut fill_sum = Decimal::ZERO;
        for (key, rows_a) in ga {
            let mut rows_b = gb.remove(&key).unwrap_or_default().into_iter();
            for ta in rows_a {
                let Some(tb) = rows_b.next() else {
                    out.only_a.push(ta);
                    continue;
                };
                let m = TradeMatch::of(&key, ta, tb);
                fill_sum += m.entry_fill_bps + m.exit_fill_bps;
                out.matched.push(m);
            }
            out.only_b.extend(rows_b);
        }
        out.only_b.extend(gb.into_values().flatten());
        let fills = Decimal::from(2 * out.matched.len() as u64);
        out.fill_bps_mean = (!fills.is_zero()).then(|| (fill_sum / fills).round_dp(2));
        out
    }
}

impl TradeMatch {
    fn of(key: &(String, UnixMs), a: TradeRow, b: TradeRow) -> TradeMatch {
        TradeMatch {
            symbol: key.0.clone(),
            decided_ms: key.1,
            entry_fill_bps: bps(b.entry_price - a.entry_price, a.entry_price),
            exit_fill_bps: bps(a.exit_price - b.exit_price, a.exit_price),
            a,
            b,
        }
    }
}

/// When B has drifted from A far enough to act on (`config/compare.toml`,
/// where each is explained).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// B's expectancy (R per trade) below A's by more than this percent of
    /// |A's|.
    pub expectancy_drop_pct_max: Decimal,
    /// B's matched fills worse than A's by more than this, in bps, on average.
    pub fill_slippage_bps_max: Decimal,
    /// The win rate of B's last `win_rate_window_trades` trades below this.
    pub win_rate_min_pct: Decimal,
    pub win_rate_window_trades: u32,
    /// Fewer closed trades in the window on either side: the expectancy check
    /// is not made (too few to judge).
    pub min_trades: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdsFile {
    thresholds: Thresholds,
}

impl Thresholds {
    pub fn from_toml(text: &str) -> Result<Thresholds, String> {
        toml::from_str::<ThresholdsFile>(text)
            .map(|f| f.thresholds)
            .map_err(|e| e.message().to_string())
    }
}

/// A threshold B crossed, or could not be judged against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ThresholdVerdict {
    /// `expectancy_drop`, `fill_slippage` or `win_rate`.
    pub check: &'static str,
    pub crossed: bool,
    /// The measured figure and its limit, when it could be measured.
    pub value: Option<Decimal>,
    pub limit: Decimal,
    pub detail: String,
}

/// Every threshold judged: the expectancy drop over the window's trades, the
/// matched fills' slippage, and the win rate of B's newest trades (`b_all`:
/// all of B's closed trades, in order).
pub fn crossings(
    t: &Thresholds,
    trades: &TradeComparison,
    b_all: &[TradeRow],
) -> Vec<ThresholdVerdict> {
    vec![
        expectancy_verdict(t, trades),
        fill_verdict(t, trades),
        win_rate_verdict(t, b_all),
    ]
}

fn expectancy_verdict(t: &Thresholds, trades: &TradeComparison) -> ThresholdVerdict {
    let (a, b) = (&trades.bucket_a, &trades.bucket_b);
    let mut verdict = ThresholdVerdict {
        check: "expectancy_drop",
        crossed: false,
        value: None,
        limit: t.expectancy_drop_pct_max,
        detail: String::new(),
    };
    let fewest = a.trades.min(b.trades);
    let (Some(ea), Some(eb)) = (a.expectancy_r, b.expectancy_r) else {
        verdict.detail = "not judged: a side has no closed trade in the window".into();
        return verdict;
    };
    if fewest < u64::from(t.min_trades) || ea.is_zero() {
        verdict.detail = format!(
            "not judged: {} and {} trades (at least {} each needed), A's expectancy {ea} R",
            a.trades, b.trades, t.min_trades
        );
        return verdict;
    }
    let drop_pct = ((ea - eb) / ea.abs() * Decimal::ONE_HUNDRED).round_dp(2);
    verdict.value = Some(drop_pct);
    verdict.crossed = drop_pct > t.expectancy_drop_pct_max;
    verdict.detail = format!(
        "expectancy {ea} R (A) against {eb} R (B): B's is {drop_pct} % below A's (negative: above)"
    );
    verdict
}

fn fill_verdict(t: &Thresholds, trades: &TradeComparison) -> ThresholdVerdict {
    let value = trades.fill_bps_mean;
    ThresholdVerdict {
        check: "fill_slippage",
        crossed: value.is_some_and(|v| v > t.fill_slippage_bps_max),
        value,
        limit: t.fill_slippage_bps_max,
        detail: match value {
            Some(v) => format!(
                "B's fills {v} bps worse than A's on average over {} matched trades",
                trades.matched.len()
            ),
            None => "not judged: no matched trade".into(),
        },
    }
}

/// The win rate of the newest `window` trades of `b_all`, judged once there
/// are that many.
pub fn win_rate_verdict(t: &Thresholds, b_all: &[TradeRow]) -> ThresholdVerdict {
    let window = t.win_rate_window_trades as usize;
    let mut verdict = ThresholdVerdict {
        check: "win_rate",
        crossed: false,
        value: None,
        limit: t.win_rate_min_pct,
        detail: format!("not judged: {} closed trades, {window} needed", b_all.len()),
    };
    if window == 0 || b_all.len() < window {
        return verdict;
    }
    let last = Bucket::of(b_all[b_all.len() - window..].iter());
    let pct = crate::report::percent(last.win_rate).map(|p| p.round_dp(2));
    verdict.value = pct;
    verdict.crossed = pct.is_some_and(|p| p < t.win_rate_min_pct);
    verdict.detail = format!("{} wins in the last {window} trades of B", last.wins);
    verdict
}

/// One report metric of each run, and B − A.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MetricRow {
    pub name: &'static str,
    pub a: Option<Decimal>,
    pub b: Option<Decimal>,
    pub diff: Option<Decimal>,
}

/// The reports' metrics side by side (shares in percent, as in the JSON).
pub fn metric_rows(a: &crate::Report, b: &crate::Report) -> Vec<MetricRow> {
    let pct = crate::report::percent;
    let figures = |r: &crate::Report| -> Vec<(&'static str, Option<Decimal>)> {
        vec![
            ("trades_closed", Some(Decimal::from(r.trades_closed))),
            ("win_rate_pct", pct(r.win_rate)),
            ("expectancy", r.expectancy),
            ("expectancy_r", r.expectancy_r),
            ("profit_factor", r.profit_factor),
            ("net_pnl", Some(r.net_pnl)),
            ("return_pct", r.return_pct),
            ("max_drawdown_pct", Some(r.max_drawdown_pct)),
            ("sharpe", r.sharpe),
            ("fees", Some(r.attribution.fees)),
            ("slippage", Some(r.attribution.slippage)),
            ("edge", Some(r.attribution.edge)),
            ("maker_share_pct", pct(r.attribution.maker_share)),
            ("avg_risk", r.attribution.avg_risk),
        ]
    };
    figures(a)
        .into_iter()
        .zip(figures(b))
        .map(|((name, x), (_, y))| MetricRow {
            name,
            a: x,
            b: y,
            diff: x.zip(y).map(|(x, y)| (y - x).normalize()),
        })
        .collect()
}
