//! The HTML report in a real browser: the real `anx` binary backtests on the
//! shared candles (../shared/data/candles) and writes its report, which
//! headless Chromium loads from disk, driven through chromedriver's WebDriver
//! HTTP API (a few lines of HTTP/1.1 over `std::net`: no WebDriver crate).
//!
//! A run with trades: every chart drawn (its canvases exist and hold colour,
//! its series hold data), each trade marker on the bar of its fill, a click on
//! a marker and on a trade's row opening that trade's decision trail, hover
//! values, zoom, no timestamp, id or figure wrapped at 1400 px, nothing fetched
//! from the network, and no error on the browser console. A run without
//! trades: the same charts, clean (no `-0.00`, no trail, no error).
//!
//! Chromium and chromedriver are required (`.ci/run` installs them): without
//! them these tests fail, they never skip.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const WIDTH: u32 = 1400;

/// A program on the PATH, or a loud failure saying how to install it.
fn required(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "{program} is not installed: the HTML report's browser tests need Chromium and \
                 chromedriver (apt-get install -y chromium chromium-driver; .ci/run does it)"
            )
        })
}

/// One HTTP/1.1 exchange with chromedriver: the status and the JSON answer.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("cannot reach chromedriver on port {port}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(90)))
        .unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // chromedriver keeps the connection open whatever the request says: read
    // the headers, then the body by its length (or its chunks).
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let body_at = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).expect("chromedriver answers");
        assert!(n > 0, "chromedriver closed the connection mid-answer");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..body_at]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status");
    let length = head.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    let complete = |raw: &[u8]| match length {
        Some(length) => raw.len() >= body_at + length,
        None => raw.ends_with(b"0\r\n\r\n"),
    };
    while !complete(&raw) {
        let n = stream.read(&mut buf).expect("chromedriver answers");
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let payload = String::from_utf8_lossy(&raw[body_at..]).into_owned();
    let payload = if length.is_none() {
        dechunk(&payload)
    } else {
        payload
    };
    let value = serde_json::from_str(&payload).unwrap_or(Value::Null);
    (status, value)
}

/// A chunked HTTP body, joined.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// chromedriver and its headless Chromium, both ended on drop (a failed
/// assertion included): the session is deleted, then the whole process group
/// the driver was started in is killed.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let driver_path = required("chromedriver");
        assert!(
            Path::new(CHROMIUM).is_file(),
            "{CHROMIUM} is not installed (apt-get install -y chromium chromium-driver)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        use std::os::unix::process::CommandExt;
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            profile,
        };
        browser.wait_ready();
        browser.session = browser.new_session();
        browser
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen on port {} within 20 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn new_session(&self) -> String {
        let profile = format!("--user-data-dir={}", self.profile.path().display());
        let window = format!("--window-size={WIDTH},1000");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &profile,
            &window,
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let (status, answer) = http(self.port, "POST", "/session", Some(&capabilities));
        assert_eq!(status, 200, "chromedriver refused a session: {answer}");
        answer["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string()
    }

    /// A WebDriver command of this session; anything but 200 fails the test.
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let full = format!("/session/{}{path}", self.session);
        let (status, answer) = http(self.port, method, &full, body.as_ref());
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer["value"].clone()
    }

    fn open(&self, file: &Path) {
        let url = format!("file://{}", file.display());
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page with `args`.
    fn js(&self, script: &str, args: Value) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Moves the mouse to a viewport point, and clicks there when `click`.
    fn mouse(&self, x: f64, y: f64, click: bool) {
        let mut steps = vec![
            json!({"type": "pointerMove", "duration": 0, "origin": "viewport",
            "x": x.round() as i64, "y": y.round() as i64}),
        ];
        if click {
            steps.push(json!({"type": "pointerDown", "button": 0}));
            steps.push(json!({"type": "pointerUp", "button": 0}));
        }
        steps.push(json!({"type": "pause", "duration": 50}));
        let actions = json!({"actions": [{"type": "pointer", "id": "mouse",
            "parameters": {"pointerType": "mouse"}, "actions": steps}]});
        self.command("POST", "/actions", Some(actions));
        self.command("DELETE", "/actions", None);
    }

    /// Turns the mouse wheel over a viewport point.
    fn wheel(&self, x: f64, y: f64, delta_y: i64) {
        let actions = json!({"actions": [{"type": "wheel", "id": "wheel", "actions": [
            {"type": "scroll", "origin": "viewport", "x": x.round() as i64, "y": y.round() as i64,
             "deltaX": 0, "deltaY": delta_y, "duration": 0},
            {"type": "pause", "duration": 50}]}]});
        self.command("POST", "/actions", Some(actions));
    }

    /// The browser console since the last call (chromedriver's log endpoint).
    fn console(&self) -> Vec<Value> {
        self.command("POST", "/se/log", Some(json!({"type": "browser"})))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// A page screenshot, written where `ANX_SCREENSHOT_DIR` says (to look at).
    fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("ANX_SCREENSHOT_DIR") else {
            return;
        };
        use base64::Engine;
        let png = self.command("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64 PNG"))
            .expect("a PNG");
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = std::panic::catch_unwind(|| http(self.port, "DELETE", &path, None));
        }
        // The driver leads its own process group, which Chromium joined.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Backtests `symbols` over `start..end` into `dir` and writes its HTML report.
fn report(dir: &Path, symbols: &str, start: &str, end: &str) -> PathBuf {
    let cache = shared_candles();
    let journal = dir.join("journal");
    let html = dir.join("report.html");
    let run = anx(&[
        "replay",
        "run",
        "--symbols",
        symbols,
        "--start",
        start,
        "--end",
        end,
        "--data-source",
        "cache",
        "--cache-dir",
        path_str(&cache),
        "--journal",
        path_str(&journal),
        "--report-format",
        "html",
        "--report-out",
        path_str(&html),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&html).unwrap();
    // One file: nothing linked or sourced from anywhere.
    for outside in ["<link", "<script src", "src=\"http", "@import", "url(http"] {
        assert!(!text.contains(outside), "the report holds {outside}");
    }
    html
}

/// Loads the report and waits for its script to have drawn the charts.
fn load(browser: &Browser, html: &Path) {
    browser.open(html);
    let started = Instant::now();
    while browser.js("return !!window.anxReport;", json!([])) != json!(true) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the report's script did not run; console: {:?}",
            browser.console()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The charts paint on the next animation frame: wait for two.
    browser.command(
        "POST",
        "/execute/async",
        Some(
            json!({"script": "const done = arguments[arguments.length - 1]; \
            requestAnimationFrame(() => requestAnimationFrame(() => done(true)));", "args": []}),
        ),
    );
}

/// Per chart: its canvases, whether one of them holds colour, its points.
const CHARTS: &str = r#"
const coloured = (el) => Array.from(el.querySelectorAll('canvas')).some((c) => {
  if (!c.width || !c.height) return false;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0 && (Math.abs(d[i] - d[i + 1]) > 40 || Math.abs(d[i + 1] - d[i + 2]) > 40)) return true;
  }
  return false;
});
const of = (c) => ({ canvases: c.el.querySelectorAll('canvas').length, coloured: coloured(c.el),
  points: c.series.data().length });
return {
  price: anxReport.price.map((c) => Object.assign(of(c), { symbol: c.symbol.symbol,
    trades: c.symbol.trades.length,
    // Each marker sits on the bar its fill falls in.
    misplaced: c.symbol.trades.filter((t) => c.series.data()[t.entry_i].time !== t.entry_t
      || c.series.data()[t.exit_i].time !== t.exit_t).map((t) => t.id) })),
  equity: of(anxReport.equity),
  drawdown: of(anxReport.drawdown),
  trails: document.querySelectorAll('details[id^="trail-"]').length,
  resources: performance.getEntriesByType('resource').map((r) => r.name),
  width: window.innerWidth,
};
"#;

/// Every chart of the page drawn, with data; returns the charts' summary.
fn assert_charts_drawn(browser: &Browser) -> Value {
    let charts = browser.js(CHARTS, json!([]));
    let price = charts["price"].as_array().expect("price charts");
    assert!(!price.is_empty(), "no price chart: {charts}");
    let all = price.iter().chain([&charts["equity"], &charts["drawdown"]]);
    for chart in all {
        assert!(
            chart["canvases"].as_u64().unwrap() > 0,
            "no canvas: {charts}"
        );
        assert!(chart["points"].as_u64().unwrap() > 0, "no data: {charts}");
        assert_eq!(chart["coloured"], json!(true), "nothing drawn: {charts}");
    }
    for chart in price {
        assert_eq!(chart["misplaced"], json!([]), "{charts}");
    }
    assert_eq!(charts["resources"], json!([]), "the page fetched something");
    assert!(charts["width"].as_u64().unwrap() >= u64::from(WIDTH) - 40);
    charts
}

/// Timestamps, ids and figures that take more than one line at this width.
const WRAPPED: &str = r#"
const wrapped = [];
const check = (el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const boxes = Array.from(range.getClientRects()).filter((b) => b.width > 0);
  if (!boxes.length) return;
  const height = Math.max(...boxes.map((b) => b.bottom)) - Math.min(...boxes.map((b) => b.top));
  const line = parseFloat(getComputedStyle(el).lineHeight) || 20;
  if (height > 1.5 * line) wrapped.push(el.textContent);
};
document.querySelectorAll('h2 + table td, h2 + table th').forEach(check);
document.querySelectorAll('details > summary').forEach(check);
return wrapped;
"#;

/// The console's errors, after proving the console is read at all.
fn assert_no_console_errors(browser: &Browser) {
    browser.js(
        "console.error('anx-console-probe'); return null;",
        json!([]),
    );
    let entries = browser.console();
    let text = |e: &Value| e["message"].as_str().unwrap_or("").to_string();
    assert!(
        entries
            .iter()
            .any(|e| text(e).contains("anx-console-probe")),
        "the browser console could not be read: {entries:?}"
    );
    let errors: Vec<String> = entries
        .iter()
        .filter(|e| e["level"] == "SEVERE" && !text(e).contains("anx-console-probe"))
        .map(text)
        .collect();
    assert!(errors.is_empty(), "browser console errors: {errors:#?}");
}

/// Clicks the centre of what `locate` (a script returning `{x, y}` in the
/// viewport, after scrolling it into view) finds, then checks that trade
/// `id`'s trail is the address, open and on screen.
fn click_reaches_trail(browser: &Browser, locate: &str, id: &str, what: &str) {
    browser.js(
        "document.querySelectorAll('details').forEach((d) => d.open = false); \
         history.replaceState(null, '', location.pathname); window.scrollTo(0, 0); return null;",
        json!([]),
    );
    let point = browser.js(locate, json!([id]));
    let (x, y) = (point["x"].as_f64(), point["y"].as_f64());
    let (Some(x), Some(y)) = (x, y) else {
        panic!("{what} of {id} not found on the page: {point}");
    };
    browser.mouse(x, y, true);
    std::thread::sleep(Duration::from_millis(200));
    let state = browser.js(
        "const d = document.getElementById('trail-' + arguments[0]); \
         const top = d ? d.getBoundingClientRect().top : -1e9; \
         return { hash: decodeURIComponent(location.hash), open: !!(d && d.open), \
                  visible: top > -5 && top < window.innerHeight };",
        json!([id]),
    );
    assert_eq!(
        state,
        json!({"hash": format!("#trail-{id}"), "open": true, "visible": true}),
        "clicking the {what} of {id} did not open its trail"
    );
}

const MARKER: &str = "document.getElementById('charts').scrollIntoView(); \
    const c = anxReport.price.find((c) => c.symbol.trades.some((t) => t.id === arguments[0])); \
    c.el.scrollIntoView({ block: 'center' }); \
    return anxReport.markerInViewport(arguments[0], 'exit');";

const ROW_CELL: &str =
    "const link = document.querySelector('a[href=\"#trail-' + arguments[0] + '\"]'); \
    const cell = link.closest('tr').children[1]; \
    cell.scrollIntoView({ block: 'center' }); \
    const b = cell.getBoundingClientRect(); \
    return { x: b.left + b.width / 2, y: b.top + b.height / 2 };";

/// Hovering the equity chart shows a day's value; the wheel zooms a price chart.
fn assert_hover_and_zoom(browser: &Browser) {
    let box_of = "const el = document.getElementById(arguments[0]); \
        el.scrollIntoView({ block: 'center' }); const b = el.getBoundingClientRect(); \
        return { x: b.left + b.width * 0.4, y: b.top + b.height / 2, \
                 legend: el.querySelector('.legend').textContent };";
    let equity = browser.js(box_of, json!(["chart-equity"]));
    browser.mouse(
        equity["x"].as_f64().unwrap(),
        equity["y"].as_f64().unwrap(),
        false,
    );
    let legend = browser.js(
        "return document.querySelector('#chart-equity .legend').textContent;",
        json!([]),
    );
    let legend = legend.as_str().unwrap();
    assert_ne!(
        legend,
        equity["legend"].as_str().unwrap(),
        "hover changed nothing"
    );
    let day = regex_like_day_value(legend);
    assert!(day, "the hover legend shows no day and value: {legend:?}");
    let price = browser.js(box_of, json!(["chart-price-0"]));
    let range = "const r = anxReport.price[0].chart.timeScale().getVisibleLogicalRange(); \
        return r.to - r.from;";
    let before = browser.js(range, json!([])).as_f64().unwrap();
    browser.wheel(
        price["x"].as_f64().unwrap(),
        price["y"].as_f64().unwrap(),
        -600,
    );
    std::thread::sleep(Duration::from_millis(200));
    let after = browser.js(range, json!([])).as_f64().unwrap();
    assert!(
        after < before * 0.98,
        "the wheel did not zoom in: {before} -> {after} bars"
    );
}

/// `equity YYYY-MM-DD N.NN`.
fn regex_like_day_value(legend: &str) -> bool {
    let parts: Vec<&str> = legend.split_whitespace().collect();
    parts.len() == 3
        && parts[0] == "equity"
        && parts[1].len() == 10
        && parts[1].chars().filter(|c| *c == '-').count() == 2
        && parts[2].parse::<f64>().is_ok()
}

#[test]
fn a_backtest_report_draws_its_charts_and_links_every_trade_to_its_trail() {
    let work = tempfile::tempdir().unwrap();
    let html = report(work.path(), "BTC-USD,ETH-USD", "2024-05-01", "2024-11-01");
    let browser = Browser::start();
    load(&browser, &html);
    browser.screenshot("with-trades-top");
    let charts = assert_charts_drawn(&browser);
    let trades: u64 = charts["price"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["trades"].as_u64().unwrap())
        .sum();
    assert!(
        trades >= 2,
        "the backtest made too few trades to test: {charts}"
    );
    assert_eq!(charts["trails"].as_u64().unwrap(), trades, "{charts}");
    let ids = browser.js(
        "return anxReport.price.flatMap((c) => c.symbol.trades.map((t) => t.id));",
        json!([]),
    );
    let ids: Vec<&str> = ids
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    click_reaches_trail(&browser, MARKER, ids[0], "exit marker");
    browser.screenshot("marker-clicked");
    click_reaches_trail(&browser, ROW_CELL, ids[ids.len() - 1], "table row");
    let wrapped = browser.js(WRAPPED, json!([]));
    assert_eq!(wrapped, json!([]), "wrapped at {WIDTH} px");
    assert_hover_and_zoom(&browser);
    browser.screenshot("zoomed");
    assert_no_console_errors(&browser);
}

#[test]
fn a_run_without_trades_renders_cleanly() {
    let work = tempfile::tempdir().unwrap();
    let html = report(work.path(), "BTC-USD", "2024-04-20", "2024-05-10");
    let browser = Browser::start();
    load(&browser, &html);
    browser.screenshot("no-trades");
    let charts = assert_charts_drawn(&browser);
    assert_eq!(charts["trails"], json!(0), "{charts}");
    assert_eq!(charts["price"][0]["trades"], json!(0), "{charts}");
    let page = browser.js(
        "return { text: document.body.innerText, \
                  axis: anxReport.drawdown.series.priceFormatter().format(-1e-9) };",
        json!([]),
    );
    let text = page["text"].as_str().unwrap();
    for bad in ["-0.00", "NaN", "undefined", "Infinity"] {
        assert!(!text.contains(bad), "the page shows {bad}");
    }
    assert!(text.contains("no closed trades"), "{text}");
    assert!(!page["axis"].as_str().unwrap().contains("-0.00"), "{page}");
    let wrapped = browser.js(WRAPPED, json!([]));
    assert_eq!(wrapped, json!([]), "wrapped at {WIDTH} px");
    assert_no_console_errors(&browser);
}
