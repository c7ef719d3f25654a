//! `cargo oci push REPOSITORY`: pushes an OCI layout that `cargo oci build` already wrote, under
//! the tags its `index.json` names, by digest and tags last (as `build --push` does).

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use oci_pack::annotation::{CONTAINERD_IMAGE_NAME, REF_NAME};
use oci_pack::registry::Pushed;
use oci_pack::BlobStore;
use oci_pack::Descriptor;
use oci_pack::ImageConfig;
use oci_pack::ImageIndex;
use oci_pack::ImageManifest;
use oci_pack::Repository;

use crate::registry::Registries;
use crate::report::Image;
use crate::shell::Shell;

/// What `cargo oci push` is asked: the layout, where to, and how.
#[derive(Debug)]
pub struct PushOptions {
    pub layout: PathBuf,
    /// `HOST[:PORT]/NAME`
    pub repository: String,
    pub insecure_registry: Vec<String>,
    /// Push by digest only, without the layout's tags.
    pub by_digest: bool,
}

/// Pushes the layout's image and then what is attached to it; where it went, and what
/// `cargo oci build` would report of the image.
pub fn push(options: &PushOptions, shell: &Shell) -> Result<(Pushed, Image)> {
    let layout = &options.layout;
    let index_path = layout.join("index.json");
    let index: ImageIndex =
        serde_json::from_slice(&std::fs::read(&index_path).with_context(|| {
            format!(
                "failed to read `{}`; build the image first",
                index_path.display()
            )
        })?)
        .with_context(|| format!("failed to parse `{}`", index_path.display()))?;
    // Artifacts about the image (its SBOMs) are pushed after it; the rest are its tags.
    let (referrers, tagged): (Vec<Descriptor>, Vec<Descriptor>) = index
        .manifests
        .into_iter()
        .partition(|m| m.artifact_type.is_some());
    let Some(first) = tagged.first() else {
        bail!("`{}` names no image", index_path.display())
    };
    let target = Descriptor {
        annotations: Default::default(),
        platform: None,
        ..first.clone()
    };
    if tagged.iter().any(|m| m.digest != target.digest) {
        bail!(
            "`{}` names several images; push them one layout at a time",
            index_path.display()
        );
    }
    let tags: Vec<String> = tagged
        .iter()
        .filter(|_| !options.by_digest)
        .filter_map(|m| m.annotations.get(REF_NAME).cloned())
        .collect();

    let repository = Repository::parse(&options.repository)?;
    let registries = Registries::from_env(
        &options.insecure_registry,
        false,
        std::slice::from_ref(&repository),
    )?;
    let destination = registries.push_target(&options.repository)?;
    let store = BlobStore::existing(layout);
    // The same fields `cargo oci build` reports of this image.
    let (config, platforms) = config_and_platforms(&store, &target)?;
    // The referrers listing a registry without the referrers API needs is written aside, as
    // the layout is only read; the place is made before anything is pushed, so a failure to
    // make it leaves the registry as it was.
    let aside = match referrers.is_empty() {
        true => None,
        false => Some(tempfile::tempdir().context("failed to create a temporary directory")?),
    };
    let session = destination.session()?;
    let pushed = session.push(&store, &target, &tags, &mut shell.clone())?;
    if let Some(aside) = &aside {
        session.push_referrers(&store, &referrers, &BlobStore::open(aside.path())?)?;
    }
    let name = layout
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let image = Image {
        config,
        tags: tagged
            .iter()
            .filter_map(|m| m.annotations.get(CONTAINERD_IMAGE_NAME).cloned())
            .collect(),
        platforms,
        pushed: Some(pushed.reference.clone()),
        ..Image::of(name, target.digest.to_string())
    };
    Ok((pushed, image))
}

/// What `cargo oci build` reports of an image: the config digest of a single-platform image
/// (`None` for an index), and its platforms.
fn config_and_platforms(
    store: &BlobStore,
    target: &Descriptor,
) -> Result<(Option<String>, Vec<String>)> {
    let bytes = store.read(target)?;
    if oci_pack::media_type::is_index(&target.media_type) {
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .with_context(|| format!("image index {} is not valid JSON", target.digest))?;
        let platforms = index
            .manifests
            .iter()
            .filter_map(|m| m.platform.as_ref().map(ToString::to_string))
            .collect();
        return Ok((None, platforms));
    }
    let manifest: ImageManifest = serde_json::from_slice(&bytes)
        .with_context(|| format!("manifest {} is not valid JSON", target.digest))?;
    let config: ImageConfig = serde_json::from_slice(&store.read(&manifest.config)?)
        .with_context(|| format!("config {} is not valid JSON", manifest.config.digest))?;
    Ok((
        Some(manifest.config.digest.to_string()),
        vec![config.platform().to_string()],
    ))
}
