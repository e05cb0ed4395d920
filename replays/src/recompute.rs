//! A decision's glass box recomputed from its journal, and proven to be the
//! one the journal committed to (`anx why DIR --decision SEQ`).
//!
//! A schema-2 decision that led to no order keeps only the BLAKE3 of its glass
//! box. Its glass box is recomputed by re-driving the journal – every step
//! before it run again through the engine and, for a simulated broker, the
//! simulator, each produced event compared byte for byte with the journaled
//! one – up to the decision itself, whose produced form must encode to the
//! journaled bytes, digest included. Only then is the recomputed glass box
//! handed out; a build that computes another one gets a divergence naming the
//! seq, never a glass box shown as if it were the journaled one.
//!
//! The re-drive needs a writer for what would follow the journal: it is
//! given a scratch directory, and writes there only if the step of the
//! decision goes on past it.

use crate::exchange::{Broker, BrokerEvent, SimExchange};
use crate::pipeline::{Pipeline, PipelineError};
use anx_journal::{
    read_events, Candle, DataIntegrity, Decision, Durability, Event, Hash32, JournalError,
    OrderPlaced, Reader, RunMode, RunStarted, Seq, StoredEvent, TailPolicy, Writer, WriterOptions,
};
use anx_projections::engine::config::Config;
use anx_projections::engine::Engine;
use rust_decimal::Decimal;
use std::path::Path;

/// Why a glass box could not be recomputed and proven.
#[derive(Debug, thiserror::Error)]
pub enum RecomputeError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("seq {seq} is not in the journal (its head is seq {head})")]
    NoSuchSeq { seq: Seq, head: Seq },
    #[error("seq {seq} is a {kind}, not a Decision")]
    NotADecision { seq: Seq, kind: String },
    #[error("the journal has no RunStarted before seq {seq}: no configuration to recompute with")]
    NoRun { seq: Seq },
    #[error("the run's configuration (RunStarted) does not load: {0}")]
    Config(String),
    #[error("seq {seq}: the journaled glass box has no canonical encoding: {reason}")]
    Unencodable { seq: Seq, reason: String },
    /// The code produced something other than the journal at `seq` – the
    /// decision itself (`seq` is the target: its glass box does not hash to
    /// the journaled digest) or an event before it.
    #[error(
        "seq {seq}: this build does not reproduce the journal, so the glass box \
         the journal committed to cannot be recomputed (nothing recomputed is shown): {source}"
    )]
    Diverged { seq: Seq, source: PipelineError },
    /// Re-driving failed for another reason (a fold or engine refusal).
    #[error("re-driving the journal up to seq {target} failed: {source}")]
    Redrive { target: Seq, source: PipelineError },
    #[error("seq {seq}: the step that made this decision went past it without reproducing it")]
    NotReproduced { seq: Seq },
}

/// A decision recomputed and found byte for byte equal to its journal record.
#[derive(Debug)]
pub struct Proven {
    /// The decision as the code made it: its whole glass box.
    pub decision: Decision,
    /// The digest of that glass box, the one journaled.
    pub digest: Hash32,
    /// The journal's events re-driven to reach it.
    pub events_redriven: usize,
}

/// The journaled event at `seq`, with every event before it (which a
/// recomputation re-drives) and the run's start.
pub struct Upto {
    pub events: Vec<StoredEvent>,
    pub run: RunStarted,
    pub meta: anx_journal::JournalMeta,
}

/// Reads (and verifies) the journal up to and including `seq`.
pub fn read_upto(dir: &Path, seq: Seq) -> Result<Upto, RecomputeError> {
    // A running or crashed trader's torn tail lies after every intact record.
    let mut reader = Reader::open_with(dir, TailPolicy::StopAtTorn)?;
    let events = read_events(&mut reader, seq)?;
    let head = events.last().map_or(0, |e| e.seq);
    if head < seq {
        return Err(RecomputeError::NoSuchSeq { seq, head });
    }
    let run = events
        .iter()
        .find_map(|e| match &e.event {
            Event::RunStarted(run) => Some(run.clone()),
            _ => None,
        })
        .ok_or(RecomputeError::NoRun { seq })?;
    let meta = reader
        .meta()
        .ok_or(RecomputeError::NoSuchSeq { seq, head })?;
    Ok(Upto { events, run, meta })
}

/// Recomputes the glass box of the decision that ends `upto` (`read_upto`)
/// and proves it equal to the journal's (`scratch`: an empty directory for
/// the re-drive's writer).
pub fn recompute_decision(upto: Upto, scratch: &Path) -> Result<Proven, RecomputeError> {
    let seq = upto.events.last().map_or(0, |e| e.seq);
    let target = upto.events.last().map(|e| &e.event);
    let Some(Event::Decision(journaled)) = target else {
        let kind = target.map_or("nothing".into(), |e| e.kind().to_string());
        return Err(RecomputeError::NotADecision { seq, kind });
    };
    let digest = journaled
        .glass
        .digest()
        .map_err(|reason| RecomputeError::Unencodable { seq, reason })?;
    let config = Config::from_toml(&upto.run.config_text)
        .map_err(|e| RecomputeError::Config(e.to_string()))?;
    let skip_volume = upto.run.data_integrity == DataIntegrity::DegradedSkipVolume;
    let engine = Engine::new(config.clone(), &upto.run.run_id, skip_volume);
    let options = WriterOptions {
        durability: Durability::OnClose,
        ..WriterOptions::default()
    };
    let writer = Writer::create(scratch, upto.meta, options)?;
    let events_redriven = upto.events.len();
    let run_id = upto.run.run_id.clone();
    let produced = match upto.run.run_mode {
        RunMode::Live => redrive(writer, engine, AsJournaled, &run_id, upto.events, seq),
        RunMode::ReplayBacktest | RunMode::PaperLive => {
            // The simulator that wrote the journal: its ids, a drill's withholding.
            let broker = SimExchange::of_journal(config, &upto.run, &upto.events);
            redrive(writer, engine, broker, &run_id, upto.events, seq)
        }
    }?;
    let Event::Decision(decision) = produced else {
        return Err(RecomputeError::NotReproduced { seq });
    };
    Ok(Proven {
        decision,
        digest,
        events_redriven,
    })
}

/// Re-drives `events` (ending at `seq`), keeping what the code produced there.
fn redrive<B: Broker>(
    writer: Writer,
    engine: Engine,
    broker: B,
    run_id: &str,
    events: Vec<StoredEvent>,
    seq: Seq,
) -> Result<Event, RecomputeError> {
    let mut pipeline = Pipeline::redriving(writer, engine, broker, run_id, events);
    pipeline.capture_produced(seq);
    let redriven = pipeline.redrive(&mut |_| {});
    // Once the decision is reproduced byte for byte, it is proven: what its
    // step goes on to do past the journal read (into the scratch writer) is
    // no part of it.
    if let Some(produced) = pipeline.captured() {
        return Ok(produced.clone());
    }
    let Err(source) = redriven else {
        return Err(RecomputeError::NotReproduced { seq });
    };
    Err(match source {
        PipelineError::Diverged { seq: at, .. } => RecomputeError::Diverged { seq: at, source },
        source => RecomputeError::Redrive {
            target: seq,
            source,
        },
    })
}

/// The broker of a live run re-driven: a real exchange's answers are facts
/// the journal holds and cannot be asked for again, so it answers nothing
/// itself and the pipeline takes each from the journal.
struct AsJournaled;

impl Broker for AsJournaled {
    fn place(&mut self, _order_seq: Seq, _order: &OrderPlaced) -> Vec<BrokerEvent> {
        Vec::new()
    }
    fn open_orders(&self, _prefix: &str) -> Vec<String> {
        Vec::new()
    }
    fn existing(&self, _order_seq: Seq, _order: &OrderPlaced) -> Vec<BrokerEvent> {
        Vec::new()
    }
    fn position(&self, _symbol: &str) -> Decimal {
        Decimal::ZERO
    }
    fn on_candle(&mut self, _candle: &Candle) -> Vec<BrokerEvent> {
        Vec::new()
    }
    fn cancel(&mut self, _client_order_id: &str, _reason: &str) -> Vec<BrokerEvent> {
        Vec::new()
    }
    fn answers_reproducible(&self) -> bool {
        false
    }
}
