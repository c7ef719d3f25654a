//! What Cargo says about the package being packed: the workspace (`cargo metadata`), the package
//! chosen, its `[package.metadata.oci]` resolved into one plan per target, and the host target.

use std::path::Path;
use std::process::Command;

use anyhow::{anyhow, bail, Context as _, Result};
use cargo_metadata::{Metadata, MetadataCommand, Package};
use oci_pack::timestamp::Timestamp;

use crate::cargo_build::WorkspaceOptions;
use crate::plan::{self, PackageFacts, Plan};

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

/// One image to build: the `--target` to pass to cargo (`None` for the host) and its plan.
#[derive(Debug)]
pub struct TargetPlan {
    pub triple: Option<String>,
    pub plan: Plan,
}

/// The plan of every image: one per `--target` (or `targets` in the metadata), else the host's.
pub fn plans(
    workspace: &Metadata,
    package: &Package,
    created: Timestamp,
    cli_targets: &[String],
    host: &str,
) -> Result<Vec<TargetPlan>> {
    let in_manifest = |error: crate::metadata::KeyError| {
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
    let facts = package_facts(package);
    let triples: Vec<Option<String>> = match (cli_targets, &loaded.package.targets) {
        ([], None) => vec![None],
        ([], Some(targets)) => targets.iter().cloned().map(Some).collect(),
        (cli, _) => cli.iter().cloned().map(Some).collect(),
    };
    if triples.is_empty() {
        bail!(
            "invalid `package.metadata.oci.targets`: the list is empty\n  --> {}",
            package.manifest_path
        );
    }
    let mut plans: Vec<TargetPlan> = Vec::new();
    for triple in triples {
        if plans.iter().any(|p| p.triple == triple) {
            continue;
        }
        let metadata = loaded.for_target(triple.as_deref()).clone();
        let plan = plan::resolve(metadata, &facts, created, triple.as_deref().unwrap_or(host))
            .map_err(in_manifest)?;
        if let Some(other) = plans.iter().find(|p| p.plan.platform == plan.platform) {
            bail!(
                "targets `{}` and `{}` both build {}; an image index holds one image per platform",
                other.triple.as_deref().unwrap_or(host),
                triple.as_deref().unwrap_or(host),
                plan.platform
            );
        }
        plans.push(TargetPlan { triple, plan });
    }
    Ok(plans)
}

fn package_facts(package: &Package) -> PackageFacts {
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
        revision: git_revision(&dir),
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

/// The commit the package is checked out at; `None` outside a git checkout or without git.
fn git_revision(dir: &Path) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    let revision = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !revision.is_empty()).then_some(revision)
}

/// The target rustc builds for when no `--target` is given.
pub fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .arg("-vV")
        .output()
        .context("failed to run `rustc -vV`")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("`rustc -vV` did not name the host target"))
}
