//! Image archives (`oci-archive`, `docker-archive`): one tar holding an image layout.
//!
//! Reading is one pass: every regular file of the tar is streamed into the blob store, addressed
//! by its digest, and the archive's names are kept as a map to those digests. Nothing is written
//! under a name taken from the archive. Writing serializes a sealed layout, deterministically.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::descriptor::Descriptor;
use crate::docker;
use crate::error::{Error, Result};
use crate::layer::{write_tar, LayerContents, EXECUTABLE_MODE, FILE_MODE};
use crate::layout::{self, Tagged, OCI_LAYOUT_CONTENT};
use crate::manifest::ImageManifest;
use crate::media_type;
use crate::path::archive_name;
use crate::store::BlobStore;
use crate::timestamp::Timestamp;

/// The files of an archive, by their normalised names.
#[derive(Debug)]
pub struct ArchiveFiles {
    archive: PathBuf,
    files: BTreeMap<String, Descriptor>,
}

/// How deep a chain of links inside an archive may go (docker save links repeated layers).
const MAX_LINK_DEPTH: usize = 8;

impl ArchiveFiles {
    /// Streams every file of the tar at `path` (plain or gzip-compressed) into `store`.
    pub fn import(path: &Path, store: &BlobStore) -> Result<ArchiveFiles> {
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

        let mut files = BTreeMap::new();
        let mut links = BTreeMap::new();
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(read_error)? {
            let mut entry = entry.map_err(read_error)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = archive_name(Path::new(&raw))
                .ok_or_else(|| hostile(&raw, "the name leaves the archive"))?;
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mut writer = store.writer()?;
                    io::copy(&mut entry, &mut writer).map_err(read_error)?;
                    let (digest, size) = writer.commit()?;
                    files.insert(name, Descriptor::new("", digest, size));
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .map_err(read_error)?
                        .unwrap_or_default()
                        .into_owned();
                    let target = if entry.header().entry_type() == tar::EntryType::Symlink {
                        Path::new(&name)
                            .parent()
                            .unwrap_or(Path::new(""))
                            .join(target)
                    } else {
                        target
                    };
                    let target = archive_name(&target)
                        .ok_or_else(|| hostile(&raw, "the link points outside the archive"))?;
                    links.insert(name, target);
                }
                // Directories and metadata entries carry nothing we read.
                _ => {}
            }
        }
        // A link resolves to the file at the end of its chain (docker save links repeated layers).
        for name in links.keys() {
            let mut current = name;
            for _ in 0..MAX_LINK_DEPTH {
                match links.get(current) {
                    Some(target) => current = target,
                    None => break,
                }
            }
            if let Some(descriptor) = files.get(current).cloned() {
                files.insert(name.clone(), descriptor);
            }
        }
        Ok(ArchiveFiles {
            archive: path.to_owned(),
            files,
        })
    }

    /// The blob that holds the archive's file `name`.
    pub fn get(&self, name: &str) -> Result<&Descriptor> {
        let normalised = archive_name(Path::new(name));
        normalised
            .and_then(|n| self.files.get(&n))
            .ok_or_else(|| Error::ArchiveMissingFile {
                archive: self.archive.clone(),
                name: name.to_owned(),
            })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_ok()
    }

    /// Parses the archive's file `name` as JSON.
    pub fn read_json<T: DeserializeOwned>(&self, store: &BlobStore, name: &str) -> Result<T> {
        let bytes = store.read(self.get(name)?)?;
        serde_json::from_slice(&bytes).map_err(|source| Error::MalformedJson {
            what: format!("`{name}` in `{}`", self.archive.display()),
            source,
        })
    }
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
    let mut contents = LayerContents::new();
    contents.add_bytes(
        "/oci-layout",
        OCI_LAYOUT_CONTENT.as_bytes().to_vec(),
        FILE_MODE,
    )?;
    contents.add_bytes("/index.json", image.layout_index()?, FILE_MODE)?;
    contents.add_directory("/blobs/sha256", EXECUTABLE_MODE)?;
    for blob in image.blobs()? {
        let path = format!("/blobs/sha256/{}", blob.digest.hex());
        contents.add_file(&path, image.store.blob_path(&blob.digest), FILE_MODE)?;
    }
    let target = &image.target;
    if format == ArchiveFormat::Docker || media_type::is_manifest(&target.media_type) {
        if !media_type::is_manifest(&target.media_type) {
            return Err(Error::DockerArchiveNeedsOneImage);
        }
        let manifest: ImageManifest =
            serde_json::from_slice(&image.store.read(target)?).map_err(|source| {
                Error::MalformedJson {
                    what: format!("manifest {}", target.digest),
                    source,
                }
            })?;
        let (manifest, repositories) = docker::archive_manifest(&manifest, &image.tags)?;
        contents.add_bytes("/manifest.json", manifest, FILE_MODE)?;
        contents.add_bytes("/repositories", repositories, FILE_MODE)?;
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
    pub fn write(
        image: &Tagged,
        format: ArchiveFormat,
        destination: &Path,
        mtime: Timestamp,
    ) -> Result<StagedArchive> {
        if destination.is_dir() {
            return Err(Error::RefuseToReplace {
                path: destination.to_owned(),
                reason: "it is a directory",
            });
        }
        let (dir, prefix) = layout::beside(destination)?;
        let file = tempfile::Builder::new()
            .prefix(&prefix)
            .tempfile_in(&dir)
            .map_err(Error::io("create a temporary file in", &dir))?;
        let buffered = write_archive(image, format, io::BufWriter::new(file), mtime)
            .map_err(|e| e.for_destination("write", destination))?;
        let file = buffered
            .into_inner()
            .map_err(|e| Error::io("write", destination)(e.into_error()))?;
        // A temporary file is private (0600); an output is an ordinary file.
        let readable = std::os::unix::fs::PermissionsExt::from_mode(0o644);
        std::fs::set_permissions(file.path(), readable)
            .map_err(Error::io("set permissions of", destination))?;
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
        Ok(self.destination)
    }
}
