//! The shapes of Coinbase Advanced Trade's answers that the broker reads.
//!
//! Field names and forms are those of the real captured responses and the
//! docs' schema examples in `../shared/data/coinbase` (SOURCES.md): numbers
//! are strings, an empty value is `""` (not null), times are RFC 3339.
//! Every field defaults, and unknown fields are ignored: Coinbase adds fields
//! often, and an answer is judged by the fields the broker needs, each
//! checked where it is used.

use anx_journal::UnixMs;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::str::FromStr;

/// A decimal string; `""` or anything unparseable is `None`.
pub fn dec(text: &str) -> Option<Decimal> {
    Decimal::from_str(text.trim()).ok()
}

/// An RFC 3339 time in Unix ms; `""` is `None`.
pub fn time_ms(text: &str) -> Option<UnixMs> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// RFC 3339 (UTC, microseconds) of a Unix-ms time, as query parameters take it.
pub fn rfc3339(ms: UnixMs) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateOrderResponse {
    pub success: bool,
    pub failure_reason: String,
    pub order_id: String,
    pub success_response: Option<SuccessResponse>,
    pub error_response: Option<ErrorResponse>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SuccessResponse {
    pub order_id: String,
    pub product_id: String,
    pub side: String,
    pub client_order_id: String,
    /// The attached TP/SL child, when Coinbase reports it at once (the
    /// official SDK's `CreateOrderSuccess` parses this optional field).
    pub attached_order_id: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ErrorResponse {
    pub error: String,
    pub message: String,
    pub error_details: String,
    pub preview_failure_reason: String,
    pub new_order_failure_reason: String,
}

impl ErrorResponse {
    /// The rejection as journaled: Coinbase's code alone when it is the
    /// post-only cross (the engine re-prices on exactly that code), else
    /// the code and the message.
    pub fn reason(&self) -> String {
        let code = if self.error.is_empty() {
            &self.new_order_failure_reason
        } else {
            &self.error
        };
        if code == anx_projections::engine::order::POST_ONLY_CROSS || self.message.is_empty() {
            code.clone()
        } else {
            format!("{code}: {}", self.message)
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PreviewResponse {
    pub order_total: String,
    pub commission_total: String,
    pub errs: Vec<String>,
    pub warning: Vec<String>,
    pub preview_id: String,
    pub base_size: String,
    pub best_bid: String,
    pub best_ask: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct OrderEnvelope {
    pub order: Order,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct OrdersPage {
    pub orders: Vec<Order>,
    pub has_next: bool,
    pub cursor: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Order {
    pub order_id: String,
    pub product_id: String,
    pub client_order_id: String,
    pub side: String,
    /// OPEN, FILLED, CANCELLED, EXPIRED, FAILED, PENDING, QUEUED, …
    pub status: String,
    pub filled_size: String,
    pub average_filled_price: String,
    pub order_type: String,
    pub trigger_status: String,
    /// On a TP/SL child: the entry it is attached to.
    pub originating_order_id: String,
    /// On an entry: its TP/SL child.
    pub attached_order_id: String,
    pub order_configuration: serde_json::Value,
    pub cancel_message: String,
    pub reject_reason: String,
    pub reject_message: String,
    pub created_time: String,
}

impl Order {
    /// Whether the exchange is done with the order (it will not fill more).
    pub fn is_done(&self) -> bool {
        matches!(
            self.status.as_str(),
            "FILLED" | "CANCELLED" | "EXPIRED" | "FAILED"
        )
    }

    /// A bracket child's prices: (take-profit limit, stop trigger).
    pub fn bracket_prices(&self) -> Option<(Decimal, Decimal)> {
        let config = self.order_configuration.get("trigger_bracket_gtc")?;
        let price = |name: &str| config.get(name)?.as_str().and_then(dec);
        Some((price("limit_price")?, price("stop_trigger_price")?))
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct FillsPage {
    pub fills: Vec<ApiFill>,
    pub cursor: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ApiFill {
    pub entry_id: String,
    pub trade_id: String,
    pub order_id: String,
    pub trade_time: String,
    pub price: String,
    pub size: String,
    pub commission: String,
    pub product_id: String,
    pub liquidity_indicator: String,
    pub side: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct AccountsPage {
    pub accounts: Vec<Account>,
    pub has_next: bool,
    pub cursor: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Account {
    pub currency: String,
    pub available_balance: Money,
    pub hold: Money,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Money {
    pub value: String,
    pub currency: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Product {
    pub product_id: String,
    pub price: String,
    pub base_increment: String,
    pub quote_increment: String,
    pub price_increment: String,
    pub base_min_size: String,
    pub quote_min_size: String,
    pub status: String,
    pub trading_disabled: bool,
    pub cancel_only: bool,
    pub limit_only: bool,
    pub post_only: bool,
    pub base_currency_id: String,
    pub quote_currency_id: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct BatchCancel {
    pub results: Vec<CancelResult>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct CancelResult {
    pub success: bool,
    pub failure_reason: String,
    pub order_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/coinbase")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the shared Coinbase samples are missing)",
                path.display()
            )
        })
    }

    #[test]
    fn the_real_samples_read_as_the_broker_needs() {
        let ok: CreateOrderResponse = serde_json::from_str(&sample(
            "create_order_response__real_issue_market_sell_LTC-USD.json",
        ))
        .unwrap();
        assert!(ok.success && ok.failure_reason == "UNKNOWN_FAILURE_REASON");
        assert_eq!(
            ok.success_response.unwrap().order_id,
            "vvvd2a-4ef9-9587-fc7v12"
        );
        let refused: CreateOrderResponse = serde_json::from_str(&sample(
            "error_create_order_INSUFFICIENT_FUND__real_issue.json",
        ))
        .unwrap();
        assert!(!refused.success);
        assert_eq!(
            refused.error_response.unwrap().reason(),
            "INSUFFICIENT_FUND: Insufficient balance in source account"
        );
        let fills: FillsPage =
            serde_json::from_str(&sample("list_fills_response__ccxt_captured_ADA-USDT.json"))
                .unwrap();
        let fill = &fills.fills[0];
        assert_eq!(
            (fill.liquidity_indicator.as_str(), dec(&fill.commission)),
            ("TAKER", dec("0.03136"))
        );
        assert_eq!(time_ms(&fill.trade_time), Some(1_700_993_987_504));
        let orders: OrdersPage = serde_json::from_str(&sample(
            "list_orders_response__ccxt_captured_ADA-USDT_filled_market.json",
        ))
        .unwrap();
        assert!(
            orders.orders[0].is_done() && dec(&orders.orders[0].filled_size) > Some(Decimal::ZERO)
        );
        let product: Product =
            serde_json::from_str(&sample("get_product_response__nautilus_BTC-USD.json")).unwrap();
        assert_eq!(dec(&product.price_increment), dec("0.01"));
        assert!(!product.trading_disabled && product.base_currency_id == "BTC");
    }

    #[test]
    fn the_documented_order_shows_its_bracket_linkage() {
        let order: OrderEnvelope =
            serde_json::from_str(&sample("get_order_response__docs_schema_example.json")).unwrap();
        // The schema dump names the linkage fields the broker reads.
        let text = sample("get_order_response__docs_schema_example.json");
        assert!(text.contains("originating_order_id") && text.contains("attached_order_id"));
        assert!(!order.order.order_id.is_empty());
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(
            time_ms(&rfc3339(1_700_993_987_504)),
            Some(1_700_993_987_504)
        );
        assert_eq!(time_ms(""), None);
        assert_eq!(dec(""), None);
    }
}
