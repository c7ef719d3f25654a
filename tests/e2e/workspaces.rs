//! Workspaces, as cargo builds them: the member of the current directory, the default members,
//! `-p` (repeatable, globs), `--workspace` and `--exclude`; every image compiled in one cargo run
//! and a shared base read once; one image per binary; a whole workspace pushed with one
//! command; and a failure in one image that leaves the others' outputs as they were.

use std::fs;

use crate::support::{assert_success, read_json, Fixture, Registry};

const ALL: [&str; 4] = ["api", "migrate", "seed", "worker"];

/// The images `target/oci` holds, by name.
/// The images written, each checked to have its SBOM beside it.
fn outputs(fixture: &Fixture) -> Vec<String> {
    let mut names: Vec<String> = crate::support::outputs_in(&fixture.path().join("target/oci"))
        .into_iter()
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    names.sort();
    let (provenances, names): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|name| name.ends_with(".provenance.json"));
    let (sboms, images): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|name| name.ends_with(".spdx.json"));
    let expected: Vec<String> = images.iter().map(|i| crate::support::sbom_of(i)).collect();
    assert_eq!(sboms, expected, "an SBOM beside each image");
    let expected: Vec<String> = images
        .iter()
        .map(|i| crate::support::provenance_of(i))
        .collect();
    assert_eq!(provenances, expected, "a provenance beside each image");
    images
}

/// The digest `index.json` of `name`'s layout points at, and its first tag.
fn digest_and_tag(fixture: &Fixture, name: &str) -> (String, String) {
    let index = read_json(&fixture.output(name).join("index.json"));
    let entry = &index["manifests"][0];
    (
        entry["digest"].as_str().unwrap().to_owned(),
        entry["annotations"]["io.containerd.image.name"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

/// How many times cargo finished a build in `stderr`: one run of the builder each.
fn cargo_runs(stderr: &str) -> usize {
    stderr.matches("Finished `release` profile").count()
}

#[test]
fn a_member_directory_selects_that_member_as_cargo_does() {
    let fixture = Fixture::copy("services");
    let output = crate::support::cargo_oci()
        .args(["build", "--quiet"])
        .current_dir(fixture.path().join("worker"))
        .output()
        .unwrap();
    assert_success(&output, "cargo oci build in a member's directory");
    assert_eq!(outputs(&fixture), ["worker"]);
    assert_eq!(digest_and_tag(&fixture, "worker").1, "worker:0.2.0");
}

#[test]
fn the_root_builds_every_image_in_one_cargo_run_and_skips_what_is_not_one() {
    let fixture = Fixture::copy("services");
    let output = fixture.build(&["--verbose"]);
    assert_success(&output, "cargo oci build at a virtual workspace's root");
    assert_eq!(outputs(&fixture), ALL);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(cargo_runs(&stderr), 1, "{stderr}");
    assert!(
        stderr.contains("Skipping common (no `[package.metadata.oci]`)"),
        "{stderr}"
    );
    // One JSON-free line per output, each naming its own image's digest.
    let stdout = String::from_utf8_lossy(&output.stdout);
    for name in ALL {
        let (digest, _) = digest_and_tag(&fixture, name);
        assert!(
            stdout.contains(&format!("oci {digest} {}", fixture.output(name).display())),
            "{stdout}"
        );
    }
}

#[test]
fn packages_are_chosen_with_p_workspace_and_exclude() {
    let fixture = Fixture::copy("services");
    let output = fixture.build(&["-p", "api", "-p", "worker"]);
    assert_success(&output, "-p twice");
    assert_eq!(outputs(&fixture), ["api", "worker"]);
    assert_eq!(
        cargo_runs(&String::from_utf8_lossy(&output.stderr)),
        1,
        "two packages, one cargo run"
    );

    let _ = fs::remove_dir_all(fixture.path().join("target/oci"));
    fixture.build_ok(&["--quiet", "--workspace", "--exclude", "t*"]);
    assert_eq!(outputs(&fixture), ["api", "worker"]);

    let _ = fs::remove_dir_all(fixture.path().join("target/oci"));
    fixture.build_ok(&["--quiet", "-p", "too?s"]);
    assert_eq!(outputs(&fixture), ["migrate", "seed"]);

    let named = fixture.build(&["--quiet", "-p", "common"]);
    let stderr = String::from_utf8_lossy(&named.stderr);
    assert!(!named.status.success());
    assert!(
        stderr.contains("package `common` is not an image: it has no binaries")
            && stderr.contains("common/Cargo.toml"),
        "{stderr}"
    );
    let unknown = fixture.build(&["--quiet", "-p", "billing"]);
    assert!(String::from_utf8_lossy(&unknown.stderr)
        .contains("package `billing` is not a member of the workspace"));
}

/// `images.<name>` tables: one image per binary, each with its own tags and config over the
/// package's.
#[test]
fn a_package_of_tools_makes_one_image_per_binary() {
    let fixture = Fixture::copy("services");
    fixture.build_ok(&["--quiet", "-p", "tools"]);
    for (name, tags) in [
        ("migrate", vec!["migrate:0.2.0", "migrate:latest"]),
        ("seed", vec!["seed:0.2.0"]),
    ] {
        let index = read_json(&fixture.output(name).join("index.json"));
        let found: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["annotations"]["io.containerd.image.name"].as_str())
            .collect();
        assert_eq!(found, tags, "{name}");
        let (manifest, config) = crate::support::manifest_and_config(&fixture.output(name));
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!([format!("/usr/local/bin/{name}")])
        );
        assert_eq!(
            config["config"]["User"], "65532",
            "{name}: the package's config"
        );
        let last = manifest["layers"].as_array().unwrap().last().unwrap();
        let layers =
            crate::support::layer_paths(&fixture.output(name), last["digest"].as_str().unwrap());
        assert!(
            layers.iter().any(|p| p.ends_with(&format!("bin/{name}"))),
            "{name}: {layers:?}"
        );
    }
    let (_, seed) = crate::support::manifest_and_config(&fixture.output("seed"));
    assert_eq!(seed["config"]["Cmd"], serde_json::json!(["--all"]));
}

/// A base every image shares is opened, fetched and read once.
#[test]
fn a_base_shared_by_every_image_is_read_once() {
    let Some(parents) = crate::support::parents::parents() else {
        return;
    };
    let fixture = Fixture::copy("services");
    let manifest = fixture.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap().replace(
        "tags = [\"{name}:{version}\"]",
        &format!(
            "tags = [\"{{name}}:{{version}}\"]\nbase = \"oci:{}:latest\"",
            parents.layout.display()
        ),
    );
    fs::write(&manifest, text).unwrap();
    let output = fixture.build(&["--verbose"]);
    assert_success(&output, "a workspace on one base");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let opened = stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("Base "))
        .count();
    let shared = stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("Shared "))
        .count();
    assert_eq!((opened, shared), (1, 3), "{stderr}");
}

#[test]
fn a_whole_workspace_is_pushed_with_one_command() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let fixture = Fixture::copy("services");
    let stdout = fixture.build_ok(&[
        "--quiet",
        "--push",
        &format!("{}/team", registry.host),
        "--message-format",
        "json",
    ]);
    let pushed: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|message| message["format"] == "push")
        .collect();
    let mut images: Vec<&str> = pushed
        .iter()
        .map(|m| m["image"].as_str().unwrap())
        .collect();
    images.sort();
    assert_eq!(images, ALL);
    for message in &pushed {
        let name = message["image"].as_str().unwrap();
        let digest = message["digest"].as_str().unwrap();
        assert_eq!(digest, digest_and_tag(&fixture, name).0);
        assert_eq!(
            message["reference"],
            format!("{}/team/{name}@{digest}", registry.host)
        );
        let served = registry.raw_manifest(&format!("team/{name}:0.2.0"));
        assert_eq!(oci_pack::Digest::of(&served).to_string(), digest);
    }

    // Or each to its own `repository`, with a bare `--push`.
    let manifest = fixture.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap().replace(
        "[workspace.metadata.oci]",
        &format!(
            "[workspace.metadata.oci]\nrepository = \"{}/acme/{{name}}\"",
            registry.host
        ),
    );
    fs::write(&manifest, text).unwrap();
    fixture.build_ok(&["--quiet", "-p", "tools", "--push"]);
    registry.raw_manifest("acme/migrate:latest");
    registry.raw_manifest("acme/seed:0.2.0");
}

/// A broken member stops the build before anything compiles, naming its `Cargo.toml`; an image
/// that fails to pack leaves every image's previous output as it was.
#[test]
fn one_failing_image_stops_the_build_and_leaves_the_others_outputs() {
    let fixture = Fixture::copy("services");
    let worker = fixture.path().join("worker/Cargo.toml");
    let good = fs::read_to_string(&worker).unwrap();
    fs::write(
        &worker,
        format!("{good}\n[package.metadata.oci]\nconfig = {{ usr = \"1\" }}\n"),
    )
    .unwrap();
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("`package.metadata.oci.config.usr`")
            && stderr.contains("worker/Cargo.toml"),
        "{stderr}"
    );
    assert!(
        !fixture.path().join("target/release").exists(),
        "cargo ran for a build that could not finish"
    );
    fs::write(&worker, good).unwrap();

    let Some(parents) = crate::support::parents::parents() else {
        return;
    };
    fixture.build_ok(&["--quiet"]);
    let before: Vec<Vec<u8>> = ALL
        .iter()
        .map(|name| fs::read(fixture.output(name).join("index.json")).unwrap())
        .collect();
    // The api changes, and seed's base lacks what it removes: a failure while packing.
    fs::write(
        fixture.path().join("api/src/main.rs"),
        "//! Changed.\n\nfn main() {\n    println!(\"{}\", common::greeting(\"api v2\"));\n}\n",
    )
    .unwrap();
    let tools = fixture.path().join("tools/Cargo.toml");
    let text = fs::read_to_string(&tools).unwrap().replace(
        "config = { cmd = [\"--all\"] }",
        &format!(
            "config = {{ cmd = [\"--all\"] }}\nbase = \"oci:{}:latest\"\n\
             remove = [\"/no/such/path\"]",
            parents.layout.display()
        ),
    );
    fs::write(&tools, text).unwrap();
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("/no/such/path"), "{stderr}");
    for (name, before) in ALL.iter().zip(before) {
        assert_eq!(
            fs::read(fixture.output(name).join("index.json")).unwrap(),
            before,
            "{name}'s output changed in a failed build"
        );
    }
}
