//! A journal written by the schema-1 build (`tests/fixtures/v1-replay`: a
//! backtest of BTC-USD 4h, May–June 2024, three trades) must stay readable by
//! every later build: `verify`, `journal replay`, `why`, `export` and `status`
//! give what the build that wrote it gave. The snapshots were taken with that
//! build (commit da4af63), before schema 2 existed; they change only on purpose.

mod common;

use common::*;
use serde_json::Value;

const FIXTURE: &str = "tests/fixtures/v1-replay";
const HEAD: &str = "767:6a4931b02a7061d82d938daae430a67f6591e610b55943e6e995a4efca0ac122";
const TRADES: [&str; 3] = [
    "T-BTCUSD-20240521T0400",
    "T-BTCUSD-20240525T1200",
    "T-BTCUSD-20240604T2000",
];

/// A scratch copy: `why` builds its index beside the segments.
fn fixture() -> tempfile::TempDir {
    copy_of(&repo_root().join(FIXTURE))
}

#[test]
fn verify_and_head_are_unchanged() {
    let dir = fixture();
    let run = anx(&["journal", "verify", path_str(dir.path())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(HEAD), "{}", run.stdout);
    let head = anx(&["journal", "head", path_str(dir.path())]);
    assert_eq!(head.stdout.trim(), HEAD);
}

#[test]
fn replay_gives_the_same_state_and_report() {
    let dir = fixture();
    let run = anx(&["journal", "replay", path_str(dir.path())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The fold's own timing is the one line that differs run to run.
    let text: String = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with("fold "))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::assert_snapshot!("v1_replay", text);
    let run = anx(&["journal", "replay", path_str(dir.path()), "--json"]);
    let mut out = json(&run.stdout);
    out.as_object_mut().unwrap().remove("fold_ms");
    insta::assert_json_snapshot!("v1_replay_json", out["report"]);
    assert_eq!(
        out["state_hash"],
        "4fa461c2b2cbd910b70c26472cacd06525ee710ddfffb320b010e9d967d7f045"
    );
}

#[test]
fn why_shows_each_trade_as_journaled() {
    let dir = fixture();
    for (i, trade) in TRADES.iter().enumerate() {
        let run = anx(&["why", path_str(dir.path()), trade]);
        assert_eq!(run.code, 0, "{trade}: {}", run.stderr);
        // The lookup's own timing is the one line that differs run to run.
        let text: String = run
            .stdout
            .lines()
            .filter(|l| !l.starts_with("lookup took "))
            .map(|l| format!("{l}\n"))
            .collect();
        insta::assert_snapshot!(format!("v1_why_{i}"), text);
    }
}

#[test]
fn export_is_unchanged() {
    let dir = fixture();
    let run = anx(&["journal", "export", path_str(dir.path())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 767);
    // Every line at once (the whole export is too long for a snapshot) …
    let digest = blake3::hash(run.stdout.as_bytes()).to_hex().to_string();
    assert_eq!(
        digest,
        "79ed7f7c49a98afd4ba2a85063b322bfe464d76e6631bcad39aa20b5afdc3ee2",
        "the v1 export changed; the decisions of the trades:\n{}",
        trade_decisions(&lines).join("\n")
    );
    // … and, readable, the decisions that led to orders.
    insta::assert_snapshot!(
        "v1_export_trade_decisions",
        trade_decisions(&lines).join("\n")
    );
}

/// The export lines of the decisions that entered or exited.
fn trade_decisions<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    lines
        .iter()
        .copied()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            v["kind"] == "Decision" && v["body"]["outcome"] != "hold" && {
                let o = &v["body"]["outcome"];
                o.get("rejected").is_none()
            }
        })
        .collect()
}

#[test]
fn status_reads_the_completed_backtest() {
    let dir = fixture();
    let run = anx(&["status", path_str(dir.path()), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = json(&run.stdout);
    let head = format!(
        "{}:{}",
        out["head_seq"],
        out["head_hash"].as_str().unwrap_or("")
    );
    assert_eq!(head, HEAD, "{out}");
    assert_eq!(out["healthy"], true, "{out}");
    assert_eq!(out["journal_kind"], "replay_backtest_completed", "{out}");
    assert_eq!(out["symbols"]["BTC-USD"]["state"], "IDLE", "{out}");
    assert_eq!(out["equity"].as_f64(), Some(493.9248455487), "{out}");
}
