//! The `anx` binary: a thin `main` that parses the command line, runs the command
//! and maps its outcome to an exit code. Errors print as one line on stderr;
//! nothing here panics on user input.

mod cli;
mod journal_cmd;
mod output;

use clap::Parser;
use std::process::ExitCode;

/// Exit code when a check ran and found a problem (a broken chain).
pub const EXIT_CHECK_FAILED: u8 = 1;
/// Exit code for errors: bad input, I/O failures, a refused operation.
pub const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    output::init_tracing(cli.verbose);
    match cli.run() {
        Ok(code) => code,
        Err(error) => {
            if output::is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            eprintln!("anx: {}", output::one_line(&error));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
