//! Filling the candle cache from Coinbase Advanced Trade's public candles
//! endpoint (`GET {base}/api/v3/brokerage/market/products/{id}/candles`).
//!
//! - At most 300 candles a request; responses come newest first; the range is
//!   walked window by window.
//! - 429 and 5xx answers, timeouts and connection errors are retried with
//!   exponential backoff (bounded); any other error, or a body that is not the
//!   expected JSON, stops the fetch with a one-line error. Nothing is written
//!   unless the whole range was fetched.
//! - Coinbase has no 4h candles: the coarsest Coinbase granularity dividing the
//!   requested one is fetched (2h for 4h), and the replay resamples.
//! - A cache hit – a file for the symbol at the requested granularity or a finer
//!   one dividing it, covering the whole range – makes no request.
//! - Files are written atomically (temporary file, then rename), merged with
//!   rows already cached, sorted and de-duplicated, in the cache layout
//!   `timestamp,unix,open,high,low,close,volume`.

use anx_journal::UnixMs;
use anx_replays::data::{cache_file_name, find_source, granularity_name, parse_decimal, HEADER};
use anyhow::{anyhow, bail, Context, Result};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

/// Coinbase's per-request candle limit.
pub const CANDLES_PER_REQUEST_MAX: i64 = 300;
/// Attempts per request before giving up.
pub const ATTEMPTS_MAX: u32 = 6;
/// First backoff; it doubles per attempt.
pub const BACKOFF_MS_FIRST: u64 = 250;
pub const REQUEST_TIMEOUT_S: u64 = 20;

/// Coinbase's granularity names, by seconds.
const COINBASE_GRANULARITIES: [(u32, &str); 8] = [
    (86_400, "ONE_DAY"),
    (21_600, "SIX_HOUR"),
    (7_200, "TWO_HOUR"),
    (3_600, "ONE_HOUR"),
    (1_800, "THIRTY_MINUTE"),
    (900, "FIFTEEN_MINUTE"),
    (300, "FIVE_MINUTE"),
    (60, "ONE_MINUTE"),
];

/// The coarsest Coinbase granularity that divides `granularity_s` (seconds, name).
pub fn coinbase_granularity(granularity_s: u32) -> Result<(u32, &'static str)> {
    COINBASE_GRANULARITIES
        .iter()
        .copied()
        .find(|(s, _)| *s <= granularity_s && granularity_s.is_multiple_of(*s))
        .ok_or_else(|| {
            anyhow!(
                "Coinbase has no candles that divide {}",
                granularity_name(granularity_s)
            )
        })
}

/// The public candles request for `[start_ms, end_ms)` of `symbol` at the
/// Coinbase granularity named `granularity`.
pub fn candles_url(
    base_url: &str,
    symbol: &str,
    start_ms: UnixMs,
    end_ms: UnixMs,
    granularity: &str,
) -> String {
    format!(
        "{}/api/v3/brokerage/market/products/{symbol}/candles?start={}&end={}&granularity={granularity}",
        base_url.trim_end_matches('/'),
        start_ms / 1000,
        end_ms / 1000
    )
}

/// Checks a base URL given on the command line (`flag` names the option):
/// it must parse, be http or https, have a host, and carry no query or
/// fragment (request paths are appended to it). A start-up check: a URL that
/// can never work is refused before anything is opened, instead of being
/// retried as if the network were down.
pub fn check_base_url(flag: &str, url: &str) -> Result<()> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        anyhow!("{flag} {url:?} is not a URL ({e}); expected e.g. https://api.coinbase.com")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!(
            "{flag} {url:?}: the scheme must be http or https, not {}",
            parsed.scheme()
        );
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        bail!("{flag} {url:?} has no host");
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        bail!("{flag} {url:?}: a base URL takes no query or fragment");
    }
    Ok(())
}

/// A reqwest error on one line, without its URL (the caller names the URL
/// once) and with its whole source chain, so the root cause shows:
/// `error sending request: client error (Connect): tcp connect error:
/// Connection refused (os error 111)`.
pub fn describe_http_error(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut parts = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// The HTTP client for Coinbase's public API (rustls, anx's user agent).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    http_client_builder(timeout)
        .build()
        .context("cannot build the HTTP client")
}

/// Every anx HTTP client's settings: the timeout and the user agent.
pub fn http_client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("anx/", env!("CARGO_PKG_VERSION")))
}

/// One cached row: open time (ms) → the CSV line.
type Rows = BTreeMap<UnixMs, String>;

fn format_row(open_s: i64, fields: &[String; 5]) -> Result<String> {
    let time = chrono::DateTime::from_timestamp(open_s, 0)
        .ok_or_else(|| anyhow!("candle time {open_s} out of range"))?;
    Ok(format!(
        "{},{open_s},{},{},{},{},{}",
        time.format("%Y-%m-%dT%H:%M:%SZ"),
        fields[0],
        fields[1],
        fields[2],
        fields[3],
        fields[4]
    ))
}

/// Rows already in a cache file (empty if there is none).
fn read_rows(path: &Path) -> Result<Rows> {
    let mut rows = Rows::new();
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(rows),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if i == 0 || line.trim().is_empty() {
            continue;
        }
        let unix: i64 = line
            .split(',')
            .nth(1)
            .and_then(|u| u.parse().ok())
            .ok_or_else(|| anyhow!("{}:{}: malformed row", path.display(), i + 1))?;
        rows.insert(unix * 1000, line);
    }
    Ok(rows)
}

/// Whether the cache already holds `[start_ms, end_ms)` for a symbol.
fn covered(
    cache_dir: &Path,
    exchange: &str,
    symbol: &str,
    granularity_s: u32,
    start_ms: UnixMs,
    end_ms: UnixMs,
) -> Result<bool> {
    let Ok(source) = find_source(cache_dir, exchange, symbol, granularity_s) else {
        return Ok(false);
    };
    if source.path.extension().is_some_and(|e| e == "gz") {
        // Compressed caches are bundled data; trust their coverage as is.
        return Ok(true);
    }
    let rows = read_rows(&source.path)?;
    let step = i64::from(source.granularity_s) * 1000;
    let (Some(first), Some(last)) = (rows.keys().next(), rows.keys().next_back()) else {
        return Ok(false);
    };
    // Data cannot exist past now: a range ending in the future is covered up to now.
    let now_ms = chrono::Utc::now().timestamp_millis();
    let needed_end = end_ms.min(now_ms - now_ms.rem_euclid(step));
    Ok(*first <= start_ms && last + step >= needed_end)
}

/// Longest `Retry-After` honoured, in seconds: a 429 asking for more gets
/// the usual backoff (and the caller tries again later).
pub const RETRY_AFTER_S_MAX: u64 = 30;

/// The wait a 429's `Retry-After` header (seconds) asks for, capped at
/// [`RETRY_AFTER_S_MAX`]; `None` when it asked for none, or too long.
pub fn retry_after_ms(header: Option<&str>) -> Option<u64> {
    let seconds: u64 = header?.trim().parse().ok()?;
    (seconds <= RETRY_AFTER_S_MAX).then_some(seconds * 1000)
}

/// GET `url`, retrying 429s, 5xx answers, timeouts and connection errors up to
/// `attempts` times with doubling backoff (a 429 waits what its `Retry-After`
/// asks, when it asks); any other answer is final.
pub async fn get_with_retries(
    client: &reqwest::Client,
    url: &str,
    attempts: u32,
) -> Result<String> {
    let began = std::time::Instant::now();
    let answer = get_retrying(client, url, attempts).await;
    let failure = answer.as_ref().err().map(crate::output::one_line);
    crate::ops::metrics::PROCESS.request(
        crate::ops::metrics::Api::MarketData,
        began.elapsed(),
        failure.as_deref(),
    );
    answer
}

async fn get_retrying(client: &reqwest::Client, url: &str, attempts: u32) -> Result<String> {
    let mut backoff_ms = BACKOFF_MS_FIRST;
    let mut last_problem = String::new();
    for attempt in 1..=attempts {
        let mut wait_ms = backoff_ms;
        match client.get(url).send().await {
            Ok(response) => {
                let status = response.status();
                // A rate limit says how long to stay away: retrying sooner
                // (the trader's market-data poll did, at 250 ms) only earns
                // more 429s and prolongs the outage.
                if status.as_u16() == 429 {
                    let asked = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok());
                    wait_ms = retry_after_ms(asked).unwrap_or(backoff_ms);
                }
                if status.is_success() {
                    return response.text().await.map_err(|e| {
                        anyhow!("{url}: cannot read the answer: {}", describe_http_error(e))
                    });
                }
                let body = response.text().await.unwrap_or_default();
                let snippet: String = body
                    .chars()
                    .take(160)
                    .collect::<String>()
                    .replace('\n', " ");
                if status.as_u16() != 429 && !status.is_server_error() {
                    bail!("{url}: HTTP {status}: {snippet}");
                }
                last_problem = format!("HTTP {status}");
            }
            Err(e) => last_problem = describe_http_error(e),
        }
        if attempt < attempts {
            tracing::warn!(
                "{url}: {last_problem}; retrying in {wait_ms} ms (attempt {attempt} of {attempts})"
            );
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            backoff_ms = (backoff_ms * 2).min(16_000);
        }
    }
    bail!("{url}: gave up after {attempts} attempts: {last_problem}")
}

/// Parses a candles answer into rows (any order).
pub fn parse_candles(body: &str, url: &str) -> Result<Vec<(i64, [String; 5])>> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| anyhow!("{url}: the answer is not JSON ({e})"))?;
    let candles = value
        .get("candles")
        .and_then(|c| c.as_array())
        .ok_or_else(|| anyhow!("{url}: the answer has no \"candles\" list"))?;
    let mut out = Vec::with_capacity(candles.len());
    for candle in candles {
        let field = |name: &str| -> Result<String> {
            match candle.get(name) {
                Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
                _ => Err(anyhow!("{url}: a candle lacks {name:?}")),
            }
        };
        let start: i64 = field("start")?
            .parse()
            .map_err(|_| anyhow!("{url}: candle start is not a number"))?;
        out.push((
            start,
            [
                field("open")?,
                field("high")?,
                field("low")?,
                field("close")?,
                field("volume")?,
            ],
        ));
    }
    Ok(out)
}

/// One symbol's candles of one granularity, from one Coinbase endpoint.
pub struct CandleSource<'a> {
    pub client: &'a reqwest::Client,
    pub base_url: &'a str,
    pub symbol: &'a str,
    /// Coinbase's granularity: seconds and name.
    pub granularity: (u32, &'static str),
    /// Attempts per request (see [`get_with_retries`]).
    pub attempts: u32,
}

/// One closed candle: its start, its values as the exchange wrote them (what
/// the cache keeps) and as numbers.
pub struct ClosedCandle {
    pub start_s: i64,
    pub text: [String; 5],
    pub ohlcv: [Decimal; 5],
}

/// A request that failed: its URL and why.
pub struct FetchFailure {
    pub url: String,
    pub error: anyhow::Error,
}

/// The closed candles opening in `[from_ms, to_ms)`, oldest first, one per
/// start. Walked in windows of at most 300 candles, at most `windows_max`
/// requests. A candle still in progress at `now_ms` (the exchange answers it
/// too) is left out, so nothing partial is ever kept; a value that is not a
/// number fails the request.
pub async fn closed_candles(
    source: &CandleSource<'_>,
    (from_ms, to_ms): (UnixMs, UnixMs),
    now_ms: UnixMs,
    windows_max: u32,
) -> std::result::Result<Vec<ClosedCandle>, FetchFailure> {
    let (step_s, name) = source.granularity;
    let step_ms = i64::from(step_s) * 1000;
    let mut candles = Vec::new();
    let mut window_start = from_ms - from_ms.rem_euclid(step_ms);
    let mut windows = 0;
    while window_start < to_ms && window_start + step_ms <= now_ms && windows < windows_max {
        windows += 1;
        let window_end = (window_start + CANDLES_PER_REQUEST_MAX * step_ms).min(to_ms);
        let url = candles_url(
            source.base_url,
            source.symbol,
            window_start,
            window_end,
            name,
        );
        let answer = match get_with_retries(source.client, &url, source.attempts).await {
            Ok(body) => parse_candles(&body, &url).inspect_err(|error| {
                // Answered, but not with candles: a failure all the same.
                crate::ops::metrics::PROCESS.unusable(
                    crate::ops::metrics::Api::MarketData,
                    &crate::output::one_line(error),
                );
            }),
            Err(error) => Err(error),
        };
        let fail = |error| FetchFailure {
            url: url.clone(),
            error,
        };
        for (start_s, text) in answer.map_err(fail)? {
            let open_ms = start_s * 1000;
            if open_ms < window_start || open_ms >= window_end || open_ms + step_ms > now_ms {
                continue;
            }
            let mut ohlcv = [Decimal::ZERO; 5];
            for (slot, value) in ohlcv.iter_mut().zip(&text) {
                *slot = parse_decimal(value).ok_or_else(|| {
                    fail(anyhow!("{url}: candle value {value:?} is not a number"))
                })?;
            }
            candles.push(ClosedCandle {
                start_s,
                text,
                ohlcv,
            });
        }
        window_start = window_end;
    }
    candles.sort_by_key(|c| c.start_s);
    candles.dedup_by_key(|c| c.start_s);
    Ok(candles)
}

/// One symbol's range to fetch.
struct FetchJob<'a> {
    base_url: &'a str,
    cache_dir: &'a Path,
    exchange: &'a str,
    symbol: &'a str,
    granularity: (u32, &'static str),
    start_ms: UnixMs,
    end_ms: UnixMs,
}

/// Fetches `[start_ms, end_ms)` of one symbol and merges it into the cache.
async fn fetch_symbol(client: &reqwest::Client, job: &FetchJob<'_>) -> Result<usize> {
    let FetchJob {
        base_url,
        cache_dir,
        exchange,
        symbol,
        granularity: (step_s, name),
        start_ms,
        end_ms,
    } = *job;
    let source = CandleSource {
        client,
        base_url,
        symbol,
        granularity: (step_s, name),
        attempts: ATTEMPTS_MAX,
    };
    // Only closed candles are cached: a range reaching past now stops at the
    // last closed one, and the next fetch completes it.
    let now_ms = chrono::Utc::now().timestamp_millis();
    let candles = closed_candles(&source, (start_ms, end_ms), now_ms, u32::MAX)
        .await
        .map_err(|failure| failure.error)?;
    let mut rows = Rows::new();
    for candle in &candles {
        rows.insert(
            candle.start_s * 1000,
            format_row(candle.start_s, &candle.text)?,
        );
    }
    let fetched = rows.len();
    let path = cache_dir.join(cache_file_name(exchange, symbol, step_s, "csv"));
    let mut merged = read_rows(&path)?;
    merged.extend(rows);
    let mut text = String::with_capacity(merged.len() * 80);
    text.push_str(HEADER);
    text.push('\n');
    for line in merged.values() {
        text.push_str(line);
        text.push('\n');
    }
    let tmp = path.with_extension("csv.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(fetched)
}

/// Makes sure the cache holds every symbol's candles for the range, fetching
/// what is missing. Returns the number of candles fetched per symbol (0 for a
/// cache hit).
pub fn fill_cache(
    base_url: &str,
    cache_dir: &Path,
    exchange: &str,
    symbols: &[String],
    granularity_s: u32,
    start_ms: UnixMs,
    end_ms: UnixMs,
) -> Result<Vec<(String, usize)>> {
    if !exchange.eq_ignore_ascii_case("COINBASE") {
        bail!("--data-source coinbase fetches Coinbase candles, but --exchange is {exchange}");
    }
    let granularity = coinbase_granularity(granularity_s)?;
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("cannot create {}", cache_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    let client = http_client(Duration::from_secs(REQUEST_TIMEOUT_S))?;
    let mut fetched = Vec::new();
    for symbol in symbols {
        if covered(cache_dir, exchange, symbol, granularity_s, start_ms, end_ms)? {
            tracing::info!("{symbol}: cache hit, no request");
            fetched.push((symbol.clone(), 0));
            continue;
        }
        let job = FetchJob {
            base_url,
            cache_dir,
            exchange,
            symbol,
            granularity,
            start_ms,
            end_ms,
        };
        let count = runtime.block_on(fetch_symbol(&client, &job))?;
        fetched.push((symbol.clone(), count));
    }
    Ok(fetched)
}
