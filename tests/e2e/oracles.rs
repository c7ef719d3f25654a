//! The images `cargo oci build` writes, judged by tools we did not write: oci-image-tool
//! (the spec's schemas), skopeo (containers/image), umoci (unpacking) and podman (running).
//! `cargo xtask tools` installs them; `support` runs each as it works on a Debian host without
//! a login session (podman with cgroupfs and runc, dockerd with the vfs driver).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::support::host::HOST;
use crate::support::{manifest_and_config, read_json, run, tool, Fixture, Podman};

fn built_fixture() -> Fixture {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    fixture
}

#[test]
fn oci_image_tool_validates_every_tag() {
    if !tool("oci-image-tool") {
        return;
    }
    // oci-image-tool 1.0.0-rc (archived in 2021) predates the `ref.name` key the spec settled
    // on and OCI 1.1's artifacts: `--ref` cannot tell the image from the SBOM beside it in
    // `index.json` ("not unique"), so it judges a layout of the image alone, without its SBOM
    // and provenance.
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet", "--sbom", "none", "--provenance", "none"]);
    for tag in ["0.1.0", "latest"] {
        let stdout = run(Command::new("oci-image-tool")
            .args([
                "validate",
                "--type",
                "image",
                "--ref",
                &format!("name={tag}"),
            ])
            .arg(fixture.layout()));
        assert!(stdout.contains("Validation succeeded"), "{stdout}");
    }
}

#[test]
fn skopeo_reads_the_manifest_and_every_config_field() {
    if !tool("skopeo") {
        return;
    }
    let fixture = built_fixture();
    let layout = fixture.layout();
    let index = read_json(&layout.join("index.json"));
    let (_, config) = manifest_and_config(&layout);
    for tag in ["0.1.0", "latest"] {
        let reference = format!("oci:{}:{tag}", layout.display());
        let inspect: serde_json::Value =
            serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &reference])))
                .unwrap();
        assert_eq!(inspect["Digest"], index["manifests"][0]["digest"], "{tag}");
        assert_eq!(inspect["Architecture"], HOST.go);
        assert_eq!(inspect["Os"], "linux");
        assert_eq!(
            inspect["Env"],
            serde_json::json!(["GREETING=hi there", "RUST_LOG=info"])
        );
        assert_eq!(inspect["Labels"]["org.example.fixture"], "hello");
        assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);

        let raw: serde_json::Value = serde_json::from_str(&run(
            Command::new("skopeo").args(["inspect", "--config", "--raw", &reference])
        ))
        .unwrap();
        assert_eq!(
            raw, config,
            "skopeo sees the config we wrote, Docker extensions included"
        );
        assert_eq!(raw["config"]["Healthcheck"]["Interval"], 90_000_000_000u64);
        assert_eq!(raw["config"]["StopSignal"], "SIGINT");
    }
}

#[test]
fn umoci_unpacks_files_where_they_belong_with_modes_and_owner() {
    if !tool("umoci") {
        return;
    }
    let fixture = built_fixture();
    let bundle = fixture.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:0.1.0", fixture.layout().display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let expect = |path: &str, mode: u32, is_dir: bool| {
        let meta =
            fs::symlink_metadata(rootfs.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(meta.mode() & 0o7777, mode, "{path}");
        assert_eq!(meta.is_dir(), is_dir, "{path}");
        // --rootless maps the layer's uid/gid 0 to the user running umoci.
        assert_eq!(
            (meta.uid(), meta.gid()),
            (current_uid(), current_gid()),
            "{path}"
        );
    };
    expect("usr/local/bin/hello", 0o755, false);
    expect("usr/local/bin", 0o755, true);
    expect("srv/static/css/site.css", 0o644, false);
    expect("srv/static/index.html", 0o644, false);
    let mut found: Vec<String> = walk(&rootfs);
    found.sort();
    assert_eq!(
        found,
        [
            "srv",
            "srv/static",
            "srv/static/css",
            "srv/static/css/site.css",
            "srv/static/index.html",
            "tmp",
            "usr",
            "usr/local",
            "usr/local/bin",
            "usr/local/bin/hello"
        ]
    );
    assert_eq!(
        fs::read(rootfs.join("srv/static/css/site.css")).unwrap(),
        fs::read(fixture.path().join("static/css/site.css")).unwrap()
    );
}

#[test]
fn podman_runs_the_entrypoint_with_the_config_applied() {
    let Some(podman) = Podman::new() else { return };
    let fixture = built_fixture();
    let image = podman.pull(&fixture.layout(), "0.1.0");
    assert_eq!(
        image.run(&["one", "two"]),
        "args=[\"one\", \"two\"]\ngreeting=hi there\ncwd=/srv\nuid=65532\n\
         asset=body { color: rebeccapurple; }\n"
    );
    let with_cmd = image.run(&[]);
    assert!(
        with_cmd.starts_with("args=[\"--from-cmd\"]\n"),
        "{with_cmd}"
    );
}

fn walk(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    found
}

fn current_uid() -> u32 {
    fs::metadata("/proc/self").unwrap().uid()
}

fn current_gid() -> u32 {
    fs::metadata("/proc/self").unwrap().gid()
}
