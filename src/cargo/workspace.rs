//! What Cargo says about the workspace: `cargo metadata`, the packages chosen as cargo chooses
//! them, and the host and toolchain (`rustc -vV`), gathered once as [`Facts`].

use std::path::Path;
use std::process::Command;

use anyhow::{anyhow, bail, Context as _, Result};
use cargo_metadata::{Metadata, Package};
use oci_pack::Timestamp;

use super::options::WorkspaceOptions;

/// `cargo metadata --no-deps` for the workspace the options select.
pub fn metadata(options: &WorkspaceOptions) -> Result<Metadata> {
    options
        .metadata_command(Vec::new())
        .no_deps()
        .exec()
        .context("failed to read the workspace with `cargo metadata`")
}

/// A package chosen as cargo chooses, and whether it was named exactly (`-p api`): a named
/// package that is not an image is an error, one chosen otherwise is skipped.
#[derive(Debug, Clone, Copy)]
pub struct Selected<'a> {
    pub package: &'a Package,
    pub named: bool,
}

/// The packages cargo would build with the same flags: `--workspace` (less `--exclude`), the
/// `-p` names and globs, else the package of the current directory or the workspace's default
/// members (what `cargo metadata` reports as `workspace_default_members`). In workspace order.
pub fn select_packages<'a>(
    workspace: &'a Metadata,
    options: &WorkspaceOptions,
) -> Result<Vec<Selected<'a>>> {
    let members = workspace.workspace_packages();
    let names = || list(members.iter().map(|p| p.name.as_str()));
    let mut selected: Vec<Selected<'a>> = Vec::new();
    if options.workspace {
        for package in &members {
            if !options
                .exclude
                .iter()
                .any(|spec| matches(spec, &package.name))
            {
                selected.push(Selected {
                    package,
                    named: false,
                });
            }
        }
    } else if !options.packages.is_empty() {
        for spec in &options.packages {
            // `name@version` is cargo's spelling of one version of a package.
            let name = spec.split_once('@').map_or(spec.as_str(), |(name, _)| name);
            let globbed = name.contains(['*', '?']);
            let found: Vec<&Package> = members
                .iter()
                .copied()
                .filter(|p| matches(name, &p.name))
                .collect();
            if found.is_empty() {
                bail!(
                    "package `{spec}` is not a member of the workspace at `{}` (members: {})",
                    workspace.workspace_root,
                    names()
                );
            }
            selected.extend(found.into_iter().map(|package| Selected {
                package,
                named: !globbed,
            }));
        }
    } else {
        let defaults = if workspace.workspace_default_members.is_available() {
            workspace.workspace_default_packages()
        } else {
            workspace
                .root_package()
                .map_or(members.clone(), |root| vec![root])
        };
        selected.extend(defaults.into_iter().map(|package| Selected {
            package,
            named: false,
        }));
    }
    // Each once, named if it was named anywhere, in workspace order.
    let mut ordered: Vec<Selected<'a>> = Vec::new();
    for member in &members {
        let picks: Vec<&Selected<'a>> = selected
            .iter()
            .filter(|s| s.package.id == member.id)
            .collect();
        if !picks.is_empty() {
            ordered.push(Selected {
                package: member,
                named: picks.iter().any(|s| s.named),
            });
        }
    }
    Ok(ordered)
}

/// Whether `name` matches `pattern`, where `*` is any run of characters and `?` any one.
fn matches(pattern: &str, name: &str) -> bool {
    fn from(pattern: &[char], name: &[char]) -> bool {
        match (pattern.first(), name.first()) {
            (None, None) => true,
            (Some('*'), _) => {
                from(&pattern[1..], name) || (!name.is_empty() && from(pattern, &name[1..]))
            }
            (Some('?'), Some(_)) => from(&pattern[1..], &name[1..]),
            (Some(p), Some(n)) if p == n => from(&pattern[1..], &name[1..]),
            _ => false,
        }
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    from(&pattern, &name)
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

/// Whether a package is made into images: it has a `[package.metadata.oci]` table, or the
/// workspace has one and the package has binaries, unless it says `oci = false` (an xtask).
pub fn is_image(workspace: &Metadata, package: &Package) -> bool {
    match package.metadata.get("oci") {
        Some(serde_json::Value::Bool(false)) => false,
        Some(_) => true,
        None => {
            workspace.workspace_metadata.get("oci").is_some()
                && package
                    .targets
                    .iter()
                    .any(|t| t.kind.iter().any(|k| k.to_string() == "bin"))
        }
    }
}

/// `SOURCE_DATE_EPOCH`, the reproducible-builds convention; without it, the fixed default.
pub fn source_date_epoch() -> Result<Timestamp> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(Timestamp::DEFAULT),
        Ok(value) => value.trim().parse().map(Timestamp).map_err(|_| {
            anyhow!("invalid SOURCE_DATE_EPOCH `{value}`: expected whole seconds since 1970-01-01")
        }),
    }
}

/// The rustc that cargo uses: `$RUSTC`, else the one beside the cargo that runs us (`$CARGO`,
/// the toolchain's own binary), which spares a start of rustup's proxy; else `rustc`.
fn rustc() -> std::ffi::OsString {
    if let Some(rustc) = std::env::var_os("RUSTC") {
        return rustc;
    }
    let beside_cargo = std::env::var_os("CARGO")
        .map(std::path::PathBuf::from)
        .and_then(|cargo| Some(cargo.parent()?.join("rustc")))
        .filter(|rustc| rustc.is_file());
    beside_cargo.map_or_else(|| "rustc".into(), Into::into)
}

/// What the build asks of other programs before it starts: the workspace (`cargo metadata`),
/// the host target (`rustc -vV`) and the git checkout, asked at the same time, since each is a
/// process start.
#[derive(Debug)]
pub struct Facts {
    pub metadata: Metadata,
    pub host: String,
    /// The compiler's release and commit, for provenance.
    pub toolchain: Toolchain,
    checkout: Option<Checkout>,
}

/// The compiler, as `rustc -vV` names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Toolchain {
    /// `1.89.0`
    pub release: Option<String>,
    /// The commit of rust-lang/rust it was built from.
    pub commit_hash: Option<String>,
}

impl Toolchain {
    /// From `rustc -vV`'s output.
    pub fn parse(text: &str) -> Toolchain {
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty() && value != "unknown")
        };
        Toolchain {
            release: field("release"),
            commit_hash: field("commit-hash"),
        }
    }
}

/// The git checkout the command runs in: its top directory, the commit checked out, and the
/// `origin` remote's URL without its user information (a token), if it has one.
#[derive(Debug, Clone)]
struct Checkout {
    toplevel: std::path::PathBuf,
    head: String,
    origin: Option<String>,
}

impl Facts {
    pub fn gather(options: &WorkspaceOptions) -> Result<Facts> {
        let start = options
            .manifest_path
            .as_deref()
            .and_then(Path::parent)
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let start = match &options.current_dir {
            Some(dir) => dir.join(start),
            None => start.to_owned(),
        };
        std::thread::scope(|scope| {
            let host = scope.spawn(|| rustc_facts(options));
            let checkout = scope.spawn(|| checkout(&start));
            let metadata = metadata(options);
            let host = host.join().expect("the thread asking rustc does not panic");
            let checkout = checkout
                .join()
                .expect("the thread asking git does not panic");
            let (host, toolchain) = host?;
            Ok(Facts {
                metadata: metadata?,
                host,
                toolchain,
                checkout,
            })
        })
    }

    /// The commit `dir` is checked out at, from the checkout found at the start when `dir` is
    /// in it.
    pub fn revision(&self, dir: &Path) -> Option<String> {
        self.checkout_of(dir).map(|c| c.head)
    }

    /// The commit `dir` is checked out at, and the URL of its `origin` remote without user
    /// information, if it has one (a query may still hold a token: for the caller to strip).
    pub fn revision_and_origin(&self, dir: &Path) -> Option<(String, Option<String>)> {
        self.checkout_of(dir).map(|c| (c.head, c.origin))
    }

    fn checkout_of(&self, dir: &Path) -> Option<Checkout> {
        match &self.checkout {
            Some(checkout) if dir.starts_with(&checkout.toplevel) => Some(checkout.clone()),
            _ => checkout(dir),
        }
    }
}

/// The git checkout `dir` is in; `None` outside one or without git.
fn checkout(dir: &Path) -> Option<Checkout> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-toplevel", "HEAD"])
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let mut lines = text.lines();
    let toplevel = std::fs::canonicalize(lines.next()?).ok()?;
    let head = lines.next()?.trim().to_owned();
    if !output.status.success() || head.is_empty() {
        return None;
    }
    // Asked here, beside `cargo metadata`, rather than after packing, where it would wait.
    let origin = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["config", "--get", "remote.origin.url"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|url| crate::text::without_userinfo(url.trim()))
        .filter(|url| !url.is_empty());
    Some(Checkout {
        toplevel,
        head,
        origin,
    })
}

/// The toolchain's sysroot (`rustc --print sysroot`), where each target's standard library is;
/// `None` when rustc does not say.
pub fn sysroot(options: &WorkspaceOptions) -> Option<std::path::PathBuf> {
    let output = options
        .run_here(&mut Command::new(rustc()))
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().into())
}

/// The target rustc builds for when no `--target` is given.
pub fn host_triple(options: &WorkspaceOptions) -> Result<String> {
    rustc_facts(options).map(|(host, _)| host)
}

/// What `rustc -vV` says: the host target, and the compiler's release and commit.
fn rustc_facts(options: &WorkspaceOptions) -> Result<(String, Toolchain)> {
    let output = options
        .run_here(&mut Command::new(rustc()))
        .arg("-vV")
        .output()
        .context("failed to run `rustc -vV`")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let host = text
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("`rustc -vV` did not name the host target"))?;
    Ok((host, Toolchain::parse(&text)))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs_match_as_cargo_reads_them() {
        for (pattern, name) in [
            ("api", "api"),
            ("*", "api"),
            ("a?i", "api"),
            ("svc-*", "svc-a"),
        ] {
            assert!(matches(pattern, name), "{pattern} {name}");
        }
        for (pattern, name) in [("api", "apis"), ("a?", "api"), ("svc-*", "api"), ("", "a")] {
            assert!(!matches(pattern, name), "{pattern} {name}");
        }
    }
}
