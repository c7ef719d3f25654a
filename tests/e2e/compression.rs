//! How layers are compressed, judged by tools we did not write: gzip layers of several members
//! that GNU gzip reads whole, zstd layers that skopeo reads, podman runs and the zstd tool
//! decompresses to their diff_id, a zstd parent made by skopeo, an OCI archive of zstd layers,
//! a Docker archive refused for them before cargo runs, and bytes that do not depend on how many
//! cores the build had.

use std::fs;
use std::path::Path;
use std::process::Command;

use oci_pack::Digest;

use crate::support::parents::parents;
use crate::support::{manifest_and_config, run, tool, Fixture, Podman};

/// The new layers of the image in `layout` (the last `count`), each decompressed by `program`
/// (`gzip -dc` or `zstd -dc`), must hash to the diff_id the config gives them.
fn assert_layers_decompress_to_their_diff_ids(layout: &Path, count: usize, program: &[&str]) {
    let (manifest, config) = manifest_and_config(layout);
    let layers = manifest["layers"].as_array().unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(layers.len(), diff_ids.len());
    for (layer, diff_id) in layers.iter().zip(diff_ids).rev().take(count) {
        let blob = layout.join("blobs/sha256").join(
            layer["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        );
        let output = Command::new(program[0])
            .args(&program[1..])
            .arg(&blob)
            .output()
            .unwrap();
        assert!(output.status.success(), "{program:?} failed on {layer}");
        assert_eq!(
            Digest::of(&output.stdout).to_string(),
            diff_id.as_str().unwrap(),
            "{program:?} of {layer}"
        );
    }
}

#[test]
fn gzip_layers_of_several_members_read_whole_by_gnu_gzip() {
    let fixture = Fixture::copy("hello");
    // More than one 1 MiB member: a file of 3 MiB that compresses.
    let big: String = (0..400_000).map(|i| format!("{i:07x}\n")).collect();
    fs::write(fixture.path().join("static/big.txt"), big).unwrap();
    fixture.build_ok(&["--quiet"]);
    let layout = fixture.layout();
    let (manifest, _) = manifest_and_config(&layout);
    let files = &manifest["layers"][0];
    assert_eq!(
        files["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert!(files["size"].as_u64().unwrap() > 40_000, "{files}");
    assert_layers_decompress_to_their_diff_ids(&layout, 2, &["gzip", "-dc"]);
}

#[test]
fn zstd_layers_are_read_by_skopeo_and_zstd_and_run_by_podman() {
    if !tool("zstd") || !tool("skopeo") {
        return;
    }
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet", "--compression", "zstd"]);
    let layout = fixture.layout();
    let (manifest, _) = manifest_and_config(&layout);
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
    assert_layers_decompress_to_their_diff_ids(&layout, 2, &["zstd", "-dcq"]);
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:0.1.0", layout.display())));
    assert!(raw.contains("tar+zstd"), "{raw}");
    if let Some(podman) = Podman::new() {
        let output = podman.pull(&layout, "0.1.0").run(&["zstd"]);
        assert!(output.starts_with("args=[\"zstd\"]\n"), "{output}");
    }

    // `docker load` reads plain and gzip layers only: a Docker archive of these is refused.
    let refused = fixture.build(&["--quiet", "--compression", "zstd", "--format", "docker"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("`docker load` reads plain and gzip layers only"),
        "{stderr}"
    );
    assert!(!fixture.path().join("target/oci/hello.docker.tar").exists());
}

/// An OCI archive holds zstd layers (skopeo copies it out whole); a Docker archive cannot, and
/// asking for one is refused before cargo builds anything, naming the flag or key behind each.
#[test]
fn an_oci_archive_holds_zstd_layers_and_a_docker_archive_is_refused_before_cargo() {
    if !tool("skopeo") || !tool("zstd") {
        return;
    }
    let fixture = Fixture::copy("hello");
    let built = || fixture.path().join("target/release").exists();
    let refused = fixture.build(&["--compression", "zstd", "--format", "docker"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(
            "error: package `hello`: a Docker archive (`--format docker`) cannot hold the zstd \
             layers `--compression zstd` asks for: `docker load` reads plain and gzip layers \
             only; use gzip, or the `oci` or `oci-archive` format"
        ),
        "{stderr}"
    );
    assert!(!built(), "cargo ran before the refusal: {stderr}");
    fixture
        .set_metadata("[package.metadata.oci]\nformats = [\"docker\"]\ncompression = \"zstd\"\n");
    let refused = fixture.build(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    for text in [
        "Cargo.toml",
        "package.metadata.oci.formats",
        "cannot hold the zstd layers `compression` asks for",
    ] {
        assert!(stderr.contains(text), "`{text}` not in: {stderr}");
    }
    assert!(!built(), "cargo ran before the refusal: {stderr}");

    fixture.set_metadata("[package.metadata.oci]\n");
    fixture.build_ok(&[
        "--quiet",
        "--format",
        "oci-archive",
        "--compression",
        "zstd",
    ]);
    assert!(built(), "the check above looks where cargo builds");
    let archive = fixture.path().join("target/oci/hello.oci.tar");
    let copied = fixture.path().join("copied");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci-archive:{}:0.1.0", archive.display()))
        .arg(format!("oci:{}:0.1.0", copied.display())));
    let (manifest, _) = manifest_and_config(&copied);
    let layers = manifest["layers"].as_array().unwrap();
    assert!(
        layers
            .iter()
            .all(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"),
        "{manifest}"
    );
    assert_layers_decompress_to_their_diff_ids(&copied, 2, &["zstd", "-dcq"]);
}

/// A parent whose layers skopeo compressed with zstd is read like any other.
#[test]
fn a_zstd_parent_made_by_skopeo_is_built_on() {
    let Some(parents) = parents() else { return };
    if !tool("skopeo") {
        return;
    }
    let fixture = Fixture::copy("hello");
    let zstd_parent = fixture.path().join("zstd-parent");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-compress-format", "zstd"])
        .arg(format!("oci:{}:latest", parents.layout.display()))
        .arg(format!("oci:{}:latest", zstd_parent.display())));
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"oci:{}:latest\"\n",
        zstd_parent.display()
    ));
    fixture.build_ok(&["--quiet"]);
    let (manifest, _) = manifest_and_config(&fixture.layout());
    let types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert!(
        types[0].ends_with("tar+zstd"),
        "the parent's layers: {types:?}"
    );
    assert!(
        types.last().unwrap().ends_with("tar+gzip"),
        "ours: {types:?}"
    );
    if let Some(podman) = Podman::new() {
        let output = podman.pull(&fixture.layout(), "0.1.0").run(&["on-zstd"]);
        assert!(output.starts_with("args=[\"on-zstd\"]\n"), "{output}");
    }
}

/// The same build on one core and on all of them gives the same bytes: the chunks are cut by
/// size, never by thread.
#[test]
fn one_core_or_all_of_them_give_the_same_digest() {
    if !tool("taskset") {
        return;
    }
    let fixture = Fixture::copy("hello");
    let big: String = (0..400_000).map(|i| format!("{i:07x}\n")).collect();
    fs::write(fixture.path().join("static/big.txt"), big).unwrap();
    for compression in ["gzip", "zstd"] {
        let all = fixture.build_ok(&["--quiet", "--compression", compression]);
        fs::remove_dir_all(fixture.path().join("target/oci")).unwrap();
        let one = crate::support::hermetic(&mut Command::new("taskset"))
            .args(["--cpu-list", "0"])
            .arg(env!("CARGO_BIN_EXE_cargo-oci"))
            .args(["oci", "build", "--quiet", "--compression", compression])
            .current_dir(fixture.path())
            .output()
            .unwrap();
        crate::support::assert_success(&one, "cargo oci build on one core");
        assert_eq!(String::from_utf8(one.stdout).unwrap(), all, "{compression}");
        fs::remove_dir_all(fixture.path().join("target/oci")).unwrap();
    }
}

/// A base of zstd layers cannot go into a Docker archive, nor new zstd layers into
/// `docker load`: each is refused once the base is read, before cargo builds.
#[test]
fn zstd_layers_a_docker_archive_cannot_hold_are_refused_before_cargo() {
    let base = Fixture::copy("hello");
    base.build_ok(&["--quiet", "--compression", "zstd"]);
    let fixture = Fixture::copy("hello");
    let built = || fixture.path().join("target/release").exists();
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"oci:{}:0.1.0\"\n",
        base.layout().display()
    ));
    for (args, expected) in [
        (
            ["--format", "docker"],
            "which a `docker` output cannot hold",
        ),
        (["--format", "oci"], "which `--load=docker` cannot hold"),
    ] {
        let mut args = args.to_vec();
        if args[1] == "oci" {
            args.push("--load=docker");
        }
        let refused = fixture.build(&args);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{stderr}");
        assert!(stderr.contains("has zstd layers"), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!built(), "cargo ran before the refusal: {stderr}");
    }
    fixture.set_metadata("[package.metadata.oci]\n");
    let refused = fixture.build(&["--compression", "zstd", "--load=docker"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("`hello` makes zstd layers, which `--load=docker` cannot hold"),
        "{stderr}"
    );
    assert!(!built(), "cargo ran before the refusal: {stderr}");
}
