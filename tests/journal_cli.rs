//! End-to-end tests of `anx journal verify|head|export|stat`, run as the real
//! binary against the committed golden journal and damaged copies of it.

mod common;

use anx_journal::sample::{golden_events, GOLDEN_META};
use anx_journal::{Durability, Event, Writer, WriterOptions};
use common::*;
use serde_json::Value;

const GOLDEN: &str = "journal/tests/fixtures/golden-v1";
const SEGMENT: &str = "seg-00000000000000000001.anxj";

#[test]
fn verify_reports_an_intact_journal() {
    let run = anx(&["journal", "verify", GOLDEN]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let head = anx(&["journal", "head", GOLDEN]);
    assert_eq!(head.code, 0);
    let head = head.stdout.trim();
    assert!(
        run.stdout.starts_with(&format!(
            "ok: 30 events in 1 segment (5.2 KB), head {head}\n"
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("events/s"));

    let run = anx(&["journal", "verify", GOLDEN, "--json"]);
    assert_eq!(run.code, 0);
    let out = json(&run.stdout);
    assert_eq!(out["ok"], true);
    assert_eq!(out["verdict"], "ok");
    assert_eq!(out["torn_tail"], false);
    assert_eq!(out["events"], 30);
    assert_eq!(out["segments"], 1);
    assert_eq!(
        format!("{}:{}", out["head_seq"], out["head_hash"].as_str().unwrap()),
        head
    );
    assert!(out["events_per_s"].as_f64().unwrap() > 0.0);
    assert!(out.get("first_bad_seq").is_none());
    assert!(
        run.stderr.is_empty(),
        "logs must not mix into --json runs: {}",
        run.stderr
    );
}

#[test]
fn verify_names_the_first_bad_seq_of_a_tampered_journal() {
    let copy = copy_of(&golden_dir());
    let segment = copy.path().join(SEGMENT);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[2100] ^= 0x01; // inside record 10 (offsets 2068..2263)
    std::fs::write(&segment, &bytes).unwrap();
    let dir = path_str(copy.path());

    let run = anx(&["journal", "verify", dir]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.starts_with(&format!(
            "FAILED at seq 10 ({SEGMENT} offset 2068): hash mismatch\n"
        )),
        "{}",
        run.stdout
    );

    let run = anx(&["journal", "verify", dir, "--json"]);
    assert_eq!(run.code, 1);
    let out = json(&run.stdout);
    assert_eq!(out["ok"], false);
    assert_eq!(out["first_bad_seq"], 10);
    assert_eq!(out["offset"], 2068);
    assert_eq!(out["reason"], "hash mismatch");
    assert_eq!(out["torn_tail"], false);
    assert_eq!(out["verdict"], "corrupt");
    assert_eq!(out["events"], 9);

    let head = anx(&["journal", "head", dir]);
    assert_eq!(head.code, 1);
    assert!(
        head.stdout.is_empty(),
        "no head may be published for a broken journal"
    );
    assert!(head.stderr.contains("first bad seq 10"), "{}", head.stderr);
}

#[test]
fn verify_reports_a_torn_tail_as_such() {
    let copy = copy_of(&golden_dir());
    let full_head = anx(&["journal", "head", GOLDEN]).stdout.trim().to_string();
    cut_last_segment(copy.path(), 10);
    let dir = path_str(copy.path());
    let run = anx(&["journal", "verify", dir, "--json"]);
    // A torn tail only: its own exit code, not a failed check's 1.
    assert_eq!(run.code, 3, "{}", run.stdout);
    let out = json(&run.stdout);
    assert_eq!(out["first_bad_seq"], 30);
    assert_eq!(out["torn_tail"], true);
    assert_eq!(out["verdict"], "torn_tail");
    assert_eq!(out["ok"], false);
    assert_eq!(out["events"], 29);
    assert_eq!(out["offset"], 5109);

    let run = anx(&["journal", "verify", dir]);
    assert_eq!(run.code, 3);
    let head_29 = format!(
        "29:{}",
        json(&anx(&["journal", "verify", dir, "--json"]).stdout)["head_hash"]
            .as_str()
            .unwrap()
    );
    assert_eq!(
        run.stdout,
        format!(
            "TORN TAIL at seq 30 ({SEGMENT} offset 5109): incomplete record (69 of 79 bytes present); \
             every record before it is intact (29 events, head {head_29}); no committed event is lost – \
             `anx journal repair {dir}` cuts it and journals the repair\n"
        )
    );
    assert!(!run.stdout.contains("FAILED"));

    // `head` publishes nothing, exits as verify does and points at the repair.
    let head = anx(&["journal", "head", dir]);
    assert_eq!(head.code, 3);
    assert!(head.stdout.is_empty());
    assert_eq!(head.stderr.lines().count(), 1, "{}", head.stderr);
    assert!(head.stderr.contains("torn tail"), "{}", head.stderr);
    assert!(
        head.stderr.contains(&format!("anx journal repair {dir}")),
        "{}",
        head.stderr
    );

    // An expected head before the tear still holds: a torn tail.
    let run = anx(&["journal", "verify", dir, "--expect-head", &head_29]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(
        run.stdout.starts_with("TORN TAIL at seq 30"),
        "{}",
        run.stdout
    );
    // A head published with the torn record covers a lost event: corruption.
    let run = anx(&[
        "journal",
        "verify",
        dir,
        "--expect-head",
        &full_head,
        "--json",
    ]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let out = json(&run.stdout);
    assert_eq!(out["torn_tail"], true);
    assert_eq!(out["verdict"], "corrupt");
    let run = anx(&["journal", "verify", dir, "--expect-head", &full_head]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.starts_with("FAILED at seq 30"), "{}", run.stdout);
}

#[test]
fn expect_head_zero_must_be_this_journals_genesis() {
    let genesis = GOLDEN_META.genesis();
    let run = anx(&[
        "journal",
        "verify",
        GOLDEN,
        "--expect-head",
        &format!("0:{genesis}"),
    ]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("extends the expected head"));
    // Either case of hex digits.
    let upper = format!("0:{}", genesis.to_hex().to_uppercase());
    assert_eq!(
        anx(&["journal", "verify", GOLDEN, "--expect-head", &upper]).code,
        0
    );

    let other = anx_journal::JournalMeta {
        journal_id: [9; 16],
        ..GOLDEN_META
    }
    .genesis();
    for wrong in ["0".repeat(64), other.to_hex()] {
        let expect = format!("0:{wrong}");
        let run = anx(&[
            "journal",
            "verify",
            GOLDEN,
            "--expect-head",
            &expect,
            "--json",
        ]);
        assert_eq!(run.code, 1, "{expect}: {}", run.stdout);
        let out = json(&run.stdout);
        assert_eq!(out["ok"], false);
        assert_eq!(out["verdict"], "corrupt");
        assert_eq!(out["first_bad_seq"], 0);
        assert_eq!(out["segment"], SEGMENT);
        assert_eq!(out["offset"], 0);
        let reason = out["reason"].as_str().unwrap();
        assert!(reason.contains("rewritten"), "{reason}");
        assert!(
            reason.contains(&genesis.to_hex()),
            "names the genesis found: {reason}"
        );
        let run = anx(&["journal", "verify", GOLDEN, "--expect-head", &expect]);
        assert_eq!(run.code, 1);
        assert!(
            run.stdout
                .starts_with(&format!("FAILED at seq 0 ({SEGMENT} offset 0): ")),
            "{}",
            run.stdout
        );
    }
}

/// Runs `anx` and kills it if it has not finished within 20 s (a failure).
fn anx_within_20s(args: &[&str]) -> Run {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_anx"))
        .args(args)
        .current_dir(repo_root())
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn anx");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for anx") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("anx {args:?} did not finish within 20 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Run {
        code: status.code().expect("exited normally, not by a signal"),
        stdout,
        stderr,
    }
}

#[test]
fn a_segment_that_is_a_fifo_or_dev_zero_is_refused_not_read() {
    for special in ["dev-zero", "fifo"] {
        // In place of the only segment, and as an extra segment after it.
        for name in [SEGMENT, "seg-00000000000000000026.anxj"] {
            let copy = copy_of(&golden_dir());
            let path = copy.path().join(name);
            if name == SEGMENT {
                std::fs::remove_file(&path).unwrap();
            }
            if special == "fifo" {
                let made = std::process::Command::new("mkfifo")
                    .arg(&path)
                    .status()
                    .expect("mkfifo");
                assert!(made.success());
            } else {
                std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
            }
            let dir = path_str(copy.path());
            for command in ["verify", "stat", "export", "head"] {
                let run = anx_within_20s(&["journal", command, dir]);
                let what = format!("{command} with {special} as {name}");
                assert!(run.stdout.is_empty(), "{what}: {}", run.stdout);
                run.assert_one_line_error(2);
                assert!(
                    run.stderr.contains(name) && run.stderr.contains("not a regular file"),
                    "{what}: {}",
                    run.stderr
                );
            }
        }
    }
    // A symbolic link to a regular segment is followed.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(golden_dir().join(SEGMENT), dir.path().join(SEGMENT)).unwrap();
    let run = anx(&["journal", "verify", path_str(dir.path())]);
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn export_prints_a_negative_zero_decimal_as_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut negative_zero = rust_decimal::Decimal::new(0, 1);
    negative_zero.set_sign_negative(true);
    let (market_ms, event) = golden_events().swap_remove(1);
    let Event::Candle(mut candle) = event else {
        panic!("the golden journal's second event is a candle");
    };
    candle.volume = negative_zero;
    let mut writer = Writer::create(dir.path(), GOLDEN_META, WriterOptions::default()).unwrap();
    writer.append(market_ms, &Event::Candle(candle)).unwrap();
    drop(writer);
    let run = anx(&["journal", "export", path_str(dir.path())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let line = json(run.stdout.trim());
    assert_eq!(line["body"]["volume"], "0.0", "{line}");
    assert!(!run.stdout.contains("\"-0"), "{}", run.stdout);
    assert_eq!(anx(&["journal", "verify", path_str(dir.path())]).code, 0);
}

#[test]
fn expect_head_proves_the_journal_extends_a_published_head() {
    let copy = copy_of(&golden_dir());
    let dir = path_str(copy.path());
    let head = anx(&["journal", "head", dir]).stdout.trim().to_string();
    // Publish an early head, then keep appending: the journal still extends it.
    let early = {
        let report = anx_journal::verify(copy.path(), None).unwrap();
        report.head
    };
    let mut writer = Writer::open(
        copy.path(),
        WriterOptions {
            durability: Durability::Always,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    for (ms, event) in golden_events().into_iter().take(3) {
        writer.append(ms, &event).unwrap();
    }
    drop(writer);
    let run = anx(&[
        "journal",
        "verify",
        dir,
        "--expect-head",
        &early.to_string(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("extends the expected head"));
    assert_eq!(head, early.to_string());

    // A head from a journal with other history does not match.
    let other = tempfile::tempdir().unwrap();
    let mut writer = Writer::create(
        other.path(),
        anx_journal::JournalMeta {
            journal_id: [9; 16],
            ..GOLDEN_META
        },
        WriterOptions::default(),
    )
    .unwrap();
    for (ms, event) in golden_events() {
        writer.append(ms, &event).unwrap();
    }
    drop(writer);
    let run = anx(&[
        "journal",
        "verify",
        path_str(other.path()),
        "--expect-head",
        &head,
        "--json",
    ]);
    assert_eq!(run.code, 1);
    let out = json(&run.stdout);
    assert_eq!(out["first_bad_seq"], 30);
    assert!(
        out["reason"].as_str().unwrap().contains("rewritten"),
        "{}",
        out["reason"]
    );

    // A head beyond the journal's end means records were removed.
    let beyond = format!("99:{}", early.hash);
    let run = anx(&[
        "journal",
        "verify",
        GOLDEN,
        "--expect-head",
        &beyond,
        "--json",
    ]);
    assert_eq!(run.code, 1);
    assert!(json(&run.stdout)["reason"]
        .as_str()
        .unwrap()
        .contains("before the expected head"));
}

#[test]
fn export_streams_one_json_object_per_event() {
    let run = anx(&["journal", "export", GOLDEN]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<Value> = run.stdout.lines().map(json).collect();
    assert_eq!(lines.len(), golden_events().len());
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], i as u64 + 1);
        assert_eq!(line["hash"].as_str().unwrap().len(), 64);
    }
    assert_eq!(lines[1]["kind"], "Candle");
    assert_eq!(lines[1]["market_time"], "2024-01-01T04:00:00.000Z");
    assert_eq!(
        lines[1]["body"]["high"], "104600.5",
        "decimals export as exact strings"
    );
    insta::assert_snapshot!("export_golden", run.stdout);
}

#[test]
fn stat_counts_by_kind() {
    let run = anx(&["journal", "stat", GOLDEN]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("stat_golden", run.stdout);
    let run = anx(&["journal", "stat", GOLDEN, "--json"]);
    let out = json(&run.stdout);
    assert_eq!(out["events"], 30);
    assert_eq!(out["by_kind"]["EngineTransition"], 4);
    assert_eq!(out["by_kind"]["Candle"], 2);
}

#[test]
fn readers_work_while_a_writer_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = Writer::create(dir.path(), GOLDEN_META, WriterOptions::default()).unwrap();
    for (ms, event) in golden_events() {
        writer.append(ms, &event).unwrap();
    }
    let run = anx(&["journal", "verify", path_str(dir.path()), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(json(&run.stdout)["events"], 30);
    drop(writer);
}

#[test]
fn user_mistakes_get_one_line_and_a_non_zero_exit() {
    anx(&["journal", "verify", "no/such/dir"]).assert_one_line_error(2);
    // Usage mistakes are rendered whole by clap (the problem, the usage, the help).
    anx(&["journal", "verify", GOLDEN, "--expect-head", "12"]).assert_usage_error();
    anx(&["journal", "verify", GOLDEN, "--expect-head", "1:abc"]).assert_usage_error();
    anx(&["journal", "frobnicate"]).assert_usage_error();
    anx(&["journal", "export", GOLDEN, "--format", "csv"]).assert_usage_error();
    let empty = tempfile::tempdir().unwrap();
    let run = anx(&["journal", "export", path_str(empty.path())]);
    run.assert_one_line_error(2);
    assert!(run.stderr.contains("not a journal"), "{}", run.stderr);
    // A file where a segment should be.
    let junk = tempfile::tempdir().unwrap();
    std::fs::write(junk.path().join(SEGMENT), b"this is not a journal").unwrap();
    let run = anx(&["journal", "verify", path_str(junk.path())]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("segment shorter than its header"),
        "{}",
        run.stdout
    );
    anx(&["journal", "export", path_str(junk.path())]).assert_one_line_error(2);
}
