//! A writer on a thread of its own, for a backtest: encoding (a schema-2
//! decision's glass-box digest above all), hashing and writing move to the
//! second core, while the caller goes on deciding.
//!
//! Seqs are handed out at once (the next seq is known: one more than the
//! last); the events travel in batches to the thread, which appends them to
//! the [`Writer`] in order. The journal's bytes are exactly what the writer
//! would have written appended one by one. A failure on the thread (a full
//! disk, an event that does not encode) ends it: the next `append` or
//! `finish` returns that error. Durability is the writer's own at `finish`
//! (a backtest writes with `Durability::OnClose`); nothing here is for a
//! trader, which must know an event is durable before it acts on it.

use crate::error::{JournalError, Result};
use crate::event::{Event, Seq, UnixMs};
use crate::writer::Writer;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Events per batch sent to the thread.
const BATCH_EVENTS: usize = 512;
/// Batches in flight before `append` waits for the thread.
const BATCHES_IN_FLIGHT: usize = 8;

type Batch = Vec<(UnixMs, Event)>;

pub struct BackgroundWriter {
    sender: Option<SyncSender<Batch>>,
    batch: Batch,
    next_seq: Seq,
    thread: Option<JoinHandle<Result<Writer>>>,
}

impl BackgroundWriter {
    /// Moves `writer` to a thread of its own.
    pub fn start(writer: Writer) -> Result<BackgroundWriter> {
        let next_seq = writer.head().seq + 1;
        let (sender, receiver) = sync_channel::<Batch>(BATCHES_IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("anx-journal-writer".into())
            .spawn(move || {
                let mut writer = writer;
                for batch in receiver {
                    for (market_ms, event) in batch {
                        let seq = writer.head().seq + 1;
                        writer.append(market_ms, &event).map_err(|e| match e {
                            JournalError::Encode(why) => {
                                JournalError::Encode(format!("seq {seq}: {why}"))
                            }
                            other => other,
                        })?;
                    }
                }
                Ok(writer)
            })
            .map_err(|_| JournalError::WriterThread("could not be started"))?;
        Ok(BackgroundWriter {
            sender: Some(sender),
            batch: Vec::with_capacity(BATCH_EVENTS),
            next_seq,
            thread: Some(thread),
        })
    }

    /// The seq the next appended event will have.
    pub fn next_seq(&self) -> Seq {
        self.next_seq
    }

    /// Queues `event`; returns the seq it will have.
    pub fn append(&mut self, market_ms: UnixMs, event: Event) -> Result<Seq> {
        let seq = self.next_seq;
        self.batch.push((market_ms, event));
        self.next_seq += 1;
        if self.batch.len() >= BATCH_EVENTS {
            self.send()?;
        }
        Ok(seq)
    }

    /// Sends the batch; a thread that ended early hands back its error.
    fn send(&mut self) -> Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_EVENTS));
        let sent = self.sender.as_ref().map(|s| s.send(batch));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(self
                .join()
                .err()
                .unwrap_or(JournalError::WriterThread("ended early without an error"))),
        }
    }

    /// Waits for the thread; its writer, or the error that ended it.
    fn join(&mut self) -> Result<Writer> {
        self.sender = None;
        let thread = self
            .thread
            .take()
            .ok_or(JournalError::WriterThread("was already joined"))?;
        thread
            .join()
            .map_err(|_| JournalError::WriterThread("panicked"))?
    }

    /// Writes everything queued and hands the writer back (to close it).
    pub fn finish(mut self) -> Result<Writer> {
        if !self.batch.is_empty() {
            self.send()?;
        }
        self.join()
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        // Dropped without `finish` (the run failed elsewhere): what was
        // queued is still written – a failed run's journal holds every event
        // up to its failure, as a direct writer's does – and the thread stops.
        if let Some(sender) = &self.sender {
            if !self.batch.is_empty() {
                let _ = sender.send(std::mem::take(&mut self.batch));
            }
        }
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
