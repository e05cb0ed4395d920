//! The small storage surface the writer needs, behind a trait so tests can inject
//! faults: short writes, write errors and fsync failures.
//!
//! Readers do not go through this trait: they only read whole files, and a read
//! fault is reported, never acted on.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// An open segment file positioned at its end, for appending. Its `write` may
/// write a prefix only (like `write(2)`); `io::Write::write_all` continues
/// after short and interrupted writes and fails on one that makes no progress.
pub trait SegmentFile: Write + Send {
    /// `fdatasync`: the bytes written so far are durable when this returns Ok.
    fn sync_data(&mut self) -> io::Result<()>;
}

/// File-system operations the writer performs.
pub trait Storage: Send {
    /// Creates a new file (failing if it exists) for writing.
    fn create_new(&mut self, path: &Path) -> io::Result<Box<dyn SegmentFile>>;
    /// Opens an existing file for appending.
    fn open_append(&mut self, path: &Path) -> io::Result<Box<dyn SegmentFile>>;
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// `fsync` of a directory, so a created or renamed entry survives a crash.
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()>;
    /// Cuts a file to `len` bytes and makes the cut durable.
    fn truncate(&mut self, path: &Path, len: u64) -> io::Result<()>;
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsStorage;

struct FsFile(File);

impl Write for FsFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SegmentFile for FsFile {
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Storage for FsStorage {
    fn create_new(&mut self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(Box::new(FsFile(file)))
    }

    fn open_append(&mut self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(FsFile(file)))
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn truncate(&mut self, path: &Path, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }
}

/// What a [`FaultyStorage`] should break. Shared, so a test can change the plan
/// while the writer holds the storage.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// Each `write` call writes at most this many bytes (a short write).
    pub write_chunk_max: Option<usize>,
    /// After this many more bytes have been written, every write fails (the bytes
    /// up to the budget do reach the file: a torn write).
    pub write_budget_bytes: Option<u64>,
    /// The n-th `sync_data` from now (1-based) fails, and every later one too.
    pub fail_sync_at: Option<u32>,
    /// Every `sync_dir` fails.
    pub fail_sync_dir: bool,
    /// Counters, for assertions.
    pub syncs: u32,
    pub bytes_written: u64,
}

/// The real file system with injected faults.
#[derive(Clone, Debug, Default)]
pub struct FaultyStorage {
    pub plan: Arc<Mutex<FaultPlan>>,
}

impl FaultyStorage {
    pub fn new(plan: FaultPlan) -> FaultyStorage {
        FaultyStorage {
            plan: Arc::new(Mutex::new(plan)),
        }
    }

    fn wrap(&self, file: File) -> Box<dyn SegmentFile> {
        Box::new(FaultyFile {
            file,
            plan: Arc::clone(&self.plan),
        })
    }
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected fault: {what}"))
}

fn lock(plan: &Mutex<FaultPlan>) -> std::sync::MutexGuard<'_, FaultPlan> {
    plan.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct FaultyFile {
    file: File,
    plan: Arc<Mutex<FaultPlan>>,
}

impl Write for FaultyFile {
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut plan = lock(&self.plan);
        let mut allowed = buf.len();
        if let Some(chunk) = plan.write_chunk_max {
            allowed = allowed.min(chunk.max(1));
        }
        if let Some(budget) = plan.write_budget_bytes {
            if budget == 0 {
                return Err(injected("write failed (device full)"));
            }
            allowed = allowed.min(budget as usize);
            plan.write_budget_bytes = Some(budget - allowed as u64);
        }
        let written = self.file.write(&buf[..allowed])?;
        plan.bytes_written += written as u64;
        Ok(written)
    }
}

impl SegmentFile for FaultyFile {
    fn sync_data(&mut self) -> io::Result<()> {
        let mut plan = lock(&self.plan);
        plan.syncs += 1;
        if let Some(at) = plan.fail_sync_at {
            if plan.syncs >= at {
                return Err(injected("fdatasync failed (EIO)"));
            }
        }
        self.file.sync_data()
    }
}

impl Storage for FaultyStorage {
    fn create_new(&mut self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(self.wrap(file))
    }

    fn open_append(&mut self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(self.wrap(file))
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        if lock(&self.plan).fail_sync_dir {
            return Err(injected("directory fsync failed"));
        }
        File::open(dir)?.sync_all()
    }

    fn truncate(&mut self, path: &Path, len: u64) -> io::Result<()> {
        FsStorage.truncate(path, len)
    }
}
