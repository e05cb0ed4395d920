//! Restart = replay, proven at every possible crash point: a journal cut after
//! each of its events is re-driven through the [`Pipeline`] and then fed the
//! inputs it had not seen; the result must be the uninterrupted journal, byte
//! for byte (same head hash). Also: a journal the pipeline cannot reproduce is
//! a loud divergence naming the seq, and an order is never handed over twice.

mod common;

use anx_journal::*;
use anx_projections::engine::config::Config;
use anx_projections::engine::Engine;
use anx_replays::data::{CandleStream, Item, Source};
use anx_replays::exchange::{Broker, BrokerEvent, SimExchange};
use anx_replays::pipeline::{open_to_redrive, Pipeline, PipelineError};
use common::read_journal;
use std::path::{Path, PathBuf};

/// The `Broker` methods a test broker wrapping a `SimExchange` (its `.0`)
/// answers exactly as the simulated exchange does.
macro_rules! sim_lookups {
    () => {
        fn open_orders(&self, prefix: &str) -> Vec<String> {
            self.0.open_orders(prefix)
        }
        fn existing(&self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
            self.0.existing(order_seq, order)
        }
        fn position(&self, symbol: &str) -> rust_decimal::Decimal {
            self.0.position(symbol)
        }
    };
}

/// The `Broker` methods by which a test broker wrapping a `SimExchange`
/// lets it work candles and cancels exactly as it does.
macro_rules! sim_work {
    () => {
        fn on_candle(&mut self, candle: &Candle) -> Vec<BrokerEvent> {
            self.0.on_candle(candle)
        }
        fn cancel(&mut self, client_order_id: &str, reason: &str) -> Vec<BrokerEvent> {
            self.0.cancel(client_order_id, reason)
        }
    };
}

const RUN_ID: &str = "redrive1";

/// The paper trader's 1h test configuration (active enough to trade in days).
fn config() -> Config {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = root.join("tests/fixtures/paper/paper-1h.toml");
    let mut read = |path: &str| std::fs::read_to_string(path).map_err(|e| e.to_string());
    Config::load(file.to_str().unwrap(), &mut read).expect("test config loads")
}

/// Real BTC-USD 1h candles, 2025-01-01 for six days (shared data).
fn inputs() -> Vec<Item> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/candles/COINBASE_BTC-USD_1h.csv");
    assert!(
        file.is_file(),
        "shared data missing: {} (see DEVELOPERS.md)",
        file.display()
    );
    let start = 1_735_689_600_000;
    let stream = CandleStream::open(
        &Source {
            path: file,
            granularity_s: 3600,
        },
        "BTC-USD",
        3600,
        start,
        start + 6 * 24 * 3_600_000,
    )
    .expect("open the shared candles");
    stream.map(|item| item.expect("clean data")).collect()
}

fn run_started(config: &Config) -> RunStarted {
    RunStarted {
        run_id: RUN_ID.into(),
        run_mode: RunMode::PaperLive,
        capital_mode: config.run.capital_mode,
        market_time_basis: MarketTimeBasis::CandleTimestamp,
        data_integrity: DataIntegrity::Ok,
        created_by: "test".into(),
        git_sha: "test".into(),
        config_hash: config.hash(),
        config_text: config.canonical_text(),
        symbols: vec!["BTC-USD".into()],
        granularity_s: 3600,
        start_ms: 1_735_689_600_000,
        end_ms: None,
        starting_capital: config.run.starting_capital,
    }
}

const META: JournalMeta = JournalMeta {
    journal_id: *b"redrive-test-jrn",
    created_ms: 1_735_689_600_000,
};

fn options() -> WriterOptions {
    WriterOptions {
        durability: Durability::OnClose,
        ..WriterOptions::default()
    }
}

fn feed<B: Broker>(pipeline: &mut Pipeline<B>, items: &[Item]) {
    for item in items {
        match item.clone() {
            Item::Candle(c) => {
                let close = c.close_ms();
                pipeline.candle(c, close).expect("candle step");
            }
            Item::Finding { market_ms, finding } => {
                pipeline.finding(market_ms, finding).expect("finding")
            }
        }
    }
}

/// A new journal in `dir`: the run started, then `items` through the
/// pipeline with `broker`; its events and head.
fn run_with<B: Broker>(
    dir: &Path,
    config: &Config,
    broker: B,
    items: &[Item],
) -> (Vec<StoredEvent>, Head) {
    let writer = Writer::create(dir, META, options()).unwrap();
    let mut p = Pipeline::new(
        writer,
        Engine::new(config.clone(), RUN_ID, false),
        broker,
        RUN_ID,
    );
    p.append_side(1_735_689_600_000, &Event::RunStarted(run_started(config)))
        .unwrap();
    feed(&mut p, items);
    let head = p.into_writer().unwrap().close().unwrap();
    (read_journal(dir), head)
}

/// The uninterrupted journal: its events and head.
fn uninterrupted(dir: &Path, config: &Config, items: &[Item]) -> (Vec<StoredEvent>, Head) {
    run_with(dir, config, SimExchange::new(config.clone()), items)
}

/// A new journal in `dir` holding exactly `events`, written as they are.
fn write_events<'a>(dir: &Path, events: impl IntoIterator<Item = (UnixMs, &'a Event)>) {
    let mut writer = Writer::create(dir, META, options()).unwrap();
    for (market_ms, event) in events {
        writer.append(market_ms, event).unwrap();
    }
    writer.close().unwrap();
}

/// `dir` opened the way the paper trader opens it, ready to re-drive with `broker`.
fn redriving<B: Broker>(dir: &Path, config: &Config, broker: B) -> Pipeline<B> {
    let (writer, journaled) = open_to_redrive(dir, Durability::OnClose).unwrap();
    Pipeline::redriving(
        writer,
        Engine::new(config.clone(), RUN_ID, false),
        broker,
        RUN_ID,
        journaled,
    )
}

/// Resumes a journal holding `events[..cut]` and finishes the feed.
fn resume_after(
    dir: &Path,
    config: &Config,
    items: &[Item],
    events: &[StoredEvent],
    cut: usize,
) -> Head {
    write_events(dir, events[..cut].iter().map(|e| (e.market_ms, &e.event)));
    resume(dir, config, items)
        .into_writer()
        .unwrap()
        .close()
        .unwrap()
}

/// Opens `dir` the way the paper trader does and re-drives it; then appends
/// the repair note of a torn tail, if there was one (as the trader does once
/// the journal is re-driven), and feeds the candles the journal had not seen.
fn resume(dir: &Path, config: &Config, items: &[Item]) -> Pipeline<SimExchange> {
    let mut p = redriving(dir, config, SimExchange::new(config.clone()));
    let mut last_candle_open = None;
    p.redrive(&mut |stored| {
        if let Event::Candle(c) = &stored.event {
            last_candle_open = Some(c.open_ms);
        }
    })
    .unwrap_or_else(|e| panic!("re-drive of {}: {e}", dir.display()));
    if let Some(note) = p.writer().and_then(|w| w.recovered()).cloned() {
        p.append_side(0, &Event::Recovered(note)).unwrap();
    }
    let rest: Vec<Item> = items
        .iter()
        .filter(|item| match item {
            Item::Candle(c) => last_candle_open.is_none_or(|open| c.open_ms > open),
            Item::Finding { .. } => false,
        })
        .cloned()
        .collect();
    feed(&mut p, &rest);
    p
}

#[test]
fn a_journal_cut_after_any_event_resumes_into_the_uninterrupted_journal() {
    let config = config();
    let items = inputs();
    assert!(items.iter().all(|i| matches!(i, Item::Candle(_))));
    let temp = tempfile::tempdir().unwrap();
    let (events, head) = uninterrupted(&temp.path().join("whole"), &config, &items);
    let placed = events
        .iter()
        .filter(|e| matches!(e.event, Event::OrderPlaced(_)))
        .count();
    let fills = events
        .iter()
        .filter(|e| matches!(e.event, Event::Fill(_)))
        .count();
    assert!(
        placed >= 2 && fills >= 2,
        "the feed trades: {placed} orders, {fills} fills"
    );
    for cut in 1..events.len() {
        let dir = temp.path().join(format!("cut-{cut}"));
        let resumed = resume_after(&dir, &config, &items, &events, cut);
        assert_eq!(
            resumed,
            head,
            "cut after seq {cut} ({}) resumed into a different journal",
            events[cut - 1].event.kind()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_journal_the_pipeline_does_not_reproduce_is_a_divergence_naming_the_seq() {
    let config = config();
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    let (events, _) = uninterrupted(&temp.path().join("whole"), &config, &items);
    // Tamper with the first decision's regime (a different code version, a
    // hand-edited journal …) and chain it properly: verify passes, re-drive must not.
    let target = events
        .iter()
        .position(|e| matches!(e.event, Event::Decision(_)))
        .unwrap();
    let dir = temp.path().join("tampered");
    let mut tampered = events.clone();
    // A schema-2 hold keeps only the digest of its glass box: a tampered
    // digest is what a build computing another glass box meets.
    if let Event::Decision(d) = &mut tampered[target].event {
        match &mut d.glass {
            Glass::Full(glass) => glass.regime = "tampered".into(),
            Glass::Committed { digest, .. } => digest.0[0] ^= 1,
        }
    }
    write_events(&dir, tampered.iter().map(|e| (e.market_ms, &e.event)));
    let mut p = redriving(&dir, &config, SimExchange::new(config.clone()));
    match p.redrive(&mut |_| {}) {
        Err(PipelineError::Diverged { seq, .. }) => assert_eq!(seq, events[target].seq),
        other => panic!(
            "expected a divergence at seq {}, got {other:?}",
            events[target].seq
        ),
    }
}

#[test]
fn the_simulated_exchange_places_a_client_order_id_once() {
    let config = config();
    let mut sim = SimExchange::new(config);
    let order = OrderPlaced {
        client_order_id: "ANX4_redrive1_BTCUSD_20250101T0000_00000000".into(),
        decision_seq: 2,
        product_id: "BTC-USD".into(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        purpose: OrderPurpose::Entry,
        limit_price: Some("90000".parse().unwrap()),
        stop_trigger: None,
        base_size: "0.001".parse().unwrap(),
        post_only: false,
        bracket: None,
        payload: "{}".into(),
    };
    let first = sim.place(3, &order);
    assert_eq!(first.len(), 1, "acknowledged: {first:?}");
    assert!(sim.place(3, &order).is_empty(), "a repeat places nothing");
    assert_eq!(
        sim.open_orders("ANX4_redrive1_"),
        vec![order.client_order_id.clone()]
    );
    assert!(sim.open_orders("ANX4_other___").is_empty());
    assert_eq!(
        sim.existing(3, &order),
        first,
        "its record is the original answer"
    );
}

/// A broker that acknowledges entries but never attaches their bracket: the
/// paper trader's bracket verification failing – at the acknowledgement
/// (`at_fill` false: the entry has not filled yet), or only once the entry
/// has filled (`at_fill` true: a position is open and naked).
struct NoBrackets(SimExchange, bool);

impl NoBrackets {
    fn unconfirmed(client_order_id: &str, order_seq: Seq) -> BrokerEvent {
        BrokerEvent::Journal(Event::BracketUnconfirmed(BracketUnconfirmed {
            client_order_id: client_order_id.into(),
            order_seq,
            reason: "attached take-profit and stop not found".into(),
        }))
    }
}

impl Broker for NoBrackets {
    fn place(&mut self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        let mut naked = order.clone();
        naked.bracket = None;
        let mut events = self.0.place(order_seq, &naked);
        let acknowledged = events
            .iter()
            .any(|e| matches!(e, BrokerEvent::Journal(Event::OrderAcknowledged(_))));
        if order.bracket.is_some() && acknowledged && !self.1 {
            events.push(NoBrackets::unconfirmed(&order.client_order_id, order_seq));
        }
        events
    }
    sim_lookups!();
    fn on_candle(&mut self, candle: &Candle) -> Vec<BrokerEvent> {
        let mut out = Vec::new();
        for event in self.0.on_candle(candle) {
            let entry_fill = match &event {
                BrokerEvent::Journal(Event::Fill(f)) if self.1 && f.leg == FillLeg::Entry => {
                    Some((f.client_order_id.clone(), f.order_seq))
                }
                _ => None,
            };
            out.push(event);
            if let Some((client_order_id, order_seq)) = entry_fill {
                out.push(NoBrackets::unconfirmed(&client_order_id, order_seq));
            }
        }
        out
    }
    fn cancel(&mut self, client_order_id: &str, reason: &str) -> Vec<BrokerEvent> {
        self.0.cancel(client_order_id, reason)
    }
}

/// The journal of a run on the shared candles whose protection is never
/// confirmed (see [`NoBrackets`]), folded.
fn unprotected_run(dir: &Path, at_fill: bool) -> (Vec<StoredEvent>, anx_projections::Projection) {
    let config = config();
    let broker = NoBrackets(SimExchange::new(config.clone()), at_fill);
    let (events, _) = run_with(dir, &config, broker, &inputs());
    let mut projection = anx_projections::Projection::new();
    for e in &events {
        projection.apply(e.seq, e.market_ms, &e.event).unwrap();
    }
    (events, projection)
}

fn position_of(events: &[StoredEvent], pick: impl Fn(&Event) -> bool, what: &str) -> usize {
    events
        .iter()
        .position(|e| pick(&e.event))
        .unwrap_or_else(|| panic!("no {what}"))
}

#[test]
fn an_unconfirmed_bracket_fails_the_symbol_closed_and_withdraws_an_unfilled_entry() {
    let temp = tempfile::tempdir().unwrap();
    let (events, projection) = unprotected_run(&temp.path().join("bare"), false);
    let fail = position_of(&events, |e| matches!(e, Event::FailClosed(_)), "FailClosed");
    assert!(!events[..fail]
        .iter()
        .any(|e| matches!(e.event, Event::BracketVerified(_))));
    // The broker's answer is journaled first, and is the cause.
    assert!(matches!(
        &events[fail - 1].event,
        Event::BracketUnconfirmed(_)
    ));
    assert!(
        matches!(&events[fail].event, Event::FailClosed(f) if f.cause_seq == events[fail - 1].seq)
    );
    // In the same step: FAIL_CLOSED, the cancel request, the broker's cancel.
    let kinds: Vec<EventKind> = events[fail..fail + 4]
        .iter()
        .map(|e| e.event.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::FailClosed,
            EventKind::EngineTransition,
            EventKind::CancelRequested,
            EventKind::OrderCancelled
        ]
    );
    // The entry never fills bare, and no entry follows.
    assert!(!events
        .iter()
        .any(|e| matches!(&e.event, Event::Fill(f) if f.leg == FillLeg::Entry)));
    assert!(!events[fail..]
        .iter()
        .any(|e| matches!(&e.event, Event::OrderPlaced(o) if o.purpose == OrderPurpose::Entry)));
    let btc = &projection.state.symbols["BTC-USD"];
    assert!(btc.fail_closed.is_some() && btc.in_flight.is_none());
}

#[test]
fn an_unconfirmed_bracket_after_the_fill_closes_the_position_as_an_emergency() {
    let temp = tempfile::tempdir().unwrap();
    let (events, projection) = unprotected_run(&temp.path().join("naked"), true);
    let fill = position_of(
        &events,
        |e| matches!(e, Event::Fill(f) if f.leg == FillLeg::Entry),
        "entry fill",
    );
    let fail = position_of(&events, |e| matches!(e, Event::FailClosed(_)), "FailClosed");
    assert!(fail > fill);
    assert!(!events[fail..]
        .iter()
        .any(|e| matches!(&e.event, Event::OrderPlaced(o) if o.purpose == OrderPurpose::Entry)));
    assert!(events.iter().any(|e| matches!(
        &e.event,
        Event::TradeClosed(t) if t.exit_reason == ExitReason::Emergency
    )));
    let btc = &projection.state.symbols["BTC-USD"];
    assert!(btc.fail_closed.is_some());
    assert!(btc.position.quantity.is_zero(), "nothing left naked");
}

/// The segment file of a one-segment test journal.
fn segment_of(dir: &Path) -> PathBuf {
    list_segments(dir).unwrap()[0].path.clone()
}

/// A journal holding `events[..=cut]` whose last record a crash cut short
/// (its last 20 bytes missing): the shape a kill mid-append leaves.
fn torn_after(dir: &Path, events: &[StoredEvent], cut: usize) {
    write_events(dir, events[..=cut].iter().map(|e| (e.market_ms, &e.event)));
    let segment = segment_of(dir);
    let len = std::fs::metadata(&segment).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(len - 20).unwrap();
}

/// Resumes a torn journal (see [`resume`]) and returns its events.
fn resume_torn(dir: &Path, config: &Config, items: &[Item]) -> Vec<StoredEvent> {
    resume(dir, config, items)
        .into_writer()
        .unwrap()
        .close()
        .unwrap();
    read_journal(dir)
}

/// The state hash of a journal's fold: seq numbers are not part of it, so a
/// history with a repair note in it hashes as the same history without one.
fn state_hash(events: &[StoredEvent]) -> Hash32 {
    let mut projection = anx_projections::Projection::new();
    for e in events {
        projection
            .apply(e.seq, e.market_ms, &e.event)
            .unwrap_or_else(|err| panic!("fold: {err}"));
    }
    projection.state_hash()
}

/// The events without repair notes and without their seq numbers (kinds and
/// market times), for comparing two histories numbered differently.
fn shape(events: &[StoredEvent]) -> Vec<(UnixMs, EventKind)> {
    events
        .iter()
        .filter(|e| !matches!(e.event, Event::Recovered(_)))
        .map(|e| (e.market_ms, e.event.kind()))
        .collect()
}

#[test]
fn a_torn_tail_is_cut_only_when_the_first_new_event_is_written() {
    let config = config();
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    let (events, _) = uninterrupted(&temp.path().join("whole"), &config, &items);
    let cut = events.len() / 2;
    let dir = temp.path().join("torn");
    torn_after(&dir, &events, cut);
    let before = std::fs::read(segment_of(&dir)).unwrap();
    // Opened and re-driven, then given up on (a start refused after opening):
    // not one byte changes.
    let (writer, journaled) = open_to_redrive(&dir, Durability::Always).unwrap();
    assert_eq!(journaled.len(), cut, "the torn record is not read");
    let note = writer.recovered().cloned().expect("the tail is known torn");
    assert_eq!(note.last_good_seq, cut as Seq);
    drop(writer);
    assert_eq!(std::fs::read(segment_of(&dir)).unwrap(), before);
    // Once something is written, the cut comes first, and the journal the
    // trader leaves is the uninterrupted one plus its repair note.
    let got = resume_torn(&dir, &config, &items);
    assert!(shape(&got) == shape(&events), "other events");
    assert_eq!(state_hash(&got), state_hash(&events));
    let notes: Vec<Recovered> = read_journal(&dir)
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Recovered(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(notes, vec![note]);
    let report = verify(&dir, None).unwrap();
    assert!(report.ok(), "{:?}", report.fault);
}

#[test]
fn a_journal_keeps_the_simulated_exchange_ids_it_was_written_with() {
    use anx_replays::exchange::SimIds;
    let config = config();
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    // A journal written before ids were seq-free (`SIM-` + the order's seq).
    let dir = temp.path().join("v0");
    let broker = SimExchange::with_ids(config.clone(), SimIds::FromSeqV0);
    let (events, _) = run_with(&dir, &config, broker, &items);
    let ack = events
        .iter()
        .find_map(|e| match &e.event {
            Event::OrderAcknowledged(a) => Some(a.clone()),
            _ => None,
        })
        .expect("the feed trades");
    assert_eq!(ack.exchange_order_id, format!("SIM-{:010}", ack.order_seq));
    assert_eq!(SimIds::of_journal(&events), SimIds::FromSeqV0);
    let redrive = |ids: SimIds| {
        redriving(&dir, &config, SimExchange::with_ids(config.clone(), ids)).redrive(&mut |_| {})
    };
    // Today's ids would not reproduce it; the journal's own scheme does.
    let ack_seq = events
        .iter()
        .find(|e| matches!(e.event, Event::OrderAcknowledged(_)))
        .map(|e| e.seq);
    match redrive(SimIds::FromClientOrderId) {
        Err(PipelineError::Diverged { seq, .. }) => assert_eq!(Some(seq), ack_seq),
        other => panic!("expected a divergence at the first acknowledgement, got {other:?}"),
    }
    redrive(SimIds::of_journal(&events)).expect("re-driven with its own ids");
    // A new journal's ids depend on the client order id only.
    let (today, _) = uninterrupted(&temp.path().join("today"), &config, &items);
    assert_eq!(SimIds::of_journal(&today), SimIds::FromClientOrderId);
    for e in &today {
        if let Event::OrderAcknowledged(a) = &e.event {
            assert_eq!(
                a.exchange_order_id,
                anx_replays::exchange::exchange_id(&a.client_order_id)
            );
        }
    }
}

/// Writes `events` (journaled elsewhere) and `extra` to a new journal in
/// `dir` and re-drives it; returns the pipeline and the seqs `seen` was given.
fn redrive_written(
    dir: &Path,
    config: &Config,
    events: &[StoredEvent],
    extra: &[Event],
) -> (Result<(), PipelineError>, Pipeline<SimExchange>, Vec<Seq>) {
    let market_ms = events.last().map_or(0, |e| e.market_ms);
    // An extra decision is journaled at its own market time (schema 2 keeps it once).
    let extra: Vec<Event> = extra
        .iter()
        .cloned()
        .map(|mut event| {
            if let Event::Decision(d) = &mut event {
                d.as_of_ms = market_ms;
            }
            event
        })
        .collect();
    write_events(
        dir,
        events
            .iter()
            .map(|e| (e.market_ms, &e.event))
            .chain(extra.iter().map(|event| (market_ms, event))),
    );
    let mut p = redriving(dir, config, SimExchange::new(config.clone()));
    let mut seen = Vec::new();
    let result = p.redrive(&mut |stored| seen.push(stored.seq));
    (result, p, seen)
}

/// Between steps, re-driving goes by each kind's role: a broker answer or a
/// step output there has no input that would produce it (a divergence at its
/// seq); a side event – a reconciliation's `FailClosed` among them – is
/// folded as journaled.
#[test]
fn between_steps_an_answer_or_output_diverges_and_a_side_event_is_folded() {
    let config = config();
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    let (events, _) = uninterrupted(&temp.path().join("whole"), &config, &items);
    // Whole steps only: everything before the last candle.
    let boundary = events
        .iter()
        .rposition(|e| matches!(e.event, Event::Candle(_)))
        .unwrap();
    let steps = &events[..boundary];
    let mut tried = Vec::new();
    for e in steps {
        let kind = e.event.kind();
        let role = kind.role();
        if !matches!(role, EventRole::BrokerAnswer | EventRole::StepOutput) || tried.contains(&kind)
        {
            continue;
        }
        tried.push(kind);
        let dir = temp.path().join(format!("stray-{}", kind.name()));
        let (result, _, _) = redrive_written(&dir, &config, steps, std::slice::from_ref(&e.event));
        match result {
            Err(PipelineError::Diverged { seq, produced, .. }) => {
                assert_eq!(seq, boundary as Seq + 1, "{kind}");
                assert!(produced.starts_with("nothing"), "{kind}: {produced}");
            }
            other => panic!("a stray {kind} between steps must diverge, got {other:?}"),
        }
    }
    for kind in [
        EventKind::Decision,
        EventKind::OrderPlaced,
        EventKind::OrderAcknowledged,
        EventKind::Fill,
        EventKind::EngineTransition,
        EventKind::TradeClosed,
    ] {
        assert!(tried.contains(&kind), "the feed journals a {kind}");
    }

    // The paper trader's reconciliation mismatch, between steps.
    let (result, p, _) = redrive_written(&temp.path().join("ok"), &config, steps, &[]);
    result.expect("whole steps re-drive");
    let ours = p.projection.state.symbols["BTC-USD"].position.quantity;
    drop(p);
    let reconciliation = Event::Reconciliation(Reconciliation {
        symbol: "BTC-USD".into(),
        broker_position: ours + rust_decimal::Decimal::ONE,
        our_position: ours,
        broker_open_orders: Vec::new(),
        our_open_orders: Vec::new(),
        outcome: ReconcileOutcome::Mismatch,
        detail: "test".into(),
    });
    let failed = Event::FailClosed(FailClosed {
        symbol: "BTC-USD".into(),
        cause_seq: boundary as Seq + 1,
        reason: "reconciliation mismatch: test".into(),
    });
    assert_eq!(failed.kind().role(), EventRole::SideOrOutput);
    let (result, p, seen) = redrive_written(
        &temp.path().join("side"),
        &config,
        steps,
        &[reconciliation, failed],
    );
    result.expect("side events between steps are folded");
    assert_eq!(
        seen[seen.len() - 2..],
        [boundary as Seq + 1, boundary as Seq + 2],
        "side events are seen as they are reached"
    );
    assert_eq!(p.projection.seq(), boundary as Seq + 2);
    assert!(p.projection.state.symbols["BTC-USD"].fail_closed.is_some());
}

/// A pipeline on a new journal in `dir` with the run started (every append
/// durable at once, so the test can read what is journaled).
fn started<B: Broker>(dir: &Path, config: &Config, broker: B) -> Pipeline<B> {
    let durable = WriterOptions {
        durability: Durability::Always,
        ..WriterOptions::default()
    };
    let writer = Writer::create(dir, META, durable).unwrap();
    let engine = Engine::new(config.clone(), RUN_ID, false);
    let mut p = Pipeline::new(writer, engine, broker, RUN_ID);
    p.append_side(1_735_689_600_000, &Event::RunStarted(run_started(config)))
        .unwrap();
    p
}

/// Feeds candles until `done` holds of the projection; returns how many items were fed.
fn feed_until<B: Broker>(
    p: &mut Pipeline<B>,
    items: &[Item],
    done: impl Fn(&anx_projections::Projection) -> bool,
) -> usize {
    for (i, item) in items.iter().enumerate() {
        feed(p, std::slice::from_ref(item));
        if done(&p.projection) {
            return i + 1;
        }
    }
    panic!("the feed never reached the state wanted");
}

/// An operator action, checked by the fold's rule, then journaled as the
/// input of its step.
fn act<B: Broker>(p: &mut Pipeline<B>, event: Event) -> Seq {
    let market_ms = p.projection.state.last_market_ms.unwrap();
    p.projection.check_next(market_ms, &event).unwrap();
    p.operator(market_ms, event).unwrap()
}

fn action(command: OperatorCommand, symbol: &str) -> Event {
    Event::OperatorAction(OperatorAction {
        command,
        symbol: symbol.into(),
        operator: "alice".into(),
        reason: "test".into(),
    })
}

#[test]
fn operator_exit_halt_and_resume_are_inputs_their_steps_re_drive() {
    let config = config();
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("operated");
    let mut p = started(&dir, &config, SimExchange::new(config.clone()));
    let holding =
        |p: &anx_projections::Projection| !p.state.symbols["BTC-USD"].position.quantity.is_zero();
    let fed = feed_until(&mut p, &items, holding);
    // A manual exit: a Decision to exit (the operator's words in its glass
    // box) and a market SELL, in the action's step.
    let exit_seq = act(&mut p, action(OperatorCommand::Exit, "BTC-USD"));
    let after: Vec<Event> = read_journal_of(&p)[exit_seq as usize..].to_vec();
    assert!(matches!(&after[0], Event::Decision(d)
        if d.outcome == (DecisionOutcome::Exit { reason: ExitReason::Manual })
            && d.glass.full().unwrap().risk_checks[0].code == "operator_exit"));
    assert!(matches!(&after[1], Event::OrderPlaced(o)
        if o.purpose == OrderPurpose::Exit && o.order_type == OrderType::Market));
    // A second exit while that one works is refused by the fold's rule.
    let refused = p
        .projection
        .check_next(0, &action(OperatorCommand::Exit, "BTC-USD"))
        .unwrap_err();
    assert!(refused.detail.contains("already working"), "{refused}");
    let halt_seq = act(&mut p, action(OperatorCommand::Halt, ""));
    feed(&mut p, &items[fed..]);
    let events = read_journal_of(&p);
    assert!(events.iter().any(|e| matches!(e,
        Event::TradeClosed(t) if t.exit_reason == ExitReason::Manual)));
    let later = &events[halt_seq as usize..];
    assert!(!later.iter().any(|e| matches!(e,
        Event::Decision(d) if d.outcome == DecisionOutcome::Enter)));
    assert!(later.iter().any(|e| matches!(e, Event::Decision(d)
        if matches!(&d.outcome, DecisionOutcome::Rejected { reason_code } if reason_code == "operator_halt"))));
    act(&mut p, action(OperatorCommand::Resume, ""));
    let head = p.into_writer().unwrap().close().unwrap();
    // Re-driven from the journal: every action's step is reproduced.
    let mut again = redriving(&dir, &config, ask_at_the_close(&config));
    again.redrive(&mut |_| {}).unwrap();
    assert_eq!(again.into_writer().unwrap().close().unwrap(), head);
}

#[test]
fn an_operator_reset_takes_a_fail_closed_symbol_back_to_idle() {
    let config = config();
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("reset");
    let mut p = started(
        &dir,
        &config,
        NoBrackets(SimExchange::new(config.clone()), true),
    );
    let closed_and_flat = |p: &anx_projections::Projection| {
        let btc = &p.state.symbols["BTC-USD"];
        btc.fail_closed.is_some() && btc.position.quantity.is_zero() && btc.open_trade.is_none()
    };
    // Failed closed as the entry filled without its bracket: the position is
    // open (its emergency exit works), so a reset is refused – the symbol
    // could not go back to IDLE – and nothing is journaled.
    let fed = feed_until(&mut p, &items, |p| {
        p.state.symbols["BTC-USD"].fail_closed.is_some()
    });
    let early = Event::OperatorReset(OperatorReset {
        symbol: "BTC-USD".into(),
        operator: "alice".into(),
        reason: "too early".into(),
    });
    let refused = p.projection.check_next(0, &early).unwrap_err();
    assert!(refused.detail.contains("exit it first"), "{refused}");
    feed_until(&mut p, &items[fed..], closed_and_flat);
    let reset = Event::OperatorReset(OperatorReset {
        symbol: "BTC-USD".into(),
        operator: "alice".into(),
        reason: "protection checked by hand".into(),
    });
    let seq = act(&mut p, reset.clone());
    let events = read_journal_of(&p);
    assert!(matches!(&events[seq as usize], Event::EngineTransition(t)
        if t.from == EngineState::FailClosed && t.to == EngineState::Idle && t.cause_seq == seq));
    assert_eq!(
        p.projection.state.symbols["BTC-USD"].engine.0,
        EngineState::Idle
    );
    // Not fail-closed any more: a second reset is refused.
    let refused = p.projection.check_next(0, &reset).unwrap_err();
    assert!(refused.detail.contains("not fail-closed"), "{refused}");
}

/// The events a pipeline has journaled so far, in seq order (index = seq − 1).
fn read_journal_of<B: Broker>(p: &Pipeline<B>) -> Vec<Event> {
    let mut reader = Reader::open_with(p.writer().unwrap().dir(), TailPolicy::StopAtTorn).unwrap();
    let mut out = Vec::new();
    while let Some(stored) = reader.next_event().unwrap() {
        out.push(stored.event);
    }
    out
}

/// A broker that rejects every entry with `reason` (and works the rest as
/// the simulated exchange does).
struct RejectsEntries(SimExchange, &'static str);

impl Broker for RejectsEntries {
    fn place(&mut self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        if order.purpose != OrderPurpose::Entry {
            return self.0.place(order_seq, order);
        }
        vec![BrokerEvent::Journal(Event::OrderRejected(OrderRejected {
            client_order_id: order.client_order_id.clone(),
            order_seq,
            reason: self.1.into(),
        }))]
    }
    sim_lookups!();
    sim_work!();
}

#[test]
fn a_rejected_entry_fails_the_symbol_closed_unless_a_post_only_limit_crossed() {
    let config = config();
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    // Insufficient funds: FAIL_CLOSED with the broker's reason, no entry after it.
    let dir = temp.path().join("funds");
    let broker = RejectsEntries(SimExchange::new(config.clone()), "INSUFFICIENT_FUND");
    let (events, _) = run_with(&dir, &config, broker, &items);
    let rejected = events
        .iter()
        .position(|e| matches!(e.event, Event::OrderRejected(_)))
        .expect("an entry is placed and rejected");
    assert!(matches!(&events[rejected + 1].event, Event::FailClosed(f)
        if f.reason.ends_with("rejected: INSUFFICIENT_FUND") && f.cause_seq == events[rejected].seq));
    assert!(
        matches!(&events[rejected + 2].event, Event::EngineTransition(t)
        if t.from == EngineState::EntryPending && t.to == EngineState::FailClosed)
    );
    let entries = |events: &[StoredEvent]| {
        events
            .iter()
            .filter(
                |e| matches!(&e.event, Event::OrderPlaced(o) if o.purpose == OrderPurpose::Entry),
            )
            .count()
    };
    assert_eq!(entries(&events), 1, "fail-closed blocks every later entry");
    // A post-only cross: the entry just did not happen; the symbol is IDLE and trades on.
    let dir = temp.path().join("crossed");
    let broker = RejectsEntries(
        SimExchange::new(config.clone()),
        anx_projections::engine::order::POST_ONLY_CROSS,
    );
    let (events, _) = run_with(&dir, &config, broker, &items);
    assert!(!events
        .iter()
        .any(|e| matches!(e.event, Event::FailClosed(_))));
    assert!(
        entries(&events) > 1,
        "entries go on after a post-only cross"
    );
    // Both journals re-drive to themselves.
    for (name, reason) in [
        ("funds", "INSUFFICIENT_FUND"),
        ("crossed", anx_projections::engine::order::POST_ONLY_CROSS),
    ] {
        let dir = temp.path().join(name);
        let head = anx_journal::verify(&dir, None).unwrap().head;
        let mut again = redriving(
            &dir,
            &config,
            RejectsEntries(SimExchange::new(config.clone()), reason),
        );
        again.redrive(&mut |_| {}).unwrap();
        assert_eq!(
            again.into_writer().unwrap().close().unwrap(),
            head,
            "{name}"
        );
    }
}

/// A broker whose every fill arrives in two parts (half the size and half the
/// fee each, the second part with its own fill id): partial fills, as a real
/// exchange sends them.
struct FillsInParts(SimExchange);

impl FillsInParts {
    fn split(events: Vec<BrokerEvent>) -> Vec<BrokerEvent> {
        let two = rust_decimal::Decimal::TWO;
        let mut out = Vec::new();
        for event in events {
            match event {
                BrokerEvent::Journal(Event::Fill(fill)) => {
                    let half = Fill {
                        size: fill.size / two,
                        fee: fill.fee / two,
                        ..fill.clone()
                    };
                    let rest = Fill {
                        fill_id: format!("{}-2", fill.fill_id),
                        size: fill.size - half.size,
                        fee: fill.fee - half.fee,
                        ..fill
                    };
                    out.push(BrokerEvent::Journal(Event::Fill(half)));
                    out.push(BrokerEvent::Journal(Event::Fill(rest)));
                }
                other => out.push(other),
            }
        }
        out
    }
}

impl Broker for FillsInParts {
    fn place(&mut self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        FillsInParts::split(self.0.place(order_seq, order))
    }
    sim_lookups!();
    fn on_candle(&mut self, candle: &Candle) -> Vec<BrokerEvent> {
        FillsInParts::split(self.0.on_candle(candle))
    }
    fn cancel(&mut self, client_order_id: &str, reason: &str) -> Vec<BrokerEvent> {
        FillsInParts::split(self.0.cancel(client_order_id, reason))
    }
}

#[test]
fn fills_in_parts_make_the_same_trades_as_whole_fills() {
    let config = config();
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    let fold = |events: &[StoredEvent]| {
        let mut projection = anx_projections::Projection::new();
        for e in events {
            projection
                .apply(e.seq, e.market_ms, &e.event)
                .unwrap_or_else(|error| panic!("{error}"));
        }
        projection
    };
    let whole_dir = temp.path().join("whole");
    let (whole, _) = run_with(
        &whole_dir,
        &config,
        SimExchange::new(config.clone()),
        &items,
    );
    let parts_dir = temp.path().join("parts");
    let broker = FillsInParts(SimExchange::new(config.clone()));
    let (parts, head) = run_with(&parts_dir, &config, broker, &items);
    let fills = |events: &[StoredEvent]| {
        events
            .iter()
            .filter(|e| matches!(e.event, Event::Fill(_)))
            .count()
    };
    assert!(fills(&whole) > 0);
    assert_eq!(fills(&parts), 2 * fills(&whole), "every fill in two parts");
    // The position grows by what filled; the trades are the same trades.
    let (a, b) = (fold(&whole), fold(&parts));
    assert!(!a.state.trades.is_empty());
    let trade = |t: &anx_projections::TradeRow| {
        (
            t.symbol.clone(),
            t.entry_ms,
            t.exit_ms,
            t.size,
            t.entry_price,
            t.exit_price,
            t.exit_reason,
            t.fees,
            t.net_pnl,
        )
    };
    let trades =
        |p: &anx_projections::Projection| p.state.trades.iter().map(trade).collect::<Vec<_>>();
    assert_eq!(trades(&a), trades(&b));
    assert_eq!(a.state.equity.equity(), b.state.equity.equity());
    // And the parts journal re-drives to itself.
    let mut again = redriving(
        &parts_dir,
        &config,
        FillsInParts(SimExchange::new(config.clone())),
    );
    again.redrive(&mut |_| {}).unwrap();
    assert_eq!(again.into_writer().unwrap().close().unwrap(), head);
}

/// A broker whose best ask sits at the last close: a post-only entry limit at
/// or above it crosses the book and is rejected, as Coinbase rejects it (the
/// simulated exchange alone rejects only a limit above the close).
struct AskAtTheClose(
    SimExchange,
    std::collections::BTreeMap<String, rust_decimal::Decimal>,
);

impl Broker for AskAtTheClose {
    fn place(&mut self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        let close = self.1.get(&order.product_id).copied();
        let crosses = order.post_only
            && matches!((order.limit_price, close), (Some(limit), Some(close)) if limit >= close);
        if crosses {
            return vec![BrokerEvent::Journal(Event::OrderRejected(OrderRejected {
                client_order_id: order.client_order_id.clone(),
                order_seq,
                reason: anx_projections::engine::order::POST_ONLY_CROSS.into(),
            }))];
        }
        self.0.place(order_seq, order)
    }
    sim_lookups!();
    fn on_candle(&mut self, candle: &Candle) -> Vec<BrokerEvent> {
        self.1.insert(candle.symbol.clone(), candle.close);
        self.0.on_candle(candle)
    }
    fn cancel(&mut self, client_order_id: &str, reason: &str) -> Vec<BrokerEvent> {
        self.0.cancel(client_order_id, reason)
    }
}

fn ask_at_the_close(config: &Config) -> AskAtTheClose {
    AskAtTheClose(SimExchange::new(config.clone()), Default::default())
}

#[test]
fn a_crossed_post_only_entry_is_re_priced_at_most_the_configured_times() {
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    let mut config = config();
    config.orders.entry_post_only = true;
    // Off (the default): a crossed entry is given up, nothing is re-priced,
    // and the setting is not in the configuration's text (or its hash).
    assert!(!config.canonical_text().contains("post_only_retries_max"));
    let (off, _) = run_with(
        &temp.path().join("off"),
        &config,
        ask_at_the_close(&config),
        &items,
    );
    let crossed = |events: &[StoredEvent]| {
        events
            .iter()
            .filter(|e| matches!(&e.event, Event::OrderRejected(r) if r.reason == anx_projections::engine::order::POST_ONLY_CROSS))
            .count()
    };
    let repriced = |e: &StoredEvent| {
        matches!(&e.event, Event::Decision(d)
            if d.glass.full().and_then(|g| g.risk_checks.first()).is_some_and(|c| c.code == "post_only_reprice"))
    };
    assert!(crossed(&off) > 0, "entries at the close cross the book");
    assert!(!off.iter().any(repriced));
    // On: each crossed entry is placed again below the last close, at most twice.
    config.orders.post_only_retries_max = 2;
    assert!(config
        .canonical_text()
        .contains("post_only_retries_max = 2"));
    let dir = temp.path().join("on");
    let (on, head) = run_with(&dir, &config, ask_at_the_close(&config), &items);
    let retries: Vec<usize> = on
        .iter()
        .enumerate()
        .filter(|(_, e)| repriced(e))
        .map(|(i, _)| i)
        .collect();
    assert!(!retries.is_empty(), "a crossed entry is re-priced");
    let mut placed = 0;
    for &at in &retries {
        // In the step of the rejection: the rejected order, IDLE, then the retry.
        let Event::OrderRejected(rejected) = &on[at - 2].event else {
            panic!("{:?}", on[at - 2].event)
        };
        let limit_of = |id: &str| {
            on.iter().find_map(|e| match &e.event {
                Event::OrderPlaced(o) if o.client_order_id == id => o.limit_price,
                _ => None,
            })
        };
        if let Event::OrderPlaced(retry) = &on[at + 1].event {
            assert!(
                retry.limit_price < limit_of(&rejected.client_order_id),
                "re-priced lower"
            );
            placed += 1;
        }
    }
    assert!(placed > 0, "a re-priced entry is placed");
    // Never more than two re-pricings in a row.
    let mut run = 0;
    for e in &on {
        if repriced(e) {
            run += 1;
            assert!(run <= 2, "at most post_only_retries_max re-pricings");
        } else if matches!(&e.event, Event::Decision(d) if d.outcome == DecisionOutcome::Enter) {
            run = 0;
        }
    }
    assert!(
        on.iter()
            .any(|e| matches!(&e.event, Event::Fill(f) if f.leg == FillLeg::Entry)),
        "a re-priced entry fills"
    );
    let mut again = redriving(&dir, &config, ask_at_the_close(&config));
    again.redrive(&mut |_| {}).unwrap();
    assert_eq!(again.into_writer().unwrap().close().unwrap(), head);
}

/// A broker that works its orders on its own and answers when polled, as a
/// real exchange does, and whose answers cannot be asked for again: it says
/// so (`answers_reproducible` is false), and counts every time it is asked
/// anything – re-driving a journal must take its answers from the journal.
struct Remote {
    sim: SimExchange,
    pending: Vec<BrokerEvent>,
    asked: u32,
    /// Each poll also answers again what the previous one did (overlapping
    /// polls of a fills endpoint).
    overlapping: bool,
    last_answered: Vec<BrokerEvent>,
    /// Every answer it ever gave, for `answers_since` (its fills history).
    history: Vec<BrokerEvent>,
    /// Orders created, by client order id (asked again for an order it holds,
    /// it creates none: it answers with the existing one).
    creates: std::collections::BTreeMap<String, u32>,
    /// The newest bar it matched, per symbol: it works each bar once, whether
    /// the trader journals it now or after a restart.
    matched_to: std::collections::BTreeMap<String, UnixMs>,
    /// Its answers come with their receipts (the exchange's time, the BLAKE3
    /// of the raw response), as a real exchange's do.
    receipts: bool,
    /// Base units someone traded by hand on the account: a position the
    /// journal cannot know.
    by_hand: rust_decimal::Decimal,
}

impl Remote {
    /// Client order ids the exchange created more than one order for.
    fn created_twice(&self) -> Vec<(String, u32)> {
        self.creates
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| (id.clone(), *n))
            .collect()
    }

    fn new(config: &Config) -> Remote {
        Remote {
            sim: SimExchange::new(config.clone()),
            pending: Vec::new(),
            asked: 0,
            overlapping: false,
            last_answered: Vec::new(),
            history: Vec::new(),
            creates: Default::default(),
            matched_to: Default::default(),
            receipts: false,
            by_hand: rust_decimal::Decimal::ZERO,
        }
    }
}

impl Broker for Remote {
    fn place(&mut self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        self.asked += 1;
        let held = self.sim.open_orders("").contains(&order.client_order_id);
        if !held {
            *self
                .creates
                .entry(order.client_order_id.clone())
                .or_default() += 1;
        }
        let answers = self.sim.place(order_seq, order);
        self.history.extend(answers.iter().cloned());
        answers
    }
    fn restore(&mut self, _: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        panic!(
            "a real exchange is never asked to restore {}",
            order.client_order_id
        )
    }
    fn open_orders(&self, prefix: &str) -> Vec<String> {
        self.sim.open_orders(prefix)
    }
    fn existing(&self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        self.sim.existing(order_seq, order)
    }
    fn position(&self, symbol: &str) -> rust_decimal::Decimal {
        self.sim.position(symbol) + self.by_hand
    }
    fn on_candle(&mut self, candle: &Candle) -> Vec<BrokerEvent> {
        // The exchange's own matching, each bar once: answers wait for a poll.
        self.asked += 1;
        let matched = self
            .matched_to
            .entry(candle.symbol.clone())
            .or_insert(UnixMs::MIN);
        if candle.open_ms <= *matched {
            return Vec::new();
        }
        *matched = candle.open_ms;
        let mut worked = self.sim.on_candle(candle);
        if self.receipts {
            worked = worked
                .into_iter()
                .map(|answer| {
                    let event = answer.event().clone();
                    let raw = format!("{event:?}");
                    BrokerEvent::Received {
                        event,
                        broker_time_ms: candle.close_ms() - 1,
                        raw_blake3: Hash32(*blake3::hash(raw.as_bytes()).as_bytes()),
                    }
                })
                .collect();
        }
        self.history.extend(worked.iter().cloned());
        self.pending.extend(worked);
        Vec::new()
    }
    fn cancel(&mut self, client_order_id: &str, reason: &str) -> Vec<BrokerEvent> {
        self.asked += 1;
        let answers = self.sim.cancel(client_order_id, reason);
        self.history.extend(answers.iter().cloned());
        answers
    }
    fn poll(&mut self) -> Vec<BrokerEvent> {
        self.asked += 1;
        let new = std::mem::take(&mut self.pending);
        if !self.overlapping {
            return new;
        }
        let mut answers = std::mem::replace(&mut self.last_answered, new.clone());
        answers.extend(new);
        answers
    }
    fn answers_since(&mut self, _since_ms: Option<UnixMs>) -> Vec<BrokerEvent> {
        // All of them: the pipeline drops what the journal already holds.
        self.history.clone()
    }
    fn answers_reproducible(&self) -> bool {
        false
    }
}

/// Feeds `items`, polling the broker after each candle (as the trader's loop does).
fn feed_polling<B: Broker>(pipeline: &mut Pipeline<B>, items: &[Item]) {
    for item in items {
        feed(pipeline, std::slice::from_ref(item));
        if let Item::Candle(c) = item {
            pipeline.poll_broker(c.close_ms()).expect("poll step");
        }
    }
}

#[test]
fn a_broker_that_cannot_answer_again_is_re_driven_from_its_journaled_answers() {
    let config = config();
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("remote");
    let mut p = started(&dir, &config, Remote::new(&config));
    feed_polling(&mut p, &items);
    let head = p.into_writer().unwrap().close().unwrap();
    let events = read_journal(&dir);
    // Polled answers start steps of their own – a fill never sits inside a
    // candle's step, as the simulated exchange's do – and the run traded.
    let fills: Vec<usize> = (1..events.len())
        .filter(|&i| matches!(events[i].event, Event::Fill(_)))
        .collect();
    assert!(!fills.is_empty());
    assert!(fills
        .iter()
        .all(|&i| !matches!(events[i - 1].event, Event::Candle(_))));
    assert!(events
        .iter()
        .any(|e| matches!(&e.event, Event::TradeClosed(_))));
    // Re-driven with an exchange that knows nothing and is never asked.
    let mut again = redriving(&dir, &config, Remote::new(&config));
    again.redrive(&mut |_| {}).unwrap();
    assert_eq!(
        again.broker.asked, 0,
        "the journal answered for the exchange"
    );
    assert_eq!(again.into_writer().unwrap().close().unwrap(), head);
    // Stopped half way and restarted against the same exchange (its orders
    // lived on while we were down): the same journal as one uninterrupted run.
    let half = items.len() / 2;
    let dir = temp.path().join("restarted");
    let mut first = started(&dir, &config, Remote::new(&config));
    feed_polling(&mut first, &items[..half]);
    let broker = std::mem::replace(&mut first.broker, Remote::new(&config));
    first.into_writer().unwrap().close().unwrap();
    let asked = broker.asked;
    let mut second = redriving(&dir, &config, broker);
    second.redrive(&mut |_| {}).unwrap();
    assert_eq!(second.broker.asked, asked, "not asked while re-driving");
    feed_polling(&mut second, &items[half..]);
    assert_eq!(second.into_writer().unwrap().close().unwrap(), head);
}

#[test]
fn answers_a_broker_repeats_are_journaled_once() {
    let config = config();
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    let once = temp.path().join("once");
    let mut p = started(&once, &config, Remote::new(&config));
    feed_polling(&mut p, &items);
    let head = p.into_writer().unwrap().close().unwrap();
    let twice = temp.path().join("twice");
    let mut broker = Remote::new(&config);
    broker.overlapping = true;
    let mut p = started(&twice, &config, broker);
    feed_polling(&mut p, &items);
    assert!(
        p.answers_repeated > 0,
        "the overlapping polls repeated answers"
    );
    // Every fill once: the journal is the one the non-repeating broker made.
    assert_eq!(p.into_writer().unwrap().close().unwrap(), head);
}

/// Kill -9 at every point of a run against an exchange that works on
/// while the trader is down: the journal is cut after event `cut` of the step
/// it was writing (what that step sent the exchange was sent), the exchange
/// matches two more bars, then the trader restarts – re-drives, resyncs with
/// the exchange, trades on. No order is created twice, every fill is
/// journaled once, and the journal's position is the exchange's.
#[test]
fn a_crash_anywhere_loses_no_fill_and_creates_no_order_twice() {
    let config = config();
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    let whole_dir = temp.path().join("whole");
    let mut whole = started(&whole_dir, &config, Remote::new(&config));
    feed_polling(&mut whole, &items);
    let whole_len = whole.projection.seq() as usize;
    whole.into_writer().unwrap().close().unwrap();
    for cut in 2..whole_len {
        let full = temp.path().join(format!("full-{cut}"));
        let dir = temp.path().join(format!("crash-{cut}"));
        // Run until the step that writes event `cut`, then crash: the events
        // after it are lost; what they told the exchange is not.
        let mut p = started(&full, &config, Remote::new(&config));
        let mut fed = 0;
        while p.projection.seq() < cut as Seq && fed < items.len() {
            // The candle's step, then a poll – the crash may come right after
            // the exchange answered it, before anything was journaled.
            feed(&mut p, &items[fed..fed + 1]);
            if let (Item::Candle(c), true) = (&items[fed], p.projection.seq() <= cut as Seq) {
                p.poll_broker(c.close_ms()).expect("poll step");
            }
            fed += 1;
        }
        let mut exchange = std::mem::replace(&mut p.broker, Remote::new(&config));
        p.into_writer().unwrap().close().unwrap();
        let events = read_journal(&full);
        write_events(&dir, events[..cut].iter().map(|e| (e.market_ms, &e.event)));
        // The exchange works on while the trader is down.
        for item in items.iter().skip(fed).take(2) {
            if let Item::Candle(c) = item {
                exchange.on_candle(c);
            }
        }
        let mut again = redriving(&dir, &config, exchange);
        let mut last_open = None;
        again
            .redrive(&mut |s| {
                if let Event::Candle(c) = &s.event {
                    last_open = Some(c.open_ms);
                }
            })
            .unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        let now = again.projection.state.last_market_ms.unwrap_or_default();
        again
            .resync_broker(now)
            .unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        let rest: Vec<Item> = items
            .iter()
            .filter(|i| matches!(i, Item::Candle(c) if last_open.is_none_or(|o| c.open_ms > o)))
            .cloned()
            .collect();
        feed_polling(&mut again, &rest);
        assert!(again.broker.created_twice().is_empty(), "cut {cut}");
        let ours = again.projection.state.symbols["BTC-USD"].position.quantity;
        assert_eq!(
            ours,
            again.broker.position("BTC-USD"),
            "cut {cut}: the journal's position is the exchange's"
        );
        again.into_writer().unwrap().close().unwrap();
        let fill_ids: Vec<String> = read_journal(&dir)
            .into_iter()
            .filter_map(|e| match e.event {
                Event::Fill(f) => Some(f.fill_id),
                _ => None,
            })
            .collect();
        let unique: std::collections::BTreeSet<&String> = fill_ids.iter().collect();
        assert_eq!(
            unique.len(),
            fill_ids.len(),
            "cut {cut}: a fill journaled twice"
        );
    }
}

/// A broker that accepts bracketed entries but never says whether their
/// protection is there (no `BracketVerified`, no `BracketUnconfirmed`).
struct SilentAboutBrackets(SimExchange);

impl SilentAboutBrackets {
    fn quiet(events: Vec<BrokerEvent>) -> Vec<BrokerEvent> {
        events
            .into_iter()
            .filter(|answer| !matches!(answer.event(), Event::BracketVerified(_)))
            .collect()
    }
}

impl Broker for SilentAboutBrackets {
    fn place(&mut self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        SilentAboutBrackets::quiet(self.0.place(order_seq, order))
    }
    sim_lookups!();
    sim_work!();
}

#[test]
fn protection_not_confirmed_in_time_fails_the_symbol_closed() {
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    let mut config = config();
    // No deadline (the default): the broker's silence changes nothing.
    let silent = |config: &Config| SilentAboutBrackets(SimExchange::new(config.clone()));
    let (no_deadline, _) = run_with(&temp.path().join("off"), &config, silent(&config), &items);
    assert!(!no_deadline
        .iter()
        .any(|e| matches!(e.event, Event::FailClosed(_))));
    assert!(!config.canonical_text().contains("protection_confirm_s"));
    // An hour's deadline: the first candle an hour after the acknowledgement
    // fails the symbol closed, caused by that acknowledgement.
    config.orders.protection_confirm_s = 3600;
    let dir = temp.path().join("on");
    let (events, head) = run_with(&dir, &config, silent(&config), &items);
    let fail = position_of(&events, |e| matches!(e, Event::FailClosed(_)), "FailClosed");
    let Event::FailClosed(failed) = &events[fail].event else {
        unreachable!()
    };
    assert!(failed.reason.contains("within 3600s"), "{failed:?}");
    let ack = events
        .iter()
        .find(|e| e.seq == failed.cause_seq)
        .expect("the cause is journaled");
    assert!(matches!(ack.event, Event::OrderAcknowledged(_)));
    assert!(events[fail].market_ms - ack.market_ms >= 3_600_000);
    // Then the entry is withdrawn or the position closed at market, and no
    // entry follows.
    let withdrawn = events[fail..]
        .iter()
        .any(|e| matches!(e.event, Event::CancelRequested(_)));
    let emergency = events[fail..].iter().any(|e| {
        matches!(&e.event, Event::Decision(d)
            if d.outcome == (DecisionOutcome::Exit { reason: ExitReason::Emergency }))
    });
    assert!(withdrawn || emergency);
    assert!(!events[fail..]
        .iter()
        .any(|e| matches!(&e.event, Event::OrderPlaced(o) if o.purpose == OrderPurpose::Entry)));
    let mut again = redriving(&dir, &config, silent(&config));
    again.redrive(&mut |_| {}).unwrap();
    assert_eq!(again.into_writer().unwrap().close().unwrap(), head);
}

#[test]
fn a_real_brokers_answers_carry_their_receipts() {
    let config = config();
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("receipts");
    let mut broker = Remote::new(&config);
    broker.receipts = true;
    let mut p = started(&dir, &config, broker);
    feed_polling(&mut p, &items);
    let head = p.into_writer().unwrap().close().unwrap();
    let events = read_journal(&dir);
    // Every polled answer is followed by its receipt, naming it.
    let receipts: Vec<usize> = (0..events.len())
        .filter(|&i| matches!(events[i].event, Event::AnswerReceipt(_)))
        .collect();
    assert!(!receipts.is_empty());
    for &i in &receipts {
        let Event::AnswerReceipt(r) = &events[i].event else {
            unreachable!()
        };
        assert_eq!(r.answer_seq, events[i - 1].seq);
        assert_eq!(events[i - 1].event.kind().role(), EventRole::BrokerAnswer);
    }
    let fills = events
        .iter()
        .filter(|e| matches!(e.event, Event::Fill(_)))
        .count();
    assert!(fills > 0 && receipts.len() >= fills);
    // Re-driven from the journal (answers and receipts), never asking.
    let mut again = redriving(&dir, &config, Remote::new(&config));
    again.redrive(&mut |_| {}).unwrap();
    assert_eq!(again.broker.asked, 0);
    assert_eq!(again.into_writer().unwrap().close().unwrap(), head);
    // A receipt anywhere but right after a broker answer is refused.
    let mut projection = anx_projections::Projection::new();
    let misplaced = receipts[0] - 1;
    for e in &events[..misplaced] {
        projection.apply(e.seq, e.market_ms, &e.event).unwrap();
    }
    let stray = events[receipts[0]].event.clone();
    let refused = projection
        .apply(misplaced as Seq + 1, events[misplaced].market_ms, &stray)
        .unwrap_err();
    assert!(refused.detail.contains("not a broker answer"), "{refused}");
}

#[test]
fn a_position_the_journal_does_not_know_fails_the_symbol_closed() {
    let config = config();
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("by-hand");
    let mut p = started(&dir, &config, Remote::new(&config));
    let symbols = vec!["BTC-USD".to_string()];
    let half = items.len() / 2;
    feed_polling(&mut p, &items[..half]);
    // At start-up every symbol's outcome is journaled; they agree.
    let now = p.projection.state.last_market_ms.unwrap();
    assert!(p.reconcile(&symbols, true, now).unwrap().is_empty());
    let events = read_journal(&dir);
    assert!(matches!(&events.last().unwrap().event,
        Event::Reconciliation(r) if r.outcome == ReconcileOutcome::Match));
    // Someone buys by hand on the account: the next reconciliation sees a
    // position the journal does not know and fails the symbol closed.
    p.broker.by_hand = rust_decimal::Decimal::new(1, 3);
    let disagreed = p.reconcile(&symbols, false, now).unwrap();
    assert_eq!(disagreed.len(), 1, "{disagreed:?}");
    let events = read_journal(&dir);
    let n = events.len();
    let Event::Reconciliation(r) = &events[n - 2].event else {
        panic!("{:?}", events[n - 2].event)
    };
    assert_eq!(r.outcome, ReconcileOutcome::Mismatch);
    assert_eq!(
        r.broker_position - r.our_position,
        rust_decimal::Decimal::new(1, 3)
    );
    assert!(matches!(&events[n - 1].event,
        Event::FailClosed(f) if f.cause_seq == events[n - 2].seq));
    // No entry on the symbol from then on.
    feed_polling(&mut p, &items[half..]);
    let after = read_journal(&dir);
    assert!(!after[n..]
        .iter()
        .any(|e| matches!(&e.event, Event::OrderPlaced(o) if o.purpose == OrderPurpose::Entry)));
}

#[test]
fn a_polled_answer_the_journal_cannot_take_is_not_written() {
    let config = config();
    let items = inputs();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("refused");
    let mut p = started(&dir, &config, Remote::new(&config));
    feed_polling(&mut p, &items[..items.len() / 2]);
    let before = read_journal(&dir).len();
    // The exchange reports a fill of an order this run never placed.
    p.broker
        .pending
        .push(BrokerEvent::Journal(Event::Fill(Fill {
            client_order_id: "not-ours".into(),
            order_seq: 1,
            fill_id: "stray".into(),
            leg: FillLeg::Entry,
            side: Side::Buy,
            price: rust_decimal::Decimal::ONE_HUNDRED,
            size: rust_decimal::Decimal::ONE,
            fee: rust_decimal::Decimal::ZERO,
            liquidity: Liquidity::Taker,
        })));
    let now = p.projection.state.last_market_ms.unwrap();
    assert_eq!(p.poll_broker(now).unwrap(), 0, "nothing journaled");
    assert_eq!(p.answers_refused.len(), 1, "{:?}", p.answers_refused);
    assert!(p.answers_refused[0].contains("not-ours"));
    p.into_writer().unwrap().close().unwrap();
    // The journal still folds and re-drives: the refusal was never written.
    assert_eq!(read_journal(&dir).len(), before);
    let mut again = redriving(&dir, &config, Remote::new(&config));
    again.redrive(&mut |_| {}).unwrap();
}
