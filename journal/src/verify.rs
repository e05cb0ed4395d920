//! Whole-journal verification: walks every record of every segment and reports
//! either a summary or the first fault. Optionally proves the journal still
//! extends a head published earlier.

use crate::error::{Fault, FaultReason, JournalError, Result};
use crate::event::UnixMs;
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
    let mut events = 0u64;
    let mut first_market_ms = None;
    let mut last_market_ms = None;
    let mut fault = None;
    let mut genesis_to_check = expect_head.filter(|expected| expected.seq == 0);
    let mut head_at_fault = None;
    loop {
        let step = match reader.next_record() {
            Ok(Some(record)) => Ok(Some((
                record.seq,
                record.hash,
                record.segment_index,
                record.offset,
                record.market_ms(),
            ))),
            Ok(None) => Ok(None),
            Err(error) => Err(error),
        };
        // Seq 0 comes before every record: once the first header has fixed
        // the identity, a wrong genesis is the first failure.
        if let (Some(expected), Some(meta)) = (genesis_to_check, reader.meta()) {
            genesis_to_check = None;
            let genesis = meta.genesis();
            if genesis != expected.hash {
                fault = Some(Fault {
                    seq: 0,
                    segment: reader.segments()[0].name.clone(),
                    offset: 0,
                    reason: FaultReason::ExpectedHeadMismatch {
                        found: genesis.to_hex(),
                    },
                    torn_tail: false,
                });
                head_at_fault = Some(Head {
                    seq: 0,
                    hash: genesis,
                });
                break;
            }
        }
        match step {
            Ok(Some((seq, hash, index, offset, market_ms))) => {
                events += 1;
                first_market_ms.get_or_insert(market_ms);
                last_market_ms =
                    Some(last_market_ms.map_or(market_ms, |m: UnixMs| m.max(market_ms)));
                if let Some(expected) = expect_head {
                    if seq == expected.seq && hash != expected.hash {
                        fault = Some(Fault {
                            seq,
                            segment: reader.segments()[index].name.clone(),
                            offset,
                            reason: FaultReason::ExpectedHeadMismatch {
                                found: hash.to_hex(),
                            },
                            torn_tail: false,
                        });
                        break;
                    }
                }
            }
            Ok(None) => break,
            Err(JournalError::Corrupt(f)) | Err(JournalError::TornTail(f)) => {
                fault = Some(f);
                break;
            }
            Err(other) => return Err(other),
        }
    }
    let head = head_at_fault.unwrap_or_else(|| {
        let (seq, hash) = reader.head();
        Head { seq, hash }
    });
    if let (None, Some(expected)) = (&fault, expect_head) {
        if head.seq < expected.seq {
            fault = Some(Fault {
                seq: head.seq + 1,
                segment: reader
                    .segments()
                    .last()
                    .map(|s| s.name.clone())
                    .unwrap_or_default(),
                offset: 0,
                reason: FaultReason::ShorterThanExpectedHead { head_seq: head.seq },
                torn_tail: false,
            });
        }
    }
    Ok(VerifyReport {
        events,
        segments: reader.segments().len(),
        bytes: reader.bytes_read(),
        head,
        journal_id: reader
            .meta()
            .map(|m| m.journal_id_hex())
            .unwrap_or_default(),
        first_market_ms,
        last_market_ms,
        fault,
        expected_head: expect_head,
    })
}
