//! The journal's typed errors. A [`Fault`] describes exactly where the chain
//! broke (first bad seq, segment, byte offset, reason) and whether it has the
//! shape of a torn tail (repairable) or of corruption (never repaired).

use crate::event::Seq;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a position in the journal failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultReason {
    /// The segment header failed its own checks.
    SegmentHeader(&'static str),
    /// The file name's seq disagrees with the header's first seq.
    SegmentNameMismatch { name_seq: Seq, header_seq: Seq },
    /// A segment belongs to another journal (id or creation time differ).
    SegmentForeign,
    /// A segment starts at another seq than the one after the previous segment's
    /// last record (a deleted or extra segment).
    SegmentSeqGap { expected: Seq, found: Seq },
    /// A segment's recorded previous hash is not the chain hash so far.
    SegmentChainBreak,
    /// Fewer bytes than a record header remain.
    IncompleteHeader { bytes: usize },
    /// The length field fails its check or its limits.
    BadLength { len: u32, len_check: u32 },
    /// The record claims more bytes than the file holds.
    IncompleteRecord { needed: usize, available: usize },
    /// The record carries another seq than the next one.
    SeqMismatch { found: Seq },
    /// The stored hash is not BLAKE3(prev ‖ seq ‖ len ‖ payload).
    HashMismatch,
    /// A seq or offset outside what a journal can hold (the last seq,
    /// `u64::MAX`, has no successor; no record starts inside a header).
    SeqOutOfRange,
    /// The journal ends before a head the caller expected it to contain.
    ShorterThanExpectedHead { head_seq: Seq },
    /// At the expected head's seq the journal holds another hash: it was rewritten.
    ExpectedHeadMismatch { found: String },
}

impl fmt::Display for FaultReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultReason::SegmentHeader(why) => write!(f, "{why}"),
            FaultReason::SegmentNameMismatch {
                name_seq,
                header_seq,
            } => write!(
                f,
                "segment file name says first seq {name_seq}, header says {header_seq}"
            ),
            FaultReason::SegmentForeign => {
                write!(
                    f,
                    "segment belongs to another journal (id or creation time differ)"
                )
            }
            FaultReason::SegmentSeqGap { expected, found } => write!(
                f,
                "segment starts at seq {found}, expected {expected} (segment missing or extra)"
            ),
            FaultReason::SegmentChainBreak => {
                write!(f, "segment's previous-hash does not continue the chain")
            }
            FaultReason::IncompleteHeader { bytes } => {
                write!(f, "incomplete record header ({bytes} of 16 bytes)")
            }
            FaultReason::BadLength { len, len_check } => {
                write!(f, "invalid record length {len} (check {len_check:#010x})")
            }
            FaultReason::IncompleteRecord { needed, available } => write!(
                f,
                "incomplete record ({available} of {needed} bytes present)"
            ),
            FaultReason::SeqMismatch { found } => write!(f, "record carries seq {found}"),
            FaultReason::HashMismatch => write!(f, "hash mismatch"),
            FaultReason::SeqOutOfRange => {
                write!(
                    f,
                    "seq or offset out of range (no successor seq, or inside a header)"
                )
            }
            FaultReason::ShorterThanExpectedHead { head_seq } => write!(
                f,
                "journal ends at seq {head_seq}, before the expected head (truncated?)"
            ),
            FaultReason::ExpectedHeadMismatch { found } => write!(
                f,
                "hash at the expected head's seq is {found}: the journal was rewritten"
            ),
        }
    }
}

/// Where and why the chain broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The first seq that could not be verified.
    pub seq: Seq,
    /// Segment file name (empty when there is none).
    pub segment: String,
    /// Byte offset in that segment.
    pub offset: u64,
    pub reason: FaultReason,
    /// The fault is in the last segment and no intact record follows it: the shape
    /// a crash mid-append leaves. Opening for write truncates it.
    pub torn_tail: bool,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seq {} ({} offset {}): {}{}",
            self.seq,
            self.segment,
            self.offset,
            self.reason,
            if self.torn_tail { " [torn tail]" } else { "" }
        )
    }
}

/// Everything the journal can fail with.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("journal {dir} is locked by another writer (lock file {lock}, held by {holder})")]
    Locked {
        dir: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error("journal corrupt at {0}")]
    Corrupt(Fault),
    #[error("journal has a torn tail at {0} (no committed event is lost); `anx journal repair` cuts it, and a paper trader cuts its own at start")]
    TornTail(Fault),
    #[error(
        "{cause} (the journal writer is poisoned by this failure and accepts no more appends)"
    )]
    Poisoned { cause: String },
    #[error("{0} is not a journal (no segment files)")]
    NotAJournal(PathBuf),
    /// A segment's name on something that is not a regular file (a FIFO, a
    /// device such as `/dev/zero`, a directory): refused, never read.
    #[error("{0}: not a regular file (a segment must be one; refusing to read it)")]
    NotRegularFile(PathBuf),
    #[error("{0} already holds a journal")]
    AlreadyExists(PathBuf),
    #[error("event is {len} bytes encoded, above the {max}-byte record limit")]
    TooLarge { len: usize, max: u32 },
    #[error("cannot encode event: {0}")]
    Encode(String),
    #[error("the journal's writer thread {0}")]
    WriterThread(&'static str),
    #[error("seq {seq}: cannot decode {what}: {reason}")]
    Decode {
        seq: Seq,
        what: String,
        reason: String,
    },
    #[error("seq space exhausted")]
    SeqExhausted,
    /// Two reads under the writer lock disagree: something other than an anx
    /// writer changed the files.
    #[error("{dir} changed while it was open: {detail}")]
    ChangedWhileOpen { dir: PathBuf, detail: String },
}

impl JournalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> JournalError {
        JournalError::Io {
            path: path.into(),
            source,
        }
    }

    /// The fault behind a verification failure, if this is one.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            JournalError::Corrupt(fault) | JournalError::TornTail(fault) => Some(fault),
            _ => None,
        }
    }
}

pub type Result<T, E = JournalError> = std::result::Result<T, E>;
