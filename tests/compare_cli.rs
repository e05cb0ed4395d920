//! `anx compare A B` through the binary, on real backtests of the shared
//! BTC-USD candles: a run against itself agrees everywhere; against a run with
//! four times the capital it differs first in sizing, and its trades match one
//! for one; against a run with higher fees it differs first in the after-cost
//! reward:risk check, and a threshold on the expectancy drop is crossed (exit
//! 1); bad input is one line and exit 2.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const RANGE: [&str; 6] = [
    "--symbols",
    "BTC-USD",
    "--start",
    "2024-05-01",
    "--end",
    "2025-03-01",
];

/// A backtest over `RANGE` into `dir/name` with `extra` arguments.
fn backtest(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let journal = dir.join(name);
    let cache = shared_candles();
    let mut args = vec!["replay", "run"];
    args.extend(RANGE);
    args.extend(["--cache-dir", path_str(&cache)]);
    args.extend(["--journal", path_str(&journal)]);
    args.extend(extra);
    let run = anx(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    journal
}

fn compare_json(a: &Path, b: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["compare", path_str(a), path_str(b), "--json"];
    args.extend(extra);
    let run = anx(&args);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    (run.code, json(&run.stdout))
}

#[test]
fn compare_aligns_decisions_matches_trades_and_judges_the_thresholds() {
    let work = tempfile::tempdir().unwrap();
    let a = backtest(work.path(), "a", &[]);
    let richer = backtest(work.path(), "richer", &["--starting-capital", "2000"]);
    // A run against itself: every decision and trade agrees, nothing crossed.
    let (code, same) = compare_json(&a, &a, &[]);
    assert_eq!(code, 0);
    assert_eq!(same["decisions"]["differ"], 0);
    assert!(
        same["decisions"]["agree"].as_u64().unwrap() > 1000,
        "{same}"
    );
    assert!(same["decisions"]["first_difference"].is_null());
    let matched = same["trades"]["matched"].as_array().unwrap().len();
    assert!(matched >= 10, "{matched} trades");
    assert_eq!(same["trades"]["fill_bps_mean"], 0);
    assert_eq!(same["crossed"], false);
    // Four times the capital: the first difference is the first decision
    // whose sizing reads the capital; the outcome is the same, the trades are
    // the same trades at four times the size.
    let (code, more) = compare_json(&a, &richer, &[]);
    assert_eq!(code, 0, "{more}");
    let first = &more["decisions"]["first_difference"];
    let fields: Vec<&str> = first["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"sizing capital"), "{fields:?}");
    assert!(!fields.contains(&"outcome"), "{fields:?}");
    assert!(first["glass_a"]["indicators"].as_array().unwrap().len() > 3);
    // Side by side: every field of both, the differing ones among them.
    let all = first["side_by_side"].as_array().unwrap();
    assert!(all.len() > fields.len() + 10, "{} fields", all.len());
    assert!(all
        .iter()
        .any(|f| f["field"] == "indicator atr" && f["a"] == f["b"]));
    assert!(first["glass_b"]["risk_checks"].as_array().unwrap().len() > 3);
    assert_eq!(more["trades"]["matched"].as_array().unwrap().len(), matched);
    assert_eq!(more["trades"]["only_a"].as_array().unwrap().len(), 0);
    for m in more["trades"]["matched"].as_array().unwrap() {
        assert_eq!(m["a"]["entry_price"], m["b"]["entry_price"], "{m}");
        assert_eq!(m["a"]["exit_reason"], m["b"]["exit_reason"], "{m}");
        assert_eq!(m["entry_fill_bps"], 0, "{m}");
    }
    let metric = |doc: &serde_json::Value, name: &str| -> serde_json::Value {
        doc["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no metric {name}"))
            .clone()
    };
    assert_eq!(metric(&more, "expectancy_r")["diff"], 0);
    assert_eq!(metric(&more, "trades_closed")["diff"], 0);
    // The text form says the same.
    let text = anx(&["compare", path_str(&a), path_str(&richer)]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout
            .contains("first difference BTC-USD on the candle of 2024-")
            && text.stdout.contains("  * sizing capital "),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains(&format!("trades           {matched} matched (0 identical)")),
        "{}",
        text.stdout
    );
}

#[test]
fn higher_fees_cross_the_expectancy_threshold_and_compare_exits_one() {
    let work = tempfile::tempdir().unwrap();
    let a = backtest(work.path(), "a", &[]);
    let config = work.path().join("fees.toml");
    let replay = repo_root().join("config/replay.toml");
    std::fs::write(
        &config,
        format!(
            "extends = {:?}\n\n[costs]\nmaker_fee_bps = \"60\"\ntaker_fee_bps = \"100\"\n",
            path_str(&replay)
        ),
    )
    .unwrap();
    let dear = backtest(work.path(), "dear", &["--config", path_str(&config)]);
    // The shipped thresholds judge expectancy only over 10 trades a side.
    let (code, shipped) = compare_json(&a, &dear, &[]);
    assert_eq!(code, 0, "{shipped}");
    assert_eq!(shipped["thresholds"][0]["check"], "expectancy_drop");
    assert!(shipped["thresholds"][0]["value"].is_null(), "{shipped}");
    // The first difference is the after-cost reward:risk check.
    let fields = shipped["decisions"]["first_difference"]["fields"].to_string();
    assert!(fields.contains("risk rr_after_costs"), "{fields}");
    // Thresholds that judge from 3 trades: B's expectancy is far below A's.
    let thresholds = work.path().join("thresholds.toml");
    let shipped_text = std::fs::read_to_string(repo_root().join("config/compare.toml")).unwrap();
    std::fs::write(
        &thresholds,
        shipped_text.replace("min_trades = 10", "min_trades = 3"),
    )
    .unwrap();
    let (code, strict) = compare_json(&a, &dear, &["--thresholds", path_str(&thresholds)]);
    assert_eq!(code, 1, "{strict}");
    assert_eq!(strict["crossed"], true);
    let verdict = &strict["thresholds"][0];
    assert_eq!(verdict["crossed"], true, "{verdict}");
    assert!(verdict["value"].as_f64().unwrap() > 50.0, "{verdict}");
    let text = anx(&[
        "compare",
        path_str(&a),
        path_str(&dear),
        "--thresholds",
        path_str(&thresholds),
    ]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains("expectancy_drop  CROSSED"),
        "{}",
        text.stdout
    );
}

#[test]
fn bad_input_is_one_line_and_exit_two() {
    let work = tempfile::tempdir().unwrap();
    let a = backtest(work.path(), "a", &[]);
    // Runs that do not meet in market time.
    let cache = shared_candles();
    let later = work.path().join("later");
    let run = anx(&[
        "replay",
        "run",
        "--symbols",
        "BTC-USD",
        "--start",
        "2025-06-01",
        "--end",
        "2025-08-01",
        "--cache-dir",
        path_str(&cache),
        "--journal",
        path_str(&later),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = anx(&["compare", path_str(&a), path_str(&later)]);
    run.assert_one_line_error(2);
    assert!(
        run.stderr.contains("share no market time"),
        "{}",
        run.stderr
    );
    // No such journal; a missing or malformed thresholds file.
    let run = anx(&["compare", path_str(&a), path_str(&work.path().join("nope"))]);
    run.assert_one_line_error(2);
    let run = anx(&[
        "compare",
        path_str(&a),
        path_str(&a),
        "--thresholds",
        "/nonexistent.toml",
    ]);
    run.assert_one_line_error(2);
    assert!(run.stderr.contains("/nonexistent.toml"), "{}", run.stderr);
    let bad = work.path().join("bad.toml");
    std::fs::write(&bad, "[thresholds]\nexpectancy_drop_pct_max = \"50\"\n").unwrap();
    let run = anx(&[
        "compare",
        path_str(&a),
        path_str(&a),
        "--thresholds",
        path_str(&bad),
    ]);
    run.assert_one_line_error(2);
    assert!(
        run.stderr.contains("fill_slippage_bps_max"),
        "{}",
        run.stderr
    );
}
