//! The Prometheus text exposition format (version 0.0.4), written by hand,
//! and the few figures only this process knows (request latencies, loop
//! durations, reconnects, alert deliveries).
//!
//! Why not a client crate (`prometheus`, `prometheus-client`): nearly every
//! figure a trader exposes is a fold of its journal – counters that survive
//! a restart because the journal does – so a registry of live instruments
//! would hold a second copy of what the projection already counts. What is
//! left is a writer of a simple text format (families, labels, escaping,
//! histograms) and a handful of atomics, tested against the format's rules
//! here and against Prometheus' own parser (python `prometheus_client`) in
//! `tests/ops_cli.rs`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Counter,
    Gauge,
    Histogram,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Histogram => "histogram",
        }
    }
}

/// Writes families one after another; each sample right after its family's
/// `# HELP` and `# TYPE` lines (the format requires a family's samples to
/// be together).
#[derive(Default)]
pub struct TextWriter {
    out: String,
}

impl TextWriter {
    /// Starts a family. `name` must match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    pub fn family(&mut self, name: &str, kind: Type, help: &str) {
        debug_assert!(valid_name(name), "metric name {name}");
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.name());
    }

    /// One sample: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (index, (label, text)) in labels.iter().enumerate() {
                debug_assert!(valid_name(label) && !label.contains(':'), "label {label}");
                if index > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape_label(text));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", value.into().text());
    }

    /// A family with one sample and no labels.
    pub fn single(&mut self, name: &str, kind: Type, help: &str, value: impl Into<Value>) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A histogram's samples (its family already started): cumulative
    /// buckets, `+Inf`, sum and count.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let mut cumulative = 0u64;
        let bucket = format!("{name}_bucket");
        for (bound, count) in h.bounds_s.iter().zip(&h.counts) {
            cumulative += count;
            let le = bucket_bound(*bound);
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative);
        }
        let mut with_inf: Vec<(&str, &str)> = labels.to_vec();
        with_inf.push(("le", "+Inf"));
        self.sample(&bucket, &with_inf, h.count);
        self.sample(&format!("{name}_sum"), labels, Value::Float(h.sum_s));
        self.sample(&format!("{name}_count"), labels, h.count);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A sample's value.
#[derive(Clone, Debug)]
pub enum Value {
    Int(u64),
    Signed(i64),
    Float(f64),
    /// An exact decimal, as written (money is never an f64 here).
    Text(String),
}

impl Value {
    fn text(self) -> String {
        match self {
            Value::Int(v) => v.to_string(),
            Value::Signed(v) => v.to_string(),
            Value::Float(v) => format_float(v),
            Value::Text(v) => v,
        }
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Signed(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

/// A float as the format writes it (`NaN`, `+Inf`, `-Inf` spelled out).
fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// A bucket's `le` as Prometheus' own clients write it (`1.0`, not `1`):
/// the same bound must be the same label value across exporters.
fn bucket_bound(v: f64) -> String {
    let text = format_float(v);
    if text.contains(['.', 'e', 'I', 'N']) {
        text
    } else {
        format!("{text}.0")
    }
}

fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Upper bounds of the duration buckets, in seconds: 1 ms to five minutes (a
/// request with retries and backoff can take tens of seconds, a pass of the
/// loop a few of those).
pub const LATENCY_BOUNDS_S: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// A histogram of durations, lock-free to record.
pub struct Histogram {
    counts: [AtomicU64; LATENCY_BOUNDS_S.len() + 1],
    sum_us: AtomicU64,
}

/// A histogram as read at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    pub bounds_s: Vec<f64>,
    /// Per bucket, not cumulative (the last is above every bound).
    pub counts: Vec<u64>,
    pub count: u64,
    pub sum_s: f64,
}

impl Histogram {
    pub const fn new() -> Histogram {
        Histogram {
            counts: [const { AtomicU64::new(0) }; LATENCY_BOUNDS_S.len() + 1],
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn record(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let index = LATENCY_BOUNDS_S
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BOUNDS_S.len());
        self.counts[index].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let all: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        HistogramSnapshot {
            bounds_s: LATENCY_BOUNDS_S.to_vec(),
            counts: all[..LATENCY_BOUNDS_S.len()].to_vec(),
            count: all.iter().sum(),
            sum_s: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// Which of the exchange's APIs a request went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// Public market data (candles, the exchange's time).
    MarketData,
    /// A live trader's orders, fills and accounts.
    Trading,
}

impl Api {
    pub const ALL: [Api; 2] = [Api::MarketData, Api::Trading];

    pub fn label(self) -> &'static str {
        match self {
            Api::MarketData => "market_data",
            Api::Trading => "trading",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What this process counts that no journal holds.
pub struct ProcessMetrics {
    request_latency: [Histogram; 2],
    request_failures: [AtomicU64; 2],
    last_failure: Mutex<String>,
    pub loop_duration: Histogram,
    /// A market data feed, or the broker's view, back after an outage.
    pub reconnects: AtomicU64,
    pub alerts_sent: AtomicU64,
    pub alerts_failed: AtomicU64,
    pub alerts_dropped: AtomicU64,
}

/// The process's figures: requests are recorded where they are made (market
/// data in `fetch`, a live trader's calls in `coinbase::rest`).
pub static PROCESS: ProcessMetrics = ProcessMetrics::new();

impl ProcessMetrics {
    pub const fn new() -> ProcessMetrics {
        ProcessMetrics {
            request_latency: [Histogram::new(), Histogram::new()],
            request_failures: [AtomicU64::new(0), AtomicU64::new(0)],
            last_failure: Mutex::new(String::new()),
            loop_duration: Histogram::new(),
            reconnects: AtomicU64::new(0),
            alerts_sent: AtomicU64::new(0),
            alerts_failed: AtomicU64::new(0),
            alerts_dropped: AtomicU64::new(0),
        }
    }

    /// One request to the exchange, retries included: how long it took, and
    /// its failure if it got no usable answer.
    pub fn request(&self, api: Api, took: Duration, failure: Option<&str>) {
        self.request_latency[api.index()].record(took);
        if let Some(error) = failure {
            self.unusable(api, error);
        }
    }

    /// An answer that could not be used (not what was asked for): a failure
    /// of its request, whose time was already recorded.
    pub fn unusable(&self, api: Api, error: &str) {
        self.request_failures[api.index()].fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_failure.lock() {
            *last = error.chars().take(300).collect();
        }
    }

    /// Requests failed so far (any API), and the newest failure.
    pub fn failures(&self) -> (u64, String) {
        let count = self
            .request_failures
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        let last = self
            .last_failure
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        (count, last)
    }

    /// Writes the process's families.
    pub fn write(&self, w: &mut TextWriter) {
        let name = "anx_broker_request_duration_seconds";
        w.family(
            name,
            Type::Histogram,
            "Requests to the exchange, retries and backoff included, by API.",
        );
        for api in Api::ALL {
            let snapshot = self.request_latency[api.index()].snapshot();
            w.histogram(name, &[("api", api.label())], &snapshot);
        }
        let name = "anx_broker_request_failures_total";
        w.family(
            name,
            Type::Counter,
            "Requests to the exchange that got no usable answer after their retries, by API.",
        );
        for api in Api::ALL {
            let failures = self.request_failures[api.index()].load(Ordering::Relaxed);
            w.sample(name, &[("api", api.label())], failures);
        }
        let name = "anx_loop_duration_seconds";
        w.family(
            name,
            Type::Histogram,
            "One pass of the trading loop: inbox, market data, decisions, broker, reconciliation.",
        );
        w.histogram(name, &[], &self.loop_duration.snapshot());
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        w.single(
            "anx_reconnects_total",
            Type::Counter,
            "Market data feeds, or the broker's view, back after an outage (this process).",
            count(&self.reconnects),
        );
        w.single(
            "anx_alerts_sent_total",
            Type::Counter,
            "Alerts the webhook accepted.",
            count(&self.alerts_sent),
        );
        w.single(
            "anx_alerts_failed_total",
            Type::Counter,
            "Alerts given up after every retry (the journal keeps each finding).",
            count(&self.alerts_failed),
        );
        w.single(
            "anx_alerts_dropped_total",
            Type::Counter,
            "Alerts dropped: the delivery queue was full (or delivery could not start).",
            count(&self.alerts_dropped),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_families_have_help_and_type() {
        let mut w = TextWriter::default();
        w.family("anx_x_total", Type::Counter, "a \\ help\nline");
        w.sample(
            "anx_x_total",
            &[("reason", "a\"b\\c\nd"), ("symbol", "BTC-USD")],
            3u64,
        );
        w.single("anx_y", Type::Gauge, "y", -2i64);
        w.single("anx_z", Type::Gauge, "z", f64::NAN);
        assert_eq!(
            w.finish(),
            "# HELP anx_x_total a \\\\ help\\nline\n# TYPE anx_x_total counter\n\
             anx_x_total{reason=\"a\\\"b\\\\c\\nd\",symbol=\"BTC-USD\"} 3\n\
             # HELP anx_y y\n# TYPE anx_y gauge\nanx_y -2\n\
             # HELP anx_z z\n# TYPE anx_z gauge\nanx_z NaN\n"
        );
    }

    #[test]
    fn a_histogram_is_cumulative_with_inf_sum_and_count() {
        let h = Histogram::new();
        h.record(Duration::from_micros(500)); // <= 0.001
        h.record(Duration::from_millis(3)); // <= 0.005
        h.record(Duration::from_millis(3));
        h.record(Duration::from_secs(600)); // above every bound
        let snapshot = h.snapshot();
        assert_eq!(snapshot.count, 4);
        assert!((snapshot.sum_s - 600.0065).abs() < 1e-9);
        let mut w = TextWriter::default();
        w.family("anx_d_seconds", Type::Histogram, "d");
        w.histogram("anx_d_seconds", &[("api", "trading")], &snapshot);
        let text = w.finish();
        let line = |le: &str| {
            let prefix = format!("anx_d_seconds_bucket{{api=\"trading\",le=\"{le}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no bucket {le} in\n{text}"))
                .to_string()
        };
        assert_eq!(line("0.001"), "1");
        assert_eq!(line("0.0025"), "1");
        assert_eq!(line("0.005"), "3");
        assert_eq!(line("1.0"), "3");
        assert_eq!(line("60.0"), "3");
        assert_eq!(line("300.0"), "3");
        assert_eq!(line("+Inf"), "4");
        assert!(text.contains("anx_d_seconds_count{api=\"trading\"} 4\n"));
        assert!(text.contains("anx_d_seconds_sum{api=\"trading\"} 600.0065\n"));
    }

    #[test]
    fn failures_are_counted_by_api_with_the_newest_kept() {
        let p = ProcessMetrics::new();
        p.request(Api::MarketData, Duration::from_millis(1), Some("HTTP 500"));
        p.request(Api::Trading, Duration::from_millis(1), Some("timed out"));
        p.request(Api::MarketData, Duration::from_millis(1), None);
        assert_eq!(p.failures(), (2, "timed out".to_string()));
        let mut w = TextWriter::default();
        p.write(&mut w);
        let text = w.finish();
        assert!(text.contains("anx_broker_request_failures_total{api=\"market_data\"} 1\n"));
        assert!(text.contains("anx_broker_request_duration_seconds_count{api=\"market_data\"} 2\n"));
    }
}
