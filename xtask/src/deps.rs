//! Checks of what the project depends on: that the Rust version it declares is one every
//! dependency builds with, that no dependency needs cmake or a C library (a TLS provider such as
//! aws-lc or OpenSSL), and that the engine without its `registry` feature compiles no HTTP.

use std::process::Command;

use crate::project_root;

/// `cargo ARGS` in the project, its stdout.
fn cargo(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(project_root())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// `1.85.0` as `[1, 85, 0]`; missing parts are 0.
fn version(text: &str) -> Vec<u64> {
    let mut parts: Vec<u64> = text.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    parts.resize(3, 0);
    parts
}

#[test]
fn the_declared_rust_version_is_one_every_dependency_builds_with() {
    let metadata: serde_json::Value =
        serde_json::from_str(&cargo(&["metadata", "--format-version", "1", "--locked"])).unwrap();
    let ours = |name: &str| {
        metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["rust_version"].as_str())
            .unwrap_or_else(|| panic!("{name} declares a rust-version"))
            .to_owned()
    };
    let declared = ours("cargo-oci");
    assert_eq!(ours("oci-pack"), declared);
    let newer: Vec<String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| Some((p["name"].as_str()?, p["rust_version"].as_str()?)))
        .filter(|(_, needs)| version(needs) > version(&declared))
        .map(|(name, needs)| format!("{name} needs {needs}"))
        .collect();
    assert!(
        newer.is_empty(),
        "the workspace declares rust-version {declared}, but {}",
        newer.join(", ")
    );
}

#[test]
fn no_dependency_needs_cmake_or_a_c_tls_library() {
    let lock = std::fs::read_to_string(project_root().join("Cargo.lock")).unwrap();
    let heavy: Vec<&str> = [
        "aws-lc-sys",
        "aws-lc-rs",
        "cmake",
        "openssl-sys",
        "native-tls",
    ]
    .into_iter()
    .filter(|name| lock.contains(&format!("name = \"{name}\"\n")))
    .collect();
    assert!(heavy.is_empty(), "Cargo.lock holds {heavy:?}");
}

#[test]
fn the_engine_without_its_registry_feature_compiles_no_http() {
    let tree = cargo(&[
        "tree", "-p", "oci-pack", "-e", "normal", "--prefix", "none", "--locked",
    ]);
    let http: Vec<&str> = tree
        .lines()
        .filter(|line| {
            ["ureq", "rustls", "ring "]
                .iter()
                .any(|n| line.starts_with(n))
        })
        .collect();
    assert!(
        http.is_empty(),
        "oci-pack with no features compiles {http:?}"
    );
    let with_registry = cargo(&[
        "tree",
        "-p",
        "oci-pack",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--locked",
        "--features",
        "registry",
    ]);
    assert!(
        with_registry.lines().any(|line| line.starts_with("ureq ")),
        "the check looks for the wrong names"
    );
}
