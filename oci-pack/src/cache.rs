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
//! - `verified/<device>-<inode>`: which file was found to hash to which digest, and its size,
//!   modification and change times then (as git's index); while they stay the same, the file
//!   is not hashed again. As git does, a file that has not [`settled`] when it is hashed is not
//!   recorded: a change within the same clock tick would not show in its times.
//! - `refs/<key>`: the digest each registry tag last resolved to, for `--offline`.
//! - `used/<key>`: every blob a build used (its images', its bases'), kept from the sweep.
//!
//! Nothing here is trusted blindly: every entry carries the sha256 of its contents, and one that
//! does not match, or does not parse, is dropped (with a warning) and rebuilt. The checksums
//! catch accidents (a full disk, a killed build, a stray write), not a forged entry: whoever
//! can write `target/` can make any build say anything, as cargo's own `target/` can.
//!
//! The cache does not grow without end: what no build has used for
//! [`BuildCache::UNUSED_FOR`] is forgotten, and what a killed build was writing goes at the next
//! sweep ([`BuildCache::sweep`]). Outputs hold their own links to blobs, so none loses anything;
//! a build that wants a forgotten layer again compresses it again. Builds share the cache under
//! a shared lock on `lock`; a sweep runs only when no other build holds it.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::compress::Compression;
use crate::descriptor::Descriptor;
use crate::digest::{Digest, DigestReader, DigestWriter};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::store::{modification_settled, settled, BlobStore, IO_BUFFER};
use crate::tree::{FileTree, LayerChanges};

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
    /// Blobs this process used, for [`BuildCache::record_use`].
    used: Arc<Mutex<std::collections::BTreeSet<Digest>>>,
    warnings: Arc<Mutex<Vec<String>>>,
}

/// What a file was when it was found to hash to `digest`: as git's index, its size and its
/// modification and change times (a rewrite that restores the modification time, or keeps
/// it, still moves the change time, which only the kernel sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    digest: Digest,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Stamp {
    fn of(metadata: &fs::Metadata, digest: Digest) -> Stamp {
        Stamp {
            digest,
            size: metadata.len(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }

    fn parse(text: &str) -> Option<Stamp> {
        let mut fields = text.split(' ');
        let digest = fields.next()?.parse().ok()?;
        let size = fields.next()?.parse().ok()?;
        let mut next = || fields.next()?.parse::<i64>().ok();
        let stamp = Stamp {
            digest,
            size,
            modified: (next()?, next()?),
            changed: (next()?, next()?),
        };
        fields.next().is_none().then_some(stamp)
    }
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Stamp {
            digest,
            size,
            modified,
            changed,
        } = self;
        write!(
            f,
            "{digest} {size} {} {} {} {}",
            modified.0, modified.1, changed.0, changed.1
        )
    }
}

impl BuildCache {
    /// How long an entry nobody used is kept, and how often the cache is swept of them.
    pub const UNUSED_FOR: std::time::Duration = std::time::Duration::from_secs(14 * 24 * 3600);

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
            used: Arc::default(),
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
        // A record of an older format (no change time) does not parse: the file is hashed.
        let recorded = self
            .read_entry(&self.stamp_path(key))
            .and_then(|bytes| Stamp::parse(std::str::from_utf8(&bytes).ok()?));
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
        self.write_entry(&self.stamp_path(key), stamp.to_string().as_bytes());
    }

    /// Renews the records of the blobs this process found intact whose files changed since in
    /// their change time alone. An output's blobs are the cache's files, linked: staging a
    /// layout links them and replacing the old one unlinks them, and each moves the change
    /// time of every blob they share, which would cost the next build a hash of every blob it
    /// reuses. Called once this build's links are made and removed; a file whose size or
    /// modification time moved, or that was modified within the current clock tick, is left to
    /// be hashed again. What this cannot see is a rewrite during this build that kept the
    /// size and modification time: the window is the build, not the time between builds.
    pub fn renew_after_links(&self) {
        let verified: Vec<((u64, u64), Stamp)> = self
            .verified
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(key, stamp)| (*key, *stamp))
            .collect();
        for (key, stamp) in verified {
            let path = self.store.blob_path(&stamp.digest);
            let Ok(metadata) = fs::symlink_metadata(&path) else {
                continue;
            };
            let now = Stamp::of(&metadata, stamp.digest);
            let only_changed = (metadata.dev(), metadata.ino()) == key
                && metadata.is_file()
                && now != stamp
                && (now.size, now.modified) == (stamp.size, stamp.modified);
            if !only_changed || !modification_settled(&metadata) {
                continue;
            }
            self.verified.lock().expect("not poisoned").insert(key, now);
            self.write_entry(&self.stamp_path(key), now.to_string().as_bytes());
        }
    }

    /// Makes the blob `descriptor` of `source` (a parent's store) part of the cache's store:
    /// one already there is kept only while it is verified (a damaged one is replaced, with a
    /// warning); one brought in is a copy, never a link (the parent may be the user's own
    /// layout, which nothing done to the cache may change), checked unless the caller has
    /// `verified` its source.
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
        self.store.copy_in(source, descriptor, verified)?;
        if verified {
            self.remember(&self.store, descriptor);
        }
        Ok(())
    }

    /// Notes that this build uses the blobs `digests` of the cache's store (its images', its
    /// bases'), for [`BuildCache::record_use`].
    pub fn mark_used(&self, digests: impl IntoIterator<Item = Digest>) {
        self.used.lock().expect("not poisoned").extend(digests);
    }

    /// Records under `used/` every blob this process marked used, as what the build `key`
    /// uses (its next run replaces the record), so that a sweep keeps them [`Self::UNUSED_FOR`]
    /// after, however old their files are.
    pub fn record_use(&self, key: &str) {
        let body: String = (self.used.lock().expect("not poisoned").iter())
            .map(|digest| format!("{digest}\n"))
            .collect();
        let name = Digest::of(key.as_bytes());
        self.write_entry(&self.root.join("used").join(name.hex()), body.as_bytes());
    }

    /// Sweeps the cache, but only when no other build holds it: then every file still being
    /// written (a blob's `.partial-*`, an entry's temporary file) is one a build that died
    /// left, and goes at once. Once a day at most, what no build has used for `unused_for`
    /// goes too: entries not read or written since, and blobs older than that which no live
    /// `layers/` or `used/` record names (a base's, an old build's). Returns how many files
    /// went.
    pub fn sweep(&self, unused_for: std::time::Duration) -> Result<usize> {
        // Our shared lock becomes exclusive only if no other build holds one.
        if self.lock.try_lock().is_err() {
            return Ok(0);
        }
        let mut swept = self.sweep_partial();
        let marker = self.root.join("swept");
        // Anything but a file at the marker's name (a planted link) is no record of a sweep.
        let is_file = fs::symlink_metadata(&marker).is_ok_and(|m| m.is_file());
        if !is_file || age(&marker).is_none_or(|since| since >= SWEEP_EVERY) {
            swept += self.sweep_unused(unused_for);
            // A new file renamed over it: never written through a link planted at its name.
            let _ = tempfile::NamedTempFile::new_in(&self.root)
                .and_then(|file| file.persist(&marker).map_err(|e| e.error));
        }
        self.lock
            .lock_shared()
            .map_err(Error::io("lock", self.root.join("lock")))?;
        Ok(swept)
    }

    /// Removes what dead builds were writing: every file whose name begins with a dot (blobs
    /// and entries are named by digests, temporary files never are).
    fn sweep_partial(&self) -> usize {
        let dirs = ENTRY_DIRS.iter().chain(&["refs", "blobs/sha256"]);
        dirs.flat_map(|dir| files_in(&self.root.join(dir)))
            .filter(|path| {
                path.file_name()
                    .is_some_and(|name| name.as_encoded_bytes().starts_with(b"."))
            })
            .filter(|path| fs::remove_file(path).is_ok())
            .count()
    }

    /// Removes entries unused for `unused_for`, then blobs as old that no live entry needs.
    fn sweep_unused(&self, unused_for: std::time::Duration) -> usize {
        let old = |path: &Path| age(path).is_some_and(|age| age >= unused_for);
        let mut swept = 0;
        let mut live = std::collections::BTreeSet::new();
        for dir in ENTRY_DIRS {
            for path in files_in(&self.root.join(dir)) {
                if old(&path) {
                    swept += usize::from(fs::remove_file(&path).is_ok());
                } else {
                    live.extend(self.blobs_kept_by(dir, &path));
                }
            }
        }
        for path in files_in(&self.root.join("blobs").join("sha256")) {
            let digest = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok());
            if digest.is_some_and(|digest| !live.contains(&digest)) && old(&path) {
                swept += usize::from(fs::remove_file(&path).is_ok());
            }
        }
        swept
    }

    /// The blobs an entry keeps from a sweep: a `layers/` entry's layer, every blob a `used/`
    /// entry lists.
    fn blobs_kept_by(&self, dir: &str, entry: &Path) -> Vec<Digest> {
        let body = match dir {
            "layers" | "used" => self.check_entry(entry),
            _ => None,
        };
        let Some(body) = body else {
            return Vec::new();
        };
        if dir == "layers" {
            let layer = serde_json::from_slice::<Descriptor>(&body);
            layer.map(|layer| vec![layer.digest]).unwrap_or_default()
        } else {
            let text = String::from_utf8_lossy(&body);
            text.lines().filter_map(|line| line.parse().ok()).collect()
        }
    }

    /// The digest the tag `name` (`repository:tag`) last resolved to, as recorded under
    /// `refs/`, if it was. A record that holds no digest is removed, and the error says where
    /// it was and what it held.
    pub fn recorded_tag(&self, name: &str) -> std::result::Result<Option<Digest>, String> {
        /// A digest and a newline, with room to spare.
        const MAX_TAG_RECORD_BYTES: u64 = 256;
        let path = self.tag_path(name);
        let Ok(metadata) = fs::symlink_metadata(&path) else {
            return Ok(None);
        };
        let mut text = String::new();
        // Only a regular file is read: a FIFO would never end.
        let read = match metadata.is_file() {
            true => fs::File::open(&path)
                .and_then(|file| file.take(MAX_TAG_RECORD_BYTES).read_to_string(&mut text))
                .map_err(|error| error.to_string()),
            false => Err("not a file".to_owned()),
        };
        let parsed = read.and_then(|_| text.trim().parse::<Digest>().map_err(|e| e.to_string()));
        parsed.map(Some).map_err(|error| {
            let _ = fs::remove_file(&path);
            format!("its record `{}` is damaged: {error}", path.display())
        })
    }

    /// Records that the tag `name` (`repository:tag`) resolved to `digest`: written beside
    /// its place and renamed into it, so a record is whole or absent. A cache that cannot be
    /// written to only warns, as for every entry.
    pub fn record_tag(&self, name: &str, digest: &Digest) {
        let path = self.tag_path(name);
        let write = || -> io::Result<()> {
            let dir = path.parent().expect("under refs/");
            fs::create_dir_all(dir)?;
            let mut file = tempfile::NamedTempFile::new_in(dir)?;
            file.write_all(format!("{digest}\n").as_bytes())?;
            file.persist(&path)?;
            Ok(())
        };
        if let Err(error) = write() {
            self.warn(format!(
                "could not write the cache entry `{}`: {error}",
                path.display()
            ));
        }
    }

    fn tag_path(&self, name: &str) -> PathBuf {
        let key = Digest::of(name.as_bytes());
        self.root.join("refs").join(key.hex())
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
        let path = self.changes_path(diff_id);
        if let Some((from, tar, body)) = self.check_changes(&path) {
            // Another blob with the same tar (compressed otherwise) is read on its own.
            if from == layer.digest && tar == *diff_id {
                self.verify(store, layer)?;
                let file = fs::File::open(&path).map_err(Error::io("read", &path))?;
                let reader = io::BufReader::with_capacity(IO_BUFFER, file.take(body));
                return tree.apply_encoded(reader);
            }
        }
        let copy_into = self.copy_into(store, layer);
        let copied = match self.entry_writer(&path) {
            Some(mut entry) => {
                let copied = tree.read_layer(store, layer, diff_id, copy_into, &mut entry)?;
                self.commit_entry(entry);
                copied
            }
            None => tree.read_layer(store, layer, diff_id, copy_into, &mut io::sink())?,
        };
        self.remember_read(store, layer, copied);
        Ok(())
    }

    /// The cache's store, when the layer `layer` of `store` is to be copied into it as it is
    /// read: it is another store's (a layout's), and not here yet. Reading it checks every byte,
    /// so the copy [`BuildCache::adopt`] will want is made by that one read.
    fn copy_into(&self, store: &BlobStore, layer: &Descriptor) -> Option<&BlobStore> {
        let elsewhere = store.root() != self.store.root();
        let here = self.store.blob_path(&layer.digest);
        (elsewhere && fs::symlink_metadata(here).is_err()).then_some(&self.store)
    }

    /// Remembers the layer `layer` of `store` as just hashed, and the cache's copy of it too,
    /// if the read made one.
    fn remember_read(&self, store: &BlobStore, layer: &Descriptor, copied: bool) {
        self.remember(store, layer);
        if copied {
            self.remember(&self.store, layer);
        }
    }

    /// Reads, `LAYER_READERS` at once, the layers of `layers` (with their `diff_ids`) whose
    /// changes the cache does not hold yet, and keeps their changes, so that
    /// [`BuildCache::apply_layer`] then applies each from the cache, in order. Each is checked
    /// as `apply_layer` checks it (what only the tree below can tell, when it is applied); of
    /// several that fail, the error is the lowest one's. One layer alone is left to
    /// `apply_layer`, which reads it straight into the tree.
    pub fn read_layers_ahead(
        &self,
        store: &BlobStore,
        layers: &[Descriptor],
        diff_ids: &[Digest],
    ) -> Result<()> {
        let mut pending: Vec<(&Descriptor, &Digest)> = Vec::new();
        for (layer, diff_id) in layers.iter().zip(diff_ids) {
            let listed = pending
                .iter()
                .any(|(l, d)| l.digest == layer.digest && *d == diff_id);
            // A kept entry is checked when it is applied: one found damaged then, or read from
            // another blob of the same tar, is read on its own.
            let kept = self.changes_path(diff_id).is_file();
            if !listed && !kept {
                pending.push((layer, diff_id));
            }
        }
        if pending.len() < 2 {
            return Ok(());
        }
        // Layers are taken in order, so when one fails every layer below it was taken already
        // and the rest need not be read.
        let queue = Mutex::new(pending.iter().enumerate());
        let failed = AtomicBool::new(false);
        let mut outcomes: Vec<(usize, Result<()>)> = std::thread::scope(|scope| {
            let readers: Vec<_> = (0..LAYER_READERS.min(pending.len()))
                .map(|_| {
                    scope.spawn(|| {
                        let mut outcomes = Vec::new();
                        while !failed.load(Ordering::Relaxed) {
                            let next = queue.lock().expect("not poisoned").next();
                            let Some((i, &(layer, diff_id))) = next else {
                                break;
                            };
                            let outcome = self.keep_changes(store, layer, diff_id);
                            failed.fetch_or(outcome.is_err(), Ordering::Relaxed);
                            outcomes.push((i, outcome));
                        }
                        outcomes
                    })
                })
                .collect();
            readers
                .into_iter()
                .flat_map(|reader| reader.join().expect("a layer reader panicked"))
                .collect()
        });
        outcomes.sort_by_key(|(i, _)| *i);
        outcomes.into_iter().try_for_each(|(_, outcome)| outcome)
    }

    /// Reads the layer `layer` of `store` and keeps its changes; a cache that cannot be
    /// written leaves it to [`BuildCache::apply_layer`].
    fn keep_changes(&self, store: &BlobStore, layer: &Descriptor, diff_id: &Digest) -> Result<()> {
        let Some(mut entry) = self.entry_writer(&self.changes_path(diff_id)) else {
            return Ok(());
        };
        let copy_into = self.copy_into(store, layer);
        let copied = LayerChanges::record(store, layer, diff_id, copy_into, &mut entry)?;
        self.commit_entry(entry);
        self.remember_read(store, layer, copied);
        Ok(())
    }

    /// Where the changes of the layer whose tar is `diff_id` are kept.
    fn changes_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("changes").join(diff_id.hex())
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
        if checked.is_some() {
            touch(path);
        } else {
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

    /// Removes the tars a build kept beside its layers ([`crate::BuiltImage::kept_tars`]) once
    /// it is done with them, but for one the cache holds as an uncompressed layer of its own.
    pub fn drop_kept_tars(&self, tars: &[Digest]) {
        for diff_id in tars {
            if self.reusable_layer(diff_id, Compression::None).is_none() {
                let _ = fs::remove_file(self.store.blob_path(diff_id));
            }
        }
    }

    /// Records that the OCI layout at `layout` was just written by a build using this cache,
    /// for `owner` (the image it is the output of), so a later build for the same owner may
    /// replace it whatever images it names ([`crate::SealedLayout::persist_over_earlier_build`]).
    pub fn record_layout(&self, layout: &Path, owner: &str) {
        let index = layout.join("index.json");
        if let Ok(bytes) = fs::read(&index) {
            self.record_output(&index, &layout_key(&bytes, owner));
        }
    }

    /// Whether the OCI layout at `layout` is one [`BuildCache::record_layout`] recorded for
    /// `owner`, its `index.json` untouched since (same inode, size, modification and change
    /// times, same bytes).
    pub fn wrote_layout(&self, layout: &Path, owner: &str) -> bool {
        let index = layout.join("index.json");
        fs::read(&index).is_ok_and(|bytes| self.output_is_fresh(&index, &layout_key(&bytes, owner)))
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
    /// matches; a damaged entry is removed with a warning. The entry counts as used: a sweep
    /// leaves it for another [`Self::UNUSED_FOR`].
    fn read_entry(&self, path: &Path) -> Option<Vec<u8>> {
        let body = self.check_entry(path)?;
        touch(path);
        Some(body)
    }

    /// [`BuildCache::read_entry`], not counting as a use.
    fn check_entry(&self, path: &Path) -> Option<Vec<u8>> {
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

/// How many of a parent's layers are read at once, as many as are pulled at once.
const LAYER_READERS: usize = 3;

/// The directories of entries, each swept of those unused.
const ENTRY_DIRS: [&str; 6] = ["layers", "stamps", "changes", "verified", "outputs", "used"];

/// How long ago `path` was modified.
fn age(path: &Path) -> Option<std::time::Duration> {
    let modified = fs::symlink_metadata(path).and_then(|m| m.modified());
    modified.ok()?.elapsed().ok()
}

/// Marks an entry used now (its modification time), once a day at most: the sweep goes by it.
fn touch(path: &Path) {
    if age(path).is_some_and(|age| age >= SWEEP_EVERY) {
        let now = std::time::SystemTime::now();
        let _ = fs::File::options()
            .write(true)
            .open(path)
            .and_then(|file| file.set_modified(now));
    }
}

/// Every file directly in `dir` (none if it cannot be read).
fn files_in(dir: &Path) -> impl Iterator<Item = PathBuf> {
    let entries = fs::read_dir(dir).into_iter().flatten().flatten();
    entries
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| entry.path())
}

/// What a layout's record is kept under: its index's bytes and whose output it is.
fn layout_key(index: &[u8], owner: &str) -> Digest {
    let mut key = Digest::of(index).to_string().into_bytes();
    key.extend_from_slice(format!(" {owner}").as_bytes());
    Digest::of(&key)
}

fn output_stamp(metadata: &fs::Metadata, key: &Digest) -> String {
    let stamp = Stamp::of(metadata, *key);
    format!("{stamp} {} {}", metadata.dev(), metadata.ino())
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

    #[test]
    fn layers_read_at_once_give_the_same_tree_and_name_the_lowest_broken_one() {
        let (_fresh, cold) = cache();
        let (_dir, cache) = cache();
        let parent = tempfile::tempdir().unwrap();
        let store = BlobStore::open(parent.path()).unwrap();
        let layers: Vec<(Descriptor, Digest)> = (0..5)
            .map(|i| {
                // Each but the first links to a file of the one below: the tree below is read
                // when it is applied, not when it is read.
                let name = format!("etc/layer-{i}");
                let below = format!("etc/layer-{}", i.max(1) - 1);
                // The second is large: found wrong only at its end, after the third is.
                let body = format!("{i}").repeat(if i == 1 { 4 << 20 } else { 1000 });
                let entries = [
                    Raw::File(&name, body.as_bytes(), 0o644),
                    Raw::HardLink("etc/shared", &below),
                ];
                gzip_layer(&store, &entries[..1 + usize::from(i > 0)])
            })
            .collect();
        let (descriptors, diff_ids): (Vec<_>, Vec<_>) = layers.iter().cloned().unzip();
        let tree_of = |cache: &BuildCache| {
            cache.read_layers_ahead(&store, &descriptors, &diff_ids)?;
            let mut tree = FileTree::default();
            for (layer, diff_id) in &layers {
                cache.apply_layer(&mut tree, &store, layer, diff_id)?;
            }
            Ok::<_, Error>(tree)
        };
        let one_by_one = FileTree::read_layers(&store, &descriptors, &diff_ids).unwrap();
        let ahead = tree_of(&cache).unwrap();
        assert_eq!(
            ahead.iter().collect::<Vec<_>>(),
            one_by_one.iter().collect::<Vec<_>>()
        );
        for (_, diff_id) in &layers {
            assert!(cache.root().join("changes").join(diff_id.hex()).is_file());
        }
        // A kept entry found damaged when it is applied is read again, on its own.
        let entry = cache.root().join("changes").join(diff_ids[2].hex());
        let mut bytes = fs::read(&entry).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&entry, &bytes).unwrap();
        cache.take_warnings();
        let again = tree_of(&cache).unwrap();
        assert_eq!(
            again.iter().collect::<Vec<_>>(),
            one_by_one.iter().collect::<Vec<_>>()
        );
        assert!(cache.take_warnings()[0].contains("dropped the damaged cache entry"));
        assert!(cache.check_changes(&entry).is_some(), "rebuilt");

        // Two broken layers among five, none read before: the lower one is named, every time.
        let mut wrong = diff_ids.clone();
        wrong[1] = Digest::of(b"not this tar");
        fs::write(store.blob_path(&descriptors[2].digest), b"tampered").unwrap();
        for _ in 0..3 {
            let error = cold
                .read_layers_ahead(&store, &descriptors, &wrong)
                .unwrap_err();
            assert!(
                matches!(&error, Error::DiffIdMismatch { layer, .. }
                    if *layer == descriptors[1].digest),
                "{error}"
            );
        }
    }

    #[test]
    fn the_read_that_checks_a_layouts_layer_stores_it_and_a_broken_one_is_not_kept() {
        let (_dir, cache) = cache();
        let parent = tempfile::tempdir().unwrap();
        let store = BlobStore::open(parent.path()).unwrap();
        let layers: Vec<(Descriptor, Digest)> = (0..3)
            .map(|i| gzip_layer(&store, &[Raw::File(&format!("etc/{i}"), b"x", 0o644)]))
            .collect();
        let (descriptors, diff_ids): (Vec<_>, Vec<_>) = layers.iter().cloned().unzip();
        // Read ahead (several at once), then one alone, straight into a tree.
        cache
            .read_layers_ahead(&store, &descriptors[..2], &diff_ids[..2])
            .unwrap();
        let mut tree = FileTree::default();
        cache
            .apply_layer(&mut tree, &store, &descriptors[2], &diff_ids[2])
            .unwrap();
        for layer in &descriptors {
            let copy = cache.store().blob_path(&layer.digest);
            assert_eq!(
                fs::read(&copy).unwrap(),
                fs::read(store.blob_path(&layer.digest)).unwrap()
            );
            assert!(cache.is_verified(cache.store(), layer));
            // Adopting it needs the layout no more: the copy was made by the read.
            fs::remove_file(store.blob_path(&layer.digest)).unwrap();
            cache.adopt(&store, layer, true).unwrap();
        }

        // A blob that does not match its digest leaves no copy, whichever way it is read.
        let (_cold, cold) = self::cache();
        let (layer, diff_id) = gzip_layer(&store, &[Raw::File("etc/motd", b"hi", 0o644)]);
        let (other, other_diff_id) = gzip_layer(&store, &[Raw::File("etc/other", b"o", 0o644)]);
        let mut bytes = fs::read(store.blob_path(&layer.digest)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(store.blob_path(&layer.digest), &bytes).unwrap();
        let both = [layer.clone(), other];
        assert!(cold
            .read_layers_ahead(&store, &both, &[diff_id, other_diff_id])
            .is_err());
        let mut tree = FileTree::default();
        assert!(cold
            .apply_layer(&mut tree, &store, &layer, &diff_id)
            .is_err());
        assert!(!cold.store().blob_path(&layer.digest).exists());
    }

    /// Sets a file's modification time `seconds` into the past.
    fn age(path: &Path, seconds: u64) {
        let file = fs::File::options().write(true).open(path).unwrap();
        let then = std::time::SystemTime::now() - std::time::Duration::from_secs(seconds);
        file.set_modified(then).unwrap();
        // Setting it moved the change time, which must settle too.
        std::thread::sleep(std::time::Duration::from_millis(60));
    }

    /// A blob `b"content"` in `cache`'s store, settled and hashed; its path.
    fn settled_and_verified(cache: &BuildCache) -> (Descriptor, PathBuf) {
        let blob = cache
            .store()
            .put(media_type::OCI_LAYER_TAR, b"content")
            .unwrap();
        let path = cache.store().blob_path(&blob.digest);
        age(&path, 10);
        cache.verify(cache.store(), &blob).unwrap();
        (blob, path)
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
    fn links_made_and_removed_cost_no_hash_once_renewed_but_a_rewrite_still_does() {
        let (dir, cache) = cache();
        let (blob, path) = settled_and_verified(&cache);
        // An output links the blob and a replaced one unlinks it: only its change time moves.
        let output = dir.path().join("output-blob");
        let link_and_unlink = || {
            fs::hard_link(&path, &output).unwrap();
            fs::remove_file(&output).unwrap();
        };
        link_and_unlink();
        let later = BuildCache::open(cache.root()).unwrap();
        assert!(
            !later.is_verified(later.store(), &blob),
            "its change time moved"
        );
        cache.renew_after_links();
        let later = BuildCache::open(cache.root()).unwrap();
        assert!(later.is_verified(later.store(), &blob), "renewed");

        // Rewritten between builds with its old size and modification time: the next build
        // finds no record of it, and its renewal (the blob unverified) vouches for nothing.
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        fs::write(&path, b"CONTENT").unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(modified).unwrap();
        let next = BuildCache::open(cache.root()).unwrap();
        next.renew_after_links();
        assert!(!next.is_verified(next.store(), &blob));
        assert!(next.verify(next.store(), &blob).is_err());
    }

    #[test]
    fn a_sweep_forgets_what_nobody_used_and_waits_for_other_builds() {
        const MONTH: u64 = 30 * 24 * 3600;
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
                age(&path, MONTH);
            }
        }
        // Blobs no record names: an old base's config, one a build still uses, a new one.
        let put = |bytes: &[u8]| cache.store().put(media_type::OCI_CONFIG, bytes).unwrap();
        let (forgotten, used, young) = (put(b"forgotten"), put(b"used"), put(b"young"));
        for blob in [&old.descriptor, &new.descriptor, &forgotten, &used] {
            age(&cache.store().blob_path(&blob.digest), MONTH);
        }
        cache.mark_used([used.digest]);
        cache.record_use("a build");
        // What killed builds were writing: a blob, an entry.
        let partial = |dir: &str, name: &str| {
            let path = cache.root().join(dir).join(name);
            fs::write(&path, b"half").unwrap();
            path
        };
        let half_blob = partial("blobs/sha256", ".partial-killed");
        let half_entry = partial("layers", ".tmpKilled");

        // Another build holds the cache: nothing is swept, not even what is half-written.
        let other = BuildCache::open(dir.path()).unwrap();
        assert_eq!(cache.sweep(BuildCache::UNUSED_FOR).unwrap(), 0);
        assert!(half_blob.exists() && half_entry.exists());
        drop(other);
        // The old record, its blob, the forgotten blob, and the two partial files.
        assert_eq!(cache.sweep(BuildCache::UNUSED_FOR).unwrap(), 5);
        assert!(!half_blob.exists() && !half_entry.exists());
        for gone in [&old.descriptor, &forgotten] {
            assert!(!cache.store().contains(&gone.digest), "{gone:?}");
        }
        for kept in [&new.descriptor, &used, &young] {
            assert!(cache.store().contains(&kept.digest), "{kept:?}");
        }
        assert_eq!(
            cache.reusable_layer(&new.diff_id, Compression::Gzip),
            Some(new)
        );
        // What is unused is looked for once a day at most; half-written files go at once.
        let half_blob = partial("blobs/sha256", ".partial-killed");
        assert_eq!(cache.sweep(std::time::Duration::ZERO).unwrap(), 1);
        assert!(!half_blob.exists());
        assert!(cache.store().contains(&young.digest));
    }

    #[test]
    fn a_file_rewritten_in_place_with_its_old_times_is_not_trusted() {
        let (_dir, cache) = cache();
        let (blob, path) = settled_and_verified(&cache);
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        (&file).write_all(b"CONTENT").unwrap();
        file.set_modified(modified).unwrap();
        // The same inode, size and modification time: only the change time moved.
        for cache in [cache.clone(), BuildCache::open(cache.root()).unwrap()] {
            assert!(!cache.is_verified(cache.store(), &blob));
            assert!(cache.verify(cache.store(), &blob).is_err());
        }
    }

    #[test]
    fn a_tag_record_is_whole_or_named_when_damaged() {
        let (dir, cache) = cache();
        assert_eq!(cache.recorded_tag("example.com/app:1"), Ok(None));
        let digest = Digest::of(b"manifest");
        cache.record_tag("example.com/app:1", &digest);
        assert_eq!(cache.recorded_tag("example.com/app:1"), Ok(Some(digest)));
        let records: Vec<_> = fs::read_dir(dir.path().join("refs")).unwrap().collect();
        assert_eq!(records.len(), 1, "no temporary file is left");
        let record = records[0].as_ref().unwrap().path();

        fs::write(&record, b"").unwrap();
        let error = cache.recorded_tag("example.com/app:1").unwrap_err();
        assert!(
            error.starts_with(&format!("its record `{}` is damaged: ", record.display())),
            "{error}"
        );
        assert!(!record.exists(), "a damaged record is removed");

        // `refs/` cannot be written: a warning, as for any entry, not an error.
        fs::remove_dir(dir.path().join("refs")).unwrap();
        fs::write(dir.path().join("refs"), b"").unwrap();
        cache.record_tag("example.com/app:1", &digest);
        let warnings = cache.take_warnings();
        assert!(
            warnings[0].starts_with("could not write the cache entry `"),
            "{warnings:?}"
        );
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
        cache.sweep(BuildCache::UNUSED_FOR).unwrap();
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
