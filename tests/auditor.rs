//! The independent auditor's verifier (`tools/auditor/anx_verify.py`, written from
//! `journal/FORMAT.md` alone) must agree with `anx journal verify` on intact,
//! multi-segment and damaged journals. Needs `python3` on PATH.

mod common;

use anx_journal::sample::{golden_events, GOLDEN_META};
use anx_journal::{Durability, OpenCheck, Writer, WriterOptions};
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn auditor(dir: &Path, extra: &[&str]) -> (i32, Value) {
    let output = Command::new("python3")
        .arg(repo_root().join("tools/auditor/anx_verify.py"))
        .arg(dir)
        .arg("--json")
        .args(extra)
        .output()
        .expect("python3 must be installed to run the auditor's verifier");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let last = stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "no output; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (
        output.status.code().unwrap(),
        serde_json::from_str(last).unwrap(),
    )
}

fn anx_verify(dir: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["journal", "verify", path_str(dir), "--json"];
    args.extend_from_slice(extra);
    let run = anx(&args);
    (run.code, serde_json::from_str(&run.stdout).unwrap())
}

fn assert_agree(dir: &Path) {
    assert_agree_with(dir, &[]);
}

/// Both verifiers, given the same extra arguments (`--expect-head …`), exit
/// alike and report the same verdict, position and torn-tail flag.
fn assert_agree_with(dir: &Path, extra: &[&str]) -> Value {
    let (code_a, a) = auditor(dir, extra);
    let (code_b, b) = anx_verify(dir, extra);
    assert_eq!(code_a, code_b, "{extra:?}: auditor {a}\nanx {b}");
    let keys: &[&str] = if a["ok"] == true {
        &["ok", "verdict", "events", "head_seq", "head_hash"]
    } else {
        &[
            "ok",
            "verdict",
            "first_bad_seq",
            "segment",
            "offset",
            "torn_tail",
        ]
    };
    for key in keys {
        assert_eq!(
            a.get(key),
            b.get(key),
            "{key} {extra:?}: auditor {a}\nanx {b}"
        );
    }
    b
}

#[test]
fn auditor_agrees_on_the_golden_journal_and_decodes_it() {
    assert_agree(&golden_dir());
    assert_decoders_agree(&golden_dir());
}

/// Schema 2 (FORMAT.md §6a): the golden events at schema 2, a real backtest
/// written by this build (holds and rejections committed by digest, entries
/// and exits inline), and the schema-1 backtest fixture it replaces.
#[test]
fn auditor_decodes_schema_2_and_the_schema_1_fixture_like_anx() {
    let golden_v2 = repo_root().join("journal/tests/fixtures/golden-v2");
    assert_agree(&golden_v2);
    assert_decoders_agree(&golden_v2);
    let v1 = copy_of(&repo_root().join("tests/fixtures/v1-replay"));
    assert_agree(v1.path());
    assert_decoders_agree(v1.path());
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("v2");
    btc_backtest(&journal, ("2024-05-01", "2024-07-01"));
    assert_agree(&journal);
    let decoded = assert_decoders_agree(&journal);
    let committed = decoded
        .iter()
        .filter(|e| e["kind"] == "Decision" && e["body"].get("glass_digest").is_some())
        .count();
    let inline = decoded
        .iter()
        .filter(|e| e["kind"] == "Decision" && e["body"].get("regime").is_some())
        .count();
    assert!(
        committed > 300 && inline > 3,
        "{committed} committed, {inline} inline"
    );
}

/// The auditor's `--decode` and `anx journal export` give the same events;
/// returns them.
fn assert_decoders_agree(dir: &Path) -> Vec<Value> {
    let output = Command::new("python3")
        .arg(repo_root().join("tools/auditor/anx_verify.py"))
        .arg(dir)
        .arg("--decode")
        .output()
        .expect("python3");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let python: Vec<Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ours: Vec<Value> = anx(&["journal", "export", path_str(dir)])
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(python.len(), ours.len());
    for (p, o) in python.iter().zip(&ours) {
        assert_eq!(p["seq"], o["seq"]);
        assert_eq!(p["kind"], o["kind"]);
        assert_eq!(p["market_ms"], o["market_ms"]);
        assert_eq!(
            p["body"], o["body"],
            "seq {}: the two decoders disagree",
            o["seq"]
        );
    }
    ours
}

#[test]
fn auditor_agrees_on_multi_segment_and_damaged_journals() {
    let dir = tempfile::tempdir().unwrap();
    let options = WriterOptions {
        durability: Durability::OnClose,
        segment_bytes_max: 900,
        open_check: OpenCheck::FullChain,
        ..WriterOptions::default()
    };
    let mut writer = Writer::create(dir.path(), GOLDEN_META, options).unwrap();
    for (ms, event) in golden_events().into_iter().chain(golden_events()) {
        writer.append(ms, &event).unwrap();
    }
    writer.close().unwrap();
    assert!(anx_journal::list_segments(dir.path()).unwrap().len() > 3);
    assert_agree(dir.path());

    let segments = anx_journal::list_segments(dir.path()).unwrap();
    let original: Vec<Vec<u8>> = segments
        .iter()
        .map(|s| std::fs::read(&s.path).unwrap())
        .collect();
    // A flipped byte in a middle segment, a torn last segment, a missing segment.
    let middle = segments.len() / 2;
    let mut flipped = original[middle].clone();
    flipped[300] ^= 0x80;
    std::fs::write(&segments[middle].path, &flipped).unwrap();
    assert_agree(dir.path());
    std::fs::write(&segments[middle].path, &original[middle]).unwrap();

    let last = segments.len() - 1;
    std::fs::write(
        &segments[last].path,
        &original[last][..original[last].len() - 7],
    )
    .unwrap();
    assert_agree(dir.path());
    std::fs::write(&segments[last].path, &original[last]).unwrap();

    std::fs::remove_file(&segments[1].path).unwrap();
    assert_agree(dir.path());
}

#[test]
fn auditor_agrees_on_expected_heads_torn_tails_and_the_seq_it_expected() {
    let dir = copy_of(&golden_dir());
    let journal = anx_journal::verify(dir.path(), None).unwrap();
    let genesis = GOLDEN_META.genesis().to_hex();
    let zeros = "0".repeat(64);
    let other = anx_journal::JournalMeta {
        journal_id: [9; 16],
        ..GOLDEN_META
    }
    .genesis()
    .to_hex();
    let seq_3 = {
        let mut reader = anx_journal::Reader::open(dir.path()).unwrap();
        (0..3)
            .map(|_| reader.next_record().unwrap().unwrap().hash)
            .last()
            .unwrap()
    };
    let full = journal.head.to_string();
    let cases = [
        (format!("0:{genesis}"), 0, "ok"),
        (format!("0:{zeros}"), 1, "corrupt"),
        (format!("0:{other}"), 1, "corrupt"),
        (format!("3:{seq_3}"), 0, "ok"),
        (format!("3:{zeros}"), 1, "corrupt"),
        (full.clone(), 0, "ok"),
        (format!("99:{zeros}"), 1, "corrupt"),
    ];
    for (head, code, verdict) in &cases {
        let out = assert_agree_with(dir.path(), &["--expect-head", head]);
        assert_eq!(out["verdict"], *verdict, "{head}: {out}");
        assert_eq!(
            anx_verify(dir.path(), &["--expect-head", head]).0,
            *code,
            "{head}"
        );
    }
    let out = assert_agree_with(dir.path(), &["--expect-head", &format!("0:{zeros}")]);
    assert_eq!(out["first_bad_seq"], 0);
    let out = assert_agree_with(dir.path(), &["--expect-head", &format!("99:{zeros}")]);
    assert_eq!(
        (out["first_bad_seq"].as_u64(), out["offset"].as_u64()),
        (Some(journal.head.seq + 1), Some(0)),
        "the first seq past the head"
    );

    // A torn tail: exit 3 and verdict torn_tail from both, unless the
    // expected head covers the torn record.
    let segment = dir.path().join("seg-00000000000000000001.anxj");
    let bytes = std::fs::read(&segment).unwrap();
    std::fs::write(&segment, &bytes[..bytes.len() - 10]).unwrap();
    assert_eq!(assert_agree_with(dir.path(), &[])["verdict"], "torn_tail");
    assert_eq!(anx_verify(dir.path(), &[]).0, 3);
    let early = assert_agree_with(dir.path(), &["--expect-head", &format!("3:{seq_3}")]);
    assert_eq!(early["verdict"], "torn_tail");
    let covered = assert_agree_with(dir.path(), &["--expect-head", &full]);
    assert_eq!(covered["verdict"], "corrupt");
    assert_eq!(covered["torn_tail"], true);
    // A wrong genesis comes before the torn record.
    let wrong = assert_agree_with(dir.path(), &["--expect-head", &format!("0:{other}")]);
    assert_eq!(wrong["first_bad_seq"], 0);

    // A later segment whose (re-hashed) header claims an earlier first seq is
    // reported at the seq the verifiers expected there.
    let multi = tempfile::tempdir().unwrap();
    let options = WriterOptions {
        durability: Durability::OnClose,
        segment_bytes_max: 900,
        open_check: OpenCheck::FullChain,
        ..WriterOptions::default()
    };
    let mut writer = Writer::create(multi.path(), GOLDEN_META, options).unwrap();
    for (ms, event) in golden_events() {
        writer.append(ms, &event).unwrap();
    }
    writer.close().unwrap();
    let segments = anx_journal::list_segments(multi.path()).unwrap();
    let victim = &segments[2];
    let mut bytes = std::fs::read(&victim.path).unwrap();
    let mut header = anx_journal::format::SegmentHeader::decode(&bytes).unwrap();
    header.first_seq -= 1;
    bytes[..anx_journal::format::SEGMENT_HEADER_BYTES].copy_from_slice(&header.encode());
    std::fs::write(&victim.path, &bytes).unwrap();
    let out = assert_agree_with(multi.path(), &[]);
    assert_eq!(out["first_bad_seq"], victim.first_seq);
    assert_eq!(out["segment"], victim.name.as_str());
}

#[test]
fn auditor_refuses_a_segment_name_on_a_fifo_or_a_device_like_anx() {
    for special in ["dev-zero", "fifo"] {
        let dir = copy_of(&golden_dir());
        let path = dir.path().join("seg-00000000000000000026.anxj");
        if special == "fifo" {
            assert!(Command::new("mkfifo")
                .arg(&path)
                .status()
                .expect("mkfifo")
                .success());
        } else {
            std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        }
        let output = Command::new("python3")
            .arg(repo_root().join("tools/auditor/anx_verify.py"))
            .arg(dir.path())
            .arg("--json")
            .output()
            .expect("python3");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{special}: {stderr}");
        assert!(stderr.contains("not a regular file"), "{special}: {stderr}");
        let run = anx(&["journal", "verify", path_str(dir.path())]);
        assert_eq!(run.code, 2, "{special}: {}", run.stderr);
    }
}

#[test]
fn auditor_decodes_a_negative_zero_as_zero_like_anx() {
    let dir = tempfile::tempdir().unwrap();
    let mut negative_zero = rust_decimal::Decimal::new(0, 2);
    negative_zero.set_sign_negative(true);
    let (market_ms, event) = golden_events().swap_remove(1);
    let anx_journal::Event::Candle(mut candle) = event else {
        panic!("the golden journal's second event is a candle");
    };
    candle.volume = negative_zero;
    let mut writer = Writer::create(dir.path(), GOLDEN_META, WriterOptions::default()).unwrap();
    writer
        .append(market_ms, &anx_journal::Event::Candle(candle))
        .unwrap();
    drop(writer);
    let output = Command::new("python3")
        .arg(repo_root().join("tools/auditor/anx_verify.py"))
        .arg(dir.path())
        .arg("--decode")
        .output()
        .expect("python3");
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let python: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let ours: Value = serde_json::from_str(
        anx(&["journal", "export", path_str(dir.path())])
            .stdout
            .trim(),
    )
    .unwrap();
    assert_eq!(python["body"]["volume"], "0.00");
    assert_eq!(python["body"], ours["body"]);
}
