//! Order identity and the exchange payload.
//!
//! `client_order_id` = `ANX4_{run8}_{symbol}_{ts}_{hash8}`: the first 8
//! characters of the run id, the symbol without its dash, the decision's market
//! time as `YYYYMMDDTHHMM` (UTC) and the first 8 hex digits of BLAKE3 over the
//! decision's encoded body, with `candle_seq` zeroed (ids never depend on seqs).
//! Deterministic: the same decision replayed yields the same id, so a restart
//! can never place it twice (Coinbase returns the existing order for a
//! repeated `client_order_id`).
//!
//! The payload is Coinbase Advanced Trade's create-order request for an entry
//! with attached protection: `limit_limit_gtc` for the entry and
//! `attached_order_configuration.trigger_bracket_gtc` with the take-profit
//! `limit_price` and the `stop_trigger_price` (no size on the attached leg: it
//! takes the entry's). Every number is a decimal string.

use anx_journal::{Decision, Event, UnixMs};
use rust_decimal::Decimal;
use serde_json::json;

/// Coinbase's rejection of a post-only limit that would cross the book (take
/// liquidity). Not a fault of the account or the order's form: the price moved.
/// (Coinbase's error code, as documented for `POST /orders` failures.)
pub const POST_ONLY_CROSS: &str = "INVALID_LIMIT_PRICE_POST_ONLY";

/// `YYYYMMDDTHHMM` of a Unix-millisecond time (UTC), without a date library.
pub fn compact_utc(ms: UnixMs) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (hour, minute) = (rem / 3600, (rem % 3600) / 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}")
}

/// `ANX4_{run8}_`: the start of every client order id of run `run_id`, by
/// which a restarted trader finds its own orders among the broker's.
pub fn prefix(run_id: &str) -> String {
    let run8: String = run_id.chars().take(8).collect();
    format!("ANX4_{run8}_")
}

/// `T-{SYMBOL}-{entry time}`: a trade's id, from its entry fill's market time.
/// Seq-free, like everything in the state: the same history numbered
/// differently (a restart's side events) names its trades alike.
pub fn trade_id(symbol: &str, entry_ms: UnixMs) -> String {
    format!("T-{}-{}", symbol.replace('-', ""), compact_utc(entry_ms))
}

/// `ANX4_{run8}_{SYMBOL}_`: the start of every client order id of run
/// `run_id` for `symbol` (`BTC-USD` → `BTCUSD`).
pub fn symbol_prefix(run_id: &str, symbol: &str) -> String {
    format!("{}{}_", prefix(run_id), symbol.replace('-', ""))
}

pub fn client_order_id(run_id: &str, symbol: &str, decision: &Decision) -> String {
    // The decision's link to its candle is a journal position, not part of what
    // was decided: left out, so the id does not depend on how the journal is
    // numbered (a restarted trader's side events shift seqs).
    let mut decided = decision.clone();
    decided.candle_seq = 0;
    // Schema 1's encoding, whatever the journal's schema, so the same decision
    // keeps the same id. Only the engine's own decisions get ids, and each has
    // a schema-1 encoding (its configuration hash and its whole glass box).
    let as_of_ms = decided.as_of_ms;
    let body = anx_journal::event::body_bytes(&Event::Decision(decided), 1, as_of_ms)
        .expect("a decision the engine makes has a schema-1 encoding");
    let hash = blake3::hash(&body).to_hex();
    format!(
        "{}{}_{}",
        symbol_prefix(run_id, symbol),
        compact_utc(decision.as_of_ms),
        &hash.as_str()[..8]
    )
}

/// The create-order request for a bracketed BUY entry.
pub fn entry_payload(
    client_order_id: &str,
    product_id: &str,
    base_size: Decimal,
    limit_price: Decimal,
    post_only: bool,
    take_profit: Decimal,
    stop_trigger: Decimal,
) -> String {
    json!({
        "client_order_id": client_order_id,
        "product_id": product_id,
        "side": "BUY",
        "order_configuration": {
            "limit_limit_gtc": {
                "base_size": base_size.to_string(),
                "limit_price": limit_price.to_string(),
                "post_only": post_only,
            }
        },
        "attached_order_configuration": {
            "trigger_bracket_gtc": {
                "limit_price": take_profit.to_string(),
                "stop_trigger_price": stop_trigger.to_string(),
            }
        }
    })
    .to_string()
}

/// The create-order request for a market SELL exit.
pub fn exit_payload(client_order_id: &str, product_id: &str, base_size: Decimal) -> String {
    json!({
        "client_order_id": client_order_id,
        "product_id": product_id,
        "side": "SELL",
        "order_configuration": {
            "market_market_ioc": { "base_size": base_size.to_string() }
        }
    })
    .to_string()
}
