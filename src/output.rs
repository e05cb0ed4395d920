//! Output plumbing shared by every command: logging to stderr, one-line error
//! rendering, market-time formatting.

use anx_journal::UnixMs;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Logs go to stderr only, so `--json` stdout stays clean.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The error and its causes on one line.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// A closed stdout (`anx journal export | head`) is not an error.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `2024-01-01T04:00:00.000Z`, or the raw number if it is out of chrono's range.
pub fn market_time(ms: UnixMs) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(time) => time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => format!("{ms}ms"),
    }
}

/// Bytes as a short human figure (`1.4 MB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A progress line on stderr, shown only on a terminal and only once a run has
/// taken more than a second.
pub struct Progress {
    total: u64,
    label: &'static str,
    enabled: bool,
    shown: bool,
    last_draw_s: f64,
}

impl Progress {
    pub fn new(total: u64, label: &'static str) -> Progress {
        Progress {
            total: total.max(1),
            label,
            enabled: std::io::stderr().is_terminal(),
            shown: false,
            last_draw_s: 0.0,
        }
    }

    pub fn set(&mut self, done: u64, elapsed_s: f64) {
        if !self.enabled || elapsed_s < 1.0 || elapsed_s - self.last_draw_s < 0.1 {
            return;
        }
        self.last_draw_s = elapsed_s;
        self.shown = true;
        let fraction = (done as f64 / self.total as f64).min(1.0);
        let width = 30;
        let filled = (fraction * width as f64) as usize;
        let rate = done as f64 / elapsed_s;
        eprint!(
            "\r{} [{}{}] {:>3.0}% {done}/{} ({rate:.0}/s)   ",
            self.label,
            "#".repeat(filled),
            " ".repeat(width - filled),
            fraction * 100.0,
            self.total
        );
    }

    pub fn finish(&mut self) {
        if self.shown {
            eprintln!();
        }
    }
}
