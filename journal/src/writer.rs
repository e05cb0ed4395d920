//! The single writer of a journal: exclusive lock, explicit durability, segment
//! rollover, poisoning on any I/O failure, and torn-tail repair at open.

use crate::codec::Hash32;
use crate::error::{Fault, JournalError, Result};
use crate::event::{Event, Recovered, Seq, UnixMs};
use crate::format::{
    segment_file_name, write_hash_prefix, Envelope, JournalMeta, RecordHeader, SegmentHeader,
    FORMAT_VERSION, HASH_PREFIX_BYTES, PAYLOAD_BYTES_MAX, SCHEMA_VERSION_CURRENT,
    SEGMENT_HEADER_BYTES,
};
use crate::head::Head;
use crate::reader::{
    list_segments, open_segment_with, read_segment_header_with, Reader, SegmentFileInfo, TailPolicy,
};
use crate::storage::{FsStorage, LockAttempt, LockGuard, SegmentFile, Storage};
use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Name of the lock file in a journal directory.
pub const LOCK_FILE: &str = "LOCK";
/// Default segment size before rollover.
pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 64 << 20;
/// Bytes buffered in memory before they are handed to the OS.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// When an appended event becomes durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fdatasync before `append` returns. The paper trader uses this before it acts.
    Always,
    /// Group commit: one fdatasync per `events_max` appends or once `delay_ms_max`
    /// has passed since the last sync, whichever comes first (checked on append;
    /// call [`Writer::sync`] at quiet points).
    Batch { events_max: u32, delay_ms_max: u32 },
    /// Only `sync`, `close` and segment rollover make events durable (replays).
    OnClose,
}

/// Who journals the `Recovered` event of a repaired torn tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RepairNote {
    AppendAtOpen,
    LeftToCaller,
}

/// How much of an existing journal is verified when it is opened for writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenCheck {
    /// Verify every record of every segment (default).
    FullChain,
    /// Verify every segment header's continuity and every record of the last
    /// segment only; earlier records are trusted. For fast start-up on long
    /// journals; `anx journal verify` remains the full check.
    LastSegment,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    pub durability: Durability,
    pub segment_bytes_max: u64,
    pub open_check: OpenCheck,
    /// The journal schema new records are written at (`Candle` and
    /// `Decision` follow it, every other kind has version 1): the current one,
    /// or 1 to write what a schema-1 build wrote (fixtures, tests).
    pub schema: u16,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            durability: Durability::Always,
            segment_bytes_max: SEGMENT_BYTES_MAX_DEFAULT,
            open_check: OpenCheck::FullChain,
            schema: SCHEMA_VERSION_CURRENT,
        }
    }
}

/// What `append` returns: the new record's position in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub seq: Seq,
    pub hash: Hash32,
}

/// The one writer of a journal directory.
pub struct Writer {
    dir: PathBuf,
    meta: JournalMeta,
    options: WriterOptions,
    storage: Box<dyn Storage>,
    _lock: LockGuard,
    file: Box<dyn SegmentFile>,
    segment_bytes: u64,
    next_seq: Seq,
    head: Hash32,
    /// Record bytes not yet handed to the OS.
    pending: Vec<u8>,
    /// Scratch holding one record's chain-hash input: the 44-byte prefix
    /// (prev hash, seq, len) followed by the payload, hashed in one call.
    payload: Vec<u8>,
    /// Every seq up to here is durable.
    durable_seq: Seq,
    unsynced_events: u32,
    last_sync: Instant,
    poisoned: Option<String>,
    recovered: Option<Recovered>,
    /// A torn tail found at open whose cut waits for the first write
    /// ([`Writer::open_leaving_repair_note`]): the segment and its intact length.
    cut_pending: Option<(PathBuf, u64)>,
}

impl Writer {
    /// Creates a new journal in `dir` (created if missing; it must hold no segments).
    pub fn create(dir: &Path, meta: JournalMeta, options: WriterOptions) -> Result<Writer> {
        Writer::create_with(dir, meta, options, Box::new(FsStorage))
    }

    pub fn create_with(
        dir: &Path,
        meta: JournalMeta,
        options: WriterOptions,
        mut storage: Box<dyn Storage>,
    ) -> Result<Writer> {
        std::fs::create_dir_all(dir).map_err(|e| JournalError::io(dir, e))?;
        let lock = acquire_lock(storage.as_mut(), dir)?;
        if !list_segments(dir)?.is_empty() {
            return Err(JournalError::AlreadyExists(dir.to_path_buf()));
        }
        remove_leftover_tmp(dir)?;
        let header = SegmentHeader {
            format_version: FORMAT_VERSION,
            meta,
            first_seq: 1,
            prev_hash: meta.genesis(),
        };
        let file = create_segment(storage.as_mut(), dir, &header)?;
        Ok(Writer::assemble(
            dir,
            meta,
            options,
            storage,
            lock,
            file,
            SEGMENT_HEADER_BYTES as u64,
            1,
            meta.genesis(),
        ))
    }

    /// Opens an existing journal for appending: verifies it per
    /// `options.open_check`, repairs a torn tail (and journals a `Recovered`
    /// event saying what was cut), refuses corruption without changing anything.
    pub fn open(dir: &Path, options: WriterOptions) -> Result<Writer> {
        Writer::open_with(dir, options, Box::new(FsStorage))
    }

    pub fn open_with(
        dir: &Path,
        options: WriterOptions,
        storage: Box<dyn Storage>,
    ) -> Result<Writer> {
        Writer::open_inner(dir, options, storage, RepairNote::AppendAtOpen)
    }

    /// Like [`Writer::open`], but a torn tail is neither cut nor journaled
    /// here: [`Writer::recovered`] says what will be cut, the cut happens when
    /// the first appended bytes reach the file (so a caller that refuses to go
    /// on after opening – a start whose checks fail – changes nothing), and the
    /// caller appends the `Recovered` event at its next quiet point. For a
    /// caller that must first finish a step the crash interrupted – events
    /// whose causal links name the seqs they will land at – without a repair
    /// note landing in the middle.
    pub fn open_leaving_repair_note(dir: &Path, options: WriterOptions) -> Result<Writer> {
        Writer::open_inner(dir, options, Box::new(FsStorage), RepairNote::LeftToCaller)
    }

    fn open_inner(
        dir: &Path,
        options: WriterOptions,
        mut storage: Box<dyn Storage>,
        note: RepairNote,
    ) -> Result<Writer> {
        let lock = acquire_lock(storage.as_mut(), dir)?;
        let segments = list_segments(dir)?;
        if segments.is_empty() {
            return Err(JournalError::NotAJournal(dir.to_path_buf()));
        }
        let (tail, mut storage) = scan_for_open(dir, &segments, options.open_check, storage)?;
        let last = &segments[segments.len() - 1];
        let mut segment_bytes = file_len(storage.as_mut(), &last.path)?;
        let mut cut_pending = None;
        if let Some(fault) = &tail.torn {
            match note {
                RepairNote::AppendAtOpen => storage
                    .truncate(&last.path, fault.offset)
                    .map_err(|e| JournalError::io(&last.path, e))?,
                RepairNote::LeftToCaller => cut_pending = Some((last.path.clone(), fault.offset)),
            }
            segment_bytes = fault.offset;
        }
        remove_leftover_tmp(dir)?;
        let file = storage
            .open_append(&last.path)
            .map_err(|e| JournalError::io(&last.path, e))?;
        let mut writer = Writer::assemble(
            dir,
            tail.meta,
            options,
            storage,
            lock,
            file,
            segment_bytes,
            tail.head_seq + 1,
            tail.head_hash,
        );
        writer.cut_pending = cut_pending;
        if let Some(fault) = tail.torn {
            let recovered = Recovered {
                segment: fault.segment.clone(),
                offset: fault.offset,
                bytes_dropped: tail.segment_len - fault.offset,
                last_good_seq: tail.head_seq,
                reason: fault.reason.to_string(),
            };
            // Market time of a repair is the last intact event's: the journal's own
            // clock, so repairs do not make a replay depend on the wall clock.
            let market_ms = if tail.head_seq == 0 {
                0
            } else {
                tail.last_market_ms
            };
            // The truncation is durable (`Storage::truncate` syncs) before the
            // note is appended.
            if note == RepairNote::AppendAtOpen {
                writer.append(market_ms, &Event::Recovered(recovered.clone()))?;
                writer.sync()?;
            }
            writer.recovered = Some(recovered);
        }
        Ok(writer)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        dir: &Path,
        meta: JournalMeta,
        options: WriterOptions,
        storage: Box<dyn Storage>,
        lock: LockGuard,
        file: Box<dyn SegmentFile>,
        segment_bytes: u64,
        next_seq: Seq,
        head: Hash32,
    ) -> Writer {
        Writer {
            dir: dir.to_path_buf(),
            meta,
            options,
            storage,
            _lock: lock,
            file,
            segment_bytes,
            next_seq,
            head,
            pending: Vec::with_capacity(WRITE_BUFFER_BYTES + 4096),
            payload: Vec::with_capacity(4096),
            durable_seq: next_seq - 1,
            unsynced_events: 0,
            last_sync: Instant::now(),
            poisoned: None,
            recovered: None,
            cut_pending: None,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn meta(&self) -> JournalMeta {
        self.meta
    }

    /// The journal schema this writer writes new records at.
    pub fn schema(&self) -> u16 {
        self.options.schema
    }

    /// The last appended record (seq 0 and the genesis hash for an empty journal).
    pub fn head(&self) -> Head {
        Head {
            seq: self.next_seq - 1,
            hash: self.head,
        }
    }

    /// Every seq up to this one is known durable.
    pub fn durable_seq(&self) -> Seq {
        self.durable_seq
    }

    /// What opening this journal repaired, if anything.
    pub fn recovered(&self) -> Option<&Recovered> {
        self.recovered.as_ref()
    }

    /// Why the writer refuses appends, if it does.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    /// Appends one event carrying market time `market_ms`. Durable on return under
    /// [`Durability::Always`].
    pub fn append(&mut self, market_ms: UnixMs, event: &Event) -> Result<Appended> {
        self.check_not_poisoned()?;
        self.payload.clear();
        self.payload.resize(HASH_PREFIX_BYTES, 0);
        self.payload.extend_from_slice(
            &Envelope::new(event.kind(), market_ms, self.options.schema).encode(),
        );
        crate::event::encode_body(
            event,
            event.kind().written_at(self.options.schema),
            market_ms,
            &mut self.payload,
        )
        .map_err(JournalError::Encode)?;
        let appended = self.append_payload()?;
        self.after_append()?;
        Ok(appended)
    }

    fn append_payload(&mut self) -> Result<Appended> {
        let len = self.payload.len() - HASH_PREFIX_BYTES;
        if len > PAYLOAD_BYTES_MAX as usize {
            return Err(JournalError::TooLarge {
                len,
                max: PAYLOAD_BYTES_MAX,
            });
        }
        // The last seq is never written: readers refuse it (it has no successor).
        if self.next_seq == Seq::MAX {
            return Err(JournalError::SeqExhausted);
        }
        let header = RecordHeader::new(self.next_seq, len as u32);
        let record_bytes = header.record_bytes() as u64;
        let segment_has_records = self.segment_bytes > SEGMENT_HEADER_BYTES as u64;
        if segment_has_records && self.segment_bytes + record_bytes > self.options.segment_bytes_max
        {
            self.roll_segment()?;
        }
        let seq = self.next_seq;
        write_hash_prefix(&mut self.payload, &self.head, seq, len as u32);
        let hash = Hash32::from(blake3::hash(&self.payload));
        self.pending.extend_from_slice(&header.encode());
        self.pending
            .extend_from_slice(&self.payload[HASH_PREFIX_BYTES..]);
        self.pending.extend_from_slice(&hash.0);
        self.segment_bytes += record_bytes;
        self.next_seq = seq + 1;
        self.head = hash;
        self.unsynced_events += 1;
        if self.pending.len() >= WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(Appended { seq, hash })
    }

    fn after_append(&mut self) -> Result<()> {
        let due = match self.options.durability {
            Durability::Always => true,
            Durability::Batch {
                events_max,
                delay_ms_max,
            } => {
                self.unsynced_events >= events_max
                    || self.last_sync.elapsed() >= Duration::from_millis(u64::from(delay_ms_max))
            }
            Durability::OnClose => false,
        };
        if due {
            self.sync()?;
        }
        Ok(())
    }

    /// Hands buffered records to the OS (not durable yet).
    pub fn flush(&mut self) -> Result<()> {
        self.check_not_poisoned()?;
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Some((path, len)) = self.cut_pending.take() {
            // The deferred torn-tail cut: durable before the first new byte
            // lands (the file is in append mode, so writes follow the cut).
            if let Err(e) = self.storage.truncate(&path, len) {
                return Err(self.poison(format!("cutting the torn tail failed: {e}")));
            }
        }
        if let Err(e) = self.file.write_all(&self.pending) {
            return Err(self.poison(format!("write failed: {e}")));
        }
        self.pending.clear();
        Ok(())
    }

    /// Makes every appended event durable (flush + fdatasync).
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        if self.durable_seq == self.next_seq - 1 {
            return Ok(());
        }
        if let Err(e) = self.file.sync_data() {
            // After a failed fsync the page cache's state is unknown: retrying could
            // report success for data that never reached the disk. Stop for good.
            return Err(self.poison(format!("fdatasync failed: {e}")));
        }
        self.durable_seq = self.next_seq - 1;
        self.unsynced_events = 0;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Syncs and releases the journal, returning its head.
    pub fn close(mut self) -> Result<Head> {
        self.sync()?;
        Ok(self.head())
    }

    fn roll_segment(&mut self) -> Result<()> {
        // The old segment must be durable before the new one exists: a crash must
        // never leave a torn record in a segment that is no longer the last.
        self.sync()?;
        let header = SegmentHeader {
            format_version: FORMAT_VERSION,
            meta: self.meta,
            first_seq: self.next_seq,
            prev_hash: self.head,
        };
        match create_segment(self.storage.as_mut(), &self.dir, &header) {
            Ok(file) => {
                self.file = file;
                self.segment_bytes = SEGMENT_HEADER_BYTES as u64;
                Ok(())
            }
            Err(e) => Err(self.poison(format!("segment rollover failed: {e}"))),
        }
    }

    fn check_not_poisoned(&self) -> Result<()> {
        match &self.poisoned {
            Some(cause) => Err(JournalError::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison(&mut self, cause: String) -> JournalError {
        self.poisoned = Some(cause.clone());
        JournalError::Poisoned { cause }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Best effort for writers that were not closed; errors have nowhere to go
        // (the journal never prints) and are safe: the next open repairs a torn tail.
        if self.poisoned.is_none() {
            let _ = self.sync();
        }
    }
}

/// Creates a segment atomically: header to a temporary file, fsync, rename into
/// place, fsync the directory. A segment file therefore always has a whole header.
fn create_segment(
    storage: &mut dyn Storage,
    dir: &Path,
    header: &SegmentHeader,
) -> Result<Box<dyn SegmentFile>> {
    let name = segment_file_name(header.first_seq);
    let final_path = dir.join(&name);
    let tmp_path = dir.join(format!("{name}.tmp"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| JournalError::io(path, e)
    };
    let mut file = storage.create_new(&tmp_path).map_err(io(&tmp_path))?;
    file.write_all(&header.encode()).map_err(io(&tmp_path))?;
    file.sync_data().map_err(io(&tmp_path))?;
    storage
        .rename(&tmp_path, &final_path)
        .map_err(io(&final_path))?;
    storage.sync_dir(dir).map_err(io(dir))?;
    Ok(file)
}

fn remove_leftover_tmp(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".anxj.tmp") {
            std::fs::remove_file(entry.path()).map_err(|e| JournalError::io(entry.path(), e))?;
        }
    }
    Ok(())
}

/// The length of a segment file (which must be a regular file).
fn file_len(storage: &mut dyn Storage, path: &Path) -> Result<u64> {
    open_segment_with(storage, path).map(|(_, len)| len)
}

/// Takes the exclusive writer lock. The holder writes its pid into the lock file
/// so a refused writer can say who holds it.
fn acquire_lock(storage: &mut dyn Storage, dir: &Path) -> Result<LockGuard> {
    let path = dir.join(LOCK_FILE);
    let stamp = format!("pid {}", std::process::id());
    match storage
        .try_lock(&path, &stamp)
        .map_err(|e| JournalError::io(&path, e))?
    {
        LockAttempt::Acquired(guard) => Ok(guard),
        LockAttempt::HeldBy(holder) => Err(JournalError::Locked {
            dir: dir.to_path_buf(),
            lock: path,
            holder: if holder.is_empty() {
                "an unknown process".into()
            } else {
                holder
            },
        }),
    }
}

/// Whether some process holds the writer lock of `dir` right now.
pub fn is_locked(dir: &Path) -> Result<bool> {
    let path = dir.join(LOCK_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(JournalError::io(&path, e)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(JournalError::io(&path, e)),
    }
}

/// What the open-time scan found.
struct TailScan {
    meta: JournalMeta,
    head_seq: Seq,
    head_hash: Hash32,
    last_market_ms: UnixMs,
    /// Length of the last segment file as found.
    segment_len: u64,
    torn: Option<Fault>,
}

/// Scans the journal through `storage`, and hands it back.
fn scan_for_open(
    dir: &Path,
    segments: &[SegmentFileInfo],
    check: OpenCheck,
    mut storage: Box<dyn Storage>,
) -> Result<(TailScan, Box<dyn Storage>)> {
    let start = match check {
        OpenCheck::FullChain => 0,
        OpenCheck::LastSegment => {
            check_segment_headers(storage.as_mut(), segments)?;
            segments.len() - 1
        }
    };
    let mut reader = Reader::over(
        dir,
        segments.to_vec(),
        start,
        TailPolicy::StopAtTorn,
        storage,
    );
    let mut last_market_ms = UnixMs::MIN;
    while let Some(record) = reader.next_record()? {
        last_market_ms = last_market_ms.max(record.market_ms());
    }
    let (head_seq, head_hash) = reader.head();
    let meta = reader
        .meta()
        .ok_or_else(|| JournalError::NotAJournal(dir.to_path_buf()))?;
    let torn = reader.torn_tail().cloned();
    let mut storage = reader.into_storage();
    let last = &segments[segments.len() - 1];
    let scan = TailScan {
        meta,
        head_seq,
        head_hash,
        last_market_ms,
        segment_len: file_len(storage.as_mut(), &last.path)?,
        torn,
    };
    Ok((scan, storage))
}

/// For [`OpenCheck::LastSegment`]: every header is intact, belongs to one journal
/// and the first seqs increase.
fn check_segment_headers(storage: &mut dyn Storage, segments: &[SegmentFileInfo]) -> Result<()> {
    let mut first_meta = None;
    let mut previous_first = 0;
    for info in segments {
        // A file shorter than a header fails its decoding.
        let header = read_segment_header_with(storage, info)?;
        let fault = |reason| {
            JournalError::Corrupt(Fault {
                seq: info.first_seq,
                segment: info.name.clone(),
                offset: 0,
                reason,
                torn_tail: false,
            })
        };
        if header.first_seq != info.first_seq || header.first_seq <= previous_first {
            return Err(fault(crate::error::FaultReason::SegmentNameMismatch {
                name_seq: info.first_seq,
                header_seq: header.first_seq,
            }));
        }
        if *first_meta.get_or_insert(header.meta) != header.meta {
            return Err(fault(crate::error::FaultReason::SegmentForeign));
        }
        previous_first = header.first_seq;
    }
    Ok(())
}
