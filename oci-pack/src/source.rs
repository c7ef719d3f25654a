//! Parent images read from disk: an OCI layout (`oci:DIR[:TAG|@DIGEST]`), an OCI archive
//! (`oci-archive:FILE[:TAG]`), a Docker archive (`docker-archive:FILE[:NAME:TAG]`, classic or
//! Docker ≥ 25), or `scratch`. An image index is resolved to the platform being built.
//!
//! Every blob is verified as it is read; archives are streamed once into the caller's store.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::annotation::{CONTAINERD_IMAGE_NAME, REF_NAME};
use crate::archive::ArchiveFiles;
use crate::cache::BuildCache;
use crate::config::ImageConfig;
use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::docker::DockerArchiveImage;
use crate::error::{Error, Result};
use crate::index::ImageIndex;
use crate::json::MAX_DOCUMENT_BYTES;
use crate::manifest::ImageManifest;
use crate::media_type;
use crate::platform::Platform;
use crate::progress::{NoProgress, Progress};
use crate::reference::RemoteImage;
use crate::store::BlobStore;
use crate::tree::FileTree;

/// Where a parent image comes from, as skopeo names transports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageSource {
    /// `scratch`: no parent, the image is only its own layers.
    Scratch,
    /// `oci:DIR[:TAG|@DIGEST]`: an OCI image layout directory.
    OciLayout {
        /// The layout's directory.
        dir: PathBuf,
        /// Which image of its `index.json`.
        selector: Selector,
    },
    /// `oci-archive:FILE[:TAG|@DIGEST]`: an OCI image layout as a tar file.
    OciArchive {
        /// The archive.
        file: PathBuf,
        /// Which image of its `index.json`.
        selector: Selector,
    },
    /// `docker-archive:FILE[:NAME:TAG]`: what `docker save` writes.
    DockerArchive {
        /// The archive.
        file: PathBuf,
        /// Which image of its `manifest.json`, by one of its names, e.g. `"debian:12"`; `None`
        /// when the archive holds one.
        reference: Option<String>,
    },
    /// `docker://HOST/REPO:TAG`, `…@sha256:…`, or a bare reference (`debian:bookworm`).
    Registry(RemoteImage),
}

/// Which entry of an OCI layout's `index.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The only entry.
    Only,
    /// The entry whose `org.opencontainers.image.ref.name` is this.
    Tag(String),
    /// The entry pointing at this manifest or index.
    Digest(Digest),
}

impl ImageSource {
    /// Parses a `base` value; relative paths are taken from `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<ImageSource> {
        let invalid = |reason: &str| Error::InvalidSource {
            source_text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (transport, rest) = text.split_once(':').unwrap_or((text, ""));
        let path = |p: &str| -> Result<PathBuf> {
            if p.is_empty() {
                Err(invalid("a path is needed after the transport"))
            } else {
                Ok(crate::path::lexically_normal(&dir.join(p)))
            }
        };
        let selector = |rest: &str| -> Result<(PathBuf, Selector)> {
            if let Some((p, digest)) = rest.split_once('@') {
                return Ok((path(p)?, Selector::Digest(digest.parse()?)));
            }
            match rest.split_once(':') {
                Some((p, tag)) if !tag.is_empty() => Ok((path(p)?, Selector::Tag(tag.to_owned()))),
                Some(_) => Err(invalid("the tag after `:` is empty")),
                None => Ok((path(rest)?, Selector::Only)),
            }
        };
        match transport {
            "scratch" if rest.is_empty() => Ok(ImageSource::Scratch),
            "oci" => selector(rest).map(|(dir, selector)| ImageSource::OciLayout { dir, selector }),
            "oci-archive" => {
                selector(rest).map(|(file, selector)| ImageSource::OciArchive { file, selector })
            }
            "docker-archive" => {
                let (file, reference) = match rest.split_once(':') {
                    Some((file, reference)) => (file, Some(reference.to_owned())),
                    None => (rest, None),
                };
                Ok(ImageSource::DockerArchive {
                    file: path(file)?,
                    reference,
                })
            }
            "scratch" => Err(invalid("`scratch` is the empty image and takes no tag")),
            "docker" => RemoteImage::parse(text).map(ImageSource::Registry),
            // A path after the colon is a misspelt transport, not a registry image (whose
            // `host:` is followed by a port).
            _ if !looks_like_host(transport, rest)
                && (rest.contains('/') || rest.ends_with(".tar")) =>
            {
                Err(invalid(
                    "expected `scratch`, `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, \
                     `docker-archive:FILE[:NAME:TAG]` \
                     or an image reference like `docker://HOST/REPO:TAG`",
                ))
            }
            _ => RemoteImage::parse(text)
                .map(ImageSource::Registry)
                .map_err(|e| invalid(&e.to_string())),
        }
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_selector =
            |f: &mut fmt::Formatter<'_>, transport: &str, path: &Path, selector: &Selector| {
                write!(f, "{transport}:{}", path.display())?;
                match selector {
                    Selector::Only => Ok(()),
                    Selector::Tag(tag) => write!(f, ":{tag}"),
                    Selector::Digest(digest) => write!(f, "@{digest}"),
                }
            };
        match self {
            ImageSource::Scratch => f.write_str("scratch"),
            ImageSource::OciLayout { dir, selector } => with_selector(f, "oci", dir, selector),
            ImageSource::OciArchive { file, selector } => {
                with_selector(f, "oci-archive", file, selector)
            }
            ImageSource::DockerArchive { file, reference } => {
                write!(f, "docker-archive:{}", file.display())?;
                reference.as_ref().map_or(Ok(()), |r| write!(f, ":{r}"))
            }
            ImageSource::Registry(image) => write!(f, "docker://{image}"),
        }
    }
}

/// Where a registry base's manifests and blobs come from: the `registry` module's client and its
/// cache (with the `registry` feature), or whatever a library user brings (a mirror, a test).
pub trait RegistryFetch {
    /// Where what is resolved and fetched is kept.
    fn store(&self) -> &BlobStore;
    /// The manifest or index `image` names now, in [`Self::store`] after.
    fn resolve(&self, image: &RemoteImage) -> Result<Descriptor>;
    /// Each of `blobs` of `image`'s repository, in [`Self::store`] after, verified; `progress`
    /// hears how the transfer goes.
    fn fetch(
        &self,
        image: &RemoteImage,
        blobs: &[Descriptor],
        progress: &mut dyn Progress,
    ) -> Result<()>;
    /// The descriptors of the artifacts about `subject` in `image`'s repository (its
    /// referrers); none where the source cannot list them.
    fn referrers(&self, image: &RemoteImage, subject: &Digest) -> Result<Vec<Descriptor>> {
        let _ = (image, subject);
        Ok(Vec::new())
    }
}

/// A parent image for one platform: its config and layers, and the store that holds its blobs.
#[derive(Debug, Clone)]
pub struct ParentImage {
    /// For `org.opencontainers.image.base.name`, when the source names the image.
    pub name: Option<String>,
    /// For `org.opencontainers.image.base.digest`: the manifest digest, when there is a manifest.
    pub manifest_digest: Option<Digest>,
    /// The config an image built on it inherits.
    pub config: ImageConfig,
    /// Base first, with OCI media types (the bytes and digests are the parent's own).
    pub layers: Vec<Descriptor>,
    /// Holds its blobs: the layout itself, or the store an archive or registry base was
    /// read into.
    pub store: BlobStore,
    /// Where its layers' changes are kept between builds.
    cache: BuildCache,
    /// The parent's file tree, read on demand (see [`ParentImage::file_tree`]); once read, every
    /// layer has been checked against its digest and diff_id.
    /// Shared: a base opened once serves every image built on it.
    tree: Option<std::sync::Arc<FileTree>>,
}

impl ParentImage {
    /// Opens the image `source` names, for `platform`. Archives are imported into the cache's
    /// store, where the new image is written too: their blobs are needed there anyway.
    ///
    /// A registry image needs `registry`: its blobs are fetched into (and read from) its store,
    /// and `progress` hears how that goes.
    pub fn open(
        source: &ImageSource,
        platform: &Platform,
        cache: &BuildCache,
        registry: Option<&dyn RegistryFetch>,
        progress: &mut dyn Progress,
    ) -> Result<Option<ParentImage>> {
        let scratch = cache.store();
        let parent = match source {
            ImageSource::Scratch => return Ok(None),
            ImageSource::OciLayout { dir, selector } => {
                if !dir.join("index.json").is_file() {
                    return Err(Error::NotAnImage {
                        source_text: source.to_string(),
                        reason: "it has no `index.json`".into(),
                    });
                }
                let store = BlobStore::existing(dir);
                let index: ImageIndex =
                    crate::json::read_file(&dir.join("index.json"), MAX_DOCUMENT_BYTES)?;
                from_index(source, &index, selector, platform, store)?
            }
            ImageSource::OciArchive { file, selector } => {
                let mut files = ArchiveFiles::import(file, scratch)?;
                let index: ImageIndex = files.read_json(scratch, "index.json")?;
                if !files.contains("oci-layout") {
                    return Err(Error::NotAnImage {
                        source_text: source.to_string(),
                        reason: "it has no `oci-layout`".into(),
                    });
                }
                let opened = from_index(source, &index, selector, platform, scratch.clone())?;
                // Only now, knowing the platform's layers, are they taken from the archive.
                let names: Vec<String> = opened
                    .layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                    .collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                for (layer, taken) in opened.layers.iter().zip(files.take(scratch, &names)?) {
                    if taken.digest != layer.digest || taken.size != layer.size {
                        return Err(Error::BlobMismatch {
                            digest: layer.digest,
                            expected_size: layer.size,
                            actual: taken.digest,
                            actual_size: taken.size,
                        });
                    }
                }
                opened
            }
            ImageSource::DockerArchive { file, reference } => {
                from_docker_archive(source, file, reference.as_deref(), scratch)?
            }
            ImageSource::Registry(image) => {
                let access = registry.ok_or_else(|| Error::NotAnImage {
                    source_text: source.to_string(),
                    reason: "a registry image needs registry access (credentials and a cache)"
                        .into(),
                })?;
                from_registry(source, image, platform, access, progress)?
            }
        };
        check_platform(source, &parent.config, platform)?;
        let Opened {
            name,
            manifest_digest,
            config,
            layers,
            store,
        } = parent;
        Ok(Some(ParentImage {
            name,
            manifest_digest,
            config,
            layers,
            store,
            cache: cache.clone(),
            tree: None,
        }))
    }

    /// The parent's file tree, from its layers' changes (read from the cache when they were
    /// read before, else from the layers), every layer checked against its digest and diff_id.
    pub fn file_tree(&mut self) -> Result<&FileTree> {
        if self.tree.is_none() {
            let diff_ids = &self.config.rootfs.diff_ids;
            self.cache
                .read_layers_ahead(&self.store, &self.layers, diff_ids)?;
            let mut tree = FileTree::default();
            for (layer, diff_id) in self.layers.iter().zip(&self.config.rootfs.diff_ids) {
                self.cache
                    .apply_layer(&mut tree, &self.store, layer, diff_id)?;
            }
            self.tree = Some(std::sync::Arc::new(tree));
        }
        Ok(self.tree.as_deref().expect("just read"))
    }

    /// Whether every layer blob has been checked against its digest (by [`Self::file_tree`]).
    pub fn layers_verified(&self) -> bool {
        self.tree.is_some()
    }
}

/// A parent as its transport found it, before its file tree is read.
struct Opened {
    name: Option<String>,
    manifest_digest: Option<Digest>,
    config: ImageConfig,
    layers: Vec<Descriptor>,
    store: BlobStore,
}

fn from_index(
    source: &ImageSource,
    index: &ImageIndex,
    selector: &Selector,
    platform: &Platform,
    store: BlobStore,
) -> Result<Opened> {
    let entry = match selector {
        // Artifacts about an image (its SBOMs) are not images, and tags of one image are one.
        Selector::Only => match images_of(index).as_slice() {
            [only] => *only,
            [] => {
                return Err(Error::NotAnImage {
                    source_text: source.to_string(),
                    reason: "its `index.json` lists no image".into(),
                })
            }
            _ => {
                let tags: Vec<&str> = index
                    .manifests
                    .iter()
                    .filter_map(|m| m.annotations.get(REF_NAME).map(String::as_str))
                    .collect();
                return Err(Error::NotAnImage {
                    source_text: source.to_string(),
                    reason: format!(
                        "it holds {} images; name one with `:TAG` (tags: {})",
                        images_of(index).len(),
                        tags.join(", ")
                    ),
                });
            }
        },
        Selector::Tag(tag) => index
            .manifests
            .iter()
            .find(|m| m.annotations.get(REF_NAME) == Some(tag))
            .ok_or_else(|| Error::NotAnImage {
                source_text: source.to_string(),
                reason: format!("no image is tagged `{tag}`"),
            })?,
        Selector::Digest(digest) => index
            .manifests
            .iter()
            .find(|m| &m.digest == digest)
            .ok_or_else(|| Error::NotAnImage {
                source_text: source.to_string(),
                reason: format!("no image has digest {digest}"),
            })?,
    };
    // Only a full name is a reference; a layout's bare tag names nothing outside it.
    let name = entry.annotations.get(CONTAINERD_IMAGE_NAME).cloned();
    let manifest_descriptor = resolve_platform(source, &store, entry, platform, &mut |_| Ok(()))?;
    parent_from_manifest(store, &manifest_descriptor, name)
}

/// The images an index lists: each digest once, artifacts left out.
fn images_of(index: &ImageIndex) -> Vec<&Descriptor> {
    let mut images: Vec<&Descriptor> = Vec::new();
    for entry in index.manifests.iter().filter(|m| m.artifact_type.is_none()) {
        if !images.iter().any(|i| i.digest == entry.digest) {
            images.push(entry);
        }
    }
    images
}

/// Follows an index entry down to the manifest for `platform`, through nested indexes (as an
/// index may list other indexes), at most [`MAX_INDEX_DEPTH`] deep.
/// `fetch` makes a nested index available in `store` before it is read.
fn resolve_platform(
    source: &ImageSource,
    store: &BlobStore,
    entry: &Descriptor,
    platform: &Platform,
    fetch: &mut dyn FnMut(&Descriptor) -> Result<()>,
) -> Result<Descriptor> {
    let mut available = Vec::new();
    match find_platform(store, entry, platform, 0, &mut available, fetch)? {
        Some((_, manifest)) => Ok(manifest),
        None => {
            available.sort();
            available.dedup();
            Err(Error::NoMatchingPlatform {
                source_text: source.to_string(),
                wanted: platform.to_string(),
                available: if available.is_empty() {
                    "none".into()
                } else {
                    available.join(", ")
                },
            })
        }
    }
}

/// How deep indexes may nest.
const MAX_INDEX_DEPTH: usize = 4;

/// The best manifest for `platform` under `entry` and how well it fits; the platforms of the
/// manifests seen go to `available`, for the error when none fits.
fn find_platform(
    store: &BlobStore,
    entry: &Descriptor,
    platform: &Platform,
    depth: usize,
    available: &mut Vec<String>,
    fetch: &mut dyn FnMut(&Descriptor) -> Result<()>,
) -> Result<Option<(u8, Descriptor)>> {
    if media_type::is_manifest(&entry.media_type) {
        return Ok(Some((0, entry.clone())));
    }
    if !media_type::is_index(&entry.media_type) || depth > MAX_INDEX_DEPTH {
        return Err(Error::UnsupportedMediaType {
            digest: entry.digest,
            media_type: entry.media_type.clone(),
        });
    }
    fetch(entry)?;
    let index: ImageIndex = read_blob_json(store, entry, "image index")?;
    let mut best: Option<(u8, Descriptor)> = None;
    for candidate in &index.manifests {
        let fit = candidate.platform.as_ref().map(|p| p.fit(platform));
        if let Some(platform) = &candidate.platform {
            available.push(platform.to_string());
        }
        let found = if media_type::is_manifest(&candidate.media_type) {
            fit.flatten().map(|rank| (rank, candidate.clone()))
        } else if media_type::is_index(&candidate.media_type) && fit != Some(None) {
            // A nested index that says no platform, or the right one: look inside.
            find_platform(store, candidate, platform, depth + 1, available, fetch)?
        } else {
            None
        };
        if let Some(found) = found {
            if best.as_ref().is_none_or(|(rank, _)| found.0 < *rank) {
                best = Some(found);
            }
        }
    }
    Ok(best)
}

fn from_docker_archive(
    source: &ImageSource,
    file: &Path,
    reference: Option<&str>,
    store: &BlobStore,
) -> Result<Opened> {
    let mut files = ArchiveFiles::import(file, store)?;
    let images: Vec<DockerArchiveImage> = files.read_json(store, "manifest.json")?;
    let image = match reference {
        Some(reference) => images
            .iter()
            .find(|i| {
                i.repo_tags.iter().flatten().any(|t| {
                    t == reference || t.strip_prefix("docker.io/library/") == Some(reference)
                })
            })
            .ok_or_else(|| Error::NotAnImage {
                source_text: source.to_string(),
                reason: format!("no image is tagged `{reference}`"),
            })?,
        None => match images.as_slice() {
            [only] => only,
            _ => {
                return Err(Error::NotAnImage {
                    source_text: source.to_string(),
                    reason: format!(
                        "it holds {} images; name one with `:NAME:TAG`",
                        images.len()
                    ),
                })
            }
        },
    };
    let config: ImageConfig = files.read_json(store, &image.config)?;
    let names: Vec<&str> = image.layers.iter().map(String::as_str).collect();
    let mut layers = Vec::new();
    for blob in files.take(store, &names)? {
        // The classic format stores layers as plain tars, Docker ≥ 25 as they were pulled: sniff.
        let mut head = [0u8; 4];
        let read = {
            use std::io::Read as _;
            let mut reader = store.reader(&blob)?;
            reader.read(&mut head).map_err(|e| reader.error(e))?
        };
        let media = match &head[..read] {
            [0x1f, 0x8b, ..] => media_type::OCI_LAYER_GZIP,
            [0x28, 0xb5, 0x2f, 0xfd] => media_type::OCI_LAYER_ZSTD,
            _ => media_type::OCI_LAYER_TAR,
        };
        layers.push(Descriptor::new(media, blob.digest, blob.size));
    }
    check_layer_count(&config, layers.len(), &files.get(&image.config)?.digest)?;
    Ok(Opened {
        name: reference
            .map(str::to_owned)
            .or_else(|| image.repo_tags.iter().flatten().next().cloned()),
        manifest_digest: None,
        config,
        layers,
        store: store.clone(),
    })
}

/// Whether `before:after` starts a registry reference rather than a transport: the part
/// before is a host (`registry.example.com`, `localhost`, `[::1]`, or any name followed by
/// `:PORT/`), not a transport name.
fn looks_like_host(before: &str, after: &str) -> bool {
    let port = after.split('/').next().unwrap_or_default();
    before.contains('.')
        || before == "localhost"
        || before.starts_with('[')
        || (after.contains('/') && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
}

/// A registry image for `platform`: the tag resolved once, then only the manifest, config and
/// layers of that platform fetched, each verified, into the store the image is read from.
fn from_registry(
    source: &ImageSource,
    image: &RemoteImage,
    platform: &Platform,
    registry: &dyn RegistryFetch,
    progress: &mut dyn Progress,
) -> Result<Opened> {
    let store = registry.store();
    let top = registry.resolve(image)?;
    let mut fetch_one =
        |d: &Descriptor| registry.fetch(image, std::slice::from_ref(d), &mut NoProgress);
    let manifest_descriptor = resolve_platform(source, store, &top, platform, &mut fetch_one)?;
    fetch_one(&manifest_descriptor)?;
    let manifest: ImageManifest = read_blob_json(store, &manifest_descriptor, "manifest")?;
    let blobs: Vec<Descriptor> = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .cloned()
        .collect();
    registry.fetch(image, &blobs, progress)?;
    let name = RemoteImage {
        digest: None,
        ..image.clone()
    }
    .to_string();
    parent_from_manifest(store.clone(), &manifest_descriptor, Some(name))
}

/// The parent an image manifest in `store` describes: its config, and its layers with OCI types.
fn parent_from_manifest(
    store: BlobStore,
    manifest_descriptor: &Descriptor,
    name: Option<String>,
) -> Result<Opened> {
    let manifest: ImageManifest = read_blob_json(&store, manifest_descriptor, "manifest")?;
    let config: ImageConfig = read_blob_json(&store, &manifest.config, "config")?;
    let layers = manifest
        .layers
        .iter()
        .map(oci_layer)
        .collect::<Result<Vec<_>>>()?;
    check_layer_count(&config, layers.len(), &manifest_descriptor.digest)?;
    Ok(Opened {
        name,
        manifest_digest: Some(manifest_descriptor.digest),
        config,
        layers,
        store,
    })
}

fn oci_layer(layer: &Descriptor) -> Result<Descriptor> {
    let media =
        media_type::oci_layer(&layer.media_type).ok_or_else(|| Error::UnsupportedMediaType {
            digest: layer.digest,
            media_type: layer.media_type.clone(),
        })?;
    let mut layer = layer.clone();
    layer.media_type = media.to_owned();
    Ok(layer)
}

fn check_layer_count(config: &ImageConfig, layers: usize, image: &Digest) -> Result<()> {
    if config.rootfs.diff_ids.len() == layers {
        Ok(())
    } else {
        Err(Error::LayerCountMismatch {
            image: *image,
            layers,
            diff_ids: config.rootfs.diff_ids.len(),
        })
    }
}

fn check_platform(source: &ImageSource, config: &ImageConfig, platform: &Platform) -> Result<()> {
    let found = config.platform();
    if found.fit(platform).is_some() {
        Ok(())
    } else {
        Err(Error::NoMatchingPlatform {
            source_text: source.to_string(),
            wanted: platform.to_string(),
            available: found.to_string(),
        })
    }
}

fn read_blob_json<T: DeserializeOwned>(
    store: &BlobStore,
    descriptor: &Descriptor,
    what: &str,
) -> Result<T> {
    parse_json(&store.read(descriptor)?, || {
        format!("{what} {}", descriptor.digest)
    })
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8], what: impl FnOnce() -> String) -> Result<T> {
    crate::json::parse(bytes, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_index_is_followed_to_the_platform() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let manifest = |arch: &str| {
            let mut m = store
                .put(
                    media_type::OCI_MANIFEST,
                    format!("{{\"{arch}\":1}}").as_bytes(),
                )
                .unwrap();
            m.platform = Some(Platform::new("linux", arch, None));
            m
        };
        let index_of = |manifests: Vec<Descriptor>| {
            store
                .put_json(
                    media_type::OCI_INDEX,
                    "index",
                    &ImageIndex::new(manifests, Default::default()),
                )
                .unwrap()
        };
        let amd64 = manifest("amd64");
        let mut inner = index_of(vec![amd64.clone()]);
        inner.platform = Some(Platform::new("linux", "amd64", None));
        let outer = index_of(vec![manifest("arm64"), inner]);
        let source = ImageSource::Scratch;
        let wanted = Platform::new("linux", "amd64", None);
        let found = resolve_platform(&source, &store, &outer, &wanted, &mut |_| Ok(())).unwrap();
        assert_eq!(found.digest, amd64.digest);

        let error = resolve_platform(
            &source,
            &store,
            &outer,
            &Platform::new("linux", "s390x", None),
            &mut |_| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.ends_with("has no image for linux/s390x (it has: linux/amd64, linux/arm64)"),
            "{error}"
        );
    }

    #[test]
    fn parses_every_transport() {
        let dir = Path::new("/pkg");
        let digest = format!("sha256:{}", "a".repeat(64));
        let cases = [
            ("scratch", ImageSource::Scratch),
            (
                "oci:base",
                ImageSource::OciLayout {
                    dir: "/pkg/base".into(),
                    selector: Selector::Only,
                },
            ),
            (
                "oci:base:1.0",
                ImageSource::OciLayout {
                    dir: "/pkg/base".into(),
                    selector: Selector::Tag("1.0".into()),
                },
            ),
            (
                &*format!("oci:/abs/base@{digest}"),
                ImageSource::OciLayout {
                    dir: "/abs/base".into(),
                    selector: Selector::Digest(digest.parse().unwrap()),
                },
            ),
            (
                "oci-archive:base.tar:latest",
                ImageSource::OciArchive {
                    file: "/pkg/base.tar".into(),
                    selector: Selector::Tag("latest".into()),
                },
            ),
            (
                "docker-archive:base.tar",
                ImageSource::DockerArchive {
                    file: "/pkg/base.tar".into(),
                    reference: None,
                },
            ),
            (
                "docker-archive:base.tar:busybox:1.36",
                ImageSource::DockerArchive {
                    file: "/pkg/base.tar".into(),
                    reference: Some("busybox:1.36".into()),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(ImageSource::parse(text, dir).unwrap(), expected, "{text}");
        }
        assert_eq!(
            ImageSource::parse("debian:12", dir).unwrap().to_string(),
            "docker://docker.io/library/debian:12"
        );
        assert_eq!(
            ImageSource::parse("docker://127.0.0.1:5000/team/app", dir)
                .unwrap()
                .to_string(),
            "docker://127.0.0.1:5000/team/app:latest"
        );
        assert_eq!(
            ImageSource::parse(
                &format!("127.0.0.1:5000/team/app:1@sha256:{}", "a".repeat(64)),
                dir
            )
            .unwrap()
            .to_string(),
            format!(
                "docker://127.0.0.1:5000/team/app:1@sha256:{}",
                "a".repeat(64)
            )
        );
        assert_eq!(
            ImageSource::parse("oci:../../images/./debian:12", Path::new("/src/apps/web"))
                .unwrap()
                .to_string(),
            "oci:/src/images/debian:12",
            "paths are shown as they resolve"
        );
        // A host with a port, or an IPv6 address, is a registry, not a transport.
        for (text, expected) in [
            ("myreg:5000/app:1", "docker://myreg:5000/app:1"),
            ("[::1]:5000/app", "docker://[::1]:5000/app:latest"),
        ] {
            assert_eq!(
                ImageSource::parse(text, dir).unwrap().to_string(),
                expected,
                "{text}"
            );
        }
        for bad in [
            "oci:",
            "oci:dir:",
            "oci-achive:base.tar",
            "ocidir:./x",
            "scratch:x",
            "oci:x@sha256:zz",
            "docker://team/UPPER",
            "myreg:50x0/app:1",
        ] {
            assert!(ImageSource::parse(bad, dir).is_err(), "{bad} accepted");
        }
    }
}
