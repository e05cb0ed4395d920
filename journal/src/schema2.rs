//! Schema version 2 of `Candle` and `Decision` (`journal/FORMAT.md` §6a): the
//! compact bodies, and the canonical encoding of a glass box whose BLAKE3 a
//! decision commits to. Hand-written over [`crate::compact`], not bincode:
//! every field's width is read off FORMAT.md, and a body has one encoding.

use crate::codec::Hash32;
use crate::compact::{In, Out};
use crate::event::{
    Candle, Decision, DecisionOutcome, ExitReason, Glass, GlassBox, Indicator, RiskCheck,
    SignalOutput, Sizing, Text, UnixMs,
};

/// The exit reasons' codes in a schema-2 outcome.
const EXIT_REASONS: [ExitReason; 5] = [
    ExitReason::Signal,
    ExitReason::TakeProfit,
    ExitReason::StopLoss,
    ExitReason::Manual,
    ExitReason::Emergency,
];

const OUTCOME_HOLD: u8 = 0;
const OUTCOME_ENTER: u8 = 1;
const OUTCOME_EXIT: u8 = 2;
const OUTCOME_REJECTED: u8 = 3;

pub fn encode_candle(c: &Candle, out: &mut Out) -> Result<(), String> {
    out.str8(&c.symbol)?;
    out.u32(c.granularity_s);
    out.i64(c.open_ms);
    for value in [c.open, c.high, c.low, c.close, c.volume] {
        out.dec(value);
    }
    Ok(())
}

pub fn decode_candle(input: &mut In) -> Result<Candle, String> {
    Ok(Candle {
        symbol: input.str8()?.to_string(),
        granularity_s: input.u32()?,
        open_ms: input.i64()?,
        open: input.dec()?,
        high: input.dec()?,
        low: input.dec()?,
        close: input.dec()?,
        volume: input.dec()?,
    })
}

/// A schema-2 decision's `as_of_ms` is its record's market time (the
/// envelope's), not stored again: `market_ms` must equal it.
pub fn encode_decision(d: &Decision, market_ms: UnixMs, out: &mut Out) -> Result<(), String> {
    if d.as_of_ms != market_ms {
        return Err(format!(
            "a schema-2 decision is journaled at its own market time: as_of_ms {} is not the record's {market_ms}",
            d.as_of_ms
        ));
    }
    out.str8(&d.symbol)?;
    out.u64(d.candle_seq);
    encode_outcome(&d.outcome, out)?;
    encode_sizing(d.sizing.as_ref(), out);
    if d.keeps_glass_inline() {
        let glass = d
            .glass
            .full()
            .ok_or("a decision that led to an order keeps its glass box inline, and has none")?;
        return encode_glass(glass, out);
    }
    let (fired, digest) = d.glass.commitment()?;
    out.count(fired.len())?;
    for name in &fired {
        out.str8(name)?;
    }
    out.hash(&digest);
    Ok(())
}

/// A schema-2 decision journaled at `market_ms` (its `as_of_ms`).
pub fn decode_decision(input: &mut In, market_ms: UnixMs) -> Result<Decision, String> {
    let symbol = input.str8()?.to_string();
    let as_of_ms = market_ms;
    let candle_seq = input.u64()?;
    let outcome = decode_outcome(input)?;
    let sizing = decode_sizing(input)?;
    let mut decision = Decision {
        symbol,
        as_of_ms,
        candle_seq,
        outcome,
        sizing,
        config_hash: None,
        glass: Glass::Committed {
            fired: Vec::new(),
            digest: Hash32::default(),
        },
    };
    decision.glass = if decision.keeps_glass_inline() {
        Glass::Full(decode_glass(input)?)
    } else {
        let count = input.u8()?;
        let fired = (0..count)
            .map(|_| input.str8().map(Text::from))
            .collect::<Result<Vec<_>, _>>()?;
        Glass::Committed {
            fired,
            digest: input.hash()?,
        }
    };
    Ok(decision)
}

fn encode_outcome(outcome: &DecisionOutcome, out: &mut Out) -> Result<(), String> {
    match outcome {
        DecisionOutcome::Hold => out.u8(OUTCOME_HOLD),
        DecisionOutcome::Enter => out.u8(OUTCOME_ENTER),
        DecisionOutcome::Exit { reason } => {
            out.u8(OUTCOME_EXIT);
            let code = EXIT_REASONS.iter().position(|r| r == reason).unwrap_or(0);
            out.u8(code as u8);
        }
        DecisionOutcome::Rejected { reason_code } => {
            out.u8(OUTCOME_REJECTED);
            out.str8(reason_code)?;
        }
    }
    Ok(())
}

fn decode_outcome(input: &mut In) -> Result<DecisionOutcome, String> {
    Ok(match input.u8()? {
        OUTCOME_HOLD => DecisionOutcome::Hold,
        OUTCOME_ENTER => DecisionOutcome::Enter,
        OUTCOME_EXIT => {
            let code = input.u8()?;
            let reason = EXIT_REASONS
                .get(usize::from(code))
                .ok_or_else(|| format!("exit reason code {code} is unknown"))?;
            DecisionOutcome::Exit { reason: *reason }
        }
        OUTCOME_REJECTED => DecisionOutcome::Rejected {
            reason_code: input.str8()?.to_string(),
        },
        other => return Err(format!("decision outcome code {other} is unknown")),
    })
}

fn encode_sizing(sizing: Option<&Sizing>, out: &mut Out) {
    let Some(s) = sizing else {
        out.u8(0);
        return;
    };
    out.u8(1);
    for value in [
        s.capital,
        s.risk_fraction,
        s.risk_budget,
        s.entry,
        s.stop_trigger,
        s.worst_case_fill,
        s.risk_per_unit,
        s.quantity_raw,
        s.quantity,
        s.notional,
        s.multiplier,
    ] {
        out.dec(value);
    }
}

fn decode_sizing(input: &mut In) -> Result<Option<Sizing>, String> {
    match input.u8()? {
        0 => Ok(None),
        1 => Ok(Some(Sizing {
            capital: input.dec()?,
            risk_fraction: input.dec()?,
            risk_budget: input.dec()?,
            entry: input.dec()?,
            stop_trigger: input.dec()?,
            worst_case_fill: input.dec()?,
            risk_per_unit: input.dec()?,
            quantity_raw: input.dec()?,
            quantity: input.dec()?,
            notional: input.dec()?,
            multiplier: input.dec()?,
        })),
        other => Err(format!("a sizing tag {other}, not 0 or 1")),
    }
}

/// The canonical encoding of a glass box: what a schema-2 decision's digest
/// is the BLAKE3 of, and what one that led to an order stores inline.
pub fn encode_glass(glass: &GlassBox, out: &mut Out) -> Result<(), String> {
    out.str8(&glass.regime)?;
    out.count(glass.indicators.len())?;
    for indicator in &glass.indicators {
        out.str8(&indicator.name)?;
        out.opt_dec(indicator.value);
    }
    out.count(glass.signals.len())?;
    for signal in &glass.signals {
        encode_signal(signal, out)?;
    }
    out.count(glass.risk_checks.len())?;
    for check in &glass.risk_checks {
        out.str8(&check.code)?;
        out.bool(check.passed);
        out.str16(&check.detail)?;
    }
    Ok(())
}

fn encode_signal(signal: &SignalOutput, out: &mut Out) -> Result<(), String> {
    out.str8(&signal.name)?;
    out.bool(signal.fired);
    out.dec(signal.strength);
    out.dec(signal.confidence);
    out.opt_dec(signal.entry);
    out.opt_dec(signal.stop);
    out.opt_dec(signal.take_profit);
    out.str8(&signal.note)
}

pub fn decode_glass(input: &mut In) -> Result<GlassBox, String> {
    let regime = Text::from(input.str8()?);
    let count = input.u8()?;
    let indicators = (0..count)
        .map(|_| {
            Ok(Indicator {
                name: Text::from(input.str8()?),
                value: input.opt_dec()?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let count = input.u8()?;
    let signals = (0..count)
        .map(|_| decode_signal(input))
        .collect::<Result<Vec<_>, String>>()?;
    let count = input.u8()?;
    let risk_checks = (0..count)
        .map(|_| {
            Ok(RiskCheck {
                code: Text::from(input.str8()?),
                passed: input.bool()?,
                detail: Text::from(input.str16()?),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(GlassBox {
        regime,
        indicators,
        signals,
        risk_checks,
    })
}

fn decode_signal(input: &mut In) -> Result<SignalOutput, String> {
    Ok(SignalOutput {
        name: Text::from(input.str8()?),
        fired: input.bool()?,
        strength: input.dec()?,
        confidence: input.dec()?,
        entry: input.opt_dec()?,
        stop: input.opt_dec()?,
        take_profit: input.opt_dec()?,
        note: Text::from(input.str8()?),
    })
}
