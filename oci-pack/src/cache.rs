//! What one build keeps for the next, in a directory of its own (`cargo oci` uses
//! `<target-dir>/oci/.cache/`), so that nothing is done twice:
//!
//! - `blobs/sha256/`: a [`BlobStore`] of every blob a build fetched or made. Outputs are views of
//!   it: a layout links its blobs, an archive streams them.
//! - `changes/<diff_id>`: each parent layer's [`LayerChanges`], so a parent's layers are
//!   decompressed once, ever.
//! - `layers/<key>`: the blob a layer's tar was compressed to, by its diff_id and the
//!   compression settings, so an unchanged layer is not compressed again; and
//!   `stamps/<stamp>`: the diff_id of a layer by its stamp
//!   ([`crate::layer::LayerContents::stamp`]), so an unchanged layer is not even read again.
//! - `outputs/<path>`: what each archive written was made of, so one that would be written
//!   again, byte for byte, is left as it is.
//! - `verified/<device>-<inode>`: which file was found to hash to which digest, and its size and
//!   modification time then; while they stay the same, the file is not hashed again. As git
//!   does for its index, a file that has not [`settled`] when it is hashed is not recorded: a
//!   change within the same clock tick would not show in its modification time.
//!
//! Nothing here is trusted blindly: every entry carries the sha256 of its contents, and one that
//! does not match, or does not parse, is dropped (with a warning) and rebuilt.
//!
//! The cache does not grow without end: what no build has used for [`UNUSED_FOR`] is forgotten
//! ([`BuildCache::sweep`]). Outputs hold their own links to blobs, so none loses anything; a
//! build that wants a forgotten layer again compresses it again. Builds share the cache under a
//! shared lock on `lock`; a sweep runs only when no other build holds it.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::compress::Compression;
use crate::descriptor::Descriptor;
use crate::digest::{Digest, DigestReader, DigestWriter};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::store::{settled, BlobStore, IO_BUFFER};
use crate::tree::{FileTree, LayerChanges};

/// How long an entry nobody used is kept, and how often the cache is swept of them.
pub const UNUSED_FOR: std::time::Duration = std::time::Duration::from_secs(14 * 24 * 3600);
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A build cache in a directory; clones share what this process learnt.
#[derive(Debug, Clone)]
pub struct BuildCache {
    root: PathBuf,
    store: BlobStore,
    /// Held shared while this build runs, so that no other build sweeps the cache under it.
    lock: Arc<fs::File>,
    /// Files hashed by this process: (device, inode) → what they were found to be.
    verified: Arc<Mutex<HashMap<(u64, u64), Stamp>>>,
    warnings: Arc<Mutex<Vec<String>>>,
}

/// What a file was when it was found to hash to `digest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    digest: Digest,
    size: u64,
    modified: (i64, i64),
}

impl Stamp {
    fn of(metadata: &fs::Metadata, digest: Digest) -> Stamp {
        Stamp {
            digest,
            size: metadata.len(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
        }
    }
}

impl BuildCache {
    /// Opens (and creates, if needed) the cache in `root`.
    pub fn open(root: &Path) -> Result<BuildCache> {
        let store = BlobStore::open(root)?;
        let lock_path = root.join("lock");
        let lock = fs::File::options()
            .custom_flags(crate::output::NO_FOLLOW)
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io("open", &lock_path))?;
        lock.lock_shared().map_err(Error::io("lock", &lock_path))?;
        Ok(BuildCache {
            root: root.to_owned(),
            store,
            lock: Arc::new(lock),
            verified: Arc::default(),
            warnings: Arc::default(),
        })
    }

    /// The cache's blob store.
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// The directory of the cache.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What went wrong with cache entries since the last call (each was dropped and rebuilt).
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.warnings.lock().expect("not poisoned"))
    }

    fn warn(&self, warning: String) {
        self.warnings.lock().expect("not poisoned").push(warning);
    }

    /// Whether the blob `descriptor` of `store` is known to hash to its digest: it was hashed
    /// (by this process or an earlier one) and its file has not changed since. A symbolic link
    /// is never trusted.
    pub fn is_verified(&self, store: &BlobStore, descriptor: &Descriptor) -> bool {
        let path = store.blob_path(&descriptor.digest);
        let Ok(metadata) = fs::symlink_metadata(&path) else {
            return false;
        };
        if !metadata.is_file() || metadata.len() != descriptor.size {
            return false;
        }
        let key = (metadata.dev(), metadata.ino());
        let now = Stamp::of(&metadata, descriptor.digest);
        if self.verified.lock().expect("not poisoned").get(&key) == Some(&now) {
            return true;
        }
        let recorded = self.read_entry(&self.stamp_path(key)).and_then(|bytes| {
            let text = String::from_utf8(bytes).ok()?;
            let mut fields = text.split(' ');
            let stamp = Stamp {
                digest: fields.next()?.parse().ok()?,
                size: fields.next()?.parse().ok()?,
                modified: (fields.next()?.parse().ok()?, fields.next()?.parse().ok()?),
            };
            fields.next().is_none().then_some(stamp)
        });
        if recorded == Some(now) {
            self.verified.lock().expect("not poisoned").insert(key, now);
            return true;
        }
        false
    }

    /// Checks the blob `descriptor` of `store` against its digest, unless it is known to match
    /// ([`BuildCache::is_verified`]); a blob that matches is remembered.
    pub fn verify(&self, store: &BlobStore, descriptor: &Descriptor) -> Result<()> {
        if self.is_verified(store, descriptor) {
            return Ok(());
        }
        let mut reader = store.reader(descriptor)?;
        io::copy(&mut reader, &mut io::sink()).map_err(|e| reader.error(e))?;
        self.remember(store, descriptor);
        Ok(())
    }

    /// Records that the blob `descriptor` of `store` was just found to hash to its digest: for
    /// this process, and for later ones once the file has settled.
    pub fn remember(&self, store: &BlobStore, descriptor: &Descriptor) {
        let path = store.blob_path(&descriptor.digest);
        let Ok(metadata) = fs::symlink_metadata(&path) else {
            return;
        };
        if !metadata.is_file() {
            return;
        }
        let key = (metadata.dev(), metadata.ino());
        let stamp = Stamp::of(&metadata, descriptor.digest);
        self.verified
            .lock()
            .expect("not poisoned")
            .insert(key, stamp);
        if !settled(&metadata) {
            return;
        }
        let text = format!(
            "{} {} {} {}",
            stamp.digest, stamp.size, stamp.modified.0, stamp.modified.1
        );
        self.write_entry(&self.stamp_path(key), text.as_bytes());
    }

    /// Makes the blob `descriptor` of `source` part of the cache's store: one already there is
    /// kept only while it is verified (a damaged one is replaced, with a warning); one brought
    /// in is checked unless the caller has `verified` its source.
    pub fn adopt(&self, source: &BlobStore, descriptor: &Descriptor, verified: bool) -> Result<()> {
        let here = self.store.blob_path(&descriptor.digest);
        if fs::symlink_metadata(&here).is_ok() {
            if self.verify(&self.store, descriptor).is_ok() {
                return Ok(());
            }
            self.warn(format!(
                "dropped the cached blob {}: it does not match its digest",
                descriptor.digest
            ));
            fs::remove_file(&here).map_err(Error::io("remove", &here))?;
        }
        self.store.import(source, descriptor, verified)?;
        if verified {
            self.remember(&self.store, descriptor);
        }
        Ok(())
    }

    /// Forgets what no build has used for `unused_for`: compressed layers (their records and
    /// blobs), stamps, parent layers' changes and hashing records. Runs at most once a day, and
    /// only when no other build holds the cache; returns how many entries went.
    pub fn sweep(&self, unused_for: std::time::Duration) -> Result<usize> {
        let marker = self.root.join("swept");
        let due = fs::metadata(&marker)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|swept| swept.elapsed().ok())
            .is_none_or(|since| since >= SWEEP_EVERY);
        // Our shared lock becomes exclusive only if no other build holds one.
        if !due || self.lock.try_lock().is_err() {
            return Ok(0);
        }
        let old = |path: &Path| {
            fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age >= unused_for)
        };
        let mut swept = 0;
        for dir in ["layers", "stamps", "changes", "verified", "outputs"] {
            for entry in fs::read_dir(self.root.join(dir)).into_iter().flatten() {
                let Ok(entry) = entry else { continue };
                let path = entry.path();
                if !old(&path) {
                    continue;
                }
                if dir == "layers" {
                    let blob = self
                        .read_entry(&path)
                        .and_then(|b| serde_json::from_slice::<Descriptor>(&b).ok());
                    if let Some(blob) = blob {
                        let _ = fs::remove_file(self.store.blob_path(&blob.digest));
                    }
                }
                if fs::remove_file(&path).is_ok() {
                    swept += 1;
                }
            }
        }
        // A new file renamed over it: never written through a link planted at its name.
        let _ = tempfile::NamedTempFile::new_in(&self.root)
            .and_then(|file| file.persist(&marker).map_err(|e| e.error));
        self.lock
            .lock_shared()
            .map_err(Error::io("lock", self.root.join("lock")))?;
        Ok(swept)
    }

    fn stamp_path(&self, (device, inode): (u64, u64)) -> PathBuf {
        self.root
            .join("verified")
            .join(format!("{device:x}-{inode:x}"))
    }

    /// Applies the layer `layer` of `store`, whose tar should be `diff_id`, to `tree`: from the
    /// cache when an intact entry for `diff_id` says it was read from this very blob and the
    /// blob is verified, streamed without holding it in memory; else read from the blob, every
    /// check done again, kept, and applied.
    pub fn apply_layer(
        &self,
        tree: &mut FileTree,
        store: &BlobStore,
        layer: &Descriptor,
        diff_id: &Digest,
    ) -> Result<()> {
        let path = self.root.join("changes").join(diff_id.hex());
        if let Some((from, tar, body)) = self.check_changes(&path) {
            // Another blob with the same tar (compressed otherwise) is read on its own.
            if from == layer.digest && tar == *diff_id {
                self.verify(store, layer)?;
                let file = fs::File::open(&path).map_err(Error::io("read", &path))?;
                let reader = io::BufReader::with_capacity(IO_BUFFER, file.take(body));
                return tree.apply_encoded(reader);
            }
        }
        match self.entry_writer(&path) {
            Some(mut entry) => {
                tree.read_layer(store, layer, diff_id, &mut entry)?;
                self.commit_entry(entry);
            }
            None => tree.read_layer(store, layer, diff_id, &mut io::sink())?,
        }
        self.remember(store, layer);
        Ok(())
    }

    /// Checks a `changes` entry as a stream: its sha256 and its shape. Returns the layer and
    /// diff_id it is for and the length of its body; a damaged entry is removed, with a warning.
    fn check_changes(&self, path: &Path) -> Option<(Digest, Digest, u64)> {
        let file = fs::File::open(path).ok()?;
        let checked = (|| {
            let body = file.metadata().ok()?.len().checked_sub(32)?;
            let mut reader =
                DigestReader::new(io::BufReader::with_capacity(IO_BUFFER, (&file).take(body)));
            let (layer, diff_id) = LayerChanges::check_encoded(&mut reader)?;
            let (sum, _) = reader.finish();
            let mut recorded = [0u8; 32];
            (&file).read_exact(&mut recorded).ok()?;
            (sum.as_bytes() == &recorded).then_some((layer, diff_id, body))
        })();
        if checked.is_none() {
            // What an earlier version wrote is out of date, not damaged: dropped quietly.
            let mut head = [0u8; 64];
            let read = fs::File::open(path).and_then(|mut f| f.read(&mut head));
            if !LayerChanges::is_earlier_encoding(&head[..read.unwrap_or(0)]) {
                self.warn(format!(
                    "dropped the damaged cache entry `{}`",
                    path.display()
                ));
            }
            let _ = fs::remove_file(path);
        }
        checked
    }

    /// A blob of this cache's store that an earlier build compressed the tar `diff_id` to,
    /// with these settings, and that still hashes to its digest.
    pub fn reusable_layer(&self, diff_id: &Digest, compression: Compression) -> Option<Layer> {
        let path = self.layer_record(diff_id, compression);
        let bytes = self.read_entry(&path)?;
        let descriptor: Option<Descriptor> = serde_json::from_slice(&bytes).ok();
        let Some(descriptor) = descriptor.filter(|d| d.media_type == compression.media_type())
        else {
            self.warn(format!(
                "dropped the cache entry `{}`: it does not parse",
                path.display()
            ));
            let _ = fs::remove_file(&path);
            return None;
        };
        match self.verify(&self.store, &descriptor) {
            Ok(()) => Some(Layer {
                descriptor,
                diff_id: *diff_id,
            }),
            Err(Error::MissingBlob(_)) => None,
            Err(error) => {
                self.warn(format!(
                    "dropped the cached layer {}: {error}; compressing it again",
                    descriptor.digest
                ));
                let _ = fs::remove_file(self.store.blob_path(&descriptor.digest));
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Records that `layer` (in this cache's store) is the tar `layer.diff_id` compressed with
    /// `compression`.
    pub fn record_layer(&self, layer: &Layer, compression: Compression) {
        let bytes = serde_json::to_vec(&layer.descriptor).expect("a descriptor serializes");
        self.write_entry(&self.layer_record(&layer.diff_id, compression), &bytes);
    }

    /// Whether the file at `path` is still the one written for `key` (the digest of everything
    /// its bytes depend on): same inode, size and modification time as when it was recorded.
    pub fn output_is_fresh(&self, path: &Path, key: &Digest) -> bool {
        let Ok(metadata) = fs::symlink_metadata(path) else {
            return false;
        };
        metadata.is_file()
            && self.read_entry(&self.output_record(path))
                == Some(output_stamp(&metadata, key).into_bytes())
    }

    /// Records that the file at `path` was just written for `key`.
    pub fn record_output(&self, path: &Path, key: &Digest) {
        if let Ok(metadata) = fs::symlink_metadata(path) {
            let stamp = output_stamp(&metadata, key);
            self.write_entry(&self.output_record(path), stamp.as_bytes());
        }
    }

    fn output_record(&self, path: &Path) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let name = Digest::of(path.as_os_str().as_bytes());
        self.root.join("outputs").join(name.hex())
    }

    /// The layer made of `contents` by an earlier build, found by its stamp without reading
    /// it: the tar the stamp was recorded for, compressed with these settings, still intact.
    pub fn layer_by_stamp(&self, stamp: &Digest, compression: Compression) -> Option<Layer> {
        let bytes = self.read_entry(&self.root.join("stamps").join(stamp.hex()))?;
        let diff_id: Digest = std::str::from_utf8(&bytes).ok()?.parse().ok()?;
        self.reusable_layer(&diff_id, compression)
    }

    /// Records that the layer contents stamped `stamp` make the tar `diff_id`.
    pub fn record_stamp(&self, stamp: &Digest, diff_id: &Digest) {
        let path = self.root.join("stamps").join(stamp.hex());
        self.write_entry(&path, diff_id.to_string().as_bytes());
    }

    fn layer_record(&self, diff_id: &Digest, compression: Compression) -> PathBuf {
        let key = Digest::of(format!("{diff_id} {}", compression.settings()).as_bytes());
        self.root.join("layers").join(key.hex())
    }

    /// An entry's contents, if the file is there, not too large, and its trailing sha256
    /// matches; a damaged entry is removed with a warning.
    fn read_entry(&self, path: &Path) -> Option<Vec<u8>> {
        /// Entries are small; a parent layer of a million files encodes to tens of MB.
        const MAX_ENTRY_BYTES: u64 = 1 << 30;
        let file = fs::File::open(path).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_ENTRY_BYTES).read_to_end(&mut bytes).ok()?;
        let intact = bytes.len() >= 32 && {
            let (body, sum) = bytes.split_at(bytes.len() - 32);
            Digest::of(body).as_bytes() == sum
        };
        if !intact {
            self.warn(format!(
                "dropped the damaged cache entry `{}`",
                path.display()
            ));
            let _ = fs::remove_file(path);
            return None;
        }
        bytes.truncate(bytes.len() - 32);
        Some(bytes)
    }

    /// Writes an entry with its sha256 after it, atomically; a cache that cannot be written to
    /// only makes the next build slower, so failures are not errors.
    fn write_entry(&self, path: &Path, body: &[u8]) {
        self.write_entry_with(path, |out| out.write_all(body));
    }

    /// The same, the body written by `body`.
    fn write_entry_with(&self, path: &Path, body: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
        if let Some(mut entry) = self.entry_writer(path) {
            match body(&mut entry) {
                Ok(()) => self.commit_entry(entry),
                Err(error) => self.warn(format!(
                    "could not write the cache entry `{}`: {error}",
                    path.display()
                )),
            }
        }
    }

    /// A new entry at `path`, written beside it and renamed into place by
    /// [`BuildCache::commit_entry`]; `None` (with a warning) when the cache cannot be written.
    fn entry_writer(&self, path: &Path) -> Option<EntryWriter> {
        let dir = path.parent().expect("entries are in a directory");
        let file = fs::create_dir_all(dir).and_then(|()| tempfile::NamedTempFile::new_in(dir));
        match file {
            Ok(file) => Some(EntryWriter {
                path: path.to_owned(),
                hashed: DigestWriter::new(io::BufWriter::with_capacity(IO_BUFFER, file)),
            }),
            Err(error) => {
                self.warn(format!(
                    "could not write the cache entry `{}`: {error}",
                    path.display()
                ));
                None
            }
        }
    }

    /// Ends an entry with the sha256 of its body and moves it into place.
    fn commit_entry(&self, entry: EntryWriter) {
        let path = entry.path.clone();
        let commit = || -> io::Result<()> {
            let (sum, _, mut buffered) = entry.hashed.finish();
            buffered.write_all(sum.as_bytes())?;
            let file = buffered.into_inner().map_err(|e| e.into_error())?;
            file.persist(&path)?;
            Ok(())
        };
        if let Err(error) = commit() {
            self.warn(format!(
                "could not write the cache entry `{}`: {error}",
                path.display()
            ));
        }
    }
}

/// An entry being written: its body hashed on the way to a file beside its place.
struct EntryWriter {
    path: PathBuf,
    hashed: DigestWriter<io::BufWriter<tempfile::NamedTempFile>>,
}

impl Write for EntryWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hashed.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.hashed.flush()
    }
}

fn output_stamp(metadata: &fs::Metadata, key: &Digest) -> String {
    format!(
        "{key} {} {} {} {} {}",
        metadata.dev(),
        metadata.ino(),
        metadata.len(),
        metadata.mtime(),
        metadata.mtime_nsec()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type;
    use crate::testing::{gzip_layer, Raw};

    fn cache() -> (tempfile::TempDir, BuildCache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache::open(dir.path()).unwrap();
        (dir, cache)
    }

    #[test]
    fn a_layer_is_read_once_and_a_damaged_entry_is_read_again() {
        let (_dir, cache) = cache();
        let parent = tempfile::tempdir().unwrap();
        let store = BlobStore::open(parent.path()).unwrap();
        let paths = |tree: &FileTree| -> Vec<String> {
            tree.iter().map(|(p, _)| p.display().to_string()).collect()
        };
        let apply = |layer: &Descriptor, diff_id: &Digest| {
            let mut tree = FileTree::default();
            cache
                .apply_layer(&mut tree, &store, layer, diff_id)
                .map(|()| tree)
        };
        let (layer, diff_id) = gzip_layer(&store, &[Raw::File("etc/motd", b"hi", 0o644)]);
        age(&store.blob_path(&layer.digest), 10);
        let first = apply(&layer, &diff_id).unwrap();
        assert!(BuildCache::open(cache.root())
            .unwrap()
            .is_verified(&store, &layer));

        // The blob is no longer needed to know the layer: a cached read does not open it...
        let entry = cache.root().join("changes").join(diff_id.hex());
        assert!(entry.is_file());
        assert_eq!(paths(&apply(&layer, &diff_id).unwrap()), paths(&first));

        // ...but a blob that changed is read again, and refused.
        fs::write(store.blob_path(&layer.digest), b"tampered").unwrap();
        assert!(!cache.is_verified(&store, &layer));
        assert!(apply(&layer, &diff_id).is_err());

        // A damaged entry is dropped with a warning and rebuilt from a good blob.
        let (layer, diff_id) = gzip_layer(&store, &[Raw::File("etc/issue", b"x", 0o644)]);
        apply(&layer, &diff_id).unwrap();
        let entry = cache.root().join("changes").join(diff_id.hex());
        let mut bytes = fs::read(&entry).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        fs::write(&entry, &bytes).unwrap();
        cache.take_warnings();
        assert_eq!(paths(&apply(&layer, &diff_id).unwrap()), ["etc/issue"]);
        let warnings = cache.take_warnings();
        assert!(
            warnings[0].contains("dropped the damaged cache entry"),
            "{warnings:?}"
        );
        assert!(cache.check_changes(&entry).is_some(), "rebuilt");

        // An entry an earlier version wrote is rebuilt without a word.
        fs::write(&entry, b"cargo-oci layer changes 3\nwhat it held").unwrap();
        assert_eq!(paths(&apply(&layer, &diff_id).unwrap()), ["etc/issue"]);
        assert_eq!(cache.take_warnings(), Vec::<String>::new());
        assert!(cache.check_changes(&entry).is_some(), "rebuilt");
    }

    /// Sets a file's modification time `seconds` into the past.
    fn age(path: &Path, seconds: u64) {
        let file = fs::File::options().write(true).open(path).unwrap();
        let then = std::time::SystemTime::now() - std::time::Duration::from_secs(seconds);
        file.set_modified(then).unwrap();
    }

    #[test]
    fn a_verified_file_is_not_trusted_once_it_changes_or_is_a_link() {
        let (_dir, cache) = cache();
        let blob = cache
            .store()
            .put(media_type::OCI_LAYER_TAR, b"content")
            .unwrap();
        let path = cache.store().blob_path(&blob.digest);
        assert!(!cache.is_verified(cache.store(), &blob), "not hashed yet");
        // Modified "now" (in the future, so however slow this test runs)...
        let file = fs::File::options().write(true).open(&path).unwrap();
        let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        file.set_modified(soon).unwrap();
        cache.verify(cache.store(), &blob).unwrap();
        assert!(cache.is_verified(cache.store(), &blob));
        // ...the file is not vouched for beyond this process...
        let again = BuildCache::open(cache.root()).unwrap();
        assert!(!again.is_verified(again.store(), &blob));
        // ...until it has settled; then a new process reads the record from disk.
        age(&path, 10);
        cache.verify(cache.store(), &blob).unwrap();
        let again = BuildCache::open(cache.root()).unwrap();
        assert!(again.is_verified(again.store(), &blob));

        fs::write(&path, b"CONTENT").unwrap();
        assert!(!again.is_verified(again.store(), &blob));
        assert!(again.verify(again.store(), &blob).is_err());

        let elsewhere = tempfile::NamedTempFile::new().unwrap();
        fs::write(elsewhere.path(), b"content").unwrap();
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), &path).unwrap();
        assert!(!again.is_verified(again.store(), &blob));
    }

    #[test]
    fn a_sweep_forgets_what_nobody_used_and_waits_for_other_builds() {
        let (dir, cache) = cache();
        let mut contents = crate::layer::LayerContents::new();
        contents.add_bytes("/old", b"old".to_vec(), 0o644).unwrap();
        let mtime = crate::timestamp::Timestamp(0);
        let old =
            crate::layer::write_layer(cache.store(), &contents, Compression::Gzip, mtime).unwrap();
        cache.record_layer(&old, Compression::Gzip);
        contents.add_bytes("/new", b"new".to_vec(), 0o644).unwrap();
        let new =
            crate::layer::write_layer(cache.store(), &contents, Compression::Gzip, mtime).unwrap();
        cache.record_layer(&new, Compression::Gzip);
        for record in fs::read_dir(dir.path().join("layers")).unwrap() {
            let path = record.unwrap().path();
            let bytes = fs::read(&path).unwrap();
            if String::from_utf8_lossy(&bytes).contains(&old.descriptor.digest.to_string()) {
                age(&path, 30 * 24 * 3600);
            }
        }

        // Another build holds the cache: nothing is swept.
        let other = BuildCache::open(dir.path()).unwrap();
        assert_eq!(cache.sweep(UNUSED_FOR).unwrap(), 0);
        drop(other);
        assert_eq!(cache.sweep(UNUSED_FOR).unwrap(), 1);
        assert!(!cache.store().contains(&old.descriptor.digest));
        assert!(cache.store().contains(&new.descriptor.digest));
        assert_eq!(
            cache.reusable_layer(&new.diff_id, Compression::Gzip),
            Some(new)
        );
        // Once a day at most.
        assert_eq!(cache.sweep(std::time::Duration::ZERO).unwrap(), 0);
    }

    #[test]
    fn the_lock_is_never_taken_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("lock")).unwrap();
        assert!(BuildCache::open(dir.path()).is_err());
        assert!(
            fs::symlink_metadata(&elsewhere).is_err(),
            "nothing created through it"
        );
    }

    #[test]
    fn the_sweep_marker_is_never_written_through_a_link() {
        let (dir, cache) = cache();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("precious");
        fs::write(&victim, b"keep me").unwrap();
        age(&victim, 30 * 24 * 3600);
        std::os::unix::fs::symlink(&victim, dir.path().join("swept")).unwrap();
        cache.sweep(UNUSED_FOR).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        assert!(fs::symlink_metadata(dir.path().join("swept"))
            .unwrap()
            .is_file());
    }

    #[test]
    fn a_layer_is_reused_only_with_the_same_settings_and_intact() {
        let (_dir, cache) = cache();
        let mut contents = crate::layer::LayerContents::new();
        contents
            .add_bytes("/app", b"binary".to_vec(), 0o755)
            .unwrap();
        let layer = crate::layer::write_layer(
            cache.store(),
            &contents,
            Compression::Gzip,
            crate::timestamp::Timestamp(0),
        )
        .unwrap();
        cache.record_layer(&layer, Compression::Gzip);
        assert_eq!(
            cache.reusable_layer(&layer.diff_id, Compression::Gzip),
            Some(layer.clone())
        );
        assert_eq!(
            cache.reusable_layer(&layer.diff_id, Compression::Zstd),
            None
        );

        fs::write(cache.store().blob_path(&layer.descriptor.digest), b"junk").unwrap();
        assert_eq!(
            cache.reusable_layer(&layer.diff_id, Compression::Gzip),
            None
        );
        assert!(cache.take_warnings()[0].contains("compressing it again"));
        assert!(!cache.store().contains(&layer.descriptor.digest));
    }
}
