//! `anx replay run` end to end, and Gate A: on the real Coinbase 1h candles
//! (../shared/data/candles) resampled to 4h, for BTC-USD, ETH-USD and SOL-USD
//! over the full cached range with the shipped config, at least 100 closed
//! trades, every report metric present, 100% audit coverage, a journal that
//! verifies, and `anx journal replay` reproducing the state hash and the report.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn gate_a_one_hundred_trades_through_the_production_engine() {
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("gate-a");
    let cache = shared_candles().to_str().unwrap().to_string();
    let run = anx(&[
        "replay",
        "run",
        "--symbols",
        "BTC-USD,ETH-USD,SOL-USD",
        "--start",
        "2024-01-01",
        "--end",
        "2025-12-17",
        "--data-source",
        "cache",
        "--capital-mode",
        "independent",
        "--starting-capital",
        "500",
        "--run-mode",
        "replay_backtest",
        "--report-format",
        "json",
        "--cache-dir",
        &cache,
        "--journal",
        path_str(&journal),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = json(&run.stdout);
    let report = &out["report"];
    assert!(
        report["trades_closed"].as_u64().unwrap() >= 100,
        "Gate A needs 100+ closed trades: {}",
        report["trades_closed"]
    );
    for key in REPORT_METRICS {
        assert!(
            !report[key].is_null(),
            "report metric {key} missing or undefined: {report}"
        );
    }
    assert_eq!(out["audit_coverage"]["pct"], 100);
    assert_eq!(
        out["audit_coverage"]["complete"],
        out["audit_coverage"]["trades"]
    );
    // The trade list and the daily equity series, for an analyst's own tools:
    // every closed trade once, summing to the report's net PnL; one point per
    // UTC day, in order, ending at the final equity.
    let trades = out["trade_list"].as_array().unwrap();
    assert_eq!(
        trades.len() as u64,
        report["trades_closed"].as_u64().unwrap()
    );
    let net: rust_decimal::Decimal = trades
        .iter()
        .map(|t| {
            t["net_pnl"]
                .to_string()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum();
    let reported: rust_decimal::Decimal = report["net_pnl"].to_string().parse().unwrap();
    assert_eq!(net.round_dp(8), reported, "the trades sum to the report");
    let ids: std::collections::BTreeSet<&str> = trades
        .iter()
        .map(|t| t["trade_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), trades.len());
    let days = out["equity_daily"].as_array().unwrap();
    assert!(days.len() > 500, "{}", days.len());
    assert!(days
        .windows(2)
        .all(|w| w[0]["date"].as_str() < w[1]["date"].as_str()));
    let last: rust_decimal::Decimal = days[days.len() - 1]["equity"].to_string().parse().unwrap();
    let final_equity: rust_decimal::Decimal = report["final_equity"].to_string().parse().unwrap();
    assert_eq!(last.round_dp(8), final_equity);
    for key in [
        "run_id",
        "journal",
        "head_hash",
        "candles",
        "wall_s",
        "candles_per_s",
        "state_hash",
    ] {
        assert!(!out[key].is_null(), "missing {key}");
    }
    let verify = anx(&["journal", "verify", path_str(&journal), "--json"]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
    assert_eq!(json(&verify.stdout)["head_hash"], out["head_hash"]);
    let replayed = json(
        &anx(&[
            "journal",
            "replay",
            path_str(&journal),
            "--no-snapshot",
            "--format",
            "json",
        ])
        .stdout,
    );
    assert_eq!(
        replayed["state_hash"], out["state_hash"],
        "journal replay must reproduce the state hash"
    );
    assert_eq!(
        replayed["report"], out["report"],
        "journal replay must print exactly the replay's report"
    );
    assert_eq!(replayed["audit_coverage"], out["audit_coverage"]);
    assert_eq!(replayed["data_quality"], out["data_quality"]);
    // Deterministic: the same command gives the same journal, byte for byte.
    let again = work.path().join("again");
    let run = anx(&[
        "replay",
        "run",
        "--symbols",
        "BTC-USD,ETH-USD,SOL-USD",
        "--start",
        "2024-01-01",
        "--end",
        "2025-12-17",
        "--capital-mode",
        "independent",
        "--starting-capital",
        "500",
        "--report-format",
        "json",
        "--cache-dir",
        &cache,
        "--journal",
        path_str(&again),
    ]);
    assert_eq!(json(&run.stdout)["head_hash"], out["head_hash"]);
    let a = std::fs::read(journal.join("seg-00000000000000000001.anxj")).unwrap();
    let b = std::fs::read(again.join("seg-00000000000000000001.anxj")).unwrap();
    assert!(a == b, "two runs must write identical bytes");
}

#[test]
fn table_and_html_reports_come_from_the_journal() {
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("j");
    let cache = shared_candles().to_str().unwrap().to_string();
    let run = anx(&[
        "replay",
        "run",
        "--symbols",
        "BTC-USD,SOL-USD",
        "--start",
        "2024-06-01",
        "--end",
        "2025-06-01",
        "--cache-dir",
        &cache,
        "--journal",
        path_str(&journal),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("audit coverage"), "{}", run.stdout);
    // The table's report section is exactly what `anx journal replay` prints.
    let section = |text: &str| -> String {
        text.lines()
            .skip_while(|l| !l.starts_with("symbol "))
            .take_while(|l| !l.starts_with("state hash"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let replayed = anx(&["journal", "replay", path_str(&journal), "--no-snapshot"]);
    assert_eq!(section(&run.stdout), section(&replayed.stdout));
    assert!(!section(&run.stdout).is_empty());
    let html_path = work.path().join("report.html");
    let other = work.path().join("k");
    let run = anx(&[
        "replay",
        "run",
        "--symbols",
        "BTC-USD,SOL-USD",
        "--start",
        "2024-06-01",
        "--end",
        "2025-06-01",
        "--cache-dir",
        &cache,
        "--journal",
        path_str(&other),
        "--report-format",
        "html",
        "--report-out",
        path_str(&html_path),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        !html.contains("<script src") && !html.contains("src=\"http") && !html.contains("<link"),
        "the report must be self-contained"
    );
    for needle in [
        "id=\"equity\"",
        "id=\"chart-equity\"",
        "id=\"drawdown\"",
        "id=\"chart-price-0\"",
        "id=\"anx-chart-data\"",
        "id=\"symbols\"",
        "id=\"trades\"",
        "id=\"quality\"",
        "id=\"audit\"",
        "id=\"trails\"",
        "id=\"breakdowns\"",
        "<td>symbol BTC-USD</td>",
        "<td>exit stop_loss</td>",
        "no order, by reason",
    ] {
        assert!(html.contains(needle), "report lacks {needle}");
    }
    // The breakdowns' table: a header and a row per bucket, as in the text table.
    let table = html
        .split("id=\"breakdowns\"")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .unwrap();
    assert_eq!(table.matches("<th>").count(), 8, "{table}");
    assert!(table.matches("<tr>").count() > 5, "{table}");
    // Every trade links to its decision trail, and the trail is there.
    let links = html.matches("href=\"#trail-").count();
    let anchors = html.matches("<details id=\"trail-").count();
    assert!(
        links > 0 && links == anchors,
        "{links} links, {anchors} trails"
    );
    assert!(html.contains("decision on BTC-USD"));
}

#[test]
fn bad_input_is_one_line_and_touches_nothing() {
    let work = tempfile::tempdir().unwrap();
    let cache = shared_candles().to_str().unwrap().to_string();
    let journal = work.path().join("never");
    let base = [
        "replay",
        "run",
        "--cache-dir",
        cache.as_str(),
        "--journal",
        path_str(&journal),
    ];
    let with = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra);
        anx(&args)
    };
    with(&["--start", "2024-01-01", "--end", "2023-01-01"]).assert_one_line_error(2);
    with(&["--start", "yesterday", "--end", "2025-01-01"]).assert_one_line_error(2);
    with(&[
        "--start",
        "2024-01-01",
        "--end",
        "2025-01-01",
        "--symbols",
        "DOGE-USD",
    ])
    .assert_one_line_error(2);
    with(&[
        "--start",
        "2024-01-01",
        "--end",
        "2025-01-01",
        "--starting-capital",
        "lots",
    ])
    .assert_one_line_error(2);
    with(&[
        "--start",
        "2024-01-01",
        "--end",
        "2025-01-01",
        "--run-mode",
        "paper-live",
    ])
    .assert_one_line_error(2);
    assert!(
        !journal.exists(),
        "a refused replay must not create its journal"
    );
    // A configuration with several problems lists all of them and creates nothing.
    let bad = work.path().join("bad.toml");
    std::fs::write(&bad, format!("extends = \"{}\"\n[risk]\nrisk_per_trade = \"1.5\"\n[pacing]\nmax_trades_per_hour = 0\n", repo_root().join("config/default.toml").display())).unwrap();
    let run = with(&[
        "--start",
        "2024-01-01",
        "--end",
        "2025-01-01",
        "--config",
        path_str(&bad),
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("risk.risk_per_trade = 1.5")
            && run.stderr.contains("pacing.max_trades_per_hour = 0"),
        "{}",
        run.stderr
    );
    assert!(!journal.exists());
    // A malformed cache file is an error naming the file and the line.
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("COINBASE_BTC-USD_1h.csv"), "timestamp,unix,open,high,low,close,volume\n2024-01-01T00:00:00Z,1704067200,1,2,0.5,1.5,10\n2024-01-01T01:00:00Z,1704070800,1,2,oops,1.5,10\n").unwrap();
    let run = anx(&[
        "replay",
        "run",
        "--symbols",
        "BTC-USD",
        "--start",
        "2024-01-01",
        "--end",
        "2024-02-01",
        "--cache-dir",
        path_str(broken.path()),
        "--journal",
        path_str(&work.path().join("b")),
    ]);
    run.assert_one_line_error(2);
    assert!(
        run.stderr.contains("COINBASE_BTC-USD_1h.csv:3"),
        "{}",
        run.stderr
    );
}

#[test]
fn any_cached_symbol_replays_with_the_default_product_spec() {
    let work = tempfile::tempdir().unwrap();
    let cache = shared_candles().to_str().unwrap().to_string();
    let journal = work.path().join("binance");
    let run = anx(&[
        "replay",
        "run",
        "--exchange",
        "BINANCE",
        "--symbols",
        "BTCUSDT,ETHUSDT",
        "--granularity",
        "4h",
        "--start",
        "2021-01-01",
        "--end",
        "2022-01-01",
        "--cache-dir",
        &cache,
        "--journal",
        path_str(&journal),
        "--report-format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = json(&run.stdout);
    // 2 symbols x 365 days x 6 bars, less the bars lost to Binance's outages.
    let candles = out["candles"].as_u64().unwrap();
    assert!((4300..=4380).contains(&candles), "{candles} candles");
    assert!(out["data_quality"]["BTCUSDT"]["candles"].as_u64().unwrap() > 2100);
    let config = anx(&["journal", "export", path_str(&journal)]).stdout;
    let run_started: Value = json(config.lines().next().unwrap());
    let text = run_started["body"]["config_text"].as_str().unwrap();
    assert!(
        text.contains("[products.default]"),
        "the default spec is journaled with the run"
    );
}
