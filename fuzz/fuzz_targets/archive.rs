//! Image archives: the input, as an `oci-archive` or `docker-archive` file (plain or gzip), is
//! imported into a blob store and its JSON read, then opened whole as a parent image for
//! linux/amd64 and its file tree read. Errors are fine; a panic, overflow, hang or runaway
//! allocation is a bug. Each run gets a fresh directory, as an archive writes its members.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_pack::{
    ArchiveFiles, BlobStore, BuildCache, ImageSource, NoProgress, ParentImage, Platform, Selector,
};

fuzz_target!(|data: &[u8]| {
    let dir = scratch_dir();
    let file = dir.path().join("image.tar");
    std::fs::write(&file, data).expect("the archive is written");

    let store = BlobStore::open(&dir.path().join("store")).expect("a blob store");
    if let Ok(files) = ArchiveFiles::import(&file, &store) {
        for name in ["index.json", "manifest.json", "oci-layout", "repositories"] {
            let _ = files.read_json::<serde_json::Value>(&store, name);
        }
    }

    let platform = Platform::new("linux", "amd64", None);
    let sources = [
        ImageSource::OciArchive {
            file: file.clone(),
            selector: Selector::Only,
        },
        ImageSource::DockerArchive {
            file: file.clone(),
            reference: None,
        },
    ];
    for (i, source) in sources.iter().enumerate() {
        let cache = BuildCache::open(&dir.path().join(format!("cache{i}"))).expect("a cache");
        if let Ok(Some(mut parent)) =
            ParentImage::open(source, &platform, &cache, None, &mut NoProgress)
        {
            if parent.file_tree().is_ok() {
                assert!(parent.layers_verified());
            }
        }
    }
});

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
