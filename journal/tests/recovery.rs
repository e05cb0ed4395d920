//! Crash and damage: torn tails are repaired, corruption is refused, every byte
//! flip is caught at the right seq, a second writer is refused, injected
//! storage faults poison the writer without losing an acknowledged event, and
//! injected read faults (reader, random access, header read, the writer's scan
//! and lock at open) are errors naming the file – never a panic, wrong data or
//! a repair.

mod common;

use anx_journal::format::SCHEMA_VERSION_CURRENT;

use anx_journal::sample::{golden_events, GOLDEN_META};
use anx_journal::storage::{FaultPlan, FaultyStorage};
use anx_journal::{
    verify, Durability, Event, FaultReason, Hash32, Head, JournalError, JournalMeta, Reader,
    Verdict, Writer, WriterOptions,
};
use common::*;
use std::path::Path;

fn reopen(dir: &Path) -> Result<Writer, JournalError> {
    Writer::open(dir, options(Durability::Always))
}

/// After repairing a torn tail the journal holds the intact prefix, then exactly
/// one `Recovered` event describing the cut, and verifies.
fn assert_repaired(dir: &Path, intact: usize, cut_at: u64, dropped: u64) {
    let writer = reopen(dir).expect("a torn tail must be repaired at open");
    let recovered = writer.recovered().cloned().expect("a Recovered event");
    assert_eq!(recovered.offset, cut_at);
    assert_eq!(recovered.bytes_dropped, dropped);
    assert_eq!(recovered.last_good_seq, intact as u64);
    drop(writer);
    let events = read_all(dir);
    let golden = golden_events();
    assert_eq!(events.len(), intact + 1);
    for (stored, (_, expected)) in events.iter().zip(&golden[..intact]) {
        assert_eq!(&stored.event, expected);
    }
    match &events[intact].event {
        Event::Recovered(r) => assert_eq!(r, &recovered),
        other => panic!("expected Recovered, got {other:?}"),
    }
    let report = verify(dir, None).unwrap();
    assert!(report.ok(), "{:?}", report.fault);
    assert_eq!(report.events, intact as u64 + 1);
}

#[test]
fn torn_tail_at_every_offset_of_the_last_record_is_repaired() {
    let source = tempfile::tempdir().unwrap();
    write_golden(source.path());
    let offsets = record_offsets(source.path());
    let last_start = offsets[offsets.len() - 2];
    let end = offsets[offsets.len() - 1];
    let intact = offsets.len() - 2;
    // Cutting exactly at the record's start just leaves a shorter, intact journal.
    for cut in last_start + 1..end {
        let dir = tempfile::tempdir().unwrap();
        copy_journal(source.path(), dir.path());
        let segment = only_segment(dir.path());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap();
        file.set_len(cut).unwrap();
        drop(file);
        let report = verify(dir.path(), None).unwrap();
        let fault = report.fault.expect("a torn tail is reported by verify");
        assert!(fault.torn_tail, "cut at {cut}: {fault}");
        assert_eq!(fault.seq, intact as u64 + 1);
        assert_repaired(dir.path(), intact, last_start, cut - last_start);
    }
}

#[test]
fn zero_filled_tails_are_repaired() {
    let source = tempfile::tempdir().unwrap();
    write_golden(source.path());
    let offsets = record_offsets(source.path());
    let last_start = offsets[offsets.len() - 2] as usize;
    let end = offsets[offsets.len() - 1] as usize;
    let intact = offsets.len() - 2;
    // (a) the file was extended with zeros after the last record (preallocation);
    // (b) the last record's bytes never reached the disk and read back as zeros;
    // (c) only the second half of the last record is zeros.
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: [(&str, Damage, usize, usize); 3] = [
        (
            "zeros appended",
            Box::new(|b: &mut Vec<u8>| b.extend(std::iter::repeat_n(0, 4096))),
            end,
            4096,
        ),
        (
            "record zeroed",
            Box::new(move |b: &mut Vec<u8>| b[last_start..].fill(0)),
            last_start,
            end - last_start,
        ),
        (
            "half zeroed",
            Box::new(move |b: &mut Vec<u8>| b[(last_start + end) / 2..].fill(0)),
            last_start,
            end - last_start,
        ),
    ];
    for (name, damage, cut_at, dropped) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_journal(source.path(), dir.path());
        let segment = only_segment(dir.path());
        let mut bytes = std::fs::read(&segment).unwrap();
        damage(&mut bytes);
        std::fs::write(&segment, &bytes).unwrap();
        let intact_here = if cut_at == end { intact + 1 } else { intact };
        let fault = verify(dir.path(), None).unwrap().fault.expect(name);
        assert!(fault.torn_tail, "{name}: {fault}");
        assert_repaired(dir.path(), intact_here, cut_at as u64, dropped as u64);
    }
}

#[test]
fn every_single_byte_flip_is_detected_at_the_right_seq() {
    let source = tempfile::tempdir().unwrap();
    write_golden(source.path());
    let offsets = record_offsets(source.path());
    let segment = only_segment(source.path());
    let original = std::fs::read(&segment).unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_journal(source.path(), dir.path());
    let target = only_segment(dir.path());
    for position in 0..original.len() {
        let mut bytes = original.clone();
        bytes[position] ^= 0x5a;
        std::fs::write(&target, &bytes).unwrap();
        let report = verify(dir.path(), None).unwrap();
        let fault = report
            .fault
            .unwrap_or_else(|| panic!("flip at byte {position} went undetected"));
        // The seq of the record containing the byte (1 for the header).
        let expected_seq = offsets
            .iter()
            .take_while(|&&start| start as usize <= position)
            .count()
            .max(1) as u64;
        assert_eq!(fault.seq, expected_seq, "flip at byte {position}: {fault}");
        assert_eq!(report.events, expected_seq - 1);
    }
}

#[test]
fn damage_before_the_tail_is_corruption_and_is_never_repaired() {
    let source = tempfile::tempdir().unwrap();
    write_golden(source.path());
    let offsets = record_offsets(source.path());
    let original = std::fs::read(only_segment(source.path())).unwrap();
    let (r3, r4, r5) = (
        offsets[2] as usize,
        offsets[3] as usize,
        offsets[4] as usize,
    );
    let mut swapped = original[..r3].to_vec();
    swapped.extend_from_slice(&original[r4..r5]);
    swapped.extend_from_slice(&original[r3..r4]);
    swapped.extend_from_slice(&original[r5..]);
    let mut flipped = original.clone();
    flipped[r3 + 20] ^= 1;
    let mut cut_out = original[..r3 + 10].to_vec();
    cut_out.extend_from_slice(&original[r4..]);
    let mut bad_len = original.clone();
    bad_len[r3 + 8] ^= 0x40; // length field of record 3, making it claim beyond EOF
    let mut last_two_swapped = original[..offsets[offsets.len() - 3] as usize].to_vec();
    let (a, b, e) = (
        offsets[offsets.len() - 3] as usize,
        offsets[offsets.len() - 2] as usize,
        original.len(),
    );
    last_two_swapped.extend_from_slice(&original[b..e]);
    last_two_swapped.extend_from_slice(&original[a..b]);
    let cases = [
        ("records swapped", swapped, 3u64),
        ("payload flipped", flipped, 3),
        ("bytes cut from the middle", cut_out, 3),
        ("length damaged", bad_len, 3),
        (
            "last two records swapped",
            last_two_swapped,
            offsets.len() as u64 - 2,
        ),
    ];
    for (name, bytes, seq) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg-00000000000000000001.anxj");
        std::fs::write(&path, &bytes).unwrap();
        let fault = verify(dir.path(), None).unwrap().fault.expect(name);
        assert_eq!(fault.seq, seq, "{name}: {fault}");
        assert!(
            !fault.torn_tail,
            "{name} must not look like a torn tail: {fault}"
        );
        match reopen(dir.path()) {
            Err(JournalError::Corrupt(f)) => assert_eq!(f.seq, seq, "{name}"),
            Err(other) => panic!("{name}: expected corruption, got {other}"),
            Ok(_) => panic!("{name}: a corrupt journal was opened for writing"),
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{name}: the file was changed"
        );
    }
}

/// A journal spread over several small segments.
fn multi_segment(dir: &Path) -> Vec<anx_journal::reader::SegmentFileInfo> {
    let opts = WriterOptions {
        segment_bytes_max: 700,
        ..options(Durability::OnClose)
    };
    write_events(dir, &golden_events(), opts);
    let segments = anx_journal::list_segments(dir).unwrap();
    assert!(
        segments.len() >= 4,
        "expected several segments, got {}",
        segments.len()
    );
    segments
}

#[test]
fn segments_chain_and_roll_over() {
    let dir = tempfile::tempdir().unwrap();
    let segments = multi_segment(dir.path());
    let report = verify(dir.path(), None).unwrap();
    assert!(report.ok());
    assert_eq!(report.segments, segments.len());
    let single = tempfile::tempdir().unwrap();
    write_golden_v2(single.path());
    assert_eq!(
        report.head,
        verify(single.path(), None).unwrap().head,
        "the chain does not depend on segmenting"
    );
    let events: Vec<Event> = read_all(dir.path()).into_iter().map(|s| s.event).collect();
    let golden: Vec<Event> = golden_events()
        .into_iter()
        .map(|(_, e)| e.as_read_back(SCHEMA_VERSION_CURRENT).unwrap())
        .collect();
    assert_eq!(events, golden);
}

#[test]
fn a_deleted_or_damaged_segment_is_corruption() {
    let source = tempfile::tempdir().unwrap();
    let segments = multi_segment(source.path());
    let last = segments.len() - 1;
    // Deleting a middle segment or the first one.
    for victim in [1, 0] {
        let dir = tempfile::tempdir().unwrap();
        copy_journal(source.path(), dir.path());
        std::fs::remove_file(dir.path().join(&segments[victim].name)).unwrap();
        let fault = verify(dir.path(), None)
            .unwrap()
            .fault
            .expect("deleted segment");
        assert!(
            matches!(fault.reason, FaultReason::SegmentSeqGap { .. }),
            "{fault}"
        );
        assert_eq!(fault.seq, segments[victim].first_seq);
        assert!(matches!(reopen(dir.path()), Err(JournalError::Corrupt(_))));
    }
    // A torn record in a segment that is not the last is corruption, not a tail.
    let dir = tempfile::tempdir().unwrap();
    copy_journal(source.path(), dir.path());
    let path = dir.path().join(&segments[last - 1].name);
    cut_tail(&path, 5);
    let fault = verify(dir.path(), None)
        .unwrap()
        .fault
        .expect("cut segment");
    assert!(!fault.torn_tail, "{fault}");
    assert!(matches!(reopen(dir.path()), Err(JournalError::Corrupt(_))));
    // Deleting the last segment leaves a shorter valid chain: only a published
    // head reveals it.
    let dir = tempfile::tempdir().unwrap();
    copy_journal(source.path(), dir.path());
    let full_head = verify(dir.path(), None).unwrap().head;
    std::fs::remove_file(dir.path().join(&segments[last].name)).unwrap();
    assert!(verify(dir.path(), None).unwrap().ok());
    let fault = verify(dir.path(), Some(full_head))
        .unwrap()
        .fault
        .expect("shorter than head");
    assert!(
        matches!(fault.reason, FaultReason::ShorterThanExpectedHead { .. }),
        "{fault}"
    );
}

#[test]
fn expect_head_detects_a_rewritten_history() {
    let dir = tempfile::tempdir().unwrap();
    write_golden(dir.path());
    let head = verify(dir.path(), None).unwrap().head;
    assert!(verify(dir.path(), Some(head)).unwrap().ok());
    // A journal with the same events but another identity has other hashes.
    let other = tempfile::tempdir().unwrap();
    let mut writer = Writer::create(
        other.path(),
        anx_journal::JournalMeta {
            journal_id: [1; 16],
            created_ms: 0,
        },
        options(Durability::OnClose),
    )
    .unwrap();
    for (ms, event) in golden_events() {
        writer.append(ms, &event).unwrap();
    }
    writer.close().unwrap();
    let fault = verify(other.path(), Some(head))
        .unwrap()
        .fault
        .expect("rewritten");
    assert!(
        matches!(fault.reason, FaultReason::ExpectedHeadMismatch { .. }),
        "{fault}"
    );
    assert_eq!(fault.seq, head.seq);
}

#[test]
fn a_second_writer_is_refused_and_nothing_is_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Writer::create(dir.path(), GOLDEN_META, options(Durability::Always)).unwrap();
    let golden = golden_events();
    first.append(golden[0].0, &golden[0].1).unwrap();
    for attempt in [
        reopen(dir.path()),
        Writer::create(dir.path(), GOLDEN_META, options(Durability::Always)),
    ] {
        match attempt {
            Err(JournalError::Locked { lock, holder, .. }) => {
                assert_eq!(lock, dir.path().join("LOCK"));
                assert_eq!(holder, format!("pid {}", std::process::id()));
            }
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("a second writer was allowed"),
        }
    }
    assert!(anx_journal::is_locked(dir.path()).unwrap());
    first.append(golden[1].0, &golden[1].1).unwrap();
    first.close().unwrap();
    assert!(!anx_journal::is_locked(dir.path()).unwrap());
    let events = read_all(dir.path());
    assert_eq!(events.len(), 2);
    // Once the first writer is gone a new one may open and continue the chain.
    let mut next = reopen(dir.path()).unwrap();
    assert!(next.recovered().is_none());
    next.append(golden[2].0, &golden[2].1).unwrap();
    next.close().unwrap();
    assert!(verify(dir.path(), None).unwrap().ok());
}

/// Appends the golden events through `storage` until the writer fails; returns
/// the events acknowledged as durable.
fn append_until_poisoned(
    dir: &Path,
    storage: FaultyStorage,
    durability: Durability,
) -> (usize, String) {
    let mut writer =
        Writer::create_with(dir, GOLDEN_META, options(durability), Box::new(storage)).unwrap();
    let mut cause = None;
    for round in 0..50 {
        for (ms, event) in golden_events() {
            if let Err(e) = writer.append(ms, &event) {
                cause = Some(e.to_string());
                break;
            }
        }
        if cause.is_some() || round == 49 {
            break;
        }
    }
    let cause = cause.expect("the injected fault must surface");
    // Poisoned: every later append and sync fails and says why.
    let (ms, event) = &golden_events()[0];
    match writer.append(*ms, event) {
        Err(JournalError::Poisoned { cause: why }) => {
            assert!(why.contains("injected fault"), "{why}")
        }
        other => panic!("expected a poisoned writer, got {other:?}"),
    }
    assert!(matches!(writer.sync(), Err(JournalError::Poisoned { .. })));
    (writer.durable_seq() as usize, cause)
}

fn assert_acknowledged_survive(dir: &Path, acknowledged: usize) {
    let writer = reopen(dir).expect("reopen after a fault");
    drop(writer);
    let events = read_all(dir);
    let golden = golden_events();
    assert!(
        events.len() >= acknowledged,
        "lost acknowledged events: {} < {acknowledged}",
        events.len()
    );
    for (i, stored) in events.iter().take(acknowledged).enumerate() {
        assert_eq!(
            stored.event,
            golden[i % golden.len()]
                .1
                .as_read_back(SCHEMA_VERSION_CURRENT)
                .unwrap(),
            "seq {}",
            stored.seq
        );
    }
    assert!(verify(dir, None).unwrap().ok());
}

#[test]
fn short_writes_are_completed() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new(FaultPlan {
        write_chunk_max: Some(7),
        ..FaultPlan::default()
    });
    let plan = storage.plan.clone();
    let mut writer = Writer::create_with(
        dir.path(),
        GOLDEN_META,
        options(Durability::Always),
        Box::new(storage),
    )
    .unwrap();
    for (ms, event) in golden_events() {
        writer.append(ms, &event).unwrap();
    }
    writer.close().unwrap();
    assert!(plan.lock().unwrap().syncs >= golden_events().len() as u32);
    assert_eq!(read_all(dir.path()).len(), golden_events().len());
    assert!(verify(dir.path(), None).unwrap().ok());
}

#[test]
fn a_failed_write_poisons_and_loses_no_acknowledged_event() {
    // A fault while the first segment's header is written fails creation and
    // leaves no segment behind.
    for budget in [0u64, 1, 100, 111] {
        let dir = tempfile::tempdir().unwrap();
        let storage = FaultyStorage::new(FaultPlan {
            write_budget_bytes: Some(budget),
            ..FaultPlan::default()
        });
        match Writer::create_with(
            dir.path(),
            GOLDEN_META,
            options(Durability::Always),
            Box::new(storage),
        ) {
            Err(JournalError::Io { path, .. }) => {
                assert!(path.to_string_lossy().ends_with(".anxj.tmp"))
            }
            Err(other) => panic!("expected an I/O error, got {other}"),
            Ok(_) => panic!("creation must fail when the header cannot be written"),
        }
        assert!(anx_journal::list_segments(dir.path()).unwrap().is_empty());
        Writer::create(dir.path(), GOLDEN_META, options(Durability::Always))
            .expect("a later create succeeds");
    }
    for budget in [112u64, 113, 1000, 1234, 2500, 3999] {
        for durability in [
            Durability::Always,
            Durability::Batch {
                events_max: 3,
                delay_ms_max: 60_000,
            },
        ] {
            let dir = tempfile::tempdir().unwrap();
            let storage = FaultyStorage::new(FaultPlan {
                write_budget_bytes: Some(budget),
                write_chunk_max: Some(64),
                ..FaultPlan::default()
            });
            let (acknowledged, cause) = append_until_poisoned(dir.path(), storage, durability);
            assert!(cause.contains("write failed"), "{cause}");
            assert_acknowledged_survive(dir.path(), acknowledged);
        }
    }
}

#[test]
fn a_failed_fsync_poisons_and_loses_no_acknowledged_event() {
    for fail_at in [2u32, 3, 7, 20] {
        let dir = tempfile::tempdir().unwrap();
        let storage = FaultyStorage::new(FaultPlan {
            fail_sync_at: Some(fail_at),
            ..FaultPlan::default()
        });
        let (acknowledged, cause) = append_until_poisoned(dir.path(), storage, Durability::Always);
        assert!(cause.contains("fdatasync failed"), "{cause}");
        // The first sync is the segment header's; each later one acknowledges one event.
        assert_eq!(acknowledged, fail_at as usize - 2);
        assert_acknowledged_survive(dir.path(), acknowledged);
    }
}

#[test]
fn a_failed_rollover_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new(FaultPlan::default());
    let plan = storage.plan.clone();
    let opts = WriterOptions {
        segment_bytes_max: 700,
        ..options(Durability::Always)
    };
    let mut writer = Writer::create_with(dir.path(), GOLDEN_META, opts, Box::new(storage)).unwrap();
    plan.lock().unwrap().fail_sync_dir = true;
    let mut failure = None;
    for (ms, event) in golden_events() {
        if let Err(e) = writer.append(ms, &event) {
            failure = Some(e);
            break;
        }
    }
    assert!(
        matches!(failure, Some(JournalError::Poisoned { .. })),
        "{failure:?}"
    );
    let acknowledged = writer.durable_seq() as usize;
    drop(writer);
    assert_acknowledged_survive(dir.path(), acknowledged);
}

#[test]
fn reader_can_stop_quietly_at_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    write_golden(dir.path());
    let segment = only_segment(dir.path());
    cut_tail(&segment, 3);
    let mut strict = Reader::open(dir.path()).unwrap();
    let mut seen = 0;
    let error = loop {
        match strict.next_record() {
            Ok(Some(_)) => seen += 1,
            Ok(None) => panic!("strict reader must not end quietly at a torn tail"),
            Err(e) => break e,
        }
    };
    assert!(matches!(error, JournalError::TornTail(_)));
    assert_eq!(seen, golden_events().len() - 1);
    let mut lenient = Reader::open_with(dir.path(), anx_journal::TailPolicy::StopAtTorn).unwrap();
    let mut count = 0;
    while lenient.next_record().unwrap().is_some() {
        count += 1;
    }
    assert_eq!(count, golden_events().len() - 1);
    assert!(lenient.torn_tail().is_some());
}

#[test]
fn random_access_to_a_record_cut_short_is_an_error_not_a_panic() {
    use anx_journal::reader::{list_segments, read_record_at};
    let dir = tempfile::tempdir().unwrap();
    write_golden(dir.path());
    let offsets = record_offsets(dir.path());
    let segment = only_segment(dir.path());
    // Every cut inside the second-to-last record, past its header; the
    // target is the record after it, so the scan must cross the cut.
    let cut_seq = offsets.len() as u64 - 1;
    let last_start = offsets[offsets.len() - 2];
    let target = offsets.len() as u64;
    for cut in (last_start + 16 + 1)..offsets[offsets.len() - 1] {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap();
        file.set_len(cut).unwrap();
        let info = &list_segments(dir.path()).unwrap()[0];
        // Scanning from the first record to the last crosses the cut.
        match read_record_at(info, 1, offsets[0], target) {
            Err(JournalError::Corrupt(fault)) => {
                assert_eq!(fault.seq, cut_seq, "cut at {cut}");
                assert_eq!(fault.offset, last_start);
                assert!(
                    matches!(fault.reason, FaultReason::IncompleteRecord { .. }),
                    "cut at {cut}: {:?}",
                    fault.reason
                );
            }
            other => panic!("cut at {cut}: expected an incomplete record, got {other:?}"),
        }
    }
}

/// Rewrites the header of `path`'s segment so it claims `first_seq`, with a
/// valid header hash (BLAKE3 of bytes 0..80, FORMAT.md §2).
fn reclaim_first_seq(path: &Path, first_seq: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[40..48].copy_from_slice(&first_seq.to_le_bytes());
    let hash = blake3::hash(&bytes[..80]);
    bytes[80..112].copy_from_slice(hash.as_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_header_claiming_an_earlier_first_seq_is_reported_at_the_expected_seq() {
    let source = tempfile::tempdir().unwrap();
    let segments = multi_segment(source.path());
    // A later segment whose re-hashed header says it starts one seq early, and
    // the first segment's header saying 0: FORMAT.md §7 reports the seq the
    // verifier expected there, not the header's.
    for (victim, claimed) in [(2, segments[2].first_seq - 1), (0, 0)] {
        let dir = tempfile::tempdir().unwrap();
        copy_journal(source.path(), dir.path());
        reclaim_first_seq(&dir.path().join(&segments[victim].name), claimed);
        let fault = verify(dir.path(), None)
            .unwrap()
            .fault
            .expect("a header disagreeing with its name");
        assert_eq!(
            fault.reason,
            FaultReason::SegmentNameMismatch {
                name_seq: segments[victim].first_seq,
                header_seq: claimed,
            }
        );
        assert_eq!(fault.seq, segments[victim].first_seq, "{fault}");
        assert_eq!(fault.segment, segments[victim].name);
        assert_eq!(fault.offset, 0);
        assert!(!fault.torn_tail);
        assert!(matches!(reopen(dir.path()), Err(JournalError::Corrupt(_))));
    }
}

#[test]
fn expect_head_zero_must_be_this_journals_genesis() {
    let dir = tempfile::tempdir().unwrap();
    write_golden(dir.path());
    let genesis = GOLDEN_META.genesis();
    let at_zero = |hash| Some(Head { seq: 0, hash });
    let report = verify(dir.path(), at_zero(genesis)).unwrap();
    assert!(report.ok(), "{:?}", report.fault);
    assert_eq!(report.verdict(), Verdict::Ok);
    let other_genesis = JournalMeta {
        journal_id: [9; 16],
        ..GOLDEN_META
    }
    .genesis();
    for wrong in [Hash32([0; 32]), other_genesis] {
        let report = verify(dir.path(), at_zero(wrong)).unwrap();
        let fault = report.fault.clone().expect("a wrong genesis");
        assert_eq!(fault.seq, 0);
        assert_eq!(fault.offset, 0);
        assert_eq!(fault.segment, "seg-00000000000000000001.anxj");
        assert_eq!(
            fault.reason,
            FaultReason::ExpectedHeadMismatch {
                found: genesis.to_hex()
            }
        );
        assert!(fault.reason.to_string().contains("rewritten"));
        assert_eq!(report.verdict(), Verdict::Corrupt);
        assert_eq!(report.events, 0);
        assert_eq!(
            report.head,
            Head {
                seq: 0,
                hash: genesis
            }
        );
    }
    // Seq 0 comes before every record: a wrong genesis is the first failure
    // even when a later record is damaged; a right one lets that damage show.
    let segment = only_segment(dir.path());
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[2100] ^= 1; // inside record 10
    std::fs::write(&segment, &bytes).unwrap();
    let fault = verify(dir.path(), at_zero(other_genesis))
        .unwrap()
        .fault
        .unwrap();
    assert_eq!(fault.seq, 0);
    let fault = verify(dir.path(), at_zero(genesis)).unwrap().fault.unwrap();
    assert_eq!((fault.seq, fault.reason), (10, FaultReason::HashMismatch));
}

#[test]
fn a_torn_tail_has_its_own_verdict_unless_a_published_head_covers_it() {
    let dir = tempfile::tempdir().unwrap();
    write_golden(dir.path());
    let full = verify(dir.path(), None).unwrap();
    assert_eq!(full.verdict(), Verdict::Ok);
    assert_eq!(Verdict::Ok.as_str(), "ok");
    let early = Head {
        seq: 3,
        hash: read_all(dir.path())[2].hash,
    };
    let segment = only_segment(dir.path());
    cut_tail(&segment, 10);
    let torn = verify(dir.path(), None).unwrap();
    assert!(torn.fault.as_ref().unwrap().torn_tail);
    assert_eq!(torn.verdict(), Verdict::TornTail);
    assert_eq!(torn.verdict().as_str(), "torn_tail");
    assert_eq!(
        verify(dir.path(), Some(early)).unwrap().verdict(),
        Verdict::TornTail
    );
    // A head published with the lost record: committed events are gone.
    let covered = verify(dir.path(), Some(full.head)).unwrap();
    assert!(covered.fault.as_ref().unwrap().torn_tail);
    assert_eq!(covered.verdict(), Verdict::Corrupt);
    assert_eq!(covered.verdict().as_str(), "corrupt");
    // Damage before the tail is corruption.
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[2100] ^= 1;
    std::fs::write(&segment, &bytes).unwrap();
    assert_eq!(
        verify(dir.path(), None).unwrap().verdict(),
        Verdict::Corrupt
    );
}

/// A storage whose reads fail after `budget` more bytes (0: the first read
/// fails), in reads of at most `chunk` bytes.
fn failing_reads(budget: Option<u64>, chunk: Option<usize>) -> FaultyStorage {
    FaultyStorage::new(FaultPlan {
        read_budget_bytes: budget,
        read_chunk_max: chunk,
        ..FaultPlan::default()
    })
}

/// The error is an I/O error on `path` whose message names the file and says
/// the fault was injected.
fn assert_io_error_naming(error: &JournalError, path: &Path) {
    match error {
        JournalError::Io { path: at, .. } => assert_eq!(at, path, "{error}"),
        other => panic!("expected an I/O error on {}, got {other:?}", path.display()),
    }
    let text = error.to_string();
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(text.contains(name.as_ref()), "{text}");
    assert!(text.contains("injected fault"), "{text}");
}

#[test]
fn a_read_fault_is_an_error_naming_the_segment_and_short_reads_are_completed() {
    let dir = tempfile::tempdir().unwrap();
    write_golden(dir.path());
    let segment = only_segment(dir.path());
    let len = std::fs::metadata(&segment).unwrap().len();
    let golden = read_all(dir.path());
    // Failing anywhere: before the header, inside it, inside a record, one
    // byte before the end. The reader reads a whole segment before it hands
    // out a record, so nothing comes out – in particular no torn tail or
    // corruption verdict, which would be wrong data about the journal.
    for budget in [0, 1, 111, 112, 500, len / 2, len - 1] {
        let storage = failing_reads(Some(budget), Some(4096));
        let mut reader = Reader::open_with_storage(
            dir.path(),
            anx_journal::TailPolicy::StopAtTorn,
            Box::new(storage),
        )
        .unwrap();
        let error = reader
            .next_record()
            .map(|r| r.map(|r| r.seq))
            .expect_err("a read fault must surface");
        assert_io_error_naming(&error, &segment);
        assert!(reader.torn_tail().is_none(), "budget {budget}");
    }
    // Short reads (7 bytes at a time) are completed: the same events.
    let storage = failing_reads(None, Some(7));
    let plan = storage.plan.clone();
    let mut reader = Reader::open_with_storage(
        dir.path(),
        anx_journal::TailPolicy::Strict,
        Box::new(storage),
    )
    .unwrap();
    let mut events = Vec::new();
    while let Some(event) = reader.next_event().unwrap() {
        events.push(event);
    }
    assert_eq!(events, golden);
    assert_eq!(plan.lock().unwrap().bytes_read, len);
    // A failed open for reading names the file too.
    let storage = FaultyStorage::new(FaultPlan {
        fail_open_read: true,
        ..FaultPlan::default()
    });
    let mut reader = Reader::open_with_storage(
        dir.path(),
        anx_journal::TailPolicy::Strict,
        Box::new(storage),
    )
    .unwrap();
    assert_io_error_naming(&reader.next_record().map(|_| ()).unwrap_err(), &segment);
}

#[test]
fn random_access_and_the_header_read_surface_read_faults_naming_the_segment() {
    use anx_journal::reader::{
        list_segments, read_journal_meta, read_journal_meta_with, read_record_at,
        read_record_at_with,
    };
    let dir = tempfile::tempdir().unwrap();
    write_golden(dir.path());
    let offsets = record_offsets(dir.path());
    let info = &list_segments(dir.path()).unwrap()[0];
    let target = offsets.len() as u64 - 1;
    let expected = read_record_at(info, 1, offsets[0], target).unwrap();
    // Random access scans headers, then reads the predecessor's hash and the
    // record: a fault at any of those reads is an error naming the file.
    let mut storage = failing_reads(None, None);
    let plan = storage.plan.clone();
    assert_eq!(
        read_record_at_with(&mut storage, info, 1, offsets[0], target).unwrap(),
        expected
    );
    let needed = plan.lock().unwrap().bytes_read;
    for budget in [0, 1, 16, needed / 2, needed - 33, needed - 1] {
        let mut storage = failing_reads(Some(budget), Some(100));
        match read_record_at_with(&mut storage, info, 1, offsets[0], target) {
            Err(error) => assert_io_error_naming(&error, &info.path),
            Ok(found) => panic!("budget {budget}: read past a read fault: {found:?}"),
        }
    }
    // Short reads: the same record, at the same offset.
    let mut storage = failing_reads(None, Some(5));
    assert_eq!(
        read_record_at_with(&mut storage, info, 1, offsets[0], target).unwrap(),
        expected
    );
    // The segment header read behind the CLI's journal identity.
    assert_eq!(read_journal_meta(info).unwrap(), GOLDEN_META);
    let mut storage = failing_reads(None, Some(3));
    assert_eq!(
        read_journal_meta_with(&mut storage, info).unwrap(),
        GOLDEN_META
    );
    for budget in [0, 1, 80, 111] {
        let mut storage = failing_reads(Some(budget), Some(10));
        let error = read_journal_meta_with(&mut storage, info).unwrap_err();
        assert_io_error_naming(&error, &info.path);
    }
}

#[test]
fn the_writer_reports_read_and_lock_faults_at_open_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_golden(dir.path());
    let segment = only_segment(dir.path());
    // A torn tail the writer would cut, were its reads to succeed.
    let torn_len = cut_tail(&segment, 5);
    for check in [
        anx_journal::OpenCheck::FullChain,
        anx_journal::OpenCheck::LastSegment,
    ] {
        let opts = WriterOptions {
            open_check: check,
            ..options(Durability::Always)
        };
        for budget in [0, 100, 112, 1000, torn_len - 1] {
            let storage = failing_reads(Some(budget), None);
            match Writer::open_with(dir.path(), opts, Box::new(storage)) {
                Err(error) => assert_io_error_naming(&error, &segment),
                Ok(_) => panic!("{check:?}, budget {budget}: opened through a read fault"),
            }
            assert_eq!(std::fs::metadata(&segment).unwrap().len(), torn_len);
        }
    }
    // Taking the lock fails: an error naming the lock file, nothing cut.
    let storage = FaultyStorage::new(FaultPlan {
        fail_lock: true,
        ..FaultPlan::default()
    });
    let lock = dir.path().join(anx_journal::LOCK_FILE);
    match Writer::open_with(dir.path(), options(Durability::Always), Box::new(storage)) {
        Err(error) => assert_io_error_naming(&error, &lock),
        Ok(_) => panic!("opened without the lock"),
    }
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), torn_len);
    let fresh = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new(FaultPlan {
        fail_lock: true,
        ..FaultPlan::default()
    });
    match Writer::create_with(
        fresh.path(),
        GOLDEN_META,
        options(Durability::Always),
        Box::new(storage),
    ) {
        Err(error) => assert_io_error_naming(&error, &fresh.path().join(anx_journal::LOCK_FILE)),
        Ok(_) => panic!("created without the lock"),
    }
    assert!(anx_journal::list_segments(fresh.path()).unwrap().is_empty());
    // Through a storage that reads in short pieces, the open is the normal
    // one: the tail is cut and journaled.
    let storage = failing_reads(None, Some(9));
    let writer = Writer::open_with(dir.path(), options(Durability::Always), Box::new(storage))
        .expect("short reads are completed");
    let recovered = writer.recovered().cloned().expect("the torn tail was cut");
    assert_eq!(recovered.bytes_dropped, torn_len - recovered.offset);
    drop(writer);
    assert!(verify(dir.path(), None).unwrap().ok());
}
