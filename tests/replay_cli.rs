//! End-to-end tests of `anx journal replay`, `anx why` and `anx journal reindex`
//! on the committed trading fixture journal (every engine state transition and
//! every exit reason), run as the real binary.

mod common;

use anx_journal::sample::GOLDEN_META;
use anx_journal::{Durability, JournalMeta, OpenCheck, Writer, WriterOptions};
use anx_projections::testkit::fixture_events;
use common::*;
use serde_json::Value;
use std::path::Path;

const FIXTURE: &str = "tests/fixtures/trading-v1";

/// The fixture journal's identity.
const FIXTURE_META: JournalMeta = JournalMeta {
    journal_id: *b"anx-trading-fix1",
    created_ms: GOLDEN_META.created_ms,
};

/// The trading fixture is a schema-1 journal (as builds before schema 2 wrote
/// it), and stays one: every later build must read it alike.
fn write_fixture(dir: &Path) {
    let options = WriterOptions {
        durability: Durability::OnClose,
        open_check: OpenCheck::FullChain,
        schema: 1,
        ..WriterOptions::default()
    };
    let mut writer = Writer::create(dir, FIXTURE_META, options).unwrap();
    for (ms, event) in fixture_events() {
        writer.append(ms, &event).unwrap();
    }
    writer.close().unwrap();
}

/// A private copy of the fixture (replay writes the derived index beside it).
fn fixture_copy() -> tempfile::TempDir {
    copy_of(&repo_root().join(FIXTURE))
}

#[test]
fn committed_fixture_is_what_the_testkit_builds() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(dir.path());
    let segment = "seg-00000000000000000001.anxj";
    let built = std::fs::read(dir.path().join(segment)).unwrap();
    let committed_path = repo_root().join(FIXTURE).join(segment);
    if std::env::var_os("ANX_WRITE_GOLDEN").is_some() {
        std::fs::create_dir_all(repo_root().join(FIXTURE)).unwrap();
        std::fs::write(&committed_path, &built).unwrap();
    }
    let committed = std::fs::read(&committed_path).expect("committed trading fixture");
    assert!(
        built == committed,
        "the trading fixture changed; regenerate it deliberately with ANX_WRITE_GOLDEN=1"
    );
}

/// Drops what legitimately differs between runs: how long the fold took.
fn without_timing(mut value: Value) -> Value {
    value["fold"]["elapsed_ms"] = Value::Null;
    value
}

fn table_without_timing(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("fold ") {
                line.split(" in ").next().unwrap_or(line)
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn replay_prints_state_report_and_audit() {
    let copy = fixture_copy();
    let dir = path_str(copy.path());
    let run = anx(&[
        "journal",
        "replay",
        dir,
        "--no-snapshot",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = without_timing(json(&run.stdout));
    for key in [
        "state_hash",
        "head_seq",
        "engine",
        "positions",
        "trades",
        "report",
        "audit_coverage",
        "data_quality",
        "runs",
    ] {
        assert!(out.get(key).is_some(), "missing key {key}");
    }
    for key in REPORT_METRICS {
        assert!(out["report"].get(key).is_some(), "report lacks {key}");
    }
    assert_eq!(out["report"]["trades_closed"], 6);
    assert_eq!(out["audit_coverage"]["trades"], 6);
    assert_eq!(out["audit_coverage"]["complete"], 6);
    assert_eq!(out["engine"]["BTC-USD"]["state"], "IDLE");
    insta::assert_snapshot!(
        "replay_fixture_json",
        serde_json::to_string_pretty(&out).unwrap()
    );
    let table = anx(&["journal", "replay", dir, "--no-snapshot"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    insta::assert_snapshot!("replay_fixture_table", table_without_timing(&table.stdout));
}

#[test]
fn snapshot_path_prints_the_same_state_as_the_full_fold() {
    let copy = fixture_copy();
    let dir = path_str(copy.path());
    let full = without_timing(json(
        &anx(&[
            "journal",
            "replay",
            dir,
            "--no-snapshot",
            "--format",
            "json",
        ])
        .stdout,
    ));
    let first = json(&anx(&["journal", "replay", dir, "--format", "json"]).stdout);
    assert_eq!(
        first["fold"]["from_snapshot"],
        Value::Null,
        "no snapshot exists yet"
    );
    let second = json(&anx(&["journal", "replay", dir, "--format", "json"]).stdout);
    assert_eq!(
        second["fold"]["from_snapshot"], full["head_seq"],
        "the second replay starts from the snapshot"
    );
    assert_eq!(second["fold"]["events"], 0);
    let mut a = without_timing(first);
    let mut b = without_timing(second);
    for v in [&mut a, &mut b] {
        v["fold"] = Value::Null;
    }
    let mut f = full.clone();
    f["fold"] = Value::Null;
    assert_eq!(a, f);
    assert_eq!(b, f);
}

#[test]
fn to_seq_stops_early_and_checkpoints_are_verified() {
    let copy = fixture_copy();
    let dir = path_str(copy.path());
    let full = json(
        &anx(&[
            "journal",
            "replay",
            dir,
            "--no-snapshot",
            "--format",
            "json",
        ])
        .stdout,
    );
    assert_eq!(full["fold"]["checkpoints_verified"], 2);
    let early = json(
        &anx(&[
            "journal", "replay", dir, "--to-seq", "60", "--format", "json",
        ])
        .stdout,
    );
    assert_eq!(early["head_seq"], 60);
    assert_ne!(early["state_hash"], full["state_hash"]);
    let again = json(
        &anx(&[
            "journal",
            "replay",
            dir,
            "--to-seq",
            "60",
            "--no-snapshot",
            "--format",
            "json",
        ])
        .stdout,
    );
    assert_eq!(early["state_hash"], again["state_hash"]);
}

#[test]
fn a_tampered_checkpoint_fails_loudly_naming_the_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = fixture_events();
    let last = events.len() - 1;
    if let anx_journal::Event::Checkpoint(c) = &mut events[last].1 {
        c.state_hash.0[0] ^= 1;
    } else {
        panic!("the fixture ends with a checkpoint");
    }
    write_events(dir.path(), &events);
    let run = anx(&["journal", "replay", path_str(dir.path()), "--no-snapshot"]);
    run.assert_one_line_error(2);
    assert!(
        run.stderr.contains(&format!("seq {}", events.len())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("checkpoint_mismatch"), "{}", run.stderr);
}

#[test]
fn why_prints_the_causal_trail_of_a_trade() {
    let copy = fixture_copy();
    let dir = path_str(copy.path());
    let state = json(&anx(&["journal", "replay", dir, "--format", "json"]).stdout);
    assert_eq!(state["trades"], 6);
    let export: Vec<Value> = anx(&["journal", "export", dir])
        .stdout
        .lines()
        .map(json)
        .collect();
    let trade_ids: Vec<String> = export
        .iter()
        .filter(|e| e["kind"] == "TradeClosed")
        .map(|e| e["body"]["trade_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(trade_ids.len(), 6);
    // The signal exit: entry and exit orders, decision, candle, fills, close.
    let signal = &trade_ids[2];
    let run = anx(&["why", dir, signal]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!(
        "why_signal_trade",
        run.stdout
            .lines()
            .filter(|l| !l.starts_with("lookup took"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let out = json(&anx(&["why", dir, signal, "--json"]).stdout);
    let kinds: Vec<&str> = out["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "Candle",
        "Decision",
        "OrderPlaced",
        "OrderAcknowledged",
        "BracketVerified",
        "Fill",
        "TradeClosed",
    ] {
        assert!(kinds.contains(&kind), "trail lacks {kind}: {kinds:?}");
    }
    assert_eq!(
        kinds.iter().filter(|k| **k == "OrderPlaced").count(),
        2,
        "entry and exit orders"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "Decision").count(),
        2,
        "entry and exit decisions"
    );
    // The same trail is found by the entry's client order id and exchange order id.
    let coid = out["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "OrderPlaced")
        .unwrap()["body"]["client_order_id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_coid = json(&anx(&["why", dir, &coid, "--json"]).stdout);
    assert_eq!(by_coid["kind"], "client_order_id");
    assert_eq!(by_coid["events"], out["events"]);
    let by_order_id = json(&anx(&["why", dir, &format!("x-{coid}"), "--json"]).stdout);
    assert_eq!(by_order_id["kind"], "order_id");
    assert_eq!(by_order_id["events"], out["events"]);
    // A cancelled entry's trail ends with its cancellation.
    let cancelled = export
        .iter()
        .find(|e| e["kind"] == "OrderCancelled")
        .unwrap()["body"]["client_order_id"]
        .as_str()
        .unwrap()
        .to_string();
    let trail = json(&anx(&["why", dir, &cancelled, "--json"]).stdout);
    assert_eq!(
        trail["events"].as_array().unwrap().last().unwrap()["kind"],
        "OrderCancelled"
    );
    anx(&["why", dir, "no-such-id"]).assert_one_line_error(2);
}

#[test]
fn a_stale_or_corrupt_index_is_rebuilt_not_trusted() {
    let copy = fixture_copy();
    let dir = path_str(copy.path());
    let reference = without_timing(json(
        &anx(&[
            "journal",
            "replay",
            dir,
            "--no-snapshot",
            "--format",
            "json",
        ])
        .stdout,
    ));
    assert_eq!(anx(&["journal", "replay", dir]).code, 0);
    // Garbage in the sled directory: rebuilt with a warning.
    let index = copy.path().join("index");
    for entry in std::fs::read_dir(&index).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, b"garbage").unwrap();
        }
    }
    let run = anx(&["journal", "replay", dir, "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut out = without_timing(json(&run.stdout));
    out["fold"] = reference["fold"].clone();
    assert_eq!(out, reference);
    // Removing the store is always safe; reindex rebuilds it on demand.
    std::fs::remove_dir_all(&index).unwrap();
    let run = anx(&["journal", "reindex", dir]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("reindexed "), "{}", run.stdout);
    let run = anx(&["journal", "replay", dir, "--format", "json"]);
    let out = json(&run.stdout);
    assert_eq!(out["fold"]["from_snapshot"], reference["head_seq"]);
    assert_eq!(out["state_hash"], reference["state_hash"]);
}

/// Writes `events` to a new journal with the fixture's identity.
fn write_events(dir: &Path, events: &[(i64, anx_journal::Event)]) {
    let mut writer = Writer::create(dir, FIXTURE_META, WriterOptions::default()).unwrap();
    for (ms, event) in events {
        writer.append(*ms, event).unwrap();
    }
    writer.close().unwrap();
}

#[test]
fn a_snapshot_behind_the_head_folds_only_the_tail() {
    let events = fixture_events();
    let dir = tempfile::tempdir().unwrap();
    let cut = 60;
    write_events(dir.path(), &events[..cut]);
    let path = path_str(dir.path());
    let first = json(&anx(&["journal", "replay", path, "--format", "json"]).stdout);
    assert_eq!(first["head_seq"], cut as u64);
    // The journal grows after the snapshot was taken.
    let mut writer = Writer::open(dir.path(), WriterOptions::default()).unwrap();
    for (ms, event) in &events[cut..] {
        writer.append(*ms, event).unwrap();
    }
    writer.close().unwrap();
    let resumed = json(&anx(&["journal", "replay", path, "--format", "json"]).stdout);
    assert_eq!(resumed["fold"]["from_snapshot"], cut as u64);
    assert_eq!(resumed["fold"]["events"], (events.len() - cut) as u64);
    let full = json(
        &anx(&[
            "journal",
            "replay",
            path,
            "--no-snapshot",
            "--format",
            "json",
        ])
        .stdout,
    );
    assert_eq!(resumed["state_hash"], full["state_hash"]);
    assert_eq!(
        without_timing(resumed)["report"],
        without_timing(full)["report"]
    );
}

#[test]
fn a_snapshot_of_another_history_is_never_trusted() {
    let events = fixture_events();
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), &events);
    let path = path_str(dir.path());
    assert_eq!(anx(&["journal", "replay", path]).code, 0);
    let index = dir.path().join("index");
    // The journal is replaced by a shorter history with the same identity; the
    // old index (snapshot at the old head) stays behind.
    let keep = tempfile::tempdir().unwrap();
    std::fs::rename(&index, keep.path().join("index")).unwrap();
    std::fs::remove_dir_all(dir.path()).unwrap();
    write_events(dir.path(), &events[..40]);
    std::fs::rename(keep.path().join("index"), &index).unwrap();
    let run = anx(&["journal", "replay", path, "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning"),
        "a stale store must be reported: {}",
        run.stderr
    );
    let out = json(&run.stdout);
    assert_eq!(out["head_seq"], 40);
    assert_eq!(out["fold"]["from_snapshot"], Value::Null);
    let full = json(
        &anx(&[
            "journal",
            "replay",
            path,
            "--no-snapshot",
            "--format",
            "json",
        ])
        .stdout,
    );
    assert_eq!(out["state_hash"], full["state_hash"]);
}
