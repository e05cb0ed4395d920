//! Determinism of the engine: the same candles and configuration give an
//! identical event stream – decisions, orders, transitions, closed trades.
//!
//! Each run drives a `Projection` + `Engine` exactly as the replay runner's
//! pipeline does (append, fold, `engine.observe`, `run_tick`, append its
//! outputs in order), over a synthetic three-symbol candle series. A minimal
//! scripted broker (no `SimExchange`: this crate cannot depend on the replay
//! crate) fills an entry when a later candle trades 0.3% through its limit, cancels
//! it after `orders.entry_ttl_bars` bars, fills the bracket's stop or take-
//! profit when a candle reaches it, and fills market exits at the close – so
//! the stream covers whole trades, cooldowns and cancels, not only entries.
//! Every event the engine emits is folded, so an impossible event fails the
//! test at once.

mod engine_support;

use anx_journal::*;
use anx_projections::engine::config::Config;
use anx_projections::engine::{Engine, TickInput};
use anx_projections::Projection;
use engine_support::*;
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

const SYMBOLS: [&str; 3] = [BTC, ETH, SOL];
const BARS: i64 = 300;

/// An order the scripted broker is working.
#[derive(Clone, Debug)]
enum Live {
    Entry {
        coid: String,
        order_seq: Seq,
        limit: Decimal,
        size: Decimal,
        stop: Decimal,
        take_profit: Decimal,
        bars_left: u32,
    },
    Bracket {
        coid: String,
        order_seq: Seq,
        size: Decimal,
        stop: Decimal,
        take_profit: Decimal,
    },
}

/// The engine, its projection and the scripted broker.
struct World {
    h: Harness,
    live: BTreeMap<String, Live>,
    ttl: u32,
    fills: u64,
}

fn fee(notional: Decimal, bps: i64) -> Decimal {
    (notional * Decimal::new(bps, 4)).round_dp(8)
}

impl World {
    fn new(config: Config) -> World {
        let ttl = config.orders.entry_ttl_bars;
        World {
            h: Harness::new(config, &SYMBOLS),
            live: BTreeMap::new(),
            ttl,
            fills: 0,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        coid: &str,
        order_seq: Seq,
        leg: FillLeg,
        side: Side,
        price: Decimal,
        size: Decimal,
        maker: bool,
        as_of_ms: UnixMs,
    ) {
        self.fills += 1;
        let fill = Fill {
            client_order_id: coid.into(),
            order_seq,
            fill_id: format!("fill-{}", self.fills),
            leg,
            side,
            price,
            size,
            fee: fee(price * size, if maker { 40 } else { 60 }),
            liquidity: if maker {
                Liquidity::Maker
            } else {
                Liquidity::Taker
            },
        };
        self.h.fill(fill, as_of_ms);
    }

    /// Works the live order of the candle's symbol against it.
    fn work(&mut self, c: &Candle, as_of_ms: UnixMs) {
        let Some(live) = self.live.remove(&c.symbol) else {
            return;
        };
        match live {
            Live::Entry {
                coid,
                order_seq,
                limit,
                size,
                stop,
                take_profit,
                bars_left,
            } => {
                // A conservative fill: the candle trades 0.3% through the limit.
                if c.low < limit * d("0.997") {
                    self.fill(
                        &coid,
                        order_seq,
                        FillLeg::Entry,
                        Side::Buy,
                        limit,
                        size,
                        true,
                        as_of_ms,
                    );
                    self.live.insert(
                        c.symbol.clone(),
                        Live::Bracket {
                            coid,
                            order_seq,
                            size,
                            stop,
                            take_profit,
                        },
                    );
                } else if bars_left <= 1 {
                    let cancelled = OrderCancelled {
                        client_order_id: coid.clone(),
                        order_seq,
                        reason: "time to live expired".into(),
                    };
                    let seq = self.h.append(as_of_ms, cancelled.into());
                    self.h.step(TickInput::OrderEnded {
                        seq,
                        symbol: &c.symbol,
                        client_order_id: &coid,
                        rejected: None,
                        as_of_ms,
                    });
                } else {
                    self.live.insert(
                        c.symbol.clone(),
                        Live::Entry {
                            coid,
                            order_seq,
                            limit,
                            size,
                            stop,
                            take_profit,
                            bars_left: bars_left - 1,
                        },
                    );
                }
            }
            Live::Bracket {
                coid,
                order_seq,
                size,
                stop,
                take_profit,
            } => {
                if c.low <= stop {
                    self.fill(
                        &coid,
                        order_seq,
                        FillLeg::StopLoss,
                        Side::Sell,
                        stop,
                        size,
                        false,
                        as_of_ms,
                    );
                } else if c.high >= take_profit {
                    self.fill(
                        &coid,
                        order_seq,
                        FillLeg::TakeProfit,
                        Side::Sell,
                        take_profit,
                        size,
                        true,
                        as_of_ms,
                    );
                } else {
                    self.live.insert(
                        c.symbol.clone(),
                        Live::Bracket {
                            coid,
                            order_seq,
                            size,
                            stop,
                            take_profit,
                        },
                    );
                }
            }
        }
    }

    /// Takes the engine's new orders: entries go live, market exits fill at
    /// the close (and take the bracket down with the position).
    fn place(&mut self, outputs: &[(UnixMs, Event)], close: Decimal, as_of_ms: UnixMs) {
        for (_, event) in outputs {
            let Event::OrderPlaced(o) = event else {
                continue;
            };
            let order_seq = self.h.projection.links.orders[&o.client_order_id].order_seq;
            match o.purpose {
                OrderPurpose::Entry => {
                    let bracket = o.bracket.as_ref().expect("entries carry a bracket");
                    let previous = self.live.insert(
                        o.product_id.clone(),
                        Live::Entry {
                            coid: o.client_order_id.clone(),
                            order_seq,
                            limit: o.limit_price.expect("a limit entry"),
                            size: o.base_size,
                            stop: bracket.stop_trigger,
                            take_profit: bracket.take_profit_limit,
                            bars_left: self.ttl,
                        },
                    );
                    assert!(previous.is_none(), "an entry while an order is live");
                }
                OrderPurpose::Exit => {
                    self.live.remove(&o.product_id);
                    self.fill(
                        &o.client_order_id,
                        order_seq,
                        FillLeg::Exit,
                        Side::Sell,
                        close,
                        o.base_size,
                        false,
                        as_of_ms,
                    );
                }
            }
        }
    }

    /// One closed candle, in the runner's order: journal it, let the broker
    /// work it, let the engine decide on it, hand new orders to the broker.
    fn candle(&mut self, c: Candle) {
        let as_of_ms = c.open_ms + i64::from(c.granularity_s) * 1000;
        let seq = self.h.append(as_of_ms, c.clone().into());
        self.work(&c, as_of_ms);
        let outputs = self.h.step(TickInput::Candle {
            seq,
            candle: &c,
            as_of_ms,
        });
        self.place(&outputs, c.close, as_of_ms);
    }
}

/// A deterministic pseudo-random generator (an LCG), so the series is fixed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, m: i64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as i64).rem_euclid(m)
    }
}

/// 300 bars for each symbol (symbols in name order at each bar time): up for
/// 150 bars, down for 70, up again; noise and occasional volume spikes.
fn series() -> Vec<Candle> {
    series_from(0x005e_ed0f_a4c5, BARS, &|_, _| true)
}

/// `bars` bars shaped like [`series`] from the generator seeded with `seed`;
/// `keep(bar, symbol index)` drops candles (a feed with gaps).
fn series_from(seed: u64, bars: i64, keep: &dyn Fn(i64, usize) -> bool) -> Vec<Candle> {
    let mut rng = Lcg(seed);
    let mut prices: Vec<i64> = vec![4_000_000, 230_000, 10_000]; // in cents
    let mut out = Vec::new();
    for i in 0..bars {
        let drift_bp: i64 = match i {
            0..=149 => 40,
            150..=219 => -50,
            _ => 35,
        };
        for (s, symbol) in SYMBOLS.iter().enumerate() {
            let previous = prices[s];
            let noise_bp = rng.next(301) - 150;
            let close = (previous + previous * (drift_bp + noise_bp) / 10_000).max(100);
            prices[s] = close;
            let up = previous.max(close) * rng.next(120) / 10_000;
            let down = previous.min(close) * rng.next(120) / 10_000;
            let volume = if rng.next(10) == 0 {
                400 + rng.next(200)
            } else {
                80 + rng.next(40)
            };
            let high = Decimal::new(previous.max(close) + up, 2);
            let low = Decimal::new(previous.min(close) - down, 2);
            let mut c = candle(
                symbol,
                T0 + i * BAR_MS,
                high,
                low,
                Decimal::new(close, 2),
                Decimal::from(volume),
            );
            c.open = Decimal::new(previous, 2);
            if keep(i, s) {
                out.push(c);
            }
        }
    }
    out
}

fn run(config: Config, candles: &[Candle]) -> World {
    let mut world = World::new(config);
    for c in candles {
        world.candle(c.clone());
    }
    world
}

fn count(events: &[(UnixMs, Event)], pick: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|(_, e)| pick(e)).count()
}

#[test]
fn the_series_exercises_entries_exits_and_rejections() {
    // Guard against a vacuous determinism test: the stream must hold real trades.
    let world = run(default_config(), &series());
    let events = &world.h.events;
    let enters = count(
        events,
        |e| matches!(e, Event::Decision(d) if d.outcome == DecisionOutcome::Enter),
    );
    let rejected = count(
        events,
        |e| matches!(e, Event::Decision(d) if matches!(d.outcome, DecisionOutcome::Rejected { .. })),
    );
    let closed = count(events, |e| matches!(e, Event::TradeClosed(_)));
    let cancelled = count(events, |e| matches!(e, Event::OrderCancelled(_)));
    let decisions = count(events, |e| matches!(e, Event::Decision(_)));
    assert_eq!(
        decisions,
        SYMBOLS.len() * BARS as usize,
        "one decision per candle"
    );
    assert!(enters >= 3, "entries: {enters}");
    assert!(closed >= 2, "closed trades: {closed}");
    assert!(rejected >= 3, "rejections: {rejected}");
    assert!(cancelled >= 1, "cancelled entries: {cancelled}");
    println!("{enters} entries, {closed} closed, {cancelled} cancelled, {rejected} rejected");
    // Every entry ended: filled and closed, cancelled, or still live at the end.
    let live_entries = world.live.len();
    assert!(
        enters <= closed + cancelled + live_entries,
        "{enters} > {closed} + {cancelled} + {live_entries}"
    );
    // The trades went into the projection's ledger.
    assert_eq!(world.h.projection.state.trades.len(), closed);
}

#[test]
fn the_same_candles_and_config_give_the_same_stream() {
    let candles = series();
    let a = run(default_config(), &candles);
    let b = run(default_config(), &candles);
    assert_eq!(a.h.events.len(), b.h.events.len());
    for (i, (x, y)) in a.h.events.iter().zip(&b.h.events).enumerate() {
        assert_eq!(x, y, "event {} differs", i + 1);
    }
    // Byte for byte, as the journal would store them, at either schema.
    let bytes = |w: &World| -> Vec<Vec<u8>> {
        w.h.events
            .iter()
            .flat_map(|(ms, e)| {
                [1, 2].map(|schema| {
                    anx_journal::event::body_bytes(e, e.kind().written_at(schema), *ms).unwrap()
                })
            })
            .collect()
    };
    assert_eq!(bytes(&a), bytes(&b));
    assert_eq!(a.h.projection.state_hash(), b.h.projection.state_hash());
}

#[test]
fn a_restart_that_refolds_the_journal_continues_the_same_stream() {
    // The engine's memory is a fold too: an engine rebuilt by observing the
    // journal so far decides exactly as the one that never stopped.
    let candles = series();
    let full = run(default_config(), &candles);
    for cut in [
        SYMBOLS.len() * 120,
        SYMBOLS.len() * 200 + 1,
        SYMBOLS.len() * 260 + 2,
    ] {
        let mut first = run(default_config(), &candles[..cut]);
        let mut projection = Projection::new();
        let mut engine = Engine::new(default_config(), "enginetest-run", false);
        for (i, (ms, event)) in first.h.events.iter().enumerate() {
            projection
                .apply(i as Seq + 1, *ms, event)
                .expect("the journal refolds");
            engine
                .observe(&projection, *ms, event)
                .expect("the engine observes the journal");
        }
        assert_eq!(projection, first.h.projection);
        first.h.projection = projection;
        first.h.engine = engine;
        for c in &candles[cut..] {
            first.candle(c.clone());
        }
        assert_eq!(first.h.events.len(), full.h.events.len(), "cut at {cut}");
        for (i, (x, y)) in first.h.events.iter().zip(&full.h.events).enumerate() {
            assert_eq!(x, y, "cut at {cut}: event {} differs", i + 1);
        }
    }
}

#[test]
fn another_configuration_gives_another_stream() {
    // The stream depends on the configuration (the test above is not vacuous):
    // half the risk per trade halves the sizes, and every decision carries the
    // other config hash.
    let candles = series();
    let a = run(default_config(), &candles);
    let mut config = default_config();
    config.risk.risk_per_trade = d("0.005");
    let b = run(config.clone(), &candles);
    assert_ne!(a.h.events, b.h.events);
    let hashes: Vec<_> = decisions(&b.h.events)
        .iter()
        .map(|d| d.config_hash)
        .collect();
    assert!(hashes.iter().all(|h| *h == Some(config.hash())));
    let first_entry = |w: &World| {
        decisions(&w.h.events)
            .into_iter()
            .find(|d| d.outcome == DecisionOutcome::Enter)
            .and_then(|d| d.sizing.clone())
            .expect("an entry")
    };
    let (full, half) = (first_entry(&a), first_entry(&b));
    assert_eq!(half.risk_budget * Decimal::TWO, full.risk_budget);
    assert!(half.quantity < full.quantity);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any stream of valid closed candles, for any of the symbols, with gaps
    /// anywhere, gives exactly one Decision per candle, on that candle, as
    /// of its close – whatever the engine decides and the broker does.
    #[test]
    fn every_closed_candle_gets_exactly_one_decision(
        seed in any::<u64>(),
        bars in 1i64..=300,
        symbols in 1usize..8,
        gap_every in 2i64..40,
    ) {
        // `symbols` is a bit mask over SYMBOLS; a symbol's candles miss
        // every `gap_every`-th bar, offset by its index.
        let keep = |bar: i64, s: usize| {
            symbols & (1 << s) != 0 && (bar + s as i64) % gap_every != 0
        };
        let candles = series_from(seed, bars, &keep);
        let world = run(default_config(), &candles);
        let events = &world.h.events;
        // Seq of each candle, and the candle each decision names.
        let mut candle_seqs: Vec<(Seq, &Candle)> = Vec::new();
        let mut decided: Vec<(Seq, &Decision)> = Vec::new();
        for (i, (_, event)) in events.iter().enumerate() {
            match event {
                Event::Candle(c) => candle_seqs.push((i as Seq + 1, c)),
                Event::Decision(d) => decided.push((i as Seq + 1, d)),
                _ => {}
            }
        }
        prop_assert_eq!(candle_seqs.len(), candles.len());
        prop_assert_eq!(decided.len(), candles.len(), "one decision per candle");
        for ((candle_seq, candle), (_, decision)) in candle_seqs.iter().zip(&decided) {
            prop_assert_eq!(decision.candle_seq, *candle_seq);
            prop_assert_eq!(&decision.symbol, &candle.symbol);
            prop_assert_eq!(decision.as_of_ms, candle.close_ms());
        }
    }
}

/// A closed candle gets a Decision or an error naming its seq – never nothing.
/// These inputs break the caller's contract (folded but not observed, a symbol
/// or order the run does not hold), which the pipeline never does; the engine
/// says so instead of silently skipping the candle.
#[test]
fn a_broken_engine_contract_is_an_error_naming_the_seq_never_a_missing_decision() {
    use anx_projections::EngineFault;
    let mut h = Harness::new(default_config(), &[BTC]);
    let bar = candle(BTC, T0, d("101"), d("99"), d("100"), d("10"));
    let as_of_ms = T0 + BAR_MS;
    // Folded, but not observed: the engine has no memory of the symbol.
    let seq = h.projection.seq() + 1;
    h.projection
        .apply(seq, as_of_ms, &bar.clone().into())
        .expect("the fold takes the candle");
    let input = TickInput::Candle {
        seq,
        candle: &bar,
        as_of_ms,
    };
    let error = h.engine.run_tick(&h.projection, input).unwrap_err();
    assert_eq!((error.seq, error.fault), (seq, EngineFault::NoMemory));
    assert!(
        error.to_string().starts_with(&format!("seq {seq}: ")),
        "{error}"
    );

    let other = candle(ETH, T0, d("101"), d("99"), d("100"), d("10"));
    let input = TickInput::Candle {
        seq: 77,
        candle: &other,
        as_of_ms,
    };
    let error = h.engine.run_tick(&h.projection, input).unwrap_err();
    assert_eq!((error.seq, error.fault), (77, EngineFault::UnknownSymbol));

    let fill = Fill {
        client_order_id: "never-placed".into(),
        order_seq: 1,
        fill_id: "f1".into(),
        leg: FillLeg::Entry,
        side: Side::Buy,
        price: d("100"),
        size: d("1"),
        fee: d("0.1"),
        liquidity: Liquidity::Maker,
    };
    let input = TickInput::Fill {
        seq: 78,
        fill: &fill,
        as_of_ms,
    };
    let error = h.engine.run_tick(&h.projection, input).unwrap_err();
    assert_eq!((error.seq, error.fault), (78, EngineFault::UnknownOrder));
    let error = h
        .engine
        .observe(&h.projection, as_of_ms, &fill.into())
        .unwrap_err();
    assert_eq!(error.fault, EngineFault::UnknownOrder);
}
