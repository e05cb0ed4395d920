//! The trader both `anx paper` and `anx live` run: live Coinbase candles,
//! a broker (simulated, or Coinbase's), the production engine, and a journal
//! written ahead of every action. Only the broker differs between the two.
//!
//! One task, one loop – nothing races over state:
//!
//! ```text
//! start:  open the journal (torn tail repaired, corruption refused, a second
//!         trader refused by the lock) and re-drive it through the pipeline:
//!         projection, engine memory and the broker's working orders are
//!         rebuilt by doing again what was done, and a step a crash cut short
//!         is finished exactly as it would have been. Then the repair note, a
//!         `Session` marker, the broker's answers since the newest journaled
//!         fill, and one `Reconciliation` per symbol.
//! loop:   serve operator actions from the inbox
//!         poll the broker (a real exchange's fills, cancels, brackets – each
//!         answer journaled as its own step before anything reacts to it)
//!         reconcile positions with the broker (the broker is the truth)
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

use crate::fetch::{
    closed_candles, coinbase_granularity, get_with_retries, http_client, CandleSource,
};
use crate::replay_cmd::load_config;
use anx_journal::*;
use anx_projections::engine::config::Config;
use anx_projections::engine::risk::{self, is_stale};
use anx_projections::engine::Engine;
use anx_replays::data::{BarFolder, Item, SourceBar};
use anx_replays::exchange::{Broker, SimExchange};
use anx_replays::pipeline::{open_to_redrive, Pipeline, PipelineError};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Attempts per market-data request within one poll (the next poll tries again).
const ATTEMPTS_PER_POLL: u32 = 3;
/// How often the inbox is looked at between polls: an operator waits on it.
const INBOX_POLL: Duration = Duration::from_millis(250);
/// How long a stopping trader waits for its queued alerts to go out.
const ALERT_GRACE: Duration = Duration::from_secs(2);
/// A poll fetches at most this many windows per symbol (a long catch-up
/// continues on the next poll instead of blocking the loop).
const WINDOWS_PER_POLL_MAX: u32 = 20;

/// One symbol's live feed.
struct Feed {
    symbol: String,
    folder: BarFolder,
    /// Open time of the next source bar to ask for.
    next_bar_ms: UnixMs,
    /// In a feed outage (its first failure was journaled).
    outage: bool,
    /// Findings journaled about bars after the newest candle: a restart
    /// refetches the bars of an unfinished bucket and must not report them
    /// twice. Cleared at each candle, so bounded by one bucket's findings.
    bucket_findings: Vec<QualityIssue>,
}

impl Feed {
    /// Whether `issue` is new since the newest candle (and remembers it).
    fn first_report(&mut self, issue: &QualityIssue) -> bool {
        let new = !self.bucket_findings.contains(issue);
        if new {
            self.bucket_findings.push(issue.clone());
        }
        new
    }

    /// Follows the journal: a candle closes the bucket its findings were about.
    fn note(&mut self, event: &Event) {
        match event {
            Event::Candle(_) => self.bucket_findings.clear(),
            Event::DataQuality(f) => self.bucket_findings.push(f.issue.clone()),
            _ => {}
        }
    }
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
        let (source_s, source_name) = coinbase_granularity(granularity_s)?;
        Ok(Market {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            source_s,
            source_name,
        })
    }

    /// The exchange's time; on failure, the URL and the one-line error.
    async fn server_time(&self) -> std::result::Result<UnixMs, (String, String)> {
        let url = format!("{}/api/v3/brokerage/time", self.base_url);
        self.server_time_at(&url)
            .await
            .map_err(|e| (url, crate::output::one_line(&e)))
    }

    async fn server_time_at(&self, url: &str) -> Result<UnixMs> {
        let body = get_with_retries(&self.client, url, ATTEMPTS_PER_POLL).await?;
        // Answered, but not with a time: a failure all the same.
        time_of(&body, url).inspect_err(|error| {
            crate::ops::metrics::PROCESS.unusable(
                crate::ops::metrics::Api::MarketData,
                &crate::output::one_line(error),
            )
        })
    }

    /// Closed source bars of `symbol` opening in `[from_ms, now_ms)`, oldest
    /// first; on failure, the URL and the one-line error.
    async fn closed_bars(
        &self,
        symbol: &str,
        from_ms: UnixMs,
        now_ms: UnixMs,
    ) -> std::result::Result<Vec<SourceBar>, (String, String)> {
        let source = CandleSource {
            client: &self.client,
            base_url: &self.base_url,
            symbol,
            granularity: (self.source_s, self.source_name),
            attempts: ATTEMPTS_PER_POLL,
        };
        let candles = closed_candles(&source, (from_ms, now_ms), now_ms, WINDOWS_PER_POLL_MAX)
            .await
            .map_err(|f| (f.url, crate::output::one_line(&f.error)))?;
        Ok(candles
            .into_iter()
            .map(|c| SourceBar {
                open_ms: c.start_s * 1000,
                ohlcv: c.ohlcv,
            })
            .collect())
    }
}

/// The exchange's time in an answer of `GET /time`.
fn time_of(body: &str, url: &str) -> Result<UnixMs> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| anyhow!("{url}: the answer is not JSON ({e})"))?;
    let field = |name: &str| -> Option<i64> {
        match value.get(name)? {
            serde_json::Value::String(s) => s.parse().ok(),
            serde_json::Value::Number(n) => n.as_i64(),
            _ => None,
        }
    };
    field("epochMillis")
        .or_else(|| field("epochSeconds").and_then(|s| s.checked_mul(1000)))
        .ok_or_else(|| anyhow!("{url}: the answer has no epochMillis or epochSeconds"))
}

/// What a trader needs of its broker beyond the pipeline's [`Broker`].
pub trait Venue: Broker {
    /// A failure the trader must stop for (a refused API key).
    fn fatal(&self) -> Option<String> {
        None
    }
    /// What the broker has to say, for the log (a library does not print).
    fn take_notes(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Reads the broker's view afresh before a reconciliation; false when
    /// the view cannot be trusted this time (unreachable, or moving), and
    /// the reconciliation waits for the next pass.
    fn refresh_view(&mut self) -> bool {
        true
    }
}

/// The simulated exchange's view is the journal's fold: always fresh.
impl Venue for SimExchange {}

/// Where a trader runs: the command line's common part.
pub struct Place<'a> {
    pub config: &'a Path,
    pub symbols: &'a [String],
    pub journal: &'a Path,
    pub market_url: &'a str,
    pub poll_interval_s: f64,
    pub request_timeout_s: f64,
    /// The reference run of the edge-decay watch, if any, and its thresholds.
    pub reference: Option<&'a Path>,
    /// `None`: the shipped thresholds.
    pub thresholds: Option<&'a Path>,
    /// `--listen`, `--alert-webhook`, `--operations`.
    pub listen: Option<std::net::SocketAddr>,
    pub alert_webhook: Option<&'a str>,
    /// `None`: the shipped settings.
    pub operations: Option<&'a Path>,
}

pub struct Trader<B: Venue> {
    pub pipeline: Pipeline<B>,
    /// The journal's directory (its inbox is where operator actions arrive).
    journal: PathBuf,
    feeds: Vec<Feed>,
    /// The exchange's time at the last successful poll.
    now_ms: UnixMs,
    market: Market,
    /// A reconciliation of every symbol is owed: the start-up one found the
    /// broker's view untrustworthy (unreadable, or fills on their way), so
    /// the next one that can compare records every symbol.
    reconcile_all: bool,
    /// The edge-decay watch (the win rate; and `--reference`).
    edge: Option<crate::edge::EdgeWatch>,
    /// Health, metrics, anomalies and alerts (`--listen`, `--alert-webhook`).
    ops: Option<crate::ops::Ops>,
    /// When `now_ms` was last read from the exchange (this process's clock;
    /// none yet): the exchange's time now is reckoned from it for the
    /// health, never journaled.
    clock_read: Option<std::time::Instant>,
    /// Passes in a row in which a request to the exchange failed, and the
    /// failures counted when the last pass ended.
    failing_passes: u64,
    failures_seen: u64,
    /// The broker's view could not be read at the last reconciliation.
    broker_outage: bool,
}

impl<B: Venue> Trader<B> {
    fn feed_of(&mut self, symbol: &str) -> Option<&mut Feed> {
        self.feeds.iter_mut().find(|f| f.symbol == symbol)
    }

    /// After a re-drive: each feed continues from its newest journaled candle.
    fn resume_feeds(&mut self) {
        for index in 0..self.feeds.len() {
            let symbol = &self.feeds[index].symbol;
            if let Some(close_ms) = self.pipeline.projection.state.last_close_ms(symbol) {
                let feed = &mut self.feeds[index];
                feed.next_bar_ms = close_ms;
                feed.folder.resume_after(close_ms - feed.folder.source_ms());
            }
        }
    }

    /// The run this trader journals: its `RunStarted` is folded before the
    /// trader does anything (appended at a first start, re-driven at a restart).
    pub fn run(&self) -> &anx_projections::model::RunRow {
        self.pipeline
            .projection
            .state
            .run
            .as_ref()
            .expect("a trader works only once its RunStarted is folded")
    }

    /// Takes the operator actions waiting in the inbox, between steps: each
    /// is checked against the state with the fold's rule, then journaled and
    /// reacted to in one step, and answered (its seq, or why it was refused).
    fn serve_inbox(&mut self) -> Result<()> {
        for (answer_path, request) in crate::operator::take_requests(&self.journal) {
            let outcome = self.act(request);
            let answer = match &outcome {
                Ok(Ok(seq)) => crate::operator::Answer {
                    seq: Some(*seq),
                    error: None,
                },
                Ok(Err(refusal)) => crate::operator::Answer {
                    seq: None,
                    error: Some(refusal.clone()),
                },
                Err(error) => crate::operator::Answer {
                    seq: None,
                    error: Some(format!("journaling failed: {error}")),
                },
            };
            if let Err(error) = crate::operator::answer(&answer_path, &answer) {
                tracing::warn!("cannot answer {}: {error}", answer_path.display());
            }
            // A journal that failed mid-step stops the trader, as anywhere.
            if let Err(error) = outcome {
                return Err(error.into());
            }
        }
        Ok(())
    }

    /// One operator request: its seq once journaled, or why it was refused
    /// (nothing journaled); or the pipeline's failure, which stops the trader.
    fn act(
        &mut self,
        request: std::result::Result<crate::operator::Request, String>,
    ) -> std::result::Result<std::result::Result<Seq, String>, PipelineError> {
        let event = match request.and_then(|r| r.event()) {
            Ok(event) => event,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let now_ms = self.now_ms;
        if let Err(refused) = self.pipeline.projection.check_next(now_ms, &event) {
            return Ok(Err(refused.detail));
        }
        tracing::info!("operator action: {event:?}");
        self.pipeline.operator(now_ms, event).map(Ok)
    }

    /// Journals what the edge-decay watch found since the last trade closed.
    fn watch_edge(&mut self) -> Result<()> {
        let Some(edge) = &mut self.edge else {
            return Ok(());
        };
        let findings = edge.findings(&self.pipeline.projection);
        self.journal_findings(findings)
    }

    /// Journals what the anomaly watch finds now ([`anx_projections::anomaly`]).
    fn watch_anomalies(&mut self) -> Result<()> {
        let Some(ops) = &self.ops else {
            return Ok(());
        };
        // A pass in which a request to the exchange failed (after its
        // retries) continues the streak; a pass without one ends it.
        let (failures, last_error) = crate::ops::metrics::PROCESS.failures();
        self.failing_passes = if failures > self.failures_seen {
            self.failing_passes + 1
        } else {
            0
        };
        self.failures_seen = failures;
        let seen = anx_projections::anomaly::Observed {
            now_ms: self.now_ms,
            failing_polls: self.failing_passes,
            last_error,
        };
        let projection = &self.pipeline.projection;
        let judged = anx_projections::anomaly::judge(
            &ops.settings.anomalies,
            self.pipeline.engine.config(),
            projection,
            &seen,
        );
        let findings = anx_projections::anomaly::changes(projection, judged);
        self.journal_findings(findings)
    }

    /// Journals each finding (a side event), then queues its alert.
    fn journal_findings(&mut self, findings: Vec<Finding>) -> Result<()> {
        for finding in findings {
            let state = if finding.raised { "raised" } else { "cleared" };
            tracing::warn!("{} {state}: {}", finding.check, finding.detail);
            let seq = self.append_side(Event::Finding(finding.clone()))?;
            if let Some(ops) = &self.ops {
                ops.alert_finding(&self.run().run_id, seq, self.now_ms, &finding);
            }
        }
        Ok(())
    }

    /// A reading of the exchange's time taken now (its answer to this
    /// poll): the newest is kept, with when it was read.
    fn advance_clock(&mut self, read_ms: UnixMs) {
        if read_ms >= self.now_ms {
            self.now_ms = read_ms;
            self.clock_read = Some(std::time::Instant::now());
        }
    }

    /// The exchange's time now, as this trader reckons it: its newest
    /// reading and the time since (so an exchange that stopped answering
    /// still ages the data). Before this process has read the exchange's
    /// time (a restart with the exchange unreachable), the newest journaled
    /// time says nothing of now: the local clock stands in, if later.
    fn exchange_now_ms(&self) -> UnixMs {
        match self.clock_read {
            Some(read) => {
                let since_ms = i64::try_from(read.elapsed().as_millis()).unwrap_or(i64::MAX);
                self.now_ms.saturating_add(since_ms)
            }
            None => self.now_ms.max(chrono::Utc::now().timestamp_millis()),
        }
    }

    /// After a pass: the health, judged once, and the figures, for
    /// `/healthz`, `/metrics` and the alerts.
    fn publish(&mut self, pass: crate::ops::Pass) {
        let now_ms = self.exchange_now_ms();
        let Some(ops) = &mut self.ops else {
            return;
        };
        if !ops.publishing() {
            return;
        }
        let Some(head) = self.pipeline.writer().map(|w| w.head()) else {
            return;
        };
        let projection = &self.pipeline.projection;
        let health =
            anx_projections::health::Health::assess(&anx_projections::health::HealthInput {
                projection,
                config: Some(self.pipeline.engine.config()),
                now_ms,
                locked: true,
                time_text: crate::output::market_time,
            });
        ops.publish(projection, &health, head, pass);
    }

    pub fn append_side(&mut self, event: Event) -> Result<Seq> {
        Ok(self.pipeline.append_side(self.now_ms, &event)?)
    }

    /// Compares the broker's positions and open orders with the journal's
    /// (`Pipeline::reconcile`); a disagreement is logged here, journaled there.
    pub fn reconcile(&mut self, always: bool, market_ms: UnixMs) -> Result<()> {
        let always = always || self.reconcile_all;
        if !self.pipeline.broker.refresh_view() {
            tracing::warn!("the broker's view could not be read; reconciling at the next pass");
            self.reconcile_all = always;
            self.broker_outage = true;
            return Ok(());
        }
        if std::mem::take(&mut self.broker_outage) {
            crate::ops::metrics::PROCESS
                .reconnects
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.reconcile_all = false;
        let symbols: Vec<String> = self.feeds.iter().map(|f| f.symbol.clone()).collect();
        for (symbol, detail) in self.pipeline.reconcile(&symbols, always, market_ms)? {
            tracing::error!("{symbol}: {detail}; failing closed");
        }
        Ok(())
    }

    /// A finding, unless the same one is already journaled.
    fn finding(&mut self, market_ms: UnixMs, finding: DataQuality) -> Result<()> {
        let fresh = self
            .feed_of(&finding.symbol)
            .is_some_and(|feed| feed.first_report(&finding.issue));
        if fresh {
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
            granularity_s: self.run().granularity_s,
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
        self.advance_clock(now_ms);
        let mut items: Vec<((UnixMs, u8, usize), Item)> = Vec::new();
        for (index, fetched) in fetched.into_iter().enumerate() {
            match fetched {
                Fetched::Failed { url, error } => self.feed_fault(index, url, error)?,
                Fetched::Bars(bars) => {
                    let feed = &mut self.feeds[index];
                    if feed.outage {
                        crate::ops::metrics::PROCESS
                            .reconnects
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    feed.outage = false;
                    let source = format!("{}/{}", self.market.base_url, feed.symbol);
                    for bar in bars {
                        if bar.open_ms < feed.next_bar_ms {
                            continue;
                        }
                        feed.next_bar_ms = bar.open_ms + feed.folder.source_ms();
                        feed.folder.push(bar, &|| source.clone());
                    }
                    while let Some(item) = feed.folder.pop() {
                        let (time_ms, rank) = item.market_order();
                        items.push(((time_ms, rank, index), item));
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
                    // A candle that arrives stale is decided on when it arrived, so
                    // the engine's stale-data breaker sees its true age.
                    let as_of_ms = if is_stale(self.pipeline.engine.config(), time_ms, self.now_ms)
                    {
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
                    self.feeds[index].bucket_findings.clear();
                    self.pipeline.candle(candle, as_of_ms)?;
                }
            }
        }
        self.report_broker_notes();
        self.check_staleness()
    }

    /// What the pipeline kept from the journal about the broker, said once:
    /// orders not placed twice, answers it could not take (their symbols
    /// failed closed), answers it already held.
    pub fn report_broker_notes(&mut self) {
        for note in self.pipeline.broker.take_notes() {
            tracing::warn!("broker: {note}");
        }
        for refused in std::mem::take(&mut self.pipeline.duplicates_refused) {
            tracing::warn!("duplicate order prevented: {refused}");
        }
        for refused in std::mem::take(&mut self.pipeline.answers_refused) {
            tracing::error!("broker answer not journaled: {refused}");
        }
        let repeated = std::mem::take(&mut self.pipeline.answers_repeated);
        if repeated > 0 {
            tracing::debug!("{repeated} repeated broker answers dropped");
        }
    }

    /// The newest candle older than the limit: journaled once per newest candle.
    fn check_staleness(&mut self) -> Result<()> {
        for index in 0..self.feeds.len() {
            let symbol = &self.feeds[index].symbol;
            let state = &self.pipeline.projection.state;
            let Some(newest_ms) = state.last_close_ms(symbol) else {
                continue;
            };
            let config = self.pipeline.engine.config();
            let flagged = self.pipeline.projection.links.last_stale.get(symbol);
            let breaker = risk::stale_breaker(config, newest_ms, self.now_ms);
            if breaker.passed || flagged.map(|(_, ms)| *ms) == Some(newest_ms) {
                continue;
            }
            let age_ms = self.now_ms - newest_ms;
            let finding = DataQuality {
                symbol: self.feeds[index].symbol.clone(),
                granularity_s: self.run().granularity_s,
                issue: QualityIssue::Stale { newest_ms, age_ms },
                source: self.market.base_url.clone(),
                detail: format!("{}: no entries until fresh data", breaker.detail),
            };
            tracing::warn!("{}: {}", finding.symbol, finding.detail);
            self.pipeline.finding(self.now_ms, finding)?;
        }
        Ok(())
    }

    /// One poll's fetching: the exchange time, then each symbol's closed bars.
    async fn poll(&self) -> std::result::Result<(UnixMs, Vec<Fetched>), (String, String)> {
        let now_ms = self.market.server_time().await?;
        let mut fetched = Vec::with_capacity(self.feeds.len());
        for feed in &self.feeds {
            let bars = self
                .market
                .closed_bars(&feed.symbol, feed.next_bar_ms, now_ms)
                .await;
            fetched.push(match bars {
                Ok(bars) => Fetched::Bars(bars),
                Err((url, error)) => Fetched::Failed { url, error },
            });
        }
        Ok((now_ms, fetched))
    }

    /// A clean stop: checkpoint, stop marker, fsync; then the alerts still
    /// queued get a moment to go out.
    fn stop(mut self, reason: &str) -> Result<Head> {
        // A trade closed since the last pass is judged before the stop.
        self.watch_edge()?;
        let checkpoint = self.pipeline.projection.checkpoint();
        self.append_side(Event::Checkpoint(checkpoint))?;
        self.append_side(Event::Session(Session {
            action: SessionAction::Stopped,
            reason: reason.into(),
        }))?;
        let head = self.pipeline.into_writer()?.close()?;
        if let Some(mut ops) = self.ops.take() {
            ops.shutdown(ALERT_GRACE);
        }
        Ok(head)
    }
}

/// What makes a trader paper or live: its broker, its run mode and what it
/// checks and journals at a start.
pub trait Kind {
    type Broker: Venue;
    const RUN_MODE: RunMode;
    /// `anx paper`, `anx live`: how its messages start.
    const COMMAND: &'static str;
    /// Bytes that make this kind's run ids its own (and a live run's the
    /// account's: two accounts never share client order ids).
    fn identity(&self) -> Vec<u8>;
    /// What `created_by` ends with (a drill, a preview).
    fn created_by_suffix(&self) -> &'static str;
    /// The configuration of a first start: the file with `--symbols` (and,
    /// live, the capital the account allows).
    fn first_config(&mut self, place: &Place) -> Result<Config>;
    /// The configuration a journal's run must have been started with.
    fn resume_config(&mut self, place: &Place, run: &RunStarted) -> Result<Config>;
    /// The broker of a first start at `start_ms`.
    fn start_broker(&mut self, config: &Config, run: &RunStarted) -> Result<Self::Broker>;
    /// The broker of a restart, given the journal it will re-drive: it must
    /// know what the journal holds before the re-drive, which asks it for
    /// real once the journal runs out (finishing a step a crash cut short).
    fn resume_broker(
        &mut self,
        config: &Config,
        run: &RunStarted,
        events: &[StoredEvent],
    ) -> Result<Self::Broker>;
}

/// Runs a trader of kind `K` until SIGINT/SIGTERM.
pub fn trade<K: Kind>(kind: K, place: &Place) -> Result<ExitCode> {
    if !(place.poll_interval_s > 0.0 && place.poll_interval_s <= 86_400.0) {
        bail!("--poll-interval must be between 0 and 86400 seconds");
    }
    if !(place.request_timeout_s > 0.0 && place.request_timeout_s <= 600.0) {
        bail!("--request-timeout must be between 0 and 600 seconds");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    runtime.block_on(run(kind, place))
}

async fn run<K: Kind>(mut kind: K, place: &Place<'_>) -> Result<ExitCode> {
    let client = http_client(Duration::from_secs_f64(place.request_timeout_s))?;
    // A reference or settings that cannot be read, or a listen address that
    // is taken, stop the trader before it journals.
    let edge = crate::edge::EdgeWatch::open(place.reference, place.thresholds)?;
    let ops = crate::ops::Ops::start(&crate::ops::Wanted {
        listen: place.listen,
        webhook: place.alert_webhook,
        settings: place.operations,
        poll_interval: Duration::from_secs_f64(place.poll_interval_s),
        command: K::COMMAND,
    })?;
    let mut shutdown = Shutdown::install();
    let signal = shutdown.wait();
    tokio::pin!(signal);
    let mut trader = tokio::select! {
        trader = start(&mut kind, place, client) => trader?,
        reason = &mut signal => {
            tracing::info!("{reason} before the trader started; nothing journaled");
            return Ok(ExitCode::SUCCESS);
        }
    };
    trader.edge = Some(edge);
    trader.ops = Some(ops);
    // Failures while starting (waiting for the exchange's time) are not a
    // pass of the loop: the streak counts from the first pass.
    trader.failures_seen = crate::ops::metrics::PROCESS.failures().0;
    let poll = Duration::from_secs_f64(place.poll_interval_s);
    let reason = 'trading: loop {
        let pass_began = std::time::Instant::now();
        let pass_began_ms = trader.exchange_now_ms();
        if let Some(fatal) = trader.pipeline.broker.fatal() {
            trader.stop("the broker refused to go on")?;
            bail!("{fatal}");
        }
        trader.serve_inbox()?;
        // Fetching can be abandoned at any point: nothing is journaled until
        // `apply`, which runs without awaiting.
        let fetched = tokio::select! {
            fetched = trader.poll() => fetched,
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
        // Candles first: what the broker did within a bar that just closed
        // is answered in that candle's step (as the simulated exchange
        // answers), before its decision. What it did since, on its own – a
        // take-profit between candles – is polled here, each answer a step.
        let now_ms = trader.now_ms;
        trader.pipeline.poll_broker(now_ms)?;
        trader.report_broker_notes();
        // The broker's clock, read as it answered, is the newest exchange time.
        // (Only a later one is a reading: a broker that could not read its
        // clock repeats its last.)
        let broker_ms = trader.pipeline.broker.clock_ms().unwrap_or(0);
        if broker_ms > trader.now_ms {
            trader.advance_clock(broker_ms);
        }
        let now_ms = trader.now_ms;
        trader.reconcile(false, now_ms)?;
        trader.watch_edge()?;
        trader.watch_anomalies()?;
        trader.publish(crate::ops::Pass {
            started_ms: pass_began_ms,
            took: pass_began.elapsed(),
        });
        // Between polls the inbox is served often: an operator waits for it.
        let wake = tokio::time::Instant::now() + poll;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => break,
                _ = tokio::time::sleep(INBOX_POLL) => trader.serve_inbox()?,
                reason = &mut signal => break 'trading reason,
            }
        }
    };
    let head = trader.stop(reason)?;
    tracing::info!("{reason}: stopped cleanly at seq {}", head.seq);
    eprintln!(
        "{}: {reason}: stopped cleanly at seq {}",
        K::COMMAND,
        head.seq
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens (re-driving) or creates the journal and returns a trader ready for
/// its first poll.
async fn start<K: Kind>(
    kind: &mut K,
    place: &Place<'_>,
    client: reqwest::Client,
) -> Result<Trader<K::Broker>> {
    if journal_exists(place.journal)? {
        resume(kind, place, client)
    } else {
        first_start(kind, place, client).await
    }
}

/// The file's configuration with `--symbols` applied, validated.
pub fn file_config(place: &Place) -> Result<Config> {
    let mut config = load_config(place.config)?;
    if !place.symbols.is_empty() {
        config.run.symbols = place.symbols.to_vec();
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

/// SIGTERM and SIGINT handlers, installed when this is called (not when the
/// wait is first polled): a signal that arrives while the trader starts is
/// caught, never the default action that kills the process mid-start.
struct Shutdown {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Shutdown {
    fn install() -> Shutdown {
        use tokio::signal::unix::{signal, SignalKind};
        Shutdown {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    /// Waits for SIGINT or SIGTERM; returns which.
    async fn wait(&mut self) -> &'static str {
        async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = next(&mut self.term) => "SIGTERM",
            _ = next(&mut self.int) => "SIGINT",
        }
    }
}

fn feeds_for(symbols: &[String], source_s: u32, granularity_s: u32, start_ms: UnixMs) -> Vec<Feed> {
    symbols
        .iter()
        .map(|symbol| Feed {
            symbol: symbol.clone(),
            folder: BarFolder::new(symbol, source_s, granularity_s, start_ms, UnixMs::MAX),
            next_bar_ms: start_ms,
            outage: false,
            bucket_findings: Vec::new(),
        })
        .collect()
}

fn trader_for<B: Venue>(
    pipeline: Pipeline<B>,
    run: &RunStarted,
    market: Market,
    journal: &Path,
) -> Trader<B> {
    Trader {
        pipeline,
        journal: journal.to_path_buf(),
        feeds: feeds_for(
            &run.symbols,
            market.source_s,
            run.granularity_s,
            run.start_ms,
        ),
        now_ms: run.start_ms,
        market,
        reconcile_all: false,
        edge: None,
        ops: None,
        clock_read: None,
        failing_passes: 0,
        failures_seen: 0,
        broker_outage: false,
    }
}

/// The journal's run, checked to be this kind's and to agree with the
/// command line.
fn journaled_run<K: Kind>(place: &Place, events: &[StoredEvent]) -> Result<RunStarted> {
    let run = events
        .iter()
        .find_map(|e| match &e.event {
            Event::RunStarted(run) => Some(run.clone()),
            _ => None,
        })
        .ok_or_else(|| {
            anyhow!(
                "{} holds no RunStarted: not a trader journal",
                place.journal.display()
            )
        })?;
    if run.run_mode != K::RUN_MODE {
        bail!(
            "{} is a {:?} journal, not one of {}",
            place.journal.display(),
            run.run_mode,
            K::COMMAND
        );
    }
    if !place.symbols.is_empty() && place.symbols != run.symbols.as_slice() {
        bail!(
            "--symbols differs from the journal's ({}); a journal holds one run",
            run.symbols.join(",")
        );
    }
    Ok(run)
}

/// A restart: the journal is the truth, replayed through the pipeline.
fn resume<K: Kind>(
    kind: &mut K,
    place: &Place,
    client: reqwest::Client,
) -> Result<Trader<K::Broker>> {
    let (writer, events) = open_to_redrive(place.journal, Durability::Always)
        .with_context(|| format!("cannot open the journal {}", place.journal.display()))?;
    if !events.iter().any(|e| e.event.kind().role().in_run()) {
        return finish_first_start(kind, place, client, writer, events);
    }
    let run = journaled_run::<K>(place, &events)?;
    let config = crate::replay_cmd::run_config(&run)?;
    // The file with the journal's symbols (which a first start may have taken
    // from --symbols) must be the journaled configuration.
    if kind.resume_config(place, &run)?.hash() != run.config_hash {
        bail!(
            "the configuration differs from the one this journal started with ({}); a journal holds one run: start a new --journal to change it",
            run.config_hash.to_hex()
        );
    }
    // Operator actions appended while no trader ran come after the stop marker.
    let last_was_clean_stop = crate::operator::ends_in_clean_stop(&events);
    let engine = Engine::new(config.clone(), &run.run_id, false);
    let broker = kind.resume_broker(&config, &run, &events)?;
    let pipeline = Pipeline::redriving(writer, engine, broker, &run.run_id, events);
    let market = Market::new(client, place.market_url, run.granularity_s)?;
    let mut trader = trader_for(pipeline, &run, market, place.journal);
    redrive(&mut trader)
        .with_context(|| format!("cannot resume from {}", place.journal.display()))?;
    if let Some(recovered) = trader
        .pipeline
        .writer()
        .and_then(|w| w.recovered())
        .cloned()
    {
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
    // A restart is not market news: the start-up reconciliation carries the
    // run's newest market time, not the exchange's clock, so a restart with
    // no new data moves no figure that depends on market time (the span the
    // report's exposure is measured over).
    let run_now_ms = trader
        .pipeline
        .projection
        .state
        .last_market_ms
        .unwrap_or(trader.now_ms);
    // What the broker answered while we were down (or we lost in a crash)
    // is journaled first, then positions are compared.
    trader.pipeline.resync_broker(run_now_ms)?;
    trader.report_broker_notes();
    trader.reconcile(true, run_now_ms)?;
    tracing::info!(
        "resumed run {} at seq {} ({reason})",
        trader.run().run_id,
        trader.pipeline.projection.seq()
    );
    Ok(trader)
}

/// Re-drives the journal, rebuilding each feed's memory on the way.
fn redrive<B: Venue>(trader: &mut Trader<B>) -> Result<(), PipelineError> {
    let mut feeds = std::mem::take(&mut trader.feeds);
    let mut journal_now_ms = trader.now_ms;
    trader.pipeline.redrive(&mut |stored| {
        journal_now_ms = journal_now_ms.max(stored.market_ms);
        let symbol = match &stored.event {
            Event::Candle(c) => &c.symbol,
            Event::DataQuality(f) => &f.symbol,
            _ => return,
        };
        if let Some(feed) = feeds.iter_mut().find(|f| &f.symbol == symbol) {
            feed.note(&stored.event);
        }
    })?;
    trader.feeds = feeds;
    trader.now_ms = journal_now_ms;
    trader.resume_feeds();
    Ok(())
}

/// A first start: the exchange's time fixes the run's start, one window of
/// history before it (the indicators' warm-up; candles that arrive stale are
/// decided on as stale, so history never opens a trade).
async fn first_start<K: Kind>(
    kind: &mut K,
    place: &Place<'_>,
    client: reqwest::Client,
) -> Result<Trader<K::Broker>> {
    let config = kind.first_config(place)?;
    let market = Market::new(client, place.market_url, config.granularity_s())?;
    let now_ms = exchange_time(&market, place).await;
    let (run, journal_id) = first_run(kind, &config, now_ms);
    std::fs::create_dir_all(place.journal)
        .with_context(|| format!("cannot create {}", place.journal.display()))?;
    // The broker is made before the journal: one that cannot start leaves nothing behind.
    let broker = kind.start_broker(&config, &run)?;
    let writer = Writer::create(
        place.journal,
        JournalMeta {
            journal_id,
            created_ms: now_ms,
        },
        durable(),
    )
    .with_context(|| format!("cannot create the journal in {}", place.journal.display()))?;
    let engine = Engine::new(config.clone(), &run.run_id, false);
    let pipeline = Pipeline::new(writer, engine, broker, &run.run_id);
    begin_run(pipeline, &run, market, place, now_ms, "first start")
}

/// The run a first start at the exchange time `now_ms` journals, and the
/// journal id that goes with it. Derived from what defines the run –
/// configuration, symbols, start, and the kind's identity – like a replay's:
/// the same trader started in the same bar is the same run, so its orders and
/// trades carry the same ids (and a first start a crash cut short is finished
/// as the same run: [`finish_first_start`]).
fn first_run<K: Kind>(kind: &K, config: &Config, now_ms: UnixMs) -> (RunStarted, [u8; 16]) {
    // Validated by `first_config`.
    let granularity_s = config.granularity_s();
    let granularity_ms = i64::from(granularity_s) * 1000;
    let start_ms = now_ms
        - now_ms.rem_euclid(granularity_ms)
        - i64::from(config.strategy.window_bars) * granularity_ms;
    let (run_id, journal_id) = anx_replays::runner::run_identity(
        &kind.identity(),
        config,
        &config.run.symbols,
        &[&start_ms.to_le_bytes()],
    );
    let run = RunStarted {
        run_id,
        run_mode: K::RUN_MODE,
        capital_mode: config.run.capital_mode,
        market_time_basis: MarketTimeBasis::CandleTimestamp,
        data_integrity: DataIntegrity::Ok,
        created_by: format!(
            "anx {}{}",
            env!("CARGO_PKG_VERSION"),
            kind.created_by_suffix()
        ),
        git_sha: env!("ANX_GIT_SHA").to_string(),
        config_hash: config.hash(),
        config_text: config.canonical_text(),
        symbols: config.run.symbols.clone(),
        granularity_s,
        start_ms,
        end_ms: None,
        starting_capital: config.run.starting_capital,
    };
    (run, journal_id)
}

/// Journals the run's start (`RunStarted`, the session marker) through a
/// pipeline that holds nothing of a run yet, and reconciles.
fn begin_run<B: Venue>(
    mut pipeline: Pipeline<B>,
    run: &RunStarted,
    market: Market,
    place: &Place,
    now_ms: UnixMs,
    reason: &str,
) -> Result<Trader<B>> {
    pipeline.append_side(run.start_ms, &Event::RunStarted(run.clone()))?;
    let mut trader = trader_for(pipeline, run, market, place.journal);
    trader.now_ms = now_ms;
    trader.append_side(Event::Session(Session {
        action: SessionAction::Started,
        reason: reason.into(),
    }))?;
    trader.reconcile(true, now_ms)?;
    tracing::info!("started run {} in {}", run.run_id, place.journal.display());
    Ok(trader)
}

/// A journal that holds no event of a run: a first start a crash cut short
/// between creating the journal and making its `RunStarted` durable. It is
/// finished as it began: the run of the exchange time the journal was created
/// at (its header's), which must be the journal's own (the same
/// configuration); the torn tail, if any, is cut and its repair journaled
/// first.
fn finish_first_start<K: Kind>(
    kind: &mut K,
    place: &Place,
    client: reqwest::Client,
    writer: Writer,
    events: Vec<StoredEvent>,
) -> Result<Trader<K::Broker>> {
    let meta = writer.meta();
    let config = kind.first_config(place)?;
    let (run, journal_id) = first_run(kind, &config, meta.created_ms);
    if journal_id != meta.journal_id {
        bail!(
            "{} holds no run yet: a first start was cut short, with another configuration or \
             symbols than this one; start it as it was started, or use a new --journal",
            place.journal.display()
        );
    }
    tracing::warn!(
        "{}: finishing a first start a crash cut short",
        place.journal.display()
    );
    let recovered = writer.recovered().cloned();
    let broker = kind.start_broker(&config, &run)?;
    let engine = Engine::new(config.clone(), &run.run_id, false);
    let mut pipeline = Pipeline::redriving(writer, engine, broker, &run.run_id, events);
    pipeline.redrive(&mut |_| {})?;
    if let Some(recovered) = recovered {
        pipeline.append_side(meta.created_ms, &Event::Recovered(recovered))?;
    }
    let market = Market::new(client, place.market_url, run.granularity_s)?;
    let reason = "first start, finished after a crash cut it short";
    begin_run(pipeline, &run, market, place, meta.created_ms, reason)
}

/// The exchange's time, waited for (a first start cannot begin without it).
async fn exchange_time(market: &Market, place: &Place<'_>) -> UnixMs {
    let poll = Duration::from_secs_f64(place.poll_interval_s);
    loop {
        match market.server_time().await {
            Ok(now) => return now,
            Err((_, error)) => {
                tracing::warn!("cannot read the exchange's time yet: {error}");
                tokio::time::sleep(poll).await;
            }
        }
    }
}
