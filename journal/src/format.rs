//! The on-disk byte layout: segment headers, record framing, the envelope, the
//! genesis rule and the chain hash. `journal/FORMAT.md` is the normative text;
//! this module is its one implementation, and every constant here appears there.
//!
//! All integers are fixed-width little-endian.

use crate::codec::Hash32;
use crate::event::{EventKind, Seq, UnixMs};

/// The format version written into every segment header.
pub const FORMAT_VERSION: u32 = 1;
/// First bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"ANXJRNL\0";
/// Size of a format-version-1 segment header.
pub const SEGMENT_HEADER_BYTES: usize = 112;
/// Offset of the header hash inside the header (it covers bytes `0..80`).
const HEADER_HASH_OFFSET: usize = 80;
/// Bytes before a record's payload: seq (u64), len (u32), len_check (u32).
pub const RECORD_HEADER_BYTES: usize = 16;
/// Bytes after a record's payload: its chain hash.
pub const RECORD_TRAILER_BYTES: usize = 32;
/// Framing bytes per record.
pub const RECORD_OVERHEAD_BYTES: usize = RECORD_HEADER_BYTES + RECORD_TRAILER_BYTES;
/// The largest payload a record may carry. A length above it is never valid, so a
/// damaged length field cannot send a reader gigabytes ahead.
pub const PAYLOAD_BYTES_MAX: u32 = 1 << 20;
/// Envelope bytes before the body: schema version (u16), kind (u16), market time (i64).
pub const ENVELOPE_BYTES: usize = 12;
/// The journal schema a writer writes by default: `Candle` and `Decision` at
/// version 2, every other kind at 1 ([`EventKind::written_at`]).
pub const SCHEMA_VERSION_CURRENT: u16 = 2;
/// Domain-separation prefix of the genesis hash input.
pub const GENESIS_DOMAIN: &[u8; 16] = b"anx-genesis-v1\0\0";
/// Segment files are named `seg-<first seq, 20 digits>.anxj`.
pub const SEGMENT_PREFIX: &str = "seg-";
pub const SEGMENT_SUFFIX: &str = ".anxj";

/// A journal's identity: fixed at creation, repeated in every segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalMeta {
    pub journal_id: [u8; 16],
    pub created_ms: UnixMs,
}

impl JournalMeta {
    /// The hash the first record chains from.
    pub fn genesis(&self) -> Hash32 {
        genesis_hash(FORMAT_VERSION, self)
    }

    pub fn journal_id_hex(&self) -> String {
        self.journal_id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// `BLAKE3(GENESIS_DOMAIN ‖ format_version u32 ‖ journal_id[16] ‖ created_ms i64)`.
pub fn genesis_hash(format_version: u32, meta: &JournalMeta) -> Hash32 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(GENESIS_DOMAIN);
    hasher.update(&format_version.to_le_bytes());
    hasher.update(&meta.journal_id);
    hasher.update(&meta.created_ms.to_le_bytes());
    hasher.finalize().into()
}

/// Bytes of the chain-hash input before the payload: prev hash, seq, len.
pub const HASH_PREFIX_BYTES: usize = 44;

/// Writes the chain-hash input prefix `prev_hash[32] ‖ seq u64 ‖ len u32`.
#[inline]
pub fn write_hash_prefix(out: &mut [u8], prev: &Hash32, seq: Seq, len: u32) {
    out[..32].copy_from_slice(&prev.0);
    out[32..40].copy_from_slice(&seq.to_le_bytes());
    out[40..HASH_PREFIX_BYTES].copy_from_slice(&len.to_le_bytes());
}

/// `BLAKE3(prev_hash[32] ‖ seq u64 ‖ len u32 ‖ payload[len])`.
#[inline]
pub fn chain_hash(prev: &Hash32, seq: Seq, payload: &[u8]) -> Hash32 {
    let mut prefix = [0u8; HASH_PREFIX_BYTES];
    write_hash_prefix(&mut prefix, prev, seq, payload.len() as u32);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&prefix);
    hasher.update(payload);
    hasher.finalize().into()
}

/// The decoded header of one segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub format_version: u32,
    pub meta: JournalMeta,
    /// Seq of the first record in this segment.
    pub first_seq: Seq,
    /// The chain hash before this segment's first record.
    pub prev_hash: Hash32,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut out = [0u8; SEGMENT_HEADER_BYTES];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..12].copy_from_slice(&self.format_version.to_le_bytes());
        out[12..16].copy_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_le_bytes());
        out[16..32].copy_from_slice(&self.meta.journal_id);
        out[32..40].copy_from_slice(&self.meta.created_ms.to_le_bytes());
        out[40..48].copy_from_slice(&self.first_seq.to_le_bytes());
        out[48..80].copy_from_slice(&self.prev_hash.0);
        let hash = blake3::hash(&out[..HEADER_HASH_OFFSET]);
        out[HEADER_HASH_OFFSET..].copy_from_slice(hash.as_bytes());
        out
    }

    /// Parses and checks a header: magic, version, declared length and header hash.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, &'static str> {
        if bytes.len() < SEGMENT_HEADER_BYTES {
            return Err("segment shorter than its header");
        }
        if bytes[0..8] != SEGMENT_MAGIC {
            return Err("bad segment magic");
        }
        let format_version = read_u32(bytes, 8);
        if format_version != FORMAT_VERSION {
            return Err("unsupported segment format version");
        }
        if read_u32(bytes, 12) as usize != SEGMENT_HEADER_BYTES {
            return Err("bad segment header length");
        }
        let expected = blake3::hash(&bytes[..HEADER_HASH_OFFSET]);
        if bytes[HEADER_HASH_OFFSET..SEGMENT_HEADER_BYTES] != *expected.as_bytes() {
            return Err("segment header hash mismatch");
        }
        let mut journal_id = [0u8; 16];
        journal_id.copy_from_slice(&bytes[16..32]);
        let mut prev_hash = [0u8; 32];
        prev_hash.copy_from_slice(&bytes[48..80]);
        Ok(SegmentHeader {
            format_version,
            meta: JournalMeta {
                journal_id,
                created_ms: read_i64(bytes, 32),
            },
            first_seq: read_u64(bytes, 40),
            prev_hash: Hash32(prev_hash),
        })
    }
}

/// `seg-00000000000000000001.anxj` for a segment whose first seq is 1.
pub fn segment_file_name(first_seq: Seq) -> String {
    format!("{SEGMENT_PREFIX}{first_seq:020}{SEGMENT_SUFFIX}")
}

/// The first seq encoded in a segment file name, if the name is one.
pub fn parse_segment_file_name(name: &str) -> Option<Seq> {
    let digits = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The record header fields, before they are checked against anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub seq: Seq,
    pub len: u32,
    pub len_check: u32,
}

impl RecordHeader {
    pub fn new(seq: Seq, len: u32) -> RecordHeader {
        RecordHeader {
            seq,
            len,
            len_check: !len,
        }
    }

    pub fn encode(&self) -> [u8; RECORD_HEADER_BYTES] {
        let mut out = [0u8; RECORD_HEADER_BYTES];
        out[0..8].copy_from_slice(&self.seq.to_le_bytes());
        out[8..12].copy_from_slice(&self.len.to_le_bytes());
        out[12..16].copy_from_slice(&self.len_check.to_le_bytes());
        out
    }

    /// Reads the 16 header bytes at the start of `bytes`; `None` when fewer remain.
    pub fn decode(bytes: &[u8]) -> Option<RecordHeader> {
        if bytes.len() < RECORD_HEADER_BYTES {
            return None;
        }
        Some(RecordHeader {
            seq: read_u64(bytes, 0),
            len: read_u32(bytes, 8),
            len_check: read_u32(bytes, 12),
        })
    }

    /// The length field is trustworthy: its check matches and it is within limits.
    pub fn len_is_valid(&self) -> bool {
        self.len_check == !self.len
            && self.len >= ENVELOPE_BYTES as u32
            && self.len <= PAYLOAD_BYTES_MAX
    }

    /// Bytes of the whole record (header, payload, hash).
    pub fn record_bytes(&self) -> usize {
        RECORD_OVERHEAD_BYTES + self.len as usize
    }
}

/// The envelope at the front of every payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub schema_version: u16,
    pub kind_code: u16,
    pub market_ms: UnixMs,
}

impl Envelope {
    /// The envelope of a `kind` record written by a writer of journal schema `schema`.
    pub fn new(kind: EventKind, market_ms: UnixMs, schema: u16) -> Envelope {
        Envelope {
            schema_version: kind.written_at(schema),
            kind_code: kind.code(),
            market_ms,
        }
    }

    pub fn encode(&self) -> [u8; ENVELOPE_BYTES] {
        let mut out = [0u8; ENVELOPE_BYTES];
        out[0..2].copy_from_slice(&self.schema_version.to_le_bytes());
        out[2..4].copy_from_slice(&self.kind_code.to_le_bytes());
        out[4..12].copy_from_slice(&self.market_ms.to_le_bytes());
        out
    }

    /// Reads the envelope at the front of a payload; `None` when the payload
    /// is shorter than an envelope.
    pub fn decode(payload: &[u8]) -> Option<Envelope> {
        if payload.len() < ENVELOPE_BYTES {
            return None;
        }
        Some(Envelope {
            schema_version: u16::from_le_bytes([payload[0], payload[1]]),
            kind_code: u16::from_le_bytes([payload[2], payload[3]]),
            market_ms: read_i64(payload, 4),
        })
    }
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(raw)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

fn read_i64(bytes: &[u8], at: usize) -> i64 {
    read_u64(bytes, at) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_file_name(1), "seg-00000000000000000001.anxj");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_file_name("seg-1.anxj"), None);
        assert_eq!(
            parse_segment_file_name("seg-0000000000000000000x.anxj"),
            None
        );
        assert_eq!(parse_segment_file_name("LOCK"), None);
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let header = SegmentHeader {
            format_version: FORMAT_VERSION,
            meta: JournalMeta {
                journal_id: [7; 16],
                created_ms: 1_700_000_000_000,
            },
            first_seq: 42,
            prev_hash: Hash32([9; 32]),
        };
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        for i in 0..bytes.len() {
            let mut damaged = bytes;
            damaged[i] ^= 0x01;
            assert!(SegmentHeader::decode(&damaged).is_err(), "byte {i}");
        }
    }

    #[test]
    fn record_length_check() {
        let header = RecordHeader::new(5, 100);
        assert!(header.len_is_valid());
        assert_eq!(RecordHeader::decode(&header.encode()), Some(header));
        let mut damaged = header;
        damaged.len = 101;
        assert!(!damaged.len_is_valid());
        assert!(!RecordHeader::new(5, PAYLOAD_BYTES_MAX + 1).len_is_valid());
        assert!(!RecordHeader::new(5, 3).len_is_valid());
    }
}
