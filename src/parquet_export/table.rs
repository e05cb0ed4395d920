//! A table built one row at a time by a mapping function that names each
//! column and picks its type by the method it calls (`row.dec("price", …)`),
//! then turned into one Arrow record batch.
//!
//! The first row defines the columns; every later row must call the same
//! methods in the same order (a mapping takes `Option`s for what a record may
//! lack, so it always does). A list of records (a decision's indicators) is a
//! list-of-struct column whose item mapping is called once with `None` to
//! define its fields, so its type is known even when every list is empty.
//!
//! Decimals are kept as `rust_decimal::Decimal` until the end: a column's
//! scale is the largest scale among its values, known only then. A value that
//! does not fit `DECIMAL(38, scale)` exactly is an error naming the column and
//! the row, never a rounded number.

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    StringDictionaryBuilder, TimestampMillisecondBuilder, UInt16Builder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, Decimal128Array, ListArray, RecordBatch, StructArray};
use arrow_buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{Field, Fields, Schema};
use rust_decimal::Decimal;
use std::sync::Arc;

/// Every decimal column is `DECIMAL(38, scale)`: the widest Decimal128, so
/// only the scale varies between columns.
pub const DECIMAL_PRECISION: u8 = 38;

/// The largest magnitude a `DECIMAL(38, _)` mantissa holds: 38 nines.
const DECIMAL_MANTISSA_MAX: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

/// Every timestamp column is in milliseconds, UTC.
pub const UTC: &str = "UTC";

/// One column's values so far, by type. Arrow's builders hold what needs no
/// second look; decimals and lists of records are finished by hand.
enum Values {
    U64(UInt64Builder),
    U32(UInt32Builder),
    U16(UInt16Builder),
    I64(Int64Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
    Symbol(StringDictionaryBuilder<Int32Type>),
    Time(TimestampMillisecondBuilder),
    Date(Date32Builder),
    Decimal(Vec<Option<Decimal>>),
    Texts(ListBuilder<StringBuilder>),
    Records(Records),
}

/// A list-of-struct column: the items of every row back to back in `items`,
/// row `i`'s items at `offsets[i]..offsets[i + 1]`.
struct Records {
    items: Table,
    offsets: Vec<i32>,
    valid: Vec<bool>,
}

struct Column {
    name: &'static str,
    values: Values,
}

/// Columns and their values, built row by row ([`Table::push`]).
#[derive(Default)]
pub struct Table {
    columns: Vec<Column>,
    rows: usize,
    /// Whether the first row (or a definition) has laid out the columns.
    defined: bool,
    /// The first way a mapping broke the table's rules: a bug, reported as
    /// an error rather than a panic.
    problem: Option<String>,
}

/// A decimal that does not fit its column exactly.
#[derive(Debug, PartialEq)]
pub struct Overflow {
    /// The column, `outer.inner` inside a list of records.
    pub column: String,
    /// The table row it is in.
    pub row: usize,
    pub value: Decimal,
    pub scale: u32,
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "column {}: {} does not fit DECIMAL({DECIMAL_PRECISION}, {}) exactly ({} is the column's largest scale)",
            self.column, self.value, self.scale, self.scale
        )
    }
}

/// Why a table could not become a record batch.
#[derive(Debug)]
pub enum FinishError {
    Overflow(Overflow),
    /// A mapping that broke the table's rules, or Arrow refusing the arrays.
    Internal(String),
}

impl Table {
    /// Appends one row: `map` calls one [`Row`] method per column.
    pub fn push(&mut self, map: impl FnOnce(&mut Row)) {
        let mut row = Row {
            table: self,
            cursor: 0,
            define_only: false,
        };
        map(&mut row);
        let cursor = row.cursor;
        self.end_row(cursor);
        self.rows += 1;
    }

    /// Lays out the columns `map` names without adding a row.
    fn define(&mut self, map: impl FnOnce(&mut Row)) {
        let mut row = Row {
            table: self,
            cursor: 0,
            define_only: true,
        };
        map(&mut row);
        let cursor = row.cursor;
        self.end_row(cursor);
    }

    fn end_row(&mut self, cursor: usize) {
        if cursor != self.columns.len() {
            self.problem.get_or_insert_with(|| {
                format!(
                    "a row filled {cursor} of the {} columns",
                    self.columns.len()
                )
            });
        }
        self.defined = true;
    }

    /// The record batch of every row (once: the builders are emptied).
    pub fn finish(&mut self) -> Result<RecordBatch, FinishError> {
        if let Some(problem) = &self.problem {
            return Err(FinishError::Internal(problem.clone()));
        }
        let (fields, arrays) = self.finish_columns()?;
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| FinishError::Internal(e.to_string()))
    }

    fn finish_columns(&mut self) -> Result<(Vec<Field>, Vec<ArrayRef>), FinishError> {
        let mut fields = Vec::with_capacity(self.columns.len());
        let mut arrays = Vec::with_capacity(self.columns.len());
        for column in &mut self.columns {
            let array = finish_values(column.name, &mut column.values)?;
            fields.push(Field::new(column.name, array.data_type().clone(), true));
            arrays.push(array);
        }
        Ok((fields, arrays))
    }
}

fn finish_values(name: &str, values: &mut Values) -> Result<ArrayRef, FinishError> {
    Ok(match values {
        Values::U64(b) => Arc::new(b.finish()),
        Values::U32(b) => Arc::new(b.finish()),
        Values::U16(b) => Arc::new(b.finish()),
        Values::I64(b) => Arc::new(b.finish()),
        Values::F64(b) => Arc::new(b.finish()),
        Values::Bool(b) => Arc::new(b.finish()),
        Values::Text(b) => Arc::new(b.finish()),
        Values::Symbol(b) => Arc::new(b.finish()),
        Values::Time(b) => Arc::new(b.finish()),
        Values::Date(b) => Arc::new(b.finish()),
        Values::Texts(b) => Arc::new(b.finish()),
        Values::Decimal(values) => finish_decimals(name, values)?,
        Values::Records(records) => finish_records(name, records)?,
    })
}

/// `DECIMAL(38, s)` with `s` the largest scale in the column (0 for a column
/// of nulls); every value rescaled to it exactly, or the first that cannot be.
fn finish_decimals(name: &str, values: &[Option<Decimal>]) -> Result<ArrayRef, FinishError> {
    let scale = values
        .iter()
        .flatten()
        .map(Decimal::scale)
        .max()
        .unwrap_or(0);
    let mut mantissas = Vec::with_capacity(values.len());
    for (row, value) in values.iter().enumerate() {
        let mantissa = match value {
            Some(value) => Some(rescaled(*value, scale).ok_or_else(|| {
                FinishError::Overflow(Overflow {
                    column: name.to_string(),
                    row,
                    value: *value,
                    scale,
                })
            })?),
            None => None,
        };
        mantissas.push(mantissa);
    }
    // A rust_decimal scale is at most 28, so it fits DECIMAL(38, _).
    let array = Decimal128Array::from(mantissas)
        .with_precision_and_scale(DECIMAL_PRECISION, scale as i8)
        .map_err(|e| FinishError::Internal(e.to_string()))?;
    Ok(Arc::new(array))
}

/// `value`'s mantissa at `scale` (not below its own), if it fits 38 digits.
pub fn rescaled(value: Decimal, scale: u32) -> Option<i128> {
    let factor = 10i128.checked_pow(scale.checked_sub(value.scale())?)?;
    value
        .mantissa()
        .checked_mul(factor)
        .filter(|mantissa| mantissa.abs() <= DECIMAL_MANTISSA_MAX)
}

/// A list-of-struct array; an item's overflow is reported at the row whose
/// list holds it, as `outer.inner`.
fn finish_records(name: &str, records: &mut Records) -> Result<ArrayRef, FinishError> {
    let (fields, arrays) = records
        .items
        .finish_columns()
        .map_err(|error| match error {
            FinishError::Overflow(overflow) => FinishError::Overflow(Overflow {
                column: format!("{name}.{}", overflow.column),
                row: records
                    .offsets
                    .partition_point(|&o| o as usize <= overflow.row)
                    - 1,
                ..overflow
            }),
            internal => internal,
        })?;
    let internal = |e: arrow_schema::ArrowError| FinishError::Internal(e.to_string());
    let items =
        StructArray::try_new_with_length(Fields::from(fields), arrays, None, records.items.rows)
            .map_err(internal)?;
    let item_field = Field::new_list_field(items.data_type().clone(), true);
    let offsets = OffsetBuffer::new(ScalarBuffer::from(std::mem::take(&mut records.offsets)));
    let valid = NullBuffer::from(std::mem::take(&mut records.valid));
    let list = ListArray::try_new(Arc::new(item_field), offsets, Arc::new(items), Some(valid))
        .map_err(internal)?;
    Ok(Arc::new(list))
}

/// One row being filled: each method is one column, its name and type.
pub struct Row<'a> {
    table: &'a mut Table,
    cursor: usize,
    define_only: bool,
}

/// A method per scalar column type: the value, or null.
macro_rules! scalar_columns {
    ($($(#[$doc:meta])* $method:ident($t:ty) => $variant:ident($new:expr);)*) => {$(
        $(#[$doc])*
        pub fn $method(&mut self, name: &'static str, value: impl Into<Option<$t>>) {
            let value = value.into();
            let fits = match self.column(name, || Values::$variant($new)) {
                Some(Values::$variant(builder)) => { builder.append_option(value); true }
                Some(_) => false,
                None => true,
            };
            self.check_type(fits, name);
        }
    )*};
}

impl Row<'_> {
    scalar_columns! {
        /// An unsigned 64-bit integer (seqs, counts, byte offsets).
        u64(u64) => U64(UInt64Builder::new());
        u32(u32) => U32(UInt32Builder::new());
        u16(u16) => U16(UInt16Builder::new());
        /// A signed 64-bit integer that is not a time (a duration in ms).
        i64(i64) => I64(Int64Builder::new());
        f64(f64) => F64(Float64Builder::new());
        bool(bool) => Bool(BooleanBuilder::new());
        /// A UTC time in Unix milliseconds: TIMESTAMP(MILLIS, UTC).
        time(i64) => Time(TimestampMillisecondBuilder::new().with_timezone(UTC));
        /// A UTC calendar day, days since 1970-01-01: DATE.
        date(i32) => Date(Date32Builder::new());
    }

    /// A string: an id, an enum's name, free text.
    pub fn text<'s>(&mut self, name: &'static str, value: impl Into<Option<&'s str>>) {
        let value = value.into();
        let fits = match self.column(name, || Values::Text(StringBuilder::new())) {
            Some(Values::Text(builder)) => {
                builder.append_option(value);
                true
            }
            Some(_) => false,
            None => true,
        };
        self.check_type(fits, name);
    }

    /// A symbol: few distinct values in many rows, so dictionary-encoded.
    pub fn symbol<'s>(&mut self, name: &'static str, value: impl Into<Option<&'s str>>) {
        let value = value.into();
        let new = || Values::Symbol(StringDictionaryBuilder::new());
        let fits = match self.column(name, new) {
            Some(Values::Symbol(builder)) => {
                builder.append_option(value);
                true
            }
            Some(_) => false,
            None => true,
        };
        self.check_type(fits, name);
    }

    /// An exact decimal: `DECIMAL(38, s)`, `s` the column's largest scale.
    pub fn dec(&mut self, name: &'static str, value: impl Into<Option<Decimal>>) {
        let value = value.into();
        let fits = match self.column(name, || Values::Decimal(Vec::new())) {
            Some(Values::Decimal(values)) => {
                values.push(value);
                true
            }
            Some(_) => false,
            None => true,
        };
        self.check_type(fits, name);
    }

    /// A list of strings, or null.
    pub fn texts<S: AsRef<str>>(&mut self, name: &'static str, value: Option<&[S]>) {
        let new = || Values::Texts(ListBuilder::new(StringBuilder::new()));
        let fits = match self.column(name, new) {
            Some(Values::Texts(builder)) => {
                for item in value.unwrap_or_default() {
                    builder.values().append_value(item);
                }
                builder.append(value.is_some());
                true
            }
            Some(_) => false,
            None => true,
        };
        self.check_type(fits, name);
    }

    /// A list of records, or null: `item` maps one record to its fields
    /// (and is called with `None` once, to lay them out).
    pub fn records<T>(
        &mut self,
        name: &'static str,
        value: Option<&[T]>,
        item: fn(Option<&T>, &mut Row),
    ) {
        let new = || {
            let mut items = Table::default();
            items.define(|row| item(None, row));
            Values::Records(Records {
                items,
                offsets: vec![0],
                valid: Vec::new(),
            })
        };
        let fits = match self.column(name, new) {
            Some(Values::Records(records)) => {
                for record in value.unwrap_or_default() {
                    records.items.push(|row| item(Some(record), row));
                }
                records.offsets.push(records.items.rows as i32);
                records.valid.push(value.is_some());
                true
            }
            Some(_) => false,
            None => true,
        };
        self.check_type(fits, name);
    }

    /// Records a value the mapping cannot put in its column (a bug or an
    /// impossible value): the export fails with `problem`.
    pub fn fail(&mut self, problem: String) {
        self.table.problem.get_or_insert(problem);
    }

    /// The next column, created by `new` while the first row lays them out;
    /// `None` when only laying out, or when the mapping named another column.
    fn column(&mut self, name: &'static str, new: impl FnOnce() -> Values) -> Option<&mut Values> {
        let index = self.cursor;
        self.cursor += 1;
        if !self.table.defined {
            self.table.columns.push(Column {
                name,
                values: new(),
            });
        } else if self.table.columns.get(index).map(|c| c.name) != Some(name) {
            self.fail(format!("column {index} is not {name} in every row"));
            return None;
        }
        if self.define_only {
            return None;
        }
        self.table.columns.get_mut(index).map(|c| &mut c.values)
    }

    fn check_type(&mut self, fits: bool, name: &'static str) {
        if !fits {
            self.fail(format!("column {name} has another type in another row"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Decimal128Type;
    use arrow_schema::DataType;
    use std::str::FromStr;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn a_decimal_column_takes_its_largest_scale_exactly() {
        let mut table = Table::default();
        for value in ["1.5", "-2", "0.001"] {
            table.push(|row| row.dec("x", dec(value)));
        }
        table.push(|row| row.dec("x", None));
        let batch = table.finish().unwrap();
        assert_eq!(
            batch.schema().field(0).data_type(),
            &DataType::Decimal128(38, 3)
        );
        let column = batch.column(0).as_primitive::<Decimal128Type>();
        let mantissas: Vec<Option<i128>> = column.iter().collect();
        assert_eq!(mantissas, [Some(1500), Some(-2000), Some(1), None]);
    }

    #[test]
    fn a_decimal_that_does_not_fit_38_digits_is_an_error_not_a_rounding() {
        let mut table = Table::default();
        table.push(|row| row.dec("volume", Decimal::MAX)); // 29 digits, scale 0
        table.push(|row| row.dec("volume", dec("0.0000000001"))); // scale 10
        match table.finish() {
            Err(FinishError::Overflow(overflow)) => {
                assert_eq!(overflow.column, "volume");
                assert_eq!(overflow.row, 0);
                assert_eq!(overflow.scale, 10);
            }
            other => panic!("expected an overflow, got {other:?}"),
        }
        // 28 digits at scale 10 fit: 38 in all.
        assert!(rescaled(dec("999999999999999999999999999"), 10).is_some());
        assert_eq!(rescaled(dec("-1.25"), 3), Some(-1250));
    }

    #[test]
    fn an_overflow_inside_a_list_names_the_row_that_holds_it() {
        let mut table = Table::default();
        let lists: [&[Decimal]; 3] = [&[dec("0.1")], &[], &[dec("0.0000000001"), Decimal::MAX]];
        for list in lists {
            table.push(|row| {
                row.records("values", Some(list), |value, row| {
                    row.dec("v", value.copied())
                })
            });
        }
        match table.finish() {
            Err(FinishError::Overflow(overflow)) => {
                assert_eq!((overflow.column.as_str(), overflow.row), ("values.v", 2));
            }
            other => panic!("expected an overflow, got {other:?}"),
        }
    }

    #[test]
    fn a_row_that_names_other_columns_is_an_error_not_a_panic() {
        let mut table = Table::default();
        table.push(|row| row.u64("seq", 1));
        table.push(|row| row.text("seq", "one"));
        assert!(matches!(table.finish(), Err(FinishError::Internal(_))));
        let mut table = Table::default();
        table.push(|row| row.u64("seq", 1));
        table.push(|row| row.u64("other", 2));
        assert!(matches!(table.finish(), Err(FinishError::Internal(_))));
    }
}
