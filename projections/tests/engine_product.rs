//! Directional rounding to a product's increments (`engine::product`): every
//! rounding goes the way that is safe for the trader.
//!
//! | value | side | rounds |
//! |---|---|---|
//! | entry limit | BUY | down |
//! | take-profit limit | SELL | down |
//! | stop trigger | SELL | up |
//! | quantity | – | down |
//!
//! The table is checked on the shipped BTC-USD (price step 0.01, size step
//! 0.00000001) and SOL-USD (size step 0.001) specs, including values already on
//! the increment (unchanged); the rounding laws are checked as properties.

mod engine_support;

use anx_projections::engine::config::ProductSpec;
use anx_projections::engine::product::{self, round_down, round_up};
use engine_support::*;
use proptest::prelude::*;
use rust_decimal::Decimal;

fn specs() -> (ProductSpec, ProductSpec) {
    let config = default_config();
    (config.products[BTC], config.products[SOL])
}

type Rounding = fn(Decimal, &ProductSpec) -> Decimal;

/// Asserts every `(input, expected)` row for `f` on `spec`.
#[track_caller]
fn table(name: &str, f: Rounding, spec: &ProductSpec, rows: &[(&str, &str)]) {
    for (input, expected) in rows {
        let got = f(d(input), spec);
        assert_eq!(got, d(expected), "{name}({input}) = {got}, want {expected}");
    }
}

#[test]
fn shipped_specs_are_the_ones_the_table_assumes() {
    let (btc, sol) = specs();
    assert_eq!(
        (btc.quote_increment, btc.base_increment, btc.base_min_size),
        (d("0.01"), d("0.00000001"), d("0.00000001"))
    );
    assert_eq!(
        (sol.quote_increment, sol.base_increment, sol.base_min_size),
        (d("0.01"), d("0.001"), d("0.001"))
    );
}

#[test]
fn entry_limit_buy_rounds_down() {
    let (btc, sol) = specs();
    let rows = [
        ("104500.129", "104500.12"),
        ("104500.121", "104500.12"),
        ("104500.12", "104500.12"),
        ("104500", "104500"),
        ("104500.009999", "104500"),
        ("0.019", "0.01"),
        ("0.009", "0"),
    ];
    table("entry_limit", product::entry_limit, &btc, &rows);
    table(
        "entry_limit",
        product::entry_limit,
        &sol,
        &[("145.678", "145.67"), ("145.67", "145.67")],
    );
}

#[test]
fn take_profit_limit_sell_rounds_down() {
    let (btc, sol) = specs();
    let rows = [
        ("112345.678", "112345.67"),
        ("112345.671", "112345.67"),
        ("112345.67", "112345.67"),
        ("112345", "112345"),
    ];
    table("take_profit_limit", product::take_profit_limit, &btc, &rows);
    table(
        "take_profit_limit",
        product::take_profit_limit,
        &sol,
        &[("160.019", "160.01"), ("160.01", "160.01")],
    );
}

#[test]
fn stop_trigger_sell_rounds_up() {
    let (btc, sol) = specs();
    let rows = [
        ("102360.001", "102360.01"),
        ("102360.011", "102360.02"),
        ("102360.019", "102360.02"),
        ("102360.01", "102360.01"),
        ("102361", "102361"),
        ("0.001", "0.01"),
    ];
    table("stop_trigger", product::stop_trigger, &btc, &rows);
    table(
        "stop_trigger",
        product::stop_trigger,
        &sol,
        &[("130.001", "130.01"), ("130.01", "130.01")],
    );
}

#[test]
fn quantity_rounds_down_to_the_size_step() {
    let (btc, sol) = specs();
    let btc_rows = [
        ("0.000688985193708", "0.00068898"),
        ("0.000688989999999", "0.00068898"),
        ("0.00068898", "0.00068898"),
        ("1", "1"),
        ("0.000000009", "0"),
    ];
    table("quantity", product::quantity, &btc, &btc_rows);
    let sol_rows = [
        ("1.23456", "1.234"),
        ("1.2349999", "1.234"),
        ("1.234", "1.234"),
        ("2", "2"),
        ("0.0009999", "0"),
        ("0.001", "0.001"),
    ];
    table("quantity", product::quantity, &sol, &sol_rows);
}

#[test]
fn stop_limit_is_the_buffer_below_the_trigger_rounded_down() {
    let (btc, sol) = specs();
    let buffer = default_config().exchange.stop_limit_buffer;
    assert_eq!(buffer, d("0.05"));
    assert_eq!(
        product::stop_limit(d("102361"), buffer, &btc),
        d("97242.95")
    );
    // 102,360.01 × 0.95 = 97,242.0095: the exchange's limit bound, down.
    assert_eq!(
        product::stop_limit(d("102360.01"), buffer, &btc),
        d("97242")
    );
    assert_eq!(product::stop_limit(d("130.01"), buffer, &sol), d("123.5"));
    assert_eq!(product::stop_limit(d("130.03"), buffer, &sol), d("123.52"));
}

#[test]
fn a_non_positive_increment_leaves_the_value_alone() {
    for increment in ["0", "-0.01"] {
        assert_eq!(round_down(d("1.2345"), d(increment)), d("1.2345"));
        assert_eq!(round_up(d("1.2345"), d(increment)), d("1.2345"));
    }
}

fn increment() -> impl Strategy<Value = Decimal> {
    prop::sample::select(vec![
        d("0.01"),
        d("0.001"),
        d("0.00000001"),
        d("0.5"),
        d("0.25"),
        d("5"),
        d("1"),
    ])
}

/// Positive values of realistic size with up to 12 decimals.
fn value() -> impl Strategy<Value = Decimal> {
    (1i64..=10_000_000_000_000, 0u32..=12)
        .prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale))
}

fn is_multiple(value: Decimal, increment: Decimal) -> bool {
    (value / increment).fract().is_zero()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_down_is_the_largest_multiple_not_above(v in value(), inc in increment()) {
        let r = round_down(v, inc);
        prop_assert!(is_multiple(r, inc), "{r} is not a multiple of {inc}");
        prop_assert!(r <= v, "{r} > {v}");
        prop_assert!(v - r < inc, "{v} - {r} >= {inc}");
        prop_assert_eq!(round_down(r, inc), r, "not idempotent");
    }

    #[test]
    fn round_up_is_the_smallest_multiple_not_below(v in value(), inc in increment()) {
        let r = round_up(v, inc);
        prop_assert!(is_multiple(r, inc), "{r} is not a multiple of {inc}");
        prop_assert!(r >= v, "{r} < {v}");
        prop_assert!(r - v < inc, "{r} - {v} >= {inc}");
        prop_assert_eq!(round_up(r, inc), r, "not idempotent");
        // Up and down agree exactly on the increment and differ by one step off it.
        let down = round_down(v, inc);
        if is_multiple(v, inc) {
            prop_assert_eq!(r, down);
        } else {
            prop_assert_eq!(r - down, inc);
        }
    }

    #[test]
    fn directional_helpers_follow_the_table(v in value()) {
        let (btc, _) = specs();
        prop_assert!(product::entry_limit(v, &btc) <= v);
        prop_assert!(product::take_profit_limit(v, &btc) <= v);
        prop_assert!(product::stop_trigger(v, &btc) >= v);
        prop_assert!(product::quantity(v, &btc) <= v);
    }
}
