//! Docker's archive format (`docker save` / `docker load`): `manifest.json` and `repositories`.
//! We read both the classic layout and Docker ≥ 25's, and write the latter: an OCI layout
//! plus a `manifest.json` whose paths point into `blobs/sha256/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::descriptor::Descriptor;
use crate::error::{Error, Result};
use crate::manifest::ImageManifest;
use crate::media_type;
use crate::reference::Reference;

/// One image of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerArchiveImage {
    /// Path of the config in the archive, e.g. `blobs/sha256/<hex>` or `<hex>.json`.
    pub config: String,
    /// The image's names, e.g. `"hello:1.0"`; `None` for an untagged image.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layers in the archive, base first, e.g. `<id>/layer.tar`.
    pub layers: Vec<String>,
}

/// The `manifest.json` and `repositories` of a Docker archive of the image `manifest`, whose
/// blobs sit under `blobs/sha256/` beside them.
pub fn archive_manifest(
    manifest: &ImageManifest,
    tags: &[Reference],
) -> Result<(Vec<u8>, Vec<u8>)> {
    for layer in &manifest.layers {
        // moby's loader takes plain and gzip tars; anything else would fail inside `docker load`.
        if !media_type::docker_loads(&layer.media_type) {
            return Err(Error::NotForDockerLoad {
                layer: layer.digest,
                media_type: layer.media_type.clone(),
            });
        }
    }
    let blob_path = |d: &Descriptor| format!("blobs/sha256/{}", d.digest.hex());
    let image = DockerArchiveImage {
        config: blob_path(&manifest.config),
        repo_tags: Some(tags.iter().map(ToString::to_string).collect()),
        layers: manifest.layers.iter().map(blob_path).collect(),
    };
    // `repositories` maps each name's tags to the top layer, as `docker save` writes it.
    let top = manifest
        .layers
        .last()
        .map(|l| l.digest.hex().to_owned())
        .unwrap_or_default();
    let mut repositories: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for tag in tags {
        repositories
            .entry(&tag.name)
            .or_default()
            .insert(&tag.tag, &top);
    }
    let manifest_json = serde_json::to_vec(&[image]).map_err(|source| Error::Json {
        what: "manifest.json",
        source,
    })?;
    let repositories_json = serde_json::to_vec(&repositories).map_err(|source| Error::Json {
        what: "repositories",
        source,
    })?;
    Ok((manifest_json, repositories_json))
}
