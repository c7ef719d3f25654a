//! The build cache (`target/oci/.cache`): an unchanged rebuild leaves every output as it was,
//! a damaged or tampered cache entry is dropped and rebuilt (never trusted), and a parent that
//! changed after it was cached is checked again, and refused when it is wrong.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::support::parents::parents;
use crate::support::{copy_dir, manifest_and_config, Fixture};

/// What would show that a file was written again.
fn identity(path: &Path) -> (u64, i64, i64) {
    let metadata = fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (metadata.ino(), metadata.mtime(), metadata.mtime_nsec())
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn an_unchanged_rebuild_leaves_every_output_untouched() {
    let fixture = Fixture::copy("hello");
    let formats = [
        "--format",
        "oci",
        "--format",
        "oci-archive",
        "--format",
        "docker",
    ];
    let args: Vec<&str> = formats.iter().copied().chain(["--quiet"]).collect();
    let first = fixture.build_ok(&args);
    let oci = fixture.path().join("target/oci");
    let outputs = [
        fixture.layout().join("index.json"),
        oci.join("hello.oci.tar"),
        oci.join("hello.docker.tar"),
    ];
    let before: Vec<_> = outputs.iter().map(|p| identity(p)).collect();

    let again = fixture.build(&formats);
    crate::support::assert_success(&again, "the rebuild");
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        first,
        "the same digests"
    );
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(stderr.matches("Fresh").count(), 3, "{stderr}");
    assert!(!stderr.contains("Writing"), "{stderr}");
    let after: Vec<_> = outputs.iter().map(|p| identity(p)).collect();
    assert_eq!(before, after, "nothing was written again");

    // An output that no longer holds the image is written again, and only that one.
    let (manifest, _) = manifest_and_config(&fixture.layout());
    let layer = manifest["layers"][1]["digest"].as_str().unwrap();
    fs::remove_file(fixture.layout().join("blobs/sha256").join(&layer[7..])).unwrap();
    fs::write(oci.join("hello.docker.tar"), b"damaged").unwrap();
    let repaired = fixture.build(&formats);
    crate::support::assert_success(&repaired, "the repair");
    let stderr = String::from_utf8_lossy(&repaired.stderr);
    assert_eq!(stderr.matches("Fresh").count(), 1, "{stderr}");
    assert_eq!(
        identity(&outputs[1]),
        before[1],
        "the OCI archive was left alone"
    );
    assert!(fixture
        .layout()
        .join("blobs/sha256")
        .join(&layer[7..])
        .is_file());
    assert_eq!(String::from_utf8_lossy(&repaired.stdout), first);
}

#[test]
fn damaged_cache_entries_and_blobs_are_dropped_never_trusted() {
    let Some(parents) = parents() else { return };
    let fixture = Fixture::copy("hello");
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"oci:{}:latest\"\n",
        parents.layout.display()
    ));
    let first = fixture.build_ok(&["--quiet"]);
    let cache = fixture.path().join("target/oci/.cache");

    // Every entry and every blob the cache made or took gets one byte flipped.
    let entries: Vec<PathBuf> = ["changes", "layers", "stamps", "verified", "outputs"]
        .iter()
        .flat_map(|dir| files(&cache.join(dir)))
        .collect();
    assert!(entries.len() >= 4, "{entries:?}");
    for entry in &entries {
        let mut bytes = fs::read(entry).unwrap();
        bytes[0] ^= 1;
        fs::write(entry, bytes).unwrap();
    }
    for blob in files(&cache.join("blobs/sha256")) {
        // A new file (the parent's own, hard-linked here, stays as it is), of the same size.
        let mut bytes = fs::read(&blob).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::remove_file(&blob).unwrap();
        fs::write(&blob, bytes).unwrap();
    }
    fs::remove_dir_all(fixture.layout()).unwrap();

    let output = fixture.build(&[]);
    crate::support::assert_success(&output, "a build on a damaged cache");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: dropped the damaged cache entry"),
        "{stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        first,
        "the same image, from the parent and the sources again"
    );
    for blob in files(&fixture.layout().join("blobs/sha256")) {
        let name = blob.file_name().unwrap().to_string_lossy().into_owned();
        let digest = oci_pack::digest::Digest::of(&fs::read(&blob).unwrap());
        assert_eq!(
            digest.hex(),
            name,
            "every blob of the output is what its name says"
        );
    }
    if crate::support::tool("oci-image-tool") {
        crate::support::oci_image_tool_validates(&fixture.layout(), "0.1.0");
    }
}

#[test]
fn a_parent_that_changed_after_it_was_cached_is_checked_again() {
    let Some(parents) = parents() else { return };
    let fixture = Fixture::copy("hello");
    let parent = fixture.path().join("parent");
    copy_dir(&parents.layout, &parent);
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"oci:{}:latest\"\nbins = []\n",
        parent.display()
    ));
    fixture.build_ok(&["--quiet"]);

    // The same size, one byte changed: the cache knew this blob, but not as it is now.
    let (manifest, _) = manifest_and_config(&fixture.layout());
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = parent.join("blobs/sha256").join(&layer[7..]);
    let mut bytes = fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&blob, bytes).unwrap();
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a changed parent was trusted");
    assert!(
        stderr.contains(&format!("blob {layer} is corrupt")),
        "{stderr}"
    );
}
