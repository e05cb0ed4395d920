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
        }
    }
}
