//! The fake exchange's order book: orders, fills, balances and holds, matched
//! against OHLC bars. Pure – no I/O, no clock, no randomness: the caller owns
//! the market clock and hands in the bars that close (`Exchange::advance`),
//! so every rule below is a unit test away.
//!
//! The rules (README.md beside this file says which are Coinbase's documented
//! behaviour and which are assumed):
//! - The current price is the open of the bar containing the clock.
//! - Market IOC fills at once at the current price, moved against the taker by
//!   the slippage and rounded to the price increment the worse way; taker fee.
//! - A limit BUY fills when a bar's low reaches the limit, at the limit or at
//!   the open if the bar opens below it (maker). A limit SELL mirrors it. With
//!   a partial-fill fault it fills in parts, one part per bar that reaches it.
//! - A bracket child (one SELL order, `trigger_bracket_gtc`) works once its
//!   parent is completely filled. In that bar only the stop is checked (the
//!   bar's low may have come after the fill); afterwards the stop first, then
//!   the take-profit. The stop triggers at or below its trigger and becomes a
//!   stop-limit 5% below it: it fills at min(open, trigger) less slippage
//!   (taker) but never below the stop-limit; a bar opening below the
//!   stop-limit leaves it resting as a limit SELL, filled later at the limit
//!   or the open if higher (maker). When one leg fills the other is gone.
//! - Fees are notional × bps / 10,000 rounded to 8 decimals (banker's
//!   rounding, as anx's cost model). Balances move on fills; holds are derived
//!   from the open orders, so they are released the moment an order ends.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
#[cfg(test)]
use std::collections::BTreeSet;

/// Basis points in one.
pub const BPS: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);
/// Decimal places kept in fees (anx's `COST_DP`).
pub const FEE_DP: u32 = 8;
/// The largest price taken: far beyond any market, small enough that every
/// product of price, size and fee rate fits a Decimal.
pub const PRICE_MAX: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);
/// How far below its trigger a triggered SELL stop's limit is placed
/// (Coinbase: "a stop limit order is automatically placed with a limit price
/// … 5% lower for SELLS").
pub const STOP_LIMIT_BUFFER: Decimal = Decimal::from_parts(5, 0, 0, false, 2);

/// One OHLCV bar of the fake's own granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bar {
    pub open_ms: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Pending,
    Open,
    Filled,
    Cancelled,
    Expired,
    Failed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Open => "OPEN",
            Status::Filled => "FILLED",
            Status::Cancelled => "CANCELLED",
            Status::Expired => "EXPIRED",
            Status::Failed => "FAILED",
        }
    }

    /// The status named `name` (`OPEN` …), for list filters.
    pub fn parse(name: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Open,
            Status::Filled,
            Status::Cancelled,
            Status::Expired,
            Status::Failed,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Liquidity {
    Maker,
    Taker,
}

/// When a market order fills.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MarketFills {
    /// At once, at the open of the bar holding the clock (Coinbase's IOC:
    /// filled or cancelled at once).
    #[default]
    Immediate,
    /// At the same price, but only as that bar closes: when anx's simulated
    /// exchange learns of it. Not Coinbase's behaviour – a mode for parity
    /// tests of the live trader against `anx replay run`.
    AtBarClose,
}

/// When a bracket's child order becomes visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildAppears {
    /// With the parent, OPEN and STOP_PENDING, working only once the parent filled.
    AtOnce,
    /// Created when the parent has filled.
    OnFill,
}

/// Fees and slippage, in basis points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fees {
    pub maker_fee_bps: Decimal,
    pub taker_fee_bps: Decimal,
    pub slippage_bps: Decimal,
}

impl Fees {
    pub fn fee(&self, notional: Decimal, liquidity: Liquidity) -> Decimal {
        let bps = match liquidity {
            Liquidity::Maker => self.maker_fee_bps,
            Liquidity::Taker => self.taker_fee_bps,
        };
        (notional * bps / BPS).round_dp(FEE_DP)
    }

    /// Where a taker fills against `reference`: moved against it by the
    /// slippage, on the increment, rounded the worse way.
    pub fn taker_price(&self, reference: Decimal, side: Side, increment: Decimal) -> Decimal {
        let s = self.slippage_bps / BPS;
        match side {
            Side::Buy => round_up(reference * (Decimal::ONE + s), increment),
            Side::Sell => round_down(reference * (Decimal::ONE - s), increment),
        }
    }
}

/// The largest multiple of `increment` not above `value`.
pub fn round_down(value: Decimal, increment: Decimal) -> Decimal {
    if increment <= Decimal::ZERO {
        return value;
    }
    (value / increment).floor() * increment
}

/// The smallest multiple of `increment` not below `value`.
pub fn round_up(value: Decimal, increment: Decimal) -> Decimal {
    if increment <= Decimal::ZERO {
        return value;
    }
    (value / increment).ceil() * increment
}

fn on_increment(value: Decimal, increment: Decimal) -> bool {
    increment <= Decimal::ZERO || (value % increment).is_zero()
}

/// A product's trading state, settable through the control API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    pub trading_disabled: bool,
    pub cancel_only: bool,
    pub limit_only: bool,
    pub post_only: bool,
}

/// A product's increments and limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRules {
    pub product_id: String,
    pub base_currency: String,
    pub quote_currency: String,
    pub base_increment: Decimal,
    pub base_min_size: Decimal,
    pub base_max_size: Decimal,
    pub quote_increment: Decimal,
    pub price_increment: Decimal,
    pub quote_min_size: Decimal,
    pub quote_max_size: Decimal,
    pub flags: Flags,
}

impl ProductRules {
    /// The rules of `product_id` (`BASE-QUOTE`); None if it is not of that form.
    pub fn for_product(product_id: &str) -> Option<ProductRules> {
        let (base, quote) = product_id.split_once('-')?;
        if base.is_empty() || quote.is_empty() || quote.contains('-') {
            return None;
        }
        // BTC-USD's from the live sample; SOL-USD trades in thousandths; the
        // maximum sizes other than BTC's are assumed.
        let (base_increment, base_max_size) = match base {
            "BTC" => (Decimal::new(1, 8), Decimal::from(3400)),
            "ETH" => (Decimal::new(1, 8), Decimal::from(50_000)),
            "SOL" => (Decimal::new(1, 3), Decimal::from(1_000_000)),
            _ => (Decimal::new(1, 8), Decimal::from(1_000_000)),
        };
        Some(ProductRules {
            product_id: product_id.to_string(),
            base_currency: base.to_string(),
            quote_currency: quote.to_string(),
            base_increment,
            base_min_size: base_increment,
            base_max_size,
            quote_increment: Decimal::new(1, 2),
            price_increment: Decimal::new(1, 2),
            quote_min_size: Decimal::ONE,
            quote_max_size: Decimal::from(150_000_000),
            flags: Flags::default(),
        })
    }
}

/// What kind of order, with its prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderKind {
    Limit {
        limit_price: Decimal,
        post_only: bool,
    },
    Market,
    /// A bracket's child: take-profit limit and stop trigger, and the limit of
    /// the stop-limit it becomes when triggered.
    Bracket {
        limit_price: Decimal,
        stop_trigger_price: Decimal,
        stop_limit_price: Decimal,
    },
}

/// The take-profit and stop of an attached bracket, as requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BracketPrices {
    pub limit_price: Decimal,
    pub stop_trigger_price: Decimal,
}

/// A stop order's trigger state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trigger {
    /// Not a stop order (`INVALID_ORDER_TYPE`).
    NotStop,
    Pending,
    Triggered,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::NotStop => "INVALID_ORDER_TYPE",
            Trigger::Pending => "STOP_PENDING",
            Trigger::Triggered => "STOP_TRIGGERED",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub client_order_id: String,
    pub product_id: String,
    pub side: Side,
    pub kind: OrderKind,
    pub base_size: Decimal,
    pub status: Status,
    pub created_ms: i64,
    pub filled_size: Decimal,
    pub filled_value: Decimal,
    pub total_fees: Decimal,
    pub number_of_fills: u32,
    pub last_fill_ms: Option<i64>,
    pub trigger: Trigger,
    pub originating_order_id: String,
    pub attached_order_id: String,
    /// The bracket requested with this (parent) order.
    pub attached: Option<BracketPrices>,
    /// A child: when it began to work (its parent's last fill), and the price
    /// its first bar's stretch starts from (that fill's price).
    pub active_from_ms: Option<i64>,
    pub active_from_price: Option<Decimal>,
    /// A partial-fill fault: the number of parts it fills in (0 or 1: whole).
    pub parts: u32,
    /// A withhold-bracket fault: its child never appears.
    pub withhold_child: bool,
    /// Made through the control API (`/fake/trade`), not by the client.
    pub manual: bool,
}

impl Order {
    pub fn remaining(&self) -> Decimal {
        self.base_size - self.filled_size
    }

    pub fn average_price(&self) -> Decimal {
        if self.filled_size.is_zero() {
            Decimal::ZERO
        } else {
            self.filled_value / self.filled_size
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    /// 1, 2, …: the order fills were made in (the fills cursor).
    pub seq: u64,
    pub entry_id: String,
    pub trade_id: String,
    pub order_id: String,
    pub product_id: String,
    pub side: Side,
    pub price: Decimal,
    pub size: Decimal,
    pub commission: Decimal,
    pub liquidity: Liquidity,
    /// When it traded (inside its bar), and when the fake learned of it.
    pub trade_ms: i64,
    pub sequence_ms: i64,
}

/// An order to create, as parsed from a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrder {
    pub client_order_id: String,
    pub product_id: String,
    pub side: Side,
    pub config: NewConfig,
    pub bracket: Option<BracketPrices>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewConfig {
    Limit {
        base_size: Decimal,
        limit_price: Decimal,
        post_only: bool,
    },
    Market {
        base_size: Decimal,
    },
}

impl NewConfig {
    pub fn base_size(&self) -> Decimal {
        match *self {
            NewConfig::Limit { base_size, .. } | NewConfig::Market { base_size } => base_size,
        }
    }
}

/// Order-level faults armed for the order being created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrderFaults {
    pub withhold_child: bool,
    pub parts: u32,
}

/// Why an order is refused (`success:false`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    InsufficientFund,
    InvalidLimitPricePostOnly,
    InvalidBracketPrices,
    AttachedOrderSizeMustBeNil,
    UnsupportedOrderConfiguration,
    EmptyOrderSize,
    InvalidProductId,
    InvalidSizePrecision,
    InvalidPricePrecision,
    BaseSizeTooSmall,
    BaseSizeTooLarge,
    QuoteSizeTooSmall,
    InvalidLimitPrice,
    OrderEntryDisabled,
    NoLiquidity,
}

impl Reason {
    /// `(error, preview_failure_reason, message)`. Only INSUFFICIENT_FUND's
    /// are from a captured response; the rest follow its pattern (README).
    pub fn codes(self) -> (&'static str, &'static str, &'static str) {
        REASONS.iter().find(|(reason, ..)| *reason == self).map_or(
            (
                "UNKNOWN_FAILURE_REASON",
                "UNKNOWN_PREVIEW_FAILURE_REASON",
                "",
            ),
            |r| (r.1, r.2, r.3),
        )
    }
}

/// Each refusal's error, preview_failure_reason and message.
const REASONS: [(Reason, &str, &str, &str); 15] = [
    (
        Reason::InsufficientFund,
        "INSUFFICIENT_FUND",
        "PREVIEW_INSUFFICIENT_FUND",
        "Insufficient balance in source account",
    ),
    (
        Reason::InvalidLimitPricePostOnly,
        "INVALID_LIMIT_PRICE_POST_ONLY",
        "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY",
        "Invalid limit price for post only order",
    ),
    (
        Reason::InvalidBracketPrices,
        "INVALID_BRACKET_PRICES",
        "PREVIEW_INVALID_BRACKET_PRICES",
        "Invalid bracket prices",
    ),
    (
        Reason::AttachedOrderSizeMustBeNil,
        "ATTACHED_ORDER_SIZE_MUST_BE_NIL",
        "PREVIEW_ATTACHED_ORDER_SIZE_MUST_BE_NIL",
        "Attached order size must be nil",
    ),
    (
        Reason::UnsupportedOrderConfiguration,
        "UNSUPPORTED_ORDER_CONFIGURATION",
        "PREVIEW_UNSUPPORTED_ORDER_CONFIGURATION",
        "Unsupported order configuration",
    ),
    // The docs' create-order example: error, message and details verbatim.
    (
        Reason::EmptyOrderSize,
        "UNKNOWN_FAILURE_REASON",
        "UNKNOWN_PREVIEW_FAILURE_REASON",
        "The order configuration was invalid",
    ),
    (
        Reason::InvalidProductId,
        "INVALID_PRODUCT_ID",
        "PREVIEW_INVALID_PRODUCT_ID",
        "Invalid product_id",
    ),
    (
        Reason::InvalidSizePrecision,
        "INVALID_SIZE_PRECISION",
        "PREVIEW_INVALID_SIZE_PRECISION",
        "Invalid order size precision",
    ),
    (
        Reason::InvalidPricePrecision,
        "INVALID_PRICE_PRECISION",
        "PREVIEW_INVALID_PRICE_PRECISION",
        "Invalid price precision",
    ),
    (
        Reason::BaseSizeTooSmall,
        "UNKNOWN_FAILURE_REASON",
        "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL",
        "Order size is too small",
    ),
    (
        Reason::BaseSizeTooLarge,
        "UNKNOWN_FAILURE_REASON",
        "PREVIEW_INVALID_BASE_SIZE_TOO_LARGE",
        "Order size is too large",
    ),
    (
        Reason::QuoteSizeTooSmall,
        "UNKNOWN_FAILURE_REASON",
        "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL",
        "Order value is too small",
    ),
    (
        Reason::InvalidLimitPrice,
        "INVALID_LIMIT_PRICE",
        "PREVIEW_INVALID_LIMIT_PRICE",
        "Invalid limit price",
    ),
    (
        Reason::OrderEntryDisabled,
        "ORDER_ENTRY_DISABLED",
        "PREVIEW_ORDER_ENTRY_DISABLED",
        "Order entry is disabled for this product",
    ),
    (
        Reason::NoLiquidity,
        "INVALID_NO_LIQUIDITY",
        "PREVIEW_INVALID_NO_LIQUIDITY",
        "No market data to execute against",
    ),
];

/// A refusal with its `error_details`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub details: String,
}

pub fn reject<T>(reason: Reason, details: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection {
        reason,
        details: details.into(),
    })
}

/// What an accepted order would trade at: for the checks and the preview.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    /// The fill price of a market order, the limit of a limit order.
    pub price: Decimal,
    pub value: Decimal,
    pub commission: Decimal,
}

/// An order created: its id and its child's, if the child exists already.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub order_id: String,
    pub attached_order_id: Option<String>,
}

/// Why a cancel failed (`failure_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelFailure {
    Unknown,
    FullyFilled,
    Duplicate,
}

impl CancelFailure {
    pub fn code(self) -> &'static str {
        match self {
            CancelFailure::Unknown => "UNKNOWN_CANCEL_ORDER",
            CancelFailure::FullyFilled => "ORDER_IS_FULLY_FILLED",
            CancelFailure::Duplicate => "DUPLICATE_CANCEL_REQUEST",
        }
    }
}

/// The clock may not go backwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backwards {
    pub now_ms: i64,
    pub to_ms: i64,
}

/// The whole account at the fake: what is persisted between restarts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    pub fees: Fees,
    pub child_appears: ChildAppears,
    #[serde(default)]
    pub market_fills: MarketFills,
    pub granularity_ms: i64,
    pub products: BTreeMap<String, ProductRules>,
    /// In creation order.
    pub orders: Vec<Order>,
    /// In the order they were made.
    pub fills: Vec<Fill>,
    /// Total per currency (available + hold).
    pub balances: BTreeMap<String, Decimal>,
    /// The market clock.
    pub now_ms: i64,
    pub id_seed: String,
    pub ids_issued: u64,
    pub user_id: String,
    pub portfolio_id: String,
}

/// An id shaped like a UUID (version 4 nibble) from `seed` and `n`.
pub fn uuid_from(seed: &str, n: u64) -> String {
    let hash = blake3::hash(format!("fake-coinbase\0{seed}\0{n}").as_bytes());
    let hex = hash.to_hex();
    let h = hex.as_str();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

impl Exchange {
    /// A fresh account holding `usd` of USD (and nothing of each base).
    pub fn new(
        id_seed: &str,
        fees: Fees,
        child_appears: ChildAppears,
        granularity_ms: i64,
        products: Vec<ProductRules>,
        usd: Decimal,
        now_ms: i64,
    ) -> Exchange {
        let mut balances = BTreeMap::new();
        balances.insert("USD".to_string(), usd);
        for p in &products {
            balances.entry(p.base_currency.clone()).or_default();
            balances.entry(p.quote_currency.clone()).or_default();
        }
        Exchange {
            fees,
            child_appears,
            market_fills: MarketFills::Immediate,
            granularity_ms,
            products: products
                .into_iter()
                .map(|p| (p.product_id.clone(), p))
                .collect(),
            orders: Vec::new(),
            fills: Vec::new(),
            balances,
            now_ms,
            id_seed: id_seed.to_string(),
            ids_issued: 0,
            user_id: uuid_from(id_seed, u64::MAX),
            portfolio_id: uuid_from(id_seed, u64::MAX - 1),
        }
    }

    pub fn next_id(&mut self) -> String {
        self.ids_issued += 1;
        uuid_from(&self.id_seed, self.ids_issued)
    }

    pub fn order(&self, order_id: &str) -> Option<&Order> {
        self.orders.iter().find(|o| o.order_id == order_id)
    }

    fn index_of(&self, order_id: &str) -> Option<usize> {
        self.orders.iter().position(|o| o.order_id == order_id)
    }

    /// The order the client created with `client_order_id` (children have none).
    pub fn by_client_order_id(&self, client_order_id: &str) -> Option<&Order> {
        if client_order_id.is_empty() {
            return None;
        }
        self.orders
            .iter()
            .find(|o| o.client_order_id == client_order_id)
    }

    /// What an open order holds: (currency, amount).
    pub fn hold_of(&self, o: &Order) -> Option<(String, Decimal)> {
        if o.status != Status::Open {
            return None;
        }
        let rules = self.products.get(&o.product_id)?;
        match (o.kind, o.side) {
            (OrderKind::Limit { limit_price, .. }, Side::Buy) => {
                let notional = o.remaining() * limit_price;
                // The fee estimate at the taker rate: the larger of the two.
                let fee = notional * self.fees.taker_fee_bps / BPS;
                Some((rules.quote_currency.clone(), notional + fee))
            }
            (OrderKind::Limit { .. }, Side::Sell) => {
                Some((rules.base_currency.clone(), o.remaining()))
            }
            // A child holds its base only once it works (the parent filled).
            (OrderKind::Bracket { .. }, _) if o.active_from_ms.is_some() => {
                Some((rules.base_currency.clone(), o.remaining()))
            }
            _ => None,
        }
    }

    /// Holds per currency.
    pub fn holds(&self) -> BTreeMap<String, Decimal> {
        let mut holds = BTreeMap::new();
        for (currency, amount) in self.orders.iter().filter_map(|o| self.hold_of(o)) {
            *holds.entry(currency).or_insert(Decimal::ZERO) += amount;
        }
        holds
    }

    pub fn available(&self, currency: &str) -> Decimal {
        let total = self.balances.get(currency).copied().unwrap_or_default();
        total - self.holds().get(currency).copied().unwrap_or_default()
    }

    /// Checks an order as create would, without creating it: the quote it
    /// would trade at, or why it is refused. `price` is the current price.
    pub fn check(&self, new: &NewOrder, price: Option<Decimal>) -> Result<Quote, Rejection> {
        let Some(rules) = self.products.get(&new.product_id) else {
            return reject(
                Reason::InvalidProductId,
                format!("unknown product {}", new.product_id),
            );
        };
        check_flags(rules, new)?;
        check_size(rules, new.config.base_size())?;
        check_prices(rules, new)?;
        let quote = self.quote(rules, new, price)?;
        check_bracket(new, quote.price)?;
        check_post_only(new, price)?;
        if new.config.base_size() * quote.price < rules.quote_min_size {
            return reject(
                Reason::QuoteSizeTooSmall,
                format!("order value below quote_min_size {}", rules.quote_min_size),
            );
        }
        self.check_funds(rules, new, &quote)?;
        Ok(quote)
    }

    fn quote(
        &self,
        rules: &ProductRules,
        new: &NewOrder,
        price: Option<Decimal>,
    ) -> Result<Quote, Rejection> {
        let (price, liquidity) = match new.config {
            NewConfig::Limit {
                limit_price,
                post_only,
                ..
            } => (
                limit_price,
                if post_only {
                    Liquidity::Maker
                } else {
                    Liquidity::Taker
                },
            ),
            NewConfig::Market { .. } => {
                let Some(current) = price else {
                    return reject(Reason::NoLiquidity, "no bar at the market clock");
                };
                let fill = self
                    .fees
                    .taker_price(current, new.side, rules.price_increment);
                (fill, Liquidity::Taker)
            }
        };
        let value = new.config.base_size() * price;
        Ok(Quote {
            price,
            value,
            commission: self.fees.fee(value, liquidity),
        })
    }

    fn check_funds(
        &self,
        rules: &ProductRules,
        new: &NewOrder,
        quote: &Quote,
    ) -> Result<(), Rejection> {
        let enough = match (new.side, new.config) {
            (Side::Buy, NewConfig::Market { .. }) => {
                let fee = self.fees.fee(quote.value, Liquidity::Taker);
                self.available(&rules.quote_currency) >= quote.value + fee
            }
            (Side::Buy, NewConfig::Limit { .. }) => {
                let fee = quote.value * self.fees.taker_fee_bps / BPS;
                self.available(&rules.quote_currency) >= quote.value + fee
            }
            (Side::Sell, _) => self.available(&rules.base_currency) >= new.config.base_size(),
        };
        if enough {
            Ok(())
        } else {
            reject(Reason::InsufficientFund, "")
        }
    }

    /// Creates an order the checks accept; a repeated client order id
    /// returns the order that has it. A market order fills at once.
    pub fn create(
        &mut self,
        new: &NewOrder,
        price: Option<Decimal>,
        faults: OrderFaults,
        manual: bool,
    ) -> Result<Created, Rejection> {
        if let Some(existing) = self.by_client_order_id(&new.client_order_id) {
            // Documented: a repeated client_order_id creates nothing and
            // answers with the order that has it.
            return Ok(Created {
                order_id: existing.order_id.clone(),
                attached_order_id: (!existing.attached_order_id.is_empty())
                    .then(|| existing.attached_order_id.clone()),
            });
        }
        let quote = self.check(new, price)?;
        let order_id = self.next_id();
        let kind = match new.config {
            NewConfig::Limit {
                limit_price,
                post_only,
                ..
            } => OrderKind::Limit {
                limit_price,
                post_only,
            },
            NewConfig::Market { .. } => OrderKind::Market,
        };
        self.orders.push(Order {
            order_id: order_id.clone(),
            client_order_id: new.client_order_id.clone(),
            product_id: new.product_id.clone(),
            side: new.side,
            kind,
            base_size: new.config.base_size(),
            status: Status::Open,
            created_ms: self.now_ms,
            filled_size: Decimal::ZERO,
            filled_value: Decimal::ZERO,
            total_fees: Decimal::ZERO,
            number_of_fills: 0,
            last_fill_ms: None,
            trigger: Trigger::NotStop,
            originating_order_id: String::new(),
            attached_order_id: String::new(),
            attached: new.bracket,
            active_from_ms: None,
            active_from_price: None,
            parts: faults.parts,
            withhold_child: faults.withhold_child,
            manual,
        });
        let index = self.orders.len() - 1;
        let bracketed = new.bracket.is_some() && !faults.withhold_child;
        if bracketed && self.child_appears == ChildAppears::AtOnce {
            self.spawn_child(index, self.now_ms);
        }
        if let NewConfig::Market { base_size } = new.config {
            let now = self.now_ms;
            match self.market_fills {
                MarketFills::Immediate => {
                    self.fill(index, quote.price, base_size, Liquidity::Taker, now, now);
                    self.after_fill(index, now, quote.price);
                }
                // The price is fixed now; the fill waits for the bar's close.
                MarketFills::AtBarClose => self.orders[index].active_from_price = Some(quote.price),
            }
        }
        let attached = &self.orders[index].attached_order_id;
        Ok(Created {
            order_id,
            attached_order_id: (!attached.is_empty()).then(|| attached.clone()),
        })
    }

    /// Creates the child of the parent at `parent` (not yet working).
    fn spawn_child(&mut self, parent: usize, created_ms: i64) {
        let p = &self.orders[parent];
        let Some(b) = p.attached else { return };
        let increment = self
            .products
            .get(&p.product_id)
            .map_or(Decimal::ZERO, |r| r.price_increment);
        let stop_limit_price = round_down(
            b.stop_trigger_price * (Decimal::ONE - STOP_LIMIT_BUFFER),
            increment,
        );
        let child = Order {
            order_id: String::new(),
            client_order_id: String::new(),
            product_id: p.product_id.clone(),
            side: Side::Sell,
            kind: OrderKind::Bracket {
                limit_price: b.limit_price,
                stop_trigger_price: b.stop_trigger_price,
                stop_limit_price,
            },
            base_size: p.base_size,
            status: Status::Open,
            created_ms,
            filled_size: Decimal::ZERO,
            filled_value: Decimal::ZERO,
            total_fees: Decimal::ZERO,
            number_of_fills: 0,
            last_fill_ms: None,
            trigger: Trigger::Pending,
            originating_order_id: p.order_id.clone(),
            attached_order_id: String::new(),
            attached: None,
            active_from_ms: None,
            active_from_price: None,
            parts: 0,
            withhold_child: false,
            manual: false,
        };
        let child_id = self.next_id();
        self.orders[parent].attached_order_id = child_id.clone();
        self.orders.push(Order {
            order_id: child_id,
            ..child
        });
    }

    /// After a fill of the order at `index`: a completely filled parent's
    /// child starts to work (created now if it appears on fill).
    fn after_fill(&mut self, index: usize, at_ms: i64, price: Decimal) {
        let parent = &self.orders[index];
        if parent.status != Status::Filled || parent.attached.is_none() || parent.withhold_child {
            return;
        }
        if parent.attached_order_id.is_empty() {
            self.spawn_child(index, at_ms);
        }
        let filled = self.orders[index].filled_size;
        let child_id = self.orders[index].attached_order_id.clone();
        if let Some(child) = self.orders.iter_mut().find(|o| o.order_id == child_id) {
            if child.status == Status::Open {
                child.base_size = filled;
                child.active_from_ms = Some(at_ms);
                child.active_from_price = Some(price);
            }
        }
    }

    /// Records a fill of the order at `index`, moving the balances.
    fn fill(
        &mut self,
        index: usize,
        price: Decimal,
        size: Decimal,
        liquidity: Liquidity,
        trade_ms: i64,
        sequence_ms: i64,
    ) {
        let value = price * size;
        let commission = self.fees.fee(value, liquidity);
        let trade_id = self.next_id();
        let seq = self.fills.len() as u64 + 1;
        let entry_id = blake3::hash(format!("{}\0entry\0{seq}", self.id_seed).as_bytes())
            .to_hex()
            .to_string();
        let o = &mut self.orders[index];
        o.filled_size += size;
        o.filled_value += value;
        o.total_fees += commission;
        o.number_of_fills += 1;
        o.last_fill_ms = Some(trade_ms);
        if o.filled_size >= o.base_size {
            o.status = Status::Filled;
        }
        let (side, product_id, order_id) = (o.side, o.product_id.clone(), o.order_id.clone());
        if let Some(rules) = self.products.get(&product_id) {
            let (base, quote) = (rules.base_currency.clone(), rules.quote_currency.clone());
            let (base_delta, quote_delta) = match side {
                Side::Buy => (size, -(value + commission)),
                Side::Sell => (-size, value - commission),
            };
            *self.balances.entry(base).or_default() += base_delta;
            *self.balances.entry(quote).or_default() += quote_delta;
        }
        self.fills.push(Fill {
            seq,
            entry_id,
            trade_id,
            order_id,
            product_id,
            side,
            price,
            size,
            commission,
            liquidity,
            trade_ms,
            sequence_ms,
        });
    }

    /// Cancels an open order; a parent takes its open child with it.
    pub fn cancel(&mut self, order_id: &str) -> Result<(), CancelFailure> {
        let index = self.index_of(order_id).ok_or(CancelFailure::Unknown)?;
        match self.orders[index].status {
            Status::Open | Status::Pending => {}
            Status::Filled => return Err(CancelFailure::FullyFilled),
            _ => return Err(CancelFailure::Duplicate),
        }
        self.orders[index].status = Status::Cancelled;
        let child_id = self.orders[index].attached_order_id.clone();
        if let Some(child) = self.orders.iter_mut().find(|o| o.order_id == child_id) {
            if child.status == Status::Open {
                child.status = Status::Cancelled;
            }
        }
        Ok(())
    }

    /// Moves the market clock to `to_ms`, working every bar that closes on
    /// the way, at its close, product by product. `bar_at(product, open_ms)`
    /// is the bar opening then (None: a gap in the data, nothing trades).
    pub fn advance(
        &mut self,
        to_ms: i64,
        bar_at: &dyn Fn(&str, i64) -> Option<Bar>,
    ) -> Result<u32, Backwards> {
        if to_ms < self.now_ms {
            return Err(Backwards {
                now_ms: self.now_ms,
                to_ms,
            });
        }
        let g = self.granularity_ms.max(1);
        let products: Vec<String> = self.products.keys().cloned().collect();
        let mut close_ms = (self.now_ms.div_euclid(g) + 1) * g;
        let mut closed = 0;
        while close_ms <= to_ms {
            self.now_ms = close_ms;
            for product in &products {
                if let Some(bar) = bar_at(product, close_ms - g) {
                    self.work_bar(product, &bar);
                }
            }
            closed += 1;
            close_ms += g;
        }
        self.now_ms = to_ms;
        Ok(closed)
    }

    /// Works the live orders of `product_id` placed before `bar` closed, in
    /// creation order (a child after its parent, so a parent's fill lets the
    /// child work in the same bar).
    pub fn work_bar(&mut self, product_id: &str, bar: &Bar) {
        let close_ms = bar.open_ms + self.granularity_ms;
        // Fills inside one bar get increasing trade times from its open.
        let mut cursor_ms = bar.open_ms;
        let mut index = 0;
        while index < self.orders.len() {
            let o = &self.orders[index];
            if o.product_id == product_id && o.status == Status::Open && o.created_ms < close_ms {
                match o.kind {
                    OrderKind::Limit { .. } => self.work_limit(index, bar, &mut cursor_ms),
                    OrderKind::Bracket { .. } => self.work_child(index, bar, &mut cursor_ms),
                    OrderKind::Market => self.work_market(index, close_ms),
                }
            }
            index += 1;
        }
    }

    /// A market order held for its bar's close (`MarketFills::AtBarClose`)
    /// fills at the price fixed when it was created.
    fn work_market(&mut self, index: usize, close_ms: i64) {
        let o = &self.orders[index];
        let Some(price) = o.active_from_price else {
            return;
        };
        let (size, created_ms) = (o.base_size, o.created_ms);
        self.fill(index, price, size, Liquidity::Taker, created_ms, close_ms);
        self.after_fill(index, created_ms, price);
    }

    fn work_limit(&mut self, index: usize, bar: &Bar, cursor_ms: &mut i64) {
        let o = &self.orders[index];
        let OrderKind::Limit { limit_price, .. } = o.kind else {
            return;
        };
        let (touched, price) = match o.side {
            Side::Buy => (bar.low <= limit_price, bar.open.min(limit_price)),
            Side::Sell => (bar.high >= limit_price, bar.open.max(limit_price)),
        };
        if !touched {
            return;
        }
        let size = self.part_size(index);
        let trade_ms = next_trade_ms(cursor_ms, o.created_ms);
        let close_ms = bar.open_ms + self.granularity_ms;
        self.fill(index, price, size, Liquidity::Maker, trade_ms, close_ms);
        self.after_fill(index, trade_ms, price);
    }

    /// The size the next fill of the order at `index` is for: all that
    /// remains, or one part of a partial-fill fault's.
    fn part_size(&self, index: usize) -> Decimal {
        let o = &self.orders[index];
        let remaining = o.remaining();
        if o.parts <= 1 || o.number_of_fills + 1 >= o.parts {
            return remaining;
        }
        let increment = self
            .products
            .get(&o.product_id)
            .map_or(Decimal::ZERO, |r| r.base_increment);
        let part = round_down(o.base_size / Decimal::from(o.parts), increment);
        if part <= Decimal::ZERO {
            remaining
        } else {
            part.min(remaining)
        }
    }

    /// A working bracket child against a closed bar.
    fn work_child(&mut self, index: usize, bar: &Bar, cursor_ms: &mut i64) {
        let o = &self.orders[index];
        let Some(active_ms) = o.active_from_ms else {
            return; // visible, but its parent has not filled
        };
        let OrderKind::Bracket {
            limit_price: take_profit,
            stop_trigger_price: trigger,
            stop_limit_price: stop_limit,
        } = o.kind
        else {
            return;
        };
        let close_ms = bar.open_ms + self.granularity_ms;
        let (size, triggered) = (o.remaining(), o.trigger == Trigger::Triggered);
        let not_before = active_ms.max(o.created_ms);
        let fill_bar = active_ms >= bar.open_ms && active_ms < close_ms;
        let from = match o.active_from_price {
            Some(price) if fill_bar => price,
            _ => bar.open,
        };
        let increment = self
            .products
            .get(&o.product_id)
            .map_or(Decimal::ZERO, |r| r.price_increment);
        let (price, liquidity) = if triggered {
            // A stop-limit resting below the market: a limit SELL.
            if bar.high < stop_limit {
                return;
            }
            (bar.open.max(stop_limit), Liquidity::Maker)
        } else if bar.low <= trigger {
            self.orders[index].trigger = Trigger::Triggered;
            let reference = from.min(trigger);
            if reference < stop_limit {
                return; // gapped below the stop-limit: it rests, the position naked
            }
            let price = self.fees.taker_price(reference, Side::Sell, increment);
            (price.max(stop_limit), Liquidity::Taker)
        } else if !fill_bar && bar.high >= take_profit {
            (bar.open.max(take_profit), Liquidity::Maker)
        } else {
            return;
        };
        let trade_ms = next_trade_ms(cursor_ms, not_before);
        self.fill(index, price, size, liquidity, trade_ms, close_ms);
    }
}

/// The trade time of the next fill in a bar: after the previous one, and
/// not before the order could trade.
fn next_trade_ms(cursor_ms: &mut i64, not_before_ms: i64) -> i64 {
    let at = (*cursor_ms).max(not_before_ms);
    *cursor_ms = at + 1;
    at
}

fn check_flags(rules: &ProductRules, new: &NewOrder) -> Result<(), Rejection> {
    let flags = rules.flags;
    if flags.trading_disabled || flags.cancel_only {
        let why = if flags.trading_disabled {
            "trading is disabled"
        } else {
            "the product is cancel only"
        };
        return reject(Reason::OrderEntryDisabled, why);
    }
    let post_only = matches!(
        new.config,
        NewConfig::Limit {
            post_only: true,
            ..
        }
    );
    if flags.limit_only && matches!(new.config, NewConfig::Market { .. }) {
        return reject(
            Reason::UnsupportedOrderConfiguration,
            "the product is limit only",
        );
    }
    if flags.post_only && !post_only {
        return reject(
            Reason::UnsupportedOrderConfiguration,
            "the product is post only",
        );
    }
    if new.bracket.is_some() && new.side == Side::Sell {
        return reject(
            Reason::UnsupportedOrderConfiguration,
            "fake-coinbase attaches brackets to BUY orders only",
        );
    }
    Ok(())
}

fn check_size(rules: &ProductRules, size: Decimal) -> Result<(), Rejection> {
    if size <= Decimal::ZERO || !on_increment(size, rules.base_increment) {
        return reject(
            Reason::InvalidSizePrecision,
            format!("base_size must be a multiple of {}", rules.base_increment),
        );
    }
    if size < rules.base_min_size {
        return reject(
            Reason::BaseSizeTooSmall,
            format!("base_size below base_min_size {}", rules.base_min_size),
        );
    }
    if size > rules.base_max_size {
        return reject(
            Reason::BaseSizeTooLarge,
            format!("base_size above base_max_size {}", rules.base_max_size),
        );
    }
    Ok(())
}

fn check_prices(rules: &ProductRules, new: &NewOrder) -> Result<(), Rejection> {
    let mut prices = Vec::new();
    if let NewConfig::Limit { limit_price, .. } = new.config {
        prices.push(limit_price);
    }
    if let Some(b) = new.bracket {
        prices.extend([b.limit_price, b.stop_trigger_price]);
    }
    for price in prices {
        if price <= Decimal::ZERO || price > PRICE_MAX {
            return reject(
                Reason::InvalidLimitPrice,
                format!("prices must be in (0, {PRICE_MAX}]"),
            );
        }
        if !on_increment(price, rules.price_increment) {
            return reject(
                Reason::InvalidPricePrecision,
                format!("prices must be multiples of {}", rules.price_increment),
            );
        }
    }
    Ok(())
}

/// A BUY's bracket: stop trigger < the parent's price < take-profit.
fn check_bracket(new: &NewOrder, parent_price: Decimal) -> Result<(), Rejection> {
    let Some(b) = new.bracket else { return Ok(()) };
    if b.stop_trigger_price < parent_price && parent_price < b.limit_price {
        Ok(())
    } else {
        reject(
            Reason::InvalidBracketPrices,
            "stop_trigger_price < entry price < limit_price is required",
        )
    }
}

/// A post-only limit that would take liquidity at the current price.
fn check_post_only(new: &NewOrder, price: Option<Decimal>) -> Result<(), Rejection> {
    let (
        NewConfig::Limit {
            limit_price,
            post_only: true,
            ..
        },
        Some(current),
    ) = (new.config, price)
    else {
        return Ok(());
    };
    let crosses = match new.side {
        Side::Buy => limit_price >= current,
        Side::Sell => limit_price <= current,
    };
    if crosses {
        reject(
            Reason::InvalidLimitPricePostOnly,
            format!("limit {limit_price} would cross the current price {current}"),
        )
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    /// Bar `i` (opening at i hours): open, high, low, close.
    fn bar(i: i64, o: &str, h: &str, l: &str, c: &str) -> Bar {
        Bar {
            open_ms: i * H,
            open: d(o),
            high: d(h),
            low: d(l),
            close: d(c),
            volume: Decimal::ONE,
        }
    }

    struct World {
        x: Exchange,
        bars: BTreeMap<i64, Bar>,
    }

    fn world(appears: ChildAppears, bars: Vec<Bar>) -> World {
        let fees = Fees {
            maker_fee_bps: d("40"),
            taker_fee_bps: d("60"),
            slippage_bps: d("2"),
        };
        let btc = ProductRules::for_product("BTC-USD").unwrap();
        let x = Exchange::new("test", fees, appears, H, vec![btc], d("10000"), 0);
        let bars = bars.into_iter().map(|b| (b.open_ms, b)).collect();
        World { x, bars }
    }

    impl World {
        fn price(&self) -> Option<Decimal> {
            self.bars
                .get(&(self.x.now_ms - self.x.now_ms % H))
                .map(|b| b.open)
        }

        fn place(
            &mut self,
            cid: &str,
            side: Side,
            config: NewConfig,
            bracket: Option<(&str, &str)>,
        ) -> Result<Created, Rejection> {
            self.place_with(cid, side, config, bracket, OrderFaults::default())
        }

        fn place_with(
            &mut self,
            cid: &str,
            side: Side,
            config: NewConfig,
            bracket: Option<(&str, &str)>,
            faults: OrderFaults,
        ) -> Result<Created, Rejection> {
            let new = NewOrder {
                client_order_id: cid.into(),
                product_id: "BTC-USD".into(),
                side,
                config,
                bracket: bracket.map(|(tp, stop)| BracketPrices {
                    limit_price: d(tp),
                    stop_trigger_price: d(stop),
                }),
            };
            let price = self.price();
            self.x.create(&new, price, faults, false)
        }

        fn entry(&mut self, size: &str, limit: &str, bracket: Option<(&str, &str)>) -> Created {
            self.place("entry", Side::Buy, limit_cfg(size, limit, false), bracket)
                .unwrap()
        }

        fn bars(&mut self, n: i64) {
            let bars = self.bars.clone();
            let to = self.x.now_ms + n * H;
            self.x
                .advance(to, &|_, open_ms| bars.get(&open_ms).copied())
                .unwrap();
        }

        fn order(&self, id: &str) -> &Order {
            self.x.order(id).unwrap()
        }

        fn balance(&self, currency: &str) -> Decimal {
            self.x.balances[currency]
        }
    }

    fn limit_cfg(size: &str, limit: &str, post_only: bool) -> NewConfig {
        NewConfig::Limit {
            base_size: d(size),
            limit_price: d(limit),
            post_only,
        }
    }

    fn market_cfg(size: &str) -> NewConfig {
        NewConfig::Market { base_size: d(size) }
    }

    #[test]
    fn a_limit_buy_fills_at_its_limit_as_maker() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![bar(0, "101", "102", "99", "100")],
        );
        let id = w.entry("1", "100", None).order_id;
        w.bars(1);
        let o = w.order(&id);
        assert_eq!(o.status, Status::Filled);
        assert_eq!(o.average_price(), d("100"));
        let fill = &w.x.fills[0];
        assert_eq!(
            (fill.price, fill.commission, fill.liquidity),
            (d("100"), d("0.4"), Liquidity::Maker)
        );
        assert_eq!(w.balance("USD"), d("9899.6"));
        assert_eq!(w.balance("BTC"), d("1"));
    }

    #[test]
    fn a_limit_buy_fills_at_the_open_when_the_bar_opens_below_it() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![
                bar(0, "101", "102", "100.5", "101"),
                bar(1, "98", "99", "97", "98"),
            ],
        );
        let id = w.entry("1", "100", None).order_id;
        w.bars(1);
        assert_eq!(
            w.order(&id).status,
            Status::Open,
            "the low never reached 100"
        );
        w.bars(1);
        assert_eq!(w.order(&id).status, Status::Filled);
        assert_eq!(w.x.fills[0].price, d("98"));
    }

    #[test]
    fn an_order_placed_after_a_bar_closed_is_not_worked_against_it() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![
                bar(0, "101", "102", "90", "101"),
                bar(1, "101", "102", "100.5", "101"),
            ],
        );
        w.bars(1);
        let id = w.entry("1", "100", None).order_id;
        w.bars(1);
        assert_eq!(w.order(&id).status, Status::Open);
        assert!(w.x.fills.is_empty());
    }

    #[test]
    fn market_orders_fill_at_once_at_the_open_with_slippage() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![bar(0, "101", "102", "99", "100")],
        );
        let buy = w.place("b", Side::Buy, market_cfg("1"), None).unwrap();
        let o = w.order(&buy.order_id);
        assert_eq!(o.status, Status::Filled);
        // 101 × 1.0002 = 101.0202, rounded up to the cent; taker fee 60 bps.
        assert_eq!(o.average_price(), d("101.03"));
        assert_eq!(o.total_fees, d("0.60618"));
        assert_eq!(w.x.fills[0].liquidity, Liquidity::Taker);
        let sell = w.place("s", Side::Sell, market_cfg("1"), None).unwrap();
        // 101 × 0.9998 = 100.9798, rounded down.
        assert_eq!(w.order(&sell.order_id).average_price(), d("100.97"));
        assert_eq!(w.balance("BTC"), Decimal::ZERO);
    }

    #[test]
    fn a_market_order_without_a_bar_is_refused() {
        let mut w = world(ChildAppears::AtOnce, vec![]);
        let err = w.place("b", Side::Buy, market_cfg("1"), None).unwrap_err();
        assert_eq!(err.reason, Reason::NoLiquidity);
        assert!(w.x.orders.is_empty());
    }

    #[test]
    fn the_child_is_visible_at_once_but_works_only_after_the_fill() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![
                bar(0, "101", "111", "100.5", "105"),
                bar(1, "101", "102", "99", "100"),
            ],
        );
        let created = w.entry("1", "100", Some(("110", "95")));
        let child_id = created
            .attached_order_id
            .clone()
            .expect("the child exists at once");
        let child = w.order(&child_id);
        assert_eq!(
            (child.status, child.trigger, child.side),
            (Status::Open, Trigger::Pending, Side::Sell)
        );
        assert_eq!(child.originating_order_id, created.order_id);
        assert_eq!(w.order(&created.order_id).attached_order_id, child_id);
        // Bar 0 reaches the take-profit but the entry has not filled: nothing.
        w.bars(1);
        assert!(w.x.fills.is_empty());
        assert_eq!(
            w.x.holds().get("BTC"),
            None,
            "no hold before the parent fills"
        );
        w.bars(1);
        assert_eq!(w.order(&created.order_id).status, Status::Filled);
        assert_eq!(w.order(&child_id).active_from_ms, Some(H));
        assert_eq!(w.x.holds()["BTC"], d("1"));
    }

    #[test]
    fn the_child_appears_on_fill_when_configured_so() {
        let mut w = world(
            ChildAppears::OnFill,
            vec![bar(0, "101", "102", "99", "100")],
        );
        let created = w.entry("1", "100", Some(("110", "95")));
        assert_eq!(created.attached_order_id, None);
        assert_eq!(w.x.orders.len(), 1);
        w.bars(1);
        let parent = w.order(&created.order_id);
        let child = w.order(&parent.attached_order_id);
        assert_eq!(child.originating_order_id, created.order_id);
        assert_eq!(child.created_ms, 0, "created at the entry's fill");
        assert_eq!(child.client_order_id, "");
        assert_eq!(child.base_size, d("1"));
    }

    #[test]
    fn in_the_fill_bar_only_the_stop_is_checked() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![
                bar(0, "101", "111", "99", "105"),
                bar(1, "105", "112", "104", "110"),
            ],
        );
        let child = w
            .entry("1", "100", Some(("110", "95")))
            .attached_order_id
            .unwrap();
        w.bars(1);
        assert_eq!(
            w.order(&child).status,
            Status::Open,
            "the take-profit waits a bar"
        );
        w.bars(1);
        let fill = w.x.fills.last().unwrap();
        assert_eq!((fill.price, fill.liquidity), (d("110"), Liquidity::Maker));
        assert_eq!(w.order(&child).status, Status::Filled);
        assert_eq!(w.balance("BTC"), Decimal::ZERO);
    }

    #[test]
    fn the_stop_can_trigger_in_the_fill_bar_from_the_fill_price() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![bar(0, "101", "111", "94", "100")],
        );
        let child = w
            .entry("1", "100", Some(("110", "95")))
            .attached_order_id
            .unwrap();
        w.bars(1);
        let (entry, stop) = (&w.x.fills[0], &w.x.fills[1]);
        // min(100, 95) × 0.9998 = 94.981 → 94.98, taker; after the entry.
        assert_eq!((stop.price, stop.liquidity), (d("94.98"), Liquidity::Taker));
        assert!(stop.trade_ms > entry.trade_ms);
        assert_eq!(w.order(&child).trigger, Trigger::Triggered);
    }

    #[test]
    fn a_bar_reaching_both_legs_is_a_stop() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![
                bar(0, "101", "102", "99", "100"),
                bar(1, "100", "120", "91", "100"),
            ],
        );
        let child = w
            .entry("1", "100", Some(("110", "95")))
            .attached_order_id
            .unwrap();
        w.bars(2);
        assert_eq!(w.x.fills.len(), 2);
        assert_eq!(w.x.fills[1].price, d("94.98"));
        assert_eq!(w.order(&child).status, Status::Filled);
    }

    #[test]
    fn a_gap_below_the_stop_limit_rests_then_fills_later() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![
                bar(0, "101", "102", "99", "100"),
                bar(1, "88", "89", "85", "88"),
                bar(2, "89", "91", "88", "90"),
            ],
        );
        let child = w
            .entry("1", "100", Some(("110", "95")))
            .attached_order_id
            .unwrap();
        w.bars(2);
        // Stop-limit = 95 × 0.95 = 90.25; bar 1 opened at 88, below it.
        let c = w.order(&child);
        assert_eq!((c.status, c.trigger), (Status::Open, Trigger::Triggered));
        assert_eq!(
            w.balance("BTC"),
            d("1"),
            "the position is still there, naked"
        );
        w.bars(1);
        let fill = w.x.fills.last().unwrap();
        assert_eq!((fill.price, fill.liquidity), (d("90.25"), Liquidity::Maker));
        assert_eq!(w.order(&child).status, Status::Filled);
    }

    #[test]
    fn when_one_leg_fills_the_other_is_gone() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![
                bar(0, "101", "102", "99", "100"),
                bar(1, "111", "112", "109", "110"),
                bar(2, "96", "97", "80", "90"),
            ],
        );
        w.entry("1", "100", Some(("110", "95")));
        w.bars(3);
        assert_eq!(w.x.fills.len(), 2, "entry and take-profit only");
        assert_eq!(
            w.x.fills[1].price,
            d("111"),
            "the bar opened above the take-profit"
        );
        assert_eq!(w.balance("BTC"), Decimal::ZERO);
    }

    #[test]
    fn a_partial_fill_fault_fills_in_parts_then_the_child_works() {
        let bars = (0..3).map(|i| bar(i, "101", "102", "99", "100")).collect();
        let mut w = world(ChildAppears::AtOnce, bars);
        let faults = OrderFaults {
            withhold_child: false,
            parts: 3,
        };
        let created = w
            .place_with(
                "e",
                Side::Buy,
                limit_cfg("0.3", "100", false),
                Some(("110", "95")),
                faults,
            )
            .unwrap();
        let child = created.attached_order_id.unwrap();
        w.bars(1);
        assert_eq!(w.order(&created.order_id).filled_size, d("0.1"));
        assert_eq!(w.order(&created.order_id).status, Status::Open);
        assert_eq!(w.order(&child).active_from_ms, None);
        w.bars(2);
        assert_eq!(w.order(&created.order_id).status, Status::Filled);
        assert_eq!(w.order(&child).base_size, d("0.3"));
        assert!(w.order(&child).active_from_ms.is_some());
        let trade_ids: BTreeSet<&String> = w.x.fills.iter().map(|f| &f.trade_id).collect();
        assert_eq!(trade_ids.len(), 3);
    }

    #[test]
    fn a_withheld_bracket_never_appears() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![bar(0, "101", "102", "99", "100")],
        );
        let faults = OrderFaults {
            withhold_child: true,
            parts: 0,
        };
        let created = w
            .place_with(
                "e",
                Side::Buy,
                limit_cfg("1", "100", false),
                Some(("110", "95")),
                faults,
            )
            .unwrap();
        assert_eq!(created.attached_order_id, None);
        w.bars(1);
        assert_eq!(w.order(&created.order_id).status, Status::Filled);
        assert_eq!(w.x.orders.len(), 1);
    }

    #[test]
    fn holds_follow_the_open_orders() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![
                bar(0, "101", "102", "99", "100"),
                bar(1, "101", "102", "100.5", "101"),
            ],
        );
        let created = w.entry("1", "100", Some(("110", "95")));
        // 100 + the taker-rate fee estimate 0.6.
        assert_eq!(w.x.holds()["USD"], d("100.6"));
        assert_eq!(w.x.available("USD"), d("9899.4"));
        w.bars(1);
        assert_eq!(w.x.holds().get("USD"), None);
        assert_eq!(
            w.x.available("BTC"),
            Decimal::ZERO,
            "the child holds the base"
        );
        let err = w.place("s", Side::Sell, market_cfg("1"), None).unwrap_err();
        assert_eq!(err.reason, Reason::InsufficientFund);
        w.x.cancel(&created.attached_order_id.unwrap()).unwrap();
        assert_eq!(
            w.x.available("BTC"),
            d("1"),
            "cancelling the child leaves the position"
        );
    }

    #[test]
    fn cancels_take_the_child_and_say_why_they_fail() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![bar(0, "101", "102", "99", "100")],
        );
        let created = w.entry("1", "90", Some(("110", "85")));
        let child = created.attached_order_id.clone().unwrap();
        assert_eq!(w.x.cancel("nope"), Err(CancelFailure::Unknown));
        w.x.cancel(&created.order_id).unwrap();
        assert_eq!(w.order(&child).status, Status::Cancelled);
        assert_eq!(w.x.cancel(&created.order_id), Err(CancelFailure::Duplicate));
        assert_eq!(w.x.holds().get("USD"), None);
        let market = w.place("m", Side::Buy, market_cfg("1"), None).unwrap();
        assert_eq!(
            w.x.cancel(&market.order_id),
            Err(CancelFailure::FullyFilled)
        );
    }

    #[test]
    fn a_repeated_client_order_id_creates_nothing() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![bar(0, "101", "102", "99", "100")],
        );
        let first = w.entry("1", "100", Some(("110", "95")));
        let again = w
            .place("entry", Side::Buy, limit_cfg("2", "99", false), None)
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(w.x.orders.len(), 2, "the entry and its child");
    }

    #[test]
    fn orders_the_exchange_would_refuse() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![bar(0, "101", "102", "99", "100")],
        );
        let mut refused = |config: NewConfig, bracket: Option<(&str, &str)>| {
            w.place("r", Side::Buy, config, bracket).unwrap_err().reason
        };
        assert_eq!(
            refused(limit_cfg("1", "101", true), None),
            Reason::InvalidLimitPricePostOnly
        );
        assert_eq!(
            refused(limit_cfg("200", "100", false), None),
            Reason::InsufficientFund
        );
        assert_eq!(
            refused(limit_cfg("0.000000001", "100", false), None),
            Reason::InvalidSizePrecision
        );
        assert_eq!(
            refused(limit_cfg("1", "100.001", false), None),
            Reason::InvalidPricePrecision
        );
        assert_eq!(
            refused(limit_cfg("1", "100", false), Some(("99", "95"))),
            Reason::InvalidBracketPrices
        );
        assert_eq!(
            refused(limit_cfg("1", "100", false), Some(("110", "100"))),
            Reason::InvalidBracketPrices
        );
        assert_eq!(
            refused(limit_cfg("0.001", "100", false), None),
            Reason::QuoteSizeTooSmall
        );
        assert_eq!(
            refused(limit_cfg("5000", "1", false), None),
            Reason::BaseSizeTooLarge
        );
        assert!(w
            .place("p", Side::Buy, limit_cfg("1", "100.99", true), None)
            .is_ok());
        let err = w.place("s", Side::Sell, market_cfg("1"), None).unwrap_err();
        assert_eq!(err.reason, Reason::InsufficientFund);
    }

    #[test]
    fn product_flags_refuse_orders() {
        let mut w = world(
            ChildAppears::AtOnce,
            vec![bar(0, "101", "102", "99", "100")],
        );
        let set =
            |w: &mut World, flags: Flags| w.x.products.get_mut("BTC-USD").unwrap().flags = flags;
        set(
            &mut w,
            Flags {
                limit_only: true,
                ..Flags::default()
            },
        );
        let err = w.place("a", Side::Buy, market_cfg("1"), None).unwrap_err();
        assert_eq!(err.reason, Reason::UnsupportedOrderConfiguration);
        set(
            &mut w,
            Flags {
                post_only: true,
                ..Flags::default()
            },
        );
        let err = w
            .place("b", Side::Buy, limit_cfg("1", "100", false), None)
            .unwrap_err();
        assert_eq!(err.reason, Reason::UnsupportedOrderConfiguration);
        set(
            &mut w,
            Flags {
                trading_disabled: true,
                ..Flags::default()
            },
        );
        let err = w
            .place("c", Side::Buy, limit_cfg("1", "100", true), None)
            .unwrap_err();
        assert_eq!(err.reason, Reason::OrderEntryDisabled);
        set(
            &mut w,
            Flags {
                cancel_only: true,
                ..Flags::default()
            },
        );
        let err = w
            .place("d", Side::Buy, limit_cfg("1", "100", true), None)
            .unwrap_err();
        assert_eq!(err.reason, Reason::OrderEntryDisabled);
    }

    #[test]
    fn a_market_entry_with_a_bracket_protects_from_the_next_bar() {
        let mut w = world(
            ChildAppears::OnFill,
            vec![
                bar(0, "101", "120", "100", "105"),
                bar(1, "105", "120", "104", "110"),
            ],
        );
        let created = w
            .place("m", Side::Buy, market_cfg("1"), Some(("110", "95")))
            .unwrap();
        let child = created
            .attached_order_id
            .expect("the child exists once the entry filled");
        w.bars(1);
        assert_eq!(w.order(&child).status, Status::Open);
        w.bars(1);
        assert_eq!(w.order(&child).status, Status::Filled);
    }

    #[test]
    fn the_clock_never_goes_backwards() {
        let mut w = world(ChildAppears::AtOnce, vec![]);
        w.bars(2);
        let err = w.x.advance(H, &|_, _| None).unwrap_err();
        assert_eq!(
            err,
            Backwards {
                now_ms: 2 * H,
                to_ms: H
            }
        );
    }
}
