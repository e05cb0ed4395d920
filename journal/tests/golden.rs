//! Freezes the on-disk format: the golden event sequence must encode to exactly
//! the committed fixture bytes, and the committed fixture must keep decoding to
//! the same events. Changing any existing encoding fails here.

mod common;

use anx_journal::format::{RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use anx_journal::sample::{golden_events, GOLDEN_META};
use anx_journal::{verify, EventKind, Reader};
use common::*;
use std::collections::BTreeSet;
use std::fmt::Write;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One line per record: seq, kind, payload hex, hash.
fn dump(dir: &std::path::Path) -> String {
    let segment = std::fs::read(only_segment(dir)).expect("read segment");
    let mut out = String::new();
    writeln!(out, "genesis {}", GOLDEN_META.genesis()).unwrap();
    writeln!(out, "header  {}", hex(&segment[..SEGMENT_HEADER_BYTES])).unwrap();
    let mut reader = Reader::open(dir).expect("open");
    while let Some(record) = reader.next_record().expect("record") {
        let start = record.offset as usize;
        let kind = EventKind::from_code(record.envelope().kind_code).expect("kind");
        writeln!(
            out,
            "seq {:>2} {:<17} @{:<5} header {} payload {} hash {}",
            record.seq,
            kind.name(),
            start,
            hex(&segment[start..start + RECORD_HEADER_BYTES]),
            hex(record.payload),
            record.hash
        )
        .unwrap();
    }
    let (seq, hash) = reader.head();
    writeln!(out, "head {seq}:{hash}").unwrap();
    out
}

#[test]
fn golden_sequence_uses_every_kind() {
    let kinds: BTreeSet<EventKind> = golden_events().iter().map(|(_, e)| e.kind()).collect();
    let all: BTreeSet<EventKind> = EventKind::ALL.iter().copied().collect();
    assert_eq!(
        kinds, all,
        "the golden journal must exercise every event kind"
    );
}

#[test]
fn encoding_matches_committed_fixture_bytes() {
    let dir = tempfile::tempdir().unwrap();
    write_golden(dir.path());
    let written = std::fs::read(only_segment(dir.path())).unwrap();
    let fixture_path = fixture_dir().join("seg-00000000000000000001.anxj");
    if std::env::var_os("ANX_WRITE_GOLDEN").is_some() {
        std::fs::create_dir_all(fixture_dir()).unwrap();
        std::fs::write(&fixture_path, &written).unwrap();
    }
    let fixture = std::fs::read(&fixture_path)
        .unwrap_or_else(|e| panic!("golden fixture {} missing: {e}", fixture_path.display()));
    assert!(
        written == fixture,
        "the encoding of the golden events changed: existing journals would no longer match. \
         Add a new schema version instead of changing an existing encoding."
    );
    insta::assert_snapshot!("golden_dump", dump(dir.path()));
}

#[test]
fn committed_fixture_still_decodes_to_the_golden_events() {
    let stored = read_all(&fixture_dir());
    let expected = golden_events();
    assert_eq!(stored.len(), expected.len());
    for (got, (market_ms, event)) in stored.iter().zip(&expected) {
        assert_eq!(got.market_ms, *market_ms, "seq {}", got.seq);
        assert_eq!(&got.event, event, "seq {}", got.seq);
    }
    let report = verify(&fixture_dir(), None).unwrap();
    assert!(report.ok());
    assert_eq!(report.events, expected.len() as u64);
}

#[test]
fn format_doc_carries_the_worked_example() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/FORMAT.md"))
        .expect("journal/FORMAT.md");
    let segment = std::fs::read(fixture_dir().join("seg-00000000000000000001.anxj")).unwrap();
    let header_hex = hex(&segment[..SEGMENT_HEADER_BYTES]);
    let doc_hex: String = doc.split_whitespace().collect();
    assert!(
        doc_hex.contains(&header_hex),
        "FORMAT.md's worked example must show the golden segment header bytes"
    );
    let mut reader = Reader::open(&fixture_dir()).unwrap();
    let first = reader.next_record().unwrap().unwrap();
    let end = first.offset as usize + RECORD_HEADER_BYTES + first.payload.len() + 32;
    let record_hex = hex(&segment[first.offset as usize..end]);
    assert!(
        doc_hex.contains(&record_hex),
        "FORMAT.md must show record 1's bytes"
    );
    assert!(
        doc.contains(&first.hash.to_hex()),
        "FORMAT.md must show record 1's hash"
    );
    assert!(
        doc.contains(&GOLDEN_META.genesis().to_hex()),
        "FORMAT.md must show the genesis hash"
    );
}
