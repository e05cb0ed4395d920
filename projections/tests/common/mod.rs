//! Helpers shared by the projection test files: hand-written events on top of
//! `testkit::Scenario` prefixes.
#![allow(dead_code)]

use anx_journal::*;
use anx_projections::testkit::Scenario;
use anx_projections::{FoldError, Projection};
use rust_decimal::Decimal;

pub const BTC: &str = "BTC-USD";
pub const ETH: &str = "ETH-USD";
/// 2024-01-01T00:00:00Z, a UTC midnight.
pub const T0: UnixMs = 1_704_067_200_000;
pub const HOUR: i64 = 3_600_000;

pub fn d(text: &str) -> Decimal {
    text.parse()
        .unwrap_or_else(|e| panic!("bad decimal {text:?}: {e}"))
}

/// Folds `events` from an empty projection (seqs 1, 2, …).
pub fn fold(events: &[(UnixMs, Event)]) -> Result<Projection, FoldError> {
    let mut projection = Projection::new();
    fold_into(&mut projection, events, 1)?;
    Ok(projection)
}

/// Folds `events` into `projection`, numbering them from `first_seq`.
pub fn fold_into(
    projection: &mut Projection,
    events: &[(UnixMs, Event)],
    first_seq: Seq,
) -> Result<(), FoldError> {
    for (i, (ms, event)) in events.iter().enumerate() {
        projection.apply(first_seq + i as Seq, *ms, event)?;
    }
    Ok(())
}

/// Applies `event` as the scenario's next event to a copy of its projection and
/// returns the refusal; panics if the fold accepts it, or if the refusal
/// changed the projection (a refused event changes nothing).
pub fn refuse(s: &Scenario, event: impl Into<Event>) -> FoldError {
    let event = event.into();
    let mut projection = s.projection.clone();
    match projection.apply(s.next_seq(), s.now_ms(), &event) {
        Ok(()) => panic!("the fold accepted an impossible event: {event:?}"),
        Err(error) => {
            assert_eq!(
                projection, s.projection,
                "the refused event changed the projection: {error}"
            );
            error
        }
    }
}

/// Appends `event` to the scenario (panics if the fold refuses it).
pub fn push(s: &mut Scenario, event: impl Into<Event>) -> Seq {
    let ms = s.now_ms();
    s.push(ms, event.into())
}

/// Fills made so far by [`fill`], numbering their ids.
static FILLS_MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn fill(
    client_order_id: &str,
    order_seq: Seq,
    leg: FillLeg,
    side: Side,
    price: &str,
    size: &str,
    fee: &str,
) -> Fill {
    Fill {
        client_order_id: client_order_id.into(),
        order_seq,
        // Unique per call: two fills of the same size at the same price are
        // two fills (the fold refuses a fill id it has seen on the order).
        fill_id: format!(
            "fill-{client_order_id}-{order_seq}-{price}-{size}-{}",
            FILLS_MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ),
        leg,
        side,
        price: d(price),
        size: d(size),
        fee: d(fee),
        liquidity: Liquidity::Maker,
    }
}

pub fn transition(
    symbol: &str,
    from: EngineState,
    to: EngineState,
    cause_seq: Seq,
) -> EngineTransition {
    EngineTransition {
        symbol: symbol.into(),
        from,
        to,
        reason: "test".into(),
        cause_seq,
    }
}

pub fn order(
    client_order_id: &str,
    decision_seq: Seq,
    symbol: &str,
    side: Side,
    purpose: OrderPurpose,
    size: &str,
) -> OrderPlaced {
    OrderPlaced {
        client_order_id: client_order_id.into(),
        decision_seq,
        product_id: symbol.into(),
        side,
        order_type: OrderType::Limit,
        purpose,
        limit_price: Some(d("100")),
        stop_trigger: None,
        base_size: d(size),
        post_only: false,
        bracket: (purpose == OrderPurpose::Entry).then(|| BracketLegs {
            take_profit_limit: d("110"),
            stop_trigger: d("95"),
            stop_limit: d("94"),
        }),
        payload: String::new(),
    }
}

pub fn candle(symbol: &str, open_ms: UnixMs, close: &str) -> Candle {
    let close = d(close);
    Candle {
        symbol: symbol.into(),
        granularity_s: 14_400,
        open_ms,
        open: close,
        high: close,
        low: close,
        close,
        volume: d("1"),
    }
}

/// A scenario on BTC and ETH (`capital` each, or shared), one candle at 100 on each.
pub fn start(capital_mode: CapitalMode, capital: &str) -> Scenario {
    let mut s = Scenario::new(&[BTC, ETH], capital_mode, d(capital), T0);
    s.candle(BTC, d("100"));
    s.candle(ETH, d("100"));
    s
}

/// An entry placed on `symbol` (bracket 95/110, acknowledged), in ENTRY_PENDING.
pub struct Entry {
    pub coid: String,
    pub order_seq: Seq,
}

pub fn entry_pending(s: &mut Scenario, symbol: &str, size: &str) -> Entry {
    let (coid, order_seq) = s.place_entry(symbol, d("100"), d("95"), d("110"), d(size));
    Entry { coid, order_seq }
}

/// `entry` on `symbol` filled (`size` at `price`, `fee`) and the move from
/// ENTRY_PENDING to POSITION_OPEN it causes. Returns the fill's seq.
pub fn entry_filled(
    s: &mut Scenario,
    symbol: &str,
    entry: &Entry,
    price: &str,
    size: &str,
    fee: &str,
) -> Seq {
    let fill_seq = push(
        s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::Entry,
            Side::Buy,
            price,
            size,
            fee,
        ),
    );
    let opened = transition(
        symbol,
        EngineState::EntryPending,
        EngineState::PositionOpen,
        fill_seq,
    );
    push(s, opened);
    fill_seq
}

/// An entry on `symbol` verified and fully filled at 100 with `fee`, in POSITION_OPEN.
/// Returns the entry and the entry fill's seq.
pub fn position_open(s: &mut Scenario, symbol: &str, size: &str, fee: &str) -> (Entry, Seq) {
    let entry = entry_pending(s, symbol, size);
    push(
        s,
        BracketVerified {
            client_order_id: entry.coid.clone(),
            order_seq: entry.order_seq,
            take_profit_order_id: "tp".into(),
            stop_order_id: "sl".into(),
        },
    );
    let fill_seq = entry_filled(s, symbol, &entry, "100", size, fee);
    (entry, fill_seq)
}

/// A take-profit of the whole position at `price`, then POSITION_OPEN → RECONCILE.
/// Returns the exit fill's seq.
pub fn exit_to_reconcile(
    s: &mut Scenario,
    symbol: &str,
    entry: &Entry,
    size: &str,
    price: &str,
    fee: &str,
) -> Seq {
    let exit_seq = push(
        s,
        fill(
            &entry.coid,
            entry.order_seq,
            FillLeg::TakeProfit,
            Side::Sell,
            price,
            size,
            fee,
        ),
    );
    push(
        s,
        transition(
            symbol,
            EngineState::PositionOpen,
            EngineState::Reconcile,
            exit_seq,
        ),
    );
    exit_seq
}

/// An entry that failed closed: FailClosed event and ENTRY_PENDING → FAIL_CLOSED
/// (the entry is still in flight).
pub fn fail_closed(s: &mut Scenario, symbol: &str) -> Entry {
    let entry = entry_pending(s, symbol, "1");
    let seq = push(
        s,
        FailClosed {
            symbol: symbol.into(),
            cause_seq: entry.order_seq,
            reason: "bracket legs not confirmed".into(),
        },
    );
    push(
        s,
        transition(
            symbol,
            EngineState::EntryPending,
            EngineState::FailClosed,
            seq,
        ),
    );
    entry
}

pub fn cancel(entry: &Entry) -> OrderCancelled {
    OrderCancelled {
        client_order_id: entry.coid.clone(),
        order_seq: entry.order_seq,
        reason: "test".into(),
    }
}

pub fn reset(symbol: &str) -> OperatorReset {
    OperatorReset {
        symbol: symbol.into(),
        operator: "ops".into(),
        reason: "checked".into(),
    }
}

/// The TradeClosed the fold expects for a trade bought at `buy` and sold at
/// `sell` (notional totals), with `fees`.
#[allow(clippy::too_many_arguments)]
pub fn closed(
    trade_id: &str,
    symbol: &str,
    entry: &Entry,
    entry_fill_seq: Seq,
    exit_fill_seq: Seq,
    size: &str,
    entry_price: &str,
    exit_price: &str,
    fees: &str,
    exit_ms: UnixMs,
) -> TradeClosed {
    let (size, entry_price, exit_price, fees) = (d(size), d(entry_price), d(exit_price), d(fees));
    let gross = (exit_price - entry_price) * size;
    TradeClosed {
        trade_id: trade_id.into(),
        symbol: symbol.into(),
        entry_client_order_id: entry.coid.clone(),
        entry_order_seq: entry.order_seq,
        entry_fill_seq,
        exit_fill_seq,
        entry_ms: exit_ms - 4 * HOUR,
        exit_ms,
        entry_price,
        exit_price,
        size,
        initial_stop: d("95"),
        exit_reason: ExitReason::TakeProfit,
        fees,
        slippage: Decimal::ZERO,
        gross_pnl: gross,
        net_pnl: gross - fees,
        theoretical_r: ((exit_price - entry_price) / (entry_price - d("95"))).round_dp(4),
        realized_r: ((gross - fees) / ((entry_price - d("95")) * size)).round_dp(4),
    }
}
