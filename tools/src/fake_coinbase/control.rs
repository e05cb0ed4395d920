//! The control API under `/fake/` (unauthenticated JSON, for tests and for
//! rehearsing by hand): move the market clock, read the whole state, arm
//! faults, set a product's trading flags, trade by hand in the account, stop.

use super::faults::{self, Armed};
use super::http::respond;
use super::matching::{NewConfig, NewOrder, OrderFaults};
use super::model;
use super::Shared;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The furthest one clock request may move (each bar on the way is worked).
const CLOCK_STEP_MS_MAX: i64 = 10 * 366 * 86_400_000;

pub fn routes(router: Router<Arc<Shared>>) -> Router<Arc<Shared>> {
    router
        .route("/fake/clock", post(clock))
        .route("/fake/state", get(state))
        .route("/fake/fault", post(fault))
        .route("/fake/flags", post(flags))
        .route("/fake/trade", post(trade))
        .route("/fake/cancel", post(cancel))
        .route("/fake/shutdown", post(shutdown))
}

fn refused(message: &str) -> Response {
    respond(StatusCode::BAD_REQUEST, json!({ "error": message }))
}

fn parse<T: for<'de> Deserialize<'de>>(body: &str) -> Result<T, String> {
    model::parse_strict(body).map_err(|bad| bad.message)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    advance_s: Option<i64>,
    to_ms: Option<i64>,
    /// Lock-step: each public `GET /time` moves the clock this far …
    step_on_public_time_s: Option<i64>,
    /// … until this market time.
    until_ms: Option<i64>,
}

async fn clock(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let request: ClockRequest = match parse(&body) {
        Ok(request) => request,
        Err(message) => return refused(&message),
    };
    let mut inner = shared.synced();
    if let (Some(step_s), Some(until_ms)) = (request.step_on_public_time_s, request.until_ms) {
        if step_s <= 0 {
            return refused("step_on_public_time_s must be above 0");
        }
        inner.step_on_public_time = Some((step_s.saturating_mul(1000), until_ms));
        return respond(StatusCode::OK, json!({ "now_ms": inner.exchange.now_ms }));
    }
    let now = inner.exchange.now_ms;
    let to_ms = match (request.advance_s, request.to_ms) {
        (Some(s), None) => now.saturating_add(s.saturating_mul(1000)),
        (None, Some(ms)) => ms,
        _ => return refused("give exactly one of advance_s and to_ms"),
    };
    if to_ms.saturating_sub(now) > CLOCK_STEP_MS_MAX {
        return refused("the clock moves at most ten years at a time");
    }
    let market = &shared.market;
    if let Err(e) = inner
        .exchange
        .advance(to_ms, &|product, open_ms| market.bar(product, open_ms))
    {
        return refused(&format!(
            "the clock never goes backwards (now {}, asked {})",
            e.now_ms, e.to_ms
        ));
    }
    inner.clock.anchor(to_ms);
    shared.persist(&inner);
    respond(StatusCode::OK, json!({ "now_ms": inner.exchange.now_ms }))
}

async fn state(State(shared): State<Arc<Shared>>) -> Response {
    let inner = shared.synced();
    let x = &inner.exchange;
    let holds = x.holds();
    let balances: BTreeMap<&String, Value> = x
        .balances
        .iter()
        .map(|(currency, total)| {
            let hold = holds.get(currency).copied().unwrap_or_default();
            let available = model::num(*total - hold);
            (
                currency,
                json!({"available": available, "hold": model::num(hold)}),
            )
        })
        .collect();
    let mut created: BTreeMap<&str, u64> = BTreeMap::new();
    for o in x.orders.iter().filter(|o| !o.client_order_id.is_empty()) {
        *created.entry(o.client_order_id.as_str()).or_default() += 1;
    }
    let requests: Vec<Value> = inner
        .requests
        .iter()
        .map(|(method, path, status)| json!({"method": method, "path": path, "status": status}))
        .collect();
    respond(
        StatusCode::OK,
        json!({
            "now_ms": x.now_ms,
            "balances": balances,
            "orders": x.orders.iter().map(|o| model::order_json(x, o)).collect::<Vec<_>>(),
            "fills": x.fills.iter().map(|f| model::fill_json(x, f)).collect::<Vec<_>>(),
            "creates": inner.creates,
            "orders_created_per_client_order_id": created,
            "requests": requests,
            "auth_failures": inner.auth_failures,
            "faults": inner.faults.describe(),
        }),
    )
}

async fn fault(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let request: faults::FaultRequest = match parse(&body) {
        Ok(request) => request,
        Err(message) => return refused(&message),
    };
    let armed = match faults::parse(&request) {
        Ok(armed) => armed,
        Err(message) => return refused(&message),
    };
    let mut inner = shared.lock();
    match armed {
        Armed::Fault(fault) => inner.faults.arm(fault, &request),
        Armed::Restart { down_s } => {
            inner.down_until = Some(Instant::now() + Duration::from_secs(down_s));
        }
    }
    respond(StatusCode::OK, json!({ "armed": inner.faults.describe() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlagsRequest {
    product_id: String,
    trading_disabled: Option<bool>,
    cancel_only: Option<bool>,
    limit_only: Option<bool>,
    post_only: Option<bool>,
}

async fn flags(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let request: FlagsRequest = match parse(&body) {
        Ok(request) => request,
        Err(message) => return refused(&message),
    };
    let mut inner = shared.synced();
    let Some(rules) = inner.exchange.products.get_mut(&request.product_id) else {
        return refused(&format!("unknown product {}", request.product_id));
    };
    let flags = &mut rules.flags;
    for (slot, value) in [
        (&mut flags.trading_disabled, request.trading_disabled),
        (&mut flags.cancel_only, request.cancel_only),
        (&mut flags.limit_only, request.limit_only),
        (&mut flags.post_only, request.post_only),
    ] {
        if let Some(value) = value {
            *slot = value;
        }
    }
    let answer = json!({
        "product_id": request.product_id,
        "trading_disabled": flags.trading_disabled,
        "cancel_only": flags.cancel_only,
        "limit_only": flags.limit_only,
        "post_only": flags.post_only,
    });
    shared.persist(&inner);
    respond(StatusCode::OK, answer)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TradeRequest {
    product_id: String,
    side: String,
    base_size: String,
}

/// Someone trading by hand in the account: a market order the client did
/// not make (its client order id is a fresh uuid, not the client's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelRequest {
    order_id: String,
}

/// Someone cancelling an order by hand (the website, another program): a
/// bracket child cancelled this way leaves the position unprotected.
async fn cancel(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let request: CancelRequest = match parse(&body) {
        Ok(request) => request,
        Err(message) => return refused(&message),
    };
    let mut inner = shared.synced();
    let cancelled = inner.exchange.cancel(&request.order_id);
    shared.persist(&inner);
    match cancelled {
        Ok(()) => respond(StatusCode::OK, json!({ "order_id": request.order_id })),
        Err(failure) => refused(&format!("not cancelled: {failure:?}")),
    }
}

async fn trade(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let request: TradeRequest = match parse(&body) {
        Ok(request) => request,
        Err(message) => return refused(&message),
    };
    let side = match model::parse_side(&request.side) {
        Ok(side) => side,
        Err(bad) => return refused(&bad.message),
    };
    let Ok(base_size) = request.base_size.parse::<Decimal>() else {
        return refused("base_size is not a decimal number");
    };
    let mut inner = shared.synced();
    let client_order_id = inner.exchange.next_id();
    let new = NewOrder {
        client_order_id,
        product_id: request.product_id.clone(),
        side,
        config: NewConfig::Market { base_size },
        bracket: None,
    };
    let price = shared.current_price(&inner, &request.product_id);
    let created = inner
        .exchange
        .create(&new, price, OrderFaults::default(), true);
    shared.persist(&inner);
    match created {
        Ok(created) => respond(StatusCode::OK, json!({ "order_id": created.order_id })),
        Err(rejection) => refused(&format!(
            "{}: {}",
            rejection.reason.codes().0,
            rejection.details
        )),
    }
}

async fn shutdown(State(shared): State<Arc<Shared>>) -> Response {
    shared.shutdown.send_replace(true);
    respond(StatusCode::OK, json!({ "ok": true }))
}
