//! The command-line surface (clap). Each subcommand hands off to a module that
//! does the work and returns an exit code.
//!
//! Every command that prints a document takes `--json`; older spellings
//! (`--format json`, `--report-format json`, `--format jsonl`) stay as aliases.
//! Every subcommand's `--help` ends with examples.

use crate::journal_cmd;
use anx_journal::Head;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "anx",
    version,
    about = "anx: an event-sourced, hash-chained trading journal",
    after_help = "Examples:
  anx data fetch --symbols BTC-USD --start 2024-01-01 --end 2024-07-01 --granularity 1h
  anx replay run --symbols BTC-USD --start 2024-01-01 --end 2024-07-01 --journal anx-data/journals/btc
  anx journal verify anx-data/journals/btc
  anx journal replay anx-data/journals/btc --json

Every command that prints a document takes --json. 'anx <command> --help' has examples for each."
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
    #[command(
        subcommand,
        after_help = "Examples:
  anx journal verify anx-data/paper
  anx journal export anx-data/paper | jq -c 'select(.kind == \"TradeClosed\")'"
    )]
    Journal(JournalCommand),
    /// The full causal trail of a trade, an order id or a client_order_id.
    #[command(after_help = "Examples:
  anx why anx-data/journals/btc T-BTCUSD-20240521T0400
  anx why anx-data/journals/btc ANX4_5c5f36f5_BTCUSD_20240521T0000_4731bfb0 --json

Trade ids and client_order_ids are in 'anx journal export' (trade_id, client_order_id).")]
    Why(WhyArgs),
    /// Compare two runs over the market time they share: decisions, trades,
    /// metrics; exit 1 when B crosses a threshold of config/compare.toml.
    #[command(after_help = "Examples:
  anx compare anx-data/journals/backtest anx-data/paper
  anx compare anx-data/journals/a anx-data/journals/b --json --thresholds config/compare.toml

A is the reference (typically the backtest of the period), B the run held against it.")]
    Compare(CompareArgs),
    /// Backtest over historical candles through the production engine.
    #[command(
        subcommand,
        after_help = "Example:
  anx replay run --symbols BTC-USD,ETH-USD --start 2024-01-01 --end 2025-01-01 --json"
    )]
    Replay(ReplayCommand),
    /// Candle data: fill the cache from Coinbase.
    #[command(
        subcommand,
        after_help = "Example:
  anx data fetch --symbols BTC-USD,ETH-USD --start 2024-01-01 --end 2024-07-01"
    )]
    Data(DataCommand),
    /// Health of a trader's journal (read-only, safe while it runs); exit 1 when unhealthy.
    #[command(after_help = "Examples:
  anx status anx-data/paper
  anx status anx-data/paper --json --now 2025-01-01T12:00:00Z")]
    Status(StatusArgs),
    /// Paper trading: live Coinbase candles, the simulated broker, a durable
    /// journal; runs until SIGINT/SIGTERM and resumes by replaying its journal.
    #[command(after_help = "Examples:
  anx paper --symbols BTC-USD,ETH-USD --journal anx-data/paper -v
  anx paper --journal anx-data/paper    # later: resumes the same run
  anx status anx-data/paper             # from another terminal")]
    Paper(PaperArgs),
    /// Live trading on Coinbase Advanced Trade: the paper trader's loop,
    /// journal and restarts, with real orders (or, --preview, previews of
    /// them). Runs until SIGINT/SIGTERM and resumes by replaying its journal.
    #[command(after_help = "Examples:
  anx live --key-file cdp_api_key.json --preview -v     # dry run: orders previewed, none placed
  anx live --key-file cdp_api_key.json --journal anx-data/live
  COINBASE_API_KEY=organizations/.../apiKeys/... COINBASE_API_SECRET=\"$(cat key.pem)\" anx live
  anx status anx-data/live; anx operator halt anx-data/live --reason \"checking\"

Rehearse on a laptop against the fake exchange (tools/src/fake_coinbase/README.md):
  anx live --api-url http://127.0.0.1:9400 --key-file tests/fixtures/keys/ecdsa.json --journal /tmp/rehearsal")]
    Live(LiveArgs),
    /// Act on a paper trader's run: reset a fail-closed symbol, exit a
    /// position, halt or resume new entries. Journaled, with your reason.
    #[command(after_help = "Examples:
  anx operator halt anx-data/paper --reason \"exchange maintenance\"
  anx operator resume anx-data/paper
  anx operator exit anx-data/paper BTC-USD --reason \"news: closing by hand\"
  anx operator reset anx-data/paper BTC-USD --reason \"protection checked on the exchange\"

A running trader takes the action from its inbox and journals it (the command
prints the seq); with no trader running the action is appended directly and
the trader acts on it when it starts. An action the state does not allow is
refused and nothing is written.")]
    Operator(OperatorArgs),
}

#[derive(Args, Debug)]
pub struct OperatorArgs {
    #[command(subcommand)]
    pub command: OperatorCommandArgs,
    /// Who acts (journaled with the action; default: $USER).
    #[arg(long, global = true)]
    pub operator: Option<String>,
    /// Seconds to wait for a running trader's answer.
    #[arg(long, global = true, default_value_t = 10.0)]
    pub wait: f64,
}

#[derive(Subcommand, Debug)]
pub enum OperatorCommandArgs {
    /// FAIL_CLOSED -> IDLE for a symbol whose cause you have dealt with (no position left).
    #[command(after_help = "Example:
  anx operator reset anx-data/paper BTC-USD --reason \"protection checked on the exchange\"")]
    Reset {
        /// The trader's journal directory.
        journal: PathBuf,
        symbol: String,
        /// Why (journaled).
        #[arg(long)]
        reason: String,
    },
    /// Close the symbol's position at market (exit reason: manual).
    #[command(after_help = "Example:
  anx operator exit anx-data/paper BTC-USD --reason \"closing by hand\"")]
    Exit {
        journal: PathBuf,
        symbol: String,
        #[arg(long)]
        reason: String,
    },
    /// No new entries on any symbol until resumed; protection and exits keep working.
    #[command(after_help = "Example:
  anx operator halt anx-data/paper --reason \"exchange maintenance\"")]
    Halt {
        journal: PathBuf,
        #[arg(long)]
        reason: String,
    },
    /// Allow new entries again after a halt.
    #[command(after_help = "Example:
  anx operator resume anx-data/paper")]
    Resume {
        journal: PathBuf,
        #[arg(long, default_value = "resumed by the operator")]
        reason: String,
    },
}

/// The edge-decay watch of a trader: a reference run and the thresholds.
#[derive(Args, Debug)]
pub struct EdgeArgs {
    /// A reference run's journal (typically the backtest the strategy was
    /// chosen on): after each closed trade the run is judged against it with
    /// the thresholds, and a check that starts or stops holding is journaled
    /// as a finding (`anx status` shows those raised).
    #[arg(long, value_name = "DIR")]
    pub reference: Option<PathBuf>,
    /// The thresholds the run is judged by: the win rate of its last trades
    /// always, the rest with --reference. Default: the shipped
    /// config/compare.toml, built in.
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,
}

/// Running a trader unattended: health, metrics, anomalies, alerts.
#[derive(Args, Debug)]
pub struct OpsArgs {
    /// Serve GET /healthz (JSON; 200 healthy, 503 not) and GET /metrics
    /// (Prometheus text) at this address, e.g. 127.0.0.1:9464. Off by default.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// POST each new finding and each health change here as JSON
    /// (`{"text": …}`, which Slack-compatible webhooks show, plus the fields
    /// under `anx`), with retries; the journal keeps every finding anyway.
    #[arg(long, value_name = "URL")]
    pub alert_webhook: Option<String>,
    /// Anomaly thresholds, the health endpoint's liveness limit and alert
    /// delivery settings. Default: the shipped config/operations.toml, built in.
    #[arg(long, value_name = "FILE")]
    pub operations: Option<PathBuf>,
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
    /// Base URL of Coinbase Advanced Trade's public market-data API (http or
    /// https; checked at start-up).
    #[arg(long, value_name = "URL", default_value = "https://api.coinbase.com")]
    pub market_url: String,
    /// Seconds between polls of the market (decimals allowed).
    #[arg(long, default_value = "30")]
    pub poll_interval: f64,
    /// Seconds before a market-data request times out.
    #[arg(long, default_value = "10")]
    pub request_timeout: f64,
    /// A drill: the simulated exchange accepts entries but never attaches
    /// their protection, so each entry fails its symbol closed and is
    /// cancelled (or its position closed at market). Journaled in the run's
    /// `created_by`; a drill journal resumes as a drill.
    #[arg(long)]
    pub drill_withhold_protection: bool,
    #[command(flatten)]
    pub edge: EdgeArgs,
    #[command(flatten)]
    pub ops: OpsArgs,
}

#[derive(Args, Debug)]
pub struct LiveArgs {
    /// Configuration file (TOML; `extends` another); it must have a `[live]`
    /// section (the safety caps).
    #[arg(long, default_value = "config/live.toml")]
    pub config: PathBuf,
    /// Comma-separated symbols (default: the configuration's).
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// The trader's journal directory: created on the first start, replayed on
    /// every later one.
    #[arg(long, default_value = "anx-data/live")]
    pub journal: PathBuf,
    /// Base URL of Coinbase Advanced Trade (orders, accounts and candles).
    #[arg(long, value_name = "URL", default_value = "https://api.coinbase.com")]
    pub api_url: String,
    /// Coinbase CDP API key file as downloaded (JSON with name and
    /// privateKey). Without it: $COINBASE_API_KEY and $COINBASE_API_SECRET.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Seconds between polls of the market and the account (decimals allowed).
    #[arg(long, default_value = "30")]
    pub poll_interval: f64,
    /// Seconds before a request times out.
    #[arg(long, default_value = "10")]
    pub request_timeout: f64,
    /// Requests a second to Coinbase, at most (Coinbase allows 30 a second
    /// per key; the default leaves half for anything else using it).
    #[arg(long, default_value_t = crate::coinbase::rest::REQUESTS_PER_S_DEFAULT, value_name = "N")]
    pub requests_per_s: usize,
    /// Send every order to POST /orders/preview instead of /orders: the
    /// exchange checks it, nothing is placed, and its answer is journaled.
    /// A preview journal resumes only as a preview.
    #[arg(long)]
    pub preview: bool,
    #[command(flatten)]
    pub edge: EdgeArgs,
    #[command(flatten)]
    pub ops: OpsArgs,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The journal directory.
    pub dir: PathBuf,
    /// Print one JSON object instead of text (the age as last_candle_age_s, in seconds).
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
    #[command(after_help = "Examples:
  anx data fetch --symbols BTC-USD,ETH-USD,SOL-USD --start 2024-01-01 --end 2025-01-01
  anx data fetch --symbols BTC-USD --start 2024-06-01 --end 2024-06-08 --granularity 1h --cache-dir data/cache")]
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
    /// Where cached candle files are written (COINBASE_<SYMBOL>_<granularity>.csv).
    #[arg(long, default_value = "data/cache")]
    pub cache_dir: PathBuf,
    /// Base URL of Coinbase's public API (http or https; checked at start-up).
    #[arg(long, value_name = "URL", default_value = "https://api.coinbase.com")]
    pub coinbase_url: String,
}

#[derive(Subcommand, Debug)]
pub enum ReplayCommand {
    /// Replay cached candles through the engine and the simulated exchange into a new journal.
    #[command(after_help = "Examples:
  anx replay run --symbols BTC-USD --start 2024-01-01 --end 2024-07-01 --journal anx-data/journals/btc
  anx replay run --start 2024-01-01 --end 2025-01-01 --capital-mode portfolio --starting-capital 1500 --json
  anx replay run --start 2024-01-01 --end 2025-01-01 --data-source coinbase --report-format html")]
    Run(ReplayRunArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    /// Text tables on stdout.
    Table,
    /// One JSON document on stdout (the same as --json).
    Json,
    /// One self-contained HTML file (see --report-out); a line naming it on stdout.
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
    /// Each symbol trades its own starting capital.
    Independent,
    /// All symbols share one pot of starting capital.
    Portfolio,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum RunModeArg {
    /// A backtest over cached candles (the only mode `replay run` runs).
    #[value(name = "replay_backtest", alias = "replay-backtest")]
    ReplayBacktest,
    /// Live paper trading: journaled by `anx paper`, refused here.
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
    /// Where the candles come from.
    #[arg(long, value_enum, default_value = "cache")]
    pub data_source: DataSource,
    /// Where cached candle files live.
    #[arg(long, default_value = "data/cache")]
    pub cache_dir: PathBuf,
    /// The exchange whose cache files are read: the file-name prefix
    /// <EXCHANGE>_<SYMBOL>_<granularity>.csv[.gz], e.g. COINBASE (COINBASE_BTC-USD_1h.csv)
    /// or BINANCE (BINANCE_BTCUSDT_1h.csv.gz). --data-source coinbase needs COINBASE.
    #[arg(long, default_value = "COINBASE")]
    pub exchange: String,
    /// Base URL of Coinbase's public API (for --data-source coinbase; http or
    /// https, checked at start-up).
    #[arg(long, value_name = "URL", default_value = "https://api.coinbase.com")]
    pub coinbase_url: String,
    /// How the starting capital is split (default: the config's run.capital_mode).
    #[arg(long, value_enum)]
    pub capital_mode: Option<CapitalModeArg>,
    /// Starting capital in quote currency: per symbol when independent, the
    /// whole pot when portfolio (default: the config's run.starting_capital).
    #[arg(long)]
    pub starting_capital: Option<String>,
    /// The run mode journaled in RunStarted. A replay is always
    /// replay_backtest; paper_live is what `anx paper` journals.
    #[arg(long, value_enum, default_value = "replay_backtest")]
    pub run_mode: RunModeArg,
    /// The journal directory to create (default: a new one under anx-data/journals/).
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// How the report is printed (--report-format json is the same as --json).
    #[arg(long, value_enum, default_value = "table")]
    pub report_format: ReportFormat,
    /// Print the report as one JSON document (the same as --report-format json).
    #[arg(long, conflicts_with = "report_format")]
    pub json: bool,
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
    #[command(after_help = "Examples:
  anx journal verify anx-data/paper
  anx journal verify anx-data/paper --expect-head \"$(cat published-head.txt)\" --json")]
    Verify(VerifyArgs),
    /// Print the head as SEQ:HASH, for an auditor to store elsewhere.
    #[command(after_help = "Example:
  anx journal head anx-data/paper > published-head.txt")]
    Head(DirArg),
    /// Stream every event as one JSON object per line, or write Parquet files
    /// (one per event kind, trades and daily equity) for DuckDB, pandas or polars.
    #[command(after_help = "Examples:
  anx journal export anx-data/paper > events.jsonl
  anx journal export anx-data/paper | jq -c 'select(.kind == \"TradeClosed\") | .body'
  anx journal export anx-data/paper --format parquet --out export/
  duckdb -c \"select symbol, sum(net_pnl) from 'export/trades.parquet' group by all\"")]
    Export(ExportArgs),
    /// Counts by event kind, size and market-time range.
    #[command(after_help = "Examples:
  anx journal stat anx-data/paper
  anx journal stat anx-data/paper --json")]
    Stat(StatArgs),
    /// Rebuild the state by folding the journal and print it with the report.
    #[command(after_help = "Examples:
  anx journal replay anx-data/paper
  anx journal replay anx-data/paper --to-seq 500 --json")]
    Replay(ReplayArgs),
    /// Delete and rebuild the derived index store (<DIR>/index) from the journal.
    #[command(after_help = "Example:
  anx journal reindex anx-data/paper")]
    Reindex(DirArg),
    /// Repair a torn tail (an interrupted append): take the writer lock, cut
    /// the incomplete record and journal a `Recovered` event saying what was
    /// cut. Mid-journal corruption is refused and nothing is changed.
    #[command(after_help = "Example:
  anx journal repair anx-data/paper && anx journal verify anx-data/paper")]
    Repair(DirArg),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReplayFormat {
    /// Text tables.
    Table,
    /// One JSON document (the same as --json).
    Json,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The journal directory.
    pub dir: PathBuf,
    /// Fold only up to and including this seq.
    #[arg(long, value_name = "N")]
    pub to_seq: Option<u64>,
    /// How the state is printed (--format json is the same as --json).
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReplayFormat,
    /// Print one JSON document (the same as --format json).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Fold every event from seq 1 instead of starting from a snapshot.
    #[arg(long)]
    pub no_snapshot: bool,
}

#[derive(Args, Debug)]
pub struct WhyArgs {
    /// The journal directory.
    pub dir: PathBuf,
    /// Trade ids, exchange order ids or client_order_ids (one trail each).
    #[arg(required_unless_present = "decision", conflicts_with = "decision")]
    pub ids: Vec<String>,
    /// The decision journaled at this seq, with its whole glass box: as
    /// journaled, or (a schema-2 decision that led to no order) recomputed by
    /// re-driving the journal and shown only if it hashes to the journaled digest.
    #[arg(long, value_name = "SEQ")]
    pub decision: Option<u64>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The reference run's journal (typically a backtest).
    pub a: PathBuf,
    /// The journal of the run held against it (paper, live, or another backtest).
    pub b: PathBuf,
    /// The thresholds file.
    #[arg(long, default_value = "config/compare.toml")]
    pub thresholds: PathBuf,
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
    /// JSON lines: one JSON object per event, one per line, on stdout.
    Jsonl,
    /// Parquet files in --out: one per event kind, trades and daily equity.
    Parquet,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The journal directory.
    pub dir: PathBuf,
    /// The output format (--json is the same as --format jsonl).
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
    /// JSON lines, one object per event (the default; the same as --format jsonl).
    #[arg(long)]
    pub json: bool,
    /// The directory --format parquet writes its files to (created if
    /// missing; an existing file of the same name is never overwritten).
    #[arg(long, value_name = "OUTDIR")]
    pub out: Option<PathBuf>,
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
    pub fn run(mut self) -> anyhow::Result<ExitCode> {
        self.apply_json_aliases();
        match self.command {
            Command::Journal(JournalCommand::Verify(args)) => journal_cmd::verify(&args),
            Command::Journal(JournalCommand::Head(args)) => journal_cmd::head(&args.dir),
            Command::Journal(JournalCommand::Export(args)) => journal_cmd::export(&args),
            Command::Journal(JournalCommand::Stat(args)) => journal_cmd::stat(&args),
            Command::Journal(JournalCommand::Replay(args)) => journal_cmd::replay(&args),
            Command::Journal(JournalCommand::Reindex(args)) => journal_cmd::reindex(&args.dir),
            Command::Journal(JournalCommand::Repair(args)) => journal_cmd::repair(&args.dir),
            Command::Why(args) => journal_cmd::why(&args),
            Command::Compare(args) => crate::compare::compare(&args),
            Command::Replay(ReplayCommand::Run(args)) => {
                crate::fetch::check_base_url("--coinbase-url", &args.coinbase_url)?;
                crate::replay_cmd::run(&args)
            }
            Command::Data(DataCommand::Fetch(args)) => {
                crate::fetch::check_base_url("--coinbase-url", &args.coinbase_url)?;
                crate::replay_cmd::fetch(&args)
            }
            Command::Status(args) => crate::status::status(&args),
            Command::Paper(args) => crate::paper::paper(&args),
            Command::Live(args) => crate::live::live(&args),
            Command::Operator(args) => crate::operator::operator(&args),
        }
    }

    /// `--json` is an alias of each command's older spelling; it is turned
    /// into that spelling here, so a command sees one setting. (`journal
    /// export` prints JSON lines either way.)
    fn apply_json_aliases(&mut self) {
        match &mut self.command {
            Command::Journal(JournalCommand::Replay(args)) if args.json => {
                args.format = ReplayFormat::Json;
            }
            Command::Replay(ReplayCommand::Run(args)) if args.json => {
                args.report_format = ReportFormat::Json;
            }
            _ => {}
        }
    }
}
