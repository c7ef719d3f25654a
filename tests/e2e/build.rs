//! End-to-end tests of `cargo oci build` on fixture crates: what it writes, what it prints, the
//! errors it gives, and that the same inputs give the same bytes.

use std::fs;
use std::time::{Duration, SystemTime};

use crate::support::host::HOST;
use crate::support::{manifest_and_config, read_json, Fixture};

#[test]
fn writes_a_layout_with_every_tag_and_the_declared_config() {
    let fixture = Fixture::copy("hello");
    let stdout = fixture.build_ok(&[]);
    let layout = fixture.layout();
    let index = read_json(&layout.join("index.json"));
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let sbom = fixture
        .path()
        .join("target/oci")
        .join(crate::support::sbom_of("hello"));
    assert_eq!(
        stdout,
        format!(
            "oci {digest} {}\nsbom {digest} {}\n",
            layout.display(),
            sbom.display()
        )
    );

    assert_eq!(
        fs::read_to_string(layout.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let (artifacts, tagged): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) = index
        ["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .partition(|m| m["artifactType"].is_string());
    assert_eq!(artifacts.len(), 2, "the SBOM and the provenance: {index}");
    let entries: Vec<(&str, &str)> = tagged
        .into_iter()
        .map(|m| {
            assert_eq!(m["digest"], digest);
            assert_eq!(
                m["platform"],
                serde_json::json!({"architecture": HOST.go, "os": "linux"})
            );
            let annotations = &m["annotations"];
            (
                annotations["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap(),
                annotations["io.containerd.image.name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [("0.1.0", "hello:0.1.0"), ("latest", "hello:latest")]
    );
    assert_eq!(index["annotations"]["org.example.index"], "yes");

    let (manifest, config) = manifest_and_config(&layout);
    let annotations = &manifest["annotations"];
    assert_eq!(annotations["org.opencontainers.image.title"], "hello");
    assert_eq!(annotations["org.opencontainers.image.version"], "0.1.0");
    assert_eq!(annotations["org.opencontainers.image.licenses"], "MIT");
    assert_eq!(
        annotations["org.opencontainers.image.source"],
        "https://example.com/hello"
    );
    assert_eq!(
        annotations["org.opencontainers.image.authors"],
        "Ferris <ferris@example.com>"
    );
    assert_eq!(
        annotations["org.opencontainers.image.created"],
        "1970-01-01T00:00:00Z"
    );
    assert_eq!(annotations["org.example.team"], "fixtures");
    assert!(
        annotations
            .get("org.opencontainers.image.revision")
            .is_none(),
        "the copy is not in git"
    );

    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        2,
        "static files and binaries, one layer each"
    );
    assert_eq!(
        config["config"],
        serde_json::json!({
            "User": "65532:65532",
            "ExposedPorts": {"53/udp": {}, "8080/tcp": {}},
            "Env": ["GREETING=hi there", "RUST_LOG=info"],
            "Entrypoint": ["/usr/local/bin/hello"],
            "Cmd": ["--from-cmd"],
            "Volumes": {"/data": {}},
            "WorkingDir": "/srv",
            "Labels": {"org.example.fixture": "hello"},
            "StopSignal": "SIGINT",
            "Healthcheck": {
                "Test": ["CMD", "/usr/local/bin/hello", "--check"],
                "Interval": 90_000_000_000u64,
                "Timeout": 5_000_000_000u64,
                "StartPeriod": 2_000_000_000u64,
                "Retries": 3
            },
            "Memory": 268_435_456,
            "MemorySwap": 536_870_912,
            "CpuShares": 512
        })
    );
    assert_eq!(config["author"], "Ferris <ferris@example.com>");
    assert_eq!(config["history"].as_array().unwrap().len(), 2);
}

#[test]
fn json_messages_describe_each_output() {
    let fixture = Fixture::copy("hello");
    let stdout = fixture.build_ok(&["--message-format", "json", "--output", "image"]);
    let messages: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let [message, sbom] = messages.as_slice() else {
        panic!("one message for the layout, one for its SBOM: {stdout}")
    };
    let layout = fixture.path().join("image");
    // The SBOM sits beside the layout `--output` names, as the archives would.
    assert_eq!(sbom["format"], "sbom");
    let beside = fixture.path().join(crate::support::sbom_of("image"));
    assert_eq!(sbom["path"], beside.display().to_string());
    assert_eq!(sbom["digest"], message["digest"]);
    let index = read_json(&layout.join("index.json"));
    assert_eq!(message["format"], "oci");
    assert_eq!(message["path"], layout.display().to_string());
    assert_eq!(message["digest"], index["manifests"][0]["digest"]);
    assert_eq!(
        message["tags"],
        serde_json::json!(["hello:0.1.0", "hello:latest"])
    );
    assert_eq!(message["platforms"], serde_json::json!([HOST.platform()]));
}

#[test]
fn the_same_crate_in_two_places_gives_the_same_digests() {
    let first = Fixture::copy("hello");
    let second = Fixture::copy("hello");
    // Different source mtimes must not reach the image.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for entry in ["src/main.rs", "static/css/site.css", "static/index.html"] {
        fs::File::options()
            .write(true)
            .open(second.path().join(entry))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let a = first.build_ok(&["--quiet"]);
    let b = second.build_ok(&["--quiet"]);
    let digest = |stdout: &str| stdout.split(' ').nth(1).unwrap().to_owned();
    assert_eq!(digest(&a), digest(&b));
    let (manifest_a, config_a) = manifest_and_config(&first.layout());
    let (manifest_b, config_b) = manifest_and_config(&second.layout());
    assert_eq!(manifest_a, manifest_b);
    assert_eq!(config_a, config_b);
}

/// `SOURCE_DATE_EPOCH` dates the config, its history and the annotation; the layers' files are
/// at one fixed time, so two releases of the same files share their layers' digests.
#[test]
fn source_date_epoch_dates_config_history_and_annotation_not_files() {
    let fixture = Fixture::copy("hello");
    let build_at = |epoch: &str| {
        let output = fixture.build_with_env(&["--quiet"], &[("SOURCE_DATE_EPOCH", epoch)]);
        crate::support::assert_success(&output, "cargo oci build");
        manifest_and_config(&fixture.layout())
    };
    let layers = |manifest: &serde_json::Value| -> Vec<String> {
        let layers = manifest["layers"].as_array().unwrap();
        layers.iter().map(|l| l["digest"].to_string()).collect()
    };
    let mtimes = |manifest: &serde_json::Value| -> Vec<u64> {
        let digest = manifest["layers"][1]["digest"].as_str().unwrap();
        let blobs = fixture.layout().join("blobs/sha256");
        let layer = fs::read(blobs.join(digest.trim_start_matches("sha256:"))).unwrap();
        let decoder = flate2::read::MultiGzDecoder::new(layer.as_slice());
        let entries = oci_pack::testing::list_tar(decoder);
        entries.iter().map(|entry| entry.mtime).collect()
    };

    let (manifest, config) = build_at("1700000000");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert!(config["history"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["created"] == "2023-11-14T22:13:20Z"));
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    let dates = mtimes(&manifest);
    assert!(
        !dates.is_empty() && dates.iter().all(|&mtime| mtime == 1),
        "{dates:?}"
    );
    // A day later: a new config, the same layers (files and binaries).
    let (later, later_config) = build_at("1700086400");
    assert_eq!(later_config["created"], "2023-11-15T22:13:20Z");
    assert_eq!(layers(&later), layers(&manifest));
    assert_eq!(layers(&manifest).len(), 2);

    // `layer-mtime = "source-date-epoch"` dates every file too: the layers follow the date.
    let text = fs::read_to_string(fixture.path().join("Cargo.toml")).unwrap();
    let opted_in = text.replace(
        "[package.metadata.oci]\n",
        "[package.metadata.oci]\nlayer-mtime = \"source-date-epoch\"\n",
    );
    fs::write(fixture.path().join("Cargo.toml"), opted_in).unwrap();
    let (dated, _) = build_at("1700000000");
    let dates = mtimes(&dated);
    assert!(
        dates.iter().all(|&mtime| mtime == 1_700_000_000),
        "{dates:?}"
    );
    let (dated_later, _) = build_at("1700086400");
    let (a, b) = (layers(&dated), layers(&dated_later));
    assert!(a[0] != b[0] && a[1] != b[1], "{a:?} {b:?}");

    let bad = fixture.build_with_env(&[], &[("SOURCE_DATE_EPOCH", "yesterday")]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid SOURCE_DATE_EPOCH `yesterday`"));
}

#[test]
fn a_failed_build_keeps_the_previous_output() {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    let index_before = fs::read(fixture.layout().join("index.json")).unwrap();

    fs::write(
        fixture.path().join("src/main.rs"),
        "fn main() { this does not compile }",
    )
    .unwrap();
    let output = fixture.build(&["--quiet"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("`cargo build` failed"));
    assert_eq!(
        fs::read(fixture.layout().join("index.json")).unwrap(),
        index_before
    );
    let leftovers = crate::support::outputs_in(&fixture.path().join("target/oci"));
    assert_eq!(
        leftovers,
        crate::support::names(&[
            "hello",
            &crate::support::provenance_of("hello"),
            &crate::support::sbom_of("hello")
        ]),
        "no staging directories are left behind"
    );
}

#[test]
fn refuses_to_overwrite_a_directory_that_is_not_a_layout() {
    let fixture = Fixture::copy("hello");
    let output = fixture.build(&["--quiet", "--output", "src"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is a directory that is not an OCI image layout; refusing to overwrite it"),
        "{stderr}"
    );
    assert!(fixture.path().join("src/main.rs").is_file());
}

#[test]
fn workspace_metadata_gives_defaults() {
    let fixture = Fixture::copy("hello");
    let manifest = fixture.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap().replace(
        "[workspace]\n",
        "[workspace]\n[workspace.metadata.oci]\nbin-dir = \"/app\"\n\
         comment = \"from the workspace\"\n",
    );
    fs::write(&manifest, text).unwrap();
    fixture.set_metadata("[package.metadata.oci]\ncomment = \"from the package\"\n");
    fixture.build_ok(&["--quiet"]);
    let (_, config) = manifest_and_config(&fixture.layout());
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/app/hello"])
    );
    assert_eq!(config["history"][0]["comment"], "from the package");
}

#[test]
fn uncompressed_layers_when_asked() {
    let fixture = Fixture::copy("hello");
    fixture.set_metadata("[package.metadata.oci]\ncompression = \"none\"\n");
    fixture.build_ok(&["--quiet"]);
    let (manifest, config) = manifest_and_config(&fixture.layout());
    let layer = &manifest["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    assert_eq!(layer["digest"], config["rootfs"]["diff_ids"][0]);
}

#[test]
fn a_git_checkout_records_its_commit_as_the_revision() {
    let fixture = Fixture::copy("hello");
    let git = |args: &[&str]| {
        crate::support::run(
            std::process::Command::new("git")
                .args([
                    "-c",
                    "user.name=Test",
                    "-c",
                    "user.email=test@example.com",
                    "-c",
                    "init.defaultBranch=main",
                ])
                .args(args)
                .current_dir(fixture.path()),
        )
    };
    git(&["init", "--quiet"]);
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "fixture"]);
    let head = git(&["rev-parse", "HEAD"]).trim().to_owned();
    fixture.build_ok(&["--quiet"]);
    let (manifest, _) = manifest_and_config(&fixture.layout());
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.revision"],
        head
    );
}

/// From another directory the fixture's `.cargo/config.toml` (static linking) does not apply, as
/// with cargo itself: the binary is dynamic, and the ELF check refuses it on `scratch`.
#[test]
fn manifest_path_selects_the_package_from_elsewhere() {
    let fixture = Fixture::copy("hello");
    let elsewhere = tempfile::tempdir().unwrap();
    let build = |extra: &[&str]| {
        crate::support::cargo_oci()
            .args(["build", "--quiet", "--manifest-path"])
            .arg(fixture.path().join("Cargo.toml"))
            .args(extra)
            .current_dir(elsewhere.path())
            .output()
            .unwrap()
    };
    let refused = build(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(&format!(
            "error: the {} image would not run its binaries:\n  - binary `hello` \
             is dynamically linked and needs the loader `{}`, which the image does not have\n",
            HOST.platform(),
            HOST.loader
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("  - binary `hello` needs `libc.so.6`, which the image does not have\n"),
        "{stderr}"
    );
    assert!(stderr.contains("help: link statically"), "{stderr}");
    assert!(!fixture.layout().exists());

    let output = build(&["--elf-check", "warn"]);
    crate::support::assert_success(&output, "cargo oci build --manifest-path --elf-check warn");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: binary `hello` is dynamically linked"),
        "{stderr}"
    );
    assert!(fixture.layout().join("index.json").is_file());
    assert_eq!(
        fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "nothing is written in the working directory"
    );
}

/// A version with build metadata (`1.0.0+meta`, which no tag may hold) makes the default tag
/// as Helm writes it, `1.0.0_meta`, which skopeo finds.
#[test]
fn a_version_with_build_metadata_makes_a_valid_default_tag() {
    let fixture = Fixture::copy("hello");
    let manifest = fixture.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .unwrap()
        .replace("version = \"0.1.0\"", "version = \"1.0.0+meta\"");
    fs::write(&manifest, text).unwrap();
    fixture.set_metadata("[package.metadata.oci]\n");
    fixture.build_ok(&["--quiet"]);
    assert!(crate::support::tool("skopeo"), "skopeo is needed");
    crate::support::run(
        std::process::Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:1.0.0_meta", fixture.layout().display())),
    );
}

/// Annotations a manifest cannot hold are refused before cargo runs, by key and manifest.
#[test]
fn annotations_too_large_are_refused_before_cargo_runs() {
    let fixture = Fixture::copy("hello");
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nannotations = {{ notes = \"{}\" }}\n",
        "x".repeat(5 << 20)
    ));
    let output = fixture.build(&[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`package.metadata.oci.annotations.notes`: 5242885 bytes of annotations"),
        "{stderr}"
    );
    assert!(stderr.contains("Cargo.toml"), "{stderr}");
    assert!(!stderr.contains("Compiling"), "{stderr}");
    assert!(!fixture.path().join("target").exists());
}
