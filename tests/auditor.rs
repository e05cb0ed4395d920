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

fn anx_verify(dir: &Path) -> (i32, Value) {
    let run = anx(&["journal", "verify", path_str(dir), "--json"]);
    (run.code, serde_json::from_str(&run.stdout).unwrap())
}

fn assert_agree(dir: &Path) {
    let (code_a, a) = auditor(dir, &[]);
    let (code_b, b) = anx_verify(dir);
    assert_eq!(code_a, code_b, "auditor {a}\nanx {b}");
    let keys: &[&str] = if a["ok"] == true {
        &["ok", "events", "head_seq", "head_hash"]
    } else {
        &["ok", "first_bad_seq", "segment", "offset", "torn_tail"]
    };
    for key in keys {
        assert_eq!(a.get(key), b.get(key), "{key}: auditor {a}\nanx {b}");
    }
}

#[test]
fn auditor_agrees_on_the_golden_journal_and_decodes_it() {
    assert_agree(&golden_dir());
    let output = Command::new("python3")
        .arg(repo_root().join("tools/auditor/anx_verify.py"))
        .arg(golden_dir())
        .arg("--decode")
        .output()
        .expect("python3");
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let python: Vec<Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ours: Vec<Value> = anx(&["journal", "export", path_str(&golden_dir())])
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
}

#[test]
fn auditor_agrees_on_multi_segment_and_damaged_journals() {
    let dir = tempfile::tempdir().unwrap();
    let options = WriterOptions {
        durability: Durability::OnClose,
        segment_bytes_max: 900,
        open_check: OpenCheck::FullChain,
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
