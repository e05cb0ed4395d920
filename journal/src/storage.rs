//! The small storage surface the journal does file I/O through, behind a
//! trait so tests can inject faults: short writes, write errors and fsync
//! failures, and on the reading side short reads, read errors, a failed open
//! and a failed lock.
//!
//! Through it go the writer's writes, syncs, renames and cuts, its lock, and
//! every read of a segment's bytes: the [`Reader`](crate::Reader)'s (and so
//! verification, streaming and the writer's scan at open),
//! [`read_record_at_with`](crate::reader::read_record_at_with) and the segment
//! header reads ([`read_journal_meta_with`](crate::reader::read_journal_meta_with)).
//! Directory listings, removing leftover temporary files and the read-only
//! lock probe [`is_locked`](crate::is_locked) use the file system directly.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// An open segment file positioned at its end, for appending. Its `write` may
/// write a prefix only (like `write(2)`); `io::Write::write_all` continues
/// after short and interrupted writes and fails on one that makes no progress.
pub trait SegmentFile: Write + Send {
    /// `fdatasync`: the bytes written so far are durable when this returns Ok.
    fn sync_data(&mut self) -> io::Result<()>;
}

/// A file opened for reading. Like `read(2)` and `pread(2)`, a read may
/// return fewer bytes than asked for: callers loop (`Read::read_to_end`,
/// `Read::read_exact` do).
pub trait ReadFile: Read + Send {
    /// Reads from `offset` on without moving the read position, like `pread(2)`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadFile for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

/// Held for as long as the writer lock is: dropping it releases the lock.
pub type LockGuard = Box<dyn Send>;

/// What trying to take the writer lock found.
pub enum LockAttempt {
    /// The lock is held until the guard is dropped.
    Acquired(LockGuard),
    /// Another process holds it; the text its lock file holds (`pid <n>`),
    /// empty when there is none.
    HeldBy(String),
}

/// File-system operations the journal performs.
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
    /// Opens a file for reading and returns it with its length when opened
    /// (the bytes a read of it may cover). Only a regular file, or a
    /// symbolic link to one, is opened: anything else under that name – a
    /// FIFO, a device, a directory – is `Ok(None)` and is not even opened.
    fn open_read(&mut self, path: &Path) -> io::Result<Option<(Box<dyn ReadFile>, u64)>>;
    /// Takes the exclusive lock on the file `path` (created if missing)
    /// without waiting, and once it is held writes `stamp` into the file, so
    /// that a refused process can say who holds it.
    fn try_lock(&mut self, path: &Path, stamp: &str) -> io::Result<LockAttempt>;
}

/// `O_NONBLOCK`, so that opening a FIFO under a segment's name returns at once
/// instead of waiting for a writer (it has no effect on reading a regular
/// file). Where its value is not known here it is 0, and the check by name
/// before the open is what keeps a FIFO out.
const O_NONBLOCK: i32 = if cfg!(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)) {
    0x0004
} else if cfg!(all(
    any(target_os = "linux", target_os = "android"),
    any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "s390x",
        target_arch = "loongarch64"
    )
)) {
    0o4000
} else {
    0
};

/// [`Storage::open_read`] on the real file system. The type is checked by
/// name first, so that nothing else is even opened, and again on the opened
/// handle, so that the file read is the file checked.
fn open_regular(path: &Path) -> io::Result<Option<(File, u64)>> {
    if !std::fs::metadata(path)?.is_file() {
        return Ok(None);
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)?;
    let opened = file.metadata()?;
    if !opened.is_file() {
        return Ok(None);
    }
    Ok(Some((file, opened.len())))
}

/// [`Storage::try_lock`] on the real file system: an advisory `flock`-style
/// lock on the file, released when the file is closed.
fn try_lock_file(path: &Path, stamp: &str) -> io::Result<LockAttempt> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            // Who holds it is a courtesy: an unreadable stamp says nobody.
            let _ = file.read_to_string(&mut holder);
            return Ok(LockAttempt::HeldBy(holder.trim().to_string()));
        }
        Err(TryLockError::Error(e)) => return Err(e),
    }
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(stamp.as_bytes())?;
    Ok(LockAttempt::Acquired(Box::new(file)))
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

    fn open_read(&mut self, path: &Path) -> io::Result<Option<(Box<dyn ReadFile>, u64)>> {
        Ok(open_regular(path)?.map(|(file, len)| (Box::new(file) as Box<dyn ReadFile>, len)))
    }

    fn try_lock(&mut self, path: &Path, stamp: &str) -> io::Result<LockAttempt> {
        try_lock_file(path, stamp)
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
    /// Each read returns at most this many bytes (a short read).
    pub read_chunk_max: Option<usize>,
    /// After this many more bytes have been read, every read fails (EIO).
    pub read_budget_bytes: Option<u64>,
    /// Every open for reading fails.
    pub fail_open_read: bool,
    /// Taking the writer lock fails (not: finds it held).
    pub fail_lock: bool,
    /// Counters, for assertions.
    pub syncs: u32,
    pub bytes_written: u64,
    pub bytes_read: u64,
    /// Files opened for reading.
    pub read_opens: u32,
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

/// A file opened for reading through a [`FaultyStorage`].
struct FaultyReadFile {
    file: File,
    plan: Arc<Mutex<FaultPlan>>,
}

impl FaultyReadFile {
    /// Applies the plan to one read of up to `want` bytes, then does it.
    fn read_with(
        &self,
        want: usize,
        read: impl FnOnce(usize) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut plan = lock(&self.plan);
        let mut allowed = want;
        if let Some(chunk) = plan.read_chunk_max {
            allowed = allowed.min(chunk.max(1));
        }
        if let Some(budget) = plan.read_budget_bytes {
            if budget == 0 && want > 0 {
                return Err(injected("read failed (EIO)"));
            }
            allowed = allowed.min(usize::try_from(budget).unwrap_or(usize::MAX));
        }
        let read = read(allowed)?;
        if let Some(budget) = plan.read_budget_bytes {
            plan.read_budget_bytes = Some(budget - read as u64);
        }
        plan.bytes_read += read as u64;
        Ok(read)
    }
}

impl Read for FaultyReadFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut file = &self.file;
        self.read_with(buf.len(), |allowed| file.read(&mut buf[..allowed]))
    }
}

impl ReadFile for FaultyReadFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.read_with(buf.len(), |allowed| {
            FileExt::read_at(&self.file, &mut buf[..allowed], offset)
        })
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

    fn open_read(&mut self, path: &Path) -> io::Result<Option<(Box<dyn ReadFile>, u64)>> {
        {
            let mut plan = lock(&self.plan);
            if plan.fail_open_read {
                return Err(injected("open for reading failed (EIO)"));
            }
            plan.read_opens += 1;
        }
        let Some((file, len)) = open_regular(path)? else {
            return Ok(None);
        };
        let file = FaultyReadFile {
            file,
            plan: Arc::clone(&self.plan),
        };
        Ok(Some((Box::new(file), len)))
    }

    fn try_lock(&mut self, path: &Path, stamp: &str) -> io::Result<LockAttempt> {
        if lock(&self.plan).fail_lock {
            return Err(injected("taking the lock failed (ENOLCK)"));
        }
        try_lock_file(path, stamp)
    }
}
