//! Freezes schema version 2 (FORMAT.md §6a): the golden events written at
//! journal schema 2 must encode to exactly the committed `golden-v2` fixture,
//! the fixture must keep decoding to them, and FORMAT.md §9a's worked example –
//! a schema-2 candle, an entry decision with its glass box inline, and a
//! rejected decision's commitment – must be these bytes.

mod common;

use anx_journal::compact::Out;
use anx_journal::event::body_bytes;
use anx_journal::format::SCHEMA_VERSION_CURRENT;
use anx_journal::sample::{golden_events, golden_rejected_decision};
use anx_journal::schema2::encode_glass;
use anx_journal::{verify, Event, Glass, Reader};
use common::*;
use std::path::PathBuf;

fn fixture_v2() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-v2")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn schema_2_encoding_matches_the_committed_fixture() {
    let dir = tempfile::tempdir().unwrap();
    write_golden_v2(dir.path());
    let written = std::fs::read(only_segment(dir.path())).unwrap();
    let path = fixture_v2().join("seg-00000000000000000001.anxj");
    if std::env::var_os("ANX_WRITE_GOLDEN").is_some() {
        std::fs::create_dir_all(fixture_v2()).unwrap();
        std::fs::write(&path, &written).unwrap();
    }
    let fixture = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("golden fixture {} missing: {e}", path.display()));
    assert!(
        written == fixture,
        "the schema-2 encoding of the golden events changed: add a schema version instead"
    );
}

#[test]
fn the_schema_2_fixture_decodes_to_the_golden_events() {
    let stored = read_all(&fixture_v2());
    let expected = golden_events();
    assert_eq!(stored.len(), expected.len());
    for (got, (market_ms, event)) in stored.iter().zip(&expected) {
        assert_eq!(got.market_ms, *market_ms, "seq {}", got.seq);
        let read_back = event.as_read_back(SCHEMA_VERSION_CURRENT).unwrap();
        assert_eq!(got.event, read_back, "seq {}", got.seq);
        assert_eq!(got.schema_version, event.kind().written_at(2));
    }
    assert!(verify(&fixture_v2(), None).unwrap().ok());
}

/// FORMAT.md §9a, its whitespace runs made single spaces.
fn section_9a() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/FORMAT.md"))
        .expect("journal/FORMAT.md");
    let start = doc.find("## 9a.").expect("FORMAT.md has a §9a");
    let end = doc[start..]
        .find("\n## 10.")
        .map_or(doc.len(), |e| start + e);
    doc[start..end].to_string()
}

/// The hex bytes of the indented dump after the line holding `marker`.
fn hex_after(section: &str, marker: &str) -> String {
    let at = section
        .find(marker)
        .unwrap_or_else(|| panic!("FORMAT.md §9a must state {marker:?}"));
    let mut out = String::new();
    for line in section[at..].lines().skip(1) {
        let tokens: Vec<&str> = line
            .split_whitespace()
            .take_while(|t| t.len() == 2 && t.chars().all(|c| c.is_ascii_hexdigit()))
            .collect();
        if tokens.is_empty() {
            if out.is_empty() && line.trim().is_empty() {
                continue;
            }
            break;
        }
        out.extend(tokens);
    }
    assert!(!out.is_empty(), "FORMAT.md §9a: no hex after {marker:?}");
    out
}

#[test]
fn format_doc_9a_states_the_schema_2_bytes() {
    let section = section_9a();
    let flat = section.split_whitespace().collect::<Vec<_>>().join(" ");
    let stored = read_all(&fixture_v2());
    let report = verify(&fixture_v2(), None).unwrap();
    assert!(flat.contains(&format!("holds {} events", stored.len())));
    assert!(
        flat.contains(&format!("head is `{}`", report.head)),
        "the head"
    );

    let mut reader = Reader::open(&fixture_v2()).unwrap();
    let mut payloads = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        payloads.push(record.payload.to_vec());
    }
    // Record 2 (the candle) and record 4 (the entry decision).
    assert_eq!(
        hex_after(&section, "**Candle** (record 2"),
        hex(&payloads[1])
    );
    assert!(flat.contains(&format!("**Candle** (record 2, len {})", payloads[1].len())));
    assert_eq!(
        hex_after(&section, "**Decision, enter** (record 4"),
        hex(&payloads[3])
    );
    assert!(flat.contains(&format!(
        "**Decision, enter** (record 4, len {})",
        payloads[3].len()
    )));

    // The rejected decision: its glass box's canonical encoding, digest and body.
    let rejected = golden_rejected_decision();
    let glass = rejected
        .glass
        .full()
        .expect("the example has its glass box");
    let mut glass_bytes = Vec::new();
    encode_glass(glass, &mut Out(&mut glass_bytes)).unwrap();
    assert_eq!(hex_after(&section, "**Its glass box**"), hex(&glass_bytes));
    let digest = blake3::hash(&glass_bytes).to_hex().to_string();
    assert!(
        flat.contains(&format!("glass_digest = {digest}")),
        "the digest"
    );
    let body = body_bytes(&Event::Decision(rejected.clone()), 2, rejected.as_of_ms).unwrap();
    assert_eq!(
        hex_after(&section, "**Decision, rejected** (body"),
        hex(&body)
    );
    assert!(flat.contains(&format!(
        "**Decision, rejected** (body, {} bytes)",
        body.len()
    )));
    let Event::Decision(read) = Event::Decision(rejected).as_read_back(2).unwrap() else {
        unreachable!()
    };
    assert!(matches!(read.glass, Glass::Committed { .. }));
}
