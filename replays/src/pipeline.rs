//! The one path every journaled input takes, in replay and live alike: append
//! the input, let the broker work it, run the engine on what happened, append
//! what the engine decided, hand its orders to the broker.
//!
//! A [`Pipeline`] can also *re-drive* an existing journal: given the journal's
//! events it runs exactly the same steps, and every event a step would append
//! must equal the next journaled one (kind, encoded body bytes and market
//! time) – the journaled event is folded instead of writing it. When the journal runs out, mid-step or between
//! steps, the pipeline carries on appending. This is how the paper trader
//! starts: the projection, the engine's memory and the simulated broker's
//! working orders are all rebuilt by doing again what was done, a step the
//! crash interrupted is finished exactly as it would have been, and a journal
//! that the code no longer reproduces is a loud [`PipelineError::Diverged`]
//! naming the seq, never silently continued.
//!
//! Contract: *side events* (runs starting and completing, repairs,
//! checkpoints, sessions, reconciliations, operator actions, a reconciliation's
//! `FailClosed` – every kind whose [`EventRole::is_side`]) are only ever
//! appended between steps, through [`Pipeline::append_side`]. Inputs,
//! broker answers and step outputs are journaled by the steps themselves.

use crate::exchange::{Broker, BrokerEvent};
use anx_journal::*;
use anx_projections::engine::{Engine, TickInput};
use anx_projections::{EngineError, FoldError, Projection};
use rust_decimal::Decimal;
use std::collections::VecDeque;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("the fold refused an event the pipeline produced (a bug): {0}")]
    Fold(#[from] FoldError),
    #[error("the engine broke its contract (a bug): {0}")]
    Engine(#[from] EngineError),
    #[error("journal diverges at seq {seq}: it holds {journaled}, but re-driving its inputs produces {produced}")]
    Diverged {
        seq: Seq,
        journaled: String,
        produced: String,
    },
}

/// How far before the newest journaled fill (in the broker's time) a
/// restart asks the broker to resume from.
const RESYNC_OVERLAP_MS: i64 = 15 * 60 * 1000;

/// Pieces of work one step may do before it is a bug (an engine and a
/// broker answering each other forever): far above any real step, which is a
/// handful (a candle's fills, the reactions, an exit, its answers).
const WORK_PER_STEP_MAX: usize = 4096;

/// One piece of a step's work, owned so it can wait on the stack.
// Work lives for one step on a short stack; boxing the large answer variant
// would cost an allocation per broker answer to save a few hundred bytes.
#[allow(clippy::large_enum_variant)]
enum Work {
    /// A journaled order goes to the broker.
    HandOver(Seq, OrderPlaced),
    /// A journaled cancel request goes to the broker.
    Cancel(CancelRequested),
    /// A broker's answer: journaled, then reacted to.
    Answer(BrokerEvent),
    /// The engine reacts to a journaled answer.
    React(Reaction),
    /// Re-driving a broker that cannot answer again: the next journaled
    /// answer of this step (about this order, if one is named), then this
    /// again – one answer at a time, each followed by the engine's reaction
    /// to it, as they were journaled.
    Journaled(Option<String>),
}

/// A journaled answer the engine reacts to.
enum Reaction {
    Fill {
        seq: Seq,
        fill: Fill,
    },
    OrderEnded {
        seq: Seq,
        symbol: String,
        client_order_id: String,
        /// The broker's reason, for a rejection.
        rejected: Option<String>,
    },
    Unprotected {
        seq: Seq,
        symbol: String,
        client_order_id: String,
        reason: String,
    },
}

/// Where appended events go: the writer itself, or (a backtest) a writer on
/// a thread of its own, which encodes, hashes and writes on the second core.
enum Sink {
    Direct(Box<Writer>),
    Background(BackgroundWriter),
}

pub struct Pipeline<B: Broker> {
    sink: Sink,
    pub projection: Projection,
    pub engine: Engine,
    pub broker: B,
    /// Journaled events still to be reproduced (empty: appending new events).
    journaled: VecDeque<StoredEvent>,
    /// Encoding scratch for comparing a produced event with a journaled one.
    produced_body: Vec<u8>,
    journaled_body: Vec<u8>,
    /// Prefix of this run's client order ids (`ANX4_{run8}_`).
    order_prefix: String,
    /// Orders a duplicate check kept from being placed again, and why (for
    /// the caller to report; a library does not print).
    pub duplicates_refused: Vec<String>,
    /// Polled broker answers the journal already held, so not journaled again.
    pub answers_repeated: u64,
    /// Polled broker answers the journal could not take (not journaled; their
    /// symbol failed closed), described for the caller to report.
    pub answers_refused: Vec<String>,
    /// A real broker's answers inside a step the journal could not take:
    /// not written; settled between steps (`settle_refusals`).
    refused_in_step: Vec<(UnixMs, Event, String)>,
    /// The journaled seq whose produced event to keep while re-driving, and
    /// the event once produced and found equal to the journaled one.
    capture: Option<(Seq, Option<Event>)>,
}

/// Opens a journal to re-drive it: the writer (holding the lock; a torn tail
/// is cut only when the first new event is written, and its note is left to
/// the caller, so a caller that refuses to go on changes nothing) and every
/// intact event, read, verified and decoded on two cores (`stream_events`).
/// The writer checks only the last segment, since the read that follows
/// verifies every record before anything is appended.
pub fn open_to_redrive(
    dir: &std::path::Path,
    durability: Durability,
) -> Result<(Writer, Vec<StoredEvent>), JournalError> {
    let options = WriterOptions {
        durability,
        open_check: OpenCheck::LastSegment,
        ..WriterOptions::default()
    };
    let writer = Writer::open_leaving_repair_note(dir, options)?;
    // The tail the writer will cut is not read.
    let mut reader = Reader::open_with(dir, TailPolicy::StopAtTorn)?;
    // Read, verified and decoded on two cores.
    let events = read_events(&mut reader, Seq::MAX)?;
    let (seq, hash) = reader.head();
    let head = writer.head();
    if (seq, hash) != (head.seq, head.hash) {
        // Only possible if the files changed between the two reads, which the
        // lock forbids to every anx writer.
        return Err(JournalError::ChangedWhileOpen {
            dir: dir.to_path_buf(),
            detail: format!("the writer found head {}, the reader {seq}:{hash}", head),
        });
    }
    Ok((writer, events))
}

/// What the broker says it holds, as a reconciliation records it.
#[derive(Clone, Copy)]
struct BrokerView<'a> {
    position: Decimal,
    open_orders: &'a [String],
}

/// The client order id a broker answer is about.
fn answer_order(event: &Event) -> Option<&str> {
    Some(match event {
        Event::OrderAcknowledged(e) => &e.client_order_id,
        Event::OrderRejected(e) => &e.client_order_id,
        Event::OrderCancelled(e) => &e.client_order_id,
        Event::BracketVerified(e) => &e.client_order_id,
        Event::BracketUnconfirmed(e) => &e.client_order_id,
        Event::Fill(e) => &e.client_order_id,
        _ => return None,
    })
}

/// A short description of an event for divergence messages.
fn describe(market_ms: UnixMs, event: &Event) -> String {
    let body = format!("{event:?}");
    let body: String = body.chars().take(160).collect();
    format!("{} at market ms {market_ms}: {body}", event.kind())
}

impl<B: Broker> Pipeline<B> {
    /// A pipeline appending to `writer`, starting from an empty projection.
    pub fn new(writer: Writer, engine: Engine, broker: B, run_id: &str) -> Pipeline<B> {
        Pipeline {
            sink: Sink::Direct(Box::new(writer)),
            projection: Projection::new(),
            engine,
            broker,
            journaled: VecDeque::new(),
            produced_body: Vec::new(),
            journaled_body: Vec::new(),
            duplicates_refused: Vec::new(),
            answers_repeated: 0,
            answers_refused: Vec::new(),
            refused_in_step: Vec::new(),
            order_prefix: anx_projections::engine::order::prefix(run_id),
            capture: None,
        }
    }

    /// Keeps, while re-driving, the event the code produces in place of the
    /// journaled event at `seq` – once it has been found byte for byte equal
    /// to it (`captured`). For a schema-2 decision that is its whole glass
    /// box, proven to hash to the digest the journal committed to.
    pub fn capture_produced(&mut self, seq: Seq) {
        self.capture = Some((seq, None));
    }

    /// The event kept by `capture_produced`, once reproduced.
    pub fn captured(&self) -> Option<&Event> {
        self.capture.as_ref().and_then(|(_, event)| event.as_ref())
    }

    /// Re-drives `events` (the journal behind `writer`, from seq 1) before
    /// appending anything.
    pub fn redriving(
        writer: Writer,
        engine: Engine,
        broker: B,
        run_id: &str,
        events: Vec<StoredEvent>,
    ) -> Pipeline<B> {
        let mut pipeline = Pipeline::new(writer, engine, broker, run_id);
        pipeline.journaled = events.into();
        pipeline
    }

    /// Moves the writer to a thread of its own (a backtest: what is written
    /// is the same, its encoding and hashing run on the other core). Only
    /// when nothing is left to re-drive.
    pub fn in_background(mut self) -> Result<Pipeline<B>, PipelineError> {
        assert!(!self.is_redriving(), "a re-drive appends nothing");
        self.sink = match self.sink {
            Sink::Direct(writer) => Sink::Background(BackgroundWriter::start(*writer)?),
            background => background,
        };
        Ok(self)
    }

    /// The writer, unless it is on a thread of its own (`in_background`).
    pub fn writer(&self) -> Option<&Writer> {
        match &self.sink {
            Sink::Direct(writer) => Some(writer),
            Sink::Background(_) => None,
        }
    }

    /// The writer, once everything appended is written.
    pub fn into_writer(self) -> Result<Writer, PipelineError> {
        Ok(match self.sink {
            Sink::Direct(writer) => *writer,
            Sink::Background(background) => background.finish()?,
        })
    }

    /// True while journaled events remain to be reproduced.
    pub fn is_redriving(&self) -> bool {
        !self.journaled.is_empty()
    }

    fn fold(&mut self, seq: Seq, market_ms: UnixMs, event: &Event) -> Result<(), PipelineError> {
        self.projection.apply(seq, market_ms, event)?;
        self.engine.observe(&self.projection, market_ms, event)?;
        Ok(())
    }

    /// Whether a produced event is the journaled one byte for byte, in the
    /// record's own schema. Bytes, not `==`: a Decimal's `==` ignores its
    /// scale, which the journal keeps; and a schema-2 decision that led to no
    /// order is compared by its glass box's digest, so a build that no longer
    /// computes the same glass box diverges here, at its seq.
    fn reproduces(&mut self, stored: &StoredEvent, market_ms: UnixMs, event: &Event) -> bool {
        if stored.market_ms != market_ms || stored.event.kind() != event.kind() {
            return false;
        }
        let version = stored.schema_version;
        let journaled = body_bytes_into(
            &stored.event,
            version,
            stored.market_ms,
            &mut self.journaled_body,
        );
        let produced = body_bytes_into(event, version, market_ms, &mut self.produced_body);
        journaled.is_ok() && produced.is_ok() && self.journaled_body == self.produced_body
    }

    /// Appends (or, re-driving, reproduces) one event of a step.
    fn append(&mut self, market_ms: UnixMs, event: Event) -> Result<Seq, PipelineError> {
        if let Some(stored) = self.journaled.pop_front() {
            if !self.reproduces(&stored, market_ms, &event) {
                return Err(PipelineError::Diverged {
                    seq: stored.seq,
                    journaled: describe(stored.market_ms, &stored.event),
                    produced: describe(market_ms, &event),
                });
            }
            if let Some((seq, kept)) = &mut self.capture {
                if *seq == stored.seq {
                    *kept = Some(event);
                }
            }
            // What is folded is what the journal holds.
            self.fold(stored.seq, stored.market_ms, &stored.event)?;
            return Ok(stored.seq);
        }
        match &mut self.sink {
            Sink::Direct(writer) => {
                let appended = writer.append(market_ms, &event)?;
                self.fold(appended.seq, market_ms, &event)?;
                Ok(appended.seq)
            }
            Sink::Background(background) => {
                // Queued even if the fold then refuses it, as the direct
                // writer writes it; a failing run's writer still writes
                // what was queued when the pipeline is dropped.
                let seq = background.next_seq();
                let folded = self.fold(seq, market_ms, &event);
                let Sink::Background(background) = &mut self.sink else {
                    unreachable!("matched above")
                };
                background.append(market_ms, event)?;
                folded.map(|()| seq)
            }
        }
    }

    /// Appends a side event (its kind's [`EventRole::is_side`]); only between
    /// steps, never while re-driving.
    pub fn append_side(&mut self, market_ms: UnixMs, event: &Event) -> Result<Seq, PipelineError> {
        assert!(
            !self.is_redriving(),
            "side events are appended after the journal has been re-driven"
        );
        assert!(
            event.kind().role().is_side(),
            "{} is not a side event: it is journaled by a step",
            event.kind()
        );
        self.append(market_ms, event.clone())
    }

    /// Runs the engine on one input and journals what it decides; returns
    /// the orders it placed, to be handed to the broker once the engine's
    /// events are all in.
    fn engine_step(&mut self, input: TickInput) -> Result<Vec<Work>, PipelineError> {
        let outputs = self.engine.run_tick(&self.projection, input)?;
        let mut placed = Vec::new();
        for (market_ms, event) in outputs {
            // Orders and cancels go to the broker once the step's events are in.
            let work = match &event {
                Event::OrderPlaced(order) => Some(Work::HandOver(0, order.clone())),
                Event::CancelRequested(cancel) => Some(Work::Cancel(cancel.clone())),
                _ => None,
            };
            let seq = self.append(market_ms, event)?;
            match work {
                Some(Work::HandOver(_, order)) => placed.push(Work::HandOver(seq, order)),
                Some(work) => placed.push(work),
                None => {}
            }
        }
        Ok(placed)
    }

    /// Does `work` and everything it leads to, depth first – as the exchange
    /// answers: an answer's reaction, the orders that reaction places and
    /// their answers all come before the next answer. An explicit stack, not
    /// recursion, so the order is written down and the depth is bounded.
    fn drain(&mut self, work: Vec<Work>, as_of_ms: UnixMs) -> Result<(), PipelineError> {
        let mut stack: Vec<Work> = work.into_iter().rev().collect();
        let mut done = 0usize;
        while let Some(item) = stack.pop() {
            done += 1;
            assert!(
                done <= WORK_PER_STEP_MAX,
                "a step did more than {WORK_PER_STEP_MAX} pieces of work: the engine and the broker are answering each other forever"
            );
            let next = match item {
                Work::HandOver(seq, order) => self.hand_over(seq, &order),
                // Re-driving too: the broker rebuilt from the journal answers again.
                Work::Cancel(cancel) => self.cancel(&cancel),
                Work::Answer(answer) => self.answer(answer, as_of_ms)?,
                Work::React(reaction) => self.react(reaction, as_of_ms)?,
                Work::Journaled(order) => self.next_journaled(order, as_of_ms),
            };
            stack.extend(next.into_iter().rev());
        }
        Ok(())
    }

    /// Journals one broker answer; returns the engine's reaction to it, if any.
    fn answer(
        &mut self,
        answer: BrokerEvent,
        as_of_ms: UnixMs,
    ) -> Result<Vec<Work>, PipelineError> {
        let (event, receipt) = match answer {
            BrokerEvent::Journal(event) => (event, None),
            BrokerEvent::Received {
                event,
                broker_time_ms,
                raw_blake3,
            } => (event, Some((broker_time_ms, raw_blake3))),
        };
        if self.kept_out(&event, as_of_ms) {
            return Ok(Vec::new());
        }
        // The order's symbol, read before the event ends the order.
        let ended = match &event {
            Event::OrderCancelled(e) => Some((e.client_order_id.clone(), None)),
            Event::OrderRejected(e) => Some((e.client_order_id.clone(), Some(e.reason.clone()))),
            _ => None,
        };
        let symbol_of = |id: &str| {
            self.projection
                .state
                .orders
                .get(id)
                .map(|o| o.symbol.clone())
        };
        let symbol = ended.as_ref().and_then(|(id, _)| symbol_of(id));
        let unconfirmed_symbol = match &event {
            Event::BracketUnconfirmed(e) => symbol_of(&e.client_order_id),
            _ => None,
        };
        let seq = self.append(as_of_ms, event.clone())?;
        if let Some((broker_time_ms, raw_blake3)) = receipt {
            let receipt = AnswerReceipt {
                answer_seq: seq,
                broker_time_ms,
                raw_blake3,
            };
            self.append(as_of_ms, Event::AnswerReceipt(receipt))?;
        }
        Ok(match (event, ended, symbol) {
            (Event::Fill(fill), _, _) => vec![Work::React(Reaction::Fill { seq, fill })],
            (Event::BracketUnconfirmed(e), _, _) => match unconfirmed_symbol {
                Some(symbol) => vec![Work::React(Reaction::Unprotected {
                    seq,
                    symbol,
                    client_order_id: e.client_order_id,
                    reason: e.reason,
                })],
                None => Vec::new(),
            },
            (_, Some((client_order_id, rejected)), Some(symbol)) => {
                vec![Work::React(Reaction::OrderEnded {
                    seq,
                    symbol,
                    client_order_id,
                    rejected,
                })]
            }
            _ => Vec::new(),
        })
    }

    /// Whether a real broker's answer, asked now, stays out of the journal:
    /// one it already holds, or one it cannot take (a fill of an order the
    /// journal ended a moment ago) – written, that would make a journal no
    /// re-drive can fold; it is settled between steps. (A simulation's
    /// answers are the fold's own; polled answers were checked already.)
    fn kept_out(&mut self, event: &Event, as_of_ms: UnixMs) -> bool {
        if self.broker.answers_reproducible() || self.is_redriving() {
            return false;
        }
        if self.already_journaled(event) {
            self.answers_repeated += 1;
            return true;
        }
        if let Err(refused) = self.projection.check_next(as_of_ms, event) {
            self.refused_in_step
                .push((as_of_ms, event.clone(), refused.detail));
            return true;
        }
        false
    }

    /// The engine's reaction to a journaled broker answer.
    fn react(&mut self, reaction: Reaction, as_of_ms: UnixMs) -> Result<Vec<Work>, PipelineError> {
        let input = match &reaction {
            Reaction::Fill { seq, fill } => TickInput::Fill {
                seq: *seq,
                fill,
                as_of_ms,
            },
            Reaction::OrderEnded {
                seq,
                symbol,
                client_order_id,
                rejected,
            } => TickInput::OrderEnded {
                seq: *seq,
                symbol,
                client_order_id,
                rejected: rejected.as_deref(),
                as_of_ms,
            },
            Reaction::Unprotected {
                seq,
                symbol,
                client_order_id,
                reason,
            } => TickInput::ProtectionUnconfirmed {
                seq: *seq,
                symbol,
                client_order_id,
                reason,
                as_of_ms,
            },
        };
        self.engine_step(input)
    }

    /// Gives a journaled order to the broker – once. An order id is journaled
    /// at most once (the fold refuses a second `OrderPlaced` with the same
    /// client_order_id), so the one duplicate left to catch is an order the
    /// broker already took before a crash cut the step short. Re-driving, the
    /// broker rebuilds its copy and its answers are checked against the
    /// journal. Live, an order already among the broker's open orders with
    /// this run's prefix is not placed again: the broker's own record of it is
    /// journaled instead.
    fn hand_over(&mut self, seq: Seq, order: &OrderPlaced) -> Vec<Work> {
        if self.is_redriving() && !self.broker.answers_reproducible() {
            return vec![Work::Journaled(Some(order.client_order_id.clone()))];
        }
        let answers = self.hand_over_live(seq, order);
        answers.into_iter().map(Work::Answer).collect()
    }

    /// [`Pipeline::hand_over`] to a broker that is asked.
    fn hand_over_live(&mut self, seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        if self.is_redriving() {
            return self.broker.restore(seq, order);
        }
        let id = &order.client_order_id;
        if self
            .broker
            .open_orders(&self.order_prefix)
            .iter()
            .any(|open| open == id)
        {
            self.duplicates_refused.push(format!(
                "{id}: already open at the broker; its record is journaled instead"
            ));
            return self.broker.existing(seq, order);
        }
        self.broker.place(seq, order)
    }

    /// Re-driving for a broker that cannot answer again: the next journaled
    /// event, if it is a broker answer of this step (its market time; about
    /// `order`, if one is named – an answer a later poll gave about it
    /// starts a step of its own), to be journaled and reacted to, and then
    /// this again; nothing once the step's answers are used up.
    fn next_journaled(&self, order: Option<String>, as_of_ms: UnixMs) -> Vec<Work> {
        let Some(stored) = self.journaled.front() else {
            return Vec::new();
        };
        let of_step = stored.event.kind().role() == EventRole::BrokerAnswer
            && stored.market_ms == as_of_ms
            && order
                .as_deref()
                .is_none_or(|id| answer_order(&stored.event) == Some(id));
        if !of_step {
            return Vec::new();
        }
        let (answer, _) = self.journaled_answer(0);
        vec![Work::Answer(answer), Work::Journaled(order)]
    }

    /// The journaled answer at `at` in the queue, with its receipt if one
    /// follows it; and how many journaled events that is.
    fn journaled_answer(&self, at: usize) -> (BrokerEvent, usize) {
        let event = self.journaled[at].event.clone();
        match self.journaled.get(at + 1).map(|s| &s.event) {
            Some(Event::AnswerReceipt(r)) if r.answer_seq == self.journaled[at].seq => (
                BrokerEvent::Received {
                    event,
                    broker_time_ms: r.broker_time_ms,
                    raw_blake3: r.raw_blake3,
                },
                2,
            ),
            _ => (BrokerEvent::Journal(event), 1),
        }
    }

    /// The broker's answers that arrived since the last poll, each journaled
    /// as the first event of its own step and reacted to (a real exchange's
    /// fills, cancels and expiries; nothing from the simulated exchange).
    ///
    /// An answer the journal already holds (a fill by its id, an order already
    /// acknowledged, verified or ended) is not journaled again: a real
    /// exchange's polls overlap, and a fill counts once. Returns the answers
    /// journaled.
    pub fn poll_broker(&mut self, as_of_ms: UnixMs) -> Result<usize, PipelineError> {
        self.settle_refusals()?;
        let answers = self.broker.poll();
        let as_of_ms = self.broker.clock_ms().map_or(as_of_ms, |c| c.max(as_of_ms));
        self.journal_new_answers(answers, as_of_ms)
    }

    /// At start-up, once the journal is re-driven: the answers the broker
    /// gave since the newest journaled fill (the overlap is dropped as
    /// repeats), each journaled as its own step – fills made while the
    /// trader was down, and any polled but lost in a crash.
    pub fn resync_broker(&mut self, as_of_ms: UnixMs) -> Result<usize, PipelineError> {
        // In the broker's time, with a margin: answers of one poll journaled
        // only in part before a crash may be a little older than the newest
        // journaled one (repeats in the overlap are dropped).
        self.settle_refusals()?;
        let since_ms = (self.projection.links.last_fill_broker_ms)
            .map(|ms| ms.saturating_sub(RESYNC_OVERLAP_MS));
        let answers = self.broker.answers_since(since_ms);
        // What it did while the trader was down happened no earlier than
        // its clock says (with nothing new, no market time moves).
        let as_of_ms = self.broker.clock_ms().map_or(as_of_ms, |c| c.max(as_of_ms));
        self.journal_new_answers(answers, as_of_ms)
    }

    /// Between steps: the answers a step could not take are reported and
    /// their symbols reconciled as a mismatch and failed closed.
    fn settle_refusals(&mut self) -> Result<(), PipelineError> {
        if self.is_redriving() {
            return Ok(());
        }
        for (as_of_ms, event, why) in std::mem::take(&mut self.refused_in_step) {
            self.refuse_answer(&event, &why, as_of_ms)?;
        }
        Ok(())
    }

    /// Journals, each as its own step, the answers the journal does not hold.
    fn journal_new_answers(
        &mut self,
        answers: Vec<BrokerEvent>,
        as_of_ms: UnixMs,
    ) -> Result<usize, PipelineError> {
        let mut journaled = 0;
        for answer in answers {
            if self.already_journaled(answer.event()) {
                self.answers_repeated += 1;
                continue;
            }
            // Checked before it is written: an answer the journal cannot take
            // (a fill for an order it ended, or never placed) must not make
            // the journal one that no re-drive can fold.
            if let Err(refused) = self.projection.check_next(as_of_ms, answer.event()) {
                self.refuse_answer(answer.event(), &refused.detail, as_of_ms)?;
                continue;
            }
            self.drain(vec![Work::Answer(answer)], as_of_ms)?;
            journaled += 1;
        }
        Ok(journaled)
    }

    /// A broker answer the journal cannot take: not journaled; its symbol (if
    /// the journal knows the order) is reconciled as a mismatch and failed
    /// closed, and the answer is kept for the caller to report.
    fn refuse_answer(
        &mut self,
        event: &Event,
        why: &str,
        as_of_ms: UnixMs,
    ) -> Result<(), PipelineError> {
        let described = describe(as_of_ms, event);
        self.answers_refused.push(format!("{described}: {why}"));
        let symbol = answer_order(event)
            .and_then(|id| self.projection.state.orders.get(id))
            .map(|o| o.symbol.clone());
        let Some(symbol) = symbol else {
            return Ok(());
        };
        if self
            .projection
            .state
            .symbols
            .get(&symbol)
            .is_some_and(|s| s.fail_closed.is_some())
        {
            return Ok(());
        }
        let detail = format!("the broker answered what the journal cannot take ({why})");
        let open_orders = self.broker.open_orders(&self.order_prefix);
        let view = BrokerView {
            position: self.broker.position(&symbol),
            open_orders: &open_orders,
        };
        self.journal_mismatch(&symbol, view, &detail, as_of_ms)
    }

    /// Whether the journal already holds what this broker answer says: a
    /// fill by its id; an acknowledgement, bracket or end of an order already
    /// acknowledged, verified or ended (an order whose life the journal has
    /// closed is gone from the projection). A fill for such an order is not a
    /// repeat: the fold refuses it, loudly.
    fn already_journaled(&self, event: &Event) -> bool {
        let Some(id) = answer_order(event) else {
            return false;
        };
        let links = &self.projection.links;
        let order = self.projection.state.orders.get(id);
        let ended = order.is_none() && links.placed.contains(id);
        match event {
            Event::Fill(f) => links.fills.contains_key(&f.fill_id),
            Event::OrderAcknowledged(_) => {
                ended || links.orders.get(id).is_some_and(|l| l.ack_seq.is_some())
            }
            Event::BracketVerified(_) => ended || order.is_some_and(|o| o.bracket_verified),
            Event::OrderCancelled(_) | Event::OrderRejected(_) => {
                ended || order.is_some_and(|o| !o.is_open())
            }
            _ => false,
        }
    }

    /// Gives a journaled cancel request to the broker (re-driving a broker
    /// that cannot answer again: its journaled answer instead).
    fn cancel(&mut self, cancel: &CancelRequested) -> Vec<Work> {
        if self.is_redriving() && !self.broker.answers_reproducible() {
            return vec![Work::Journaled(Some(cancel.client_order_id.clone()))];
        }
        let answers = self.broker.cancel(&cancel.client_order_id, &cancel.reason);
        answers.into_iter().map(Work::Answer).collect()
    }

    /// One closed candle, decided on at `as_of_ms` (its close, or later if it
    /// arrived late): journal it, let the broker work it, run the engine.
    pub fn candle(&mut self, candle: Candle, as_of_ms: UnixMs) -> Result<(), PipelineError> {
        let seq = self.append(as_of_ms, Event::Candle(candle.clone()))?;
        self.work_candle(seq, &candle, as_of_ms)?;
        self.settle_refusals()
    }

    /// The rest of a candle's step once it is journaled (seq `seq`): the broker
    /// works it, then the engine decides on it.
    fn work_candle(
        &mut self,
        seq: Seq,
        candle: &Candle,
        as_of_ms: UnixMs,
    ) -> Result<(), PipelineError> {
        // A broker that cannot answer again is not asked while re-driving:
        // what it said is in the journal, as polled answers of their own steps.
        let worked = if self.broker.answers_reproducible() || !self.is_redriving() {
            let answers = self.broker.on_candle(candle);
            answers.into_iter().map(Work::Answer).collect()
        } else {
            // What it answered as it worked this candle (fills within the
            // bar, time-to-live cancels) is journaled right after the
            // candle, each answer followed by the reaction to it.
            vec![Work::Journaled(None)]
        };
        self.drain(worked, as_of_ms)?;
        let placed = self.engine_step(TickInput::Candle {
            seq,
            candle,
            as_of_ms,
        })?;
        self.drain(placed, as_of_ms)
    }

    /// An operator's action (an `OperatorReset` or an `OperatorAction`) at
    /// market time `market_ms`: journaled as the input of its step, then the
    /// engine reacts (a reset's transition, an exit's decision and order,
    /// handed to the broker). The caller checks it first
    /// ([`Projection::check_next`]): one the fold refuses is a bug here.
    pub fn operator(&mut self, market_ms: UnixMs, event: Event) -> Result<Seq, PipelineError> {
        assert!(
            matches!(event, Event::OperatorReset(_) | Event::OperatorAction(_)),
            "{} is not an operator action",
            event.kind()
        );
        let seq = self.append(market_ms, event.clone())?;
        self.work_operator(seq, &event, market_ms)?;
        self.settle_refusals()?;
        Ok(seq)
    }

    /// The rest of an operator action's step once it is journaled.
    fn work_operator(
        &mut self,
        seq: Seq,
        event: &Event,
        as_of_ms: UnixMs,
    ) -> Result<(), PipelineError> {
        let input = match event {
            Event::OperatorReset(e) => TickInput::OperatorReset {
                seq,
                symbol: &e.symbol,
                as_of_ms,
            },
            Event::OperatorAction(action) if action.command == OperatorCommand::Exit => {
                TickInput::OperatorExit {
                    seq,
                    action,
                    as_of_ms,
                }
            }
            // A halt or a resume changes only what later decisions may do.
            _ => return Ok(()),
        };
        let placed = self.engine_step(input)?;
        self.drain(placed, as_of_ms)
    }

    /// Compares the broker's positions and open orders of `symbols` with the
    /// journal's, journaling a `Reconciliation` for each symbol where they
    /// disagree (for every symbol when `always`, as at start-up). A position
    /// the broker does not confirm – or one it holds that the journal does not
    /// know – fails the symbol closed (`FailClosed` caused by that
    /// reconciliation). Returns the symbols that disagreed, and why. The
    /// broker is asked once for its open orders and once per symbol for its
    /// position (a real broker answers each over the network).
    pub fn reconcile(
        &mut self,
        symbols: &[String],
        always: bool,
        market_ms: UnixMs,
    ) -> Result<Vec<(String, String)>, PipelineError> {
        self.settle_refusals()?;
        let open_orders = self.broker.open_orders(&self.order_prefix);
        let mut disagreed = Vec::new();
        for symbol in symbols {
            let ours = self.our_position(symbol);
            let theirs = self.broker.position(symbol);
            let view = BrokerView {
                position: theirs,
                open_orders: &open_orders,
            };
            if ours == theirs {
                if always {
                    self.journal_reconciliation(symbol, view, None, market_ms)?;
                }
                continue;
            }
            let detail =
                format!("the broker holds {theirs} {symbol}, the journal's fills say {ours}");
            self.journal_mismatch(symbol, view, &detail, market_ms)?;
            disagreed.push((symbol.clone(), detail));
        }
        Ok(disagreed)
    }

    fn our_position(&self, symbol: &str) -> Decimal {
        let state = self.projection.state.symbols.get(symbol);
        state.map(|s| s.position.quantity).unwrap_or_default()
    }

    /// A disagreement with the broker about `symbol`: its `Reconciliation`
    /// (outcome mismatch, `detail`) and the `FailClosed` it causes.
    fn journal_mismatch(
        &mut self,
        symbol: &str,
        view: BrokerView,
        detail: &str,
        market_ms: UnixMs,
    ) -> Result<(), PipelineError> {
        let seq = self.journal_reconciliation(symbol, view, Some(detail), market_ms)?;
        let fail = FailClosed {
            symbol: symbol.to_string(),
            cause_seq: seq,
            reason: format!("reconciliation mismatch: {detail}"),
        };
        self.append_side(market_ms, &Event::FailClosed(fail))?;
        Ok(())
    }

    /// Journals the broker's and the journal's view of `symbol` (positions,
    /// open orders), as agreeing (`mismatch` none) or not.
    fn journal_reconciliation(
        &mut self,
        symbol: &str,
        view: BrokerView,
        mismatch: Option<&str>,
        market_ms: UnixMs,
    ) -> Result<Seq, PipelineError> {
        use anx_projections::engine::order::symbol_prefix;
        let run_id = self
            .projection
            .state
            .run
            .as_ref()
            .map(|r| r.run_id.as_str());
        let prefix = symbol_prefix(run_id.unwrap_or_default(), symbol);
        let state = &self.projection.state;
        let broker_open = view.open_orders.iter().filter(|id| id.starts_with(&prefix));
        let reconciliation = Reconciliation {
            symbol: symbol.to_string(),
            broker_position: view.position,
            our_position: self.our_position(symbol),
            broker_open_orders: broker_open.cloned().collect(),
            our_open_orders: state
                .open_orders(symbol)
                .map(|o| o.client_order_id.clone())
                .collect(),
            outcome: match mismatch {
                None => ReconcileOutcome::Match,
                Some(_) => ReconcileOutcome::Mismatch,
            },
            detail: match self.broker.account_note(symbol) {
                Some(note) => format!("{}; {note}", mismatch.unwrap_or("positions agree")),
                None => mismatch.unwrap_or("positions agree").to_string(),
            },
        };
        self.append_side(market_ms, &Event::Reconciliation(reconciliation))
    }

    /// A data-quality finding known at `market_ms`.
    pub fn finding(
        &mut self,
        market_ms: UnixMs,
        finding: DataQuality,
    ) -> Result<(), PipelineError> {
        self.append(market_ms, Event::DataQuality(finding))?;
        Ok(())
    }

    /// Re-drives the whole journal, event by event between steps, by each
    /// kind's [`EventRole`]: an input is folded as journaled and its step runs
    /// again (reproducing what follows it); a side event is folded as
    /// journaled; a broker answer reached here is a polled answer's step for a
    /// broker that cannot answer again, and a divergence for one that can; a
    /// step output reached here is a divergence (no step produced it). Calls
    /// `seen` with every journaled event that starts a step or stands between
    /// steps, as it is reached, so the caller can rebuild its own memory.
    pub fn redrive(&mut self, seen: &mut dyn FnMut(&StoredEvent)) -> Result<(), PipelineError> {
        while let Some(next) = self.journaled.pop_front() {
            seen(&next);
            let (seq, market_ms) = (next.seq, next.market_ms);
            match next.event.kind().role() {
                // Inputs are the journal's own: folded as they are, then a
                // candle's or an operator action's step runs and must
                // reproduce what follows it (a finding's step is its append
                // alone). An action a direct `anx operator` appended while no
                // trader ran has no step after it yet: the step runs now.
                EventRole::Input => {
                    self.fold(seq, market_ms, &next.event)?;
                    match &next.event {
                        Event::Candle(candle) => self.work_candle(seq, candle, market_ms)?,
                        Event::OperatorReset(_) | Event::OperatorAction(_) => {
                            self.work_operator(seq, &next.event, market_ms)?
                        }
                        _ => {}
                    }
                }
                // Between steps a `FailClosed` is the paper trader's (a
                // reconciliation mismatch); the engine's are reproduced
                // inside their steps.
                EventRole::Side | EventRole::SideOrOutput | EventRole::JournalSide => {
                    self.fold(seq, market_ms, &next.event)?
                }
                // A broker that cannot answer again was polled: its answer
                // starts its own step – taken as journaled, reacted to again.
                EventRole::BrokerAnswer if !self.broker.answers_reproducible() => {
                    self.journaled.push_front(next);
                    let (answer, _) = self.journaled_answer(0);
                    self.drain(vec![Work::Answer(answer)], market_ms)?
                }
                EventRole::BrokerAnswer | EventRole::StepOutput => {
                    return Err(PipelineError::Diverged {
                        seq,
                        journaled: describe(market_ms, &next.event),
                        produced: "nothing (no input before it would produce it)".into(),
                    })
                }
            }
        }
        Ok(())
    }
}
