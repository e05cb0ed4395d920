//! The projected state: plain data, serializable (for snapshots) and hashable
//! (for checkpoints). Everything here is derived from the journal alone.
//!
//! The state is split in two. [`State`] is what the system *knows* – engine
//! states, positions, cash, trades, audit coverage, data quality, the equity
//! curve – and is what the state hash covers. [`Links`] holds journal positions
//! (seqs) used to check causal links as events arrive; they are not part of the
//! hash, so two journals that record the same history with different seq
//! numbering (say, one with a repaired torn tail) project the same state hash.

use anx_journal::codec::{dec, opt_dec};
use anx_journal::{
    CapitalMode, DataIntegrity, EngineState, EventKind, ExitReason, MarketTimeBasis, OrderPurpose,
    ReconcileOutcome, RunMode, Seq, SessionAction, Side, UnixMs,
};
use rust_decimal::Decimal;

/// Milliseconds in a UTC day (days here are UTC calendar days: no leap seconds).
pub const DAY_MS: i64 = 86_400_000;

/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;

/// The UTC day number (days since 1970-01-01) of a market time.
pub fn utc_day(market_ms: UnixMs) -> i64 {
    market_ms.div_euclid(DAY_MS)
}
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The run's metadata row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRow {
    pub run_id: String,
    pub run_mode: RunMode,
    pub capital_mode: CapitalMode,
    pub market_time_basis: MarketTimeBasis,
    pub data_integrity: DataIntegrity,
    pub created_by: String,
    pub git_sha: String,
    pub config_hash: String,
    pub symbols: Vec<String>,
    pub granularity_s: u32,
    pub start_ms: UnixMs,
    pub end_ms: Option<UnixMs>,
    #[serde(with = "dec")]
    pub starting_capital: Decimal,
    /// Market time of the `RunStarted` event.
    pub started_ms: UnixMs,
    /// Market time of the `RunCompleted` event, once there is one.
    pub completed_ms: Option<UnixMs>,
    pub completion: Option<String>,
    pub candles: u64,
    pub trades_opened: u64,
    pub trades_closed: u64,
}

/// A symbol's position. Average entry is `cost / quantity`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    #[serde(with = "dec")]
    pub quantity: Decimal,
    /// Quote spent on the units still held.
    #[serde(with = "dec")]
    pub cost: Decimal,
    /// Every fee paid on this symbol.
    #[serde(with = "dec")]
    pub fees_paid: Decimal,
    /// Realized PnL before fees: Σ sold × (price − average entry).
    #[serde(with = "dec")]
    pub realized_gross: Decimal,
}

impl Position {
    pub fn average_entry(&self) -> Option<Decimal> {
        (!self.quantity.is_zero()).then(|| self.cost / self.quantity)
    }

    /// Realized PnL after every fee paid on this symbol.
    pub fn realized_net(&self) -> Decimal {
        self.realized_gross - self.fees_paid
    }
}

/// The trade currently open on a symbol, accumulated from its fills so the
/// closing record can be checked against them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTrade {
    pub entry_client_order_id: String,
    pub opened_ms: UnixMs,
    #[serde(with = "dec")]
    pub bought: Decimal,
    #[serde(with = "dec")]
    pub buy_notional: Decimal,
    #[serde(with = "dec")]
    pub sell_notional: Decimal,
    #[serde(with = "dec")]
    pub fees: Decimal,
    /// Exit orders placed for this trade (client order ids).
    pub exit_orders: Vec<String>,
}

/// What a trade's row does not state, gathered as it ran: what its entry
/// decision saw and which side of the book its fills took. Kept beside the
/// rows ([`State::trade_details`]), not in them, so the hashed form and the
/// rows' layout stay as every journaled checkpoint knows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeDetail {
    pub entry: EntryContext,
    pub liquidity: LiquiditySplit,
}

/// What the decision that opened a trade saw: the signals that fired (joined
/// by `+`) and the regime, from its glass box (always inline for an entry).
/// Empty for a trade the journal has no entry decision for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryContext {
    pub signals: String,
    pub regime: String,
    /// The open time of the candle the entry decision read (0: none
    /// journaled) – not the decision's own time, which for a live run is the
    /// exchange's clock (a stale candle, a re-priced retry): the key that
    /// matches a trade across two runs (`anx compare`).
    pub decided_ms: UnixMs,
}

impl EntryContext {
    /// The breakdown key of the entry's signals (`none` when none fired).
    pub fn signals_key(&self) -> &str {
        if self.signals.is_empty() {
            "none"
        } else {
            &self.signals
        }
    }

    /// The breakdown key of the entry's regime (`unknown` without one).
    pub fn regime_key(&self) -> &str {
        if self.regime.is_empty() {
            "unknown"
        } else {
            &self.regime
        }
    }
}

/// Fill notional by liquidity: which side of the book a trade's fills took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiquiditySplit {
    #[serde(with = "dec")]
    pub maker_notional: Decimal,
    #[serde(with = "dec")]
    pub taker_notional: Decimal,
}

impl LiquiditySplit {
    /// Adds one fill's notional on its side.
    pub fn add(&mut self, liquidity: anx_journal::Liquidity, notional: Decimal) {
        match liquidity {
            anx_journal::Liquidity::Maker => self.maker_notional += notional,
            anx_journal::Liquidity::Taker => self.taker_notional += notional,
        }
    }

    /// Maker notional over all fill notional, a fraction; `None` without fills.
    pub fn maker_share(&self) -> Option<Decimal> {
        let total = self.maker_notional + self.taker_notional;
        (!total.is_zero()).then(|| self.maker_notional / total)
    }
}

/// Per-symbol state: the engine state machine, the position and market data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolState {
    pub engine: EngineStateCell,
    /// The entry order in flight (placed, not yet filled, cancelled or rejected).
    pub in_flight: Option<String>,
    /// Why the symbol is fail-closed, until an operator resets it.
    pub fail_closed: Option<String>,
    pub position: Position,
    pub open_trade: Option<OpenTrade>,
    #[serde(with = "opt_dec")]
    pub last_close: Option<Decimal>,
    pub last_candle_open_ms: Option<UnixMs>,
    pub last_reconciliation: Option<ReconcileOutcome>,
    pub trades_opened: u64,
    pub trades_closed: u64,
}

/// `EngineState` with a default (IDLE), so per-symbol state can be created on demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStateCell(pub EngineState);

impl Default for EngineStateCell {
    fn default() -> Self {
        EngineStateCell(EngineState::Idle)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    Placed,
    Acknowledged,
    Filled,
    Cancelled,
    Rejected,
}

/// A live order (removed once its trade closes or it ends unfilled).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    pub client_order_id: String,
    pub symbol: String,
    pub side: Side,
    pub purpose: OrderPurpose,
    pub has_bracket: bool,
    pub status: OrderStatus,
    pub bracket_verified: bool,
    pub exchange_order_id: String,
    #[serde(with = "dec")]
    pub size: Decimal,
    /// Filled quantity of the order itself (entry or exit), not its bracket legs.
    #[serde(with = "dec")]
    pub filled: Decimal,
}

/// One closed trade: the ledger row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeRow {
    pub trade_id: String,
    pub symbol: String,
    pub entry_client_order_id: String,
    pub entry_ms: UnixMs,
    pub exit_ms: UnixMs,
    #[serde(with = "dec")]
    pub entry_price: Decimal,
    #[serde(with = "dec")]
    pub exit_price: Decimal,
    #[serde(with = "dec")]
    pub size: Decimal,
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

impl TradeRow {
    pub fn hold_ms(&self) -> i64 {
        self.exit_ms - self.entry_ms
    }

    /// The price move alone, before fees and slippage (the cost model's
    /// attribution: net = edge − fees − slippage).
    pub fn edge(&self) -> Decimal {
        crate::engine::cost::edge(self.net_pnl, self.fees, self.slippage)
    }

    /// The risk taken, in the quote currency: size × (entry fill − initial
    /// stop), what the stop would have lost at its trigger. Realized R is
    /// net PnL (the reward) over it.
    pub fn risk(&self) -> Decimal {
        crate::engine::cost::risk(self.size, self.entry_price, self.initial_stop)
    }
}

/// Which link of a trade's causal chain is missing or out of order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AuditGap {
    /// The entry decision did not conclude `enter`.
    DecisionNotEnter,
    /// The entry order carried no bracket.
    NoBracket,
    /// The bracket was never verified at the broker.
    BracketNotVerified,
    /// The entry was never acknowledged by the broker.
    NotAcknowledged,
    /// Candle → decision → order → fill → exit → close is not in seq order.
    OutOfOrder,
}

impl AuditGap {
    pub fn name(self) -> &'static str {
        match self {
            AuditGap::DecisionNotEnter => "decision_not_enter",
            AuditGap::NoBracket => "no_bracket",
            AuditGap::BracketNotVerified => "bracket_not_verified",
            AuditGap::NotAcknowledged => "not_acknowledged",
            AuditGap::OutOfOrder => "out_of_order",
        }
    }
}

/// Audit coverage: how many closed trades have the full causal trail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCoverage {
    pub trades: u64,
    pub complete: u64,
    /// Trade id → what is missing, for the incomplete ones.
    pub incomplete: BTreeMap<String, Vec<AuditGap>>,
}

/// Data-quality counts for one symbol.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityCounts {
    pub candles: u64,
    pub gaps: u64,
    pub missing_bars: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub volume_anomalies: u64,
    pub invalid: u64,
    pub stale: u64,
}

/// The equity curve, kept as running figures so memory does not grow with the
/// journal. Equity is sampled on every candle and every closed trade.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquityCurve {
    #[serde(with = "dec")]
    pub start: Decimal,
    /// Cash in every pot.
    #[serde(with = "dec")]
    pub cash: Decimal,
    /// Σ quantity × last close over symbols.
    #[serde(with = "dec")]
    pub marked: Decimal,
    #[serde(with = "dec")]
    pub last: Decimal,
    #[serde(with = "dec")]
    pub peak: Decimal,
    /// Largest peak-to-trough fall in quote currency.
    #[serde(with = "dec")]
    pub max_drawdown: Decimal,
    /// The (fall, peak) pair with the largest fall / peak.
    #[serde(with = "dec")]
    pub max_drawdown_pct_fall: Decimal,
    #[serde(with = "dec")]
    pub max_drawdown_pct_peak: Decimal,
    pub samples: u64,
    /// Daily returns (UTC days, last equity of each day), as running sums.
    pub day: Option<i64>,
    #[serde(with = "dec")]
    pub day_open: Decimal,
    pub returns_n: u64,
    #[serde(with = "dec")]
    pub returns_sum: Decimal,
    #[serde(with = "dec")]
    pub returns_sum_sq: Decimal,
    #[serde(with = "dec")]
    pub returns_down_sum_sq: Decimal,
    /// Equity at the close of each UTC day (for charts): one point per day.
    pub daily: Vec<DailyEquity>,
}

/// The last equity sample of a UTC day, and the peak so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyEquity {
    /// Days since 1970-01-01.
    pub day: i64,
    #[serde(with = "dec")]
    pub equity: Decimal,
    #[serde(with = "dec")]
    pub peak: Decimal,
}

/// Operator actions the state remembers for `anx status`.
pub const OPERATOR_LOG_MAX: usize = 10;

/// One operator action (a reset, an exit, a halt or a resume) as journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorNote {
    pub seq: Seq,
    pub market_ms: UnixMs,
    /// `reset`, `exit`, `halt` or `resume`.
    pub command: String,
    /// Empty for a halt or a resume.
    pub symbol: String,
    pub operator: String,
    pub reason: String,
}

/// Everything the journal says the system knows. Covered by the state hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub run: Option<RunRow>,
    pub symbols: BTreeMap<String, SymbolState>,
    /// Cash by pot: one per symbol (`independent`) or one named `portfolio`.
    pub cash: BTreeMap<String, DecimalCell>,
    pub orders: BTreeMap<String, OrderState>,
    pub trades: Vec<TradeRow>,
    pub audit: AuditCoverage,
    pub quality: BTreeMap<String, QualityCounts>,
    pub equity: EquityCurve,
    #[serde(with = "dec")]
    pub fees_total: Decimal,
    /// Σ over closed trades of their hold time.
    pub exposure_ms: i64,
    pub first_market_ms: Option<UnixMs>,
    pub last_market_ms: Option<UnixMs>,
    /// Why new entries are halted, from an operator's halt until a resume.
    /// Not in form 1 (a later form will cover it).
    pub halted: Option<OperatorNote>,
    /// The newest operator actions, oldest first, at most
    /// [`OPERATOR_LOG_MAX`]: what `anx status` shows. Not in form 1.
    pub operator_log: Vec<OperatorNote>,
    /// One per row of `trades`, in the same order. Not in form 1.
    pub trade_details: Vec<TradeDetail>,
    /// Symbol → the detail of its open trade, gathered from its first fill.
    /// Not in form 1.
    pub open_details: BTreeMap<String, TradeDetail>,
    /// Only in this crate's unit tests: a figure a later version might add
    /// (events folded). Not in form 1, so the simulated upgrade test can show
    /// that adding a figure leaves every journaled checkpoint checkable.
    #[cfg(test)]
    pub simulated_future_figure: u64,
}

impl State {
    /// The cash pot `symbol` trades from: its own (`independent`) or the one
    /// shared pot (`portfolio`).
    pub fn pot<'a>(&self, symbol: &'a str) -> &'a str {
        match self.run.as_ref().map(|r| r.capital_mode) {
            Some(CapitalMode::Portfolio) => crate::fold::PORTFOLIO_POT,
            _ => symbol,
        }
    }

    /// When the newest candle of `symbol` closed.
    /// `symbol`'s orders still working at the broker.
    pub fn open_orders<'a>(&'a self, symbol: &'a str) -> impl Iterator<Item = &'a OrderState> {
        self.orders
            .values()
            .filter(move |o| o.symbol == symbol && o.is_open())
    }

    /// The detail of closed trade `index` (a default one if the state has
    /// none, as a state built by hand may not).
    pub fn trade_detail(&self, index: usize) -> &TradeDetail {
        static NONE: TradeDetail = TradeDetail {
            entry: EntryContext {
                signals: String::new(),
                regime: String::new(),
                decided_ms: 0,
            },
            liquidity: LiquiditySplit {
                maker_notional: Decimal::ZERO,
                taker_notional: Decimal::ZERO,
            },
        };
        self.trade_details.get(index).unwrap_or(&NONE)
    }

    /// Each closed trade with its detail, in order.
    pub fn closed_trades(&self) -> impl Iterator<Item = (&TradeRow, &TradeDetail)> {
        self.trades
            .iter()
            .enumerate()
            .map(|(i, t)| (t, self.trade_detail(i)))
    }

    pub fn last_close_ms(&self, symbol: &str) -> Option<UnixMs> {
        let granularity_ms = i64::from(self.run.as_ref()?.granularity_s) * 1000;
        let open_ms = self.symbols.get(symbol)?.last_candle_open_ms?;
        Some(open_ms + granularity_ms)
    }
}

impl EquityCurve {
    /// Equity now: cash plus the positions marked at their last close.
    pub fn equity(&self) -> Decimal {
        self.cash + self.marked
    }

    /// The peak equity including equity now (the recorded peak lags until the
    /// next sample).
    pub fn peak_now(&self) -> Decimal {
        self.peak.max(self.equity())
    }
}

impl OrderState {
    /// Still working at the broker (placed or acknowledged, not ended).
    pub fn is_open(&self) -> bool {
        matches!(self.status, OrderStatus::Placed | OrderStatus::Acknowledged)
    }
}

/// A `Decimal` with the compact encoding, usable as a map value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecimalCell(#[serde(with = "dec")] pub Decimal);

/// Causal links of a live order: where its events are in the journal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLinks {
    pub order_seq: Seq,
    pub decision_seq: Seq,
    pub candle_seq: Seq,
    pub decision_entered: bool,
    pub ack_seq: Option<Seq>,
    pub bracket_seq: Option<Seq>,
    pub first_fill_seq: Option<Seq>,
    pub last_fill_seq: Option<Seq>,
}

/// A torn tail repaired when the journal was reopened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryNote {
    pub seq: Seq,
    pub segment: String,
    pub offset: u64,
    pub bytes_dropped: u64,
}

/// Journal positions for causal checks. Not covered by the state hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    /// The last seq folded.
    pub seq: Seq,
    pub last_candle: BTreeMap<String, Seq>,
    /// Symbol → (decision seq, the candle it read, whether it said `enter`).
    pub last_decision: BTreeMap<String, (Seq, Seq, bool)>,
    pub orders: BTreeMap<String, OrderLinks>,
    /// Symbol → seq of the last exit fill of its open trade.
    pub last_exit_fill: BTreeMap<String, Seq>,
    pub recoveries: Vec<RecoveryNote>,
    pub checkpoints_verified: u64,
    /// Every client order id ever placed: an order is never placed twice.
    pub placed: BTreeSet<String>,
    /// Every fill journaled, by the broker's fill (trade) id, with its seq: a
    /// fill counts once, whatever a broker's answers repeat.
    pub fills: BTreeMap<String, Seq>,
    /// The seq of the newest fill.
    pub last_fill_seq: Option<Seq>,
    /// The broker's own time of the newest fill that came with a receipt:
    /// where a restart asks the broker to resume its answers from
    /// (`Pipeline::resync_broker`; in the broker's time, since a fill is
    /// journaled later than the broker made it).
    pub last_fill_broker_ms: Option<UnixMs>,
    /// The seq of the newest broker answer (not a receipt): the one an
    /// `AnswerReceipt` right after it describes.
    pub last_answer_seq: Option<Seq>,
    /// Live trader sessions: where each started or stopped, and why.
    pub sessions: Vec<SessionNote>,
    /// Symbol → feed outages journaled (live runs; outside the hashed state,
    /// since how often a feed failed says nothing about the market).
    pub feed_faults: BTreeMap<String, u64>,
    /// Symbol → (seq, newest candle's close) of the last `stale` finding.
    pub last_stale: BTreeMap<String, (Seq, UnixMs)>,
    /// Symbol → reason → decisions that led to no order ([`NoOrderReason`]):
    /// why a run's candles did not trade. Outside the hashed state, like the
    /// feed faults: it counts decisions, not the run's money or positions.
    pub no_order: BTreeMap<String, BTreeMap<String, u64>>,
    /// Symbol → what its newest `enter` decision saw: the open trade it leads
    /// to takes it with its first fill.
    pub entry_context: BTreeMap<String, EntryContext>,
    /// The newest `Finding` of each check (and symbol): what is raised now.
    /// Outside the hashed state: a finding judges the run, it is not part of it.
    pub findings: BTreeMap<String, FindingNote>,
    /// Events folded, by kind code ([`EventKind::code`]; index 0 unused):
    /// what a trader's metrics count. Outside the hashed state.
    pub events_by_kind: Vec<u64>,
    /// Symbol → decisions folded.
    pub decisions: BTreeMap<String, u64>,
    /// Symbol → decisions rejected (a signal fired, a check refused the
    /// entry) since its last `enter` decision, or the run's start – but for
    /// a breaker, a halt or the regime: a streak the anomaly watch judges
    /// (signals that keep firing and never trade may be a bug).
    pub rejected_since_entry: BTreeMap<String, u64>,
}

impl Links {
    /// How many events of `kind` were folded.
    pub fn events_of(&self, kind: EventKind) -> u64 {
        self.events_by_kind
            .get(usize::from(kind.code()))
            .copied()
            .unwrap_or(0)
    }
}

/// The newest `Finding` journaled for a check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingNote {
    pub seq: Seq,
    pub market_ms: UnixMs,
    pub check: String,
    pub symbol: String,
    pub raised: bool,
    #[serde(with = "opt_dec")]
    pub value: Option<Decimal>,
    #[serde(with = "dec")]
    pub limit: Decimal,
    pub detail: String,
}

impl FindingNote {
    /// The key a check's findings are kept under: the check, and its symbol
    /// when it has one.
    pub fn key(check: &str, symbol: &str) -> String {
        if symbol.is_empty() {
            check.to_string()
        } else {
            format!("{check} {symbol}")
        }
    }
}

/// Why a decision led to no order: a rejection's own reason code, or for a
/// hold what the symbol was doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoOrderReason<'a> {
    /// Rejected by a risk check or the engine (`rr_after_costs`, …).
    Rejected(&'a str),
    /// Idle, and no signal fired.
    NoSignal,
    /// A position was open (and no exit was due).
    PositionOpen,
    /// An entry or exit order was working.
    OrderPending,
    /// The symbol was fail-closed.
    FailClosed,
}

impl<'a> NoOrderReason<'a> {
    /// The name counted and shown.
    pub fn name(self) -> &'a str {
        match self {
            NoOrderReason::Rejected(code) => code,
            NoOrderReason::NoSignal => "no_signal",
            NoOrderReason::PositionOpen => "position_open",
            NoOrderReason::OrderPending => "order_pending",
            NoOrderReason::FailClosed => "fail_closed",
        }
    }
}

/// A trader session boundary (`Session` event).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionNote {
    pub seq: Seq,
    pub market_ms: UnixMs,
    pub action: SessionAction,
    pub reason: String,
}
