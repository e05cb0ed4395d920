//! Helpers for end-to-end tests: run the real `anx` binary and capture what it did.
#![allow(dead_code)]

pub mod live;
pub mod market;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Every report metric, as keys of the JSON report.
pub const REPORT_METRICS: [&str; 18] = [
    "trades_opened",
    "trades_closed",
    "win_rate_pct",
    "avg_win",
    "avg_loss",
    "rr_actual",
    "expectancy",
    "expectancy_r",
    "profit_factor",
    "max_drawdown",
    "max_drawdown_pct",
    "peak_equity",
    "final_equity",
    "max_consecutive_losses",
    "max_consecutive_losses_usd",
    "sharpe",
    "sortino",
    "fees_total",
];

pub const HOUR_S: i64 = 3600;
/// The traders' test feed (paper and live): BTC-USD and ETH-USD from
/// 2025-01-01T00:00Z for eight days of 1h candles – seven trades in replay
/// with the paper test configuration.
pub const SYMBOLS: [&str; 2] = ["BTC-USD", "ETH-USD"];
pub const FEED_START_S: i64 = 1_735_689_600;
pub const FEED_HOURS: i64 = 8 * 24;

/// `text` as JSON; not JSON is a test failure showing the text.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn golden_dir() -> PathBuf {
    repo_root().join("journal/tests/fixtures/golden-v1")
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output
                .status
                .code()
                .expect("exited normally, not by a signal"),
            stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
        }
    }

    /// A user-facing failure: one line on stderr, no panic or backtrace.
    pub fn assert_one_line_error(&self, code: i32) {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "stderr must be one line: {:?}",
            self.stderr
        );
        assert!(self.stderr.starts_with("anx: "), "{:?}", self.stderr);
        assert!(!self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"));
    }
}

impl Run {
    /// A usage mistake, as clap renders it: exit 2, the problem (with the
    /// subcommand's usage when clap gives it) and where the help is.
    pub fn assert_usage_error(&self) {
        assert_eq!(
            self.code, 2,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(self.stderr.starts_with("error: "), "{:?}", self.stderr);
        assert!(self.stderr.contains("--help"), "{:?}", self.stderr);
        assert!(!self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"));
    }
}

/// Runs `anx` with `args` in `cwd`, killing it and failing the test if it has
/// not exited within `deadline` (for behaviour that once hung). For commands
/// with little output: stdout and stderr are read once it has exited.
pub fn anx_within(cwd: &Path, args: &[&str], deadline: std::time::Duration) -> Run {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_anx"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn anx");
    let started = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait for anx").is_some() {
            break;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collect anx");
            panic!(
                "anx {args:?} did not exit within {deadline:?}; stderr so far:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Run::from(child.wait_with_output().expect("collect anx"))
}

/// Runs `anx` with `args` in `cwd`.
pub fn anx_in(cwd: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_anx"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .expect("spawn anx");
    Run::from(output)
}

pub fn anx(args: &[&str]) -> Run {
    anx_in(&repo_root(), args)
}

/// Copies a journal directory's files into a fresh temp dir.
pub fn copy_of(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).expect("copy");
    }
    copy
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// What a fake HTTP server answers: status, JSON body, and a delay before answering.
pub type Answer = (u16, String, Option<std::time::Duration>);

/// A fake HTTP/1.1 server on 127.0.0.1 (one thread per connection, one request
/// per connection): `answer(path)` decides each response. Returns its base URL.
pub fn serve_http(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let answer = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let Ok(clone) = stream.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(clone);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    return;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("/");
                let (status, body, delay) = answer(path);
                if let Some(delay) = delay {
                    std::thread::sleep(delay);
                }
                let reason = match status {
                    200 => "OK",
                    429 => "Too Many Requests",
                    500 => "Internal Server Error",
                    404 => "Not Found",
                    _ => "Bad Request",
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    url
}

/// The shared real candle data (`../shared/data/candles`); fails loudly when missing.
pub fn shared_candles() -> PathBuf {
    let dir = repo_root().join("../shared/data/candles");
    assert!(
        dir.join("COINBASE_BTC-USD_1h.csv").is_file(),
        "shared candle data missing at {} (see DEVELOPERS.md)",
        dir.display()
    );
    dir
}

/// A shared Coinbase 1h file: unix seconds → [open, high, low, close, volume].
pub fn shared_hourly(symbol: &str) -> std::collections::BTreeMap<i64, [String; 5]> {
    let path = shared_candles().join(format!("COINBASE_{symbol}_1h.csv"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let fields = [f[2], f[3], f[4], f[5], f[6]].map(String::from);
            (f[1].parse().expect("unix seconds"), fields)
        })
        .collect()
}

/// `anx replay run` args for BTC-USD 4h candles over `range` (YYYY-MM-DD) from
/// the cache in `cache` into a new journal `journal`.
pub fn btc_replay_args<'a>(
    cache: &'a str,
    journal: &'a str,
    range: (&'a str, &'a str),
) -> Vec<&'a str> {
    vec![
        "replay",
        "run",
        "--symbols",
        "BTC-USD",
        "--start",
        range.0,
        "--end",
        range.1,
        "--data-source",
        "cache",
        "--cache-dir",
        cache,
        "--journal",
        journal,
    ]
}

/// A completed BTC-USD backtest over `range` from the shared candles in `journal`.
pub fn btc_backtest(journal: &Path, range: (&str, &str)) {
    let cache = shared_candles();
    let run = anx(&btc_replay_args(path_str(&cache), path_str(journal), range));
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Cuts the last `bytes` bytes off a journal's last segment (what a crash in
/// the middle of an append leaves); returns the segment's path.
pub fn cut_last_segment(journal: &Path, bytes: u64) -> PathBuf {
    let segment = anx_journal::list_segments(journal)
        .expect("segments")
        .pop()
        .expect("a segment")
        .path;
    let len = std::fs::metadata(&segment).expect("segment").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open the segment")
        .set_len(len - bytes)
        .expect("cut the segment");
    segment
}

pub fn events(journal: &Path) -> Vec<anx_journal::StoredEvent> {
    let Ok(mut reader) =
        anx_journal::Reader::open_with(journal, anx_journal::TailPolicy::StopAtTorn)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Ok(Some(stored)) = reader.next_event() {
        out.push(stored);
    }
    out
}

pub fn sigterm(child: &mut std::process::Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    child.wait().expect("wait for the trader")
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn log_of(journal: &Path) -> String {
    std::fs::read_to_string(journal.with_extension("log")).unwrap_or_default()
}

/// The real `anx` binary run as a trader (`anx paper`, `anx live`) in the
/// repository: its stderr appended to `journal`'s sibling log, no stdout.
pub fn trader_command(journal: &Path) -> Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(journal.with_extension("log"))
        .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_anx"));
    command
        .current_dir(repo_root())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(log);
    command
}

/// A free port on 127.0.0.1 (bound and released).
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// `GET path` on `addr`: status and body; None when nothing answers.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(
        &addr.parse().unwrap(),
        std::time::Duration::from_secs(2),
    )
    .ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}
