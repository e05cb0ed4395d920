//! Only regular files are read as segments: a segment's name on a FIFO or a
//! device (a symbolic link to `/dev/zero`) is refused with an error naming it,
//! never read (FORMAT.md §1), by every reader and by the writer.
//!
//! In its own test binary: it spawns `mkfifo`, and a child process briefly
//! holding a copy of another test's writer-lock descriptor (between fork and
//! exec) would make that test's reopen find the journal locked.

mod common;

use anx_journal::{verify, Durability, JournalError, Writer};
use common::*;

fn reopen(dir: &std::path::Path) -> Result<Writer, JournalError> {
    Writer::open(dir, options(Durability::Always))
}

/// Runs `f` on a helper thread and fails the test if it takes longer than 20 s
/// (a read that never ends leaves the thread behind, not the test hanging).
fn within_20s<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(f());
    });
    receive
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what} did not finish within 20 s"))
}

fn assert_not_regular(what: &str, result: Result<impl std::fmt::Debug, JournalError>) {
    match result {
        Err(JournalError::NotRegularFile(path)) => {
            assert!(
                path.ends_with("seg-00000000000000000026.anxj")
                    || path.ends_with("seg-00000000000000000001.anxj"),
                "{what}: {}",
                path.display()
            );
        }
        other => panic!("{what}: expected a not-a-regular-file error, got {other:?}"),
    }
}

#[test]
fn a_segment_name_on_a_fifo_or_a_device_is_refused_not_read() {
    use anx_journal::reader::{list_segments, open_segment, read_record_at, SegmentFileInfo};
    let source = tempfile::tempdir().unwrap();
    write_golden(source.path());
    for special in ["dev-zero", "fifo"] {
        // As the journal's only segment, and as an extra segment after it.
        for replace in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            copy_journal(source.path(), dir.path());
            let name = if replace {
                "seg-00000000000000000001.anxj"
            } else {
                "seg-00000000000000000026.anxj"
            };
            let path = dir.path().join(name);
            if replace {
                std::fs::remove_file(&path).unwrap();
            }
            if special == "fifo" {
                let status = std::process::Command::new("mkfifo")
                    .arg(&path)
                    .status()
                    .expect("mkfifo");
                assert!(status.success());
            } else {
                std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
            }
            let what = format!("{special} as {name}");
            let d = dir.path().to_path_buf();
            assert_not_regular(&what, within_20s(&what, move || list_segments(&d)));
            let d = dir.path().to_path_buf();
            assert_not_regular(&what, within_20s(&what, move || verify(&d, None)));
            let d = dir.path().to_path_buf();
            let opened = within_20s(&what, move || reopen(&d).map(|_| ()));
            assert_not_regular(&what, opened);
            // Past the listing too: opening the file itself refuses it.
            let p = path.clone();
            assert_not_regular(
                &what,
                within_20s(&what, move || open_segment(&p).map(|_| ())),
            );
            let info = SegmentFileInfo {
                name: name.to_string(),
                path: path.clone(),
                first_seq: 1,
            };
            let read = within_20s(&what, move || read_record_at(&info, 1, 112, 1).map(|_| ()));
            assert_not_regular(&what, read);
        }
    }
    // A symbolic link to a regular segment is followed.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        source.path().join("seg-00000000000000000001.anxj"),
        dir.path().join("seg-00000000000000000001.anxj"),
    )
    .unwrap();
    assert!(verify(dir.path(), None).unwrap().ok());
}
