//! `anx status <DIR>`: the health of a trader's journal, read-only and safe
//! while the trader runs (no lock, no index writes; a record being appended
//! right now is simply not read yet). Per symbol: engine state, the open
//! position and whether its bracket was verified, pending orders; the newest
//! candle and its age; which circuit breakers are active; equity; the head; and
//! whether a trader holds the journal's lock.
//!
//! Unhealthy – exit 1 – when data is stale, a symbol is FAIL_CLOSED, or no
//! trader holds the lock. Data is stale when the trader journaled a `stale`
//! finding about its newest candle, or when the newest candle is older than
//! the limit by the wall clock (read here, at the edge; `--now` replaces it).
//!
//! A backtest's journal is said to be one (completed, being written, or
//! interrupted before `RunCompleted` – only the last is exit 1): no trader
//! ever holds it, and its data is history, so the live checks do not apply.

use crate::cli::StatusArgs;
use crate::output::market_time;
use crate::render::num;
use crate::store::{self, LoadOptions};
use crate::EXIT_CHECK_FAILED;
use anx_journal::{EngineState, UnixMs};
use anx_projections::engine::config::Config;
use anx_projections::engine::risk;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::process::ExitCode;

/// The configuration the run was started with, from its `RunStarted` event:
/// none before the run starts; an error when the journaled text does not load.
fn run_config(dir: &std::path::Path) -> Result<Option<Result<Config>>> {
    Ok(crate::journal_cmd::first_run(dir)?.map(|run| crate::replay_cmd::run_config(&run)))
}

pub fn status(args: &StatusArgs) -> Result<ExitCode> {
    crate::journal_cmd::check_dir(&args.dir)?;
    let trader_running = anx_journal::is_locked(&args.dir)
        .with_context(|| format!("cannot check the lock of {}", args.dir.display()))?;
    let loaded = store::load(
        &args.dir,
        LoadOptions {
            to_seq: None,
            use_store: false,
        },
    )
    .with_context(|| format!("cannot read {}", args.dir.display()))?;
    let mut warnings = loaded.warnings.clone();
    // Without the run's configuration the breakers cannot be judged: say so.
    let config = match run_config(&args.dir)? {
        Some(Ok(config)) => Some(config),
        Some(Err(error)) => {
            warnings.push(format!(
                "{}; circuit breakers not checked",
                crate::output::one_line(&error)
            ));
            None
        }
        None => None,
    };
    let state = &loaded.projection.state;
    let now_ms: UnixMs = match &args.now {
        Some(text) => crate::replay_cmd::parse_time(text, "now")?,
        None => chrono::Utc::now().timestamp_millis(),
    };
    let kind = JournalKind::of(state.run.as_ref(), trader_running);
    let mut problems: Vec<String> = Vec::new();
    if let Some(problem) = kind.problem() {
        problems.push(problem.into());
    }
    // A backtest's health is its completion; the clock-based checks (stale
    // data, breakers now) are about live trading only.
    let judge_live = kind.is_trader();
    let mut breakers: Vec<String> = Vec::new();
    let mut stale = false;
    let mut symbols = serde_json::Map::new();
    let mut newest_close_ms: Option<UnixMs> = None;
    for (symbol, s) in &state.symbols {
        let close_ms = state.last_close_ms(symbol);
        newest_close_ms = newest_close_ms.max(close_ms);
        if s.engine.0 == EngineState::FailClosed || s.fail_closed.is_some() {
            if judge_live {
                problems.push(format!(
                    "{symbol} is FAIL_CLOSED: {}",
                    s.fail_closed.as_deref().unwrap_or("(state)")
                ));
            }
            breakers.push(format!("symbol_fail_closed: {symbol}"));
        }
        // By this clock (or --now): each symbol's newest candle against the limit.
        if let (Some(config), Some(close), true) = (&config, close_ms, judge_live) {
            let breaker = risk::stale_breaker(config, close, now_ms);
            if !breaker.passed {
                stale = true;
                breakers.push(format!("{}: {symbol} {}", breaker.code, breaker.detail));
            }
        }
        // The trader's own verdict, by the exchange's clock: a `stale` finding
        // about the newest candle it has.
        if let Some((seq, newest_ms)) = loaded.projection.links.last_stale.get(symbol) {
            if Some(*newest_ms) >= close_ms {
                stale = true;
                breakers.push(format!(
                    "stale_data: {symbol} feed stale since its candle closing {} (finding at seq {seq})",
                    market_time(*newest_ms)
                ));
            }
        }
        let protection = s.open_trade.as_ref().map(|t| {
            let order = state.orders.get(&t.entry_client_order_id);
            match order {
                Some(o) if o.has_bracket && o.bracket_verified => "bracket verified",
                Some(o) if o.has_bracket => "bracket NOT verified",
                _ => "no bracket",
            }
        });
        let pending: Vec<Value> = state
            .open_orders(symbol)
            .map(|o| json!({"client_order_id": o.client_order_id, "purpose": format!("{:?}", o.purpose).to_lowercase(), "status": format!("{:?}", o.status).to_lowercase(), "size": num(o.size)}))
            .collect();
        symbols.insert(
            symbol.clone(),
            json!({
                "state": s.engine.0.name(),
                "fail_closed": s.fail_closed,
                "position": num(s.position.quantity),
                "avg_entry": s.position.average_entry().map(|p| num(p.round_dp(8))),
                "protection": protection,
                "pending_orders": pending,
                "last_candle_close": close_ms.map(market_time),
                "last_price": s.last_close.map(num),
            }),
        );
    }
    let age_s = newest_close_ms.map(|close| (now_ms - close) / 1000);
    let equity = state.equity.equity();
    let peak = state.equity.peak_now();
    if let Some(config) = &config {
        let today = risk::realized_on_day(&state.trades, now_ms);
        for breaker in [
            risk::drawdown_breaker(config, equity, peak),
            risk::daily_loss_breaker(config, today, state.equity.start),
        ] {
            if !breaker.passed {
                breakers.push(format!("{}: {}", breaker.code, breaker.detail));
            }
        }
    }
    if stale {
        problems.push("market data is stale".into());
    }
    // A halt is deliberate, not a fault: shown as a breaker, not a problem.
    if let Some(halt) = &state.halted {
        breakers.push(format!(
            "operator_halt: entries halted by {} at seq {}: {}",
            halt.operator, halt.seq, halt.reason
        ));
    }
    let operator_note = |n: &anx_projections::model::OperatorNote| {
        json!({"seq": n.seq, "at": market_time(n.market_ms), "command": n.command,
               "symbol": (!n.symbol.is_empty()).then_some(&n.symbol), "operator": n.operator, "reason": n.reason})
    };
    let healthy = problems.is_empty();
    // Raised findings (a check the trader was given, holding now): shown, not
    // counted as a problem – the run may go on while a person looks.
    let findings: Vec<&anx_projections::FindingNote> = loaded
        .projection
        .links
        .findings
        .values()
        .filter(|f| f.raised)
        .collect();
    let doc = json!({
        "healthy": healthy,
        "journal_kind": kind.code(),
        "problems": problems,
        "trader_running": trader_running,
        "head_seq": loaded.head_seq,
        "head_hash": loaded.head_hash.to_hex(),
        "run_id": state.run.as_ref().map(|r| r.run_id.clone()),
        "symbols": symbols,
        "last_candle_close": newest_close_ms.map(market_time),
        "last_candle_age_s": age_s,
        "breakers_active": breakers,
        "equity": num(equity),
        "peak_equity": num(peak),
        "halted": state.halted.as_ref().map(operator_note),
        "operator_actions": state.operator_log.iter().map(operator_note).collect::<Vec<_>>(),
        "findings": findings.iter().map(|f| json!({
            "seq": f.seq, "at": market_time(f.market_ms), "check": f.check,
            "symbol": (!f.symbol.is_empty()).then_some(&f.symbol),
            "value": f.value.map(num), "limit": num(f.limit), "detail": f.detail,
        })).collect::<Vec<_>>(),
        "warnings": warnings,
        "last_session": loaded.projection.links.sessions.last().map(|s| json!({
            "seq": s.seq,
            "action": format!("{:?}", s.action).to_lowercase(),
            "reason": s.reason,
        })),
    });
    if args.json {
        println!("{doc}");
    } else {
        crate::journal_cmd::warn_all(&warnings);
        println!(
            "journal    {} (head {}:{})",
            args.dir.display(),
            loaded.head_seq,
            loaded.head_hash
        );
        println!("kind       {}", kind.describe(state.run.as_ref()));
        if kind.is_trader() {
            println!(
                "trader     {}",
                if trader_running {
                    "running (holds the lock)"
                } else {
                    "NOT running"
                }
            );
        }
        if let Some(session) = loaded.projection.links.sessions.last() {
            println!(
                "session    {:?} at seq {}: {}",
                session.action, session.seq, session.reason
            );
        }
        match (newest_close_ms, age_s) {
            (Some(close), Some(age)) => println!(
                "data       newest candle closed {} ({} ago)",
                market_time(close),
                crate::output::humanize_age(age)
            ),
            _ => println!("data       no candle yet"),
        }
        println!(
            "equity     {} (peak {})",
            equity.round_dp(2),
            peak.round_dp(2)
        );
        for (symbol, info) in &symbols {
            println!(
                "{symbol:<10} {:<14} position {} {} pending {}",
                info["state"].as_str().unwrap_or("?"),
                info["position"],
                info["protection"]
                    .as_str()
                    .map(|p| format!("({p})"))
                    .unwrap_or_default(),
                info["pending_orders"].as_array().map_or(0, |a| a.len())
            );
        }
        for note in &state.operator_log {
            let symbol = if note.symbol.is_empty() {
                String::new()
            } else {
                format!(" {}", note.symbol)
            };
            println!(
                "operator   {}{symbol} at seq {} by {}: {}",
                note.command, note.seq, note.operator, note.reason
            );
        }
        for f in &findings {
            println!(
                "finding    {} raised at seq {}: {}",
                f.check, f.seq, f.detail
            );
        }
        println!(
            "breakers   {}",
            if breakers.is_empty() {
                "none".to_string()
            } else {
                breakers.join("; ")
            }
        );
        println!(
            "health     {}",
            if healthy {
                "OK".to_string()
            } else {
                format!("UNHEALTHY: {}", problems.join("; "))
            }
        );
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_CHECK_FAILED)
    })
}

/// What a journal is, as `anx status` judges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JournalKind {
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
    fn of(run: Option<&anx_projections::model::RunRow>, locked: bool) -> JournalKind {
        match run {
            None => JournalKind::Empty,
            Some(run) if run.run_mode.is_trader() => JournalKind::Trader {
                running: locked,
                live: run.run_mode == anx_journal::RunMode::Live,
            },
            Some(run) if run.completed_ms.is_some() => JournalKind::ReplayCompleted,
            Some(_) if locked => JournalKind::ReplayRunning,
            Some(_) => JournalKind::ReplayInterrupted,
        }
    }

    fn is_trader(self) -> bool {
        matches!(self, JournalKind::Trader { .. } | JournalKind::Empty)
    }

    /// The health problem the kind itself is, if any.
    fn problem(self) -> Option<&'static str> {
        match self {
            JournalKind::Trader { running: false, .. } | JournalKind::Empty => {
                Some("no trader holds the journal's lock")
            }
            JournalKind::ReplayInterrupted => {
                Some("the replay run stopped before it completed (no RunCompleted)")
            }
            _ => None,
        }
    }

    fn code(self) -> &'static str {
        match self {
            JournalKind::Empty => "empty",
            JournalKind::Trader { live: false, .. } => "paper_live",
            JournalKind::Trader { live: true, .. } => "live",
            JournalKind::ReplayCompleted => "replay_backtest_completed",
            JournalKind::ReplayRunning => "replay_backtest_running",
            JournalKind::ReplayInterrupted => "replay_backtest_interrupted",
        }
    }

    fn describe(self, run: Option<&anx_projections::model::RunRow>) -> String {
        let Some(run) = run else {
            return "no run started yet".into();
        };
        let range = format!(
            "{} .. {}",
            market_time(run.start_ms),
            run.end_ms.map_or("open end".into(), market_time)
        );
        match self {
            JournalKind::Trader { live: true, .. } => {
                format!("live trader run {} on Coinbase (from {range})", run.run_id)
            }
            JournalKind::Trader { .. } | JournalKind::Empty => {
                format!("paper trader run {} (from {range})", run.run_id)
            }
            JournalKind::ReplayCompleted => format!(
                "a completed backtest (replay_backtest run {}, {range}, {} candles, {}): no trader runs on it",
                run.run_id,
                run.candles,
                run.completion.as_deref().unwrap_or("completed")
            ),
            JournalKind::ReplayRunning => format!(
                "a backtest being written (replay_backtest run {}, {range}, {} candles so far)",
                run.run_id, run.candles
            ),
            JournalKind::ReplayInterrupted => format!(
                "an interrupted backtest (replay_backtest run {}, {range}, {} candles, no RunCompleted)",
                run.run_id, run.candles
            ),
        }
    }
}
