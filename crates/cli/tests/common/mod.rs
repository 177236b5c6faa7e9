//! Helpers for tests that run the `morningai` binary.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_morningai");

/// A child process, SIGKILLed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh scratch directory under Cargo's per-target temp dir.
pub fn scratch(tag: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The binary with the caller's MorningAI settings removed and its data dir in `dir`.
pub fn clean_cmd(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("MORNINGAI_") || k == "DATABASE_URL" || k == "REDIS_URL" {
            c.env_remove(k);
        }
    }
    c.env("MORNINGAI_DATA_DIR", dir.join("data"));
    c
}

/// Spawns `c` and returns it once it printed its first line (its readiness line).
pub fn spawn_ready(c: &mut Command) -> (Proc, String) {
    let mut child = c.stdout(Stdio::piped()).spawn().expect("spawn morningai");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Proc(child), line)
}

/// `serve` on a random port: the process and its base URL.
pub fn serve(c: &mut Command) -> (Proc, String) {
    let (p, line) = spawn_ready(c.args(["serve", "--listen", "127.0.0.1:0"]));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (p, url)
}
