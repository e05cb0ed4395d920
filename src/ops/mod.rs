//! Running a trader unattended: what it publishes after each pass of its
//! loop, served by `--listen` (`GET /healthz`, `GET /metrics`), and the
//! alerts `--alert-webhook` delivers.
//!
//! ```text
//! trading loop (its own thread)          ops thread (its own tokio runtime)
//!   pass ends: Health::assess once  --->  Board (one Arc swapped under a lock)
//!   + the healthz document                  <- GET /healthz, GET /metrics (hyper)
//!   + the journal's counters as text        <- health watch, once a second
//!   finding journaled, then queued  --->  webhook delivery (retries, backoff)
//! ```
//!
//! The loop never waits for the ops thread: publishing swaps one `Arc`
//! under a lock held for that swap only, and an alert is queued with
//! `try_send` (a full queue drops and counts it – the journal has the
//! finding). Requests are served on the ops thread, so a slow or hostile
//! client, or a webhook that is down, costs the trader nothing. What is
//! served is computed once, by the loop, from the one health assessment
//! `anx status` prints (`anx_projections::health`); only the loop's own
//! liveness is judged when a request comes (a loop that stopped passing
//! cannot say so itself).

pub mod metrics;
mod server;
mod webhook;

use crate::output::market_time;
use anx_journal::{EventKind, Head, UnixMs};
use anx_projections::anomaly::AnomalyThresholds;
use anx_projections::health::{texts, Health, Problem, ProblemKind};
use anx_projections::Projection;
use anyhow::{anyhow, Context, Result};
use metrics::{TextWriter, Type, Value, PROCESS};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `config/operations.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub anomalies: AnomalyThresholds,
    pub health: HealthLimits,
    pub alerts: webhook::AlertSettings,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthLimits {
    /// A loop that has not finished a pass for this long (beyond the poll
    /// interval) is a health problem.
    pub loop_stall_max_s: u64,
}

impl HealthLimits {
    fn check(&self) -> std::result::Result<(), String> {
        if (1..=86_400).contains(&self.loop_stall_max_s) {
            Ok(())
        } else {
            Err("[health]: loop_stall_max_s must be 1..=86400".into())
        }
    }
}

/// The shipped `config/operations.toml`, built in: what a trader uses
/// without `--operations`, wherever it is started from.
const SHIPPED_SETTINGS: &str = include_str!("../../config/operations.toml");

/// Reads the operations settings (`None`: the shipped ones); a missing or
/// malformed file is one line.
pub fn read_settings(path: Option<&Path>) -> Result<Settings> {
    let (text, name) = match path {
        Some(path) => (
            std::fs::read_to_string(path).with_context(|| {
                format!("cannot read the operations settings {}", path.display())
            })?,
            path.display().to_string(),
        ),
        None => (
            SHIPPED_SETTINGS.to_string(),
            "the shipped config/operations.toml".into(),
        ),
    };
    let settings: Settings = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|span| {
            text.get(..span.start)
                .unwrap_or(&text)
                .lines()
                .count()
                .max(1)
        });
        let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
        anyhow!("{name}: {}{at}", e.message().trim())
    })?;
    let checked = (settings.anomalies.check())
        .and_then(|()| settings.health.check())
        .and_then(|()| settings.alerts.check());
    checked.map_err(|e| anyhow!("{name}: {e}"))?;
    Ok(settings)
}

/// What the loop published after its newest pass.
pub struct Published {
    /// The health document (`anx status --json`'s) with the loop's figures.
    healthz: serde_json::Value,
    /// The assessment's problems (healthy when none).
    problems: Vec<Problem>,
    /// The journal's counters and the health's gauges, as exposition text.
    journal_metrics: String,
    /// The exchange's time the health was judged at, and each symbol's
    /// newest candle close: ages are reckoned from them when scraped.
    exchange_ms: UnixMs,
    closes: Vec<(String, UnixMs)>,
    /// When the pass ended (this process's monotonic clock).
    at: Instant,
}

/// The newest publication, shared with the ops thread.
pub struct Board {
    published: Mutex<Option<Arc<Published>>>,
    /// Longest a loop may go without finishing a pass before it is a problem.
    stall_max: Duration,
    started: Instant,
}

impl Board {
    fn latest(&self) -> Option<Arc<Published>> {
        self.published.lock().ok().and_then(|p| p.clone())
    }

    /// The verdict now: the loop's problems and its liveness, judged at
    /// once (a loop that stopped passing cannot say so itself).
    fn verdict(&self) -> Verdict {
        let Some(published) = self.latest() else {
            let waited = self.started.elapsed().as_secs();
            let text =
                format!("the trader has not finished its first pass ({waited} s since it started)");
            let problem = Problem::new(ProblemKind::NotStarted, "", text);
            return Verdict {
                healthy: false,
                problems: vec![problem],
                published: None,
            };
        };
        let mut problems = published.problems.clone();
        let since = published.at.elapsed();
        if since > self.stall_max {
            let text = format!(
                "the trading loop has not finished a pass for {} s (limit {} s)",
                since.as_secs(),
                self.stall_max.as_secs()
            );
            problems.push(Problem::new(ProblemKind::LoopStalled, "", text));
        }
        Verdict {
            healthy: problems.is_empty(),
            problems,
            published: Some(published),
        }
    }

    /// The health document as served now: the loop's, with the verdict.
    fn now(&self) -> (Verdict, serde_json::Value) {
        let verdict = self.verdict();
        let texts = texts(&verdict.problems);
        let Some(published) = &verdict.published else {
            let doc = serde_json::json!({"healthy": false, "problems": texts});
            return (verdict, doc);
        };
        let mut doc = published.healthz.clone();
        doc["healthy"] = verdict.healthy.into();
        doc["problems"] = texts.into();
        let since = published.at.elapsed().as_secs_f64();
        doc["loop"]["seconds_since_last_pass"] = since.into();
        (verdict, doc)
    }

    /// The exposition: the loop's part and this process's figures.
    fn metrics_text(&self) -> String {
        let mut w = TextWriter::default();
        let verdict = self.verdict();
        w.single(
            "anx_healthy",
            Type::Gauge,
            "1 when /healthz says healthy, else 0.",
            u64::from(verdict.healthy),
        );
        PROCESS.write(&mut w);
        let Some(p) = verdict.published else {
            return w.finish();
        };
        // The exchange's time now, reckoned from the last pass's: a loop
        // that stopped passing still shows its data ageing.
        let since_ms = i64::try_from(p.at.elapsed().as_millis()).unwrap_or(i64::MAX);
        let now_ms = p.exchange_ms.saturating_add(since_ms);
        let name = "anx_candle_age_seconds";
        let help = "Seconds since each symbol's newest candle closed, by the exchange's clock.";
        w.family(name, Type::Gauge, help);
        for (symbol, close) in &p.closes {
            let age_s = now_ms.saturating_sub(*close) as f64 / 1000.0;
            w.sample(name, &[("symbol", symbol)], age_s);
        }
        if let Some(newest) = p.closes.iter().map(|(_, close)| *close).max() {
            let help = "Seconds since the newest candle of any symbol closed.";
            let age_s = now_ms.saturating_sub(newest) as f64 / 1000.0;
            w.single("anx_newest_candle_age_seconds", Type::Gauge, help, age_s);
        }
        let mut text = w.finish();
        text.push_str(&p.journal_metrics);
        text
    }
}

/// The health as judged at a request.
struct Verdict {
    healthy: bool,
    problems: Vec<Problem>,
    /// What the loop published last (none before its first pass).
    published: Option<Arc<Published>>,
}

/// What one pass of the loop took.
pub struct Pass {
    pub started_ms: UnixMs,
    pub took: Duration,
}

/// The trader's side of operations.
pub struct Ops {
    pub settings: Settings,
    board: Arc<Board>,
    alerts: Option<webhook::Queue>,
    ops_thread: Option<OpsThread>,
    passes: u64,
}

struct OpsThread {
    stop: tokio::sync::watch::Sender<bool>,
    done: std::sync::mpsc::Receiver<()>,
}

/// What `--listen`, `--alert-webhook` and `--operations` asked for.
pub struct Wanted<'a> {
    pub listen: Option<SocketAddr>,
    pub webhook: Option<&'a str>,
    /// `None`: the shipped settings.
    pub settings: Option<&'a Path>,
    pub poll_interval: Duration,
    /// The run, for the alerts' text (`anx paper`, `anx live`).
    pub command: &'static str,
}

impl Ops {
    /// Reads the settings, binds the listen address and starts the ops
    /// thread: every failure here stops the trader before it journals.
    pub fn start(wanted: &Wanted) -> Result<Ops> {
        let settings = read_settings(wanted.settings)?;
        let board = Arc::new(Board {
            published: Mutex::new(None),
            stall_max: wanted.poll_interval + Duration::from_secs(settings.health.loop_stall_max_s),
            started: Instant::now(),
        });
        let listener = match wanted.listen {
            Some(addr) => Some(
                std::net::TcpListener::bind(addr)
                    .with_context(|| format!("--listen {addr}: cannot listen"))?,
            ),
            None => None,
        };
        let target = match wanted.webhook {
            Some(url) => Some(webhook::Target::parse(url, wanted.command)?),
            None => None,
        };
        let mut ops = Ops {
            settings,
            board,
            alerts: None,
            ops_thread: None,
            passes: 0,
        };
        if listener.is_some() || target.is_some() {
            ops.spawn(listener, target)?;
        }
        Ok(ops)
    }

    fn spawn(
        &mut self,
        listener: Option<std::net::TcpListener>,
        target: Option<webhook::Target>,
    ) -> Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (done_tx, done) = std::sync::mpsc::channel();
        let (queue, receiver) = webhook::queue(self.settings.alerts.queue_max);
        if let Some(listener) = &listener {
            listener.set_nonblocking(true)?;
        }
        let board = self.board.clone();
        let alerts = self.settings.alerts.clone();
        let has_target = target.is_some();
        std::thread::Builder::new()
            .name("anx-ops".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(runtime) => runtime.block_on(async move {
                        let served =
                            listener.map(|l| server::serve(l, board.clone(), stopped.clone()));
                        let delivered =
                            target.map(|t| webhook::deliver(t, alerts, receiver, board, stopped));
                        tokio::join!(maybe(served), maybe(delivered));
                    }),
                    Err(error) => tracing::error!("the operations thread cannot start: {error}"),
                }
                let _ = done_tx.send(());
            })
            .context("cannot start the operations thread")?;
        if has_target {
            self.alerts = Some(queue);
        }
        self.ops_thread = Some(OpsThread { stop, done });
        Ok(())
    }

    /// Whether anything reads what the loop publishes (`--listen`, or the
    /// webhook's health watch).
    pub fn publishing(&self) -> bool {
        self.ops_thread.is_some()
    }

    /// Queues an alert about a journaled finding (never waits).
    pub fn alert_finding(
        &self,
        run_id: &str,
        seq: u64,
        market_ms: UnixMs,
        f: &anx_journal::Finding,
    ) {
        if let Some(queue) = &self.alerts {
            queue.push(webhook::Alert::finding(run_id, seq, market_ms, f));
        }
    }

    /// Publishes what the loop knows after a pass; `now_ms` is the
    /// exchange's time as the trader reckons it now.
    pub fn publish(&mut self, projection: &Projection, health: &Health, head: Head, pass: Pass) {
        self.passes += 1;
        PROCESS.loop_duration.record(pass.took);
        let mut healthz = crate::status::health_doc(health, projection, head, &[]);
        healthz["loop"] = serde_json::json!({
            "passes": self.passes,
            "last_started": market_time(pass.started_ms),
            "last_duration_s": pass.took.as_secs_f64(),
        });
        let published = Published {
            healthz,
            problems: health.problems.clone(),
            journal_metrics: journal_metrics(projection, health, head),
            exchange_ms: health.now_ms,
            closes: health
                .symbols
                .iter()
                .filter_map(|s| Some((s.symbol.clone(), s.last_close_ms?)))
                .collect(),
            at: Instant::now(),
        };
        if let Ok(mut slot) = self.board.published.lock() {
            *slot = Some(Arc::new(published));
        }
    }

    /// Stops the ops thread, giving queued alerts up to `grace` to go out.
    pub fn shutdown(&mut self, grace: Duration) {
        self.alerts = None;
        if let Some(thread) = self.ops_thread.take() {
            let _ = thread.stop.send(true);
            let _ = thread.done.recv_timeout(grace);
        }
    }
}

impl Drop for Ops {
    fn drop(&mut self) {
        self.shutdown(Duration::ZERO);
    }
}

async fn maybe<F: std::future::Future<Output = ()>>(future: Option<F>) {
    if let Some(future) = future {
        future.await;
    }
}

/// The journal's counters and the health's gauges: every figure here is a
/// fold of the journal (so counters survive restarts as the journal does)
/// or the one health assessment.
fn journal_metrics(projection: &Projection, health: &Health, head: Head) -> String {
    let mut w = TextWriter::default();
    let links = &projection.links;
    let state = &projection.state;
    if let Some(run) = &state.run {
        let name = "anx_run_info";
        w.family(
            name,
            Type::Gauge,
            "The run this trader journals (always 1), and the build running it.",
        );
        // As the journal's JSON spells it (`paper_live`, `live`).
        let mode = serde_json::to_value(run.run_mode)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let labels = [
            ("run_id", run.run_id.as_str()),
            ("run_mode", mode.as_str()),
            ("version", env!("CARGO_PKG_VERSION")),
            ("git_sha", env!("ANX_GIT_SHA")),
        ];
        w.sample(name, &labels, 1u64);
    }
    w.family(
        "anx_events_total",
        Type::Counter,
        "Events in the journal, by kind.",
    );
    for kind in EventKind::ALL {
        w.sample(
            "anx_events_total",
            &[("kind", kind.name())],
            links.events_of(*kind),
        );
    }
    w.family(
        "anx_candles_total",
        Type::Counter,
        "Closed candles journaled, by symbol.",
    );
    for (symbol, quality) in &state.quality {
        w.sample("anx_candles_total", &[("symbol", symbol)], quality.candles);
    }
    w.family(
        "anx_decisions_total",
        Type::Counter,
        "Engine decisions journaled, by symbol.",
    );
    for (symbol, count) in &links.decisions {
        w.sample("anx_decisions_total", &[("symbol", symbol)], *count);
    }
    let name = "anx_decisions_without_order_total";
    w.family(name, Type::Counter, "Decisions that led to no order, by symbol and reason: a risk check's code when it rejected the entry, else what the symbol was doing (no_signal, position_open, order_pending, fail_closed).");
    for (symbol, reasons) in &links.no_order {
        for (reason, count) in reasons {
            w.sample(name, &[("symbol", symbol), ("reason", reason)], *count);
        }
    }
    for (name, kind, help) in [
        (
            "anx_orders_total",
            EventKind::OrderPlaced,
            "Orders placed (each journaled before it was sent).",
        ),
        ("anx_fills_total", EventKind::Fill, "Fills journaled."),
        (
            "anx_order_rejections_total",
            EventKind::OrderRejected,
            "Orders the broker rejected.",
        ),
    ] {
        w.single(name, Type::Counter, help, links.events_of(kind));
    }
    w.single(
        "anx_trades_closed_total",
        Type::Counter,
        "Trades closed.",
        state.trades.len() as u64,
    );
    w.family(
        "anx_feed_faults_total",
        Type::Counter,
        "Market data outages journaled, by symbol.",
    );
    for (symbol, count) in &links.feed_faults {
        w.sample("anx_feed_faults_total", &[("symbol", symbol)], *count);
    }
    health_gauges(&mut w, health, head);
    w.finish()
}

/// The health's figures as gauges.
fn health_gauges(w: &mut TextWriter, health: &Health, head: Head) {
    let money = |d: rust_decimal::Decimal| Value::Text(d.normalize().to_string());
    w.single(
        "anx_equity_quote",
        Type::Gauge,
        "Equity: cash and positions marked at their last close, in the quote currency.",
        money(health.equity),
    );
    w.single(
        "anx_peak_equity_quote",
        Type::Gauge,
        "Highest equity so far, in the quote currency.",
        money(health.peak_equity),
    );
    w.single(
        "anx_drawdown_ratio",
        Type::Gauge,
        "Drawdown from the peak, as a ratio (0.1 is 10 %).",
        money((health.drawdown_pct / rust_decimal::Decimal::ONE_HUNDRED).round_dp(8)),
    );
    w.single(
        "anx_exposure_quote",
        Type::Gauge,
        "Open positions' notional at their last close, in the quote currency.",
        money(health.exposure.round_dp(8)),
    );
    w.single(
        "anx_open_positions",
        Type::Gauge,
        "Symbols with an open position.",
        health.open_positions,
    );
    let pending: usize = health.symbols.iter().map(|s| s.pending.len()).sum();
    w.single(
        "anx_pending_orders",
        Type::Gauge,
        "Orders working.",
        pending as u64,
    );
    let fail_closed = health
        .symbols
        .iter()
        .filter(|s| s.fail_closed.is_some() || s.state == anx_journal::EngineState::FailClosed)
        .count();
    w.single(
        "anx_fail_closed_symbols",
        Type::Gauge,
        "Symbols FAIL_CLOSED.",
        fail_closed as u64,
    );
    w.single(
        "anx_breakers_active",
        Type::Gauge,
        "Circuit breakers active (and halts).",
        health.breakers.len() as u64,
    );
    w.single(
        "anx_journal_head_seq",
        Type::Gauge,
        "The journal's newest seq.",
        head.seq,
    );
    let name = "anx_finding_raised";
    w.family(
        name,
        Type::Gauge,
        "1 for each finding raised now, by check and symbol.",
    );
    for f in &health.findings {
        w.sample(name, &[("check", &f.check), ("symbol", &f.symbol)], 1u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(stall_max: Duration) -> Board {
        Board {
            published: Mutex::new(None),
            stall_max,
            started: Instant::now(),
        }
    }

    fn publish(board: &Board, healthy: bool, ended_ago: Duration) {
        let problems = if healthy {
            vec![]
        } else {
            let text = "market data is stale".to_string();
            vec![Problem::new(ProblemKind::StaleData, "", text)]
        };
        let at = Instant::now()
            .checked_sub(ended_ago)
            .expect("a monotonic clock that far back");
        *board.published.lock().unwrap() = Some(Arc::new(Published {
            healthz: serde_json::json!({"healthy": healthy, "problems": texts(&problems), "loop": {}}),
            problems,
            journal_metrics: String::new(),
            exchange_ms: 0,
            closes: Vec::new(),
            at,
        }));
    }

    #[test]
    fn before_the_first_pass_the_trader_is_not_yet_healthy() {
        let (verdict, doc) = board(Duration::from_secs(60)).now();
        assert!(!verdict.healthy);
        assert_eq!(verdict.problems[0].kind, ProblemKind::NotStarted);
        let problems = texts(&verdict.problems);
        assert!(problems[0].starts_with("the trader has not finished its first pass"));
        assert_eq!(doc["healthy"], false);
    }

    #[test]
    fn a_loop_that_stopped_passing_is_unhealthy_whatever_it_said_last() {
        let board = board(Duration::from_secs(60));
        publish(&board, true, Duration::from_secs(1));
        let (verdict, doc) = board.now();
        assert!(verdict.healthy && verdict.problems.is_empty(), "{doc}");
        assert!(doc["loop"]["seconds_since_last_pass"].as_f64().unwrap() >= 1.0);
        publish(&board, true, Duration::from_secs(61));
        let (verdict, doc) = board.now();
        assert!(!verdict.healthy);
        assert_eq!(doc["healthy"], false);
        assert_eq!(doc["problems"][0], texts(&verdict.problems)[0].as_str());
        let problems = texts(&verdict.problems);
        assert!(
            problems[0]
                .starts_with("the trading loop has not finished a pass for 61 s (limit 60 s)"),
            "{problems:?}"
        );
        // The loop's own problems come first, the liveness after.
        publish(&board, false, Duration::from_secs(61));
        let (verdict, _) = board.now();
        let problems = texts(&verdict.problems);
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0], "market data is stale");
        assert!(board.metrics_text().contains("\nanx_healthy 0\n"));
    }

    #[test]
    fn the_shipped_settings_load_and_a_wrong_key_is_one_line_with_its_line() {
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/operations.toml");
        let settings = read_settings(Some(Path::new(shipped))).unwrap();
        let built_in = read_settings(None).unwrap();
        assert_eq!(
            built_in.health.loop_stall_max_s,
            settings.health.loop_stall_max_s
        );
        assert_eq!(settings.anomalies.broker_errors_max, 6);
        let dir = tempfile::tempdir().unwrap();
        let wrong = dir.path().join("ops.toml");
        let text = std::fs::read_to_string(shipped)
            .unwrap()
            .replace("loop_stall_max_s", "loop_stall_s_max");
        std::fs::write(&wrong, text).unwrap();
        let error = read_settings(Some(&wrong)).unwrap_err().to_string();
        assert!(
            error.contains("loop_stall_s_max") && error.contains("(line "),
            "{error}"
        );
        assert!(!error.contains('\n'), "{error}");
    }
}
