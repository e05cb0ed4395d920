//! `anx live`'s start-up against the fake Coinbase exchange: credentials, the
//! exchange's products and the account are checked before anything is
//! journaled; what the run trades with; `--preview`; the safety caps and the
//! product's trading state, obeyed before anything is sent.
//!
//! - a missing, malformed or wrong key, and a clock off by minutes, are one
//!   clear error (exit 2) and leave no journal;
//! - no private key reaches the journal, stdout or stderr;
//! - a product spec that disagrees with Coinbase's, and an account too small
//!   to trade, are start-up errors naming both values;
//! - the run trades with the lesser of the configured and the held capital;
//! - `--preview` sends every order to the preview endpoint and creates none;
//! - an entry above `live.order_notional_max` is refused before sending, and
//!   a product in cancel-only takes no entry.

mod common;

use anx_journal::Event;
use common::live::*;
use common::*;
use std::path::{Path, PathBuf};

/// `anx live` run to its end (for starts that must be refused).
fn live_refused(journal: &Path, fake: &Fake, extra: &[&str]) -> Run {
    let config = config();
    let mut args = vec![
        "live",
        "--config",
        path_str(&config),
        "--journal",
        path_str(journal),
        "--api-url",
        &fake.url,
        "--request-timeout",
        "2",
    ];
    args.extend_from_slice(extra);
    // A start that is not refused would trade on: bounded.
    anx_within(&repo_root(), &args, std::time::Duration::from_secs(30))
}

/// The feed in a fresh cache, and the fake on it.
fn fake_with(temp: &Path, extra: &[&str]) -> Fake {
    let cache = temp.join("cache");
    write_feed(&cache);
    Fake::start(&cache, extra)
}

fn assert_no_journal(journal: &Path) {
    let files = std::fs::read_dir(journal)
        .map(|d| d.count())
        .unwrap_or_default();
    assert_eq!(files, 0, "{} must hold nothing", journal.display());
}

/// The lines of a key file's private key (the secret's body).
fn secret_lines(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(key(name)).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["privateKey"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 8)
        .map(str::to_string)
        .collect()
}

#[test]
fn a_wrong_key_is_one_clear_error_and_journals_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let fake = fake_with(temp.path(), &[]);
    let journal = temp.path().join("live");
    let other = key("ecdsa-other.json");
    let run = live_refused(&journal, &fake, &["--key-file", path_str(&other)]);
    run.assert_one_line_error(2);
    assert!(
        run.stderr.contains("HTTP 401") && run.stderr.contains("wrong or revoked key"),
        "{}",
        run.stderr
    );
    assert_no_journal(&journal);
    assert!(fake.state()["auth_failures"].as_u64().unwrap() >= 1);
}

#[test]
fn a_clock_off_by_minutes_is_named_with_its_skew() {
    let temp = tempfile::tempdir().unwrap();
    // The exchange's clock (its Date header, and what tokens are checked
    // against) is ten minutes ahead of this machine's.
    let fake = fake_with(temp.path(), &["--auth-clock-offset-s", "600"]);
    let journal = temp.path().join("live");
    let run = live_refused(
        &journal,
        &fake,
        &["--key-file", path_str(&key("ecdsa.json"))],
    );
    run.assert_one_line_error(2);
    assert!(
        run.stderr.contains("clock is") && run.stderr.contains("behind the exchange's"),
        "{}",
        run.stderr
    );
    let skew: i64 = run
        .stderr
        .split("clock is ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no skew figure: {}", run.stderr));
    assert!((595..=605).contains(&skew), "{skew}: {}", run.stderr);
    assert_no_journal(&journal);
}

#[test]
fn missing_and_malformed_keys_are_refused_before_anything_is_sent() {
    let temp = tempfile::tempdir().unwrap();
    let fake = fake_with(temp.path(), &[]);
    let journal = temp.path().join("live");
    // No key at all (and none in the environment: `anx` runs without them).
    let run = live_refused(&journal, &fake, &[]);
    run.assert_one_line_error(2);
    assert!(run.stderr.contains("COINBASE_API_KEY"), "{}", run.stderr);
    // A key file whose private key is garbage: refused without quoting it.
    let bad = temp.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"name": "organizations/x/apiKeys/y", "privateKey": "-----BEGIN EC PRIVATE KEY-----\nTOPSECRETTOPSECRET\n-----END EC PRIVATE KEY-----"}"#,
    )
    .unwrap();
    let run = live_refused(&journal, &fake, &["--key-file", path_str(&bad)]);
    run.assert_one_line_error(2);
    assert!(
        run.stderr.contains("not a valid P-256 key"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("TOPSECRET"), "{}", run.stderr);
    let run = live_refused(&journal, &fake, &["--key-file", "/nonexistent/key.json"]);
    run.assert_one_line_error(2);
    assert_no_journal(&journal);
    let state = fake.state();
    let requests = state["requests"].as_array().unwrap();
    assert!(
        requests.is_empty(),
        "nothing reached the exchange: {requests:?}"
    );
}

#[test]
fn a_product_spec_that_disagrees_with_coinbase_is_refused_naming_both() {
    let temp = tempfile::tempdir().unwrap();
    let fake = fake_with(temp.path(), &[]);
    let config = temp.path().join("wrong-spec.toml");
    std::fs::write(
        &config,
        format!(
            "extends = \"{}\"\n\n[products.BTC-USD]\nbase_increment = \"0.0001\"\nquote_increment = \"0.01\"\nbase_min_size = \"0.0001\"\nquote_min_size = \"1\"\nliquidity_tier = \"high\"\n",
            path_str(&common::live::config())
        ),
    )
    .unwrap();
    let journal = temp.path().join("live");
    let run = anx_within(
        &repo_root(),
        &[
            "live",
            "--config",
            path_str(&config),
            "--journal",
            path_str(&journal),
            "--api-url",
            &fake.url,
            "--key-file",
            path_str(&key("ecdsa.json")),
        ],
        std::time::Duration::from_secs(30),
    );
    run.assert_one_line_error(2);
    assert!(
        run.stderr
            .contains("products.BTC-USD.base_increment is 0.0001")
            && run.stderr.contains("Coinbase's is 0.00000001"),
        "{}",
        run.stderr
    );
    assert_no_journal(&journal);
}

#[test]
fn an_account_too_small_to_trade_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    // 12 USD for two symbols: 6 each, below ten minimum orders (10 USD).
    let fake = fake_with(temp.path(), &["--usd", "12"]);
    let journal = temp.path().join("live");
    let run = live_refused(
        &journal,
        &fake,
        &["--key-file", path_str(&key("ecdsa.json"))],
    );
    run.assert_one_line_error(2);
    assert!(
        run.stderr.contains("the account holds 12 USD")
            && run.stderr.contains("too little to trade"),
        "{}",
        run.stderr
    );
    assert_no_journal(&journal);
}

/// Starts `anx live` on a fresh journal and waits for its first decisions.
fn started(temp: &Path, fake: &Fake, extra: &[&str]) -> (PathBuf, std::process::Child) {
    let journal = temp.join("live");
    let mut child = spawn_live(&journal, fake, extra);
    wait_for_decisions(&journal, &mut child, FEED_START_S + HOUR_S);
    (journal, child)
}

#[test]
fn the_run_trades_with_the_lesser_of_its_capital_and_the_accounts_and_journals_the_account() {
    let temp = tempfile::tempdir().unwrap();
    // 600 USD for two symbols: 300 each, less than the configured 500.
    let fake = fake_with(temp.path(), &["--usd", "600"]);
    let (journal, mut child) = started(temp.path(), &fake, &[]);
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
    let all = events(&journal);
    let run = all
        .iter()
        .find_map(|e| match &e.event {
            Event::RunStarted(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(run.starting_capital.to_string(), "300");
    assert!(run.created_by.ends_with(" (live)"), "{}", run.created_by);
    let startup: Vec<&anx_journal::Reconciliation> = all
        .iter()
        .filter_map(|e| match &e.event {
            Event::Reconciliation(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(startup.len(), SYMBOLS.len());
    for r in startup {
        assert!(
            r.detail.contains("USD 600 (available 600, hold 0)")
                && r.detail.contains("the run trades with 300 USD"),
            "{}",
            r.detail
        );
    }
    let status = anx(&["status", path_str(&journal)]);
    assert!(
        status.stdout.contains("live trader run") && status.stdout.contains("NOT running"),
        "{}",
        status.stdout
    );
    // A restart keeps the run's capital (the file's is larger).
    let mut child = spawn_live(&journal, &fake, &[]);
    wait_for("the restart's session", &journal, &mut child, || {
        events(&journal).iter().any(
            |e| matches!(&e.event, Event::Session(s) if s.reason == "restart after a clean stop"),
        )
    });
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
}

#[test]
fn no_private_key_reaches_the_journal_or_the_output() {
    let temp = tempfile::tempdir().unwrap();
    let fake = fake_with(temp.path(), &[]);
    let journal = temp.path().join("live");
    // Through the environment this time (Ed25519, Coinbase's base64 export).
    let text = std::fs::read_to_string(key("ed25519.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    drop(fake);
    let cache = temp.path().join("cache-ed");
    write_feed(&cache);
    let fake_ed = Fake::start_keyed(&cache, "ed25519.json", &[]);
    let log = journal.with_extension("log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_anx"))
        .args([
            "live",
            "--config",
            path_str(&config()),
            "--journal",
            path_str(&journal),
            "--api-url",
            &fake_ed.url,
            "--poll-interval",
            "0.02",
            "--requests-per-s",
            "1000",
            "-vv",
        ])
        .current_dir(repo_root())
        .env("COINBASE_API_KEY", value["name"].as_str().unwrap())
        .env("COINBASE_API_SECRET", value["privateKey"].as_str().unwrap())
        .env_remove("RUST_LOG")
        .stdout(std::fs::File::create(temp.path().join("stdout")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    drive(
        &fake_ed,
        &journal,
        &mut child,
        FEED_START_S + HOUR_S,
        FEED_START_S + 130 * HOUR_S,
    );
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
    assert!(
        events(&journal)
            .iter()
            .any(|e| matches!(e.event, Event::OrderAcknowledged(_))),
        "the run placed orders (its requests were signed)"
    );
    let secret = value["privateKey"].as_str().unwrap();
    let mut haystacks: Vec<(String, Vec<u8>)> = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    haystacks.push(("stderr".into(), std::fs::read(&log).unwrap()));
    haystacks.push((
        "stdout".into(),
        std::fs::read(temp.path().join("stdout")).unwrap(),
    ));
    let needles: Vec<&str> = vec![secret, &secret[..24], &secret[20..44]];
    for (name, bytes) in &haystacks {
        let text = String::from_utf8_lossy(bytes);
        for needle in &needles {
            assert!(!text.contains(needle), "{name} holds the private key");
        }
    }
    assert!(
        std::fs::read_to_string(&log).unwrap().contains("API key"),
        "the log names the key (by name) so the test looked at real output"
    );
    // The PEM keys' bodies, likewise never printed by a start that fails.
    let run = live_refused(
        &temp.path().join("other"),
        &fake_ed,
        &["--key-file", path_str(&key("ecdsa.json"))],
    );
    for line in secret_lines("ecdsa.json") {
        assert!(!run.stderr.contains(&line) && !run.stdout.contains(&line));
    }
}

#[test]
fn preview_sends_orders_to_the_preview_endpoint_and_creates_none() {
    let temp = tempfile::tempdir().unwrap();
    let fake = fake_with(temp.path(), &[]);
    let journal = temp.path().join("live");
    let mut child = spawn_live(&journal, &fake, &["--preview"]);
    drive(
        &fake,
        &journal,
        &mut child,
        FEED_START_S + HOUR_S,
        FEED_START_S + 130 * HOUR_S,
    );
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
    let all = events(&journal);
    let placed = all
        .iter()
        .filter(|e| matches!(e.event, Event::OrderPlaced(_)))
        .count();
    let previewed: Vec<&anx_journal::OrderCancelled> = all
        .iter()
        .filter_map(|e| match &e.event {
            Event::OrderCancelled(c) if c.reason.starts_with("preview only, not placed") => Some(c),
            _ => None,
        })
        .collect();
    assert!(placed >= 1, "the run decided to enter");
    assert_eq!(previewed.len(), placed, "every order previewed once");
    assert!(
        previewed[0].reason.contains("preview_id"),
        "{}",
        previewed[0].reason
    );
    let state = fake.state();
    assert!(
        state["creates"].as_object().unwrap().is_empty(),
        "no order created"
    );
    assert!(state["orders"].as_array().unwrap().is_empty());
    assert!(
        !all.iter().any(|e| matches!(e.event, Event::FailClosed(_))),
        "an accepted preview does not fail a symbol closed"
    );
    // A preview journal resumes only as a preview.
    let run = live_refused(
        &journal,
        &fake,
        &["--key-file", path_str(&key("ecdsa.json"))],
    );
    run.assert_one_line_error(2);
    assert!(
        run.stderr.contains("resume it with --preview"),
        "{}",
        run.stderr
    );
}

#[test]
fn caps_and_the_products_trading_state_are_obeyed_before_sending() {
    let temp = tempfile::tempdir().unwrap();
    let fake = fake_with(temp.path(), &[]);
    let config = temp.path().join("tight.toml");
    std::fs::write(
        &config,
        format!(
            "extends = \"{}\"\n\n[live]\norder_notional_max = \"20\"\nexposure_max = \"2000\"\nprotection_wait_s = 60\n",
            path_str(&common::live::config())
        ),
    )
    .unwrap();
    let journal = temp.path().join("live");
    let mut child = spawn_live_with(&journal, &fake, &config, &[]);
    drive(
        &fake,
        &journal,
        &mut child,
        FEED_START_S + HOUR_S,
        FEED_START_S + 130 * HOUR_S,
    );
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
    let all = events(&journal);
    let refused: Vec<&anx_journal::OrderRejected> = all
        .iter()
        .filter_map(|e| match &e.event {
            Event::OrderRejected(r) => Some(r),
            _ => None,
        })
        .collect();
    assert!(!refused.is_empty(), "an entry was refused");
    assert!(
        refused[0].reason.starts_with("ANX_CAP_ORDER_NOTIONAL")
            && refused[0]
                .reason
                .contains("above live.order_notional_max 20"),
        "{}",
        refused[0].reason
    );
    assert!(all.iter().any(
        |e| matches!(&e.event, Event::FailClosed(f) if f.reason.contains("ANX_CAP_ORDER_NOTIONAL"))
    ));
    assert!(
        fake.state()["creates"].as_object().unwrap().is_empty(),
        "nothing sent"
    );

    // Cancel-only: no entry is sent.
    let temp2 = tempfile::tempdir().unwrap();
    let fake = fake_with(temp2.path(), &[]);
    fake.control(
        "POST",
        "/fake/flags",
        r#"{"product_id": "BTC-USD", "cancel_only": true}"#,
    );
    fake.control(
        "POST",
        "/fake/flags",
        r#"{"product_id": "ETH-USD", "cancel_only": true}"#,
    );
    let journal = temp2.path().join("live");
    let mut child = spawn_live(&journal, &fake, &[]);
    drive(
        &fake,
        &journal,
        &mut child,
        FEED_START_S + HOUR_S,
        FEED_START_S + 130 * HOUR_S,
    );
    assert!(sigterm(&mut child).success(), "{}", log_of(&journal));
    let all = events(&journal);
    assert!(all.iter().any(|e| matches!(&e.event, Event::OrderRejected(r) if r.reason.starts_with("PRODUCT_CANCEL_ONLY"))));
    assert!(
        fake.state()["creates"].as_object().unwrap().is_empty(),
        "nothing sent"
    );
}
