//! The cost model: the single source of fees and slippage. The simulated
//! exchange prices its fills with it, and the engine attributes each closed
//! trade's PnL with it (edge, fees, slippage; theoretical and realized R).
//!
//! - Fee = notional × (maker or taker bps) / 10,000, rounded to 8 decimals.
//! - Slippage applies to taker fills only (market orders, triggered stops):
//!   the fill price is the reference price moved against the taker by the
//!   product tier's bps, rounded to the quote increment against the taker.
//! - Attribution: slippage cost = Σ over taker fills of notional × s / (1 − s)
//!   for sells and × s / (1 + s) for buys (the distance back to the reference,
//!   s = tier bps / 10,000); edge = net + fees + slippage.
//! - R: the risk unit is size × (entry − initial stop trigger). Theoretical R =
//!   edge / risk (no costs); realized R = net / risk (with costs).

use super::config::{Config, ProductSpec};
use super::product::{round_down, round_up};
use anx_journal::{Liquidity, Side};
use rust_decimal::Decimal;

/// Basis points in one.
pub const BPS: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);
/// Decimal places kept in fees and attributions.
pub const COST_DP: u32 = 8;

pub struct CostModel<'a> {
    config: &'a Config,
}

/// What a closed trade bought, sold and paid, as the fills say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeFlows {
    pub buy_notional: Decimal,
    pub sell_notional: Decimal,
    pub fees: Decimal,
    pub slippage: Decimal,
    pub size: Decimal,
    pub entry_price: Decimal,
    pub initial_stop: Decimal,
}

/// A closed trade's PnL, decomposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attribution {
    pub gross: Decimal,
    pub fees: Decimal,
    pub slippage: Decimal,
    pub net: Decimal,
    /// The price move alone: net + fees + slippage.
    pub edge: Decimal,
    pub theoretical_r: Decimal,
    pub realized_r: Decimal,
}

/// The price move alone: net PnL with the fees and slippage added back. The
/// one formula, for the attribution and for a closed trade's row.
pub fn edge(net: Decimal, fees: Decimal, slippage: Decimal) -> Decimal {
    net + fees + slippage
}

/// The risk unit: size × (entry − initial stop trigger), what the stop would
/// lose at its trigger. The one formula, for R and for a trade's risk in $.
pub fn risk(size: Decimal, entry: Decimal, initial_stop: Decimal) -> Decimal {
    size * (entry - initial_stop)
}

impl<'a> CostModel<'a> {
    pub fn new(config: &'a Config) -> CostModel<'a> {
        CostModel { config }
    }

    pub fn fee_bps(&self, liquidity: Liquidity) -> Decimal {
        match liquidity {
            Liquidity::Maker => self.config.costs.maker_fee_bps,
            Liquidity::Taker => self.config.costs.taker_fee_bps,
        }
    }

    /// The fee as a fraction of the notional.
    pub fn fee_fraction(&self, liquidity: Liquidity) -> Decimal {
        self.fee_bps(liquidity) / BPS
    }

    pub fn fee(&self, notional: Decimal, liquidity: Liquidity) -> Decimal {
        (notional * self.fee_bps(liquidity) / BPS).round_dp(COST_DP)
    }

    /// The slippage fraction of taker fills on `spec`'s tier.
    pub fn slippage_fraction(&self, spec: &ProductSpec) -> Decimal {
        self.config.slippage_bps(spec.liquidity_tier) / BPS
    }

    /// Where a taker order fills, given the reference price it executes against.
    pub fn taker_fill_price(&self, reference: Decimal, side: Side, spec: &ProductSpec) -> Decimal {
        let s = self.slippage_fraction(spec);
        match side {
            Side::Buy => round_up(reference * (Decimal::ONE + s), spec.quote_increment),
            Side::Sell => round_down(reference * (Decimal::ONE - s), spec.quote_increment),
        }
    }

    /// The slippage cost attributed to one taker fill.
    pub fn slippage_cost(&self, notional: Decimal, side: Side, spec: &ProductSpec) -> Decimal {
        let s = self.slippage_fraction(spec);
        let cost = match side {
            Side::Buy => notional * s / (Decimal::ONE + s),
            Side::Sell => notional * s / (Decimal::ONE - s),
        };
        cost.round_dp(COST_DP)
    }

    /// Decomposes a closed trade's PnL.
    pub fn attribute(&self, flows: &TradeFlows) -> Attribution {
        let gross = flows.sell_notional - flows.buy_notional;
        let net = gross - flows.fees;
        let edge = edge(net, flows.fees, flows.slippage);
        let risk = risk(flows.size, flows.entry_price, flows.initial_stop);
        let r = |value: Decimal| {
            if risk > Decimal::ZERO {
                (value / risk).round_dp(4)
            } else {
                Decimal::ZERO
            }
        };
        Attribution {
            gross,
            fees: flows.fees,
            slippage: flows.slippage,
            net,
            edge,
            theoretical_r: r(edge),
            realized_r: r(net),
        }
    }

    /// Total round-trip cost per unit, as a fraction of price, assumed by the
    /// after-cost reward:risk check: a maker entry, a taker exit with slippage.
    pub fn round_trip_fraction(&self, spec: &ProductSpec) -> Decimal {
        (self.config.costs.maker_fee_bps + self.config.costs.taker_fee_bps) / BPS
            + self.slippage_fraction(spec)
    }
}
