//! `cargo oci index --tag REPO:TAG REPO@sha256:… …`: joins per-architecture images that are
//! already pushed (each CI runner pushing its own, by digest) into one image index under a tag.
//! Only manifests and configs are read; no layer is downloaded or uploaded.

use anyhow::{bail, Context as _, Result};
use oci_pack::media_type;
use oci_pack::{join_index, BlobStore, ImageConfig, ImageManifest, RemoteImage};

use crate::registry::Registries;
use crate::report::Image;
use crate::shell::Shell;

/// What `cargo oci index` is asked.
#[derive(Debug)]
pub struct IndexOptions {
    /// `HOST[:PORT]/NAME@sha256:…`, each.
    pub images: Vec<String>,
    /// `HOST[:PORT]/NAME:TAG`, each.
    pub tags: Vec<String>,
    pub insecure_registry: Vec<String>,
}

/// Joins the images into an index and pushes it under the tags; what `cargo oci build` would
/// report of the index, and where it went.
pub fn join(options: &IndexOptions, shell: &Shell) -> Result<Image> {
    let images = options
        .images
        .iter()
        .map(|i| RemoteImage::parse(i).map_err(Into::into))
        .collect::<Result<Vec<_>>>()?;
    let repository = images[0].repository.clone();
    let mut tags = Vec::new();
    for tag in &options.tags {
        let tagged = RemoteImage::parse(tag)?;
        match (
            &tagged.tag,
            tagged.digest.is_none() && tagged.repository == repository,
        ) {
            (Some(name), true) => tags.push(name.clone()),
            _ => bail!("`--tag {tag}` must be a tag of `{repository}`, like `{repository}:1.0`"),
        }
    }

    let registries = Registries::from_env(
        &options.insecure_registry,
        false,
        std::slice::from_ref(&repository),
    )?;
    let session = registries.push_target(&repository.to_string())?.session()?;
    let scratch = tempfile::tempdir().context("failed to create a temporary directory")?;
    let store = BlobStore::open(scratch.path())?;
    let mut manifests = Vec::new();
    for image in &images {
        let (Some(digest), true) = (&image.digest, image.repository == repository) else {
            bail!(
                "`{image}` must be an image of `{repository}` named by digest, \
                 like `{repository}@sha256:…`"
            );
        };
        let mut descriptor = session.resolve(&digest.to_string(), &store)?;
        if !media_type::is_manifest(&descriptor.media_type) {
            bail!("`{image}` is an index already; join single-platform images");
        }
        let manifest: ImageManifest = serde_json::from_slice(&store.read(&descriptor)?)
            .with_context(|| format!("the manifest of `{image}` is not valid JSON"))?;
        session.fetch(&manifest.config, &store, &mut |_| true)?;
        let config: ImageConfig = serde_json::from_slice(&store.read(&manifest.config)?)
            .with_context(|| format!("the config of `{image}` is not valid JSON"))?;
        descriptor.platform = Some(config.platform());
        manifests.push(descriptor);
    }
    let index = join_index(&store, manifests.clone(), Default::default())?;
    let pushed = session.push_index(&store, &index, &tags)?;
    shell.status(
        "Pushed",
        format_args!("{} for {} platforms", pushed.reference, manifests.len()),
    );
    let name = repository.name.rsplit('/').next().unwrap_or_default();
    let image = Image {
        tags: pushed.tags.clone(),
        platforms: manifests
            .iter()
            .filter_map(|m| m.platform.as_ref().map(ToString::to_string))
            .collect(),
        pushed: Some(pushed.reference.clone()),
        ..Image::of(name.to_owned(), index.digest.to_string())
    };
    Ok(image)
}
