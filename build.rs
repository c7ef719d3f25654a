//! The build script of `cargo-oci`: the git commit it is built from, for `cargo oci -vV`, when
//! it is built in a git checkout of its own (not from a crates.io package, which has none, nor
//! one unpacked inside another repository's checkout); and the target it is built for.

use std::path::Path;
use std::process::Command;

fn main() {
    println!(
        "cargo:rustc-env=CARGO_OCI_HOST={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    // A `.git` of its own (a directory, or a worktree's file): else the commit would be that
    // of whatever checkout the sources happen to sit in.
    if !Path::new(&dir).join(".git").exists() {
        return;
    }
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        output.status.success().then(|| text.trim().to_owned())
    };
    // `%cs`: the committer date, `YYYY-MM-DD`, as cargo's own `commit-date`.
    let Some((hash, date)) = git(&["log", "-1", "--format=%H %cs"])
        .as_deref()
        .and_then(|line| line.split_once(' '))
        .map(|(hash, date)| (hash.to_owned(), date.to_owned()))
    else {
        return;
    };
    println!("cargo:rustc-env=CARGO_OCI_COMMIT_HASH={hash}");
    println!("cargo:rustc-env=CARGO_OCI_COMMIT_DATE={date}");
    // Run again when HEAD moves: its file, the branch's, and the packed refs (those that
    // exist: a missing one would run this script on every build).
    let branch = git(&["symbolic-ref", "-q", "HEAD"]).unwrap_or_default();
    for name in ["HEAD", branch.as_str(), "packed-refs"] {
        let path = git(&["rev-parse", "--git-path", name]).map(|path| Path::new(&dir).join(path));
        if let Some(path) = path.filter(|path| !name.is_empty() && path.is_file()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
