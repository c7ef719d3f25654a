//! Deterministic layers: a set of entries written as a tar stream, compressed, and hashed twice
//! (the tar's `diff_id` and the blob's digest) in one pass straight into the blob store.
//!
//! Determinism is by construction: entries are kept sorted by path (component-wise, so a
//! directory always precedes its contents), every header is built by hand with the entry's
//! owner (uid/gid 0 unless one is given), the caller's mtime and an explicit mode, and long names
//! use the GNU scheme of the `tar` crate. A file with capabilities gets a PAX header of its own
//! before it, holding the `security.capability` attribute; no other entry has one.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use crate::capability::Capabilities;
pub use crate::compress::Compression;
use crate::compress::Encoder;
use crate::descriptor::Descriptor;
use crate::digest::{Digest, DigestWriter};
use crate::error::{Error, Result};
use crate::media_type;
use crate::path::{absolute, image_path};
use crate::store::{BlobStore, IO_BUFFER};
use crate::timestamp::Timestamp;

/// Mode of directories and executables; other files get [`FILE_MODE`].
pub const EXECUTABLE_MODE: u32 = 0o755;
/// Mode of files nobody runs.
pub const FILE_MODE: u32 = 0o644;

/// The one modification time of every entry of a new layer, whatever the image's date, so a
/// layer's bytes depend on its contents alone and an unchanged layer keeps its digest from
/// release to release: 1970-01-01T00:00:01Z. One second past the epoch, as Jib chose, because
/// Java's `File.lastModified` answers 0 for a file it cannot read, so Spring (and others)
/// take an mtime of 0 for a missing file.
pub const FIXED_MTIME: Timestamp = Timestamp(1);

/// Who owns an entry, by number as a layer records it: `0:0` (root) unless chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The user ID.
    pub uid: u32,
    /// The group ID.
    pub gid: u32,
}

impl Owner {
    /// `0:0`, every entry's owner unless another is chosen.
    pub const ROOT: Owner = Owner { uid: 0, gid: 0 };
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// What the entries staged from one source get instead of the defaults (owned by root,
/// directories 0755, files 0755 or 0644 by their owner's execute bit, no capabilities).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attributes {
    /// The owner of every entry.
    pub owner: Option<Owner>,
    /// The mode of every file.
    pub file_mode: Option<u32>,
    /// The mode of every directory.
    pub dir_mode: Option<u32>,
    /// The capabilities of every file.
    pub capabilities: Capabilities,
}

/// What one path of a layer is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entry {
    /// A directory.
    Directory {
        /// Permission bits, e.g. `0o755`.
        mode: u32,
        /// Its owner.
        owner: Owner,
    },
    /// A regular file.
    File {
        /// Where its bytes come from.
        source: FileSource,
        /// Permission bits, e.g. `0o644`.
        mode: u32,
        /// Its owner.
        owner: Owner,
        /// Its file capabilities, written as its `security.capability` attribute.
        capabilities: Capabilities,
    },
    /// A symbolic link, stored as it is and never followed.
    Symlink {
        /// What the link points to, e.g. `../lib/libssl.so.3` or `/usr/bin/app`.
        target: PathBuf,
        /// Its owner.
        owner: Owner,
    },
    /// An empty marker file: `.wh.NAME` hides a lower `NAME`, `.wh..wh..opq` hides everything a
    /// lower layer has in its directory. Stored under its own name.
    Whiteout,
}

/// Where a file's bytes come from; files on disk are streamed when the layer is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// A file on the host, read when the layer is written.
    Disk(PathBuf),
    /// Bytes given in memory.
    Bytes(Vec<u8>),
}

/// The contents of one layer, keyed by path relative to the image root.
#[derive(Debug, Clone, Default)]
pub struct LayerContents {
    entries: BTreeMap<PathBuf, Entry>,
    /// Keep the permission bits found on disk instead of 0755/0644 (for a full root filesystem).
    preserve_modes: bool,
    /// The directories whose owner or mode the caller chose: written over a parent's directory
    /// that differs, where any other directory the parent has is left as the parent has it.
    chosen: BTreeSet<PathBuf>,
}

impl LayerContents {
    /// An empty layer; what is added from disk gets mode 0755 or 0644.
    pub fn new() -> Self {
        Self::default()
    }

    /// A layer whose files from disk keep their permission bits, as a root filesystem needs.
    pub fn preserving_modes() -> Self {
        LayerContents {
            preserve_modes: true,
            ..Self::default()
        }
    }

    /// The entry at `path`, relative to the image root (`usr/bin/app`).
    pub fn get(&self, path: &Path) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Adds an entry as it is, without the directories above it: for a layer that is a
    /// difference, where those directories come from below.
    pub(crate) fn insert_exact(&mut self, path: PathBuf, entry: Entry) {
        self.entries.insert(path, entry);
    }

    /// Whether the owner or mode of the directory at `path` was chosen, not a default.
    pub fn is_chosen(&self, path: &Path) -> bool {
        self.chosen.contains(path)
    }

    /// Whether nothing was added; an empty layer is left out of an image.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A digest of what the layer's tar is made of, found without reading a file: every
    /// entry's path, kind and mode, the bytes given, and for each file on disk its device,
    /// inode, size, modification and change times (as git's index); and `mtime`, every
    /// entry's date. The same stamp, the same tar: a file rewritten in place moves its change
    /// time even when its size and modification time are kept (`tar`, `touch -d`).
    /// `None` while a file on disk has not settled: modified or changed within the current
    /// clock tick, when it could change again with the same times (git's "racy" entries).
    pub fn stamp(&self, mtime: Timestamp) -> Option<Digest> {
        use std::os::unix::fs::MetadataExt;
        let mut stamp = format!("cargo-oci tar 1\n{}\n", mtime.0).into_bytes();
        for (path, entry) in &self.entries {
            stamp.extend_from_slice(path.as_os_str().as_encoded_bytes());
            let line = match entry {
                Entry::Directory { mode, owner } => format!("\0dir {mode}{}\n", owner_stamp(owner)),
                Entry::Whiteout => "\0whiteout\n".to_owned(),
                Entry::Symlink { target, owner } => {
                    let target = target.as_os_str().as_encoded_bytes();
                    format!("\0link {}{}\n", Digest::of(target), owner_stamp(owner))
                }
                Entry::File {
                    source: FileSource::Bytes(bytes),
                    mode,
                    owner,
                    capabilities,
                } => format!(
                    "\0bytes {mode} {}{}{}\n",
                    Digest::of(bytes),
                    owner_stamp(owner),
                    capability_stamp(*capabilities)
                ),
                Entry::File {
                    source: FileSource::Disk(source),
                    mode,
                    owner,
                    capabilities,
                } => {
                    let metadata = fs::metadata(source).ok()?;
                    if !crate::store::settled(&metadata) {
                        return None;
                    }
                    format!(
                        "\0file {mode} {} {} {} {} {} {} {}{}{}\n",
                        metadata.dev(),
                        metadata.ino(),
                        metadata.len(),
                        metadata.mtime(),
                        metadata.mtime_nsec(),
                        metadata.ctime(),
                        metadata.ctime_nsec(),
                        owner_stamp(owner),
                        capability_stamp(*capabilities)
                    )
                }
            };
            stamp.extend_from_slice(line.as_bytes());
        }
        Some(Digest::of(&stamp))
    }

    /// Every entry, sorted, parent directories included.
    pub fn entries(&self) -> impl Iterator<Item = (&Path, &Entry)> {
        self.entries
            .iter()
            .map(|(path, entry)| (path.as_path(), entry))
    }

    /// Copies what is at `source` on disk to `dest` in the image: a file (mode 0755 if its owner
    /// may execute it, else 0644), a symbolic link (stored as a link, never followed), or a
    /// directory with everything under it.
    pub fn add_path(&mut self, dest: &str, source: &Path) -> Result<()> {
        self.add_path_with(dest, source, &Attributes::default())
    }

    /// [`Self::add_path`], every entry it stages given `attributes` instead of the defaults.
    pub fn add_path_with(
        &mut self,
        dest: &str,
        source: &Path,
        attributes: &Attributes,
    ) -> Result<()> {
        let dest = image_path(dest)?;
        self.add_from_disk(dest, source, attributes)
    }

    fn add_from_disk(
        &mut self,
        dest: PathBuf,
        source: &Path,
        attributes: &Attributes,
    ) -> Result<()> {
        let metadata =
            fs::symlink_metadata(source).map_err(Error::io("read metadata of", source))?;
        let file_type = metadata.file_type();
        let owner = attributes.owner.unwrap_or(Owner::ROOT);
        if file_type.is_symlink() {
            let target = fs::read_link(source).map_err(Error::io("read link", source))?;
            self.insert(dest, Entry::Symlink { target, owner })
        } else if file_type.is_file() {
            // 0755 if its owner may run it, else 0644, never more than it had on disk.
            let on_disk = metadata.permissions().mode() & 0o7777;
            let mode = match attributes.file_mode {
                Some(mode) => mode,
                None if self.preserve_modes => on_disk,
                None if on_disk & 0o100 != 0 => EXECUTABLE_MODE & on_disk,
                None => FILE_MODE & on_disk,
            };
            let source = FileSource::Disk(source.to_owned());
            let capabilities = attributes.capabilities;
            self.insert(
                dest,
                Entry::File {
                    source,
                    mode,
                    owner,
                    capabilities,
                },
            )
        } else if file_type.is_dir() {
            let on_disk = metadata.permissions().mode() & 0o7777;
            let mode = match attributes.dir_mode {
                Some(mode) => mode,
                None if self.preserve_modes => on_disk,
                None => EXECUTABLE_MODE & on_disk,
            };
            let chosen = attributes.owner.is_some() || attributes.dir_mode.is_some();
            self.insert_directory(dest.clone(), mode, owner, chosen)?;
            for child in fs::read_dir(source).map_err(Error::io("read directory", source))? {
                let child = child.map_err(Error::io("read directory", source))?;
                self.add_from_disk(dest.join(child.file_name()), &child.path(), attributes)?;
            }
            Ok(())
        } else {
            Err(Error::UnsupportedFileType {
                path: source.to_owned(),
            })
        }
    }

    /// Adds a file holding `bytes` at `dest`, an absolute path in the image, with `mode`.
    pub fn add_bytes(&mut self, dest: &str, bytes: Vec<u8>, mode: u32) -> Result<()> {
        self.insert(
            image_path(dest)?,
            Entry::File {
                source: FileSource::Bytes(bytes),
                mode,
                owner: Owner::ROOT,
                capabilities: Capabilities::NONE,
            },
        )
    }

    /// Adds the file at `source` on disk (read when the layer is written) with `mode`.
    pub fn add_file(&mut self, dest: &str, source: PathBuf, mode: u32) -> Result<()> {
        self.insert(
            image_path(dest)?,
            Entry::File {
                source: FileSource::Disk(source),
                mode,
                owner: Owner::ROOT,
                capabilities: Capabilities::NONE,
            },
        )
    }

    /// Adds a symbolic link at `dest` pointing to `target`, e.g. `/usr/bin/app` → `app-1.2`.
    pub fn add_symlink(&mut self, dest: &str, target: &str) -> Result<()> {
        self.insert(
            image_path(dest)?,
            Entry::Symlink {
                target: target.into(),
                owner: Owner::ROOT,
            },
        )
    }

    /// Adds a directory at `dest` with `mode`; one already there keeps its mode.
    pub fn add_directory(&mut self, dest: &str, mode: u32) -> Result<()> {
        self.insert_directory(image_path(dest)?, mode, Owner::ROOT, false)
    }

    /// Adds an empty directory at `dest` owned by `owner` with `mode`, chosen: written over a
    /// parent's directory that differs, and over the default one another entry implied.
    pub fn add_chosen_directory(&mut self, dest: &str, mode: u32, owner: Owner) -> Result<()> {
        self.insert_directory(image_path(dest)?, mode, owner, true)
    }

    /// Adds a directory; a chosen one replaces a directory already there that was not.
    fn insert_directory(
        &mut self,
        path: PathBuf,
        mode: u32,
        owner: Owner,
        chosen: bool,
    ) -> Result<()> {
        let entry = Entry::Directory { mode, owner };
        if chosen && !self.chosen.contains(&path) {
            if let Some(Entry::Directory { .. }) = self.entries.get(&path) {
                self.entries.insert(path.clone(), entry.clone());
            }
            self.chosen.insert(path.clone());
        }
        self.insert(path, entry)
    }

    /// Adds `entry` and the directories above it that are not there yet.
    fn insert(&mut self, path: PathBuf, entry: Entry) -> Result<()> {
        for ancestor in path
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
        {
            match self.entries.get(ancestor) {
                Some(Entry::Directory { .. }) => break,
                Some(_) => {
                    return Err(Error::NotADirectory {
                        path: absolute(ancestor),
                    })
                }
                None => {
                    self.entries.insert(
                        ancestor.to_owned(),
                        Entry::Directory {
                            mode: EXECUTABLE_MODE,
                            owner: Owner::ROOT,
                        },
                    );
                }
            }
        }
        match (self.entries.get(&path), &entry) {
            (None, _) => {
                self.entries.insert(path, entry);
                Ok(())
            }
            // Two sources may fill the same directory; its attributes are ours either way.
            (Some(Entry::Directory { .. }), Entry::Directory { .. }) => Ok(()),
            (Some(Entry::Directory { .. }), _) => Err(Error::NotADirectory {
                path: absolute(&path),
            }),
            (Some(_), _) => Err(Error::DuplicatePath {
                path: absolute(&path),
            }),
        }
    }
}

/// What a stamp line adds for an owner other than root: nothing for root, so a layer of
/// defaults keeps the stamp it had before owners could be chosen.
fn owner_stamp(owner: &Owner) -> String {
    match *owner {
        Owner::ROOT => String::new(),
        owner => format!(" owner {owner}"),
    }
}

/// What a stamp line adds for capabilities: nothing for none.
fn capability_stamp(capabilities: Capabilities) -> String {
    match capabilities.xattr() {
        None => String::new(),
        Some(value) => format!(" xattr {}", Digest::of(&value)),
    }
}

/// A layer blob in the store, with the digest of its uncompressed tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The blob, compressed or not.
    pub descriptor: Descriptor,
    /// The digest of the uncompressed tar, listed in the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
}

/// Writes `contents` as one tar into the store, compressed as asked, every entry dated `mtime`.
pub fn write_layer(
    store: &BlobStore,
    contents: &LayerContents,
    compression: Compression,
    mtime: Timestamp,
) -> Result<Layer> {
    let failed = |e: Error| e.for_destination("write a layer to", store.root());
    let blob = Encoder::new(store.writer()?, compression);
    let (diff_id, _, blob) = write_tar(contents, DigestWriter::new(blob), mtime)
        .map_err(failed)?
        .finish();
    let blob = blob
        .finish()
        .map_err(Error::io("write a layer to", store.root()))?;
    let (digest, size) = blob.commit()?;
    Ok(Layer {
        descriptor: Descriptor::new(compression.media_type(), digest, size),
        diff_id,
    })
}

/// Writes `contents` as its uncompressed tar into the store, under its digest (the layer's
/// diff_id), every entry dated `mtime`: the layer as an engine that stores layers unpacked
/// takes it ([`crate::build_image_unpacked_first`]). Returns the tar's descriptor, and whether
/// it was kept: a tar of the same bytes there already is left as it was (it may be a layer of
/// its own).
pub(crate) fn write_tar_blob(
    store: &BlobStore,
    contents: &LayerContents,
    mtime: Timestamp,
) -> Result<(Descriptor, bool)> {
    let failed = |e: Error| e.for_destination("write a layer to", store.root());
    let out =
        write_tar(contents, DigestWriter::new(store.known_writer()?), mtime).map_err(failed)?;
    let (diff_id, size, tar) = out.finish();
    let kept = !store.contains(&diff_id);
    if kept {
        tar.commit_as(diff_id)?;
    }
    let descriptor = Descriptor::new(media_type::OCI_LAYER_TAR, diff_id, size);
    Ok((descriptor, kept))
}

/// Writes `contents` as a deterministic tar stream into `out` and returns `out`. Layers and
/// image archives are both written this way.
pub fn write_tar<W: Write>(contents: &LayerContents, out: W, mtime: Timestamp) -> Result<W> {
    let mut tar = tar::Builder::new(out);
    for (path, entry) in contents.entries() {
        append_entry(&mut tar, path, entry, mtime)?;
    }
    tar.into_inner().map_err(|source| Error::Io {
        action: "finish a tar stream",
        path: PathBuf::new(),
        source,
    })
}

fn append_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    entry: &Entry,
    mtime: Timestamp,
) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    let owner = match entry {
        Entry::Directory { owner, .. }
        | Entry::File { owner, .. }
        | Entry::Symlink { owner, .. } => *owner,
        Entry::Whiteout => Owner::ROOT,
    };
    header.set_uid(owner.uid.into());
    header.set_gid(owner.gid.into());
    header.set_mtime(mtime.0);
    let failed = |source| Error::Io {
        action: "write tar entry",
        path: path.to_owned(),
        source,
    };
    if let Entry::File { capabilities, .. } = entry {
        if let Some(value) = capabilities.xattr() {
            let record = pax_record(
                &format!("SCHILY.xattr.{}", crate::capability::XATTR),
                &value,
            );
            append_pax_header(tar, path, &record, mtime).map_err(failed)?;
        }
    }
    match entry {
        Entry::Directory { mode, .. } => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(*mode);
            header.set_size(0);
            tar.append_data(&mut header, path, io::empty())
                .map_err(failed)
        }
        Entry::Symlink { target, .. } => {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            tar.append_link(&mut header, path, target).map_err(failed)
        }
        Entry::Whiteout => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(FILE_MODE);
            header.set_size(0);
            tar.append_data(&mut header, path, io::empty())
                .map_err(failed)
        }
        Entry::File {
            source: FileSource::Bytes(bytes),
            mode,
            ..
        } => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(*mode);
            header.set_size(bytes.len() as u64);
            tar.append_data(&mut header, path, bytes.as_slice())
                .map_err(failed)
        }
        Entry::File {
            source: FileSource::Disk(source),
            mode,
            ..
        } => {
            let file = File::open(source).map_err(Error::io("open", source))?;
            let size = file
                .metadata()
                .map_err(Error::io("read metadata of", source))?
                .len();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(*mode);
            header.set_size(size);
            let buffer = usize::try_from(size).map_or(IO_BUFFER, |s| s.clamp(1, IO_BUFFER));
            let exact = ExactSize {
                inner: io::BufReader::with_capacity(buffer, file.take(size)),
                remaining: size,
            };
            tar.append_data(&mut header, path, exact)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof => Error::FileChanged {
                        path: source.clone(),
                    },
                    _ => Error::io("pack", source)(e),
                })
        }
    }
}

/// One PAX record: `LEN KEY=VALUE\n`, where LEN counts the whole record, its own digits too.
pub(crate) fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // the space, `=` and the newline
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// A PAX extended header (`x`) for the entry at `path`, which follows it, named as Go's
/// `archive/tar` names one (`PaxHeaders.0/NAME`, cut to the 100 bytes of a name field): the
/// name is never used, but a fixed one keeps the bytes reproducible.
fn append_pax_header<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    records: &[u8],
    mtime: Timestamp,
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    let mut name = b"PaxHeaders.0/".to_vec();
    name.extend_from_slice(path.file_name().unwrap_or_default().as_encoded_bytes());
    name.truncate(100);
    header.as_old_mut().name[..name.len()].copy_from_slice(&name);
    header.set_entry_type(tar::EntryType::XHeader);
    header.set_mode(FILE_MODE);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime.0);
    header.set_size(records.len() as u64);
    header.set_cksum();
    tar.append(&header, records)
}

/// Yields exactly the size written in the tar header, or fails: a file that shrank while being
/// packed must not produce an archive whose header lies.
struct ExactSize<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactSize<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.remaining > 0 && !buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type;
    use crate::testing::{list_tar, Listed};
    use flate2::read::MultiGzDecoder;

    fn sample() -> LayerContents {
        let mut contents = LayerContents::new();
        contents
            .add_bytes(
                "/usr/local/bin/app",
                b"\x7fELF pretend".to_vec(),
                EXECUTABLE_MODE,
            )
            .unwrap();
        contents
            .add_bytes("/etc/app/config.toml", b"port = 8080\n".to_vec(), FILE_MODE)
            .unwrap();
        contents
            .add_symlink("/usr/bin/app", "../local/bin/app")
            .unwrap();
        contents
    }

    #[test]
    fn entries_are_sorted_with_parents_owned_by_root_and_dated_by_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let layer = write_layer(
            &store,
            &sample(),
            Compression::None,
            Timestamp(1_700_000_000),
        )
        .unwrap();
        assert_eq!(
            layer.descriptor.digest, layer.diff_id,
            "an uncompressed blob is its own tar"
        );
        let tar_bytes = store.read(&layer.descriptor).unwrap();
        let entries = list_tar(tar_bytes.as_slice());
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc",
                "etc/app",
                "etc/app/config.toml",
                "usr",
                "usr/bin",
                "usr/bin/app",
                "usr/local",
                "usr/local/bin",
                "usr/local/bin/app"
            ]
        );
        for Listed {
            path,
            mode,
            uid,
            gid,
            mtime,
            kind,
        } in entries
        {
            assert_eq!((uid, gid, mtime), (0, 0, 1_700_000_000), "{path}");
            let expected_mode = match path.as_str() {
                "etc/app/config.toml" => FILE_MODE,
                "usr/bin/app" => 0o777,
                _ => EXECUTABLE_MODE,
            };
            assert_eq!(mode, expected_mode, "{path}");
            assert_eq!(
                kind.is_dir(),
                !path.contains("app") || path == "etc/app",
                "{path}"
            );
        }
    }

    #[test]
    fn gzip_blob_decompresses_to_the_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let layer = write_layer(&store, &sample(), Compression::Gzip, Timestamp::DEFAULT).unwrap();
        assert_eq!(layer.descriptor.media_type, media_type::OCI_LAYER_GZIP);
        let blob = store.read(&layer.descriptor).unwrap();
        let mut tar_bytes = Vec::new();
        MultiGzDecoder::new(blob.as_slice())
            .read_to_end(&mut tar_bytes)
            .unwrap();
        assert_eq!(Digest::of(&tar_bytes), layer.diff_id);
        // The gzip header carries no time and a fixed OS byte.
        assert_eq!(&blob[4..8], &[0, 0, 0, 0]);
        assert_eq!(blob[9], 255);
    }

    /// The bytes of a layer are a contract: a change of tar headers, of the compressors, their
    /// levels or chunk sizes shows up here first. Update these digests only on purpose, with
    /// `Compression::settings`, and say why in the commit.
    #[test]
    fn golden_layer_digests() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let digests = |contents: &LayerContents| -> Vec<String> {
            let layers: Vec<Layer> = [Compression::None, Compression::Gzip, Compression::Zstd]
                .into_iter()
                .map(|c| write_layer(&store, contents, c, FIXED_MTIME).unwrap())
                .collect();
            assert!(layers.iter().all(|l| l.diff_id == layers[0].diff_id));
            layers
                .iter()
                .map(|l| l.descriptor.digest.to_string())
                .collect()
        };
        assert_eq!(
            digests(&sample()),
            [
                "sha256:ae030ac209aa1bcef92b166ee2e8cd0dbbd8d9a5cf573a94540e9e733712a9e0",
                "sha256:40cfb5cb6d2f4fcb542e75907c549c9b7df75ca4ca443c4d0a3cc6b36f1584fb",
                "sha256:6a2ef58aa216f43f7cb4a90f884b0e619def372847a6e297336d123ab7014d00",
            ]
        );
        // Several chunks: nine gzip members and a tenth, three zstd frames.
        let mut large = LayerContents::new();
        let mut bytes = Vec::new();
        let mut state = 1u64;
        while bytes.len() < 9 << 20 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            bytes.extend_from_slice(format!("{:x} ", state >> 50).as_bytes());
        }
        large
            .add_bytes("/usr/local/bin/large", bytes, EXECUTABLE_MODE)
            .unwrap();
        assert_eq!(
            digests(&large),
            [
                "sha256:86267bc90b8aaf7556ba659151258a43348ebf6100a70d1422128180369e90da",
                "sha256:586c130ace40757f59239516a43b90e2ff3ccdf7277392daebf66043f6b36370",
                "sha256:634d07e37f1c866fb918417737d6f116f27b668580135ced349ae9d58b585e7d",
            ]
        );
        // Owners, modes and capabilities chosen: the PAX header is part of the contract.
        let mut nonroot = sample();
        let owner = Owner {
            uid: 65532,
            gid: 65532,
        };
        nonroot.add_chosen_directory("/data", 0o750, owner).unwrap();
        let binary = tempfile::NamedTempFile::new().unwrap();
        fs::write(binary.path(), b"\x7fELF pretend").unwrap();
        let attributes = Attributes {
            owner: Some(owner),
            file_mode: Some(0o750),
            capabilities: Capabilities::parse(&["NET_BIND_SERVICE"]).unwrap(),
            ..Attributes::default()
        };
        nonroot
            .add_path_with("/usr/local/bin/server", binary.path(), &attributes)
            .unwrap();
        assert_eq!(
            digests(&nonroot),
            [
                "sha256:2bbbf42bb58e73bac37186e30f1cde98122d65672f222dc49e080a3672ccdb78",
                "sha256:05f0c1772264f6ca4fd74a39594c943d21ff0e429e2edabe92ef9a060b4bb34a",
                "sha256:6cd74ade816655371430b13c036a575f29b9b0528ec0228626c28e449acb73cb",
            ]
        );
    }

    #[test]
    fn files_on_disk_keep_their_exec_bit_are_never_widened_and_links_are_not_followed() {
        let src = tempfile::tempdir().unwrap();
        let write = |name: &str, mode: u32| {
            let path = src.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, "x").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        };
        // What a checkout under umask 002 or 022 has: the same image either way.
        write("static/run.sh", 0o775);
        write("static/css/site.css", 0o664);
        write("static/tool", 0o755);
        // What only its owner may read stays so: never wider in the image than on disk.
        write("static/private.key", 0o600);
        write("static/owner-run", 0o700);
        fs::set_permissions(
            src.path().join("static/css"),
            fs::Permissions::from_mode(0o775),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("static/passwd")).unwrap();

        let mut contents = LayerContents::new();
        contents
            .add_path("/srv/static", &src.path().join("static"))
            .unwrap();
        let mode = |name: &str| match contents.get(Path::new(name)) {
            Some(Entry::File { mode, .. } | Entry::Directory { mode, .. }) => *mode,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(mode("srv/static/run.sh"), 0o755);
        assert_eq!(mode("srv/static/css/site.css"), 0o644);
        assert_eq!(mode("srv/static/tool"), 0o755);
        assert_eq!(mode("srv/static/private.key"), 0o600);
        assert_eq!(mode("srv/static/owner-run"), 0o700);
        assert_eq!(mode("srv/static/css"), 0o755);
        assert_eq!(
            contents.get(Path::new("srv/static/passwd")),
            Some(&Entry::Symlink {
                target: "/etc/passwd".into(),
                owner: Owner::ROOT,
            })
        );
    }

    #[test]
    fn paths_that_collide_are_refused() {
        let mut contents = LayerContents::new();
        contents.add_bytes("/a/b", vec![], FILE_MODE).unwrap();
        assert!(matches!(
            contents.add_bytes("/a/b", vec![], FILE_MODE),
            Err(Error::DuplicatePath { .. })
        ));
        assert!(matches!(
            contents.add_bytes("/a/b/c", vec![], FILE_MODE),
            Err(Error::NotADirectory { .. })
        ));
        assert!(matches!(
            contents.add_bytes("/a", vec![], FILE_MODE),
            Err(Error::NotADirectory { .. })
        ));
    }

    /// What a non-root image needs: files and directories owned and moded as asked, empty
    /// directories, a binary's capabilities in a PAX header before it, and nothing else changed.
    #[test]
    fn chosen_owners_modes_and_capabilities_are_written_as_asked() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("conf/sub")).unwrap();
        fs::write(src.path().join("conf/sub/secret"), "s").unwrap();
        fs::write(src.path().join("server"), "\x7fELF").unwrap();
        fs::set_permissions(src.path().join("server"), fs::Permissions::from_mode(0o755)).unwrap();
        let owner = Owner {
            uid: 65532,
            gid: 65533,
        };
        let mut contents = LayerContents::new();
        let conf = Attributes {
            owner: Some(owner),
            file_mode: Some(0o640),
            dir_mode: Some(0o750),
            ..Attributes::default()
        };
        contents
            .add_path_with("/etc/app", &src.path().join("conf"), &conf)
            .unwrap();
        // A directory another entry implied first is replaced by the chosen one.
        contents.add_bytes("/data/keep", vec![], FILE_MODE).unwrap();
        contents
            .add_chosen_directory("/data", 0o700, owner)
            .unwrap();
        let capabilities = Capabilities::parse(&["CAP_NET_BIND_SERVICE"]).unwrap();
        let bin = Attributes {
            capabilities,
            ..Attributes::default()
        };
        contents
            .add_path_with("/usr/local/bin/server", &src.path().join("server"), &bin)
            .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let layer = write_layer(&store, &contents, Compression::None, Timestamp(1)).unwrap();
        let tar_bytes = store.read(&layer.descriptor).unwrap();
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let xattrs: Vec<(String, Vec<u8>)> = entry
                .pax_extensions()
                .unwrap()
                .map(|records| {
                    records
                        .map(|r| r.unwrap())
                        .map(|r| (r.key().unwrap().to_owned(), r.value_bytes().to_vec()))
                        .collect()
                })
                .unwrap_or_default();
            let header = entry.header();
            seen.push((
                entry.path().unwrap().display().to_string(),
                header.uid().unwrap(),
                header.gid().unwrap(),
                header.mode().unwrap(),
                xattrs,
            ));
        }
        let none = Vec::new;
        let ours = |path: &str, mode| (path.to_owned(), 65532, 65533, mode, none());
        let root = |path: &str, mode| (path.to_owned(), 0, 0, mode, none());
        let mut server = root("usr/local/bin/server", 0o755);
        server.4 = vec![(
            "SCHILY.xattr.security.capability".to_owned(),
            capabilities.xattr().unwrap().to_vec(),
        )];
        assert_eq!(
            seen,
            [
                ours("data", 0o700),
                root("data/keep", 0o644),
                root("etc", 0o755),
                ours("etc/app", 0o750),
                ours("etc/app/sub", 0o750),
                ours("etc/app/sub/secret", 0o640),
                root("usr", 0o755),
                root("usr/local", 0o755),
                root("usr/local/bin", 0o755),
                server,
            ]
        );
        assert!(contents.is_chosen(Path::new("data")));
        assert!(contents.is_chosen(Path::new("etc/app/sub")));
        assert!(!contents.is_chosen(Path::new("etc")));
    }

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record("k", b"v"), b"6 k=v\n");
        // 9 bytes without its length: "10" would make it 11, so it is "11".
        assert_eq!(pax_record("k", b"vvvvv"), b"11 k=vvvvv\n");
        let long = pax_record("SCHILY.xattr.security.capability", &[0; 20]);
        assert_eq!(&long[..3], b"57 ");
        assert_eq!(long.len(), 57);
    }

    #[test]
    fn long_paths_survive_the_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let long = format!("/srv/{}/{}", "d".repeat(120), "f".repeat(150));
        let mut contents = LayerContents::new();
        contents.add_bytes(&long, b"x".to_vec(), FILE_MODE).unwrap();
        let layer = write_layer(&store, &contents, Compression::None, Timestamp::DEFAULT).unwrap();
        let blob = store.read(&layer.descriptor).unwrap();
        let paths: Vec<String> = list_tar(blob.as_slice())
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths.last().map(|p| format!("/{p}")), Some(long));
    }
}
