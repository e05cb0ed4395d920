//! The replay runner: cached candles → the production engine (`run_tick`) →
//! the simulated exchange → the journal (hash-chained) → the projections. The
//! report of a replay is the projections' report over its journal, nothing
//! computed on the side.
//!
//! Per closed candle, in market-time order (symbols in name order at equal
//! times): the candle is journaled; the exchange works live orders against it
//! (fills, cancels), and the engine reacts to each; then the engine decides on
//! the candle (one Decision, maybe an order), and each order goes to the
//! exchange (acknowledged, bracket verified or rejected). Data-quality findings
//! are journaled when they become known.
//!
//! Determinism: the run id, the journal id and its creation time are derived
//! from the inputs (configuration, symbols, exchange, granularity, range,
//! flags), and nothing journaled reads a clock, so the same inputs give a
//! byte-identical journal – the same head hash – on every machine.

use crate::data::{find_source, CandleStream, DataError, Item};
use crate::exchange::SimExchange;
use crate::pipeline::{Pipeline, PipelineError};
use anx_journal::*;
use anx_projections::engine::config::Config;
use anx_projections::engine::Engine;
use anx_projections::Projection;
use std::path::PathBuf;

/// What to replay: the symbols and granularity are the configuration's
/// (`run.symbols`, `run.granularity`).
#[derive(Clone, Debug)]
pub struct ReplaySpec {
    pub config: Config,
    pub exchange: String,
    pub start_ms: UnixMs,
    pub end_ms: UnixMs,
    pub cache_dir: PathBuf,
    pub journal_dir: PathBuf,
    pub run_mode: RunMode,
    pub skip_volume_filter: bool,
    pub created_by: String,
    pub git_sha: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("{0}")]
    Invalid(String),
}

/// Counts for progress and throughput.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub candles: u64,
    pub events: u64,
    pub source_rows: u64,
    /// The newest market time folded.
    pub market_ms: UnixMs,
}

impl Progress {
    /// Read off the projection (events and candles folded, market time) and
    /// the loaders (source rows read).
    fn of(projection: &Projection, streams: &[Peeked]) -> Progress {
        let state = &projection.state;
        Progress {
            candles: state.run.as_ref().map_or(0, |run| run.candles),
            events: projection.seq(),
            source_rows: streams.iter().map(|p| p.stream.rows()).sum(),
            market_ms: state.last_market_ms.unwrap_or_default(),
        }
    }
}

pub struct ReplayOutcome {
    pub run_id: String,
    pub projection: Projection,
    pub head: Head,
    pub progress: Progress,
}

/// A run id (8 hex digits) and journal id derived from what defines a run:
/// BLAKE3 over `domain`, the configuration's canonical text, the symbols
/// (each NUL-terminated) and `extra`, in that order.
pub fn run_identity(
    domain: &[u8],
    config: &Config,
    symbols: &[String],
    extra: &[&[u8]],
) -> (String, [u8; 16]) {
    let mut hasher = blake3::Hasher::new();
    hasher.update(domain);
    hasher.update(config.canonical_text().as_bytes());
    for symbol in symbols {
        hasher.update(symbol.as_bytes());
        hasher.update(b"\0");
    }
    for part in extra {
        hasher.update(part);
    }
    let hash = hasher.finalize();
    let mut journal_id = [0u8; 16];
    journal_id.copy_from_slice(&hash.as_bytes()[..16]);
    (hash.to_hex().as_str()[..8].to_string(), journal_id)
}

/// The run id and journal identity of a replay: BLAKE3 over its inputs.
pub fn identity(spec: &ReplaySpec) -> (String, JournalMeta) {
    let (run_id, journal_id) = run_identity(
        b"anx-replay-v1\0",
        &spec.config,
        &spec.config.run.symbols,
        &[
            spec.exchange.as_bytes(),
            &spec.config.granularity_s().to_le_bytes(),
            &spec.start_ms.to_le_bytes(),
            &spec.end_ms.to_le_bytes(),
            &[u8::from(spec.skip_volume_filter), spec.run_mode as u8],
        ],
    );
    (
        run_id,
        JournalMeta {
            journal_id,
            created_ms: spec.start_ms,
        },
    )
}

/// What the cache holds for one symbol of a replay, against the requested range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    pub symbol: String,
    /// The cache file the symbol's candles come from.
    pub file: PathBuf,
    /// Open times of the file's first and last rows (`None`: it holds none).
    pub rows_span: Option<(UnixMs, UnixMs)>,
    /// The part `[from, to)` of the requested range the file's rows span
    /// (`None`: they miss it entirely).
    pub covered: Option<(UnixMs, UnixMs)>,
    /// The requested range.
    pub requested: (UnixMs, UnixMs),
    pub granularity_s: u32,
}

impl Coverage {
    /// Share of the requested range the data spans, from 0 to 1.
    pub fn fraction(&self) -> f64 {
        let (start, end) = self.requested;
        self.covered
            .map_or(0.0, |(from, to)| (to - from) as f64 / (end - start) as f64)
    }

    /// Candles the covered span can hold at most (for a progress total).
    pub fn candles_max(&self) -> u64 {
        let granularity_ms = i64::from(self.granularity_s) * 1000;
        self.covered
            .map_or(0, |(from, to)| ((to - from) / granularity_ms) as u64)
    }

    /// Whether the data spans the whole requested range.
    pub fn is_complete(&self) -> bool {
        self.covered == Some(self.requested)
    }
}

/// What the cache holds for each symbol of `spec`, from each file's first and
/// last rows – read before a replay, so a range with no data is refused
/// before a journal exists and a partial one is known up front.
pub fn coverage(spec: &ReplaySpec) -> Result<Vec<Coverage>, ReplayError> {
    let granularity_s = spec.config.granularity_s();
    let requested = (spec.start_ms, spec.end_ms);
    let mut out = Vec::with_capacity(spec.config.run.symbols.len());
    for symbol in &spec.config.run.symbols {
        let source = find_source(&spec.cache_dir, &spec.exchange, symbol, granularity_s)?;
        let rows_span = crate::data::source_span(&source)?;
        let source_ms = i64::from(source.granularity_s) * 1000;
        let covered = rows_span.and_then(|(first, last)| {
            let from = first.max(spec.start_ms);
            let to = last.saturating_add(source_ms).min(spec.end_ms);
            (from < to).then_some((from, to))
        });
        out.push(Coverage {
            symbol: symbol.clone(),
            file: source.path,
            rows_span,
            covered,
            requested,
            granularity_s,
        });
    }
    Ok(out)
}

/// Events between two progress reports.
const PROGRESS_EVERY_EVENTS: u64 = 65_536;

/// Items per batch handed from a loader thread.
const LOAD_BATCH_ITEMS: usize = 1024;
/// Batches in flight per loader thread (bounds memory).
const LOAD_BATCHES_IN_FLIGHT: usize = 4;

/// A candle stream read and parsed on its own thread, so file reading,
/// decompression and parsing overlap with the engine and the journal.
struct Loader {
    receiver: std::sync::mpsc::Receiver<Result<Vec<Item>, DataError>>,
    batch: std::vec::IntoIter<Item>,
    rows: std::sync::Arc<std::sync::atomic::AtomicU64>,
    done: bool,
}

impl Loader {
    fn spawn(mut stream: CandleStream) -> Loader {
        let (sender, receiver) = std::sync::mpsc::sync_channel(LOAD_BATCHES_IN_FLIGHT);
        let rows = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let rows_seen = rows.clone();
        std::thread::spawn(move || loop {
            let mut batch = Vec::with_capacity(LOAD_BATCH_ITEMS);
            let mut failed = None;
            for item in stream.by_ref() {
                match item {
                    Ok(item) => batch.push(item),
                    Err(error) => {
                        failed = Some(error);
                        break;
                    }
                }
                if batch.len() == LOAD_BATCH_ITEMS {
                    break;
                }
            }
            rows_seen.store(stream.rows, std::sync::atomic::Ordering::Relaxed);
            let finished = batch.len() < LOAD_BATCH_ITEMS;
            if !batch.is_empty() && sender.send(Ok(batch)).is_err() {
                return;
            }
            if let Some(error) = failed {
                let _ = sender.send(Err(error));
                return;
            }
            if finished {
                return;
            }
        });
        Loader {
            receiver,
            batch: Vec::new().into_iter(),
            rows,
            done: false,
        }
    }

    fn next(&mut self) -> Result<Option<Item>, DataError> {
        loop {
            if let Some(item) = self.batch.next() {
                return Ok(Some(item));
            }
            if self.done {
                return Ok(None);
            }
            match self.receiver.recv() {
                Ok(Ok(batch)) => self.batch = batch.into_iter(),
                Ok(Err(error)) => {
                    self.done = true;
                    return Err(error);
                }
                Err(_) => self.done = true,
            }
        }
    }

    fn rows(&self) -> u64 {
        self.rows.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A stream with its next item looked at.
struct Peeked {
    stream: Loader,
    next: Option<Item>,
}

/// Replays `spec`, calling `progress` now and then. The journal must not exist yet.
pub fn run(
    spec: &ReplaySpec,
    progress: &mut dyn FnMut(Progress),
) -> Result<ReplayOutcome, ReplayError> {
    if spec.end_ms <= spec.start_ms {
        return Err(ReplayError::Invalid(format!(
            "the end ({}) must be after the start ({})",
            spec.end_ms, spec.start_ms
        )));
    }
    let mut streams = open_streams(spec)?;
    let (run_id, meta) = identity(spec);
    let mut pipeline = start_pipeline(spec, &run_id, meta)?;
    let mut reported_events = 0u64;
    while let Some(item) = next_item(&mut streams)? {
        feed(&mut pipeline, item)?;
        // A candle appends several events, so count from the last report
        // rather than waiting for an exact multiple that may be stepped over.
        let events = pipeline.projection.seq();
        if events - reported_events >= PROGRESS_EVERY_EVENTS {
            reported_events = events;
            progress(Progress::of(&pipeline.projection, &streams));
        }
    }
    let (projection, head, outcome_progress) = finish(spec, &run_id, pipeline, &streams)?;
    progress(outcome_progress);
    Ok(ReplayOutcome {
        run_id,
        projection,
        head,
        progress: outcome_progress,
    })
}

/// Each symbol's candle stream, loading on its own thread.
fn open_streams(spec: &ReplaySpec) -> Result<Vec<Peeked>, ReplayError> {
    let granularity_s = spec.config.granularity_s();
    let mut streams = Vec::new();
    for symbol in &spec.config.run.symbols {
        let source = find_source(&spec.cache_dir, &spec.exchange, symbol, granularity_s)?;
        let stream =
            CandleStream::open(&source, symbol, granularity_s, spec.start_ms, spec.end_ms)?;
        streams.push(Peeked {
            stream: Loader::spawn(stream),
            next: None,
        });
    }
    Ok(streams)
}

/// Creates the journal and the pipeline writing to it, and journals the
/// run's start.
fn start_pipeline(
    spec: &ReplaySpec,
    run_id: &str,
    meta: JournalMeta,
) -> Result<Pipeline<SimExchange>, ReplayError> {
    let options = WriterOptions {
        durability: Durability::OnClose,
        ..WriterOptions::default()
    };
    let writer = Writer::create(&spec.journal_dir, meta, options)?;
    let config = spec.config.clone();
    let mut pipeline = Pipeline::new(
        writer,
        Engine::new(config.clone(), run_id, spec.skip_volume_filter),
        SimExchange::new(config),
        run_id,
    );
    let started = run_started(spec, run_id);
    pipeline.append_side(spec.start_ms, &Event::RunStarted(started))?;
    // A backtest's writer works on the second core (the loader shares it).
    Ok(pipeline.in_background()?)
}

/// The `RunStarted` of a replay: its inputs, as journaled.
fn run_started(spec: &ReplaySpec, run_id: &str) -> RunStarted {
    let config = &spec.config;
    RunStarted {
        run_id: run_id.to_string(),
        run_mode: spec.run_mode,
        capital_mode: config.run.capital_mode,
        market_time_basis: MarketTimeBasis::CandleTimestamp,
        data_integrity: if spec.skip_volume_filter {
            DataIntegrity::DegradedSkipVolume
        } else {
            DataIntegrity::Ok
        },
        created_by: spec.created_by.clone(),
        git_sha: spec.git_sha.clone(),
        config_hash: config.hash(),
        config_text: config.canonical_text(),
        symbols: config.run.symbols.clone(),
        granularity_s: config.granularity_s(),
        start_ms: spec.start_ms,
        end_ms: Some(spec.end_ms),
        starting_capital: config.run.starting_capital,
    }
}

/// The next item across all streams in market-time order (the stream listed
/// first at equal order), `None` when every stream is done.
fn next_item(streams: &mut [Peeked]) -> Result<Option<Item>, ReplayError> {
    for peeked in streams.iter_mut() {
        if peeked.next.is_none() {
            peeked.next = peeked.stream.next()?;
        }
    }
    let Some(index) = streams
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.next.as_ref().map(|item| (item.market_order(), i)))
        .min()
        .map(|(_, i)| i)
    else {
        return Ok(None);
    };
    let item = streams[index]
        .next
        .take()
        .expect("chosen stream has an item");
    Ok(Some(item))
}

/// Hands one item to the pipeline.
fn feed(pipeline: &mut Pipeline<SimExchange>, item: Item) -> Result<(), ReplayError> {
    match item {
        Item::Candle(candle) => {
            // Replays feed each candle as it closes: decided on at its close.
            let close_ms = candle.close_ms();
            pipeline.candle(candle, close_ms)?
        }
        Item::Finding { market_ms, finding } => pipeline.finding(market_ms, finding)?,
    }
    Ok(())
}

/// Journals the run's end and a checkpoint, and closes the journal; returns
/// the final projection, the head and the progress at the end.
fn finish(
    spec: &ReplaySpec,
    run_id: &str,
    mut pipeline: Pipeline<SimExchange>,
    streams: &[Peeked],
) -> Result<(Projection, Head, Progress), ReplayError> {
    let done = Progress::of(&pipeline.projection, streams);
    let end_ms = done.market_ms.max(spec.start_ms);
    let completed = RunCompleted {
        run_id: run_id.to_string(),
        end_ms,
        candles: done.candles,
        reason: "end of data".into(),
    };
    pipeline.append_side(end_ms, &Event::RunCompleted(completed))?;
    let checkpoint = pipeline.projection.checkpoint();
    pipeline.append_side(end_ms, &Event::Checkpoint(checkpoint))?;
    let outcome_progress = Progress::of(&pipeline.projection, streams);
    let projection = std::mem::take(&mut pipeline.projection);
    let head = pipeline.into_writer()?.close()?;
    Ok((projection, head, outcome_progress))
}
