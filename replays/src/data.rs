//! Candle data: cache files, row validation, resampling – streamed, so memory
//! does not grow with the number of candles.
//!
//! Cache files are named `<EXCHANGE>_<SYMBOL>_<granularity>.csv` or `.csv.gz`
//! with the header `timestamp,unix,open,high,low,close,volume` (candle open
//! time; `unix` is authoritative, in seconds). Any requested granularity is
//! built from the coarsest cached file whose granularity divides it, in buckets
//! aligned to UTC boundaries (`open_ms − open_ms mod granularity`); a bucket
//! missing any of its source bars is not a candle.
//!
//! Rows are validated one by one. A row that parses but is impossible (a price
//! ≤ 0, low above open/close or high below them, negative volume, an open time
//! off the file's granularity grid) is dropped and reported as
//! `invalid_candle`; a repeated time as `duplicate`; a time going backwards as
//! `out_of_order`; missing source bars (counted between valid bars) as a
//! `gap`; a zero-volume bar is kept and reported as a `volume_anomaly`.
//! Findings and candles come out in market-time order. A row that does not
//! parse at all (wrong column count, not a number) is an error naming the file
//! and the line: a malformed file is never half-used.

use anx_journal::{Candle, DataQuality, QualityIssue, UnixMs};
use rust_decimal::Decimal;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The granularities a cache file may have, finest first (seconds, suffix).
const GRANULARITIES: [(u32, &str); 9] = [
    (60, "1m"),
    (300, "5m"),
    (900, "15m"),
    (1800, "30m"),
    (3600, "1h"),
    (7200, "2h"),
    (14_400, "4h"),
    (21_600, "6h"),
    (86_400, "1d"),
];

pub const HEADER: &str = "timestamp,unix,open,high,low,close,volume";

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{file}:{line}: {message}")]
    Malformed {
        file: String,
        line: u64,
        message: String,
    },
    #[error("{file}: {message}")]
    Io { file: String, message: String },
    #[error("no cached data for {symbol} on {exchange} at {granularity} or finer in {dir} (looked for {looked})")]
    NoData {
        exchange: String,
        symbol: String,
        granularity: String,
        dir: String,
        looked: String,
    },
}

/// The suffix of a granularity in seconds (`4h`), or `{n}s`.
pub fn granularity_name(seconds: u32) -> String {
    GRANULARITIES
        .iter()
        .find(|(s, _)| *s == seconds)
        .map_or_else(|| format!("{seconds}s"), |(_, name)| name.to_string())
}

/// A cache file chosen for a symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub granularity_s: u32,
}

/// The cache layout's file name: `<EXCHANGE>_<SYMBOL>_<granularity>.<ext>`.
pub fn cache_file_name(exchange: &str, symbol: &str, granularity_s: u32, ext: &str) -> String {
    format!(
        "{exchange}_{symbol}_{}.{ext}",
        granularity_name(granularity_s)
    )
}

/// The file to build `granularity_s` candles of `symbol` from: the requested
/// granularity itself if cached, else the coarsest cached one dividing it
/// (fewest rows to read).
pub fn find_source(
    dir: &Path,
    exchange: &str,
    symbol: &str,
    granularity_s: u32,
) -> Result<Source, DataError> {
    let mut looked = Vec::new();
    // Prefer the exact granularity, then finer ones from coarse to fine (fewer rows).
    let candidates = GRANULARITIES
        .iter()
        .rev()
        .filter(|(s, _)| *s <= granularity_s && granularity_s.is_multiple_of(*s));
    for &(seconds, _) in candidates {
        for ext in ["csv", "csv.gz"] {
            let file = cache_file_name(exchange, symbol, seconds, ext);
            let path = dir.join(&file);
            looked.push(file);
            if path.is_file() {
                return Ok(Source {
                    path,
                    granularity_s: seconds,
                });
            }
        }
    }
    Err(DataError::NoData {
        exchange: exchange.into(),
        symbol: symbol.into(),
        granularity: granularity_name(granularity_s),
        dir: dir.display().to_string(),
        looked: looked.join(", "),
    })
}

/// The open times of the first and last rows of a cache file (`None` when it
/// holds no row): what the cache covers, to compare with a requested range
/// before a replay starts. Reads only the `unix` column; every other check
/// is the stream's, which reports a malformed row with its line.
pub fn source_span(source: &Source) -> Result<Option<(UnixMs, UnixMs)>, DataError> {
    let file = source.path.display().to_string();
    let io = |e: std::io::Error| DataError::Io {
        file: file.clone(),
        message: e.to_string(),
    };
    let mut reader = open_source(&source.path).map_err(io)?;
    let mut line = String::new();
    let mut span: Option<(UnixMs, UnixMs)> = None;
    let mut first = true;
    while reader.read_line(&mut line).map_err(io)? > 0 {
        if !std::mem::take(&mut first) {
            let unix = line
                .split(',')
                .nth(1)
                .and_then(|u| u.trim().parse::<i64>().ok());
            if let Some(open_ms) = unix.and_then(|u| u.checked_mul(1000)) {
                span = Some(span.map_or((open_ms, open_ms), |(lo, hi)| {
                    (lo.min(open_ms), hi.max(open_ms))
                }));
            }
        }
        line.clear();
    }
    Ok(span)
}

/// A cache file opened for reading, inflated if it is `.gz`.
fn open_source(path: &Path) -> std::io::Result<Box<dyn BufRead + Send>> {
    let handle = File::open(path)?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, handle)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, handle))
    })
}

/// What a stream yields, in market-time order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Candle(Candle),
    /// A data-quality finding, known at `market_ms`.
    Finding {
        market_ms: UnixMs,
        finding: DataQuality,
    },
}

impl Item {
    /// Where an item goes in market-time order: its time, findings before
    /// candles at equal times (a finding about a bar is known when the bar closes).
    pub fn market_order(&self) -> (UnixMs, u8) {
        match self {
            Item::Finding { market_ms, .. } => (*market_ms, 0),
            Item::Candle(c) => (c.close_ms(), 1),
        }
    }
}

struct Bucket {
    open_ms: UnixMs,
    open: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: Decimal,
    rows: u32,
}

/// One parsed source bar, not yet validated: its open time and
/// `[open, high, low, close, volume]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceBar {
    pub open_ms: UnixMs,
    pub ohlcv: [Decimal; 5],
}

/// Validation and resampling of one symbol's source bars, fed one bar at a
/// time in arrival order: the one implementation behind cache files (replay)
/// and the live feed (paper trader), so both see the same candles and findings.
///
/// A bucket is emitted as a candle the moment its last source bar arrives (a
/// live feed cannot wait for the next bucket's first bar).
pub struct BarFolder {
    symbol: String,
    source_ms: i64,
    target_ms: i64,
    start_ms: UnixMs,
    end_ms: UnixMs,
    last_ms: Option<UnixMs>,
    bucket: Option<Bucket>,
    out: VecDeque<Item>,
}

impl BarFolder {
    /// Folds `source_s` bars of `symbol` into `granularity_s` candles whose
    /// whole span lies in `[start_ms, end_ms)`.
    pub fn new(
        symbol: &str,
        source_s: u32,
        granularity_s: u32,
        start_ms: UnixMs,
        end_ms: UnixMs,
    ) -> BarFolder {
        BarFolder {
            symbol: symbol.into(),
            source_ms: i64::from(source_s) * 1000,
            target_ms: i64::from(granularity_s) * 1000,
            start_ms,
            end_ms,
            last_ms: None,
            bucket: None,
            out: VecDeque::new(),
        }
    }

    /// Continues after a candle already folded (a restart): the bar opening
    /// at `last_bar_open_ms` was the last one seen, so gaps are measured from it.
    pub fn resume_after(&mut self, last_bar_open_ms: UnixMs) {
        self.last_ms = Some(last_bar_open_ms);
        self.bucket = None;
    }

    /// Source bar duration (ms).
    pub fn source_ms(&self) -> i64 {
        self.source_ms
    }

    /// The next candle or finding, in market-time order.
    pub fn pop(&mut self) -> Option<Item> {
        self.out.pop_front()
    }

    fn finding(&mut self, market_ms: UnixMs, issue: QualityIssue, source: String, detail: String) {
        let finding = DataQuality {
            symbol: self.symbol.clone(),
            granularity_s: (self.target_ms / 1000) as u32,
            issue,
            source,
            detail,
        };
        self.out.push_back(Item::Finding { market_ms, finding });
    }

    /// Emits the current bucket as a candle if every source bar is in it.
    fn flush(&mut self) {
        let Some(b) = self.bucket.take() else { return };
        let expected = (self.target_ms / self.source_ms) as u32;
        if b.rows == expected && b.open_ms + self.target_ms <= self.end_ms {
            self.out.push_back(Item::Candle(Candle {
                symbol: self.symbol.clone(),
                granularity_s: (self.target_ms / 1000) as u32,
                open_ms: b.open_ms,
                open: b.open,
                high: b.high,
                low: b.low,
                close: b.close,
                volume: b.volume,
            }));
        }
    }

    /// The end of the data: a bucket still short of bars is dropped.
    pub fn finish(&mut self) {
        self.flush();
    }

    /// Validates one bar and folds it in; `source` names where it came from
    /// (file and line, URL), asked for only when there is a finding.
    pub fn push(&mut self, bar: SourceBar, source: &dyn Fn() -> String) {
        let open_ms = bar.open_ms;
        if open_ms < self.start_ms || open_ms >= self.end_ms {
            return;
        }
        let seen_ms = open_ms + self.source_ms;
        if self.dropped_as_repeat(open_ms, seen_ms, source)
            || self.dropped_as_invalid(&bar, seen_ms, source)
        {
            return;
        }
        // Gaps are measured between valid bars, after a dropped row is known to be
        // dropped: a hole followed by an invalid row is one gap, not two overlapping.
        self.note_gap(open_ms, seen_ms, source);
        self.last_ms = Some(open_ms);
        let volume = bar.ohlcv[4];
        if volume.is_zero() {
            self.finding(
                seen_ms,
                QualityIssue::VolumeAnomaly { open_ms, volume },
                source(),
                "zero volume".into(),
            );
        }
        self.fold(bar);
    }

    /// Reports and drops a bar at or before the last one seen: a repeat, or
    /// one out of order.
    fn dropped_as_repeat(
        &mut self,
        open_ms: UnixMs,
        seen_ms: UnixMs,
        source: &dyn Fn() -> String,
    ) -> bool {
        let Some(last) = self.last_ms else {
            return false;
        };
        if open_ms == last {
            self.finding(
                seen_ms,
                QualityIssue::Duplicate { open_ms },
                source(),
                "repeated bar dropped".into(),
            );
            return true;
        }
        if open_ms < last {
            // Known when it is read, after the later bar it follows in the file.
            self.finding(
                last + self.source_ms,
                QualityIssue::OutOfOrder {
                    open_ms,
                    previous_ms: last,
                },
                source(),
                "bar before its predecessor dropped".into(),
            );
            return true;
        }
        false
    }

    /// Reports and drops an impossible bar or one off the file's grid.
    fn dropped_as_invalid(
        &mut self,
        bar: &SourceBar,
        seen_ms: UnixMs,
        source: &dyn Fn() -> String,
    ) -> bool {
        let SourceBar {
            open_ms,
            ohlcv: [open, high, low, close, volume],
        } = *bar;
        let impossible = open <= Decimal::ZERO
            || close <= Decimal::ZERO
            || low <= Decimal::ZERO
            || low > open.min(close)
            || high < open.max(close)
            || volume < Decimal::ZERO;
        // A time off the file's grid (00:30 in an hourly file) is no source bar:
        // counted, it could make a bucket look whole with one of its bars missing.
        let off_grid = open_ms.rem_euclid(self.source_ms) != 0;
        if !impossible && !off_grid {
            return false;
        }
        let detail = if off_grid {
            format!(
                "open time not on the file's {}s grid",
                self.source_ms / 1000
            )
        } else {
            format!("o {open} h {high} l {low} c {close} v {volume}")
        };
        self.finding(
            seen_ms,
            QualityIssue::InvalidCandle { open_ms },
            source(),
            detail,
        );
        true
    }

    /// Reports the source bars missing between the last valid bar and this one.
    fn note_gap(&mut self, open_ms: UnixMs, seen_ms: UnixMs, source: &dyn Fn() -> String) {
        let Some(last) = self.last_ms else {
            return;
        };
        if open_ms > last + self.source_ms {
            let missing = ((open_ms - last) / self.source_ms - 1) as u64;
            self.finding(
                seen_ms,
                QualityIssue::Gap {
                    after_ms: last,
                    before_ms: open_ms,
                    missing_bars: missing,
                },
                source(),
                format!("{missing} source bar(s) missing"),
            );
        }
    }

    /// Folds a valid bar into its bucket, and emits the bucket as a candle
    /// when this bar completes it.
    fn fold(&mut self, bar: SourceBar) {
        let SourceBar {
            open_ms,
            ohlcv: [open, high, low, close, volume],
        } = bar;
        let bucket_ms = open_ms - open_ms.rem_euclid(self.target_ms);
        if self.bucket.as_ref().is_some_and(|b| b.open_ms != bucket_ms) {
            // Short of bars (a whole bucket would have been emitted already).
            self.bucket = None;
        }
        match &mut self.bucket {
            Some(b) => {
                b.high = b.high.max(high);
                b.low = b.low.min(low);
                b.close = close;
                b.volume += volume;
                b.rows += 1;
            }
            None => {
                // A bucket whose first source bar is missing can never be complete:
                // it starts counting at 0 and falls short.
                let rows = u32::from(bucket_ms == open_ms);
                self.bucket = Some(Bucket {
                    open_ms: bucket_ms,
                    open,
                    high,
                    low,
                    close,
                    volume,
                    rows,
                });
            }
        }
        if self.bucket.as_ref().is_some_and(|b| {
            b.rows == (self.target_ms / self.source_ms) as u32
                && open_ms + self.source_ms == bucket_ms + self.target_ms
        }) {
            self.flush();
        }
    }
}

/// Streams the candles (and findings) of one symbol from one cache file.
pub struct CandleStream {
    reader: Box<dyn BufRead + Send>,
    file: String,
    line_no: u64,
    line: String,
    folder: BarFolder,
    done: bool,
    /// Source rows read (for throughput figures).
    pub rows: u64,
}

/// Parses a decimal as written by the cache files (plain or scientific).
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).ok()
    } else {
        Decimal::from_str(text).ok()
    }
}

impl CandleStream {
    /// Opens `source` for `symbol`, yielding `granularity_s` candles whose whole
    /// span lies in `[start_ms, end_ms)`.
    pub fn open(
        source: &Source,
        symbol: &str,
        granularity_s: u32,
        start_ms: UnixMs,
        end_ms: UnixMs,
    ) -> Result<CandleStream, DataError> {
        let file = source.path.display().to_string();
        let reader = open_source(&source.path).map_err(|e| DataError::Io {
            file: file.clone(),
            message: e.to_string(),
        })?;
        CandleStream::from_reader(
            reader,
            &file,
            symbol,
            source.granularity_s,
            granularity_s,
            start_ms,
            end_ms,
        )
    }

    pub fn from_reader(
        mut reader: Box<dyn BufRead + Send>,
        file: &str,
        symbol: &str,
        source_s: u32,
        granularity_s: u32,
        start_ms: UnixMs,
        end_ms: UnixMs,
    ) -> Result<CandleStream, DataError> {
        let mut header = String::new();
        reader.read_line(&mut header).map_err(|e| DataError::Io {
            file: file.into(),
            message: e.to_string(),
        })?;
        if header.trim_end() != HEADER {
            return Err(DataError::Malformed {
                file: file.into(),
                line: 1,
                message: format!(
                    "expected the header {HEADER:?}, found {:?}",
                    header.trim_end()
                ),
            });
        }
        Ok(CandleStream {
            reader,
            file: file.into(),
            line_no: 1,
            line: String::new(),
            folder: BarFolder::new(symbol, source_s, granularity_s, start_ms, end_ms),
            done: false,
            rows: 0,
        })
    }

    fn malformed(&self, message: String) -> DataError {
        DataError::Malformed {
            file: self.file.clone(),
            line: self.line_no,
            message,
        }
    }

    /// Reads one source row; false at the end of the file.
    fn read_row(&mut self) -> Result<bool, DataError> {
        self.line.clear();
        let n = self
            .reader
            .read_line(&mut self.line)
            .map_err(|e| DataError::Io {
                file: self.file.clone(),
                message: e.to_string(),
            })?;
        if n == 0 {
            return Ok(false);
        }
        self.line_no += 1;
        let line = self.line.trim_end();
        if line.is_empty() {
            return Ok(true);
        }
        // Split into a fixed array: no allocation per row.
        let mut fields = [""; 7];
        let mut count = 0usize;
        for field in line.split(',') {
            if let Some(slot) = fields.get_mut(count) {
                *slot = field;
            }
            count += 1;
        }
        if count != 7 {
            return Err(self.malformed(format!("expected 7 comma-separated fields, found {count}")));
        }
        let unix: i64 = fields[1].parse().map_err(|_| {
            self.malformed(format!(
                "unix time {:?} is not a whole number of seconds",
                fields[1]
            ))
        })?;
        let mut values = [Decimal::ZERO; 5];
        for (slot, (name, text)) in values.iter_mut().zip(
            ["open", "high", "low", "close", "volume"]
                .iter()
                .zip(&fields[2..]),
        ) {
            *slot = parse_decimal(text)
                .ok_or_else(|| self.malformed(format!("{name} {text:?} is not a number")))?;
        }
        self.rows += 1;
        let open_ms = unix
            .checked_mul(1000)
            .ok_or_else(|| self.malformed("unix time out of range".into()))?;
        let bar = SourceBar {
            open_ms,
            ohlcv: values,
        };
        let (file, line_no) = (&self.file, self.line_no);
        self.folder.push(bar, &|| format!("{file}:{line_no}"));
        Ok(true)
    }
}

impl Iterator for CandleStream {
    type Item = Result<Item, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.folder.pop() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            match self.read_row() {
                Ok(true) => {}
                Ok(false) => {
                    self.folder.finish();
                    self.done = true;
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
    }
}
