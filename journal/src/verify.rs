//! Whole-journal verification: walks every record of every segment and reports
//! either a summary or the first fault. Optionally proves the journal still
//! extends a head published earlier.

use crate::error::{Fault, FaultReason, JournalError, Result};
use crate::event::UnixMs;
use crate::head::Head;
use crate::reader::{Reader, TailPolicy};
use std::path::Path;

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
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.fault.is_none()
    }
}

/// Verifies the whole journal in `dir`. I/O errors are errors; a broken chain is
/// a report with `fault` set.
pub fn verify(dir: &Path, expect_head: Option<Head>) -> Result<VerifyReport> {
    let mut reader = Reader::open_with(dir, TailPolicy::Strict)?;
    let mut events = 0u64;
    let mut first_market_ms = None;
    let mut last_market_ms = None;
    let mut fault = None;
    loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                events += 1;
                let market_ms = record.market_ms();
                first_market_ms.get_or_insert(market_ms);
                last_market_ms =
                    Some(last_market_ms.map_or(market_ms, |m: UnixMs| m.max(market_ms)));
                if let Some(expected) = expect_head {
                    if record.seq == expected.seq && record.hash != expected.hash {
                        let (seq, index, offset) =
                            (record.seq, record.segment_index, record.offset);
                        let found = record.hash.to_hex();
                        fault = Some(Fault {
                            seq,
                            segment: reader.segments()[index].name.clone(),
                            offset,
                            reason: FaultReason::ExpectedHeadMismatch { found },
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
    let (head_seq, head_hash) = reader.head();
    let head = Head {
        seq: head_seq,
        hash: head_hash,
    };
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
    })
}
