//! Reading a journal: segment discovery, and a scanner that verifies every record
//! against the chain before handing it out. No unverified byte reaches a caller.
//!
//! The scanner also classifies a failure: a fault in the last segment with no
//! plausible record after it is a *torn tail* (what a crash mid-append leaves);
//! anything else is *corruption*. The writer repairs the first and refuses the
//! second; verification reports both.

use crate::codec::Hash32;
use crate::error::{Fault, FaultReason, JournalError, Result};
use crate::event::{Event, EventKind, Seq, UnixMs};
use crate::format::{
    chain_hash, parse_segment_file_name, Envelope, JournalMeta, RecordHeader, SegmentHeader,
    ENVELOPE_BYTES, RECORD_HEADER_BYTES, RECORD_OVERHEAD_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::storage::{FsStorage, ReadFile, Storage};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Opens a segment file for reading and returns it with its length: the
/// bytes any read of it may cover. Only a regular file is read (a symbolic
/// link to one is followed): a FIFO, a device such as `/dev/zero` or a
/// directory under a segment's name is refused with an error naming it, and
/// never opened ([`Storage::open_read`]).
pub fn open_segment(path: &Path) -> Result<(Box<dyn ReadFile>, u64)> {
    open_segment_with(&mut FsStorage, path)
}

/// [`open_segment`] through `storage`.
pub fn open_segment_with(
    storage: &mut dyn Storage,
    path: &Path,
) -> Result<(Box<dyn ReadFile>, u64)> {
    match storage.open_read(path) {
        Ok(Some(opened)) => Ok(opened),
        Ok(None) => Err(JournalError::NotRegularFile(path.to_path_buf())),
        Err(e) => Err(JournalError::io(path, e)),
    }
}

/// Reads up to `max` bytes from the start of a segment file (fewer if the
/// file is shorter), through [`open_segment`]: for callers that need only a
/// segment's header.
pub fn read_segment_prefix(path: &Path, max: usize) -> Result<Vec<u8>> {
    read_segment_prefix_with(&mut FsStorage, path, max)
}

/// [`read_segment_prefix`] through `storage`.
pub fn read_segment_prefix_with(
    storage: &mut dyn Storage,
    path: &Path,
    max: usize,
) -> Result<Vec<u8>> {
    let (file, len) = open_segment_with(storage, path)?;
    let want = (max as u64).min(len);
    let mut bytes = Vec::with_capacity(want as usize);
    file.take(want)
        .read_to_end(&mut bytes)
        .map_err(|e| JournalError::io(path, e))?;
    Ok(bytes)
}

/// Reads and decodes a segment's header. A header that does not decode (too
/// short, bad magic, version or header hash) is corruption at offset 0 of
/// the segment, reported at the seq its name says; whether the header fits
/// the journal around it is the caller's to check.
pub fn read_segment_header_with(
    storage: &mut dyn Storage,
    segment: &SegmentFileInfo,
) -> Result<SegmentHeader> {
    let bytes = read_segment_prefix_with(storage, &segment.path, SEGMENT_HEADER_BYTES)?;
    SegmentHeader::decode(&bytes).map_err(|why| {
        JournalError::Corrupt(Fault {
            seq: segment.first_seq,
            segment: segment.name.clone(),
            offset: 0,
            reason: FaultReason::SegmentHeader(why),
            torn_tail: false,
        })
    })
}

/// The journal's identity (id and creation time) as a segment's header
/// records it – the first segment's, for the journal's own – read without
/// reading any record.
pub fn read_journal_meta(segment: &SegmentFileInfo) -> Result<JournalMeta> {
    read_journal_meta_with(&mut FsStorage, segment)
}

/// [`read_journal_meta`] through `storage`.
pub fn read_journal_meta_with(
    storage: &mut dyn Storage,
    segment: &SegmentFileInfo,
) -> Result<JournalMeta> {
    Ok(read_segment_header_with(storage, segment)?.meta)
}

/// A segment file found in a journal directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentFileInfo {
    pub name: String,
    pub path: PathBuf,
    /// The first seq, as the file name says.
    pub first_seq: Seq,
}

/// Lists a journal's segment files, ordered by first seq. Other files (the lock,
/// the derived index, leftover `.tmp` files) are ignored. An entry with a
/// segment's name that is not a regular file (or a symbolic link to one) is an
/// error naming it: nothing under that name could be a segment.
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentFileInfo>> {
    let entries = std::fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(first_seq) = parse_segment_file_name(&name) {
            let path = entry.path();
            let metadata = std::fs::metadata(&path).map_err(|e| JournalError::io(&path, e))?;
            if !metadata.is_file() {
                return Err(JournalError::NotRegularFile(path));
            }
            segments.push(SegmentFileInfo {
                path,
                name,
                first_seq,
            });
        }
    }
    segments.sort_by_key(|segment| segment.first_seq);
    Ok(segments)
}

/// One verified record, borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a> {
    pub seq: Seq,
    pub hash: Hash32,
    /// The payload exactly as stored (envelope + body).
    pub payload: &'a [u8],
    /// Index of the segment in the journal's segment list.
    pub segment_index: usize,
    /// Byte offset of the record in its segment.
    pub offset: u64,
}

impl RecordRef<'_> {
    /// The payload's envelope. A record read from a journal always has one
    /// (its length was checked against the 12-byte minimum before its hash).
    pub fn envelope(&self) -> Envelope {
        Envelope::decode(self.payload).expect("a verified record's payload holds an envelope")
    }

    pub fn market_ms(&self) -> UnixMs {
        self.envelope().market_ms
    }

    /// Decodes the event, dispatching on the envelope's kind and schema version.
    pub fn decode(&self) -> Result<Event> {
        decode_payload(self.seq, self.payload)
    }

    pub fn to_stored(&self) -> Result<StoredEvent> {
        Ok(StoredEvent {
            seq: self.seq,
            hash: self.hash,
            market_ms: self.market_ms(),
            schema_version: self.envelope().schema_version,
            event: self.decode()?,
        })
    }
}

/// An owned, verified and decoded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: Seq,
    pub hash: Hash32,
    pub market_ms: UnixMs,
    /// The record's schema version (its envelope's): what its body is
    /// compared in when a step is re-driven.
    pub schema_version: u16,
    pub event: Event,
}

/// Decodes a stored payload. Old schema versions stay decodable forever: add a
/// match arm per version, never change an existing one.
pub fn decode_payload(seq: Seq, payload: &[u8]) -> Result<Event> {
    let envelope = Envelope::decode(payload).ok_or_else(|| JournalError::Decode {
        seq,
        what: "envelope".into(),
        reason: format!(
            "the payload is {} bytes, shorter than the {ENVELOPE_BYTES}-byte envelope",
            payload.len()
        ),
    })?;
    let kind = EventKind::from_code(envelope.kind_code).ok_or_else(|| JournalError::Decode {
        seq,
        what: format!("event kind {}", envelope.kind_code),
        reason: "unknown kind (written by a newer anx?)".into(),
    })?;
    let body = &payload[ENVELOPE_BYTES..];
    let decoded =
        crate::event::decode_body(kind, envelope.schema_version, envelope.market_ms, body);
    decoded.map_err(|reason| JournalError::Decode {
        seq,
        what: format!("{kind} body"),
        reason,
    })
}

/// What a reader does when it meets a torn tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailPolicy {
    /// A torn tail is an error ([`JournalError::TornTail`]).
    Strict,
    /// A torn tail ends the stream quietly (for readers of a journal a writer may
    /// be appending to right now); [`Reader::torn_tail`] says it was met.
    StopAtTorn,
}

/// Streams verified records from the first segment on.
pub struct Reader {
    dir: PathBuf,
    /// What segments are read through.
    storage: Box<dyn Storage>,
    segments: Vec<SegmentFileInfo>,
    tail_policy: TailPolicy,
    /// The segment being read, whole.
    buf: Vec<u8>,
    loaded: Option<usize>,
    pos: usize,
    next_index: usize,
    expected_seq: Seq,
    prev: Hash32,
    meta: Option<JournalMeta>,
    torn: Option<Fault>,
    done: bool,
    bytes_read: u64,
    /// Records before this seq are verified but not handed out.
    from_seq: Seq,
}

impl Reader {
    /// Opens a journal for reading with [`TailPolicy::Strict`].
    pub fn open(dir: &Path) -> Result<Reader> {
        Reader::open_with(dir, TailPolicy::Strict)
    }

    pub fn open_with(dir: &Path, tail_policy: TailPolicy) -> Result<Reader> {
        Reader::open_with_storage(dir, tail_policy, Box::new(FsStorage))
    }

    /// [`Reader::open_with`], reading every segment through `storage`.
    pub fn open_with_storage(
        dir: &Path,
        tail_policy: TailPolicy,
        storage: Box<dyn Storage>,
    ) -> Result<Reader> {
        let segments = list_segments(dir)?;
        if segments.is_empty() {
            return Err(JournalError::NotAJournal(dir.to_path_buf()));
        }
        Ok(Reader::over(dir, segments, 0, tail_policy, storage))
    }

    /// Starts at segment `start` (0-based) of `segments`, anchored on that
    /// segment's recorded previous hash. Earlier segments are not read.
    pub(crate) fn over(
        dir: &Path,
        segments: Vec<SegmentFileInfo>,
        start: usize,
        tail_policy: TailPolicy,
        storage: Box<dyn Storage>,
    ) -> Reader {
        Reader {
            dir: dir.to_path_buf(),
            storage,
            segments,
            tail_policy,
            buf: Vec::new(),
            loaded: None,
            pos: 0,
            next_index: start,
            expected_seq: 0,
            prev: Hash32::default(),
            meta: None,
            torn: None,
            done: false,
            bytes_read: 0,
            from_seq: 0,
        }
    }

    /// Opens a journal to read from `from_seq` on: starts at the segment holding
    /// it, anchored on that segment's recorded previous hash, and verifies the
    /// chain from there (records before `from_seq` are checked, not returned).
    /// Earlier segments are not read: a full check is `verify`'s job.
    pub fn open_from(dir: &Path, from_seq: Seq, tail_policy: TailPolicy) -> Result<Reader> {
        let segments = list_segments(dir)?;
        if segments.is_empty() {
            return Err(JournalError::NotAJournal(dir.to_path_buf()));
        }
        let start = segments
            .iter()
            .rposition(|s| s.first_seq <= from_seq)
            .unwrap_or(0);
        let mut reader = Reader::over(dir, segments, start, tail_policy, Box::new(FsStorage));
        reader.from_seq = from_seq;
        Ok(reader)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The storage the reader reads through, back (for the writer, whose
    /// open-time scan reads through its own).
    pub(crate) fn into_storage(self) -> Box<dyn Storage> {
        self.storage
    }

    pub fn segments(&self) -> &[SegmentFileInfo] {
        &self.segments
    }

    /// The journal identity, once the first segment header was read.
    pub fn meta(&self) -> Option<JournalMeta> {
        self.meta
    }

    /// The last verified seq and hash (seq 0 and the genesis hash before any record).
    pub fn head(&self) -> (Seq, Hash32) {
        (self.expected_seq.saturating_sub(1), self.prev)
    }

    /// The torn tail met under [`TailPolicy::StopAtTorn`].
    pub fn torn_tail(&self) -> Option<&Fault> {
        self.torn.as_ref()
    }

    /// Segment bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next verified record, `None` at the end of the journal.
    pub fn next_record(&mut self) -> Result<Option<RecordRef<'_>>> {
        if self.done {
            return Ok(None);
        }
        loop {
            let Some(index) = self.loaded else {
                if self.next_index >= self.segments.len() {
                    self.done = true;
                    return Ok(None);
                }
                self.load_segment(self.next_index)?;
                continue;
            };
            if self.pos == self.buf.len() {
                self.loaded = None;
                self.next_index = index + 1;
                continue;
            }
            match self.check_record(index) {
                Ok((header, hash)) => {
                    let offset = self.pos;
                    let payload_start = offset + RECORD_HEADER_BYTES;
                    self.pos = offset + header.record_bytes();
                    // `check_record` refused `Seq::MAX`: no overflow here.
                    self.expected_seq += 1;
                    self.prev = hash;
                    if header.seq < self.from_seq {
                        continue;
                    }
                    return Ok(Some(RecordRef {
                        seq: header.seq,
                        hash,
                        payload: &self.buf[payload_start..payload_start + header.len as usize],
                        segment_index: index,
                        offset: offset as u64,
                    }));
                }
                Err(fault) => {
                    self.done = true;
                    if fault.torn_tail && self.tail_policy == TailPolicy::StopAtTorn {
                        self.torn = Some(fault);
                        return Ok(None);
                    }
                    return Err(self.fault_error(fault));
                }
            }
        }
    }

    /// The next verified and decoded event.
    pub fn next_event(&mut self) -> Result<Option<StoredEvent>> {
        match self.next_record()? {
            Some(record) => record.to_stored().map(Some),
            None => Ok(None),
        }
    }

    fn fault_error(&self, fault: Fault) -> JournalError {
        if fault.torn_tail {
            JournalError::TornTail(fault)
        } else {
            JournalError::Corrupt(fault)
        }
    }

    /// Reads segment `index` whole and checks its header against the journal
    /// read so far; the first segment read anchors the chain.
    fn load_segment(&mut self, index: usize) -> Result<()> {
        self.read_whole_segment(index)?;
        let info = &self.segments[index];
        let header = SegmentHeader::decode(&self.buf).map_err(|why| {
            self.segment_corrupt(index, info.first_seq, FaultReason::SegmentHeader(why))
        })?;
        self.check_segment_name(index, &header)?;
        match self.meta {
            None => self.anchor_chain(index, &header)?,
            Some(meta) => self.check_segment_continues(index, &header, meta)?,
        }
        self.loaded = Some(index);
        self.pos = SEGMENT_HEADER_BYTES;
        Ok(())
    }

    /// Reads segment `index` into the buffer, no more than the length the
    /// opened file had.
    fn read_whole_segment(&mut self, index: usize) -> Result<()> {
        let info = &self.segments[index];
        self.buf.clear();
        let (file, len) = open_segment_with(self.storage.as_mut(), &info.path)?;
        // Reserve the whole file first (growing the buffer while reading would
        // copy it again and again), and read no more than its length said.
        self.buf.reserve(len as usize);
        file.take(len)
            .read_to_end(&mut self.buf)
            .map_err(|e| JournalError::io(&info.path, e))?;
        self.bytes_read += self.buf.len() as u64;
        Ok(())
    }

    /// A fault in segment `index`'s header (offset 0), reported at `seq`. It
    /// is never a torn tail: a segment appears under its name only with its
    /// whole header (written to a `.tmp` file, synced, then renamed).
    fn segment_corrupt(&self, index: usize, seq: Seq, reason: FaultReason) -> JournalError {
        JournalError::Corrupt(Fault {
            seq,
            segment: self.segments[index].name.clone(),
            offset: 0,
            reason,
            torn_tail: false,
        })
    }

    /// The header's first seq must be the one the file's name says.
    fn check_segment_name(&self, index: usize, header: &SegmentHeader) -> Result<()> {
        let info = &self.segments[index];
        if header.first_seq == info.first_seq {
            return Ok(());
        }
        // Reported at the seq expected here: the one after the records
        // read so far, 1 for the journal's first segment, and the name's
        // for the first segment of a reader that starts later.
        let expected = match self.meta {
            Some(_) => self.expected_seq,
            None if index == 0 => 1,
            None => info.first_seq,
        };
        Err(self.segment_corrupt(
            index,
            expected,
            FaultReason::SegmentNameMismatch {
                name_seq: info.first_seq,
                header_seq: header.first_seq,
            },
        ))
    }

    /// The first segment read anchors the chain: the genesis for the
    /// journal's first segment, the recorded previous hash otherwise.
    fn anchor_chain(&mut self, index: usize, header: &SegmentHeader) -> Result<()> {
        let anchor_ok = if index == 0 {
            header.first_seq == 1 && header.prev_hash == header.meta.genesis()
        } else {
            true
        };
        if !anchor_ok {
            let reason = if header.first_seq != 1 {
                FaultReason::SegmentSeqGap {
                    expected: 1,
                    found: header.first_seq,
                }
            } else {
                FaultReason::SegmentChainBreak
            };
            return Err(self.segment_corrupt(index, 1, reason));
        }
        self.meta = Some(header.meta);
        self.expected_seq = header.first_seq;
        self.prev = header.prev_hash;
        Ok(())
    }

    /// A later segment must belong to the same journal and carry the chain on:
    /// the next seq, linked to the last record read.
    fn check_segment_continues(
        &self,
        index: usize,
        header: &SegmentHeader,
        meta: JournalMeta,
    ) -> Result<()> {
        let expected = self.expected_seq;
        if header.meta != meta {
            return Err(self.segment_corrupt(index, expected, FaultReason::SegmentForeign));
        }
        if header.first_seq != expected {
            let gap = FaultReason::SegmentSeqGap {
                expected,
                found: header.first_seq,
            };
            return Err(self.segment_corrupt(index, expected, gap));
        }
        if header.prev_hash != self.prev {
            return Err(self.segment_corrupt(index, expected, FaultReason::SegmentChainBreak));
        }
        Ok(())
    }

    /// Checks the record at `self.pos` of the loaded segment.
    fn check_record(&self, index: usize) -> std::result::Result<(RecordHeader, Hash32), Fault> {
        let rest = &self.buf[self.pos..];
        let fault = |reason: FaultReason| Fault {
            seq: self.expected_seq,
            segment: self.segments[index].name.clone(),
            offset: self.pos as u64,
            torn_tail: index + 1 == self.segments.len()
                && !plausible_record_after(rest, self.expected_seq),
            reason,
        };
        let Some(header) = RecordHeader::decode(rest) else {
            return Err(fault(FaultReason::IncompleteHeader { bytes: rest.len() }));
        };
        if !header.len_is_valid() {
            return Err(fault(FaultReason::BadLength {
                len: header.len,
                len_check: header.len_check,
            }));
        }
        if rest.len() < header.record_bytes() {
            return Err(fault(FaultReason::IncompleteRecord {
                needed: header.record_bytes(),
                available: rest.len(),
            }));
        }
        if header.seq != self.expected_seq {
            return Err(fault(FaultReason::SeqMismatch { found: header.seq }));
        }
        if header.seq == Seq::MAX {
            // No record may take the last seq: the one after it does not
            // exist. No writer writes one, so it is never a torn tail.
            return Err(Fault {
                torn_tail: false,
                ..fault(FaultReason::SeqOutOfRange)
            });
        }
        let payload = &rest[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + header.len as usize];
        let stored = &rest[RECORD_HEADER_BYTES + header.len as usize..header.record_bytes()];
        let hash = chain_hash(&self.prev, header.seq, payload);
        if hash.0 != stored {
            return Err(fault(FaultReason::HashMismatch));
        }
        Ok((header, hash))
    }
}

/// Whether anything after the start of `rest` looks like an intact record: a
/// header whose length check passes, whose seq is at or after `expected_seq`
/// and which fits in what remains. Only then can a fault not be a torn tail.
/// The bad record itself (at offset 0) is not considered.
fn plausible_record_after(rest: &[u8], expected_seq: Seq) -> bool {
    if rest.len() < RECORD_OVERHEAD_BYTES + ENVELOPE_BYTES {
        return false;
    }
    let seq_max = expected_seq.saturating_add(rest.len() as u64 / RECORD_OVERHEAD_BYTES as u64);
    (1..=rest.len() - RECORD_OVERHEAD_BYTES - ENVELOPE_BYTES).any(|at| {
        RecordHeader::decode(&rest[at..]).is_some_and(|header| {
            header.len_is_valid()
                && (expected_seq..=seq_max).contains(&header.seq)
                && at + header.record_bytes() <= rest.len()
        })
    })
}

/// Reads record `target` of `segment` without walking the journal from the
/// start: scans record headers forward from a known record position
/// (`start_seq` at byte `start_offset`), then checks the record against its
/// predecessor's stored hash (the 32 bytes just before it, or the segment
/// header's previous hash for the segment's first record). This proves the
/// record is intact and linked to the record before it; `verify` proves the
/// whole chain. For lookups (`anx why`) on long journals.
pub fn read_record_at(
    segment: &SegmentFileInfo,
    start_seq: Seq,
    start_offset: u64,
    target: Seq,
) -> Result<(StoredEvent, u64)> {
    read_record_at_with(&mut FsStorage, segment, start_seq, start_offset, target)
}

/// [`read_record_at`] through `storage`.
pub fn read_record_at_with(
    storage: &mut dyn Storage,
    segment: &SegmentFileInfo,
    start_seq: Seq,
    start_offset: u64,
    target: Seq,
) -> Result<(StoredEvent, u64)> {
    let (file, file_len) = open_segment_with(storage, &segment.path)?;
    let opened = OpenedSegment {
        segment,
        file,
        file_len,
    };
    opened.check_scan_start(start_seq, start_offset, target)?;
    let (header, offset) = opened.scan_to(start_seq, start_offset, target)?;
    let prev = opened.prev_hash_before(offset, target)?;
    let stored = opened.read_linked_record(&header, offset, target, &prev)?;
    Ok((stored, offset))
}

/// Record headers are scanned forward in windows of this many bytes: one
/// read covers many small records, and memory stays bounded whatever the
/// segment's size.
const SCAN_WINDOW: usize = 64 << 10;

/// A segment opened for [`read_record_at_with`]'s random access.
struct OpenedSegment<'a> {
    segment: &'a SegmentFileInfo,
    file: Box<dyn ReadFile>,
    /// The length the file had when opened: no read goes past it.
    file_len: u64,
}

/// Where one window of the forward scan ended.
enum WindowEnd {
    /// The target's header, `at` bytes into the window.
    Found { header: RecordHeader, at: usize },
    /// No more whole headers in the window: the scan goes on `at` bytes in
    /// (past the window's end if its last header's record runs over it).
    /// `last` is the start and size of the last record whose header was read.
    Passed { at: usize, last: (usize, usize) },
}

impl OpenedSegment<'_> {
    /// Up to `len` bytes from `offset`, fewer at the end of the file; never
    /// past the length the opened file had.
    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let len = len.min(self.file_len.saturating_sub(offset) as usize);
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            let n = self
                .file
                .read_at(&mut buf[filled..], offset + filled as u64)
                .map_err(|e| JournalError::io(&self.segment.path, e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        Ok(buf)
    }

    /// Corruption at `offset` of the segment, reported at `seq`.
    fn corrupt(&self, seq: Seq, offset: u64, reason: FaultReason) -> JournalError {
        JournalError::Corrupt(Fault {
            seq,
            segment: self.segment.name.clone(),
            offset,
            reason,
            torn_tail: false,
        })
    }

    /// A record starts after the segment header; an offset or seq from an
    /// index is checked like any other input (it may be forged).
    fn check_scan_start(&self, seq: Seq, offset: u64, target: Seq) -> Result<()> {
        if offset < SEGMENT_HEADER_BYTES as u64 || target == Seq::MAX {
            return Err(self.corrupt(target, offset, FaultReason::SeqOutOfRange));
        }
        if target < seq {
            return Err(self.corrupt(target, offset, FaultReason::SeqMismatch { found: seq }));
        }
        Ok(())
    }

    /// Scans forward from record `seq` at `offset`, reading only record
    /// headers, to `target`'s header; returns it with its offset.
    fn scan_to(&self, mut seq: Seq, mut offset: u64, target: Seq) -> Result<(RecordHeader, u64)> {
        loop {
            let window = self.read_at(offset, SCAN_WINDOW)?;
            let (at, last) = match self.scan_window(&window, offset, &mut seq, target)? {
                WindowEnd::Found { header, at } => return Ok((header, offset + at as u64)),
                WindowEnd::Passed { at, last } => (at, last),
            };
            if window.len() < SCAN_WINDOW && at > window.len() {
                // The file ends inside the last record whose header was read.
                let (start, needed) = last;
                return Err(self.corrupt(
                    seq.saturating_sub(1),
                    offset + start as u64,
                    FaultReason::IncompleteRecord {
                        needed,
                        available: window.len() - start,
                    },
                ));
            }
            offset += at as u64;
            if window.len() < SCAN_WINDOW {
                let bytes = window.len() - at;
                return Err(self.corrupt(seq, offset, FaultReason::IncompleteHeader { bytes }));
            }
        }
    }

    /// Walks the record headers of one window read at `base`, each of which
    /// must have a valid length and the seq after the one before it.
    fn scan_window(
        &self,
        window: &[u8],
        base: u64,
        seq: &mut Seq,
        target: Seq,
    ) -> Result<WindowEnd> {
        let mut at = 0usize;
        let mut last = (0usize, 0usize);
        while let Some(header) = RecordHeader::decode(&window[at..]) {
            if !header.len_is_valid() {
                let reason = FaultReason::BadLength {
                    len: header.len,
                    len_check: header.len_check,
                };
                return Err(self.corrupt(*seq, base + at as u64, reason));
            }
            if header.seq != *seq {
                let reason = FaultReason::SeqMismatch { found: header.seq };
                return Err(self.corrupt(*seq, base + at as u64, reason));
            }
            if *seq == target {
                return Ok(WindowEnd::Found { header, at });
            }
            last = (at, header.record_bytes());
            at += header.record_bytes();
            // `seq < target <= Seq::MAX - 1` here, so this cannot overflow.
            *seq += 1;
            if at > window.len() {
                break;
            }
        }
        Ok(WindowEnd::Passed { at, last })
    }

    /// The hash the record at `offset` links to: the segment header's
    /// previous hash for its first record, else the 32 bytes just before it
    /// (the previous record's stored hash).
    fn prev_hash_before(&self, offset: u64, target: Seq) -> Result<Hash32> {
        if offset == SEGMENT_HEADER_BYTES as u64 {
            let header = SegmentHeader::decode(&self.read_at(0, SEGMENT_HEADER_BYTES)?)
                .map_err(|why| self.corrupt(target, 0, FaultReason::SegmentHeader(why)))?;
            return Ok(header.prev_hash);
        }
        // `offset > SEGMENT_HEADER_BYTES` here (checked before the scan), so
        // the previous record's hash lies inside the file.
        let bytes = self.read_at(offset - 32, 32)?;
        let prev: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            self.corrupt(
                target,
                offset,
                FaultReason::IncompleteRecord {
                    needed: 32,
                    available: bytes.len(),
                },
            )
        })?;
        Ok(Hash32(prev))
    }

    /// Reads record `target` at `offset` whole, checks its hash against
    /// `prev` and decodes it.
    fn read_linked_record(
        &self,
        header: &RecordHeader,
        offset: u64,
        target: Seq,
        prev: &Hash32,
    ) -> Result<StoredEvent> {
        let record = self.read_at(offset, header.record_bytes())?;
        if record.len() < header.record_bytes() {
            return Err(self.corrupt(
                target,
                offset,
                FaultReason::IncompleteRecord {
                    needed: header.record_bytes(),
                    available: record.len(),
                },
            ));
        }
        let payload = &record[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + header.len as usize];
        let hash = chain_hash(prev, target, payload);
        if hash.0 != record[RECORD_HEADER_BYTES + header.len as usize..] {
            return Err(self.corrupt(target, offset, FaultReason::HashMismatch));
        }
        RecordRef {
            seq: target,
            hash,
            payload,
            segment_index: 0,
            offset,
        }
        .to_stored()
    }
}
