//! The Coinbase Advanced Trade broker: the [`Broker`] the live trader hands
//! its journaled orders to, and whose answers it journals.
//!
//! What it sends (the journaled `OrderPlaced.payload`, byte for byte):
//! - entries: `limit_limit_gtc` BUY with `attached_order_configuration.
//!   trigger_bracket_gtc {limit_price, stop_trigger_price}` and no size on the
//!   attached part (create-order reference: "Size field must be omitted");
//! - exits: `market_market_ioc` SELL of the held size, after the entry's
//!   bracket is taken down (see [`CoinbaseBroker::clear_for_exit`]);
//! - cancels: `POST /orders/batch_cancel`.
//!
//! What it answers, each as [`BrokerEvent::Received`] (the exchange's time,
//! the BLAKE3 of the raw body the answer was read from):
//! - `OrderAcknowledged` on `success:true` (`failure_reason:
//!   UNKNOWN_FAILURE_REASON` beside it is Coinbase's legacy field, not a
//!   failure); `OrderRejected` on `success:false` (HTTP 200) with Coinbase's
//!   `error_response`, or on HTTP 400 (a bug in the request: never retried);
//! - `BracketVerified` once the entry's TP/SL child is visible (linked by the
//!   entry's `attached_order_id` / the child's `originating_order_id`) with
//!   our take-profit and stop; Coinbase does not document whether the child
//!   shows before the entry fills, so both are taken; `BracketUnconfirmed`
//!   when the entry has filled and no child with our prices appears within
//!   `live.protection_wait_s` of the fill (the engine fails the symbol closed);
//! - `Fill` from `GET /orders/historical/fills` (price, size, `commission`,
//!   `liquidity_indicator` per fill, joined to our orders by `order_id`; the
//!   fill id is Coinbase's `trade_id`); a child's fill is the take-profit if
//!   its price is at or above the take-profit limit, else the stop. A fill
//!   of the newest closed bar whose candle the journal does not hold yet
//!   (after a restart) is answered in that candle's step, not ahead of it;
//!   any other fill at once (between candles, or in the step being worked);
//! - `OrderCancelled` when the exchange cancelled, expired or failed an
//!   order, or confirmed our cancel (of the entry alone: its child goes with
//!   it, and stays if the entry has filled meanwhile).
//!
//! Refused before sending (journaled without a receipt: nothing came from
//! the exchange): entries above `live.order_notional_max` or that would take
//! the run's working exposure above `live.exposure_max`, and orders the
//! product's state forbids (`trading_disabled`, `cancel_only`, `limit_only`
//! for market orders, `post_only` for non-post-only limits). Exits are never
//! capped: a cap must not keep a position open.
//!
//! An order whose create got no answer (timeouts, 5xx after every retry, a
//! lost response) is *unknown*: before anything else is sent for its symbol,
//! it is looked up among the product's orders by `client_order_id`, and sent
//! again with the same id if absent (Coinbase returns the existing order for
//! a repeated `client_order_id`, so this can never make two) – as if for the
//! first time: an exit only once its bracket is down. A restart tells the
//! broker what the journal holds before re-driving it ([`CoinbaseBroker::
//! hydrate`]): an order journaled without an answer is unknown.

use super::model::{self, dec, rfc3339, time_ms};
use super::rest::{Answer, CallError, Rest};
use anx_journal::*;
use anx_replays::exchange::{Broker, BrokerEvent};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

/// Pages read from one list endpoint per call, at most (a real account's
/// open orders and one poll's fills fit in a few).
const PAGES_MAX: usize = 50;
/// Orders or fills asked for per page.
const PAGE_LIMIT: u32 = 100;
/// A cancel before an exit is confirmed by reading the order back this many
/// times, `CANCEL_CONFIRM_WAIT_MS` apart.
const CANCEL_CONFIRM_READS_MAX: u32 = 10;
const CANCEL_CONFIRM_WAIT_MS: u64 = 300;

/// Preview (`POST /orders/preview`: nothing is placed) or real orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Live,
    Preview,
}

/// The broker's limits (config `[live]` and `[orders]`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub mode: Mode,
    /// Largest entry notional sent, in quote currency.
    pub order_notional_max: Decimal,
    /// Largest sum of working entries' and open positions' cost, in quote currency.
    pub exposure_max: Decimal,
    /// How long after an entry's first fill its TP/SL child may take to show.
    pub protection_wait_ms: i64,
    /// Bars an entry may work before it is cancelled.
    pub entry_ttl_bars: u32,
    /// The run's candle length (a fill belongs to the candle whose bar holds it).
    pub granularity_ms: i64,
    /// This run's client order id prefix (`ANX4_{run8}_`).
    pub prefix: String,
}

/// A product's trading state, from `GET /products/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductState {
    pub base_currency: String,
    pub trading_disabled: bool,
    pub cancel_only: bool,
    pub limit_only: bool,
    pub post_only: bool,
}

impl ProductState {
    /// From Coinbase's product: anything but `online` is not trading.
    pub fn of(product: &model::Product) -> ProductState {
        ProductState {
            base_currency: product.base_currency_id.clone(),
            trading_disabled: product.trading_disabled || product.status != "online",
            cancel_only: product.cancel_only,
            limit_only: product.limit_only,
            post_only: product.post_only,
        }
    }
}

/// Products' trading states are read again every this many polls.
const PRODUCTS_REFRESH_POLLS: u64 = 20;

/// One of our orders the exchange may still act on.
#[derive(Clone, Debug)]
struct Tracked {
    order_seq: Seq,
    order: OrderPlaced,
    exchange_id: Option<String>,
    child_id: Option<String>,
    /// The exchange has finished the order itself (filled, cancelled, …).
    done: bool,
    child_done: bool,
    verified: bool,
    unconfirmed: bool,
    ended: bool,
    /// This broker cancelled the TP/SL child (before an exit, or with its
    /// entry): its end is no news.
    child_taken_down: bool,
    /// The exchange's time of the order's first fill.
    first_fill_ms: Option<UnixMs>,
    filled: Decimal,
    bars_left: u32,
}

impl Tracked {
    fn new(order_seq: Seq, order: OrderPlaced, bars_left: u32) -> Tracked {
        Tracked {
            order_seq,
            order,
            exchange_id: None,
            child_id: None,
            done: false,
            child_done: false,
            verified: false,
            unconfirmed: false,
            ended: false,
            child_taken_down: false,
            first_fill_ms: None,
            filled: Decimal::ZERO,
            bars_left,
        }
    }

    fn is_entry(&self) -> bool {
        self.order.purpose == OrderPurpose::Entry
    }

    /// Nothing of it can happen any more at the exchange (it stays known,
    /// so fills the exchange lists late are still joined to it).
    fn finished(&self) -> bool {
        self.done && (self.child_id.is_none() || self.child_done)
    }
}

/// What a restart knows of an order from the journal.
#[derive(Clone, Debug)]
pub struct Hydrated {
    pub order_seq: Seq,
    pub order: OrderPlaced,
    pub exchange_id: String,
    /// Its TP/SL child, as its journaled `BracketVerified` names it.
    pub child_id: Option<String>,
    pub verified: bool,
    pub filled: Decimal,
    pub bars_left: u32,
    /// The exchange's time of the entry's first fill (its receipt's).
    pub first_fill_ms: Option<UnixMs>,
}

pub struct CoinbaseBroker {
    rest: Rest,
    settings: Settings,
    products: BTreeMap<String, ProductState>,
    /// Client order id → our order.
    orders: BTreeMap<String, Tracked>,
    /// Exchange order id → client order id (entries, their children, exits).
    by_exchange_id: BTreeMap<String, String>,
    /// Symbol → base units bought less sold by this run's fills.
    positions: BTreeMap<String, Decimal>,
    /// Currency → (available, hold), as last read.
    balances: BTreeMap<String, (Decimal, Decimal)>,
    /// Quote currency the run trades with, and its starting capital (for
    /// the reconciliation's account note).
    capital: Option<(String, Decimal)>,
    /// Coinbase trade ids already answered.
    fills_seen: BTreeSet<String>,
    /// Exchange orders found not to be this run's.
    foreign: BTreeSet<String>,
    /// Creates without an answer, by client order id.
    unknown: BTreeSet<String>,
    /// Client order ids of this run's orders the exchange lists as open
    /// (a child under its entry's id), as last read.
    exchange_open: Vec<String>,
    /// Where the next fills poll starts (the exchange's time).
    fills_since_ms: Option<UnixMs>,
    /// The oldest fill of this poll whose order could not be read (not
    /// known to be someone else's): the cursor stays before it.
    oldest_unread_ms: Option<UnixMs>,
    /// The last order read for a fill failed.
    fill_unread: bool,
    /// Answers given outside a poll, handed out by the next one.
    queued: Vec<BrokerEvent>,
    /// Symbol → close of the newest candle whose step the journal holds.
    stepped_ms: BTreeMap<String, UnixMs>,
    /// Fills (with their trade times) of bars that have closed but whose
    /// candles are not stepped yet: they are answered in those candles'
    /// steps (see [`CoinbaseBroker::belongs_to_a_coming_candle`]).
    held: Vec<(UnixMs, BrokerEvent)>,
    /// The exchange's time read at the end of the last poll.
    clock_ms: Option<UnixMs>,
    /// Polls made (products are re-read every `PRODUCTS_REFRESH_POLLS`).
    polls: u64,
    /// A failure the trader must stop for (a refused key).
    pub fatal: Option<String>,
    /// Things the trader should log (a library does not print).
    pub notes: Vec<String>,
}

impl CoinbaseBroker {
    pub fn new(rest: Rest, settings: Settings, products: BTreeMap<String, ProductState>) -> Self {
        CoinbaseBroker {
            rest,
            settings,
            products,
            orders: BTreeMap::new(),
            by_exchange_id: BTreeMap::new(),
            positions: BTreeMap::new(),
            balances: BTreeMap::new(),
            capital: None,
            fills_seen: BTreeSet::new(),
            unknown: BTreeSet::new(),
            foreign: BTreeSet::new(),
            exchange_open: Vec::new(),
            fills_since_ms: None,
            oldest_unread_ms: None,
            fill_unread: false,
            queued: Vec::new(),
            stepped_ms: BTreeMap::new(),
            held: Vec::new(),
            polls: 0,
            clock_ms: None,
            fatal: None,
            notes: Vec::new(),
        }
    }

    /// Fills are asked for from `since_ms` on (the run's start, at a first start).
    pub fn start_fills_at(&mut self, since_ms: UnixMs) {
        self.fills_since_ms = Some(since_ms);
    }

    /// At a restart, before the journal is re-driven: the orders still live
    /// in it, the run's positions by its fills, the ids of the fills it
    /// holds (never answered again) and each symbol's newest candle close.
    pub fn hydrate(
        &mut self,
        orders: Vec<Hydrated>,
        positions: BTreeMap<String, Decimal>,
        fills: BTreeSet<String>,
        stepped_ms: BTreeMap<String, UnixMs>,
    ) {
        self.fills_seen.extend(fills);
        self.stepped_ms = stepped_ms;
        for h in orders {
            let mut tracked = Tracked::new(h.order_seq, h.order, h.bars_left);
            if !h.exchange_id.is_empty() {
                self.by_exchange_id
                    .insert(h.exchange_id.clone(), tracked.order.client_order_id.clone());
                tracked.exchange_id = Some(h.exchange_id);
            } else {
                // Placed, never answered: its create may or may not have arrived.
                self.unknown.insert(tracked.order.client_order_id.clone());
            }
            // Known, so an exit takes it down first (its base is held by it)
            // and its fills are ours without reading it.
            if let Some(child) = h.child_id.filter(|c| !c.is_empty()) {
                self.by_exchange_id
                    .insert(child.clone(), tracked.order.client_order_id.clone());
                tracked.child_id = Some(child);
            }
            tracked.verified = h.verified;
            tracked.filled = h.filled;
            tracked.first_fill_ms = h.first_fill_ms;
            self.orders
                .insert(tracked.order.client_order_id.clone(), tracked);
        }
        // An exit the journal holds open was sent after its symbol's bracket
        // was taken down by this broker (before the crash): that bracket's
        // end is no news, not protection lost.
        let exiting: BTreeSet<String> = self
            .orders
            .values()
            .filter(|t| t.order.purpose == OrderPurpose::Exit)
            .map(|t| t.order.product_id.clone())
            .collect();
        for t in self.orders.values_mut() {
            if t.is_entry() && exiting.contains(&t.order.product_id) {
                t.child_taken_down = true;
            }
        }
        self.positions = positions;
    }

    /// Reads the account's balances (every page); the error if it cannot.
    pub fn refresh_balances(&mut self) -> Result<&BTreeMap<String, (Decimal, Decimal)>, CallError> {
        let mut balances = BTreeMap::new();
        let mut cursor = String::new();
        for _ in 0..PAGES_MAX {
            let target = format!("/api/v3/brokerage/accounts?limit=250&cursor={cursor}");
            let answer = self.call_get(&target)?;
            let page: model::AccountsPage = parse(&answer.body, &target)?;
            for account in page.accounts {
                let entry: &mut (Decimal, Decimal) = balances.entry(account.currency).or_default();
                entry.0 += dec(&account.available_balance.value).unwrap_or_default();
                entry.1 += dec(&account.hold.value).unwrap_or_default();
            }
            if !page.has_next || page.cursor.is_empty() {
                break;
            }
            cursor = page.cursor;
        }
        self.balances = balances;
        Ok(&self.balances)
    }

    /// Reads the exchange's open orders (every page) and keeps this run's:
    /// what a reconciliation compares with the journal's.
    pub fn refresh_open_orders(&mut self) -> Result<&[String], CallError> {
        let mut open = BTreeSet::new();
        let mut cursor = String::new();
        for _ in 0..PAGES_MAX {
            let target = format!(
                "/api/v3/brokerage/orders/historical/batch?order_status=OPEN&limit={PAGE_LIMIT}&cursor={cursor}"
            );
            let answer = self.call_get(&target)?;
            let page: model::OrdersPage = parse(&answer.body, &target)?;
            for order in page.orders {
                let ours = if order.client_order_id.starts_with(&self.settings.prefix) {
                    Some(order.client_order_id)
                } else {
                    // A TP/SL child carries no id of ours: its entry's.
                    self.by_exchange_id
                        .get(&order.originating_order_id)
                        .cloned()
                };
                open.extend(ours);
            }
            if !page.has_next || page.cursor.is_empty() {
                break;
            }
            cursor = page.cursor;
        }
        self.exchange_open = open.into_iter().collect();
        Ok(&self.exchange_open)
    }

    /// Re-reads each product's trading state (its flags may change while
    /// the trader runs: maintenance puts a product in cancel-only).
    fn refresh_products(&mut self) {
        let symbols: Vec<String> = self.products.keys().cloned().collect();
        for symbol in symbols {
            let target = format!("/api/v3/brokerage/products/{symbol}");
            let Ok(answer) = self.call_get(&target) else {
                continue;
            };
            let Ok(product) = parse::<model::Product>(&answer.body, &target) else {
                continue;
            };
            let state = ProductState::of(&product);
            if self.products.get(&symbol).is_some_and(|old| *old != state) {
                self.notes
                    .push(format!("{symbol}: trading state now {state:?}"));
            }
            self.products.insert(symbol, state);
        }
    }

    fn call_get(&mut self, target: &str) -> Result<Answer, CallError> {
        let result = self.rest.get(target);
        self.note_fatal(&result);
        result
    }

    fn call_post(&mut self, path: &str, body: &str) -> Result<Answer, CallError> {
        let result = self.rest.post(path, body);
        self.note_fatal(&result);
        result
    }

    fn note_fatal(&mut self, result: &Result<Answer, CallError>) {
        if let Err(CallError::Unauthorized(why)) = result {
            self.fatal.get_or_insert_with(|| why.clone());
        }
    }

    /// An answer from the exchange, with its receipt.
    fn received(event: Event, broker_ms: UnixMs, raw: &str) -> BrokerEvent {
        BrokerEvent::Received {
            event,
            broker_time_ms: broker_ms,
            raw_blake3: anx_journal::codec::Hash32(*blake3::hash(raw.as_bytes()).as_bytes()),
        }
    }

    fn rejected(order_seq: Seq, order: &OrderPlaced, reason: String) -> Event {
        Event::OrderRejected(OrderRejected {
            client_order_id: order.client_order_id.clone(),
            order_seq,
            reason,
        })
    }

    fn cancelled(t: &Tracked, reason: String) -> Event {
        Event::OrderCancelled(OrderCancelled {
            client_order_id: t.order.client_order_id.clone(),
            order_seq: t.order_seq,
            reason,
        })
    }

    /// Why the exchange must not get `order`, if it must not.
    fn refusal(&self, order: &OrderPlaced) -> Option<String> {
        let product = self.products.get(&order.product_id);
        if let Some(p) = product {
            if p.trading_disabled {
                return Some(format!(
                    "PRODUCT_TRADING_DISABLED: {} is not trading",
                    order.product_id
                ));
            }
            let market = order.order_type == OrderType::Market;
            // Cancel-only takes no new order at all: an exit is refused here,
            // before its bracket is taken down.
            if p.cancel_only {
                return Some(format!(
                    "PRODUCT_CANCEL_ONLY: {} takes cancels only",
                    order.product_id
                ));
            }
            if p.limit_only && market {
                return Some(format!(
                    "PRODUCT_LIMIT_ONLY: {} takes no market orders",
                    order.product_id
                ));
            }
            if p.post_only && !market && !order.post_only {
                return Some(format!(
                    "PRODUCT_POST_ONLY: {} takes post-only limits only",
                    order.product_id
                ));
            }
        }
        if order.purpose == OrderPurpose::Entry {
            return self.cap_refusal(order);
        }
        None
    }

    /// The safety caps on entries (`live.order_notional_max`, `live.exposure_max`).
    fn cap_refusal(&self, order: &OrderPlaced) -> Option<String> {
        let notional = order.base_size * order.limit_price.unwrap_or_default();
        if notional > self.settings.order_notional_max {
            return Some(format!(
                "ANX_CAP_ORDER_NOTIONAL: {notional} above live.order_notional_max {}",
                self.settings.order_notional_max
            ));
        }
        // Not the order itself (tracked already when it is sent again).
        let working: Decimal = self
            .orders
            .values()
            .filter(|t| t.order.client_order_id != order.client_order_id)
            .filter(|t| t.is_entry() && !t.ended && !t.finished())
            .map(|t| t.order.base_size * t.order.limit_price.unwrap_or_default())
            .sum();
        if working + notional > self.settings.exposure_max {
            return Some(format!(
                "ANX_CAP_TOTAL_EXPOSURE: {} working plus {notional} above live.exposure_max {}",
                working, self.settings.exposure_max
            ));
        }
        None
    }

    /// Sends a create (or a preview) and turns the answer into events.
    fn send(&mut self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        if self.settings.mode == Mode::Preview {
            return self.preview(order_seq, order);
        }
        let id = order.client_order_id.clone();
        match self.call_post("/api/v3/brokerage/orders", &order.payload) {
            Ok(answer) => self.created(order_seq, order, &answer),
            Err(CallError::Refused { status, detail, .. }) => {
                self.notes.push(format!(
                    "{id}: HTTP {status} to a create: {detail} (a bug in the request; not retried)"
                ));
                vec![BrokerEvent::Journal(CoinbaseBroker::rejected(
                    order_seq,
                    order,
                    format!("HTTP {status} (request refused, not retried): {detail}"),
                ))]
            }
            Err(error) => {
                // Unanswered or unauthorized: the order may exist. Looked up
                // before anything else is sent for its symbol.
                self.notes.push(format!(
                    "{id}: outcome unknown ({error}); it is looked up at the next poll"
                ));
                self.track(order_seq, order);
                self.unknown.insert(id);
                Vec::new()
            }
        }
    }

    fn track(&mut self, order_seq: Seq, order: &OrderPlaced) {
        let bars = self.settings.entry_ttl_bars;
        self.orders
            .entry(order.client_order_id.clone())
            .or_insert_with(|| Tracked::new(order_seq, order.clone(), bars));
    }

    /// A create's answer: the acknowledgement and, if the child shows at
    /// once, the verified bracket; or the rejection.
    fn created(
        &mut self,
        order_seq: Seq,
        order: &OrderPlaced,
        answer: &Answer,
    ) -> Vec<BrokerEvent> {
        let when = answer.date_ms.unwrap_or_default();
        let response: model::CreateOrderResponse = match parse(&answer.body, "create order") {
            Ok(r) => r,
            Err(error) => {
                self.notes
                    .push(format!("{}: {error}", order.client_order_id));
                self.track(order_seq, order);
                self.unknown.insert(order.client_order_id.clone());
                return Vec::new();
            }
        };
        if !response.success {
            let error = response.error_response.as_ref().map(|e| e.error.as_str());
            if error == Some("DUPLICATE_CLIENT_ORDER_ID") {
                // Sent again after a lookup missed it: the order exists
                // (assumed: Coinbase documents returning the existing order,
                // but its error list names this code). Looked up again.
                self.track(order_seq, order);
                self.unknown.insert(order.client_order_id.clone());
                return Vec::new();
            }
            let reason = response
                .error_response
                .map(|e| e.reason())
                .unwrap_or_else(|| response.failure_reason.clone());
            let event = CoinbaseBroker::rejected(order_seq, order, reason);
            return vec![CoinbaseBroker::received(event, when, &answer.body)];
        }
        let success = response.success_response.unwrap_or_default();
        let exchange_id = if success.order_id.is_empty() {
            response.order_id
        } else {
            success.order_id
        };
        self.acknowledged(order_seq, order, exchange_id, when, &answer.body)
    }

    fn acknowledged(
        &mut self,
        order_seq: Seq,
        order: &OrderPlaced,
        exchange_id: String,
        when: UnixMs,
        raw: &str,
    ) -> Vec<BrokerEvent> {
        self.track(order_seq, order);
        let id = order.client_order_id.clone();
        self.unknown.remove(&id);
        self.by_exchange_id.insert(exchange_id.clone(), id.clone());
        if let Some(t) = self.orders.get_mut(&id) {
            t.exchange_id = Some(exchange_id.clone());
        }
        let ack = Event::OrderAcknowledged(OrderAcknowledged {
            client_order_id: id.clone(),
            order_seq,
            exchange_order_id: exchange_id,
        });
        let mut events = vec![CoinbaseBroker::received(ack, when, raw)];
        if order.bracket.is_some() {
            events.extend(self.check_bracket(&id));
        }
        events
    }

    /// `POST /orders/preview`: the exchange's verdict, nothing placed. An
    /// accepted preview ends the order as cancelled ("preview only"), with
    /// the exchange's figures; a refused one is a rejection.
    fn preview(&mut self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        let mut body: serde_json::Value = match serde_json::from_str(&order.payload) {
            Ok(v) => v,
            Err(e) => {
                let reason = format!("the journaled payload is not JSON: {e}");
                return vec![BrokerEvent::Journal(CoinbaseBroker::rejected(
                    order_seq, order, reason,
                ))];
            }
        };
        if let Some(map) = body.as_object_mut() {
            map.remove("client_order_id");
        }
        let answer = match self.call_post("/api/v3/brokerage/orders/preview", &body.to_string()) {
            Ok(answer) => answer,
            Err(error) => {
                let reason = format!("PREVIEW_UNANSWERED: {error}");
                return vec![BrokerEvent::Journal(CoinbaseBroker::rejected(
                    order_seq, order, reason,
                ))];
            }
        };
        let preview: model::PreviewResponse = parse(&answer.body, "preview").unwrap_or_default();
        let when = answer.date_ms.unwrap_or_default();
        let event = if preview.errs.is_empty() && !preview.preview_id.is_empty() {
            Event::OrderCancelled(OrderCancelled {
                client_order_id: order.client_order_id.clone(),
                order_seq,
                reason: format!(
                    "preview only, not placed: accepted by the exchange (preview_id {}, order_total {}, commission_total {}{})",
                    preview.preview_id,
                    preview.order_total,
                    preview.commission_total,
                    if preview.warning.is_empty() { String::new() } else { format!(", warnings {}", preview.warning.join(" ")) }
                ),
            })
        } else {
            let reason = if preview.errs.is_empty() {
                "PREVIEW_REFUSED: no preview_id".to_string()
            } else {
                preview.errs.join(", ")
            };
            CoinbaseBroker::rejected(order_seq, order, reason)
        };
        vec![CoinbaseBroker::received(event, when, &answer.body)]
    }

    /// One order read back (`GET /orders/historical/{id}`).
    fn read_order(&mut self, exchange_id: &str) -> Result<(model::Order, Answer), CallError> {
        let target = format!("/api/v3/brokerage/orders/historical/{exchange_id}");
        let answer = self.call_get(&target)?;
        let envelope: model::OrderEnvelope = parse(&answer.body, &target)?;
        Ok((envelope.order, answer))
    }

    /// The entry's TP/SL child, if it shows: `BracketVerified` when its
    /// prices are ours; `BracketUnconfirmed` when they are not, or when the
    /// entry has filled and no child showed within the wait.
    fn check_bracket(&mut self, client_order_id: &str) -> Vec<BrokerEvent> {
        let Some(t) = self.orders.get(client_order_id) else {
            return Vec::new();
        };
        if t.verified || t.unconfirmed {
            return Vec::new();
        }
        let (Some(parent_id), Some(legs)) = (t.exchange_id.clone(), t.order.bracket.clone()) else {
            return Vec::new();
        };
        let child_id = match t.child_id.clone() {
            Some(id) => id,
            None => match self.read_order(&parent_id) {
                Ok((parent, _)) if !parent.attached_order_id.is_empty() => parent.attached_order_id,
                Ok(_) => return self.child_missing(client_order_id, None),
                Err(_) => return Vec::new(),
            },
        };
        let Ok((child, answer)) = self.read_order(&child_id) else {
            return Vec::new();
        };
        self.by_exchange_id
            .insert(child_id.clone(), client_order_id.to_string());
        let t = self.orders.get_mut(client_order_id).expect("checked above");
        t.child_id = Some(child_id.clone());
        let ours = child.originating_order_id == parent_id
            && child.bracket_prices() == Some((legs.take_profit_limit, legs.stop_trigger));
        let when = answer.date_ms.unwrap_or_default();
        if ours {
            t.verified = true;
            let event = Event::BracketVerified(BracketVerified {
                client_order_id: client_order_id.to_string(),
                order_seq: t.order_seq,
                take_profit_order_id: child_id.clone(),
                stop_order_id: child_id,
            });
            return vec![CoinbaseBroker::received(event, when, &answer.body)];
        }
        let why = format!(
            "the attached order {child_id} is not our bracket (originating {:?}, prices {:?}, ours take-profit {} stop {})",
            child.originating_order_id,
            child.bracket_prices(),
            legs.take_profit_limit,
            legs.stop_trigger
        );
        self.unconfirmed(client_order_id, why, Some((when, answer.body)))
    }

    /// No child yet: fine while the entry has not filled (Coinbase may
    /// attach it as the entry fills); past the wait after a fill, unconfirmed.
    fn child_missing(&mut self, client_order_id: &str, now_ms: Option<UnixMs>) -> Vec<BrokerEvent> {
        let Some(t) = self.orders.get(client_order_id) else {
            return Vec::new();
        };
        let (Some(first_fill), Some(now)) = (t.first_fill_ms, now_ms) else {
            return Vec::new();
        };
        if now - first_fill < self.settings.protection_wait_ms {
            return Vec::new();
        }
        let why = format!(
            "no take-profit/stop order attached to the entry {} seconds after it filled",
            (now - first_fill) / 1000
        );
        self.unconfirmed(client_order_id, why, None)
    }

    fn unconfirmed(
        &mut self,
        client_order_id: &str,
        reason: String,
        from: Option<(UnixMs, String)>,
    ) -> Vec<BrokerEvent> {
        let Some(t) = self.orders.get_mut(client_order_id) else {
            return Vec::new();
        };
        t.unconfirmed = true;
        let event = Event::BracketUnconfirmed(BracketUnconfirmed {
            client_order_id: client_order_id.to_string(),
            order_seq: t.order_seq,
            reason,
        });
        match from {
            Some((when, raw)) => vec![CoinbaseBroker::received(event, when, &raw)],
            None => vec![BrokerEvent::Journal(event)],
        }
    }

    /// Before an exit: the symbol's working entry and its TP/SL child are
    /// cancelled and the cancels confirmed, so the exit sells what is held
    /// and no leg can fill after it (a bracket child holds the base balance:
    /// Coinbase would refuse the market SELL for insufficient funds).
    /// Returns false when the position is already gone (a leg filled first).
    fn clear_for_exit(&mut self, symbol: &str) -> Result<(), &'static str> {
        let journaled: BTreeMap<String, Decimal> = self
            .orders
            .values()
            .filter(|t| t.is_entry() && t.order.product_id == symbol)
            .filter_map(|t| Some((t.exchange_id.clone()?, t.filled)))
            .collect();
        let ids: Vec<String> = self
            .orders
            .values()
            .filter(|t| t.is_entry() && t.order.product_id == symbol)
            .flat_map(|t| {
                let parent = t.exchange_id.clone().filter(|_| !t.done);
                let child = t.child_id.clone().filter(|_| !t.child_done);
                parent.into_iter().chain(child)
            })
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        for t in self.orders.values_mut() {
            if t.is_entry() && t.order.product_id == symbol {
                t.child_taken_down = true;
            }
        }
        let _ = self.batch_cancel(&ids);
        for _ in 0..CANCEL_CONFIRM_READS_MAX {
            let states: Vec<Option<model::Order>> = ids
                .iter()
                .map(|id| self.read_order(id).ok().map(|(o, _)| o))
                .collect();
            for order in states.iter().flatten() {
                let filled = dec(&order.filled_size).unwrap_or_default();
                // A take-profit or stop that filled, even in part: the
                // position is not what the exit would sell.
                if !order.originating_order_id.is_empty() && filled > Decimal::ZERO {
                    return Err("not sent: the position's take-profit or stop filled first");
                }
                // The entry filled more than the journal knows: likewise.
                if journaled.get(&order.order_id).is_some_and(|j| filled > *j) {
                    return Err(
                        "not sent: the entry filled further meanwhile; the next exit sells it all",
                    );
                }
            }
            if states
                .iter()
                .all(|o| o.as_ref().is_some_and(model::Order::is_done))
            {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(CANCEL_CONFIRM_WAIT_MS));
        }
        // A bracket that may still fill must not meet a SELL of the same coins.
        Err("not sent: the bracket's cancel was not confirmed by the exchange")
    }

    /// `POST /orders/batch_cancel`: the ids the exchange says it cancelled.
    fn batch_cancel(&mut self, ids: &[String]) -> Result<(BTreeSet<String>, Answer), CallError> {
        let body = serde_json::json!({ "order_ids": ids }).to_string();
        let answer = self.call_post("/api/v3/brokerage/orders/batch_cancel", &body)?;
        let results: model::BatchCancel = parse(&answer.body, "batch_cancel")?;
        let done = results
            .results
            .into_iter()
            .filter(|r| r.success)
            .map(|r| r.order_id)
            .collect();
        Ok((done, answer))
    }

    /// Sends an order as a first time: refused here if a cap or the
    /// product's state forbids it; an exit only once the symbol's bracket is
    /// taken down (its child holds the base: the SELL would be refused).
    fn submit(&mut self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        if let Some(reason) = self.refusal(order) {
            return vec![BrokerEvent::Journal(CoinbaseBroker::rejected(
                order_seq, order, reason,
            ))];
        }
        let cleared = match (order.purpose, self.settings.mode) {
            (OrderPurpose::Exit, Mode::Live) => self.clear_for_exit(&order.product_id),
            _ => Ok(()),
        };
        if let Err(reason) = cleared {
            let reason = reason.to_string();
            let event = Event::OrderCancelled(OrderCancelled {
                client_order_id: order.client_order_id.clone(),
                order_seq,
                reason,
            });
            if let Some(t) = self.orders.get_mut(&order.client_order_id) {
                t.ended = true;
                t.done = true;
            }
            return vec![BrokerEvent::Journal(event)];
        }
        self.send(order_seq, order)
    }

    /// Looks up the creates whose outcome is unknown for `symbol` (all
    /// symbols: `None`): adopted if the exchange has them, sent again with
    /// the same id if not.
    fn resolve_unknown(&mut self, symbol: Option<&str>) -> Vec<BrokerEvent> {
        let ids: Vec<String> = self
            .unknown
            .iter()
            .filter(|id| {
                symbol.is_none_or(|s| {
                    self.orders
                        .get(*id)
                        .is_some_and(|t| t.order.product_id == s)
                })
            })
            .cloned()
            .collect();
        let mut events = Vec::new();
        for id in ids {
            let Some(t) = self.orders.get(&id).cloned() else {
                self.unknown.remove(&id);
                continue;
            };
            match self.find_by_client_id(&t.order.product_id, &id) {
                Ok(Some((order, answer))) => {
                    let when = answer.date_ms.unwrap_or_default();
                    events.extend(self.acknowledged(
                        t.order_seq,
                        &t.order,
                        order.order_id,
                        when,
                        &answer.body,
                    ));
                }
                Ok(None) => {
                    // Never sent (or lost on the way): sent now as it would
                    // have been – an exit too only once its bracket is down.
                    self.unknown.remove(&id);
                    events.extend(self.submit(t.order_seq, &t.order));
                }
                Err(_) => {}
            }
        }
        events
    }

    /// The product's order with `client_order_id`, newest pages first.
    fn find_by_client_id(
        &mut self,
        product: &str,
        id: &str,
    ) -> Result<Option<(model::Order, Answer)>, CallError> {
        let mut cursor = String::new();
        for _ in 0..PAGES_MAX {
            let target = format!(
                "/api/v3/brokerage/orders/historical/batch?product_ids={product}&limit={PAGE_LIMIT}&cursor={cursor}"
            );
            let answer = self.call_get(&target)?;
            let page: model::OrdersPage = parse(&answer.body, &target)?;
            if let Some(order) = page.orders.iter().find(|o| o.client_order_id == id) {
                return Ok(Some((order.clone(), answer)));
            }
            if !page.has_next || page.cursor.is_empty() {
                return Ok(None);
            }
            cursor = page.cursor;
        }
        Ok(None)
    }

    /// New fills since the cursor (every page), joined to our orders.
    fn poll_fills(&mut self) -> Vec<(UnixMs, BrokerEvent)> {
        self.oldest_unread_ms = None;
        let mut raw_fills = Vec::new();
        let mut cursor = String::new();
        let since = self.fills_since_ms.map(rfc3339).unwrap_or_default();
        for _ in 0..PAGES_MAX {
            let target = format!(
                "/api/v3/brokerage/orders/historical/fills?start_sequence_timestamp={since}&limit={PAGE_LIMIT}&cursor={cursor}"
            );
            let Ok(answer) = self.call_get(&target) else {
                return Vec::new();
            };
            let Ok(page) = parse::<model::FillsPage>(&answer.body, &target) else {
                return Vec::new();
            };
            let done = page.cursor.is_empty() || page.fills.is_empty();
            raw_fills.extend(page.fills.into_iter().map(|f| (f, answer.body.clone())));
            if done {
                break;
            }
            cursor = page.cursor;
        }
        let mut events: Vec<(UnixMs, BrokerEvent)> = raw_fills
            .into_iter()
            .filter_map(|(fill, raw)| self.fill_event(&fill, &raw))
            .collect();
        events.sort_by_key(|(ms, _)| *ms);
        events
    }

    /// One Coinbase fill as our `Fill`, if it is of one of our orders and new.
    fn fill_event(&mut self, fill: &model::ApiFill, raw: &str) -> Option<(UnixMs, BrokerEvent)> {
        if self.fills_seen.contains(&fill.trade_id) {
            return None;
        }
        self.fill_unread = false;
        let Some(client_id) = self.owner_of(&fill.order_id) else {
            if self.fill_unread {
                // The cursor must not pass a fill that may be ours.
                if let Some(when) = time_ms(&fill.trade_time) {
                    let oldest = self.oldest_unread_ms.map_or(when, |o| o.min(when));
                    self.oldest_unread_ms = Some(oldest);
                }
            }
            return None;
        };
        let t = self.orders.get_mut(&client_id)?;
        let (price, size) = (dec(&fill.price)?, dec(&fill.size)?);
        let when = time_ms(&fill.trade_time)?;
        let child = t.child_id.as_deref() == Some(fill.order_id.as_str());
        let leg = match (t.order.purpose, child, &t.order.bracket) {
            (OrderPurpose::Entry, true, Some(b)) if price >= b.take_profit_limit => {
                FillLeg::TakeProfit
            }
            (OrderPurpose::Entry, true, _) => FillLeg::StopLoss,
            (OrderPurpose::Entry, false, _) => FillLeg::Entry,
            (OrderPurpose::Exit, _, _) => FillLeg::Exit,
        };
        let side = if fill.side == "BUY" {
            Side::Buy
        } else {
            Side::Sell
        };
        if leg == FillLeg::Entry {
            t.filled += size;
            t.first_fill_ms.get_or_insert(when);
        }
        let held = self
            .positions
            .entry(t.order.product_id.clone())
            .or_default();
        *held += if side == Side::Buy { size } else { -size };
        self.fills_seen.insert(fill.trade_id.clone());
        let event = Event::Fill(Fill {
            client_order_id: client_id,
            order_seq: t.order_seq,
            fill_id: fill.trade_id.clone(),
            leg,
            side,
            price,
            size,
            fee: dec(&fill.commission).unwrap_or_default(),
            liquidity: if fill.liquidity_indicator == "TAKER" {
                Liquidity::Taker
            } else {
                Liquidity::Maker
            },
        });
        Some((when, CoinbaseBroker::received(event, when, raw)))
    }

    /// Our client order id for an exchange order: known, or a TP/SL child
    /// not seen yet (read, and linked by its `originating_order_id`).
    fn owner_of(&mut self, exchange_id: &str) -> Option<String> {
        if let Some(id) = self.by_exchange_id.get(exchange_id) {
            return Some(id.clone());
        }
        if self.foreign.contains(exchange_id) {
            return None;
        }
        let Ok((order, _)) = self.read_order(exchange_id) else {
            // Unread, not foreign: its fills are asked for again.
            self.fill_unread = true;
            return None;
        };
        // One of ours whose create's answer was lost (its exchange id not
        // learned yet), or a TP/SL child of one of ours.
        let by_client_id = self
            .orders
            .contains_key(&order.client_order_id)
            .then(|| order.client_order_id.clone());
        let by_parent = self
            .by_exchange_id
            .get(&order.originating_order_id)
            .cloned();
        let Some(owner) = by_client_id.or(by_parent) else {
            // Someone else's order (the account's own trading): not ours, never read again.
            self.foreign.insert(exchange_id.to_string());
            return None;
        };
        self.by_exchange_id
            .insert(exchange_id.to_string(), owner.clone());
        if let Some(t) = self.orders.get_mut(&owner) {
            t.child_id.get_or_insert(exchange_id.to_string());
        }
        Some(owner)
    }

    /// What changed in each of our orders' status: ends, children.
    fn poll_orders(&mut self, now_ms: UnixMs) -> Vec<(UnixMs, BrokerEvent)> {
        let ids: Vec<String> = self
            .orders
            .iter()
            .filter(|(id, t)| !t.finished() && !self.unknown.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        let mut events = Vec::new();
        for id in ids {
            events.extend(self.poll_order(&id, now_ms));
        }
        events
    }

    fn poll_order(&mut self, id: &str, now_ms: UnixMs) -> Vec<(UnixMs, BrokerEvent)> {
        let Some(t) = self.orders.get(id).cloned() else {
            return Vec::new();
        };
        let mut events = Vec::new();
        if let (Some(parent), false) = (t.exchange_id.clone(), t.done) {
            if let Ok((order, answer)) = self.read_order(&parent) {
                let when = answer.date_ms.unwrap_or(now_ms);
                if !order.attached_order_id.is_empty() {
                    if let Some(tracked) = self.orders.get_mut(id) {
                        tracked
                            .child_id
                            .get_or_insert(order.attached_order_id.clone());
                    }
                }
                if order.is_done() {
                    events.extend(self.order_done(id, &order, when, &answer.body));
                }
            }
        }
        if t.order.bracket.is_some() && !t.verified && !t.unconfirmed {
            let child = self.orders.get(id).and_then(|t| t.child_id.clone());
            let answers = match child {
                Some(_) => self.check_bracket(id),
                None => self.child_missing(id, Some(now_ms)),
            };
            events.extend(answers.into_iter().map(|a| (now_ms, a)));
        }
        if let Some(child) = t.child_id.clone().filter(|_| !t.child_done) {
            if let Ok((order, answer)) = self.read_order(&child) {
                if order.is_done() {
                    if let Some(tracked) = self.orders.get_mut(id) {
                        tracked.child_done = true;
                    }
                    let lost = self.protection_lost(id, &order, answer);
                    events.extend(lost.into_iter().map(|a| (now_ms, a)));
                }
            }
        }
        events
    }

    /// A verified TP/SL child ended without filling, and not by this broker's
    /// hand (someone cancelled it at the exchange): the position is bare.
    fn protection_lost(
        &mut self,
        id: &str,
        child: &model::Order,
        answer: Answer,
    ) -> Vec<BrokerEvent> {
        let Some(t) = self.orders.get(id) else {
            return Vec::new();
        };
        if child.status == "FILLED" || t.child_taken_down || !t.verified || t.filled.is_zero() {
            return Vec::new();
        }
        let reason = format!(
            "the take-profit/stop order {} is {} at the exchange while the position is open",
            child.order_id,
            child.status.to_lowercase()
        );
        let when = answer.date_ms.unwrap_or_default();
        self.unconfirmed(id, reason, Some((when, answer.body)))
    }

    /// The exchange finished an order: an end the journal must hear of
    /// unless the order filled whole (its fills say so).
    fn order_done(
        &mut self,
        id: &str,
        order: &model::Order,
        when: UnixMs,
        raw: &str,
    ) -> Vec<(UnixMs, BrokerEvent)> {
        let Some(t) = self.orders.get_mut(id) else {
            return Vec::new();
        };
        t.done = true;
        if order.status == "FILLED" || t.ended {
            return Vec::new();
        }
        t.ended = true;
        let why = [
            &order.cancel_message,
            &order.reject_message,
            &order.reject_reason,
        ]
        .into_iter()
        .find(|m| !m.is_empty())
        .cloned()
        .unwrap_or_default();
        let reason = format!(
            "{} at the exchange{}",
            order.status.to_lowercase(),
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        );
        let event = CoinbaseBroker::cancelled(t, reason);
        vec![(when, CoinbaseBroker::received(event, when, raw))]
    }
}

/// A body as `T`; the error names what was asked, never the body (which
/// could be anything).
fn parse<T: serde::de::DeserializeOwned>(body: &str, what: &str) -> Result<T, CallError> {
    serde_json::from_str(body).map_err(|e| CallError::Refused {
        method: "GET".into(),
        path: what.into(),
        status: 200,
        detail: format!("the answer is not the expected JSON ({e})"),
    })
}

impl Broker for CoinbaseBroker {
    fn place(&mut self, order_seq: Seq, order: &OrderPlaced) -> Vec<BrokerEvent> {
        // An unknown create of this symbol is settled first – this very
        // order's too (a restart handing over an order placed before a crash).
        // Settling it answers it (found, or submitted again), so it is not
        // sent a second time here: a second answer for one order is one the
        // journal cannot take (a restart that handed over an exit did, and
        // every later start failed at the same step).
        let was_unknown = self.unknown.contains(&order.client_order_id);
        let mut events = self.resolve_unknown(Some(&order.product_id));
        let settled = self
            .orders
            .get(&order.client_order_id)
            .is_some_and(|t| t.exchange_id.is_some());
        if was_unknown || settled || self.unknown.contains(&order.client_order_id) {
            return events;
        }
        events.extend(self.submit(order_seq, order));
        events
    }

    fn open_orders(&self, prefix: &str) -> Vec<String> {
        // As the exchange listed them at the last `refresh_open_orders`
        // (before each reconciliation). An order whose create went
        // unanswered is left out: handed over again, it goes to `place`,
        // which looks it up first.
        self.exchange_open
            .iter()
            .filter(|id| id.starts_with(prefix) && !self.unknown.contains(*id))
            .cloned()
            .collect()
    }

    fn existing(&self, _order_seq: Seq, _order: &OrderPlaced) -> Vec<BrokerEvent> {
        // Never reached for an order without journaled answers: those are
        // `unknown` and never listed by `open_orders`; `place` settles them
        // (a repeated client order id creates nothing at Coinbase).
        Vec::new()
    }

    fn position(&self, symbol: &str) -> Decimal {
        let ours = self.positions.get(symbol).copied().unwrap_or_default();
        let base = self
            .products
            .get(symbol)
            .map(|p| p.base_currency.clone())
            .unwrap_or_default();
        match self.balances.get(&base) {
            // The account may hold more than this run bought (the user's own
            // coins): only what it lacks of ours is a disagreement.
            Some((available, hold)) => ours.min(available + hold),
            None => ours,
        }
    }

    fn on_candle(&mut self, candle: &Candle) -> Vec<BrokerEvent> {
        // What the exchange did for this symbol's orders up to the bar's
        // close is answered in the candle's step, before its decision (as
        // the simulated exchange answers); other symbols' answers wait for
        // their own candle or the next poll. A fill of a later bar that has
        // closed waits for that bar's candle (`poll` holds it).
        self.stepped_ms
            .insert(candle.symbol.clone(), candle.close_ms());
        let (mut ours, others): (Vec<BrokerEvent>, Vec<BrokerEvent>) = self
            .poll()
            .into_iter()
            .partition(|answer| self.symbol_of(answer.event()) == Some(candle.symbol.as_str()));
        self.queued.extend(others);
        // Then an entry still working when its time to live is up is cancelled.
        let expired: Vec<String> = self
            .orders
            .iter_mut()
            .filter(|(_, t)| {
                t.is_entry()
                    && t.order.product_id == candle.symbol
                    && !t.done
                    && t.filled.is_zero()
                    && t.exchange_id.is_some()
            })
            .filter_map(|(id, t)| {
                t.bars_left = t.bars_left.saturating_sub(1);
                (t.bars_left == 0).then(|| id.clone())
            })
            .collect();
        for id in expired {
            ours.extend(self.cancel(&id, "time to live expired"));
        }
        ours
    }

    fn cancel(&mut self, client_order_id: &str, reason: &str) -> Vec<BrokerEvent> {
        let Some(t) = self.orders.get(client_order_id).cloned() else {
            return Vec::new();
        };
        if self.settings.mode == Mode::Preview || t.ended {
            return Vec::new();
        }
        // The entry alone: cancelling it takes its TP/SL child with it. Its
        // child is never sent along: when the entry has filled unseen (its
        // fills not read yet – a poll that failed), the entry's cancel fails,
        // but the child's would succeed and leave the position unprotected
        // without the journal knowing (a time-to-live cancel did, while the
        // fills and order reads were rate limited).
        let Some(parent) = t.exchange_id.clone() else {
            return Vec::new();
        };
        let Ok((cancelled, answer)) = self.batch_cancel(std::slice::from_ref(&parent)) else {
            return Vec::new();
        };
        if !cancelled.contains(&parent) {
            self.notes.push(format!(
                "{client_order_id}: not cancelled ({reason}): the exchange did not (it has filled or ended; a poll says which)"
            ));
            return Vec::new();
        }
        // Filled in part just before the cancel, and those fills not read
        // yet: the cancel is answered by the next poll, after the fills (an
        // end journaled first would leave them no order to belong to).
        let filled_unseen = self
            .read_order(&parent)
            .ok()
            .and_then(|(order, _)| dec(&order.filled_size))
            .is_none_or(|filled| filled > t.filled);
        if filled_unseen {
            return Vec::new();
        }
        // The entry is gone: a child the exchange left behind goes too
        // (best effort; Coinbase takes it down with its parent).
        if let Some(child) = t.child_id.clone().filter(|_| !t.child_done) {
            let _ = self.batch_cancel(&[child]);
        }
        let tracked = self.orders.get_mut(client_order_id).expect("present above");
        tracked.ended = true;
        tracked.done = true;
        tracked.child_done = true;
        let event = CoinbaseBroker::cancelled(tracked, reason.to_string());
        vec![CoinbaseBroker::received(
            event,
            answer.date_ms.unwrap_or_default(),
            &answer.body,
        )]
    }

    fn poll(&mut self) -> Vec<BrokerEvent> {
        self.polls += 1;
        if self.polls.is_multiple_of(PRODUCTS_REFRESH_POLLS) {
            self.refresh_products();
        }
        let mut events: Vec<(UnixMs, BrokerEvent)> = self
            .resolve_unknown(None)
            .into_iter()
            .map(|e| (0, e))
            .collect();
        events.extend(std::mem::take(&mut self.queued).into_iter().map(|e| (0, e)));
        let fills = self.poll_fills();
        let now_ms = fills.last().map(|(ms, _)| *ms);
        if let Some(newest) = now_ms {
            // The next poll starts a little before the newest fill: fills
            // with equal times may arrive in two polls (repeats are dropped).
            let next = self.fills_since_ms.unwrap_or(newest).max(newest - 60_000);
            // Not past a fill whose order could not be read this time.
            let next = self.oldest_unread_ms.map_or(next, |u| next.min(u - 60_000));
            self.fills_since_ms = Some(next);
        }
        events.extend(fills);
        // Read after the fills: no fill answered is later than this.
        let clock = self.exchange_now().unwrap_or(now_ms.unwrap_or_default());
        self.clock_ms = self.clock_ms.max(Some(clock));
        events.extend(self.poll_orders(clock));
        events.append(&mut self.held);
        let (held, mut events): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|(_, e)| self.belongs_to_a_coming_candle(e, clock));
        self.held = held;
        // In the exchange's time order, so a crash part way loses only the newest.
        events.sort_by_key(|(ms, _)| *ms);
        events.into_iter().map(|(_, e)| e).collect()
    }

    fn answers_since(&mut self, since_ms: Option<UnixMs>) -> Vec<BrokerEvent> {
        if since_ms.is_some() {
            self.fills_since_ms = since_ms;
        }
        self.poll()
    }

    fn answers_reproducible(&self) -> bool {
        false
    }

    fn clock_ms(&self) -> Option<UnixMs> {
        self.clock_ms
    }

    fn account_note(&self, symbol: &str) -> Option<String> {
        let base = &self.products.get(symbol)?.base_currency;
        let balance = |currency: &str| {
            let (available, hold) = self.balances.get(currency).copied().unwrap_or_default();
            format!(
                "{currency} {} (available {available}, hold {hold})",
                available + hold
            )
        };
        let mut note = format!("account {}", balance(base));
        if let Some((quote, capital)) = &self.capital {
            note.push_str(&format!(
                ", {}; the run trades with {capital} {quote}",
                balance(quote)
            ));
        }
        Some(note)
    }
}

impl crate::trader::Venue for CoinbaseBroker {
    fn fatal(&self) -> Option<String> {
        self.fatal.clone()
    }

    fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Balances and open orders read afresh; not trusted while fills are
    /// arriving (a fill made between the last poll and the balance read
    /// would look like a disagreement): then the next pass reconciles.
    fn refresh_view(&mut self) -> bool {
        // Held fills are in the account's balances, not yet in the journal.
        if !self.held.is_empty() {
            return false;
        }
        if let Err(error) = self.refresh_balances() {
            self.notes
                .push(format!("cannot read the account's balances: {error}"));
            return false;
        }
        if let Err(error) = self.refresh_open_orders() {
            self.notes
                .push(format!("cannot read the open orders: {error}"));
            return false;
        }
        !self.fills_pending()
    }
}

impl CoinbaseBroker {
    /// The symbol of the order an answer is about.
    fn symbol_of(&self, event: &Event) -> Option<&str> {
        let id = match event {
            Event::OrderAcknowledged(e) => &e.client_order_id,
            Event::OrderRejected(e) => &e.client_order_id,
            Event::OrderCancelled(e) => &e.client_order_id,
            Event::BracketVerified(e) => &e.client_order_id,
            Event::BracketUnconfirmed(e) => &e.client_order_id,
            Event::Fill(e) => &e.client_order_id,
            _ => return None,
        };
        self.orders.get(id).map(|t| t.order.product_id.as_str())
    }

    /// Whether a fill belongs to a candle the journal has yet to step: its
    /// bar has closed by the exchange's clock (`clock_ms`), but its symbol's
    /// newest stepped candle closed before the fill. It is answered in that
    /// candle's step, before the candle's decision – as an uninterrupted
    /// trader answers it, and as the simulated exchange does – not as a step
    /// of its own before the candle: a restart found the fills of the bar
    /// it missed and journaled them ahead of that bar's candle, so the
    /// journal (the trade's entry time, the engine's memory of the bar) was
    /// not the one an uninterrupted run writes. Only for the newest closed
    /// bar: if its candle has not come one bar later (no market data), the
    /// fill is answered on its own.
    fn belongs_to_a_coming_candle(&self, answer: &BrokerEvent, clock_ms: UnixMs) -> bool {
        let BrokerEvent::Received {
            event: Event::Fill(fill),
            broker_time_ms,
            ..
        } = answer
        else {
            return false;
        };
        let granularity = self.settings.granularity_ms;
        let symbol = self
            .orders
            .get(&fill.client_order_id)
            .map(|t| t.order.product_id.as_str());
        let Some(stepped) = symbol.and_then(|s| self.stepped_ms.get(s)) else {
            return false;
        };
        if granularity <= 0 || broker_time_ms < stepped {
            return false;
        }
        let bar_end = broker_time_ms - broker_time_ms.rem_euclid(granularity) + granularity;
        bar_end <= clock_ms && clock_ms < bar_end + granularity
    }

    /// The quote currency and capital the run trades with.
    pub fn set_capital(&mut self, quote: &str, capital: Decimal) {
        self.capital = Some((quote.to_string(), capital));
    }

    /// Whether the exchange lists a fill of ours the last poll did not answer.
    fn fills_pending(&mut self) -> bool {
        let since = self.fills_since_ms.map(rfc3339).unwrap_or_default();
        let target = format!(
            "/api/v3/brokerage/orders/historical/fills?start_sequence_timestamp={since}&limit={PAGE_LIMIT}"
        );
        let Ok(answer) = self.call_get(&target) else {
            return true;
        };
        let Ok(page) = parse::<model::FillsPage>(&answer.body, &target) else {
            return true;
        };
        page.fills.iter().any(|f| {
            !self.fills_seen.contains(&f.trade_id) && self.by_exchange_id.contains_key(&f.order_id)
        })
    }

    /// The exchange's clock (`GET /time`), for the protection wait.
    pub fn exchange_now(&mut self) -> Option<UnixMs> {
        let answer = self.call_get("/api/v3/brokerage/time").ok()?;
        let value: serde_json::Value = serde_json::from_str(&answer.body).ok()?;
        value.get("epochMillis").and_then(|v| {
            v.as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| v.as_i64())
        })
    }
}
