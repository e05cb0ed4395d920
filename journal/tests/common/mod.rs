//! Helpers shared by the journal's integration tests.
#![allow(dead_code)]

use anx_journal::sample::{golden_events, GOLDEN_META};
use anx_journal::{
    Durability, Event, OpenCheck, Reader, StoredEvent, UnixMs, Writer, WriterOptions,
};
use std::path::{Path, PathBuf};

pub fn options(durability: Durability) -> WriterOptions {
    WriterOptions {
        durability,
        segment_bytes_max: anx_journal::writer::SEGMENT_BYTES_MAX_DEFAULT,
        open_check: OpenCheck::FullChain,
        schema: anx_journal::format::SCHEMA_VERSION_CURRENT,
    }
}

/// Writes `events` to a new journal in `dir` with the golden identity.
pub fn write_events(dir: &Path, events: &[(UnixMs, Event)], options: WriterOptions) {
    let mut writer = Writer::create(dir, GOLDEN_META, options).expect("create journal");
    for (market_ms, event) in events {
        writer.append(*market_ms, event).expect("append");
    }
    writer.close().expect("close");
}

/// The golden events as the schema-1 build wrote them (`golden-v1`).
pub fn write_golden(dir: &Path) {
    let options = WriterOptions {
        schema: 1,
        ..options(Durability::OnClose)
    };
    write_events(dir, &golden_events(), options);
}

/// The golden events at the current schema (`golden-v2`).
pub fn write_golden_v2(dir: &Path) {
    write_events(dir, &golden_events(), options(Durability::OnClose));
}

pub fn read_all(dir: &Path) -> Vec<StoredEvent> {
    let mut reader = Reader::open(dir).expect("open reader");
    let mut out = Vec::new();
    while let Some(event) = reader.next_event().expect("read event") {
        out.push(event);
    }
    out
}

/// The single segment file of a one-segment journal.
pub fn only_segment(dir: &Path) -> PathBuf {
    let segments = anx_journal::list_segments(dir).expect("list");
    assert_eq!(segments.len(), 1, "expected one segment");
    segments[0].path.clone()
}

/// Byte offset of each record in a one-segment journal, plus the end offset.
pub fn record_offsets(dir: &Path) -> Vec<u64> {
    let mut reader = Reader::open(dir).expect("open reader");
    let mut offsets = Vec::new();
    while let Some(record) = reader.next_record().expect("read") {
        offsets.push(record.offset);
    }
    offsets.push(std::fs::metadata(only_segment(dir)).expect("stat").len());
    offsets
}

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-v1")
}

/// Copies a journal directory's files (not subdirectories).
pub fn copy_journal(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

/// Cuts the last `bytes` bytes off the file at `path` (a crash mid-append);
/// returns its new length.
pub fn cut_tail(path: &Path, bytes: u64) -> u64 {
    let len = std::fs::metadata(path).unwrap().len() - bytes;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
    len
}
