//! Test helpers (the `testing` feature): layers crafted entry by entry, including the hostile ones
//! no honest tool writes, stored as blobs the way a parent image would hold them.

use std::io::Write;

use flate2::write::GzEncoder;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::media_type;
use crate::store::BlobStore;

/// One raw tar entry: its name is written as given, `..` and all.
#[derive(Debug)]
#[non_exhaustive]
pub enum Raw<'a> {
    /// A directory: name and mode.
    Dir(&'a str, u32),
    /// A regular file: name, bytes and mode.
    File(&'a str, &'a [u8], u32),
    /// A symbolic link: name and target.
    Symlink(&'a str, &'a str),
    /// A hard link: name and the entry it links to.
    HardLink(&'a str, &'a str),
    /// A character device, which no layer may hold.
    Device(&'a str),
}

/// The tar of one file `name` (root's, of `mode`) holding `content`, after a PAX header of
/// `records`; the file's own header says `header_size`, which a PAX `size` may contradict.
pub fn tar_with_pax(
    name: &str,
    records: &[(&str, &[u8])],
    header_size: u64,
    content: &[u8],
    mode: u32,
) -> Vec<u8> {
    let pax: Vec<u8> = records
        .iter()
        .flat_map(|(key, value)| crate::layer::pax_record(key, value))
        .collect();
    let mut tar = Vec::new();
    let pax_name = format!("PaxHeaders.0/{name}");
    for (path, kind, size, bytes) in [
        (
            pax_name.as_str(),
            tar::EntryType::XHeader,
            pax.len() as u64,
            &pax[..],
        ),
        (name, tar::EntryType::Regular, header_size, content),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_path(path).unwrap();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(size);
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(bytes);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    tar
}

/// The tar bytes of `entries`, in order.
pub fn tar_of(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let (name, kind, mode, data, link): (&str, tar::EntryType, u32, &[u8], Option<&str>) =
            match entry {
                Raw::Dir(name, mode) => (name, tar::EntryType::Directory, *mode, b"", None),
                Raw::File(name, data, mode) => (name, tar::EntryType::Regular, *mode, data, None),
                Raw::Symlink(name, target) => {
                    (name, tar::EntryType::Symlink, 0o777, b"", Some(target))
                }
                Raw::HardLink(name, target) => {
                    (name, tar::EntryType::Link, 0o644, b"", Some(target))
                }
                Raw::Device(name) => (name, tar::EntryType::Char, 0o600, b"", None),
            };
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// Stores `entries` as a gzip layer; returns its descriptor and diff_id.
pub fn gzip_layer(store: &BlobStore, entries: &[Raw<'_>]) -> (Descriptor, Digest) {
    gzip_tar(store, &tar_of(entries))
}

/// `tar` gzipped into `store` as a layer blob; the blob's descriptor and the tar's digest.
pub fn gzip_tar(store: &BlobStore, tar: &[u8]) -> (Descriptor, Digest) {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(tar).unwrap();
    let blob = gz.finish().unwrap();
    (
        store.put(media_type::OCI_LAYER_GZIP, &blob).unwrap(),
        Digest::of(tar),
    )
}

/// One entry of a tar stream, as tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The entry's name, e.g. `usr/local/bin/app`.
    pub path: String,
    /// Permission bits, e.g. `0o755`.
    pub mode: u32,
    /// Owner's user ID.
    pub uid: u64,
    /// Owner's group ID.
    pub gid: u64,
    /// Modification time, in seconds since 1970.
    pub mtime: u64,
    /// Regular file, directory, link, …
    pub kind: tar::EntryType,
}

/// Every entry of the tar stream `reader`, in order.
pub fn list_tar(reader: impl std::io::Read) -> Vec<Listed> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().expect("a tar stream");
    entries
        .map(|entry| {
            let entry = entry.expect("a tar entry");
            let header = entry.header();
            Listed {
                path: entry.path().expect("a path").display().to_string(),
                mode: header.mode().expect("a mode"),
                uid: header.uid().expect("a uid"),
                gid: header.gid().expect("a gid"),
                mtime: header.mtime().expect("an mtime"),
                kind: header.entry_type(),
            }
        })
        .collect()
}
