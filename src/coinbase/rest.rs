//! Authenticated requests to Coinbase Advanced Trade, with Coinbase's retry
//! rules, as blocking calls for the broker.
//!
//! The broker answers the pipeline synchronously (a step must not await), so
//! requests run on a thread of their own with its own small runtime; a call
//! waits for its answer. The trading loop has nothing else to do meanwhile.
//!
//! Retry policy (per request; the caller decides what a final failure means):
//! - timeouts, connection errors and 5xx: retried after a doubling backoff
//!   with jitter – the same body, so a create keeps its `client_order_id`
//!   and Coinbase returns the existing order instead of a second one
//!   (create-order reference: "If the ID provided is not unique, the order
//!   will not be created and the order corresponding with that ID will be
//!   returned instead");
//! - 429: waits for `Retry-After` (seconds; capped), with jitter, else the backoff;
//! - 401: never retried – [`CallError::Unauthorized`], diagnosed against the
//!   exchange's `Date` header (a clock off by more than a token's life);
//! - 400 and other 4xx: never retried – the request is wrong (a bug to report).

use super::auth::Credentials;
use anx_journal::UnixMs;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Attempts per request before the outcome counts as unknown.
pub const ATTEMPTS_MAX: u32 = 4;
/// First backoff; it doubles per attempt.
const BACKOFF_MS_FIRST: u64 = 200;
/// A response body larger than this is refused (a real answer is a few KB;
/// a page of 250 orders well under 1 MB).
const BODY_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Requests sent in any one second, at most, by default: half of Coinbase's
/// documented private REST limit (30 per second per user, docs "REST API
/// rate limits"), leaving room for whatever else uses the same key.
pub const REQUESTS_PER_S_DEFAULT: usize = 15;
/// Local clock against the exchange's beyond which a 401 is blamed on the clock.
const SKEW_S_SUSPECT: i64 = 30;

/// An answer: status, body, and the exchange's `Date` (ms) if it sent one.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub date_ms: Option<UnixMs>,
    /// A 429's `Retry-After`, as sent.
    pub retry_after: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Coinbase refused the token: a wrong key or a wrong clock. Fatal.
    #[error("{0}")]
    Unauthorized(String),
    /// A 4xx other than 401/429: the request itself is wrong.
    #[error("{method} {path}: HTTP {status}: {detail}")]
    Refused {
        method: String,
        path: String,
        status: u16,
        detail: String,
    },
    /// No answer after every attempt: whether the request took effect is unknown.
    #[error("{method} {path}: no answer after {attempts} attempts: {last}")]
    Unanswered {
        method: String,
        path: String,
        attempts: u32,
        last: String,
    },
}

struct Job {
    request: reqwest::Request,
    reply: mpsc::Sender<Result<Answer, String>>,
}

/// The authenticated REST client.
pub struct Rest {
    base_url: String,
    /// `host[:port]` as the URL addresses it: part of each token's `uri`.
    host: String,
    credentials: Credentials,
    client: reqwest::Client,
    jobs: mpsc::Sender<Job>,
    /// When the requests of the last second were sent, and how many a
    /// second may be (the budget).
    sent: std::collections::VecDeque<std::time::Instant>,
    requests_per_s_max: usize,
}

impl Rest {
    pub fn new(
        base_url: &str,
        credentials: Credentials,
        timeout: Duration,
        requests_per_s_max: usize,
    ) -> anyhow::Result<Rest> {
        let url = reqwest::Url::parse(base_url)?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => anyhow::bail!("{base_url} has no host"),
        };
        let client = crate::fetch::http_client(timeout)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let worker = client.clone();
        std::thread::Builder::new()
            .name("coinbase-rest".into())
            .spawn(move || serve(worker, queue))?;
        Ok(Rest {
            base_url: base_url.trim_end_matches('/').to_string(),
            host,
            credentials,
            client,
            jobs,
            sent: std::collections::VecDeque::new(),
            requests_per_s_max: requests_per_s_max.max(1),
        })
    }

    /// GET `path_and_query` (authenticated), with the retry policy.
    pub fn get(&mut self, path_and_query: &str) -> Result<Answer, CallError> {
        self.call("GET", path_and_query, None)
    }

    /// POST `body` (JSON) to `path`, with the retry policy.
    pub fn post(&mut self, path: &str, body: &str) -> Result<Answer, CallError> {
        self.call("POST", path, Some(body))
    }

    /// A call with the retry policy, timed for the metrics; a call left
    /// unanswered counts as a failure (a refusal is an answer).
    fn call(
        &mut self,
        method: &str,
        target: &str,
        body: Option<&str>,
    ) -> Result<Answer, CallError> {
        let began = std::time::Instant::now();
        let answer = self.call_retrying(method, target, body);
        let failure = match &answer {
            Err(error @ (CallError::Unanswered { .. } | CallError::Unauthorized(_))) => {
                Some(error.to_string())
            }
            _ => None,
        };
        crate::ops::metrics::PROCESS.request(
            crate::ops::metrics::Api::Trading,
            began.elapsed(),
            failure.as_deref(),
        );
        answer
    }

    fn call_retrying(
        &mut self,
        method: &str,
        target: &str,
        body: Option<&str>,
    ) -> Result<Answer, CallError> {
        let path = target.split('?').next().unwrap_or(target);
        let mut backoff_ms = BACKOFF_MS_FIRST;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS_MAX {
            let wait_ms = match self.once(method, target, path, body) {
                Ok(answer) if answer.status == 401 => {
                    return Err(CallError::Unauthorized(self.diagnose_401(&answer)))
                }
                Ok(answer) if answer.status == 429 => {
                    last = "HTTP 429 (rate limited)".into();
                    match (retry_after_ms(&answer), asks_too_long(&answer)) {
                        (Some(wait_ms), _) => wait_ms,
                        // Asked to wait longer than a step may: given up
                        // now, tried again at the next poll (not hammered).
                        (None, true) => break,
                        (None, false) => backoff_ms,
                    }
                }
                Ok(answer) if answer.status >= 500 => {
                    last = format!("HTTP {}: {}", answer.status, snippet(&answer.body));
                    backoff_ms
                }
                Ok(answer) if answer.status >= 400 => {
                    return Err(CallError::Refused {
                        method: method.into(),
                        path: path.into(),
                        status: answer.status,
                        detail: snippet(&answer.body),
                    })
                }
                Ok(answer) => return Ok(answer),
                Err(error) => {
                    last = error;
                    backoff_ms
                }
            };
            if attempt < ATTEMPTS_MAX {
                tracing::warn!("{method} {path}: {last}; retrying in {wait_ms} ms (attempt {attempt} of {ATTEMPTS_MAX})");
                std::thread::sleep(Duration::from_millis(jittered(wait_ms)));
                backoff_ms = (backoff_ms * 2).min(8_000);
            }
        }
        Err(CallError::Unanswered {
            method: method.into(),
            path: path.into(),
            attempts: ATTEMPTS_MAX,
            last,
        })
    }

    /// One attempt: a fresh token, the request, the whole answer.
    fn once(
        &mut self,
        method: &str,
        target: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<Answer, String> {
        let token = self
            .credentials
            .token(method, &self.host, path, local_now_s())?;
        let url = format!("{}{target}", self.base_url);
        let mut builder = match method {
            "POST" => self.client.post(&url),
            _ => self.client.get(&url),
        };
        builder = builder
            .bearer_auth(token)
            .header("Accept", "application/json");
        if let Some(body) = body {
            builder = builder
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let request = builder.build().map_err(crate::fetch::describe_http_error)?;
        let (reply, answer) = mpsc::channel();
        self.wait_for_budget();
        self.jobs
            .send(Job { request, reply })
            .map_err(|_| "the request thread has stopped".to_string())?;
        answer
            .recv()
            .map_err(|_| "the request thread has stopped".to_string())?
    }

    /// Waits until a request fits in the budget (`requests_per_s_max` a second).
    fn wait_for_budget(&mut self) {
        let second = Duration::from_secs(1);
        while let Some(oldest) = self.sent.front().copied() {
            if oldest.elapsed() >= second {
                self.sent.pop_front();
            } else if self.sent.len() >= self.requests_per_s_max {
                std::thread::sleep(second.saturating_sub(oldest.elapsed()));
            } else {
                break;
            }
        }
        self.sent.push_back(std::time::Instant::now());
    }

    /// Why Coinbase refused the token, as far as can be told: the clock if
    /// the exchange's `Date` is far from ours, else the key.
    fn diagnose_401(&self, answer: &Answer) -> String {
        let key = self.credentials.name();
        let local_ms = local_now_s() * 1000;
        let skew = answer
            .date_ms
            .map(|exchange_ms| (local_ms - exchange_ms) / 1000);
        match skew {
            Some(s) if s.abs() > SKEW_S_SUSPECT => format!(
                "Coinbase refused the request token (HTTP 401): this machine's clock is {} s {} the exchange's (tokens live {} s); set the clock right (NTP) and start again",
                s.abs(),
                if s > 0 { "ahead of" } else { "behind" },
                super::auth::TOKEN_LIFE_S
            ),
            _ => format!(
                "Coinbase refused the request token (HTTP 401) for the key {key}: a wrong or revoked key, or one without trade permission ({})",
                snippet(&answer.body)
            ),
        }
    }
}

/// The request thread: one request at a time, on its own runtime.
fn serve(client: reqwest::Client, queue: mpsc::Receiver<Job>) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    for job in queue {
        let answer = runtime.block_on(send(&client, job.request));
        let _ = job.reply.send(answer);
    }
}

async fn send(client: &reqwest::Client, request: reqwest::Request) -> Result<Answer, String> {
    let response = client
        .execute(request)
        .await
        .map_err(crate::fetch::describe_http_error)?;
    let status = response.status().as_u16();
    let date_ms = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.timestamp_millis());
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = response
        .bytes()
        .await
        .map_err(crate::fetch::describe_http_error)?;
    if bytes.len() > BODY_BYTES_MAX {
        return Err(format!("an answer of {} bytes is too large", bytes.len()));
    }
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        date_ms,
        retry_after,
    })
}

/// The wait a 429 asks for, capped (`None`: it asked for none, or too long –
/// then the usual backoff); the market-data fetch's rule
/// ([`crate::fetch::retry_after_ms`]).
fn retry_after_ms(answer: &Answer) -> Option<u64> {
    crate::fetch::retry_after_ms(answer.retry_after.as_deref())
}

/// Whether a 429 asked for a wait beyond the cap.
fn asks_too_long(answer: &Answer) -> bool {
    let seconds = answer
        .retry_after
        .as_deref()
        .and_then(|s| s.trim().parse::<u64>().ok());
    seconds.is_some_and(|s| s > crate::fetch::RETRY_AFTER_S_MAX)
}

/// Up to a quarter more, so clients that were refused together do not retry together.
fn jittered(wait_ms: u64) -> u64 {
    let mut byte = [0u8; 2];
    let spread = match getrandom::getrandom(&mut byte) {
        Ok(()) => u64::from(u16::from_le_bytes(byte)),
        Err(_) => 0,
    };
    wait_ms + (wait_ms / 4) * spread / u64::from(u16::MAX)
}

fn snippet(body: &str) -> String {
    body.chars()
        .take(200)
        .collect::<String>()
        .replace('\n', " ")
}

/// The local clock, for token times only (never journaled).
pub fn local_now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_honoured_up_to_its_cap() {
        let answer = |after: &str| Answer {
            status: 429,
            body: String::new(),
            date_ms: None,
            retry_after: Some(after.into()),
        };
        assert_eq!(retry_after_ms(&answer("3")), Some(3000));
        assert_eq!(retry_after_ms(&answer("31")), None);
        assert_eq!(retry_after_ms(&answer("soon")), None);
    }

    #[test]
    fn jitter_adds_at_most_a_quarter() {
        for _ in 0..100 {
            let j = jittered(1000);
            assert!((1000..=1250).contains(&j), "{j}");
        }
    }
}
