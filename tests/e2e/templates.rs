//! `cargo oci init` and the xtask template, as a new user meets them: a fresh crate made ready
//! without a line of it moved, built on `scratch` at the first try, and a workspace's images
//! built and pushed by `cargo xtask image`, judged by skopeo.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{assert_success, cargo_oci, hermetic, run, tool, Fixture, Registry};

/// A crate as `cargo new` makes it, with comments of its own.
fn new_crate(dir: &Path) -> String {
    let manifest = "\
# A service.
[package]
name = \"fresh\"   # its name
version = \"1.2.0\"
edition = \"2021\"

[workspace]

[dependencies]
# none yet
";
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    fs::write(
        dir.join("src/main.rs"),
        "fn main() { println!(\"fresh\"); }\n",
    )
    .unwrap();
    manifest.to_owned()
}

fn init(dir: &Path, args: &[&str]) -> String {
    let output = cargo_oci()
        .arg("init")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert_success(&output, "cargo oci init");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn init_makes_a_new_crate_an_image_that_builds_at_the_first_try() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("fresh");
    let before = new_crate(&crate_dir);

    let said = init(&crate_dir, &[]);
    assert!(said.contains("Adding `[package.metadata.oci]`"), "{said}");
    assert!(said.contains("Next `cargo oci build`"), "{said}");
    let after = fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(
        after.starts_with(&before),
        "nothing of the file moved:\n{after}"
    );
    assert!(after.contains("bins = [\"fresh\"]"), "{after}");

    // Twice is once.
    let said = init(&crate_dir, &[]);
    assert!(said.contains("Unchanged"), "{said}");
    assert_eq!(
        fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap(),
        after
    );

    // On `scratch`, the ELF check passes: the binary is static, and the crate's own
    // `cargo build` is as it was.
    let output = cargo_oci()
        .args(["build", "--quiet"])
        .current_dir(&crate_dir)
        .output()
        .unwrap();
    assert_success(&output, "the first cargo oci build");
    assert!(tool("skopeo"), "skopeo is needed");
    let layout = crate_dir.join("target/oci/fresh");
    let config = run(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("oci:{}:1.2.0", layout.display()),
    ]));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/fresh"])
    );
}

#[test]
fn init_writes_the_release_pipelines_once() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("fresh");
    new_crate(&crate_dir);
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/ci");
    for (ci, path, template) in [
        ("github", ".github/workflows/release.yml", "github.yml"),
        ("gitlab", ".gitlab-ci.yml", "gitlab-ci.yml"),
    ] {
        let said = init(&crate_dir, &["--ci", ci]);
        assert!(said.contains("set `CARGO_OCI_GIT`"), "{said}");
        let written = crate_dir.join(path);
        let expected = fs::read(templates.join(template)).unwrap();
        assert_eq!(fs::read(&written).unwrap(), expected, "{path}");
        // A pipeline of the team's own is never replaced.
        fs::write(&written, "# ours\n").unwrap();
        let said = init(&crate_dir, &["--ci", ci]);
        assert!(said.contains("exists"), "{said}");
        assert_eq!(fs::read_to_string(&written).unwrap(), "# ours\n");
    }
}

/// `--manifest-path ../Cargo.toml` is the package's manifest, a linked manifest stays a link,
/// and a member the workspace's table already makes an image is left as it is.
#[test]
fn init_writes_to_the_manifest_it_means() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("fresh");
    new_crate(&crate_dir);
    // The manifest is a link to a file kept elsewhere.
    let kept = dir.path().join("kept.toml");
    fs::rename(crate_dir.join("Cargo.toml"), &kept).unwrap();
    std::os::unix::fs::symlink(&kept, crate_dir.join("Cargo.toml")).unwrap();
    init(
        &crate_dir.join("src"),
        &["--manifest-path", "../Cargo.toml"],
    );
    let written = fs::read_to_string(&kept).unwrap();
    assert!(written.contains("[package.metadata.oci]"), "{written}");
    assert!(!written.contains("[workspace.metadata.oci]"), "{written}");
    assert!(fs::symlink_metadata(crate_dir.join("Cargo.toml"))
        .unwrap()
        .file_type()
        .is_symlink());

    let services = Fixture::copy("services");
    let member = services.path().join("worker/Cargo.toml");
    let before = fs::read(&member).unwrap();
    let said = init(&services.path().join("worker"), &[]);
    assert!(
        said.contains("is an image already, through `[workspace.metadata.oci]`"),
        "{said}"
    );
    assert_eq!(fs::read(&member).unwrap(), before);
}

#[test]
fn init_leaves_a_crate_with_an_image_as_it_is() {
    let fixture = Fixture::copy("hello");
    let before = fs::read(fixture.path().join("Cargo.toml")).unwrap();
    let said = init(fixture.path(), &["--base", "debian:bookworm-slim"]);
    assert!(
        said.contains("has a `[package.metadata.oci]` table already"),
        "{said}"
    );
    assert_eq!(fs::read(fixture.path().join("Cargo.toml")).unwrap(), before);
}

#[test]
fn init_refuses_what_cannot_take_a_table_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("fresh");
    new_crate(&crate_dir);
    let manifest = crate_dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap().replace(
        "edition = \"2021\"\n",
        "edition = \"2021\"\nmetadata = { docs = 1 }\n",
    );
    fs::write(&manifest, &text).unwrap();
    let output = cargo_oci()
        .arg("init")
        .current_dir(&crate_dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot add `[package.metadata.oci]`"),
        "{stderr}"
    );
    assert!(stderr.contains("add it by hand"), "{stderr}");
    assert_eq!(fs::read_to_string(&manifest).unwrap(), text);
}

/// `cargo oci init --xtask` in a workspace, then `cargo xtask image --push`: the template
/// compiles against this checkout's library, skips itself, and pushes every image.
#[test]
fn the_xtask_template_builds_and_pushes_a_workspace() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let fixture = Fixture::copy("services");
    // The versions this checkout is built and tested with, already in cargo's cache.
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"),
        fixture.path().join("Cargo.lock"),
    )
    .unwrap();
    let said = init(fixture.path(), &["--xtask"]);
    assert!(
        said.contains("has a `[workspace.metadata.oci]` table already"),
        "{said}"
    );
    assert!(said.contains("Adding `xtask` to the members"), "{said}");
    let xtask_manifest = fs::read_to_string(fixture.path().join("xtask/Cargo.toml")).unwrap();
    assert!(
        xtask_manifest.contains(&format!("path = \"{}\"", env!("CARGO_MANIFEST_DIR"))),
        "the dependency is this checkout:\n{xtask_manifest}"
    );

    let output = hermetic(&mut Command::new("cargo"))
        .args(["xtask", "image", "--release-tag", "9.9.9", "--push"])
        .arg(format!("{}/acme", registry.host))
        .current_dir(fixture.path().join("api"))
        // One build of the library for every run of this test.
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("xtask-template"),
        )
        .output()
        .unwrap();
    assert_success(&output, "cargo xtask image");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    // api, worker, and tools' two binaries; not the xtask, not the library.
    assert_eq!(lines.len(), 4, "{stdout}");
    for name in ["api", "worker", "migrate", "seed"] {
        let line = lines
            .iter()
            .find(|line| line.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for {name}:\n{stdout}"));
        let pushed = format!("{}/acme/{name}@sha256:", registry.host);
        assert!(line.contains(&pushed), "{line}");
        assert!(line.ends_with(&format!("{name}:9.9.9")), "{line}");
        let inspected = run(Command::new("skopeo").args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/acme/{name}:9.9.9", registry.host),
        ]));
        let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
        let digest = inspected["Digest"].as_str().unwrap();
        assert!(
            line.contains(digest),
            "{line} is what skopeo sees: {digest}"
        );
    }
}

/// `cargo oci init` with extra arguments in `dir`, its output whatever the outcome.
fn init_output(dir: &Path, args: &[&str]) -> std::process::Output {
    cargo_oci()
        .arg("init")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A repository that ships links at the names init's temporaries once had (fixed names beside
/// each file it writes) makes it write through none of them: the files they point at, outside
/// the repository, are untouched, and what init writes lands in the repository.
#[test]
fn init_writes_through_no_link_planted_in_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("fresh");
    new_crate(&crate_dir);
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    for planted in [
        ".Cargo.toml.cargo-oci-init",
        ".cargo/.config.toml.cargo-oci-init",
        ".github/workflows/.release.yml.cargo-oci-init",
    ] {
        let link = crate_dir.join(planted);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&victim, &link).unwrap();
    }
    let output = init_output(&crate_dir, &["--xtask", "--ci", "github"]);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_success(&output, "cargo oci init");
    let manifest = fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("[package.metadata.oci]"), "{manifest}");
    assert!(manifest.contains("members = [\"xtask\"]"), "{manifest}");
    let config = fs::read_to_string(crate_dir.join(".cargo/config.toml")).unwrap();
    assert!(
        config.contains("xtask = \"run --package xtask --\""),
        "{config}"
    );
    assert!(crate_dir.join(".github/workflows/release.yml").is_file());
    // No temporary is left behind.
    let left: Vec<_> = fs::read_dir(&crate_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".cargo-oci-init") && name != ".Cargo.toml.cargo-oci-init")
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

/// A `.github/workflows` linking out of the repository is refused, named, and nothing is
/// written where it points.
#[test]
fn init_refuses_a_pipeline_directory_linked_out_of_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("fresh");
    new_crate(&crate_dir);
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::create_dir_all(crate_dir.join(".github")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, crate_dir.join(".github/workflows")).unwrap();
    let output = init_output(&crate_dir, &["--ci", "github"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "`{}` is a symbolic link out of `{}`",
            crate_dir.join(".github/workflows").display(),
            crate_dir.display()
        )),
        "{stderr}"
    );
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}

/// A legacy `.cargo/config` (no extension) is where cargo reads aliases from while no
/// `config.toml` exists: the alias goes there, and `cargo xtask` is known.
#[test]
fn init_xtask_adds_the_alias_where_cargo_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("fresh");
    new_crate(&crate_dir);
    fs::create_dir_all(crate_dir.join(".cargo")).unwrap();
    fs::write(crate_dir.join(".cargo/config"), "[alias]\nb = \"build\"\n").unwrap();
    init(&crate_dir, &["--quiet", "--xtask"]);
    assert!(!crate_dir.join(".cargo/config.toml").exists());
    let legacy = fs::read_to_string(crate_dir.join(".cargo/config")).unwrap();
    assert!(
        legacy.starts_with("[alias]\nb = \"build\"\n")
            && legacy.contains("xtask = \"run --package xtask --\""),
        "{legacy}"
    );
    // cargo itself knows the alias (a `cargo xtask --help` would build the xtask).
    let output = hermetic(&mut Command::new("cargo"))
        .args(["--list"])
        .current_dir(&crate_dir)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(
        listed.lines().any(|l| l.trim_start().starts_with("xtask ")),
        "{listed}"
    );
}

/// A manifest with CRLF line ends keeps them, lines added included.
#[test]
fn init_keeps_a_manifests_line_ends() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("fresh");
    let manifest = new_crate(&crate_dir).replace('\n', "\r\n");
    fs::write(crate_dir.join("Cargo.toml"), &manifest).unwrap();
    init(&crate_dir, &["--quiet", "--xtask"]);
    let after = fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(after.contains("[package.metadata.oci]\r\n"), "{after:?}");
    assert!(after.contains("members = [\"xtask\"]\r\n"), "{after:?}");
    assert_eq!(
        after.matches('\n').count(),
        after.matches("\r\n").count(),
        "{after:?}"
    );
}
