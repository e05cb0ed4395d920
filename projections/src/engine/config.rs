//! The engine's configuration: every tunable number has its home here (the
//! shipped files are `config/default.toml`, `config/replay.toml`,
//! `config/paper.toml`). Decimals are written as strings in TOML so they stay
//! exact; a float is refused.
//!
//! Loading is layered: a file may say `extends = "other.toml"` (relative to its
//! own directory) and then only overrides keys; tables merge key by key.
//! Reading files is the caller's business (this crate does no I/O): it passes a
//! resolver that returns a file's text.
//!
//! [`Config::validate`] reports every problem at once, one line each, naming
//! the key, the value and the allowed range. [`Config::canonical_text`] is the
//! effective configuration as TOML with keys in a fixed order; the config hash
//! is BLAKE3 of that text, and the text itself is journaled in `RunStarted`.

use anx_journal::codec::Hash32;
use anx_journal::CapitalMode;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Decimals of the configuration, normalized on the way in and out (`"0.010"`
/// reads as `0.01`): equal values always give the same canonical text, so the
/// same effective configuration always has the same config hash.
mod norm_dec {
    use anx_journal::codec::dec;
    use rust_decimal::Decimal;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        dec::serialize(&value.normalize(), serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        dec::deserialize(deserializer).map(|value| value.normalize())
    }
}

/// Files may chain at most this deep through `extends`.
pub const EXTENDS_DEPTH_MAX: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub run: RunConfig,
    pub strategy: StrategyConfig,
    pub regime: RegimeConfig,
    pub exits: ExitConfig,
    pub risk: RiskConfig,
    pub pacing: PacingConfig,
    pub breakers: BreakerConfig,
    pub costs: CostConfig,
    pub orders: OrderConfig,
    pub exchange: ExchangeConfig,
    /// `anx live` only: the real broker's safety caps and waits. Added
    /// later; absent (every configuration before it) is left out of the
    /// canonical text, so journaled configurations hash as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveConfig>,
    /// Product specs by symbol; `default` applies to a symbol without its own.
    pub products: BTreeMap<String, ProductSpec>,
}

/// The live broker's limits: checked by the broker before anything is sent,
/// whatever the engine sized (a second line of defence, not the sizing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// Largest entry notional (size × limit) sent, in quote currency.
    #[serde(with = "norm_dec")]
    pub order_notional_max: Decimal,
    /// Largest cost of the run's working entries and open positions together,
    /// in quote currency.
    #[serde(with = "norm_dec")]
    pub exposure_max: Decimal,
    /// Seconds (the exchange's time) after an entry's first fill within which
    /// its take-profit/stop child must show at the exchange, or the symbol
    /// fails closed.
    pub protection_wait_s: u64,
}

/// Longest wait for a filled entry's protection: a minute of a naked
/// position is already a risk; ten is the most a slow exchange deserves.
const PROTECTION_WAIT_S_MAX: u64 = 600;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Candle size the strategy runs on: `15m`, `1h`, `4h`, `1d` …
    pub granularity: String,
    pub symbols: Vec<String>,
    pub capital_mode: CapitalMode,
    #[serde(with = "norm_dec")]
    pub starting_capital: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    /// Bars of history kept per symbol for the indicators.
    pub window_bars: u32,
    /// Average True Range period.
    pub atr_bars: u32,
    /// Signals enabled, by name (`breakout`, `momentum`, `mean_reversion`).
    pub signals: Vec<String>,
    pub breakout: BreakoutConfig,
    pub momentum: MomentumConfig,
    pub mean_reversion: MeanReversionConfig,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakoutConfig {
    /// Close above the highest high of this many previous bars.
    pub lookback_bars: u32,
    /// Volume filter: volume above `volume_factor` × the average of this many bars.
    pub volume_lookback_bars: u32,
    #[serde(with = "norm_dec")]
    pub volume_factor: Decimal,
    /// Stop = entry − `stop_atr_multiple` × ATR.
    #[serde(with = "norm_dec")]
    pub stop_atr_multiple: Decimal,
    /// Take-profit = entry + `reward_risk` × (entry − stop).
    #[serde(with = "norm_dec")]
    pub reward_risk: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomentumConfig {
    pub fast_ema_bars: u32,
    pub slow_ema_bars: u32,
    #[serde(with = "norm_dec")]
    pub stop_atr_multiple: Decimal,
    #[serde(with = "norm_dec")]
    pub reward_risk: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeanReversionConfig {
    /// The mean: a simple moving average of this many closes.
    pub sma_bars: u32,
    /// Fires when the close is more than this many ATRs below the mean.
    #[serde(with = "norm_dec")]
    pub entry_atr_below: Decimal,
    #[serde(with = "norm_dec")]
    pub stop_atr_multiple: Decimal,
    #[serde(with = "norm_dec")]
    pub reward_risk: Decimal,
}

/// Regime classification and what each regime allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegimeConfig {
    /// The slow moving average the regime is read from.
    pub sma_bars: u32,
    /// Its slope is measured over this many bars.
    pub slope_bars: u32,
    pub trend: RegimeRule,
    pub chop: RegimeRule,
    pub bear: RegimeRule,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegimeRule {
    pub allowed_signals: Vec<String>,
    #[serde(with = "norm_dec")]
    pub size_multiplier: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitConfig {
    /// Chandelier trailing exit: highest high since entry − k × ATR.
    pub chandelier_enabled: bool,
    #[serde(with = "norm_dec")]
    pub chandelier_atr_multiple: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskConfig {
    /// Share of the capital risked per trade (to the worst-case stop fill).
    #[serde(with = "norm_dec")]
    pub risk_per_trade: Decimal,
    /// Largest position notional per symbol, in quote currency.
    #[serde(with = "norm_dec")]
    pub max_position_notional: Decimal,
    /// Largest total notional held across symbols, in quote currency.
    #[serde(with = "norm_dec")]
    pub max_total_exposure: Decimal,
    /// Smallest reward:risk, after fees and slippage, worth taking.
    #[serde(with = "norm_dec")]
    pub min_reward_risk_after_costs: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacingConfig {
    pub max_trades_per_hour: u32,
    pub max_trades_per_day: u32,
    /// Minimum seconds between any two entries (`global_trade_spacing`).
    pub global_trade_spacing_s: u64,
    /// Per-symbol cooldown after an exit (`symbol_cooldown_active`).
    pub cooldown_after_win_s: u64,
    pub cooldown_after_loss_s: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// No entries while equity is this many percent below its peak.
    #[serde(with = "norm_dec")]
    pub max_drawdown_pct: Decimal,
    /// No entries for the rest of the UTC day once the day's realized loss
    /// reaches this percentage of the starting equity.
    #[serde(with = "norm_dec")]
    pub daily_loss_limit_pct: Decimal,
    /// No entries when the newest candle closed longer ago than this.
    pub stale_data_max_age_s: u64,
}

/// The single source of fees and slippage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostConfig {
    #[serde(with = "norm_dec")]
    pub maker_fee_bps: Decimal,
    #[serde(with = "norm_dec")]
    pub taker_fee_bps: Decimal,
    /// Slippage of taker fills, by the product's liquidity tier.
    pub slippage_bps: SlippageTiers,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlippageTiers {
    #[serde(with = "norm_dec")]
    pub high: Decimal,
    #[serde(with = "norm_dec")]
    pub medium: Decimal,
    #[serde(with = "norm_dec")]
    pub low: Decimal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiquidityTier {
    High,
    Medium,
    Low,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderConfig {
    /// Entry limits are post-only (maker) orders.
    pub entry_post_only: bool,
    /// An entry not filled within this many bars is cancelled.
    pub entry_ttl_bars: u32,
    /// A post-only entry the exchange rejects because its limit would cross
    /// the book is placed again, re-priced one quote increment below the last
    /// close, at most this many times; then it is given up (IDLE). Added after
    /// the first journals: 0 (the old behaviour, no retry) is left out of the
    /// canonical text, so every journaled configuration hashes as it did.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub post_only_retries_max: u32,
    /// An entry's attached protection must be confirmed by the broker within
    /// this many seconds (market time) of the entry's acknowledgement, or the
    /// symbol fails closed (the entry withdrawn, a position closed at market).
    /// 0 (added later; the old behaviour): no deadline, the broker's own
    /// answer decides. Left out of the canonical text at 0.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub protection_confirm_s: u64,
}

/// Retries of a crossed post-only entry beyond this are a misconfiguration:
/// a limit that keeps crossing is chasing the market.
const POST_ONLY_RETRIES_LIMIT: u32 = 5;

/// Longer than a day unconfirmed is not a deadline: a position that long
/// without protection is what the deadline exists to prevent.
const PROTECTION_CONFIRM_S_MAX: u64 = 86_400;

/// A field at its "added later, old behaviour" default is not written.
fn is_zero(value: &u32) -> bool {
    *value == 0
}

fn is_zero_u64(value: &u64) -> bool {
    *value == 0
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    pub name: String,
    /// Coinbase turns a triggered bracket stop into a stop-limit this far beyond
    /// the trigger (5%; fixed by the exchange, recorded here so it has one home).
    #[serde(with = "norm_dec")]
    pub stop_limit_buffer: Decimal,
}

/// An exchange product's increments and minimums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSpec {
    #[serde(with = "norm_dec")]
    pub base_increment: Decimal,
    #[serde(with = "norm_dec")]
    pub quote_increment: Decimal,
    #[serde(with = "norm_dec")]
    pub base_min_size: Decimal,
    #[serde(with = "norm_dec")]
    pub quote_min_size: Decimal,
    pub liquidity_tier: LiquidityTier,
}

/// A configuration problem: the key, the value found and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub value: String,
    pub allowed: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}: {}", self.key, self.value, self.allowed)
    }
}

/// Why a configuration could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: cannot read: {message}")]
    Read { file: String, message: String },
    #[error("{file}: `extends` chains deeper than {EXTENDS_DEPTH_MAX} files (a loop?)")]
    TooDeep { file: String },
    #[error("{} problem(s) in the configuration:\n{}", .0.len(), .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

/// The known signal names.
pub const SIGNAL_NAMES: [&str; 3] = [
    super::signals::BREAKOUT,
    super::signals::MOMENTUM,
    super::signals::MEAN_REVERSION,
];

/// Whether `symbol` is a product id: capital letters and digits, at most one
/// `-` between two such parts, 32 characters at most. Symbols name cache
/// files and URL paths, so nothing else (no `/`, `.`, spaces) gets through.
pub fn is_symbol(symbol: &str) -> bool {
    let part_ok = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    symbol.len() <= 32 && symbol.split('-').count() <= 2 && symbol.split('-').all(part_ok)
}

/// Parses a granularity such as `15m`, `1h`, `4h`, `1d` into seconds.
pub fn parse_granularity(text: &str) -> Option<u32> {
    let (number, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u32 = number.parse().ok()?;
    let unit_s = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(unit_s).filter(|s| *s > 0)
}

/// Schema problems (type errors, unknown keys and enum values, missing keys)
/// a configuration may have before the deserializer is given up on.
const SCHEMA_PROBLEMS_MAX: usize = 64;

/// A problem with the shape of the configuration rather than a value's range.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SchemaProblem {
    /// Dotted key (`run.capital_mode`), empty for the top level.
    key: String,
    /// What the deserializer said, without the key.
    message: String,
}

impl SchemaProblem {
    fn line(&self) -> String {
        if self.key.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.key, self.message)
        }
    }
}

/// Deserializes `table`, collecting every schema problem instead of stopping
/// at the first: serde stops at the first error, so each bad key is recorded,
/// then removed (an unknown key) or replaced by a placeholder of a type that
/// passes (a wrong type or value), and deserialization runs again. Returns
/// the configuration built with the placeholders (for range checks of the
/// other keys) when every problem could be stepped over.
fn deserialize_every_problem(mut table: toml::Table) -> (Option<Config>, Vec<SchemaProblem>) {
    let mut problems: Vec<SchemaProblem> = Vec::new();
    while problems.len() < SCHEMA_PROBLEMS_MAX {
        let error = match toml::Value::Table(table.clone()).try_into::<Config>() {
            Ok(config) => return (Some(config), problems),
            Err(error) => error,
        };
        let text = error.to_string().trim().replace('\n', " ");
        let (message, at) = match text.rsplit_once(" in `") {
            Some((message, at)) => (message.to_string(), at.trim_end_matches('`').to_string()),
            None => (text.clone(), String::new()),
        };
        let path: Vec<String> = at
            .split('.')
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(field) = unknown_field(&message) {
            let key = path.iter().chain([&field]).cloned().collect::<Vec<_>>();
            problems.push(SchemaProblem {
                key: key.join("."),
                message,
            });
            if remove_at(&mut table, &key).is_none() {
                break;
            }
            continue;
        }
        let stuck = problems.last().is_some_and(|p| p.key == at);
        problems.push(SchemaProblem { key: at, message });
        if stuck || !replace_with_placeholder(&mut table, &path, &problems) {
            break;
        }
    }
    (None, problems)
}

/// The field an "unknown field `x`" message names.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

fn remove_at(table: &mut toml::Table, key: &[String]) -> Option<toml::Value> {
    let (last, parents) = key.split_last()?;
    let mut at = table;
    for part in parents {
        at = at.get_mut(part)?.as_table_mut()?;
    }
    at.remove(last)
}

/// Puts the first placeholder that moves deserialization past `path` there
/// (for an enum, its first variant as the error lists them).
fn replace_with_placeholder(
    table: &mut toml::Table,
    path: &[String],
    problems: &[SchemaProblem],
) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let message = &problems[problems.len() - 1].message;
    let variant = message
        .split_once("expected ")
        .and_then(|(_, rest)| rest.split('`').nth(1))
        .map(|v| toml::Value::String(v.to_string()));
    let candidates = variant.into_iter().chain([
        toml::Value::String("1".into()),
        toml::Value::Integer(1),
        toml::Value::Boolean(false),
        toml::Value::Array(Vec::new()),
        toml::Value::Table(toml::Table::new()),
        toml::Value::Float(1.0),
    ]);
    let at_key = path.join(".");
    for candidate in candidates {
        let mut tried = table.clone();
        let mut at = &mut tried;
        for part in parents {
            let entry = at
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(inner) = entry.as_table_mut() else {
                return false;
            };
            at = inner;
        }
        at.insert(last.clone(), candidate);
        let still_there = match toml::Value::Table(tried.clone()).try_into::<Config>() {
            Ok(_) => false,
            Err(e) => e.to_string().contains(&format!("in `{at_key}`")),
        };
        if !still_there {
            *table = tried;
            return true;
        }
    }
    false
}

/// Merges `over` into `base`, table by table (arrays and values replace).
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl Config {
    /// Loads `file` and whatever it `extends`, through `read(path) -> text`.
    /// Paths in `extends` are relative to the directory of the file naming them.
    pub fn load(
        file: &str,
        read: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<Config, ConfigError> {
        let table = Self::load_table(file, read, 0)?;
        let (config, schema) = deserialize_every_problem(table);
        let config = match config {
            Some(config) if schema.is_empty() => config,
            stepped_over => {
                // Range problems of keys whose type was right are worth knowing too.
                let mut lines: Vec<String> = schema.iter().map(|p| p.line()).collect();
                if let Some(config) = stepped_over {
                    lines.extend(
                        config
                            .validate()
                            .into_iter()
                            .filter(|p| !schema.iter().any(|s| s.key == p.key))
                            .map(|p| p.to_string()),
                    );
                }
                return Err(ConfigError::Parse {
                    file: file.to_string(),
                    message: lines.join("\n"),
                });
            }
        };
        let problems = config.validate();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    fn load_table(
        file: &str,
        read: &mut dyn FnMut(&str) -> Result<String, String>,
        depth: usize,
    ) -> Result<toml::Table, ConfigError> {
        if depth > EXTENDS_DEPTH_MAX {
            return Err(ConfigError::TooDeep {
                file: file.to_string(),
            });
        }
        let text = read(file).map_err(|message| ConfigError::Read {
            file: file.to_string(),
            message,
        })?;
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    file: file.to_string(),
                    message: e.to_string().trim().replace('\n', " "),
                })?;
        match table.remove("extends") {
            None => Ok(table),
            Some(toml::Value::String(parent)) => {
                let parent_path = match file.rfind('/') {
                    _ if parent.starts_with('/') => parent,
                    Some(slash) => format!("{}/{parent}", &file[..slash]),
                    None => parent,
                };
                let mut base = Self::load_table(&parent_path, read, depth + 1)?;
                merge(&mut base, table);
                Ok(base)
            }
            Some(other) => Err(ConfigError::Parse {
                file: file.to_string(),
                message: format!("`extends` must be a file name, found {other}"),
            }),
        }
    }

    /// Parses one complete configuration text (no `extends`).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let mut read = |_: &str| Ok(text.to_string());
        Config::load("config", &mut read)
    }

    /// The effective configuration as TOML, keys in declaration order: what
    /// is journaled in `RunStarted` and hashed into the config hash.
    pub fn canonical_text(&self) -> String {
        toml::to_string(self).expect("a Config always serializes to TOML")
    }

    /// BLAKE3 of [`Config::canonical_text`].
    pub fn hash(&self) -> Hash32 {
        Hash32::from(blake3::hash(self.canonical_text().as_bytes()))
    }

    pub fn granularity_s(&self) -> u32 {
        parse_granularity(&self.run.granularity).unwrap_or(0)
    }

    /// The product spec of `symbol` (its own, or `default`).
    pub fn product(&self, symbol: &str) -> Option<&ProductSpec> {
        self.products
            .get(symbol)
            .or_else(|| self.products.get("default"))
    }

    /// The slippage of a taker fill on `tier`, in basis points.
    pub fn slippage_bps(&self, tier: LiquidityTier) -> Decimal {
        match tier {
            LiquidityTier::High => self.costs.slippage_bps.high,
            LiquidityTier::Medium => self.costs.slippage_bps.medium,
            LiquidityTier::Low => self.costs.slippage_bps.low,
        }
    }

    /// Every problem, one per rule broken. The order is part of the output
    /// (the CLI prints one problem a line, tests compare them): section by
    /// section, as the checks below run.
    pub fn validate(&self) -> Vec<Problem> {
        let mut v = Validator::default();
        self.validate_run(&mut v);
        self.validate_periods(&mut v);
        self.validate_signals(&mut v);
        self.validate_multiples(&mut v);
        self.validate_reward_risk(&mut v);
        self.validate_regime_sizes(&mut v);
        self.validate_risk(&mut v);
        self.validate_pacing(&mut v);
        self.validate_breakers(&mut v);
        self.validate_costs(&mut v);
        self.validate_orders_and_exchange(&mut v);
        self.validate_products(&mut v);
        v.problems
    }

    fn validate_run(&self, v: &mut Validator) {
        if parse_granularity(&self.run.granularity).is_none() {
            v.fail(
                "run.granularity",
                &self.run.granularity,
                "a whole number of minutes, hours or days such as 15m, 1h, 4h, 1d",
            );
        }
        if self.run.symbols.is_empty() {
            v.fail("run.symbols", "[]", "at least one symbol");
        }
        for (index, symbol) in self.run.symbols.iter().enumerate() {
            if !is_symbol(symbol) {
                v.fail(
                    "run.symbols",
                    &format!("{symbol:?}"),
                    "a product id such as BTC-USD or BTCUSDT: 1 to 32 capital letters and digits, at most one '-' between them",
                );
            } else if self.run.symbols[..index].contains(symbol) {
                v.fail("run.symbols", &format!("{symbol:?}"), "each symbol once");
            }
        }
        v.positive("run.starting_capital", self.run.starting_capital);
    }

    /// Indicator periods: each fits in the window of bars kept, and the fast
    /// EMA is faster than the slow one.
    fn validate_periods(&self, v: &mut Validator) {
        let s = &self.strategy;
        v.at_least("strategy.window_bars", s.window_bars, 2);
        let window = s.window_bars;
        for (key, bars) in [
            ("strategy.atr_bars", s.atr_bars),
            ("strategy.breakout.lookback_bars", s.breakout.lookback_bars),
            (
                "strategy.breakout.volume_lookback_bars",
                s.breakout.volume_lookback_bars,
            ),
            ("strategy.momentum.fast_ema_bars", s.momentum.fast_ema_bars),
            ("strategy.momentum.slow_ema_bars", s.momentum.slow_ema_bars),
            (
                "strategy.mean_reversion.sma_bars",
                s.mean_reversion.sma_bars,
            ),
            ("regime.sma_bars", self.regime.sma_bars),
            ("regime.slope_bars", self.regime.slope_bars),
        ] {
            v.at_least(key, bars, 1);
            if bars >= window {
                v.fail(
                    key,
                    &bars.to_string(),
                    &format!("periods >= 1 and below strategy.window_bars ({window})"),
                );
            }
        }
        if s.momentum.fast_ema_bars >= s.momentum.slow_ema_bars {
            v.fail(
                "strategy.momentum.fast_ema_bars",
                &s.momentum.fast_ema_bars.to_string(),
                &format!(
                    "below strategy.momentum.slow_ema_bars ({})",
                    s.momentum.slow_ema_bars
                ),
            );
        }
    }

    /// The enabled signals and each regime's allowed signals name known ones.
    fn validate_signals(&self, v: &mut Validator) {
        let known = SIGNAL_NAMES.join(", ");
        if self.strategy.signals.is_empty() {
            v.fail(
                "strategy.signals",
                "[]",
                &format!("at least one of {known}"),
            );
        }
        let regime = &self.regime;
        for (key, names) in [
            ("strategy.signals", &self.strategy.signals),
            (
                "regime.trend.allowed_signals",
                &regime.trend.allowed_signals,
            ),
            ("regime.chop.allowed_signals", &regime.chop.allowed_signals),
            ("regime.bear.allowed_signals", &regime.bear.allowed_signals),
        ] {
            for name in names {
                if !SIGNAL_NAMES.contains(&name.as_str()) {
                    v.fail(key, name, &format!("one of {known}"));
                }
            }
        }
    }

    /// The volume factor and the ATR multiples the signals and exits scale by.
    fn validate_multiples(&self, v: &mut Validator) {
        let s = &self.strategy;
        v.non_negative("strategy.breakout.volume_factor", s.breakout.volume_factor);
        for (key, m) in [
            (
                "strategy.breakout.stop_atr_multiple",
                s.breakout.stop_atr_multiple,
            ),
            (
                "strategy.momentum.stop_atr_multiple",
                s.momentum.stop_atr_multiple,
            ),
            (
                "strategy.mean_reversion.stop_atr_multiple",
                s.mean_reversion.stop_atr_multiple,
            ),
            (
                "strategy.mean_reversion.entry_atr_below",
                s.mean_reversion.entry_atr_below,
            ),
            (
                "exits.chandelier_atr_multiple",
                self.exits.chandelier_atr_multiple,
            ),
        ] {
            v.positive(key, m);
        }
    }

    /// Take-profit beyond the stop (a positive reward:risk), and far enough
    /// that the after-cost check can ever pass.
    fn validate_reward_risk(&self, v: &mut Validator) {
        let s = &self.strategy;
        let minimum = self.risk.min_reward_risk_after_costs;
        for (key, rr) in [
            ("strategy.breakout.reward_risk", s.breakout.reward_risk),
            ("strategy.momentum.reward_risk", s.momentum.reward_risk),
            (
                "strategy.mean_reversion.reward_risk",
                s.mean_reversion.reward_risk,
            ),
        ] {
            if rr <= Decimal::ZERO {
                v.fail(key, &rr.to_string(), "> 0 (the take-profit must lie beyond the entry, on the other side from the stop)");
            } else if rr < minimum {
                v.fail(
                    key,
                    &rr.to_string(),
                    &format!(
                        "at least risk.min_reward_risk_after_costs ({minimum}): the brackets could never pass the after-cost check"
                    ),
                );
            }
        }
    }

    fn validate_regime_sizes(&self, v: &mut Validator) {
        for (key, rule) in [
            ("regime.trend", &self.regime.trend),
            ("regime.chop", &self.regime.chop),
            ("regime.bear", &self.regime.bear),
        ] {
            if rule.size_multiplier < Decimal::ZERO || rule.size_multiplier > Decimal::ONE {
                v.fail(
                    &format!("{key}.size_multiplier"),
                    &rule.size_multiplier.to_string(),
                    "between 0 and 1",
                );
            }
        }
    }

    fn validate_risk(&self, v: &mut Validator) {
        let risk = &self.risk;
        if risk.risk_per_trade <= Decimal::ZERO || risk.risk_per_trade >= Decimal::ONE {
            v.fail(
                "risk.risk_per_trade",
                &risk.risk_per_trade.to_string(),
                "0 < risk_per_trade < 1",
            );
        }
        v.positive("risk.max_position_notional", risk.max_position_notional);
        v.positive("risk.max_total_exposure", risk.max_total_exposure);
        if risk.max_total_exposure < risk.max_position_notional {
            v.fail(
                "risk.max_total_exposure",
                &risk.max_total_exposure.to_string(),
                &format!(
                    "at least risk.max_position_notional ({})",
                    risk.max_position_notional
                ),
            );
        }
        v.non_negative(
            "risk.min_reward_risk_after_costs",
            risk.min_reward_risk_after_costs,
        );
    }

    fn validate_pacing(&self, v: &mut Validator) {
        let pacing = &self.pacing;
        v.at_least("pacing.max_trades_per_hour", pacing.max_trades_per_hour, 1);
        v.at_least("pacing.max_trades_per_day", pacing.max_trades_per_day, 1);
        if pacing.max_trades_per_day < pacing.max_trades_per_hour {
            v.fail(
                "pacing.max_trades_per_day",
                &pacing.max_trades_per_day.to_string(),
                &format!(
                    "at least pacing.max_trades_per_hour ({})",
                    pacing.max_trades_per_hour
                ),
            );
        }
    }

    fn validate_breakers(&self, v: &mut Validator) {
        let breakers = &self.breakers;
        for (key, pct) in [
            ("breakers.max_drawdown_pct", breakers.max_drawdown_pct),
            (
                "breakers.daily_loss_limit_pct",
                breakers.daily_loss_limit_pct,
            ),
        ] {
            if pct <= Decimal::ZERO || pct > Decimal::ONE_HUNDRED {
                v.fail(key, &pct.to_string(), "0 < percent <= 100");
            }
        }
        v.at_least(
            "breakers.stale_data_max_age_s",
            breakers.stale_data_max_age_s,
            1,
        );
    }

    fn validate_costs(&self, v: &mut Validator) {
        let costs = &self.costs;
        v.non_negative("costs.maker_fee_bps", costs.maker_fee_bps);
        v.non_negative("costs.taker_fee_bps", costs.taker_fee_bps);
        for (key, bps) in [
            ("costs.slippage_bps.high", costs.slippage_bps.high),
            ("costs.slippage_bps.medium", costs.slippage_bps.medium),
            ("costs.slippage_bps.low", costs.slippage_bps.low),
        ] {
            v.non_negative(key, bps);
        }
        for (key, bps) in [
            ("costs.maker_fee_bps", costs.maker_fee_bps),
            ("costs.taker_fee_bps", costs.taker_fee_bps),
        ] {
            if bps >= super::cost::BPS {
                v.fail(key, &bps.to_string(), "fees below 10000 bps (100%)");
            }
        }
    }

    fn validate_orders_and_exchange(&self, v: &mut Validator) {
        v.at_least("orders.entry_ttl_bars", self.orders.entry_ttl_bars, 1);
        if self.orders.protection_confirm_s > PROTECTION_CONFIRM_S_MAX {
            v.fail(
                "orders.protection_confirm_s",
                &self.orders.protection_confirm_s.to_string(),
                &format!("at most {PROTECTION_CONFIRM_S_MAX} (a day)"),
            );
        }
        if self.orders.post_only_retries_max > POST_ONLY_RETRIES_LIMIT {
            v.fail(
                "orders.post_only_retries_max",
                &self.orders.post_only_retries_max.to_string(),
                &format!("at most {POST_ONLY_RETRIES_LIMIT}"),
            );
        }
        let buffer = self.exchange.stop_limit_buffer;
        if buffer <= Decimal::ZERO || buffer >= Decimal::ONE {
            v.fail(
                "exchange.stop_limit_buffer",
                &buffer.to_string(),
                "0 < buffer < 1",
            );
        }
        if self.exchange.name.is_empty() {
            v.fail("exchange.name", "\"\"", "an exchange name such as COINBASE");
        }
        if let Some(live) = &self.live {
            validate_live(live, v);
        }
    }

    /// Each product spec's increments and minimums, then a spec for every
    /// symbol traded.
    fn validate_products(&self, v: &mut Validator) {
        for (symbol, spec) in &self.products {
            for (field, value) in [
                ("base_increment", spec.base_increment),
                ("quote_increment", spec.quote_increment),
            ] {
                v.positive(&format!("products.{symbol}.{field}"), value);
            }
            v.non_negative(
                &format!("products.{symbol}.base_min_size"),
                spec.base_min_size,
            );
            v.non_negative(
                &format!("products.{symbol}.quote_min_size"),
                spec.quote_min_size,
            );
        }
        for symbol in &self.run.symbols {
            if self.product(symbol).is_none() {
                v.fail(
                    &format!("products.{symbol}"),
                    "missing",
                    "a product spec for every symbol, or a products.default",
                );
            }
        }
    }
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    fn fail(&mut self, key: &str, value: &str, allowed: &str) {
        self.problems.push(Problem {
            key: key.to_string(),
            value: value.to_string(),
            allowed: allowed.to_string(),
        });
    }

    fn positive(&mut self, key: &str, value: Decimal) {
        if value <= Decimal::ZERO {
            self.fail(key, &value.to_string(), "> 0");
        }
    }

    fn non_negative(&mut self, key: &str, value: Decimal) {
        if value < Decimal::ZERO {
            self.fail(key, &value.to_string(), ">= 0");
        }
    }

    fn at_least<T: PartialOrd + std::fmt::Display>(&mut self, key: &str, value: T, min: T) {
        if value < min {
            self.fail(key, &value.to_string(), &format!(">= {min}"));
        }
    }
}

fn validate_live(live: &LiveConfig, v: &mut Validator) {
    for (key, value) in [
        ("live.order_notional_max", live.order_notional_max),
        ("live.exposure_max", live.exposure_max),
    ] {
        if value <= Decimal::ZERO {
            v.fail(key, &value.to_string(), "above 0 (quote currency)");
        }
    }
    if live.exposure_max < live.order_notional_max {
        v.fail(
            "live.exposure_max",
            &live.exposure_max.to_string(),
            "at least live.order_notional_max",
        );
    }
    if live.protection_wait_s == 0 || live.protection_wait_s > PROTECTION_WAIT_S_MAX {
        v.fail(
            "live.protection_wait_s",
            &live.protection_wait_s.to_string(),
            &format!("1 to {PROTECTION_WAIT_S_MAX} seconds"),
        );
    }
}
