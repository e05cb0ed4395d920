//! `anx operator`: an operator's action on a paper trader's run – reset a
//! fail-closed symbol, exit a position at market, halt new entries, resume
//! them. An action is an input: journaled (fsynced) before the engine reacts.
//!
//! The trader is the journal's only writer, so an action reaches it through
//! its **inbox**: `<journal>/inbox/<id>.request` (JSON, written to a `.tmp`
//! file and renamed, so the trader never reads half of one). The trader
//! polls the inbox between steps, checks the action against its state with
//! the fold's own rule, journals it and reacts in one step, and answers in
//! `<id>.answer` (`{"seq": N}` or `{"error": "…"}`), which this command waits
//! for and prints. When no trader runs (the journal's lock is free), the
//! command takes the lock and appends the action itself – only after a clean
//! stop, so the journal ends between steps – and the trader's re-drive runs
//! the action's step when it next starts. An action the state does not allow
//! is a clear error either way, and nothing is written.

use crate::cli::{OperatorArgs, OperatorCommandArgs};
use anx_journal::*;
use anx_projections::Projection;
use anx_replays::pipeline::open_to_redrive;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The inbox directory under a journal.
pub const INBOX_DIR: &str = "inbox";
/// A request or answer file larger than this is not one of ours.
const INBOX_FILE_BYTES_MAX: u64 = 16 * 1024;
/// An operator's reason or name longer than this is refused.
const TEXT_BYTES_MAX: usize = 1000;
/// How often the command looks for the trader's answer.
const ANSWER_POLL_MS: u64 = 100;

/// One action, as the inbox carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `reset`, `exit`, `halt` or `resume`.
    pub command: String,
    #[serde(default)]
    pub symbol: String,
    pub operator: String,
    pub reason: String,
}

/// The trader's answer to a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<Seq>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Request {
    /// The journal event this request asks for, or why it is malformed.
    pub fn event(&self) -> std::result::Result<Event, String> {
        for (what, text) in [("operator", &self.operator), ("reason", &self.reason)] {
            if text.trim().is_empty() {
                return Err(format!("the {what} is empty"));
            }
            if text.len() > TEXT_BYTES_MAX || text.contains('\n') {
                return Err(format!(
                    "the {what} must be one line of at most {TEXT_BYTES_MAX} bytes"
                ));
            }
        }
        let action = |command| {
            Event::OperatorAction(OperatorAction {
                command,
                symbol: self.symbol.clone(),
                operator: self.operator.clone(),
                reason: self.reason.clone(),
            })
        };
        Ok(match self.command.as_str() {
            "reset" => Event::OperatorReset(OperatorReset {
                symbol: self.symbol.clone(),
                operator: self.operator.clone(),
                reason: self.reason.clone(),
            }),
            "exit" => action(OperatorCommand::Exit),
            "halt" => action(OperatorCommand::Halt),
            "resume" => action(OperatorCommand::Resume),
            other => return Err(format!("unknown operator command {other:?}")),
        })
    }
}

/// Whether a journal ends between steps by a clean stop: its last events,
/// past any operator actions appended while no trader ran, are a trader's
/// stop marker.
pub fn ends_in_clean_stop(events: &[StoredEvent]) -> bool {
    let last = events
        .iter()
        .rev()
        .find(|e| !matches!(e.event, Event::OperatorReset(_) | Event::OperatorAction(_)));
    matches!(
        last.map(|e| &e.event),
        Some(Event::Session(Session {
            action: SessionAction::Stopped,
            ..
        }))
    )
}

/// The longest an operator may ask to wait for a trader's answer.
const WAIT_S_MAX: f64 = 600.0;

pub fn operator(args: &OperatorArgs) -> Result<ExitCode> {
    if !(args.wait > 0.0 && args.wait <= WAIT_S_MAX) {
        bail!("--wait must be between 0 and {WAIT_S_MAX} seconds");
    }
    let (dir, request) = request_of(args);
    let event = request.event().map_err(|e| anyhow!("{e}"))?;
    if anx_journal::reader::list_segments(&dir).map_or(true, |s| s.is_empty()) {
        bail!("{} holds no journal", dir.display());
    }
    // Read without the lock (a running trader holds it): only a trader's run
    // takes actions, and a backtest being written must not be waited on.
    let run_mode = crate::journal_cmd::first_run(&dir)?.map(|run| run.run_mode);
    if !run_mode.is_some_and(RunMode::is_trader) {
        bail!(
            "{} is not a trader's journal: operator actions are for a running trader's run",
            dir.display()
        );
    }
    let seq = match open_to_redrive(&dir, Durability::Always) {
        Ok((writer, events)) => append_directly(&dir, writer, events, &event)?,
        Err(JournalError::Locked { .. }) => hand_to_trader(&dir, &request, args.wait)?,
        Err(error) => {
            return Err(error).with_context(|| format!("cannot open the journal {}", dir.display()))
        }
    };
    println!("{} journaled at seq {seq}", describe(&request));
    Ok(ExitCode::SUCCESS)
}

fn request_of(args: &OperatorArgs) -> (PathBuf, Request) {
    let operator = args
        .operator
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "operator".into());
    let (dir, command, symbol, reason) = match &args.command {
        OperatorCommandArgs::Reset {
            journal,
            symbol,
            reason,
        } => (journal, "reset", symbol.clone(), reason.clone()),
        OperatorCommandArgs::Exit {
            journal,
            symbol,
            reason,
        } => (journal, "exit", symbol.clone(), reason.clone()),
        OperatorCommandArgs::Halt { journal, reason } => {
            (journal, "halt", String::new(), reason.clone())
        }
        OperatorCommandArgs::Resume { journal, reason } => {
            (journal, "resume", String::new(), reason.clone())
        }
    };
    let request = Request {
        command: command.into(),
        symbol,
        operator,
        reason,
    };
    (dir.clone(), request)
}

fn describe(request: &Request) -> String {
    if request.symbol.is_empty() {
        format!("operator {}", request.command)
    } else {
        format!("operator {} of {}", request.command, request.symbol)
    }
}

/// No trader runs: checks the action against the folded journal and appends
/// it. Its step (a reset's transition, an exit's order) runs when the trader
/// next starts and re-drives the journal.
fn append_directly(
    dir: &Path,
    mut writer: Writer,
    events: Vec<StoredEvent>,
    event: &Event,
) -> Result<Seq> {
    if writer.recovered().is_some() {
        bail!(
            "{} ends in a torn tail (an interrupted append): start the trader (anx paper) to repair it, then act while it runs",
            dir.display()
        );
    }
    let waiting = matches!(
        events.last().map(|e| &e.event),
        Some(Event::OperatorReset(_) | Event::OperatorAction(_))
    );
    if waiting {
        // Its step runs when the trader starts; a second one appended after
        // it would stand where the first one's reaction belongs.
        bail!(
            "an operator action already waits in {} for the trader's next start: start it (anx paper) and act while it runs",
            dir.display()
        );
    }
    if !ends_in_clean_stop(&events) {
        bail!(
            "the trader of {} did not stop cleanly, so its last step may be unfinished: start it (anx paper) and act while it runs",
            dir.display()
        );
    }
    let mut projection = Projection::new();
    for stored in &events {
        projection
            .apply(stored.seq, stored.market_ms, &stored.event)
            .with_context(|| format!("cannot fold {}", dir.display()))?;
    }
    // No clock: the action carries the run's newest market time.
    let market_ms = projection.state.last_market_ms.unwrap_or_default();
    projection
        .check_next(market_ms, event)
        .map_err(|e| anyhow!("refused, nothing journaled: {}", e.detail))?;
    let appended = writer.append(market_ms, event)?;
    writer.close()?;
    Ok(appended.seq)
}

/// A trader holds the journal: leaves the request in its inbox and waits for
/// its answer.
fn hand_to_trader(dir: &Path, request: &Request, wait_s: f64) -> Result<Seq> {
    let inbox = dir.join(INBOX_DIR);
    std::fs::create_dir_all(&inbox)
        .with_context(|| format!("cannot create {}", inbox.display()))?;
    let id = format!("{:032}-{}", nanos_now(), std::process::id());
    let tmp = inbox.join(format!("{id}.tmp"));
    let path = inbox.join(format!("{id}.request"));
    let text = serde_json::to_vec(request).context("cannot encode the request")?;
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    let answer_path = inbox.join(format!("{id}.answer"));
    let deadline = Instant::now() + Duration::from_secs_f64(wait_s);
    loop {
        if let Some(answer) = read_answer(&answer_path)? {
            let _ = std::fs::remove_file(&answer_path);
            return match (answer.seq, answer.error) {
                (Some(seq), None) => Ok(seq),
                (_, Some(error)) => bail!("the trader refused it, nothing journaled: {error}"),
                (None, None) => bail!("the trader's answer {} is empty", answer_path.display()),
            };
        }
        if Instant::now() >= deadline {
            // Withdrawn unless the trader already took it.
            if std::fs::remove_file(&path).is_ok() {
                bail!("the trader holding {} did not answer within {wait_s} s; the request was withdrawn, nothing journaled", dir.display());
            }
        }
        std::thread::sleep(Duration::from_millis(ANSWER_POLL_MS));
        if Instant::now() >= deadline + Duration::from_secs(30) {
            bail!(
                "the trader took the request but did not answer within {} s; check anx status",
                wait_s + 30.0
            );
        }
    }
}

/// Nanoseconds of the wall clock, to make a request id unique (the shell may
/// read a clock; the id carries no meaning).
fn nanos_now() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn read_answer(path: &Path) -> Result<Option<Answer>> {
    let Some(bytes) = read_small(path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .with_context(|| format!("the trader's answer {} is not valid JSON", path.display()))
}

/// A small file's bytes, or `None` if it does not exist.
pub fn read_small(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        Ok(meta) if !meta.is_file() || meta.len() > INBOX_FILE_BYTES_MAX => {
            bail!(
                "{} is not an inbox file (at most {INBOX_FILE_BYTES_MAX} bytes)",
                path.display()
            )
        }
        Ok(_) => {}
    }
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The requests waiting in a journal's inbox, oldest name first: (id, request
/// or why it cannot be read). Taken out of the inbox as they are returned.
pub fn take_requests(dir: &Path) -> Vec<(PathBuf, std::result::Result<Request, String>)> {
    let inbox = dir.join(INBOX_DIR);
    let Ok(entries) = std::fs::read_dir(&inbox) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "request"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let read = read_small(&path).map_err(|e| format!("{e:#}"));
        // Taken: a request is acted on at most once, even if the answer is lost.
        if std::fs::remove_file(&path).is_err() {
            continue;
        }
        let request = match read {
            Ok(Some(bytes)) => serde_json::from_slice::<Request>(&bytes)
                .map_err(|e| format!("malformed request: {e}")),
            Ok(None) => continue,
            Err(e) => Err(e),
        };
        out.push((path.with_extension("answer"), request));
    }
    out
}

/// Writes the trader's answer next to where the request was.
pub fn answer(path: &Path, answer: &Answer) -> std::io::Result<()> {
    let tmp = path.with_extension("answer-tmp");
    std::fs::write(&tmp, serde_json::to_vec(answer).unwrap_or_default())?;
    std::fs::rename(&tmp, path)
}
