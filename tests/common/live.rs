//! The live trader's end-to-end harness: the fake Coinbase exchange as its
//! own process, `anx live` against it, and readers of the journal.

use super::*;
use anx_journal::Event;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::{FEED_HOURS, FEED_START_S, HOUR_S, SYMBOLS};

pub fn config() -> PathBuf {
    repo_root().join("tests/fixtures/live/live-1h.toml")
}

pub fn key(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/keys").join(name)
}

pub fn fake_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_anx"))
        .parent()
        .unwrap()
        .join("fake-coinbase");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release -p anx-tools --bin fake-coinbase` (cargo test --workspace builds it)",
        path.display()
    );
    path
}

/// The feed's candles in the cache layout, in `dir`.
pub fn write_feed(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for symbol in SYMBOLS {
        let mut text = String::from("timestamp,unix,open,high,low,close,volume\n");
        let rows = shared_hourly(symbol);
        for (t, f) in rows.range(FEED_START_S..FEED_START_S + FEED_HOURS * HOUR_S) {
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
        std::fs::write(dir.join(format!("COINBASE_{symbol}_1h.csv")), text).unwrap();
    }
}

/// The fake's account and costs as the test configuration models them, but
/// for what `extra` sets itself.
fn defaults_unless_given<'a>(extra: &[&str]) -> Vec<&'a str> {
    let defaults = [
        ("--usd", "10000"),
        ("--maker-fee-bps", "10"),
        ("--taker-fee-bps", "20"),
        ("--slippage-bps", "2"),
    ];
    defaults
        .into_iter()
        .filter(|(flag, _)| !extra.contains(flag))
        .flat_map(|(flag, value)| [flag, value])
        .collect()
}

/// The fake exchange, as its own process.
pub struct Fake {
    pub child: Child,
    pub url: String,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Fake {
    pub fn start(cache: &Path, extra: &[&str]) -> Fake {
        Fake::start_keyed(cache, "ecdsa.json", extra)
    }

    /// A fake that accepts tokens signed with the test key `key_name`.
    pub fn start_keyed(cache: &Path, key_name: &str, extra: &[&str]) -> Fake {
        let mut child = Command::new(fake_binary())
            .args([
                "--candles",
                path_str(cache),
                "--symbols",
                &SYMBOLS.join(","),
                "--granularity",
                "1h",
                "--start",
                &rfc3339((FEED_START_S + HOUR_S) * 1000),
                "--key-file",
                path_str(&key(key_name)),
            ])
            .args(defaults_unless_given(extra))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fake-coinbase");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("fake-coinbase said {line:?}"))
            .to_string();
        Fake { child, url }
    }

    /// A control request (`/fake/...`) and its JSON answer.
    pub fn control(&self, method: &str, path: &str, body: &str) -> serde_json::Value {
        let address = self.url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {answer}"))
    }

    pub fn state(&self) -> serde_json::Value {
        self.control("GET", "/fake/state", "")
    }
}

pub fn spawn_live(journal: &Path, fake: &Fake, extra: &[&str]) -> Child {
    spawn_live_with(journal, fake, &config(), extra)
}

/// `anx live` with the configuration file `config`.
pub fn spawn_live_with(journal: &Path, fake: &Fake, config: &Path, extra: &[&str]) -> Child {
    trader_command(journal)
        .args([
            "live",
            "--config",
            path_str(config),
            "--journal",
            path_str(journal),
            "--api-url",
            &fake.url,
            "--key-file",
            path_str(&key("ecdsa.json")),
            "--poll-interval",
            "0.02",
            "--request-timeout",
            "2",
            // The fake has no rate limit; Coinbase's is exercised by a 429 fault.
            "--requests-per-s",
            "1000",
            "-v",
        ])
        .args(extra)
        .env_remove("COINBASE_API_KEY")
        .env_remove("COINBASE_API_SECRET")
        .spawn()
        .expect("spawn anx live")
}

pub fn wait_for(what: &str, journal: &Path, child: &mut Child, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the trader exited early ({status}) waiting for {what}:\n{}",
                log_of(journal)
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}; trader log:\n{}",
            log_of(journal)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The decision times (s) of every symbol decided on so far.
pub fn decided(journal: &Path) -> BTreeMap<i64, BTreeSet<String>> {
    let mut decided: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for stored in events(journal) {
        if let Event::Decision(d) = &stored.event {
            decided
                .entry(d.as_of_ms / 1000)
                .or_default()
                .insert(d.symbol.clone());
        }
    }
    decided
}

pub fn wait_for_decisions(journal: &Path, child: &mut Child, close_s: i64) {
    wait_for(
        &format!("the decisions at {}", rfc3339(close_s * 1000)),
        journal,
        child,
        || {
            decided(journal)
                .get(&close_s)
                .is_some_and(|s| s.len() == SYMBOLS.len())
        },
    );
}

/// Once the trader has decided on the bar before `from_s`, the market moves
/// in lock-step with it – one bar as each of its market-data polls starts
/// – up to `to_s`, and the trader decides on every bar up to there. Fills
/// then happen only as a poll starts: what the exchange did in a bar is
/// answered in that bar's candle step, as the simulator answers.
pub fn drive(fake: &Fake, journal: &Path, child: &mut Child, from_s: i64, to_s: i64) {
    wait_for_decisions(journal, child, from_s);
    fake.control(
        "POST",
        "/fake/clock",
        &format!(
            "{{\"step_on_public_time_s\": {HOUR_S}, \"until_ms\": {}}}",
            to_s * 1000
        ),
    );
    wait_for_decisions(journal, child, to_s);
}

/// The decisions (without the config hash's journal position) and trades, as JSON.
pub fn decisions_and_trades(journal: &Path) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let mut decisions = Vec::new();
    let mut trades = Vec::new();
    for stored in events(journal) {
        match stored.event {
            Event::Decision(mut d) => {
                d.candle_seq = 0;
                decisions.push(serde_json::to_value(d).unwrap());
            }
            Event::TradeClosed(mut t) => {
                t.entry_order_seq = 0;
                t.entry_fill_seq = 0;
                t.exit_fill_seq = 0;
                trades.push(serde_json::to_value(t).unwrap());
            }
            _ => {}
        }
    }
    (decisions, trades)
}
