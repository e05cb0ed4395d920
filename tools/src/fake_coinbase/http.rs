//! The HTTP face of the fake: Coinbase Advanced Trade's routes under
//! `/api/v3/brokerage`, and the gate every request passes first (a restart
//! in progress, armed request faults, authentication, the Date header, the
//! request log). The control API (`/fake/...`) is in `control.rs`.

use super::faults::Fault;
use super::matching::{NewOrder, OrderFaults, Quote, Reason, Rejection, Status};
use super::model::{self, BadRequest};
use super::{auth, Shared, REQUEST_LOG_MAX};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const PREFIX: &str = "/api/v3/brokerage";

/// Every route, behind the gate.
pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/api/v3/brokerage/time", get(time))
        .route("/api/v3/brokerage/market/products", get(products))
        .route("/api/v3/brokerage/market/products/{id}", get(product))
        .route(
            "/api/v3/brokerage/market/products/{id}/candles",
            get(candles),
        )
        .route("/api/v3/brokerage/products", get(products))
        .route("/api/v3/brokerage/products/{id}", get(product))
        .route("/api/v3/brokerage/products/{id}/candles", get(candles))
        .route("/api/v3/brokerage/accounts", get(accounts))
        .route("/api/v3/brokerage/orders", post(create_order))
        .route("/api/v3/brokerage/orders/preview", post(preview_order))
        .route("/api/v3/brokerage/orders/batch_cancel", post(batch_cancel))
        .route(
            "/api/v3/brokerage/orders/historical/batch",
            get(list_orders),
        )
        .route("/api/v3/brokerage/orders/historical/fills", get(list_fills))
        .route("/api/v3/brokerage/orders/historical/{id}", get(get_order));
    super::control::routes(api)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

pub fn respond(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn bad_request(bad: &BadRequest) -> Response {
    respond(
        StatusCode::BAD_REQUEST,
        model::error_body(bad.error, &bad.message),
    )
}

fn invalid_argument(message: &str) -> Response {
    respond(
        StatusCode::BAD_REQUEST,
        model::error_body("INVALID_ARGUMENT", message),
    )
}

async fn not_found() -> Response {
    respond(
        StatusCode::NOT_FOUND,
        model::error_body("NOT_FOUND", "Not Found"),
    )
}

/// Whether a path needs a token: all of the API but the server time and the
/// public market data.
fn needs_auth(path: &str) -> bool {
    path.starts_with(PREFIX)
        && path != "/api/v3/brokerage/time"
        && !path.starts_with("/api/v3/brokerage/market/")
}

/// Runs before every handler, on a task of its own: like a real server, the
/// fake finishes a request whose client hung up (a stalled create lands).
async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    tokio::spawn(pass(shared, request, next))
        .await
        .unwrap_or_else(|_| {
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                model::error_body("INTERNAL", "fake-coinbase: the request failed"),
            )
        })
}

/// The control API passes straight through; an API request meets a restart,
/// an armed fault or the authentication check; every answer gets a Date.
async fn pass(shared: Arc<Shared>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let mut response = if path.starts_with("/fake/") {
        next.run(request).await
    } else {
        let presented = (
            header_text(&request, header::HOST),
            header_text(&request, header::AUTHORIZATION),
        );
        match shared.admit(&method, &path, presented).await {
            Some(refused) => refused,
            None => next.run(request).await,
        }
    };
    if let Ok(date) = HeaderValue::from_str(&model::http_date(shared.auth_now_ms())) {
        response.headers_mut().insert(header::DATE, date);
    }
    if !path.starts_with("/fake/") {
        let mut inner = shared.lock();
        if inner.requests.len() >= REQUEST_LOG_MAX {
            inner.requests.pop_front();
        }
        let status = response.status().as_u16();
        inner.requests.push_back((method, path, status));
    }
    response
}

fn header_text(request: &Request, name: header::HeaderName) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Shared {
    /// Refuses an API request (a restart, a fault, a bad token), or admits it.
    /// `presented`: the request's Host and Authorization headers.
    async fn admit(
        &self,
        method: &str,
        path: &str,
        presented: (Option<String>, Option<String>),
    ) -> Option<Response> {
        if self.restarting() {
            return Some(respond(
                StatusCode::BAD_GATEWAY,
                json!({"error": "BAD_GATEWAY", "message": "fake-coinbase is restarting"}),
            ));
        }
        let fault = self.lock().faults.take_request_fault(method, path);
        match fault {
            Some(Fault::RateLimit { retry_after_s }) => {
                let body = json!({"errors": [{"id": "rate_limit_exceeded", "message": "Too many requests"}]});
                let mut response = respond(StatusCode::TOO_MANY_REQUESTS, body);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
                return Some(response);
            }
            Some(Fault::ServerError { status }) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let body = model::error_body("INTERNAL", "fake-coinbase: injected server error");
                return Some(respond(status, body));
            }
            Some(Fault::Stall { seconds }) => {
                tokio::time::sleep(Duration::from_secs(seconds)).await
            }
            _ => {}
        }
        if !needs_auth(path) {
            return None;
        }
        let (host, authorization) = presented;
        let presented = auth::Presented {
            method,
            host: host.as_deref().unwrap_or(""),
            path,
            authorization: authorization.as_deref(),
            now_s: self.auth_now_ms().div_euclid(1000),
        };
        let why = self.verifier.verify(&presented).err()?;
        self.lock().auth_failures += 1;
        let body = model::error_body("UNAUTHENTICATED", &why);
        Some(respond(StatusCode::UNAUTHORIZED, body))
    }
}

// ---------------------------------------------------------------------------
// Query strings (repeatable keys: `product_ids=A&product_ids=B`).

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(text.get(i + 1..i + 3).unwrap_or(""), 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query's pairs, decoded, in order.
fn query_pairs(query: &Option<String>) -> Vec<(String, String)> {
    query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn values(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

fn value(pairs: &[(String, String)], key: &str) -> Option<String> {
    values(pairs, key).into_iter().next()
}

/// `limit` (default `default`, at most `max`) and `cursor` (an offset).
fn page(pairs: &[(String, String)], default: usize, max: usize) -> Result<(usize, usize), String> {
    let limit = match value(pairs, "limit") {
        None => default,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| "limit is not a whole number".to_string())?
            .clamp(1, max),
    };
    let offset = match value(pairs, "cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| "cursor is invalid".to_string())?,
    };
    Ok((limit, offset))
}

// ---------------------------------------------------------------------------
// Market data.

async fn time(State(shared): State<Arc<Shared>>, headers: axum::http::HeaderMap) -> Response {
    let mut inner = shared.synced();
    let public = !headers.contains_key(axum::http::header::AUTHORIZATION);
    if let Some((step_ms, until_ms)) = inner.step_on_public_time.filter(|_| public) {
        let to_ms = inner.exchange.now_ms.saturating_add(step_ms).min(until_ms);
        if to_ms > inner.exchange.now_ms {
            let market = &shared.market;
            let _ = inner
                .exchange
                .advance(to_ms, &|product, open_ms| market.bar(product, open_ms));
            inner.clock.anchor(to_ms);
            shared.persist(&inner);
        }
    }
    let now = inner.exchange.now_ms;
    drop(inner);
    respond(
        StatusCode::OK,
        json!({
            "iso": model::time_millis(now),
            "epochSeconds": now.div_euclid(1000).to_string(),
            "epochMillis": now.to_string(),
        }),
    )
}

fn granularity_s(name: &str) -> Option<i64> {
    super::market::GRANULARITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
}

async fn candles(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(&query);
    if !shared.market.has_product(&id) {
        return respond(
            StatusCode::NOT_FOUND,
            model::error_body("NOT_FOUND", "product not found"),
        );
    }
    let Some(granularity) = value(&pairs, "granularity").and_then(|g| granularity_s(&g)) else {
        return invalid_argument("granularity argument is invalid");
    };
    // Unix seconds up to the year 5138: no arithmetic on them can overflow.
    let parse = |key: &str| {
        value(&pairs, key)
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|s| (0..=100_000_000_000).contains(s))
    };
    let (Some(start), Some(end)) = (parse("start"), parse("end")) else {
        return invalid_argument("start and end argument is invalid");
    };
    let now = shared.synced().exchange.now_ms;
    match shared.market.candles(&id, start, end, granularity, now) {
        Ok(bars) => {
            let candles: Vec<Value> = bars.iter().map(model::candle_json).collect();
            respond(StatusCode::OK, json!({ "candles": candles }))
        }
        Err(e) => invalid_argument(&e.0),
    }
}

fn product_value(shared: &Shared, inner: &super::Inner, id: &str) -> Option<Value> {
    let rules = inner.exchange.products.get(id)?;
    let now = inner.exchange.now_ms;
    let day_ms = 86_400_000;
    let price = shared.market.last_closed(id, now).map(|b| b.close);
    let before = shared.market.last_closed(id, now - day_ms).map(|b| b.close);
    let change = match (price, before) {
        (Some(p), Some(b)) if !b.is_zero() => {
            ((p / b - Decimal::ONE) * Decimal::ONE_HUNDRED).round_dp(8)
        }
        _ => Decimal::ZERO,
    };
    let volume: Decimal = shared
        .market
        .closed_within(id, now, day_ms)
        .iter()
        .map(|b| b.volume)
        .sum();
    let figures = model::ProductFigures {
        price,
        change_24h_percent: change,
        volume_24h: volume,
    };
    Some(model::product_json(rules, &figures))
}

async fn product(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let inner = shared.synced();
    match product_value(&shared, &inner, &id) {
        Some(product) => respond(StatusCode::OK, product),
        None => respond(
            StatusCode::NOT_FOUND,
            model::error_body("NOT_FOUND", "product not found"),
        ),
    }
}

async fn products(State(shared): State<Arc<Shared>>) -> Response {
    let inner = shared.synced();
    let list: Vec<Value> = inner
        .exchange
        .products
        .keys()
        .filter_map(|id| product_value(&shared, &inner, id))
        .collect();
    respond(
        StatusCode::OK,
        json!({"products": list, "num_products": list.len(), "pagination": null}),
    )
}

// ---------------------------------------------------------------------------
// Accounts.

async fn accounts(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(&query);
    // Coinbase's documented page: 49 by default, at most 250.
    let (limit, offset) = match page(&pairs, 49, 250) {
        Ok(page) => page,
        Err(message) => return invalid_argument(&message),
    };
    let inner = shared.synced();
    let x = &inner.exchange;
    let holds = x.holds();
    // USD first, then the base currencies.
    let mut currencies: Vec<&String> = x.balances.keys().filter(|c| *c == "USD").collect();
    currencies.extend(x.balances.keys().filter(|c| *c != "USD"));
    let all: Vec<Value> = currencies
        .iter()
        .map(|c| {
            let hold = holds.get(*c).copied().unwrap_or_default();
            let total = x.balances.get(*c).copied().unwrap_or_default();
            model::account_json(x, c, total - hold, hold, shared.started_ms)
        })
        .collect();
    let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
    let has_next = offset + page.len() < all.len();
    let cursor = if has_next {
        (offset + page.len()).to_string()
    } else {
        String::new()
    };
    respond(
        StatusCode::OK,
        json!({"accounts": page, "has_next": has_next, "cursor": cursor, "size": page.len()}),
    )
}

// ---------------------------------------------------------------------------
// Orders.

/// The `order_configuration` a body carried, echoed in the answer.
fn echoed_configuration(body: &str) -> Value {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("order_configuration").cloned())
        .unwrap_or_else(|| json!({}))
}

/// The refusal an armed create fault stands for.
fn fault_rejection(fault: &Fault) -> Option<Rejection> {
    let reason = match fault {
        Fault::InsufficientFund => Reason::InsufficientFund,
        Fault::PostOnlyReject => Reason::InvalidLimitPricePostOnly,
        Fault::BracketPriceError => Reason::InvalidBracketPrices,
        _ => return None,
    };
    let details = if reason == Reason::InsufficientFund {
        String::new()
    } else {
        "fake-coinbase: injected fault".to_string()
    };
    Some(Rejection { reason, details })
}

async fn create_order(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let request: model::CreateOrderRequest = match model::parse_strict(&body) {
        Ok(request) => request,
        Err(bad) => return bad_request(&bad),
    };
    if request.client_order_id.is_empty() {
        return invalid_argument("client_order_id is required");
    }
    let echo = echoed_configuration(&body);
    let mut inner = shared.synced();
    *inner
        .creates
        .entry(request.client_order_id.clone())
        .or_default() += 1;
    let lose = inner.faults.take_create_fault(&Fault::LoseCreateResponse);
    let answer = create_locked(&shared, &mut inner, &request, echo);
    shared.persist(&inner);
    drop(inner);
    if lose {
        return respond(
            StatusCode::BAD_GATEWAY,
            json!({"error": "BAD_GATEWAY", "message": "fake-coinbase: the answer was lost"}),
        );
    }
    answer
}

fn create_locked(
    shared: &Shared,
    inner: &mut super::Inner,
    request: &model::CreateOrderRequest,
    echo: Value,
) -> Response {
    if let Some(existing) = inner.exchange.by_client_order_id(&request.client_order_id) {
        // Documented: a repeated client_order_id returns the existing order.
        let configuration = model::order_configuration(existing);
        return respond(
            StatusCode::OK,
            model::create_success(existing, configuration),
        );
    }
    let new = match model::new_order(
        &request.client_order_id,
        &request.product_id,
        &request.side,
        &request.order_configuration,
        request.attached_order_configuration.as_ref(),
    ) {
        Err(bad) => return bad_request(&bad),
        Ok(Err(rejection)) => {
            return respond(StatusCode::OK, model::create_failure(&rejection, echo))
        }
        Ok(Ok(new)) => new,
    };
    let price = shared.current_price(inner, &new.product_id);
    if let Err(rejection) = inner.exchange.check(&new, price) {
        return respond(StatusCode::OK, model::create_failure(&rejection, echo));
    }
    if let Some(rejection) = inner
        .faults
        .take_create_refusal()
        .as_ref()
        .and_then(fault_rejection)
    {
        return respond(StatusCode::OK, model::create_failure(&rejection, echo));
    }
    let faults = OrderFaults {
        withhold_child: new.bracket.is_some()
            && inner.faults.take_create_fault(&Fault::WithholdBracket),
        parts: if matches!(new.config, super::matching::NewConfig::Limit { .. }) {
            inner.faults.take_partial_fill().unwrap_or(0)
        } else {
            0
        },
    };
    match inner.exchange.create(&new, price, faults, false) {
        Ok(created) => match inner.exchange.order(&created.order_id) {
            Some(order) => respond(StatusCode::OK, model::create_success(order, echo)),
            None => respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "INTERNAL"}),
            ),
        },
        Err(rejection) => respond(StatusCode::OK, model::create_failure(&rejection, echo)),
    }
}

/// The preview's figures for an order, accepted or not.
fn preview_figures(
    new: &NewOrder,
    quote: Option<Quote>,
    price: Option<Decimal>,
    fees: &super::matching::Fees,
) -> Quote {
    quote.unwrap_or_else(|| {
        let price = match new.config {
            super::matching::NewConfig::Limit { limit_price, .. } => limit_price,
            super::matching::NewConfig::Market { .. } => price.unwrap_or_default(),
        };
        let value = new.config.base_size() * price;
        Quote {
            price,
            value,
            commission: fees.fee(value, super::matching::Liquidity::Taker),
        }
    })
}

async fn preview_order(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let request: model::PreviewOrderRequest = match model::parse_strict(&body) {
        Ok(request) => request,
        Err(bad) => return bad_request(&bad),
    };
    let new = match model::new_order(
        "",
        &request.product_id,
        &request.side,
        &request.order_configuration,
        request.attached_order_configuration.as_ref(),
    ) {
        Err(bad) => return bad_request(&bad),
        Ok(converted) => converted,
    };
    let mut inner = shared.synced();
    inner.previews += 1;
    let preview_id = super::matching::uuid_from(
        &format!("{}-preview", inner.exchange.id_seed),
        inner.previews,
    );
    let new = match new {
        Ok(new) => new,
        Err(rejection) => {
            let (_, preview, _) = rejection.reason.codes();
            return respond(
                StatusCode::OK,
                preview_body(&[preview], None, None, &preview_id),
            );
        }
    };
    let price = shared.current_price(&inner, &new.product_id);
    let (errs, quote) = match inner.exchange.check(&new, price) {
        Ok(quote) => (vec![], Some(quote)),
        Err(rejection) => (vec![rejection.reason.codes().1], None),
    };
    let figures = preview_figures(&new, quote, price, &inner.exchange.fees);
    respond(
        StatusCode::OK,
        preview_body(&errs, Some((&new, figures)), price, &preview_id),
    )
}

fn preview_body(
    errs: &[&str],
    order: Option<(&NewOrder, Quote)>,
    price: Option<Decimal>,
    preview_id: &str,
) -> Value {
    let (total, commission, quote_size, base_size) = match order {
        Some((new, q)) => {
            let total = match new.side {
                super::matching::Side::Buy => q.value + q.commission,
                super::matching::Side::Sell => q.value - q.commission,
            };
            (
                model::num(total),
                model::num(q.commission),
                model::num(q.value),
                model::num(new.config.base_size()),
            )
        }
        None => ("0".into(), "0".into(), "0".into(), "0".into()),
    };
    let best = price.map_or_else(String::new, model::num);
    json!({
        "order_total": total, "commission_total": commission, "errs": errs, "warning": [],
        "quote_size": quote_size, "base_size": base_size, "best_bid": best, "best_ask": best,
        "is_max": false, "order_margin_total": "0", "leverage": "1", "long_leverage": "1",
        "short_leverage": "1", "slippage": "0", "preview_id": preview_id,
        "current_liquidation_buffer": "", "projected_liquidation_buffer": "", "max_leverage": "",
        "pnl_configuration": null, "twap_bid_price": "", "twap_ask_price": "",
    })
}

async fn batch_cancel(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let request: model::BatchCancelRequest = match model::parse_strict(&body) {
        Ok(request) => request,
        Err(bad) => return bad_request(&bad),
    };
    let mut inner = shared.synced();
    let results: Vec<Value> = request
        .order_ids
        .iter()
        .map(|id| match inner.exchange.cancel(id) {
            Ok(()) => json!({"success": true, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": id}),
            Err(failure) => json!({"success": false, "failure_reason": failure.code(), "order_id": id}),
        })
        .collect();
    shared.persist(&inner);
    respond(StatusCode::OK, json!({ "results": results }))
}

async fn get_order(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let inner = shared.synced();
    match inner.exchange.order(&id) {
        Some(order) => respond(
            StatusCode::OK,
            json!({"order": model::order_json(&inner.exchange, order)}),
        ),
        None => respond(
            StatusCode::NOT_FOUND,
            model::error_body("NOT_FOUND", "order with this orderID was not found"),
        ),
    }
}

async fn list_orders(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(&query);
    let (limit, offset) = match page(&pairs, 100, 1000) {
        Ok(page) => page,
        Err(message) => return invalid_argument(&message),
    };
    let products = values(&pairs, "product_ids");
    let mut statuses = Vec::new();
    for name in values(&pairs, "order_status") {
        match Status::parse(&name) {
            Some(status) => statuses.push(status),
            None => return invalid_argument(&format!("order_status {name:?} is invalid")),
        }
    }
    if statuses.contains(&Status::Open) && statuses.len() > 1 {
        return invalid_argument("OPEN may not be combined with other order statuses");
    }
    let inner = shared.synced();
    let x = &inner.exchange;
    let matching: Vec<Value> = x
        .orders
        .iter()
        .rev()
        .filter(|o| products.is_empty() || products.contains(&o.product_id))
        .filter(|o| statuses.is_empty() || statuses.contains(&o.status))
        .map(|o| model::order_json(x, o))
        .collect();
    let page: Vec<Value> = matching.iter().skip(offset).take(limit).cloned().collect();
    let has_next = offset + page.len() < matching.len();
    let cursor = if has_next {
        (offset + page.len()).to_string()
    } else {
        String::new()
    };
    respond(
        StatusCode::OK,
        json!({"orders": page, "sequence": "0", "has_next": has_next, "cursor": cursor}),
    )
}

async fn list_fills(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(&query);
    let (limit, offset) = match page(&pairs, 100, 1000) {
        Ok(page) => page,
        Err(message) => return invalid_argument(&message),
    };
    let order_ids = values(&pairs, "order_ids");
    let products = values(&pairs, "product_ids");
    let since_ms = match value(&pairs, "start_sequence_timestamp").filter(|s| !s.is_empty()) {
        None => i64::MIN,
        Some(text) => match chrono::DateTime::parse_from_rfc3339(&text) {
            Ok(t) => t.timestamp_millis(),
            Err(_) => return invalid_argument("start_sequence_timestamp is not RFC 3339"),
        },
    };
    let inner = shared.synced();
    let x = &inner.exchange;
    let matching: Vec<Value> = x
        .fills
        .iter()
        .rev()
        .filter(|f| order_ids.is_empty() || order_ids.contains(&f.order_id))
        .filter(|f| products.is_empty() || products.contains(&f.product_id))
        .filter(|f| f.sequence_ms >= since_ms)
        .map(|f| model::fill_json(x, f))
        .collect();
    let page: Vec<Value> = matching.iter().skip(offset).take(limit).cloned().collect();
    let more = offset + page.len() < matching.len();
    let cursor = if more {
        (offset + page.len()).to_string()
    } else {
        String::new()
    };
    respond(StatusCode::OK, json!({"fills": page, "cursor": cursor}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_and_repeat() {
        let pairs = query_pairs(&Some(
            "product_ids=BTC-USD&product_ids=ETH%2DUSD&x=a+b&y=%zz".into(),
        ));
        assert_eq!(values(&pairs, "product_ids"), vec!["BTC-USD", "ETH-USD"]);
        assert_eq!(value(&pairs, "x").as_deref(), Some("a b"));
        assert_eq!(value(&pairs, "y").as_deref(), Some("%zz"));
    }

    #[test]
    fn only_time_and_market_data_are_public() {
        assert!(!needs_auth("/api/v3/brokerage/time"));
        assert!(!needs_auth(
            "/api/v3/brokerage/market/products/BTC-USD/candles"
        ));
        assert!(needs_auth("/api/v3/brokerage/products/BTC-USD/candles"));
        assert!(needs_auth("/api/v3/brokerage/orders"));
    }
}
