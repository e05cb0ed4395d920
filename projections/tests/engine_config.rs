//! The engine configuration (`engine::config`): one test per validation rule
//! (each Problem names the key, the value and the allowed range), all problems
//! of a bad file reported at once, refusals at parse time (a float for a
//! decimal, an unknown key), `extends` layering and loops, and the config hash
//! (stable for the same effective configuration, changed by any knob, its
//! canonical text parsing back to an equal configuration).

mod engine_support;

use anx_projections::engine::config::{
    parse_granularity, Config, ConfigError, Problem, EXTENDS_DEPTH_MAX,
};
use engine_support::*;
use rust_decimal::Decimal;

fn problem(key: &str, value: &str, allowed: &str) -> Problem {
    Problem {
        key: key.into(),
        value: value.into(),
        allowed: allowed.into(),
    }
}

/// The problems of the default configuration after `change`.
fn problems(change: impl FnOnce(&mut Config)) -> Vec<Problem> {
    let mut config = default_config();
    change(&mut config);
    config.validate()
}

/// Asserts that `change` breaks exactly one rule, reported as `expected`, and
/// that the same change made in the TOML text is refused by `Config::load`
/// with that problem too.
#[track_caller]
fn only(change: impl FnOnce(&mut Config), expected: Problem) {
    let mut config = default_config();
    change(&mut config);
    assert_eq!(config.validate(), vec![expected.clone()]);
    match Config::from_toml(&config.canonical_text()) {
        Err(ConfigError::Invalid(found)) => assert_eq!(found, vec![expected]),
        other => panic!("expected ConfigError::Invalid, got {other:?}"),
    }
}

#[track_caller]
fn valid(change: impl FnOnce(&mut Config)) {
    let found = problems(change);
    assert!(found.is_empty(), "unexpected problems: {found:#?}");
}

const PERIOD: &str = "periods >= 1 and below strategy.window_bars (300)";
const SIGNAL: &str = "one of breakout, momentum, mean_reversion";

#[test]
fn the_shipped_configurations_are_valid() {
    assert!(default_config().validate().is_empty());
    for name in ["default.toml", "replay.toml", "paper.toml"] {
        let config = load_shipped(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(config.validate().is_empty(), "{name}");
    }
}

#[test]
fn a_problem_prints_as_key_value_and_allowed_range() {
    let p = problem("risk.risk_per_trade", "1", "0 < risk_per_trade < 1");
    assert_eq!(
        p.to_string(),
        "risk.risk_per_trade = 1: 0 < risk_per_trade < 1"
    );
}

// ---------------------------------------------------------------------------- run

#[test]
fn granularity_must_be_minutes_hours_or_days() {
    let allowed = "a whole number of minutes, hours or days such as 15m, 1h, 4h, 1d";
    for bad in ["4x", "0h", "h", "", "-4h", "4 h", "1.5h"] {
        only(
            |c| c.run.granularity = bad.into(),
            problem("run.granularity", bad, allowed),
        );
    }
    for (good, seconds) in [
        ("1m", 60),
        ("15m", 900),
        ("1h", 3600),
        ("4h", 14_400),
        ("1d", 86_400),
    ] {
        assert_eq!(parse_granularity(good), Some(seconds));
        valid(|c| c.run.granularity = good.into());
    }
}

#[test]
fn symbols_must_not_be_empty() {
    only(
        |c| c.run.symbols.clear(),
        problem("run.symbols", "[]", "at least one symbol"),
    );
}

#[test]
fn starting_capital_must_be_positive() {
    only(
        |c| c.run.starting_capital = Decimal::ZERO,
        problem("run.starting_capital", "0", "> 0"),
    );
    only(
        |c| c.run.starting_capital = d("-1"),
        problem("run.starting_capital", "-1", "> 0"),
    );
    valid(|c| c.run.starting_capital = d("0.01"));
}

// ------------------------------------------------------------------------ periods

#[test]
fn window_must_hold_at_least_two_bars() {
    // A window of 1 leaves no room for any period either; the window itself is
    // named first.
    let found = problems(|c| c.strategy.window_bars = 1);
    assert_eq!(found[0], problem("strategy.window_bars", "1", ">= 2"));
    assert!(found[1..]
        .iter()
        .all(|p| p.allowed == "periods >= 1 and below strategy.window_bars (1)"));
}

#[test]
fn the_window_must_exceed_every_period() {
    // The longest default period is the 100-bar regime average.
    valid(|c| c.strategy.window_bars = 101);
    only(
        |c| c.strategy.window_bars = 100,
        problem(
            "regime.sma_bars",
            "100",
            "periods >= 1 and below strategy.window_bars (100)",
        ),
    );
}

type Setter = fn(&mut Config, u32);

/// Every indicator period, with a setter.
fn periods() -> Vec<(&'static str, Setter)> {
    vec![
        ("strategy.atr_bars", |c, v| c.strategy.atr_bars = v),
        ("strategy.breakout.lookback_bars", |c, v| {
            c.strategy.breakout.lookback_bars = v
        }),
        ("strategy.breakout.volume_lookback_bars", |c, v| {
            c.strategy.breakout.volume_lookback_bars = v
        }),
        ("strategy.momentum.fast_ema_bars", |c, v| {
            c.strategy.momentum.fast_ema_bars = v
        }),
        ("strategy.momentum.slow_ema_bars", |c, v| {
            c.strategy.momentum.slow_ema_bars = v
        }),
        ("strategy.mean_reversion.sma_bars", |c, v| {
            c.strategy.mean_reversion.sma_bars = v
        }),
        ("regime.sma_bars", |c, v| c.regime.sma_bars = v),
        ("regime.slope_bars", |c, v| c.regime.slope_bars = v),
    ]
}

#[test]
fn every_period_must_be_at_least_one() {
    for (key, set) in periods() {
        let found = problems(|c| {
            set(c, 0);
            // Keep fast below slow when zeroing the slow EMA.
            if key == "strategy.momentum.slow_ema_bars" {
                c.strategy.momentum.fast_ema_bars = 0;
            }
        });
        let for_key: Vec<&Problem> = found.iter().filter(|p| p.key == key).collect();
        assert_eq!(
            for_key,
            vec![&problem(key, "0", ">= 1")],
            "{key}: one problem, reported once"
        );
    }
    // The plain cases break nothing else.
    only(
        |c| c.strategy.atr_bars = 0,
        problem("strategy.atr_bars", "0", ">= 1"),
    );
    only(
        |c| c.regime.slope_bars = 0,
        problem("regime.slope_bars", "0", ">= 1"),
    );
    valid(|c| c.regime.slope_bars = 1);
}

#[test]
fn every_period_must_be_below_the_window() {
    for (key, set) in periods() {
        let fix_ema = |c: &mut Config| {
            // Keep fast below slow when raising the fast EMA.
            if key == "strategy.momentum.fast_ema_bars" {
                c.strategy.momentum.slow_ema_bars = 299;
            }
        };
        let at = problems(|c| {
            set(c, 300);
            fix_ema(c);
        });
        let window: Vec<&Problem> = at
            .iter()
            .filter(|p| p.key == key && p.allowed.contains("window_bars"))
            .collect();
        assert_eq!(window, vec![&problem(key, "300", PERIOD)], "{key}");
        if key == "strategy.momentum.fast_ema_bars" {
            // No slow EMA below the window can lie above a fast EMA of 300.
            assert_eq!(at.len(), 2, "{at:#?}");
        } else {
            assert_eq!(at.len(), 1, "{key}: {at:#?}");
        }
        let below = problems(|c| {
            set(c, 299);
            fix_ema(c);
            if key == "strategy.momentum.fast_ema_bars" {
                c.strategy.momentum.fast_ema_bars = 298;
            }
        });
        assert!(
            below.iter().all(|p| p.key != key),
            "{key} = 299 is allowed: {below:#?}"
        );
    }
}

#[test]
fn fast_ema_must_be_below_slow_ema() {
    valid(|c| c.strategy.momentum.fast_ema_bars = 25);
    only(
        |c| c.strategy.momentum.fast_ema_bars = 26,
        problem(
            "strategy.momentum.fast_ema_bars",
            "26",
            "below strategy.momentum.slow_ema_bars (26)",
        ),
    );
    only(
        |c| c.strategy.momentum.slow_ema_bars = 11,
        problem(
            "strategy.momentum.fast_ema_bars",
            "12",
            "below strategy.momentum.slow_ema_bars (11)",
        ),
    );
}

// ------------------------------------------------------------------------ signals

#[test]
fn at_least_one_signal_must_be_enabled() {
    only(
        |c| c.strategy.signals.clear(),
        problem(
            "strategy.signals",
            "[]",
            "at least one of breakout, momentum, mean_reversion",
        ),
    );
    valid(|c| c.strategy.signals = vec!["momentum".into()]);
}

#[test]
fn signal_names_must_be_known() {
    only(
        |c| c.strategy.signals.push("breakoot".into()),
        problem("strategy.signals", "breakoot", SIGNAL),
    );
    only(
        |c| c.regime.trend.allowed_signals.push("Breakout".into()),
        problem("regime.trend.allowed_signals", "Breakout", SIGNAL),
    );
    only(
        |c| c.regime.chop.allowed_signals = vec!["scalp".into()],
        problem("regime.chop.allowed_signals", "scalp", SIGNAL),
    );
    only(
        |c| c.regime.bear.allowed_signals = vec!["".into()],
        problem("regime.bear.allowed_signals", "", SIGNAL),
    );
    // An empty allowed list is how a regime forbids entries.
    valid(|c| c.regime.trend.allowed_signals.clear());
}

#[test]
fn volume_factor_must_not_be_negative() {
    valid(|c| c.strategy.breakout.volume_factor = Decimal::ZERO);
    only(
        |c| c.strategy.breakout.volume_factor = d("-0.1"),
        problem("strategy.breakout.volume_factor", "-0.1", ">= 0"),
    );
}

#[test]
fn atr_multiples_must_be_positive() {
    type DecSetter = fn(&mut Config, Decimal);
    let keys: [(&str, DecSetter); 5] = [
        ("strategy.breakout.stop_atr_multiple", |c, v| {
            c.strategy.breakout.stop_atr_multiple = v
        }),
        ("strategy.momentum.stop_atr_multiple", |c, v| {
            c.strategy.momentum.stop_atr_multiple = v
        }),
        ("strategy.mean_reversion.stop_atr_multiple", |c, v| {
            c.strategy.mean_reversion.stop_atr_multiple = v
        }),
        ("strategy.mean_reversion.entry_atr_below", |c, v| {
            c.strategy.mean_reversion.entry_atr_below = v
        }),
        ("exits.chandelier_atr_multiple", |c, v| {
            c.exits.chandelier_atr_multiple = v
        }),
    ];
    for (key, set) in keys {
        only(|c| set(c, Decimal::ZERO), problem(key, "0", "> 0"));
        only(|c| set(c, d("-1")), problem(key, "-1", "> 0"));
        valid(|c| set(c, d("0.01")));
    }
}

#[test]
fn reward_risk_must_be_positive_and_reach_the_after_cost_minimum() {
    type DecSetter = fn(&mut Config, Decimal);
    let keys: [(&str, DecSetter); 3] = [
        ("strategy.breakout.reward_risk", |c, v| {
            c.strategy.breakout.reward_risk = v
        }),
        ("strategy.momentum.reward_risk", |c, v| {
            c.strategy.momentum.reward_risk = v
        }),
        ("strategy.mean_reversion.reward_risk", |c, v| {
            c.strategy.mean_reversion.reward_risk = v
        }),
    ];
    let positive =
        "> 0 (the take-profit must lie beyond the entry, on the other side from the stop)";
    let minimum = "at least risk.min_reward_risk_after_costs (1.5): the brackets could never pass the after-cost check";
    for (key, set) in keys {
        only(|c| set(c, Decimal::ZERO), problem(key, "0", positive));
        only(|c| set(c, d("-2")), problem(key, "-2", positive));
        only(|c| set(c, d("1.49")), problem(key, "1.49", minimum));
        valid(|c| set(c, d("1.5")));
    }
    // With no after-cost minimum, any positive reward:risk is allowed.
    valid(|c| {
        c.risk.min_reward_risk_after_costs = Decimal::ZERO;
        c.strategy.breakout.reward_risk = d("0.1");
    });
}

#[test]
fn size_multipliers_must_lie_between_zero_and_one() {
    for key in ["regime.trend", "regime.chop", "regime.bear"] {
        let set = |c: &mut Config, v: Decimal| match key {
            "regime.trend" => c.regime.trend.size_multiplier = v,
            "regime.chop" => c.regime.chop.size_multiplier = v,
            _ => c.regime.bear.size_multiplier = v,
        };
        let name = format!("{key}.size_multiplier");
        only(
            |c| set(c, d("1.01")),
            problem(&name, "1.01", "between 0 and 1"),
        );
        only(
            |c| set(c, d("-0.01")),
            problem(&name, "-0.01", "between 0 and 1"),
        );
        valid(|c| set(c, Decimal::ZERO));
        valid(|c| set(c, Decimal::ONE));
    }
}

// --------------------------------------------------------------------------- risk

#[test]
fn risk_per_trade_must_lie_strictly_between_zero_and_one() {
    for bad in ["0", "1", "-0.01", "1.5"] {
        only(
            |c| c.risk.risk_per_trade = d(bad),
            problem("risk.risk_per_trade", bad, "0 < risk_per_trade < 1"),
        );
    }
    valid(|c| c.risk.risk_per_trade = d("0.0001"));
    valid(|c| c.risk.risk_per_trade = d("0.99"));
}

#[test]
fn notional_caps_must_be_positive() {
    only(
        |c| c.risk.max_position_notional = Decimal::ZERO,
        problem("risk.max_position_notional", "0", "> 0"),
    );
    assert_eq!(
        problems(|c| c.risk.max_total_exposure = Decimal::ZERO),
        vec![
            problem("risk.max_total_exposure", "0", "> 0"),
            problem(
                "risk.max_total_exposure",
                "0",
                "at least risk.max_position_notional (450)"
            ),
        ]
    );
}

#[test]
fn total_exposure_must_cover_one_position() {
    valid(|c| c.risk.max_total_exposure = d("450"));
    only(
        |c| c.risk.max_total_exposure = d("449.99"),
        problem(
            "risk.max_total_exposure",
            "449.99",
            "at least risk.max_position_notional (450)",
        ),
    );
}

#[test]
fn min_reward_risk_after_costs_must_not_be_negative() {
    only(
        |c| c.risk.min_reward_risk_after_costs = d("-0.5"),
        problem("risk.min_reward_risk_after_costs", "-0.5", ">= 0"),
    );
}

// ------------------------------------------------------------------------- pacing

#[test]
fn trade_caps_must_be_at_least_one() {
    only(
        |c| {
            c.pacing.max_trades_per_hour = 0;
        },
        problem("pacing.max_trades_per_hour", "0", ">= 1"),
    );
    assert_eq!(
        problems(|c| c.pacing.max_trades_per_day = 0),
        vec![
            problem("pacing.max_trades_per_day", "0", ">= 1"),
            problem(
                "pacing.max_trades_per_day",
                "0",
                "at least pacing.max_trades_per_hour (2)"
            ),
        ]
    );
}

#[test]
fn the_day_cap_must_cover_the_hour_cap() {
    valid(|c| c.pacing.max_trades_per_day = 2);
    only(
        |c| c.pacing.max_trades_per_day = 1,
        problem(
            "pacing.max_trades_per_day",
            "1",
            "at least pacing.max_trades_per_hour (2)",
        ),
    );
}

// ----------------------------------------------------------------------- breakers

#[test]
fn breaker_percentages_must_lie_in_zero_to_one_hundred() {
    for key in ["breakers.max_drawdown_pct", "breakers.daily_loss_limit_pct"] {
        let set = |c: &mut Config, v: Decimal| match key {
            "breakers.max_drawdown_pct" => c.breakers.max_drawdown_pct = v,
            _ => c.breakers.daily_loss_limit_pct = v,
        };
        for bad in ["0", "-1", "100.01"] {
            only(|c| set(c, d(bad)), problem(key, bad, "0 < percent <= 100"));
        }
        valid(|c| set(c, d("100")));
        valid(|c| set(c, d("0.01")));
    }
}

#[test]
fn stale_data_age_must_be_at_least_a_second() {
    only(
        |c| c.breakers.stale_data_max_age_s = 0,
        problem("breakers.stale_data_max_age_s", "0", ">= 1"),
    );
    valid(|c| c.breakers.stale_data_max_age_s = 1);
}

// -------------------------------------------------------------------------- costs

#[test]
fn fees_must_not_be_negative() {
    only(
        |c| c.costs.maker_fee_bps = d("-1"),
        problem("costs.maker_fee_bps", "-1", ">= 0"),
    );
    only(
        |c| c.costs.taker_fee_bps = d("-0.5"),
        problem("costs.taker_fee_bps", "-0.5", ">= 0"),
    );
    valid(|c| {
        c.costs.maker_fee_bps = Decimal::ZERO;
        c.costs.taker_fee_bps = Decimal::ZERO;
    });
}

#[test]
fn fees_must_be_below_one_hundred_percent() {
    only(
        |c| c.costs.maker_fee_bps = d("10000"),
        problem(
            "costs.maker_fee_bps",
            "10000",
            "fees below 10000 bps (100%)",
        ),
    );
    only(
        |c| c.costs.taker_fee_bps = d("10000"),
        problem(
            "costs.taker_fee_bps",
            "10000",
            "fees below 10000 bps (100%)",
        ),
    );
    valid(|c| c.costs.taker_fee_bps = d("9999.99"));
}

#[test]
fn slippage_must_not_be_negative() {
    for tier in ["high", "medium", "low"] {
        let key = format!("costs.slippage_bps.{tier}");
        only(
            |c| match tier {
                "high" => c.costs.slippage_bps.high = d("-1"),
                "medium" => c.costs.slippage_bps.medium = d("-1"),
                _ => c.costs.slippage_bps.low = d("-1"),
            },
            problem(&key, "-1", ">= 0"),
        );
    }
    valid(|c| c.costs.slippage_bps.high = Decimal::ZERO);
}

// ------------------------------------------------------------------------- orders

#[test]
fn entry_ttl_must_be_at_least_one_bar() {
    only(
        |c| c.orders.entry_ttl_bars = 0,
        problem("orders.entry_ttl_bars", "0", ">= 1"),
    );
    valid(|c| c.orders.entry_ttl_bars = 1);
}

#[test]
fn stop_limit_buffer_must_lie_strictly_between_zero_and_one() {
    for bad in ["0", "1", "-0.05"] {
        only(
            |c| c.exchange.stop_limit_buffer = d(bad),
            problem("exchange.stop_limit_buffer", bad, "0 < buffer < 1"),
        );
    }
    valid(|c| c.exchange.stop_limit_buffer = d("0.99"));
}

#[test]
fn exchange_must_be_named() {
    only(
        |c| c.exchange.name.clear(),
        problem("exchange.name", "\"\"", "an exchange name such as COINBASE"),
    );
}

// ----------------------------------------------------------------------- products

#[test]
fn product_increments_must_be_positive() {
    only(
        |c| c.products.get_mut(BTC).unwrap().base_increment = Decimal::ZERO,
        problem("products.BTC-USD.base_increment", "0", "> 0"),
    );
    only(
        |c| c.products.get_mut(SOL).unwrap().quote_increment = d("-0.01"),
        problem("products.SOL-USD.quote_increment", "-0.01", "> 0"),
    );
}

#[test]
fn product_minimums_must_not_be_negative() {
    only(
        |c| c.products.get_mut(ETH).unwrap().base_min_size = d("-1"),
        problem("products.ETH-USD.base_min_size", "-1", ">= 0"),
    );
    only(
        |c| c.products.get_mut("default").unwrap().quote_min_size = d("-1"),
        problem("products.default.quote_min_size", "-1", ">= 0"),
    );
    valid(|c| c.products.get_mut(BTC).unwrap().quote_min_size = Decimal::ZERO);
}

#[test]
fn every_symbol_needs_a_product_spec() {
    // `default` stands in for a symbol without its own spec …
    valid(|c| {
        c.products.remove(BTC);
    });
    // … and without it the symbol has none.
    only(
        |c| {
            c.products.remove(BTC);
            c.products.remove("default");
        },
        problem(
            "products.BTC-USD",
            "missing",
            "a product spec for every symbol, or a products.default",
        ),
    );
}

// ------------------------------------------------------------ all problems at once

#[test]
fn a_bad_file_lists_every_problem_at_once() {
    let mut text = DEFAULT_TOML.to_string();
    for (from, to) in [
        ("granularity = \"4h\"", "granularity = \"4x\""),
        ("risk_per_trade = \"0.01\"", "risk_per_trade = \"1\""),
        ("max_trades_per_day = 6", "max_trades_per_day = 1"),
        ("stop_limit_buffer = \"0.05\"", "stop_limit_buffer = \"0\""),
        ("allowed_signals = []", "allowed_signals = [\"scalp\"]"),
        ("maker_fee_bps = \"40\"", "maker_fee_bps = \"-40\""),
    ] {
        text = edit(&text, from, to);
    }
    let error = Config::from_toml(&text).expect_err("six problems");
    let expected = vec![
        problem(
            "run.granularity",
            "4x",
            "a whole number of minutes, hours or days such as 15m, 1h, 4h, 1d",
        ),
        problem("regime.bear.allowed_signals", "scalp", SIGNAL),
        problem("risk.risk_per_trade", "1", "0 < risk_per_trade < 1"),
        problem(
            "pacing.max_trades_per_day",
            "1",
            "at least pacing.max_trades_per_hour (2)",
        ),
        problem("costs.maker_fee_bps", "-40", ">= 0"),
        problem("exchange.stop_limit_buffer", "0", "0 < buffer < 1"),
    ];
    assert_eq!(error, ConfigError::Invalid(expected.clone()));
    // One line each, after a count.
    let message = error.to_string();
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines[0], "6 problem(s) in the configuration:");
    let rest: Vec<String> = expected.iter().map(|p| p.to_string()).collect();
    assert_eq!(lines[1..], rest);
    assert_eq!(
        lines[1],
        "run.granularity = 4x: a whole number of minutes, hours or days such as 15m, 1h, 4h, 1d"
    );
}

// ---------------------------------------------------------------- parse refusals

#[test]
fn a_float_for_a_decimal_is_refused_with_the_key() {
    let text = edit(
        DEFAULT_TOML,
        "risk_per_trade = \"0.01\"",
        "risk_per_trade = 0.01",
    );
    let error = Config::from_toml(&text).expect_err("a float is refused");
    let ConfigError::Parse { file, message } = &error else {
        panic!("expected a parse error, got {error:?}");
    };
    assert_eq!(file, "config");
    assert!(message.contains("floating point `0.01`"), "{message}");
    assert!(message.contains("expected a string"), "{message}");
    assert!(message.contains("risk.risk_per_trade"), "{message}");
    assert!(!error.to_string().contains('\n'), "one line: {error}");
}

#[test]
fn an_integer_for_a_decimal_is_refused_too() {
    let text = edit(
        DEFAULT_TOML,
        "starting_capital = \"500\"",
        "starting_capital = 500",
    );
    let error = Config::from_toml(&text).expect_err("an integer is refused");
    assert!(
        matches!(&error, ConfigError::Parse { message, .. }
            if message.contains("run.starting_capital") && message.contains("expected a string")),
        "{error}"
    );
}

#[test]
fn a_malformed_decimal_string_is_refused_with_the_key() {
    let text = edit(
        DEFAULT_TOML,
        "max_drawdown_pct = \"25\"",
        "max_drawdown_pct = \"25%\"",
    );
    let error = Config::from_toml(&text).expect_err("not a decimal");
    assert!(
        matches!(&error, ConfigError::Parse { message, .. }
            if message.contains("breakers.max_drawdown_pct") && message.contains("\"25%\"")),
        "{error}"
    );
}

#[test]
fn an_unknown_key_is_refused() {
    let text = edit(
        DEFAULT_TOML,
        "risk_per_trade = \"0.01\"",
        "risk_per_trade = \"0.01\"\nrisk_per_trad = \"0.02\"",
    );
    let error = Config::from_toml(&text).expect_err("unknown key");
    assert!(
        matches!(&error, ConfigError::Parse { message, .. }
            if message.contains("unknown field `risk_per_trad`") && message.contains("risk")),
        "{error}"
    );
    // At the top level and inside a product spec as well.
    let text = format!("{DEFAULT_TOML}\n[risky]\nx = 1\n");
    assert!(matches!(
        Config::from_toml(&text),
        Err(ConfigError::Parse { message, .. }) if message.contains("unknown field `risky`")
    ));
    let text = edit(
        DEFAULT_TOML,
        "liquidity_tier = \"medium\"",
        "liquidity_tier = \"medium\"\nmin_size = \"1\"",
    );
    assert!(matches!(
        Config::from_toml(&text),
        Err(ConfigError::Parse { message, .. }) if message.contains("unknown field `min_size`")
    ));
}

#[test]
fn a_missing_key_is_refused() {
    let text = edit(DEFAULT_TOML, "entry_ttl_bars = 2\n", "");
    assert!(matches!(
        Config::from_toml(&text),
        Err(ConfigError::Parse { message, .. }) if message.contains("entry_ttl_bars")
    ));
}

#[test]
fn invalid_toml_is_a_parse_error_naming_the_file() {
    let error = load_from(&[("bad.toml", "[run\n")], "bad.toml").expect_err("not TOML");
    assert!(
        matches!(&error, ConfigError::Parse { file, .. } if file == "bad.toml"),
        "{error}"
    );
}

#[test]
fn an_unreadable_file_is_a_read_error() {
    let error = load_from(&[], "nowhere.toml").expect_err("no file");
    assert_eq!(
        error,
        ConfigError::Read {
            file: "nowhere.toml".into(),
            message: "no such file nowhere.toml".into()
        }
    );
}

// ------------------------------------------------------------------------ extends

#[test]
fn extends_overrides_one_key_and_inherits_the_rest() {
    let child = "extends = \"default.toml\"\n[breakers]\nstale_data_max_age_s = 100\n";
    let files = [
        ("conf/default.toml", DEFAULT_TOML),
        ("conf/child.toml", child),
    ];
    // `extends` is relative to the directory of the file naming it.
    let loaded = load_from(&files, "conf/child.toml").expect("child loads");
    let mut expected = default_config();
    expected.breakers.stale_data_max_age_s = 100;
    assert_eq!(loaded, expected);
    // The rest of the [breakers] table is inherited key by key.
    assert_eq!(loaded.breakers.max_drawdown_pct, d("25"));
}

#[test]
fn extends_merges_nested_tables_and_replaces_arrays() {
    let child = concat!(
        "extends = \"default.toml\"\n",
        "[run]\nsymbols = [\"BTC-USD\"]\n",
        "[products.SOL-USD]\nbase_min_size = \"0.01\"\n",
        "[products.XRP-USD]\nbase_increment = \"0.000001\"\nquote_increment = \"0.0001\"\n",
        "base_min_size = \"1\"\nquote_min_size = \"1\"\nliquidity_tier = \"medium\"\n",
    );
    let files = [("default.toml", DEFAULT_TOML), ("child.toml", child)];
    let loaded = load_from(&files, "child.toml").expect("child loads");
    assert_eq!(loaded.run.symbols, vec![BTC.to_string()], "arrays replace");
    let sol = &loaded.products[SOL];
    assert_eq!(sol.base_min_size, d("0.01"));
    assert_eq!(
        sol.base_increment,
        d("0.001"),
        "inherited beside the override"
    );
    assert_eq!(loaded.products.len(), 5);
    assert_eq!(loaded.products["XRP-USD"].quote_increment, d("0.0001"));
}

#[test]
fn the_shipped_overrides_change_only_their_keys() {
    let default = default_config();
    let mut replay = default.clone();
    replay.breakers.stale_data_max_age_s = 14_400;
    assert_eq!(load_shipped("replay.toml").expect("replay.toml"), replay);
    let mut paper = default.clone();
    paper.breakers.stale_data_max_age_s = 21_600;
    paper.orders.entry_ttl_bars = 1;
    assert_eq!(load_shipped("paper.toml").expect("paper.toml"), paper);
    assert_eq!(load_shipped("default.toml").expect("default.toml"), default);
}

#[test]
fn an_extends_chain_is_validated_as_a_whole() {
    let child = "extends = \"default.toml\"\n[risk]\nmax_total_exposure = \"100\"\n";
    let files = [("default.toml", DEFAULT_TOML), ("child.toml", child)];
    assert_eq!(
        load_from(&files, "child.toml"),
        Err(ConfigError::Invalid(vec![problem(
            "risk.max_total_exposure",
            "100",
            "at least risk.max_position_notional (450)"
        )]))
    );
}

#[test]
fn an_extends_loop_is_refused() {
    let files = [
        ("a.toml", "extends = \"b.toml\"\n"),
        ("b.toml", "extends = \"a.toml\"\n"),
    ];
    let error = load_from(&files, "a.toml").expect_err("a loop");
    assert!(matches!(error, ConfigError::TooDeep { .. }), "{error:?}");
    assert!(error.to_string().contains("a loop?"), "{error}");
    let files = [("self.toml", "extends = \"self.toml\"\n")];
    assert!(matches!(
        load_from(&files, "self.toml"),
        Err(ConfigError::TooDeep { file }) if file == "self.toml"
    ));
}

#[test]
fn an_extends_chain_may_be_as_deep_as_the_limit() {
    // file0 extends file1 … extends fileN = the default. A chain of
    // EXTENDS_DEPTH_MAX + 1 files loads; one more is refused.
    let chain = |files: usize| -> Vec<(String, String)> {
        (0..files)
            .map(|i| {
                let text = if i + 1 == files {
                    DEFAULT_TOML.to_string()
                } else {
                    format!("extends = \"f{}.toml\"\n", i + 1)
                };
                (format!("f{i}.toml"), text)
            })
            .collect()
    };
    let load = |files: &[(String, String)]| {
        let borrowed: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        load_from(&borrowed, "f0.toml")
    };
    assert_eq!(load(&chain(EXTENDS_DEPTH_MAX + 1)), Ok(default_config()));
    assert!(matches!(
        load(&chain(EXTENDS_DEPTH_MAX + 2)),
        Err(ConfigError::TooDeep { .. })
    ));
}

#[test]
fn extends_must_name_a_file() {
    let files = [("a.toml", "extends = 3\n")];
    assert!(matches!(
        load_from(&files, "a.toml"),
        Err(ConfigError::Parse { message, .. }) if message.contains("`extends` must be a file name")
    ));
}

// ---------------------------------------------------------------------------- hash

#[test]
fn the_hash_is_blake3_of_the_canonical_text() {
    let config = default_config();
    let expected = blake3::hash(config.canonical_text().as_bytes());
    assert_eq!(config.hash().0, *expected.as_bytes());
}

#[test]
fn the_same_effective_configuration_has_the_same_hash() {
    let default = default_config();
    // Loaded from disk, or through an `extends` that overrides nothing new.
    assert_eq!(load_shipped("default.toml").unwrap().hash(), default.hash());
    let same = "extends = \"default.toml\"\n[breakers]\nstale_data_max_age_s = 28800\n";
    let files = [("default.toml", DEFAULT_TOML), ("same.toml", same)];
    assert_eq!(
        load_from(&files, "same.toml").unwrap().hash(),
        default.hash()
    );
    // Comments, blank lines and key order do not matter.
    let bare: String = DEFAULT_TOML
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let reordered = edit(
        &bare,
        "max_trades_per_hour = 2\nmax_trades_per_day = 6\n",
        "max_trades_per_day = 6\nmax_trades_per_hour = 2\n",
    );
    assert_eq!(
        Config::from_toml(&reordered).unwrap().hash(),
        default.hash()
    );
    // Nor does how a decimal is written: "0.010" is 0.01.
    let zeros = edit(
        DEFAULT_TOML,
        "risk_per_trade = \"0.01\"",
        "risk_per_trade = \"0.0100\"",
    );
    let zeros = edit(
        &zeros,
        "starting_capital = \"500\"",
        "starting_capital = \"500.00\"",
    );
    let zeros = Config::from_toml(&zeros).unwrap();
    assert_eq!(zeros, default);
    assert_eq!(zeros.canonical_text(), default.canonical_text());
    assert_eq!(zeros.hash(), default.hash());
    // And the hash is the same on every call.
    assert_eq!(default.hash(), default_config().hash());
}

/// Every leaf of the canonical TOML (with its dotted path), changed to another
/// value the parser still accepts.
fn mutations(
    table: &toml::Table,
    prefix: &str,
    out: &mut Vec<(String, toml::Table)>,
    root: &toml::Table,
) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let changed = match value {
            toml::Value::Table(inner) => {
                mutations(inner, &path, out, root);
                continue;
            }
            toml::Value::String(s) => toml::Value::String(match s.as_str() {
                "4h" => "1h".into(),
                "independent" => "portfolio".into(),
                "high" => "medium".into(),
                "medium" => "low".into(),
                "low" => "high".into(),
                other => match other.parse::<Decimal>() {
                    Ok(n) => (n + Decimal::ONE).to_string(),
                    Err(_) => format!("{other}X"),
                },
            }),
            toml::Value::Integer(i) => toml::Value::Integer(i + 1),
            toml::Value::Boolean(b) => toml::Value::Boolean(!b),
            toml::Value::Array(items) if items.is_empty() => {
                toml::Value::Array(vec![toml::Value::String("breakout".into())])
            }
            toml::Value::Array(items) => toml::Value::Array(items[..items.len() - 1].to_vec()),
            other => panic!("unexpected TOML value at {path}: {other:?}"),
        };
        let mut copy = root.clone();
        let mut cursor = &mut copy;
        let parts: Vec<&str> = path.split('.').collect();
        // Product names contain no dots, so the path splits cleanly.
        for part in &parts[..parts.len() - 1] {
            cursor = cursor
                .get_mut(*part)
                .and_then(|v| v.as_table_mut())
                .expect("path to a table");
        }
        cursor.insert(parts[parts.len() - 1].to_string(), changed);
        out.push((path, copy));
    }
}

#[test]
fn changing_any_knob_changes_the_hash() {
    let default = default_config();
    let root: toml::Table = default.canonical_text().parse().expect("canonical TOML");
    let mut changed = Vec::new();
    mutations(&root, "", &mut changed, &root);
    // Every leaf of every table: 11 sections, 4 products × 5 fields.
    assert!(changed.len() >= 70, "only {} knobs found", changed.len());
    let mut seen = std::collections::BTreeSet::new();
    seen.insert(default.hash());
    for (path, table) in &changed {
        let text = toml::to_string(table).expect("serialize");
        let config: Config = toml::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: mutated config does not parse: {e}"));
        assert_ne!(config, default, "{path}: the mutation changed nothing");
        assert!(
            seen.insert(config.hash()),
            "{path}: the hash did not change (or collided)"
        );
        // The canonical text of the changed configuration parses back to it.
        let back: Config = toml::from_str(&config.canonical_text()).expect("canonical parses");
        assert_eq!(back, config, "{path}");
    }
    // A product renamed is a change too.
    let mut renamed = default.clone();
    let sol = renamed.products.remove(SOL).unwrap();
    renamed.products.insert("SOL-USDC".into(), sol);
    assert_ne!(renamed.hash(), default.hash());
}

#[test]
fn the_canonical_text_parses_back_to_an_equal_config() {
    for name in ["default.toml", "replay.toml", "paper.toml"] {
        let config = load_shipped(name).unwrap();
        let text = config.canonical_text();
        assert!(
            !text.contains("extends"),
            "{name}: the effective config has no extends"
        );
        let back = Config::from_toml(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back, config, "{name}");
        assert_eq!(
            back.canonical_text(),
            text,
            "{name}: canonical text is a fixed point"
        );
        assert_eq!(back.hash(), config.hash());
    }
    // The three shipped files are three different configurations.
    let hashes: std::collections::BTreeSet<_> = ["default.toml", "replay.toml", "paper.toml"]
        .iter()
        .map(|n| load_shipped(n).unwrap().hash())
        .collect();
    assert_eq!(hashes.len(), 3);
}
