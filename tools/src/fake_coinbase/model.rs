//! The JSON shapes of Coinbase Advanced Trade, as the fake reads and writes
//! them: request bodies (strict: an unknown field is refused, as Coinbase's
//! proto parser does) and responses built field for field after the samples
//! in `shared/data/coinbase/` (numbers as strings, `""` for empty values).

use super::matching::{
    Bar, BracketPrices, Exchange, Fill, Liquidity, NewConfig, NewOrder, Order, OrderKind,
    ProductRules, Reason, Rejection, Side, Status,
};
use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use std::str::FromStr;

/// `POST /orders`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    pub client_order_id: String,
    pub product_id: String,
    pub side: String,
    pub order_configuration: OrderConfiguration,
    pub attached_order_configuration: Option<AttachedConfiguration>,
    pub self_trade_prevention_id: Option<String>,
    pub leverage: Option<String>,
    pub margin_type: Option<String>,
    pub retail_portfolio_id: Option<String>,
    pub preview_id: Option<String>,
}

/// `POST /orders/preview`: the create body without `client_order_id`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewOrderRequest {
    pub product_id: String,
    pub side: String,
    pub order_configuration: OrderConfiguration,
    pub attached_order_configuration: Option<AttachedConfiguration>,
    pub leverage: Option<String>,
    pub margin_type: Option<String>,
    pub retail_portfolio_id: Option<String>,
}

/// The configurations Coinbase knows; the fake works two of them and
/// refuses the others as unsupported (their contents are not checked).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderConfiguration {
    pub limit_limit_gtc: Option<LimitGtc>,
    pub market_market_ioc: Option<MarketIoc>,
    pub market_market_fok: Option<Value>,
    pub sor_limit_ioc: Option<Value>,
    pub limit_limit_gtd: Option<Value>,
    pub limit_limit_fok: Option<Value>,
    pub twap_limit_gtd: Option<Value>,
    pub stop_limit_stop_limit_gtc: Option<Value>,
    pub stop_limit_stop_limit_gtd: Option<Value>,
    pub trigger_bracket_gtc: Option<Value>,
    pub trigger_bracket_gtd: Option<Value>,
    pub scaled_limit_gtc: Option<Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitGtc {
    pub quote_size: Option<String>,
    pub base_size: Option<String>,
    pub limit_price: Option<String>,
    pub post_only: Option<bool>,
    pub rfq_disabled: Option<bool>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketIoc {
    pub quote_size: Option<String>,
    pub base_size: Option<String>,
    pub rfq_disabled: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachedConfiguration {
    pub trigger_bracket_gtc: Option<AttachedBracket>,
    pub limit_limit_gtc: Option<Value>,
    pub stop_limit_stop_limit_gtc: Option<Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachedBracket {
    /// Must be absent: the child's size is the parent's.
    pub base_size: Option<Value>,
    pub limit_price: Option<String>,
    pub stop_trigger_price: Option<String>,
}

/// `POST /orders/batch_cancel`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchCancelRequest {
    pub order_ids: Vec<String>,
}

/// Why a body is not a request at all (an HTTP 400, not `success:false`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRequest {
    pub error: &'static str,
    pub message: String,
}

/// Parses `body` strictly; an unknown field is answered as Coinbase's proto
/// parser does (`proto: (line L:C): unknown field "x"`, error "unknown").
pub fn parse_strict<T: for<'de> Deserialize<'de>>(body: &str) -> Result<T, BadRequest> {
    serde_json::from_str(body).map_err(|e| {
        let text = e.to_string();
        if let Some(field) = text
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
        {
            let column = key_column(body, e.line(), e.column());
            BadRequest {
                error: "unknown",
                message: format!(
                    "proto: (line {}:{column}): unknown field \"{field}\"",
                    e.line()
                ),
            }
        } else {
            BadRequest {
                error: "INVALID_ARGUMENT",
                message: format!("proto: {text}"),
            }
        }
    })
}

/// The 1-based column of the opening quote of the key serde stopped after.
fn key_column(body: &str, line: usize, column: usize) -> usize {
    let Some(text) = body.lines().nth(line.saturating_sub(1)) else {
        return column;
    };
    let before = text.get(..column.min(text.len())).unwrap_or(text);
    // Back over the key's closing quote to its opening one.
    let trimmed = before.trim_end_matches(|c| c != '"');
    let without_close = trimmed.strip_suffix('"').unwrap_or(trimmed);
    without_close.rfind('"').map_or(column, |at| at + 1)
}

fn decimal(text: &str, field: &str) -> Result<Decimal, BadRequest> {
    let parsed = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).ok()
    } else {
        Decimal::from_str(text).ok()
    };
    parsed.ok_or_else(|| BadRequest {
        error: "INVALID_ARGUMENT",
        message: format!("{field} {text:?} is not a decimal number"),
    })
}

pub fn parse_side(side: &str) -> Result<Side, BadRequest> {
    match side {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        other => Err(BadRequest {
            error: "INVALID_ARGUMENT",
            message: format!("proto: invalid value for enum type: {other:?}"),
        }),
    }
}

/// A request's order as the book takes it: a malformed number is a 400, an
/// order the fake does not do is a refusal.
pub type Converted = Result<Result<NewOrder, Rejection>, BadRequest>;

pub fn new_order(
    client_order_id: &str,
    product_id: &str,
    side: &str,
    config: &OrderConfiguration,
    attached: Option<&AttachedConfiguration>,
) -> Converted {
    let side = parse_side(side)?;
    let config = match order_config(config)? {
        Ok(config) => config,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let bracket = match attached.map(attached_bracket).transpose()? {
        Some(Err(rejection)) => return Ok(Err(rejection)),
        Some(Ok(bracket)) => Some(bracket),
        None => None,
    };
    Ok(Ok(NewOrder {
        client_order_id: client_order_id.to_string(),
        product_id: product_id.to_string(),
        side,
        config,
        bracket,
    }))
}

fn unsupported(details: &str) -> Rejection {
    Rejection {
        reason: Reason::UnsupportedOrderConfiguration,
        details: details.into(),
    }
}

fn order_config(config: &OrderConfiguration) -> Result<Result<NewConfig, Rejection>, BadRequest> {
    let others = [
        &config.market_market_fok,
        &config.sor_limit_ioc,
        &config.limit_limit_gtd,
        &config.limit_limit_fok,
        &config.twap_limit_gtd,
        &config.stop_limit_stop_limit_gtc,
        &config.stop_limit_stop_limit_gtd,
        &config.trigger_bracket_gtc,
        &config.trigger_bracket_gtd,
        &config.scaled_limit_gtc,
    ];
    let supported = usize::from(config.limit_limit_gtc.is_some())
        + usize::from(config.market_market_ioc.is_some());
    if supported != 1 || others.iter().any(|o| o.is_some()) {
        return Ok(Err(unsupported(
            "fake-coinbase takes exactly one of limit_limit_gtc and market_market_ioc",
        )));
    }
    let empty = || Rejection {
        reason: Reason::EmptyOrderSize,
        details: "Market orders cannot be placed with empty order sizes".into(),
    };
    if let Some(limit) = &config.limit_limit_gtc {
        if limit.quote_size.is_some() {
            return Ok(Err(unsupported("fake-coinbase takes base_size only")));
        }
        let (Some(size), Some(price)) = (&limit.base_size, &limit.limit_price) else {
            return Ok(Err(empty()));
        };
        return Ok(Ok(NewConfig::Limit {
            base_size: decimal(size, "base_size")?,
            limit_price: decimal(price, "limit_price")?,
            post_only: limit.post_only.unwrap_or(false),
        }));
    }
    let Some(market) = &config.market_market_ioc else {
        return Ok(Err(empty()));
    };
    if market.quote_size.is_some() {
        return Ok(Err(unsupported("fake-coinbase takes base_size only")));
    }
    let Some(size) = &market.base_size else {
        return Ok(Err(empty()));
    };
    Ok(Ok(NewConfig::Market {
        base_size: decimal(size, "base_size")?,
    }))
}

fn attached_bracket(
    attached: &AttachedConfiguration,
) -> Result<Result<BracketPrices, Rejection>, BadRequest> {
    let Some(bracket) = &attached.trigger_bracket_gtc else {
        return Ok(Err(unsupported("only trigger_bracket_gtc may be attached")));
    };
    if attached.limit_limit_gtc.is_some() || attached.stop_limit_stop_limit_gtc.is_some() {
        return Ok(Err(unsupported(
            "fake-coinbase attaches trigger_bracket_gtc only",
        )));
    }
    if bracket.base_size.is_some() {
        return Ok(Err(Rejection {
            reason: Reason::AttachedOrderSizeMustBeNil,
            details: "the attached order has the parent's size".into(),
        }));
    }
    let (Some(limit), Some(stop)) = (&bracket.limit_price, &bracket.stop_trigger_price) else {
        return Ok(Err(Rejection {
            reason: Reason::InvalidBracketPrices,
            details: "limit_price and stop_trigger_price are required".into(),
        }));
    };
    Ok(Ok(BracketPrices {
        limit_price: decimal(limit, "limit_price")?,
        stop_trigger_price: decimal(stop, "stop_trigger_price")?,
    }))
}

// ---------------------------------------------------------------------------
// Responses.

/// A computed number as Coinbase writes it: no trailing zeros.
pub fn num(value: Decimal) -> String {
    value.normalize().to_string()
}

fn utc(ms: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(chrono::DateTime::UNIX_EPOCH)
}

/// RFC 3339 with microseconds, like the live `created_time`.
pub fn time_micros(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// RFC 3339 with milliseconds, like the live `trade_time`.
pub fn time_millis(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// An HTTP date (RFC 7231), for the Date header.
pub fn http_date(ms: i64) -> String {
    utc(ms).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// `{"error", "error_details", "message"}`: Coinbase's non-2xx body.
pub fn error_body(error: &str, message: &str) -> Value {
    json!({"error": error, "error_details": message, "message": message})
}

/// The `order_configuration` an order was created with.
pub fn order_configuration(o: &Order) -> Value {
    match o.kind {
        OrderKind::Limit {
            limit_price,
            post_only,
        } => json!({"limit_limit_gtc": {
            "base_size": o.base_size.to_string(),
            "limit_price": limit_price.to_string(),
            "post_only": post_only,
        }}),
        OrderKind::Market => json!({"market_market_ioc": {"base_size": o.base_size.to_string()}}),
        OrderKind::Bracket {
            limit_price,
            stop_trigger_price,
            ..
        } => json!({"trigger_bracket_gtc": {
            "base_size": num(o.base_size),
            "limit_price": limit_price.to_string(),
            "stop_trigger_price": stop_trigger_price.to_string(),
        }}),
    }
}

fn attached_configuration(o: &Order) -> Value {
    match o.attached {
        Some(b) => json!({"trigger_bracket_gtc": {
            "limit_price": b.limit_price.to_string(),
            "stop_trigger_price": b.stop_trigger_price.to_string(),
        }}),
        None => Value::Null,
    }
}

/// The figures of an order's fills, as strings.
fn fill_figures(x: &Exchange, o: &Order) -> Value {
    let percent = if o.base_size.is_zero() {
        Decimal::ZERO
    } else {
        o.filled_size / o.base_size * Decimal::ONE_HUNDRED
    };
    let mut percent = percent.round_dp(2);
    percent.rescale(2);
    let after_fees = match o.side {
        Side::Buy => o.filled_value + o.total_fees,
        Side::Sell => o.filled_value - o.total_fees,
    };
    let hold = x.hold_of(o).map_or(Decimal::ZERO, |(_, amount)| amount);
    json!({
        "completion_percentage": percent.to_string(),
        "filled_size": num(o.filled_size),
        "average_filled_price": num(o.average_price()),
        "number_of_fills": o.number_of_fills.to_string(),
        "filled_value": num(o.filled_value),
        "total_fees": num(o.total_fees),
        "total_value_after_fees": num(after_fees),
        "outstanding_hold_amount": num(hold),
        "last_fill_time": o.last_fill_ms.map_or(Value::Null, |ms| Value::from(time_millis(ms))),
    })
}

/// One order as `GET /orders/historical/{id}` shows it.
pub fn order_json(x: &Exchange, o: &Order) -> Value {
    let (order_type, time_in_force) = match o.kind {
        OrderKind::Limit { .. } => ("LIMIT", "GOOD_UNTIL_CANCELLED"),
        OrderKind::Market => ("MARKET", "IMMEDIATE_OR_CANCEL"),
        OrderKind::Bracket { .. } => ("BRACKET", "GOOD_UNTIL_CANCELLED"),
    };
    let order = json!({
        "order_id": o.order_id,
        "product_id": o.product_id,
        "user_id": x.user_id,
        "order_configuration": order_configuration(o),
        "side": o.side.name(),
        "client_order_id": o.client_order_id,
        "status": o.status.name(),
        "time_in_force": time_in_force,
        "created_time": time_micros(o.created_ms),
        "fee": "",
        "pending_cancel": false,
        "size_in_quote": false,
        "size_inclusive_of_fees": false,
        "trigger_status": o.trigger.name(),
        "order_type": order_type,
        "reject_reason": "REJECT_REASON_UNSPECIFIED",
        "settled": !matches!(o.status, Status::Open | Status::Pending),
        "product_type": "SPOT",
        "reject_message": "",
        "cancel_message": "",
        "order_placement_source": "RETAIL_ADVANCED",
        "is_liquidation": false,
        "edit_history": [],
        "leverage": "",
        "margin_type": "UNKNOWN_MARGIN_TYPE",
        "retail_portfolio_id": x.portfolio_id,
        "originating_order_id": o.originating_order_id,
        "attached_order_id": o.attached_order_id,
        "attached_order_configuration": attached_configuration(o),
    });
    merged([order, fill_figures(x, o)])
}

/// One fill as `GET /orders/historical/fills` lists it.
pub fn fill_json(x: &Exchange, f: &Fill) -> Value {
    json!({
        "entry_id": f.entry_id,
        "trade_id": f.trade_id,
        "order_id": f.order_id,
        "trade_time": time_millis(f.trade_ms),
        "trade_type": "FILL",
        "price": num(f.price),
        "size": num(f.size),
        "commission": num(f.commission),
        "product_id": f.product_id,
        "sequence_timestamp": time_micros(f.sequence_ms),
        "liquidity_indicator": match f.liquidity {
            Liquidity::Maker => "MAKER",
            Liquidity::Taker => "TAKER",
        },
        "size_in_quote": false,
        "user_id": x.user_id,
        "side": f.side.name(),
        "retail_portfolio_id": x.portfolio_id,
        "cursor": f.seq.to_string(),
    })
}

/// The create answer of an order (new or repeated), as the live samples.
pub fn create_success(o: &Order, configuration: Value) -> Value {
    let mut success = json!({
        "order_id": o.order_id,
        "product_id": o.product_id,
        "side": o.side.name(),
        "client_order_id": o.client_order_id,
    });
    if !o.attached_order_id.is_empty() {
        success["attached_order_id"] = Value::from(o.attached_order_id.clone());
    }
    json!({
        "success": true,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": o.order_id,
        "success_response": success,
        "order_configuration": configuration,
    })
}

/// A refusal, exactly as the live INSUFFICIENT_FUND answer.
pub fn create_failure(rejection: &Rejection, configuration: Value) -> Value {
    let (error, preview, message) = rejection.reason.codes();
    json!({
        "success": false,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": "",
        "error_response": {
            "error": error,
            "message": message,
            "error_details": rejection.details,
            "preview_failure_reason": preview,
        },
        "order_configuration": configuration,
    })
}

/// One candle, all strings, `start` in Unix seconds. The figures keep the
/// digits the candle file has (Coinbase's own, where the file came from
/// Coinbase): a trader journals candles as they arrive, and a replay of the
/// same file must see the same text.
pub fn candle_json(bar: &Bar) -> Value {
    json!({
        "start": (bar.open_ms / 1000).to_string(),
        "low": bar.low.to_string(),
        "high": bar.high.to_string(),
        "open": bar.open.to_string(),
        "close": bar.close.to_string(),
        "volume": bar.volume.to_string(),
    })
}

fn currency_name(code: &str) -> String {
    match code {
        "BTC" => "Bitcoin".into(),
        "ETH" => "Ethereum".into(),
        "SOL" => "Solana".into(),
        "USD" => "US Dollar".into(),
        other => other.into(),
    }
}

/// What a product's live figures say (from the closed bars).
pub struct ProductFigures {
    pub price: Option<Decimal>,
    pub change_24h_percent: Decimal,
    pub volume_24h: Decimal,
}

/// A product as `GET /products/{id}` shows it.
pub fn product_json(rules: &ProductRules, figures: &ProductFigures) -> Value {
    let price = figures.price.map_or_else(String::new, num);
    let quote_volume = figures.price.unwrap_or_default() * figures.volume_24h;
    let figures = json!({
        "product_id": rules.product_id, "price": price,
        "price_percentage_change_24h": num(figures.change_24h_percent),
        "volume_24h": num(figures.volume_24h), "volume_percentage_change_24h": "0",
        "base_increment": num(rules.base_increment), "quote_increment": num(rules.quote_increment),
        "quote_min_size": num(rules.quote_min_size), "quote_max_size": num(rules.quote_max_size),
        "base_min_size": num(rules.base_min_size), "base_max_size": num(rules.base_max_size),
        "base_name": currency_name(&rules.base_currency),
        "quote_name": currency_name(&rules.quote_currency),
    });
    let state = json!({
        "watched": false, "is_disabled": false, "new": false,
        "status": if rules.flags.trading_disabled { "offline" } else { "online" },
        "cancel_only": rules.flags.cancel_only, "limit_only": rules.flags.limit_only,
        "post_only": rules.flags.post_only, "trading_disabled": rules.flags.trading_disabled,
        "auction_mode": false, "product_type": "SPOT",
        "quote_currency_id": rules.quote_currency, "base_currency_id": rules.base_currency,
        "fcm_trading_session_details": null, "mid_market_price": "", "alias": "", "alias_to": [],
        "base_display_symbol": rules.base_currency, "quote_display_symbol": rules.quote_currency,
    });
    let rest = json!({
        "view_only": false, "price_increment": num(rules.price_increment),
        "display_name": rules.product_id, "product_venue": "CBE",
        "approximate_quote_24h_volume": num(quote_volume.round_dp(2)),
        "new_at": "2023-01-01T00:00:00Z", "market_cap": "", "base_cbrn": "", "quote_cbrn": "",
        "product_cbrn": "", "icon_color": "", "icon_url": "", "display_name_overwrite": "",
        "is_alpha_testing": false, "about_description": "",
        "best_bid_price": "", "best_ask_price": "",
    });
    merged([figures, state, rest])
}

/// The fields of several JSON objects in one (json! recurses per field).
fn merged(parts: impl IntoIterator<Item = Value>) -> Value {
    let mut all = serde_json::Map::new();
    for part in parts {
        if let Value::Object(fields) = part {
            all.extend(fields);
        }
    }
    Value::Object(all)
}

/// One account (a currency's balance) as `GET /accounts` lists it.
pub fn account_json(
    x: &Exchange,
    currency: &str,
    available: Decimal,
    hold: Decimal,
    created_ms: i64,
) -> Value {
    let fiat = currency == "USD";
    let name = if fiat {
        "Cash (USD)".to_string()
    } else {
        format!("{currency} Wallet")
    };
    json!({
        "uuid": super::matching::uuid_from(&x.id_seed, account_number(currency)),
        "name": name,
        "currency": currency,
        "available_balance": {"value": num(available), "currency": currency},
        "default": false,
        "active": true,
        "created_at": time_micros(created_ms),
        "updated_at": time_micros(created_ms),
        "deleted_at": null,
        "type": if fiat { "ACCOUNT_TYPE_FIAT" } else { "ACCOUNT_TYPE_CRYPTO" },
        "ready": true,
        "hold": {"value": num(hold), "currency": currency},
    })
}

/// A stable number per currency for its account's uuid (far from order ids).
fn account_number(currency: &str) -> u64 {
    let hash = blake3::hash(currency.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(bytes) | (1 << 63)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_field_is_refused_like_coinbase() {
        let body = r#"{"order_ids":["a"],"max_floor":"1"}"#;
        let err = parse_strict::<BatchCancelRequest>(body).unwrap_err();
        assert_eq!(err.error, "unknown");
        assert_eq!(
            err.message,
            "proto: (line 1:20): unknown field \"max_floor\""
        );
    }

    #[test]
    fn times_are_rfc3339_and_http_dates() {
        assert_eq!(
            time_micros(1_700_000_000_123),
            "2023-11-14T22:13:20.123000Z"
        );
        assert_eq!(time_millis(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            http_date(1_700_000_000_123),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
    }

    #[test]
    fn an_attached_size_is_refused() {
        let attached: AttachedConfiguration = parse_strict(
            r#"{"trigger_bracket_gtc":{"base_size":"1","limit_price":"2","stop_trigger_price":"1"}}"#,
        )
        .unwrap();
        let got = attached_bracket(&attached).unwrap().unwrap_err();
        assert_eq!(got.reason, Reason::AttachedOrderSizeMustBeNil);
    }
}
