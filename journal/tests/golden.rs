//! Freezes the on-disk format: the golden event sequence must encode to exactly
//! the committed fixture bytes, and the committed fixture must keep decoding to
//! the same events. Changing any existing encoding fails here.

mod common;

use anx_journal::format::{GENESIS_DOMAIN, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use anx_journal::sample::{golden_events, GOLDEN_META};
use anx_journal::{verify, Event, EventKind, Reader};
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

/// FORMAT.md §9 (to the end of the document), and the same text with every run
/// of whitespace made one space, so a figure may wrap across lines.
fn worked_example() -> (String, String) {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/FORMAT.md"))
        .expect("journal/FORMAT.md");
    let start = doc
        .find("## 9. Worked example")
        .expect("FORMAT.md has a §9 worked example");
    let section = doc[start..].to_string();
    let flat = section.split_whitespace().collect::<Vec<_>>().join(" ");
    (section, flat)
}

/// The text after the first `marker` in `text`.
fn after<'a>(text: &'a str, marker: &str) -> &'a str {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("FORMAT.md §9 must state {marker:?}"));
    &text[at + marker.len()..]
}

/// The text of `text` from `from` up to the next `to` (or the end).
fn between<'a>(text: &'a str, from: &str, to: &str) -> &'a str {
    let rest = after(text, from);
    rest.find(to).map_or(rest, |end| &rest[..end])
}

/// The decimal number right after `marker` (spaces and backticks skipped).
fn number_after(text: &str, marker: &str) -> i64 {
    let rest = after(text, marker).trim_start_matches([' ', '`']);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("FORMAT.md §9: no number after {marker:?}: {rest:.40}"))
}

/// The 64 hex digits right after `marker` (spaces and backticks skipped).
fn hash_after(text: &str, marker: &str) -> String {
    let rest = after(text, marker).trim_start_matches([' ', '`']);
    let hash: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    assert_eq!(
        hash.len(),
        64,
        "FORMAT.md §9: a hash after {marker:?}: {rest:.70}"
    );
    hash
}

fn is_hex_byte(token: &str) -> bool {
    token.len() == 2 && token.chars().all(|c| c.is_ascii_hexdigit())
}

/// The bytes of the indented hex dump that follows the line holding `marker`
/// (in the text with its line breaks): the leading two-digit hex tokens of
/// each line, up to the first line that has none.
fn hex_block_after(section: &str, marker: &str) -> Vec<u8> {
    let rest = after(section, marker);
    let mut bytes = Vec::new();
    for line in rest.lines().skip(1) {
        let tokens: Vec<&str> = line
            .split_whitespace()
            .take_while(|token| is_hex_byte(token))
            .collect();
        if tokens.is_empty() {
            if bytes.is_empty() && line.trim().is_empty() {
                continue;
            }
            break;
        }
        bytes.extend(tokens.iter().map(|t| u8::from_str_radix(t, 16).unwrap()));
    }
    assert!(
        !bytes.is_empty(),
        "FORMAT.md §9: no hex dump after {marker:?}"
    );
    bytes
}

/// Hex tokens of a `‖`-separated part, as bytes.
fn hex_tokens(part: &str) -> Vec<u8> {
    part.split_whitespace()
        .map(|t| {
            assert!(is_hex_byte(t), "not a hex byte: {t:?} in {part:?}");
            u8::from_str_radix(t, 16).unwrap()
        })
        .collect()
}

#[test]
fn format_doc_states_the_fixture_exactly() {
    let (section, flat) = worked_example();
    let segment = std::fs::read(fixture_dir().join("seg-00000000000000000001.anxj")).unwrap();
    let stored = read_all(&fixture_dir());
    let report = verify(&fixture_dir(), None).unwrap();
    assert!(report.ok());

    // The event count and the head.
    assert_eq!(
        number_after(&flat, "seg-00000000000000000001.anxj` holds"),
        stored.len() as i64,
        "FORMAT.md §9: the fixture's event count"
    );
    let head_text = after(&flat, "The fixture's head is").trim_start_matches([' ', '`']);
    let head_text = head_text.split('`').next().unwrap();
    assert_eq!(
        head_text,
        report.head.to_string(),
        "FORMAT.md §9: the fixture's head"
    );

    // The identity and the genesis.
    let id = between(&flat, "`journal_id` = the ASCII bytes `", "`");
    assert_eq!(id.as_bytes(), GOLDEN_META.journal_id, "journal_id");
    assert_eq!(
        number_after(&flat, "`created_ms` ="),
        GOLDEN_META.created_ms,
        "created_ms"
    );
    let genesis_input = hex_block_after(&section, "**Genesis.** Input");
    assert_eq!(
        number_after(&flat, "**Genesis.** Input ("),
        genesis_input.len() as i64
    );
    let mut expected_input = GENESIS_DOMAIN.to_vec();
    expected_input.extend_from_slice(&1u32.to_le_bytes());
    expected_input.extend_from_slice(&GOLDEN_META.journal_id);
    expected_input.extend_from_slice(&GOLDEN_META.created_ms.to_le_bytes());
    assert_eq!(genesis_input, expected_input, "the genesis input bytes");
    let genesis = hash_after(&flat, "genesis =");
    assert_eq!(genesis, GOLDEN_META.genesis().to_hex());
    assert_eq!(genesis, hex(blake3::hash(&genesis_input).as_bytes()));

    // The segment header.
    let header = between(&flat, "**Segment header** (", ")");
    assert_eq!(header, format!("offset 0, {SEGMENT_HEADER_BYTES} bytes"));
    assert_eq!(
        hex_block_after(&section, "**Segment header**"),
        segment[..SEGMENT_HEADER_BYTES],
        "the segment header bytes"
    );

    // Records 1 and 2: placement, length, bytes, envelope, hash and its input.
    let mut reader = Reader::open(&fixture_dir()).unwrap();
    for n in 1..=2u64 {
        let record = reader.next_record().unwrap().unwrap();
        let stored = &stored[n as usize - 1];
        let title = format!("**Record {n}** (");
        let text = between(&flat, &title, "**Record");
        let fields: Vec<&str> = between(&flat, &title, ")").split(", ").collect();
        let kind = EventKind::from_code(record.envelope().kind_code).unwrap();
        let len = record.payload.len();
        let bytes = RECORD_HEADER_BYTES + len + 32;
        assert_eq!(
            fields,
            [
                format!("offset {}", record.offset),
                format!("`{}`", kind.name()),
                format!("len {len} = {len:#x}"),
                format!("{bytes} bytes"),
            ],
            "record {n}'s title"
        );
        let start = record.offset as usize;
        assert_eq!(
            hex_block_after(&section, &format!("**Record {n}**")),
            segment[start..start + bytes],
            "record {n}'s bytes"
        );
        let read_as = after(text, "Read as:");
        assert_eq!(number_after(read_as, "seq"), n as i64, "record {n}: seq");
        assert_eq!(number_after(read_as, "len"), len as i64, "record {n}: len");
        if read_as.contains("len_check") {
            let check = between(read_as, "len_check ", ";");
            assert_eq!(check, format!("{:#010x}", !(len as u32)), "record {n}");
        }
        let envelope = record.envelope();
        assert_eq!(
            number_after(read_as, "version"),
            i64::from(envelope.schema_version),
            "record {n}: schema version"
        );
        assert_eq!(
            between(read_as, "kind ", ")"),
            format!("{} ({}", envelope.kind_code, kind.name()),
            "record {n}: kind"
        );
        assert_eq!(
            number_after(read_as, "market_ms"),
            envelope.market_ms,
            "record {n}: market_ms"
        );
        let hash_marker = format!("hash[{n}] =");
        assert_eq!(hash_after(text, &hash_marker), record.hash.to_hex());
        let input = between(after(text, &hash_marker), "BLAKE3(", ")");
        let parts: Vec<&str> = input.split('‖').map(str::trim).collect();
        let prev = if n == 1 {
            "genesis".to_string()
        } else {
            format!("hash[{}]", n - 1)
        };
        assert_eq!(parts.len(), 4, "record {n}: the hash input {input:?}");
        assert_eq!(parts[0], prev, "record {n}: hash input");
        assert_eq!(
            hex_tokens(parts[1]),
            n.to_le_bytes(),
            "record {n}: seq bytes"
        );
        assert_eq!(
            hex_tokens(parts[2]),
            (len as u32).to_le_bytes(),
            "record {n}: len bytes"
        );
        assert_eq!(parts[3], "payload");
        match &stored.event {
            Event::RunStarted(run) => {
                assert_eq!(between(read_as, "run_id (len 8) `", "`"), run.run_id);
                assert_eq!(between(read_as, "created_by `", "`"), run.created_by);
                assert_eq!(between(read_as, "git_sha `", "`"), run.git_sha);
                assert_eq!(
                    number_after(read_as, "config_text (len"),
                    run.config_text.len() as i64
                );
                assert_eq!(
                    between(read_as, "symbols (count 1) `", "`"),
                    run.symbols.join(",")
                );
                assert_eq!(
                    number_after(read_as, "granularity_s"),
                    i64::from(run.granularity_s)
                );
                assert_eq!(number_after(read_as, "start_ms"), run.start_ms);
                assert_eq!(Some(number_after(read_as, "end_ms `01` +")), run.end_ms);
                assert_eq!(
                    number_after(read_as, "starting_capital").to_string(),
                    run.starting_capital.to_string()
                );
            }
            Event::Candle(candle) => {
                assert_eq!(between(read_as, "symbol `", "`"), candle.symbol);
                assert_eq!(
                    number_after(read_as, "granularity_s"),
                    i64::from(candle.granularity_s)
                );
                assert_eq!(number_after(read_as, "open_ms"), candle.open_ms);
                let price = |name: &str| {
                    let rest = after(read_as, &format!(" {name} "));
                    rest.split([' ', ',', ';', '(']).next().unwrap().to_string()
                };
                assert_eq!(price("open"), candle.open.to_string());
                assert_eq!(price("high"), candle.high.to_string());
                assert_eq!(price("low"), candle.low.to_string());
                assert_eq!(price("close"), candle.close.to_string());
                assert_eq!(price("volume"), candle.volume.to_string());
            }
            other => panic!("§9 describes records 1 and 2 as RunStarted and Candle, not {other:?}"),
        }
    }

    // §5's Decimal example is the form of record 2's high.
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/FORMAT.md")).unwrap();
    let doc = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    let decimal = between(&doc, "Example: `104600.5` is `", "`");
    let value: rust_decimal::Decimal = "104600.5".parse().unwrap();
    assert_eq!(hex_tokens(decimal), value.serialize());
    assert!(hex(&segment).contains(&hex(&value.serialize())));
}
