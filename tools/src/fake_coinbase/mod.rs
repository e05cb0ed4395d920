//! A fake of Coinbase Advanced Trade's REST API: the yardstick anx's live
//! broker is proven against, runnable in-process by tests
//! (`serve(config) -> (SocketAddr, Handle)`) or standalone
//! (`fake-coinbase`) to rehearse `anx live` on a laptop.
//!
//! It replays real candles from anx's cache on a market clock it owns
//! (manual, or `speed` market seconds per real second), checks every
//! request's CDP JWT against the same key file the client signs with, keeps
//! one account's orders, fills and balances, and matches orders against the
//! bars as they close (`matching.rs`, the same rules as anx's simulated
//! exchange). README.md beside this file lists the CLI, the control API and
//! which behaviours are documented by Coinbase and which are assumed.
//!
//! - `auth.rs`: the JWT verifier. `market.rs`: bars, candles, the clock.
//! - `matching.rs`: the order book (pure). `model.rs`: the JSON shapes.
//! - `http.rs`: the Coinbase routes and the request gate. `control.rs`: the
//!   `/fake/` control API. `faults.rs`: armed faults.

pub mod auth;
pub mod control;
pub mod faults;
pub mod http;
pub mod market;
pub mod matching;
pub mod model;

use matching::{ChildAppears, Exchange, Fees, MarketFills, ProductRules};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How many API requests `/fake/state` remembers.
pub const REQUEST_LOG_MAX: usize = 1000;
/// How often a running clock works the bars that closed (real time).
pub const TICK_MS: u64 = 50;
/// The fastest clock: a year of market time per real second.
pub const SPEED_MAX: u64 = 366 * 86_400;
/// How long a shutdown waits for requests in flight (a stalled one).
pub const SHUTDOWN_GRACE_MS: u64 = 2000;

/// Everything the fake is started with.
#[derive(Clone, Debug)]
pub struct Config {
    pub candles_dir: PathBuf,
    pub symbols: Vec<String>,
    pub granularity_s: u32,
    pub start_ms: i64,
    pub key_file: PathBuf,
    pub listen: SocketAddr,
    pub usd: Decimal,
    pub fees: Fees,
    /// Market seconds per real second; 0: the clock moves only when told.
    pub speed: u64,
    /// Shifts the clock tokens are checked against and the Date header.
    pub auth_clock_offset_s: i64,
    pub child_appears: ChildAppears,
    pub market_fills: MarketFills,
    pub state_file: Option<PathBuf>,
}

impl Config {
    /// The defaults of the CLI: 10,000 USD, fees 40/60 bps, slippage 2 bps,
    /// a manual clock, children visible at once, on 127.0.0.1, any port.
    pub fn new(
        candles_dir: PathBuf,
        symbols: Vec<String>,
        granularity_s: u32,
        start_ms: i64,
        key_file: PathBuf,
    ) -> Config {
        Config {
            candles_dir,
            symbols,
            granularity_s,
            start_ms,
            key_file,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            usd: Decimal::from(10_000),
            fees: Fees {
                maker_fee_bps: Decimal::from(40),
                taker_fee_bps: Decimal::from(60),
                slippage_bps: Decimal::from(2),
            },
            speed: 0,
            auth_clock_offset_s: 0,
            child_appears: ChildAppears::AtOnce,
            market_fills: MarketFills::Immediate,
            state_file: None,
        }
    }
}

/// Why the fake could not start: one line.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// The mutable part: the account, the clock, faults and what was seen.
pub struct Inner {
    pub exchange: Exchange,
    pub clock: market::Clock,
    pub faults: faults::Faults,
    /// client_order_id → POST /orders requests that carried it.
    pub creates: BTreeMap<String, u64>,
    /// (method, path, status) of the latest API requests.
    pub requests: VecDeque<(String, String, u16)>,
    pub auth_failures: u64,
    /// A restart in progress: the API is down until then.
    pub down_until: Option<Instant>,
    pub previews: u64,
    /// A lock-step market for tests: each unauthenticated `GET /time` (a
    /// trader's market-data poll starting) first moves the clock this many
    /// ms, until the second time. Fills then happen only as a poll starts,
    /// never between a trader's reading of candles and of its orders.
    pub step_on_public_time: Option<(i64, i64)>,
}

/// What every handler shares.
pub struct Shared {
    inner: Mutex<Inner>,
    pub market: market::Market,
    pub verifier: auth::Verifier,
    pub auth_clock_offset_s: i64,
    pub state_file: Option<PathBuf>,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// When the account was opened (accounts' created_at), market time.
    pub started_ms: i64,
}

/// The state file's contents.
#[derive(Serialize, Deserialize)]
struct Persisted {
    exchange: Exchange,
    creates: BTreeMap<String, u64>,
}

impl Shared {
    /// The state, as it is (no clock movement).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state with a running clock caught up (the bars that closed worked).
    pub fn synced(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.lock();
        if let Some(target) = inner.clock.target_ms() {
            if target > inner.exchange.now_ms {
                let market = &self.market;
                let closed = inner
                    .exchange
                    .advance(target, &|product, open_ms| market.bar(product, open_ms))
                    .unwrap_or(0);
                if closed > 0 {
                    self.persist(&inner);
                }
            }
        }
        inner
    }

    /// The auth clock: real time shifted by `--auth-clock-offset-s`, in ms.
    pub fn auth_now_ms(&self) -> i64 {
        let real_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        real_ms.saturating_add(self.auth_clock_offset_s.saturating_mul(1000))
    }

    /// The current price of `product_id`: the open of the bar containing the clock.
    pub fn current_price(&self, inner: &Inner, product_id: &str) -> Option<Decimal> {
        self.market
            .current_bar(product_id, inner.exchange.now_ms)
            .map(|b| b.open)
    }

    /// Whether a restart is in progress; once it is over, the state comes
    /// back from the state file (if there is one), as after a real restart.
    pub fn restarting(&self) -> bool {
        let mut inner = self.lock();
        let Some(until) = inner.down_until else {
            return false;
        };
        if Instant::now() < until {
            return true;
        }
        inner.down_until = None;
        if let Some(path) = &self.state_file {
            match load_state(path) {
                Ok(Some(persisted)) => {
                    inner.exchange = persisted.exchange;
                    inner.creates = persisted.creates;
                }
                Ok(None) => {}
                Err(e) => eprintln!("fake-coinbase: {e}"),
            }
        }
        false
    }

    /// Writes the state file (if any), atomically: a temporary file renamed.
    pub fn persist(&self, inner: &Inner) {
        let Some(path) = &self.state_file else { return };
        let persisted = Persisted {
            exchange: inner.exchange.clone(),
            creates: inner.creates.clone(),
        };
        if let Err(e) = write_atomically(path, &persisted) {
            eprintln!("fake-coinbase: cannot write {}: {e}", path.display());
        }
    }
}

fn write_atomically(path: &Path, persisted: &Persisted) -> std::io::Result<()> {
    let text = serde_json::to_vec(persisted).map_err(std::io::Error::other)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

fn load_state(path: &Path) -> Result<Option<Persisted>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("state file {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read state file {}: {e}", path.display())),
    }
}

/// The running fake.
pub struct Handle {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Stops serving: requests in flight get `SHUTDOWN_GRACE_MS` to finish.
    pub async fn shutdown(self) {
        self.shared.shutdown.send_replace(true);
        let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
        let _ = tokio::time::timeout(grace, self.server).await;
    }

    /// Resolves once a shutdown was asked for (`POST /fake/shutdown`).
    pub async fn stopping(&self) {
        let mut stop = self.shared.shutdown.subscribe();
        let _ = stop.wait_for(|stop| *stop).await;
    }
}

/// A fresh account, or the one in the state file.
fn opening_state(config: &Config) -> Result<(Exchange, BTreeMap<String, u64>), StartError> {
    if let Some(path) = &config.state_file {
        if let Some(persisted) = load_state(path).map_err(StartError)? {
            let granularity_ms = i64::from(config.granularity_s) * 1000;
            if persisted.exchange.granularity_ms != granularity_ms {
                return Err(StartError(format!(
                    "state file {} was written with another granularity",
                    path.display()
                )));
            }
            return Ok((persisted.exchange, persisted.creates));
        }
    }
    let mut products = Vec::new();
    for symbol in &config.symbols {
        products.push(
            ProductRules::for_product(symbol)
                .ok_or_else(|| StartError(format!("{symbol} is not a BASE-QUOTE product id")))?,
        );
    }
    // Order ids differ from one fresh start to the next, like a real exchange's.
    let seed = format!(
        "{}-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
        std::process::id()
    );
    let mut exchange = Exchange::new(
        &seed,
        config.fees,
        config.child_appears,
        i64::from(config.granularity_s) * 1000,
        products,
        config.usd,
        config.start_ms,
    );
    exchange.market_fills = config.market_fills;
    Ok((exchange, BTreeMap::new()))
}

/// Starts the fake on `config.listen`: the address it listens on and its handle.
pub async fn serve(config: Config) -> Result<(SocketAddr, Handle), StartError> {
    if config.symbols.is_empty() {
        return Err(StartError("no symbols given".into()));
    }
    if config.speed > SPEED_MAX {
        return Err(StartError(format!("--speed is at most {SPEED_MAX}")));
    }
    let market = market::Market::load(&config.candles_dir, &config.symbols, config.granularity_s)
        .map_err(StartError)?;
    let (key_name, key) = auth::load_key_file(&config.key_file).map_err(StartError)?;
    let (exchange, creates) = opening_state(&config)?;
    let mut clock = market::Clock::new(config.speed);
    clock.anchor(exchange.now_ms);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError(format!("cannot listen on {}: {e}", config.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| StartError(format!("no local address: {e}")))?;
    let (shutdown, _) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            exchange,
            clock,
            faults: faults::Faults::default(),
            creates,
            requests: VecDeque::new(),
            auth_failures: 0,
            down_until: None,
            previews: 0,
            step_on_public_time: None,
        }),
        market,
        verifier: auth::Verifier::new(key_name, key),
        auth_clock_offset_s: config.auth_clock_offset_s,
        state_file: config.state_file.clone(),
        shutdown,
        started_ms: config.start_ms,
    });
    shared.persist(&shared.lock());
    let server = tokio::spawn(run(shared.clone(), listener, config.speed > 0));
    Ok((address, Handle { shared, server }))
}

/// Serves until a shutdown is asked for; a running clock ticks meanwhile.
async fn run(shared: Arc<Shared>, listener: tokio::net::TcpListener, ticking: bool) {
    let mut stop = shared.shutdown.subscribe();
    if ticking {
        let ticker = shared.clone();
        let mut stop = ticker.shutdown.subscribe();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(TICK_MS));
            loop {
                tokio::select! {
                    _ = interval.tick() => drop(ticker.synced()),
                    _ = stop.wait_for(|stop| *stop) => break,
                }
            }
        });
    }
    let app = http::router(shared.clone());
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        eprintln!("fake-coinbase: server error: {e}");
    }
}
