//! `anx live`: the trader ([`crate::trader`]) with Coinbase Advanced Trade
//! as its broker ([`crate::coinbase::broker`]).
//!
//! Before anything is opened or sent (fail fast):
//! - the API key loads (`--key-file`, or `COINBASE_API_KEY` and
//!   `COINBASE_API_SECRET`) – a missing or malformed key is one clear error;
//! - the configuration has a `[live]` section (the safety caps);
//! - each product, read from `GET /products/{id}`, agrees with the
//!   configuration's spec (base increment, price increment, minimum sizes):
//!   one source of truth, a disagreement names both values;
//! - the account's balances are read (a refused key is diagnosed here); the
//!   run trades with the lesser of the configured capital and what the
//!   account holds in the quote currency (shared among the symbols when each
//!   trades its own capital), and an account too small to trade is refused.
//!
//! The start-up reconciliation journals the account's balances beside the
//! positions, and the capital the run trades with is the `RunStarted`'s.

use crate::cli::LiveArgs;
use crate::coinbase::auth::Credentials;
use crate::coinbase::broker::{CoinbaseBroker, Hydrated, Mode, ProductState, Settings};
use crate::coinbase::model::{self, dec};
use crate::coinbase::rest::{CallError, Rest};
use crate::trader::{file_config, Kind, Place};
use anx_journal::*;
use anx_projections::engine::config::{Config, LiveConfig};
use anyhow::{anyhow, bail, Context, Result};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

/// An account must hold at least this many times the largest product
/// minimum order per symbol: below it, the engine's sizing (a percentage
/// of the capital at risk) cannot make an order the exchange accepts.
const CAPITAL_MIN_ORDERS: u32 = 10;
/// What a preview run's `created_by` ends with.
const PREVIEW_SUFFIX: &str = " (live: preview)";
const LIVE_SUFFIX: &str = " (live)";

struct Live {
    /// Until the broker takes it.
    rest: Option<Rest>,
    key_name: String,
    preview: bool,
    products: BTreeMap<String, ProductState>,
    /// The quote currency every symbol trades in, and what the account
    /// holds of it (available).
    quote: String,
    quote_available: Decimal,
}

impl Live {
    fn rest(&mut self) -> Result<&mut Rest> {
        self.rest
            .as_mut()
            .ok_or_else(|| anyhow!("the broker already holds the connection (a bug)"))
    }

    /// Each symbol's product, checked against the configuration.
    fn check_products(&mut self, config: &Config) -> Result<()> {
        let mut quotes = std::collections::BTreeSet::new();
        for symbol in config.run.symbols.clone() {
            let target = format!("/api/v3/brokerage/products/{symbol}");
            let answer = self.rest()?.get(&target).map_err(start_error)?;
            let product: model::Product = serde_json::from_str(&answer.body)
                .map_err(|e| anyhow!("{target}: the answer is not a product ({e})"))?;
            check_spec(config, &symbol, &product)?;
            if product.trading_disabled || product.cancel_only || product.status != "online" {
                tracing::warn!(
                    "{symbol}: Coinbase says status {:?}, trading_disabled {}, cancel_only {}: no entries are sent while it does",
                    product.status, product.trading_disabled, product.cancel_only
                );
            }
            quotes.insert(product.quote_currency_id.clone());
            self.products.insert(symbol, ProductState::of(&product));
        }
        if quotes.len() != 1 {
            bail!(
                "the symbols trade in {} quote currencies ({}); one run trades in one",
                quotes.len(),
                quotes.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        self.quote = quotes.into_iter().next().unwrap_or_default();
        Ok(())
    }

    /// What the account holds of the quote currency (available).
    fn read_account(&mut self) -> Result<()> {
        let mut cursor = String::new();
        let mut available = Decimal::ZERO;
        for _ in 0..50 {
            let target = format!("/api/v3/brokerage/accounts?limit=250&cursor={cursor}");
            let answer = self.rest()?.get(&target).map_err(start_error)?;
            let page: model::AccountsPage = serde_json::from_str(&answer.body)
                .map_err(|e| anyhow!("{target}: the answer is not a list of accounts ({e})"))?;
            for account in page.accounts.iter().filter(|a| a.currency == self.quote) {
                available += dec(&account.available_balance.value).unwrap_or_default();
            }
            if !page.has_next || page.cursor.is_empty() {
                break;
            }
            cursor = page.cursor;
        }
        self.quote_available = available;
        Ok(())
    }

    /// The capital the run trades with: the lesser of the configuration's
    /// and what the account holds (shared among the symbols when each trades
    /// its own); an account too small to trade is an error.
    fn capital(&self, config: &Config) -> Result<Decimal> {
        let symbols = Decimal::from(config.run.symbols.len().max(1));
        let share = match config.run.capital_mode {
            CapitalMode::Independent => self.quote_available / symbols,
            CapitalMode::Portfolio => self.quote_available,
        };
        let capital = config.run.starting_capital.min(share).round_dp(2);
        let minimum = config
            .run
            .symbols
            .iter()
            .filter_map(|s| config.product(s).map(|p| p.quote_min_size))
            .max()
            .unwrap_or(Decimal::ONE)
            * Decimal::from(CAPITAL_MIN_ORDERS);
        if capital < minimum {
            bail!(
                "the account holds {} {} available: {capital} {} {} is too little to trade (at least {minimum}); fund the account or trade fewer symbols",
                self.quote_available,
                self.quote,
                self.quote,
                if config.run.capital_mode == CapitalMode::Independent { "per symbol" } else { "for the pool" },
            );
        }
        Ok(capital)
    }

    fn broker(
        &mut self,
        config: &Config,
        live: &LiveConfig,
        run_id: &str,
    ) -> Result<CoinbaseBroker> {
        let rest = self
            .rest
            .take()
            .ok_or_else(|| anyhow!("the broker was made twice (a bug)"))?;
        let settings = Settings {
            mode: if self.preview {
                Mode::Preview
            } else {
                Mode::Live
            },
            order_notional_max: live.order_notional_max,
            exposure_max: live.exposure_max,
            protection_wait_ms: i64::try_from(live.protection_wait_s).unwrap_or(600) * 1000,
            entry_ttl_bars: config.orders.entry_ttl_bars,
            granularity_ms: i64::from(config.granularity_s()) * 1000,
            prefix: anx_projections::engine::order::prefix(run_id),
        };
        Ok(CoinbaseBroker::new(rest, settings, self.products.clone()))
    }
}

/// The configuration's `[live]` section: required.
fn live_section(config: &Config, path: &std::path::Path) -> Result<LiveConfig> {
    config.live.clone().ok_or_else(|| {
        anyhow!(
            "{} has no [live] section: anx live needs its safety caps (live.order_notional_max, live.exposure_max, live.protection_wait_s; see config/live.toml)",
            path.display()
        )
    })
}

/// A start-up request's failure as one line (a refused key says why).
fn start_error(error: CallError) -> anyhow::Error {
    anyhow!("{error}")
}

/// The configuration's product spec must be Coinbase's.
fn check_spec(config: &Config, symbol: &str, product: &model::Product) -> Result<()> {
    let spec = config
        .product(symbol)
        .ok_or_else(|| anyhow!("{symbol}: the configuration has no product spec"))?;
    // Coinbase's price tick is `price_increment` (the config's quote_increment
    // rounds prices); older answers carry only `quote_increment`.
    let tick = if product.price_increment.is_empty() {
        &product.quote_increment
    } else {
        &product.price_increment
    };
    let pairs = [
        (
            "base_increment",
            spec.base_increment,
            &product.base_increment,
        ),
        ("quote_increment", spec.quote_increment, tick),
        ("base_min_size", spec.base_min_size, &product.base_min_size),
        (
            "quote_min_size",
            spec.quote_min_size,
            &product.quote_min_size,
        ),
    ];
    for (name, ours, theirs) in pairs {
        let exchange = dec(theirs)
            .ok_or_else(|| anyhow!("{symbol}: Coinbase's {name} {theirs:?} is not a number"))?;
        if exchange.normalize() != ours.normalize() {
            bail!(
                "{symbol}: the configuration's products.{symbol}.{name} is {ours}, Coinbase's is {exchange}; one source of truth: set the configuration to Coinbase's value"
            );
        }
    }
    Ok(())
}

impl Kind for Live {
    type Broker = CoinbaseBroker;
    const RUN_MODE: RunMode = RunMode::Live;
    const COMMAND: &'static str = "anx live";

    fn identity(&self) -> Vec<u8> {
        let mut identity = b"anx-live-v1\0".to_vec();
        identity.extend_from_slice(self.key_name.as_bytes());
        identity.push(u8::from(self.preview));
        identity
    }

    fn created_by_suffix(&self) -> &'static str {
        if self.preview {
            PREVIEW_SUFFIX
        } else {
            LIVE_SUFFIX
        }
    }

    fn first_config(&mut self, place: &Place) -> Result<Config> {
        let mut config = file_config(place)?;
        live_section(&config, place.config)?;
        self.check_products(&config)?;
        self.read_account()?;
        config.run.starting_capital = self.capital(&config)?;
        crate::replay_cmd::validated(config)
    }

    fn resume_config(&mut self, place: &Place, run: &RunStarted) -> Result<Config> {
        let preview = run.created_by.ends_with(PREVIEW_SUFFIX);
        if preview != self.preview {
            bail!(
                "{} is a {} journal: resume it {} --preview",
                place.journal.display(),
                if preview { "preview" } else { "live" },
                if preview { "with" } else { "without" }
            );
        }
        let mut config = crate::replay_cmd::load_config(place.config)?;
        config.run.symbols = run.symbols.clone();
        // The run trades with the capital it started with (the lesser of the
        // file's and the account's then).
        if run.starting_capital <= config.run.starting_capital {
            config.run.starting_capital = run.starting_capital;
        }
        let config = crate::replay_cmd::validated(config)?;
        live_section(&config, place.config)?;
        self.check_products(&config)?;
        self.read_account()?;
        Ok(config)
    }

    fn start_broker(&mut self, config: &Config, run: &RunStarted) -> Result<CoinbaseBroker> {
        let live = live_section(config, std::path::Path::new("the configuration"))?;
        let mut broker = self.broker(config, &live, &run.run_id)?;
        let now_ms = broker
            .exchange_now()
            .ok_or_else(|| anyhow!("cannot read the exchange's time"))?;
        broker.start_fills_at(now_ms);
        broker.set_capital(&self.quote, run.starting_capital);
        Ok(broker)
    }

    fn resume_broker(
        &mut self,
        config: &Config,
        run: &RunStarted,
        events: &[StoredEvent],
    ) -> Result<CoinbaseBroker> {
        let live = live_section(config, std::path::Path::new("the journal's configuration"))?;
        let mut broker = self.broker(config, &live, &run.run_id)?;
        broker.set_capital(&self.quote, run.starting_capital);
        // The broker learns the journal's orders, positions and fills before
        // the re-drive, not after it: a step a crash cut short is finished at
        // the journal's end by asking the broker for real (a candle's
        // answers, an order handed over). Told nothing, it took our orders'
        // fills for someone else's and dropped them (the step decided without
        // them), and sent a journaled order again without looking it up.
        // What it is told is the journal's state at its end, which is where
        // the re-drive first asks it anything.
        let mut projection = anx_projections::Projection::new();
        for stored in events {
            projection
                .apply(stored.seq, stored.market_ms, &stored.event)
                .with_context(|| format!("cannot fold the journal at seq {}", stored.seq))?;
        }
        let placed = placed_orders(events, config.orders.entry_ttl_bars);
        let first_fills = first_entry_fills(events);
        let children: BTreeMap<&str, &str> = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::BracketVerified(b) => {
                    Some((b.client_order_id.as_str(), b.take_profit_order_id.as_str()))
                }
                _ => None,
            })
            .collect();
        let state = &projection.state;
        let orders: Vec<Hydrated> = state
            .orders
            .values()
            .filter_map(|o| {
                let (seq, order, bars_left) = placed.get(&o.client_order_id)?.clone();
                Some(Hydrated {
                    order_seq: seq,
                    order,
                    exchange_id: o.exchange_order_id.clone(),
                    child_id: children
                        .get(o.client_order_id.as_str())
                        .map(|c| c.to_string()),
                    verified: o.bracket_verified,
                    filled: o.filled,
                    bars_left,
                    first_fill_ms: first_fills.get(&o.client_order_id).copied(),
                })
            })
            .collect();
        let positions = state
            .symbols
            .iter()
            .map(|(symbol, s)| (symbol.clone(), s.position.quantity))
            .collect();
        let fills = projection.links.fills.keys().cloned().collect();
        let stepped = run
            .symbols
            .iter()
            .filter_map(|s| Some((s.clone(), state.last_close_ms(s)?)))
            .collect();
        broker.hydrate(orders, positions, fills, stepped);
        if let Some(first) = projection.links.sessions.first() {
            broker.start_fills_at(first.market_ms);
        }
        Ok(broker)
    }
}

/// Every order the journal placed, with the bars its entry may still work
/// (its time to live less the candles of its symbol since).
fn placed_orders(
    events: &[StoredEvent],
    ttl_bars: u32,
) -> BTreeMap<String, (Seq, OrderPlaced, u32)> {
    let mut placed: BTreeMap<String, (Seq, OrderPlaced, u32)> = BTreeMap::new();
    for stored in events {
        match &stored.event {
            Event::OrderPlaced(order) => {
                placed.insert(
                    order.client_order_id.clone(),
                    (stored.seq, order.clone(), ttl_bars),
                );
            }
            Event::Candle(candle) => {
                for (_, order, bars) in placed.values_mut() {
                    if order.product_id == candle.symbol {
                        *bars = bars.saturating_sub(1);
                    }
                }
            }
            _ => {}
        }
    }
    placed
}

/// The exchange's time of each entry's first fill, from the fills' receipts.
fn first_entry_fills(events: &[StoredEvent]) -> BTreeMap<String, UnixMs> {
    let mut fill_seqs: BTreeMap<Seq, String> = BTreeMap::new();
    let mut first = BTreeMap::new();
    for stored in events {
        match &stored.event {
            Event::Fill(f) if f.leg == FillLeg::Entry => {
                fill_seqs.insert(stored.seq, f.client_order_id.clone());
            }
            Event::AnswerReceipt(r) => {
                if let Some(id) = fill_seqs.remove(&r.answer_seq) {
                    first.entry(id).or_insert(r.broker_time_ms);
                }
            }
            _ => {}
        }
    }
    first
}

pub fn live(args: &LiveArgs) -> Result<ExitCode> {
    crate::fetch::check_base_url("--api-url", &args.api_url)?;
    // The key first: nothing is opened or sent without one that loads.
    let credentials = Credentials::load(args.key_file.as_deref())?;
    tracing::info!(
        "API key {} ({})",
        credentials.name(),
        credentials.algorithm()
    );
    let key_name = credentials.name().to_string();
    let timeout = Duration::from_secs_f64(args.request_timeout.clamp(0.1, 600.0));
    if !(1..=1000).contains(&args.requests_per_s) {
        bail!("--requests-per-s must be between 1 and 1000");
    }
    let rest = Rest::new(&args.api_url, credentials, timeout, args.requests_per_s)
        .context("cannot set up the Coinbase client")?;
    let place = Place {
        config: &args.config,
        symbols: &args.symbols,
        journal: &args.journal,
        market_url: &args.api_url,
        poll_interval_s: args.poll_interval,
        request_timeout_s: args.request_timeout,
        reference: args.edge.reference.as_deref(),
        thresholds: args.edge.thresholds.as_deref(),
        listen: args.ops.listen,
        alert_webhook: args.ops.alert_webhook.as_deref(),
        operations: args.ops.operations.as_deref(),
    };
    let kind = Live {
        rest: Some(rest),
        key_name,
        preview: args.preview,
        products: BTreeMap::new(),
        quote: String::new(),
        quote_available: Decimal::ZERO,
    };
    crate::trader::trade(kind, &place)
}
