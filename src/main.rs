//! The `anx` binary: a thin `main` that parses the command line, runs the command
//! and maps its outcome to an exit code. Errors print as one line on stderr;
//! nothing here panics on user input.

mod cli;
mod fetch;
mod html;
mod journal_cmd;
mod output;
mod paper;
mod render;
mod replay_cmd;
mod status;
mod store;
mod why;

use clap::error::ErrorKind;

/// mimalloc: the fold and the decoder allocate many small strings; glibc's
/// allocator took a fifth of replay time in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser;
use std::process::ExitCode;

/// Exit code when a check ran and found a problem (a broken chain).
pub const EXIT_CHECK_FAILED: u8 = 1;
/// Exit code for errors: bad input, I/O failures, a refused operation.
pub const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
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
            eprintln!("anx: {}", output::one_line(&error));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Help and version print as clap renders them; a usage mistake prints as one
/// line (clap's first line, which names the argument and the problem).
fn usage_error(error: clap::Error) -> ExitCode {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return if error.use_stderr() {
            ExitCode::from(EXIT_ERROR)
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = error.render().to_string();
    let first = rendered
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("invalid arguments");
    let first = first.trim_start_matches("error: ");
    eprintln!("anx: {first} (see 'anx --help')");
    ExitCode::from(EXIT_ERROR)
}
