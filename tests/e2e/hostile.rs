//! Hostile and broken parent images. Each case is a clear error naming the blob and the entry
//! (or, for a link that merely points out of the root, accepted and never followed), leaves no
//! output, and writes nothing outside the output directory.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::support::host::HOST;
use crate::support::Fixture;
use oci_pack::testing::{tar_of, Raw};
use oci_pack::Digest;
use serde_json::json;

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// One layer of a crafted parent.
pub(crate) struct Layer {
    media_type: &'static str,
    blob: Vec<u8>,
    pub(crate) diff_id: Digest,
}

pub(crate) fn gzip(entries: &[Raw<'_>]) -> Layer {
    let tar = tar_of(entries);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &tar).unwrap();
    Layer {
        media_type: GZIP,
        blob: encoder.finish().unwrap(),
        diff_id: Digest::of(&tar),
    }
}

fn put(layout: &Path, bytes: &[u8]) -> Digest {
    let digest = Digest::of(bytes);
    fs::write(layout.join("blobs/sha256").join(digest.hex()), bytes).unwrap();
    digest
}

/// Writes an OCI layout at `layout` holding one image, tag `latest`; `edit` may spoil the
/// manifest JSON before it is stored. Returns the layers' digests.
pub(crate) fn craft(
    layout: &Path,
    layers: &[Layer],
    config: Option<&[u8]>,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Vec<Digest> {
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
    let default_config = serde_json::to_vec(&json!({
        "architecture": HOST.go, "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    }))
    .unwrap();
    let config = config.unwrap_or(&default_config);
    let config_digest = put(layout, config);
    let digests: Vec<Digest> = layers.iter().map(|l| put(layout, &l.blob)).collect();
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len()
        },
        "layers": layers
            .iter()
            .zip(&digests)
            .map(|(l, d)| {
                json!({"mediaType": l.media_type, "digest": d.to_string(), "size": l.blob.len()})
            })
            .collect::<Vec<_>>(),
    });
    edit(&mut manifest);
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = put(layout, &manifest);
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest.to_string(),
        "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "latest"}
    }]});
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    digests
}

/// Every path under `dir` except the cargo build output, to compare before and after.
fn snapshot(dir: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path == dir.join("target") {
                continue;
            }
            if path.is_dir() && !path.is_symlink() {
                stack.push(path.clone());
            }
            found.insert(path);
        }
    }
    found
}

/// Builds the fixture on the crafted parent at `parent/`, expecting an error that contains
/// every one of `expected`, no output, and nothing new outside the output directory.
fn assert_refused(fixture: &Fixture, base: &str, expected: &[String]) {
    assert_refused_with(fixture, base, "", expected);
}

/// The same, with `extra` metadata lines after `base`.
fn assert_refused_with(fixture: &Fixture, base: &str, extra: &str, expected: &[String]) {
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"{base}\"\n{extra}"
    ));
    let before = snapshot(fixture.path());
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{base} was accepted");
    for text in expected {
        assert!(
            stderr.contains(text.as_str()),
            "{base}: expected `{text}` in:\n{stderr}"
        );
    }
    assert_eq!(
        snapshot(fixture.path()),
        before,
        "{base}: files appeared outside the output directory"
    );
    let leftovers = crate::support::outputs_in(&fixture.path().join("target/oci"));
    assert!(leftovers.is_empty(), "{base}: left behind {leftovers:?}");
}

#[test]
fn hostile_layer_entries_are_refused_naming_blob_and_entry() {
    let cases: Vec<(Vec<Raw<'static>>, &str, &str)> = vec![
        (
            vec![Raw::File("../../escape", b"x", 0o644)],
            "../../escape",
            "`..` is not allowed",
        ),
        (
            vec![Raw::File("/etc/escape", b"x", 0o644)],
            "/etc/escape",
            "absolute paths are not allowed",
        ),
        (
            vec![Raw::HardLink("shadow", "../../etc/shadow")],
            "shadow",
            "the hard link points outside the root",
        ),
    ];
    for (entries, entry, reason) in cases {
        let fixture = Fixture::copy("hello");
        let digests = craft(
            &fixture.path().join("parent"),
            &[gzip(&entries)],
            None,
            |_| {},
        );
        assert_refused(
            &fixture,
            "oci:parent:latest",
            &[format!(
                "layer {} has a hostile entry `{entry}`: {reason}",
                digests[0]
            )],
        );
    }
    // Broken rather than hostile, and said so.
    let fixture = Fixture::copy("hello");
    let twice = [Raw::File("a", b"1", 0o644), Raw::File("a", b"2", 0o644)];
    let digests = craft(
        &fixture.path().join("parent"),
        &[gzip(&twice)],
        None,
        |_| {},
    );
    assert_refused(
        &fixture,
        "oci:parent:latest",
        &[format!(
            "layer {} has an invalid entry `a`: the path appears twice",
            digests[0]
        )],
    );
}

#[test]
fn a_link_out_of_the_root_is_never_followed() {
    let fixture = Fixture::copy("hello");
    craft(
        &fixture.path().join("parent"),
        &[gzip(&[Raw::Symlink("srv", "../../../../tmp")])],
        None,
        |_| {},
    );
    // The fixture stages /srv/static: under the link, which we refuse rather than follow.
    let before = snapshot(fixture.path());
    let metadata = fs::read_to_string(fixture.path().join("Cargo.toml")).unwrap();
    fs::write(
        fixture.path().join("Cargo.toml"),
        metadata.replace(
            "[package.metadata.oci]\n",
            "[package.metadata.oci]\nbase = \"oci:parent:latest\"\n",
        ),
    )
    .unwrap();
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "cannot stage `/srv`: it is a symbolic link to `../../../../tmp` in the base image"
        ),
        "{stderr}"
    );
    let mut after = snapshot(fixture.path());
    after.remove(&fixture.path().join("Cargo.toml"));
    let mut before = before;
    before.remove(&fixture.path().join("Cargo.toml"));
    assert_eq!(after, before);

    // Without anything staged under it, the link is just part of the parent.
    fixture.set_metadata("[package.metadata.oci]\nbase = \"oci:parent:latest\"\n");
    fixture.build_ok(&["--quiet"]);
}

#[test]
fn broken_blobs_and_json_are_refused_naming_the_blob() {
    let fixture = Fixture::copy("hello");
    let parent = fixture.path().join("parent");
    let good = || gzip(&[Raw::Dir("etc/", 0o755), Raw::File("etc/motd", b"hi", 0o644)]);

    // Content that does not hash to its name.
    let digests = craft(&parent, &[good()], None, |_| {});
    fs::write(
        parent.join("blobs/sha256").join(digests[0].hex()),
        b"tampered",
    )
    .unwrap();
    assert_refused(
        &fixture,
        "oci:parent:latest",
        &[format!("blob {} is corrupt", digests[0])],
    );

    // One byte changed, the size kept, and nothing staged: the parent's layers are not diffed,
    // but are still verified before they are linked into the output.
    fs::remove_dir_all(&parent).unwrap();
    let digests = craft(&parent, &[good()], None, |_| {});
    let path = parent.join("blobs/sha256").join(digests[0].hex());
    let mut bytes = fs::read(&path).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    fs::write(&path, bytes).unwrap();
    assert_refused_with(
        &fixture,
        "oci:parent:latest",
        "bins = []\n",
        &[format!("blob {} is corrupt", digests[0])],
    );

    // A descriptor whose size lies.
    fs::remove_dir_all(&parent).unwrap();
    let digests = craft(&parent, &[good()], None, |m| {
        m["layers"][0]["size"] = json!(3)
    });
    assert_refused(
        &fixture,
        "oci:parent:latest",
        &[format!("blob {} is corrupt: expected 3 bytes", digests[0])],
    );

    // Truncated gzip, stored under its own digest so only the decompression can tell.
    fs::remove_dir_all(&parent).unwrap();
    let mut truncated = good();
    truncated.blob.truncate(truncated.blob.len() / 2);
    let digests = craft(&parent, &[truncated], None, |_| {});
    assert_refused(
        &fixture,
        "oci:parent:latest",
        &[format!("failed to read layer {}", digests[0])],
    );

    // A layer whose tar is not what the config's diff_id says.
    fs::remove_dir_all(&parent).unwrap();
    let mut lying = good();
    lying.diff_id = Digest::of(b"another tar");
    let digests = craft(&parent, &[lying], None, |_| {});
    assert_refused(
        &fixture,
        "oci:parent:latest",
        &[format!("layer {} does not match its diff_id", digests[0])],
    );

    // Malformed config JSON.
    fs::remove_dir_all(&parent).unwrap();
    craft(&parent, &[good()], Some(b"{not json"), |_| {});
    assert_refused(
        &fixture,
        "oci:parent:latest",
        &["malformed JSON in config sha256:".to_owned()],
    );

    // A missing layer blob.
    fs::remove_dir_all(&parent).unwrap();
    let digests = craft(&parent, &[good()], None, |_| {});
    fs::remove_file(parent.join("blobs/sha256").join(digests[0].hex())).unwrap();
    assert_refused(
        &fixture,
        "oci:parent:latest",
        &[format!("blob {} is missing", digests[0])],
    );

    // A layer type we cannot read.
    fs::remove_dir_all(&parent).unwrap();
    let digests = craft(&parent, &[good()], None, |m| {
        m["layers"][0]["mediaType"] = json!("application/x-secret")
    });
    assert_refused(
        &fixture,
        "oci:parent:latest",
        &[format!(
            "blob {} has media type `application/x-secret`, which cannot be read",
            digests[0]
        )],
    );

    // More layers than diff_ids.
    fs::remove_dir_all(&parent).unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": HOST.go, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .unwrap();
    craft(&parent, &[good()], Some(&config), |_| {});
    assert_refused(
        &fixture,
        "oci:parent:latest",
        &["lists 1 layers but its config has 0 diff_ids".to_owned()],
    );

    // An index that names a manifest the layout does not have.
    fs::remove_dir_all(&parent).unwrap();
    craft(&parent, &[good()], None, |_| {});
    let absent = Digest::of(b"no such manifest");
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": absent.to_string(),
        "size": 10, "annotations": {"org.opencontainers.image.ref.name": "latest"}
    }]});
    fs::write(
        parent.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    assert_refused(
        &fixture,
        "oci:parent:latest",
        &[format!("blob {absent} is missing")],
    );
}

/// A layer only the reading of the base's tree finds broken (its tar is not what its diff_id
/// says; its blob is what its digest says) is read while cargo builds: cargo runs, then the
/// build fails naming the base and the layer, before anything is packed. With `--no-build`,
/// nothing runs beside: the same error, at once, before the binary is looked for.
#[test]
fn a_layer_broken_inside_fails_the_build_after_cargo_and_before_packing() {
    let fixture = Fixture::copy("hello");
    let built = || fixture.path().join("target/release").exists();
    let mut lying = gzip(&[Raw::Dir("etc/", 0o755), Raw::File("etc/motd", b"hi", 0o644)]);
    lying.diff_id = Digest::of(b"another tar");
    let digests = craft(&fixture.path().join("parent"), &[lying], None, |_| {});
    let expected = [
        format!(
            "failed to read the base image `oci:{}:latest`",
            fixture.path().join("parent").display()
        ),
        format!("layer {} does not match its diff_id", digests[0]),
    ];
    fixture.set_metadata("[package.metadata.oci]\nbase = \"oci:parent:latest\"\n");
    let output = fixture.build(&["--quiet", "--no-build"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        expected.iter().all(|e| stderr.contains(e.as_str())),
        "{stderr}"
    );
    assert!(!built(), "cargo ran with `--no-build`: {stderr}");

    assert_refused(&fixture, "oci:parent:latest", &expected);
    assert!(built(), "the base's layers were read before cargo ran");
    assert!(!fixture.layout().exists(), "an output was written");
}

#[test]
fn hostile_archives_are_refused() {
    let fixture = Fixture::copy("hello");
    let archive = |name: &str, entries: &[Raw<'_>]| {
        fs::write(fixture.path().join(name), tar_of(entries)).unwrap();
    };
    archive(
        "escape.tar",
        &[
            Raw::File("../../escape", b"x", 0o644),
            Raw::File("manifest.json", b"[]", 0o644),
        ],
    );
    assert_refused(
        &fixture,
        "docker-archive:escape.tar",
        &["has a hostile entry `../../escape`: the name leaves the archive".to_owned()],
    );

    let manifest =
        br#"[{"Config":"config.json","RepoTags":["x:1"],"Layers":["missing/layer.tar"]}]"#;
    archive(
        "missing.tar",
        &[
            Raw::File("manifest.json", manifest, 0o644),
            Raw::File("config.json", b"{}", 0o644),
        ],
    );
    assert_refused(
        &fixture,
        "docker-archive:missing.tar",
        &["malformed JSON in `config.json`".to_owned()],
    );

    let config = json!({
        "architecture": HOST.go, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}
    })
    .to_string();
    let config = config.as_bytes();
    archive(
        "missing.tar",
        &[
            Raw::File("manifest.json", manifest, 0o644),
            Raw::File("config.json", config, 0o644),
        ],
    );
    assert_refused(
        &fixture,
        "docker-archive:missing.tar",
        &["has no file `missing/layer.tar`".to_owned()],
    );

    archive(
        "link.tar",
        &[Raw::Symlink("manifest.json", "../../../etc/passwd")],
    );
    assert_refused(
        &fixture,
        "docker-archive:link.tar",
        &["has a hostile entry `manifest.json`: the link points outside the archive".to_owned()],
    );
}

/// A link planted in the build cache where a registry base's tag is recorded (as a `target/`
/// shipped in a repository could hold) is replaced, never written through.
#[test]
fn a_link_planted_in_the_cache_is_never_written_through() {
    let Some(registry) = crate::support::Registry::start(None) else {
        return;
    };
    let Some(parents) = crate::support::parents::parents() else {
        return;
    };
    registry.put(&parents.layout, "busybox:1.36");
    let fixture = Fixture::copy("hello");
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"{}/busybox:1.36\"\n",
        registry.host
    ));
    fixture.build_ok(&["--quiet"]);
    let refs = fixture.path().join("target/oci/.cache/refs");
    let [recorded] = fs::read_dir(&refs)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let victim = fixture.path().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    fs::remove_file(&recorded).unwrap();
    std::os::unix::fs::symlink(&victim, &recorded).unwrap();
    fixture.build_ok(&["--quiet"]);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(fs::symlink_metadata(&recorded).unwrap().is_file());
}
