//! Helpers for end-to-end tests: run the real `anx` binary and capture what it did.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn golden_dir() -> PathBuf {
    repo_root().join("journal/tests/fixtures/golden-v1")
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output
                .status
                .code()
                .expect("exited normally, not by a signal"),
            stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
        }
    }

    /// A user-facing failure: one line on stderr, no panic or backtrace.
    pub fn assert_one_line_error(&self, code: i32) {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "stderr must be one line: {:?}",
            self.stderr
        );
        assert!(self.stderr.starts_with("anx: "), "{:?}", self.stderr);
        assert!(!self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"));
    }
}

/// Runs `anx` with `args` in `cwd`.
pub fn anx_in(cwd: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_anx"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .expect("spawn anx");
    Run::from(output)
}

pub fn anx(args: &[&str]) -> Run {
    anx_in(&repo_root(), args)
}

/// Copies a journal directory's files into a fresh temp dir.
pub fn copy_of(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).expect("copy");
    }
    copy
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}
