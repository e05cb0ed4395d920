//! `fake-coinbase`: a fake Coinbase Advanced Trade REST API on real cached
//! candles, to rehearse `anx live` on a laptop and to test the live broker
//! against. Parses the command line, starts `anx_tools::fake_coinbase::serve`,
//! prints `listening on http://ADDR` (and writes it to `--port-file`), and
//! serves until SIGTERM, SIGINT or `POST /fake/shutdown`. The logic and its
//! README are in `tools/src/fake_coinbase/`.

use anx_tools::fake_coinbase::matching::{ChildAppears, Fees, MarketFills};
use anx_tools::fake_coinbase::{market, serve, Config};
use clap::{Parser, ValueEnum};
use rust_decimal::Decimal;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MarketFillsArg {
    Immediate,
    AtBarClose,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ChildAppearsArg {
    AtOnce,
    OnFill,
}

/// A fake Coinbase Advanced Trade REST API on cached candles.
#[derive(Parser, Debug)]
#[command(
    name = "fake-coinbase",
    after_help = "Example:\n  fake-coinbase --candles ../shared/data/candles --symbols BTC-USD,ETH-USD \
                  --granularity 1h --start 2024-05-01T00:00:00Z --key-file key.json --speed 60"
)]
struct Cli {
    /// The candle cache directory (COINBASE_<SYMBOL>_<granularity>.csv[.gz]).
    #[arg(long, value_name = "DIR")]
    candles: PathBuf,
    /// Products to trade, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    symbols: Vec<String>,
    /// The bars the fake trades on: 1m, 5m, 15m, 1h, 1d …
    #[arg(long, default_value = "1h")]
    granularity: String,
    /// Where the market clock starts (RFC 3339).
    #[arg(long)]
    start: String,
    /// The CDP key file the client signs with: {"name", "privateKey"}.
    #[arg(long, value_name = "KEY.json")]
    key_file: PathBuf,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write the URL here once listening.
    #[arg(long, value_name = "PATH")]
    port_file: Option<PathBuf>,
    /// USD in the account at the start.
    #[arg(long, default_value = "10000")]
    usd: Decimal,
    #[arg(long, default_value = "40")]
    maker_fee_bps: Decimal,
    #[arg(long, default_value = "60")]
    taker_fee_bps: Decimal,
    #[arg(long, default_value = "2")]
    slippage_bps: Decimal,
    /// Market seconds per real second; 0: a manual clock (POST /fake/clock).
    #[arg(long, default_value_t = 0)]
    speed: u64,
    /// Shifts the clock tokens are checked against and the Date header (seconds).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    auth_clock_offset_s: i64,
    /// When a bracket's child order becomes visible.
    #[arg(long, value_enum, default_value = "at-once")]
    child_appears: ChildAppearsArg,
    /// When market orders fill: at once (Coinbase), or at the close of the
    /// bar they were placed in, at the same price (anx's simulated exchange:
    /// for parity tests against `anx replay run`).
    #[arg(long, value_enum, default_value = "immediate")]
    market_fills: MarketFillsArg,
    /// Persist the account here (JSON, after every change); a restart resumes it.
    #[arg(long, value_name = "PATH")]
    state_file: Option<PathBuf>,
}

fn config(cli: Cli) -> Result<Config, String> {
    let granularity_s = market::parse_granularity(&cli.granularity).ok_or_else(|| {
        format!(
            "--granularity {:?} is not like 15m, 1h or 1d",
            cli.granularity
        )
    })?;
    let start_ms = chrono::DateTime::parse_from_rfc3339(&cli.start)
        .map_err(|e| format!("--start {:?} is not RFC 3339: {e}", cli.start))?
        .timestamp_millis();
    let mut config = Config::new(
        cli.candles,
        cli.symbols,
        granularity_s,
        start_ms,
        cli.key_file,
    );
    config.listen = cli.listen;
    config.usd = cli.usd;
    config.fees = Fees {
        maker_fee_bps: cli.maker_fee_bps,
        taker_fee_bps: cli.taker_fee_bps,
        slippage_bps: cli.slippage_bps,
    };
    config.speed = cli.speed;
    config.auth_clock_offset_s = cli.auth_clock_offset_s;
    config.child_appears = match cli.child_appears {
        ChildAppearsArg::AtOnce => ChildAppears::AtOnce,
        ChildAppearsArg::OnFill => ChildAppears::OnFill,
    };
    config.market_fills = match cli.market_fills {
        MarketFillsArg::Immediate => MarketFills::Immediate,
        MarketFillsArg::AtBarClose => MarketFills::AtBarClose,
    };
    config.state_file = cli.state_file;
    Ok(config)
}

fn write_port_file(path: &Path, url: &str) -> Result<(), String> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, format!("{url}\n"))
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| format!("cannot write --port-file {}: {e}", path.display()))
}

async fn run(config: Config, port_file: Option<PathBuf>) -> Result<(), String> {
    let (address, handle) = serve(config).await.map_err(|e| e.to_string())?;
    let url = format!("http://{address}");
    if let Some(path) = port_file {
        write_port_file(&path, &url)?;
    }
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {url}");
    let _ = stdout.flush();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot wait for SIGTERM: {e}"))?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
        () = handle.stopping() => {}
    }
    handle.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let port_file = cli.port_file.clone();
    let outcome = config(cli).and_then(|config| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?
            .block_on(run(config, port_file))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fake-coinbase: {message}");
            ExitCode::from(2)
        }
    }
}
