//! The fake Coinbase market-data server of the paper trader's tests: the
//! shared real 1h candles with a clock the test controls. The clock moves
//! one hour when the trader asks the time after fetching every symbol up to
//! the current one, so candles arrive one by one, however often the trader
//! is killed and restarted. Faults (statuses, malformed JSON, hangs), a
//! stalled feed and a held clock are the test's to set.

use super::*;
use anx_journal::Event;
use anx_projections::Projection;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use super::{FEED_HOURS, FEED_START_S, HOUR_S, SYMBOLS};

pub fn config() -> PathBuf {
    repo_root().join("tests/fixtures/paper/paper-1h.toml")
}

pub type Rows = BTreeMap<i64, [String; 5]>;

/// What the fake server does with one candles request.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    Status(u16),
    Malformed,
    /// Answer only after this long (a timeout for the trader).
    Hang(Duration),
}

pub struct MarketState {
    pub data: BTreeMap<String, Rows>,
    pub now_s: i64,
    pub end_s: i64,
    /// Keep the clock running past the end of the data (a feed that stops).
    pub run_past_end: bool,
    /// Hours from which candles are withheld while the clock is before `until`.
    pub stall: Option<(i64, i64)>,
    /// The clock stops here until the test releases it (so what the test
    /// inspects cannot move on under it).
    pub hold_at: Option<i64>,
    pub fetched_to: BTreeMap<String, i64>,
    pub faults: VecDeque<Fault>,
    pub time_requests: u64,
}

pub struct FakeMarket {
    pub url: String,
    pub state: Arc<Mutex<MarketState>>,
}

impl FakeMarket {
    pub fn time_requests(&self) -> u64 {
        self.state.lock().unwrap().time_requests
    }

    pub fn now_s(&self) -> i64 {
        self.state.lock().unwrap().now_s
    }

    /// Lets the clock run on past `hold_at`.
    pub fn release_clock(&self) {
        self.state.lock().unwrap().hold_at = None;
    }
}

pub fn time_answer(state: &mut MarketState) -> String {
    state.time_requests += 1;
    let everyone_caught_up = state
        .data
        .keys()
        .all(|s| state.fetched_to.get(s).is_some_and(|t| *t >= state.now_s));
    let held = state.hold_at.is_some_and(|at| state.now_s >= at);
    if everyone_caught_up && !held && (state.now_s < state.end_s || state.run_past_end) {
        state.now_s += HOUR_S;
    }
    format!(
        r#"{{"iso":"-","epochSeconds":"{}","epochMillis":"{}"}}"#,
        state.now_s,
        state.now_s * 1000
    )
}

pub fn candles_answer(state: &mut MarketState, path: &str) -> (u16, String) {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let symbol = route
        .trim_start_matches("/api/v3/brokerage/market/products/")
        .trim_end_matches("/candles")
        .to_string();
    let params: BTreeMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let (Some(start), Some(end), Some(&"ONE_HOUR")) = (
        params.get("start").and_then(|s| s.parse::<i64>().ok()),
        params.get("end").and_then(|s| s.parse::<i64>().ok()),
        params.get("granularity"),
    ) else {
        return (400, r#"{"error":"INVALID_ARGUMENT"}"#.into());
    };
    if (end - start) / HOUR_S > 300 {
        return (
            400,
            r#"{"error":"INVALID_ARGUMENT","message":"number of candles requested should be less than 300"}"#.into(),
        );
    }
    let Some(rows) = state.data.get(&symbol) else {
        return (404, r#"{"error":"NOT_FOUND"}"#.into());
    };
    let now = state.now_s;
    let withheld_from = match state.stall {
        Some((from, until)) if now < until => from,
        _ => i64::MAX,
    };
    let mut candles = Vec::new();
    for (t, f) in rows.range(start..end.min(now + HOUR_S)) {
        if *t >= withheld_from {
            break;
        }
        if t + HOUR_S > now {
            // The bar in progress, as Coinbase serves it: not final.
            candles.push(format!(
                r#"{{"start":"{t}","low":"{o}","high":"{o}","open":"{o}","close":"{o}","volume":"0.5"}}"#,
                o = f[0]
            ));
            continue;
        }
        candles.push(format!(
            r#"{{"start":"{t}","low":"{}","high":"{}","open":"{}","close":"{}","volume":"{}"}}"#,
            f[2], f[1], f[0], f[3], f[4]
        ));
    }
    candles.reverse(); // newest first, as Coinbase answers
    let fetched = state.fetched_to.entry(symbol).or_insert(i64::MIN);
    *fetched = (*fetched).max(end.min(now));
    (200, format!(r#"{{"candles":[{}]}}"#, candles.join(",")))
}

pub fn serve(state: MarketState) -> FakeMarket {
    let state = Arc::new(Mutex::new(state));
    let shared = state.clone();
    let url = serve_http(move |path| {
        let mut state = shared.lock().unwrap();
        if path.starts_with("/api/v3/brokerage/time") {
            return (200, time_answer(&mut state), None);
        }
        match state.faults.pop_front() {
            Some(Fault::Status(code)) => (code, r#"{"error":"UNAVAILABLE"}"#.to_string(), None),
            Some(Fault::Malformed) => (200, r#"{"candles":[{"start":"17"#.to_string(), None),
            Some(Fault::Hang(delay)) => (200, r#"{"candles":[]}"#.into(), Some(delay)),
            None => {
                let (code, body) = candles_answer(&mut state, path);
                (code, body, None)
            }
        }
    });
    FakeMarket { url, state }
}

pub fn market(data: BTreeMap<String, Rows>) -> MarketState {
    MarketState {
        data,
        now_s: FEED_START_S + HOUR_S,
        end_s: FEED_START_S + FEED_HOURS * HOUR_S,
        run_past_end: false,
        stall: None,
        hold_at: None,
        fetched_to: BTreeMap::new(),
        faults: VecDeque::new(),
        time_requests: 0,
    }
}

pub fn feed() -> BTreeMap<String, Rows> {
    SYMBOLS
        .iter()
        .map(|s| {
            (
                s.to_string(),
                shared_hourly(s)
                    .range(FEED_START_S..FEED_START_S + FEED_HOURS * HOUR_S)
                    .map(|(t, f)| (*t, f.clone()))
                    .collect(),
            )
        })
        .collect()
}

/// Starts `anx paper` on `journal`; its stderr goes to `journal`'s sibling log.
pub fn spawn_paper(journal: &Path, url: &str, extra: &[&str]) -> Child {
    trader_command(journal)
        .args([
            "paper",
            "--config",
            path_str(&config()),
            "--journal",
            path_str(journal),
            "--market-url",
            url,
            "--poll-interval",
            "0.002",
            "--request-timeout",
            "0.5",
        ])
        .args(extra)
        .spawn()
        .expect("spawn anx paper")
}

/// Runs `anx paper` on `journal` to completion: for starts that must be refused.
pub fn paper_refused(journal: &Path, url: &str, extra: &[&str]) -> Run {
    let config = config();
    let mut args = vec![
        "paper",
        "--config",
        path_str(&config),
        "--journal",
        path_str(journal),
        "--market-url",
        url,
    ];
    args.extend_from_slice(extra);
    anx(&args)
}

pub fn wait_for(what: &str, journal: &Path, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "timed out waiting for {what}; trader log:\n{}",
            log_of(journal)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the trader has decided on the feed's last candle of every
/// symbol and gone on to poll again (so that step is complete).
pub fn wait_until_fed(journal: &Path, market: &FakeMarket, child: &mut Child) {
    let last_close_ms = (FEED_START_S + FEED_HOURS * HOUR_S) * 1000;
    wait_for(
        "the last candle's decisions",
        journal,
        Duration::from_secs(240),
        || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the trader exited early ({status}):\n{}", log_of(journal));
            }
            let decided: BTreeSet<String> = events(journal)
                .into_iter()
                .filter_map(|e| match e.event {
                    Event::Decision(d) if d.as_of_ms == last_close_ms => Some(d.symbol),
                    _ => None,
                })
                .collect();
            decided.len() == SYMBOLS.len()
        },
    );
    let polls = market.time_requests();
    wait_for("another poll", journal, Duration::from_secs(30), || {
        market.time_requests() > polls + 1
    });
}

/// The feed as a candle cache under `dir` (for `anx replay run`).
pub fn write_cache(dir: &Path) -> PathBuf {
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    for symbol in SYMBOLS {
        let mut text = String::from("timestamp,unix,open,high,low,close,volume\n");
        for (t, f) in &feed()[symbol] {
            text.push_str(&format!(
                "{},{t},{},{},{},{},{}\n",
                rfc3339(t * 1000),
                f[0],
                f[1],
                f[2],
                f[3],
                f[4]
            ));
        }
        std::fs::write(cache.join(format!("COINBASE_{symbol}_1h.csv")), text).unwrap();
    }
    cache
}

pub fn folded(journal: &Path) -> Projection {
    let mut projection = Projection::new();
    for stored in events(journal) {
        projection
            .apply(stored.seq, stored.market_ms, &stored.event)
            .unwrap_or_else(|e| panic!("fold: {e}"));
    }
    projection
}

/// Decisions without their seq link, and trades without ids and seq links:
/// what a run decided and traded, independent of its run id and numbering.
pub fn decisions_and_trades(journal: &Path) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let mut decisions = Vec::new();
    let mut trades = Vec::new();
    for stored in events(journal) {
        match stored.event {
            Event::Decision(d) => {
                let mut v = serde_json::to_value(&d).unwrap();
                v.as_object_mut().unwrap().remove("candle_seq");
                decisions.push(v);
            }
            Event::TradeClosed(t) => {
                let mut v = serde_json::to_value(&t).unwrap();
                let o = v.as_object_mut().unwrap();
                for key in [
                    "trade_id",
                    "entry_client_order_id",
                    "entry_order_seq",
                    "entry_fill_seq",
                    "exit_fill_seq",
                ] {
                    o.remove(key);
                }
                trades.push(v);
            }
            _ => {}
        }
    }
    (decisions, trades)
}

pub fn placed_ids(journal: &Path) -> Vec<String> {
    events(journal)
        .into_iter()
        .filter_map(|e| match e.event {
            Event::OrderPlaced(o) => Some(o.client_order_id),
            _ => None,
        })
        .collect()
}
