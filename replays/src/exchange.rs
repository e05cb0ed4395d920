//! The simulated exchange: a [`Broker`] that works orders against closed bars
//! with Coinbase's bracket semantics. The paper trader uses the same trait.
//!
//! Rules (all prices on the product's increments, fees and slippage from the
//! cost model only):
//! - An order placed at a bar's close works from the next bar on.
//! - Entry (limit BUY): fills when a bar trades through the limit – at the limit,
//!   or at the open if the bar opens below it (maker). Post-only entries whose
//!   limit is above the last close would cross the book and are rejected
//!   (`INVALID_LIMIT_PRICE_POST_ONLY`). An entry still unfilled after
//!   `orders.entry_ttl_bars` bars is cancelled.
//! - Attached bracket: live as the entry fills. In the entry's own bar only the
//!   stop is checked (whether the bar's low came after the fill is unknown, so
//!   assume it did; the take-profit waits for the next bar). The stop
//!   triggers when a bar trades at or below the trigger and becomes a stop-limit
//!   `exchange.stop_limit_buffer` below it: triggered inside the bar it fills at
//!   the trigger less slippage (taker), never below the limit; a bar that opens
//!   below the trigger fills at the open less slippage if that is still above
//!   the limit, and a bar that opens below the limit leaves the stop unfilled –
//!   it rests as a limit SELL and the position stays open and naked (the engine
//!   notices and exits at market). The take-profit (limit SELL) fills when a bar
//!   trades at or above it, at the limit or the open if higher (maker). If one
//!   bar could have hit both, the stop is assumed first (conservative). When
//!   either leg fills, the other is cancelled.
//! - Market orders (exits) fill at the next bar's open less slippage (taker);
//!   the entry's remaining bracket legs are cancelled with it.
//! - Partial fills are out of scope: every fill is for the whole order.

use anx_journal::*;
use anx_projections::engine::config::{Config, ProductSpec};
use anx_projections::engine::cost::CostModel;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

/// What the broker says back: every answer is an exchange fact, journaled
/// (an event whose kind has the `broker_answer` role) before the engine
/// reacts to it – a missing bracket too (`BracketUnconfirmed`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerEvent {
    Journal(Event),
    /// A real broker's answer with where it came from: journaled, then its
    /// `AnswerReceipt` (the broker's time, the BLAKE3 of the raw response).
    Received {
        event: Event,
        broker_time_ms: UnixMs,
        raw_blake3: anx_journal::codec::Hash32,
    },
}

impl BrokerEvent {
    /// The answer itself.
    pub fn event(&self) -> &Event {
        match self {
            BrokerEvent::Journal(event) | BrokerEvent::Received { event, .. } => event,
        }
    }
}

/// A broker the engine's orders go to.
pub trait Broker {
    /// Hands over an order journaled at `order_seq`. Placing a client order id
    /// the broker already has places nothing (Coinbase answers a repeated
    /// `client_order_id` with the existing order).
    fn place(&mut self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent>;
    /// Rebuilds the broker's knowledge of an order whose placement (and
    /// answers) are already journaled, while a journal is re-driven. A
    /// simulated broker, whose state is a fold of the journal, places it again
    /// in memory; a real one would look it up.
    fn restore(&mut self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        self.place(order_seq, order)
    }
    /// Client order ids of the working orders (entries and their live bracket
    /// legs' parents) whose id starts with `prefix`.
    fn open_orders(&self, prefix: &str) -> Vec<String>;
    /// The broker's own record of an order it already has: the answers it gave
    /// when the order arrived (acknowledgement, bracket), to journal in place of
    /// placing it again.
    fn existing(&self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent>;
    /// The broker's position in `symbol` (base units): the truth a
    /// reconciliation compares the journal's fills with.
    fn position(&self, symbol: &str) -> Decimal;
    /// A bar of `candle.symbol` closed: works every live order of that symbol.
    fn on_candle(&mut self, candle: &Candle) -> Vec<BrokerEvent>;
    /// Cancels an order, if it is still working.
    fn cancel(&mut self, client_order_id: &str, reason: &str) -> Vec<BrokerEvent>;
    /// The answers that arrived since the last poll (fills, cancels,
    /// expiries) from a broker that works its orders on its own – a real
    /// exchange – in the broker's time order (so a crash part way through
    /// journaling them loses only the newest). Each starts a step of its own. The simulated exchange answers
    /// as it works each candle, so it has nothing to poll.
    fn poll(&mut self) -> Vec<BrokerEvent> {
        Vec::new()
    }
    /// The answers (fills above all) the broker gave at or after `since_ms`
    /// (`None`: all it has), asked once a restart has re-driven the journal:
    /// what it answered while the trader was down, or was polled for but
    /// lost in a crash before it was journaled, is nowhere else. The pipeline
    /// journals those the journal lacks. The simulated exchange answers only
    /// inside steps, so it has none.
    fn answers_since(&mut self, _since_ms: Option<UnixMs>) -> Vec<BrokerEvent> {
        Vec::new()
    }
    /// Whether re-driving a journal may ask this broker again and must get
    /// the journaled answers back byte for byte (a simulation, whose state is
    /// a function of the journal), or must take its answers from the journal
    /// without asking (a real exchange: asked again about the past, it would
    /// act again, and its answers are facts that cannot be recomputed).
    fn answers_reproducible(&self) -> bool {
        true
    }
    /// The broker's account as it stands for `symbol` (balances, holds), in
    /// words, for the reconciliation to journal beside the positions; none
    /// for a simulation (its account is the journal).
    fn account_note(&self, _symbol: &str) -> Option<String> {
        None
    }
    /// The broker's own clock as of its last poll (a real exchange's time,
    /// read after its answers): polled answers are journaled no earlier, so
    /// a fill is never stamped with a market time before it happened. None
    /// for a simulation, which has no clock of its own.
    fn clock_ms(&self) -> Option<UnixMs> {
        None
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Entry limit waiting to fill; bars it may still wait.
    Working { bars_left: u32 },
    /// Entry filled; its bracket legs are live.
    Filled,
    /// The stop triggered but its stop-limit did not fill: a resting limit SELL.
    StopResting,
    /// A market exit waiting for the next bar.
    MarketPending,
}

#[derive(Clone, Debug)]
struct SimOrder {
    seq: Seq,
    client_order_id: String,
    symbol: String,
    size: Decimal,
    limit: Option<Decimal>,
    bracket: Option<BracketLegs>,
    spec: ProductSpec,
    phase: Phase,
    fills: u32,
}

pub struct SimExchange {
    config: Config,
    orders: BTreeMap<String, SimOrder>,
    last_close: BTreeMap<String, Decimal>,
    /// Every client order id ever accepted: a repeat places nothing.
    known: BTreeSet<String>,
    /// Symbol → base units held, from the fills this exchange made.
    positions: BTreeMap<String, Decimal>,
    ids: SimIds,
    /// A drill: accept entries but never attach their protection, so the
    /// fail-closed path runs end to end (`anx paper --drill-withhold-protection`).
    withhold_protection: bool,
}

/// How the simulated exchange names its orders. A journal keeps the scheme
/// it was written with: re-driving must reproduce its answers byte for byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimIds {
    /// `SIM-` and 20 hex digits of BLAKE3 over the client order id (today's).
    FromClientOrderId,
    /// `SIM-` and the seq of the `OrderPlaced`, 10 digits: journals written
    /// before the ids were made seq-free (re-driving them must still work).
    FromSeqV0,
}

impl SimIds {
    /// The scheme a journal's acknowledgements use (today's if it has none).
    pub fn of_journal<'a>(events: impl IntoIterator<Item = &'a StoredEvent>) -> SimIds {
        events
            .into_iter()
            .find_map(|stored| match &stored.event {
                Event::OrderAcknowledged(ack) => Some(SimIds::of_id(&ack.exchange_order_id)),
                _ => None,
            })
            .unwrap_or(SimIds::FromClientOrderId)
    }

    fn of_id(id: &str) -> SimIds {
        match id.strip_prefix("SIM-") {
            Some(digits) if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) => {
                SimIds::FromSeqV0
            }
            _ => SimIds::FromClientOrderId,
        }
    }

    /// The exchange's order id for `order_seq`'s order `client_order_id`.
    fn order_id(self, order_seq: Seq, client_order_id: &str) -> String {
        match self {
            SimIds::FromClientOrderId => exchange_id(client_order_id),
            SimIds::FromSeqV0 => format!("SIM-{order_seq:010}"),
        }
    }
}

/// What a drill run's `RunStarted.created_by` ends with (`anx paper
/// --drill-withhold-protection`).
pub const DRILL_SUFFIX: &str = " (drill: withhold protection)";

impl SimExchange {
    pub fn new(config: Config) -> SimExchange {
        SimExchange::with_ids(config, SimIds::FromClientOrderId)
    }

    /// The exchange that answered in `events`, a journal of `run`, to re-drive
    /// them: its order-id scheme, and a drill's withheld protection.
    pub fn of_journal(config: Config, run: &RunStarted, events: &[StoredEvent]) -> SimExchange {
        let exchange = SimExchange::with_ids(config, SimIds::of_journal(events));
        if run.created_by.ends_with(DRILL_SUFFIX) {
            exchange.withholding_protection()
        } else {
            exchange
        }
    }

    /// An exchange naming its orders by `ids` (a re-driven journal's scheme).
    pub fn with_ids(config: Config, ids: SimIds) -> SimExchange {
        SimExchange {
            config,
            orders: BTreeMap::new(),
            last_close: BTreeMap::new(),
            known: BTreeSet::new(),
            positions: BTreeMap::new(),
            ids,
            withhold_protection: false,
        }
    }

    /// This exchange as a drill that never attaches an entry's protection:
    /// the entry is accepted and works bare, and the answer says the attached
    /// take-profit and stop were not found.
    pub fn withholding_protection(mut self) -> SimExchange {
        self.withhold_protection = true;
        self
    }

    /// Keeps `symbol`'s position in step with the fills in `events`.
    fn track(&mut self, symbol: &str, events: &[BrokerEvent]) {
        for event in events {
            if let BrokerEvent::Journal(Event::Fill(fill)) = event {
                let held = self.positions.entry(symbol.to_string()).or_default();
                match fill.side {
                    Side::Buy => *held += fill.size,
                    Side::Sell => *held -= fill.size,
                }
            }
        }
    }

    /// The acknowledgement (and bracket) of an accepted order.
    fn acceptance(&self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        let id = self.ids.order_id(order_seq, &order.client_order_id);
        let mut events = vec![BrokerEvent::Journal(Event::OrderAcknowledged(
            OrderAcknowledged {
                client_order_id: order.client_order_id.clone(),
                order_seq,
                exchange_order_id: id.clone(),
            },
        ))];
        if order.bracket.is_some() && self.withhold_protection {
            events.push(BrokerEvent::Journal(Event::BracketUnconfirmed(
                BracketUnconfirmed {
                    client_order_id: order.client_order_id.clone(),
                    order_seq,
                    reason: "attached take-profit and stop not found at the exchange".into(),
                },
            )));
        } else if order.bracket.is_some() {
            events.push(BrokerEvent::Journal(Event::BracketVerified(
                BracketVerified {
                    client_order_id: order.client_order_id.clone(),
                    order_seq,
                    take_profit_order_id: format!("{id}-TP"),
                    stop_order_id: format!("{id}-SL"),
                },
            )));
        }
        events
    }

    fn fill(
        &self,
        order: &mut SimOrder,
        leg: FillLeg,
        side: Side,
        price: Decimal,
        liquidity: Liquidity,
    ) -> BrokerEvent {
        order.fills += 1;
        let fee = CostModel::new(&self.config).fee(price * order.size, liquidity);
        BrokerEvent::Journal(Event::Fill(Fill {
            client_order_id: order.client_order_id.clone(),
            order_seq: order.seq,
            fill_id: format!(
                "{}-F{}",
                self.ids.order_id(order.seq, &order.client_order_id),
                order.fills
            ),
            leg,
            side,
            price,
            size: order.size,
            fee,
            liquidity,
        }))
    }

    /// The stop leg against a stretch of a bar that starts at `from` and reaches
    /// `low`: triggers at or below the trigger, then fills as a stop-limit or rests.
    fn stop_leg(
        &self,
        order: &mut SimOrder,
        b: &BracketLegs,
        from: Decimal,
        low: Decimal,
        spec: &ProductSpec,
    ) -> (Vec<BrokerEvent>, bool) {
        if low > b.stop_trigger {
            return (Vec::new(), false);
        }
        let reference = from.min(b.stop_trigger);
        if reference < b.stop_limit {
            // Gapped below the stop-limit's limit: unfilled, resting.
            order.phase = Phase::StopResting;
            return (Vec::new(), false);
        }
        let price = CostModel::new(&self.config)
            .taker_fill_price(reference, Side::Sell, spec)
            .max(b.stop_limit);
        (
            vec![self.fill(
                order,
                FillLeg::StopLoss,
                Side::Sell,
                price,
                Liquidity::Taker,
            )],
            true,
        )
    }

    /// Works one order against a closed bar; returns its events and whether it is done.
    fn work(&self, order: &mut SimOrder, bar: &Candle) -> (Vec<BrokerEvent>, bool) {
        match order.phase.clone() {
            Phase::MarketPending => self.work_market_exit(order, bar),
            Phase::Working { bars_left } => self.work_entry(order, bar, bars_left),
            Phase::Filled => self.work_bracket(order, bar),
            Phase::StopResting => self.work_resting_stop(order, bar),
        }
    }

    /// A market exit fills at the bar's open less slippage.
    fn work_market_exit(&self, order: &mut SimOrder, bar: &Candle) -> (Vec<BrokerEvent>, bool) {
        let spec = order.spec;
        let price = CostModel::new(&self.config).taker_fill_price(bar.open, Side::Sell, &spec);
        (
            vec![self.fill(order, FillLeg::Exit, Side::Sell, price, Liquidity::Taker)],
            true,
        )
    }

    /// An entry limit fills when the bar trades through it (its bracket
    /// attaching as it does), or waits another bar, or expires.
    fn work_entry(
        &self,
        order: &mut SimOrder,
        bar: &Candle,
        bars_left: u32,
    ) -> (Vec<BrokerEvent>, bool) {
        let spec = order.spec;
        let limit = order.limit.unwrap_or_default();
        if bar.low <= limit {
            let price = if bar.open <= limit { bar.open } else { limit };
            let event = self.fill(order, FillLeg::Entry, Side::Buy, price, Liquidity::Maker);
            order.phase = Phase::Filled;
            let Some(b) = order.bracket.clone() else {
                return (vec![event], true);
            };
            // The bracket attaches as the entry fills. Whether the bar's low
            // came before or after the fill is unknown: assume after, so the
            // stop may trigger in this bar (the take-profit may not).
            let mut events = vec![event];
            let (stop, done) = self.stop_leg(order, &b, price, bar.low, &spec);
            events.extend(stop);
            return (events, done);
        }
        if bars_left <= 1 {
            let cancelled = Event::OrderCancelled(OrderCancelled {
                client_order_id: order.client_order_id.clone(),
                order_seq: order.seq,
                reason: "time to live expired".into(),
            });
            return (vec![BrokerEvent::Journal(cancelled)], true);
        }
        order.phase = Phase::Working {
            bars_left: bars_left - 1,
        };
        (Vec::new(), false)
    }

    /// A filled entry's live bracket: the stop first (conservative), then the
    /// take-profit.
    fn work_bracket(&self, order: &mut SimOrder, bar: &Candle) -> (Vec<BrokerEvent>, bool) {
        let spec = order.spec;
        let Some(b) = order.bracket.clone() else {
            return (Vec::new(), true);
        };
        if bar.low <= b.stop_trigger {
            return self.stop_leg(order, &b, bar.open, bar.low, &spec);
        }
        if bar.high >= b.take_profit_limit {
            let price = bar.open.max(b.take_profit_limit);
            return (
                vec![self.fill(
                    order,
                    FillLeg::TakeProfit,
                    Side::Sell,
                    price,
                    Liquidity::Maker,
                )],
                true,
            );
        }
        (Vec::new(), false)
    }

    /// A triggered stop resting as a limit SELL fills when a bar trades at or
    /// above its limit.
    fn work_resting_stop(&self, order: &mut SimOrder, bar: &Candle) -> (Vec<BrokerEvent>, bool) {
        let Some(b) = order.bracket.clone() else {
            return (Vec::new(), true);
        };
        if bar.high >= b.stop_limit {
            let price = bar.open.max(b.stop_limit);
            return (
                vec![self.fill(
                    order,
                    FillLeg::StopLoss,
                    Side::Sell,
                    price,
                    Liquidity::Maker,
                )],
                true,
            );
        }
        (Vec::new(), false)
    }
}

/// The simulated exchange's order id for the order with `client_order_id`:
/// opaque like a real exchange's, and derived from the client order id (never
/// from a seq), so the same order has the same id in every journal that holds
/// it – after a crash and restart, or in a re-run of the same backtest.
pub fn exchange_id(client_order_id: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"anx-sim-order-v1\0");
    hasher.update(client_order_id.as_bytes());
    format!("SIM-{}", &hasher.finalize().to_hex()[..20])
}

impl Broker for SimExchange {
    fn place(&mut self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        let reject = |reason: &str| {
            vec![BrokerEvent::Journal(Event::OrderRejected(OrderRejected {
                client_order_id: order.client_order_id.clone(),
                order_seq,
                reason: reason.into(),
            }))]
        };
        // The configuration's spec (its own or `default`), as the engine sized with.
        let Some(spec) = self.config.product(&order.product_id).cloned() else {
            return reject("UNKNOWN_PRODUCT_ID");
        };
        let last_close = self.last_close.get(&order.product_id).copied();
        if order.post_only && order.purpose == OrderPurpose::Entry {
            if let (Some(limit), Some(close)) = (order.limit_price, last_close) {
                if limit > close {
                    return reject(anx_projections::engine::order::POST_ONLY_CROSS);
                }
            }
        }
        if !self.known.insert(order.client_order_id.clone()) {
            // Idempotent, like Coinbase: the order is already here.
            return Vec::new();
        }
        let events = self.acceptance(order_seq, order);
        let phase = match order.purpose {
            OrderPurpose::Entry => Phase::Working {
                bars_left: self.config.orders.entry_ttl_bars,
            },
            OrderPurpose::Exit => {
                // An exit closes the position: the entry's bracket legs go with it.
                self.orders
                    .retain(|_, o| o.symbol != order.product_id || o.phase == Phase::MarketPending);
                Phase::MarketPending
            }
        };
        self.orders.insert(
            order.client_order_id.clone(),
            SimOrder {
                seq: order_seq,
                client_order_id: order.client_order_id.clone(),
                symbol: order.product_id.clone(),
                size: order.base_size,
                limit: order.limit_price,
                bracket: order.bracket.clone().filter(|_| !self.withhold_protection),
                spec,
                phase,
                fills: 0,
            },
        );
        events
    }

    fn on_candle(&mut self, candle: &Candle) -> Vec<BrokerEvent> {
        let mut events = Vec::new();
        let ids: Vec<String> = self
            .orders
            .iter()
            .filter(|(_, o)| o.symbol == candle.symbol)
            .map(|(id, _)| id.clone())
            .collect();
        // Market exits first: they execute at the open, before anything else in the bar.
        let (market, rest): (Vec<String>, Vec<String>) = ids
            .into_iter()
            .partition(|id| self.orders[id].phase == Phase::MarketPending);
        for id in market.into_iter().chain(rest) {
            let Some(mut order) = self.orders.remove(&id) else {
                continue;
            };
            let (mut produced, done) = self.work(&mut order, candle);
            self.track(&order.symbol, &produced);
            let exited = produced.iter().any(
                |e| matches!(e, BrokerEvent::Journal(Event::Fill(f)) if f.leg == FillLeg::Exit),
            );
            events.append(&mut produced);
            if !done {
                self.orders.insert(id, order);
            }
            if exited {
                // The position is gone: cancel the entry's remaining legs.
                self.orders.retain(|_, o| o.symbol != candle.symbol);
                break;
            }
        }
        // Only a symbol's first candle allocates its key.
        match self.last_close.get_mut(&candle.symbol) {
            Some(close) => *close = candle.close,
            None => {
                self.last_close.insert(candle.symbol.clone(), candle.close);
            }
        }
        events
    }

    fn open_orders(&self, prefix: &str) -> Vec<String> {
        self.orders
            .keys()
            .filter(|id| id.starts_with(prefix))
            .cloned()
            .collect()
    }

    fn existing(&self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        if self.orders.contains_key(&order.client_order_id) {
            self.acceptance(order_seq, order)
        } else {
            Vec::new()
        }
    }

    fn position(&self, symbol: &str) -> Decimal {
        self.positions.get(symbol).copied().unwrap_or_default()
    }

    fn cancel(&mut self, client_order_id: &str, reason: &str) -> Vec<BrokerEvent> {
        match self.orders.get(client_order_id) {
            Some(order) if matches!(order.phase, Phase::Working { .. }) => {
                let order = self.orders.remove(client_order_id).expect("present");
                vec![BrokerEvent::Journal(Event::OrderCancelled(
                    OrderCancelled {
                        client_order_id: order.client_order_id,
                        order_seq: order.seq,
                        reason: reason.into(),
                    },
                ))]
            }
            _ => Vec::new(),
        }
    }
}
