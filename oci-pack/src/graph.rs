//! What an image is made of: the walk from a manifest or an index down to every blob it
//! reaches. A layout keeps exactly these blobs; a push sends them in this order.

use std::collections::BTreeSet;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::index::ImageIndex;
use crate::manifest::ImageManifest;
use crate::media_type;
use crate::store::BlobStore;

/// Everything an image reaches, each once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageGraph {
    /// Configs and layers, in the order the manifests list them.
    pub blobs: Vec<Descriptor>,
    /// Manifests and indexes, each index after the manifests it lists, the target last: the
    /// order a registry accepts them in.
    pub manifests: Vec<Descriptor>,
}

/// Walks `target` (a manifest or an index in `store`), reading and verifying every manifest
/// and index on the way.
pub fn walk(store: &BlobStore, target: &Descriptor) -> Result<ImageGraph> {
    let mut graph = ImageGraph::default();
    let mut seen_blobs: BTreeSet<Digest> = BTreeSet::new();
    let mut seen_manifests: BTreeSet<Digest> = BTreeSet::new();
    let mut visit = vec![(target.clone(), false)];
    while let Some((descriptor, children_done)) = visit.pop() {
        if seen_manifests.contains(&descriptor.digest) {
            continue;
        }
        if media_type::is_index(&descriptor.media_type) && !children_done {
            let index: ImageIndex = parse(store, &descriptor, "index")?;
            visit.push((descriptor, true));
            visit.extend(index.manifests.into_iter().rev().map(|m| (m, false)));
            continue;
        }
        if media_type::is_manifest(&descriptor.media_type) {
            let manifest: ImageManifest = parse(store, &descriptor, "manifest")?;
            for blob in std::iter::once(manifest.config).chain(manifest.layers) {
                if seen_blobs.insert(blob.digest) {
                    graph.blobs.push(blob);
                }
            }
        }
        seen_manifests.insert(descriptor.digest);
        graph.manifests.push(descriptor);
    }
    Ok(graph)
}

fn parse<T: serde::de::DeserializeOwned>(
    store: &BlobStore,
    descriptor: &Descriptor,
    what: &str,
) -> Result<T> {
    serde_json::from_slice(&store.read(descriptor)?).map_err(|source| Error::MalformedJson {
        what: format!("{what} {}", descriptor.digest),
        source,
    })
}
