//! The OCI image layout writer: `oci-layout`, `index.json` and `blobs/sha256/`.
//!
//! A layout is staged in a fresh directory beside its destination and moved into place only when
//! complete, so a failed build leaves whatever was there before, never half an image.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::index::ImageIndex;
use crate::output;
use crate::reference::Reference;
use crate::store::BlobStore;

const OCI_LAYOUT_FILE: &str = "oci-layout";
/// The `oci-layout` file of every layout and archive.
pub const OCI_LAYOUT_CONTENT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// An image ready to be written anywhere: a store holding everything `target` reaches, the
/// tags that name it, and the annotations of its `index.json`. Layouts, archives and pushes
/// are each written from one.
#[derive(Debug, Clone)]
pub struct Tagged {
    /// Holds every blob `target` reaches.
    pub store: BlobStore,
    /// What every tag points at: a manifest, or an index of several.
    pub target: Descriptor,
    /// The names written, e.g. `hello:1.0`; each is an entry of `index.json`.
    pub tags: Vec<Reference>,
    /// Annotations of `index.json` itself.
    pub annotations: BTreeMap<String, String>,
    /// Artifacts about the image or its platforms' manifests (SBOMs), as
    /// [`referrer::attach`](crate::referrer::attach) returns them: untagged entries of
    /// `index.json` after the tags.
    pub referrers: Vec<Descriptor>,
}

impl Tagged {
    /// The `index.json` of every layout and archive of this image: one entry per tag, then
    /// one per referrer.
    pub fn layout_index(&self) -> Result<Vec<u8>> {
        let mut index = ImageIndex::of_tags(&self.target, &self.tags, self.annotations.clone());
        index.manifests.extend(self.referrers.iter().cloned());
        serde_json::to_vec(&index).map_err(|source| Error::Json {
            what: "index.json",
            source,
        })
    }

    /// A layout of the image alone for a local engine, staged beside `destination` and dropped
    /// with the returned directory. Its blobs are symbolic links to the store's, except the
    /// layers `unpack` chooses (by diff_id and descriptor; the new ones, which the engine
    /// lacks), written there uncompressed: an engine stores layers unpacked, so it would only
    /// decompress them again. The config is the same, and so is the image ID (the config
    /// digest, over diff_ids); the manifest is the layout's own. For a tool that reads a layout
    /// (`skopeo copy oci:DIR:TAG`) and takes only the blobs it lacks, or a stream into `docker
    /// load` written from the image returned with it, whose store is that layout's.
    pub fn local_layout(
        &self,
        destination: &Path,
        unpack: impl Fn(&Digest, &Descriptor) -> bool,
    ) -> Result<(tempfile::TempDir, Tagged)> {
        let dir = output::staged_dir(destination)?;
        let local = BlobStore::open(dir.path())?;
        let blobs = dir.path().join("blobs").join("sha256");
        let image = self.without_referrers();
        let target = self.uncompressed_manifest(&local, unpack)?;
        for blob in image.blobs()? {
            let link = blobs.join(blob.digest.hex());
            if link.exists() {
                continue;
            }
            let path = self.store.blob_path(&blob.digest);
            // A tar is the file itself, where the filesystem allows: the build that kept it
            // may remove it from the store while the engine still reads this layout.
            let tar = blob.media_type == crate::media_type::OCI_LAYER_TAR
                && fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
            if !(tar && fs::hard_link(&path, &link).is_ok()) {
                std::os::unix::fs::symlink(&path, &link).map_err(Error::io("link", &link))?;
            }
        }
        write_file(
            &dir.path().join(OCI_LAYOUT_FILE),
            OCI_LAYOUT_CONTENT.as_bytes(),
        )?;
        let image = Tagged {
            target: target.unwrap_or(image.target.clone()),
            store: local,
            ..image
        };
        write_file(&dir.path().join("index.json"), &image.layout_index()?)?;
        Ok((dir, image))
    }

    /// The manifest with the layers `unpack` chooses uncompressed, each put into `local` under
    /// its diff_id, checked, and the manifest beside them; `None` for an index, or when no
    /// layer is chosen. A layer whose tar the store kept
    /// ([`crate::build_image_unpacked_first`]) is linked from there, else decompressed.
    fn uncompressed_manifest(
        &self,
        local: &BlobStore,
        unpack: impl Fn(&Digest, &Descriptor) -> bool,
    ) -> Result<Option<Descriptor>> {
        if !crate::media_type::is_manifest(&self.target.media_type) {
            return Ok(None);
        }
        let mut manifest: crate::manifest::ImageManifest = read_json(&self.store, &self.target)?;
        let config: crate::config::ImageConfig = read_json(&self.store, &manifest.config)?;
        let mut unpacked = false;
        for (layer, diff_id) in manifest.layers.iter_mut().zip(&config.rootfs.diff_ids) {
            let media_type = crate::media_type::oci_layer(&layer.media_type);
            let compressed = media_type.is_some_and(|t| t != crate::media_type::OCI_LAYER_TAR);
            if !compressed || !unpack(diff_id, layer) {
                continue;
            }
            unpacked = true;
            let tar = match self.kept_tar(local, diff_id) {
                Some(tar) => tar,
                None => self.decompressed_tar(local, layer, diff_id)?,
            };
            *layer = Descriptor {
                annotations: Default::default(),
                ..tar
            };
        }
        if !unpacked {
            return Ok(None);
        }
        let written = local.put_json(&self.target.media_type, "manifest", &manifest)?;
        Ok(Some(Descriptor {
            digest: written.digest,
            size: written.size,
            ..self.target.clone()
        }))
    }

    /// The layer `diff_id`'s tar, kept in the store when it was written, linked into `local`
    /// and checked; `None` if the store has no such tar, or one that does not check.
    fn kept_tar(&self, local: &BlobStore, diff_id: &Digest) -> Option<Descriptor> {
        let path = self.store.blob_path(diff_id);
        let size = fs::symlink_metadata(path)
            .ok()
            .filter(|m| m.is_file())?
            .len();
        let tar = Descriptor::new(crate::media_type::OCI_LAYER_TAR, *diff_id, size);
        local.import(&self.store, &tar, false).ok()?;
        Some(tar)
    }

    /// `layer` decompressed into `local`, checked against its `diff_id`.
    fn decompressed_tar(
        &self,
        local: &BlobStore,
        layer: &Descriptor,
        diff_id: &Digest,
    ) -> Result<Descriptor> {
        let failed = || Error::io("decompress into", local.blob_path(diff_id));
        let mut out = local.writer()?;
        let blob = self.store.reader(layer)?;
        let mut decoder = crate::compress::Decoder::for_media_type(&layer.media_type, blob)
            .expect("a layer type")
            .map_err(failed())?;
        std::io::copy(&mut decoder, &mut out).map_err(failed())?;
        let tar = Descriptor::new(crate::media_type::OCI_LAYER_TAR, *diff_id, 0);
        match out.commit()? {
            (digest, size) if digest == *diff_id => Ok(Descriptor { size, ..tar }),
            (actual, actual_size) => Err(Error::BlobMismatch {
                digest: *diff_id,
                expected_size: actual_size,
                actual,
                actual_size,
            }),
        }
    }

    /// The image alone, without its referrers: what a Docker archive, which has no place for
    /// them, holds.
    pub fn without_referrers(&self) -> Tagged {
        Tagged {
            referrers: Vec::new(),
            ..self.clone()
        }
    }

    /// Every blob the image and its referrers reach (configs, layers, manifests, indexes),
    /// each checked to be in the store.
    pub fn blobs(&self) -> Result<Vec<Descriptor>> {
        let mut graph = crate::graph::walk(&self.store, &self.target)?;
        let mut seen: std::collections::BTreeSet<_> =
            graph.blobs.iter().map(|b| b.digest).collect();
        for referrer in &self.referrers {
            let reached = crate::graph::walk(&self.store, referrer)?;
            graph
                .blobs
                .extend(reached.blobs.into_iter().filter(|b| seen.insert(b.digest)));
            graph.manifests.extend(reached.manifests);
        }
        let blobs: Vec<Descriptor> = graph.blobs.into_iter().chain(graph.manifests).collect();
        if let Some(missing) = blobs.iter().find(|b| !self.store.contains(&b.digest)) {
            return Err(Error::MissingBlob(missing.digest));
        }
        Ok(blobs)
    }
}

/// A layout being written; dropped without [`finish`](StagedLayout::finish), it vanishes.
#[derive(Debug)]
pub struct StagedLayout {
    staging: tempfile::TempDir,
    store: BlobStore,
    destination: PathBuf,
}

impl StagedLayout {
    /// Starts a layout that will replace `destination` once finished (see
    /// [`SealedLayout::persist`] for what may be replaced).
    pub fn create(destination: &Path) -> Result<StagedLayout> {
        let staging = output::staged_dir(destination)?;
        let store = BlobStore::open(staging.path())?;
        Ok(StagedLayout {
            staging,
            store,
            destination: destination.to_owned(),
        })
    }

    /// The layout's own store, for images written straight into it.
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// Writes `index.json` with one entry per tag, each pointing at `target` (a manifest or an
    /// index), and `annotations` on the index itself; then moves the layout into place.
    pub fn finish(
        self,
        target: &Descriptor,
        tags: &[Reference],
        annotations: BTreeMap<String, String>,
    ) -> Result<PathBuf> {
        self.seal(target, tags, annotations)?.persist()
    }

    /// Completes the layout from blobs written into its own store: only those `target` reaches
    /// are kept, and `index.json` and `oci-layout` are written. [`SealedLayout::persist`]
    /// moves it into place.
    pub fn seal(
        self,
        target: &Descriptor,
        tags: &[Reference],
        annotations: BTreeMap<String, String>,
    ) -> Result<SealedLayout> {
        let image = Tagged {
            store: self.store.clone(),
            target: target.clone(),
            tags: tags.to_vec(),
            annotations,
            referrers: Vec::new(),
        };
        let keep = image.blobs()?.into_iter().map(|b| b.digest).collect();
        self.store.retain(&keep)?;
        self.write_index(image)
    }

    /// Completes the layout with `image`, whose blobs are in another store (a build cache):
    /// each is linked in where the filesystem allows, else copied, and none is written twice.
    pub fn seal_from(self, image: &Tagged) -> Result<SealedLayout> {
        for blob in image.blobs()? {
            self.store.import(&image.store, &blob, true)?;
        }
        let store = self.store.clone();
        self.write_index(Tagged {
            store,
            ..image.clone()
        })
    }

    fn write_index(self, image: Tagged) -> Result<SealedLayout> {
        let root = self.staging.path();
        write_file(&root.join("index.json"), &image.layout_index()?)?;
        write_file(&root.join(OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT.as_bytes())?;
        Ok(SealedLayout {
            staging: self.staging,
            destination: self.destination,
            image,
        })
    }
}

/// A complete layout, still in its staging directory; dropped without
/// [`persist`](SealedLayout::persist), it vanishes.
#[derive(Debug)]
pub struct SealedLayout {
    staging: tempfile::TempDir,
    destination: PathBuf,
    /// The image, its store the layout's own.
    image: Tagged,
}

impl SealedLayout {
    /// The layout's directory (`oci-layout`, `index.json`, `blobs/`).
    pub fn root(&self) -> &Path {
        self.staging.path()
    }

    /// The image the layout holds, from the layout's own blobs.
    pub fn image(&self) -> &Tagged {
        &self.image
    }

    /// The layout's own blob store, under its `blobs/`.
    pub fn store(&self) -> &BlobStore {
        &self.image.store
    }

    /// Where [`persist`](SealedLayout::persist) will put it.
    pub fn destination(&self) -> &Path {
        &self.destination
    }

    /// Moves the layout to its destination, replacing an older layout of the same image there;
    /// anything else at the destination is refused, untouched
    /// ([`output::check_destination`]). The layout is synced first, so a crash leaves the old
    /// one or the new one, whole.
    pub fn persist(self) -> Result<PathBuf> {
        self.persist_with(false)
    }

    /// As [`persist`](SealedLayout::persist), but the layout at the destination is known to
    /// the caller as one an earlier build of this image wrote
    /// ([`crate::BuildCache::wrote_layout`]), so it is replaced whatever images it names.
    pub fn persist_over_earlier_build(self) -> Result<PathBuf> {
        self.persist_with(true)
    }

    fn persist_with(self, earlier_build: bool) -> Result<PathBuf> {
        output::check_destination(&self.destination, &self.image.tags, earlier_build)?;
        output::sync_tree(self.staging.path())?;
        output::replace_dir(self.staging, &self.destination)?;
        Ok(self.destination)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    store: &BlobStore,
    descriptor: &Descriptor,
) -> Result<T> {
    serde_json::from_slice(&store.read(descriptor)?).map_err(|source| Error::MalformedJson {
        what: format!("{} {}", descriptor.media_type, descriptor.digest),
        source,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(Error::io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::{CONTAINERD_IMAGE_NAME, REF_NAME};
    use crate::media_type;

    /// The image `app:1.0` of the one layer `layer` (of tar `diff_id`) in `store`.
    fn image_of(store: &BlobStore, layer: Descriptor, diff_id: Digest) -> Tagged {
        let mut config =
            crate::config::ImageConfig::scratch(&crate::Platform::new("linux", "amd64", None));
        config.rootfs.diff_ids.push(diff_id);
        let config = store
            .put_json(media_type::OCI_CONFIG, "config", &config)
            .unwrap();
        let manifest = crate::manifest::ImageManifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.into()),
            artifact_type: None,
            config,
            layers: vec![layer],
            annotations: BTreeMap::new(),
            subject: None,
        };
        Tagged {
            store: store.clone(),
            target: store
                .put_json(media_type::OCI_MANIFEST, "manifest", &manifest)
                .unwrap(),
            tags: vec!["app:1.0".parse().unwrap()],
            annotations: BTreeMap::new(),
            referrers: Vec::new(),
        }
    }

    /// An image of one gzip layer in `store`, its tar kept there too if `keep`; and its diff_id.
    fn one_layer_image(store: &BlobStore, keep: bool) -> (Tagged, Digest) {
        use crate::layer::{write_layer, write_tar_blob, Compression, LayerContents};
        let mut contents = LayerContents::new();
        let bytes: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        contents.add_bytes("/app", bytes, 0o755).unwrap();
        let mtime = crate::timestamp::Timestamp::DEFAULT;
        let layer = write_layer(store, &contents, Compression::Gzip, mtime).unwrap();
        if keep {
            let (tar, kept) = write_tar_blob(store, &contents, mtime).unwrap();
            assert_eq!((tar.digest, kept), (layer.diff_id, true));
        }
        let image = image_of(store, layer.descriptor, layer.diff_id);
        (image, layer.diff_id)
    }

    #[test]
    fn a_local_layout_links_a_kept_tar_and_decompresses_a_damaged_or_missing_one() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let inode = |path: &Path| fs::metadata(path).unwrap().ino();
        for (keep, damage) in [(true, false), (true, true), (false, false)] {
            let store = BlobStore::open(&dir.path().join(format!("{keep}-{damage}"))).unwrap();
            let (image, diff_id) = one_layer_image(&store, keep);
            let kept = store.blob_path(&diff_id);
            assert_eq!(kept.is_file(), keep, "the tar is kept only when asked");
            if damage {
                let mut bytes = fs::read(&kept).unwrap();
                bytes[1000] ^= 1;
                fs::remove_file(&kept).unwrap();
                fs::write(&kept, bytes).unwrap();
            }
            let (local, _) = image
                .local_layout(&dir.path().join("out"), |_, _| true)
                .unwrap();
            let tar = local.path().join("blobs/sha256").join(diff_id.hex());
            assert_eq!(Digest::of(&fs::read(&tar).unwrap()), diff_id);
            let same_file = kept.exists() && inode(&tar) == inode(&kept);
            assert_eq!(same_file, keep && !damage, "kept {keep}, damaged {damage}");
        }
    }

    #[test]
    fn a_local_layout_holds_its_tars_itself() {
        use crate::layer::{write_tar_blob, LayerContents};
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&dir.path().join("store")).unwrap();
        let mut contents = LayerContents::new();
        contents
            .add_bytes("/app", b"binary".to_vec(), 0o755)
            .unwrap();
        let (tar, _) = write_tar_blob(&store, &contents, crate::Timestamp::DEFAULT).unwrap();
        let image = image_of(&store, tar.clone(), tar.digest);
        let (local, _) = image
            .local_layout(&dir.path().join("out"), |_, _| true)
            .unwrap();
        // The build that kept the tar drops it while the engine reads: the layout still has it.
        fs::remove_file(store.blob_path(&tar.digest)).unwrap();
        let linked = local.path().join("blobs/sha256").join(tar.digest.hex());
        assert!(fs::symlink_metadata(&linked).unwrap().is_file());
        assert_eq!(Digest::of(&fs::read(&linked).unwrap()), tar.digest);
    }

    fn finish_with_blob(destination: &Path, content: &[u8]) -> Result<PathBuf> {
        let staged = StagedLayout::create(destination)?;
        let descriptor = staged.store().put(media_type::OCI_CONFIG, content)?;
        let tags = ["app:1.0".parse().unwrap(), "app:latest".parse().unwrap()];
        staged.finish(&descriptor, &tags, BTreeMap::new())
    }

    #[test]
    fn writes_a_layout_with_one_entry_per_tag() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("app");
        finish_with_blob(&out, b"{}").unwrap();
        assert_eq!(
            fs::read_to_string(out.join("oci-layout")).unwrap(),
            OCI_LAYOUT_CONTENT
        );
        let index: ImageIndex =
            serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
        let names: Vec<(&str, &str)> = index
            .manifests
            .iter()
            .map(|m| {
                (
                    m.annotations[REF_NAME].as_str(),
                    m.annotations[CONTAINERD_IMAGE_NAME].as_str(),
                )
            })
            .collect();
        assert_eq!(names, [("1.0", "app:1.0"), ("latest", "app:latest")]);
        let entries: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            entries,
            ["app"],
            "no staging directory is left beside the output"
        );
    }

    #[test]
    fn replaces_an_old_layout_and_refuses_other_directories() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("app");
        finish_with_blob(&out, b"first").unwrap();
        finish_with_blob(&out, b"second").unwrap();
        let blobs: Vec<_> = fs::read_dir(out.join("blobs/sha256")).unwrap().collect();
        assert_eq!(blobs.len(), 1, "the old layout's blobs are gone");

        let precious = dir.path().join("home");
        fs::create_dir(&precious).unwrap();
        fs::write(precious.join("notes.txt"), "keep me").unwrap();
        let error = finish_with_blob(&precious, b"x").unwrap_err().to_string();
        assert!(error.contains("not an OCI image layout"), "{error}");
        let beside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(beside.len(), 2, "no staging left: {beside:?}");
        assert_eq!(
            fs::read_to_string(precious.join("notes.txt")).unwrap(),
            "keep me"
        );
    }

    #[test]
    fn a_failed_swap_puts_the_old_layout_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("app");
        finish_with_blob(&out, b"first").unwrap();
        let before = fs::read(out.join("index.json")).unwrap();
        let vanished = tempfile::tempdir_in(dir.path()).unwrap();
        fs::remove_dir(vanished.path()).unwrap();
        assert!(output::replace_dir(vanished, &out).is_err());
        assert_eq!(fs::read(out.join("index.json")).unwrap(), before);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "nothing is left beside the output"
        );
    }

    #[test]
    fn an_unfinished_layout_leaves_the_old_one_alone() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("app");
        finish_with_blob(&out, b"first").unwrap();
        let before = fs::read(out.join("index.json")).unwrap();
        let staged = StagedLayout::create(&out).unwrap();
        staged
            .store()
            .put(media_type::OCI_MANIFEST, b"abandoned")
            .unwrap();
        drop(staged);
        assert_eq!(fs::read(out.join("index.json")).unwrap(), before);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
