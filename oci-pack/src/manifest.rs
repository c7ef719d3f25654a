//! The image manifest (`application/vnd.oci.image.manifest.v1+json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::descriptor::Descriptor;

/// One platform's image: its config and its layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always `2`.
    pub schema_version: u32,
    /// Optional in the spec (umoci leaves it out); we always write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// What an artifact manifest holds, e.g. `application/spdx+json`; `None` for an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The image's [`ImageConfig`](crate::config::ImageConfig) blob.
    pub config: Descriptor,
    /// Base layer first.
    pub layers: Vec<Descriptor>,
    /// Key-value metadata, such as the base image's name and digest
    /// ([`BASE_NAME`](crate::annotation::BASE_NAME)).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The manifest an artifact is about (an SBOM's image), which makes it a referrer of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
}
