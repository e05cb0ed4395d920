//! Output plumbing shared by every command: logging to stderr, one-line error
//! rendering, market-time and age formatting, and a closed stdout as a normal end.

use anx_journal::UnixMs;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Logs go to stderr only, so `--json` stdout stays clean; colour only when
/// stderr is a terminal (a log file or a pipe gets plain text).
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
        .with_ansi(std::io::stderr().is_terminal())
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

/// A closed stdout (`anx journal export | head`) is not an error. The
/// `io::Error` may be wrapped: `serde_json::Error` keeps it inside without
/// exposing it as a source, so it is asked for the kind directly.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|json| json.io_error_kind() == Some(BrokenPipe))
    })
}

/// `println!` panics when stdout is a closed pipe (`anx journal stat | head
/// -1`); that is a normal end too. This panic hook ends such a process quietly
/// with exit code 0 and leaves every other panic to the default hook.
pub fn end_quietly_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        // std's message: "failed printing to stdout: Broken pipe (os error 32)".
        if message.starts_with("failed printing to stdout")
            && message.to_ascii_lowercase().contains("broken pipe")
        {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// An age as a short human figure, its two largest units: `42 s`,
/// `7 min 5 s`, `5 h 2 min`, `3 d 4 h`; from 30 days on, days only (`347 d`).
/// A negative age (a time after `now`) gets a leading `-`.
// Not yet called: status.rs (the lead engineer's) is to print `({age} ago)` with it.
pub fn humanize_age(seconds: i64) -> String {
    if seconds < 0 {
        return format!("-{}", humanize_age(seconds.saturating_neg().max(0)));
    }
    let pair = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big} {big_unit}")
        } else {
            format!("{big} {big_unit} {small} {small_unit}")
        }
    };
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => pair(s / 60, "min", s % 60, "s"),
        s if s < 86_400 => pair(s / 3_600, "h", s % 3_600 / 60, "min"),
        s if s < 30 * 86_400 => pair(s / 86_400, "d", s % 86_400 / 3_600, "h"),
        s => format!("{} d", s / 86_400),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_their_two_largest_units() {
        assert_eq!(humanize_age(0), "0 s");
        assert_eq!(humanize_age(42), "42 s");
        assert_eq!(humanize_age(60), "1 min");
        assert_eq!(humanize_age(7 * 60 + 5), "7 min 5 s");
        assert_eq!(humanize_age(3_600), "1 h");
        assert_eq!(humanize_age(5 * 3_600 + 2 * 60 + 59), "5 h 2 min");
        assert_eq!(humanize_age(86_400), "1 d");
        assert_eq!(humanize_age(3 * 86_400 + 4 * 3_600 + 59), "3 d 4 h");
        assert_eq!(humanize_age(29 * 86_400 + 23 * 3_600), "29 d 23 h");
        assert_eq!(humanize_age(30 * 86_400 + 5 * 3_600), "30 d");
        assert_eq!(humanize_age(30_040_114), "347 d");
        assert_eq!(humanize_age(-90), "-1 min 30 s");
        assert_eq!(humanize_age(i64::MIN), format!("-{} d", i64::MAX / 86_400));
    }

    /// A writer whose reader has gone away.
    struct Closed(std::io::ErrorKind);

    impl std::io::Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(self.0.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_pipe_inside_a_json_error_is_a_broken_pipe() {
        let write = |kind| serde_json::to_writer(Closed(kind), &[1, 2, 3]).unwrap_err();
        let json = write(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::new(json)));
        let wrapped =
            anyhow::Error::new(write(std::io::ErrorKind::BrokenPipe)).context("exporting");
        assert!(is_broken_pipe(&wrapped));
        let other = write(std::io::ErrorKind::StorageFull);
        assert!(!is_broken_pipe(&anyhow::Error::new(other)));
        let plain = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::new(plain)));
    }
}
