//! A content-addressed blob store on disk: `<root>/blobs/sha256/<hex>`.
//!
//! An OCI layout's `blobs/` directory *is* a store. Blobs are written to a temporary file in the
//! same directory and renamed into place once their digest is known, so a blob path either does
//! not exist or holds exactly the bytes its name promises. Reads check the digest again.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::descriptor::Descriptor;
use crate::digest::{Digest, DigestWriter};
use crate::error::{Error, Result};
use crate::json::MAX_DOCUMENT_BYTES;

/// How much is read or written at a time: large, since blobs are large and a system call per
/// 8 KiB is what a layer of tens of MB would otherwise pay for.
pub(crate) const IO_BUFFER: usize = 1 << 20;

/// How the name of a blob still being written begins; what a killed build left with it is
/// swept ([`crate::cache::BuildCache::sweep`]).
pub const PARTIAL_PREFIX: &str = ".partial-";

/// Whether a file's times now vouch for its content: a file modified (or its inode changed)
/// within the current clock tick could be modified again without its times changing (git's
/// "racy" entries). The change time counts too, since a file rewritten and given back its old
/// modification time (`tar`, `touch -d`) shows only there. With nanosecond times the kernel's
/// tick is a few milliseconds; a filesystem that keeps whole seconds (the nanoseconds are zero)
/// needs two.
pub fn settled(metadata: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, UNIX_EPOCH};
    let changed = u64::try_from(metadata.ctime())
        .ok()
        .zip(u32::try_from(metadata.ctime_nsec()).ok())
        .map(|(seconds, nanos)| UNIX_EPOCH + Duration::new(seconds, nanos));
    modification_settled(metadata) && older_than_a_tick(metadata, changed)
}

/// Whether a file's modification time alone is older than the current clock tick (see
/// [`settled`]).
pub fn modification_settled(metadata: &fs::Metadata) -> bool {
    older_than_a_tick(metadata, metadata.modified().ok())
}

fn older_than_a_tick(metadata: &fs::Metadata, time: Option<std::time::SystemTime>) -> bool {
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;
    let window = if metadata.ctime_nsec() == 0 {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(50)
    };
    time.and_then(|time| time.elapsed().ok())
        .is_some_and(|age| age >= window)
}

/// Opens the regular file at `path` for reading, and nothing else: a FIFO, a device (`/dev/zero`
/// behind a symbolic link), a socket or a directory is refused without a byte read from it, so a
/// hostile layout cannot make a read block or go on for ever. The open itself never blocks
/// (`O_NONBLOCK`, which changes nothing for a regular file). With `follow_links` false, a
/// symbolic link is refused too (`O_NOFOLLOW`).
pub fn open_regular(path: &Path, follow_links: bool) -> io::Result<File> {
    use rustix::fs::OFlags;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let mut flags = OFlags::NONBLOCK;
    if !follow_links {
        flags |= OFlags::NOFOLLOW;
    }
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path);
    let not_regular = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file"),
        )
    };
    let file = match opened {
        Err(error) if error.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(not_regular("a symbolic link"))
        }
        opened => opened?,
    };
    let kind = file.metadata()?.file_type();
    match () {
        _ if kind.is_file() => Ok(file),
        _ if kind.is_dir() => Err(not_regular("a directory")),
        _ if kind.is_fifo() => Err(not_regular("a FIFO")),
        _ if kind.is_char_device() || kind.is_block_device() => Err(not_regular("a device")),
        _ if kind.is_socket() => Err(not_regular("a socket")),
        _ => Err(not_regular("of another kind")),
    }
}

/// A directory of blobs named by digest (`blobs/sha256/<hex>`), the shape of an OCI layout's:
/// written once, atomically, and verified when read.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (and creates, if needed) the store whose `blobs/` directory is under `root`.
    pub fn open(root: &Path) -> Result<BlobStore> {
        let store = BlobStore {
            root: root.to_owned(),
        };
        let dir = store.blob_dir();
        fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
        Ok(store)
    }

    /// Opens the store under an existing layout or directory without creating anything in it.
    pub fn existing(root: &Path) -> BlobStore {
        BlobStore {
            root: root.to_owned(),
        }
    }

    /// The directory `blobs/` is under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where the blob with this digest lives (whether or not it is there yet).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir().join(digest.hex())
    }

    /// Whether the blob is there; its bytes are checked only when it is read.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Starts a streamed blob; its digest is known when [`BlobWriter::commit`] is called.
    pub fn writer(&self) -> Result<BlobWriter> {
        let file = self.partial_file()?;
        Ok(BlobWriter {
            inner: DigestWriter::new(BufWriter::with_capacity(IO_BUFFER, file)),
            dir: self.blob_dir(),
        })
    }

    /// Starts a blob whose digest its writer knows without this store hashing it again (a
    /// layer's tar, hashed on its way into the compressor as the layer's diff_id).
    pub(crate) fn known_writer(&self) -> Result<KnownBlobWriter> {
        Ok(KnownBlobWriter {
            file: BufWriter::with_capacity(IO_BUFFER, self.partial_file()?),
            dir: self.blob_dir(),
        })
    }

    /// Stores `bytes` and returns a descriptor of them with `media_type`.
    pub fn put(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor> {
        let mut writer = self.writer()?;
        writer
            .write_all(bytes)
            .map_err(Error::io("write to", &writer.dir))?;
        let (digest, size) = writer.commit()?;
        Ok(Descriptor::new(media_type, digest, size))
    }

    /// Stores `value` as compact JSON (struct fields in declaration order, maps sorted).
    pub fn put_json<T: Serialize>(
        &self,
        media_type: &str,
        what: &'static str,
        value: &T,
    ) -> Result<Descriptor> {
        let bytes = serde_json::to_vec(value).map_err(|source| Error::Json { what, source })?;
        self.put(media_type, &bytes)
    }

    /// Reads a whole blob, checking that it has the size and digest the descriptor promises.
    /// Blobs read whole are JSON documents: one larger than [`MAX_DOCUMENT_BYTES`] is refused
    /// before it is read.
    pub fn read(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        if descriptor.size > MAX_DOCUMENT_BYTES {
            return Err(Error::TooLarge {
                what: format!("blob {}", descriptor.digest),
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        let path = self.blob_path(&descriptor.digest);
        let mut bytes = Vec::new();
        match open_regular(&path, true) {
            Ok(file) => file
                .take(descriptor.size.saturating_add(1))
                .read_to_end(&mut bytes)
                .map_err(Error::io("read", &path))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::MissingBlob(descriptor.digest))
            }
            Err(e) => return Err(Error::io("open", &path)(e)),
        };
        let actual = Digest::of(&bytes);
        if actual != descriptor.digest || bytes.len() as u64 != descriptor.size {
            return Err(Error::BlobMismatch {
                digest: descriptor.digest,
                expected_size: descriptor.size,
                actual,
                actual_size: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    /// Streams a blob; the reader fails at the end if the bytes do not match the descriptor, so
    /// nothing read from it is trusted before the last byte is checked.
    pub fn reader(&self, descriptor: &Descriptor) -> Result<VerifiedReader> {
        let path = self.blob_path(&descriptor.digest);
        let file = match open_regular(&path, true) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::MissingBlob(descriptor.digest))
            }
            Err(e) => return Err(Error::io("open", &path)(e)),
        };
        Ok(VerifiedReader::over(file, descriptor))
    }

    /// Makes the blob `descriptor` of `source` part of this store: a hard link where the
    /// filesystem allows, else a copy. For stores that are ours alone (the build cache and the
    /// outputs made from it); a blob of someone else's store is [copied](Self::copy_in). Unless
    /// the caller has `verified` it, it is read once and checked against its digest and size,
    /// so a tampered parent blob never reaches an output, even one that stages nothing. A blob
    /// that is a symbolic link is never linked: its bytes are copied, checked, so an output
    /// never points at a file outside it.
    ///
    /// A blob already here is kept if it has the right size; checking more is the caller's
    /// (see [`crate::cache::BuildCache::adopt`]).
    pub fn import(
        &self,
        source: &BlobStore,
        descriptor: &Descriptor,
        verified: bool,
    ) -> Result<()> {
        if self.holds_size_of(descriptor)? {
            return Ok(());
        }
        let (from, to) = (
            source.blob_path(&descriptor.digest),
            self.blob_path(&descriptor.digest),
        );
        let is_file = fs::symlink_metadata(&from).is_ok_and(|m| m.is_file());
        if is_file && fs::hard_link(&from, &to).is_ok() {
            if verified {
                return Ok(());
            }
            let mut reader = source.reader(descriptor)?;
            if let Err(error) = io::copy(&mut reader, &mut io::sink()) {
                let _ = fs::remove_file(&to);
                return Err(reader.error(error));
            }
            return Ok(());
        }
        self.copy_in(source, descriptor, verified)
    }

    /// Makes the blob `descriptor` of `source` part of this store as a file of its own, never
    /// a link to `source`'s: what happens to one never happens to the other. Where the
    /// filesystem can, the copy shares the blocks (a reflink, copy-on-write), else the bytes
    /// are copied; either way they are checked against the descriptor unless `verified`.
    pub fn copy_in(
        &self,
        source: &BlobStore,
        descriptor: &Descriptor,
        verified: bool,
    ) -> Result<()> {
        if self.holds_size_of(descriptor)? {
            return Ok(());
        }
        if let Some(clone) = self.reflink(source, descriptor) {
            if !verified {
                let file = clone.reopen().map_err(Error::io("read", clone.path()))?;
                let mut reader = VerifiedReader::over(file, descriptor);
                io::copy(&mut reader, &mut io::sink()).map_err(|e| reader.error(e))?;
            }
            let to = self.blob_path(&descriptor.digest);
            clone
                .persist(&to)
                .map_err(|e| Error::io("rename a blob to", &to)(e.error))?;
            return Ok(());
        }
        let mut reader = source.reader(descriptor)?;
        let mut writer = self.writer()?;
        io::copy(&mut reader, &mut writer).map_err(|e| reader.error(e))?;
        writer.commit_as(descriptor)
    }

    /// Whether a regular file of the descriptor's size is here already; anything else with its
    /// name is removed.
    fn holds_size_of(&self, descriptor: &Descriptor) -> Result<bool> {
        let to = self.blob_path(&descriptor.digest);
        match fs::symlink_metadata(&to) {
            Ok(existing) if existing.is_file() && existing.len() == descriptor.size => Ok(true),
            Ok(_) => fs::remove_file(&to)
                .map(|()| false)
                .map_err(Error::io("remove", &to)),
            Err(_) => Ok(false),
        }
    }

    /// The blob `descriptor` of `source` cloned (`FICLONE`) into a temporary file here, if the
    /// filesystem shares blocks between files and the source is a regular file of the right
    /// size; `None` otherwise.
    #[cfg(target_os = "linux")]
    fn reflink(
        &self,
        source: &BlobStore,
        descriptor: &Descriptor,
    ) -> Option<tempfile::NamedTempFile> {
        let path = source.blob_path(&descriptor.digest);
        // A link is copied and checked, as `import` does, never cloned unread.
        let metadata = fs::symlink_metadata(&path).ok()?;
        if !metadata.is_file() || metadata.len() != descriptor.size {
            return None;
        }
        let from = File::open(&path).ok()?;
        let clone = self.partial_file().ok()?;
        rustix::fs::ioctl_ficlone(clone.as_file(), &from).ok()?;
        Some(clone)
    }

    #[cfg(not(target_os = "linux"))]
    fn reflink(&self, _: &BlobStore, _: &Descriptor) -> Option<tempfile::NamedTempFile> {
        None
    }

    /// A new temporary file among the blobs, named so a sweep knows it for one.
    fn partial_file(&self) -> Result<tempfile::NamedTempFile> {
        let dir = self.blob_dir();
        // Readable as the umask allows, as any other file: blobs end up in outputs.
        tempfile::Builder::new()
            .prefix(PARTIAL_PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(&dir)
            .map_err(Error::io("create a temporary file in", &dir))
    }

    /// Deletes every blob not in `keep`.
    pub fn retain(&self, keep: &std::collections::BTreeSet<Digest>) -> Result<()> {
        let dir = self.blob_dir();
        for entry in fs::read_dir(&dir).map_err(Error::io("read directory", &dir))? {
            let entry = entry.map_err(Error::io("read directory", &dir))?;
            let name = entry.file_name();
            let wanted = name
                .to_str()
                .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok());
            if !wanted.is_some_and(|digest| keep.contains(&digest)) {
                fs::remove_file(entry.path()).map_err(Error::io("remove", entry.path()))?;
            }
        }
        Ok(())
    }
}

/// Reads a blob while hashing it; at the end, a mismatch is an `InvalidData` error that
/// [`VerifiedReader::error`] turns back into [`Error::BlobMismatch`].
#[derive(Debug)]
pub struct VerifiedReader {
    inner: io::Take<io::BufReader<File>>,
    /// `None` once the end was reached and checked.
    hasher: Option<DigestWriter<io::Sink>>,
    expected: Descriptor,
    /// Where the bytes read are copied ([`VerifiedReader::copying_into`]), and whether they
    /// all were and matched the digest.
    copy: Option<KnownBlobWriter>,
    matched: bool,
}

impl VerifiedReader {
    /// Reads `file`, which should hold `descriptor`'s bytes.
    fn over(file: File, descriptor: &Descriptor) -> VerifiedReader {
        VerifiedReader {
            inner: io::BufReader::with_capacity(IO_BUFFER, file)
                .take(descriptor.size.saturating_add(1)),
            hasher: Some(DigestWriter::new(io::sink())),
            expected: descriptor.clone(),
            copy: None,
            matched: false,
        }
    }

    /// Copies every byte read into `store` too, for [`VerifiedReader::commit_copy`]: a blob
    /// read once to be checked is stored by that same read, the bytes checked the bytes kept.
    pub(crate) fn copying_into(mut self, store: &BlobStore) -> Result<VerifiedReader> {
        self.copy = Some(store.known_writer()?);
        Ok(self)
    }

    /// Moves the copy into its store once the whole blob was read and matched its digest;
    /// whether it did. A copy of a blob not read to its end, or not matching, is dropped, and
    /// so is one that cannot be stored: whoever wanted it copies the blob again.
    pub(crate) fn commit_copy(self) -> bool {
        match (self.copy, self.matched) {
            (Some(copy), true) => copy.commit_as(self.expected.digest).is_ok(),
            _ => false,
        }
    }

    /// Turns an error met while reading this blob (or data decoded from it) into the engine's
    /// error about this blob.
    pub fn error(&self, error: io::Error) -> Error {
        if error.get_ref().is_some_and(|e| e.is::<Error>()) {
            if let Ok(inner) = error
                .into_inner()
                .expect("checked above")
                .downcast::<Error>()
            {
                return *inner;
            }
            unreachable!("checked above");
        }
        Error::BlobRead {
            digest: self.expected.digest,
            source: error,
        }
    }
}

impl Read for VerifiedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        // A copy that cannot be written (a full disk) is given up, not the read: whoever
        // wanted it copies the blob again, and says what failed.
        if self
            .copy
            .as_mut()
            .is_some_and(|copy| copy.write_all(&buf[..n]).is_err())
        {
            self.copy = None;
        }
        if let Some(hasher) = &mut self.hasher {
            hasher.write_all(&buf[..n])?;
            if n == 0 && !buf.is_empty() {
                let (actual, actual_size, _) = self.hasher.take().expect("present").finish();
                if actual != self.expected.digest || actual_size != self.expected.size {
                    let mismatch = Error::BlobMismatch {
                        digest: self.expected.digest,
                        expected_size: self.expected.size,
                        actual,
                        actual_size,
                    };
                    return Err(io::Error::new(io::ErrorKind::InvalidData, mismatch));
                }
                self.matched = true;
            }
        }
        Ok(n)
    }
}

/// A blob being written; dropped without [`commit`](BlobWriter::commit), it leaves nothing behind.
#[derive(Debug)]
pub struct BlobWriter {
    inner: DigestWriter<BufWriter<tempfile::NamedTempFile>>,
    dir: PathBuf,
}

impl BlobWriter {
    /// Flushes the blob to disk and moves it to its content address.
    pub fn commit(self) -> Result<(Digest, u64)> {
        let (digest, size, buffered) = self.inner.finish();
        persist(&self.dir, digest, buffered)?;
        Ok((digest, size))
    }

    /// Like [`Self::commit`], for a blob that must be `expected`: bytes that are not are
    /// dropped, never stored, even under their own digest.
    pub fn commit_as(self, expected: &Descriptor) -> Result<()> {
        let (digest, size, buffered) = self.inner.finish();
        if digest != expected.digest || size != expected.size {
            return Err(Error::BlobMismatch {
                digest: expected.digest,
                expected_size: expected.size,
                actual: digest,
                actual_size: size,
            });
        }
        persist(&self.dir, digest, buffered)
    }
}

fn persist(dir: &Path, digest: Digest, buffered: BufWriter<tempfile::NamedTempFile>) -> Result<()> {
    let file = buffered
        .into_inner()
        .map_err(|e| Error::io("write to", dir)(e.into_error()))?;
    let path = dir.join(digest.hex());
    // The bytes just hashed replace whatever has the name: a damaged copy never survives.
    file.persist(&path)
        .map_err(|e| Error::io("rename a blob to", &path)(e.error))?;
    Ok(())
}

/// A blob whose digest its writer vouches for ([`BlobStore::known_writer`]); dropped without
/// [`commit_as`](KnownBlobWriter::commit_as), it leaves nothing behind.
#[derive(Debug)]
pub(crate) struct KnownBlobWriter {
    file: BufWriter<tempfile::NamedTempFile>,
    dir: PathBuf,
}

impl KnownBlobWriter {
    /// Moves the blob to `digest`, which the caller computed over every byte written.
    pub(crate) fn commit_as(self, digest: Digest) -> Result<()> {
        persist(&self.dir, digest, self.file)
    }
}

impl Write for KnownBlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type;

    #[test]
    fn only_a_regular_file_is_opened_and_a_fifo_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .unwrap();
        let zeros = dir.path().join("zeros");
        std::os::unix::fs::symlink("/dev/zero", &zeros).unwrap();
        let file = dir.path().join("file");
        fs::write(&file, b"bytes").unwrap();
        let linked = dir.path().join("linked");
        std::os::unix::fs::symlink(&file, &linked).unwrap();

        let refused = |path: &Path, follow| open_regular(path, follow).unwrap_err().to_string();
        assert_eq!(refused(&fifo, true), "it is a FIFO, not a regular file");
        assert_eq!(refused(&zeros, true), "it is a device, not a regular file");
        assert_eq!(
            refused(dir.path(), true),
            "it is a directory, not a regular file"
        );
        assert_eq!(
            refused(&linked, false),
            "it is a symbolic link, not a regular file"
        );
        assert!(open_regular(&linked, true).is_ok());
        assert!(open_regular(&file, false).is_ok());
    }

    #[test]
    fn put_then_read_round_trips_and_names_blob_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let descriptor = store.put(media_type::OCI_CONFIG, b"{}").unwrap();
        assert_eq!(descriptor.digest, Digest::of(b"{}"));
        assert_eq!(descriptor.size, 2);
        assert_eq!(
            fs::read(store.blob_path(&descriptor.digest)).unwrap(),
            b"{}"
        );
        assert_eq!(store.read(&descriptor).unwrap(), b"{}");
    }

    #[test]
    fn read_detects_corruption_and_absence() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let descriptor = store.put(media_type::OCI_CONFIG, b"{\"a\":1}").unwrap();
        fs::write(store.blob_path(&descriptor.digest), b"{\"a\":2}").unwrap();
        assert!(matches!(
            store.read(&descriptor),
            Err(Error::BlobMismatch { .. })
        ));

        let absent = Descriptor::new(media_type::OCI_CONFIG, Digest::of(b"nope"), 4);
        assert!(matches!(store.read(&absent), Err(Error::MissingBlob(_))));
    }

    /// Two stores, each in a temporary directory of its own that lasts as long as the
    /// returned directories.
    fn two_stores() -> ([tempfile::TempDir; 2], BlobStore, BlobStore) {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let (from, to) = (
            BlobStore::open(dirs[0].path()).unwrap(),
            BlobStore::open(dirs[1].path()).unwrap(),
        );
        (dirs, from, to)
    }

    #[test]
    fn import_links_verified_blobs_and_refuses_tampered_ones() {
        let (_dirs, from, to) = two_stores();
        let good = from.put(media_type::OCI_LAYER_TAR, b"layer").unwrap();
        to.import(&from, &good, false).unwrap();
        assert_eq!(to.read(&good).unwrap(), b"layer");

        let bad = from.put(media_type::OCI_LAYER_TAR, b"other").unwrap();
        fs::write(from.blob_path(&bad.digest), b"evil!").unwrap();
        assert!(matches!(
            to.import(&from, &bad, false),
            Err(Error::BlobMismatch { .. })
        ));
        assert!(
            !to.contains(&bad.digest),
            "nothing of a tampered blob is kept"
        );
    }

    #[test]
    fn a_blob_that_is_a_link_is_copied_never_linked() {
        let (_dirs, from, to) = two_stores();
        let outside = tempfile::NamedTempFile::new().unwrap();
        fs::write(outside.path(), b"host file").unwrap();
        let descriptor = Descriptor::new(media_type::OCI_LAYER_TAR, Digest::of(b"host file"), 9);
        std::os::unix::fs::symlink(outside.path(), from.blob_path(&descriptor.digest)).unwrap();
        to.import(&from, &descriptor, true).unwrap();
        let imported = to.blob_path(&descriptor.digest);
        assert!(fs::symlink_metadata(&imported).unwrap().is_file());
        fs::write(outside.path(), b"changed!!").unwrap();
        assert_eq!(
            fs::read(&imported).unwrap(),
            b"host file",
            "a copy, not a link"
        );
    }

    #[test]
    fn a_blob_copied_in_is_a_file_of_its_own_and_checked() {
        use std::os::unix::fs::MetadataExt;
        let (_dirs, from, to) = two_stores();
        let good = from.put(media_type::OCI_LAYER_TAR, b"layer").unwrap();
        to.copy_in(&from, &good, true).unwrap();
        let (original, copy) = (from.blob_path(&good.digest), to.blob_path(&good.digest));
        let inode = |path: &Path| fs::metadata(path).unwrap().ino();
        assert_ne!(inode(&original), inode(&copy), "never a link");
        assert_eq!(fs::metadata(&original).unwrap().nlink(), 1);
        // What happens to the copy does not happen to the original.
        fs::OpenOptions::new()
            .write(true)
            .open(&copy)
            .unwrap()
            .write_all(b"L")
            .unwrap();
        assert_eq!(from.read(&good).unwrap(), b"layer");
        assert_eq!(
            fs::read_dir(to.root().join("blobs/sha256"))
                .unwrap()
                .count(),
            1
        );

        let bad = from.put(media_type::OCI_LAYER_TAR, b"other").unwrap();
        fs::write(from.blob_path(&bad.digest), b"evil!").unwrap();
        assert!(matches!(
            to.copy_in(&from, &bad, false),
            Err(Error::BlobMismatch { .. })
        ));
        assert_eq!(
            fs::read_dir(to.root().join("blobs/sha256"))
                .unwrap()
                .count(),
            1,
            "nothing of a tampered blob is kept, not even a partial file"
        );
    }

    #[test]
    fn a_file_is_settled_only_once_its_change_time_is_old_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        fs::write(&path, b"x").unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        file.set_modified(old).unwrap();
        // An old modification time, but the inode changed just now.
        assert!(!settled(&fs::metadata(&path).unwrap()));
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert!(settled(&fs::metadata(&path).unwrap()));
    }

    #[test]
    fn an_abandoned_writer_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut writer = store.writer().unwrap();
        writer.write_all(b"half a blob").unwrap();
        drop(writer);
        assert_eq!(
            fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }
}
