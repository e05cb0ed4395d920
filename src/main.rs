//! The `anx` binary: a thin `main` that parses the command line, runs the command
//! and maps its outcome to an exit code. A command's error prints as one line
//! on stderr; a usage mistake prints as clap renders it (the problem, the
//! subcommand's usage, where its help is); a closed stdout is a normal end.
//! Nothing here panics on user input.

mod cli;
mod coinbase;
mod compare;
mod edge;
mod fetch;
mod html;
mod html_charts;
mod journal_cmd;
mod live;
mod operator;
mod ops;
mod output;
mod paper;
mod parquet_export;
mod render;
mod replay_cmd;
mod status;
mod store;
mod trader;
mod why;

/// mimalloc: the fold and the decoder allocate many small strings; glibc's
/// allocator took a fifth of replay time in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser;
use std::process::ExitCode;

/// Exit code when a check ran and found a problem (a broken chain).
pub const EXIT_CHECK_FAILED: u8 = 1;
/// Exit code when a check found only a torn tail (an interrupted append).
pub const EXIT_TORN_TAIL: u8 = 3;
/// Exit code for errors: bad input, I/O failures, a refused operation.
pub const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    output::end_quietly_on_closed_stdout();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    output::init_tracing(cli.verbose);
    match cli.run() {
        Ok(code) => code,
        Err(error) => {
            if output::is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            // Configuration problems print one line each (every one of them).
            if let Some(problems) = error.downcast_ref::<replay_cmd::ConfigProblems>() {
                for line in problems.lines() {
                    eprintln!("anx: {line}");
                }
                return ExitCode::from(EXIT_ERROR);
            }
            eprintln!("anx: {}", output::one_line(&error));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Help and version print on stdout (exit 0); a usage mistake prints on
/// stderr as clap renders it whole – which argument, what is wrong, a "did
/// you mean", the subcommand's usage and how to get its help (exit 2).
fn usage_error(error: clap::Error) -> ExitCode {
    let _ = error.print();
    if error.use_stderr() {
        ExitCode::from(EXIT_ERROR)
    } else {
        ExitCode::SUCCESS
    }
}
