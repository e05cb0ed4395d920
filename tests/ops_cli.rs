//! A trader run unattended, end to end: the real `anx paper` against the
//! fake market (`common::market`) with `--listen` and `--alert-webhook`.
//!
//! - `/healthz` turns 503 when the feed stalls and 200 when it recovers, and
//!   agrees with `anx status` (same moment, same journal) at each point;
//! - `/metrics` parses with Prometheus' own parser, and its counters equal
//!   the journal's counts;
//! - the webhook receives each finding and health change once, and never
//!   the URL's secret in a log;
//! - each anomaly fires once when its condition holds and not otherwise;
//! - a webhook that hangs and hostile clients on the listen port cost the
//!   trader nothing: it decides and trades exactly as a trader without them.

mod common;

use anx_journal::{DecisionOutcome, Event, Finding, StoredEvent};
use common::market::*;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The shipped anomaly thresholds.
const SHIPPED_ANOMALIES: &str = "signals_without_entry_max = 100
trade_rate_window_h = 72
trade_rate_max_pct_of_cap = \"50\"
broker_errors_max = 6";

/// Thresholds low enough for the 8-day feed to cross each.
/// (The feed's longest streak of counted rejections is 2: pacing and
/// cooldowns between entries.)
const LOW_ANOMALIES: &str = "signals_without_entry_max = 2
trade_rate_window_h = 24
trade_rate_max_pct_of_cap = \"10\"
broker_errors_max = 3";

/// Operations settings with `anomalies`, and alerts retried fast, each try
/// given `request_timeout_s`.
fn operations_file(dir: &Path, anomalies: &str, request_timeout_s: u64) -> PathBuf {
    let path = dir.join("operations.toml");
    let text = format!(
        "[anomalies]\n{anomalies}\n\n[health]\nloop_stall_max_s = 600\n\n[alerts]\n\
         queue_max = 100\nattempts_max = 3\nbackoff_first_ms = 20\nbackoff_max_ms = 100\n\
         request_timeout_s = {request_timeout_s}\nhealth_check_interval_ms = 20\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn healthz(addr: &str) -> Option<(u16, Value)> {
    let (status, body) = http_get(addr, "/healthz")?;
    Some((status, serde_json::from_str(&body).ok()?))
}

/// Waits until `/healthz` answers `status` with a document `done` accepts.
fn wait_healthz(
    addr: &str,
    journal: &Path,
    status: u16,
    mut done: impl FnMut(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        if let Some((code, doc)) = healthz(addr) {
            if code == status && done(&doc) {
                return doc;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "timed out waiting for /healthz {status}; last: {:?}\ntrader log:\n{}",
            healthz(addr),
            log_of(journal)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `anx status --json` at the moment `/healthz` judged: the same verdict,
/// problems, breakers, findings and head.
fn assert_agrees_with_status(journal: &Path, doc: &Value) {
    let now = doc["now"].as_str().unwrap();
    let status = anx(&["status", path_str(journal), "--json", "--now", now]);
    let st: Value = serde_json::from_str(&status.stdout).unwrap();
    let healthy = doc["healthy"].as_bool().unwrap();
    assert_eq!(
        status.code,
        if healthy { 0 } else { 1 },
        "{}",
        status.stdout
    );
    for key in [
        "healthy",
        "problems",
        "breakers_active",
        "findings",
        "head_seq",
        "head_hash",
        "symbols",
        "equity",
        "last_candle_close",
        "last_candle_age_s",
        "trader_running",
        "journal_kind",
    ] {
        assert_eq!(
            st[key], doc[key],
            "{key}: status {st} against healthz {doc}"
        );
    }
}

/// The close of the feed's candle ending `hours` after its start, as the
/// health document writes it.
/// `anx paper` listening on `addr`, alerting `webhook`, with `operations`.
fn spawn_watched(
    journal: &Path,
    fake: &FakeMarket,
    addr: &str,
    webhook: &str,
    operations: &Path,
    extra: &[&str],
) -> std::process::Child {
    let mut args = vec!["--listen", addr, "--alert-webhook", webhook];
    args.extend(["--operations", path_str(operations)]);
    args.extend_from_slice(extra);
    spawn_paper(journal, &fake.url, &args)
}

fn close_text(hours: i64) -> String {
    chrono::DateTime::from_timestamp(FEED_START_S + hours * HOUR_S, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn hold_clock_at(fake: &FakeMarket, hours: i64) {
    fake.state.lock().unwrap().hold_at = Some(FEED_START_S + hours * HOUR_S);
}

/// What a webhook receiver does with a POST.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Accept,
    /// Reads the request, then never answers.
    Hang,
}

struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    fn bodies(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }
}

/// A webhook receiver on 127.0.0.1: records each POST's path and JSON body.
fn receiver(mode: Mode) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let shared = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let shared = shared.clone();
            std::thread::spawn(move || take_post(stream, mode, &shared));
        }
    });
    Receiver { url, got }
}

fn take_post(mut stream: TcpStream, mode: Mode, got: &Mutex<Vec<(String, Value)>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    got.lock().unwrap().push((path, value));
    if mode == Mode::Hang {
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let _ =
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
}

/// `/metrics` parsed by Prometheus' own parser (tools/prometheus_parse.py):
/// sample name and labels → value.
fn metrics(addr: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let (status, text) = http_get(addr, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200, "{text}");
    let mut child = std::process::Command::new("python3")
        .arg(repo_root().join("tools/prometheus_parse.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}\n--- the text:\n{text}");
    let families: Vec<Value> = serde_json::from_str(&out).unwrap();
    let mut samples = BTreeMap::new();
    for family in families {
        for sample in family["samples"].as_array().unwrap() {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(sample["labels"].clone()).unwrap();
            let value = sample["value"].as_f64().unwrap_or(f64::NAN);
            samples.insert(
                (sample["name"].as_str().unwrap().to_string(), labels),
                value,
            );
        }
    }
    samples
}

fn sample(
    samples: &BTreeMap<(String, BTreeMap<String, String>), f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    *samples
        .get(&(name.to_string(), labels.clone()))
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

/// A journaled finding: its seq, market time and body.
type Found = (u64, i64, Finding);
/// Findings by (check, symbol), in journal order.
type ByCheck<'a> = BTreeMap<(String, String), Vec<&'a Found>>;

fn findings(events: &[StoredEvent]) -> Vec<Found> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Finding(f) => Some((e.seq, e.market_ms, f.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn healthz_follows_a_stalled_feed_agrees_with_status_and_alerts_arrive() {
    let temp = tempfile::tempdir().unwrap();
    let mut state = market(feed());
    state.end_s = FEED_START_S + 48 * HOUR_S;
    state.run_past_end = true;
    // Candles from hour 40 withheld until hour 52: the feed stalls.
    state.stall = Some((FEED_START_S + 40 * HOUR_S, FEED_START_S + 52 * HOUR_S));
    state.hold_at = Some(FEED_START_S + 30 * HOUR_S);
    let fake = serve(state);
    let hook = receiver(Mode::Accept);
    let addr = free_addr();
    let operations = operations_file(temp.path(), SHIPPED_ANOMALIES, 2);
    let journal = temp.path().join("watched");
    let webhook = format!("{}/services/T0/B0/SECRETPATH", hook.url);
    let mut child = spawn_watched(&journal, &fake, &addr, &webhook, &operations, &[]);

    // Fresh data, the clock held at hour 30: healthy.
    let fresh = wait_healthz(&addr, &journal, 200, |doc| {
        doc["last_candle_close"] == close_text(30)
    });
    assert_eq!(fresh["problems"], serde_json::json!([]));
    assert!(fresh["loop"]["passes"].as_u64().unwrap() > 0, "{fresh}");
    assert!(
        fresh["loop"]["last_duration_s"].as_f64().is_some(),
        "{fresh}"
    );
    assert_eq!(fresh["symbols"].as_object().unwrap().len(), 2, "{fresh}");
    assert_agrees_with_status(&journal, &fresh);

    // The feed stalls from hour 40; at hour 50 the data is ten hours old.
    hold_clock_at(&fake, 50);
    let stalled = wait_healthz(&addr, &journal, 503, |doc| {
        doc["now"]
            .as_str()
            .unwrap()
            .starts_with(&close_text(50)[..16])
            && doc["findings"].as_array().unwrap().len() == 2
    });
    let problems = stalled["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p == "market data is stale"),
        "{stalled}"
    );
    assert_agrees_with_status(&journal, &stalled);

    // At hour 52 the backlog arrives, and the feed goes on.
    hold_clock_at(&fake, 53);
    let recovered = wait_healthz(&addr, &journal, 200, |doc| {
        doc["last_candle_close"] == close_text(53)
            && doc["now"]
                .as_str()
                .unwrap()
                .starts_with(&close_text(53)[..16])
            && doc["findings"].as_array().unwrap().is_empty()
    });
    assert_agrees_with_status(&journal, &recovered);

    // The counters are the journal's counts, up to the head they report.
    let m = metrics(&addr);
    let head = sample(&m, "anx_journal_head_seq", &[]) as u64;
    assert_eq!(head, recovered["head_seq"].as_u64().unwrap());
    let all: Vec<StoredEvent> = events(&journal)
        .into_iter()
        .filter(|e| e.seq <= head)
        .collect();
    assert_counters_are_the_journals(&m, &all);
    assert_eq!(sample(&m, "anx_healthy", &[]), 1.0);
    let run_info = m
        .keys()
        .find(|(name, _)| name == "anx_run_info")
        .expect("anx_run_info");
    assert_eq!(run_info.1["run_id"], recovered["run_id"].as_str().unwrap());
    assert_eq!(run_info.1["run_mode"], "paper_live");
    let equity: f64 = recovered["equity"].to_string().parse().unwrap();
    assert!((sample(&m, "anx_equity_quote", &[]) - equity).abs() < 1e-9 * equity.abs());
    assert!(sample(&m, "anx_loop_duration_seconds_count", &[]) > 0.0);
    assert!(
        sample(
            &m,
            "anx_broker_request_duration_seconds_count",
            &[("api", "market_data")]
        ) > 0.0
    );

    // The webhook: each symbol's data_stale raised and cleared once, the
    // health turned unhealthy and back once – and nothing else.
    wait_for("the alerts", &journal, Duration::from_secs(30), || {
        hook.bodies().len() >= 6
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
    let bodies = hook.bodies();
    let mut seen: Vec<String> = bodies
        .iter()
        .map(|b| {
            assert!(
                b["text"].as_str().unwrap().starts_with("anx paper (run "),
                "{b}"
            );
            let anx = &b["anx"];
            match anx["type"].as_str().unwrap() {
                "finding" => format!(
                    "{} {} {}",
                    anx["check"].as_str().unwrap(),
                    anx["symbol"].as_str().unwrap(),
                    anx["raised"]
                ),
                "health" => format!("health {}", anx["healthy"]),
                other => panic!("unknown alert type {other}: {b}"),
            }
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "anomaly.data_stale BTC-USD false",
            "anomaly.data_stale BTC-USD true",
            "anomaly.data_stale ETH-USD false",
            "anomaly.data_stale ETH-USD true",
            "health false",
            "health true",
        ],
        "{bodies:#?}"
    );
    let unhealthy = bodies
        .iter()
        .find(|b| b["anx"]["healthy"] == false)
        .unwrap();
    assert!(unhealthy["text"]
        .as_str()
        .unwrap()
        .contains("UNHEALTHY: market data is stale"));
    // The journal has each finding the webhook got, in its order.
    let journaled = findings(&events(&journal));
    assert_eq!(journaled.len(), 4, "{journaled:#?}");
    for (seq, _, f) in &journaled {
        assert!(bodies.iter().any(|b| b["anx"]["seq"] == *seq
            && b["anx"]["check"] == f.check.as_str()
            && b["anx"]["raised"] == f.raised));
    }
    // The webhook's path is a secret: never in the log.
    let log = log_of(&journal);
    assert!(!log.contains("SECRETPATH"), "{log}");
    assert!(hook
        .got
        .lock()
        .unwrap()
        .iter()
        .all(|(p, _)| p == "/services/T0/B0/SECRETPATH"));
}

/// Every counter of the journal's fold against a count of `all`'s events.
fn assert_counters_are_the_journals(
    m: &BTreeMap<(String, BTreeMap<String, String>), f64>,
    all: &[StoredEvent],
) {
    let mut by_kind: BTreeMap<&str, f64> = BTreeMap::new();
    let mut candles: BTreeMap<String, f64> = BTreeMap::new();
    let mut decisions: BTreeMap<String, f64> = BTreeMap::new();
    let mut without_order: BTreeMap<String, f64> = BTreeMap::new();
    for e in all {
        *by_kind.entry(e.event.kind().name()).or_default() += 1.0;
        match &e.event {
            Event::Candle(c) => *candles.entry(c.symbol.clone()).or_default() += 1.0,
            Event::Decision(d) => {
                *decisions.entry(d.symbol.clone()).or_default() += 1.0;
                if !matches!(
                    d.outcome,
                    DecisionOutcome::Enter | DecisionOutcome::Exit { .. }
                ) {
                    *without_order.entry(d.symbol.clone()).or_default() += 1.0;
                }
            }
            _ => {}
        }
    }
    for kind in anx_journal::EventKind::ALL {
        let want = by_kind.get(kind.name()).copied().unwrap_or(0.0);
        assert_eq!(
            sample(m, "anx_events_total", &[("kind", kind.name())]),
            want,
            "{kind:?}"
        );
    }
    assert!(by_kind["Candle"] > 50.0, "{by_kind:?}");
    for (symbol, count) in &candles {
        assert_eq!(
            sample(m, "anx_candles_total", &[("symbol", symbol)]),
            *count
        );
        assert_eq!(
            sample(m, "anx_decisions_total", &[("symbol", symbol)]),
            decisions[symbol]
        );
        let reasons: f64 = m
            .iter()
            .filter(|((name, labels), _)| {
                name == "anx_decisions_without_order_total" && labels["symbol"] == *symbol
            })
            .map(|(_, v)| *v)
            .sum();
        assert_eq!(reasons, without_order[symbol], "{symbol}");
    }
    let count = |kind: &str| by_kind.get(kind).copied().unwrap_or(0.0);
    assert_eq!(sample(m, "anx_orders_total", &[]), count("OrderPlaced"));
    assert_eq!(sample(m, "anx_fills_total", &[]), count("Fill"));
    assert_eq!(
        sample(m, "anx_order_rejections_total", &[]),
        count("OrderRejected")
    );
    assert_eq!(
        sample(m, "anx_trades_closed_total", &[]),
        count("TradeClosed")
    );
}

/// The rejections counted towards `anomaly.signals_without_entry`: not
/// those by a breaker, a halt or the regime.
const TOLD_NOT_TO_TRADE: [&str; 6] = [
    "stale_data",
    "symbol_fail_closed",
    "max_drawdown_breaker",
    "daily_loss_limit",
    "operator_halt",
    "regime_blocked",
];

/// `symbol`'s rejections in a row since its last entry, over decisions
/// before `seq`.
fn rejection_streak(all: &[StoredEvent], symbol: &str, seq: u64) -> u64 {
    let mut streak = 0;
    for e in all.iter().take_while(|e| e.seq < seq) {
        let Event::Decision(d) = &e.event else {
            continue;
        };
        if d.symbol != symbol {
            continue;
        }
        match &d.outcome {
            DecisionOutcome::Enter => streak = 0,
            DecisionOutcome::Rejected { reason_code }
                if !TOLD_NOT_TO_TRADE.contains(&reason_code.as_str()) =>
            {
                streak += 1
            }
            _ => {}
        }
    }
    streak
}

/// Per check and symbol, the findings alternate raised, cleared, raised …
/// starting raised: each fires once while it holds.
fn by_check(found: &[Found]) -> ByCheck<'_> {
    let mut out: ByCheck<'_> = BTreeMap::new();
    for f in found {
        out.entry((f.2.check.clone(), f.2.symbol.clone()))
            .or_default()
            .push(f);
    }
    for (key, list) in &out {
        for (index, (_, _, f)) in list.iter().enumerate() {
            assert_eq!(
                f.raised,
                index % 2 == 0,
                "{key:?} does not alternate: {list:#?}"
            );
        }
    }
    out
}

#[test]
fn anomalies_fire_once_when_they_hold_and_hostile_clients_and_a_hung_webhook_cost_nothing() {
    let temp = tempfile::tempdir().unwrap();
    // The control: no operations flags, the shipped thresholds, no faults.
    let control_market = serve(market(feed()));
    let control = temp.path().join("control");
    let mut child = spawn_paper(&control, &control_market.url, &[]);
    wait_until_fed(&control, &control_market, &mut child);
    assert!(sigterm(&mut child).success());
    let control_events = events(&control);
    assert_eq!(
        findings(&control_events),
        vec![],
        "with the shipped thresholds nothing on this feed is an anomaly"
    );

    // Watched: low thresholds, the first fifteen candle requests answered
    // 500 (five requests of three attempts, two a poll: a failure in each of
    // three polls in a row), a webhook that takes each alert and never
    // answers, and hostile clients.
    let mut state = market(feed());
    state.faults = std::iter::repeat_n(Fault::Status(500), 15).collect();
    let fake = serve(state);
    let hook = receiver(Mode::Hang);
    let addr = free_addr();
    let operations = operations_file(temp.path(), LOW_ANOMALIES, 10);
    let compare = temp.path().join("compare.toml");
    let shipped = std::fs::read_to_string(repo_root().join("config/compare.toml")).unwrap();
    let low = shipped
        .replace("win_rate_min_pct = \"10\"", "win_rate_min_pct = \"50\"")
        .replace("win_rate_window_trades = 20", "win_rate_window_trades = 3");
    assert_ne!(low, shipped);
    std::fs::write(&compare, low).unwrap();
    let journal = temp.path().join("watched");
    let webhook = format!("{}/hook/SECRETPATH", hook.url);
    let thresholds = ["--thresholds", path_str(&compare)];
    let mut child = spawn_watched(&journal, &fake, &addr, &webhook, &operations, &thresholds);
    let hostile = attack(&addr);
    // While the attackers hold their connections, /healthz still answers.
    wait_healthz(&addr, &journal, 200, |_| true);
    wait_until_fed(&journal, &fake, &mut child);
    let m = metrics(&addr);
    drop(hostile);
    let stopping = Instant::now();
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
    // The hung webhook held the stop up for the grace of 2 s at most.
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "{:?}",
        stopping.elapsed()
    );
    // The alert it was holding was given up, and the log names the host –
    // never the URL's secret path.
    let log = log_of(&journal);
    let given_up = format!("alert to {}/… not delivered", hook.url);
    assert!(log.contains(&given_up), "{log}");
    assert!(!log.contains("SECRETPATH"), "{log}");

    // It decided and traded exactly as the control did.
    // The same decisions and trades; a candle the 500s held back came a
    // poll later, so the symbols' order within an hour may differ.
    let by_time_and_symbol = |journal: &Path| {
        let (mut decisions, mut trades) = decisions_and_trades(journal);
        let key = |v: &Value| {
            (
                v["as_of_ms"].as_i64(),
                v["entry_ms"].as_i64(),
                v["symbol"].to_string(),
            )
        };
        decisions.sort_by_key(key);
        trades.sort_by_key(key);
        (decisions, trades)
    };
    let (decisions, trades) = by_time_and_symbol(&journal);
    let (control_decisions, control_trades) = by_time_and_symbol(&control);
    assert_eq!(decisions.len(), control_decisions.len(), "decisions");
    if let Some(first) = (0..decisions.len()).find(|i| decisions[*i] != control_decisions[*i]) {
        panic!(
            "decision {first} differs:\n{}\nagainst the control's\n{}",
            decisions[first], control_decisions[first]
        );
    }
    assert_eq!(trades, control_trades);
    // No pass of its loop waited on the webhook (10 s a try) or a client
    // (the slowest passes are those of the 500s: 1.5 s of backoff).
    assert_eq!(
        sample(&m, "anx_loop_duration_seconds_bucket", &[("le", "5.0")]),
        sample(&m, "anx_loop_duration_seconds_count", &[]),
        "a pass took over 5 s"
    );
    assert_eq!(sample(&m, "anx_alerts_sent_total", &[]), 0.0);

    let all = events(&journal);
    let found = findings(&all);
    let checks = by_check(&found);
    let keys: Vec<&str> = checks.keys().map(|(c, _)| c.as_str()).collect();
    for check in [
        "anomaly.broker_errors",
        "anomaly.signals_without_entry",
        "anomaly.trade_rate",
        "edge_decay.win_rate",
    ] {
        assert!(keys.contains(&check), "{check} never fired: {found:#?}");
    }
    assert!(!keys.contains(&"anomaly.data_stale"), "{found:#?}");
    for ((check, symbol), list) in &checks {
        for (seq, _, f) in list {
            assert_holds_as_journaled(&all, check, symbol, *seq, f);
        }
    }
    // Three failing polls in a row, then one without: raised once, cleared once.
    let errors = &checks[&("anomaly.broker_errors".to_string(), String::new())];
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].2.value, Some(rust_decimal::Decimal::from(3)));
    assert!(errors[0].2.detail.contains("HTTP 500"), "{errors:#?}");
    assert_eq!(errors[1].2.value, Some(rust_decimal::Decimal::ZERO));
    // The hung webhook was handed the findings (the journal has them all).
    let alerted = hook.bodies();
    assert!(!alerted.is_empty());
    for body in &alerted {
        if body["anx"]["type"] == "finding" {
            let seq = body["anx"]["seq"].as_u64().unwrap();
            assert!(found.iter().any(|(s, _, _)| *s == seq), "{body}");
        }
    }
}

/// A finding's verdict against the journal before it.
fn assert_holds_as_journaled(
    all: &[StoredEvent],
    check: &str,
    symbol: &str,
    seq: u64,
    f: &Finding,
) {
    let value = f.value.map(|v| v.to_string().parse::<f64>().unwrap());
    let limit: f64 = f.limit.to_string().parse().unwrap();
    match check {
        "anomaly.signals_without_entry" => {
            let streak = rejection_streak(all, symbol, seq);
            assert_eq!(value, Some(streak as f64), "{f:?}");
            assert_eq!(
                f.raised,
                streak as f64 >= limit,
                "{f:?} with a streak of {streak}"
            );
        }
        "anomaly.broker_errors" => {
            assert_eq!(f.raised, value.unwrap() >= limit, "{f:?}");
        }
        "anomaly.trade_rate" => {
            // Entries (a trade's first buy fill) in the 24 h before it,
            // against the test configuration's caps over 24 h: 24 a day,
            // 2 an hour – 24.
            let mut first_buys: BTreeMap<&str, i64> = BTreeMap::new();
            for e in all.iter().take_while(|e| e.seq < seq) {
                if let Event::Fill(fill) = &e.event {
                    if fill.side == anx_journal::Side::Buy {
                        first_buys
                            .entry(fill.client_order_id.as_str())
                            .or_insert(e.market_ms);
                    }
                }
            }
            let at_ms = all.iter().find(|e| e.seq == seq).unwrap().market_ms;
            let entries = first_buys
                .values()
                .filter(|ms| **ms > at_ms - 24 * 3_600_000)
                .count();
            let pct = (rust_decimal::Decimal::from(entries * 100)
                / rust_decimal::Decimal::from(24))
            .round_dp(2);
            assert_eq!(f.value, Some(pct), "{f:?}: {entries} entries");
            assert_eq!(f.raised, pct > f.limit, "{f:?}");
        }
        "edge_decay.win_rate" => {
            // The newest three closed trades before it.
            let trades: Vec<bool> = all
                .iter()
                .take_while(|e| e.seq < seq)
                .filter_map(|e| match &e.event {
                    Event::TradeClosed(t) => Some(t.net_pnl > rust_decimal::Decimal::ZERO),
                    _ => None,
                })
                .collect();
            assert!(trades.len() >= 3, "{f:?}");
            let wins = trades[trades.len() - 3..].iter().filter(|w| **w).count();
            let pct = wins as f64 * 100.0 / 3.0;
            assert_eq!(f.raised, pct < 50.0, "{f:?}: {wins} wins of 3");
        }
        other => panic!("unexpected check {other}: {f:?}"),
    }
}

/// Hostile clients on the listen port: some connect and say nothing, some
/// send half a request head, one a byte at a time; held until dropped.
fn attack(addr: &str) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for index in 0..24 {
        let Ok(mut stream) = TcpStream::connect(addr) else {
            continue;
        };
        if index % 2 == 0 {
            let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        }
        held.push(stream);
    }
    if let Ok(stream) = TcpStream::connect(addr) {
        let mut dribble = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                .iter()
                .cycle()
                .take(600)
            {
                if dribble.write_all(&[*byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        held.push(stream);
    }
    held
}

#[test]
fn a_taken_port_a_bad_webhook_or_bad_settings_stop_the_trader_before_it_journals() {
    let temp = tempfile::tempdir().unwrap();
    let fake = serve(market(feed()));
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let broken = temp.path().join("broken.toml");
    std::fs::write(
        &broken,
        "[anomalies]\nsignals_without_entry_max = \"many\"\n",
    )
    .unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--listen", &taken_addr], "cannot listen"),
        (
            &["--alert-webhook", "ftp://hooks.example/x"],
            "--alert-webhook",
        ),
        (&["--operations", path_str(&broken)], "broken.toml"),
        (
            &["--operations", "no/such/operations.toml"],
            "cannot read the operations settings",
        ),
    ];
    for (extra, says) in cases {
        let journal = temp.path().join("refused");
        let run = paper_refused(&journal, &fake.url, extra);
        run.assert_one_line_error(2);
        assert!(run.stderr.contains(says), "{extra:?}: {}", run.stderr);
        assert!(!journal.exists(), "{extra:?}: nothing is journaled");
    }
    // A request other than GET /healthz or /metrics is refused, and the
    // trader goes on.
    let addr = free_addr();
    let journal = temp.path().join("served");
    let mut child = spawn_paper(&journal, &fake.url, &["--listen", &addr]);
    wait_healthz(&addr, &journal, 200, |_| true);
    assert_eq!(http_get(&addr, "/").map(|(code, _)| code), Some(404));
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    let garbage =
        TcpStream::connect(&addr).and_then(|mut s| s.write_all(b"\x00\xffnot http\r\n\r\n"));
    assert!(garbage.is_ok());
    assert!(healthz(&addr).is_some(), "still serving");
    assert!(child.try_wait().unwrap().is_none(), "still trading");
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
}
