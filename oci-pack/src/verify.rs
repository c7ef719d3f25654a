//! Two checks of images already written. [`check_layout`]: an OCI layout's integrity alone,
//! every blob against its digest and size, every reference resolvable, every layer against its
//! config's diff_id. [`compare`]: two builds of one image, and where they differ, down to the
//! files of the first layer that does (as `diffoci` reports them).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Read as _};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::ImageConfig;
use crate::descriptor::Descriptor;
use crate::digest::{Digest, DigestReader};
use crate::error::{Error, Result};
use crate::index::ImageIndex;
use crate::inspect::{self, Image, LayerEntry, PlatformImage, Uncompressed};
use crate::json::MAX_DOCUMENT_BYTES;
use crate::manifest::ImageManifest;
use crate::media_type;
use crate::store::BlobStore;

/// What [`check_layout`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LayoutCheck {
    /// Manifests and indexes read (`index.json` not counted).
    pub manifests: usize,
    /// Blobs checked against their digest and size, referenced or not.
    pub blobs: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Layers whose uncompressed tar was checked against its config's diff_id.
    pub layers: usize,
    /// Blobs (or other files) under `blobs/sha256/` that nothing references: allowed, but
    /// not what a layout `cargo oci` writes holds.
    pub unreferenced: Vec<String>,
    /// Everything wrong, in the order found.
    pub problems: Vec<Problem>,
}

/// One thing wrong with a layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What is wrong, e.g. `layer 2 of manifest sha256:…` or `` `index.json` ``.
    pub at: String,
    /// The blob it is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<Digest>,
    /// How: expected against found.
    pub problem: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.problem)
    }
}

/// What a manifest says of itself beyond an image manifest: the subject an artifact is about.
#[derive(Debug, Deserialize)]
struct Subject {
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// Checks the OCI layout at `dir`: `oci-layout` and `index.json` well formed; every blob they
/// reach present with the digest and size its descriptor gives; every layer an image's config
/// lists, decompressed, with the diff_id the config gives; the subject of every artifact
/// present; and every other file under `blobs/sha256/` named by its own digest.
/// Fails only when `dir` cannot be read as a directory; everything else is a [`Problem`].
pub fn check_layout(dir: &Path) -> Result<LayoutCheck> {
    let blob_dir = dir.join("blobs").join("sha256");
    if !dir.is_dir() {
        return Err(Error::NotAnImage {
            source_text: format!("oci:{}", dir.display()),
            reason: "it is not a directory".into(),
        });
    }
    let mut checker = Checker {
        store: BlobStore::existing(dir),
        report: LayoutCheck::default(),
        blobs: BTreeMap::new(),
        layers: BTreeMap::new(),
        manifests: BTreeSet::new(),
    };
    checker.oci_layout(dir);
    let index_path = dir.join("index.json");
    match crate::json::read_file::<ImageIndex>(&index_path, MAX_DOCUMENT_BYTES) {
        Ok(index) => {
            if index.schema_version != 2 {
                checker.problem(
                    "`index.json`",
                    None,
                    format!("schemaVersion is {}, expected 2", index.schema_version),
                );
            }
            for (i, entry) in index.manifests.iter().enumerate() {
                let name = entry
                    .annotations
                    .get(crate::annotation::REF_NAME)
                    .map_or_else(String::new, |tag| format!(", tag `{tag}`"));
                checker.reference(entry, &format!("`index.json` entry {}{name}", i + 1), 0);
            }
        }
        Err(error) => checker.problem("`index.json`", None, chain(&error)),
    }
    checker.loose_blobs(&blob_dir);
    Ok(checker.report)
}

/// The walk of a layout, each blob checked once.
struct Checker {
    store: BlobStore,
    report: LayoutCheck,
    /// Blobs checked: their size, or `None` if they were found damaged or missing.
    blobs: BTreeMap<Digest, Option<u64>>,
    /// Layers decompressed.
    layers: BTreeMap<Digest, Option<Uncompressed>>,
    /// Manifests and indexes walked.
    manifests: BTreeSet<Digest>,
}

/// How deep indexes, and subjects of artifacts, may nest.
const MAX_DEPTH: usize = 8;

impl Checker {
    fn problem(&mut self, at: &str, blob: Option<Digest>, problem: String) {
        self.report.problems.push(Problem {
            at: at.to_owned(),
            blob,
            problem,
        });
    }

    fn oci_layout(&mut self, dir: &Path) {
        let path = dir.join("oci-layout");
        match crate::json::read_file::<Value>(&path, MAX_DOCUMENT_BYTES) {
            Ok(value) => {
                if !value
                    .get("imageLayoutVersion")
                    .is_some_and(Value::is_string)
                {
                    self.problem(
                        "`oci-layout`",
                        None,
                        format!("expected {{\"imageLayoutVersion\": \"1.0.0\"}}, found {value}"),
                    );
                }
            }
            Err(error) => self.problem("`oci-layout`", None, chain(&error)),
        }
    }

    /// Checks the blob `descriptor` names, once; whether it is intact.
    fn blob(&mut self, descriptor: &Descriptor, at: &str) -> bool {
        if let Some(known) = self.blobs.get(&descriptor.digest) {
            return match known {
                Some(size) if *size != descriptor.size => {
                    let problem = format!(
                        "the descriptor says {} bytes, the blob has {size}",
                        descriptor.size
                    );
                    self.problem(at, Some(descriptor.digest), problem);
                    false
                }
                Some(_) => true,
                None => false,
            };
        }
        let checked = self.store.reader(descriptor).and_then(|mut reader| {
            io::copy(&mut reader, &mut io::sink())
                .map(|_| ())
                .map_err(|e| reader.error(e))
        });
        match checked {
            Ok(()) => {
                self.blobs.insert(descriptor.digest, Some(descriptor.size));
                self.report.blobs += 1;
                self.report.bytes += descriptor.size;
                true
            }
            Err(error) => {
                self.blobs.insert(descriptor.digest, None);
                self.problem(at, Some(descriptor.digest), blob_problem(&error));
                false
            }
        }
    }

    /// A descriptor from an index: a manifest, an index, or a blob of another kind.
    fn reference(&mut self, descriptor: &Descriptor, at: &str, depth: usize) {
        let at = format!(
            "{at} ({} {})",
            kind_of(&descriptor.media_type),
            descriptor.digest
        );
        if self.manifests.contains(&descriptor.digest) {
            return;
        }
        let is_manifest = media_type::is_manifest(&descriptor.media_type);
        let is_index = media_type::is_index(&descriptor.media_type);
        if !self.blob(descriptor, &at) || !(is_manifest || is_index) {
            return;
        }
        self.manifests.insert(descriptor.digest);
        self.report.manifests += 1;
        if depth > MAX_DEPTH {
            self.problem(&at, Some(descriptor.digest), "nested too deep".into());
            return;
        }
        let bytes = match self.store.read(descriptor) {
            Ok(bytes) => bytes,
            Err(error) => return self.problem(&at, Some(descriptor.digest), chain(&error)),
        };
        if let Ok(Subject {
            subject: Some(subject),
        }) = serde_json::from_slice(&bytes)
        {
            if !self.store.contains(&subject.digest) {
                let problem = format!("its subject {} is not in the layout", subject.digest);
                self.problem(&at, Some(descriptor.digest), problem);
            } else {
                self.reference(&subject, &format!("the subject of {at}"), depth + 1);
            }
        }
        if is_index {
            match serde_json::from_slice::<ImageIndex>(&bytes) {
                Ok(index) => {
                    for (i, entry) in index.manifests.iter().enumerate() {
                        let platform = entry
                            .platform
                            .as_ref()
                            .map_or_else(String::new, |p| format!(" {p}"));
                        let entry_at = format!("entry {}{platform} of {at}", i + 1);
                        self.reference(entry, &entry_at, depth + 1);
                    }
                }
                Err(error) => {
                    let problem = format!("not an image index: {error}");
                    self.problem(&at, Some(descriptor.digest), problem);
                }
            }
            return;
        }
        match serde_json::from_slice::<ImageManifest>(&bytes) {
            Ok(manifest) => self.manifest(&manifest, &at),
            Err(error) => {
                let problem = format!("not an image manifest: {error}");
                self.problem(&at, Some(descriptor.digest), problem);
            }
        }
    }

    /// A manifest's config and layers; an image's layers against its config's diff_ids.
    fn manifest(&mut self, manifest: &ImageManifest, at: &str) {
        if manifest.schema_version != 2 {
            let problem = format!("schemaVersion is {}, expected 2", manifest.schema_version);
            self.problem(at, None, problem);
        }
        let config_at = format!("the config of {at}");
        let is_image = matches!(
            manifest.config.media_type.as_str(),
            media_type::OCI_CONFIG | media_type::DOCKER_CONFIG
        );
        let config_intact = self.blob(&manifest.config, &config_at);
        let diff_ids =
            if is_image && config_intact {
                match self.store.read(&manifest.config).and_then(|bytes| {
                    crate::json::parse::<ImageConfig>(&bytes, || config_at.clone())
                }) {
                    Ok(config) => Some(config.rootfs.diff_ids),
                    Err(error) => {
                        self.problem(&config_at, Some(manifest.config.digest), chain(&error));
                        None
                    }
                }
            } else {
                None
            };
        if let Some(diff_ids) = &diff_ids {
            if diff_ids.len() != manifest.layers.len() {
                let problem = format!(
                    "the manifest lists {} layers, its config {} diff_ids",
                    manifest.layers.len(),
                    diff_ids.len()
                );
                self.problem(at, None, problem);
            }
        }
        for (i, layer) in manifest.layers.iter().enumerate() {
            let layer_at = format!("layer {} of {} of {at}", i + 1, manifest.layers.len());
            let expected = diff_ids.as_ref().and_then(|ids| ids.get(i));
            let readable = media_type::oci_layer(&layer.media_type).is_some();
            match expected.filter(|_| readable) {
                Some(expected) => self.layer(layer, expected, &layer_at),
                None => {
                    self.blob(layer, &layer_at);
                }
            }
        }
    }

    /// A layer, decompressed once, against the diff_id its config gives.
    fn layer(&mut self, layer: &Descriptor, expected: &Digest, at: &str) {
        let measured = match self.layers.get(&layer.digest) {
            Some(measured) => *measured,
            None => {
                let measured = if self.blobs.get(&layer.digest) == Some(&None) {
                    None
                } else {
                    match inspect::uncompressed(&self.store, layer) {
                        Ok(measured) => {
                            if self.blobs.insert(layer.digest, Some(layer.size)).is_none() {
                                self.report.blobs += 1;
                                self.report.bytes += layer.size;
                            }
                            Some(measured)
                        }
                        Err(error) => {
                            self.blobs.insert(layer.digest, None);
                            self.problem(at, Some(layer.digest), blob_problem(&error));
                            None
                        }
                    }
                };
                self.layers.insert(layer.digest, measured);
                if measured.is_some() {
                    self.report.layers += 1;
                }
                measured
            }
        };
        if let Some(measured) = measured {
            if measured.diff_id != *expected {
                let problem = format!(
                    "its config's diff_id is {expected}, its uncompressed tar ({} bytes) is {}",
                    measured.size, measured.diff_id
                );
                self.problem(at, Some(layer.digest), problem);
            }
        }
    }

    /// Every file under `blobs/sha256/` nothing referenced: named by its own digest, noted.
    fn loose_blobs(&mut self, blob_dir: &Path) {
        let entries = match std::fs::read_dir(blob_dir) {
            Ok(entries) => entries,
            // Without it, every blob referenced is missing, and said so already.
            Err(error) if error.kind() == io::ErrorKind::NotFound => return,
            Err(error) => {
                let problem = format!("cannot be read: {error}");
                return self.problem("`blobs/sha256`", None, problem);
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let digest = format!("sha256:{name}").parse::<Digest>().ok();
            if digest.is_some_and(|d| self.blobs.contains_key(&d)) {
                continue;
            }
            let path = blob_dir.join(&name);
            let at = format!("the unreferenced `blobs/sha256/{name}`");
            if let Some(digest) = digest {
                // A regular file only, read no further than the size it had when opened.
                let hashed = crate::store::open_regular(&path, false).and_then(|file| {
                    let size = file.metadata()?.len();
                    let bounded = io::BufReader::new(file).take(size.saturating_add(1));
                    let mut reader = DigestReader::new(bounded);
                    io::copy(&mut reader, &mut io::sink())?;
                    Ok(reader.finish())
                });
                match hashed {
                    Ok((actual, size)) if actual == digest => {
                        self.report.blobs += 1;
                        self.report.bytes += size;
                    }
                    Ok((actual, size)) => {
                        let problem =
                            format!("its name says {digest}, its {size} bytes hash to {actual}");
                        self.problem(&at, Some(digest), problem);
                    }
                    Err(error) => {
                        let problem = format!("cannot be read: {error}");
                        self.problem(&at, Some(digest), problem);
                    }
                }
            }
            self.report
                .unreferenced
                .push(format!("blobs/sha256/{name}"));
        }
    }
}

/// `manifest`, `index` or `blob`, for a descriptor's media type.
fn kind_of(media_type: &str) -> &'static str {
    if media_type::is_manifest(media_type) {
        "manifest"
    } else if media_type::is_index(media_type) {
        "index"
    } else {
        "blob"
    }
}

/// What is wrong with a blob, said of the blob (`missing`, expected against found).
fn blob_problem(error: &Error) -> String {
    match error {
        Error::MissingBlob(digest) => format!("blob {digest} is missing"),
        Error::BlobMismatch {
            digest,
            expected_size,
            actual,
            actual_size,
        } => format!(
            "blob {digest} is corrupt: expected {expected_size} bytes with that digest, \
             found {actual_size} bytes hashing to {actual}"
        ),
        other => chain(other),
    }
}

/// An error with its causes, `: `-joined.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// How two builds of an image differ; empty when they are the same.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Comparison {
    /// Whether the images are the same: the same manifest or index digest.
    pub same: bool,
    /// Fields of the image index that differ, when every platform's manifest is the same.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub index: Vec<FieldDiff>,
    /// The platforms whose images differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformDiff>,
}

/// How one platform's two images differ.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlatformDiff {
    /// `linux/amd64`
    pub platform: String,
    /// The expected image's manifest, if it has one.
    pub expected: Option<Digest>,
    /// The other image's manifest.
    pub actual: Option<Digest>,
    /// When only one image has the platform: `"expected"` or `"actual"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_in: Option<&'static str>,
    /// The number of layers of each, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_count: Option<(usize, usize)>,
    /// The first layer that differs, down to its files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerDiff>,
    /// The numbers (from 1) of the other layers that differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_layers: Vec<usize>,
    /// Fields of the config that differ (`config.Env[1]`), its layers' diff_ids left out
    /// when layers differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<FieldDiff>,
    /// Fields of the manifest that differ besides its config and layers (its annotations).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub manifest: Vec<FieldDiff>,
}

/// The first layer that differs between two images.
#[derive(Debug, Clone, Serialize)]
pub struct LayerDiff {
    /// Its number, from 1.
    pub number: usize,
    /// What made it, by the expected image's history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// The expected image's layer.
    pub expected: LayerIds,
    /// The other image's layer.
    pub actual: LayerIds,
    /// The same tar, compressed differently.
    pub same_tar: bool,
    /// The entries that differ, by path.
    pub files: Vec<FileDiff>,
    /// The same entries, in another order.
    pub order_differs: bool,
}

/// A layer's blob and tar digests.
#[derive(Debug, Clone, Serialize)]
pub struct LayerIds {
    /// The blob.
    pub digest: Digest,
    /// The blob's size.
    pub size: u64,
    /// The uncompressed tar's digest, as the config gives it.
    pub diff_id: Option<Digest>,
}

/// One entry that differs between two layers; `None` on the side that lacks it.
#[derive(Debug, Clone, Serialize)]
pub struct FileDiff {
    /// The entry's name, relative to the root.
    pub path: String,
    /// What differs: `kind`, `size`, `mode`, `owner`, `mtime`, `sha256`, `link`,
    /// `capabilities`; empty when one side lacks the entry.
    pub fields: Vec<&'static str>,
    /// The expected layer's entry.
    pub expected: Option<LayerEntry>,
    /// The other layer's entry.
    pub actual: Option<LayerEntry>,
}

/// A JSON field that differs: its path (`config.Env[1]`) and both values (`None` if absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDiff {
    /// Where, e.g. `config.Env`, `annotations.org.opencontainers.image.created`.
    pub field: String,
    /// The expected value.
    pub expected: Option<Value>,
    /// The other value.
    pub actual: Option<Value>,
}

/// How `actual` differs from `expected`: platform by platform (matched by platform), the first
/// layer that differs down to its files, the config and the manifest fields; the layers are read
/// (streamed) only when their digests differ.
pub fn compare(expected: &Image, actual: &Image) -> Result<Comparison> {
    let same_target = match (&expected.target, &actual.target) {
        (Some(a), Some(b)) => Some(a.digest == b.digest),
        _ => None,
    };
    if same_target == Some(true) {
        return Ok(Comparison {
            same: true,
            ..Comparison::default()
        });
    }
    let mut comparison = Comparison::default();
    let key = |p: &PlatformImage| p.platform.to_string();
    for theirs in &expected.platforms {
        let ours = actual.platforms.iter().find(|p| key(p) == key(theirs));
        let diff = match ours {
            Some(ours) => compare_platform(expected, theirs, actual, ours)?,
            None => Some(PlatformDiff {
                platform: key(theirs),
                expected: theirs.manifest.as_ref().map(|m| m.digest),
                only_in: Some("expected"),
                ..PlatformDiff::default()
            }),
        };
        comparison.platforms.extend(diff);
    }
    for ours in &actual.platforms {
        if !expected.platforms.iter().any(|p| key(p) == key(ours)) {
            comparison.platforms.push(PlatformDiff {
                platform: key(ours),
                actual: ours.manifest.as_ref().map(|m| m.digest),
                only_in: Some("actual"),
                ..PlatformDiff::default()
            });
        }
    }
    if comparison.platforms.is_empty() && same_target == Some(false) {
        // Every platform is the same: the difference is in the index (or its absence).
        let read = |image: &Image| -> Result<Value> {
            let target = image.target.as_ref().expect("both have one");
            let bytes = image.store.read(target)?;
            crate::json::parse(&bytes, || format!("image index {}", target.digest))
        };
        let (theirs, ours) = (read(expected)?, read(actual)?);
        diff_values("", Some(&theirs), Some(&ours), &mut comparison.index);
        if comparison.index.is_empty() {
            comparison.index.push(FieldDiff {
                field: "mediaType".into(),
                expected: expected
                    .target
                    .as_ref()
                    .map(|t| t.media_type.clone().into()),
                actual: actual.target.as_ref().map(|t| t.media_type.clone().into()),
            });
        }
    }
    comparison.same = comparison.platforms.is_empty() && comparison.index.is_empty();
    Ok(comparison)
}

/// The first layer of `theirs` and `ours` that differs (with its files, unless only the
/// compression does), the numbers of the others, and whether they have as many: into `diff`.
fn diff_layers(
    expected: &Image,
    theirs: &PlatformImage,
    actual: &Image,
    ours: &PlatformImage,
    diff: &mut PlatformDiff,
) -> Result<()> {
    let their_ids = &theirs.config.rootfs.diff_ids;
    let our_ids = &ours.config.rootfs.diff_ids;
    let differs = |i: usize| {
        theirs.layers[i].digest != ours.layers[i].digest || their_ids.get(i) != our_ids.get(i)
    };
    let shared = theirs.layers.len().min(ours.layers.len());
    let mut differing = (0..shared).filter(|&i| differs(i));
    if let Some(first) = differing.next() {
        let history = theirs.layer_history();
        let (a, b) = (&theirs.layers[first], &ours.layers[first]);
        let same_tar = their_ids.get(first).is_some() && their_ids.get(first) == our_ids.get(first);
        let (files, order_differs) = if same_tar {
            (Vec::new(), false)
        } else {
            let theirs = inspect::layer_entries(&expected.store, a)?;
            let ours = inspect::layer_entries(&actual.store, b)?;
            diff_entries(theirs, ours)
        };
        diff.layer = Some(LayerDiff {
            number: first + 1,
            created_by: history[first].and_then(|h| h.created_by.clone()),
            expected: LayerIds {
                digest: a.digest,
                size: a.size,
                diff_id: their_ids.get(first).copied(),
            },
            actual: LayerIds {
                digest: b.digest,
                size: b.size,
                diff_id: our_ids.get(first).copied(),
            },
            same_tar,
            files,
            order_differs,
        });
        diff.other_layers = differing.map(|i| i + 1).collect();
    }
    if theirs.layers.len() != ours.layers.len() {
        diff.layer_count = Some((theirs.layers.len(), ours.layers.len()));
    }
    Ok(())
}

/// How one platform's images differ, or `None` when they are the same.
fn compare_platform(
    expected: &Image,
    theirs: &PlatformImage,
    actual: &Image,
    ours: &PlatformImage,
) -> Result<Option<PlatformDiff>> {
    let manifests = (
        theirs.manifest.as_ref().map(|m| m.digest),
        ours.manifest.as_ref().map(|m| m.digest),
    );
    let same_layers = theirs.layers.len() == ours.layers.len()
        && theirs
            .layers
            .iter()
            .zip(&ours.layers)
            .all(|(a, b)| a.digest == b.digest);
    match manifests {
        (Some(a), Some(b)) if a == b => return Ok(None),
        (None, _) | (_, None)
            if same_layers && theirs.config_blob.digest == ours.config_blob.digest =>
        {
            return Ok(None)
        }
        _ => {}
    }
    let mut diff = PlatformDiff {
        platform: theirs.platform.to_string(),
        expected: manifests.0,
        actual: manifests.1,
        ..PlatformDiff::default()
    };
    diff_layers(expected, theirs, actual, ours, &mut diff)?;
    let layers_differ = diff.layer.is_some() || diff.layer_count.is_some();
    let config_value = |config: &ImageConfig| -> Result<Value> {
        let mut value = serde_json::to_value(config).map_err(|source| Error::Json {
            what: "the image config",
            source,
        })?;
        if layers_differ {
            if let Some(rootfs) = value.get_mut("rootfs").and_then(Value::as_object_mut) {
                rootfs.remove("diff_ids");
            }
        }
        Ok(value)
    };
    diff_values(
        "",
        Some(&config_value(&theirs.config)?),
        Some(&config_value(&ours.config)?),
        &mut diff.config,
    );
    if let (Some(a), Some(b)) = (&theirs.manifest, &ours.manifest) {
        let manifest_value = |image: &Image, descriptor: &Descriptor| -> Result<Value> {
            let bytes = image.store.read(descriptor)?;
            let mut value: Value =
                crate::json::parse(&bytes, || format!("manifest {}", descriptor.digest))?;
            if let Some(object) = value.as_object_mut() {
                object.remove("config");
                object.remove("layers");
            }
            Ok(value)
        };
        diff_values(
            "",
            Some(&manifest_value(expected, a)?),
            Some(&manifest_value(actual, b)?),
            &mut diff.manifest,
        );
        if diff.manifest.is_empty()
            && diff.config.is_empty()
            && !layers_differ
            && theirs.config_blob.digest != ours.config_blob.digest
        {
            // The same config, written otherwise (key order, spacing).
            diff.config.push(FieldDiff {
                field: "(bytes)".into(),
                expected: Some(theirs.config_blob.digest.to_string().into()),
                actual: Some(ours.config_blob.digest.to_string().into()),
            });
        }
    }
    Ok(Some(diff))
}

/// The entries of two layers that differ, by path, and whether the same entries come in
/// another order.
fn diff_entries(theirs: Vec<LayerEntry>, ours: Vec<LayerEntry>) -> (Vec<FileDiff>, bool) {
    let order = |entries: &[LayerEntry]| -> Vec<String> {
        entries.iter().map(|e| e.path.clone()).collect()
    };
    let (their_order, our_order) = (order(&theirs), order(&ours));
    let theirs: BTreeMap<String, LayerEntry> =
        theirs.into_iter().map(|e| (e.path.clone(), e)).collect();
    let mut ours: BTreeMap<String, LayerEntry> =
        ours.into_iter().map(|e| (e.path.clone(), e)).collect();
    let mut files = Vec::new();
    for (path, a) in theirs {
        match ours.remove(&path) {
            Some(b) => {
                let fields = entry_fields(&a, &b);
                if !fields.is_empty() {
                    files.push(FileDiff {
                        path,
                        fields,
                        expected: Some(a),
                        actual: Some(b),
                    });
                }
            }
            None => files.push(FileDiff {
                path,
                fields: Vec::new(),
                expected: Some(a),
                actual: None,
            }),
        }
    }
    for (path, b) in ours {
        files.push(FileDiff {
            path,
            fields: Vec::new(),
            expected: None,
            actual: Some(b),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let order_differs = files.is_empty() && their_order != our_order;
    (files, order_differs)
}

/// The fields in which two entries of one path differ.
fn entry_fields(a: &LayerEntry, b: &LayerEntry) -> Vec<&'static str> {
    [
        ("kind", a.kind != b.kind),
        ("size", a.size != b.size),
        ("mode", a.mode != b.mode),
        ("owner", (a.uid, a.gid) != (b.uid, b.gid)),
        ("mtime", a.mtime != b.mtime),
        ("sha256", a.sha256 != b.sha256),
        ("link", a.link != b.link),
        ("capabilities", a.capabilities != b.capabilities),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect()
}

/// The leaves in which two JSON values differ, with their paths (`config.Env[1]`): objects key
/// by key, arrays of one length item by item, anything else whole.
fn diff_values(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<FieldDiff>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (a, b) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                diff_values(&join(key), a.get(key), b.get(key), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (a, b)) in a.iter().zip(b).enumerate() {
                diff_values(&format!("{path}[{i}]"), Some(a), Some(b), out);
            }
        }
        (a, b) if a != b => out.push(FieldDiff {
            field: path.to_owned(),
            expected: a.cloned(),
            actual: b.cloned(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::EntryKind;

    fn entry(path: &str, size: u64, sha: &[u8]) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind: EntryKind::File,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
            size,
            sha256: Some(Digest::of(sha)),
            link: None,
            capabilities: None,
        }
    }

    #[test]
    fn entries_differ_by_path_and_field() {
        let theirs = vec![
            entry("a", 1, b"a"),
            entry("b", 1, b"b"),
            entry("gone", 1, b"g"),
        ];
        let ours = vec![
            entry("a", 1, b"a"),
            entry("b", 2, b"bb"),
            entry("new", 1, b"n"),
        ];
        let (files, reordered) = diff_entries(theirs, ours);
        let summary: Vec<(&str, Vec<&str>, bool, bool)> = files
            .iter()
            .map(|f| {
                let (a, b) = (f.expected.is_some(), f.actual.is_some());
                (f.path.as_str(), f.fields.clone(), a, b)
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("b", vec!["size", "sha256"], true, true),
                ("gone", vec![], true, false),
                ("new", vec![], false, true),
            ]
        );
        assert!(!reordered);
        let (files, reordered) = diff_entries(
            vec![entry("a", 1, b"a"), entry("b", 1, b"b")],
            vec![entry("b", 1, b"b"), entry("a", 1, b"a")],
        );
        assert!(files.is_empty() && reordered);
    }

    #[test]
    fn json_differs_at_its_leaves() {
        let a = serde_json::json!({"config": {"Env": ["A=1", "B=2"], "User": "1"}, "x": 1});
        let b = serde_json::json!({"config": {"Env": ["A=1", "B=3"]}, "x": 1, "y": [1]});
        let mut out = Vec::new();
        diff_values("", Some(&a), Some(&b), &mut out);
        let fields: Vec<&str> = out.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["config.Env[1]", "config.User", "y"]);
        assert_eq!(out[1].actual, None);
    }

    #[test]
    fn a_damaged_layout_is_reported_blob_by_blob() {
        use crate::testing::{gzip_layer, Raw};
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (layer, diff_id) = gzip_layer(&store, &[Raw::File("a", b"a", 0o644)]);
        let mut config =
            ImageConfig::scratch(&crate::platform::Platform::new("linux", "amd64", None));
        config.rootfs.diff_ids = vec![diff_id];
        let config = store
            .put_json(media_type::OCI_CONFIG, "config", &config)
            .unwrap();
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": media_type::OCI_MANIFEST,
            "config": config, "layers": [layer],
        });
        let manifest = store
            .put_json(media_type::OCI_MANIFEST, "manifest", &manifest)
            .unwrap();
        let index = ImageIndex::new(vec![manifest.clone()], BTreeMap::new());
        std::fs::write(
            dir.path().join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();

        let intact = check_layout(dir.path()).unwrap();
        assert!(intact.problems.is_empty(), "{:?}", intact.problems);
        assert_eq!((intact.manifests, intact.blobs, intact.layers), (1, 3, 1));

        let path = store.blob_path(&layer.digest);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        std::fs::remove_file(store.blob_path(&config.digest)).unwrap();
        let damaged = check_layout(dir.path()).unwrap();
        let problems: Vec<String> = damaged.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains(&format!("blob {} is missing", config.digest)));
        assert!(
            problems[1].starts_with("layer 1 of 1 of `index.json` entry 1"),
            "{problems:?}"
        );
        assert!(problems[1].contains(&format!("blob {} is corrupt", layer.digest)));
    }
}
