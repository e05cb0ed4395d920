//! The fuzzers' corpus, replayed without a fuzzer: every input under
//! `tools/fuzz/corpus/<target>/` goes through the same check its fuzz target
//! runs (`tools/fuzz/src/checks.rs`, compiled in here), so CI guards every
//! input a fuzzer ever found interesting. Also the three panics the first
//! fuzzing found, as plain tests.

#[path = "../../tools/fuzz/src/checks.rs"]
mod checks;

use anx_journal::format::{chain_hash, segment_file_name, RecordHeader, SegmentHeader};
use anx_journal::reader::read_record_at;
use anx_journal::*;
use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tools/fuzz/corpus")
        .join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the {target} corpus at {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let bytes = std::fs::read(&path).expect("corpus file");
            (path, bytes)
        })
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 10,
        "the {target} corpus is there: {} inputs",
        inputs.len()
    );
    inputs
}

/// Runs `check` on every input of `target`'s corpus, naming the input that fails.
fn replay(target: &str, check: fn(&[u8])) {
    for (path, bytes) in corpus(target) {
        let outcome = std::panic::catch_unwind(|| check(&bytes));
        assert!(
            outcome.is_ok(),
            "{target}: {} fails its check",
            path.display()
        );
    }
}

#[test]
fn the_payload_corpus_passes_its_checks() {
    replay("payload", checks::payload);
}

#[test]
fn the_segments_corpus_passes_its_checks() {
    replay("segments", checks::segments);
}

#[test]
fn the_random_access_corpus_passes_its_checks() {
    replay("random_access", checks::random_access);
}

#[test]
fn a_payload_shorter_than_its_envelope_is_a_decode_error() {
    for len in 0..12 {
        let payload = vec![1u8; len];
        match decode_payload(7, &payload) {
            Err(JournalError::Decode { seq: 7, what, .. }) => assert_eq!(what, "envelope"),
            other => panic!("{len} bytes: {other:?}"),
        }
    }
}

/// A journal whose later segment claims `first_seq` = u64::MAX and holds one
/// chained record there: the seq after it does not exist.
#[test]
fn a_header_or_record_at_the_last_seq_is_refused_not_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let meta = sample::GOLDEN_META;
    let first = SegmentHeader {
        format_version: 1,
        meta,
        first_seq: 1,
        prev_hash: meta.genesis(),
    };
    std::fs::write(dir.path().join(segment_file_name(1)), first.encode()).unwrap();
    let last = SegmentHeader {
        format_version: 1,
        meta,
        first_seq: Seq::MAX,
        prev_hash: meta.genesis(),
    };
    let payload = [1u8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut bytes = last.encode().to_vec();
    bytes.extend(RecordHeader::new(Seq::MAX, 12).encode());
    bytes.extend(payload);
    bytes.extend(chain_hash(&meta.genesis(), Seq::MAX, &payload).0);
    std::fs::write(dir.path().join(segment_file_name(Seq::MAX)), &bytes).unwrap();
    let mut reader = Reader::open_from(dir.path(), Seq::MAX, TailPolicy::Strict).unwrap();
    match reader.next_record() {
        Err(JournalError::Corrupt(fault)) | Err(JournalError::TornTail(fault)) => {
            assert_eq!(fault.seq, Seq::MAX);
            assert_eq!(fault.reason, FaultReason::SeqOutOfRange);
        }
        Ok(record) => panic!("handed out {:?}", record.map(|r| r.seq)),
        Err(other) => panic!("{other}"),
    }
    let report = verify(dir.path(), None).unwrap();
    assert!(!report.ok(), "verify refuses it too");
    // No writer opens it (corruption, not a torn tail: nothing is cut) …
    let options = WriterOptions {
        open_check: OpenCheck::LastSegment,
        ..WriterOptions::default()
    };
    let before = std::fs::read(dir.path().join(segment_file_name(Seq::MAX))).unwrap();
    assert!(matches!(
        Writer::open(dir.path(), options),
        Err(JournalError::Corrupt(_))
    ));
    let after = std::fs::read(dir.path().join(segment_file_name(Seq::MAX))).unwrap();
    assert_eq!(before, after);
    // … and a writer whose next seq would be the last one refuses to write it.
    std::fs::write(dir.path().join(segment_file_name(Seq::MAX)), last.encode()).unwrap();
    let mut writer = Writer::open(dir.path(), options).unwrap();
    assert_eq!(writer.head().seq, Seq::MAX - 1);
    let event = sample::golden_events().remove(0).1;
    assert!(matches!(
        writer.append(0, &event),
        Err(JournalError::SeqExhausted)
    ));
    drop(writer);
    let len = std::fs::metadata(dir.path().join(segment_file_name(Seq::MAX)))
        .unwrap()
        .len();
    assert_eq!(len, 112, "nothing was written");
}

#[test]
fn random_access_from_an_offset_inside_the_header_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer =
        Writer::create(dir.path(), sample::GOLDEN_META, WriterOptions::default()).unwrap();
    for (ms, event) in sample::golden_events() {
        writer.append(ms, &event).unwrap();
    }
    writer.close().unwrap();
    let segment = &list_segments(dir.path()).unwrap()[0];
    // Offsets a forged index could supply: inside the header, where a
    // plausible record header could sit.
    for offset in [0u64, 1, 16, 31, 32, 111] {
        match read_record_at(segment, 1, offset, 1) {
            Err(JournalError::Corrupt(fault)) => assert_eq!(fault.offset, offset),
            other => panic!("offset {offset}: {other:?}"),
        }
    }
    // The right place works, and a target seq of u64::MAX is refused.
    let (first, offset) = read_record_at(segment, 1, 112, 1).unwrap();
    assert_eq!((first.seq, offset), (1, 112));
    assert!(read_record_at(segment, 1, 112, Seq::MAX).is_err());
}
