//! The background writer writes exactly what the writer writes appended one
//! by one, and a failure on its thread reaches the caller.

mod common;

use anx_journal::sample::golden_events;
use anx_journal::{BackgroundWriter, Candle, Event, JournalError, Writer};
use common::*;

/// A new journal in `dir`, written through a background writer.
fn background(dir: &std::path::Path) -> BackgroundWriter {
    let options = options(anx_journal::Durability::OnClose);
    let writer = Writer::create(dir, anx_journal::sample::GOLDEN_META, options).unwrap();
    BackgroundWriter::start(writer).unwrap()
}

#[test]
fn it_writes_the_same_bytes_as_the_writer() {
    let direct = tempfile::tempdir().unwrap();
    write_golden_v2(direct.path());
    let dir = tempfile::tempdir().unwrap();
    let mut queued = background(dir.path());
    // More events than one batch, so batches cross the thread.
    let events: Vec<_> = golden_events().into_iter().cycle().take(1500).collect();
    for (i, (market_ms, event)) in events.iter().enumerate() {
        let seq = queued.append(*market_ms, event.clone()).unwrap();
        assert_eq!(seq, i as u64 + 1);
    }
    let head = queued.finish().unwrap().close().unwrap();
    assert_eq!(head.seq, 1500);
    let first_29 = std::fs::read(only_segment(direct.path())).unwrap();
    let all = std::fs::read(only_segment(dir.path())).unwrap();
    assert_eq!(
        all[..first_29.len()],
        first_29[..],
        "the same bytes, in order"
    );
    assert_eq!(read_all(dir.path()).len(), 1500);
}

#[test]
fn a_failure_on_its_thread_is_returned() {
    let dir = tempfile::tempdir().unwrap();
    let mut queued = background(dir.path());
    // A schema-2 symbol has at most 255 bytes: this one cannot be encoded.
    let bad = Event::Candle(Candle {
        symbol: "X".repeat(300),
        granularity_s: 60,
        open_ms: 0,
        open: 1.into(),
        high: 1.into(),
        low: 1.into(),
        close: 1.into(),
        volume: 1.into(),
    });
    queued.append(0, bad).unwrap();
    let error = (0..5000)
        .find_map(|_| queued.append(0, golden_events()[0].1.clone()).err())
        .or_else(|| queued.finish().err())
        .expect("the thread's failure comes back");
    assert!(
        matches!(&error, JournalError::Encode(why) if why.contains("255")),
        "{error}"
    );
}

#[test]
fn dropped_without_finish_it_still_writes_what_was_queued() {
    let dir = tempfile::tempdir().unwrap();
    let mut queued = background(dir.path());
    // Fewer than a batch: nothing was sent to the thread before the drop.
    for (market_ms, event) in golden_events().into_iter().take(20) {
        queued.append(market_ms, event).unwrap();
    }
    drop(queued);
    assert_eq!(
        read_all(dir.path()).len(),
        20,
        "a failed run loses nothing queued"
    );
}
