//! `anx-journal`: the event vocabulary and the append-only, BLAKE3 hash-chained
//! journal every other part of anx is a fold of.
//!
//! - [`event`]: the event kinds (plain data).
//! - [`format`]: the byte layout (normative text: `journal/FORMAT.md`).
//! - [`Writer`]: the single writer (lock, durability, rollover, repair at open).
//! - [`Reader`]: streams records, verifying the chain as it goes.
//! - [`verify()`]: the whole-journal check behind `anx journal verify`.
//!
//! Architecture invariant: this crate knows no trading logic beyond the shapes of
//! the events, depends on no other anx crate, and never prints.

pub mod background;
pub mod codec;
pub mod compact;
pub mod error;
pub mod event;
pub mod format;
pub mod head;
pub mod reader;
pub mod sample;
pub mod schema2;
pub mod storage;
pub mod stream;
pub mod verify;
pub mod writer;

pub use background::BackgroundWriter;
pub use codec::Hash32;
/// Re-exported so users of `Text` can build it (`format_compact!`).
pub use compact_str;
pub use error::{Fault, FaultReason, JournalError, Result};
pub use event::*;
pub use format::JournalMeta;
pub use head::Head;
pub use reader::{decode_payload, list_segments, Reader, RecordRef, StoredEvent, TailPolicy};
pub use stream::{read_events, stream_events, StreamError, StreamedEvent};
pub use verify::{verify, Verdict, VerifyReport};
pub use writer::{is_locked, Appended, Durability, OpenCheck, Writer, WriterOptions, LOCK_FILE};
