//! `anx replay run`: resolve the configuration and flags into a replay, run it
//! (with a progress bar on a terminal), and print the projections' report over
//! the journal it wrote.

use crate::cli::{CapitalModeArg, DataSource, FetchArgs, ReplayRunArgs, ReportFormat, RunModeArg};
use crate::render::{replay_json, replay_table, ReplayView};
use anx_journal::{CapitalMode, RunMode, UnixMs};
use anx_projections::engine::config::{parse_granularity, Config};
use anx_replays::runner::{self, ReplaySpec};
use anyhow::{anyhow, bail, Context, Result};
use rust_decimal::Decimal;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Instant;

/// `--start` and `--end`, the end after the start.
fn parse_range(start: &str, end: &str) -> Result<(UnixMs, UnixMs)> {
    let (start_ms, end_ms) = (parse_time(start, "start")?, parse_time(end, "end")?);
    if end_ms <= start_ms {
        bail!("--end {end} is not after --start {start}");
    }
    Ok((start_ms, end_ms))
}

/// `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time, in Unix milliseconds.
pub fn parse_time(text: &str, what: &str) -> Result<UnixMs> {
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let midnight = day
            .and_hms_opt(0, 0, 0)
            .ok_or_else(|| anyhow!("bad --{what} date {text:?}"))?;
        return Ok(midnight.and_utc().timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| anyhow!("--{what} {text:?} is neither YYYY-MM-DD nor an RFC 3339 time"))
}

/// Loads the configuration file (following `extends`) and applies the flags.
pub fn load_config(path: &Path) -> Result<Config> {
    let mut read = |file: &str| std::fs::read_to_string(file).map_err(|e| e.to_string());
    let file = path
        .to_str()
        .ok_or_else(|| anyhow!("config path {} is not UTF-8", path.display()))?;
    Config::load(file, &mut read).map_err(|e| anyhow!("{e}"))
}

fn effective_config(args: &ReplayRunArgs) -> Result<Config> {
    let mut config = load_config(&args.config)?;
    if !args.symbols.is_empty() {
        config.run.symbols = args.symbols.clone();
    }
    if let Some(granularity) = &args.granularity {
        config.run.granularity = granularity.clone();
    }
    if let Some(mode) = args.capital_mode {
        config.run.capital_mode = match mode {
            CapitalModeArg::Independent => CapitalMode::Independent,
            CapitalModeArg::Portfolio => CapitalMode::Portfolio,
        };
    }
    if let Some(capital) = &args.starting_capital {
        config.run.starting_capital = Decimal::from_str(capital)
            .map_err(|_| anyhow!("--starting-capital {capital:?} is not a decimal number"))?;
    }
    validated(config)
}

/// The configuration a run was started with, as its `RunStarted` records it.
pub fn run_config(run: &anx_journal::RunStarted) -> Result<Config> {
    Config::from_toml(&run.config_text).map_err(|e| {
        anyhow!(
            "the configuration journaled for run {} does not load: {e}",
            run.run_id
        )
    })
}

/// `config` if it is valid, else every problem in one error.
pub fn validated(config: Config) -> Result<Config> {
    let problems = config.validate();
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        bail!(
            "{} problem(s) in the configuration:\n{}",
            lines.len(),
            lines.join("\n")
        );
    }
    Ok(config)
}

/// A fresh journal directory under `anx-data/journals/` named after the run.
fn default_journal(run_id: &str) -> PathBuf {
    let base = PathBuf::from("anx-data/journals");
    let first = base.join(run_id);
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| base.join(format!("{run_id}.{n}")))
        .find(|p| !p.exists())
        .expect("some name is free")
}

pub fn run(args: &ReplayRunArgs) -> Result<ExitCode> {
    if args.run_mode != RunModeArg::ReplayBacktest {
        bail!(
            "--run-mode {:?}: a replay is always replay_backtest (use `anx paper` for paper_live)",
            args.run_mode
        );
    }
    let config = effective_config(args)?;
    // Validated by `effective_config`.
    let granularity_s = config.granularity_s();
    let (start_ms, end_ms) = parse_range(&args.start, &args.end)?;
    if args.data_source == DataSource::Coinbase {
        crate::fetch::fill_cache(
            &args.coinbase_url,
            &args.cache_dir,
            &args.exchange,
            &config.run.symbols,
            granularity_s,
            start_ms,
            end_ms,
        )?;
    }
    let mut spec = ReplaySpec {
        config,
        exchange: args.exchange.clone(),
        start_ms,
        end_ms,
        cache_dir: args.cache_dir.clone(),
        journal_dir: PathBuf::new(),
        run_mode: RunMode::ReplayBacktest,
        skip_volume_filter: args.skip_volume_filter,
        created_by: format!("anx {} replay run", env!("CARGO_PKG_VERSION")),
        git_sha: env!("ANX_GIT_SHA").to_string(),
    };
    let (run_id, _) = runner::identity(&spec);
    spec.journal_dir = match &args.journal {
        Some(dir) => dir.clone(),
        None => default_journal(&run_id),
    };
    if let Some(parent) = spec.journal_dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let bars_expected = ((end_ms - start_ms) / (i64::from(granularity_s) * 1000)).max(1) as u64
        * spec.config.run.symbols.len() as u64;
    let started = Instant::now();
    let mut bar = crate::output::Progress::new(bars_expected, "replaying candles");
    let existed = spec.journal_dir.exists();
    let outcome = match runner::run(&spec, &mut |p| {
        bar.set(p.candles, started.elapsed().as_secs_f64())
    }) {
        Ok(outcome) => outcome,
        Err(error) => {
            bar.finish();
            // A replay that failed leaves no half-written journal behind (it made
            // the directory itself; nothing else was in it).
            if !existed {
                let _ = std::fs::remove_dir_all(&spec.journal_dir);
            }
            return Err(anyhow::Error::new(error)
                .context(format!("replay into {} failed", spec.journal_dir.display())));
        }
    };
    bar.finish();
    let wall_s = started.elapsed().as_secs_f64();
    let candles = outcome.progress.candles;
    let view = ReplayView {
        projection: &outcome.projection,
        head_seq: outcome.head.seq,
        head_hash: outcome.head.hash,
        from_snapshot: None,
        folded: outcome.progress.events,
        elapsed_ms: wall_s * 1000.0,
    };
    let candles_per_s = (candles as f64 / wall_s.max(1e-9)).round();
    let rendered = match args.report_format {
        ReportFormat::Json => {
            let mut doc = replay_json(&view);
            doc["run_id"] = json!(outcome.run_id);
            doc["journal"] = json!(spec.journal_dir.display().to_string());
            doc["candles"] = json!(candles);
            doc["wall_s"] = json!((wall_s * 1000.0).round() / 1000.0);
            doc["candles_per_s"] = json!(candles_per_s);
            format!("{doc}\n")
        }
        ReportFormat::Table => {
            let mut text = format!(
                "replay {} -> {}\n{} candles in {:.2} s ({} candles/s), {} events\n\n",
                outcome.run_id,
                spec.journal_dir.display(),
                candles,
                wall_s,
                candles_per_s,
                outcome.progress.events
            );
            text.push_str(&replay_table(&view));
            text
        }
        ReportFormat::Html => {
            let html = crate::html::report(&spec.journal_dir, &view)?;
            let path = args
                .report_out
                .clone()
                .unwrap_or_else(|| spec.journal_dir.join("report.html"));
            std::fs::write(&path, html)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!(
                "wrote {} (journal {}, head {})",
                path.display(),
                spec.journal_dir.display(),
                outcome.head
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    print!("{rendered}");
    if let Some(path) = &args.report_out {
        std::fs::write(path, &rendered)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `anx data fetch`.
pub fn fetch(args: &FetchArgs) -> Result<ExitCode> {
    let granularity_s = parse_granularity(&args.granularity).ok_or_else(|| {
        anyhow!(
            "--granularity {:?}: expected 1m, 15m, 1h, 4h, 1d …",
            args.granularity
        )
    })?;
    let (start_ms, end_ms) = parse_range(&args.start, &args.end)?;
    let fetched = crate::fetch::fill_cache(
        &args.coinbase_url,
        &args.cache_dir,
        "COINBASE",
        &args.symbols,
        granularity_s,
        start_ms,
        end_ms,
    )?;
    for (symbol, count) in fetched {
        if count == 0 {
            println!("{symbol}: cache hit, nothing fetched");
        } else {
            println!(
                "{symbol}: fetched {count} candles into {}",
                args.cache_dir.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
