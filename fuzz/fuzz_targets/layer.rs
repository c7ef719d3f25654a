//! The parent layer reader: the input (after a first byte picking plain tar, gzip or zstd) is
//! stored as a layer blob, read into its changes, and applied to a tree twice (so whiteouts
//! meet lower entries); read changes must survive `encode` then `decode` unchanged. A first
//! byte of 3 feeds the rest, after the cache's version line, to `LayerChanges::decode`.
//! Errors are fine; a panic, overflow, hang or runaway allocation is a bug.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use oci_pack::media_type::{OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD};
use oci_pack::tree::{FileTree, LayerChanges};
use oci_pack::{BlobStore, Digest, Error};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    check_decode(data);
    let media_type = match first % 4 {
        0 => OCI_LAYER_TAR,
        1 => OCI_LAYER_GZIP,
        2 => OCI_LAYER_ZSTD,
        _ => return check_decode(&[version_line(), rest].concat()),
    };
    let dir = scratch_dir();
    let store = BlobStore::open(dir.path()).expect("a blob store");
    let layer = store.put(media_type, rest).expect("the blob is stored");
    // The digest of a plain tar is its diff_id; a compressed one is read twice, the second
    // time with the diff_id the first read found, so the changes get through.
    let changes = match LayerChanges::read(&store, &layer, &Digest::of(rest)) {
        Err(Error::DiffIdMismatch { actual, .. }) => LayerChanges::read(&store, &layer, &actual),
        read => read,
    };
    let Ok(changes) = changes else {
        return;
    };
    assert_eq!(changes.layer, layer.digest);
    let decoded = LayerChanges::decode(&changes.encode());
    assert_eq!(
        decoded.as_ref(),
        Some(&changes),
        "decode(encode(changes)) differs"
    );
    let mut tree = FileTree::default();
    if tree.apply(changes.clone()).is_ok() {
        let _ = tree.apply(changes);
    }
    for (path, _) in tree.iter() {
        let _ = tree.children(path).count();
    }
});

/// Whatever `decode` accepts, `encode` writes back to bytes that decode to the same changes.
fn check_decode(bytes: &[u8]) {
    if let Some(changes) = LayerChanges::decode(bytes) {
        let again = LayerChanges::decode(&changes.encode());
        assert_eq!(
            again.as_ref(),
            Some(&changes),
            "decode(encode(decode(bytes))) differs"
        );
        let mut tree = FileTree::default();
        let _ = tree.apply(changes);
    }
}

/// The version line `LayerChanges::encode` starts with, taken from the encoding of an empty
/// layer, so that a new version of the encoding needs no change here.
fn version_line() -> &'static [u8] {
    static LINE: OnceLock<Vec<u8>> = OnceLock::new();
    LINE.get_or_init(|| {
        let dir = scratch_dir();
        let store = BlobStore::open(dir.path()).expect("a blob store");
        let empty = [0u8; 1024];
        let layer = store
            .put(OCI_LAYER_TAR, &empty)
            .expect("the blob is stored");
        let changes = LayerChanges::read(&store, &layer, &Digest::of(&empty));
        let encoded = changes.expect("an empty layer reads").encode();
        let end = encoded
            .iter()
            .position(|b| *b == b'\n')
            .expect("a version line");
        encoded[..=end].to_vec()
    })
}

/// A fresh directory for one run, in memory where the machine has `/dev/shm`: each run writes
/// its blobs, and a disk makes that ten times slower.
fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    };
    tempfile::tempdir_in(base).expect("a scratch directory")
}
