//! `anx status <DIR>`: the health of a trader's journal, read-only and safe
//! while the trader runs (no lock, no index writes; a record being appended
//! right now is simply not read yet). Per symbol: engine state, the open
//! position and whether its bracket was verified, pending orders; the newest
//! candle and its age; which circuit breakers are active; equity; the head; and
//! whether a trader holds the journal's lock.
//!
//! Unhealthy – exit 1 – by the one assessment a running trader's `/healthz`
//! serves too ([`anx_projections::health`]): stale data, a FAIL_CLOSED
//! symbol, no trader holding the lock, an interrupted backtest, a raised
//! finding the trader cannot trade through. The age of the data is judged
//! by the wall clock (read here, at the edge; `--now` replaces it).

use crate::cli::StatusArgs;
use crate::output::market_time;
use crate::render::num;
use crate::store::{self, LoadOptions};
use crate::EXIT_CHECK_FAILED;
use anx_journal::{Head, UnixMs};
use anx_projections::engine::config::Config;
use anx_projections::health::{Health, HealthInput, JournalKind};
use anx_projections::model::RunRow;
use anx_projections::Projection;
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
    let now_ms: UnixMs = match &args.now {
        Some(text) => crate::replay_cmd::parse_time(text, "now")?,
        None => chrono::Utc::now().timestamp_millis(),
    };
    let health = Health::assess(&HealthInput {
        projection: &loaded.projection,
        config: config.as_ref(),
        now_ms,
        locked: trader_running,
        time_text: market_time,
    });
    let head = Head {
        seq: loaded.head_seq,
        hash: loaded.head_hash,
    };
    if args.json {
        let doc = health_doc(&health, &loaded.projection, head, &warnings);
        println!("{doc}");
    } else {
        crate::journal_cmd::warn_all(&warnings);
        print_text(&args.dir, &health, &loaded.projection, head);
    }
    Ok(if health.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_CHECK_FAILED)
    })
}

/// The health as JSON: `anx status --json` prints it, a trader's `/healthz`
/// serves it (with its loop's figures added).
pub fn health_doc(
    health: &Health,
    projection: &Projection,
    head: Head,
    warnings: &[String],
) -> Value {
    let state = &projection.state;
    let mut symbols = serde_json::Map::new();
    for s in &health.symbols {
        let pending: Vec<Value> = s
            .pending
            .iter()
            .map(|o| json!({"client_order_id": o.client_order_id, "purpose": o.purpose, "status": o.status, "size": num(o.size)}))
            .collect();
        symbols.insert(
            s.symbol.clone(),
            json!({
                "state": s.state.name(),
                "fail_closed": s.fail_closed,
                "position": num(s.position),
                "avg_entry": s.avg_entry.map(num),
                "protection": s.protection.map(|p| p.name()),
                "pending_orders": pending,
                "last_candle_close": s.last_close_ms.map(market_time),
                "last_candle_age_s": s.last_close_ms.map(|close| health.now_ms.saturating_sub(close) / 1000),
                "last_price": s.last_price.map(num),
            }),
        );
    }
    json!({
        "healthy": health.healthy,
        "journal_kind": health.kind.code(),
        "problems": anx_projections::health::texts(&health.problems),
        "trader_running": health.locked,
        "head_seq": head.seq,
        "head_hash": head.hash.to_hex(),
        "run_id": state.run.as_ref().map(|r| r.run_id.clone()),
        "now": market_time(health.now_ms),
        "symbols": symbols,
        "last_candle_close": health.newest_close_ms.map(market_time),
        "last_candle_age_s": health.newest_age_s,
        "breakers_active": health.breakers,
        "equity": num(health.equity),
        "peak_equity": num(health.peak_equity),
        "drawdown_pct": num(health.drawdown_pct.round_dp(4)),
        "exposure": num(health.exposure.round_dp(8)),
        "open_positions": health.open_positions,
        "halted": state.halted.as_ref().map(operator_note),
        "operator_actions": state.operator_log.iter().map(operator_note).collect::<Vec<_>>(),
        "findings": health.findings.iter().map(|f| json!({
            "seq": f.seq, "at": market_time(f.market_ms), "check": f.check,
            "symbol": (!f.symbol.is_empty()).then_some(&f.symbol),
            "value": f.value.map(num), "limit": num(f.limit), "detail": f.detail,
        })).collect::<Vec<_>>(),
        "warnings": warnings,
        "last_session": projection.links.sessions.last().map(|s| json!({
            "seq": s.seq,
            "action": format!("{:?}", s.action).to_lowercase(),
            "reason": s.reason,
        })),
    })
}

fn operator_note(n: &anx_projections::model::OperatorNote) -> Value {
    json!({"seq": n.seq, "at": market_time(n.market_ms), "command": n.command,
           "symbol": (!n.symbol.is_empty()).then_some(&n.symbol), "operator": n.operator, "reason": n.reason})
}

fn print_text(dir: &std::path::Path, health: &Health, projection: &Projection, head: Head) {
    let state = &projection.state;
    println!("journal    {} (head {head})", dir.display());
    println!("kind       {}", describe(health.kind, state.run.as_ref()));
    if health.kind.is_trader() {
        println!(
            "trader     {}",
            if health.locked {
                "running (holds the lock)"
            } else {
                "NOT running"
            }
        );
    }
    if let Some(session) = projection.links.sessions.last() {
        println!(
            "session    {:?} at seq {}: {}",
            session.action, session.seq, session.reason
        );
    }
    match (health.newest_close_ms, health.newest_age_s) {
        (Some(close), Some(age)) => println!(
            "data       newest candle closed {} ({} ago)",
            market_time(close),
            crate::output::humanize_age(age)
        ),
        _ => println!("data       no candle yet"),
    }
    println!(
        "equity     {} (peak {})",
        health.equity.round_dp(2),
        health.peak_equity.round_dp(2)
    );
    for s in &health.symbols {
        println!(
            "{:<10} {:<14} position {} {} pending {}",
            s.symbol,
            s.state.name(),
            num(s.position),
            s.protection
                .map(|p| format!("({})", p.name()))
                .unwrap_or_default(),
            s.pending.len()
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
    for f in &health.findings {
        let symbol = if f.symbol.is_empty() {
            String::new()
        } else {
            format!(" {}", f.symbol)
        };
        println!(
            "finding    {}{symbol} raised at seq {}: {}",
            f.check, f.seq, f.detail
        );
    }
    println!(
        "breakers   {}",
        if health.breakers.is_empty() {
            "none".to_string()
        } else {
            health.breakers.join("; ")
        }
    );
    println!(
        "health     {}",
        if health.healthy {
            "OK".to_string()
        } else {
            let problems = anx_projections::health::texts(&health.problems);
            format!("UNHEALTHY: {}", problems.join("; "))
        }
    );
}

/// What a journal is, in a line.
fn describe(kind: JournalKind, run: Option<&RunRow>) -> String {
    let Some(run) = run else {
        return "no run started yet".into();
    };
    let range = format!(
        "{} .. {}",
        market_time(run.start_ms),
        run.end_ms.map_or("open end".into(), market_time)
    );
    match kind {
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
