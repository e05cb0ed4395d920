//! The health of a trader's journal, judged once: `anx status` prints it, a
//! running trader's `/healthz` serves it and its `/metrics` gauges read it
//! (one assessment, so the three never disagree).
//!
//! Unhealthy when data is stale, a symbol is FAIL_CLOSED, no trader holds the
//! journal's lock, a backtest stopped before `RunCompleted`, or a raised
//! finding is one a trader cannot trade through (repeated broker errors).
//! Data is stale when the trader journaled a `stale` finding about its newest
//! candle, or when the newest candle is older than the limit at `now_ms` – a
//! time the caller brings (the wall clock for `anx status`, the exchange's
//! for a trader), since a projection reads no clock.
//!
//! A backtest's journal is said to be one (completed, being written, or
//! interrupted before `RunCompleted` – only the last is a problem): no trader
//! ever holds it, and its data is history, so the live checks do not apply.

use crate::engine::config::Config;
use crate::engine::risk;
use crate::model::{FindingNote, RunRow};
use crate::Projection;
use anx_journal::{EngineState, RunMode, UnixMs};
use rust_decimal::Decimal;

/// Raised findings of these checks are health problems: the trader cannot
/// do its work while they hold. Others (edge decay, fee bleed) are shown
/// for a person to judge, and the run goes on.
pub const PROBLEM_CHECKS: &[&str] = &["anomaly.broker_errors"];

/// What a health problem is about: its kind and subject stay the same while
/// it lasts (its text's figures move), so a change of health is a problem
/// that came or went, never a figure that moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    /// No trader holds a trader journal's lock.
    NoTrader,
    /// A backtest stopped before `RunCompleted`.
    ReplayInterrupted,
    /// A symbol is FAIL_CLOSED (subject: the symbol).
    FailClosed,
    /// Market data is stale.
    StaleData,
    /// A raised finding of a [`PROBLEM_CHECKS`] check (subject: the check).
    Finding,
    /// A running trader's loop has not finished a pass for too long (judged
    /// by its `/healthz`, not from the journal).
    LoopStalled,
    /// A running trader has not finished its first pass yet (likewise).
    NotStarted,
}

/// One reason a journal is unhealthy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// What it is about within its kind (a symbol, a check), or empty.
    pub subject: String,
    /// What a person reads.
    pub text: String,
}

impl Problem {
    pub fn new(kind: ProblemKind, subject: &str, text: String) -> Problem {
        Problem {
            kind,
            subject: subject.to_string(),
            text,
        }
    }
}

/// The texts of `problems`, in order.
pub fn texts(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(|p| p.text.clone()).collect()
}

/// What a journal is, as health judges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalKind {
    /// No `RunStarted` yet.
    Empty,
    /// A paper or live trader's journal.
    Trader { running: bool, live: bool },
    /// A backtest that journaled `RunCompleted`.
    ReplayCompleted,
    /// A backtest being written right now (its writer holds the lock).
    ReplayRunning,
    /// A backtest that stopped before `RunCompleted` (killed or failed).
    ReplayInterrupted,
}

impl JournalKind {
    pub fn of(run: Option<&RunRow>, locked: bool) -> JournalKind {
        match run {
            None => JournalKind::Empty,
            Some(run) if run.run_mode.is_trader() => JournalKind::Trader {
                running: locked,
                live: run.run_mode == RunMode::Live,
            },
            Some(run) if run.completed_ms.is_some() => JournalKind::ReplayCompleted,
            Some(_) if locked => JournalKind::ReplayRunning,
            Some(_) => JournalKind::ReplayInterrupted,
        }
    }

    pub fn is_trader(self) -> bool {
        matches!(self, JournalKind::Trader { .. } | JournalKind::Empty)
    }

    /// The health problem the kind itself is, if any.
    pub fn problem(self) -> Option<Problem> {
        let (kind, text) = match self {
            JournalKind::Trader { running: false, .. } | JournalKind::Empty => {
                (ProblemKind::NoTrader, "no trader holds the journal's lock")
            }
            JournalKind::ReplayInterrupted => (
                ProblemKind::ReplayInterrupted,
                "the replay run stopped before it completed (no RunCompleted)",
            ),
            _ => return None,
        };
        Some(Problem::new(kind, "", text.into()))
    }

    pub fn code(self) -> &'static str {
        match self {
            JournalKind::Empty => "empty",
            JournalKind::Trader { live: false, .. } => "paper_live",
            JournalKind::Trader { live: true, .. } => "live",
            JournalKind::ReplayCompleted => "replay_backtest_completed",
            JournalKind::ReplayRunning => "replay_backtest_running",
            JournalKind::ReplayInterrupted => "replay_backtest_interrupted",
        }
    }
}

/// How an open position is protected on the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    BracketVerified,
    BracketNotVerified,
    NoBracket,
}

impl Protection {
    pub fn name(self) -> &'static str {
        match self {
            Protection::BracketVerified => "bracket verified",
            Protection::BracketNotVerified => "bracket NOT verified",
            Protection::NoBracket => "no bracket",
        }
    }
}

/// An order still working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingOrder {
    pub client_order_id: String,
    pub purpose: String,
    pub status: String,
    pub size: Decimal,
}

/// One symbol's part of the health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolHealth {
    pub symbol: String,
    pub state: EngineState,
    pub fail_closed: Option<String>,
    pub position: Decimal,
    pub avg_entry: Option<Decimal>,
    /// None when no trade is open.
    pub protection: Option<Protection>,
    pub pending: Vec<PendingOrder>,
    pub last_close_ms: Option<UnixMs>,
    pub last_price: Option<Decimal>,
}

/// The assessment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub healthy: bool,
    pub kind: JournalKind,
    /// Whether a writer (a trader, or a backtest being written) holds the
    /// journal's lock.
    pub locked: bool,
    /// Why it is unhealthy (empty when healthy).
    pub problems: Vec<Problem>,
    /// Circuit breakers active at `now_ms`, and halts.
    pub breakers: Vec<String>,
    pub symbols: Vec<SymbolHealth>,
    /// The newest candle's close over every symbol, and its age at `now_ms`.
    pub newest_close_ms: Option<UnixMs>,
    pub newest_age_s: Option<i64>,
    pub equity: Decimal,
    pub peak_equity: Decimal,
    /// Drawdown from the peak, in percent.
    pub drawdown_pct: Decimal,
    /// Open positions' notional at their last close.
    pub exposure: Decimal,
    pub open_positions: u64,
    /// Findings raised now, oldest check first.
    pub findings: Vec<FindingNote>,
    pub now_ms: UnixMs,
}

/// What the assessment reads.
pub struct HealthInput<'a> {
    pub projection: &'a Projection,
    /// The run's configuration: without it the breakers are not judged.
    pub config: Option<&'a Config>,
    pub now_ms: UnixMs,
    /// Whether a trader (or a backtest's writer) holds the journal's lock.
    pub locked: bool,
    /// How a market time is written in a breaker's detail (the caller's
    /// calendar: a projection holds none).
    pub time_text: fn(UnixMs) -> String,
}

impl Health {
    pub fn assess(input: &HealthInput) -> Health {
        let state = &input.projection.state;
        let kind = JournalKind::of(state.run.as_ref(), input.locked);
        let mut health = Health {
            healthy: true,
            kind,
            locked: input.locked,
            problems: kind.problem().into_iter().collect(),
            breakers: Vec::new(),
            symbols: Vec::new(),
            newest_close_ms: None,
            newest_age_s: None,
            equity: state.equity.equity(),
            peak_equity: state.equity.peak_now(),
            drawdown_pct: Decimal::ZERO,
            exposure: Decimal::ZERO,
            open_positions: 0,
            findings: raised_findings(input.projection),
            now_ms: input.now_ms,
        };
        health.drawdown_pct = risk::drawdown_pct(health.equity, health.peak_equity);
        let stale = health.judge_symbols(input);
        health.newest_age_s = health
            .newest_close_ms
            .map(|close| input.now_ms.saturating_sub(close) / 1000);
        health.judge_money(input);
        if stale {
            let text = "market data is stale".to_string();
            health
                .problems
                .push(Problem::new(ProblemKind::StaleData, "", text));
        }
        health.judge_findings();
        // A halt is deliberate, not a fault: shown as a breaker, not a problem.
        if let Some(halt) = &state.halted {
            health.breakers.push(format!(
                "operator_halt: entries halted by {} at seq {}: {}",
                halt.operator, halt.seq, halt.reason
            ));
        }
        health.healthy = health.problems.is_empty();
        health
    }

    /// Each symbol: its part, FAIL_CLOSED and staleness. True when stale.
    fn judge_symbols(&mut self, input: &HealthInput) -> bool {
        let state = &input.projection.state;
        // A backtest's health is its completion; the clock-based checks
        // (stale data, breakers now) are about live trading only.
        let judge_live = self.kind.is_trader();
        let mut stale = false;
        for (symbol, s) in &state.symbols {
            let part = symbol_health(input.projection, symbol);
            self.newest_close_ms = self.newest_close_ms.max(part.last_close_ms);
            if let Some(price) = part.last_price {
                self.exposure += (part.position * price).abs();
            }
            self.open_positions += u64::from(!part.position.is_zero());
            if s.engine.0 == EngineState::FailClosed || s.fail_closed.is_some() {
                if judge_live {
                    let reason = s.fail_closed.as_deref().unwrap_or("(state)");
                    let text = format!("{symbol} is FAIL_CLOSED: {reason}");
                    self.problems
                        .push(Problem::new(ProblemKind::FailClosed, symbol, text));
                }
                self.breakers.push(format!("symbol_fail_closed: {symbol}"));
            }
            if judge_live && self.judge_stale(input, symbol, part.last_close_ms) {
                stale = true;
            }
            self.symbols.push(part);
        }
        stale
    }

    /// Whether `symbol`'s data is stale: by `now_ms` against the limit, or
    /// by the trader's own `stale` finding about its newest candle (judged
    /// by the exchange's clock).
    fn judge_stale(&mut self, input: &HealthInput, symbol: &str, close: Option<UnixMs>) -> bool {
        let mut stale = false;
        if let (Some(config), Some(close)) = (input.config, close) {
            let breaker = risk::stale_breaker(config, close, input.now_ms);
            if !breaker.passed {
                stale = true;
                self.breakers
                    .push(format!("{}: {symbol} {}", breaker.code, breaker.detail));
            }
        }
        if let Some((seq, newest_ms)) = input.projection.links.last_stale.get(symbol) {
            if Some(*newest_ms) >= close {
                stale = true;
                self.breakers.push(format!(
                    "stale_data: {symbol} feed stale since its candle closing {} (finding at seq {seq})",
                    (input.time_text)(*newest_ms)
                ));
            }
        }
        stale
    }

    /// The drawdown and daily-loss breakers at `now_ms`.
    fn judge_money(&mut self, input: &HealthInput) {
        let Some(config) = input.config else {
            return;
        };
        let state = &input.projection.state;
        let today = risk::realized_on_day(&state.trades, input.now_ms);
        for breaker in [
            risk::drawdown_breaker(config, self.equity, self.peak_equity),
            risk::daily_loss_breaker(config, today, state.equity.start),
        ] {
            if !breaker.passed {
                self.breakers
                    .push(format!("{}: {}", breaker.code, breaker.detail));
            }
        }
    }

    /// Raised findings of a [`PROBLEM_CHECKS`] check are problems.
    fn judge_findings(&mut self) {
        for finding in &self.findings {
            if PROBLEM_CHECKS.contains(&finding.check.as_str()) {
                let text = format!("{}: {}", finding.check, finding.detail);
                self.problems
                    .push(Problem::new(ProblemKind::Finding, &finding.check, text));
            }
        }
    }
}

/// Every finding raised now (the newest of its check is raised).
fn raised_findings(projection: &Projection) -> Vec<FindingNote> {
    projection
        .links
        .findings
        .values()
        .filter(|f| f.raised)
        .cloned()
        .collect()
}

/// `symbol`'s engine state, position and its protection, working orders and
/// newest candle.
fn symbol_health(projection: &Projection, symbol: &str) -> SymbolHealth {
    let state = &projection.state;
    let s = &state.symbols[symbol];
    let protection =
        s.open_trade
            .as_ref()
            .map(|t| match state.orders.get(&t.entry_client_order_id) {
                Some(o) if o.has_bracket && o.bracket_verified => Protection::BracketVerified,
                Some(o) if o.has_bracket => Protection::BracketNotVerified,
                _ => Protection::NoBracket,
            });
    let pending = state
        .open_orders(symbol)
        .map(|o| PendingOrder {
            client_order_id: o.client_order_id.clone(),
            purpose: format!("{:?}", o.purpose).to_lowercase(),
            status: format!("{:?}", o.status).to_lowercase(),
            size: o.size,
        })
        .collect();
    SymbolHealth {
        symbol: symbol.to_string(),
        state: s.engine.0,
        fail_closed: s.fail_closed.clone(),
        position: s.position.quantity,
        avg_entry: s.position.average_entry().map(|p| p.round_dp(8)),
        protection,
        pending,
        last_close_ms: state.last_close_ms(symbol),
        last_price: s.last_close,
    }
}
