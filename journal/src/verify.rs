//! Whole-journal verification: walks every record of every segment and reports
//! either a summary or the first fault. Optionally proves the journal still
//! extends a head published earlier.

use crate::codec::Hash32;
use crate::error::{Fault, FaultReason, JournalError, Result};
use crate::event::{Seq, UnixMs};
use crate::format::JournalMeta;
use crate::head::Head;
use crate::reader::{Reader, TailPolicy};
use std::path::Path;

/// What a verification concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every record verified, and the expected head (if any) holds.
    Ok,
    /// The only problem is a torn tail (FORMAT.md §8): an interrupted append at
    /// the end of the last segment. Every record before it is intact, no
    /// committed event is lost, and a writer's open cuts it and journals the
    /// repair.
    TornTail,
    /// Anything else: the chain is broken, or a published head (`expect_head`)
    /// was rewritten or is no longer reached – including a torn tail at or
    /// before the expected head's seq, which loses records that head covers.
    Corrupt,
}

impl Verdict {
    /// `ok`, `torn_tail` or `corrupt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::TornTail => "torn_tail",
            Verdict::Corrupt => "corrupt",
        }
    }
}

/// What a verification walk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Intact events walked (up to the fault, if any).
    pub events: u64,
    pub segments: usize,
    /// Segment bytes read.
    pub bytes: u64,
    /// The last intact record.
    pub head: Head,
    pub journal_id: String,
    pub first_market_ms: Option<UnixMs>,
    pub last_market_ms: Option<UnixMs>,
    /// The first fault, if the chain is not intact.
    pub fault: Option<Fault>,
    /// The head the journal was required to extend, if any.
    pub expected_head: Option<Head>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.fault.is_none()
    }

    pub fn verdict(&self) -> Verdict {
        match &self.fault {
            None => Verdict::Ok,
            Some(fault)
                if fault.torn_tail
                    && self
                        .expected_head
                        .is_none_or(|expected| expected.seq < fault.seq) =>
            {
                Verdict::TornTail
            }
            Some(_) => Verdict::Corrupt,
        }
    }
}

/// Verifies the whole journal in `dir`. I/O errors are errors; a broken chain is
/// a report with `fault` set.
///
/// With `expect_head`, the journal must hold record `SEQ` with hash `HASH`
/// (checked when the walk reaches it: the first failure wins) and reach it.
/// Seq 0 stands for the genesis: `0:<genesis>` holds for exactly the journals
/// with that identity, checked as soon as the first segment header fixed it.
pub fn verify(dir: &Path, expect_head: Option<Head>) -> Result<VerifyReport> {
    let mut reader = Reader::open_with(dir, TailPolicy::Strict)?;
    let mut tally = Tally::default();
    let stop = walk(&mut reader, expect_head, &mut tally)?;
    let (mut fault, head_at_fault) = match stop {
        Some(Stop { fault, head }) => (Some(fault), head),
        None => (None, None),
    };
    let head = head_at_fault.unwrap_or_else(|| {
        let (seq, hash) = reader.head();
        Head { seq, hash }
    });
    if let (None, Some(expected)) = (&fault, expect_head) {
        fault = shorter_than_expected(&reader, head, expected);
    }
    Ok(VerifyReport {
        events: tally.events,
        segments: reader.segments().len(),
        bytes: reader.bytes_read(),
        head,
        journal_id: reader
            .meta()
            .map(|m| m.journal_id_hex())
            .unwrap_or_default(),
        first_market_ms: tally.first_market_ms,
        last_market_ms: tally.last_market_ms,
        fault,
        expected_head: expect_head,
    })
}

/// The intact records walked: how many, and their market-time span.
#[derive(Default)]
struct Tally {
    events: u64,
    first_market_ms: Option<UnixMs>,
    last_market_ms: Option<UnixMs>,
}

impl Tally {
    fn count(&mut self, market_ms: UnixMs) {
        self.events += 1;
        self.first_market_ms.get_or_insert(market_ms);
        self.last_market_ms = Some(
            self.last_market_ms
                .map_or(market_ms, |m: UnixMs| m.max(market_ms)),
        );
    }
}

/// Where a walk stopped short of the end: the first fault, and the head to
/// report when it is not the reader's (the genesis, for a wrong one).
struct Stop {
    fault: Fault,
    head: Option<Head>,
}

/// A verified record, copied out of the reader's buffer so the reader can be
/// asked about the journal (its identity, its segments) alongside it.
struct Walked {
    seq: Seq,
    hash: Hash32,
    segment_index: usize,
    offset: u64,
    market_ms: UnixMs,
}

/// Walks every record, counting it in `tally`, until the end (`None`), the
/// first fault or a record contradicting `expect_head` (`Some`), or an error
/// that is no fault of the chain (I/O).
fn walk(reader: &mut Reader, expect_head: Option<Head>, tally: &mut Tally) -> Result<Option<Stop>> {
    let mut genesis_to_check = expect_head.filter(|expected| expected.seq == 0);
    loop {
        let step = reader.next_record().map(|record| {
            record.map(|record| Walked {
                seq: record.seq,
                hash: record.hash,
                segment_index: record.segment_index,
                offset: record.offset,
                market_ms: record.market_ms(),
            })
        });
        // Seq 0 comes before every record: once the first header has fixed
        // the identity, a wrong genesis is the first failure.
        if let (Some(expected), Some(meta)) = (genesis_to_check, reader.meta()) {
            genesis_to_check = None;
            if let Some(stop) = wrong_genesis(reader, meta, expected) {
                return Ok(Some(stop));
            }
        }
        match step {
            Ok(Some(record)) => {
                tally.count(record.market_ms);
                let wrong = expect_head.and_then(|expected| wrong_head(reader, &record, expected));
                if let Some(fault) = wrong {
                    return Ok(Some(Stop { fault, head: None }));
                }
            }
            Ok(None) => return Ok(None),
            Err(JournalError::Corrupt(fault)) | Err(JournalError::TornTail(fault)) => {
                return Ok(Some(Stop { fault, head: None }));
            }
            Err(other) => return Err(other),
        }
    }
}

/// The stop at seq 0 if the journal's genesis is not the expected head's hash.
fn wrong_genesis(reader: &Reader, meta: JournalMeta, expected: Head) -> Option<Stop> {
    let genesis = meta.genesis();
    if genesis == expected.hash {
        return None;
    }
    let fault = Fault {
        seq: 0,
        segment: reader.segments()[0].name.clone(),
        offset: 0,
        reason: FaultReason::ExpectedHeadMismatch {
            found: genesis.to_hex(),
        },
        torn_tail: false,
    };
    let head = Some(Head {
        seq: 0,
        hash: genesis,
    });
    Some(Stop { fault, head })
}

/// The fault if `record` holds the expected head's seq with another hash.
fn wrong_head(reader: &Reader, record: &Walked, expected: Head) -> Option<Fault> {
    if record.seq != expected.seq || record.hash == expected.hash {
        return None;
    }
    Some(Fault {
        seq: record.seq,
        segment: reader.segments()[record.segment_index].name.clone(),
        offset: record.offset,
        reason: FaultReason::ExpectedHeadMismatch {
            found: record.hash.to_hex(),
        },
        torn_tail: false,
    })
}

/// The fault if an intact journal ends before the expected head's seq.
fn shorter_than_expected(reader: &Reader, head: Head, expected: Head) -> Option<Fault> {
    if head.seq >= expected.seq {
        return None;
    }
    Some(Fault {
        seq: head.seq + 1,
        segment: reader
            .segments()
            .last()
            .map(|s| s.name.clone())
            .unwrap_or_default(),
        offset: 0,
        reason: FaultReason::ShorterThanExpectedHead { head_seq: head.seq },
        torn_tail: false,
    })
}
