//! `anx data fetch` and `anx replay run --data-source coinbase` against a fake
//! Coinbase market-data server on 127.0.0.1 that serves the shared real candles
//! in Coinbase's response shape (newest first, at most 300 a request), with
//! injected 429s and 500s.

mod common;

use common::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Faults {
    /// Answer the first n requests with 429.
    rate_limited_first: usize,
    /// Then answer the next n with 500.
    server_errors_next: usize,
    malformed: bool,
}

struct FakeCoinbase {
    url: String,
    requests: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
}

fn granularity_s(name: &str) -> i64 {
    match name {
        "ONE_HOUR" => 3600,
        "TWO_HOUR" => 7200,
        "SIX_HOUR" => 21600,
        "ONE_DAY" => 86400,
        other => panic!("fake server: unexpected granularity {other}"),
    }
}

fn answer(path: &str, data: &BTreeMap<String, BTreeMap<i64, [String; 5]>>) -> (u16, String) {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let symbol = route
        .trim_start_matches("/api/v3/brokerage/market/products/")
        .trim_end_matches("/candles");
    let params: BTreeMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let (Some(start), Some(end), Some(gran)) = (
        params.get("start"),
        params.get("end"),
        params.get("granularity"),
    ) else {
        return (
            400,
            r#"{"error":"INVALID_ARGUMENT","message":"start, end and granularity are required"}"#
                .into(),
        );
    };
    let (start, end, step): (i64, i64, i64) = (
        start.parse().unwrap(),
        end.parse().unwrap(),
        granularity_s(gran),
    );
    if (end - start) / step > 300 {
        return (400, r#"{"error":"INVALID_ARGUMENT","message":"number of candles requested should be less than 300"}"#.into());
    }
    let Some(rows) = data.get(symbol) else {
        return (
            404,
            r#"{"error":"NOT_FOUND","message":"product not found"}"#.into(),
        );
    };
    let mut candles = Vec::new();
    let mut bucket = start - start.rem_euclid(step);
    while bucket < end {
        let hours: Vec<&[String; 5]> = (0..step / 3600)
            .filter_map(|h| rows.get(&(bucket + h * 3600)))
            .collect();
        if hours.len() as i64 == step / 3600 {
            // Exact decimal aggregation, as Coinbase's own candles are exact.
            let dec = |text: &String| text.parse::<Decimal>().unwrap();
            let high = hours.iter().map(|h| dec(&h[1])).max().unwrap().to_string();
            let low = hours.iter().map(|h| dec(&h[2])).min().unwrap().to_string();
            let (open, close) = (&hours[0][0], &hours[hours.len() - 1][3]);
            let volume = hours
                .iter()
                .map(|h| dec(&h[4]))
                .sum::<Decimal>()
                .to_string();
            candles.push(format!(r#"{{"start":"{bucket}","low":"{low}","high":"{high}","open":"{open}","close":"{close}","volume":"{volume}"}}"#));
        }
        bucket += step;
    }
    candles.reverse(); // newest first, as Coinbase answers
    (200, format!(r#"{{"candles":[{}]}}"#, candles.join(",")))
}

fn serve(faults: Faults) -> FakeCoinbase {
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let data: BTreeMap<String, BTreeMap<i64, [String; 5]>> = ["BTC-USD", "ETH-USD"]
        .iter()
        .map(|s| (s.to_string(), shared_hourly(s)))
        .collect();
    let (count, log) = (requests.clone(), seen.clone());
    let url = serve_http(move |path| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        log.lock().unwrap().push(path.to_string());
        let (status, body) = if n < faults.rate_limited_first {
            (
                429,
                "<html><head><title>Coinbase</title></head></html>".to_string(),
            )
        } else if n < faults.rate_limited_first + faults.server_errors_next {
            (
                500,
                r#"{"error":"INTERNAL","message":"try again"}"#.to_string(),
            )
        } else if faults.malformed {
            (
                200,
                r#"{"candles":[{"start":"1714521600","low":"#.to_string(),
            )
        } else {
            answer(path, &data)
        };
        (status, body, None)
    });
    FakeCoinbase {
        url,
        requests,
        seen,
    }
}

fn cached_rows(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(String::from)
        .collect()
}

#[test]
fn fetch_paginates_backs_off_and_fills_the_cache_once() {
    let server = serve(Faults {
        rate_limited_first: 1,
        server_errors_next: 1,
        ..Faults::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let args = [
        "data",
        "fetch",
        "--symbols",
        "BTC-USD",
        "--start",
        "2024-05-01",
        "--end",
        "2024-06-01",
        "--granularity",
        "1h",
        "--cache-dir",
        path_str(cache.path()),
        "--coinbase-url",
        &server.url,
    ];
    let run = anx(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("BTC-USD: fetched 744 candles"),
        "{}",
        run.stdout
    );
    // 744 hours in windows of at most 300, plus one 429 and one 500 retried.
    assert_eq!(server.requests.load(Ordering::SeqCst), 3 + 2);
    let seen = server.seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|p| p.contains("granularity=ONE_HOUR")),
        "{seen:?}"
    );
    // The cache holds exactly the shared rows of May 2024, oldest first.
    let rows = cached_rows(&cache.path().join("COINBASE_BTC-USD_1h.csv"));
    let shared: Vec<String> =
        std::fs::read_to_string(shared_candles().join("COINBASE_BTC-USD_1h.csv"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("2024-05"))
            .map(String::from)
            .collect();
    assert_eq!(rows, shared);
    // A cache hit makes no request.
    let again = anx(&args);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("cache hit"), "{}", again.stdout);
    assert_eq!(server.requests.load(Ordering::SeqCst), 5);
}

#[test]
fn a_replay_from_coinbase_equals_the_replay_from_the_same_cached_candles() {
    let server = serve(Faults::default());
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let fetched = work.path().join("from-coinbase");
    let cached = work.path().join("from-cache");
    let common = [
        "replay",
        "run",
        "--config",
        "config/replay.toml",
        "--symbols",
        "BTC-USD,ETH-USD",
        "--start",
        "2024-05-01",
        "--end",
        "2024-09-01",
        "--report-format",
        "json",
    ];
    let mut from_coinbase: Vec<&str> = common.to_vec();
    from_coinbase.extend([
        "--data-source",
        "coinbase",
        "--coinbase-url",
        &server.url,
        "--cache-dir",
        path_str(cache.path()),
        "--journal",
        path_str(&fetched),
    ]);
    let run = anx(&from_coinbase);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // 4h is not a Coinbase granularity: 2h candles were fetched and resampled.
    assert!(server
        .seen
        .lock()
        .unwrap()
        .iter()
        .all(|p| p.contains("granularity=TWO_HOUR")));
    assert!(cache.path().join("COINBASE_BTC-USD_2h.csv").is_file());
    let a: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let mut from_cache: Vec<&str> = common.to_vec();
    let shared = shared_candles();
    from_cache.extend([
        "--cache-dir",
        path_str(&shared),
        "--journal",
        path_str(&cached),
    ]);
    let run = anx(&from_cache);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let b: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        a["head_hash"], b["head_hash"],
        "the same candles must give the same journal"
    );
    assert!(a["candles"].as_u64().unwrap() > 1000);
}

#[test]
fn malformed_answers_and_unknown_products_fail_cleanly_and_write_nothing() {
    let server = serve(Faults {
        malformed: true,
        ..Faults::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let run = anx(&[
        "data",
        "fetch",
        "--symbols",
        "BTC-USD",
        "--start",
        "2024-05-01",
        "--end",
        "2024-05-02",
        "--granularity",
        "1h",
        "--cache-dir",
        path_str(cache.path()),
        "--coinbase-url",
        &server.url,
    ]);
    run.assert_one_line_error(2);
    assert!(run.stderr.contains("not JSON"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        0,
        "nothing may be written"
    );
    let server = serve(Faults::default());
    let run = anx(&[
        "data",
        "fetch",
        "--symbols",
        "DOGE-USD",
        "--start",
        "2024-05-01",
        "--end",
        "2024-05-02",
        "--granularity",
        "1h",
        "--cache-dir",
        path_str(cache.path()),
        "--coinbase-url",
        &server.url,
    ]);
    run.assert_one_line_error(2);
    assert!(run.stderr.contains("404"), "{}", run.stderr);
}

#[test]
fn a_candle_still_in_progress_is_never_cached() {
    // Like Coinbase: every hour up to now has a candle, the current one too.
    let url = serve_http(|path| {
        let query = path.split_once('?').map_or("", |(_, q)| q);
        let param = |name: &str| -> i64 {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("fake server: no {name} in {path}"))
        };
        let now_s = chrono::Utc::now().timestamp();
        let (start, end) = (param("start"), param("end").min(now_s + 1));
        let mut candles = Vec::new();
        let mut hour = start - start.rem_euclid(3600);
        while hour < end {
            candles.push(format!(r#"{{"start":"{hour}","low":"99","high":"101","open":"100","close":"100.5","volume":"3"}}"#));
            hour += 3600;
        }
        candles.reverse();
        (
            200,
            format!(r#"{{"candles":[{}]}}"#, candles.join(",")),
            None,
        )
    });
    let today = chrono::Utc::now().date_naive();
    let (start, end) = (today - chrono::Days::new(1), today + chrono::Days::new(2));
    let cache = tempfile::tempdir().unwrap();
    let run = anx(&[
        "data",
        "fetch",
        "--symbols",
        "LIVE-USD",
        "--start",
        &start.to_string(),
        "--end",
        &end.to_string(),
        "--granularity",
        "1h",
        "--cache-dir",
        path_str(cache.path()),
        "--coinbase-url",
        &url,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = cached_rows(&cache.path().join("COINBASE_LIVE-USD_1h.csv"));
    let last_open_s: i64 = rows
        .last()
        .and_then(|row| row.split(',').nth(1))
        .and_then(|unix| unix.parse().ok())
        .expect("a cached row");
    let now_s = chrono::Utc::now().timestamp();
    assert!(
        last_open_s + 3600 <= now_s,
        "the cache holds a candle that had not closed: opened {last_open_s}, now {now_s}"
    );
    // Every closed hour since the start is there.
    let start_s = start.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    assert!(
        rows.len() as i64 >= (now_s - start_s) / 3600 - 1,
        "{} rows",
        rows.len()
    );
}
