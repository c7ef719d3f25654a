//! An image read to be looked at: every platform of it (or those that fit one asked for), each
//! with its manifest, config and layers, and the artifacts attached to it (OCI 1.1 manifests
//! whose `subject` is the image, such as an SBOM). Layers are measured and listed by streaming
//! them through their decoders, every blob checked against its digest; nothing is extracted.
//!
//! What `cargo oci inspect` shows and `cargo oci verify` compares.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};

use serde::{Deserialize, Serialize};

use crate::annotation::{CONTAINERD_IMAGE_NAME, REF_NAME};
use crate::archive::ArchiveFiles;
use crate::config::{History, ImageConfig};
use crate::descriptor::Descriptor;
use crate::digest::{Digest, DigestWriter};
use crate::docker::DockerArchiveImage;
use crate::error::{Error, Result};
use crate::index::ImageIndex;
use crate::json::MAX_DOCUMENT_BYTES;
use crate::manifest::ImageManifest;
use crate::media_type;
use crate::platform::Platform;
use crate::progress::{NoProgress, Progress};
use crate::reference::RemoteImage;
use crate::source::{ImageSource, RegistryFetch, Selector};
use crate::store::{BlobStore, VerifiedReader};
use crate::tree::{capability_of, layer_decoder, FileTree};

/// An image as its source holds it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The source, as [`ImageSource`] prints it (`oci:/src/target/oci/hello`).
    pub source: String,
    /// Holds every blob named here: the layout itself, or the store an archive or a registry
    /// image was read into.
    pub store: BlobStore,
    /// The manifest or index the source names; `None` for a Docker archive that holds no OCI
    /// manifest of the image (only `manifest.json`).
    pub target: Option<Descriptor>,
    /// The image index's own annotations, when the target is an index.
    pub index_annotations: BTreeMap<String, String>,
    /// The image's name, when the source gives one (`hello:0.1.0`, `ghcr.io/acme/api:1`).
    pub name: Option<String>,
    /// The tags a layout or an archive lists for it (`0.1.0`, `latest`).
    pub tags: Vec<String>,
    /// One per platform, in the order the index lists them.
    pub platforms: Vec<PlatformImage>,
    /// The artifacts about the image or one of its platforms' manifests.
    pub referrers: Vec<Referrer>,
}

/// One platform's image.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    /// What it runs on, as its index entry (or else its config) says.
    pub platform: Platform,
    /// Its manifest; `None` in a Docker archive holding only `manifest.json`.
    pub manifest: Option<Descriptor>,
    /// The manifest's annotations (the base image's name and digest among them).
    pub annotations: BTreeMap<String, String>,
    /// The config blob.
    pub config_blob: Descriptor,
    /// The config.
    pub config: ImageConfig,
    /// The layers, base first, with the media types the manifest gives them.
    pub layers: Vec<Descriptor>,
}

/// An artifact attached to an image: a manifest whose `subject` is the image's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Referrer {
    /// The manifest it is about.
    pub subject: Digest,
    /// The artifact's manifest.
    pub digest: Digest,
    /// The artifact manifest's size in bytes.
    pub size: u64,
    /// What it holds (`application/spdx+json`): its `artifactType`, else its config's type.
    pub artifact_type: String,
    /// The artifact manifest's annotations.
    pub annotations: BTreeMap<String, String>,
    /// What it holds (an SBOM, an attestation): in the image's store when each is at most
    /// 4 MiB, as documents are; larger ones are not fetched.
    pub layers: Vec<Descriptor>,
}

/// What a layer is once decompressed: its tar's size and digest, the layer's diff_id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Uncompressed {
    /// The tar's size in bytes.
    pub size: u64,
    /// The tar's digest.
    pub diff_id: Digest,
}

/// One entry of a layer's tar, as its header and content say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerEntry {
    /// The entry's name relative to the root, as the tar gives it (`usr/local/bin/app`;
    /// `.wh.` names are whiteouts). Shown, never used as a path on this machine.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits, e.g. `0o755` (in JSON, octal digits: `"0755"`).
    #[serde(serialize_with = "octal")]
    pub mode: u32,
    /// Owner's user ID.
    pub uid: u64,
    /// Owner's group ID.
    pub gid: u64,
    /// Modification time, seconds since 1970.
    pub mtime: u64,
    /// The content's size in bytes (0 for anything but a file).
    pub size: u64,
    /// The content's sha256, for a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digest>,
    /// Where a symbolic or hard link points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Its file capabilities (`security.capability`), as `getcap` shows them:
    /// `cap_net_bind_service=ep`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<String>,
}

/// A mode as people write it: `"0755"`.
fn octal<S: serde::Serializer>(mode: &u32, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("{mode:04o}"))
}

/// The type of a [`LayerEntry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A hard link to an earlier entry.
    HardLink,
    /// A FIFO.
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
}

impl EntryKind {
    /// The word for it: `file`, `directory`, `symlink`, …
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Directory => "directory",
            EntryKind::Symlink => "symlink",
            EntryKind::HardLink => "hard link",
            EntryKind::Fifo => "fifo",
            EntryKind::CharDevice => "character device",
            EntryKind::BlockDevice => "block device",
        }
    }
}

/// Annotations buildx gives the attestation manifests it lists in an image index: the kind
/// (`attestation-manifest`) and the digest of the manifest each is about.
const DOCKER_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const DOCKER_REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";

/// How deep indexes may nest.
const MAX_INDEX_DEPTH: usize = 4;

/// What a manifest says of itself as an artifact, read apart from [`ImageManifest`] so any
/// manifest (or index) parses.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactFields {
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    subject: Option<Descriptor>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Makes blobs available (and checked) in the store an image is read from: nothing for a
/// layout, taken from an archive, fetched from a registry. The flag says whether they are
/// layers, whose transfer is worth telling; manifests and configs go quietly.
type Fetch<'a> = dyn FnMut(&[Descriptor], bool) -> Result<()> + 'a;

/// Opens the image `source` names, every platform of it or those that fit `platform`.
/// Archives are read into `scratch`; a registry image needs `registry`, whose store it is
/// fetched into (manifests, configs and the chosen platforms' layers, each verified), and
/// `progress` hears how that goes.
pub fn open(
    source: &ImageSource,
    scratch: &BlobStore,
    registry: Option<&dyn RegistryFetch>,
    platform: Option<&Platform>,
    progress: &mut dyn Progress,
) -> Result<Image> {
    let text = source.to_string();
    let not_an_image = |reason: &str| Error::NotAnImage {
        source_text: text.clone(),
        reason: reason.to_owned(),
    };
    match source {
        ImageSource::Scratch => Err(not_an_image("`scratch` is the empty image")),
        ImageSource::OciLayout { dir, selector } => {
            if !dir.join("index.json").is_file() {
                return Err(not_an_image("it has no `index.json`"));
            }
            let index: ImageIndex =
                crate::json::read_file(&dir.join("index.json"), MAX_DOCUMENT_BYTES)?;
            let store = BlobStore::existing(dir);
            from_layout_index(&text, store, &index, selector, platform, &mut |_, _| Ok(()))
        }
        ImageSource::OciArchive { file, selector } => {
            let mut files = ArchiveFiles::import(file, scratch)?;
            if !files.contains("oci-layout") {
                return Err(not_an_image("it has no `oci-layout`"));
            }
            let index: ImageIndex = files.read_json(scratch, "index.json")?;
            let mut fetch = |blobs: &[Descriptor], _| take(&mut files, scratch, blobs);
            from_layout_index(
                &text,
                scratch.clone(),
                &index,
                selector,
                platform,
                &mut fetch,
            )
        }
        ImageSource::DockerArchive { file, reference } => {
            let files = ArchiveFiles::import(file, scratch)?;
            from_docker_archive(&text, files, reference.as_deref(), scratch, platform)
        }
        ImageSource::Registry(image) => {
            let registry = registry.ok_or_else(|| {
                not_an_image("a registry image needs registry access (credentials and a cache)")
            })?;
            let target = registry.resolve(image)?;
            let mut fetch = |blobs: &[Descriptor], layers: bool| {
                let heard: &mut dyn Progress = if layers {
                    &mut *progress
                } else {
                    &mut NoProgress
                };
                registry.fetch(image, blobs, heard)
            };
            let store = registry.store().clone();
            let mut opened = from_target(
                &text,
                store.clone(),
                target,
                platform,
                &mut fetch,
                Vec::new(),
            )?;
            // A registry lists what refers to each manifest (its referrers API, or the
            // distribution spec's fallback tag).
            let subjects: BTreeSet<Digest> = opened
                .target
                .iter()
                .map(|t| t.digest)
                .chain(
                    opened
                        .platforms
                        .iter()
                        .filter_map(|p| p.manifest.as_ref().map(|m| m.digest)),
                )
                .collect();
            let mut listed = Vec::new();
            for subject in &subjects {
                listed.extend(registry.referrers(image, subject)?);
            }
            opened.referrers = referrers(&store, &listed, &subjects, &mut fetch)?;
            opened.name = Some(
                RemoteImage {
                    digest: None,
                    ..image.clone()
                }
                .to_string(),
            );
            Ok(opened)
        }
    }
}

impl Image {
    /// The final file tree of `image` (one of [`Self::platforms`]): its layers applied in
    /// order, whiteouts included, each checked against its digest and diff_id.
    pub fn file_tree(&self, image: &PlatformImage) -> Result<FileTree> {
        let diff_ids = &image.config.rootfs.diff_ids;
        if diff_ids.len() != image.layers.len() {
            return Err(Error::LayerCountMismatch {
                image: image.manifest.as_ref().unwrap_or(&image.config_blob).digest,
                layers: image.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        FileTree::read_layers(&self.store, &image.layers, diff_ids)
    }
}

impl PlatformImage {
    /// The history entry that made each layer: the entries not marked `empty_layer`, in
    /// order (`None` for a layer the history does not cover).
    pub fn layer_history(&self) -> Vec<Option<&History>> {
        let mut made = self.config.history.iter().filter(|h| !h.empty_layer);
        self.layers.iter().map(|_| made.next()).collect()
    }
}

/// The size and diff_id of `layer` of `store`, streamed through its decoder; the blob is
/// checked against its digest and size on the way.
pub fn uncompressed(store: &BlobStore, layer: &Descriptor) -> Result<Uncompressed> {
    let read = || -> Result<Uncompressed> {
        let mut decoded = layer_decoder(store, layer, None)?;
        let mut tar = DigestWriter::new(io::sink());
        io::copy(&mut decoded, &mut tar).map_err(|source| Error::LayerRead {
            layer: layer.digest,
            source,
        })?;
        drain(decoded.into_inner())?;
        let (diff_id, size, _) = tar.finish();
        Ok(Uncompressed { size, diff_id })
    };
    read().map_err(|error| blame(store, layer, error))
}

/// Every entry of `layer`'s tar, in order, each file's content hashed; the blob is checked
/// against its digest and size on the way.
pub fn layer_entries(store: &BlobStore, layer: &Descriptor) -> Result<Vec<LayerEntry>> {
    let read = || -> Result<Vec<LayerEntry>> {
        let layer_error = |source: io::Error| Error::LayerRead {
            layer: layer.digest,
            source,
        };
        let mut decoded = layer_decoder(store, layer, None)?;
        let mut entries = Vec::new();
        {
            let mut archive = tar::Archive::new(&mut decoded);
            for entry in archive.entries().map_err(layer_error)? {
                let mut entry = entry.map_err(layer_error)?;
                let capabilities = capability_of(&mut entry)
                    .map_err(layer_error)?
                    .map(|value| crate::capability::describe(&value));
                let header = entry.header();
                let kind = match header.entry_type() {
                    tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
                    tar::EntryType::Directory => EntryKind::Directory,
                    tar::EntryType::Symlink => EntryKind::Symlink,
                    tar::EntryType::Link => EntryKind::HardLink,
                    tar::EntryType::Fifo => EntryKind::Fifo,
                    tar::EntryType::Char => EntryKind::CharDevice,
                    tar::EntryType::Block => EntryKind::BlockDevice,
                    _ => continue, // extended headers, which the tar reader applies
                };
                let mode = header.mode().map_err(layer_error)? & 0o7777;
                let uid = header.uid().map_err(layer_error)?;
                let gid = header.gid().map_err(layer_error)?;
                let mtime = header.mtime().map_err(layer_error)?;
                let path = display_path(&entry.path_bytes());
                let link = entry
                    .link_name_bytes()
                    .filter(|_| matches!(kind, EntryKind::Symlink | EntryKind::HardLink))
                    .map(|target| String::from_utf8_lossy(&target).into_owned());
                let (size, sha256) = if kind == EntryKind::File {
                    let mut content = DigestWriter::new(io::sink());
                    io::copy(&mut entry, &mut content).map_err(layer_error)?;
                    let (digest, size, _) = content.finish();
                    (size, Some(digest))
                } else {
                    (0, None)
                };
                entries.push(LayerEntry {
                    path,
                    kind,
                    mode,
                    uid,
                    gid,
                    mtime,
                    size,
                    sha256,
                    link,
                    capabilities,
                });
            }
        }
        io::copy(&mut decoded, &mut io::sink()).map_err(layer_error)?;
        drain(decoded.into_inner())?;
        Ok(entries)
    };
    read().map_err(|error| blame(store, layer, error))
}

/// A tar entry's name as shown: relative to the root, without `./` or a trailing `/`.
fn display_path(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut path: &str = &text;
    loop {
        let trimmed = path.trim_start_matches('/');
        match trimmed.strip_prefix("./") {
            Some(rest) => path = rest,
            None => {
                path = trimmed;
                break;
            }
        }
    }
    path.trim_end_matches('/').to_owned()
}

/// Reads what is left of a blob after its decoded end, so its digest is checked.
fn drain(mut blob: VerifiedReader) -> Result<()> {
    io::copy(&mut blob, &mut io::sink()).map_err(|e| blob.error(e))?;
    Ok(())
}

/// A layer that could not be decoded is first checked against its digest, so the error names
/// the cause: a corrupt blob, rather than what its corruption did to the decoder.
fn blame(store: &BlobStore, layer: &Descriptor, error: Error) -> Error {
    if !matches!(error, Error::LayerRead { .. }) {
        return error;
    }
    match store.reader(layer) {
        Ok(blob) => match drain(blob) {
            Ok(()) => error,
            Err(corrupt) => corrupt,
        },
        Err(missing) => missing,
    }
}

/// Reads a JSON document blob of `store`.
fn read_json<T: serde::de::DeserializeOwned>(
    store: &BlobStore,
    descriptor: &Descriptor,
    what: &str,
) -> Result<T> {
    crate::json::parse(&store.read(descriptor)?, || {
        format!("{what} {}", descriptor.digest)
    })
}

/// The image an OCI layout's `index.json` (or an OCI archive's) names by `selector`. Entries
/// that are artifacts about another (an SBOM's manifest, which has a `subject`) are not
/// images to choose from; they are the candidates for its referrers.
fn from_layout_index(
    text: &str,
    store: BlobStore,
    index: &ImageIndex,
    selector: &Selector,
    platform: Option<&Platform>,
    fetch: &mut Fetch<'_>,
) -> Result<Image> {
    let not_an_image = |reason: String| Error::NotAnImage {
        source_text: text.to_owned(),
        reason,
    };
    let mut images: Vec<&Descriptor> = Vec::new();
    let mut artifacts = Vec::new();
    for entry in &index.manifests {
        if is_artifact(&store, entry, fetch)? {
            artifacts.push(entry.clone());
        } else {
            images.push(entry);
        }
    }
    let entry = match selector {
        Selector::Only => {
            let digests: BTreeSet<Digest> = images.iter().map(|e| e.digest).collect();
            match digests.len() {
                0 => return Err(not_an_image("its `index.json` lists no image".into())),
                1 => images[0],
                n => {
                    let tags: Vec<&str> = images
                        .iter()
                        .filter_map(|m| m.annotations.get(REF_NAME).map(String::as_str))
                        .collect();
                    return Err(not_an_image(format!(
                        "it holds {n} images; name one with `:TAG` (tags: {})",
                        tags.join(", ")
                    )));
                }
            }
        }
        Selector::Tag(tag) => images
            .iter()
            .find(|m| m.annotations.get(REF_NAME) == Some(tag))
            .copied()
            .ok_or_else(|| not_an_image(format!("no image is tagged `{tag}`")))?,
        Selector::Digest(digest) => images
            .iter()
            .find(|m| &m.digest == digest)
            .copied()
            .ok_or_else(|| not_an_image(format!("no image has digest {digest}")))?,
    };
    let tags = images
        .iter()
        .filter(|m| m.digest == entry.digest)
        .filter_map(|m| m.annotations.get(REF_NAME).cloned())
        .collect();
    let name = entry.annotations.get(CONTAINERD_IMAGE_NAME).cloned();
    let mut target = Descriptor::new(&entry.media_type, entry.digest, entry.size);
    target.platform.clone_from(&entry.platform);
    let mut image = from_target(text, store, target, platform, fetch, artifacts)?;
    image.name = name;
    image.tags = tags;
    Ok(image)
}

/// Whether an index entry is an artifact about another manifest rather than an image: a
/// manifest (or index) with a `subject`, or one of buildx's attestation manifests.
fn is_artifact(store: &BlobStore, entry: &Descriptor, fetch: &mut Fetch<'_>) -> Result<bool> {
    if entry.annotations.contains_key(DOCKER_REFERENCE_TYPE) {
        return Ok(true);
    }
    if !media_type::is_manifest(&entry.media_type) && !media_type::is_index(&entry.media_type) {
        return Ok(false);
    }
    fetch(std::slice::from_ref(entry), false)?;
    let fields: ArtifactFields = read_json(store, entry, "manifest")?;
    Ok(fields.subject.is_some())
}

/// The image whose manifest or index is `target`, with the platforms that fit `platform`;
/// `candidates` (and the artifacts the index lists) are searched for its referrers.
fn from_target(
    text: &str,
    store: BlobStore,
    target: Descriptor,
    platform: Option<&Platform>,
    fetch: &mut Fetch<'_>,
    mut candidates: Vec<Descriptor>,
) -> Result<Image> {
    let mut platforms = Vec::new();
    let mut available = Vec::new();
    let mut index_annotations = BTreeMap::new();
    if media_type::is_manifest(&target.media_type) {
        fetch(std::slice::from_ref(&target), false)?;
        let (found, image) = platform_image(&store, &target, platform, fetch)?;
        available.push(found.to_string());
        platforms.extend(image);
    } else if media_type::is_index(&target.media_type) {
        fetch(std::slice::from_ref(&target), false)?;
        let index: ImageIndex = read_json(&store, &target, "image index")?;
        index_annotations.clone_from(&index.annotations);
        let mut walk = Walk {
            store: &store,
            wanted: platform,
            fetch,
            platforms: &mut platforms,
            candidates: &mut candidates,
            available: &mut available,
        };
        walk.index(&index, 0)?;
    } else {
        return Err(Error::UnsupportedMediaType {
            digest: target.digest,
            media_type: target.media_type.clone(),
        });
    }
    if platforms.is_empty() {
        available.sort();
        available.dedup();
        return Err(match platform {
            Some(wanted) => Error::NoMatchingPlatform {
                source_text: text.to_owned(),
                wanted: wanted.to_string(),
                available: if available.is_empty() {
                    "none".into()
                } else {
                    available.join(", ")
                },
            },
            None => Error::NotAnImage {
                source_text: text.to_owned(),
                reason: "its image index lists no image".into(),
            },
        });
    }
    let subjects: BTreeSet<Digest> = std::iter::once(target.digest)
        .chain(
            platforms
                .iter()
                .filter_map(|p| p.manifest.as_ref().map(|m| m.digest)),
        )
        .collect();
    let referrers = referrers(&store, &candidates, &subjects, fetch)?;
    Ok(Image {
        source: text.to_owned(),
        store,
        target: Some(target),
        index_annotations,
        name: None,
        tags: Vec::new(),
        platforms,
        referrers,
    })
}

/// The walk down an image index to its platforms' manifests.
struct Walk<'s, 'f, 'g> {
    store: &'s BlobStore,
    wanted: Option<&'s Platform>,
    fetch: &'f mut Fetch<'g>,
    platforms: &'s mut Vec<PlatformImage>,
    candidates: &'s mut Vec<Descriptor>,
    available: &'s mut Vec<String>,
}

impl Walk<'_, '_, '_> {
    fn index(&mut self, index: &ImageIndex, depth: usize) -> Result<()> {
        for entry in &index.manifests {
            let unknown = entry.platform.as_ref().is_some_and(|p| p.os == "unknown");
            if unknown || entry.annotations.contains_key(DOCKER_REFERENCE_TYPE) {
                // buildx's attestations sit in the index as `unknown/unknown`.
                self.candidates.push(entry.clone());
                continue;
            }
            if let Some(platform) = &entry.platform {
                self.available.push(platform.to_string());
                if self.wanted.is_some_and(|w| platform.fit(w).is_none()) {
                    continue;
                }
            }
            if media_type::is_manifest(&entry.media_type) {
                (self.fetch)(std::slice::from_ref(entry), false)?;
                let fields: ArtifactFields = read_json(self.store, entry, "manifest")?;
                if fields.subject.is_some() {
                    self.candidates.push(entry.clone());
                    continue;
                }
                let (found, image) = platform_image(self.store, entry, self.wanted, self.fetch)?;
                if entry.platform.is_none() {
                    self.available.push(found.to_string());
                }
                self.platforms.extend(image);
            } else if media_type::is_index(&entry.media_type) {
                if depth >= MAX_INDEX_DEPTH {
                    return Err(Error::UnsupportedMediaType {
                        digest: entry.digest,
                        media_type: format!("{} nested {} deep", entry.media_type, depth + 1),
                    });
                }
                (self.fetch)(std::slice::from_ref(entry), false)?;
                let nested: ImageIndex = read_json(self.store, entry, "image index")?;
                self.index(&nested, depth + 1)?;
            }
        }
        Ok(())
    }
}

/// One platform's manifest and config, and, if the platform fits `wanted`, its layers: all
/// fetched into `store`. The platform is its index entry's, else its config's.
fn platform_image(
    store: &BlobStore,
    descriptor: &Descriptor,
    wanted: Option<&Platform>,
    fetch: &mut Fetch<'_>,
) -> Result<(Platform, Option<PlatformImage>)> {
    let manifest: ImageManifest = read_json(store, descriptor, "manifest")?;
    fetch(std::slice::from_ref(&manifest.config), false)?;
    let config: ImageConfig = read_json(store, &manifest.config, "config")?;
    let platform = descriptor
        .platform
        .clone()
        .unwrap_or_else(|| config.platform());
    if wanted.is_some_and(|w| platform.fit(w).is_none()) {
        return Ok((platform, None));
    }
    fetch(&manifest.layers, true)?;
    let mut manifest_descriptor =
        Descriptor::new(&descriptor.media_type, descriptor.digest, descriptor.size);
    manifest_descriptor
        .platform
        .clone_from(&descriptor.platform);
    let image = PlatformImage {
        platform: platform.clone(),
        manifest: Some(manifest_descriptor),
        annotations: manifest.annotations,
        config_blob: manifest.config,
        config,
        layers: manifest.layers,
    };
    Ok((platform, Some(image)))
}

/// The artifacts among `candidates` whose subject is one of `subjects`.
fn referrers(
    store: &BlobStore,
    candidates: &[Descriptor],
    subjects: &BTreeSet<Digest>,
    fetch: &mut Fetch<'_>,
) -> Result<Vec<Referrer>> {
    let mut found = Vec::new();
    for candidate in candidates {
        let named = candidate
            .annotations
            .get(DOCKER_REFERENCE_DIGEST)
            .and_then(|d| d.parse::<Digest>().ok());
        if named.is_some_and(|d| !subjects.contains(&d)) {
            continue;
        }
        fetch(std::slice::from_ref(candidate), false)?;
        let fields: ArtifactFields = read_json(store, candidate, "artifact manifest")?;
        let Some(subject) = fields.subject.map(|s| s.digest).or(named) else {
            continue;
        };
        if !subjects.contains(&subject) {
            continue;
        }
        // Documents are small; an artifact's content is fetched so it can be checked (a
        // signature) without another trip. One that cannot be had does not keep the image from
        // being read: whoever reads the content finds it missing, and says so.
        let small: Vec<Descriptor> = fields
            .layers
            .iter()
            .filter(|layer| layer.size <= MAX_DOCUMENT_BYTES)
            .cloned()
            .collect();
        let _unavailable = fetch(&small, false);
        let artifact_type = fields
            .artifact_type
            .or_else(|| {
                candidate
                    .annotations
                    .get(DOCKER_REFERENCE_TYPE)
                    .map(|kind| format!("{DOCKER_REFERENCE_TYPE}={kind}"))
            })
            .or_else(|| fields.config.map(|c| c.media_type))
            .unwrap_or_default();
        found.push(Referrer {
            subject,
            digest: candidate.digest,
            size: candidate.size,
            artifact_type,
            annotations: fields.annotations,
            layers: fields.layers,
        });
    }
    Ok(found)
}

/// Takes `blobs` (by their `blobs/sha256/…` names) from an OCI archive into `store`, each
/// checked to be what its descriptor says.
fn take(files: &mut ArchiveFiles, store: &BlobStore, blobs: &[Descriptor]) -> Result<()> {
    let names: Vec<String> = blobs
        .iter()
        .map(|b| format!("blobs/sha256/{}", b.digest.hex()))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for (blob, taken) in blobs.iter().zip(files.take(store, &names)?) {
        if taken.digest != blob.digest || taken.size != blob.size {
            return Err(Error::BlobMismatch {
                digest: blob.digest,
                expected_size: blob.size,
                actual: taken.digest,
                actual_size: taken.size,
            });
        }
    }
    Ok(())
}

/// A Docker archive's image, by `manifest.json`. When the archive carries an OCI layout too
/// (Docker ≥ 25 and `cargo oci` write one), the OCI manifest of the same config gives the
/// manifest digest, the layers' media types, the annotations and the referrers.
fn from_docker_archive(
    text: &str,
    mut files: ArchiveFiles,
    reference: Option<&str>,
    store: &BlobStore,
    platform: Option<&Platform>,
) -> Result<Image> {
    let not_an_image = |reason: String| Error::NotAnImage {
        source_text: text.to_owned(),
        reason,
    };
    let images: Vec<DockerArchiveImage> = files.read_json(store, "manifest.json")?;
    let chosen = match reference {
        Some(reference) => images.iter().find(|i| {
            i.repo_tags
                .iter()
                .flatten()
                .any(|t| t == reference || t.strip_prefix("docker.io/library/") == Some(reference))
        }),
        None => match images.as_slice() {
            [only] => Some(only),
            _ => {
                return Err(not_an_image(format!(
                    "it holds {} images; name one with `:NAME:TAG`",
                    images.len()
                )))
            }
        },
    };
    let chosen = chosen
        .ok_or_else(|| not_an_image(format!("no image is tagged `{}`", reference.unwrap_or(""))))?
        .clone();
    let config_file = files.get(&chosen.config)?.clone();
    let config: ImageConfig = files.read_json(store, &chosen.config)?;
    let names: Vec<&str> = chosen.layers.iter().map(String::as_str).collect();
    let blobs = files.take(store, &names)?;
    let oci = if files.contains("index.json") {
        oci_manifest_of(&files, store, &config_file.digest)
    } else {
        None
    };
    let layers = match &oci {
        Some((_, manifest))
            if manifest.layers.len() == blobs.len()
                && manifest
                    .layers
                    .iter()
                    .zip(&blobs)
                    .all(|(l, b)| l.digest == b.digest) =>
        {
            manifest.layers.clone()
        }
        _ => blobs
            .iter()
            .map(|blob| Ok(Descriptor::new(sniff(store, blob)?, blob.digest, blob.size)))
            .collect::<Result<_>>()?,
    };
    let config_media_type = oci.as_ref().map_or(media_type::DOCKER_CONFIG, |(_, m)| {
        m.config.media_type.as_str()
    });
    let image = PlatformImage {
        platform: config.platform(),
        manifest: oci.as_ref().map(|(d, _)| d.clone()),
        annotations: oci
            .as_ref()
            .map(|(_, m)| m.annotations.clone())
            .unwrap_or_default(),
        config_blob: Descriptor::new(config_media_type, config_file.digest, config_file.size),
        config,
        layers,
    };
    if let Some(wanted) = platform.filter(|w| image.platform.fit(w).is_none()) {
        return Err(Error::NoMatchingPlatform {
            source_text: text.to_owned(),
            wanted: wanted.to_string(),
            available: image.platform.to_string(),
        });
    }
    let referrers = match &image.manifest {
        Some(manifest) => {
            let index: ImageIndex = files.read_json(store, "index.json")?;
            let subjects = BTreeSet::from([manifest.digest]);
            let mut fetch = |blobs: &[Descriptor], _| take(&mut files, store, blobs);
            referrers(store, &index.manifests, &subjects, &mut fetch)?
        }
        None => Vec::new(),
    };
    Ok(Image {
        source: text.to_owned(),
        store: store.clone(),
        target: image.manifest.clone(),
        index_annotations: BTreeMap::new(),
        name: reference
            .map(str::to_owned)
            .or_else(|| chosen.repo_tags.iter().flatten().next().cloned()),
        tags: chosen.repo_tags.clone().unwrap_or_default(),
        platforms: vec![image],
        referrers,
    })
}

/// The manifest among an archive's `index.json` entries (and the manifests of the indexes it
/// lists) whose config is `config`; `None` when there is none, or it cannot be read.
fn oci_manifest_of(
    files: &ArchiveFiles,
    store: &BlobStore,
    config: &Digest,
) -> Option<(Descriptor, ImageManifest)> {
    let index: ImageIndex = files.read_json(store, "index.json").ok()?;
    let mut queue: Vec<(Descriptor, usize)> = index.manifests.into_iter().map(|m| (m, 0)).collect();
    while let Some((entry, depth)) = queue.pop() {
        if media_type::is_manifest(&entry.media_type) {
            let Ok(manifest) = read_json::<ImageManifest>(store, &entry, "manifest") else {
                continue;
            };
            if &manifest.config.digest == config {
                let mut found = Descriptor::new(&entry.media_type, entry.digest, entry.size);
                found.platform = entry.platform;
                return Some((found, manifest));
            }
        } else if media_type::is_index(&entry.media_type) && depth < MAX_INDEX_DEPTH {
            if let Ok(nested) = read_json::<ImageIndex>(store, &entry, "image index") {
                queue.extend(nested.manifests.into_iter().map(|m| (m, depth + 1)));
            }
        }
    }
    None
}

/// The media type of a Docker archive's layer, from its first bytes: the classic format
/// stores plain tars, Docker ≥ 25 the layers as they were pulled.
fn sniff(store: &BlobStore, blob: &Descriptor) -> Result<&'static str> {
    let mut head = [0u8; 4];
    let mut reader = store.reader(blob)?;
    let mut read = 0;
    while read < head.len() {
        match reader.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(reader.error(e)),
        }
    }
    Ok(match &head[..read] {
        [0x1f, 0x8b, ..] => media_type::OCI_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => media_type::OCI_LAYER_ZSTD,
        _ => media_type::OCI_LAYER_TAR,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{gzip_layer, Raw};

    #[test]
    fn a_layer_is_measured_and_listed_without_extracting_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let entries = [
            Raw::Dir("./usr/", 0o755),
            Raw::File("usr/hello", b"hello\n", 0o755),
            Raw::Symlink("usr/link", "hello"),
        ];
        let (layer, diff_id) = gzip_layer(&store, &entries);
        let tar = crate::testing::tar_of(&entries);
        let measured = uncompressed(&store, &layer).unwrap();
        assert_eq!(measured.size, tar.len() as u64);
        assert_eq!(measured.diff_id, diff_id);
        let listed = layer_entries(&store, &layer).unwrap();
        let paths: Vec<&str> = listed.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["usr", "usr/hello", "usr/link"]);
        assert_eq!(listed[1].kind, EntryKind::File);
        assert_eq!((listed[1].size, listed[1].mode), (6, 0o755));
        assert_eq!(listed[1].sha256, Some(Digest::of(b"hello\n")));
        assert_eq!(listed[2].link.as_deref(), Some("hello"));

        // One byte changed: the blob's digest names the damage, not the decoder.
        let path = store.blob_path(&layer.digest);
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        for error in [
            uncompressed(&store, &layer).unwrap_err(),
            layer_entries(&store, &layer).unwrap_err(),
        ] {
            assert!(matches!(error, Error::BlobMismatch { .. }), "{error}");
        }
    }

    #[test]
    fn owners_and_capabilities_are_listed_as_the_headers_give_them() {
        use crate::layer::{write_layer, Attributes, Capabilities, Compression, LayerContents};
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&dir.path().join("store")).unwrap();
        let binary = dir.path().join("server");
        std::fs::write(&binary, b"\x7fELF").unwrap();
        let mut contents = LayerContents::new();
        let attributes = Attributes {
            owner: Some(crate::layer::Owner { uid: 7, gid: 8 }),
            capabilities: Capabilities::parse(&["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]).unwrap(),
            ..Attributes::default()
        };
        contents
            .add_path_with("/bin/server", &binary, &attributes)
            .unwrap();
        let mtime = crate::timestamp::Timestamp(0);
        let layer = write_layer(&store, &contents, Compression::Gzip, mtime).unwrap();
        let listed = layer_entries(&store, &layer.descriptor).unwrap();
        let shown: Vec<_> = listed
            .iter()
            .map(|e| (e.path.as_str(), e.uid, e.gid, e.capabilities.as_deref()))
            .collect();
        assert_eq!(
            shown,
            [
                ("bin", 0, 0, None),
                (
                    "bin/server",
                    7,
                    8,
                    Some("cap_net_bind_service,cap_net_raw=ep")
                )
            ]
        );
    }

    #[test]
    fn names_are_shown_relative_to_the_root() {
        for (raw, shown) in [
            ("./usr/bin/", "usr/bin"),
            ("/etc/passwd", "etc/passwd"),
            ("././a", "a"),
            ("a/.wh.b", "a/.wh.b"),
        ] {
            assert_eq!(display_path(raw.as_bytes()), shown, "{raw}");
        }
    }
}
