//! `cargo xtask fuzz [SECONDS]`: every libFuzzer target of `fuzz/` for a fixed time each; with
//! 0 seconds (what CI runs), each target only replays its committed corpus, the regression
//! inputs of crashes once found among them, which also keeps the targets building.
//!
//! The targets feed the parsers of untrusted bytes (parent layers, image archives, ELF files,
//! references, JSON documents) with inputs grown from the committed seeds in `fuzz/corpus/`.
//! Each run starts from a copy of them under `target/fuzz-corpus/`, so what it finds never
//! changes the committed corpus. The first crash (a panic, an integer overflow, a hang or a
//! runaway allocation) fails the task, and the input that caused it is kept under
//! `fuzz/artifacts/TARGET/`, with the command that replays it printed.
//!
//! `cargo fuzz` needs unstable compiler flags; on a stable toolchain `RUSTC_BOOTSTRAP=1` allows
//! them for this build only. Debug assertions are on, so integer overflow panics.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use xshell::{cmd, Shell};

use crate::{copy_dir, on_path, project_root, Result};

/// The targets, with the largest input each is given: archives and layers write what they
/// hold to disk, so theirs stay small enough for thousands of runs a second.
const TARGETS: [(&str, u32); 5] = [
    ("layer", 65_536),
    ("archive", 65_536),
    ("elf", 65_536),
    ("reference", 1_024),
    ("json", 16_384),
];

/// A single input that runs longer than this is a hang.
const TIMEOUT_SECONDS: u32 = 10;

/// Memory a run may use before it counts as a runaway allocation.
const RSS_LIMIT_MB: u32 = 2_048;

pub fn run(sh: &Shell, seconds: u64) -> Result {
    if !on_path("cargo-fuzz") {
        cmd!(sh, "cargo install --locked cargo-fuzz").run()?;
    }
    let fuzz_dir = project_root().join("fuzz");
    // Release code with debug assertions: fast enough to fuzz, and overflow still panics.
    let flags = ["-O", "-a", "--fuzz-dir"];
    cmd!(sh, "cargo fuzz build {flags...} {fuzz_dir}")
        .env("RUSTC_BOOTSTRAP", "1")
        .run()?;
    for (target, max_len) in TARGETS {
        let corpus = scratch_corpus(&fuzz_dir, target)?;
        let started = SystemTime::now();
        let options = [
            match seconds {
                0 => "-runs=0".to_owned(),
                _ => format!("-max_total_time={seconds}"),
            },
            format!("-max_len={max_len}"),
            format!("-timeout={TIMEOUT_SECONDS}"),
            format!("-rss_limit_mb={RSS_LIMIT_MB}"),
        ];
        match seconds {
            0 => eprintln!("replaying the corpus of `{target}`"),
            _ => eprintln!("fuzzing `{target}` for {seconds} s"),
        }
        let ran = cmd!(
            sh,
            "cargo fuzz run {flags...} {fuzz_dir} {target} {corpus} -- {options...}"
        )
        .env("RUSTC_BOOTSTRAP", "1")
        .run();
        if let Err(error) = ran {
            let artifact = newest_artifact(&fuzz_dir.join("artifacts").join(target), started);
            let Some(artifact) = artifact else {
                return Err(format!("fuzz target `{target}` failed: {error}").into());
            };
            eprintln!(
                "\nfuzz target `{target}` crashed on the input `{}`; replay it with:\n  \
                 RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a --fuzz-dir fuzz {target} {}\n",
                artifact.display(),
                artifact.display()
            );
            return Err(format!("fuzz target `{target}` crashed").into());
        }
    }
    Ok(())
}

/// `target/fuzz-corpus/TARGET`, holding at least the committed seeds of `target`.
fn scratch_corpus(fuzz_dir: &Path, target: &str) -> Result<PathBuf> {
    let scratch = project_root().join("target/fuzz-corpus").join(target);
    copy_dir(&fuzz_dir.join("corpus").join(target), &scratch)?;
    Ok(scratch)
}

/// The input libFuzzer saved in `dir` since `since`: the one that crashed.
fn newest_artifact(dir: &Path, since: SystemTime) -> Option<PathBuf> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let modified = entry.metadata().ok()?.modified().ok()?;
            (modified >= since).then(|| (modified, entry.path()))
        })
        .max()
        .map(|(_, path)| path)
}
