//! `anx paper`: the paper trader. Live Coinbase candles, the simulated broker,
//! the production engine, and a journal written ahead of every action.
//!
//! One task, one loop – nothing races over state:
//!
//! ```text
//! start:  open the journal (torn tail repaired, corruption refused, a second
//!         trader refused by the lock) and re-drive it through the pipeline:
//!         projection, engine memory and the broker's working orders are
//!         rebuilt by doing again what was done, and a step a crash cut short
//!         is finished exactly as it would have been. Then the repair note, a
//!         `Session` marker, and one `Reconciliation` per symbol.
//! loop:   reconcile positions with the broker (the broker is the truth)
//!         advance pending orders (the simulated broker works them on candles)
//!         fetch closed source bars since the last one (exchange time decides
//!         what is closed); validate and resample them with the replay's own
//!         `BarFolder`; each new closed candle goes through the pipeline
//!         staleness: the newest candle older than the limit → a `stale`
//!         finding (the engine refuses entries on stale data)
//!         sleep the poll interval, or stop on SIGINT/SIGTERM
//! stop:   between steps: a checkpoint, a `Session` stop marker, fsync, exit 0.
//! ```
//!
//! Every append is `Durability::Always`: the decision and the order intent
//! (with its client_order_id) are on disk before the order reaches the broker,
//! and the broker's answer is on disk before the engine acts on it.
//!
//! Time: the exchange's clock (`GET /api/v3/brokerage/time`) says which bars
//! have closed and how old the data is; a candle is decided on at its close,
//! or at the exchange time it arrived if it arrived stale. Nothing journaled
//! reads the local clock, so a run killed and restarted any number of times
//! journals the same run as one that never stopped.

use crate::cli::PaperArgs;
use crate::fetch::{coinbase_granularity, get_with_retries, parse_candles};
use crate::replay_cmd::load_config;
use anx_journal::*;
use anx_projections::engine::config::{parse_granularity, Config};
use anx_projections::engine::Engine;
use anx_projections::model::OrderStatus;
use anx_replays::data::{parse_decimal, BarFolder, Item, SourceBar};
use anx_replays::exchange::{Broker, SimExchange};
use anx_replays::pipeline::Pipeline;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Attempts per market-data request within one poll (the next poll tries again).
const ATTEMPTS_PER_POLL: u32 = 3;
/// Coinbase's per-request candle limit.
const BARS_PER_REQUEST_MAX: i64 = 300;
/// A poll fetches at most this many windows per symbol (a long catch-up
/// continues on the next poll instead of blocking the loop).
const WINDOWS_PER_POLL_MAX: u32 = 20;

/// One symbol's live feed.
struct Feed {
    symbol: String,
    folder: BarFolder,
    /// Open time of the next source bar to ask for.
    next_bar_ms: UnixMs,
    /// Close of the newest journaled candle.
    newest_close_ms: Option<UnixMs>,
    /// In a feed outage (its first failure was journaled).
    outage: bool,
    /// The newest close a `stale` finding was journaled for.
    stale_flagged_for: Option<UnixMs>,
}

/// What a poll fetched for one symbol.
enum Fetched {
    Bars(Vec<SourceBar>),
    Failed { url: String, error: String },
}

struct Market {
    client: reqwest::Client,
    base_url: String,
    source_s: u32,
    source_name: &'static str,
}

impl Market {
    /// The market for `granularity_s` candles: Coinbase's coarsest granularity
    /// dividing it is fetched and resampled.
    fn new(client: reqwest::Client, base_url: &str, granularity_s: u32) -> Result<Market> {
        let (source_s, source_name) = coinbase_granularity(granularity_s).ok_or_else(|| {
            anyhow!(
                "Coinbase has no candles that divide {}",
                anx_replays::data::granularity_name(granularity_s)
            )
        })?;
        Ok(Market {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            source_s,
            source_name,
        })
    }

    async fn server_time(&self) -> Result<UnixMs> {
        let url = format!("{}/api/v3/brokerage/time", self.base_url);
        let body = get_with_retries(&self.client, &url, ATTEMPTS_PER_POLL).await?;
        let value: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| anyhow!("{url}: the answer is not JSON ({e})"))?;
        let field = |name: &str| -> Option<i64> {
            match value.get(name)? {
                serde_json::Value::String(s) => s.parse().ok(),
                serde_json::Value::Number(n) => n.as_i64(),
                _ => None,
            }
        };
        field("epochMillis")
            .or_else(|| field("epochSeconds").map(|s| s * 1000))
            .ok_or_else(|| anyhow!("{url}: the answer has no epochMillis or epochSeconds"))
    }

    /// Closed source bars of `symbol` opening in `[from_ms, now_ms)`, oldest first.
    async fn closed_bars(
        &self,
        symbol: &str,
        from_ms: UnixMs,
        now_ms: UnixMs,
    ) -> std::result::Result<Vec<SourceBar>, (String, String)> {
        let step_ms = i64::from(self.source_s) * 1000;
        let mut bars = Vec::new();
        let mut window_start = from_ms;
        let mut windows = 0;
        while window_start + step_ms <= now_ms && windows < WINDOWS_PER_POLL_MAX {
            windows += 1;
            let window_end = (window_start + BARS_PER_REQUEST_MAX * step_ms).min(now_ms);
            let url = format!(
                "{}/api/v3/brokerage/market/products/{symbol}/candles?start={}&end={}&granularity={}",
                self.base_url,
                window_start / 1000,
                window_end / 1000,
                self.source_name
            );
            let fail = |e: anyhow::Error| (url.clone(), crate::output::one_line(&e));
            let body = get_with_retries(&self.client, &url, ATTEMPTS_PER_POLL)
                .await
                .map_err(fail)?;
            for (start_s, fields) in parse_candles(&body, &url).map_err(fail)? {
                let open_ms = start_s * 1000;
                // Only closed bars: the exchange also answers the one in progress.
                if open_ms < window_start || open_ms + step_ms > now_ms {
                    continue;
                }
                let mut values = [rust_decimal::Decimal::ZERO; 5];
                for (slot, text) in values.iter_mut().zip(&fields) {
                    *slot = parse_decimal(text).ok_or_else(|| {
                        (
                            url.clone(),
                            format!("{url}: candle value {text:?} is not a number"),
                        )
                    })?;
                }
                bars.push(SourceBar {
                    open_ms,
                    ohlcv: values,
                });
            }
            window_start = window_end;
        }
        bars.sort_by_key(|b| b.open_ms);
        bars.dedup_by_key(|b| b.open_ms);
        Ok(bars)
    }
}

struct Trader {
    pipeline: Pipeline<SimExchange>,
    feeds: Vec<Feed>,
    run_id: String,
    granularity_s: u32,
    stale_age_ms_max: i64,
    /// Findings already journaled (a restart refetches the bars of an
    /// unfinished bucket and must not report them twice).
    findings_seen: BTreeSet<String>,
    /// The exchange's time at the last successful poll.
    now_ms: UnixMs,
    source_label: String,
}

fn finding_key(finding: &DataQuality) -> String {
    format!("{}|{:?}", finding.symbol, finding.issue)
}

impl Trader {
    /// Remembers what a journaled input or side event says about the feeds.
    fn remember(&mut self, stored: &StoredEvent) {
        match &stored.event {
            Event::Candle(c) => {
                let close_ms = c.open_ms + i64::from(c.granularity_s) * 1000;
                if let Some(feed) = self.feeds.iter_mut().find(|f| f.symbol == c.symbol) {
                    feed.newest_close_ms = Some(close_ms);
                    feed.next_bar_ms = close_ms;
                    feed.folder.resume_after(close_ms - feed.folder.source_ms());
                }
            }
            Event::DataQuality(f) => {
                self.findings_seen.insert(finding_key(f));
                if let QualityIssue::Stale { newest_ms, .. } = f.issue {
                    if let Some(feed) = self.feeds.iter_mut().find(|x| x.symbol == f.symbol) {
                        feed.stale_flagged_for = Some(newest_ms);
                    }
                }
            }
            _ => {}
        }
        self.now_ms = self.now_ms.max(stored.market_ms);
    }

    fn append_side(&mut self, event: Event) -> Result<Seq> {
        Ok(self.pipeline.append_side(self.now_ms, &event)?)
    }

    /// Compares the broker's positions and open orders with the journal's.
    /// `always` journals the outcome even when they agree (at start-up); in
    /// the loop only a disagreement is journaled. A position the broker does
    /// not confirm fails the symbol closed.
    fn reconcile(&mut self, always: bool) -> Result<()> {
        let prefix = anx_projections::engine::order::prefix(&self.run_id);
        let broker_orders = self.pipeline.broker.open_orders(&prefix);
        let symbols: Vec<String> = self.feeds.iter().map(|f| f.symbol.clone()).collect();
        for symbol in symbols {
            let state = &self.pipeline.projection.state;
            let ours = state
                .symbols
                .get(&symbol)
                .map(|s| s.position.quantity)
                .unwrap_or_default();
            let theirs = self.pipeline.broker.position(&symbol);
            let our_open: Vec<String> = state
                .orders
                .iter()
                .filter(|(_, o)| {
                    o.symbol == symbol
                        && matches!(o.status, OrderStatus::Placed | OrderStatus::Acknowledged)
                })
                .map(|(id, _)| id.clone())
                .collect();
            let their_open: Vec<String> = broker_orders
                .iter()
                .filter(|id| our_open.contains(id) || id.contains(&symbol.replace('-', "")))
                .cloned()
                .collect();
            let agree = ours == theirs;
            if agree && !always {
                continue;
            }
            let detail = if agree {
                "positions agree".to_string()
            } else {
                format!("the broker holds {theirs} {symbol}, the journal's fills say {ours}")
            };
            let seq = self.append_side(Event::Reconciliation(Reconciliation {
                symbol: symbol.clone(),
                broker_position: theirs,
                our_position: ours,
                broker_open_orders: their_open,
                our_open_orders: our_open,
                outcome: if agree {
                    ReconcileOutcome::Match
                } else {
                    ReconcileOutcome::Mismatch
                },
                detail: detail.clone(),
            }))?;
            if !agree {
                tracing::error!("{symbol}: {detail}; failing closed");
                self.append_side(Event::FailClosed(FailClosed {
                    symbol: symbol.clone(),
                    cause_seq: seq,
                    reason: format!("reconciliation mismatch: {detail}"),
                }))?;
            }
        }
        Ok(())
    }

    /// A finding, unless the same one is already journaled.
    fn finding(&mut self, market_ms: UnixMs, finding: DataQuality) -> Result<()> {
        if self.findings_seen.insert(finding_key(&finding)) {
            tracing::warn!("{}: {}", finding.symbol, finding.detail);
            self.pipeline.finding(market_ms, finding)?;
        }
        Ok(())
    }

    fn feed_fault(&mut self, index: usize, url: String, error: String) -> Result<()> {
        tracing::warn!(
            "{}: market data unavailable: {error}",
            self.feeds[index].symbol
        );
        if self.feeds[index].outage {
            return Ok(());
        }
        self.feeds[index].outage = true;
        let finding = DataQuality {
            symbol: self.feeds[index].symbol.clone(),
            granularity_s: self.granularity_s,
            issue: QualityIssue::FeedFault {
                attempts: ATTEMPTS_PER_POLL,
            },
            source: url,
            detail: error,
        };
        // Not de-duplicated: each outage is its own event.
        self.pipeline.finding(self.now_ms, finding)?;
        Ok(())
    }

    /// Journals and decides on what one poll fetched; no await in here, so a
    /// shutdown never lands in the middle of a step.
    fn apply(&mut self, now_ms: UnixMs, fetched: Vec<Fetched>) -> Result<()> {
        self.now_ms = self.now_ms.max(now_ms);
        let mut items: Vec<((UnixMs, u8, usize), Item)> = Vec::new();
        for (index, fetched) in fetched.into_iter().enumerate() {
            match fetched {
                Fetched::Failed { url, error } => self.feed_fault(index, url, error)?,
                Fetched::Bars(bars) => {
                    let feed = &mut self.feeds[index];
                    feed.outage = false;
                    let source = format!("{}/{}", self.source_label, feed.symbol);
                    for bar in bars {
                        if bar.open_ms < feed.next_bar_ms {
                            continue;
                        }
                        feed.next_bar_ms = bar.open_ms + feed.folder.source_ms();
                        feed.folder.push(bar, &|| source.clone());
                    }
                    while let Some(item) = feed.folder.pop() {
                        let time = match &item {
                            Item::Finding { market_ms, .. } => (*market_ms, 0),
                            Item::Candle(c) => (c.open_ms + i64::from(c.granularity_s) * 1000, 1),
                        };
                        items.push(((time.0, time.1, index), item));
                    }
                }
            }
        }
        // The replay's order: market time, findings before candles, symbols in order.
        items.sort_by_key(|(key, _)| *key);
        for ((time_ms, _, index), item) in items {
            match item {
                Item::Finding { market_ms, finding } => self.finding(market_ms, finding)?,
                Item::Candle(candle) => {
                    let age_ms = self.now_ms - time_ms;
                    // A candle that arrives stale is decided on when it arrived, so
                    // the engine's stale-data breaker sees its true age.
                    let as_of_ms = if age_ms > self.stale_age_ms_max {
                        self.now_ms
                    } else {
                        time_ms
                    };
                    tracing::info!(
                        "{} candle {} close {}",
                        candle.symbol,
                        crate::output::market_time(candle.open_ms),
                        candle.close
                    );
                    self.pipeline.candle(candle, as_of_ms)?;
                    self.feeds[index].newest_close_ms = Some(time_ms);
                }
            }
        }
        for refused in std::mem::take(&mut self.pipeline.duplicates_refused) {
            tracing::warn!("duplicate order prevented: {refused}");
        }
        self.check_staleness()
    }

    /// The newest candle older than the limit: journaled once per newest candle.
    fn check_staleness(&mut self) -> Result<()> {
        for index in 0..self.feeds.len() {
            let feed = &self.feeds[index];
            let Some(newest_ms) = feed.newest_close_ms else {
                continue;
            };
            let age_ms = self.now_ms - newest_ms;
            if age_ms <= self.stale_age_ms_max || feed.stale_flagged_for == Some(newest_ms) {
                continue;
            }
            self.feeds[index].stale_flagged_for = Some(newest_ms);
            let finding = DataQuality {
                symbol: self.feeds[index].symbol.clone(),
                granularity_s: self.granularity_s,
                issue: QualityIssue::Stale { newest_ms, age_ms },
                source: self.source_label.clone(),
                detail: format!(
                    "newest candle closed {}s ago, limit {}s: no entries until fresh data",
                    age_ms / 1000,
                    self.stale_age_ms_max / 1000
                ),
            };
            tracing::warn!("{}: {}", finding.symbol, finding.detail);
            self.pipeline.finding(self.now_ms, finding)?;
        }
        Ok(())
    }

    /// A clean stop: checkpoint, stop marker, fsync.
    fn stop(mut self, reason: &str) -> Result<Head> {
        let checkpoint = Checkpoint {
            through_seq: self.pipeline.projection.seq(),
            state_hash: self.pipeline.projection.state_hash(),
        };
        self.append_side(Event::Checkpoint(checkpoint))?;
        self.append_side(Event::Session(Session {
            action: SessionAction::Stopped,
            reason: reason.into(),
        }))?;
        Ok(self.pipeline.into_writer().close()?)
    }
}

/// The configuration for a first start: the file, with `--symbols` applied.
fn effective_config(args: &PaperArgs) -> Result<Config> {
    let mut config = load_config(&args.config)?;
    if !args.symbols.is_empty() {
        config.run.symbols = args.symbols.clone();
    }
    crate::replay_cmd::validated(config)
}

fn durable() -> WriterOptions {
    WriterOptions {
        durability: Durability::Always,
        ..WriterOptions::default()
    }
}

fn journal_exists(dir: &Path) -> Result<bool> {
    if !dir.exists() {
        return Ok(false);
    }
    Ok(!anx_journal::reader::list_segments(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .is_empty())
}

/// Waits for SIGINT or SIGTERM; returns which.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    let mut int = match signal(SignalKind::interrupt()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

pub fn paper(args: &PaperArgs) -> Result<ExitCode> {
    if !(args.poll_interval > 0.0 && args.poll_interval <= 86_400.0) {
        bail!("--poll-interval must be between 0 and 86400 seconds");
    }
    if !(args.request_timeout > 0.0 && args.request_timeout <= 600.0) {
        bail!("--request-timeout must be between 0 and 600 seconds");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: &PaperArgs) -> Result<ExitCode> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(args.request_timeout))
        .user_agent(concat!("anx/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")?;
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut trader = tokio::select! {
        trader = start(args, client.clone()) => trader?,
        reason = &mut signal => {
            tracing::info!("{reason} before the trader started; nothing journaled");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let market = Market::new(client, &args.market_url, trader.granularity_s)?;
    let poll = Duration::from_secs_f64(args.poll_interval);
    let reason = loop {
        trader.reconcile(false)?;
        // Fetching can be abandoned at any point: nothing is journaled until
        // `apply`, which runs without awaiting.
        let fetched = tokio::select! {
            fetched = poll_market(&market, &trader) => fetched,
            reason = &mut signal => break reason,
        };
        match fetched {
            Ok((now_ms, fetched)) => trader.apply(now_ms, fetched)?,
            Err((url, error)) => {
                for index in 0..trader.feeds.len() {
                    trader.feed_fault(index, url.clone(), error.clone())?;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            reason = &mut signal => break reason,
        }
    };
    let head = trader.stop(reason)?;
    tracing::info!("{reason}: stopped cleanly at seq {}", head.seq);
    eprintln!("anx paper: {reason}: stopped cleanly at seq {}", head.seq);
    Ok(ExitCode::SUCCESS)
}

/// One poll's fetching: the exchange time, then each symbol's closed bars.
async fn poll_market(
    market: &Market,
    trader: &Trader,
) -> std::result::Result<(UnixMs, Vec<Fetched>), (String, String)> {
    let now_ms = market.server_time().await.map_err(|e| {
        (
            format!("{}/api/v3/brokerage/time", market.base_url),
            crate::output::one_line(&e),
        )
    })?;
    let mut fetched = Vec::with_capacity(trader.feeds.len());
    for feed in &trader.feeds {
        fetched.push(
            match market
                .closed_bars(&feed.symbol, feed.next_bar_ms, now_ms)
                .await
            {
                Ok(bars) => Fetched::Bars(bars),
                Err((url, error)) => Fetched::Failed { url, error },
            },
        );
    }
    Ok((now_ms, fetched))
}

/// Opens (re-driving) or creates the journal and returns a trader ready for
/// its first poll.
async fn start(args: &PaperArgs, client: reqwest::Client) -> Result<Trader> {
    if journal_exists(&args.journal)? {
        resume(args)
    } else {
        first_start(args, client).await
    }
}

fn feeds_for(
    config: &Config,
    symbols: &[String],
    granularity_s: u32,
    start_ms: UnixMs,
) -> Result<Vec<Feed>> {
    let (source_s, _) = coinbase_granularity(granularity_s).ok_or_else(|| {
        anyhow!(
            "Coinbase has no candles that divide {}",
            config.run.granularity
        )
    })?;
    Ok(symbols
        .iter()
        .map(|symbol| Feed {
            symbol: symbol.clone(),
            folder: BarFolder::new(symbol, source_s, granularity_s, start_ms, UnixMs::MAX),
            next_bar_ms: start_ms,
            newest_close_ms: None,
            outage: false,
            stale_flagged_for: None,
        })
        .collect())
}

fn trader_for(
    pipeline: Pipeline<SimExchange>,
    config: &Config,
    run: &RunStarted,
    market_url: &str,
) -> Result<Trader> {
    Ok(Trader {
        pipeline,
        feeds: feeds_for(config, &run.symbols, run.granularity_s, run.start_ms)?,
        run_id: run.run_id.clone(),
        granularity_s: run.granularity_s,
        stale_age_ms_max: config.breakers.stale_data_max_age_s as i64 * 1000,
        findings_seen: BTreeSet::new(),
        now_ms: run.start_ms,
        source_label: market_url.trim_end_matches('/').to_string(),
    })
}

/// A restart: the journal is the truth, replayed through the pipeline.
fn resume(args: &PaperArgs) -> Result<Trader> {
    let writer = Writer::open_leaving_repair_note(&args.journal, durable())
        .with_context(|| format!("cannot open the journal {}", args.journal.display()))?;
    let mut reader = Reader::open(&args.journal)
        .with_context(|| format!("cannot read {}", args.journal.display()))?;
    let mut events = Vec::new();
    while let Some(stored) = reader.next_event()? {
        events.push(stored);
    }
    let run = events
        .iter()
        .find_map(|e| match &e.event {
            Event::RunStarted(run) => Some(run.clone()),
            _ => None,
        })
        .ok_or_else(|| {
            anyhow!(
                "{} holds no RunStarted: not a trader journal",
                args.journal.display()
            )
        })?;
    if run.run_mode != RunMode::PaperLive {
        bail!(
            "{} is a {:?} journal, not a paper trader's",
            args.journal.display(),
            run.run_mode
        );
    }
    let config = Config::from_toml(&run.config_text)
        .map_err(|e| anyhow!("the journal's configuration does not load: {e}"))?;
    let file_config = effective_config(args)?;
    if file_config.hash() != run.config_hash {
        bail!(
            "the configuration differs from the one this journal started with ({}); a journal holds one run: start a new --journal to change it",
            run.config_hash.to_hex()
        );
    }
    if !args.symbols.is_empty() && args.symbols != run.symbols {
        bail!(
            "--symbols differs from the journal's ({}); a journal holds one run",
            run.symbols.join(",")
        );
    }
    let last_was_clean_stop = matches!(
        events.last().map(|e| &e.event),
        Some(Event::Session(Session {
            action: SessionAction::Stopped,
            ..
        }))
    );
    let engine = Engine::new(config.clone(), &run.run_id, false);
    let pipeline = Pipeline::redriving(
        writer,
        engine,
        SimExchange::new(config.clone()),
        &run.run_id,
        events,
    );
    let mut trader = trader_for(pipeline, &config, &run, &args.market_url)?;
    let mut seen = Vec::new();
    trader
        .pipeline
        .redrive(&mut |stored| seen.push(stored.clone()))
        .with_context(|| format!("cannot resume from {}", args.journal.display()))?;
    for stored in &seen {
        trader.remember(stored);
    }
    if let Some(recovered) = trader.pipeline.writer().recovered().cloned() {
        tracing::warn!(
            "repaired a torn tail: {} bytes cut at {}:{}",
            recovered.bytes_dropped,
            recovered.segment,
            recovered.offset
        );
        trader.append_side(Event::Recovered(recovered))?;
    }
    let reason = if last_was_clean_stop {
        "restart after a clean stop"
    } else {
        "restart after a crash"
    };
    trader.append_side(Event::Session(Session {
        action: SessionAction::Started,
        reason: reason.into(),
    }))?;
    trader.reconcile(true)?;
    tracing::info!(
        "resumed run {} at seq {} ({reason})",
        trader.run_id,
        trader.pipeline.projection.seq()
    );
    Ok(trader)
}

/// A first start: the exchange's time fixes the run's start, one window of
/// history before it (the indicators' warm-up; candles that arrive stale are
/// decided on as stale, so history never opens a trade).
async fn first_start(args: &PaperArgs, client: reqwest::Client) -> Result<Trader> {
    let config = effective_config(args)?;
    let granularity_s = parse_granularity(&config.run.granularity)
        .ok_or_else(|| anyhow!("granularity {:?} is not valid", config.run.granularity))?;
    let market = Market::new(client, &args.market_url, granularity_s)?;
    let poll = Duration::from_secs_f64(args.poll_interval);
    let now_ms = loop {
        match market.server_time().await {
            Ok(now) => break now,
            Err(e) => {
                tracing::warn!(
                    "cannot read the exchange's time yet: {}",
                    crate::output::one_line(&e)
                );
                tokio::time::sleep(poll).await;
            }
        }
    };
    let granularity_ms = i64::from(granularity_s) * 1000;
    let start_ms = now_ms
        - now_ms.rem_euclid(granularity_ms)
        - i64::from(config.strategy.window_bars) * granularity_ms;
    // Derived from what defines the run – configuration, symbols, start – like
    // a replay's: the same trader started in the same bar is the same run, so
    // its orders and trades carry the same ids. (A live broker would add the
    // account to this, so that two journals never share client order ids.)
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"anx-paper-v1\0");
    hasher.update(config.canonical_text().as_bytes());
    for symbol in &config.run.symbols {
        hasher.update(symbol.as_bytes());
        hasher.update(b"\0");
    }
    hasher.update(&start_ms.to_le_bytes());
    let hash = hasher.finalize();
    let run_id = hash.to_hex().as_str()[..8].to_string();
    let mut journal_id = [0u8; 16];
    journal_id.copy_from_slice(&hash.as_bytes()[..16]);
    std::fs::create_dir_all(&args.journal)
        .with_context(|| format!("cannot create {}", args.journal.display()))?;
    let writer = Writer::create(
        &args.journal,
        JournalMeta {
            journal_id,
            created_ms: now_ms,
        },
        durable(),
    )
    .with_context(|| format!("cannot create the journal in {}", args.journal.display()))?;
    let run = RunStarted {
        run_id: run_id.clone(),
        run_mode: RunMode::PaperLive,
        capital_mode: config.run.capital_mode,
        market_time_basis: MarketTimeBasis::CandleTimestamp,
        data_integrity: DataIntegrity::Ok,
        created_by: format!("anx {}", env!("CARGO_PKG_VERSION")),
        git_sha: env!("ANX_GIT_SHA").to_string(),
        config_hash: config.hash(),
        config_text: config.canonical_text(),
        symbols: config.run.symbols.clone(),
        granularity_s,
        start_ms,
        end_ms: None,
        starting_capital: config.run.starting_capital,
    };
    let engine = Engine::new(config.clone(), &run_id, false);
    let pipeline = Pipeline::new(writer, engine, SimExchange::new(config.clone()), &run_id);
    let mut trader = trader_for(pipeline, &config, &run, &args.market_url)?;
    trader.now_ms = start_ms;
    trader.append_side(Event::RunStarted(run))?;
    trader.now_ms = now_ms;
    trader.append_side(Event::Session(Session {
        action: SessionAction::Started,
        reason: "first start".into(),
    }))?;
    trader.reconcile(true)?;
    tracing::info!("started run {run_id} in {}", args.journal.display());
    Ok(trader)
}
