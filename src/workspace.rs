//! What Cargo says about the package being packed: the workspace (`cargo metadata`), the package
//! chosen, its `[package.metadata.oci]` resolved into a build plan, and the host target.

use std::path::Path;
use std::process::Command;

use anyhow::{anyhow, bail, Context as _, Result};
use cargo_metadata::{Metadata, MetadataCommand, Package};
use oci_pack::timestamp::Timestamp;

use crate::cargo_build::WorkspaceOptions;
use crate::metadata::KeyError;
use crate::plan::{self, BuildPlan, Overrides, PackageFacts, PlanError};

/// `cargo metadata --no-deps` for the workspace the options select.
pub fn metadata(options: &WorkspaceOptions) -> Result<Metadata> {
    let mut command = MetadataCommand::new();
    if let Some(cargo) = std::env::var_os("CARGO") {
        command.cargo_path(cargo);
    }
    if let Some(path) = &options.manifest_path {
        command.manifest_path(path);
    }
    let lock_flags = options
        .lock_args()
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    command.no_deps().other_options(lock_flags);
    command
        .exec()
        .context("failed to read the workspace with `cargo metadata`")
}

/// The package `-p` names, else the current one, else a lone member.
pub fn select_package<'a>(workspace: &'a Metadata, spec: Option<&str>) -> Result<&'a Package> {
    let members = workspace.workspace_packages();
    if let Some(spec) = spec {
        return members
            .into_iter()
            .find(|p| p.name.as_str() == spec)
            .ok_or_else(|| {
                anyhow!(
                    "package `{spec}` is not a member of the workspace at `{}`",
                    workspace.workspace_root
                )
            });
    }
    if let Some(root) = workspace.root_package() {
        return Ok(root);
    }
    match members.as_slice() {
        [only] => Ok(only),
        _ => bail!(
            "`{}` is a virtual workspace; choose a package with `-p` (one of: {})",
            workspace.workspace_root.join("Cargo.toml"),
            members
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The package's `[package.metadata.oci]` (with `[workspace.metadata.oci]` defaults) resolved
/// into a plan of every image; an error names the `Cargo.toml` it is about.
pub fn build_plan(
    facts: &Facts,
    package: &Package,
    created: Timestamp,
    overrides: &Overrides,
) -> Result<BuildPlan> {
    let workspace = &facts.metadata;
    let in_manifest = |error: KeyError| {
        let manifest = if error.path.starts_with("workspace.") {
            workspace.workspace_root.join("Cargo.toml")
        } else {
            package.manifest_path.clone()
        };
        anyhow!("invalid {error}\n  --> {manifest}")
    };
    let loaded = crate::metadata::load(
        workspace.workspace_metadata.get("oci"),
        package.metadata.get("oci"),
    )
    .map_err(in_manifest)?;
    let package_facts = package_facts(package, facts);
    plan::resolve(&loaded, &package_facts, created, overrides, &facts.host).map_err(|error| {
        match error {
            PlanError::Key(error) => in_manifest(error),
            other => anyhow!(other),
        }
    })
}

fn package_facts(package: &Package, facts: &Facts) -> PackageFacts {
    let dir = package
        .manifest_path
        .parent()
        .map(|d| d.as_std_path().to_owned())
        .unwrap_or_default();
    PackageFacts {
        name: package.name.to_string(),
        version: package.version.to_string(),
        authors: package.authors.clone(),
        description: package.description.clone(),
        license: package.license.clone(),
        repository: package.repository.clone(),
        homepage: package.homepage.clone(),
        documentation: package.documentation.clone(),
        bin_targets: package
            .targets
            .iter()
            .filter(|t| t.kind.iter().any(|k| k.to_string() == "bin"))
            .map(|t| t.name.clone())
            .collect(),
        revision: std::fs::canonicalize(&dir)
            .ok()
            .and_then(|dir| facts.revision(&dir)),
        dir,
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
    checkout: Option<Checkout>,
}

/// The git checkout the command runs in: its top directory and the commit checked out.
#[derive(Debug)]
struct Checkout {
    toplevel: std::path::PathBuf,
    head: String,
}

impl Facts {
    pub fn gather(options: &WorkspaceOptions) -> Result<Facts> {
        let start = options
            .manifest_path
            .as_deref()
            .and_then(Path::parent)
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        std::thread::scope(|scope| {
            let host = scope.spawn(host_triple);
            let checkout = scope.spawn(|| checkout(&start));
            let metadata = metadata(options);
            let host = host.join().expect("the thread asking rustc does not panic");
            let checkout = checkout
                .join()
                .expect("the thread asking git does not panic");
            Ok(Facts {
                metadata: metadata?,
                host: host?,
                checkout,
            })
        })
    }

    /// The commit `dir` is checked out at, from the checkout found at the start when `dir` is
    /// in it.
    fn revision(&self, dir: &Path) -> Option<String> {
        match &self.checkout {
            Some(checkout) if dir.starts_with(&checkout.toplevel) => Some(checkout.head.clone()),
            _ => checkout(dir).map(|c| c.head),
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
    (output.status.success() && !head.is_empty()).then_some(Checkout { toplevel, head })
}

/// The target rustc builds for when no `--target` is given.
pub fn host_triple() -> Result<String> {
    let output = Command::new(rustc())
        .arg("-vV")
        .output()
        .context("failed to run `rustc -vV`")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("`rustc -vV` did not name the host target"))
}
