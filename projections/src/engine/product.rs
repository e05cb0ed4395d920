//! Directional rounding to a product's increments: every rounding goes the way
//! that is safe for the trader.
//!
//! | value | side | rounds | why |
//! |---|---|---|---|
//! | entry limit | BUY | down | never pay more than decided |
//! | take-profit limit | SELL | down | hit slightly earlier |
//! | stop trigger | SELL | up | trigger sooner is safer |
//! | quantity | – | down | never risk more than the budget |
//!
//! A size that rounds below the product's minimum is rejected by the risk
//! checks, never bumped up.

use super::config::ProductSpec;
use rust_decimal::Decimal;

/// The largest multiple of `increment` not above `value`.
pub fn round_down(value: Decimal, increment: Decimal) -> Decimal {
    if increment <= Decimal::ZERO {
        return value;
    }
    (value / increment).floor() * increment
}

/// The smallest multiple of `increment` not below `value`.
pub fn round_up(value: Decimal, increment: Decimal) -> Decimal {
    if increment <= Decimal::ZERO {
        return value;
    }
    (value / increment).ceil() * increment
}

pub fn entry_limit(price: Decimal, spec: &ProductSpec) -> Decimal {
    round_down(price, spec.quote_increment)
}

pub fn take_profit_limit(price: Decimal, spec: &ProductSpec) -> Decimal {
    round_down(price, spec.quote_increment)
}

pub fn stop_trigger(price: Decimal, spec: &ProductSpec) -> Decimal {
    round_up(price, spec.quote_increment)
}

pub fn quantity(quantity: Decimal, spec: &ProductSpec) -> Decimal {
    round_down(quantity, spec.base_increment)
}

/// The worst price a triggered SELL stop-limit may fill at: `buffer` below
/// the trigger (sizing budgets for it, unrounded).
pub fn worst_case_fill(trigger: Decimal, buffer: Decimal) -> Decimal {
    trigger * (Decimal::ONE - buffer)
}

/// The limit of the stop-limit the exchange creates when a SELL stop triggers:
/// the worst-case fill on the quote increment (down: the exchange's order may
/// fill lower, never higher, than this bound).
pub fn stop_limit(trigger: Decimal, buffer: Decimal, spec: &ProductSpec) -> Decimal {
    round_down(worst_case_fill(trigger, buffer), spec.quote_increment)
}
