//! What is built: each chosen package's `[package.metadata.oci]` (with `[workspace.metadata.oci]`
//! defaults) read by its schema ([`metadata`]) and resolved ([`resolve`]) into a validated
//! `BuildPlan` per image, with the words the metadata, flags and outputs share
//! ([`vocabulary`]), Docker's value syntaxes ([`values`]) and a base's platforms as targets
//! ([`platforms`]).

use std::path::Path;
use std::process::Command;

use anyhow::{anyhow, bail, Result};
use cargo_metadata::{Metadata, Package};
use oci_pack::Timestamp;

use crate::cargo::options::WorkspaceOptions;
use crate::cargo::workspace::{is_image, select_packages, Facts};
use crate::error::{Manifest, MetadataError};

pub mod metadata;
pub mod platforms;
mod resolve;
pub mod values;
mod vocabulary;

use metadata::KeyError;
pub use resolve::{BuildPlan, ImagePlan, Overrides, PackageFacts, PlanError};
pub use vocabulary::{on_path, Format, Loader, MessageFormat, ProvenanceMode, SbomFormat};

/// The names of the images the chosen packages make (a package's own name, or its
/// `images.<name>` keys): what `<target-dir>/oci/` holds after their build.
pub fn image_names(facts: &Facts, options: &WorkspaceOptions) -> Result<Vec<String>> {
    let workspace = &facts.metadata;
    let mut names = Vec::new();
    for selected in select_packages(workspace, options)? {
        let package = selected.package;
        if !is_image(workspace, package) {
            if selected.named {
                bail!("package `{}` is not an image", package.name);
            }
            continue;
        }
        let images = crate::plan::metadata::load(
            workspace.workspace_metadata.get("oci"),
            package.metadata.get("oci"),
        )
        .map_err(|error| in_manifest(workspace, package, error))?;
        names.extend(
            images
                .into_iter()
                .map(|image| image.name.unwrap_or_else(|| package.name.to_string())),
        );
    }
    Ok(names)
}

/// A metadata error, in the `Cargo.toml` its key is in: the workspace's or the package's.
fn in_manifest(workspace: &Metadata, package: &Package, error: KeyError) -> anyhow::Error {
    let manifest = match error.path.manifest() {
        Manifest::Workspace => workspace.workspace_root.join("Cargo.toml"),
        Manifest::Package => package.manifest_path.clone(),
    };
    MetadataError {
        manifest: manifest.into_std_path_buf(),
        key: error.path,
        message: error.message,
    }
    .into()
}

/// The package's `[package.metadata.oci]` (with `[workspace.metadata.oci]` defaults) resolved
/// into a plan per image (one, or one per `images.<name>`); an error names the `Cargo.toml` it
/// is about.
pub fn build_plans(
    facts: &Facts,
    package: &Package,
    created: Timestamp,
    overrides: &Overrides,
) -> Result<Vec<BuildPlan>> {
    let workspace = &facts.metadata;
    let in_manifest = |error: KeyError| in_manifest(workspace, package, error);
    let images = crate::plan::metadata::load(
        workspace.workspace_metadata.get("oci"),
        package.metadata.get("oci"),
    )
    .map_err(in_manifest)?;
    let wants_git_tag = overrides
        .tags
        .iter()
        .chain(
            images
                .iter()
                .flat_map(|image| image.set.tags.iter().flatten()),
        )
        .any(|template| template.contains("{git_tag}"));
    let package_facts = package_facts(package, facts, wants_git_tag);
    images
        .iter()
        .map(|loaded| {
            resolve::resolve(loaded, &package_facts, created, overrides, &facts.host).map_err(
                |error| match error {
                    PlanError::Key(error) => in_manifest(error),
                    other => anyhow!("package `{}`: {other}", package.name),
                },
            )
        })
        .collect()
}

/// What Cargo and git say of `package`; its git tag is asked for only when `git_tag`.
fn package_facts(package: &Package, facts: &Facts, git_tag: bool) -> PackageFacts {
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
        git_tag: git_tag.then(|| tag_of_head(&dir)).flatten(),
        dir,
    }
}

/// The tag of the commit `dir` is checked out at (`git describe --tags --exact-match`).
fn tag_of_head(dir: &Path) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["describe", "--tags", "--exact-match", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let tag = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !tag.is_empty()).then_some(tag)
}
