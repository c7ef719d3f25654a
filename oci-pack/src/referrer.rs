//! Artifacts attached to an image (an SBOM, a signature): OCI 1.1 manifests whose `subject` is
//! the image's manifest and whose `artifactType` says what they hold. A client finds them
//! through a registry's referrers API, or on a registry without one through the tag the
//! distribution spec names after the subject's digest ([`fallback_tag`]); in a layout they are
//! entries of `index.json` without a tag.

use std::collections::BTreeMap;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::ImageManifest;
use crate::media_type;
use crate::store::BlobStore;

/// The config of an artifact that needs none: `{}`, as the image spec defines it.
const EMPTY_CONFIG: &[u8] = b"{}";

/// Writes `content` (of type `artifact_type`) into `store` as an artifact about `subject`, and
/// returns the descriptor a list of referrers shows for it: the artifact manifest's, with its
/// `artifactType` and `annotations`.
pub fn attach(
    store: &BlobStore,
    subject: &Descriptor,
    artifact_type: &str,
    content: &[u8],
    annotations: BTreeMap<String, String>,
) -> Result<Descriptor> {
    let layer = store.put(artifact_type, content)?;
    let config = store.put(media_type::OCI_EMPTY, EMPTY_CONFIG)?;
    // The subject as a manifest names it: no platform, no tag.
    let subject = Descriptor::new(&subject.media_type, subject.digest, subject.size);
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_owned()),
        artifact_type: Some(artifact_type.to_owned()),
        config,
        layers: vec![layer],
        annotations: annotations.clone(),
        subject: Some(subject),
    };
    let mut descriptor =
        store.put_json(media_type::OCI_MANIFEST, "an artifact manifest", &manifest)?;
    descriptor.artifact_type = Some(artifact_type.to_owned());
    descriptor.annotations = annotations;
    Ok(descriptor)
}

/// The tag a registry without the referrers API lists `subject`'s referrers under, in an image
/// index: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artifact_names_its_subject_and_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let image = store
            .put(media_type::OCI_MANIFEST, b"{\"an\":\"image\"}")
            .unwrap();
        let mut subject = image.clone();
        subject.platform = Some(crate::platform::Platform::new("linux", "amd64", None));
        let annotations = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
        let attached = attach(
            &store,
            &subject,
            media_type::SPDX_JSON,
            b"{}",
            annotations.clone(),
        )
        .unwrap();
        assert_eq!(
            attached.artifact_type.as_deref(),
            Some(media_type::SPDX_JSON)
        );
        assert_eq!(attached.annotations, annotations);
        let manifest: ImageManifest =
            serde_json::from_slice(&store.read(&attached).unwrap()).unwrap();
        let named = manifest.subject.unwrap();
        assert_eq!(
            (named.digest, named.size, named.platform),
            (image.digest, image.size, None)
        );
        assert_eq!(manifest.config.media_type, media_type::OCI_EMPTY);
        assert_eq!(manifest.config.size, 2);
        assert_eq!(manifest.layers[0].media_type, media_type::SPDX_JSON);
        assert_eq!(
            fallback_tag(&image.digest),
            format!("sha256-{}", image.digest.hex())
        );
    }
}
