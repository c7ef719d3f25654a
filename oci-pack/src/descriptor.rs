//! Content descriptors: what a manifest or index says about a blob it points to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::platform::Platform;

/// A pointer to a blob: its type, digest and size, which a reader checks the bytes against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the blob is, e.g. `application/vnd.oci.image.layer.v1.tar+gzip` (see
    /// [`media_type`](crate::media_type)).
    pub media_type: String,
    /// The blob's digest, which names it in a store.
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// The platform of the image a manifest describes, in an image index's entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// What an artifact manifest holds (its `artifactType`), in a list of referrers, e.g.
    /// `application/spdx+json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Key-value metadata, such as an `index.json` entry's
    /// [`REF_NAME`](crate::annotation::REF_NAME).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A descriptor with no platform and no annotations.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            platform: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }
}
