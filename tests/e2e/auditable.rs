//! Auditable binaries: with `auditable = true` the image's binary is built by `cargo auditable
//! build`, and `rust-audit-info` (a reader that is not ours) finds in it the dependency list the
//! SBOM gives; without cargo-auditable the build fails first, naming how to install it.

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use serde_json::Value;

use crate::support::{read_json, run, tool, Fixture};

/// The binary `path` of the layout's image, copied out of its layer with tar.
fn binary_of(fixture: &Fixture, name: &str, path: &str) -> std::path::PathBuf {
    let layout = fixture.output(name);
    let (manifest, _) = crate::support::manifest_and_config(&layout);
    let out = fixture.path().join("extracted");
    fs::create_dir_all(&out).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let blob = layout.join("blobs/sha256").join(
            layer["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        );
        // Each layer holds the path or not; tar says which.
        let _ = Command::new("tar")
            .arg("-xzf")
            .arg(&blob)
            .arg("-C")
            .arg(&out)
            .arg(path)
            .output();
    }
    let binary = out.join(path);
    assert!(binary.is_file(), "{path} is in the image");
    binary
}

#[test]
fn an_auditable_binary_carries_the_dependency_list_the_sbom_gives() {
    if !(tool("cargo-auditable") && tool("rust-audit-info")) {
        return;
    }
    let fixture = Fixture::copy("inventory");
    let manifest = fixture.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, format!("{text}auditable = true\n")).unwrap();
    fixture.build_ok(&["--quiet"]);
    let binary = binary_of(&fixture, "inventory", "usr/local/bin/inventory");
    let audit: Value = serde_json::from_str(&run(Command::new("rust-audit-info").arg(&binary)))
        .expect("rust-audit-info prints JSON");
    // What runs in the binary: cargo auditable marks what only ran at build time (build
    // scripts' and proc-macros' dependencies) as `"kind": "build"`.
    let embedded: BTreeSet<(String, String)> = audit["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"].as_str().unwrap_or("runtime") == "runtime")
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let sbom = read_json(&fixture.path().join(format!(
        "target/oci/{}",
        crate::support::sbom_of("inventory")
    )));
    let listed: BTreeSet<(String, String)> = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["primaryPackagePurpose"] != "CONTAINER")
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["versionInfo"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        embedded.iter().any(|(name, _)| name == "anyhow"),
        "{embedded:?}"
    );
    assert_eq!(embedded, listed, "the binary's list and the SBOM's");

    // The provenance says how it was built.
    let provenance = read_json(&fixture.path().join(format!(
        "target/oci/{}",
        crate::support::provenance_of("inventory")
    )));
    assert_eq!(
        provenance["predicate"]["buildDefinition"]["externalParameters"]["metadata"]["auditable"],
        true
    );
}

#[test]
fn without_cargo_auditable_the_build_says_how_to_install_it() {
    let fixture = Fixture::copy("hello");
    let empty = tempfile::tempdir().unwrap();
    // Cargo itself, but no cargo-auditable on PATH or in CARGO_HOME.
    let cargo = std::env::var("CARGO").unwrap();
    let mut command = crate::support::cargo_oci();
    let output = command
        .args(["build", "--auditable"])
        .current_dir(fixture.path())
        .env("CARGO", &cargo)
        .env("CARGO_HOME", empty.path())
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`cargo install cargo-auditable`") && stderr.contains("hello"),
        "{stderr}"
    );
    assert!(
        !fixture.path().join("target/oci/hello").exists(),
        "nothing is written"
    );
}
