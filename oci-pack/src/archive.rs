//! Image archives (`oci-archive`, `docker-archive`): one tar holding an image layout.
//!
//! Reading takes what the image needs, and nothing else: a first pass notes every member and
//! stores the small ones (the JSON documents that say what the image is); the members the image
//! then turns out to reach (its layers) are streamed into the store by a second pass. Nothing
//! is written under a name taken from the archive, and a member nobody references is never
//! written out: a small archive of a huge unreferenced member costs nothing but the reading.
//! Writing serializes an image, deterministically.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::descriptor::Descriptor;
use crate::docker;
use crate::error::{Error, Result};
use crate::json::MAX_DOCUMENT_BYTES;
use crate::layer::{write_tar, LayerContents, EXECUTABLE_MODE, FILE_MODE};
use crate::layout::{Tagged, OCI_LAYOUT_CONTENT};
use crate::manifest::ImageManifest;
use crate::media_type;
use crate::output;
use crate::path::archive_name;
use crate::store::BlobStore;
use crate::timestamp::Timestamp;

/// The files of an archive, by their normalised names.
#[derive(Debug)]
pub struct ArchiveFiles {
    archive: PathBuf,
    members: BTreeMap<String, Member>,
    /// Links, by name, to the file at the end of their chain.
    links: BTreeMap<String, String>,
}

/// A file of the archive: in the store, or only seen, until something asks for it.
#[derive(Debug, Clone)]
enum Member {
    Stored(Box<Descriptor>),
    Seen { size: u64 },
}

/// How deep a chain of links inside an archive may go (docker save links repeated layers).
const MAX_LINK_DEPTH: usize = 8;
/// How much the first pass stores of small files in all; what is beyond waits to be asked for.
const SMALL_FILES_BUDGET: u64 = 64 << 20;

impl ArchiveFiles {
    /// Reads the tar at `path` (plain or gzip-compressed) once: every file is noted, and the
    /// small ones (up to the size of a JSON document, within a budget) are stored in `store`.
    pub fn import(path: &Path, store: &BlobStore) -> Result<ArchiveFiles> {
        let mut members = BTreeMap::new();
        let mut links = BTreeMap::new();
        let mut budget = SMALL_FILES_BUDGET;
        each_entry(path, |name, entry| match entry {
            Entry::File(reader, size) => {
                let member = if size <= MAX_DOCUMENT_BYTES && size <= budget {
                    budget -= size;
                    Member::Stored(Box::new(store_member(path, store, reader)?))
                } else {
                    Member::Seen { size }
                };
                members.insert(name, member);
                Ok(())
            }
            Entry::Link(target) => {
                links.insert(name, target);
                Ok(())
            }
        })?;
        // A link resolves to the file at the end of its chain (docker save links repeated layers).
        let mut resolved = BTreeMap::new();
        for name in links.keys() {
            let mut current = name;
            for _ in 0..MAX_LINK_DEPTH {
                match links.get(current) {
                    Some(target) => current = target,
                    None => break,
                }
            }
            if members.contains_key(current) {
                resolved.insert(name.clone(), current.clone());
            }
        }
        Ok(ArchiveFiles {
            archive: path.to_owned(),
            members,
            links: resolved,
        })
    }

    /// Stores the archive's files `names` that are not stored yet, streaming the archive again
    /// for them (and only them); returns the blob of each, in order.
    pub fn take(&mut self, store: &BlobStore, names: &[&str]) -> Result<Vec<Descriptor>> {
        let mut wanted: BTreeMap<String, u64> = BTreeMap::new();
        for name in names {
            let (file, member) = self.member(name)?;
            if let Member::Seen { size } = member {
                wanted.insert(file, *size);
            }
        }
        if !wanted.is_empty() {
            let path = self.archive.clone();
            let members = &mut self.members;
            each_entry(&path, |name, entry| {
                let (Some(size), Entry::File(reader, actual)) = (wanted.remove(&name), entry)
                else {
                    return Ok(());
                };
                if size != actual {
                    return Err(Error::HostileArchiveEntry {
                        archive: path.clone(),
                        entry: name,
                        reason: "the file changed size between two reads".into(),
                    });
                }
                let stored = store_member(&path, store, reader)?;
                members.insert(name, Member::Stored(Box::new(stored)));
                Ok(())
            })?;
        }
        names.iter().map(|name| self.get(name).cloned()).collect()
    }

    /// The archive's file `name` stands for (itself, or where its link leads), and what it is.
    fn member(&self, name: &str) -> Result<(String, &Member)> {
        let normalised = archive_name(Path::new(name));
        let file = normalised.map(|n| self.links.get(&n).cloned().unwrap_or(n));
        file.and_then(|f| self.members.get(&f).map(|m| (f, m)))
            .ok_or_else(|| Error::ArchiveMissingFile {
                archive: self.archive.clone(),
                name: name.to_owned(),
            })
    }

    /// The blob that holds the archive's file `name`; a large file must be taken first
    /// ([`ArchiveFiles::take`]).
    pub fn get(&self, name: &str) -> Result<&Descriptor> {
        match self.member(name)? {
            (_, Member::Stored(descriptor)) => Ok(descriptor),
            (_, Member::Seen { size }) => Err(Error::TooLarge {
                what: format!("`{name}` in `{}` ({size} bytes)", self.archive.display()),
                limit: MAX_DOCUMENT_BYTES,
            }),
        }
    }

    /// Whether the archive has the file `name`, itself or through a link, stored yet or not.
    pub fn contains(&self, name: &str) -> bool {
        self.member(name).is_ok()
    }

    /// Parses the archive's file `name` as JSON.
    pub fn read_json<T: DeserializeOwned>(&self, store: &BlobStore, name: &str) -> Result<T> {
        let bytes = store.read(self.get(name)?)?;
        crate::json::parse(&bytes, || {
            format!("`{name}` in `{}`", self.archive.display())
        })
    }
}

/// What an archive entry is, as the passes over an archive see it.
enum Entry<'a> {
    /// A regular file, to read (or not) and its size.
    File(&'a mut dyn Read, u64),
    /// A link, to the normalised name of its target.
    Link(String),
}

/// Calls `visit` with every file and link of the tar at `path`, by normalised name; refuses a
/// name or a link that leaves the archive.
fn each_entry(path: &Path, mut visit: impl FnMut(String, Entry<'_>) -> Result<()>) -> Result<()> {
    let hostile = |entry: &str, reason: &str| Error::HostileArchiveEntry {
        archive: path.to_owned(),
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    };
    let read_error = |source| Error::Io {
        action: "read archive",
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(Error::io("open", path))?;
    let mut buffered = BufReader::new(file);
    let is_gzip = buffered
        .fill_buf()
        .map_err(read_error)?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if is_gzip {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = archive_name(Path::new(&raw))
            .ok_or_else(|| hostile(&raw, "the name leaves the archive"))?;
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                // The size the tar's reader uses: a PAX `size` record's over the header's.
                let size = entry.size();
                visit(name, Entry::File(&mut entry, size))?;
            }
            kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                let target = entry
                    .link_name()
                    .map_err(read_error)?
                    .unwrap_or_default()
                    .into_owned();
                let target = if kind == tar::EntryType::Symlink {
                    Path::new(&name)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(target)
                } else {
                    target
                };
                let target = archive_name(&target)
                    .ok_or_else(|| hostile(&raw, "the link points outside the archive"))?;
                visit(name, Entry::Link(target))?;
            }
            // Directories and metadata entries carry nothing we read.
            _ => {}
        }
    }
    Ok(())
}

/// Streams one archive member into `store`, by its digest.
fn store_member(archive: &Path, store: &BlobStore, reader: &mut dyn Read) -> Result<Descriptor> {
    let mut writer = store.writer()?;
    io::copy(reader, &mut writer).map_err(Error::io("read archive", archive))?;
    let (digest, size) = writer.commit()?;
    Ok(Descriptor::new("", digest, size))
}

/// Which archive a sealed layout is written as.
///
/// Both carry the OCI layout, and, for a single-platform image, Docker's `manifest.json` and
/// `repositories` pointing into its `blobs/` (the spec allows extra files): moby's classic
/// `docker load` reads only `manifest.json`, containerd-backed loaders read the layout, and
/// podman 4.3 needs `manifest.json` once a layout has several tags. One set of blobs serves all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `oci-archive`: the layout as one tar; an index of several platforms stays one archive.
    Oci,
    /// `docker-archive`: one platform's image, which every loader takes.
    Docker,
}

/// Streams `image` as a deterministic tar (sorted, 0:0, every entry dated `mtime`) into `out`:
/// an OCI layout of it, and Docker's `manifest.json` and `repositories` when it is one
/// platform's image. Blobs are read straight from the image's store.
pub fn write_archive<W: Write>(
    image: &Tagged,
    format: ArchiveFormat,
    out: W,
    mtime: Timestamp,
) -> Result<W> {
    write_archive_leaving_out(image, format, out, mtime, 0)
}

/// A Docker archive of `image` for a moby daemon that holds its first `held` layers already
/// (the chain of them: an image it has starts with them), streamed into `docker load`: their
/// files are left out, since moby reads a layer's file only when it lacks the layer's chain.
/// Any other loader (a containerd image store, podman) refuses it; it is never written to disk.
pub fn write_docker_load_stream<W: Write>(
    image: &Tagged,
    held: usize,
    out: W,
    mtime: Timestamp,
) -> Result<W> {
    write_archive_leaving_out(image, ArchiveFormat::Docker, out, mtime, held)
}

fn write_archive_leaving_out<W: Write>(
    image: &Tagged,
    format: ArchiveFormat,
    out: W,
    mtime: Timestamp,
    held: usize,
) -> Result<W> {
    let image = &match format {
        ArchiveFormat::Docker => image.without_referrers(),
        ArchiveFormat::Oci => image.clone(),
    };
    let target = &image.target;
    let manifest: Option<ImageManifest> = match media_type::is_manifest(&target.media_type) {
        false if format == ArchiveFormat::Docker => return Err(Error::DockerArchiveNeedsOneImage),
        false => None,
        true => Some(
            serde_json::from_slice(&image.store.read(target)?).map_err(|source| {
                Error::MalformedJson {
                    what: format!("manifest {}", target.digest),
                    source,
                }
            })?,
        ),
    };
    let left_out: Vec<&Descriptor> = manifest.iter().flat_map(|m| &m.layers).take(held).collect();
    let mut contents = LayerContents::new();
    contents.add_bytes(
        "/oci-layout",
        OCI_LAYOUT_CONTENT.as_bytes().to_vec(),
        FILE_MODE,
    )?;
    contents.add_bytes("/index.json", image.layout_index()?, FILE_MODE)?;
    contents.add_directory("/blobs/sha256", EXECUTABLE_MODE)?;
    for blob in image.blobs()? {
        if left_out.iter().any(|layer| layer.digest == blob.digest) {
            continue;
        }
        let path = format!("/blobs/sha256/{}", blob.digest.hex());
        contents.add_file(&path, image.store.blob_path(&blob.digest), FILE_MODE)?;
    }
    // An OCI archive carries Docker's files only for `docker load`'s sake: an image with
    // layers it cannot read (zstd) goes without them, as the OCI archive it is.
    let docker_loads = |m: &ImageManifest| {
        m.layers
            .iter()
            .all(|l| media_type::docker_loads(&l.media_type))
    };
    if let Some(manifest) = manifest {
        if format == ArchiveFormat::Docker || docker_loads(&manifest) {
            let (manifest, repositories) = docker::archive_manifest(&manifest, &image.tags)?;
            contents.add_bytes("/manifest.json", manifest, FILE_MODE)?;
            contents.add_bytes("/repositories", repositories, FILE_MODE)?;
        }
    }
    write_tar(&contents, out, mtime)
}

/// An archive written beside its destination; [`StagedArchive::persist`] renames it into place,
/// and dropped without that, it vanishes.
#[derive(Debug)]
pub struct StagedArchive {
    file: tempfile::NamedTempFile,
    destination: PathBuf,
}

impl StagedArchive {
    /// Writes `image` as an archive of `format` in a temporary file beside `destination`
    /// (see [`write_archive`]).
    pub fn write(
        image: &Tagged,
        format: ArchiveFormat,
        destination: &Path,
        mtime: Timestamp,
    ) -> Result<StagedArchive> {
        if destination.is_dir() {
            return Err(Error::RefuseToReplace {
                path: destination.to_owned(),
                reason: "it is a directory".into(),
            });
        }
        let file = output::staged_file(destination)?;
        let buffered = write_archive(image, format, io::BufWriter::new(file), mtime)
            .map_err(|e| e.for_destination("write", destination))?;
        let file = buffered
            .into_inner()
            .map_err(|e| Error::io("write", destination)(e.into_error()))?;
        output::sync_file(file.as_file(), destination)?;
        Ok(StagedArchive {
            file,
            destination: destination.to_owned(),
        })
    }

    /// Moves the archive to its destination, atomically replacing an older one.
    pub fn persist(self) -> Result<PathBuf> {
        self.file
            .persist(&self.destination)
            .map_err(|e| Error::io("rename into place", &self.destination)(e.error))?;
        output::sync_parent(&self.destination)?;
        Ok(self.destination)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_members_size_is_the_one_its_pax_record_gives() {
        // A header that says 0 and a PAX record that says more than a document may be, as
        // Go writes a size too large for the header's field: the member is too big to keep.
        let dir = tempfile::tempdir().unwrap();
        let size = MAX_DOCUMENT_BYTES + 1;
        let content = vec![b'x'; size as usize];
        let record = size.to_string();
        let tar =
            crate::testing::tar_with_pax("big", &[("size", record.as_bytes())], 0, &content, 0o644);
        let path = dir.path().join("image.tar");
        std::fs::write(&path, &tar).unwrap();
        let store = BlobStore::open(&dir.path().join("store")).unwrap();
        let files = ArchiveFiles::import(&path, &store).unwrap();
        let (_, member) = files.member("big").unwrap();
        assert!(
            matches!(member, Member::Seen { size: seen } if *seen == size),
            "{member:?}"
        );
    }
}
