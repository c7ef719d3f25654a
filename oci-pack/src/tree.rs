//! A parent image's file tree, known from its layers' tar headers and content hashes, with
//! whiteouts applied in order, in memory: nothing of the parent is extracted to disk.
//!
//! Reading a layer also checks it: the blob against its digest, the tar against its diff_id,
//! and every entry against what a hostile image could use to escape or confuse (`..`, absolute
//! names, links out of the root, device nodes, duplicate paths).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::descriptor::Descriptor;
use crate::digest::{Digest, DigestWriter};
use crate::elf::{self, GlibcVersion};
use crate::error::{Error, Result};
use crate::media_type;
use crate::path::{entry_path, OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
use crate::store::BlobStore;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Directory,
    File {
        size: u64,
        digest: Digest,
        /// For a C library (`libc.so.6`, `libc-2.31.so`): the newest `GLIBC_*` it defines.
        glibc: Option<GlibcVersion>,
    },
    Symlink {
        target: PathBuf,
    },
    /// A FIFO: kept so it can be removed or whited out, never compared by content.
    Fifo,
}

/// Paths relative to the root (`usr/bin/env`), sorted component-wise.
#[derive(Debug, Clone, Default)]
pub struct FileTree {
    nodes: BTreeMap<PathBuf, Node>,
}

/// A C library larger than this is not read for its glibc version.
const MAX_LIBC_BYTES: u64 = 64 << 20;

impl FileTree {
    /// Applies `layers` (base first) to an empty tree, checking each against its digest and
    /// `diff_ids`.
    pub fn read_layers(
        store: &BlobStore,
        layers: &[Descriptor],
        diff_ids: &[Digest],
    ) -> Result<FileTree> {
        let mut tree = FileTree::default();
        for (layer, diff_id) in layers.iter().zip(diff_ids) {
            tree.apply_layer(store, layer, diff_id)?;
        }
        Ok(tree)
    }

    pub fn get(&self, path: &Path) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Every path, sorted, parents before children.
    pub fn iter(&self) -> impl Iterator<Item = (&Path, &Node)> {
        self.nodes.iter().map(|(path, node)| (path.as_path(), node))
    }

    /// The direct children of `dir`.
    pub fn children<'a>(&'a self, dir: &'a Path) -> impl Iterator<Item = &'a Path> + 'a {
        self.descendants(dir)
            .filter(move |p| p.parent() == Some(dir))
    }

    fn descendants<'a>(&'a self, dir: &'a Path) -> impl Iterator<Item = &'a Path> + 'a {
        let start = std::ops::Bound::Excluded(dir.to_owned());
        self.nodes
            .range((start, std::ops::Bound::Unbounded))
            .map(|(path, _)| path.as_path())
            .take_while(move |path| dir.as_os_str().is_empty() || path.starts_with(dir))
    }

    /// Removes `path` and everything under it, except what `keep` holds.
    fn remove_tree(&mut self, path: &Path, keep: &BTreeSet<PathBuf>) {
        let doomed: Vec<PathBuf> = std::iter::once(path)
            .chain(self.descendants(path))
            .filter(|p| !keep.contains(*p))
            .map(Path::to_owned)
            .collect();
        for path in doomed {
            self.nodes.remove(&path);
        }
    }

    fn apply_layer(
        &mut self,
        store: &BlobStore,
        layer: &Descriptor,
        diff_id: &Digest,
    ) -> Result<()> {
        let blob = store.reader(layer)?;
        let mut decoded = Decoded::new(layer, blob)?;
        let mut hashed = DigestWriter::new(io::sink());
        let layer_error = |source: io::Error| Error::LayerRead {
            layer: layer.digest.clone(),
            source,
        };
        let hostile = |entry: &str, reason: &str| Error::HostileLayerEntry {
            layer: layer.digest.clone(),
            entry: entry.to_owned(),
            reason: reason.to_owned(),
        };
        {
            let mut archive = tar::Archive::new(Tee {
                inner: &mut decoded,
                copy: &mut hashed,
            });
            // Paths this layer wrote: a whiteout in the same layer only hides lower layers.
            let mut own: BTreeSet<PathBuf> = BTreeSet::new();
            for entry in archive.entries().map_err(layer_error)? {
                let mut entry = entry.map_err(layer_error)?;
                let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let path = entry_path(&raw).map_err(|reason| hostile(&raw, reason))?;
                let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned)
                else {
                    continue; // the root itself
                };
                let dir = path.parent().unwrap_or(Path::new("")).to_owned();
                if name == OPAQUE_WHITEOUT {
                    let lower: Vec<PathBuf> = self
                        .children(&dir)
                        .filter(|c| !own.contains(*c))
                        .map(Path::to_owned)
                        .collect();
                    for child in lower {
                        self.remove_tree(&child, &own);
                    }
                    continue;
                }
                if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                    if hidden.is_empty() || hidden == "." || hidden == ".." {
                        return Err(hostile(&raw, "a whiteout must name an entry"));
                    }
                    self.remove_tree(&dir.join(hidden), &own);
                    continue;
                }
                if !own.insert(path.clone()) {
                    return Err(hostile(&raw, "the path appears twice in the layer"));
                }
                let header = entry.header();
                let mode = header.mode().map_err(layer_error)? & 0o7777;
                let uid = header.uid().map_err(layer_error)?;
                let gid = header.gid().map_err(layer_error)?;
                let kind = match header.entry_type() {
                    tar::EntryType::Directory => NodeKind::Directory,
                    tar::EntryType::Regular | tar::EntryType::Continuous => {
                        let mut content = DigestWriter::new(io::sink());
                        let is_libc = name == "libc.so.6"
                            || (name.starts_with("libc-") && name.ends_with(".so"));
                        let glibc = if is_libc
                            && entry.header().size().map_err(layer_error)? <= MAX_LIBC_BYTES
                        {
                            // Kept in memory just long enough to read which glibc it is.
                            let mut bytes = Vec::new();
                            entry.read_to_end(&mut bytes).map_err(layer_error)?;
                            content.write_all(&bytes).map_err(layer_error)?;
                            let info = elf::read_bytes(&bytes, &path).ok().flatten();
                            info.and_then(|info| GlibcVersion::newest(&info.versions_defined))
                        } else {
                            io::copy(&mut entry, &mut content).map_err(layer_error)?;
                            None
                        };
                        let (digest, size, _) = content.finish();
                        NodeKind::File {
                            size,
                            digest,
                            glibc,
                        }
                    }
                    tar::EntryType::Symlink => {
                        let target = entry
                            .link_name()
                            .map_err(layer_error)?
                            .unwrap_or_default()
                            .into_owned();
                        if target.as_os_str().is_empty() {
                            return Err(hostile(&raw, "the symbolic link has no target"));
                        }
                        NodeKind::Symlink { target }
                    }
                    tar::EntryType::Link => {
                        let target = entry.link_name().map_err(layer_error)?.unwrap_or_default();
                        let target_raw = target.to_string_lossy().into_owned();
                        let target = entry_path(&target_raw)
                            .map_err(|_| hostile(&raw, "the hard link points outside the root"))?;
                        match self.nodes.get(&target) {
                            Some(Node {
                                kind: kind @ NodeKind::File { .. },
                                ..
                            }) => kind.clone(),
                            _ => {
                                return Err(hostile(
                                    &raw,
                                    &format!(
                                        "the hard link's target `{target_raw}` \
                                         is not a file of the image"
                                    ),
                                ))
                            }
                        }
                    }
                    tar::EntryType::Fifo => NodeKind::Fifo,
                    tar::EntryType::Char | tar::EntryType::Block => {
                        return Err(hostile(
                            &raw,
                            "device nodes are not allowed in an image layer",
                        ))
                    }
                    tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
                    other => {
                        return Err(hostile(
                            &raw,
                            &format!("unsupported tar entry type {:?}", other.as_byte() as char),
                        ))
                    }
                };
                // A non-directory replaces whatever was there, with everything under it.
                if kind != NodeKind::Directory
                    || !matches!(
                        self.nodes.get(&path),
                        Some(Node {
                            kind: NodeKind::Directory,
                            ..
                        })
                    )
                {
                    self.remove_tree(&path, &own);
                }
                self.nodes.insert(
                    path,
                    Node {
                        kind,
                        mode,
                        uid,
                        gid,
                    },
                );
            }
        }
        // The end-of-archive padding is part of the diff_id; the rest of the blob is part of its
        // digest.
        io::copy(
            &mut Tee {
                inner: &mut decoded,
                copy: &mut hashed,
            },
            &mut io::sink(),
        )
        .map_err(layer_error)?;
        decoded.finish()?;
        let (actual, _, _) = hashed.finish();
        if &actual != diff_id {
            return Err(Error::DiffIdMismatch {
                layer: layer.digest.clone(),
                expected: diff_id.clone(),
                actual,
            });
        }
        Ok(())
    }
}

/// A layer blob, decompressed as its media type says.
enum Decoded {
    Plain(crate::store::VerifiedReader),
    Gzip(flate2::read::MultiGzDecoder<crate::store::VerifiedReader>),
}

impl Decoded {
    fn new(layer: &Descriptor, blob: crate::store::VerifiedReader) -> Result<Decoded> {
        match media_type::oci_layer(&layer.media_type) {
            Some(media_type::OCI_LAYER_TAR) => Ok(Decoded::Plain(blob)),
            Some(media_type::OCI_LAYER_GZIP) => {
                Ok(Decoded::Gzip(flate2::read::MultiGzDecoder::new(blob)))
            }
            _ => Err(Error::UnsupportedMediaType {
                digest: layer.digest.clone(),
                media_type: layer.media_type.clone(),
            }),
        }
    }

    /// Reads what is left of the blob itself, so its digest is checked to the last byte.
    fn finish(self) -> Result<()> {
        let mut blob = match self {
            Decoded::Plain(blob) => blob,
            Decoded::Gzip(decoder) => decoder.into_inner(),
        };
        io::copy(&mut blob, &mut io::sink()).map_err(|e| blob.error(e))?;
        Ok(())
    }
}

impl Read for Decoded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoded::Plain(blob) => blob.read(buf),
            Decoded::Gzip(decoder) => decoder.read(buf),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{gzip_layer, tar_of, Raw};

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

    #[test]
    fn hostile_entries_are_errors_naming_layer_and_entry() {
        let cases: [(&[Raw<'_>], &str); 7] = [
            (
                &[Raw::File("../escape", b"x", 0o644)],
                "`..` is not allowed",
            ),
            (
                &[Raw::File("/etc/passwd", b"x", 0o644)],
                "absolute paths are not allowed",
            ),
            (&[Raw::Device("dev/sda")], "device nodes are not allowed"),
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
                matches!(&error, Error::HostileLayerEntry { layer: l, .. } if *l == layer.digest),
                "{error}"
            );
            assert!(error.to_string().contains(reason), "{error}");
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

        let mut zstd = layer.clone();
        zstd.media_type = media_type::OCI_LAYER_ZSTD.into();
        let error = FileTree::read_layers(&store, &[zstd], &[diff_id]).unwrap_err();
        assert!(
            matches!(error, Error::UnsupportedMediaType { .. }),
            "{error}"
        );
    }
}
