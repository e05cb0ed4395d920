//! The event vocabulary: one plain data struct per event kind, and the [`Event`]
//! enum over them.
//!
//! The journal knows these shapes and nothing of what they mean for trading: names
//! of indicators, risk checks and signals are strings chosen by the engine, so the
//! engine can grow without a format change. Every event that has a cause names it
//! by sequence number (`*_seq` fields), so the chain candle → decision → order →
//! fill → closed trade can be walked.
//!
//! Encoding rules (frozen; see `journal/FORMAT.md`): each struct is encoded by
//! bincode 2 with [`crate::codec::BODY_CONFIG`], fields in declaration order.
//! Never reorder, remove or retype a field of a kind at an existing schema
//! version: add a new schema version (or a new kind) instead, and keep a decoder
//! for the old one. The golden tests fail if an existing encoding changes.

use crate::codec::{dec, opt_dec, Hash32};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Short text inside decisions (indicator, signal and check names, notes):
/// stored inline up to 24 bytes, so decoding a Decision does not allocate a
/// string per name. On disk it is a string like any other.
pub type Text = compact_str::CompactString;

/// A journal sequence number. The first event of a journal has seq 1.
pub type Seq = u64;
/// Milliseconds since the Unix epoch, UTC. All times on disk use this form.
pub type UnixMs = i64;

/// Where a run's events come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    ReplayBacktest,
    PaperLive,
    /// `anx live`: real orders on Coinbase (or previews of them).
    Live,
}

impl RunMode {
    /// A trader's run (`anx paper`, `anx live`): started, stopped, resumed,
    /// with an inbox for operator actions; not a backtest.
    pub fn is_trader(self) -> bool {
        matches!(self, RunMode::PaperLive | RunMode::Live)
    }
}

/// How capital is split between symbols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapitalMode {
    /// Each symbol has its own starting capital and its own pot.
    Independent,
    /// All symbols share one pool.
    Portfolio,
}

/// What the market time (`as_of`) of a run is measured by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketTimeBasis {
    CandleTimestamp,
    WallClock,
}

/// Whether the run used every data check or knowingly skipped one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataIntegrity {
    Ok,
    DegradedSkipVolume,
}

/// The start of a run: everything needed to answer "under which rules and on what
/// data was this run made" from the journal alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStarted {
    #[serde(deserialize_with = "crate::codec::string")]
    pub run_id: String,
    pub run_mode: RunMode,
    pub capital_mode: CapitalMode,
    pub market_time_basis: MarketTimeBasis,
    pub data_integrity: DataIntegrity,
    #[serde(deserialize_with = "crate::codec::string")]
    pub created_by: String,
    #[serde(deserialize_with = "crate::codec::string")]
    pub git_sha: String,
    pub config_hash: Hash32,
    /// The full effective configuration text the run was started with.
    #[serde(deserialize_with = "crate::codec::string")]
    pub config_text: String,
    pub symbols: Vec<String>,
    pub granularity_s: u32,
    pub start_ms: UnixMs,
    pub end_ms: Option<UnixMs>,
    #[serde(with = "dec")]
    pub starting_capital: Decimal,
}

/// One closed OHLCV candle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    #[serde(deserialize_with = "crate::codec::string")]
    pub symbol: String,
    pub granularity_s: u32,
    /// Candle open time; the candle is known at `open_ms + granularity_s * 1000`.
    pub open_ms: UnixMs,
    #[serde(with = "dec")]
    pub open: Decimal,
    #[serde(with = "dec")]
    pub high: Decimal,
    #[serde(with = "dec")]
    pub low: Decimal,
    #[serde(with = "dec")]
    pub close: Decimal,
    #[serde(with = "dec")]
    pub volume: Decimal,
}

impl Candle {
    /// When the candle closed, and so became known.
    pub fn close_ms(&self) -> UnixMs {
        self.open_ms + i64::from(self.granularity_s) * 1000
    }
}

/// What a data-quality finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityIssue {
    /// Bars missing between `after_ms` and `before_ms`.
    Gap {
        after_ms: UnixMs,
        before_ms: UnixMs,
        missing_bars: u64,
    },
    Duplicate {
        open_ms: UnixMs,
    },
    OutOfOrder {
        open_ms: UnixMs,
        previous_ms: UnixMs,
    },
    VolumeAnomaly {
        open_ms: UnixMs,
        #[serde(with = "dec")]
        volume: Decimal,
    },
    /// A row that failed validation (OHLC inconsistent, non-positive price …).
    InvalidCandle {
        open_ms: UnixMs,
    },
    /// The newest candle is older than allowed.
    Stale {
        newest_ms: UnixMs,
        age_ms: i64,
    },
    /// The market-data feed failed (timeouts, HTTP errors, an unreadable
    /// answer) after `attempts` tries; the first failure of an outage.
    FeedFault {
        attempts: u32,
    },
}

/// A data-quality finding, with where it came from (file and line, URL …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataQuality {
    #[serde(deserialize_with = "crate::codec::string")]
    pub symbol: String,
    pub granularity_s: u32,
    pub issue: QualityIssue,
    #[serde(deserialize_with = "crate::codec::string")]
    pub source: String,
    #[serde(deserialize_with = "crate::codec::string")]
    pub detail: String,
}

/// A named indicator value the decision read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    pub name: Text,
    #[serde(with = "opt_dec")]
    pub value: Option<Decimal>,
}

/// One strategy signal's output for this bar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalOutput {
    pub name: Text,
    pub fired: bool,
    #[serde(with = "dec")]
    pub strength: Decimal,
    #[serde(with = "dec")]
    pub confidence: Decimal,
    #[serde(with = "opt_dec")]
    pub entry: Option<Decimal>,
    #[serde(with = "opt_dec")]
    pub stop: Option<Decimal>,
    #[serde(with = "opt_dec")]
    pub take_profit: Option<Decimal>,
    pub note: Text,
}

/// One risk or pacing rule and how it came out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskCheck {
    /// A stable reason code, e.g. `min_notional`, `symbol_cooldown_active`.
    pub code: Text,
    pub passed: bool,
    pub detail: Text,
}

/// The sizing arithmetic, step by step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizing {
    #[serde(with = "dec")]
    pub capital: Decimal,
    #[serde(with = "dec")]
    pub risk_fraction: Decimal,
    #[serde(with = "dec")]
    pub risk_budget: Decimal,
    #[serde(with = "dec")]
    pub entry: Decimal,
    #[serde(with = "dec")]
    pub stop_trigger: Decimal,
    #[serde(with = "dec")]
    pub worst_case_fill: Decimal,
    #[serde(with = "dec")]
    pub risk_per_unit: Decimal,
    #[serde(with = "dec")]
    pub quantity_raw: Decimal,
    #[serde(with = "dec")]
    pub quantity: Decimal,
    #[serde(with = "dec")]
    pub notional: Decimal,
    #[serde(with = "dec")]
    pub multiplier: Decimal,
}

/// What the decision concluded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    Hold,
    Enter,
    Exit { reason: ExitReason },
    Rejected { reason_code: String },
}

/// The glass box of one decision: everything the engine read and weighed –
/// the regime, every indicator value, every signal's output, every risk check
/// with its figures. It can be recomputed from the journaled candles and the
/// run's configuration; a schema-2 record keeps only its digest unless the
/// decision led to an order ([`Glass`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlassBox {
    pub regime: Text,
    pub indicators: Vec<Indicator>,
    pub signals: Vec<SignalOutput>,
    pub risk_checks: Vec<RiskCheck>,
}

impl GlassBox {
    /// The names of the signals that fired, in order.
    pub fn fired(&self) -> Vec<Text> {
        self.signals
            .iter()
            .filter(|s| s.fired)
            .map(|s| s.name.clone())
            .collect()
    }

    /// The digest a schema-2 record commits to: BLAKE3 of the glass box's
    /// canonical encoding (FORMAT.md §6a).
    pub fn digest(&self) -> Result<Hash32, String> {
        let mut bytes = Vec::with_capacity(512);
        crate::schema2::encode_glass(self, &mut crate::compact::Out(&mut bytes))?;
        Ok(blake3::hash(&bytes).into())
    }
}

/// What a decision record holds of its glass box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Glass {
    /// The whole glass box: the engine's own output, a schema-1 record, or a
    /// schema-2 record of a decision that led to an order (kept inline, so a
    /// trade's trail is read, not recomputed).
    Full(GlassBox),
    /// A schema-2 record of a decision that led to no order: the signals that
    /// fired, and the digest of the glass box – which only a recomputation
    /// that hashes to the same digest may stand in for.
    Committed { fired: Vec<Text>, digest: Hash32 },
}

impl Glass {
    pub fn full(&self) -> Option<&GlassBox> {
        match self {
            Glass::Full(glass) => Some(glass),
            Glass::Committed { .. } => None,
        }
    }

    pub fn full_mut(&mut self) -> Option<&mut GlassBox> {
        match self {
            Glass::Full(glass) => Some(glass),
            Glass::Committed { .. } => None,
        }
    }

    /// The names of the signals that fired.
    pub fn fired(&self) -> Vec<Text> {
        match self {
            Glass::Full(glass) => glass.fired(),
            Glass::Committed { fired, .. } => fired.clone(),
        }
    }

    /// The digest of the glass box, journaled or worked out.
    pub fn digest(&self) -> Result<Hash32, String> {
        match self {
            Glass::Full(glass) => glass.digest(),
            Glass::Committed { digest, .. } => Ok(*digest),
        }
    }

    /// What a schema-2 record keeps of a glass box it does not hold inline:
    /// the fired signals and the digest.
    pub fn commitment(&self) -> Result<(Vec<Text>, Hash32), String> {
        Ok((self.fired(), self.digest()?))
    }
}

/// The record of one decision on one closed candle (or one reaction to an
/// order's end or an operator's exit): what was decided, why, and the glass
/// box it was decided from.
///
/// Schema 1 stores every field. Schema 2 stores the outcome and its reason,
/// the sizing, and the glass box whole only for a decision that leads to an
/// order (`Enter`, `Exit`); any other keeps the fired signals and a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub symbol: String,
    pub as_of_ms: UnixMs,
    /// The seq of the `Candle` event this decision read.
    pub candle_seq: Seq,
    pub outcome: DecisionOutcome,
    pub sizing: Option<Sizing>,
    /// The run's configuration hash: repeated in every schema-1 record,
    /// declared once per run (`RunStarted`) in schema 2, where a decoded
    /// record has none.
    pub config_hash: Option<Hash32>,
    pub glass: Glass,
}

impl Decision {
    /// Whether schema 2 keeps this decision's glass box inline: it led to an
    /// order, so a trade's trail shows it without a recomputation.
    pub fn keeps_glass_inline(&self) -> bool {
        matches!(
            self.outcome,
            DecisionOutcome::Enter | DecisionOutcome::Exit { .. }
        )
    }
}

impl Event {
    /// This event as a record written by a writer of journal schema `schema`
    /// reads back: the same, but for a schema-2 `Decision`, which has no
    /// configuration hash and keeps of a glass box it does not hold inline the
    /// fired signals and the digest.
    pub fn as_read_back(&self, schema: u16) -> Result<Event, String> {
        let Event::Decision(d) = self else {
            return Ok(self.clone());
        };
        if self.kind().written_at(schema) < 2 {
            return Ok(self.clone());
        }
        let mut read = d.clone();
        read.config_hash = None;
        if !d.keeps_glass_inline() {
            let (fired, digest) = d.glass.commitment()?;
            read.glass = Glass::Committed { fired, digest };
        }
        Ok(Event::Decision(read))
    }
}

/// A schema-1 decision, field for field in stored order (FORMAT.md §6).
#[derive(Serialize, Deserialize)]
struct DecisionV1 {
    #[serde(deserialize_with = "crate::codec::string")]
    symbol: String,
    as_of_ms: UnixMs,
    candle_seq: Seq,
    regime: Text,
    indicators: Vec<Indicator>,
    signals: Vec<SignalOutput>,
    risk_checks: Vec<RiskCheck>,
    sizing: Option<Sizing>,
    outcome: DecisionOutcome,
    config_hash: Hash32,
}

/// [`DecisionV1`] borrowed, for writing one without a copy.
#[derive(Serialize)]
struct DecisionV1Ref<'a> {
    symbol: &'a str,
    as_of_ms: UnixMs,
    candle_seq: Seq,
    regime: &'a Text,
    indicators: &'a [Indicator],
    signals: &'a [SignalOutput],
    risk_checks: &'a [RiskCheck],
    sizing: &'a Option<Sizing>,
    outcome: &'a DecisionOutcome,
    config_hash: &'a Hash32,
}

/// A schema-2 decision as JSON (`anx journal export`): its facts, then the
/// glass box or what the record commits to.
#[derive(Serialize)]
struct DecisionV2Json<'a> {
    symbol: &'a str,
    as_of_ms: UnixMs,
    candle_seq: Seq,
    outcome: &'a DecisionOutcome,
    sizing: &'a Option<Sizing>,
    #[serde(flatten)]
    glass: GlassJson<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum GlassJson<'a> {
    Full(&'a GlassBox),
    Committed {
        fired: &'a [Text],
        glass_digest: &'a Hash32,
    },
}

impl Serialize for Decision {
    /// The schema-1 layout whenever the decision has one (its configuration
    /// hash and its whole glass box): in bincode, the stored form; in JSON,
    /// what `export` has always printed. A schema-2 record read back has
    /// only its JSON form.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let (Some(config_hash), Glass::Full(glass)) = (&self.config_hash, &self.glass) {
            return DecisionV1Ref {
                symbol: &self.symbol,
                as_of_ms: self.as_of_ms,
                candle_seq: self.candle_seq,
                regime: &glass.regime,
                indicators: &glass.indicators,
                signals: &glass.signals,
                risk_checks: &glass.risk_checks,
                sizing: &self.sizing,
                outcome: &self.outcome,
                config_hash,
            }
            .serialize(serializer);
        }
        if !serializer.is_human_readable() {
            return Err(serde::ser::Error::custom(
                "a schema-2 decision read back has no schema-1 encoding (no config hash or no glass box)",
            ));
        }
        let glass = match &self.glass {
            Glass::Full(glass) => GlassJson::Full(glass),
            Glass::Committed { fired, digest } => GlassJson::Committed {
                fired,
                glass_digest: digest,
            },
        };
        DecisionV2Json {
            symbol: &self.symbol,
            as_of_ms: self.as_of_ms,
            candle_seq: self.candle_seq,
            outcome: &self.outcome,
            sizing: &self.sizing,
            glass,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Decision {
    /// A schema-1 body.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v1 = DecisionV1::deserialize(deserializer)?;
        Ok(Decision {
            symbol: v1.symbol,
            as_of_ms: v1.as_of_ms,
            candle_seq: v1.candle_seq,
            outcome: v1.outcome,
            sizing: v1.sizing,
            config_hash: Some(v1.config_hash),
            glass: Glass::Full(GlassBox {
                regime: v1.regime,
                indicators: v1.indicators,
                signals: v1.signals,
                risk_checks: v1.risk_checks,
            }),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    Limit,
    Market,
    StopLimit,
}

/// Why an order exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderPurpose {
    /// An entry, normally with attached bracket legs.
    Entry,
    /// A standalone exit (signal, manual or emergency).
    Exit,
}

/// The protection attached to an entry (Coinbase `trigger_bracket_gtc`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BracketLegs {
    #[serde(with = "dec")]
    pub take_profit_limit: Decimal,
    #[serde(with = "dec")]
    pub stop_trigger: Decimal,
    /// The limit of the stop-limit the exchange creates when the stop triggers.
    #[serde(with = "dec")]
    pub stop_limit: Decimal,
}

/// An order intent, journaled before it is handed to the broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    #[serde(deserialize_with = "crate::codec::string")]
    pub client_order_id: String,
    /// The decision this order came from.
    pub decision_seq: Seq,
    #[serde(deserialize_with = "crate::codec::string")]
    pub product_id: String,
    pub side: Side,
    pub order_type: OrderType,
    pub purpose: OrderPurpose,
    #[serde(with = "opt_dec")]
    pub limit_price: Option<Decimal>,
    #[serde(with = "opt_dec")]
    pub stop_trigger: Option<Decimal>,
    #[serde(with = "dec")]
    pub base_size: Decimal,
    pub post_only: bool,
    pub bracket: Option<BracketLegs>,
    /// Exact request payload sent to the broker (JSON), empty if none.
    #[serde(deserialize_with = "crate::codec::string")]
    pub payload: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAcknowledged {
    #[serde(deserialize_with = "crate::codec::string")]
    pub client_order_id: String,
    pub order_seq: Seq,
    #[serde(deserialize_with = "crate::codec::string")]
    pub exchange_order_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRejected {
    #[serde(deserialize_with = "crate::codec::string")]
    pub client_order_id: String,
    pub order_seq: Seq,
    #[serde(deserialize_with = "crate::codec::string")]
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    #[serde(deserialize_with = "crate::codec::string")]
    pub client_order_id: String,
    pub order_seq: Seq,
    #[serde(deserialize_with = "crate::codec::string")]
    pub reason: String,
}

/// The engine asks the broker to cancel a working order (an intent, journaled
/// before it is sent, like `OrderPlaced`); the broker's `OrderCancelled`
/// follows in the same step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequested {
    #[serde(deserialize_with = "crate::codec::string")]
    pub client_order_id: String,
    /// The `OrderPlaced` of the order to cancel.
    pub order_seq: Seq,
    #[serde(deserialize_with = "crate::codec::string")]
    pub reason: String,
}

/// The broker's answer that an entry's attached protection is not there: its
/// take-profit and stop were not found (Coinbase: no attached
/// `trigger_bracket_gtc` child with the prices sent), or – after a
/// `BracketVerified` – they are gone (the attached order cancelled at the
/// exchange while the position is open). The engine fails the symbol closed
/// in reaction, and closes an open position at market.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BracketUnconfirmed {
    #[serde(deserialize_with = "crate::codec::string")]
    pub client_order_id: String,
    pub order_seq: Seq,
    #[serde(deserialize_with = "crate::codec::string")]
    pub reason: String,
}

/// Where a real broker's answer came from, journaled right after it: the
/// broker's own time for it and the BLAKE3 of the raw response it was read
/// from (the response itself is not kept; with it, anyone can prove which
/// bytes the answer was taken from).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerReceipt {
    /// The answer this is the receipt of: the event just before it.
    pub answer_seq: Seq,
    pub broker_time_ms: UnixMs,
    pub raw_blake3: Hash32,
}

/// Both attached legs of an entry were seen live at the broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BracketVerified {
    #[serde(deserialize_with = "crate::codec::string")]
    pub client_order_id: String,
    pub order_seq: Seq,
    #[serde(deserialize_with = "crate::codec::string")]
    pub take_profit_order_id: String,
    #[serde(deserialize_with = "crate::codec::string")]
    pub stop_order_id: String,
}

/// Which part of an order a fill belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillLeg {
    Entry,
    TakeProfit,
    StopLoss,
    Exit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liquidity {
    Maker,
    Taker,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    #[serde(deserialize_with = "crate::codec::string")]
    pub client_order_id: String,
    /// The `OrderPlaced` this fill belongs to.
    pub order_seq: Seq,
    #[serde(deserialize_with = "crate::codec::string")]
    pub fill_id: String,
    pub leg: FillLeg,
    pub side: Side,
    #[serde(with = "dec")]
    pub price: Decimal,
    #[serde(with = "dec")]
    pub size: Decimal,
    #[serde(with = "dec")]
    pub fee: Decimal,
    pub liquidity: Liquidity,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileOutcome {
    Match,
    ExitDetected,
    Mismatch,
}

/// The broker's view compared with ours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    #[serde(deserialize_with = "crate::codec::string")]
    pub symbol: String,
    #[serde(with = "dec")]
    pub broker_position: Decimal,
    #[serde(with = "dec")]
    pub our_position: Decimal,
    pub broker_open_orders: Vec<String>,
    pub our_open_orders: Vec<String>,
    pub outcome: ReconcileOutcome,
    #[serde(deserialize_with = "crate::codec::string")]
    pub detail: String,
}

/// The per-symbol engine state machine's states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EngineState {
    Idle,
    EntryPending,
    PositionOpen,
    Reconcile,
    FailClosed,
}

impl EngineState {
    /// The name used everywhere the state is shown (its serde name).
    pub fn name(self) -> &'static str {
        match self {
            EngineState::Idle => "IDLE",
            EngineState::EntryPending => "ENTRY_PENDING",
            EngineState::PositionOpen => "POSITION_OPEN",
            EngineState::Reconcile => "RECONCILE",
            EngineState::FailClosed => "FAIL_CLOSED",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineTransition {
    #[serde(deserialize_with = "crate::codec::string")]
    pub symbol: String,
    pub from: EngineState,
    pub to: EngineState,
    #[serde(deserialize_with = "crate::codec::string")]
    pub reason: String,
    /// The event that caused the transition.
    pub cause_seq: Seq,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    Signal,
    TakeProfit,
    StopLoss,
    Manual,
    Emergency,
}

impl ExitReason {
    /// The name used everywhere the reason is shown (its serde name).
    pub fn name(self) -> &'static str {
        match self {
            ExitReason::Signal => "signal",
            ExitReason::TakeProfit => "take_profit",
            ExitReason::StopLoss => "stop_loss",
            ExitReason::Manual => "manual",
            ExitReason::Emergency => "emergency",
        }
    }
}

/// The single finalize-exit record of a trade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeClosed {
    #[serde(deserialize_with = "crate::codec::string")]
    pub trade_id: String,
    #[serde(deserialize_with = "crate::codec::string")]
    pub symbol: String,
    #[serde(deserialize_with = "crate::codec::string")]
    pub entry_client_order_id: String,
    pub entry_order_seq: Seq,
    pub entry_fill_seq: Seq,
    pub exit_fill_seq: Seq,
    pub entry_ms: UnixMs,
    pub exit_ms: UnixMs,
    #[serde(with = "dec")]
    pub entry_price: Decimal,
    #[serde(with = "dec")]
    pub exit_price: Decimal,
    #[serde(with = "dec")]
    pub size: Decimal,
    /// The stop the trade was sized against (for R).
    #[serde(with = "dec")]
    pub initial_stop: Decimal,
    pub exit_reason: ExitReason,
    #[serde(with = "dec")]
    pub fees: Decimal,
    #[serde(with = "dec")]
    pub slippage: Decimal,
    #[serde(with = "dec")]
    pub gross_pnl: Decimal,
    #[serde(with = "dec")]
    pub net_pnl: Decimal,
    #[serde(with = "dec")]
    pub theoretical_r: Decimal,
    #[serde(with = "dec")]
    pub realized_r: Decimal,
}

/// A symbol stopped taking entries because protection could not be confirmed or an
/// order failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailClosed {
    #[serde(deserialize_with = "crate::codec::string")]
    pub symbol: String,
    pub cause_seq: Seq,
    #[serde(deserialize_with = "crate::codec::string")]
    pub reason: String,
}

/// An operator cleared a FAIL_CLOSED symbol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorReset {
    #[serde(deserialize_with = "crate::codec::string")]
    pub symbol: String,
    #[serde(deserialize_with = "crate::codec::string")]
    pub operator: String,
    #[serde(deserialize_with = "crate::codec::string")]
    pub reason: String,
}

/// What an operator asked a trader to do (a reset has its own kind,
/// [`OperatorReset`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorCommand {
    /// Close the symbol's position at market: a manual exit, through the one
    /// finalize-exit path.
    Exit,
    /// No new entries on any symbol until a resume; protection, exits and
    /// reconciliation keep working.
    Halt,
    /// Entries are allowed again after a halt.
    Resume,
}

impl OperatorCommand {
    /// The name used everywhere the command is shown (its serde name).
    pub fn name(self) -> &'static str {
        match self {
            OperatorCommand::Exit => "exit",
            OperatorCommand::Halt => "halt",
            OperatorCommand::Resume => "resume",
        }
    }
}

/// An operator's action on a run: an input from outside, journaled before the
/// engine reacts to it (an exit's decision and market order follow it in its
/// step; a halt or resume changes what later candles may decide).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorAction {
    pub command: OperatorCommand,
    /// The symbol an exit is for; empty for a halt or a resume (run-wide).
    #[serde(deserialize_with = "crate::codec::string")]
    pub symbol: String,
    #[serde(deserialize_with = "crate::codec::string")]
    pub operator: String,
    #[serde(deserialize_with = "crate::codec::string")]
    pub reason: String,
}

/// A projection's state hash at a seq, written so a later fold can prove it agrees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last seq folded into `state_hash` (the seq just before this event).
    pub through_seq: Seq,
    pub state_hash: Hash32,
}

/// What the writer repaired when it opened the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovered {
    /// Segment file name the torn tail was cut from.
    #[serde(deserialize_with = "crate::codec::string")]
    pub segment: String,
    /// Byte offset in that segment where the dropped bytes began.
    pub offset: u64,
    pub bytes_dropped: u64,
    /// The last intact seq before the cut.
    pub last_good_seq: Seq,
    #[serde(deserialize_with = "crate::codec::string")]
    pub reason: String,
}

/// What a trader session marker records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionAction {
    /// A trader process took over the journal (after replaying it).
    Started,
    /// A trader process stopped cleanly: everything before this is durable and
    /// no step was left half-done.
    Stopped,
}

/// A live trader's session boundary. Outside the run's state: it changes no
/// projection figure, so a run restarted any number of times folds to the same
/// state as one that never stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub action: SessionAction,
    /// Why: `first start`, `restart after a clean stop`, `restart after a
    /// crash`, `SIGTERM`, `SIGINT` …
    #[serde(deserialize_with = "crate::codec::string")]
    pub reason: String,
}

/// Something a running trader found wrong with its run, from a check it was
/// given: raised once when the check's condition starts to hold, cleared once
/// when it stops (the edge-decay checks of a reference backtest:
/// `edge_decay.expectancy_drop`, `edge_decay.fill_slippage`,
/// `edge_decay.win_rate`). A journal side event: it judges the run and
/// changes none of its figures (not even its market-time span), and
/// re-driving takes it as journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The check, as `family.check`.
    #[serde(deserialize_with = "crate::codec::string")]
    pub check: String,
    /// The symbol the finding is about; empty for the whole run.
    #[serde(deserialize_with = "crate::codec::string")]
    pub symbol: String,
    /// Raised (the condition holds) or cleared (it no longer does).
    pub raised: bool,
    /// The measured figure, when it could be measured.
    #[serde(with = "opt_dec")]
    pub value: Option<Decimal>,
    /// The threshold it was held against.
    #[serde(with = "dec")]
    pub limit: Decimal,
    #[serde(deserialize_with = "crate::codec::string")]
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCompleted {
    #[serde(deserialize_with = "crate::codec::string")]
    pub run_id: String,
    pub end_ms: UnixMs,
    pub candles: u64,
    #[serde(deserialize_with = "crate::codec::string")]
    pub reason: String,
}

/// The kind code stored in every envelope. Codes are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u16)]
pub enum EventKind {
    RunStarted = 1,
    Candle = 2,
    DataQuality = 3,
    Decision = 4,
    OrderPlaced = 5,
    OrderAcknowledged = 6,
    OrderRejected = 7,
    OrderCancelled = 8,
    BracketVerified = 9,
    Fill = 10,
    Reconciliation = 11,
    EngineTransition = 12,
    TradeClosed = 13,
    FailClosed = 14,
    OperatorReset = 15,
    Checkpoint = 16,
    Recovered = 17,
    RunCompleted = 18,
    Session = 19,
    OperatorAction = 20,
    CancelRequested = 21,
    BracketUnconfirmed = 22,
    AnswerReceipt = 23,
    Finding = 24,
}

/// What an event is to the step that journals it: the one table
/// ([`EventKind::role`]) that re-driving, the fold and the paper trader read,
/// instead of each deciding by kind. A *step* is one input and everything it
/// leads to (the broker's answers, the engine's outputs, and the answers and
/// outputs those lead to), journaled in order with nothing else between.
/// Roles are not stored: a kind's role is part of its definition
/// (`journal/FORMAT.md` §6, "Event roles").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventRole {
    /// What comes from outside the engine: market data (a closed candle, a
    /// data-quality finding) and an operator's action (a reset, an exit, a
    /// halt or resume). It starts a step and is journaled first in it.
    /// Re-driving folds the journal's own copy (it cannot be produced again)
    /// and runs the rest of its step: a candle's broker work and engine
    /// decision, an operator action's engine reaction; a finding's step is its
    /// append alone. Folded as part of the run.
    Input,
    /// The broker's answer to a candle it worked or an order handed to it
    /// (acknowledged, rejected, cancelled, bracket verified or not, fill): an input
    /// to the engine, but journaled inside the step that made the broker
    /// answer. Re-driving has the broker answer again and the answer must be
    /// the journaled one byte for byte; one met where no step produces it is
    /// a divergence. Folded as part of the run.
    BrokerAnswer,
    /// What the engine decided in a step (decision, order intent, engine
    /// transition, closed trade). Re-driving runs the engine again and its
    /// output must be the journaled one byte for byte; one met where no step
    /// produces it is a divergence. Folded as part of the run.
    StepOutput,
    /// A side event of the run (its start and completion, a reconciliation
    /// with the broker): appended only between steps,
    /// never produced by one. Re-driving folds it as journaled. Folded as part
    /// of the run: after `RunStarted`, not after `RunCompleted`.
    Side,
    /// Both a step's output and a side event (`FailClosed`): the engine fails
    /// a symbol closed inside a step (protection not confirmed), the paper
    /// trader's reconciliation fails it closed between steps. Re-driving
    /// reproduces it where a step produces it and, met between steps, folds
    /// it as a side event. Folded as part of the run.
    SideOrOutput,
    /// About the journal or the process, not the run (a repair, a
    /// checkpoint, a trader's session): appended only between steps, and may
    /// come anywhere – before `RunStarted` or after `RunCompleted` too.
    /// Re-driving folds it as journaled. The fold changes no state figure for
    /// it (a checkpoint is checked against the state hash) and does not count
    /// its market time in the run's span.
    JournalSide,
}

impl EventRole {
    /// Whether an event of this role is part of the run (all but
    /// [`EventRole::JournalSide`]): the fold checks it comes after
    /// `RunStarted` and not after `RunCompleted`, and counts its market time.
    pub const fn in_run(self) -> bool {
        !matches!(self, EventRole::JournalSide)
    }

    /// Whether an event of this role may be appended between steps (side
    /// events, and `FailClosed`).
    pub const fn is_side(self) -> bool {
        matches!(
            self,
            EventRole::Side | EventRole::SideOrOutput | EventRole::JournalSide
        )
    }

    /// The role's name in `journal/FORMAT.md`.
    pub const fn name(self) -> &'static str {
        match self {
            EventRole::Input => "input",
            EventRole::BrokerAnswer => "broker_answer",
            EventRole::StepOutput => "step_output",
            EventRole::Side => "side",
            EventRole::SideOrOutput => "side_or_output",
            EventRole::JournalSide => "journal_side",
        }
    }
}

impl EventKind {
    /// The schema version a body of this kind is written at by a writer of
    /// journal schema `schema`: schema 2 changed `Candle` and `Decision` only;
    /// every other kind has one version, 1.
    pub const fn written_at(self, schema: u16) -> u16 {
        match self {
            EventKind::Candle | EventKind::Decision if schema >= 2 => 2,
            _ => 1,
        }
    }

    /// The kind's role. One match without a wildcard: a new kind does not
    /// compile until its role is decided.
    pub const fn role(self) -> EventRole {
        match self {
            EventKind::Candle
            | EventKind::DataQuality
            | EventKind::OperatorReset
            | EventKind::OperatorAction => EventRole::Input,
            EventKind::OrderAcknowledged
            | EventKind::OrderRejected
            | EventKind::OrderCancelled
            | EventKind::BracketVerified
            | EventKind::BracketUnconfirmed
            | EventKind::AnswerReceipt
            | EventKind::Fill => EventRole::BrokerAnswer,
            EventKind::Decision
            | EventKind::OrderPlaced
            | EventKind::CancelRequested
            | EventKind::EngineTransition
            | EventKind::TradeClosed => EventRole::StepOutput,
            EventKind::FailClosed => EventRole::SideOrOutput,
            EventKind::RunStarted | EventKind::Reconciliation | EventKind::RunCompleted => {
                EventRole::Side
            }
            EventKind::Checkpoint
            | EventKind::Recovered
            | EventKind::Session
            | EventKind::Finding => EventRole::JournalSide,
        }
    }
}

/// Declares the [`Event`] enum and its kind table in one place, so a kind cannot
/// be added to one and forgotten in the other.
macro_rules! events {
    ($($name:ident),* $(,)?) => {
        /// Every event the journal can hold.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize)]
        #[serde(untagged)]
        pub enum Event {
            $($name($name),)*
        }

        impl Event {
            pub fn kind(&self) -> EventKind {
                match self {
                    $(Event::$name(_) => EventKind::$name,)*
                }
            }
        }

        impl EventKind {
            /// Every kind, in code order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$name,)*];

            pub fn code(self) -> u16 {
                self as u16
            }

            pub fn from_code(code: u16) -> Option<EventKind> {
                Self::ALL.iter().copied().find(|kind| kind.code() == code)
            }

            pub fn name(self) -> &'static str {
                match self {
                    $(EventKind::$name => stringify!($name),)*
                }
            }
        }

        $(impl From<$name> for Event {
            fn from(body: $name) -> Event {
                Event::$name(body)
            }
        })*

        /// Encodes the body of `event` (not the envelope) at schema `version`
        /// (its kind's, [`EventKind::written_at`]): schema 2 of `Candle` and
        /// `Decision` by hand (FORMAT.md §6a), every schema-1 body by bincode
        /// with the frozen config.
        /// `market_ms` is the record's market time (a schema-2 decision's
        /// `as_of_ms` is it, not stored twice).
        pub(crate) fn encode_body(event: &Event, version: u16, market_ms: UnixMs, out: &mut Vec<u8>) -> Result<(), String> {
            match (version, event) {
                (2, Event::Candle(c)) => crate::schema2::encode_candle(c, &mut crate::compact::Out(out)),
                (2, Event::Decision(d)) => crate::schema2::encode_decision(d, market_ms, &mut crate::compact::Out(out)),
                (1, _) => match event {
                    $(Event::$name(body) => {
                        bincode::serde::encode_into_writer(body, VecWriter(out), crate::codec::BODY_CONFIG)
                            .map_err(|e| e.to_string())
                    })*
                },
                (other, _) => Err(format!("{} has no schema version {other}", event.kind())),
            }
        }

        /// The encoded body of `event` at schema `version`, journaled at
        /// `market_ms` (what follows the envelope on disk).
        pub fn body_bytes(event: &Event, version: u16, market_ms: UnixMs) -> Result<Vec<u8>, String> {
            let mut out = Vec::new();
            body_bytes_into(event, version, market_ms, &mut out)?;
            Ok(out)
        }

        /// [`body_bytes`] into `out` (cleared first), reusing its allocation.
        pub fn body_bytes_into(event: &Event, version: u16, market_ms: UnixMs, out: &mut Vec<u8>) -> Result<(), String> {
            out.clear();
            encode_body(event, version, market_ms, out)
        }

        /// Decodes a body of `kind` at schema `version`; the whole slice must be used.
        /// (`market_ms`: the record's market time, a schema-2 decision's `as_of_ms`.)
        pub(crate) fn decode_body(kind: EventKind, version: u16, market_ms: UnixMs, body: &[u8]) -> Result<Event, String> {
            match (version, kind) {
                (2, EventKind::Candle) => {
                    let mut input = crate::compact::In::new(body);
                    let candle = crate::schema2::decode_candle(&mut input)?;
                    input.finish().map(|()| Event::Candle(candle))
                }
                (2, EventKind::Decision) => {
                    let mut input = crate::compact::In::new(body);
                    let decision = crate::schema2::decode_decision(&mut input, market_ms)?;
                    input.finish().map(|()| Event::Decision(decision))
                }
                $((1, EventKind::$name) => decode_exact::<$name>(body).map(Event::$name),)*
                (other, _) => Err(format!(
                    "schema version {other} is not supported for {kind} (this build knows 1..={})",
                    kind.written_at(crate::format::SCHEMA_VERSION_CURRENT)
                )),
            }
        }
    };
}

events!(
    RunStarted,
    Candle,
    DataQuality,
    Decision,
    OrderPlaced,
    OrderAcknowledged,
    OrderRejected,
    OrderCancelled,
    BracketVerified,
    Fill,
    Reconciliation,
    EngineTransition,
    TradeClosed,
    FailClosed,
    OperatorReset,
    Checkpoint,
    Recovered,
    RunCompleted,
    Session,
    OperatorAction,
    CancelRequested,
    BracketUnconfirmed,
    AnswerReceipt,
    Finding,
);

/// Appends bincode output straight onto a `Vec` (cheaper than going through
/// `std::io::Write`, which the encoder would call once per field).
struct VecWriter<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for VecWriter<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

fn decode_exact<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let (value, used): (T, usize) =
        bincode::serde::decode_from_slice(body, crate::codec::BODY_DECODE_CONFIG)
            .map_err(|e| e.to_string())?;
    if used != body.len() {
        return Err(format!(
            "{} trailing bytes after the body",
            body.len() - used
        ));
    }
    Ok(value)
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_the_serde_names() {
        use EngineState::*;
        for state in [Idle, EntryPending, PositionOpen, Reconcile, FailClosed] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.name());
        }
        use ExitReason::*;
        for reason in [Signal, TakeProfit, StopLoss, Manual, Emergency] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.name());
        }
    }

    /// The role table, written out by hand: changing a kind's role means
    /// changing this list (and FORMAT.md), on purpose.
    const ROLES: &[(EventKind, EventRole)] = {
        use EventKind as K;
        use EventRole as R;
        &[
            (K::RunStarted, R::Side),
            (K::Candle, R::Input),
            (K::DataQuality, R::Input),
            (K::Decision, R::StepOutput),
            (K::OrderPlaced, R::StepOutput),
            (K::OrderAcknowledged, R::BrokerAnswer),
            (K::OrderRejected, R::BrokerAnswer),
            (K::OrderCancelled, R::BrokerAnswer),
            (K::BracketVerified, R::BrokerAnswer),
            (K::Fill, R::BrokerAnswer),
            (K::Reconciliation, R::Side),
            (K::EngineTransition, R::StepOutput),
            (K::TradeClosed, R::StepOutput),
            (K::FailClosed, R::SideOrOutput),
            (K::OperatorReset, R::Input),
            (K::Checkpoint, R::JournalSide),
            (K::Recovered, R::JournalSide),
            (K::RunCompleted, R::Side),
            (K::Session, R::JournalSide),
            (K::OperatorAction, R::Input),
            (K::CancelRequested, R::StepOutput),
            (K::BracketUnconfirmed, R::BrokerAnswer),
            (K::AnswerReceipt, R::BrokerAnswer),
            (K::Finding, R::JournalSide),
        ]
    };

    #[test]
    fn every_kind_has_the_role_written_down_for_it() {
        let kinds: Vec<EventKind> = ROLES.iter().map(|(kind, _)| *kind).collect();
        assert_eq!(kinds, EventKind::ALL, "one row per kind, in code order");
        for (kind, role) in ROLES {
            assert_eq!(kind.role(), *role, "{kind}");
        }
        // What the fold and re-driving read off a role.
        for (kind, role) in ROLES {
            assert_eq!(role.in_run(), *role != EventRole::JournalSide, "{kind}");
            let side = matches!(
                role,
                EventRole::Side | EventRole::SideOrOutput | EventRole::JournalSide
            );
            assert_eq!(role.is_side(), side, "{kind}");
        }
    }

    /// FORMAT.md's role table names every kind under its role, once.
    #[test]
    fn format_doc_lists_every_kind_under_its_role() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/FORMAT.md"))
            .expect("journal/FORMAT.md");
        let start = doc
            .find("### Event roles")
            .expect("FORMAT.md §6 has an Event roles table");
        let section = &doc[start..];
        let section = &section[..section.find("\n## ").unwrap_or(section.len())];
        let mut listed: Vec<(EventKind, EventRole)> = Vec::new();
        for line in section.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let role_name = cells[1].trim_matches('`');
            let role = ROLES
                .iter()
                .map(|(_, role)| *role)
                .find(|role| role.name() == role_name)
                .unwrap_or_else(|| panic!("FORMAT.md names an unknown role {role_name:?}"));
            // The kinds cell: `Name` (code), …
            for item in cells[2].split(',') {
                let name = item.split('`').nth(1).expect("a kind in backticks");
                let code: u16 = item
                    .split(['(', ')'])
                    .nth(1)
                    .and_then(|c| c.trim().parse().ok())
                    .unwrap_or_else(|| panic!("FORMAT.md: {name} without its code"));
                let kind = EventKind::from_code(code).expect("a known code");
                assert_eq!(kind.name(), name, "FORMAT.md: code {code}");
                listed.push((kind, role));
            }
        }
        listed.sort();
        assert_eq!(listed, ROLES, "FORMAT.md's role table");
    }
}
