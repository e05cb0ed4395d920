//! `anx journal export --format parquet` end to end, run as the real binary:
//! a backtest journal of the shared candles (and the golden journal, which
//! holds every event kind) exported as JSON lines and as Parquet, the Parquet
//! read back with the `parquet` crate's Arrow reader and held to the JSON
//! row for row and value for value (decimals as exact decimals, times as
//! milliseconds), with the column types the export promises; `trades.parquet`
//! and `equity.parquet` held to `anx journal replay --format json`; DuckDB,
//! pandas and polars reading the files without casts
//! (`tools/parquet_readers.py`); and every misuse a one-line error.

mod common;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, TimestampMillisecondType,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A completed two-symbol backtest with closed trades: BTC-USD and ETH-USD,
/// four months of the shared 1h candles.
fn backtest(work: &Path) -> PathBuf {
    let journal = work.join("journal");
    let cache = shared_candles();
    let run = anx(&[
        "replay",
        "run",
        "--symbols",
        "BTC-USD,ETH-USD",
        "--start",
        "2024-05-01",
        "--end",
        "2024-09-01",
        "--data-source",
        "cache",
        "--cache-dir",
        path_str(&cache),
        "--journal",
        path_str(&journal),
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        json(&run.stdout)["report"]["trades_closed"]
            .as_u64()
            .unwrap()
            >= 3,
        "the backtest must close trades: {}",
        run.stdout
    );
    journal
}

/// `anx journal export DIR --format parquet --out OUT`, which must succeed.
fn export_parquet(journal: &Path, out: &Path) -> Run {
    let run = anx(&[
        "journal",
        "export",
        path_str(journal),
        "--format",
        "parquet",
        "--out",
        path_str(out),
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run
}

/// The JSON-lines export, one object per event.
fn export_jsonl(journal: &Path) -> Vec<Value> {
    let run = anx(&["journal", "export", path_str(journal)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout.lines().map(json).collect()
}

/// Every row of a Parquet file, read back with the Arrow reader.
fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a reader")
        .collect::<Result<_, _>>()
        .expect("readable batches")
}

/// One table as rows of column name → cell, in a comparable form, and the
/// columns' types.
struct Table {
    types: Vec<(String, DataType)>,
    rows: Vec<Map<String, Value>>,
}

fn table(path: &Path) -> Table {
    let batches = read_parquet(path);
    let schema = batches.first().expect("at least one batch").schema();
    let types = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    let mut rows = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let cells = schema
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(field, column)| (field.name().clone(), cell(column, row)));
            rows.push(cells.collect());
        }
    }
    Table { types, rows }
}

/// A cell as JSON: decimals as their exact value normalized (`1.50` →
/// `"1.5"`), times as Unix milliseconds, days as `YYYY-MM-DD`.
fn cell(array: &ArrayRef, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::UInt64 => Value::from(array.as_primitive::<UInt64Type>().value(row)),
        DataType::UInt32 => Value::from(array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt16 => Value::from(array.as_primitive::<UInt16Type>().value(row)),
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float64 => Value::from(array.as_primitive::<Float64Type>().value(row)),
        DataType::Boolean => Value::from(array.as_boolean().value(row)),
        DataType::Utf8 => Value::from(array.as_string::<i32>().value(row)),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            Value::from(array.as_primitive::<TimestampMillisecondType>().value(row))
        }
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            let date = chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0).unwrap();
            Value::from(date.format("%Y-%m-%d").to_string())
        }
        DataType::Decimal128(_, scale) => {
            let mantissa = array.as_primitive::<Decimal128Type>().value(row);
            Value::from(decimal_text(mantissa, *scale as usize))
        }
        DataType::Dictionary(_, _) => {
            let dictionary = array.as_dictionary::<Int32Type>();
            let key = dictionary.keys().value(row) as usize;
            cell(dictionary.values(), key)
        }
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(row);
            Value::Array((0..items.len()).map(|i| cell(&items, i)).collect())
        }
        DataType::Struct(fields) => {
            let record = array.as_struct();
            let cells = fields
                .iter()
                .zip(record.columns())
                .map(|(field, column)| (field.name().clone(), cell(column, row)));
            Value::Object(cells.collect())
        }
        other => panic!("a column of a type the export does not write: {other}"),
    }
}

/// A Decimal128 as exact text, normalized (no trailing zeros). Done on the
/// digits: a column's mantissa can be wider than a `rust_decimal` holds.
fn decimal_text(mantissa: i128, scale: usize) -> String {
    let digits = format!("{:0>width$}", mantissa.unsigned_abs(), width = scale + 1);
    let (whole, fraction) = digits.split_at(digits.len() - scale);
    let fraction = fraction.trim_end_matches('0');
    let sign = if mantissa < 0 { "-" } else { "" };
    let text = match fraction {
        "" => format!("{sign}{whole}"),
        fraction => format!("{sign}{whole}.{fraction}"),
    };
    // What the JSON side gives, through the same normalization.
    exact(&Value::from(text.as_str())).normalize().to_string()
}

/// A JSON value in the form [`cell`] gives, for a column of type `data_type`:
/// a decimal (a JSON string or number) normalized.
fn comparable(value: &Value, data_type: &DataType) -> Value {
    match (value, data_type) {
        (Value::Null, _) => Value::Null,
        (_, DataType::Decimal128(_, _)) => Value::from(exact(value).normalize().to_string()),
        (Value::Array(items), DataType::List(item)) => Value::Array(
            items
                .iter()
                .map(|i| comparable(i, item.data_type()))
                .collect(),
        ),
        (Value::Object(record), DataType::Struct(fields)) => Value::Object(
            fields
                .iter()
                .map(|f| {
                    let value = record.get(f.name()).unwrap_or(&Value::Null);
                    (f.name().clone(), comparable(value, f.data_type()))
                })
                .collect(),
        ),
        _ => value.clone(),
    }
}

/// A decimal as the JSON exports write one: an exact string (events) or a
/// number (the replay's report).
fn exact(value: &Value) -> Decimal {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        other => panic!("not a decimal: {other}"),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .unwrap_or_else(|e| panic!("not a decimal {text:?}: {e}"))
}

/// The file of a kind (`OrderPlaced` → `order_placed.parquet`).
fn kind_file(kind: &str) -> String {
    let mut file = String::new();
    for (i, c) in kind.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            file.push('_');
        }
        file.push(c.to_ascii_lowercase());
    }
    file + ".parquet"
}

/// A JSON-lines event as the columns of its Parquet row: the envelope, then
/// the body flattened (a nested record's fields as `outer_inner`, an enum
/// with data as its variant in `outer` and its fields as `outer_field`).
fn flattened(line: &Value) -> Map<String, Value> {
    let mut columns = Map::new();
    for key in ["seq", "hash", "schema_version"] {
        columns.insert(key.into(), line[key].clone());
    }
    columns.insert("market_time".into(), line["market_ms"].clone());
    for (key, value) in line["body"].as_object().expect("a body object") {
        match value {
            Value::Object(inner) if ["outcome", "issue"].contains(&key.as_str()) => {
                let (variant, fields) = inner.iter().next().expect("one variant");
                columns.insert(key.clone(), Value::from(variant.as_str()));
                for (field, value) in fields.as_object().expect("the variant's fields") {
                    columns.insert(format!("{key}_{field}"), value.clone());
                }
            }
            Value::Object(inner) => {
                for (field, value) in inner {
                    columns.insert(format!("{key}_{field}"), value.clone());
                }
            }
            _ => {
                columns.insert(key.clone(), value.clone());
            }
        }
    }
    columns
}

/// The largest scale among a column's JSON decimals (strings written with
/// their scale: `"5.00"` has 2).
fn largest_scale<'a>(values: impl Iterator<Item = &'a Value>) -> Option<u32> {
    values
        .filter(|v| !v.is_null())
        .map(|v| exact(v).scale())
        .max()
}

fn assert_type(table: &Table, file: &str, column: &str, expected: &DataType) {
    let found = table.types.iter().find(|(name, _)| name == column);
    let found = found.unwrap_or_else(|| panic!("{file} has no column {column}"));
    assert_eq!(&found.1, expected, "{file}: {column}");
}

fn utc_ms() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn symbol_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// Every event file against the JSON lines: one file per kind, a row per
/// event in seq order, every JSON field a column of the promised type, and
/// every value equal (a column the JSON does not have for a row is null, but
/// `fired`, which a whole glass box carries in its signals).
fn assert_events_equal_the_json_lines(lines: &[Value], out: &Path) -> BTreeSet<String> {
    let mut by_file: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for line in lines {
        let kind = line["kind"].as_str().expect("a kind");
        by_file.entry(kind_file(kind)).or_default().push(line);
    }
    for (file, lines) in &by_file {
        let table = table(&out.join(file));
        assert_eq!(table.rows.len(), lines.len(), "{file}: one row per event");
        assert_type(&table, file, "seq", &DataType::UInt64);
        assert_type(&table, file, "market_time", &utc_ms());
        let expected: Vec<Map<String, Value>> = lines.iter().map(|l| flattened(l)).collect();
        assert_column_types(&table, file, &expected);
        for (row, (got, want)) in table.rows.iter().zip(&expected).enumerate() {
            assert_row_equal(&table, file, row, got, want);
        }
    }
    by_file.into_keys().collect()
}

/// Types by rule: instants are UTC timestamps (a duration is not), symbols
/// are dictionary-encoded, a decimal column's scale is the largest among its
/// JSON values.
fn assert_column_types(table: &Table, file: &str, expected: &[Map<String, Value>]) {
    for (column, data_type) in &table.types {
        if column.ends_with("_ms") && column != "issue_age_ms" {
            assert_eq!(data_type, &utc_ms(), "{file}: {column} is a time");
        }
        if column == "symbol" || column == "product_id" {
            assert_eq!(data_type, &symbol_type(), "{file}: {column}");
        }
        if let DataType::Decimal128(precision, scale) = data_type {
            let values = expected.iter().filter_map(|row| row.get(column));
            let scale_json = largest_scale(values).unwrap_or(0);
            assert_eq!(
                (*precision, *scale as u32),
                (38, scale_json),
                "{file}: {column} is DECIMAL(38, its largest scale)"
            );
        }
    }
}

fn assert_row_equal(
    table: &Table,
    file: &str,
    row: usize,
    got: &Map<String, Value>,
    want: &Map<String, Value>,
) {
    let seq = &want["seq"];
    for (key, value) in want {
        // An absent nested record (`"sizing": null`) is its columns' nulls.
        let nested_null = value.is_null() && got.keys().any(|c| c.starts_with(&format!("{key}_")));
        assert!(
            got.contains_key(key) || nested_null,
            "{file} seq {seq}: no column {key}"
        );
    }
    for (column, data_type) in &table.types {
        let expected = match want.get(column) {
            Some(value) => comparable(value, data_type),
            None if column == "fired" => fired_signals(want),
            None => Value::Null,
        };
        assert_eq!(
            got[column], expected,
            "{file} row {row} (seq {seq}): column {column}"
        );
    }
}

/// The names of the signals that fired, from a whole glass box.
fn fired_signals(row: &Map<String, Value>) -> Value {
    let signals = row["signals"].as_array().expect("a whole glass box");
    let fired = signals.iter().filter(|s| s["fired"] == true);
    Value::Array(fired.map(|s| s["name"].clone()).collect())
}

#[test]
fn every_event_kind_exports_typed_and_equal_to_its_json_lines() {
    let work = tempfile::tempdir().unwrap();
    let journal = backtest(work.path());
    let out = work.path().join("out");
    let run = export_parquet(&journal, &out);
    assert!(run.stdout.contains("trades.parquet"), "{}", run.stdout);
    let lines = export_jsonl(&journal);
    let files = assert_events_equal_the_json_lines(&lines, &out);
    for file in ["candle", "decision", "order_placed", "fill", "trade_closed"] {
        assert!(files.contains(&format!("{file}.parquet")), "{files:?}");
    }
    // The columns promised by name, beside the rules checked for every file.
    let candle = table(&out.join("candle.parquet"));
    for column in ["open", "high", "low", "close", "volume"] {
        let DataType::Decimal128(38, _) = candle.types.iter().find(|(n, _)| n == column).unwrap().1
        else {
            panic!("candle.parquet: {column} is not a decimal");
        };
    }
    assert_type(&candle, "candle.parquet", "open_ms", &utc_ms());
    let decision = table(&out.join("decision.parquet"));
    let indicators = &decision
        .types
        .iter()
        .find(|(n, _)| n == "indicators")
        .unwrap()
        .1;
    assert!(
        matches!(indicators, DataType::List(item) if matches!(item.data_type(), DataType::Struct(_))),
        "indicators are a list of records: {indicators}"
    );
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    let mut expected: Vec<String> = files.into_iter().collect();
    expected.extend(["trades.parquet".into(), "equity.parquet".into()]);
    expected.sort();
    assert_eq!(written, expected, "one file per kind, trades and equity");
}

#[test]
fn a_journal_with_every_kind_exports_its_events_though_it_does_not_fold() {
    // The golden journal holds one of each kind (schema 1, whole glass boxes,
    // a config hash in the decision) but is no run the fold accepts: its
    // events are exported, trades and equity are not, and the exit code says so.
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let golden = golden_dir();
    let run = anx(&[
        "journal",
        "export",
        path_str(&golden),
        "--format",
        "parquet",
        "--out",
        path_str(&out),
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("does not fold") && run.stderr.contains("seq 13"),
        "{}",
        run.stderr
    );
    let lines = export_jsonl(&golden);
    let files = assert_events_equal_the_json_lines(&lines, &out);
    assert_eq!(files.len(), anx_journal::EventKind::ALL.len(), "{files:?}");
    assert!(!out.join("trades.parquet").exists());
    assert!(!out.join("equity.parquet").exists());
}

/// `anx journal replay DIR --format json`.
fn replay_json(journal: &Path) -> Value {
    let run = anx(&["journal", "replay", path_str(journal), "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    json(&run.stdout)
}

#[test]
fn trades_and_equity_equal_the_replay_json() {
    let work = tempfile::tempdir().unwrap();
    let journal = backtest(work.path());
    let out = work.path().join("out");
    export_parquet(&journal, &out);
    let replay = replay_json(&journal);

    let trades = table(&out.join("trades.parquet"));
    let trade_list = replay["trade_list"].as_array().unwrap();
    assert_eq!(trades.rows.len(), trade_list.len());
    assert_type(&trades, "trades.parquet", "entry_time", &utc_ms());
    assert_type(&trades, "trades.parquet", "exit_time", &utc_ms());
    assert_type(&trades, "trades.parquet", "symbol", &symbol_type());
    assert_type(&trades, "trades.parquet", "hold_hours", &DataType::Float64);
    let columns: BTreeSet<&str> = trades.types.iter().map(|(n, _)| n.as_str()).collect();
    for (got, want) in trades.rows.iter().zip(trade_list) {
        let want = want.as_object().unwrap();
        for (key, value) in want {
            let (column, expected) = match key.as_str() {
                // The times are timestamps under their `_time` names.
                "entry_ms" | "exit_ms" | "entry_time" | "exit_time" => continue,
                "hold_s" => (
                    "hold_hours",
                    Value::from(value.as_i64().unwrap() as f64 / 3600.0),
                ),
                key => {
                    let data_type = &trades.types.iter().find(|(n, _)| n == key).unwrap().1;
                    (key, comparable(value, data_type))
                }
            };
            assert_eq!(
                got[column], expected,
                "trade {}: {column}",
                want["trade_id"]
            );
        }
        assert_eq!(got["entry_time"], want["entry_ms"]);
        assert_eq!(got["exit_time"], want["exit_ms"]);
        let named: BTreeSet<&str> = want
            .keys()
            .map(|k| match k.as_str() {
                "entry_ms" => "entry_time",
                "exit_ms" => "exit_time",
                "hold_s" => "hold_hours",
                k => k,
            })
            .collect();
        assert_eq!(columns, named, "the same fields as trade_list");
    }
    // The closed trades' money is exact: the same scale as the journal's.
    let closed = table(&out.join("trade_closed.parquet"));
    for column in ["net_pnl", "gross_pnl", "fees", "entry_price", "size"] {
        let scale = |t: &Table| t.types.iter().find(|(n, _)| n == column).unwrap().1.clone();
        assert_eq!(scale(&trades), scale(&closed), "{column}");
    }

    let equity = table(&out.join("equity.parquet"));
    let daily = replay["equity_daily"].as_array().unwrap();
    assert!(daily.len() > 100);
    assert_eq!(equity.rows.len(), daily.len());
    assert_type(&equity, "equity.parquet", "date", &DataType::Date32);
    for (got, want) in equity.rows.iter().zip(daily) {
        let want = want.as_object().unwrap();
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (key, value) in want {
            let data_type = &equity.types.iter().find(|(n, _)| n == key).unwrap().1;
            assert_eq!(
                got[key],
                comparable(value, data_type),
                "{}: {key}",
                want["date"]
            );
        }
    }
}

#[test]
fn duckdb_pandas_and_polars_read_the_files_without_casts() {
    let work = tempfile::tempdir().unwrap();
    let journal = backtest(work.path());
    let out = work.path().join("out");
    export_parquet(&journal, &out);
    let replay = replay_json(&journal);
    let net_pnl = replay["report"]["net_pnl"].to_string();
    let script = repo_root().join("tools/parquet_readers.py");
    let run = std::process::Command::new("python3")
        .arg(&script)
        .arg(&out)
        .arg(&net_pnl)
        .arg(anx_projections::report::REPORT_DP.to_string())
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is needed for this test (`.ci/run` installs its modules): {e}")
        });
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "{} failed (python3 with duckdb, pandas, polars and pyarrow is needed: \
         python3 -m pip install duckdb pandas polars pyarrow):\n{stdout}\n{stderr}",
        script.display()
    );
    for reader in ["duckdb", "pandas", "polars"] {
        assert!(stdout.contains(&format!("{reader}: ok")), "{stdout}");
    }
}

#[test]
fn misuse_is_a_one_line_error() {
    let work = tempfile::tempdir().unwrap();
    let golden = golden_dir();
    let golden = path_str(&golden);
    let out = work.path().join("out");
    let out = path_str(&out);
    let cases: [(&[&str], &str); 5] = [
        (
            &["journal", "export", golden, "--format", "parquet"],
            "--out",
        ),
        (
            &["journal", "export", golden, "--out", out],
            "--format parquet",
        ),
        (
            &[
                "journal", "export", golden, "--format", "jsonl", "--out", out,
            ],
            "--format parquet",
        ),
        (
            &[
                "journal", "export", golden, "--json", "--format", "parquet", "--out", out,
            ],
            "--json",
        ),
        (
            &[
                "journal",
                "export",
                "no/such/journal",
                "--format",
                "parquet",
                "--out",
                out,
            ],
            "no/such/journal",
        ),
    ];
    for (args, says) in cases {
        let run = anx(args);
        run.assert_one_line_error(2);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    assert!(!work.path().join("out").exists(), "nothing was created");

    // OUTDIR cannot be made: its parent is a file.
    let file = work.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    for out in [file.join("out"), file.clone()] {
        let run = anx(&[
            "journal",
            "export",
            golden,
            "--format",
            "parquet",
            "--out",
            path_str(&out),
        ]);
        run.assert_one_line_error(2);
        assert!(run.stderr.contains(path_str(&out)), "{}", run.stderr);
    }
}

#[test]
fn an_export_never_overwrites_a_file() {
    let work = tempfile::tempdir().unwrap();
    let journal = backtest(work.path());
    let out = work.path().join("out");
    export_parquet(&journal, &out);
    let before: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    let run = anx(&[
        "journal",
        "export",
        path_str(&journal),
        "--format",
        "parquet",
        "--out",
        path_str(&out),
    ]);
    run.assert_one_line_error(2);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    for (path, bytes) in &before {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{}", path.display());
    }

    // A leftover of any name an export writes is refused too (a `*.parquet`
    // glob would read it with the new files).
    let other = work.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("fail_closed.parquet"), "old").unwrap();
    let run = anx(&[
        "journal",
        "export",
        path_str(&journal),
        "--format",
        "parquet",
        "--out",
        path_str(&other),
    ]);
    run.assert_one_line_error(2);
    assert!(run.stderr.contains("fail_closed.parquet"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
}

#[test]
fn a_decimal_that_does_not_fit_is_an_error_naming_the_column_and_the_seq() {
    use anx_journal::sample::{golden_events, GOLDEN_META};
    use anx_journal::{Event, Writer, WriterOptions};
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("journal");
    let mut events = golden_events();
    events.truncate(2); // RunStarted, a candle
    let (market_ms, Event::Candle(candle)) = events[1].clone() else {
        panic!("the golden journal's second event is a candle");
    };
    // 29 digits at scale 0 and a value at scale 28 need 57 digits in one column.
    let mut big = candle.clone();
    big.volume = Decimal::MAX;
    let mut tiny = candle.clone();
    tiny.open_ms += i64::from(candle.granularity_s) * 1000;
    tiny.volume = Decimal::new(1, 28);
    let mut writer = Writer::create(&journal, GOLDEN_META, WriterOptions::default()).unwrap();
    writer.append(events[0].0, &events[0].1).unwrap();
    let big_seq = writer.append(market_ms, &Event::Candle(big)).unwrap().seq;
    let step = i64::from(candle.granularity_s) * 1000;
    writer
        .append(market_ms + step, &Event::Candle(tiny))
        .unwrap();
    writer.close().unwrap();

    let out = work.path().join("out");
    let run = anx(&[
        "journal",
        "export",
        path_str(&journal),
        "--format",
        "parquet",
        "--out",
        path_str(&out),
    ]);
    run.assert_one_line_error(2);
    for says in [
        "candle.parquet".to_string(),
        format!("seq {big_seq}"),
        "column volume".into(),
        "DECIMAL(38, 28)".into(),
        Decimal::MAX.to_string(),
    ] {
        assert!(run.stderr.contains(&says), "{says}: {}", run.stderr);
    }
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "nothing written"
    );
}
