//! The candle loader (`data.rs`): UTC-aligned resampling with exact OHLCV
//! aggregation, incomplete buckets dropped, row validation and its findings,
//! malformed files named by file and line, the choice of the cache file, and
//! one check against the real Coinbase 1h file in the shared data directory.

mod common;

use anx_journal::{Candle, DataQuality, QualityIssue, UnixMs};
use anx_replays::data::{find_source, CandleStream, DataError, Item, Source};
use common::*;
use rust_decimal::Decimal;
use std::io::BufRead;
use std::path::{Path, PathBuf};

const FILE: &str = "mem/SIM_BTC-USD_1h.csv";
const SYMBOL: &str = "BTC-USD";
const H1: u32 = 3600;
const H4: u32 = 14_400;
/// Far enough out to never cut a bucket.
const END: UnixMs = T0 + 365 * 24 * HOUR_MS;

fn open(
    text: &str,
    source_s: u32,
    target_s: u32,
    start_ms: UnixMs,
    end_ms: UnixMs,
) -> Result<CandleStream, DataError> {
    let reader: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
    CandleStream::from_reader(reader, FILE, SYMBOL, source_s, target_s, start_ms, end_ms)
}

/// Every item of a 1h → 4h stream over `[start_ms, end_ms)`, or the first error.
fn items_in(text: &str, start_ms: UnixMs, end_ms: UnixMs) -> Result<Vec<Item>, DataError> {
    open(text, H1, H4, start_ms, end_ms)?.collect()
}

fn items(text: &str) -> Vec<Item> {
    items_in(text, T0, END).expect("well-formed")
}

fn candles(items: &[Item]) -> Vec<Candle> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Candle(c) => Some(c.clone()),
            Item::Finding { .. } => None,
        })
        .collect()
}

fn findings(items: &[Item]) -> Vec<(UnixMs, DataQuality)> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Finding { market_ms, finding } => Some((*market_ms, finding.clone())),
            Item::Candle(_) => None,
        })
        .collect()
}

fn issues(items: &[Item]) -> Vec<QualityIssue> {
    findings(items).into_iter().map(|(_, f)| f.issue).collect()
}

/// The market time an item is known at (a candle: its close).
fn item_ms(item: &Item) -> UnixMs {
    match item {
        Item::Candle(c) => c.open_ms + i64::from(c.granularity_s) * 1000,
        Item::Finding { market_ms, .. } => *market_ms,
    }
}

#[track_caller]
fn assert_time_ordered(items: &[Item]) {
    let times: Vec<UnixMs> = items.iter().map(item_ms).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "items must come out in market-time order, got times {:?} for {items:#?}",
        times.iter().map(|t| (t - T0) / HOUR_MS).collect::<Vec<_>>()
    );
}

fn hour_s(hour: i64) -> i64 {
    T0_S + hour * HOUR_S
}

fn hour_ms(hour: i64) -> UnixMs {
    T0 + hour * HOUR_MS
}

/// Twelve hourly rows (00:00 … 11:00) with the extremes inside the buckets.
const HOURS: [(&str, &str, &str, &str, &str); 12] = [
    // bucket 00:00
    ("100", "101", "99", "100.5", "1.5"),
    ("100.5", "104", "100", "103", "2"),
    ("103", "103.5", "97.25", "98", "0.25"),
    ("98", "99", "97.5", "98.75", "3"),
    // bucket 04:00
    ("98.75", "99", "98", "98.5", "1"),
    ("98.5", "98.6", "95", "96", "1"),
    ("96", "110", "95.5", "109", "1"),
    ("109", "109.5", "108", "108.25", "1.125"),
    // bucket 08:00
    ("108.25", "108.3", "108.1", "108.2", "0.001"),
    ("108.2", "108.4", "107.9", "108", "0.002"),
    ("108", "108.9", "107.8", "108.7", "0.003"),
    ("108.7", "108.8", "108.05", "108.1", "0.004"),
];

/// The row of `HOURS[hour]`.
fn hour_row(hour: usize) -> String {
    let (o, h, l, c, v) = HOURS[hour];
    row(hour_s(hour as i64), o, h, l, c, v)
}

/// The rows of the given hours, in the given order.
fn rows_of(hours: &[usize]) -> Vec<String> {
    hours.iter().map(|h| hour_row(*h)).collect()
}

fn candle_4h(bucket_hour: i64, o: &str, h: &str, l: &str, c: &str, v: &str) -> Candle {
    Candle {
        symbol: SYMBOL.into(),
        granularity_s: H4,
        open_ms: hour_ms(bucket_hour),
        open: d(o),
        high: d(h),
        low: d(l),
        close: d(c),
        volume: d(v),
    }
}

fn bucket_00() -> Candle {
    candle_4h(0, "100", "104", "97.25", "98.75", "6.75")
}

fn bucket_04() -> Candle {
    candle_4h(4, "98.75", "110", "95", "108.25", "4.125")
}

fn bucket_08() -> Candle {
    candle_4h(8, "108.25", "108.9", "107.8", "108.1", "0.01")
}

// ---------------------------------------------------------------- resampling

#[test]
fn hourly_rows_resample_into_utc_aligned_4h_candles_with_exact_ohlcv() {
    let all: Vec<usize> = (0..12).collect();
    let out = items(&csv(&rows_of(&all)));
    assert_eq!(candles(&out), vec![bucket_00(), bucket_04(), bucket_08()]);
    assert!(findings(&out).is_empty(), "{out:#?}");
}

#[test]
fn a_range_starting_or_ending_mid_bucket_yields_only_whole_buckets() {
    let all: Vec<usize> = (0..12).collect();
    let text = csv(&rows_of(&all));
    // The range starts at 02:00: the 00:00 bucket is missing its first two hours.
    let late_start = candles(&items_in(&text, hour_ms(2), END).unwrap());
    assert_eq!(late_start, vec![bucket_04(), bucket_08()]);
    // The range ends at 10:00: the 08:00 bucket would span past it.
    let early_end = candles(&items_in(&text, T0, hour_ms(10)).unwrap());
    assert_eq!(early_end, vec![bucket_00(), bucket_04()]);
    // An end exactly on a boundary keeps the bucket that closes there.
    let on_boundary = candles(&items_in(&text, T0, hour_ms(8)).unwrap());
    assert_eq!(on_boundary, vec![bucket_00(), bucket_04()]);
}

#[test]
fn a_file_starting_mid_bucket_does_not_shift_the_buckets() {
    // The first row is 02:00: buckets stay on 00/04/08 UTC, never 02/06/10.
    let rows = rows_of(&(2..12).collect::<Vec<_>>());
    let out = items(&csv(&rows));
    assert_eq!(candles(&out), vec![bucket_04(), bucket_08()]);
}

#[test]
fn a_bucket_missing_any_one_hour_is_not_a_candle() {
    for missing in 4..8 {
        let hours: Vec<usize> = (0..12).filter(|h| *h != missing).collect();
        let out = items(&csv(&rows_of(&hours)));
        assert_eq!(
            candles(&out),
            vec![bucket_00(), bucket_08()],
            "hour {missing} missing"
        );
        // The hole is reported once, with its size.
        let (after, before) = (missing as i64 - 1, missing as i64 + 1);
        assert_eq!(
            issues(&out),
            vec![QualityIssue::Gap {
                after_ms: hour_ms(after),
                before_ms: hour_ms(before),
                missing_bars: 1,
            }],
            "hour {missing} missing"
        );
    }
}

#[test]
fn quarter_hours_resample_to_hours_aligned_to_the_utc_hour() {
    // 15m rows from 00:15 to 02:00: the 00:00 hour lacks 00:00, the 02:00 hour
    // has one row; only 01:00 is whole.
    let q = 900;
    let rows: Vec<String> = (1..=8)
        .map(|i| {
            let price = Decimal::from(100 + i);
            let (o, c) = (price.to_string(), (price + Decimal::ONE).to_string());
            let h = (price + Decimal::TWO).to_string();
            row(T0_S + i * q, &o, &h, &o, &c, &i.to_string())
        })
        .collect();
    let out: Vec<Item> = open(&csv(&rows), 900, H1, T0, END)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        candles(&out),
        vec![Candle {
            symbol: SYMBOL.into(),
            granularity_s: H1,
            open_ms: T0 + HOUR_MS,
            open: d("104"),
            high: d("109"),
            low: d("104"),
            close: d("108"),
            volume: d("22"),
        }]
    );
}

#[test]
fn source_and_target_of_the_same_granularity_pass_rows_through() {
    let out: Vec<Item> = open(&csv(&rows_of(&[0, 1, 2])), H1, H1, T0, END)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let got = candles(&out);
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].open_ms, hour_ms(1));
    assert_eq!(got[1].granularity_s, H1);
    assert_eq!(
        (
            got[1].open,
            got[1].high,
            got[1].low,
            got[1].close,
            got[1].volume
        ),
        (d("100.5"), d("104"), d("100"), d("103"), d("2"))
    );
}

// ------------------------------------------------------------------ findings

#[test]
fn a_duplicate_row_is_reported_and_dropped() {
    let mut rows = rows_of(&[0, 1]);
    // Same time as 01:00, different (wild) values: must not reach the candle.
    rows.push(row(hour_s(1), "100.5", "999", "1", "50", "100"));
    rows.extend(rows_of(&[2, 3]));
    let out = items(&csv(&rows));
    assert_eq!(candles(&out), vec![bucket_00()]);
    assert_eq!(
        findings(&out),
        vec![(
            hour_ms(2),
            DataQuality {
                symbol: SYMBOL.into(),
                granularity_s: H4,
                issue: QualityIssue::Duplicate {
                    open_ms: hour_ms(1)
                },
                // Header is line 1; the duplicate is the third data row.
                source: format!("{FILE}:4"),
                detail: "repeated bar dropped".into(),
            }
        )]
    );
}

#[test]
fn time_going_backwards_is_reported_as_out_of_order_and_dropped() {
    let rows = rows_of(&[0, 2, 1, 3, 4, 5, 6, 7]);
    let out = items(&csv(&rows));
    assert_eq!(
        issues(&out),
        vec![
            QualityIssue::Gap {
                after_ms: hour_ms(0),
                before_ms: hour_ms(2),
                missing_bars: 1,
            },
            QualityIssue::OutOfOrder {
                open_ms: hour_ms(1),
                previous_ms: hour_ms(2),
            },
        ]
    );
    // 01:00 was dropped, so the first bucket is incomplete.
    assert_eq!(candles(&out), vec![bucket_04()]);
    let out_of_order = &findings(&out)[1].1;
    assert_eq!(out_of_order.source, format!("{FILE}:4"));
}

#[test]
fn missing_bars_are_one_gap_with_the_missing_count() {
    // 04:00 … 07:00 missing: four bars, one whole bucket.
    let out = items(&csv(&rows_of(&[0, 1, 2, 3, 8, 9, 10, 11])));
    assert_eq!(candles(&out), vec![bucket_00(), bucket_08()]);
    assert_eq!(
        findings(&out),
        vec![(
            hour_ms(9),
            DataQuality {
                symbol: SYMBOL.into(),
                granularity_s: H4,
                issue: QualityIssue::Gap {
                    after_ms: hour_ms(3),
                    before_ms: hour_ms(8),
                    missing_bars: 4,
                },
                source: format!("{FILE}:6"),
                detail: "4 source bar(s) missing".into(),
            }
        )]
    );
}

#[test]
fn impossible_rows_are_reported_as_invalid_and_dropped() {
    let cases = [
        ("high below low", ("103", "97", "98", "98", "1")),
        ("high below close", ("103", "103.5", "97.25", "104", "1")),
        ("low above open", ("103", "103.5", "103.2", "103.4", "1")),
        ("low above close", ("103", "103.5", "98.5", "98", "1")),
        ("zero open", ("0", "103.5", "97.25", "98", "1")),
        ("negative close", ("103", "103.5", "97.25", "-98", "1")),
        ("zero low", ("103", "103.5", "0", "98", "1")),
        ("negative volume", ("103", "103.5", "97.25", "98", "-0.25")),
    ];
    for (label, (o, h, l, c, v)) in cases {
        let mut rows = rows_of(&[0, 1]);
        rows.push(row(hour_s(2), o, h, l, c, v));
        rows.extend(rows_of(&[3, 4, 5, 6, 7]));
        let out = items(&csv(&rows));
        // The bad 02:00 row is dropped: its bucket is incomplete, the next is whole.
        assert_eq!(candles(&out), vec![bucket_04()], "{label}");
        let found = findings(&out);
        assert_eq!(found.len(), 2, "{label}: {found:#?}");
        assert_eq!(found[0].0, hour_ms(3), "{label}");
        assert_eq!(
            found[0].1.issue,
            QualityIssue::InvalidCandle {
                open_ms: hour_ms(2)
            },
            "{label}"
        );
        assert_eq!(found[0].1.source, format!("{FILE}:4"), "{label}");
        assert_eq!(
            found[0].1.detail,
            format!("o {o} h {h} l {l} c {c} v {v}"),
            "{label}"
        );
        // The dropped bar is a hole in the stream, reported once.
        assert_eq!(
            found[1].1.issue,
            QualityIssue::Gap {
                after_ms: hour_ms(1),
                before_ms: hour_ms(3),
                missing_bars: 1,
            },
            "{label}"
        );
    }
}

#[test]
fn a_row_off_the_source_grid_is_invalid_and_cannot_complete_a_bucket() {
    // 00:00, 00:30 (not an hourly time), 01:00, 02:00: four rows in the 00:00
    // bucket, yet 03:00 is missing; the bucket is not whole.
    let mut rows = rows_of(&[0]);
    rows.push(row(T0_S + 1800, "100.2", "100.4", "100.1", "100.3", "1"));
    rows.extend(rows_of(&[1, 2, 4, 5, 6, 7]));
    let out = items(&csv(&rows));
    assert_eq!(candles(&out), vec![bucket_04()]);
    assert_eq!(
        issues(&out),
        vec![
            QualityIssue::InvalidCandle {
                open_ms: T0 + HOUR_MS / 2
            },
            QualityIssue::Gap {
                after_ms: hour_ms(2),
                before_ms: hour_ms(4),
                missing_bars: 1,
            },
        ]
    );
    assert_time_ordered(&out);
}

#[test]
fn an_invalid_row_after_a_gap_does_not_count_the_hole_twice() {
    // 01:00 and 02:00 are absent and 03:00 is impossible: three bars are
    // missing from the stream, and the findings must add up to three.
    let mut rows = rows_of(&[0]);
    rows.push(row(hour_s(3), "98", "97", "97.5", "98.75", "3"));
    rows.extend(rows_of(&[4, 5, 6, 7]));
    let out = items(&csv(&rows));
    assert_eq!(candles(&out), vec![bucket_04()]);
    let gaps: Vec<QualityIssue> = issues(&out)
        .into_iter()
        .filter(|i| matches!(i, QualityIssue::Gap { .. }))
        .collect();
    assert_eq!(
        gaps,
        vec![QualityIssue::Gap {
            after_ms: hour_ms(0),
            before_ms: hour_ms(4),
            missing_bars: 3,
        }]
    );
    assert!(issues(&out).contains(&QualityIssue::InvalidCandle {
        open_ms: hour_ms(3)
    }));
}

#[test]
fn a_zero_volume_bar_is_reported_and_kept() {
    let mut rows = rows_of(&[0]);
    rows.push(row(hour_s(1), "100.5", "104", "100", "103", "0"));
    rows.extend(rows_of(&[2, 3]));
    let out = items(&csv(&rows));
    assert_eq!(
        candles(&out),
        vec![candle_4h(0, "100", "104", "97.25", "98.75", "4.75")]
    );
    assert_eq!(
        issues(&out),
        vec![QualityIssue::VolumeAnomaly {
            open_ms: hour_ms(1),
            volume: Decimal::ZERO,
        }]
    );
    assert_eq!(findings(&out)[0].0, hour_ms(2));
}

#[test]
fn scientific_notation_parses_exactly() {
    let rows = vec![
        row(hour_s(0), "1.0e2", "101", "99", "100.5", "1e-05"),
        row(hour_s(1), "100.5", "1.04E2", "100", "103", "2.5E-4"),
        row(hour_s(2), "103", "103.5", "97.25", "98", "3e+1"),
        row(hour_s(3), "98", "99", "97.5", "98.75", "0.5"),
    ];
    let out = items(&csv(&rows));
    assert_eq!(
        candles(&out),
        vec![candle_4h(0, "100", "104", "97.25", "98.75", "30.50026")]
    );
    assert!(findings(&out).is_empty());
}

#[test]
fn candles_and_findings_come_out_in_market_time_order() {
    // A gap right after a whole bucket: the 00:00 candle (closed 04:00) is
    // known before the gap (seen when 05:00 closes, at 06:00).
    let out = items(&csv(&rows_of(&[0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11])));
    assert_eq!(candles(&out), vec![bucket_00(), bucket_08()]);
    assert_time_ordered(&out);

    // A zero-volume bar opening a new bucket.
    let mut rows = rows_of(&[0, 1, 2, 3]);
    rows.push(row(hour_s(4), "98.75", "99", "98", "98.5", "0"));
    rows.extend(rows_of(&[5, 6, 7]));
    let out = items(&csv(&rows));
    assert_eq!(candles(&out).len(), 2);
    assert_time_ordered(&out);

    // An out-of-order row after a bucket closed: reported when it is read,
    // not back at its own (earlier) time.
    let out = items(&csv(&rows_of(&[0, 1, 2, 3, 4, 2, 5, 6, 7])));
    assert_eq!(candles(&out), vec![bucket_00(), bucket_04()]);
    assert_eq!(
        issues(&out),
        vec![QualityIssue::OutOfOrder {
            open_ms: hour_ms(2),
            previous_ms: hour_ms(4),
        }]
    );
    assert_time_ordered(&out);
}

// ----------------------------------------------------------- malformed files

#[track_caller]
fn assert_malformed(text: &str, line: u64, message: &str) {
    let error = items_in(text, T0, END).expect_err("malformed");
    match &error {
        DataError::Malformed {
            file,
            line: found,
            message: found_message,
        } => {
            assert_eq!(file, FILE);
            assert_eq!(*found, line, "{error}");
            assert!(
                found_message.contains(message),
                "{found_message:?} should contain {message:?}"
            );
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert!(
        error.to_string().starts_with(&format!("{FILE}:{line}: ")),
        "{error}"
    );
}

#[test]
fn a_wrong_column_count_names_the_file_and_line() {
    let mut rows = rows_of(&[0, 1]);
    rows.push(format!(
        "{},{},103,103.5,97.25,98",
        iso(hour_s(2)),
        hour_s(2)
    ));
    rows.extend(rows_of(&[3]));
    assert_malformed(&csv(&rows), 4, "expected 7 comma-separated fields, found 6");

    let mut rows = rows_of(&[0]);
    rows.push(format!("{},1", hour_row(1)));
    assert_malformed(&csv(&rows), 3, "expected 7 comma-separated fields, found 8");
}

#[test]
fn a_non_numeric_field_names_the_file_and_line() {
    let mut rows = rows_of(&[0, 1, 2]);
    rows.push(row(hour_s(3), "98", "99", "97.5", "abc", "3"));
    assert_malformed(&csv(&rows), 5, "close \"abc\" is not a number");

    let mut rows = rows_of(&[0]);
    rows.push(row(hour_s(1), "100.5", "104", "100", "103", "NaN"));
    assert_malformed(&csv(&rows), 3, "volume \"NaN\" is not a number");

    let rows = vec![format!(
        "{},{}.5,100,101,99,100.5,1",
        iso(hour_s(0)),
        hour_s(0)
    )];
    assert_malformed(&csv(&rows), 2, "is not a whole number of seconds");
}

#[test]
fn blank_lines_are_skipped_but_counted() {
    let mut text = csv(&rows_of(&[0, 1]));
    text.push('\n'); // line 4
    text.push_str(&hour_row(2)); // line 5
    text.push('\n');
    text.push_str("garbage\n"); // line 6
    assert_malformed(&text, 6, "expected 7 comma-separated fields, found 1");
}

#[test]
fn a_bad_header_is_line_one() {
    let text = "time,open,high,low,close,volume\n".to_string() + &hour_row(0) + "\n";
    let error = open(&text, H1, H4, T0, END)
        .err()
        .expect("a bad header is refused at open");
    match error {
        DataError::Malformed {
            file,
            line,
            message,
        } => {
            assert_eq!((file.as_str(), line), (FILE, 1));
            assert!(message.contains("expected the header"), "{message}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    let empty = open("", H1, H4, T0, END).err().expect("an empty file");
    assert!(
        matches!(empty, DataError::Malformed { line: 1, .. }),
        "{empty:?}"
    );
}

#[test]
fn a_stream_ends_at_its_first_error() {
    let mut rows = rows_of(&[0, 1, 2, 3]);
    rows.push("oops".into());
    rows.extend(rows_of(&[4, 5, 6, 7, 8, 9, 10, 11]));
    let mut stream = open(&csv(&rows), H1, H4, T0, END).unwrap();
    let mut errors = 0;
    for item in stream.by_ref() {
        if item.is_err() {
            errors += 1;
        }
    }
    assert_eq!(errors, 1);
    assert!(stream.next().is_none());
}

// ------------------------------------------------------------- find_source

fn touch(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, "").unwrap();
    path
}

#[test]
fn find_source_prefers_the_exact_granularity() {
    let dir = tempfile::tempdir().unwrap();
    touch(dir.path(), "SIM_BTC-USD_1h.csv");
    touch(dir.path(), "SIM_BTC-USD_15m.csv");
    let exact = touch(dir.path(), "SIM_BTC-USD_4h.csv.gz");
    assert_eq!(
        find_source(dir.path(), "SIM", "BTC-USD", H4).unwrap(),
        Source {
            path: exact,
            granularity_s: H4,
        }
    );
}

#[test]
fn find_source_falls_back_to_the_coarsest_finer_granularity_that_divides() {
    let dir = tempfile::tempdir().unwrap();
    touch(dir.path(), "SIM_BTC-USD_1m.csv");
    touch(dir.path(), "SIM_BTC-USD_15m.csv");
    let hourly = touch(dir.path(), "SIM_BTC-USD_1h.csv.gz");
    touch(dir.path(), "SIM_BTC-USD_1d.csv"); // coarser: useless for 4h
    touch(dir.path(), "SIM_ETH-USD_2h.csv"); // another symbol
    touch(dir.path(), "OTHER_BTC-USD_2h.csv"); // another exchange
    assert_eq!(
        find_source(dir.path(), "SIM", "BTC-USD", H4).unwrap(),
        Source {
            path: hourly,
            granularity_s: H1,
        }
    );
    // 4h does not divide 6h: a 2h file is used before a 4h one.
    let dir = tempfile::tempdir().unwrap();
    touch(dir.path(), "SIM_BTC-USD_4h.csv");
    let two = touch(dir.path(), "SIM_BTC-USD_2h.csv");
    assert_eq!(
        find_source(dir.path(), "SIM", "BTC-USD", 21_600).unwrap(),
        Source {
            path: two,
            granularity_s: 7200,
        }
    );
    // At one granularity, the plain file comes before the compressed one.
    let dir = tempfile::tempdir().unwrap();
    touch(dir.path(), "SIM_BTC-USD_1h.csv.gz");
    let plain = touch(dir.path(), "SIM_BTC-USD_1h.csv");
    assert_eq!(
        find_source(dir.path(), "SIM", "BTC-USD", H4).unwrap().path,
        plain
    );
    // A directory with a cache file's name is not a file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("SIM_BTC-USD_4h.csv")).unwrap();
    let hourly = touch(dir.path(), "SIM_BTC-USD_1h.csv");
    assert_eq!(
        find_source(dir.path(), "SIM", "BTC-USD", H4).unwrap().path,
        hourly
    );
}

#[test]
fn find_source_without_data_names_what_it_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    touch(dir.path(), "SIM_BTC-USD_1d.csv");
    touch(dir.path(), "SIM_ETH-USD_1h.csv");
    let error = find_source(dir.path(), "SIM", "BTC-USD", H4).unwrap_err();
    let expected_looked = ["4h", "2h", "1h", "30m", "15m", "5m", "1m"]
        .iter()
        .flat_map(|g| {
            [
                format!("SIM_BTC-USD_{g}.csv"),
                format!("SIM_BTC-USD_{g}.csv.gz"),
            ]
        })
        .collect::<Vec<_>>()
        .join(", ");
    match &error {
        DataError::NoData {
            exchange,
            symbol,
            granularity,
            dir: in_dir,
            looked,
        } => {
            assert_eq!(exchange, "SIM");
            assert_eq!(symbol, "BTC-USD");
            assert_eq!(granularity, "4h");
            assert_eq!(in_dir, &dir.path().display().to_string());
            assert_eq!(looked, &expected_looked);
        }
        other => panic!("expected NoData, got {other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "no cached data for BTC-USD on SIM at 4h or finer in {}",
            dir.path().display()
        )),
        "{text}"
    );
    assert!(text.contains("SIM_BTC-USD_1m.csv.gz"), "{text}");
}

// ------------------------------------------------------------ the real file

const REAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/candles/COINBASE_BTC-USD_1h.csv"
);

/// The real file's rows, parsed with plain string splitting: (unix s, o, h, l, c, v).
fn real_rows() -> Vec<(i64, [Decimal; 5])> {
    let path = Path::new(REAL);
    assert!(
        path.is_file(),
        "the shared candle file is missing: {} (see shared/data/candles/SOURCES.md)",
        path.display()
    );
    let text = std::fs::read_to_string(path).expect("read the shared 1h file");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(anx_replays::data::HEADER));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 7, "{line}");
            let num = |s: &str| -> Decimal {
                s.parse()
                    .or_else(|_| Decimal::from_scientific(s))
                    .unwrap_or_else(|e| panic!("{s:?} in {line}: {e}"))
            };
            (
                f[1].parse().unwrap(),
                [num(f[2]), num(f[3]), num(f[4]), num(f[5]), num(f[6])],
            )
        })
        .collect()
}

#[test]
fn the_real_coinbase_hourly_file_resamples_to_whole_4h_buckets() {
    // October 2025 holds one of the file's two holes (2025-10-25 16:00 to
    // 20:00 missing, per SOURCES.md).
    let start_s: i64 = 1_759_276_800; // 2025-10-01T00:00:00Z
    let end_s: i64 = 1_761_955_200; // 2025-11-01T00:00:00Z
    assert_eq!(iso(start_s), "2025-10-01T00:00:00Z");
    assert_eq!(iso(end_s), "2025-11-01T00:00:00Z");
    let rows = real_rows();

    // Independent count: 4h buckets of the month with all four hours present.
    let mut hours_per_bucket = std::collections::BTreeMap::<i64, Vec<i64>>::new();
    for (unix, _) in rows.iter().filter(|(t, _)| (start_s..end_s).contains(t)) {
        hours_per_bucket
            .entry(unix - unix.rem_euclid(14_400))
            .or_default()
            .push(*unix);
    }
    let complete: Vec<i64> = hours_per_bucket
        .iter()
        .filter(|(bucket, hours)| {
            let mut want: Vec<i64> = (0..4).map(|i| *bucket + i * 3600).collect();
            let mut got = (*hours).clone();
            got.sort_unstable();
            want.sort_unstable();
            got == want
        })
        .map(|(bucket, _)| *bucket)
        .collect();
    // 31 days × 6 buckets, less the two buckets the hole touches.
    assert_eq!(complete.len(), 31 * 6 - 2);

    let source = find_source(Path::new(REAL).parent().unwrap(), "COINBASE", "BTC-USD", H4).unwrap();
    assert_eq!(source.granularity_s, H1);
    let out: Vec<Item> = CandleStream::open(&source, "BTC-USD", H4, start_s * 1000, end_s * 1000)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let got = candles(&out);
    assert_eq!(got.len(), complete.len());
    assert_eq!(
        got.iter().map(|c| c.open_ms / 1000).collect::<Vec<_>>(),
        complete
    );
    assert_eq!(
        issues(&out),
        vec![QualityIssue::Gap {
            after_ms: 1_761_404_400_000,  // 2025-10-25T15:00Z
            before_ms: 1_761_426_000_000, // 2025-10-25T21:00Z
            missing_bars: 5,
        }]
    );
    assert_time_ordered(&out);

    // The first 4h candle, aggregated by hand from its four hourly rows.
    let first: Vec<&[Decimal; 5]> = rows
        .iter()
        .filter(|(t, _)| (start_s..start_s + 14_400).contains(t))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(first.len(), 4);
    let expected = Candle {
        symbol: "BTC-USD".into(),
        granularity_s: H4,
        open_ms: start_s * 1000,
        open: first[0][0],
        high: first.iter().map(|r| r[1]).max().unwrap(),
        low: first.iter().map(|r| r[2]).min().unwrap(),
        close: first[3][3],
        volume: first.iter().map(|r| r[4]).sum(),
    };
    assert_eq!(got[0], expected);
}
