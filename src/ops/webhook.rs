//! `--alert-webhook URL`: each finding the trader journals, and each change
//! of its health (healthy to unhealthy and back, or a problem that comes or
//! goes while unhealthy; the loop's liveness included), POSTed as JSON on
//! the ops thread.
//!
//! The body is `{"text": "...", "anx": {...}}`: `text` is what a
//! Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat,
//! Discord's `/slack` endpoint) shows; `anx` carries the same as fields for
//! a generic receiver. (Assumption: such receivers ignore a field they do
//! not know, as Slack's incoming webhooks do with unknown top-level keys.)
//!
//! Delivery: in order, one at a time; a network error, a timeout, a 408, a
//! 429 or a 5xx is retried after a doubling backoff (its `Retry-After` in
//! seconds, capped, when it sends one); any other answer ends it, and so
//! does a redirect (never followed: alerts go to the host given). A
//! queue of `queue_max` alerts absorbs a receiver that is down; past it an
//! alert is dropped and counted (`anx_alerts_dropped_total`) – the journal
//! keeps every finding whatever happens here. The URL is a secret (a Slack
//! webhook's path is its key): logs name its scheme and host only.

use super::metrics::PROCESS;
use super::Board;
use anx_journal::{Finding, UnixMs};
use anx_projections::health::{texts, ProblemKind};
use anyhow::{bail, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// `[alerts]` of the operations settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    pub queue_max: usize,
    pub attempts_max: u32,
    pub backoff_first_ms: u64,
    pub backoff_max_ms: u64,
    pub request_timeout_s: u64,
    /// How often the health is looked at for a change.
    pub health_check_interval_ms: u64,
}

impl AlertSettings {
    pub fn check(&self) -> std::result::Result<(), String> {
        let fits = (1..=100_000).contains(&self.queue_max)
            && (1..=20).contains(&self.attempts_max)
            && (1..=600_000).contains(&self.backoff_first_ms)
            && (self.backoff_first_ms..=3_600_000).contains(&self.backoff_max_ms)
            && (1..=300).contains(&self.request_timeout_s)
            && (10..=600_000).contains(&self.health_check_interval_ms);
        if fits {
            Ok(())
        } else {
            Err("[alerts]: a setting is out of its range (queue_max 1..=100000, attempts_max 1..=20, backoff_first_ms 1..=600000 <= backoff_max_ms <= 3600000, request_timeout_s 1..=300, health_check_interval_ms 10..=600000)".into())
        }
    }
}

/// Where alerts go.
pub struct Target {
    url: reqwest::Url,
    /// The URL as logs may name it: scheme, host and port.
    shown: String,
    command: &'static str,
}

impl Target {
    pub fn parse(url: &str, command: &'static str) -> Result<Target> {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            bail!("--alert-webhook: not a URL (expected http:// or https://…)");
        };
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            bail!("--alert-webhook: expected an http:// or https:// URL with a host");
        }
        let shown = format!(
            "{}://{}{}/…",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.port().map(|p| format!(":{p}")).unwrap_or_default()
        );
        Ok(Target {
            url: parsed,
            shown,
            command,
        })
    }
}

/// One alert: the text a person reads and the fields a program reads.
#[derive(Clone, Debug)]
pub struct Alert {
    text: String,
    fields: Value,
}

impl Alert {
    pub fn finding(run_id: &str, seq: u64, market_ms: UnixMs, f: &Finding) -> Alert {
        let state = if f.raised { "raised" } else { "cleared" };
        let symbol = if f.symbol.is_empty() {
            String::new()
        } else {
            format!(" ({})", f.symbol)
        };
        Alert {
            text: format!("{} {state}{symbol}: {}", f.check, f.detail),
            fields: json!({
                "type": "finding",
                "run_id": run_id,
                "seq": seq,
                "at": crate::output::market_time(market_ms),
                "check": f.check,
                "symbol": (!f.symbol.is_empty()).then_some(&f.symbol),
                "raised": f.raised,
                "value": f.value.map(crate::render::num),
                "limit": crate::render::num(f.limit),
                "detail": f.detail,
            }),
        }
    }

    fn health(healthy: bool, problems: &[String], doc: &Value) -> Alert {
        let text = if healthy {
            "healthy again".to_string()
        } else {
            format!("UNHEALTHY: {}", problems.join("; "))
        };
        Alert {
            text,
            fields: json!({
                "type": "health",
                "run_id": doc.get("run_id"),
                "healthy": healthy,
                "problems": problems,
                "head_seq": doc.get("head_seq"),
                "now": doc.get("now"),
            }),
        }
    }

    fn body(&self, command: &str) -> String {
        let run = self.fields["run_id"].as_str().unwrap_or("-");
        json!({
            "text": format!("{command} (run {run}): {}", self.text),
            "anx": self.fields,
        })
        .to_string()
    }
}

/// The loop's end of the queue: pushing never waits.
pub struct Queue(tokio::sync::mpsc::Sender<Alert>);

pub fn queue(size: usize) -> (Queue, tokio::sync::mpsc::Receiver<Alert>) {
    let (sender, receiver) = tokio::sync::mpsc::channel(size.max(1));
    (Queue(sender), receiver)
}

impl Queue {
    pub fn push(&self, alert: Alert) {
        use tokio::sync::mpsc::error::TrySendError;
        match self.0.try_send(alert) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                PROCESS.alerts_dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "alert queue full: an alert was dropped (the journal keeps the finding)"
                );
            }
            // The delivery stopped (it could not start, and said so once).
            Err(TrySendError::Closed(_)) => {
                PROCESS.alerts_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Delivers queued alerts and health changes until `stop`; then what is
/// still queued gets one attempt each.
pub async fn deliver(
    target: Target,
    settings: AlertSettings,
    mut queue: tokio::sync::mpsc::Receiver<Alert>,
    board: Arc<Board>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // No redirects: a finding goes to the host given, nowhere else.
    let client = crate::fetch::http_client_builder(Duration::from_secs(settings.request_timeout_s))
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let Ok(client) = client else {
        tracing::error!("--alert-webhook: cannot make an HTTP client; alerts are not delivered (the journal keeps the findings)");
        return;
    };
    let sender = Sender {
        client,
        target,
        settings,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(
        sender.settings.health_check_interval_ms,
    ));
    let mut last_healthy: HealthSeen = None;
    // A stop seen inside a send is seen here too.
    while !*stop.borrow_and_update() {
        tokio::select! {
            alert = queue.recv() => match alert {
                Some(alert) => sender.send(&alert, sender.settings.attempts_max, &mut stop).await,
                None => break,
            },
            _ = tick.tick() => {
                if let Some(alert) = health_change(&board, &mut last_healthy) {
                    sender.send(&alert, sender.settings.attempts_max, &mut stop).await;
                }
            }
            _ = stop.changed() => break,
        }
    }
    while let Ok(alert) = queue.try_recv() {
        sender.send(&alert, 1, &mut stop).await;
    }
}

/// The health as last alerted: healthy or not, and what its problems are
/// about (their texts' figures move while they last).
type HealthSeen = Option<(bool, Vec<(ProblemKind, String)>)>;

/// An alert when the health turned, or a problem came or went while
/// unhealthy (not before the first pass: a trader that is starting is not
/// news).
fn health_change(board: &Board, last: &mut HealthSeen) -> Option<Alert> {
    // A start that takes longer than a stalled pass may is news.
    if board.latest().is_none() && board.started.elapsed() <= board.stall_max {
        return None;
    }
    let (verdict, doc) = board.now();
    let about = verdict.problems.iter().map(|p| (p.kind, p.subject.clone()));
    let healthy = verdict.healthy;
    let now = (healthy, about.collect());
    let changed = match last {
        None => !healthy,
        Some(before) => *before != now,
    };
    *last = Some(now);
    changed.then(|| Alert::health(healthy, &texts(&verdict.problems), &doc))
}

struct Sender {
    client: reqwest::Client,
    target: Target,
    settings: AlertSettings,
}

impl Sender {
    /// Up to `attempts` tries, backing off between them (cut short by a stop).
    async fn send(
        &self,
        alert: &Alert,
        attempts: u32,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) {
        let body = alert.body(self.target.command);
        let mut backoff_ms = self.settings.backoff_first_ms;
        for attempt in 1..=attempts {
            // A stop cuts a try short: the trader waits for its alerts a
            // moment only.
            let (outcome, retry_after_ms) = tokio::select! {
                answer = self.post(&body) => answer,
                _ = stop.changed() => (Err(("stopped before an answer".to_string(), false)), None),
            };
            match outcome {
                Ok(()) => {
                    PROCESS.alerts_sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err((problem, retry)) => {
                    let last = attempt == attempts || !retry || *stop.borrow();
                    if last {
                        PROCESS.alerts_failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "alert to {} not delivered after {attempt} attempts: {problem}",
                            self.target.shown
                        );
                        return;
                    }
                    let wait_ms = retry_after_ms
                        .unwrap_or(backoff_ms)
                        .min(self.settings.backoff_max_ms);
                    tracing::debug!(
                        "alert to {}: {problem}; retrying in {wait_ms} ms",
                        self.target.shown
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
                        _ = stop.changed() => {
                            PROCESS.alerts_failed.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!("alert to {} not delivered: the trader stopped while it waited to retry", self.target.shown);
                            return;
                        }
                    }
                    backoff_ms = (backoff_ms * 2).min(self.settings.backoff_max_ms);
                }
            }
        }
    }

    /// One POST: delivered, or the problem and whether to retry; and a
    /// 429's `Retry-After` in ms.
    async fn post(&self, body: &str) -> (std::result::Result<(), (String, bool)>, Option<u64>) {
        let sent = self
            .client
            .post(self.target.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await;
        match sent {
            // No error text from reqwest: it would name the secret URL.
            Err(error) => (Err((describe(&error), true)), None),
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after_ms = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| s.saturating_mul(1000));
                match status {
                    200..=299 => (Ok(()), None),
                    408 | 429 | 500..=599 => {
                        (Err((format!("HTTP {status}"), true)), retry_after_ms)
                    }
                    _ => (Err((format!("HTTP {status} (not retried)"), false)), None),
                }
            }
        }
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "cannot connect".into()
    } else {
        "the request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn a_target_shows_its_host_only_and_refuses_what_is_not_http() {
        let target =
            Target::parse("https://hooks.slack.com/services/T0/B0/SECRET", "anx paper").unwrap();
        assert_eq!(target.shown, "https://hooks.slack.com/…");
        let local = Target::parse("http://127.0.0.1:9000/x", "anx live").unwrap();
        assert_eq!(local.shown, "http://127.0.0.1:9000/…");
        for bad in ["ftp://x/y", "not a url", "http://"] {
            let error = Target::parse(bad, "anx paper")
                .err()
                .expect(bad)
                .to_string();
            assert!(error.starts_with("--alert-webhook: "), "{error}");
            assert!(!error.contains('\n'));
        }
    }

    #[test]
    fn a_finding_alert_has_slack_text_and_the_fields() {
        let finding = Finding {
            check: "anomaly.data_stale".into(),
            symbol: "BTC-USD".into(),
            raised: true,
            value: None,
            limit: Decimal::from(21600),
            detail: "BTC-USD: the newest candle is older than 21600 s".into(),
        };
        let alert = Alert::finding("8c54f33e", 41, 1_735_869_600_000, &finding);
        let body: Value = serde_json::from_str(&alert.body("anx paper")).unwrap();
        assert_eq!(
            body,
            json!({
                "text": "anx paper (run 8c54f33e): anomaly.data_stale raised (BTC-USD): BTC-USD: the newest candle is older than 21600 s",
                "anx": {
                    "type": "finding", "run_id": "8c54f33e", "seq": 41,
                    "at": "2025-01-03T02:00:00.000Z", "check": "anomaly.data_stale",
                    "symbol": "BTC-USD", "raised": true, "value": null, "limit": 21600,
                    "detail": "BTC-USD: the newest candle is older than 21600 s",
                }
            })
        );
    }

    #[test]
    fn a_start_slower_than_a_stalled_pass_is_alerted_and_a_quick_one_is_not() {
        let board = |started_ago| Board {
            published: std::sync::Mutex::new(None),
            stall_max: Duration::from_secs(60),
            started: std::time::Instant::now()
                .checked_sub(started_ago)
                .expect("a monotonic clock that far back"),
        };
        let mut last: HealthSeen = None;
        assert!(health_change(&board(Duration::from_secs(5)), &mut last).is_none());
        let slow = board(Duration::from_secs(61));
        let alert = health_change(&slow, &mut last).expect("an alert");
        assert_eq!(alert.fields["healthy"], false);
        assert!(
            alert.text.contains("has not finished its first pass"),
            "{}",
            alert.text
        );
        // Said once.
        assert!(health_change(&slow, &mut last).is_none());
    }

    #[test]
    fn a_problem_is_known_by_what_it_is_about_not_its_figures() {
        use anx_projections::health::Problem;
        let board = Board {
            published: std::sync::Mutex::new(None),
            stall_max: Duration::from_secs(60),
            started: std::time::Instant::now(),
        };
        let publish = |problems: Vec<Problem>| {
            let healthz = json!({"problems": texts(&problems), "loop": {}});
            *board.published.lock().unwrap() = Some(Arc::new(super::super::Published {
                healthz,
                problems,
                journal_metrics: String::new(),
                exchange_ms: 0,
                closes: Vec::new(),
                at: std::time::Instant::now(),
            }));
        };
        let errors = |polls: u32| {
            let text = format!("anomaly.broker_errors: failed in each of the last {polls} polls");
            Problem::new(ProblemKind::Finding, "anomaly.broker_errors", text)
        };
        let fail_closed = |symbol: &str| {
            let text = format!("{symbol} is FAIL_CLOSED: x");
            Problem::new(ProblemKind::FailClosed, symbol, text)
        };
        let mut last: HealthSeen = None;
        publish(vec![errors(6)]);
        let alert = health_change(&board, &mut last).expect("unhealthy");
        assert!(alert.text.contains("the last 6 polls"), "{}", alert.text);
        // Its figures moved: the same problem, no alert.
        publish(vec![errors(7)]);
        assert!(health_change(&board, &mut last).is_none());
        // A symbol failed closed, then another: each is news.
        publish(vec![errors(8), fail_closed("BTC-USD")]);
        assert!(health_change(&board, &mut last).is_some());
        publish(vec![errors(8), fail_closed("ETH-USD")]);
        assert!(health_change(&board, &mut last).is_some());
        publish(vec![]);
        let alert = health_change(&board, &mut last).expect("healthy again");
        assert_eq!(alert.fields["healthy"], true);
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let good = AlertSettings {
            queue_max: 10,
            attempts_max: 3,
            backoff_first_ms: 100,
            backoff_max_ms: 1000,
            request_timeout_s: 5,
            health_check_interval_ms: 1000,
        };
        assert!(good.check().is_ok());
        let backwards = AlertSettings {
            backoff_max_ms: 50,
            ..good.clone()
        };
        assert!(backwards.check().is_err());
        let none = AlertSettings {
            attempts_max: 0,
            ..good
        };
        assert!(none.check().is_err());
    }
}
