//! What the `anx` binary says, end to end: usage mistakes rendered whole by
//! clap, a closed stdout as a normal end, malformed URLs refused at start-up,
//! plain-text logs that name the root cause and the URL once, a failed write
//! that leads with its cause, `--json` on every command that prints a
//! document, and an example in every `--help`.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A replay journal of a few thousand events (BTC-USD, four months of the
/// shared 1h candles at 4h): its export is well over a pipe's buffer.
fn replay_journal(work: &Path) -> PathBuf {
    let journal = work.join("btc");
    let cache = shared_candles();
    let mut args = btc_replay_args(
        path_str(&cache),
        path_str(&journal),
        ("2024-05-01", "2024-09-01"),
    );
    args.push("--json");
    let run = anx(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        json(&run.stdout)["head_seq"].as_u64().unwrap() > 1000,
        "the journal must be big enough to fill a pipe"
    );
    journal
}

/// A local URL nothing listens on.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    url
}

#[test]
fn usage_mistakes_are_rendered_whole_by_clap() {
    // A missing argument is named, with the subcommand's usage and help.
    let run = anx(&[
        "replay",
        "run",
        "--symbols",
        "BTC-USD",
        "--start",
        "2024-01-01",
    ]);
    run.assert_usage_error();
    assert!(run.stderr.contains("--end <END>"), "{}", run.stderr);
    assert!(
        run.stderr.contains("Usage: anx replay run"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("anx --help"), "{}", run.stderr);
    // A misspelt flag gets clap's suggestion.
    let run = anx(&[
        "replay",
        "run",
        "--symbol",
        "BTC-USD",
        "--start",
        "2024-01-01",
        "--end",
        "2024-02-01",
    ]);
    run.assert_usage_error();
    assert!(run.stderr.contains("'--symbol'"), "{}", run.stderr);
    assert!(run.stderr.contains("'--symbols'"), "{}", run.stderr);
    // Help is not an error.
    let help = anx(&["journal", "verify", "--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stderr.is_empty(), "{}", help.stderr);
}

/// Runs `anx` with its stdout a pipe whose reading end is already closed: the
/// first write fails with EPIPE, whenever it comes.
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_anx"))
        .args(args)
        .current_dir(repo_root())
        .env_remove("RUST_LOG")
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("spawn anx");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_is_a_normal_end() {
    let work = tempfile::tempdir().unwrap();
    let journal = replay_journal(work.path());
    let dir = path_str(&journal);
    let export = anx(&["journal", "export", dir]).stdout;
    let trade_id = export
        .lines()
        .map(json)
        .find(|event| event["kind"] == "TradeClosed")
        .and_then(|event| event["body"]["trade_id"].as_str().map(String::from))
        .expect("the replay closed a trade");
    // `anx journal export DIR | head -1`: one line read, then the pipe closes
    // with more than a pipe buffer still to write.
    let mut child = Command::new(env!("CARGO_BIN_EXE_anx"))
        .args(["journal", "export", dir])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn anx");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(json(&first)["seq"], 1);
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Every command that prints, whatever it prints with.
    let commands: [&[&str]; 7] = [
        &["journal", "export", dir],
        &["journal", "export", dir, "--json"],
        &["journal", "stat", dir],
        &["journal", "verify", dir, "--json"],
        &["journal", "head", dir],
        &["journal", "replay", dir],
        &["why", dir, &trade_id],
    ];
    for args in commands {
        let (code, stderr) = with_closed_stdout(args);
        assert_eq!(code, Some(0), "anx {args:?}: {stderr}");
        assert!(stderr.is_empty(), "anx {args:?}: {stderr}");
    }
    let (code, stderr) = with_closed_stdout(&["journal", "--help"]);
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
}

#[test]
fn a_malformed_url_is_refused_at_start_up() {
    let work = tempfile::tempdir().unwrap();
    let root = repo_root();
    let journal = work.path().join("paper");
    let within = Duration::from_secs(30);
    for url in ["not a url", "ftp://example.com", "http://", "https://"] {
        let run = anx_within(
            &root,
            &[
                "paper",
                "--market-url",
                url,
                "--journal",
                path_str(&journal),
            ],
            within,
        );
        run.assert_one_line_error(2);
        assert!(run.stderr.contains("--market-url"), "{}", run.stderr);
        assert!(!journal.exists(), "nothing may be opened");
    }
    let cache = work.path().join("cache");
    let run = anx_within(
        &root,
        &[
            "data",
            "fetch",
            "--symbols",
            "BTC-USD",
            "--start",
            "2024-05-01",
            "--end",
            "2024-05-02",
            "--cache-dir",
            path_str(&cache),
            "--coinbase-url",
            "not a url",
        ],
        within,
    );
    run.assert_one_line_error(2);
    assert!(run.stderr.contains("--coinbase-url"), "{}", run.stderr);
    assert!(!cache.exists(), "nothing may be created");
    let replay = work.path().join("replay");
    for source in ["coinbase", "cache"] {
        let run = anx_within(
            &root,
            &[
                "replay",
                "run",
                "--symbols",
                "BTC-USD",
                "--start",
                "2024-05-01",
                "--end",
                "2024-05-02",
                "--data-source",
                source,
                "--cache-dir",
                path_str(&cache),
                "--coinbase-url",
                "ftp://example.com",
                "--journal",
                path_str(&replay),
            ],
            within,
        );
        run.assert_one_line_error(2);
        assert!(run.stderr.contains("--coinbase-url"), "{}", run.stderr);
        assert!(
            !cache.exists() && !replay.exists(),
            "nothing may be created"
        );
    }
}

#[test]
fn logs_are_plain_text_naming_the_url_once_and_the_root_cause() {
    let work = tempfile::tempdir().unwrap();
    let url = closed_port_url();
    let mut child = Command::new(env!("CARGO_BIN_EXE_anx"))
        .args([
            "paper",
            "--market-url",
            &url,
            "--journal",
            path_str(&work.path().join("paper")),
            "--poll-interval",
            "0.2",
        ])
        .current_dir(repo_root())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn anx paper");
    let (send, receive) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    // The retries of one poll, then the poll's failure.
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !lines
        .iter()
        .any(|l: &String| l.contains("cannot read the exchange's time"))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match receive.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no failed poll logged within a minute: {lines:#?}");
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines.len() >= 2, "{lines:#?}");
    for line in &lines {
        assert!(
            !line.contains('\u{1b}'),
            "ANSI codes in a log file: {line:?}"
        );
        assert_eq!(
            line.matches(url.as_str()).count(),
            1,
            "the URL once per line: {line}"
        );
        assert!(
            line.to_lowercase().contains("connection refused"),
            "the root cause: {line}"
        );
    }
}

#[test]
fn a_failed_write_leads_with_its_cause() {
    // A file-size limit stands in for a full disk: writes past it fail (EFBIG)
    // once SIGXFSZ is ignored.
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("small");
    let cache = shared_candles();
    let output = Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 100 && trap '' XFSZ && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_anx"))
        .args(btc_replay_args(
            path_str(&cache),
            path_str(&journal),
            ("2024-05-01", "2024-09-01"),
        ))
        .current_dir(repo_root())
        .env_remove("RUST_LOG")
        .output()
        .expect("spawn sh");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let cause = stderr
        .find("write failed")
        .unwrap_or_else(|| panic!("the cause is named: {stderr}"));
    let poisoned = stderr
        .find("poisoned")
        .unwrap_or_else(|| panic!("the writer's state is named: {stderr}"));
    assert!(cause < poisoned, "the cause comes first: {stderr}");
    assert!(!stderr.contains("earlier failure"), "{stderr}");
}

#[test]
fn json_is_spelled_json_everywhere() {
    let work = tempfile::tempdir().unwrap();
    let golden = golden_dir();
    let golden = path_str(&golden);
    // journal export: --json is its JSON lines.
    let plain = anx(&["journal", "export", golden]);
    let flagged = anx(&["journal", "export", golden, "--json"]);
    let old = anx(&["journal", "export", golden, "--format", "jsonl"]);
    assert_eq!(flagged.code, 0, "{}", flagged.stderr);
    assert_eq!(flagged.stdout, plain.stdout);
    assert_eq!(old.stdout, plain.stdout);
    // journal replay: --json is --format json.
    let fixture = copy_of(&repo_root().join("tests/fixtures/trading-v1"));
    let dir = path_str(fixture.path());
    let state = |extra: &[&str]| {
        let mut args = vec!["journal", "replay", dir, "--no-snapshot"];
        args.extend(extra);
        let run = anx(&args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let mut doc = json(&run.stdout);
        doc["fold"]["elapsed_ms"] = serde_json::Value::Null;
        doc
    };
    assert_eq!(state(&["--json"]), state(&["--format", "json"]));
    anx(&["journal", "replay", dir, "--json", "--format", "table"]).assert_usage_error();
    // replay run: --json is --report-format json.
    let cache = shared_candles();
    let replay = |name: &str, extra: &[&str]| {
        let journal = work.path().join(name);
        let mut args = vec![
            "replay",
            "run",
            "--symbols",
            "BTC-USD",
            "--start",
            "2024-05-01",
            "--end",
            "2024-06-01",
            "--cache-dir",
            path_str(&cache),
            "--journal",
            path_str(&journal),
        ];
        args.extend(extra);
        anx(&args)
    };
    let new = replay("new", &["--json"]);
    let old = replay("old", &["--report-format", "json"]);
    assert_eq!(new.code, 0, "{}", new.stderr);
    let (new, old) = (json(&new.stdout), json(&old.stdout));
    assert_eq!(new["state_hash"], old["state_hash"]);
    assert_eq!(new["report"], old["report"]);
    replay("both", &["--json", "--report-format", "html"]).assert_usage_error();
    // The commands that always had --json still have it.
    for args in [
        vec!["journal", "verify", golden, "--json"],
        vec!["journal", "stat", golden, "--json"],
        vec!["why", dir, "T-BTCUSD-20240101T1600", "--json"],
        vec!["status", dir, "--json"],
    ] {
        let run = anx(&args);
        assert!(run.code == 0 || run.code == 1, "{args:?}: {}", run.stderr);
        json(run.stdout.lines().next().unwrap_or(""));
    }
}

/// The subcommands listed in a `--help` text's "Commands:" section.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

#[test]
fn every_help_has_an_example() {
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen = 0;
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let run = anx(&args);
        assert_eq!(run.code, 0, "anx {args:?}: {}", run.stderr);
        assert!(
            run.stdout.contains("Example"),
            "anx {args:?} has no example:\n{}",
            run.stdout
        );
        seen += 1;
        for name in subcommands(&run.stdout) {
            let mut child = path.clone();
            child.push(name);
            pending.push(child);
        }
    }
    // anx, journal and its 7, why, replay run, data fetch, status, paper.
    assert!(seen >= 16, "only {seen} helps found");
    // Flags whose meaning is not obvious from their name, and value lists.
    let help = anx(&["replay", "run", "--help"]).stdout;
    for needle in [
        "COINBASE",
        "BINANCE",
        "independent:",
        "portfolio:",
        "replay_backtest:",
        "paper_live:",
        "table:",
        "html:",
        "--report-format json",
    ] {
        assert!(help.contains(needle), "{needle} missing:\n{help}");
    }
    let help = anx(&["journal", "replay", "--help"]).stdout;
    assert!(help.contains("--format json"), "{help}");
    let help = anx(&["journal", "export", "--help"]).stdout;
    assert!(help.contains("--format jsonl"), "{help}");
}

#[test]
fn operator_mistakes_are_one_line_errors_that_write_nothing() {
    let fixture = copy_of(&repo_root().join("tests/fixtures/trading-v1"));
    let dir = path_str(fixture.path());
    let segment = |dir: &Path| {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "anxj"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect::<Vec<_>>()
    };
    let before = segment(fixture.path());
    let empty = tempfile::tempdir().unwrap();
    for (args, message) in [
        (
            vec!["halt", dir, "--reason", "x", "--wait", "nan"],
            "--wait must be between",
        ),
        (
            vec!["halt", dir, "--reason", "x", "--wait", "1e9"],
            "--wait must be between",
        ),
        (vec!["halt", dir, "--reason", ""], "the reason is empty"),
        (
            vec!["halt", path_str(empty.path()), "--reason", "x"],
            "holds no journal",
        ),
        (
            vec!["halt", dir, "--reason", "x"],
            "is not a trader's journal",
        ),
        (
            vec!["exit", dir, "BTC-USD", "--reason", "x"],
            "is not a trader's journal",
        ),
    ] {
        let mut all = vec!["operator"];
        all.extend_from_slice(&args);
        let run = anx(&all);
        run.assert_one_line_error(2);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    assert_eq!(segment(fixture.path()), before, "nothing written");
    assert!(!fixture.path().join("inbox").exists());
}
