//! `anx replay run`: resolve the configuration and flags into a replay, run it
//! (with a progress bar on a terminal), and print the projections' report over
//! the journal it wrote.

use crate::cli::{CapitalModeArg, DataSource, FetchArgs, ReplayRunArgs, ReportFormat, RunModeArg};
use crate::output::market_time;
use crate::render::{replay_json, replay_table, ReplayView};
use anx_journal::JournalError;
use anx_journal::{CapitalMode, RunMode, UnixMs};
use anx_projections::engine::config::{parse_granularity, Config, ConfigError};
use anx_replays::data::granularity_name;
use anx_replays::runner::{self, Coverage, ReplayError, ReplaySpec};
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

/// Every problem found in a configuration: printed one line each.
#[derive(Debug)]
pub struct ConfigProblems {
    /// Where: the file, or "the configuration".
    pub source: String,
    pub problems: Vec<String>,
}

impl std::fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} problem(s) in {}: {}",
            self.problems.len(),
            self.source,
            self.problems.join("; ")
        )
    }
}

impl std::error::Error for ConfigProblems {}

impl ConfigProblems {
    /// The lines to print: a heading, then one problem per line.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "{} problem(s) in {}:",
            self.problems.len(),
            self.source
        )];
        lines.extend(self.problems.iter().map(|p| format!("  {p}")));
        lines
    }
}

/// Loads the configuration file (following `extends`) and applies the flags.
pub fn load_config(path: &Path) -> Result<Config> {
    let mut read = |file: &str| std::fs::read_to_string(file).map_err(|e| e.to_string());
    let file = path
        .to_str()
        .ok_or_else(|| anyhow!("config path {} is not UTF-8", path.display()))?;
    Config::load(file, &mut read).map_err(|e| match e {
        ConfigError::Parse { file, message } => ConfigProblems {
            source: file,
            problems: message.lines().map(str::to_string).collect(),
        }
        .into(),
        ConfigError::Invalid(problems) => ConfigProblems {
            source: file.to_string(),
            problems: problems.iter().map(|p| p.to_string()).collect(),
        }
        .into(),
        other => anyhow!("{other}"),
    })
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
        return Err(ConfigProblems {
            source: "the configuration".into(),
            problems: problems.iter().map(|p| p.to_string()).collect(),
        }
        .into());
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
        bail!("--run-mode paper_live: a replay is always replay_backtest (`anx paper` journals paper_live runs)");
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
    let started = Instant::now();
    let coverage = runner::coverage(&spec)?;
    // Said once the run has succeeded: a run that fails says only why.
    let coverage_warnings = check_coverage(&coverage)?;
    tracing::info!("data checked in {:.3} s", started.elapsed().as_secs_f64());
    let (run_id, _) = runner::identity(&spec);
    spec.journal_dir = match &args.journal {
        Some(dir) => dir.clone(),
        None => default_journal(&run_id),
    };
    if let Some(parent) = spec.journal_dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    tracing::info!("run {run_id}: journal {}", spec.journal_dir.display());
    let candles_max: u64 = coverage.iter().map(|c| c.candles_max()).sum();
    let started = Instant::now();
    let mut bar = crate::output::Progress::new(candles_max, "replaying candles");
    let existed = spec.journal_dir.exists();
    let outcome = match runner::run(&spec, &mut |p| {
        bar.set(p.candles, started.elapsed().as_secs_f64())
    }) {
        Ok(outcome) => outcome,
        Err(error) => {
            bar.finish();
            // A replay that failed after creating its journal (under its lock)
            // leaves nothing half-written behind. A run refused by the lock or
            // by a journal already there created nothing, so it deletes nothing:
            // the directory is another run's.
            let refused = matches!(
                error,
                ReplayError::Journal(JournalError::Locked { .. } | JournalError::AlreadyExists(_))
            );
            if !existed && !refused {
                let _ = std::fs::remove_dir_all(&spec.journal_dir);
            }
            return Err(anyhow::Error::new(error)
                .context(format!("replay into {} failed", spec.journal_dir.display())));
        }
    };
    bar.finish();
    crate::journal_cmd::warn_all(&coverage_warnings);
    tracing::info!(
        "replayed {} candles into {} events in {:.3} s; head {}",
        outcome.progress.candles,
        outcome.progress.events,
        started.elapsed().as_secs_f64(),
        outcome.head
    );
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
            doc["coverage"] = coverage_json(&coverage);
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
            text.push_str(&coverage_table(&coverage));
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

/// Refuses symbols whose cache holds nothing in the requested range (one
/// error naming each, with what the cache does hold); returns a warning for
/// each range the data covers only in part.
fn check_coverage(coverage: &[Coverage]) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    let mut warnings = Vec::new();
    for c in coverage {
        let requested = format!(
            "{} .. {}",
            market_time(c.requested.0),
            market_time(c.requested.1)
        );
        let cached = match c.rows_span {
            Some((first, last)) => format!(
                "its rows open from {} to {}",
                market_time(first),
                market_time(last)
            ),
            None => "it holds no rows".to_string(),
        };
        tracing::info!(
            "{}: {} ({}; {} candles at most, resampled to {})",
            c.symbol,
            c.file.display(),
            cached,
            c.candles_max(),
            granularity_name(c.granularity_s)
        );
        match c.covered {
            None => missing.push(format!(
                "no {} candles in {requested}: the cache file {} covers none of it ({cached})",
                c.symbol,
                c.file.display()
            )),
            Some((from, to)) if !c.is_complete() => warnings.push(format!(
                "{}: the cache covers only {} .. {} of the requested {requested} ({:.1} %)",
                c.symbol,
                market_time(from),
                market_time(to),
                c.fraction() * 100.0
            )),
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        bail!("{}", missing.join("; "));
    }
    Ok(warnings)
}

/// The coverage figures of a report: per symbol, the span of the requested
/// range the cached data covers.
fn coverage_json(coverage: &[Coverage]) -> serde_json::Value {
    let rows: serde_json::Map<String, serde_json::Value> = coverage
        .iter()
        .map(|c| {
            (
                c.symbol.clone(),
                json!({
                    "requested_from": market_time(c.requested.0),
                    "requested_to": market_time(c.requested.1),
                    "data_from": c.covered.map(|(from, _)| market_time(from)),
                    "data_to": c.covered.map(|(_, to)| market_time(to)),
                    "fraction": (c.fraction() * 10_000.0).round() / 10_000.0,
                }),
            )
        })
        .collect();
    serde_json::Value::Object(rows)
}

fn coverage_table(coverage: &[Coverage]) -> String {
    let mut text = String::from("\ncoverage       data span vs the requested range\n");
    for c in coverage {
        let span = c.covered.map_or("none".to_string(), |(from, to)| {
            format!("{} .. {}", market_time(from), market_time(to))
        });
        text.push_str(&format!(
            "  {:<12} {span}  ({:.1} %)\n",
            c.symbol,
            c.fraction() * 100.0
        ));
    }
    text
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
