//! A parent image's file tree, known from its layers' tar headers and content hashes, with
//! whiteouts applied in order, in memory: nothing of the parent is extracted to disk.
//!
//! A layer is read once into its [`LayerChanges`]: what it adds, replaces and hides, in the
//! order its tar lists them. Reading checks it: the blob against its digest, the tar against
//! its diff_id, and every entry against what a hostile image could use to escape (`..`,
//! absolute names, hard links out of the root) and what would make it ambiguous (a path twice).
//! Device nodes and FIFOs are kept as they are: we never extract a parent. The changes are what
//! the [`BuildCache`](crate::BuildCache) keeps, so a parent's layers are decompressed once,
//! ever; applying them checks what depends on the layers below (hard links).

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::ops::Bound;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use crate::compress::Decoder;
use crate::descriptor::Descriptor;
use crate::digest::{Digest, DigestWriter};
use crate::elf::{self, GlibcVersion};
use crate::error::{Error, Result};
use crate::path::{entry_path, OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
use crate::store::BlobStore;

/// One path of a parent's tree, as its tar header and content say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// What the path is.
    pub kind: NodeKind,
    /// Permission bits, e.g. `0o755`.
    pub mode: u32,
    /// Owner's user ID.
    pub uid: u64,
    /// Owner's group ID.
    pub gid: u64,
    /// Its `security.capability` attribute (file capabilities) as the layer's PAX header gives
    /// it, if it has one.
    pub capability: Option<Box<[u8]>>,
}

/// The type of a [`Node`], with what the engine needs of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A directory.
    Directory,
    /// A regular file.
    File {
        /// Its size in bytes.
        size: u64,
        /// The sha256 of its bytes, to compare with a staged file's.
        digest: Digest,
        /// For a C library (`libc.so.6`, `libc-2.31.so`): the newest `GLIBC_*` it defines.
        glibc: Option<Box<GlibcVersion>>,
    },
    /// A symbolic link.
    Symlink {
        /// What it points to, e.g. `../lib/x86_64-linux-gnu/libc.so.6`.
        target: PathBuf,
    },
    /// A FIFO or a device node (a parent's `/dev/console`): kept so it can be removed or whited
    /// out, never compared by content, never written by us.
    Special,
}

/// A path relative to the root as bytes (`usr/bin/env`), ordered bytewise: all that is under a
/// directory is then one contiguous range of keys (from `dir/` to `dir0`, `0` being the byte
/// after `/`), found without comparing paths component by component.
type Key = Box<[u8]>;

fn key(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

fn path_of(key: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(key))
}

fn into_key(path: PathBuf) -> Key {
    use std::os::unix::ffi::OsStringExt;
    path.into_os_string().into_vec().into_boxed_slice()
}

/// Every path of an image, a directory before what is under it.
#[derive(Debug, Clone, Default)]
pub struct FileTree {
    nodes: BTreeMap<Key, Slot>,
    /// How many layers were applied: the number of the layer being applied.
    layers: u32,
}

/// A node and the layer that wrote it: a whiteout hides only what lower layers wrote.
#[derive(Debug, Clone)]
struct Slot {
    node: Node,
    layer: u32,
}

/// What one layer does to the tree below it, in the order its tar lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerChanges {
    /// The layer blob these were read from, and the digest of its tar.
    pub layer: Digest,
    /// The digest of the layer's uncompressed tar.
    pub diff_id: Digest,
    changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// `.wh..wh..opq`: everything lower layers have in the directory goes.
    Opaque(Key),
    /// `.wh.NAME`: a lower `NAME` goes, with everything under it.
    Whiteout(Key),
    /// An entry, replacing what was there.
    Put(Key, Node),
    /// A hard link: the file at `target` (in the tree as it is by then) again at `path`.
    HardLink { path: Key, target: Key },
}

/// A `security.capability` attribute larger than this is refused (the kernel's are 24 bytes).
const MAX_CAPABILITY_BYTES: usize = 1024;

/// A C library larger than this is not read for its glibc version.
const MAX_LIBC_BYTES: u64 = 64 << 20;

impl FileTree {
    /// Applies `layers` (base first) to an empty tree, checking each against its digest and
    /// `diff_ids`. A layer listed several times is read once: its changes are kept until its
    /// last listing, so a small manifest cannot make a large layer be decompressed thousands
    /// of times.
    pub fn read_layers(
        store: &BlobStore,
        layers: &[Descriptor],
        diff_ids: &[Digest],
    ) -> Result<FileTree> {
        let listings = || {
            layers
                .iter()
                .zip(diff_ids)
                .map(|(l, d)| (l, (l.digest, *d)))
        };
        let last_listed: BTreeMap<(Digest, Digest), usize> = listings()
            .enumerate()
            .map(|(i, (_, key))| (key, i))
            .collect();
        let mut kept: BTreeMap<(Digest, Digest), LayerChanges> = BTreeMap::new();
        let mut tree = FileTree::default();
        for (i, (layer, key)) in listings().enumerate() {
            let changes = match kept.remove(&key) {
                Some(changes) => changes,
                None => LayerChanges::read(store, layer, &key.1)?,
            };
            if last_listed[&key] > i {
                kept.insert(key, changes.clone());
            }
            tree.apply(changes)?;
        }
        Ok(tree)
    }

    /// The node at `path`, relative to the root (`usr/bin/env`).
    pub fn get(&self, path: &Path) -> Option<&Node> {
        self.nodes.get(key(path)).map(|slot| &slot.node)
    }

    /// How many paths the tree holds.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree holds no path at all, as `scratch`'s.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every path, a directory before what is under it.
    pub fn iter(&self) -> impl Iterator<Item = (&Path, &Node)> {
        self.nodes
            .iter()
            .map(|(path, slot)| (path_of(path), &slot.node))
    }

    /// The direct children of `dir`.
    pub fn children<'a>(&'a self, dir: &'a Path) -> impl Iterator<Item = &'a Path> + 'a {
        let depth = key(dir).len() + usize::from(!key(dir).is_empty());
        self.under(key(dir))
            .map(|(path, _)| path)
            .filter(move |path| !path[depth..].contains(&b'/'))
            .map(|path| path_of(path))
    }

    /// Everything under `dir` (everything, for the root), in order.
    fn under<'a>(&'a self, dir: &[u8]) -> impl Iterator<Item = (&'a Key, &'a Slot)> + 'a {
        let (start, end) = if dir.is_empty() {
            (Bound::Unbounded, Bound::Unbounded)
        } else {
            let mut from = dir.to_vec();
            from.push(b'/');
            let mut to = dir.to_vec();
            to.push(b'/' + 1);
            (Bound::Included(from), Bound::Excluded(to))
        };
        let range: (Bound<&[u8]>, Bound<&[u8]>) = (
            start.as_ref().map(Vec::as_slice),
            end.as_ref().map(Vec::as_slice),
        );
        // The range borrows the bounds only while it is made.
        let keys: Vec<(&Key, &Slot)> = self.nodes.range::<[u8], _>(range).collect();
        keys.into_iter()
    }

    /// Removes `path` and everything under it, except what the current layer wrote.
    fn remove_tree(&mut self, path: &[u8]) {
        let current = self.layers;
        let doomed: Vec<Key> = self
            .nodes
            .get_key_value(path)
            .into_iter()
            .chain(self.under(path))
            .filter(|(_, slot)| slot.layer != current)
            .map(|(path, _)| path.clone())
            .collect();
        for path in doomed {
            self.nodes.remove(&path);
        }
    }

    /// Applies one layer's changes on top of the tree. A whiteout hides only what lower layers
    /// have, never an entry of its own layer.
    pub fn apply(&mut self, layer: LayerChanges) -> Result<()> {
        self.layers += 1;
        for change in layer.changes {
            self.change(&layer.layer, change)?;
        }
        Ok(())
    }

    /// Applies one change of the layer `layer` (named in errors).
    fn change(&mut self, layer: &Digest, change: Change) -> Result<()> {
        match change {
            Change::Opaque(dir) => {
                let current = self.layers;
                let depth = dir.len() + usize::from(!dir.is_empty());
                let lower: Vec<Key> = self
                    .under(&dir)
                    .filter(|(path, slot)| slot.layer != current && !path[depth..].contains(&b'/'))
                    .map(|(path, _)| path.clone())
                    .collect();
                for child in lower {
                    self.remove_tree(&child);
                }
            }
            Change::Whiteout(path) => self.remove_tree(&path),
            Change::Put(path, node) => self.put(layer, path, node)?,
            Change::HardLink { path, target } => {
                let node = match self.nodes.get(&target) {
                    Some(Slot {
                        node:
                            node @ Node {
                                kind: NodeKind::File { .. },
                                ..
                            },
                        ..
                    }) => node.clone(),
                    _ => {
                        return Err(Error::InvalidLayerEntry {
                            layer: *layer,
                            entry: path_of(&path).display().to_string(),
                            reason: format!(
                                "the hard link's target `{}` is not a file of the image",
                                path_of(&target).display()
                            ),
                        })
                    }
                };
                self.put(layer, path, node)?;
            }
        }
        Ok(())
    }

    /// A non-directory replaces whatever was at `path`, with everything under it; a directory
    /// over a directory keeps what is under it. A path the same layer wrote already is an error.
    fn put(&mut self, layer: &Digest, path: Key, node: Node) -> Result<()> {
        let directory_over_directory = match self.nodes.get(&path) {
            Some(slot) if slot.layer == self.layers => return Err(twice_in(*layer, &path)),
            Some(slot) => node.kind == NodeKind::Directory && slot.node.kind == NodeKind::Directory,
            None => false,
        };
        if !directory_over_directory {
            self.remove_tree(&path);
        }
        let layer = self.layers;
        self.nodes.insert(path, Slot { node, layer });
        Ok(())
    }
}

impl LayerChanges {
    /// Reads the layer `layer` of `store`, checking the blob against its digest, the tar
    /// against `diff_id` and every entry against the rules of a layer. A blob that cannot be
    /// decoded is first checked against its digest, so the error names the cause: a corrupt
    /// blob, rather than what its corruption did to the decoder.
    pub fn read(store: &BlobStore, layer: &Descriptor, diff_id: &Digest) -> Result<LayerChanges> {
        let mut changes = Vec::new();
        read_changes(store, layer, diff_id, None, |change| {
            changes.push(change);
            Ok(())
        })?;
        // A path written twice in one layer: sorted references find it without a copy of each.
        let mut written: Vec<&[u8]> = changes
            .iter()
            .filter_map(|change| match change {
                Change::Put(path, _) | Change::HardLink { path, .. } => Some(&path[..]),
                _ => None,
            })
            .collect();
        written.sort_unstable();
        if let Some(twice) = written.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(twice_in(layer.digest, twice[0]));
        }
        drop(written);
        Ok(LayerChanges {
            layer: layer.digest,
            diff_id: *diff_id,
            changes,
        })
    }
}

/// The error of a path a layer writes twice.
fn twice_in(layer: Digest, path: &[u8]) -> Error {
    Error::InvalidLayerEntry {
        layer,
        entry: path_of(path).display().to_string(),
        reason: "the path appears twice in the layer".into(),
    }
}

/// Reads the layer `layer` of `store`, checking it as [`LayerChanges::read`] says, and gives each
/// change to `visit` as it is read. A blob that cannot be decoded is first checked against its
/// digest, so the error names the cause: a corrupt blob, rather than what its corruption did to
/// the decoder.
fn read_changes(
    store: &BlobStore,
    layer: &Descriptor,
    diff_id: &Digest,
    copy_into: Option<&BlobStore>,
    visit: impl FnMut(Change) -> Result<()>,
) -> Result<bool> {
    match read_entries(store, layer, diff_id, copy_into, visit) {
        Err(error @ Error::LayerRead { .. }) => {
            let mut blob = store.reader(layer)?;
            io::copy(&mut blob, &mut io::sink()).map_err(|e| blob.error(e))?;
            Err(error)
        }
        read => read,
    }
}

/// The decoded tar of `layer`'s blob in `store`, its digest checked as it is read, and the blob
/// copied into `copy_into` on the way ([`crate::store::VerifiedReader::copying_into`]).
pub(crate) fn layer_decoder(
    store: &BlobStore,
    layer: &Descriptor,
    copy_into: Option<&BlobStore>,
) -> Result<Decoder<crate::store::VerifiedReader>> {
    let blob = match copy_into {
        Some(into) => store.reader(layer)?.copying_into(into)?,
        None => store.reader(layer)?,
    };
    Decoder::for_media_type(&layer.media_type, blob)
        .ok_or_else(|| Error::UnsupportedMediaType {
            digest: layer.digest,
            media_type: layer.media_type.clone(),
        })?
        .map_err(|source| Error::LayerRead {
            layer: layer.digest,
            source,
        })
}

/// Reads the tar of `layer`'s blob entry by entry, gives each entry's change to `visit`, then
/// checks the tar against `diff_id` and the rest of the blob against its digest; a blob that
/// matches is stored in `copy_into` too, if given. Returns whether it was.
///
/// This thread inflates and parses; the tar and every file's content are hashed on another
/// ([`HashedAside`]). A file's change waits, with those after it, until its digest is back.
fn read_entries(
    store: &BlobStore,
    layer: &Descriptor,
    diff_id: &Digest,
    copy_into: Option<&BlobStore>,
    mut visit: impl FnMut(Change) -> Result<()>,
) -> Result<bool> {
    let mut decoded = layer_decoder(store, layer, copy_into)?;
    let (mut hashed, files, digests) = HashedAside::new();
    let layer_error = |source: io::Error| Error::LayerRead {
        layer: layer.digest,
        source,
    };
    let mut pending = Pending {
        layer: layer.digest,
        changes: VecDeque::new(),
    };
    {
        let mut archive = tar::Archive::new(Tee {
            inner: &mut decoded,
            copy: &mut hashed,
        });
        for entry in archive.entries().map_err(layer_error)? {
            let mut entry = entry.map_err(layer_error)?;
            if let Some(change) = entry_change(&mut entry, layer.digest, &files)? {
                pending.changes.push_back(change);
            }
            pending.visit_ready(&digests, false, &mut visit)?;
        }
    }
    // The end-of-archive padding is part of the diff_id; the rest of the blob is part of
    // its digest.
    io::copy(
        &mut Tee {
            inner: &mut decoded,
            copy: &mut hashed,
        },
        &mut io::sink(),
    )
    .map_err(layer_error)?;
    let mut blob = decoded.into_inner();
    io::copy(&mut blob, &mut io::sink()).map_err(|e| blob.error(e))?;
    drop(files);
    let actual = hashed.finish();
    pending.visit_ready(&digests, true, &mut visit)?;
    if &actual != diff_id {
        return Err(Error::DiffIdMismatch {
            layer: layer.digest,
            expected: *diff_id,
            actual,
        });
    }
    Ok(blob.commit_copy())
}

/// Changes read but not yet visited, in the tar's order: a file's waits for the digest of its
/// content, and those after it with it.
struct Pending {
    layer: Digest,
    changes: VecDeque<Change>,
}

impl Pending {
    /// Visits the changes whose files' digests are back; with `wait`, every change, waiting
    /// for each digest (the hashing thread has then been given every byte).
    fn visit_ready(
        &mut self,
        digests: &mpsc::Receiver<Digest>,
        wait: bool,
        visit: &mut impl FnMut(Change) -> Result<()>,
    ) -> Result<()> {
        while let Some(change) = self.changes.front_mut() {
            if let Change::Put(
                _,
                Node {
                    kind: NodeKind::File { digest, .. },
                    ..
                },
            ) = change
            {
                let hashed = match wait {
                    true => digests.recv().ok(),
                    false => digests.try_recv().ok(),
                };
                match (hashed, wait) {
                    (Some(hashed), _) => *digest = hashed,
                    (None, false) => return Ok(()),
                    (None, true) => {
                        return Err(Error::LayerRead {
                            layer: self.layer,
                            source: io::Error::other("a file's content was not hashed"),
                        })
                    }
                }
            }
            visit(self.changes.pop_front().expect("the front change"))?;
        }
        Ok(())
    }
}

/// What one tar entry of `layer` changes, checked against the rules of a layer: `None` for the
/// root itself and for a PAX header entry.
fn entry_change<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    layer: Digest,
    files: &FileHashes,
) -> Result<Option<Change>> {
    let raw_bytes = entry.path_bytes().into_owned();
    let raw = String::from_utf8_lossy(&raw_bytes).into_owned();
    let path = entry_path(OsStr::from_bytes(&raw_bytes))
        .map_err(|reason| hostile_entry(layer, &raw, reason))?;
    let Some(name) = path.file_name().map(|n| n.as_bytes().to_owned()) else {
        return Ok(None); // the root itself
    };
    let dir = path.parent().unwrap_or(Path::new("")).to_owned();
    if name == OPAQUE_WHITEOUT.as_bytes() {
        return Ok(Some(Change::Opaque(into_key(dir))));
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        if matches!(hidden, b"" | b"." | b"..") {
            return Err(invalid_entry(layer, &raw, "a whiteout must name an entry"));
        }
        let hidden = dir.join(OsStr::from_bytes(hidden));
        return Ok(Some(Change::Whiteout(into_key(hidden))));
    }
    entry_put(entry, layer, &raw, path, &name, files)
}

/// What a tar entry that is not a whiteout puts at `path` (named `raw` in the tar): a node, or
/// a hard link to another path; `None` for a PAX header entry.
fn entry_put<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    layer: Digest,
    raw: &str,
    path: PathBuf,
    name: &[u8],
    files: &FileHashes,
) -> Result<Option<Change>> {
    let layer_error = |source: io::Error| Error::LayerRead { layer, source };
    let capability = capability_of(entry)
        .map_err(layer_error)?
        .map(|value| match value.len() {
            ..=MAX_CAPABILITY_BYTES => Ok(value),
            _ => Err(invalid_entry(
                layer,
                raw,
                "its `security.capability` attribute is too long",
            )),
        })
        .transpose()?;
    let header = entry.header();
    let mode = header.mode().map_err(layer_error)? & 0o7777;
    let uid = header.uid().map_err(layer_error)?;
    let gid = header.gid().map_err(layer_error)?;
    let kind = match header.entry_type() {
        tar::EntryType::Directory => NodeKind::Directory,
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            // The size the tar's reader uses: a PAX `size` record's over the header's (Go's
            // archive/tar writes one for a file of 8 GiB or more).
            let size = entry.size();
            file_node(entry, size, name, &path, files).map_err(layer_error)?
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .map(|t| PathBuf::from(OsStr::from_bytes(&t)))
                .unwrap_or_default();
            if target.as_os_str().is_empty() {
                return Err(invalid_entry(layer, raw, "the symbolic link has no target"));
            }
            NodeKind::Symlink { target }
        }
        tar::EntryType::Link => {
            let target = entry.link_name_bytes().unwrap_or_default().into_owned();
            let target = entry_path(OsStr::from_bytes(&target))
                .map_err(|_| hostile_entry(layer, raw, "the hard link points outside the root"))?;
            return Ok(Some(Change::HardLink {
                path: into_key(path),
                target: into_key(target),
            }));
        }
        // A distribution's `/dev/console`: harmless to us, who never extract a parent; kept so
        // it can be removed or whited out.
        tar::EntryType::Fifo | tar::EntryType::Char | tar::EntryType::Block => NodeKind::Special,
        tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => return Ok(None),
        other => {
            return Err(invalid_entry(
                layer,
                raw,
                &format!("unsupported tar entry type {:?}", other.as_byte() as char),
            ))
        }
    };
    let node = Node {
        kind,
        mode,
        uid,
        gid,
        capability,
    };
    Ok(Some(Change::Put(into_key(path), node)))
}

/// The error of an entry that would reach outside the image's root.
fn hostile_entry(layer: Digest, entry: &str, reason: &str) -> Error {
    Error::HostileLayerEntry {
        layer,
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The error of an entry a layer may not hold.
fn invalid_entry(layer: Digest, entry: &str, reason: &str) -> Error {
    Error::InvalidLayerEntry {
        layer,
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    }
}

/// A sha256 of what is written to it (a layer's tar), and of each file's content in it, taken
/// on a thread of its own, so that a layer is hashed while the next bytes are inflated: the
/// bytes go over in chunks, a few at a time, and each file's place in the tar before them
/// ([`FileHashes`]); its digests come back in the files' order.
struct HashedAside {
    chunk: Vec<u8>,
    queue: Option<mpsc::SyncSender<Aside>>,
    hasher: Option<thread::JoinHandle<Digest>>,
}

/// What the hashing thread is sent: the tar's next bytes, or where a file's content is.
enum Aside {
    Bytes(Vec<u8>),
    File { start: u64, end: u64 },
}

/// Tells the hashing thread where in the tar a file's content is, before it is read.
struct FileHashes {
    queue: mpsc::SyncSender<Aside>,
}

impl FileHashes {
    /// Asks for the digest of the `size` bytes at `start` of the tar, which must not have been
    /// written yet.
    fn hash(&self, start: u64, size: u64) -> io::Result<()> {
        let end = start + size;
        self.queue
            .send(Aside::File { start, end })
            .map_err(|_| io::Error::other("the hashing thread ended"))
    }
}

/// The bytes handed to the hashing thread at once; at most [`HASHED_QUEUE`] wait.
const HASHED_CHUNK: usize = 256 << 10;
const HASHED_QUEUE: usize = 4;

impl HashedAside {
    /// The writer, where its files are told, and where their digests come back.
    fn new() -> (HashedAside, FileHashes, mpsc::Receiver<Digest>) {
        let (queue, received) = mpsc::sync_channel::<Aside>(HASHED_QUEUE);
        let (digests, returned) = mpsc::channel();
        let hasher = thread::spawn(move || hash_aside(received, &digests));
        let files = FileHashes {
            queue: queue.clone(),
        };
        let hashed = HashedAside {
            chunk: Vec::with_capacity(HASHED_CHUNK),
            queue: Some(queue),
            hasher: Some(hasher),
        };
        (hashed, files, returned)
    }

    /// The sha256 of everything written, once the [`FileHashes`] is dropped too.
    fn finish(mut self) -> Digest {
        self.send();
        drop(self.queue.take());
        let hasher = self.hasher.take().expect("finished once");
        hasher.join().expect("the hashing thread does not panic")
    }

    fn send(&mut self) {
        let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(HASHED_CHUNK));
        if let Some(queue) = &self.queue {
            // The thread lives until the queue is dropped: a send does not fail.
            let _ = queue.send(Aside::Bytes(full));
        }
    }
}

/// The hashing thread: the sha256 of every byte received, and of each file's range of them,
/// sent to `digests` as each file's last byte arrives.
fn hash_aside(received: mpsc::Receiver<Aside>, digests: &mpsc::Sender<Digest>) -> Digest {
    let mut tar = DigestWriter::new(io::sink());
    let mut content = DigestWriter::new(io::sink());
    let mut files: VecDeque<(u64, u64)> = VecDeque::new();
    let mut offset = 0;
    for aside in received {
        let bytes = match aside {
            Aside::Bytes(bytes) => bytes,
            Aside::File { start, end } => {
                debug_assert!(start >= offset, "a file is told before its bytes");
                files.push_back((start, end));
                Vec::new()
            }
        };
        tar.write_all(&bytes).expect("a sink takes every byte");
        let bytes_end = offset + bytes.len() as u64;
        while let Some(&(start, end)) = files.front() {
            let (from, to) = (start.max(offset), end.min(bytes_end));
            if from < to {
                let within = (from - offset) as usize..(to - offset) as usize;
                content
                    .write_all(&bytes[within])
                    .expect("a sink takes every byte");
            }
            if end > bytes_end {
                break;
            }
            let done = std::mem::replace(&mut content, DigestWriter::new(io::sink()));
            // The reader stops listening only when it has failed.
            let _ = digests.send(done.finish().0);
            files.pop_front();
        }
        offset = bytes_end;
    }
    tar.finish().0
}

impl Write for HashedAside {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.chunk.extend_from_slice(buf);
        if self.chunk.len() >= HASHED_CHUNK {
            self.send();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The `security.capability` attribute an entry's PAX header gives it, if any.
pub(crate) fn capability_of<R: Read>(
    entry: &mut tar::Entry<'_, R>,
) -> io::Result<Option<Box<[u8]>>> {
    let key = format!("SCHILY.xattr.{}", crate::capability::XATTR);
    let Some(extensions) = entry.pax_extensions()? else {
        return Ok(None);
    };
    for extension in extensions {
        let extension = extension?;
        if extension.key_bytes() == key.as_bytes() {
            let value = extension.value_bytes();
            return Ok((!value.is_empty()).then(|| value.into()));
        }
    }
    Ok(None)
}

/// A regular file's node: its size, and for a C library, the newest glibc version it defines
/// (read from its bytes in memory). Its content's digest is asked of `files` before its bytes
/// are read; until it is back the node holds none.
fn file_node<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    size: u64,
    name: &[u8],
    path: &Path,
    files: &FileHashes,
) -> io::Result<NodeKind> {
    files.hash(entry.raw_file_position(), size)?;
    let is_libc = name == b"libc.so.6" || (name.starts_with(b"libc-") && name.ends_with(b".so"));
    let (read, glibc) = if is_libc && size <= MAX_LIBC_BYTES {
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        let info = elf::read_bytes(&bytes, path).ok().flatten();
        let glibc = info.and_then(|info| GlibcVersion::newest(&info.versions_defined));
        (bytes.len() as u64, glibc)
    } else {
        (io::copy(entry, &mut io::sink())?, None)
    };
    if read != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the tar ends inside a file",
        ));
    }
    Ok(NodeKind::File {
        size,
        digest: Digest::from_hash([0; 32]),
        glibc: glibc.map(Box::new),
    })
}

/// Reads from `inner` and writes what it read to `copy`.
struct Tee<'a, R, W> {
    inner: &'a mut R,
    copy: &'a mut W,
}

impl<R: Read, W: io::Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// The encoding of [`LayerChanges`] in the cache: a version line, then fixed-width integers
/// (little-endian) and length-prefixed byte strings. It is written and read as a stream, so a
/// parent of a million files is applied from the cache without holding its encoding or its
/// changes in memory; a cache entry also carries the sha256 of these bytes, so a torn or
/// tampered entry is dropped, never trusted.
const ENCODING: &[u8] = b"cargo-oci layer changes 4\n";
/// The tag that ends the changes.
const END: u8 = 0xff;
/// No path in a layer is longer than this (Linux allows 4096 bytes).
const MAX_PATH_BYTES: u64 = 1 << 16;

impl LayerChanges {
    /// Writes the changes in the cache's encoding.
    pub fn encode_to(&self, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
        let mut out = EncodedWriter(out);
        out.header(&self.layer, &self.diff_id)?;
        for change in &self.changes {
            out.change(change)?;
        }
        out.end()
    }

    /// The changes in the cache's encoding, in memory.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_to(&mut out)
            .expect("writing to memory cannot fail");
        out
    }

    /// The changes `encode` wrote; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<LayerChanges> {
        let mut changes = Vec::new();
        let mut input = bytes;
        let (layer, diff_id) = decode_each(&mut input, |_, change| {
            changes.push(change);
            Ok(())
        })
        .ok()?;
        input.is_empty().then_some(LayerChanges {
            layer,
            diff_id,
            changes,
        })
    }

    /// Whether `head`, the start of a cache entry, is an encoding an earlier version wrote: out
    /// of date, not damaged.
    pub(crate) fn is_earlier_encoding(head: &[u8]) -> bool {
        let family = &ENCODING[..ENCODING.iter().rposition(|b| *b == b' ').unwrap_or(0) + 1];
        head.starts_with(family) && !head.starts_with(ENCODING)
    }

    /// Reads an encoding from `input` to its end without keeping it: its layer and diff_id,
    /// or `None` when it is not one.
    pub(crate) fn check_encoded(mut input: impl Read) -> Option<(Digest, Digest)> {
        let header = decode_each(&mut input, |_, _| Ok(())).ok()?;
        let at_end = input.read(&mut [0u8]).ok()? == 0;
        at_end.then_some(header)
    }
}

impl LayerChanges {
    /// Reads the layer `layer` of `store`, checking it as [`LayerChanges::read`] does but for
    /// what only the tree below it can tell (a path written twice, a hard link's target), and
    /// writes its changes in the cache's encoding to `record` as they are read, holding none:
    /// layers recorded this way, several at once, are applied in order from their records. The
    /// blob is stored in `copy_into` too, if given: whether it was.
    pub(crate) fn record(
        store: &BlobStore,
        layer: &Descriptor,
        diff_id: &Digest,
        copy_into: Option<&BlobStore>,
        record: &mut (impl Write + ?Sized),
    ) -> Result<bool> {
        let record_error = |source| Error::CacheEntry {
            reason: format!("cannot write a layer's changes: {source}"),
        };
        let mut out = EncodedWriter(record);
        out.header(&layer.digest, diff_id).map_err(record_error)?;
        let copied = read_changes(store, layer, diff_id, copy_into, |change| {
            out.change(&change).map_err(record_error)
        })?;
        out.end().map_err(record_error)?;
        Ok(copied)
    }
}

impl FileTree {
    /// Reads the layer `layer` of `store` straight into the tree, checking it as
    /// [`LayerChanges::read`] does, and writes its changes in the cache's encoding to `record`
    /// on the way: a parent's layer is never held in memory as a whole. The blob is stored in
    /// `copy_into` too, if given: whether it was. On an error, the tree is left half-applied
    /// and should be dropped.
    pub(crate) fn read_layer(
        &mut self,
        store: &BlobStore,
        layer: &Descriptor,
        diff_id: &Digest,
        copy_into: Option<&BlobStore>,
        record: &mut (impl Write + ?Sized),
    ) -> Result<bool> {
        self.layers += 1;
        let record_error = |source| Error::CacheEntry {
            reason: format!("cannot write a layer's changes: {source}"),
        };
        let mut out = EncodedWriter(record);
        out.header(&layer.digest, diff_id).map_err(record_error)?;
        let copied = read_changes(store, layer, diff_id, copy_into, |change| {
            out.change(&change).map_err(record_error)?;
            self.change(&layer.digest, change)
        })?;
        out.end().map_err(record_error)?;
        Ok(copied)
    }

    /// Applies changes in the cache's encoding as they are read from `input`; an encoding that
    /// does not parse is an error the caller was to rule out ([`LayerChanges::check_encoded`]).
    pub(crate) fn apply_encoded(&mut self, mut input: impl Read) -> Result<()> {
        self.layers += 1;
        match decode_each(&mut input, |layer, change| self.change(layer, change)) {
            Ok(_) => Ok(()),
            Err(Failure::Visit(error)) => Err(error),
            Err(Failure::Malformed) => Err(Error::CacheEntry {
                reason: "a layer's cached changes do not parse".into(),
            }),
        }
    }
}

/// Why a decoding stopped.
enum Failure {
    /// The bytes are not an encoding of changes.
    Malformed,
    /// What was done with a change failed.
    Visit(Error),
}

/// Decodes changes from `input`, each given to `visit` in order; returns the layer and diff_id.
fn decode_each(
    input: &mut impl Read,
    mut visit: impl FnMut(&Digest, Change) -> Result<()>,
) -> std::result::Result<(Digest, Digest), Failure> {
    let mut input = EncodedReader(input);
    let mut magic = [0u8; ENCODING.len()];
    input.fill(&mut magic)?;
    if magic != ENCODING {
        return Err(Failure::Malformed);
    }
    let layer = Digest::from_hash(input.array()?);
    let diff_id = Digest::from_hash(input.array()?);
    loop {
        let change = match input.u8()? {
            END => break,
            0 => Change::Opaque(input.path()?),
            1 => Change::Whiteout(input.path()?),
            2 => {
                let path = input.path()?;
                let (mode, uid, gid) = (input.u32()?, input.u64()?, input.u64()?);
                let capability = match input.u64()? {
                    0 => None,
                    len if len as usize > MAX_CAPABILITY_BYTES => return Err(Failure::Malformed),
                    len => {
                        let mut value = vec![0u8; len as usize];
                        input.fill(&mut value)?;
                        Some(value.into_boxed_slice())
                    }
                };
                let kind = match input.u8()? {
                    0 => NodeKind::Directory,
                    1 => NodeKind::Special,
                    2 => NodeKind::Symlink {
                        target: PathBuf::from(OsStr::from_bytes(&input.path()?)),
                    },
                    3 => {
                        let size = input.u64()?;
                        let digest = Digest::from_hash(input.array()?);
                        let count = input.u64()?;
                        if count > 16 {
                            return Err(Failure::Malformed);
                        }
                        let mut parts = Vec::new();
                        for _ in 0..count {
                            parts.push(input.u32()?);
                        }
                        NodeKind::File {
                            size,
                            digest,
                            glibc: (!parts.is_empty())
                                .then(|| Box::new(GlibcVersion::from_parts(parts))),
                        }
                    }
                    _ => return Err(Failure::Malformed),
                };
                let node = Node {
                    kind,
                    mode,
                    uid,
                    gid,
                    capability,
                };
                Change::Put(path, node)
            }
            3 => Change::HardLink {
                path: input.path()?,
                target: input.path()?,
            },
            _ => return Err(Failure::Malformed),
        };
        visit(&layer, change).map_err(Failure::Visit)?;
    }
    Ok((layer, diff_id))
}

struct EncodedWriter<'a, W: ?Sized>(&'a mut W);

impl<W: Write + ?Sized> EncodedWriter<'_, W> {
    fn header(&mut self, layer: &Digest, diff_id: &Digest) -> io::Result<()> {
        self.bytes(ENCODING)?;
        self.bytes(layer.as_bytes())?;
        self.bytes(diff_id.as_bytes())
    }

    fn change(&mut self, change: &Change) -> io::Result<()> {
        match change {
            Change::Opaque(dir) => {
                self.u8(0)?;
                self.path(dir)
            }
            Change::Whiteout(path) => {
                self.u8(1)?;
                self.path(path)
            }
            Change::Put(path, node) => {
                self.u8(2)?;
                self.path(path)?;
                self.u32(node.mode)?;
                self.u64(node.uid)?;
                self.u64(node.gid)?;
                let capability = node.capability.as_deref().unwrap_or_default();
                self.u64(capability.len() as u64)?;
                self.bytes(capability)?;
                match &node.kind {
                    NodeKind::Directory => self.u8(0),
                    NodeKind::Special => self.u8(1),
                    NodeKind::Symlink { target } => {
                        self.u8(2)?;
                        self.path(key(target))
                    }
                    NodeKind::File {
                        size,
                        digest,
                        glibc,
                    } => {
                        self.u8(3)?;
                        self.u64(*size)?;
                        self.bytes(digest.as_bytes())?;
                        let parts = glibc.as_deref().map_or(&[][..], |g| g.parts());
                        self.u64(parts.len() as u64)?;
                        parts.iter().try_for_each(|part| self.u32(*part))
                    }
                }
            }
            Change::HardLink { path, target } => {
                self.u8(3)?;
                self.path(path)?;
                self.path(target)
            }
        }
    }

    fn end(&mut self) -> io::Result<()> {
        self.u8(END)
    }

    fn u8(&mut self, value: u8) -> io::Result<()> {
        self.0.write_all(&[value])
    }
    fn u32(&mut self, value: u32) -> io::Result<()> {
        self.0.write_all(&value.to_le_bytes())
    }
    fn u64(&mut self, value: u64) -> io::Result<()> {
        self.0.write_all(&value.to_le_bytes())
    }
    fn bytes(&mut self, value: &[u8]) -> io::Result<()> {
        self.0.write_all(value)
    }
    fn path(&mut self, path: &[u8]) -> io::Result<()> {
        self.u64(path.len() as u64)?;
        self.bytes(path)
    }
}

struct EncodedReader<'a, R>(&'a mut R);

impl<R: Read> EncodedReader<'_, R> {
    fn fill(&mut self, buf: &mut [u8]) -> std::result::Result<(), Failure> {
        self.0.read_exact(buf).map_err(|_| Failure::Malformed)
    }
    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], Failure> {
        let mut buf = [0u8; N];
        self.fill(&mut buf)?;
        Ok(buf)
    }
    fn u8(&mut self) -> std::result::Result<u8, Failure> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> std::result::Result<u32, Failure> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> std::result::Result<u64, Failure> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn path(&mut self) -> std::result::Result<Key, Failure> {
        let len = self.u64()?;
        if len > MAX_PATH_BYTES {
            return Err(Failure::Malformed);
        }
        let mut buf = vec![0u8; len as usize];
        self.fill(&mut buf)?;
        Ok(buf.into_boxed_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type;
    use crate::testing::{gzip_layer, gzip_tar, tar_of, Raw};

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn read(store: &BlobStore, layers: &[&[Raw<'_>]]) -> Result<FileTree> {
        let (descriptors, diff_ids): (Vec<_>, Vec<_>) =
            layers.iter().map(|l| gzip_layer(store, l)).unzip();
        FileTree::read_layers(store, &descriptors, &diff_ids)
    }

    fn paths(tree: &FileTree) -> Vec<String> {
        tree.iter().map(|(p, _)| p.display().to_string()).collect()
    }

    #[test]
    fn each_file_gets_the_digest_of_its_own_bytes() {
        let (_dir, store) = store();
        // Sizes around the hashing thread's chunks, an empty file, and a name long enough for
        // an extension header before its entry.
        let long = format!("srv/{}/deep", "n".repeat(150));
        let files: Vec<(String, Vec<u8>)> = [0, 1, 511, 512, HASHED_CHUNK - 700, HASHED_CHUNK * 3]
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                (
                    format!("f{i}"),
                    (0..size).map(|b| (b * 7 + i) as u8).collect(),
                )
            })
            .chain([(long.clone(), b"at the end of a long name".to_vec())])
            .collect();
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in &files {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_size(bytes.len() as u64);
            builder.append_data(&mut header, name, &bytes[..]).unwrap();
        }
        let (blob, diff_id) = gzip_tar(&store, &builder.into_inner().unwrap());
        let tree = FileTree::read_layers(&store, &[blob], &[diff_id]).unwrap();
        for (name, bytes) in &files {
            let node = tree.get(Path::new(name)).unwrap();
            let NodeKind::File { size, digest, .. } = &node.kind else {
                panic!("{name} is not a file: {node:?}");
            };
            assert_eq!(
                (*size, *digest),
                (bytes.len() as u64, Digest::of(bytes)),
                "{name}"
            );
        }
    }

    #[test]
    fn whiteouts_hide_lower_layers_in_order() {
        let (_dir, store) = store();
        let tree = read(
            &store,
            &[
                &[
                    Raw::Dir("etc/", 0o755),
                    Raw::File("etc/motd", b"hi", 0o644),
                    Raw::File("etc/passwd", b"root", 0o644),
                    Raw::Dir("var/cache/", 0o755),
                    Raw::File("var/cache/a", b"a", 0o644),
                    Raw::File("var/cache/b", b"b", 0o644),
                ],
                &[
                    Raw::File("etc/.wh.motd", b"", 0o644),
                    // Written before the opaque marker, and still kept: it is this layer's own.
                    Raw::File("var/cache/new", b"n", 0o644),
                    Raw::File("var/cache/.wh..wh..opq", b"", 0o644),
                ],
            ],
        )
        .unwrap();
        assert_eq!(
            paths(&tree),
            ["etc", "etc/passwd", "var/cache", "var/cache/new"]
        );
        let passwd = tree.get(Path::new("etc/passwd")).unwrap();
        assert_eq!(
            passwd.kind,
            NodeKind::File {
                size: 4,
                digest: Digest::of(b"root"),
                glibc: None
            }
        );
    }

    #[test]
    fn a_file_replaces_a_directory_and_its_contents() {
        let (_dir, store) = store();
        let tree = read(
            &store,
            &[
                &[Raw::Dir("opt/", 0o755), Raw::File("opt/x", b"x", 0o644)],
                &[Raw::Symlink("opt", "usr/opt")],
            ],
        )
        .unwrap();
        assert_eq!(paths(&tree), ["opt"]);
    }

    /// A distribution's root filesystem has `/dev/console`: kept, and a later layer may white
    /// it out or replace it.
    #[test]
    fn device_nodes_of_a_parent_are_kept_not_refused() {
        let (_dir, store) = store();
        let tree = read(
            &store,
            &[
                &[
                    Raw::Dir("dev/", 0o755),
                    Raw::Device("dev/console"),
                    Raw::Device("dev/null"),
                ],
                &[
                    Raw::File("dev/.wh.null", b"", 0o644),
                    Raw::File("dev/console", b"c", 0o644),
                ],
            ],
        )
        .unwrap();
        assert_eq!(paths(&tree), ["dev", "dev/console"]);
        let (_dir, store) = self::store();
        let tree = read(&store, &[&[Raw::Device("dev/tty")]]).unwrap();
        assert_eq!(
            tree.get(Path::new("dev/tty")).unwrap().kind,
            NodeKind::Special
        );
    }

    #[test]
    fn hostile_and_invalid_entries_are_errors_naming_layer_and_entry() {
        let cases: [(&[Raw<'_>], &str); 6] = [
            (
                &[Raw::File("../escape", b"x", 0o644)],
                "`..` is not allowed",
            ),
            (
                &[Raw::File("/etc/passwd", b"x", 0o644)],
                "absolute paths are not allowed",
            ),
            (
                &[Raw::File("a", b"1", 0o644), Raw::File("./a", b"2", 0o644)],
                "appears twice",
            ),
            (
                &[Raw::HardLink("link", "../../etc/shadow")],
                "points outside the root",
            ),
            (
                &[Raw::HardLink("link", "missing")],
                "is not a file of the image",
            ),
            (
                &[Raw::File(".wh..", b"", 0o644)],
                "a whiteout must name an entry",
            ),
        ];
        for (entries, reason) in cases {
            let (_dir, store) = store();
            let (layer, diff_id) = gzip_layer(&store, entries);
            let error = FileTree::read_layers(&store, std::slice::from_ref(&layer), &[diff_id])
                .unwrap_err();
            assert!(
                matches!(&error, Error::HostileLayerEntry { layer: l, .. }
                    | Error::InvalidLayerEntry { layer: l, .. } if *l == layer.digest),
                "{error}"
            );
            assert!(error.to_string().contains(reason), "{error}");
            // Only what could escape is called hostile.
            let escapes = ["`..`", "absolute", "outside the root"];
            assert_eq!(
                matches!(error, Error::HostileLayerEntry { .. }),
                escapes.iter().any(|e| reason.contains(e)),
                "{error}"
            );
        }
    }

    #[test]
    fn corrupt_layers_are_caught() {
        let (_dir, store) = store();
        let entries = [Raw::File("a", b"hello", 0o644)];
        let (layer, diff_id) = gzip_layer(&store, &entries);

        let wrong_diff_id = Digest::of(b"something else");
        let error = FileTree::read_layers(&store, std::slice::from_ref(&layer), &[wrong_diff_id])
            .unwrap_err();
        assert!(matches!(error, Error::DiffIdMismatch { .. }), "{error}");

        let blob = store.read(&layer).unwrap();
        let truncated = store
            .put(media_type::OCI_LAYER_GZIP, &blob[..blob.len() / 2])
            .unwrap();
        let error = FileTree::read_layers(&store, &[truncated], std::slice::from_ref(&diff_id))
            .unwrap_err();
        assert!(matches!(error, Error::LayerRead { .. }), "{error}");

        std::fs::write(store.blob_path(&layer.digest), tar_of(&entries)).unwrap();
        let error = FileTree::read_layers(
            &store,
            std::slice::from_ref(&layer),
            std::slice::from_ref(&diff_id),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains(&layer.digest.to_string()),
            "{error}"
        );

        let mut unknown = layer.clone();
        unknown.media_type = "application/vnd.example.layer.v1.tar+lz4".into();
        let error = FileTree::read_layers(&store, &[unknown], &[diff_id]).unwrap_err();
        assert!(
            matches!(error, Error::UnsupportedMediaType { .. }),
            "{error}"
        );
    }

    #[test]
    fn zstd_layers_are_read_like_gzip_ones() {
        let (_dir, store) = store();
        let entries = [Raw::Dir("etc/", 0o755), Raw::File("etc/motd", b"hi", 0o644)];
        let tar = tar_of(&entries);
        let blob = zstd::bulk::compress(&tar, 3).unwrap();
        let layer = store.put(media_type::OCI_LAYER_ZSTD, &blob).unwrap();
        let tree = FileTree::read_layers(&store, std::slice::from_ref(&layer), &[Digest::of(&tar)])
            .unwrap();
        assert_eq!(paths(&tree), ["etc", "etc/motd"]);

        let mut mislabelled = store.put(media_type::OCI_LAYER_GZIP, &blob).unwrap();
        mislabelled.media_type = media_type::OCI_LAYER_GZIP.into();
        let error = FileTree::read_layers(&store, &[mislabelled], &[Digest::of(&tar)]);
        assert!(matches!(error, Err(Error::LayerRead { .. })), "{error:?}");
    }

    #[test]
    fn names_that_are_not_utf8_stay_distinct() {
        let (_dir, store) = store();
        let tar = {
            let mut builder = tar::Builder::new(Vec::new());
            for name in [&b"caf\xe9"[..], &b"caf\xe8"[..]] {
                let mut header = tar::Header::new_gnu();
                header.as_old_mut().name[..name.len()].copy_from_slice(name);
                header.set_size(0);
                header.set_mode(0o644);
                header.set_uid(0);
                header.set_gid(0);
                header.set_mtime(0);
                header.set_entry_type(tar::EntryType::Regular);
                header.set_cksum();
                builder.append(&header, io::empty()).unwrap();
            }
            builder.into_inner().unwrap()
        };
        let layer = store.put(media_type::OCI_LAYER_TAR, &tar).unwrap();
        let tree = FileTree::read_layers(&store, &[layer], &[Digest::of(&tar)]).unwrap();
        assert_eq!(tree.len(), 2);
    }

    /// A tar of one file `app` whose PAX header holds `records`.
    fn with_pax(records: &[(&str, &[u8])]) -> Vec<u8> {
        crate::testing::tar_with_pax("app", records, 1, b"x", 0o755)
    }

    #[test]
    fn a_pax_size_is_the_files_size() {
        let (_dir, store) = store();
        // A header that says 0 and a PAX record that says 5, as Go writes a file too large
        // for the header's field.
        let tar = crate::testing::tar_with_pax("big", &[("size", b"5")], 0, b"12345", 0o644);
        let (blob, diff_id) = gzip_tar(&store, &tar);
        let tree = FileTree::read_layers(&store, &[blob], &[diff_id]).unwrap();
        let node = tree.get(Path::new("big")).unwrap();
        let NodeKind::File { size, digest, .. } = &node.kind else {
            panic!("{node:?}")
        };
        assert_eq!((*size, *digest), (5, Digest::of(b"12345")));
    }

    #[test]
    fn a_capability_is_read_from_the_pax_header_other_attributes_are_not() {
        let (_dir, store) = store();
        let capability = crate::capability::Capabilities::parse(&["net_raw"]).unwrap();
        let value = capability.xattr().unwrap();
        let tar = with_pax(&[
            ("SCHILY.xattr.user.comment", b"hello"),
            ("SCHILY.xattr.security.capability", &value),
        ]);
        let layer = store.put(media_type::OCI_LAYER_TAR, &tar).unwrap();
        let tree = FileTree::read_layers(&store, &[layer], &[Digest::of(&tar)]).unwrap();
        let node = tree.get(Path::new("app")).unwrap();
        assert_eq!(node.capability.as_deref(), Some(&value[..]));

        let huge = vec![1u8; MAX_CAPABILITY_BYTES + 1];
        let tar = with_pax(&[("SCHILY.xattr.security.capability", &huge)]);
        let layer = store.put(media_type::OCI_LAYER_TAR, &tar).unwrap();
        let error = FileTree::read_layers(&store, &[layer], &[Digest::of(&tar)]).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidLayerEntry { entry, .. } if entry == "app"),
            "{error}"
        );
        assert!(error.to_string().contains("too long"), "{error}");
    }

    #[test]
    fn changes_survive_their_encoding_and_refuse_a_damaged_one() {
        let (_dir, store) = store();
        let (layer, diff_id) = gzip_layer(
            &store,
            &[
                Raw::Dir("lib/", 0o755),
                Raw::File("lib/libc.so.6", b"not really", 0o755),
                Raw::Symlink("lib64", "lib"),
                Raw::HardLink("lib/libc-again", "lib/libc.so.6"),
                Raw::File("lib/.wh.old", b"", 0o644),
                Raw::File("var/.wh..wh..opq", b"", 0o644),
            ],
        );
        let changes = LayerChanges::read(&store, &layer, &diff_id).unwrap();
        let encoded = changes.encode();
        assert_eq!(LayerChanges::decode(&encoded), Some(changes));
        for cut in [0, 10, encoded.len() / 2, encoded.len() - 1] {
            assert_eq!(LayerChanges::decode(&encoded[..cut]), None, "cut at {cut}");
        }
        let mut longer = encoded.clone();
        longer.push(0);
        assert_eq!(LayerChanges::decode(&longer), None);
    }
}
