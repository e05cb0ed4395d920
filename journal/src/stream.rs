//! Reading, verifying and decoding on two cores: a helper thread reads and
//! verifies records and decodes every other batch; the calling thread decodes
//! the rest and hands every event, in seq order, to the caller's sink (a fold).
//! The work splits roughly evenly, so a fold from disk runs at close to twice
//! the speed of doing all of it on one thread.

use crate::codec::Hash32;
use crate::error::{JournalError, Result};
use crate::event::{Event, Seq, UnixMs};
use crate::reader::{decode_payload, Reader, StoredEvent};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Records per batch handed between the threads.
const BATCH_RECORDS: usize = 256;
/// Batches in flight between the threads (bounds memory).
const BATCHES_IN_FLIGHT: usize = 32;

/// One event as the sink sees it.
#[derive(Clone, Debug)]
pub struct StreamedEvent {
    pub seq: Seq,
    pub hash: Hash32,
    pub market_ms: UnixMs,
    /// The record's schema version (its envelope's).
    pub schema_version: u16,
    pub segment_index: usize,
    pub offset: u64,
    pub event: Event,
}

struct Item {
    seq: Seq,
    hash: Hash32,
    market_ms: UnixMs,
    schema_version: u16,
    segment_index: usize,
    offset: u64,
    start: usize,
    len: usize,
}

struct Batch {
    items: Vec<Item>,
    /// The payloads of `items`, back to back.
    arena: Vec<u8>,
    /// Already decoded by the reading thread, or to be decoded by the sink's.
    decoded: Option<Vec<Result<Event>>>,
}

/// Why streaming stopped early.
pub enum StreamError<E> {
    /// Reading, verifying or decoding failed.
    Journal(JournalError),
    /// The sink refused an event.
    Sink(E),
}

impl<E> From<JournalError> for StreamError<E> {
    fn from(error: JournalError) -> Self {
        StreamError::Journal(error)
    }
}

fn decode_batch(items: &[Item], arena: &[u8]) -> Vec<Result<Event>> {
    items
        .iter()
        .map(|item| decode_payload(item.seq, &arena[item.start..item.start + item.len]))
        .collect()
}

/// Streams every event of `reader` up to and including `max_seq` to `sink`, in
/// order, and returns when the journal or `max_seq` is reached; the reader then
/// holds the head and any torn-tail report.
pub fn stream_events<E: Send>(
    reader: &mut Reader,
    max_seq: Seq,
    mut sink: impl FnMut(StreamedEvent) -> std::result::Result<(), E>,
) -> std::result::Result<(), StreamError<E>> {
    let (sender, receiver) = mpsc::sync_channel::<Result<Batch>>(BATCHES_IN_FLIGHT);
    let in_flight = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let in_flight_reader = &in_flight;
        scope.spawn(move || read_batches(reader, max_seq, sender, in_flight_reader));
        let mut result = Ok(());
        for message in receiver.iter() {
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let batch = match message {
                Ok(batch) => batch,
                Err(error) => {
                    result = Err(StreamError::Journal(error));
                    break;
                }
            };
            let Batch {
                items,
                arena,
                decoded,
            } = batch;
            let mut decoded = decoded.map(Vec::into_iter);
            let mut failed = None;
            for item in &items {
                let event = match decoded.as_mut().and_then(Iterator::next) {
                    Some(event) => event,
                    None => decode_payload(item.seq, &arena[item.start..item.start + item.len]),
                };
                let event = match event {
                    Ok(event) => event,
                    Err(error) => {
                        failed = Some(StreamError::Journal(error));
                        break;
                    }
                };
                let streamed = StreamedEvent {
                    seq: item.seq,
                    hash: item.hash,
                    market_ms: item.market_ms,
                    schema_version: item.schema_version,
                    segment_index: item.segment_index,
                    offset: item.offset,
                    event,
                };
                if let Err(error) = sink(streamed) {
                    failed = Some(StreamError::Sink(error));
                    break;
                }
            }
            if let Some(error) = failed {
                result = Err(error);
                break;
            }
        }
        // Dropping the receiver stops the reading thread at its next send.
        drop(receiver);
        result
    })
}

/// The reading thread: fills batches, and decodes one itself whenever the sink's
/// thread has fallen behind (half the queue or more waiting), so the decoding
/// work goes to whichever core has time for it.
fn read_batches(
    reader: &mut Reader,
    max_seq: Seq,
    sender: mpsc::SyncSender<Result<Batch>>,
    in_flight: &AtomicUsize,
) {
    loop {
        let mut batch = Batch {
            items: Vec::with_capacity(BATCH_RECORDS),
            arena: Vec::with_capacity(BATCH_RECORDS * 256),
            decoded: None,
        };
        let mut finished = false;
        while batch.items.len() < BATCH_RECORDS {
            match reader.next_record() {
                Ok(Some(record)) if record.seq <= max_seq => {
                    let start = batch.arena.len();
                    batch.arena.extend_from_slice(record.payload);
                    batch.items.push(Item {
                        seq: record.seq,
                        hash: record.hash,
                        market_ms: record.market_ms(),
                        schema_version: record.envelope().schema_version,
                        segment_index: record.segment_index,
                        offset: record.offset,
                        start,
                        len: record.payload.len(),
                    });
                }
                Ok(_) => {
                    finished = true;
                    break;
                }
                Err(error) => {
                    if !batch.items.is_empty() {
                        in_flight.fetch_add(1, Ordering::Relaxed);
                        let _ = sender.send(Ok(batch));
                    }
                    in_flight.fetch_add(1, Ordering::Relaxed);
                    let _ = sender.send(Err(error));
                    return;
                }
            }
        }
        if in_flight.load(Ordering::Relaxed) >= BATCHES_IN_FLIGHT / 2 {
            batch.decoded = Some(decode_batch(&batch.items, &batch.arena));
        }
        if !batch.items.is_empty() {
            in_flight.fetch_add(1, Ordering::Relaxed);
            if sender.send(Ok(batch)).is_err() {
                return;
            }
        }
        if finished {
            return;
        }
    }
}

/// Every event of `reader` up to and including `max_seq`, read, verified and
/// decoded on two cores ([`stream_events`]); the reader then holds the head.
pub fn read_events(reader: &mut Reader, max_seq: Seq) -> Result<Vec<StoredEvent>> {
    let mut events = Vec::new();
    let streamed = stream_events(reader, max_seq, |e| {
        events.push(StoredEvent {
            seq: e.seq,
            hash: e.hash,
            market_ms: e.market_ms,
            schema_version: e.schema_version,
            event: e.event,
        });
        Ok::<(), std::convert::Infallible>(())
    });
    match streamed {
        Ok(()) => Ok(events),
        Err(StreamError::Journal(error)) => Err(error),
        Err(StreamError::Sink(never)) => match never {},
    }
}
