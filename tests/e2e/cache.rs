//! The build cache (`target/oci/.cache`): an unchanged rebuild leaves every output as it was,
//! a damaged or tampered cache entry is dropped and rebuilt (never trusted), a damaged blob
//! never stays in an output nor reaches the user's own base, a file rewritten in place is seen
//! whatever times it is given, a parent that changed after it was cached is checked again (and
//! refused when it is wrong), and what a killed build left is swept.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_pack::Digest;

use crate::support::parents::parents;
use crate::support::{assert_success, copy_dir, manifest_and_config, Fixture};

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
        let digest = oci_pack::Digest::of(&fs::read(&blob).unwrap());
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

/// Writes `bytes` over the file at `path` in place (the same inode), then gives it back the
/// modification time it had, as `tar` or `touch -d` would: its size and modification time say
/// nothing changed; only its change time, which the kernel alone sets, does.
fn rewrite_in_place(path: &Path, bytes: &[u8]) {
    let modified = fs::metadata(path).unwrap().modified().unwrap();
    let inode = fs::metadata(path).unwrap().ino();
    let mut file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
    file.set_len(bytes.len() as u64).unwrap();
    file.set_modified(modified).unwrap();
    assert_eq!(fs::metadata(path).unwrap().ino(), inode);
}

/// Flips one byte of the file at `path`, in place, keeping its size and modification time.
fn flip_in_place(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    rewrite_in_place(path, &bytes);
}

/// Whether every blob under `layout` hashes to its name.
fn blobs_intact(layout: &Path) -> bool {
    files(&layout.join("blobs/sha256")).iter().all(|blob| {
        let name = blob.file_name().unwrap().to_string_lossy().into_owned();
        Digest::of(&fs::read(blob).unwrap()).hex() == name
    })
}

#[test]
fn a_byte_flipped_in_the_cache_or_the_output_never_stays_in_the_output() {
    let fixture = Fixture::copy("hello");
    let first = fixture.build_ok(&["--quiet"]);
    let (manifest, _) = manifest_and_config(&fixture.layout());
    let layer = manifest["layers"][1]["digest"].as_str().unwrap().to_owned();
    let cached = fixture
        .path()
        .join("target/oci/.cache/blobs/sha256")
        .join(&layer[7..]);
    let output = fixture.layout().join("blobs/sha256").join(&layer[7..]);

    for damaged in [&cached, &output] {
        flip_in_place(damaged);
        let again = fixture.build(&[]);
        assert_success(&again, "a build after a blob was damaged");
        let stderr = String::from_utf8_lossy(&again.stderr);
        assert!(!stderr.contains("Fresh"), "{}: {stderr}", damaged.display());
        assert!(stderr.contains("Writing"), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&again.stdout), first);
        assert!(blobs_intact(&fixture.layout()), "{}", damaged.display());
        let verified = fixture.cargo_oci(&["verify", "--layout", "target/oci/hello"]);
        assert_success(&verified, "cargo oci verify --layout");
    }
    // Repaired, it is fresh again.
    let again = fixture.build(&[]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("Fresh"));
}

#[test]
fn damaging_the_cache_never_damages_an_oci_base() {
    let Some(parents) = parents() else { return };
    let fixture = Fixture::copy("hello");
    // Beside the cache, on its filesystem, where a link could be made.
    let parent = fixture.path().join("parent");
    copy_dir(&parents.layout, &parent);
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"oci:{}:latest\"\n",
        parent.display()
    ));
    let first = fixture.build_ok(&["--quiet"]);
    let cache = fixture.path().join("target/oci/.cache/blobs/sha256");
    let (manifest, _) = manifest_and_config(&fixture.layout());
    let base_layer = manifest["layers"][0]["digest"].as_str().unwrap();
    assert!(
        cache.join(&base_layer[7..]).is_file(),
        "the base's layer is cached"
    );

    for blob in files(&cache) {
        flip_in_place(&blob);
    }
    assert!(blobs_intact(&parent), "the user's own base was damaged");
    let again = fixture.build(&[]);
    assert_success(&again, "a build on a damaged cache");
    assert_eq!(String::from_utf8_lossy(&again.stdout), first);
    assert!(blobs_intact(&fixture.layout()));
}

#[test]
fn a_file_rewritten_keeping_its_size_and_mtime_is_seen() {
    let fixture = Fixture::copy("hello");
    let page = fixture.path().join("static/index.html");
    fs::write(&page, "<h1>release 1</h1>").unwrap();
    // Pinned, as an archive's files are when unpacked (`touch -d 2020-01-01`).
    let pinned = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_577_836_800);
    fs::File::options()
        .write(true)
        .open(&page)
        .unwrap()
        .set_modified(pinned)
        .unwrap();
    // Settled, so the stamp is recorded and the next build reuses the layer by it.
    std::thread::sleep(std::time::Duration::from_millis(100));
    fixture.build_ok(&["--quiet"]);
    let again = fixture.build(&[]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("Fresh"));

    // The next release unpacked over it: the same inode, size and modification time.
    rewrite_in_place(&page, b"<h1>release 2</h1>");
    assert_eq!(fs::metadata(&page).unwrap().modified().unwrap(), pinned);
    fixture.build_ok(&["--quiet"]);
    let (manifest, _) = manifest_and_config(&fixture.layout());
    let files_layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = fs::read(
        fixture
            .layout()
            .join("blobs/sha256")
            .join(&files_layer[7..]),
    )
    .unwrap();
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&blob[..]), &mut tar)
        .unwrap();
    let holds = |text: &[u8]| tar.windows(text.len()).any(|w| w == text);
    assert!(holds(b"<h1>release 2</h1>"), "the image holds the old file");
    assert!(!holds(b"<h1>release 1</h1>"));
}

#[test]
fn what_a_killed_build_left_in_the_cache_is_swept() {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    let cache = fixture.path().join("target/oci/.cache");
    let left = [
        cache.join("blobs/sha256/.partial-a1b2c3"),
        cache.join("layers/.tmpa1b2c3"),
    ];
    for path in &left {
        fs::write(path, b"half written").unwrap();
    }
    fixture.build_ok(&["--quiet"]);
    for path in &left {
        assert!(!path.exists(), "{} is left", path.display());
    }
}

#[test]
fn a_tag_record_is_checked_and_failing_to_write_one_only_warns() {
    let Some(registry) = crate::support::Registry::start(None) else {
        return;
    };
    let Some(parents) = parents() else { return };
    registry.put(&parents.layout, "busybox:1.36");
    let fixture = Fixture::copy("hello");
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"{}/busybox:1.36\"\n",
        registry.host
    ));
    // `refs/` cannot be made (a file is in its place): the build goes on, and says so.
    let refs = fixture.path().join("target/oci/.cache/refs");
    fs::create_dir_all(refs.parent().unwrap()).unwrap();
    fs::write(&refs, b"").unwrap();
    let output = fixture.build(&[]);
    assert_success(&output, "a build with an unwritable refs/");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: could not write the cache entry `") && stderr.contains("refs/"),
        "{stderr}"
    );

    // Recorded, then emptied: an offline build names the record.
    fs::remove_file(&refs).unwrap();
    fixture.build_ok(&["--quiet"]);
    let records = files(&refs);
    assert_eq!(records.len(), 1, "{records:?}");
    fs::write(&records[0], b"").unwrap();
    let output = fixture.build(&["--offline"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "needs the tag `1.36` (its record `{}` is damaged: ",
            records[0].display()
        )),
        "{stderr}"
    );
    // Online, it is recorded again.
    fixture.build_ok(&["--quiet"]);
    fixture.build_ok(&["--quiet", "--offline"]);
}

#[test]
fn blobs_no_build_used_for_two_weeks_are_swept_and_used_ones_kept() {
    let fixture = Fixture::copy("hello");
    let first = fixture.build_ok(&["--quiet"]);
    let cache = fixture.path().join("target/oci/.cache");
    let blobs = cache.join("blobs/sha256");
    // An old base's config, say: a blob no build uses any more.
    let forgotten = b"{\"architecture\":\"amd64\",\"os\":\"linux\"}";
    let forgotten_path = blobs.join(Digest::of(forgotten).hex());
    fs::write(&forgotten_path, forgotten).unwrap();
    // Everything a month old, the image's own blobs too; the day's sweep is due.
    let month_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 24 * 3600);
    for blob in files(&blobs) {
        let file = fs::File::options().write(true).open(&blob).unwrap();
        file.set_modified(month_ago).unwrap();
    }
    fs::remove_file(cache.join("swept")).unwrap();

    let output = fixture.build(&["-v"]);
    assert_success(&output, "a build that sweeps");
    assert!(!forgotten_path.exists(), "an unused blob is kept for ever");
    let (manifest, _) = manifest_and_config(&fixture.layout());
    for layer in manifest["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        assert!(blobs.join(&digest[7..]).is_file(), "{digest} was swept");
    }
    assert_eq!(String::from_utf8_lossy(&output.stdout), first);
}
