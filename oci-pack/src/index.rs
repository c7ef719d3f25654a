//! The image index (`application/vnd.oci.image.index.v1+json`): an OCI layout's `index.json`,
//! and the multi-platform list that joins one manifest per architecture.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::annotation::{CONTAINERD_IMAGE_NAME, REF_NAME};
use crate::descriptor::Descriptor;
use crate::error::{Error, Result};
use crate::media_type;
use crate::reference::Reference;

/// A list of manifests: one per platform of a multi-platform image, or one per tag in a
/// layout's `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always `2`.
    pub schema_version: u32,
    /// Optional in the spec; we always write [`OCI_INDEX`](media_type::OCI_INDEX).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests (or nested indexes) listed, each with its platform or tag annotations.
    pub manifests: Vec<Descriptor>,
    /// Key-value metadata of the index itself.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    /// An OCI index of `manifests` as given, unchecked.
    pub fn new(manifests: Vec<Descriptor>, annotations: BTreeMap<String, String>) -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.to_owned()),
            manifests,
            annotations,
        }
    }

    /// A multi-platform image: one manifest per platform, in the order given. Every manifest
    /// must name its platform, and no platform may appear twice.
    pub fn join(
        manifests: Vec<Descriptor>,
        annotations: BTreeMap<String, String>,
    ) -> Result<ImageIndex> {
        for (i, manifest) in manifests.iter().enumerate() {
            let Some(platform) = &manifest.platform else {
                return Err(Error::NoPlatform {
                    manifest: manifest.digest,
                });
            };
            if let Some(twin) = manifests[..i]
                .iter()
                .find(|m| m.platform.as_ref() == Some(platform))
            {
                return Err(Error::DuplicatePlatform {
                    platform: platform.to_string(),
                    first: twin.digest,
                    second: manifest.digest,
                });
            }
        }
        Ok(ImageIndex::new(manifests, annotations))
    }

    /// An OCI layout's `index.json`: one entry per tag, each pointing at `target` and named by
    /// its tag part (`org.opencontainers.image.ref.name`, what `oci:DIR:TAG` looks up) and its
    /// full name (`io.containerd.image.name`, what containerd and podman name the image).
    pub fn of_tags(
        target: &Descriptor,
        tags: &[Reference],
        annotations: BTreeMap<String, String>,
    ) -> ImageIndex {
        let entries = tags
            .iter()
            .map(|tag| {
                let mut entry = target.clone();
                entry
                    .annotations
                    .insert(REF_NAME.to_owned(), tag.tag.clone());
                entry
                    .annotations
                    .insert(CONTAINERD_IMAGE_NAME.to_owned(), tag.to_string());
                entry
            })
            .collect();
        ImageIndex::new(entries, annotations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::platform::Platform;

    fn manifest(content: &[u8], architecture: Option<&str>) -> Descriptor {
        let mut descriptor = Descriptor::new(
            media_type::OCI_MANIFEST,
            Digest::of(content),
            content.len() as u64,
        );
        descriptor.platform = architecture.map(|a| Platform::new("linux", a, None));
        descriptor
    }

    #[test]
    fn an_index_holds_one_image_per_platform() {
        let amd64 = manifest(b"a", Some("amd64"));
        let arm64 = manifest(b"b", Some("arm64"));
        let joined = ImageIndex::join(vec![amd64.clone(), arm64], BTreeMap::new()).unwrap();
        assert_eq!(joined.manifests.len(), 2);

        let twin = manifest(b"c", Some("amd64"));
        let error = ImageIndex::join(vec![amd64.clone(), twin], BTreeMap::new()).unwrap_err();
        assert!(
            error.to_string().contains("are both linux/amd64"),
            "{error}"
        );
        let anonymous = manifest(b"d", None);
        assert!(matches!(
            ImageIndex::join(vec![amd64, anonymous], BTreeMap::new()),
            Err(Error::NoPlatform { .. })
        ));
    }
}
