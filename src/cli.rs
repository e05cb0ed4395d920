//! The command-line surface (clap). Each subcommand hands off to a module that
//! does the work and returns an exit code.

use crate::journal_cmd;
use anx_journal::Head;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "anx",
    version,
    about = "anx: an event-sourced, hash-chained trading journal"
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Inspect, verify, replay and export a journal.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// The full causal trail of a trade, an order id or a client_order_id.
    Why(WhyArgs),
    /// Backtest over historical candles through the production engine.
    #[command(subcommand)]
    Replay(ReplayCommand),
    /// Candle data: fill the cache from Coinbase.
    #[command(subcommand)]
    Data(DataCommand),
    /// Health of a trader's journal (read-only, safe while it runs); exit 1 when unhealthy.
    Status(StatusArgs),
    /// Paper trading: live Coinbase candles, the simulated broker, a durable
    /// journal; runs until SIGINT/SIGTERM and resumes by replaying its journal.
    Paper(PaperArgs),
}

#[derive(Args, Debug)]
pub struct PaperArgs {
    /// Configuration file (TOML; `extends` another).
    #[arg(long, default_value = "config/paper.toml")]
    pub config: PathBuf,
    /// Comma-separated symbols (default: the configuration's).
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// The trader's journal directory: created on the first start, replayed on
    /// every later one.
    #[arg(long, default_value = "anx-data/paper")]
    pub journal: PathBuf,
    /// Base URL of Coinbase Advanced Trade's public market-data API.
    #[arg(long, default_value = "https://api.coinbase.com")]
    pub market_url: String,
    /// Seconds between polls of the market (decimals allowed).
    #[arg(long, default_value = "30")]
    pub poll_interval: f64,
    /// Seconds before a market-data request times out.
    #[arg(long, default_value = "10")]
    pub request_timeout: f64,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The journal directory.
    pub dir: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Judge the age of the data as of this time (RFC 3339 or YYYY-MM-DD)
    /// instead of the clock: for audits of a past moment and for tests.
    #[arg(long)]
    pub now: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Fetch public candles from Coinbase into the cache (a cache hit makes no request).
    Fetch(FetchArgs),
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// Comma-separated symbols.
    #[arg(long, value_delimiter = ',', required = true)]
    pub symbols: Vec<String>,
    /// First day (YYYY-MM-DD, UTC) or an RFC 3339 time.
    #[arg(long)]
    pub start: String,
    /// End (exclusive).
    #[arg(long)]
    pub end: String,
    /// The granularity the candles are for (Coinbase's coarsest dividing one is fetched).
    #[arg(long, default_value = "4h")]
    pub granularity: String,
    #[arg(long, default_value = "data/cache")]
    pub cache_dir: PathBuf,
    /// Base URL of Coinbase's public API.
    #[arg(long, default_value = "https://api.coinbase.com")]
    pub coinbase_url: String,
}

#[derive(Subcommand, Debug)]
pub enum ReplayCommand {
    /// Replay cached candles through the engine and the simulated exchange into a new journal.
    Run(ReplayRunArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    Table,
    Json,
    Html,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum DataSource {
    /// Only the cache directory.
    Cache,
    /// Coinbase's public candles, filling the cache on a miss.
    Coinbase,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum CapitalModeArg {
    Independent,
    Portfolio,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum RunModeArg {
    #[value(name = "replay_backtest", alias = "replay-backtest")]
    ReplayBacktest,
    #[value(name = "paper_live", alias = "paper-live")]
    PaperLive,
}

#[derive(Args, Debug)]
pub struct ReplayRunArgs {
    /// Comma-separated symbols (default: the config's run.symbols).
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// First day (YYYY-MM-DD, UTC) or an RFC 3339 time.
    #[arg(long)]
    pub start: String,
    /// End (exclusive): a day (YYYY-MM-DD, UTC) or an RFC 3339 time.
    #[arg(long)]
    pub end: String,
    /// Candle size the strategy runs on (default: the config's run.granularity).
    #[arg(long)]
    pub granularity: Option<String>,
    /// Configuration file (may `extends` another).
    #[arg(long, default_value = "config/replay.toml")]
    pub config: PathBuf,
    #[arg(long, value_enum, default_value = "cache")]
    pub data_source: DataSource,
    /// Where cached candle files live.
    #[arg(long, default_value = "data/cache")]
    pub cache_dir: PathBuf,
    #[arg(long, default_value = "COINBASE")]
    pub exchange: String,
    /// Base URL of Coinbase's public API (for --data-source coinbase).
    #[arg(long, default_value = "https://api.coinbase.com")]
    pub coinbase_url: String,
    #[arg(long, value_enum)]
    pub capital_mode: Option<CapitalModeArg>,
    /// Starting capital in quote currency (per symbol when independent).
    #[arg(long)]
    pub starting_capital: Option<String>,
    #[arg(long, value_enum, default_value = "replay_backtest")]
    pub run_mode: RunModeArg,
    /// The journal directory to create (default: a new one under anx-data/journals/).
    #[arg(long)]
    pub journal: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub report_format: ReportFormat,
    /// Write the report to this file as well (html: the file written; default <journal>/report.html).
    #[arg(long)]
    pub report_out: Option<PathBuf>,
    /// Debug only: turn the breakout volume filter off (tags the run degraded_skip_volume).
    #[arg(long)]
    pub skip_volume_filter: bool,
}

#[derive(Subcommand, Debug)]
pub enum JournalCommand {
    /// Walk the whole hash chain; exit 0 if intact, 1 with the first bad seq if not.
    Verify(VerifyArgs),
    /// Print the head as SEQ:HASH, for an auditor to store elsewhere.
    Head(DirArg),
    /// Stream every event as one JSON object per line.
    Export(ExportArgs),
    /// Counts by event kind, size and market-time range.
    Stat(StatArgs),
    /// Rebuild the state by folding the journal and print it with the report.
    Replay(ReplayArgs),
    /// Delete and rebuild the derived index store (<DIR>/index) from the journal.
    Reindex(DirArg),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReplayFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The journal directory.
    pub dir: PathBuf,
    /// Fold only up to and including this seq.
    #[arg(long, value_name = "N")]
    pub to_seq: Option<u64>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReplayFormat,
    /// Fold every event from seq 1 instead of starting from a snapshot.
    #[arg(long)]
    pub no_snapshot: bool,
}

#[derive(Args, Debug)]
pub struct WhyArgs {
    /// The journal directory.
    pub dir: PathBuf,
    /// Trade ids, exchange order ids or client_order_ids (one trail each).
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DirArg {
    /// The journal directory.
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The journal directory.
    pub dir: PathBuf,
    /// Also prove the journal still extends this previously published head.
    #[arg(long, value_name = "SEQ:HASH")]
    pub expect_head: Option<Head>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The journal directory.
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
}

#[derive(Args, Debug)]
pub struct StatArgs {
    /// The journal directory.
    pub dir: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

impl Cli {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Journal(JournalCommand::Verify(args)) => journal_cmd::verify(&args),
            Command::Journal(JournalCommand::Head(args)) => journal_cmd::head(&args.dir),
            Command::Journal(JournalCommand::Export(args)) => journal_cmd::export(&args),
            Command::Journal(JournalCommand::Stat(args)) => journal_cmd::stat(&args),
            Command::Journal(JournalCommand::Replay(args)) => journal_cmd::replay(&args),
            Command::Journal(JournalCommand::Reindex(args)) => journal_cmd::reindex(&args.dir),
            Command::Why(args) => journal_cmd::why(&args),
            Command::Replay(ReplayCommand::Run(args)) => crate::replay_cmd::run(&args),
            Command::Data(DataCommand::Fetch(args)) => crate::replay_cmd::fetch(&args),
            Command::Status(args) => crate::status::status(&args),
            Command::Paper(args) => crate::paper::paper(&args),
        }
    }
}
