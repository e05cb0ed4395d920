//! Schema 2 end to end, through the real binary: a backtest journaled at
//! schema 2 is the schema-1 run (`tests/fixtures/v1-replay`, the same
//! backtest written by the last schema-1 build) in a fraction of the bytes,
//! and every glass box it keeps only as a digest comes back, recomputed and
//! proven, as the schema-1 journal stored it. A digest that does not match –
//! tampered, or from a build that decides otherwise – is reported, naming the
//! seq, and nothing is shown.

mod common;

use anx_journal::{Event, Glass, Reader, Writer, WriterOptions};
use common::*;
use serde_json::Value;
use std::path::Path;

const V1: &str = "tests/fixtures/v1-replay";
const V1_STATE_HASH: &str = "4fa461c2b2cbd910b70c26472cacd06525ee710ddfffb320b010e9d967d7f045";

/// The fixture's backtest, run by this build.
fn backtest(journal: &Path) {
    let cache = shared_candles();
    let mut args = btc_replay_args(
        path_str(&cache),
        path_str(journal),
        ("2024-05-01", "2024-07-01"),
    );
    args.extend([
        "--capital-mode",
        "independent",
        "--starting-capital",
        "500",
        "--run-mode",
        "replay_backtest",
    ]);
    let run = anx(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

fn export(journal: &Path) -> Vec<Value> {
    let run = anx(&["journal", "export", path_str(journal)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout.lines().map(json).collect()
}

fn segment_bytes(journal: &Path) -> u64 {
    anx_journal::list_segments(journal)
        .unwrap()
        .iter()
        .map(|s| std::fs::metadata(&s.path).unwrap().len())
        .sum()
}

#[test]
fn a_schema_2_backtest_is_the_schema_1_run_in_under_a_third_of_the_bytes() {
    let work = tempfile::tempdir().unwrap();
    let v2 = work.path().join("v2");
    backtest(&v2);
    let v1 = copy_of(&repo_root().join(V1));
    // The same run: the same events, state and report.
    let replay = |dir: &Path| {
        let run = anx(&["journal", "replay", path_str(dir), "--json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        json(&run.stdout)
    };
    let (a, b) = (replay(v1.path()), replay(&v2));
    assert_eq!(a["state_hash"], V1_STATE_HASH);
    // The state hash covers the run's row too, whose git_sha is the build's.
    for part in [
        "report",
        "head_seq",
        "positions",
        "trades",
        "cash",
        "engine",
        "audit_coverage",
        "data_quality",
    ] {
        assert_eq!(a[part], b[part], "{part}");
    }
    let (old, new) = (export(v1.path()), export(&v2));
    assert_eq!(old.len(), new.len());
    for (o, n) in old.iter().zip(&new) {
        assert_eq!(o["kind"], n["kind"], "seq {}", o["seq"]);
        if o["kind"] == "RunStarted" || o["kind"] == "Checkpoint" {
            // The run's git_sha (in the state hash too) is the build's.
            let mut ours = n["body"].clone();
            for key in ["git_sha", "state_hash"] {
                if let Some(theirs) = o["body"].get(key) {
                    ours[key] = theirs.clone();
                }
            }
            assert_eq!(o["body"], ours, "seq {}", o["seq"]);
        } else if o["kind"] != "Decision" {
            assert_eq!(o["body"], n["body"], "seq {}", o["seq"]);
        }
    }
    let (old_bytes, new_bytes) = (segment_bytes(v1.path()), segment_bytes(&v2));
    assert!(
        new_bytes * 3 < old_bytes,
        "schema 2: {new_bytes} bytes, schema 1: {old_bytes}"
    );
    // Every decision: its outcome and sizing as schema 1 stored them, and its
    // glass box – inline, or recomputed and proven – the one schema 1 stored.
    let mut recomputed = 0;
    for (o, n) in old.iter().zip(&new) {
        if o["kind"] != "Decision" {
            continue;
        }
        let (ob, nb) = (&o["body"], &n["body"]);
        assert_eq!(ob["outcome"], nb["outcome"]);
        assert_eq!(ob["sizing"], nb["sizing"]);
        let glass = if nb.get("glass_digest").is_some() {
            recomputed += 1;
            let seq = n["seq"].to_string();
            let run = anx(&["why", path_str(&v2), "--decision", &seq, "--json"]);
            assert_eq!(run.code, 0, "seq {seq}: {}", run.stderr);
            let out = json(&run.stdout);
            assert_eq!(out["glass_source"], "recomputed");
            assert_eq!(out["glass_digest"], nb["glass_digest"]);
            out["decision"].clone()
        } else {
            nb.clone()
        };
        for field in ["regime", "indicators", "signals", "risk_checks"] {
            assert_eq!(ob[field], glass[field], "seq {}: {field}", n["seq"]);
        }
    }
    assert!(recomputed > 300, "{recomputed} glass boxes recomputed");

    // The report says why the other candles did not trade: every decision
    // without an order counted once, a rejection under its own code.
    let no_order = &b["report"]["no_order"]["by_reason"];
    let decisions: Vec<&Value> = new.iter().filter(|e| e["kind"] == "Decision").collect();
    let led_to_order = decisions
        .iter()
        .filter(|e| e["body"]["outcome"] == "enter" || e["body"]["outcome"].get("exit").is_some())
        .count() as u64;
    let counted: u64 = no_order
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(counted + led_to_order, decisions.len() as u64, "{no_order}");
    for code in ["regime_blocked", "rr_after_costs"] {
        let rejected = decisions
            .iter()
            .filter(|e| e["body"]["outcome"]["rejected"]["reason_code"] == code)
            .count() as u64;
        assert!(rejected > 0, "{code}");
        assert_eq!(no_order[code], rejected, "{code}");
    }
    assert!(no_order["no_signal"].as_u64().unwrap() > 100, "{no_order}");
    assert!(
        no_order["position_open"].as_u64().unwrap() > 0,
        "{no_order}"
    );
}

/// Rewrites `from` into `to` (a consistent chain, the same identity),
/// changing each event with `edit`.
fn rewrite(from: &Path, to: &Path, edit: impl Fn(u64, &mut Event)) {
    let mut reader = Reader::open(from).unwrap();
    let mut events = Vec::new();
    while let Some(stored) = reader.next_event().unwrap() {
        events.push(stored);
    }
    let meta = reader.meta().unwrap();
    let mut writer = Writer::create(to, meta, WriterOptions::default()).unwrap();
    for mut stored in events {
        edit(stored.seq, &mut stored.event);
        writer.append(stored.market_ms, &stored.event).unwrap();
    }
    writer.close().unwrap();
}

/// The seqs of the decisions whose glass box the journal keeps as a digest.
fn committed(journal: &Path) -> Vec<u64> {
    export(journal)
        .iter()
        .filter(|e| e["kind"] == "Decision" && e["body"].get("glass_digest").is_some())
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_digest_that_does_not_match_is_reported_at_its_seq_and_nothing_is_shown() {
    let work = tempfile::tempdir().unwrap();
    let v2 = work.path().join("v2");
    backtest(&v2);
    let target = committed(&v2)[0];
    let tampered = work.path().join("tampered");
    rewrite(&v2, &tampered, |seq, event| {
        if let (true, Event::Decision(d)) = (seq == target, event) {
            if let Glass::Committed { digest, .. } = &mut d.glass {
                digest.0[31] ^= 0x01;
            }
        }
    });
    // A consistent chain: the verifier alone cannot tell.
    assert_eq!(anx(&["journal", "verify", path_str(&tampered)]).code, 0);
    let seq = target.to_string();
    let run = anx(&["why", path_str(&tampered), "--decision", &seq]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "nothing shown: {}", run.stdout);
    assert!(
        run.stderr
            .contains(&format!("seq {target}: this build's glass box"))
            && run.stderr.contains("does not hash to the digest"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    // The untouched journal's decision is proven.
    let run = anx(&["why", path_str(&v2), "--decision", &seq]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("and proven"), "{}", run.stdout);

    // A byte flipped in place (no re-chaining) is the chain's to catch, at its seq.
    let flipped = tempfile::tempdir().unwrap();
    let original = &anx_journal::list_segments(&v2).unwrap()[0].path;
    let segment = flipped.path().join(original.file_name().unwrap());
    let mut bytes = std::fs::read(original).unwrap();
    let offset = record_offset(&v2, target) + 16 + 12; // the body's first byte
    bytes[offset] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let run = anx(&["why", path_str(flipped.path()), "--decision", &seq]);
    assert_ne!(run.code, 0);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!("seq {target}")),
        "{}",
        run.stderr
    );
}

fn record_offset(journal: &Path, seq: u64) -> usize {
    let mut reader = Reader::open(journal).unwrap();
    while let Some(record) = reader.next_record().unwrap() {
        if record.seq == seq {
            return record.offset as usize;
        }
    }
    panic!("no seq {seq}")
}

#[test]
fn a_build_that_decides_otherwise_is_reported_at_the_first_decision_it_changes() {
    let work = tempfile::tempdir().unwrap();
    let v2 = work.path().join("v2");
    backtest(&v2);
    // What another build of the engine would do: decide on other rules (here,
    // a configuration whose regime filter differs, written into the run).
    let other = work.path().join("other");
    rewrite(&v2, &other, |_, event| {
        if let Event::RunStarted(run) = event {
            assert!(
                run.config_text.contains("slope_bars"),
                "{}",
                run.config_text
            );
            run.config_text = run
                .config_text
                .replacen("slope_bars = ", "slope_bars = 1", 1);
        }
    });
    let last = *committed(&other).last().unwrap();
    let run = anx(&["why", path_str(&other), "--decision", &last.to_string()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("this build does not reproduce the journal"),
        "{}",
        run.stderr
    );
    // At the first decision the other rules change, not at the one asked for.
    let at: u64 = run.stderr["anx: seq ".len()..]
        .split(':')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a seq first: {}", run.stderr));
    assert!(at < last, "{}", run.stderr);
    assert!(!run.stderr.contains("does not hash"), "{}", run.stderr);
}

#[test]
fn a_decision_before_a_torn_tail_is_recomputed() {
    let work = tempfile::tempdir().unwrap();
    let v2 = work.path().join("v2");
    backtest(&v2);
    let last = *committed(&v2).last().unwrap();
    // A crash in the middle of an append: half a record at the end.
    let segment = &anx_journal::list_segments(&v2).unwrap()[0].path;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(segment)
        .unwrap();
    std::io::Write::write_all(&mut file, &[0x2a; 30]).unwrap();
    drop(file);
    assert_eq!(anx(&["journal", "verify", path_str(&v2)]).code, 3);
    let run = anx(&["why", path_str(&v2), "--decision", &last.to_string()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("and proven"), "{}", run.stdout);
}

#[test]
fn a_schema_1_decision_is_shown_as_journaled() {
    let v1 = copy_of(&repo_root().join(V1));
    let run = anx(&["why", path_str(v1.path()), "--decision", "115"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("glass box journaled whole (schema 1)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("risk regime_blocked FAIL"),
        "{}",
        run.stdout
    );
    let run = anx(&["why", path_str(v1.path()), "--decision", "114"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("seq 114 is a Candle, not a Decision"),
        "{}",
        run.stderr
    );
    let run = anx(&["why", path_str(v1.path()), "--decision", "99999"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("seq 99999 is not in the journal"),
        "{}",
        run.stderr
    );
}
