//! The fake Coinbase exchange over HTTP: started in-process on 127.0.0.1:0
//! with real cached candles, called with reqwest and tokens signed here (a
//! small signer of the test's own, sharing nothing with the fake's verifier).
//! Authentication, candles, order shapes against the real samples, faults,
//! idempotency, preview and the control API.

use anx_tools::fake_coinbase::matching::ChildAppears;
use anx_tools::fake_coinbase::{serve, Config, Handle};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// 2024-05-01T00:00:00Z: inside the cached candles.
const START_MS: i64 = 1_714_521_600_000;
const HOUR_S: i64 = 3600;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn candles_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/candles");
    assert!(
        dir.join("COINBASE_BTC-USD_1h.csv").is_file(),
        "the candle cache is missing: {} must hold COINBASE_BTC-USD_1h.csv",
        dir.display()
    );
    dir
}

fn key_path(name: &str) -> PathBuf {
    repo().join("tests/fixtures/keys").join(name)
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The test's own CDP signer.
enum Key {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

struct Signer {
    name: String,
    key: Key,
}

impl Signer {
    fn load(file: &str) -> Signer {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let text = std::fs::read_to_string(key_path(file)).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        let private = json["privateKey"].as_str().unwrap();
        let key = if private.contains("EC PRIVATE KEY") {
            let secret = p256::SecretKey::from_sec1_pem(private).unwrap();
            Key::Es256(p256::ecdsa::SigningKey::from(&secret))
        } else if private.contains("PRIVATE KEY") {
            Key::EdDsa(ed25519_dalek::SigningKey::from_pkcs8_pem(private).unwrap())
        } else {
            let bytes = STANDARD.decode(private).unwrap();
            Key::EdDsa(ed25519_dalek::SigningKey::from_bytes(
                bytes[..32].try_into().unwrap(),
            ))
        };
        Signer {
            name: json["name"].as_str().unwrap().to_string(),
            key,
        }
    }

    fn sign(&self, uri: &str, nbf: i64, exp: i64, nonce: &str) -> String {
        let alg = match self.key {
            Key::Es256(_) => "ES256",
            Key::EdDsa(_) => "EdDSA",
        };
        let header = json!({"alg": alg, "kid": self.name, "nonce": nonce, "typ": "JWT"});
        let claims = json!({"sub": self.name, "iss": "cdp", "nbf": nbf, "exp": exp, "uri": uri});
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match &self.key {
            Key::Es256(key) => {
                use p256::ecdsa::signature::Signer as _;
                let sig: p256::ecdsa::Signature = key.sign(signed.as_bytes());
                sig.to_bytes().to_vec()
            }
            Key::EdDsa(key) => {
                use ed25519_dalek::Signer as _;
                key.sign(signed.as_bytes()).to_bytes().to_vec()
            }
        };
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

struct Fake {
    url: String,
    host: String,
    handle: Option<Handle>,
    signer: Signer,
    client: reqwest::Client,
    nonces: u64,
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Fake {
    async fn start(key: &str, tweak: impl FnOnce(&mut Config)) -> Fake {
        let mut config = Config::new(
            candles_dir(),
            vec!["BTC-USD".into(), "ETH-USD".into()],
            3600,
            START_MS,
            key_path(key),
        );
        tweak(&mut config);
        let (address, handle) = serve(config).await.expect("the fake starts");
        Fake {
            url: format!("http://{address}"),
            host: address.to_string(),
            handle: Some(handle),
            signer: Signer::load(key),
            client: reqwest::Client::new(),
            nonces: 0,
        }
    }

    async fn stop(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
    }

    fn nonce(&mut self) -> String {
        self.nonces += 1;
        format!("{:016x}{:08x}", now_s(), self.nonces)
    }

    /// A valid token for `method path` (path without its query).
    fn token(&mut self, method: &str, path: &str) -> String {
        let uri = format!("{method} {}{}", self.host, path.split('?').next().unwrap());
        let nonce = self.nonce();
        self.signer.sign(&uri, now_s(), now_s() + 120, &nonce)
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<String>,
        body: Option<String>,
    ) -> Reply {
        let url = format!("{}{path}", self.url);
        let mut request = match method {
            "GET" => self.client.get(url),
            _ => self.client.post(url),
        };
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("the fake answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Reply {
        let token = self.token("GET", path);
        self.send("GET", path, Some(token), None).await
    }

    async fn post(&mut self, path: &str, body: &Value) -> Reply {
        let token = self.token("POST", path);
        self.send("POST", path, Some(token), Some(body.to_string()))
            .await
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let reply = self.send("POST", path, None, Some(body.to_string())).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        reply.body
    }

    async fn state(&self) -> Value {
        self.send("GET", "/fake/state", None, None).await.body
    }

    async fn advance_hours(&self, hours: i64) {
        self.control("/fake/clock", json!({"advance_s": hours * HOUR_S}))
            .await;
    }

    /// The close of the newest closed BTC-USD bar.
    async fn last_close(&mut self) -> rust_decimal::Decimal {
        let product = self.get("/api/v3/brokerage/products/BTC-USD").await.body;
        product["price"].as_str().unwrap().parse().unwrap()
    }
}

fn sample(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/coinbase")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

fn limit_entry(cid: &str, size: &str, limit: &str, bracket: Option<(&str, &str)>) -> Value {
    let mut body = json!({
        "client_order_id": cid,
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": {"limit_limit_gtc": {"base_size": size, "limit_price": limit, "post_only": false}},
    });
    if let Some((tp, stop)) = bracket {
        body["attached_order_configuration"] =
            json!({"trigger_bracket_gtc": {"limit_price": tp, "stop_trigger_price": stop}});
    }
    body
}

fn cents(value: rust_decimal::Decimal) -> String {
    value.round_dp(2).to_string()
}

#[tokio::test]
async fn es256_and_ed25519_tokens_are_accepted() {
    for key in ["ecdsa.json", "ed25519.json", "ed25519-pem.json"] {
        let mut fake = Fake::start(key, |_| {}).await;
        let reply = fake.get("/api/v3/brokerage/accounts").await;
        assert_eq!(reply.status, 200, "{key}: {}", reply.body);
        let accounts = reply.body["accounts"].as_array().unwrap();
        assert_eq!(accounts.len(), 3, "USD, BTC, ETH");
        assert_eq!(accounts[0]["currency"], "USD");
        assert_eq!(accounts[0]["available_balance"]["value"], "10000");
        assert_eq!(accounts[0]["type"], "ACCOUNT_TYPE_FIAT");
        let date = reply.headers["date"].to_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc2822(date).is_ok(), "{date}");
        fake.stop().await;
    }
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let fake = Fake::start("ecdsa.json", |_| {}).await;
    let path = "/api/v3/brokerage/accounts";
    let uri = format!("GET {}{path}", fake.host);
    let other = Signer::load("ecdsa-other.json");
    let renamed = Signer {
        name: "organizations/x/apiKeys/someone-else".into(),
        key: Signer::load("ecdsa.json").key,
    };
    let eddsa = Signer::load("ed25519.json");
    let now = now_s();
    let cases = [
        ("no token", None),
        ("garbled", Some("not.a.jwt".to_string())),
        ("wrong key", Some(other.sign(&uri, now, now + 120, "n1"))),
        (
            "kid and sub not the key name",
            Some(renamed.sign(&uri, now, now + 120, "n8")),
        ),
        (
            "EdDSA for an ES256 key",
            Some(eddsa.sign(&uri, now, now + 120, "n9")),
        ),
        (
            "wrong path",
            Some(fake.signer.sign(
                &format!("GET {}/api/v3/brokerage/orders", fake.host),
                now,
                now + 120,
                "n2",
            )),
        ),
        (
            "wrong method",
            Some(
                fake.signer
                    .sign(&format!("POST {}{path}", fake.host), now, now + 120, "n3"),
            ),
        ),
        (
            "wrong host",
            Some(
                fake.signer
                    .sign(&format!("GET api.coinbase.com{path}"), now, now + 120, "n4"),
            ),
        ),
        (
            "expired",
            Some(fake.signer.sign(&uri, now - 200, now - 80, "n5")),
        ),
        (
            "not yet valid",
            Some(fake.signer.sign(&uri, now + 60, now + 120, "n6")),
        ),
        (
            "too long",
            Some(fake.signer.sign(&uri, now, now + 300, "n7")),
        ),
    ];
    for (why, token) in &cases {
        let reply = fake.send("GET", path, token.clone(), None).await;
        assert_eq!(reply.status, 401, "{why}");
        assert_eq!(reply.body["error"], "UNAUTHENTICATED", "{why}");
        assert_eq!(reply.body["error_details"], reply.body["message"], "{why}");
    }
    let token = fake.signer.sign(&uri, now, now + 120, "once");
    assert_eq!(
        fake.send("GET", path, Some(token.clone()), None)
            .await
            .status,
        200
    );
    assert_eq!(
        fake.send("GET", path, Some(token), None).await.status,
        401,
        "a reused nonce"
    );
    assert_eq!(fake.state().await["auth_failures"], cases.len() + 1);
    fake.stop().await;
}

#[tokio::test]
async fn a_skewed_auth_clock_refuses_tokens_from_the_future_and_dates_answers() {
    let mut fake = Fake::start("ecdsa.json", |c| c.auth_clock_offset_s = -3600).await;
    let reply = fake.get("/api/v3/brokerage/accounts").await;
    assert_eq!(reply.status, 401);
    let date = reply.headers["date"].to_str().unwrap();
    let date_s = chrono::DateTime::parse_from_rfc2822(date)
        .unwrap()
        .timestamp();
    assert!((now_s() - 3600 - date_s).abs() <= 5, "{date}");
    fake.stop().await;
}

#[tokio::test]
async fn candles_are_closed_ones_newest_first() {
    let mut fake = Fake::start("ecdsa.json", |_| {}).await;
    let time = fake
        .send("GET", "/api/v3/brokerage/time", None, None)
        .await
        .body;
    assert_eq!(time["epochMillis"], START_MS.to_string());
    fake.control("/fake/clock", json!({"advance_s": 3 * HOUR_S + 1800}))
        .await;
    let start_s = START_MS / 1000;
    let query = format!(
        "?start={}&end={}&granularity=ONE_HOUR",
        start_s - 2 * HOUR_S,
        start_s + 10 * HOUR_S
    );
    let public = format!("/api/v3/brokerage/market/products/BTC-USD/candles{query}");
    let reply = fake.send("GET", &public, None, None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let starts: Vec<i64> = reply.body["candles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["start"].as_str().unwrap().parse().unwrap())
        .collect();
    let expected: Vec<i64> = (-2..3).rev().map(|h| start_s + h * HOUR_S).collect();
    assert_eq!(starts, expected, "closed bars only, newest first");
    let candle = &reply.body["candles"][0];
    assert_eq!(
        keys(candle),
        keys(&sample("get_product_candles_response__nautilus_BTC-USD_1h.json")["candles"][0])
    );
    let authed = format!("/api/v3/brokerage/products/BTC-USD/candles{query}");
    assert_eq!(fake.send("GET", &authed, None, None).await.status, 401);
    assert_eq!(fake.get(&authed).await.body, reply.body);
    let two_hours = format!("/api/v3/brokerage/market/products/BTC-USD/candles?start={start_s}&end={}&granularity=TWO_HOUR", start_s + 4 * HOUR_S);
    let coarse = fake.send("GET", &two_hours, None, None).await.body;
    assert_eq!(
        coarse["candles"].as_array().unwrap().len(),
        1,
        "only the first two hours closed"
    );
    let too_many = format!("/api/v3/brokerage/market/products/BTC-USD/candles?start={start_s}&end={}&granularity=ONE_HOUR", start_s + 301 * HOUR_S);
    let reply = fake.send("GET", &too_many, None, None).await;
    assert_eq!(
        (reply.status, reply.body["error"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    fake.stop().await;
}

/// Places "anx-1": 0.01 BTC, a limit 5% above the last close (it fills at
/// the next bar's open) with a wide bracket. (order id, child id, body, answer)
async fn place_bracketed_entry(fake: &mut Fake) -> (String, String, Value, Value) {
    let close = fake.last_close().await;
    let limit = cents(close * rust_decimal::Decimal::new(105, 2));
    let tp = cents(close * rust_decimal::Decimal::new(13, 1));
    let stop = cents(close * rust_decimal::Decimal::new(5, 1));
    let body = limit_entry("anx-1", "0.01", &limit, Some((&tp, &stop)));
    let reply = fake.post("/api/v3/brokerage/orders", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let success = &reply.body["success_response"];
    let order_id = success["order_id"].as_str().unwrap().to_string();
    let child_id = success["attached_order_id"].as_str().unwrap().to_string();
    (order_id, child_id, body, reply.body)
}

async fn order(fake: &mut Fake, id: &str) -> Value {
    let reply = fake
        .get(&format!("/api/v3/brokerage/orders/historical/{id}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["order"].clone()
}

#[tokio::test]
async fn a_created_order_has_coinbase_shapes() {
    let mut fake = Fake::start("ecdsa.json", |_| {}).await;
    let (order_id, child_id, body, created) = place_bracketed_entry(&mut fake).await;
    let real = sample("create_order_response__real_issue_market_sell_LTC-USD.json");
    assert_eq!(keys(&created), keys(&real));
    assert_eq!(created["success"], true);
    assert_eq!(created["failure_reason"], "UNKNOWN_FAILURE_REASON");
    assert_eq!(created["order_configuration"], body["order_configuration"]);
    assert_eq!(created["success_response"]["client_order_id"], "anx-1");
    assert_eq!(created["order_id"], order_id);
    let parent = order(&mut fake, &order_id).await;
    let fixture = sample("get_order_response__nautilus_fixture.json");
    for key in keys(&fixture["order"]) {
        assert!(parent.get(&key).is_some(), "the order lacks {key}");
    }
    assert_eq!(
        (parent["status"].as_str(), parent["order_type"].as_str()),
        (Some("OPEN"), Some("LIMIT"))
    );
    assert_eq!(parent["attached_order_id"], child_id);
    assert_eq!(parent["trigger_status"], "INVALID_ORDER_TYPE");
    assert_eq!(parent["fee"], "");
    let child = order(&mut fake, &child_id).await;
    assert_eq!(
        (
            child["order_type"].as_str(),
            child["trigger_status"].as_str()
        ),
        (Some("BRACKET"), Some("STOP_PENDING"))
    );
    assert_eq!(
        (child["side"].as_str(), child["client_order_id"].as_str()),
        (Some("SELL"), Some(""))
    );
    assert_eq!(child["originating_order_id"], order_id);
    assert_eq!(
        child["order_configuration"]["trigger_bracket_gtc"]["base_size"],
        "0.01"
    );
    let missing = fake
        .get("/api/v3/brokerage/orders/historical/no-such-order")
        .await;
    assert_eq!(
        (missing.status, missing.body["error"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    fake.stop().await;
}

#[tokio::test]
async fn a_filled_entry_shows_in_fills_orders_and_accounts() {
    let mut fake = Fake::start("ecdsa.json", |_| {}).await;
    let (order_id, child_id, _, _) = place_bracketed_entry(&mut fake).await;
    fake.advance_hours(1).await;
    let parent = order(&mut fake, &order_id).await;
    assert_eq!(parent["status"], "FILLED");
    assert_eq!(parent["completion_percentage"], "100.00");
    let fills = fake
        .get(&format!(
            "/api/v3/brokerage/orders/historical/fills?order_ids={order_id}"
        ))
        .await
        .body;
    let real_fills = sample("list_fills_response__ccxt_captured_ADA-USDT.json");
    assert_eq!(keys(&fills), keys(&real_fills));
    let fill = &fills["fills"][0];
    for key in keys(&real_fills["fills"][0]) {
        assert!(fill.get(&key).is_some(), "the fill lacks {key}");
    }
    assert_eq!(
        (fill["liquidity_indicator"].as_str(), fill["side"].as_str()),
        (Some("MAKER"), Some("BUY"))
    );
    assert_eq!(fills["cursor"], "", "no more pages");
    let open = fake
        .get("/api/v3/brokerage/orders/historical/batch?order_status=OPEN&product_ids=BTC-USD")
        .await
        .body;
    let ids: Vec<&str> = open["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![child_id.as_str()]);
    assert_eq!(open["has_next"], false);
    let all = fake
        .get("/api/v3/brokerage/orders/historical/batch?limit=1")
        .await
        .body;
    assert_eq!(all["orders"][0]["order_id"], child_id, "newest first");
    assert_eq!(
        (all["has_next"].as_bool(), all["cursor"].as_str()),
        (Some(true), Some("1"))
    );
    let mixed = fake
        .get("/api/v3/brokerage/orders/historical/batch?order_status=OPEN&order_status=FILLED")
        .await;
    assert_eq!(mixed.status, 400);
    let accounts = fake.get("/api/v3/brokerage/accounts").await.body;
    let btc = accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["currency"] == "BTC")
        .unwrap()
        .clone();
    assert_eq!(
        (
            btc["available_balance"]["value"].as_str(),
            btc["hold"]["value"].as_str()
        ),
        (Some("0"), Some("0.01"))
    );
    fake.stop().await;
}

#[tokio::test]
async fn refusals_match_the_real_samples() {
    let mut fake = Fake::start("ecdsa.json", |_| {}).await;
    let reply = fake
        .post(
            "/api/v3/brokerage/orders",
            &limit_entry("big", "10", "50000.00", None),
        )
        .await;
    assert_eq!(reply.status, 200);
    let real = sample("error_create_order_INSUFFICIENT_FUND__real_issue.json");
    assert_eq!(keys(&reply.body), keys(&real));
    assert_eq!(reply.body["error_response"], real["error_response"]);
    assert_eq!(
        (&reply.body["success"], &reply.body["order_id"]),
        (&real["success"], &real["order_id"])
    );

    fake.stop().await;
}

#[tokio::test]
async fn an_unknown_field_is_a_400_like_coinbase() {
    let mut fake = Fake::start("ecdsa.json", |_| {}).await;
    let mut unknown = limit_entry("x", "0.01", "50000.00", None);
    unknown["order_configuration"]["limit_limit_gtc"]["max_floor"] = json!("1");
    let text = unknown.to_string();
    let token = fake.token("POST", "/api/v3/brokerage/orders");
    let reply = fake
        .send(
            "POST",
            "/api/v3/brokerage/orders",
            Some(token),
            Some(text.clone()),
        )
        .await;
    assert_eq!(reply.status, 400);
    let column = text.find("\"max_floor\"").unwrap() + 1;
    let message = format!("proto: (line 1:{column}): unknown field \"max_floor\"");
    assert_eq!(
        reply.body,
        json!({"error": "unknown", "error_details": message, "message": message})
    );

    let mut sized = limit_entry("y", "0.01", "50000.00", Some(("60000.00", "40000.00")));
    sized["attached_order_configuration"]["trigger_bracket_gtc"]["base_size"] = json!("0.01");
    let reply = fake.post("/api/v3/brokerage/orders", &sized).await.body;
    assert_eq!(
        reply["error_response"]["error"],
        "ATTACHED_ORDER_SIZE_MUST_BE_NIL"
    );
    let bad = limit_entry("z", "0.01", "50000.00", Some(("40000.00", "30000.00")));
    let reply = fake.post("/api/v3/brokerage/orders", &bad).await.body;
    assert_eq!(reply["error_response"]["error"], "INVALID_BRACKET_PRICES");
    assert_eq!(
        reply["error_response"]["preview_failure_reason"],
        "PREVIEW_INVALID_BRACKET_PRICES"
    );
    let close = fake.last_close().await;
    let mut post_only = limit_entry(
        "p",
        "0.01",
        &cents(close * rust_decimal::Decimal::TWO),
        None,
    );
    post_only["order_configuration"]["limit_limit_gtc"]["post_only"] = json!(true);
    let reply = fake.post("/api/v3/brokerage/orders", &post_only).await.body;
    assert_eq!(
        reply["error_response"]["error"],
        "INVALID_LIMIT_PRICE_POST_ONLY"
    );
    let mut stop_limit = limit_entry("s", "0.01", "50000.00", None);
    stop_limit["order_configuration"] = json!({"stop_limit_stop_limit_gtc": {"base_size": "0.01"}});
    let reply = fake
        .post("/api/v3/brokerage/orders", &stop_limit)
        .await
        .body;
    assert_eq!(
        reply["error_response"]["error"],
        "UNSUPPORTED_ORDER_CONFIGURATION"
    );
    assert!(fake.state().await["orders"].as_array().unwrap().is_empty());
    fake.stop().await;
}

#[tokio::test]
async fn a_rate_limit_answers_429_with_retry_after_then_passes() {
    let mut fake = Fake::start("ecdsa.json", |_| {}).await;
    fake.control(
        "/fake/fault",
        json!({"kind": "rate_limit", "retry_after_s": 7}),
    )
    .await;
    let reply = fake.get("/api/v3/brokerage/accounts").await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.headers["retry-after"], "7");
    assert_eq!(reply.body["errors"][0]["id"], "rate_limit_exceeded");
    assert_eq!(fake.get("/api/v3/brokerage/accounts").await.status, 200);
    fake.control(
        "/fake/fault",
        json!({"kind": "server_error", "path": "/api/v3/brokerage/orders"}),
    )
    .await;
    assert_eq!(
        fake.get("/api/v3/brokerage/accounts").await.status,
        200,
        "another path"
    );
    assert_eq!(
        fake.get("/api/v3/brokerage/orders/historical/batch")
            .await
            .status,
        503
    );
    fake.stop().await;
}

#[tokio::test]
async fn a_lost_create_response_then_a_retry_returns_the_same_order() {
    let mut fake = Fake::start("ecdsa.json", |_| {}).await;
    fake.control("/fake/fault", json!({"kind": "lose_create_response"}))
        .await;
    let body = limit_entry("anx-retry", "0.01", "1000.00", None);
    let lost = fake.post("/api/v3/brokerage/orders", &body).await;
    assert_eq!(lost.status, 502);
    let state = fake.state().await;
    let made = state["orders"][0]["order_id"].as_str().unwrap().to_string();
    let again = fake.post("/api/v3/brokerage/orders", &body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["success_response"]["order_id"], made);
    let state = fake.state().await;
    assert_eq!(state["creates"]["anx-retry"], 2);
    assert_eq!(state["orders_created_per_client_order_id"]["anx-retry"], 1);
    assert_eq!(state["orders"].as_array().unwrap().len(), 1);
    fake.stop().await;
}

#[tokio::test]
async fn preview_never_creates() {
    let mut fake = Fake::start("ecdsa.json", |_| {}).await;
    let mut body = limit_entry("unused", "0.01", "1000.00", Some(("2000.00", "500.00")));
    body.as_object_mut().unwrap().remove("client_order_id");
    let reply = fake.post("/api/v3/brokerage/orders/preview", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["errs"], json!([]));
    assert!(!reply.body["preview_id"].as_str().unwrap().is_empty());
    assert_eq!(reply.body["base_size"], "0.01");
    let mut poor = body.clone();
    poor["order_configuration"]["limit_limit_gtc"]["base_size"] = json!("100");
    let reply = fake.post("/api/v3/brokerage/orders/preview", &poor).await;
    assert_eq!(reply.body["errs"], json!(["PREVIEW_INSUFFICIENT_FUND"]));
    let mut bad = body.clone();
    bad["attached_order_configuration"]["trigger_bracket_gtc"]["limit_price"] = json!("900.00");
    let reply = fake.post("/api/v3/brokerage/orders/preview", &bad).await;
    assert_eq!(
        reply.body["errs"],
        json!(["PREVIEW_INVALID_BRACKET_PRICES"])
    );
    let with_id = limit_entry("cid", "0.01", "1000.00", None);
    assert_eq!(
        fake.post("/api/v3/brokerage/orders/preview", &with_id)
            .await
            .status,
        400
    );
    assert!(fake.state().await["orders"].as_array().unwrap().is_empty());
    fake.stop().await;
}

#[tokio::test]
async fn cancelling_a_parent_takes_its_child_and_repeats_fail() {
    let mut fake = Fake::start("ecdsa.json", |_| {}).await;
    let created = fake
        .post(
            "/api/v3/brokerage/orders",
            &limit_entry("c1", "0.01", "1000.00", Some(("2000.00", "500.00"))),
        )
        .await
        .body;
    let parent = created["success_response"]["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    let child = created["success_response"]["attached_order_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = "/api/v3/brokerage/orders/batch_cancel";
    let reply = fake
        .post(path, &json!({"order_ids": [parent, "nope"]}))
        .await
        .body;
    assert_eq!(
        reply["results"][0],
        json!({"success": true, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": parent})
    );
    assert_eq!(
        reply["results"][1]["failure_reason"],
        "UNKNOWN_CANCEL_ORDER"
    );
    let again = fake.post(path, &json!({"order_ids": [parent]})).await.body;
    assert_eq!(
        again["results"][0]["failure_reason"],
        "DUPLICATE_CANCEL_REQUEST"
    );
    let child = fake
        .get(&format!("/api/v3/brokerage/orders/historical/{child}"))
        .await
        .body;
    assert_eq!(child["order"]["status"], "CANCELLED");
    let usd = &fake.state().await["balances"]["USD"];
    assert_eq!(
        (usd["available"].as_str(), usd["hold"].as_str()),
        (Some("10000"), Some("0"))
    );
    fake.stop().await;
}

#[tokio::test]
async fn a_restart_answers_502_then_comes_back_with_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("fake.json");
    let file = state_file.clone();
    let mut fake = Fake::start("ed25519.json", move |c| {
        c.state_file = Some(file);
        c.child_appears = ChildAppears::OnFill;
    })
    .await;
    let created = fake
        .post(
            "/api/v3/brokerage/orders",
            &limit_entry("r1", "0.01", "1000.00", Some(("2000.00", "500.00"))),
        )
        .await;
    assert_eq!(created.status, 200);
    assert!(
        created.body["success_response"]
            .get("attached_order_id")
            .is_none(),
        "the child appears on fill"
    );
    fake.control("/fake/fault", json!({"kind": "restart", "down_s": 1}))
        .await;
    assert_eq!(fake.get("/api/v3/brokerage/accounts").await.status, 502);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let open = fake
        .get("/api/v3/brokerage/orders/historical/batch?order_status=OPEN")
        .await;
    assert_eq!(open.status, 200);
    assert_eq!(open.body["orders"][0]["client_order_id"], "r1");
    fake.stop().await;
    // A new fake on the same state file resumes the account.
    let file = state_file.clone();
    let mut again = Fake::start("ed25519.json", move |c| c.state_file = Some(file)).await;
    let orders = again
        .get("/api/v3/brokerage/orders/historical/batch")
        .await
        .body;
    assert_eq!(orders["orders"][0]["client_order_id"], "r1");
    again.stop().await;
}

#[tokio::test]
async fn someone_trading_by_hand_moves_the_balances() {
    let mut fake = Fake::start("ecdsa.json", |c| {
        c.usd = rust_decimal::Decimal::from(100_000)
    })
    .await;
    let made = fake
        .control(
            "/fake/trade",
            json!({"product_id": "BTC-USD", "side": "BUY", "base_size": "0.5"}),
        )
        .await;
    let order = fake
        .get(&format!(
            "/api/v3/brokerage/orders/historical/{}",
            made["order_id"].as_str().unwrap()
        ))
        .await
        .body;
    assert_eq!(
        (
            order["order"]["status"].as_str(),
            order["order"]["order_type"].as_str()
        ),
        (Some("FILLED"), Some("MARKET"))
    );
    assert!(!order["order"]["client_order_id"]
        .as_str()
        .unwrap()
        .starts_with("anx"));
    assert_eq!(fake.state().await["balances"]["BTC"]["available"], "0.5");
    fake.control(
        "/fake/flags",
        json!({"product_id": "BTC-USD", "limit_only": true}),
    )
    .await;
    let market = json!({"client_order_id": "m", "product_id": "BTC-USD", "side": "SELL", "order_configuration": {"market_market_ioc": {"base_size": "0.1"}}});
    let reply = fake.post("/api/v3/brokerage/orders", &market).await.body;
    assert_eq!(reply["success"], false);
    let product = fake.get("/api/v3/brokerage/products/BTC-USD").await.body;
    assert_eq!(product["limit_only"], true);
    assert_eq!(
        keys(&product),
        keys(&sample("get_product_response__nautilus_BTC-USD.json"))
    );
    fake.stop().await;
}

#[tokio::test]
async fn a_running_clock_moves_by_itself_and_works_the_bars() {
    let mut fake = Fake::start("ecdsa.json", |c| c.speed = 7200).await;
    let (order_id, _, _, _) = place_bracketed_entry(&mut fake).await;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let time = fake
        .send("GET", "/api/v3/brokerage/time", None, None)
        .await
        .body;
    let now_ms: i64 = time["epochMillis"].as_str().unwrap().parse().unwrap();
    assert!(now_ms >= START_MS + 3_600_000, "{now_ms}");
    assert_eq!(order(&mut fake, &order_id).await["status"], "FILLED");
    fake.stop().await;
}

#[tokio::test]
async fn a_stalled_create_lands_after_the_client_gave_up() {
    let mut fake = Fake::start("ecdsa.json", |_| {}).await;
    let path = "/api/v3/brokerage/orders";
    fake.control(
        "/fake/fault",
        json!({"kind": "stall", "seconds": 1, "path": path}),
    )
    .await;
    let body = limit_entry("slow", "0.01", "1000.00", None);
    let token = fake.token("POST", path);
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(200))
        .build()
        .unwrap();
    let sent = impatient
        .post(format!("{}{path}", fake.url))
        .header("Authorization", format!("Bearer {token}"))
        .body(body.to_string())
        .send()
        .await;
    assert!(sent.is_err(), "the client timed out");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        fake.state().await["orders_created_per_client_order_id"]["slow"],
        1
    );
    fake.stop().await;
}

#[tokio::test]
async fn entry_faults_split_fills_and_withhold_the_bracket() {
    let mut fake = Fake::start("ecdsa.json", |_| {}).await;
    fake.control("/fake/fault", json!({"kind": "partial_fill", "parts": 2}))
        .await;
    let (order_id, child_id, _, _) = place_bracketed_entry(&mut fake).await;
    fake.advance_hours(1).await;
    let parent = order(&mut fake, &order_id).await;
    assert_eq!(
        (parent["status"].as_str(), parent["filled_size"].as_str()),
        (Some("OPEN"), Some("0.005"))
    );
    assert_eq!(
        order(&mut fake, &child_id).await["outstanding_hold_amount"],
        "0",
        "not working yet"
    );
    fake.advance_hours(1).await;
    let parent = order(&mut fake, &order_id).await;
    assert_eq!(
        (
            parent["status"].as_str(),
            parent["number_of_fills"].as_str()
        ),
        (Some("FILLED"), Some("2"))
    );
    assert_eq!(
        order(&mut fake, &child_id).await["outstanding_hold_amount"],
        "0.01"
    );

    fake.control("/fake/fault", json!({"kind": "withhold_bracket"}))
        .await;
    let body = limit_entry("bare", "0.01", "1000.00", Some(("2000.00", "500.00")));
    let created = fake.post("/api/v3/brokerage/orders", &body).await.body;
    assert!(created["success_response"]
        .get("attached_order_id")
        .is_none());
    let id = created["success_response"]["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    let bare = order(&mut fake, &id).await;
    assert_eq!(bare["attached_order_id"], "");
    assert!(bare["attached_order_configuration"]["trigger_bracket_gtc"].is_object());
    fake.stop().await;
}
