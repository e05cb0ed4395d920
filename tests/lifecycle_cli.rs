//! Defects found by outside testing around the journal's lifecycle, end to end
//! through the real binary: racing replays into one journal, torn tails and
//! `anx journal repair`, ranges the cache does not cover, `anx status` on a
//! backtest, configuration problems, and readers whose index store is broken
//! or cannot be written.

mod common;

use anx_journal::{Event, Reader, TailPolicy};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A small completed backtest journal in `dir`.
fn backtest(dir: &Path) {
    btc_backtest(dir, ("2025-01-01", "2025-03-01"));
}

fn segment(dir: &Path) -> PathBuf {
    anx_journal::list_segments(dir).unwrap()[0].path.clone()
}

fn kinds(dir: &Path) -> Vec<&'static str> {
    let mut reader = Reader::open_with(dir, TailPolicy::StopAtTorn).unwrap();
    let mut out = Vec::new();
    while let Some(stored) = reader.next_event().unwrap() {
        out.push(stored.event.kind().name());
    }
    out
}

#[test]
fn two_replays_racing_into_one_new_journal_never_delete_each_others_work() {
    let cache = shared_candles();
    let work = tempfile::tempdir().unwrap();
    for trial in 0..8 {
        let journal = work.path().join(format!("race-{trial}"));
        let args = btc_replay_args(
            path_str(&cache),
            path_str(&journal),
            ("2025-01-01", "2025-03-01"),
        );
        let spawn = || {
            Command::new(env!("CARGO_BIN_EXE_anx"))
                .args(&args)
                .current_dir(repo_root())
                .env_remove("RUST_LOG")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn anx")
        };
        let (a, b) = (spawn(), spawn());
        let outputs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let won: Vec<_> = outputs.iter().filter(|o| o.status.success()).collect();
        assert_eq!(
            won.len(),
            1,
            "trial {trial}: exactly one run wins: {outputs:?}"
        );
        let lost = outputs.iter().find(|o| !o.status.success()).unwrap();
        let stderr = String::from_utf8_lossy(&lost.stderr);
        assert_eq!(lost.status.code(), Some(2), "trial {trial}: {stderr}");
        assert!(
            stderr.contains("locked") || stderr.contains("already holds a journal"),
            "trial {trial}: the loser says why: {stderr}"
        );
        assert!(!stderr.contains("No such file"), "trial {trial}: {stderr}");
        // The winner's report is about a journal that still exists and verifies.
        let verify = anx(&["journal", "verify", path_str(&journal)]);
        assert_eq!(verify.code, 0, "trial {trial}: {}", verify.stdout);
        let head = anx(&["journal", "head", path_str(&journal)]);
        let report = String::from_utf8_lossy(&won[0].stdout);
        assert!(
            report.contains(head.stdout.trim()),
            "trial {trial}: the winner reported head {} of this journal:\n{report}",
            head.stdout.trim()
        );
    }
}

#[test]
fn journal_repair_cuts_a_torn_tail_journals_it_and_refuses_corruption() {
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("torn");
    backtest(&journal);
    let intact = kinds(&journal);
    cut_last_segment(&journal, 20);
    let torn = anx(&["journal", "verify", path_str(&journal)]);
    assert_ne!(torn.code, 0, "a torn tail is reported: {}", torn.stdout);
    assert!(torn.stdout.contains("journal repair"), "{}", torn.stdout);
    let repair = anx(&["journal", "repair", path_str(&journal)]);
    assert_eq!(repair.code, 0, "{}", repair.stderr);
    assert!(repair.stdout.starts_with("repaired "), "{}", repair.stdout);
    assert!(repair.stdout.contains("cut "), "{}", repair.stdout);
    let after = kinds(&journal);
    assert_eq!(
        after.len(),
        intact.len(),
        "the torn record out, the note in"
    );
    assert_eq!(after[..after.len() - 1], intact[..intact.len() - 1]);
    assert_eq!(after.last(), Some(&"Recovered"));
    assert_eq!(anx(&["journal", "verify", path_str(&journal)]).code, 0);
    // Nothing left to repair: nothing changes.
    let before = std::fs::read(segment(&journal)).unwrap();
    let again = anx(&["journal", "repair", path_str(&journal)]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.starts_with("nothing to repair"),
        "{}",
        again.stdout
    );
    assert_eq!(std::fs::read(segment(&journal)).unwrap(), before);
    // Mid-journal damage is corruption: refused, not one byte changed.
    let mut bytes = before.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(segment(&journal), &bytes).unwrap();
    let refused = anx(&["journal", "repair", path_str(&journal)]);
    refused.assert_one_line_error(1);
    assert!(refused.stderr.contains("corrupt"), "{}", refused.stderr);
    assert_eq!(std::fs::read(segment(&journal)).unwrap(), bytes);
}

#[test]
fn a_range_the_cache_does_not_cover_is_an_error_and_a_partial_one_a_warning() {
    let cache = shared_candles();
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("none");
    let run = anx(&btc_replay_args(
        path_str(&cache),
        path_str(&journal),
        ("2030-01-01", "2030-02-01"),
    ));
    run.assert_one_line_error(2);
    for part in ["BTC-USD", "2030-01-01", "2030-02-01", "2024-04-18"] {
        assert!(run.stderr.contains(part), "names {part}: {}", run.stderr);
    }
    assert!(!journal.exists(), "no journal for a run with no candles");
    // A cache file with a header and no rows.
    let empty = work.path().join("empty-cache");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(
        empty.join("COINBASE_BTC-USD_1h.csv"),
        "timestamp,unix,open,high,low,close,volume\n",
    )
    .unwrap();
    let run = anx(&btc_replay_args(
        path_str(&empty),
        path_str(&journal),
        ("2025-01-01", "2025-03-01"),
    ));
    run.assert_one_line_error(2);
    assert!(run.stderr.contains("holds no rows"), "{}", run.stderr);
    assert!(!journal.exists());
    // The cache ends on 2026-05-08: a range past it is covered in part.
    let mut args = btc_replay_args(
        path_str(&cache),
        path_str(&journal),
        ("2026-04-01", "2026-07-01"),
    );
    args.extend(["--report-format", "json"]);
    let run = anx(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning") && run.stderr.contains("covers only"),
        "{}",
        run.stderr
    );
    let doc = json(&run.stdout);
    let coverage = &doc["coverage"]["BTC-USD"];
    assert_eq!(coverage["data_from"], "2026-04-01T00:00:00.000Z");
    assert_eq!(coverage["data_to"], "2026-05-08T16:00:00.000Z");
    let fraction = coverage["fraction"].as_f64().unwrap();
    assert!((0.40..0.42).contains(&fraction), "{coverage}");
    // The full range is covered completely, without a warning.
    let journal = work.path().join("full");
    let run = anx(&btc_replay_args(
        path_str(&cache),
        path_str(&journal),
        ("2025-01-01", "2025-03-01"),
    ));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("covers only"), "{}", run.stderr);
    assert!(run.stdout.contains("(100.0 %)"), "{}", run.stdout);
}

#[test]
fn status_on_a_backtest_says_what_it_is() {
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("done");
    backtest(&journal);
    let status = anx(&["status", path_str(&journal), "--now", "2026-11-29"]);
    assert_eq!(status.code, 0, "{}\n{}", status.stdout, status.stderr);
    assert!(
        status.stdout.contains("a completed backtest"),
        "{}",
        status.stdout
    );
    assert!(!status.stdout.contains("NOT running"), "{}", status.stdout);
    // Ages read as days and hours, not raw seconds.
    assert!(status.stdout.contains(" d ago)"), "{}", status.stdout);
    assert!(!status.stdout.contains("s ago)"), "{}", status.stdout);
    let doc = json(&anx(&["status", path_str(&journal), "--json"]).stdout);
    assert_eq!(doc["journal_kind"], "replay_backtest_completed");
    assert_eq!(doc["healthy"], true);
    // A backtest cut short (no RunCompleted) is a problem worth exit 1.
    let mut reader = Reader::open(&journal).unwrap();
    let mut offsets = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        offsets.push(record.offset);
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(segment(&journal))
        .unwrap();
    file.set_len(offsets[offsets.len() / 2]).unwrap();
    let status = anx(&["status", path_str(&journal)]);
    assert_eq!(status.code, 1, "{}", status.stdout);
    assert!(
        status.stdout.contains("interrupted backtest"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("before it completed"),
        "{}",
        status.stdout
    );
}

#[test]
fn every_configuration_problem_is_listed_on_its_own_line() {
    let cache = shared_candles();
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("bad.toml");
    std::fs::write(
        &config,
        format!(
            "extends = \"{}\"\n[run]\ncapital_mode = \"both\"\ngranularity = 4\ncolour = \"red\"\n[risk]\nrisk_per_trade = 5\n[pacing]\nmax_trades_per_hour = 0\n",
            repo_root().join("config/default.toml").display()
        ),
    )
    .unwrap();
    let journal = work.path().join("j");
    let mut args = btc_replay_args(
        path_str(&cache),
        path_str(&journal),
        ("2025-01-01", "2025-03-01"),
    );
    args.extend(["--config", path_str(&config)]);
    let run = anx(&args);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    for (key, what) in [
        ("run.capital_mode", "unknown variant `both`"),
        ("run.granularity", "integer `4`"),
        ("run.colour", "unknown field `colour`"),
        ("risk.risk_per_trade", "integer `5`"),
        ("pacing.max_trades_per_hour", ">= 1"),
    ] {
        let on_its_line = lines.iter().filter(|l| l.contains(key)).collect::<Vec<_>>();
        assert_eq!(
            on_its_line.len(),
            1,
            "{key} on one line of its own: {lines:?}"
        );
        assert!(on_its_line[0].contains(what), "{key}: {what}: {lines:?}");
    }
    assert!(lines.iter().all(|l| l.starts_with("anx: ")), "{lines:?}");
    assert!(!journal.exists());
    // Symbols are product ids, nothing else.
    let mut args = btc_replay_args(
        path_str(&cache),
        path_str(&journal),
        ("2025-01-01", "2025-03-01"),
    );
    args[3] = "../../etc/passwd";
    let run = anx(&args);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("run.symbols") && run.stderr.contains("../../etc/passwd"),
        "{}",
        run.stderr
    );
    assert!(!journal.exists());
}

/// `anx` run as a user who may read the journal but not write to it: as root
/// (CI), through setpriv as `nobody`; otherwise with the write bits removed.
fn anx_read_only(dir: &Path, args: &[&str]) -> Run {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let chmod = |mode: &str| {
        let status = Command::new("chmod")
            .args(["-R", mode, path_str(dir)])
            .status()
            .unwrap();
        assert!(status.success());
    };
    chmod("a+rX,a-w");
    let output = if root {
        // The temp dirs above the journal must be passable for `nobody`.
        let mut parent = dir.parent();
        while let Some(p) = parent {
            if p == Path::new("/") {
                break;
            }
            let _ = Command::new("chmod").args(["o+x", path_str(p)]).status();
            parent = p.parent();
        }
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_anx"))
            .args(args)
            .current_dir("/")
            .env_remove("RUST_LOG")
            .output()
            .expect("setpriv")
    } else {
        Command::new(env!("CARGO_BIN_EXE_anx"))
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    chmod("u+w");
    Run {
        code: output.status.code().expect("exited"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[test]
fn readers_work_when_the_index_store_is_broken_or_cannot_be_written() {
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("store");
    backtest(&journal);
    let trade = {
        let mut reader = Reader::open(&journal).unwrap();
        let mut found = None;
        while let Some(stored) = reader.next_event().unwrap() {
            if let Event::TradeClosed(t) = stored.event {
                found = Some(t.trade_id);
                break;
            }
        }
        found.expect("the backtest trades")
    };
    let index = journal.join("index");
    let reset = |what: &str| {
        let _ = std::fs::remove_dir_all(&index);
        let _ = std::fs::remove_file(&index);
        if what == "file" {
            std::fs::write(&index, "not a store").unwrap();
        }
    };
    // A regular file where the store belongs: set aside, rebuilt, no failure.
    for args in [
        vec!["why", path_str(&journal), trade.as_str()],
        vec!["journal", "replay", path_str(&journal)],
        vec!["journal", "reindex", path_str(&journal)],
    ] {
        reset("file");
        for entry in std::fs::read_dir(&journal).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().contains("set-aside") {
                std::fs::remove_file(path).unwrap();
            }
        }
        let run = anx(&args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(index.is_dir(), "{args:?}: the store is rebuilt");
        assert_eq!(
            std::fs::read_to_string(journal.join("index.set-aside")).unwrap(),
            "not a store",
            "{args:?}: set aside, not deleted"
        );
    }
    // A read-only journal directory: readers work without the store, saying so once.
    for (store, args) in [
        ("file", vec!["why", path_str(&journal), trade.as_str()]),
        ("none", vec!["why", path_str(&journal), trade.as_str()]),
        ("none", vec!["journal", "replay", path_str(&journal)]),
    ] {
        reset(store);
        let before = std::fs::read_dir(&journal).unwrap().count();
        let run = anx_read_only(&journal, &args);
        assert_eq!(run.code, 0, "{store} {args:?}: {}", run.stderr);
        assert_eq!(
            run.stderr.matches("working without it").count(),
            1,
            "{store} {args:?}: said once: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("cannot remove"), "{}", run.stderr);
        assert!(
            run.stdout.contains(&trade) || args[0] == "journal",
            "{}",
            run.stdout
        );
        assert_eq!(std::fs::read_dir(&journal).unwrap().count(), before);
    }
}

#[test]
fn verbose_replay_logs_its_stages_without_colour() {
    let cache = shared_candles();
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("logged");
    let mut args = vec!["-v"];
    args.extend(btc_replay_args(
        path_str(&cache),
        path_str(&journal),
        ("2025-01-01", "2025-03-01"),
    ));
    let run = anx(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for stage in [
        "COINBASE_BTC-USD_1h.csv",
        "resampled to 4h",
        "data checked in",
        "journal",
        "replayed",
    ] {
        assert!(run.stderr.contains(stage), "logs {stage:?}: {}", run.stderr);
    }
    assert!(
        !run.stderr.contains('\u{1b}'),
        "no ANSI codes off a terminal"
    );
    // Without -v the same run logs nothing.
    let quiet = anx(&btc_replay_args(
        path_str(&cache),
        path_str(&work.path().join("quiet")),
        ("2025-01-01", "2025-03-01"),
    ));
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert_eq!(quiet.stderr, "", "nothing on stderr by default");
}
