//! The image builder: new layers and configuration changes on top of a base, written into the
//! store as layers, a config and a manifest.

use std::collections::BTreeMap;

use crate::annotation::{BASE_DIGEST, BASE_NAME};
use crate::cache::BuildCache;
use crate::config::{ConfigChanges, History, ImageConfig};
use crate::descriptor::Descriptor;
use crate::diff;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::index::ImageIndex;
use crate::layer::{write_layer, write_tar_blob, Compression, Layer, LayerContents};
use crate::manifest::ImageManifest;
use crate::media_type;
use crate::platform::Platform;
use crate::progress::{Event, Progress};
use crate::source::ParentImage;
use crate::store::BlobStore;
use crate::timestamp::Timestamp;

/// Everything one image is made of.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    /// What the image runs on; it is written into the config, and a parent must match it.
    pub platform: Platform,
    /// The parent image; `None` is `scratch`.
    pub base: Option<ParentImage>,
    /// New layers, base first. Each is written as its difference against the parent; empty
    /// ones are left out.
    pub layers: Vec<NewLayer>,
    /// What the image sets on top of the parent's config.
    pub config: ConfigChanges,
    /// What made the image when it adds no layer, for its `empty_layer` history entry.
    pub config_created_by: String,
    /// Who made the image, e.g. `"Jane Doe <jane@example.com>"`: the config's `author`
    /// (`None` keeps the parent's) and that of every history entry this image adds.
    pub author: Option<String>,
    /// The `comment` of every history entry this image adds.
    pub comment: Option<String>,
    /// `created` of the config and its history.
    pub created: Timestamp,
    /// The modification time of every entry of the new layers: [`FIXED_MTIME`] for layers
    /// whose bytes depend on their contents alone, or `created` for file times that follow it.
    ///
    /// [`FIXED_MTIME`]: crate::layer::FIXED_MTIME
    pub mtime: Timestamp,
    /// Manifest annotations; `org.opencontainers.image.base.*` are added for a parent.
    pub annotations: BTreeMap<String, String>,
    /// How the new layers are compressed; the parent's keep theirs.
    pub compression: Compression,
    /// Whether each new layer is written first as its tar, kept in the store beside its
    /// compressed blob, for an engine that stores layers unpacked: see
    /// [`build_image_unpacked_first`].
    pub keep_tars: bool,
}

/// How this image's new layers are written: into `store`, through `cache`, as the request
/// asks, each told to `progress`.
struct LayerWriter<'a> {
    store: &'a BlobStore,
    cache: Option<&'a BuildCache>,
    compression: Compression,
    mtime: Timestamp,
    keep_tars: bool,
    progress: &'a mut dyn Progress,
}

/// One layer to add to an image.
#[derive(Debug, Clone)]
pub struct NewLayer {
    /// The files, directories and links the layer holds.
    pub contents: LayerContents,
    /// Absolute paths of the parent to delete, as whiteouts in this layer.
    pub remove: Vec<String>,
    /// What made the layer, for its history entry (`created_by`).
    pub created_by: String,
}

/// An image as an engine that stores layers unpacked takes it, handed over by
/// [`build_image_unpacked_first`] before its layers are compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnpackedImage {
    /// Its manifest in the store, with the image's platform set: the new layers as their tars
    /// (but for any taken from the cache), the base's as they are, and the image's config.
    pub manifest: Descriptor,
    /// The tars it lists that this build kept for it; after the hand-over they are the
    /// receiver's to remove ([`BuildCache::drop_kept_tars`]) should the image fail, once it no
    /// longer reads them. (When it does not fail, they are listed in [`BuiltImage::kept_tars`].)
    pub tars: Vec<Digest>,
}

/// An image in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BuiltImage {
    /// The manifest, with the image's platform set, ready to be listed in an index.
    pub manifest: Descriptor,
    /// The image's config blob.
    pub config: Descriptor,
    /// The new layers only; the parent's come first in the manifest.
    pub layers: Vec<Layer>,
    /// How many layers the manifest lists: the parent's and the new.
    pub total_layers: usize,
    /// The config's and every layer's bytes (the parent's too), as stored and sent: compressed
    /// as each layer is. (A layer's uncompressed size is not known without reading it: a layer
    /// taken from the cache, or a parent's, carries only its digests.)
    pub compressed_bytes: u64,
    /// The base's name, as the manifest's `org.opencontainers.image.base.name` gives it: the
    /// parent's [`ParentImage::name`], unless the request's annotations set it.
    pub base_name: Option<String>,
    /// The base's manifest digest, as `org.opencontainers.image.base.digest` gives it.
    pub base_digest: Option<String>,
    /// The ports the config exposes (`8080/tcp`), the parent's among them, in order.
    pub exposed_ports: Vec<String>,
    /// The diff_ids of the tars this build kept in the store beside their layers
    /// ([`ImageRequest::keep_tars`]), for the caller to remove once an engine has them.
    pub kept_tars: Vec<Digest>,
}

impl BuiltImage {
    /// The image whose `manifest` (described by `descriptor`) and `config` were just written.
    fn written(
        descriptor: Descriptor,
        manifest: &ImageManifest,
        config: &ImageConfig,
        layers: Vec<Layer>,
        kept_tars: Vec<Digest>,
    ) -> BuiltImage {
        let annotation = |key: &str| manifest.annotations.get(key).cloned();
        BuiltImage {
            manifest: descriptor,
            config: manifest.config.clone(),
            layers,
            total_layers: manifest.layers.len(),
            compressed_bytes: std::iter::once(&manifest.config)
                .chain(&manifest.layers)
                .map(|d| d.size)
                .sum(),
            base_name: annotation(BASE_NAME),
            base_digest: annotation(BASE_DIGEST),
            exposed_ports: config
                .config
                .as_ref()
                .and_then(|c| c.exposed_ports.as_ref())
                .map(|ports| ports.keys().cloned().collect())
                .unwrap_or_default(),
            kept_tars,
        }
    }
}

/// Writes the layers, config and manifest of `request` into `store`. A parent's layers are
/// reused byte for byte (linked into `store`), its config inherited with Dockerfile rules.
///
/// With a `cache`, a new layer whose tar an earlier build already compressed with the same
/// settings is not compressed again: its blob is taken from the cache.
pub fn build_image(
    store: &BlobStore,
    request: ImageRequest,
    cache: Option<&BuildCache>,
    progress: &mut dyn Progress,
) -> Result<BuiltImage> {
    build_image_unpacked_first(store, request, cache, progress, &mut |_| ())
}

/// [`build_image`], giving `unpacked` the image as an engine that stores layers unpacked takes
/// it, as soon as it exists. With [`ImageRequest::keep_tars`], every new layer is first written
/// as its tar, kept in the store; then the config, and a manifest of those tars (the base's
/// layers and any taken from the cache as they are) go to `unpacked` before a byte is
/// compressed, so an engine can load the image (the same config, so the same image ID) while
/// its layers are compressed for the other outputs; with nothing to compress, it gets the
/// final manifest. It is called once at most: never without `keep_tars`, nor for an image that
/// fails first. An image that fails before the hand-over removes the tars it kept; after, they
/// are the receiver's ([`UnpackedImage::tars`]), which may still be reading them.
pub fn build_image_unpacked_first(
    store: &BlobStore,
    request: ImageRequest,
    cache: Option<&BuildCache>,
    progress: &mut dyn Progress,
    unpacked: &mut dyn FnMut(&UnpackedImage),
) -> Result<BuiltImage> {
    let mut kept_tars = Vec::new();
    let mut handed = false;
    let mut hand_over = |image: &UnpackedImage| {
        handed = true;
        unpacked(image);
    };
    let built = write_image(
        store,
        request,
        cache,
        progress,
        &mut kept_tars,
        &mut hand_over,
    );
    if built.is_err() && !handed {
        for diff_id in &kept_tars {
            let _ = std::fs::remove_file(store.blob_path(diff_id));
        }
    }
    built
}

/// A new layer after the first pass of [`write_image`]: packed (or taken from the cache), or
/// written as its tar, to be compressed.
enum FirstPass {
    Packed(Layer),
    /// The tar, and the layer's stamp taken before it was written.
    Tar(Descriptor, Option<Digest>),
}

/// [`build_image_unpacked_first`]'s work; `kept_tars` collects the tars it keeps as it goes.
fn write_image(
    store: &BlobStore,
    mut request: ImageRequest,
    cache: Option<&BuildCache>,
    progress: &mut dyn Progress,
    kept_tars: &mut Vec<Digest>,
    unpacked: &mut dyn FnMut(&UnpackedImage),
) -> Result<BuiltImage> {
    let created = request.created.to_rfc3339();
    let mut config = inherited_config(&request, &created);
    // Reading the parent's tree (to write the difference) checks its layers on the way.
    let new_layers = new_layer_contents(&mut request)?;
    let base_layers = match &request.base {
        Some(parent) => adopt_parent_layers(store, parent, cache)?,
        None => Vec::new(),
    };
    let mut writer = LayerWriter {
        store,
        cache,
        compression: request.compression,
        mtime: request.mtime,
        keep_tars: request.keep_tars,
        progress,
    };

    let mut first = Vec::new();
    for (contents, created_by) in new_layers.iter().filter(|(c, _)| !c.is_empty()) {
        let pass = writer.first_pass(contents, created_by)?;
        let diff_id = match &pass {
            FirstPass::Packed(layer) => layer.diff_id,
            FirstPass::Tar(tar, _) => tar.digest,
        };
        if let FirstPass::Tar(_, _) = pass {
            kept_tars.push(diff_id);
        }
        config.rootfs.diff_ids.push(diff_id);
        config
            .history
            .push(history_entry(&request, &created, created_by, false));
        first.push((pass, contents, created_by));
    }
    if first.is_empty() {
        if request.base.is_none() {
            return Err(Error::NoLayers);
        }
        // A config-only image: its history still says what happened.
        let created_by = &request.config_created_by;
        config
            .history
            .push(history_entry(&request, &created, created_by, true));
    }
    let config_descriptor = store.put_json(media_type::OCI_CONFIG, "the image config", &config)?;
    let manifest_of = |layers: Vec<Descriptor>| ImageManifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_owned()),
        config: config_descriptor.clone(),
        layers: base_layers.iter().cloned().chain(layers).collect(),
        annotations: manifest_annotations(&request),
        artifact_type: None,
        subject: None,
    };
    let put_manifest = |manifest: &ImageManifest, what: &'static str| -> Result<Descriptor> {
        let mut descriptor = store.put_json(media_type::OCI_MANIFEST, what, manifest)?;
        descriptor.platform = Some(request.platform.clone());
        Ok(descriptor)
    };

    let to_compress = first
        .iter()
        .any(|(pass, ..)| matches!(pass, FirstPass::Tar(..)));
    if to_compress {
        let layers = first.iter().map(|(pass, ..)| match pass {
            FirstPass::Packed(layer) => layer.descriptor.clone(),
            FirstPass::Tar(tar, _) => tar.clone(),
        });
        let manifest = put_manifest(&manifest_of(layers.collect()), "the unpacked manifest")?;
        unpacked(&UnpackedImage {
            manifest,
            tars: kept_tars.clone(),
        });
    }
    let mut layers = Vec::new();
    for (pass, contents, created_by) in first {
        layers.push(writer.second_pass(pass, contents, created_by)?);
    }
    let progress = writer.progress;
    let manifest = manifest_of(layers.iter().map(|l| l.descriptor.clone()).collect());
    let manifest_descriptor = put_manifest(&manifest, "the image manifest")?;
    if !to_compress && request.keep_tars {
        unpacked(&UnpackedImage {
            manifest: manifest_descriptor.clone(),
            tars: Vec::new(),
        });
    }
    progress.on_event(&Event::ImageWritten {
        platform: &request.platform,
        manifest: &manifest_descriptor,
    });
    Ok(BuiltImage::written(
        manifest_descriptor,
        &manifest,
        &config,
        layers,
        kept_tars.clone(),
    ))
}

/// The image's config before its new layers: the parent's (or `scratch`'s) with the request's
/// platform, date, author and config changes.
fn inherited_config(request: &ImageRequest, created: &str) -> ImageConfig {
    let mut config = match &request.base {
        Some(parent) => parent.config.clone(),
        None => ImageConfig::scratch(&request.platform),
    };
    config.set_platform(&request.platform);
    config.created = Some(created.to_owned());
    if request.author.is_some() {
        config.author.clone_from(&request.author);
    }
    config
        .config
        .get_or_insert_with(Default::default)
        .apply(&request.config);
    config
}

/// Links (or copies) the parent's layers into `store`, byte for byte, through the cache when
/// `store` is the cache's; their descriptors, base first.
fn adopt_parent_layers(
    store: &BlobStore,
    parent: &ParentImage,
    cache: Option<&BuildCache>,
) -> Result<Vec<Descriptor>> {
    let into_cache = cache.filter(|c| c.store().root() == store.root());
    let mut descriptors = Vec::new();
    for layer in &parent.layers {
        match into_cache {
            Some(cache) => cache.adopt(&parent.store, layer, parent.layers_verified())?,
            None => store.copy_in(&parent.store, layer, parent.layers_verified())?,
        }
        descriptors.push(layer.clone());
    }
    Ok(descriptors)
}

impl LayerWriter<'_> {
    /// The first pass over a new layer: taken from the cache when its stamp names a tar the
    /// cache holds compressed as asked; else, for an engine ([`ImageRequest::keep_tars`]),
    /// written as its tar (a layer that is not compressed is its own tar: packed at once);
    /// else packed.
    fn first_pass(&mut self, contents: &LayerContents, created_by: &str) -> Result<FirstPass> {
        let stamp = contents.stamp(self.mtime);
        let reused = (self.cache.zip(stamp.as_ref())).and_then(|(cache, stamp)| {
            Some((cache, cache.layer_by_stamp(stamp, self.compression)?))
        });
        if let Some((cache, layer)) = reused {
            self.store.import(cache.store(), &layer.descriptor, true)?;
            self.progress.on_event(&Event::LayerReused {
                layer: &layer,
                created_by,
            });
            cache.store().import(self.store, &layer.descriptor, true)?;
            cache.record_layer(&layer, self.compression);
            return Ok(FirstPass::Packed(layer));
        }
        if self.keep_tars && self.compression != Compression::None {
            let (tar, kept) = write_tar_blob(self.store, contents, self.mtime)?;
            // Someone else's tar of the same bytes is left as it was, and the layer packed.
            if kept {
                return Ok(FirstPass::Tar(tar, stamp));
            }
        }
        let layer = write_layer(self.store, contents, self.compression, self.mtime)?;
        self.written(contents, created_by, stamp, &layer)?;
        Ok(FirstPass::Packed(layer))
    }

    /// The second pass: a layer written as its tar made again from `contents` and compressed,
    /// checked to be the same tar (a staged file that changed in between is an error).
    fn second_pass(
        &mut self,
        pass: FirstPass,
        contents: &LayerContents,
        created_by: &str,
    ) -> Result<Layer> {
        let (tar, stamp) = match pass {
            FirstPass::Packed(layer) => return Ok(layer),
            FirstPass::Tar(tar, stamp) => (tar, stamp),
        };
        let layer = write_layer(self.store, contents, self.compression, self.mtime)?;
        if layer.diff_id != tar.digest {
            return Err(Error::LayerChanged {
                created_by: created_by.to_owned(),
            });
        }
        self.written(contents, created_by, stamp, &layer)?;
        Ok(layer)
    }

    /// A new layer just written: said so, and recorded in the cache, with its `stamp` (taken
    /// before the layer was read) if that still holds.
    fn written(
        &mut self,
        contents: &LayerContents,
        created_by: &str,
        stamp: Option<Digest>,
        layer: &Layer,
    ) -> Result<()> {
        self.progress
            .on_event(&Event::LayerWritten { layer, created_by });
        let Some(cache) = self.cache else {
            return Ok(());
        };
        cache.store().import(self.store, &layer.descriptor, true)?;
        cache.record_layer(layer, self.compression);
        // Only a stamp that held from before the layer was read until after says which tar it
        // is.
        let held = stamp.filter(|s| contents.stamp(self.mtime).as_ref() == Some(s));
        if let Some(stamp) = held {
            cache.record_stamp(&stamp, &layer.diff_id);
        }
        Ok(())
    }
}

/// The history entry of a step of this image: a new layer, or (`empty_layer`) none.
fn history_entry(
    request: &ImageRequest,
    created: &str,
    created_by: &str,
    empty_layer: bool,
) -> History {
    History {
        created: Some(created.to_owned()),
        created_by: Some(created_by.to_owned()),
        author: request.author.clone(),
        comment: request.comment.clone(),
        empty_layer,
    }
}

/// The manifest's annotations: the request's, and the parent's name and digest unless the
/// request gives them.
fn manifest_annotations(request: &ImageRequest) -> BTreeMap<String, String> {
    let mut annotations = request.annotations.clone();
    if let Some(parent) = &request.base {
        if let Some(name) = &parent.name {
            annotations
                .entry(BASE_NAME.to_owned())
                .or_insert_with(|| name.clone());
        }
        if let Some(digest) = &parent.manifest_digest {
            annotations
                .entry(BASE_DIGEST.to_owned())
                .or_insert_with(|| digest.to_string());
        }
    }
    annotations
}

/// Joins one image per platform into an image index in `store` (see [`ImageIndex::join`]).
pub fn join_index(
    store: &BlobStore,
    manifests: Vec<Descriptor>,
    annotations: BTreeMap<String, String>,
) -> Result<Descriptor> {
    let index = ImageIndex::join(manifests, annotations)?;
    store.put_json(media_type::OCI_INDEX, "the image index", &index)
}

/// The contents of each new layer, as differences against the parent when there is one.
fn new_layer_contents(request: &mut ImageRequest) -> Result<Vec<(LayerContents, String)>> {
    let nothing_staged = request
        .layers
        .iter()
        .all(|l| l.contents.is_empty() && l.remove.is_empty());
    let Some(parent) = request.base.as_mut().filter(|_| !nothing_staged) else {
        if let Some(path) = request.layers.iter().flat_map(|l| &l.remove).next() {
            return Err(Error::RemoveMissing { path: path.clone() });
        }
        return Ok(request
            .layers
            .iter()
            .map(|l| (l.contents.clone(), l.created_by.clone()))
            .collect());
    };
    let tree = parent.file_tree()?;
    request
        .layers
        .iter()
        .map(|layer| {
            Ok((
                diff::layer_on(tree, &layer.contents, &layer.remove)?,
                layer.created_by.clone(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{EXECUTABLE_MODE, FILE_MODE};
    use crate::progress::NoProgress;

    fn request() -> ImageRequest {
        let mut bins = LayerContents::new();
        bins.add_bytes(
            "/usr/local/bin/hello",
            b"#!/bin/true\n".to_vec(),
            EXECUTABLE_MODE,
        )
        .unwrap();
        let mut files = LayerContents::new();
        files
            .add_bytes(
                "/srv/static/index.html",
                b"<h1>hi</h1>\n".to_vec(),
                FILE_MODE,
            )
            .unwrap();
        ImageRequest {
            platform: Platform::new("linux", "amd64", None),
            base: None,
            layers: vec![
                NewLayer {
                    contents: bins,
                    remove: Vec::new(),
                    created_by: "cargo oci: bins hello".into(),
                },
                NewLayer {
                    contents: LayerContents::new(),
                    remove: Vec::new(),
                    created_by: "nothing".into(),
                },
                NewLayer {
                    contents: files,
                    remove: Vec::new(),
                    created_by: "cargo oci: files".into(),
                },
            ],
            config: ConfigChanges {
                user: Some("65532:65532".into()),
                entrypoint: Some(vec!["/usr/local/bin/hello".into()]),
                env: vec![("RUST_LOG".into(), "info".into())],
                exposed_ports: vec!["8080/tcp".into()],
                ..ConfigChanges::default()
            },
            author: Some("Ferris <ferris@example.com>".into()),
            comment: None,
            created: Timestamp(1_700_000_000),
            mtime: crate::layer::FIXED_MTIME,
            annotations: BTreeMap::from([(
                "org.opencontainers.image.title".into(),
                "hello".into(),
            )]),
            compression: Compression::Gzip,
            keep_tars: false,
            config_created_by: "config".into(),
        }
    }

    /// A fixed input set, not a cargo build: these digests are the engine's byte-for-byte
    /// contract. They change only on purpose, with the reason in the commit message.
    #[test]
    fn golden_image_digests() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let image = build_image(&store, request(), None, &mut NoProgress).unwrap();
        let layer_digests: Vec<String> = image
            .layers
            .iter()
            .map(|l| l.descriptor.digest.to_string())
            .collect();
        assert_eq!(
            layer_digests,
            [
                "sha256:de80d20cad0421a1e0cc2f6f10358dc990bbf57ec9918b1f7de0f9a8e709f6ca",
                "sha256:4794d786dccb0bb24e55626ee83262bd361277229ebbcb74a610c4871da5668c"
            ]
        );
        assert_eq!(
            image.config.digest.to_string(),
            "sha256:591de76f48d34bb8ea1124e47137598280221d2ac350909ac8d10c67b42226ed"
        );
        assert_eq!(
            image.manifest.digest.to_string(),
            "sha256:60f514e22131c6ef98bdb46aa71592e9fe8ba1087f3036587186029da10a509d"
        );
    }

    #[test]
    fn config_records_layers_history_and_settings() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let image = build_image(&store, request(), None, &mut NoProgress).unwrap();
        let config: ImageConfig =
            serde_json::from_slice(&store.read(&image.config).unwrap()).unwrap();
        assert_eq!(config.created.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(
            config.rootfs.diff_ids,
            image.layers.iter().map(|l| l.diff_id).collect::<Vec<_>>()
        );
        assert_eq!(config.history.len(), 2, "the empty layer is left out");
        assert!(config
            .history
            .iter()
            .all(|h| h.created == config.created && !h.empty_layer));
        let container = config.config.unwrap();
        assert_eq!(container.env.unwrap(), ["RUST_LOG=info"]);
        assert_eq!(container.user.as_deref(), Some("65532:65532"));

        let manifest: ImageManifest =
            serde_json::from_slice(&store.read(&image.manifest).unwrap()).unwrap();
        assert_eq!(manifest.config, image.config);
        assert_eq!(manifest.layers.len(), 2);
        assert_eq!(
            image
                .manifest
                .platform
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("linux/amd64")
        );
    }

    /// What an image is made of is told by the build, the parent's layers and ports included,
    /// as its manifest and config have it.
    #[test]
    fn a_built_image_tells_its_layers_bytes_base_and_ports() {
        use crate::source::{ImageSource, Selector};
        let dir = tempfile::tempdir().unwrap();
        let layout = crate::layout::StagedLayout::create(&dir.path().join("base")).unwrap();
        let base = build_image(layout.store(), request(), None, &mut NoProgress).unwrap();
        let sizes = |image: &BuiltImage, store: &BlobStore| {
            let manifest: ImageManifest =
                serde_json::from_slice(&store.read(&image.manifest).unwrap()).unwrap();
            let layers: u64 = manifest.layers.iter().map(|l| l.size).sum();
            (manifest.layers.len(), manifest.config.size + layers)
        };
        assert_eq!(
            (base.total_layers, base.compressed_bytes),
            sizes(&base, layout.store())
        );
        assert_eq!(base.total_layers, 2);
        assert_eq!(base.exposed_ports, ["8080/tcp"]);
        assert_eq!((&base.base_name, &base.base_digest), (&None, &None));
        let tag: crate::reference::Reference = "base:1".parse().unwrap();
        let written = layout
            .finish(&base.manifest, &[tag], BTreeMap::new())
            .unwrap();

        let cache = BuildCache::open(&dir.path().join("cache")).unwrap();
        let source = ImageSource::OciLayout {
            dir: written,
            selector: Selector::Only,
        };
        let platform = Platform::new("linux", "amd64", None);
        let parent = ParentImage::open(&source, &platform, &cache, None, &mut NoProgress)
            .unwrap()
            .unwrap();
        let mut on_base = request();
        on_base.layers.truncate(1);
        on_base.layers[0].contents = LayerContents::new();
        on_base.layers[0]
            .contents
            .add_bytes("/etc/app.toml", b"port = 9090\n".to_vec(), FILE_MODE)
            .unwrap();
        on_base.config.exposed_ports = vec!["9090/tcp".into()];
        on_base.base = Some(parent.clone());
        let image = build_image(cache.store(), on_base, Some(&cache), &mut NoProgress).unwrap();
        assert_eq!(image.layers.len(), 1);
        assert_eq!(image.total_layers, 3, "the parent's two and the new one");
        assert_eq!(
            (image.total_layers, image.compressed_bytes),
            sizes(&image, cache.store())
        );
        assert_eq!(image.exposed_ports, ["8080/tcp", "9090/tcp"]);
        assert_eq!(image.base_name, parent.name);
        assert_eq!(
            image.base_digest,
            Some(base.manifest.digest.to_string()),
            "the parent's manifest"
        );
    }

    /// Records which layers were written and which reused.
    #[derive(Default)]
    struct Recorder(Vec<&'static str>);

    impl Progress for Recorder {
        fn on_event(&mut self, event: &Event<'_>) {
            match event {
                Event::LayerWritten { .. } => self.0.push("written"),
                Event::LayerReused { .. } => self.0.push("reused"),
                _ => {}
            }
        }
    }

    #[test]
    fn an_unchanged_layer_is_taken_from_the_cache_and_a_changed_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache::open(&dir.path().join("cache")).unwrap();
        let binary = dir.path().join("app");
        std::fs::write(&binary, b"version one").unwrap();
        let settle = || {
            let file = std::fs::File::options().write(true).open(&binary).unwrap();
            let then = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
            file.set_modified(then).unwrap();
            // Setting it moved the change time, which must settle too.
            std::thread::sleep(std::time::Duration::from_millis(60));
        };
        settle();
        let request = || {
            let mut contents = LayerContents::new();
            contents.add_path("/app", &binary).unwrap();
            ImageRequest {
                layers: vec![NewLayer {
                    contents,
                    remove: Vec::new(),
                    created_by: "app".into(),
                }],
                ..request()
            }
        };
        let build = || {
            let mut recorder = Recorder::default();
            let image = build_image(cache.store(), request(), Some(&cache), &mut recorder);
            (image.unwrap(), recorder.0)
        };
        let (first, events) = build();
        assert_eq!(events, ["written"]);
        let (again, events) = build();
        assert_eq!(events, ["reused"]);
        assert_eq!(again, first, "the same image, byte for byte");

        // The same size, new content: the stamp changes, and the layer is written anew.
        std::fs::write(&binary, b"version two").unwrap();
        let (changed, events) = build();
        assert_eq!(events, ["written"]);
        assert_ne!(changed.manifest.digest, first.manifest.digest);
        // Settled again, a later build takes it from the cache.
        settle();
        let (_, events) = build();
        assert_eq!(
            events,
            ["written"],
            "not stamped while unsettled: read once more"
        );
        let (last, events) = build();
        assert_eq!(events, ["reused"]);
        assert_eq!(last.layers, changed.layers);
    }

    #[test]
    fn scratch_with_nothing_staged_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut empty = request();
        empty.layers.clear();
        assert!(matches!(
            build_image(&store, empty, None, &mut NoProgress),
            Err(Error::NoLayers)
        ));
    }

    #[test]
    fn an_engine_gets_the_image_unpacked_before_a_byte_is_compressed() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&dir.path().join("store")).unwrap();
        let staged = dir.path().join("app");
        std::fs::write(&staged, vec![7u8; 300_000]).unwrap();
        let mut contents = LayerContents::new();
        contents.add_path("/app", &staged).unwrap();
        let layers = vec![NewLayer {
            contents,
            remove: Vec::new(),
            created_by: "bins".into(),
        }];
        let read = |descriptor: &Descriptor| -> ImageManifest {
            serde_json::from_slice(&store.read(descriptor).unwrap()).unwrap()
        };
        let mut seen = Vec::new();
        let keeping = ImageRequest {
            layers: layers.clone(),
            keep_tars: true,
            ..request()
        };
        let built = build_image_unpacked_first(&store, keeping, None, &mut NoProgress, &mut |m| {
            assert_eq!(read(&m.manifest).layers.len(), m.tars.len());
            let manifest = read(&m.manifest);
            // The tar is there; nothing compressed is yet.
            let blobs = std::fs::read_dir(store.root().join("blobs/sha256"))
                .unwrap()
                .count();
            seen.push((manifest, blobs));
        })
        .unwrap();
        let [(unpacked, blobs)] = &seen[..] else {
            panic!("told {} times", seen.len());
        };
        let [tar] = &unpacked.layers[..] else {
            panic!("{unpacked:?}")
        };
        assert_eq!(tar.media_type, media_type::OCI_LAYER_TAR);
        assert_eq!(tar.digest, built.layers[0].diff_id);
        assert_eq!(*blobs, 3, "the tar, the config and the unpacked manifest");
        assert_eq!(unpacked.config, built.config, "the same image ID");
        assert_ne!(
            built.layers[0].descriptor.media_type,
            media_type::OCI_LAYER_TAR
        );
        assert_eq!(built.kept_tars, [tar.digest]);

        // Not asked: never told.
        let plain = ImageRequest {
            layers: layers.clone(),
            ..request()
        };
        let mut told = 0;
        build_image_unpacked_first(&store, plain, None, &mut NoProgress, &mut |_| told += 1)
            .unwrap();
        assert_eq!(told, 0);

        // A file that changes between the tar and its compression fails the image; its tar
        // is left to whoever was handed it, who may still be reading it.
        std::fs::write(&staged, vec![8u8; 300_000]).unwrap();
        let changing = ImageRequest {
            layers,
            keep_tars: true,
            ..request()
        };
        let mut tar = None;
        let error = build_image_unpacked_first(&store, changing, None, &mut NoProgress, &mut |m| {
            tar = Some(m.tars.clone());
            std::fs::write(&staged, vec![9u8; 300_000]).unwrap();
        })
        .unwrap_err();
        assert!(matches!(error, Error::LayerChanged { .. }), "{error}");
        let [tar] = &tar.unwrap()[..] else { panic!() };
        assert!(store.contains(tar), "removed from under its receiver");
    }

    #[test]
    fn an_image_that_fails_keeps_no_tar() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&dir.path().join("store")).unwrap();
        let (mut first, mut second) = (LayerContents::new(), LayerContents::new());
        first
            .add_bytes("/first", b"kept, then dropped".to_vec(), 0o644)
            .unwrap();
        let gone = dir.path().join("gone");
        std::fs::write(&gone, "here when staged").unwrap();
        second.add_path("/second", &gone).unwrap();
        std::fs::remove_file(&gone).unwrap();
        let layer = |contents| NewLayer {
            contents,
            remove: Vec::new(),
            created_by: "test".into(),
        };
        let failing = ImageRequest {
            layers: vec![layer(first.clone()), layer(second)],
            keep_tars: true,
            ..request()
        };
        assert!(build_image(&store, failing, None, &mut NoProgress).is_err());
        let tars = |store: &BlobStore| {
            let blobs = std::fs::read_dir(store.root().join("blobs/sha256")).unwrap();
            let bytes = blobs.map(|blob| std::fs::read(blob.unwrap().path()).unwrap());
            bytes.filter(|b| b.get(257..262) == Some(b"ustar")).count()
        };
        assert_eq!(tars(&store), 0, "the first layer's tar stayed");
        // The same layer alone, kept: the check above can see one.
        let kept = ImageRequest {
            layers: vec![layer(first)],
            keep_tars: true,
            ..request()
        };
        let built = build_image(&store, kept, None, &mut NoProgress).unwrap();
        assert_eq!((tars(&store), built.kept_tars.len()), (1, 1));
    }
}
