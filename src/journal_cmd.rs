//! `anx journal …`: verify, head, export and stat. All read-only: none of them
//! takes the writer lock, so they are safe on a journal a trader is appending to.

use crate::cli::{
    ExportArgs, ExportFormat, ReplayArgs, ReplayFormat, StatArgs, VerifyArgs, WhyArgs,
};
use crate::output::{human_bytes, market_time};
use crate::render::{replay_json, replay_table, ReplayView};
use crate::store::{self, LoadOptions};
use crate::{EXIT_CHECK_FAILED, EXIT_TORN_TAIL};
use anx_journal::{
    verify as verify_chain, Event, EventKind, Hash32, Reader, TailPolicy, Verdict, VerifyReport,
};
use anyhow::Context;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

pub fn check_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!("{}: not a directory", dir.display());
    }
    Ok(())
}

pub fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    check_dir(&args.dir)?;
    let started = Instant::now();
    let report = verify_chain(&args.dir, args.expect_head)
        .with_context(|| format!("cannot verify {}", args.dir.display()))?;
    let elapsed_s = started.elapsed().as_secs_f64();
    let events_per_s = (report.events as f64 / elapsed_s.max(1e-9)).round();
    if args.json {
        println!("{}", verify_json(&report, elapsed_s, events_per_s));
    } else {
        print_verify_text(&report, &args.dir, elapsed_s, events_per_s);
    }
    Ok(verdict_exit_code(report.verdict()))
}

/// 0 intact, 3 a torn tail only, 1 anything else.
fn verdict_exit_code(verdict: Verdict) -> ExitCode {
    match verdict {
        Verdict::Ok => ExitCode::SUCCESS,
        Verdict::TornTail => ExitCode::from(EXIT_TORN_TAIL),
        Verdict::Corrupt => ExitCode::from(EXIT_CHECK_FAILED),
    }
}

/// What to run about a torn tail.
fn repair_hint(dir: &Path) -> String {
    format!(
        "`anx journal repair {}` cuts it and journals the repair",
        dir.display()
    )
}

fn verify_json(report: &VerifyReport, elapsed_s: f64, events_per_s: f64) -> Value {
    let mut out = json!({
        "ok": report.ok(),
        "verdict": report.verdict().as_str(),
        "torn_tail": report.fault.as_ref().is_some_and(|fault| fault.torn_tail),
        "events": report.events,
        "segments": report.segments,
        "bytes": report.bytes,
        "head_seq": report.head.seq,
        "head_hash": report.head.hash.to_hex(),
        "journal_id": report.journal_id,
        "first_market_ms": report.first_market_ms,
        "last_market_ms": report.last_market_ms,
        "elapsed_ms": (elapsed_s * 1000.0 * 1000.0).round() / 1000.0,
        "events_per_s": events_per_s,
    });
    if let Some(fault) = &report.fault {
        out["first_bad_seq"] = json!(fault.seq);
        out["segment"] = json!(fault.segment);
        out["offset"] = json!(fault.offset);
        out["reason"] = json!(fault.reason.to_string());
    }
    out
}

fn print_verify_text(report: &VerifyReport, dir: &Path, elapsed_s: f64, events_per_s: f64) {
    let expected = report.expected_head.is_some();
    match &report.fault {
        None => {
            println!(
                "ok: {} events in {} segment{} ({}), head {}",
                report.events,
                report.segments,
                if report.segments == 1 { "" } else { "s" },
                human_bytes(report.bytes),
                report.head
            );
            if expected {
                println!("the journal extends the expected head");
            }
            println!(
                "verified in {:.3} s ({} events/s)",
                elapsed_s, events_per_s as u64
            );
        }
        Some(fault) if report.verdict() == Verdict::TornTail => {
            println!(
                "TORN TAIL at seq {} ({} offset {}): {}; every record before it is intact ({} events, head {}); no committed event is lost – {}",
                fault.seq,
                fault.segment,
                fault.offset,
                fault.reason,
                report.events,
                report.head,
                repair_hint(dir)
            );
            if let Some(expected) = report.expected_head {
                println!("the intact records extend the expected head {expected}");
            }
        }
        Some(fault) => {
            println!(
                "FAILED at seq {} ({} offset {}): {}",
                fault.seq, fault.segment, fault.offset, fault.reason
            );
            if let (true, Some(expected)) = (fault.torn_tail, report.expected_head) {
                println!(
                    "this has the shape of a torn tail, but it lies at or before the expected head's seq {}: records that head covers are lost",
                    expected.seq
                );
            }
            println!(
                "intact before it: {} events, head {}",
                report.events, report.head
            );
        }
    }
}

pub fn head(dir: &Path) -> anyhow::Result<ExitCode> {
    check_dir(dir)?;
    let report =
        verify_chain(dir, None).with_context(|| format!("cannot read {}", dir.display()))?;
    if let Some(fault) = &report.fault {
        let verdict = report.verdict();
        if verdict == Verdict::TornTail {
            eprintln!(
                "anx: journal has a torn tail, no head to publish: first bad seq {} ({} offset {}): {}; every record before it is intact (head {}); {}",
                fault.seq,
                fault.segment,
                fault.offset,
                fault.reason,
                report.head,
                repair_hint(dir)
            );
        } else {
            eprintln!(
                "anx: journal is not intact, no head to publish: first bad seq {} ({} offset {}): {}",
                fault.seq, fault.segment, fault.offset, fault.reason
            );
        }
        return Ok(verdict_exit_code(verdict));
    }
    println!("{}", report.head);
    Ok(ExitCode::SUCCESS)
}

/// One exported event; fields in this order so `jq`/pandas users see the
/// position in the chain first.
#[derive(Serialize)]
struct ExportLine<'a> {
    seq: u64,
    hash: Hash32,
    kind: &'static str,
    schema_version: u16,
    market_ms: i64,
    market_time: String,
    body: &'a Event,
}

pub fn export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    match (args.format, &args.out) {
        (ExportFormat::Jsonl, None) => export_jsonl(args),
        (ExportFormat::Jsonl, Some(_)) => anyhow::bail!(
            "--out is for --format parquet; JSON lines go to stdout (redirect them: > events.jsonl)"
        ),
        (ExportFormat::Parquet, _) if args.json => anyhow::bail!(
            "--json is JSON lines (--format jsonl); it cannot be combined with --format parquet"
        ),
        (ExportFormat::Parquet, None) => anyhow::bail!(
            "--format parquet writes one file per table: give their directory with --out OUTDIR"
        ),
        (ExportFormat::Parquet, Some(out)) => crate::parquet_export::export(&args.dir, out),
    }
}

fn export_jsonl(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    check_dir(&args.dir)?;
    let mut reader = Reader::open_with(&args.dir, TailPolicy::Strict)
        .with_context(|| format!("cannot open {}", args.dir.display()))?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    while let Some(record) = reader.next_record()? {
        let envelope = record.envelope();
        let event = record.decode()?;
        let line = ExportLine {
            seq: record.seq,
            hash: record.hash,
            kind: event.kind().name(),
            schema_version: envelope.schema_version,
            market_ms: envelope.market_ms,
            market_time: market_time(envelope.market_ms),
            body: &event,
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn stat(args: &StatArgs) -> anyhow::Result<ExitCode> {
    check_dir(&args.dir)?;
    let mut reader = Reader::open_with(&args.dir, TailPolicy::Strict)
        .with_context(|| format!("cannot open {}", args.dir.display()))?;
    let mut counts: BTreeMap<u16, u64> = BTreeMap::new();
    let mut events = 0u64;
    let mut first_ms = None;
    let mut last_ms = None;
    while let Some(record) = reader.next_record()? {
        let envelope = record.envelope();
        *counts.entry(envelope.kind_code).or_default() += 1;
        events += 1;
        first_ms.get_or_insert(envelope.market_ms);
        last_ms = Some(last_ms.map_or(envelope.market_ms, |m: i64| m.max(envelope.market_ms)));
    }
    let (head_seq, head_hash) = reader.head();
    let kind_name = |code: u16| {
        EventKind::from_code(code)
            .map(|k| k.name().to_string())
            .unwrap_or_else(|| format!("kind_{code}"))
    };
    if args.json {
        let by_kind: serde_json::Map<String, Value> = counts
            .iter()
            .map(|(code, n)| (kind_name(*code), json!(n)))
            .collect();
        println!(
            "{}",
            json!({
                "events": events,
                "segments": reader.segments().len(),
                "bytes": reader.bytes_read(),
                "head_seq": head_seq,
                "head_hash": head_hash.to_hex(),
                "first_market_ms": first_ms,
                "last_market_ms": last_ms,
                "by_kind": by_kind,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("journal    {}", args.dir.display());
    println!(
        "events     {events} in {} segment(s), {}",
        reader.segments().len(),
        human_bytes(reader.bytes_read())
    );
    println!("head       {head_seq}:{head_hash}");
    if let (Some(first), Some(last)) = (first_ms, last_ms) {
        println!("market     {} .. {}", market_time(first), market_time(last));
    }
    println!("by kind");
    for (code, n) in &counts {
        println!("  {:<20} {n:>12}", kind_name(*code));
    }
    Ok(ExitCode::SUCCESS)
}

/// Warnings for the user: one line each on stderr, once (not again as a log line).
pub fn warn_all(warnings: &[String]) {
    for warning in warnings {
        eprintln!("anx: warning: {warning}");
    }
}

pub fn replay(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    check_dir(&args.dir)?;
    let started = Instant::now();
    let loaded = store::load(
        &args.dir,
        LoadOptions {
            to_seq: args.to_seq,
            use_store: !args.no_snapshot,
        },
    )
    .with_context(|| format!("cannot replay {}", args.dir.display()))?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    warn_all(&loaded.warnings);
    let view = ReplayView {
        projection: &loaded.projection,
        head_seq: loaded.head_seq,
        head_hash: loaded.head_hash,
        from_snapshot: loaded.from_snapshot,
        folded: loaded.folded,
        elapsed_ms,
    };
    match args.format {
        ReplayFormat::Json => println!("{}", replay_json(&view)),
        ReplayFormat::Table => print!("{}", replay_table(&view)),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn reindex(dir: &Path) -> anyhow::Result<ExitCode> {
    check_dir(dir)?;
    let started = Instant::now();
    let loaded =
        store::reindex(dir).with_context(|| format!("cannot reindex {}", dir.display()))?;
    warn_all(&loaded.warnings);
    println!(
        "reindexed {} events into {} in {:.3} s; head {}:{}",
        loaded.folded,
        dir.join("index").display(),
        started.elapsed().as_secs_f64(),
        loaded.head_seq,
        loaded.head_hash
    );
    Ok(ExitCode::SUCCESS)
}

pub fn why(args: &WhyArgs) -> anyhow::Result<ExitCode> {
    check_dir(&args.dir)?;
    if let Some(seq) = args.decision {
        return crate::why::decision(&args.dir, seq, args.json);
    }
    let loaded = store::load(&args.dir, LoadOptions::HEAD)
        .with_context(|| format!("cannot read {}", args.dir.display()))?;
    warn_all(&loaded.warnings);
    let index = loaded
        .store
        .as_ref()
        .context("the index store was not opened")?;
    let mut timings_ms = Vec::with_capacity(args.ids.len());
    for id in &args.ids {
        let started = Instant::now();
        let trail = crate::why::lookup(index, &args.dir, &loaded.segments, id)?;
        let lookup_ms = started.elapsed().as_secs_f64() * 1000.0;
        timings_ms.push(lookup_ms);
        if args.json {
            println!("{}", crate::why::trail_json(&trail, lookup_ms));
        } else {
            print!("{}", crate::why::trail_text(&trail, Some(lookup_ms)));
        }
    }
    if timings_ms.len() > 1 {
        timings_ms.sort_by(|a, b| a.total_cmp(b));
        let p95 = timings_ms[((timings_ms.len() - 1) as f64 * 0.95).round() as usize];
        let avg = timings_ms.iter().sum::<f64>() / timings_ms.len() as f64;
        let max = timings_ms[timings_ms.len() - 1];
        eprintln!(
            "{} lookups: avg {avg:.3} ms, p95 {p95:.3} ms, max {max:.3} ms",
            timings_ms.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `anx journal repair`: the writer's own open – lock, full verification, a
/// torn tail cut and journaled as `Recovered` – and nothing else. Corruption
/// is refused (exit 1) and nothing is changed.
pub fn repair(dir: &Path) -> anyhow::Result<ExitCode> {
    check_dir(dir)?;
    // A trader repairs its own journal when it starts: it must first finish
    // the step the crash interrupted (events whose links name the seqs they
    // land at), and only then journal the repair. A note put here could land
    // inside that step.
    // A journal too damaged to read its run is the writer's to refuse, below.
    let run = first_run(dir).ok().flatten();
    if run.is_some_and(|run| run.run_mode.is_trader()) {
        anyhow::bail!(
            "{} is a paper trader's journal: start the trader on it (`anx paper --journal {}`), which finishes the interrupted step and journals the repair itself",
            dir.display(),
            dir.display()
        );
    }
    let options = anx_journal::WriterOptions {
        durability: anx_journal::Durability::Always,
        open_check: anx_journal::OpenCheck::FullChain,
        ..anx_journal::WriterOptions::default()
    };
    let writer = match anx_journal::Writer::open(dir, options) {
        Ok(writer) => writer,
        Err(anx_journal::JournalError::Corrupt(fault)) => {
            eprintln!(
                "anx: {} is corrupt at {fault}: this is not a torn tail, so nothing was changed (`anx journal verify` shows the damage)",
                dir.display()
            );
            return Ok(ExitCode::from(EXIT_CHECK_FAILED));
        }
        Err(error) => {
            return Err(anyhow::Error::new(error))
                .with_context(|| format!("cannot repair {}", dir.display()))
        }
    };
    let recovered = writer.recovered().cloned();
    let head = writer
        .close()
        .with_context(|| format!("cannot repair {}", dir.display()))?;
    match recovered {
        Some(cut) => println!(
            "repaired {}: cut {} bytes of a torn tail at {} offset {} ({}); every event up to seq {} is intact; journaled Recovered at seq {}; head {head}",
            dir.display(),
            cut.bytes_dropped,
            cut.segment,
            cut.offset,
            cut.reason,
            cut.last_good_seq,
            head.seq
        ),
        None => println!(
            "nothing to repair: {} is intact, head {head}",
            dir.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// The journal's `RunStarted` (none before a run starts; a torn tail ends
/// the search quietly). Only the first events are read: `RunStarted` is the
/// first event of a run, after at most a few journal side events.
pub fn first_run(dir: &Path) -> anyhow::Result<Option<anx_journal::RunStarted>> {
    const LOOKED_AT_MAX: usize = 16;
    let mut reader = Reader::open_with(dir, TailPolicy::StopAtTorn)
        .with_context(|| format!("cannot read {}", dir.display()))?;
    for _ in 0..LOOKED_AT_MAX {
        match reader.next_event()? {
            Some(stored) => {
                if let Event::RunStarted(run) = stored.event {
                    return Ok(Some(run));
                }
            }
            None => break,
        }
    }
    Ok(None)
}
