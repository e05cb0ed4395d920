//! The canonical form of the hashed state, version 1: the bytes a
//! `Checkpoint`'s state hash is BLAKE3 of, written field by field by hand.
//!
//! The form is part of the on-disk contract (every checkpoint ever journaled
//! is checked against it), so it is defined here and in FORMAT.md §10, not by
//! the Rust layout of [`State`]: a field added to `State` for a new report is
//! simply not part of form 1, and every existing checkpoint still checks.
//! Changing what form 1 writes is never done; a state that must be hashed
//! differently is a new form with a new number, and checkpoints record the
//! form they were made with.
//!
//! Encoding (the journal body's conventions, FORMAT.md §5): integers
//! fixed-width little-endian; `bool` one byte; a string or a list is its `u64`
//! length, then its bytes or items; an `Option` a tag byte (0 none, 1 some)
//! and the value; a map its `u64` length and its entries in key order; a
//! decimal its 16 stored bytes; an enum its `u32` code from the tables below.
//! Version 1 is byte for byte what anx wrote before the form had a name (the
//! bincode encoding of the state then), so every checkpoint journaled before
//! still checks.

use crate::model::{
    AuditCoverage, AuditGap, DailyEquity, EquityCurve, OpenTrade, OrderState, OrderStatus,
    Position, QualityCounts, RunRow, State, SymbolState, TradeRow,
};
use anx_journal::{
    CapitalMode, DataIntegrity, EngineState, ExitReason, MarketTimeBasis, OrderPurpose,
    ReconcileOutcome, RunMode, Side,
};
use rust_decimal::Decimal;

/// The form new checkpoints are made with.
pub const STATE_FORM_CURRENT: u16 = 1;

/// The canonical bytes of `state` in form 1.
pub fn encode_v1(state: &State) -> Vec<u8> {
    let mut w = Form(Vec::with_capacity(4096));
    w.opt(state.run.as_ref(), Form::run);
    w.map(&state.symbols, Form::symbol);
    w.map(&state.cash, |w, cash| w.dec(cash.0));
    w.map(&state.orders, Form::order);
    w.list(&state.trades, Form::trade);
    w.audit(&state.audit);
    w.map(&state.quality, Form::quality);
    w.equity(&state.equity);
    w.dec(state.fees_total);
    w.i64(state.exposure_ms);
    w.opt(state.first_market_ms.as_ref(), |w, ms| w.i64(*ms));
    w.opt(state.last_market_ms.as_ref(), |w, ms| w.i64(*ms));
    w.0
}

/// The bytes being written.
struct Form(Vec<u8>);

impl Form {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }

    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }

    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn dec(&mut self, d: Decimal) {
        self.0.extend_from_slice(&d.serialize());
    }

    fn opt<T>(&mut self, v: Option<&T>, write: impl Fn(&mut Form, &T)) {
        match v {
            None => self.0.push(0),
            Some(v) => {
                self.0.push(1);
                write(self, v);
            }
        }
    }

    fn list<T>(&mut self, items: &[T], write: impl Fn(&mut Form, &T)) {
        self.len(items.len());
        for item in items {
            write(self, item);
        }
    }

    fn map<V>(
        &mut self,
        map: &std::collections::BTreeMap<String, V>,
        write: impl Fn(&mut Form, &V),
    ) {
        self.len(map.len());
        for (key, value) in map {
            self.str(key);
            write(self, value);
        }
    }

    fn run(&mut self, r: &RunRow) {
        self.str(&r.run_id);
        self.u32(run_mode(r.run_mode));
        self.u32(capital_mode(r.capital_mode));
        self.u32(market_time_basis(r.market_time_basis));
        self.u32(data_integrity(r.data_integrity));
        self.str(&r.created_by);
        self.str(&r.git_sha);
        self.str(&r.config_hash);
        self.list(&r.symbols, |w, s| w.str(s));
        self.u32(r.granularity_s);
        self.i64(r.start_ms);
        self.opt(r.end_ms.as_ref(), |w, ms| w.i64(*ms));
        self.dec(r.starting_capital);
        self.i64(r.started_ms);
        self.opt(r.completed_ms.as_ref(), |w, ms| w.i64(*ms));
        self.opt(r.completion.as_ref(), |w, s| w.str(s));
        self.u64(r.candles);
        self.u64(r.trades_opened);
        self.u64(r.trades_closed);
    }

    fn symbol(&mut self, s: &SymbolState) {
        self.u32(engine_state(s.engine.0));
        self.opt(s.in_flight.as_ref(), |w, id| w.str(id));
        self.opt(s.fail_closed.as_ref(), |w, why| w.str(why));
        self.position(&s.position);
        self.opt(s.open_trade.as_ref(), Form::open_trade);
        self.opt(s.last_close.as_ref(), |w, d| w.dec(*d));
        self.opt(s.last_candle_open_ms.as_ref(), |w, ms| w.i64(*ms));
        self.opt(s.last_reconciliation.as_ref(), |w, o| {
            w.u32(reconcile_outcome(*o))
        });
        self.u64(s.trades_opened);
        self.u64(s.trades_closed);
    }

    fn position(&mut self, p: &Position) {
        self.dec(p.quantity);
        self.dec(p.cost);
        self.dec(p.fees_paid);
        self.dec(p.realized_gross);
    }

    fn open_trade(&mut self, t: &OpenTrade) {
        self.str(&t.entry_client_order_id);
        self.i64(t.opened_ms);
        self.dec(t.bought);
        self.dec(t.buy_notional);
        self.dec(t.sell_notional);
        self.dec(t.fees);
        self.list(&t.exit_orders, |w, id| w.str(id));
    }

    fn order(&mut self, o: &OrderState) {
        self.str(&o.client_order_id);
        self.str(&o.symbol);
        self.u32(side(o.side));
        self.u32(order_purpose(o.purpose));
        self.bool(o.has_bracket);
        self.u32(order_status(o.status));
        self.bool(o.bracket_verified);
        self.str(&o.exchange_order_id);
        self.dec(o.size);
        self.dec(o.filled);
    }

    fn trade(&mut self, t: &TradeRow) {
        self.str(&t.trade_id);
        self.str(&t.symbol);
        self.str(&t.entry_client_order_id);
        self.i64(t.entry_ms);
        self.i64(t.exit_ms);
        self.dec(t.entry_price);
        self.dec(t.exit_price);
        self.dec(t.size);
        self.dec(t.initial_stop);
        self.u32(exit_reason(t.exit_reason));
        for d in [
            t.fees,
            t.slippage,
            t.gross_pnl,
            t.net_pnl,
            t.theoretical_r,
            t.realized_r,
        ] {
            self.dec(d);
        }
    }

    fn audit(&mut self, a: &AuditCoverage) {
        self.u64(a.trades);
        self.u64(a.complete);
        self.map(&a.incomplete, |w, gaps| {
            w.list(gaps, |w, gap| w.u32(audit_gap(*gap)))
        });
    }

    fn quality(&mut self, q: &QualityCounts) {
        for n in [
            q.candles,
            q.gaps,
            q.missing_bars,
            q.duplicates,
            q.out_of_order,
            q.volume_anomalies,
            q.invalid,
            q.stale,
        ] {
            self.u64(n);
        }
    }

    fn equity(&mut self, e: &EquityCurve) {
        for d in [
            e.start,
            e.cash,
            e.marked,
            e.last,
            e.peak,
            e.max_drawdown,
            e.max_drawdown_pct_fall,
            e.max_drawdown_pct_peak,
        ] {
            self.dec(d);
        }
        self.u64(e.samples);
        self.opt(e.day.as_ref(), |w, day| w.i64(*day));
        self.dec(e.day_open);
        self.u64(e.returns_n);
        self.dec(e.returns_sum);
        self.dec(e.returns_sum_sq);
        self.dec(e.returns_down_sum_sq);
        self.list(&e.daily, |w, d: &DailyEquity| {
            w.i64(d.day);
            w.dec(d.equity);
            w.dec(d.peak);
        });
    }
}

// The enum codes of form 1. The journal's enums keep the codes their event
// encodings give them (FORMAT.md §6); the projection's own are listed here.
// Each table is an exhaustive match: a new variant needs a code decided.

fn run_mode(v: RunMode) -> u32 {
    match v {
        RunMode::ReplayBacktest => 0,
        RunMode::PaperLive => 1,
        RunMode::Live => 2,
    }
}

fn capital_mode(v: CapitalMode) -> u32 {
    match v {
        CapitalMode::Independent => 0,
        CapitalMode::Portfolio => 1,
    }
}

fn market_time_basis(v: MarketTimeBasis) -> u32 {
    match v {
        MarketTimeBasis::CandleTimestamp => 0,
        MarketTimeBasis::WallClock => 1,
    }
}

fn data_integrity(v: DataIntegrity) -> u32 {
    match v {
        DataIntegrity::Ok => 0,
        DataIntegrity::DegradedSkipVolume => 1,
    }
}

fn engine_state(v: EngineState) -> u32 {
    match v {
        EngineState::Idle => 0,
        EngineState::EntryPending => 1,
        EngineState::PositionOpen => 2,
        EngineState::Reconcile => 3,
        EngineState::FailClosed => 4,
    }
}

fn reconcile_outcome(v: ReconcileOutcome) -> u32 {
    match v {
        ReconcileOutcome::Match => 0,
        ReconcileOutcome::ExitDetected => 1,
        ReconcileOutcome::Mismatch => 2,
    }
}

fn side(v: Side) -> u32 {
    match v {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

fn order_purpose(v: OrderPurpose) -> u32 {
    match v {
        OrderPurpose::Entry => 0,
        OrderPurpose::Exit => 1,
    }
}

fn order_status(v: OrderStatus) -> u32 {
    match v {
        OrderStatus::Placed => 0,
        OrderStatus::Acknowledged => 1,
        OrderStatus::Filled => 2,
        OrderStatus::Cancelled => 3,
        OrderStatus::Rejected => 4,
    }
}

fn exit_reason(v: ExitReason) -> u32 {
    match v {
        ExitReason::Signal => 0,
        ExitReason::TakeProfit => 1,
        ExitReason::StopLoss => 2,
        ExitReason::Manual => 3,
        ExitReason::Emergency => 4,
    }
}

fn audit_gap(v: AuditGap) -> u32 {
    match v {
        AuditGap::DecisionNotEnter => 0,
        AuditGap::NoBracket => 1,
        AuditGap::BracketNotVerified => 2,
        AuditGap::NotAcknowledged => 3,
        AuditGap::OutOfOrder => 4,
    }
}

/// Issue 12's simulated upgrade: this crate's unit-test build has a figure
/// more in `State` (`simulated_future_figure`, folded from every event), as a
/// later version adding a report figure would. The committed paper journal
/// – checkpoints, a clean stop, a resumed session – still folds, and every
/// one of its checkpoints still checks: form 1 does not contain the new
/// figure, so adding one changes no checkpoint's hash.
#[cfg(test)]
mod simulated_upgrade {
    use crate::fold::Projection;
    use anx_journal::{Event, Reader, SessionAction};

    #[test]
    fn a_figure_added_to_the_state_leaves_journaled_checkpoints_checkable() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/paper-v1");
        let mut reader = Reader::open(std::path::Path::new(dir))
            .unwrap_or_else(|e| panic!("the committed paper journal {dir}: {e}"));
        let mut projection = Projection::new();
        let (mut checkpoints, mut stops, mut starts) = (0u64, 0, 0);
        while let Some(stored) = reader.next_event().expect("the fixture is intact") {
            projection
                .apply(stored.seq, stored.market_ms, &stored.event)
                .unwrap_or_else(|e| panic!("the fixture folds after the upgrade: {e}"));
            match &stored.event {
                Event::Checkpoint(_) => checkpoints += 1,
                Event::Session(s) if s.action == SessionAction::Stopped => stops += 1,
                Event::Session(s) if s.action == SessionAction::Started => starts += 1,
                _ => {}
            }
        }
        assert!(checkpoints >= 2, "{checkpoints} checkpoints");
        assert!(
            stops >= 2 && starts >= 2,
            "a clean stop and a resumed session"
        );
        assert_eq!(projection.links.checkpoints_verified, checkpoints);
        // The new figure is real: it was folded from every event.
        assert_eq!(projection.state.simulated_future_figure, projection.seq());
        // And the hash is form 1's, whatever else the state holds.
        let mut without = projection.state.clone();
        without.simulated_future_figure = 0;
        assert_eq!(
            super::encode_v1(&without),
            super::encode_v1(&projection.state)
        );
    }
}
