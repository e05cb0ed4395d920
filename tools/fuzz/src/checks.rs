//! The checks behind the journal's fuzz targets, shared by the fuzzers
//! (`tools/fuzz/fuzz_targets/*.rs`) and by the corpus replay in the normal
//! test suite (`journal/tests/fuzz_corpus.rs`), so CI runs every input the
//! fuzzers ever kept through exactly what the fuzzers check.
//!
//! Each check takes arbitrary bytes and must neither panic nor hang; beyond
//! that it asserts what must hold for any input:
//!
//! - [`payload`]: `decode_payload` never panics, and a body that decodes
//!   re-encodes to exactly the stored bytes.
//! - [`segments`]: the bytes are a recipe for a journal directory whose
//!   chains are built right by the harness (so the fuzzer gets past the
//!   hashes) and then damaged as the recipe says; `verify`, the `Reader`
//!   (from the start and from a seq) and `stream_events` agree on it.
//! - [`random_access`]: `read_record_at` from a known or a forged position
//!   either fails or returns exactly the record the chain holds there.
//!
//! Limits keep every input small: at most [`SEGMENTS_MAX`] segments of
//! [`RECORDS_MAX`] records of at most [`BODY_BYTES_MAX`] body bytes.

use anx_journal::codec::Hash32;
use anx_journal::format::{
    chain_hash, segment_file_name, Envelope, JournalMeta, RecordHeader, SegmentHeader,
    FORMAT_VERSION,
};
use anx_journal::reader::read_record_at;
use anx_journal::{
    body_bytes_into, decode_payload, list_segments, sample, stream_events, verify, EventKind,
    JournalError, Reader, Seq, TailPolicy,
};
use std::path::Path;

pub const SEGMENTS_MAX: u8 = 3;
pub const RECORDS_MAX: u8 = 8;
pub const BODY_BYTES_MAX: u8 = 96;
pub const DAMAGES_MAX: u8 = 3;

/// The recipe's bytes, read front to back; zeros once they run out.
struct Input<'a> {
    bytes: &'a [u8],
}

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((first, rest)) => {
                self.bytes = rest;
                *first
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        let mut raw = [0u8; 8];
        for byte in raw.iter_mut() {
            *byte = self.u8();
        }
        u64::from_le_bytes(raw)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
}

/// Decoding one payload (envelope ‖ body).
pub fn payload(data: &[u8]) {
    let Ok(event) = decode_payload(1, data) else {
        return;
    };
    let envelope = Envelope::decode(data).expect("a payload that decodes has an envelope");
    assert_eq!(EventKind::from_code(envelope.kind_code), Some(event.kind()));
    let mut body = Vec::new();
    body_bytes_into(
        &event,
        envelope.schema_version,
        envelope.market_ms,
        &mut body,
    )
    .expect("a decoded body re-encodes");
    assert_eq!(
        body,
        data[12..],
        "a decoded {} must re-encode to its stored body",
        event.kind()
    );
}

/// A payload the harness puts into a record: a golden event (so bodies that
/// decode are common) or arbitrary bytes behind an envelope.
fn record_payload(input: &mut Input) -> Vec<u8> {
    let choice = input.u8();
    // Either journal schema: 1 (what older builds wrote) or 2.
    let schema = 1 + u16::from(input.u8() & 1);
    let golden = sample::golden_events();
    if usize::from(choice) < golden.len() * 2 && choice.is_multiple_of(2) {
        let (market_ms, event) = &golden[usize::from(choice / 2)];
        let mut payload = Envelope::new(event.kind(), *market_ms, schema)
            .encode()
            .to_vec();
        let mut body = Vec::new();
        body_bytes_into(
            event,
            event.kind().written_at(schema),
            *market_ms,
            &mut body,
        )
        .expect("a golden event encodes");
        payload.extend(body);
        return payload;
    }
    let len = usize::from(input.u8() % BODY_BYTES_MAX);
    let mut payload = input.bytes(12);
    payload[0] = schema as u8;
    payload[1] = 0;
    payload.extend(input.bytes(len));
    payload
}

/// Writes the journal the recipe describes into `dir`; returns the seq to
/// open a reader from.
fn build_journal(dir: &Path, input: &mut Input) -> Seq {
    let meta = sample::GOLDEN_META;
    let segments = 1 + input.u8() % SEGMENTS_MAX;
    let mut next_seq: Seq = 1;
    let mut prev = meta.genesis();
    let mut files = Vec::new();
    for _ in 0..segments {
        let flags = input.u8();
        // Now and then a header claims any first seq (the harness still
        // chains the records it writes from there).
        if flags & 1 == 1 {
            next_seq = input.u64();
        }
        let header = SegmentHeader {
            format_version: FORMAT_VERSION,
            meta: if flags & 2 == 2 {
                JournalMeta {
                    journal_id: *b"another-journal!",
                    created_ms: 0,
                }
            } else {
                meta
            },
            first_seq: next_seq,
            prev_hash: prev,
        };
        let mut bytes = header.encode().to_vec();
        for _ in 0..input.u8() % (RECORDS_MAX + 1) {
            let payload = record_payload(input);
            let hash = chain_hash(&prev, next_seq, &payload);
            bytes.extend(RecordHeader::new(next_seq, payload.len() as u32).encode());
            bytes.extend(&payload);
            bytes.extend(hash.0);
            prev = hash;
            next_seq = next_seq.wrapping_add(1);
        }
        files.push((segment_file_name(header.first_seq), bytes));
    }
    for _ in 0..input.u8() % (DAMAGES_MAX + 1) {
        let target = usize::from(input.u8()) % files.len();
        let bytes = &mut files[target].1;
        let at = (usize::from(input.u8()) << 8 | usize::from(input.u8())) % (bytes.len() + 1);
        match input.u8() % 3 {
            0 => bytes.truncate(at),
            1 if at < bytes.len() => bytes[at] ^= input.u8() | 1,
            _ => {
                let n = usize::from(input.u8() % 64);
                bytes.extend(input.bytes(n));
            }
        }
    }
    for (name, bytes) in &files {
        // Two segments may claim the same first seq: the later one wins.
        std::fs::write(dir.join(name), bytes).expect("write a segment");
    }
    input.u64()
}

/// A scratch directory, in memory where the machine has one.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("a temporary directory")
}

/// Every record a strict reader hands out before it stops: (seq, hash), and
/// the error it stopped with.
fn read_all(reader: &mut Reader) -> (Vec<(Seq, Hash32)>, Option<JournalError>) {
    let mut records = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(record)) => records.push((record.seq, record.hash)),
            Ok(None) => return (records, None),
            Err(error) => return (records, Some(error)),
        }
    }
}

/// A journal directory built from a recipe, read every way there is.
pub fn segments(data: &[u8]) {
    let dir = scratch();
    let from_seq = build_journal(dir.path(), &mut Input { bytes: data });
    let Ok(report) = verify(dir.path(), None) else {
        // An error that is not about the chain (a file that cannot be read).
        return;
    };
    let mut reader = Reader::open_with(dir.path(), TailPolicy::Strict).expect("verify opened it");
    let (records, stopped) = read_all(&mut reader);
    assert_eq!(
        records.len() as u64,
        report.events,
        "verify and the reader agree"
    );
    assert_eq!(
        report.ok(),
        stopped.is_none(),
        "{:?} vs {stopped:?}",
        report.fault
    );
    if let (Some(fault), Some(error)) = (&report.fault, &stopped) {
        assert_eq!(error.fault(), Some(fault), "the same first fault");
    }
    for pair in records.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "seqs increase by one");
    }
    if let Some(&(seq, hash)) = records.last() {
        assert_eq!((report.head.seq, report.head.hash), (seq, hash));
    }
    assert!(records.iter().all(|(seq, _)| *seq >= 1 && *seq < Seq::MAX));
    // The two-core stream hands out the same records, decoded, until the
    // first record that fails to verify or decode.
    let mut reader = Reader::open(dir.path()).expect("opened above");
    let mut streamed = Vec::new();
    let result = stream_events(&mut reader, Seq::MAX, |event| {
        streamed.push((event.seq, event.hash));
        Ok::<(), ()>(())
    });
    assert!(streamed.len() <= records.len());
    assert_eq!(streamed[..], records[..streamed.len()]);
    if result.is_ok() {
        assert_eq!(streamed.len(), records.len());
    }
    // From a seq: anchored on a later segment, its records checked and only
    // those from `from_seq` on handed out, in order.
    if let Ok(mut reader) = Reader::open_from(dir.path(), from_seq, TailPolicy::StopAtTorn) {
        let (from, _) = read_all(&mut reader);
        assert!(from.iter().all(|(seq, _)| *seq >= from_seq && *seq >= 1));
        for pair in from.windows(2) {
            assert_eq!(pair[1].0, pair[0].0 + 1);
        }
    }
}

/// `read_record_at` from a position the recipe picks among the real ones or
/// makes up.
pub fn random_access(data: &[u8]) {
    let dir = scratch();
    let mut input = Input { bytes: data };
    let meta = sample::GOLDEN_META;
    let mut bytes = SegmentHeader {
        format_version: FORMAT_VERSION,
        meta,
        first_seq: 1,
        prev_hash: meta.genesis(),
    }
    .encode()
    .to_vec();
    let mut prev = meta.genesis();
    // (seq, offset, hash) of every record written.
    let mut table = Vec::new();
    for seq in 1..=Seq::from(1 + input.u8() % RECORDS_MAX) {
        let payload = record_payload(&mut input);
        let hash = chain_hash(&prev, seq, &payload);
        table.push((seq, bytes.len() as u64, hash));
        bytes.extend(RecordHeader::new(seq, payload.len() as u32).encode());
        bytes.extend(&payload);
        bytes.extend(hash.0);
        prev = hash;
    }
    if input.u8().is_multiple_of(4) {
        let at = usize::from(input.u8()) * 4 % bytes.len();
        bytes[at] ^= input.u8() | 1;
    }
    std::fs::write(dir.path().join(segment_file_name(1)), &bytes).expect("write the segment");
    let segment = &list_segments(dir.path()).expect("listed")[0];
    let pick = |i: u8| table[usize::from(i) % table.len()];
    let (start_seq, start_offset, target) = match input.u8() % 3 {
        0 => {
            let (start, target) = (pick(input.u8()), pick(input.u8()));
            (start.0, start.1, target.0)
        }
        1 => (input.u64(), input.u64(), input.u64()),
        _ => (
            input.u64() % 16,
            input.u64() % (bytes.len() as u64 + 64),
            input.u64() % 16,
        ),
    };
    if let Ok((stored, offset)) = read_record_at(segment, start_seq, start_offset, target) {
        let (seq, at, hash) = table
            .iter()
            .copied()
            .find(|(seq, _, _)| *seq == target)
            .expect("only a record the journal holds is returned");
        assert_eq!((stored.seq, stored.hash, offset), (seq, hash, at));
    }
}
