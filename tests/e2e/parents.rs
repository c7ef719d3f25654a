//! Building on parent images made by umoci and skopeo: layers reused byte for byte, config
//! inherited with Dockerfile rules, whiteouts honoured, and the result run by podman on the
//! parent's own shell.

use std::path::Path;
use std::process::Command;

use crate::support::host::{FOREIGN, HOST};
use crate::support::parents::parents;
use crate::support::{
    blob, layer_paths, manifest_and_config, read_json, run, tool, Fixture, Podman,
};
use serde_json::{json, Value};

/// The hello fixture on `base`, with `extra` metadata lines.
fn on_base(base: &str, extra: &str) -> Fixture {
    let fixture = Fixture::copy("hello");
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"{base}\"\n{extra}"
    ));
    fixture
}

/// The manifest and config of a parent layout's image `tag` (following an index to the host's).
fn parent_image(layout: &Path, tag: &str) -> (Value, Value) {
    let index = read_json(&layout.join("index.json"));
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let mut manifest = blob(layout, entry["digest"].as_str().unwrap());
    if manifest["manifests"].is_array() {
        let host = manifest["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["platform"]["architecture"] == HOST.go);
        manifest = blob(layout, host.unwrap()["digest"].as_str().unwrap());
    }
    let config = blob(layout, manifest["config"]["digest"].as_str().unwrap());
    (manifest, config)
}

const SHELL_ENTRYPOINT: &str = concat!(
    r#"
[package.metadata.oci.config]
entrypoint = ["/bin/sh", "-c", "echo PATH=$PATH; pwd; test -e /etc/motd || echo motd-gone; "#,
    r#"exec /usr/local/bin/hello \"$@\"", "sh"]
env = { GREETING = "on busybox" }
"#
);

#[test]
fn an_oci_layout_parent_is_reused_inherited_and_runs_in_podman() {
    let Some(parents) = parents() else { return };
    let base = format!("oci:{}:latest", parents.layout.display());
    let fixture = on_base(
        &base,
        &format!("remove = [\"/etc/motd\"]\n{SHELL_ENTRYPOINT}"),
    );
    fixture.build_ok(&["--quiet"]);
    let layout = fixture.layout();
    let (manifest, config) = manifest_and_config(&layout);
    let (parent_manifest, parent_config) = parent_image(&parents.layout, "latest");

    let layers = manifest["layers"].as_array().unwrap();
    let parent_layers = parent_manifest["layers"].as_array().unwrap();
    assert_eq!(
        layers.len(),
        parent_layers.len() + 2,
        "the whiteout layer and the binary layer"
    );
    assert_eq!(
        &layers[..parent_layers.len()],
        parent_layers.as_slice(),
        "parent layers reused unchanged"
    );
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(
        &diff_ids[..2],
        parent_config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .as_slice()
    );
    let history = config["history"].as_array().unwrap();
    assert_eq!(
        &history[..3],
        parent_config["history"].as_array().unwrap().as_slice(),
        "parent history kept"
    );
    assert_eq!(
        history.iter().filter(|h| h["empty_layer"] != true).count(),
        diff_ids.len()
    );

    let inherited = &config["config"];
    assert_eq!(
        inherited["Env"],
        json!(["PATH=/bin:/usr/bin", "GREETING=on busybox"])
    );
    assert_eq!(inherited["WorkingDir"], "/work");
    assert_eq!(inherited["Labels"]["org.example.base"], "busybox");
    assert!(
        inherited.get("Cmd").is_none(),
        "setting the entrypoint clears the inherited cmd"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.digest"],
        parent_manifest_digest(&parents.layout)
    );
    assert!(
        manifest["annotations"]
            .get("org.opencontainers.image.base.name")
            .is_none(),
        "umoci's layout names its image only by a bare tag, which is no reference"
    );

    assert_eq!(
        layer_paths(&layout, layers[2]["digest"].as_str().unwrap()),
        ["etc/.wh.motd"]
    );
    assert_eq!(history[3]["created_by"], "cargo oci: remove /etc/motd");
    assert_eq!(
        layer_paths(&layout, layers[3]["digest"].as_str().unwrap()),
        ["usr", "usr/local", "usr/local/bin", "usr/local/bin/hello"],
        "no directory the parent has is written again"
    );

    if tool("umoci") {
        let bundle = fixture.path().join("bundle");
        run(Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:0.1.0", layout.display()))
            .arg(&bundle));
        let rootfs = bundle.join("rootfs");
        assert!(!rootfs.join("etc/motd").exists(), "removed");
        assert!(
            !rootfs.join("etc/old").exists(),
            "deleted by the parent's own whiteout"
        );
        assert_eq!(
            std::fs::read_to_string(rootfs.join("etc/hostname")).unwrap(),
            "base\n"
        );
        assert!(
            rootfs.join("bin/busybox").is_file() && rootfs.join("usr/local/bin/hello").is_file()
        );
    }
    if tool("oci-image-tool") {
        crate::support::oci_image_tool_validates(&layout, "0.1.0");
    }
    if let Some(podman) = Podman::new() {
        let output = podman.pull(&layout, "0.1.0").run(&["x"]);
        assert_eq!(
            output,
            "PATH=/bin:/usr/bin\n/work\nmotd-gone\nargs=[\"x\"]\ngreeting=on busybox\n\
             cwd=/work\nuid=0\nasset=\n"
        );
    }
}

fn parent_manifest_digest(layout: &Path) -> Value {
    read_json(&layout.join("index.json"))["manifests"][0]["digest"].clone()
}

#[test]
fn a_docker_archive_parent_keeps_its_uncompressed_layers_and_runs() {
    let Some(parents) = parents() else { return };
    let base = format!(
        "docker-archive:{}:busybox:latest",
        parents.docker_archive.display()
    );
    let fixture = on_base(&base, SHELL_ENTRYPOINT);
    fixture.build_ok(&["--quiet"]);
    let (manifest, config) = manifest_and_config(&fixture.layout());
    let (_, parent_config) = parent_image(&parents.layout, "latest");
    let parent_diff_ids = parent_config["rootfs"]["diff_ids"].as_array().unwrap();
    for (layer, diff_id) in manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(parent_diff_ids)
    {
        assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar");
        assert_eq!(
            &layer["digest"], diff_id,
            "kept as the archive holds it: uncompressed"
        );
    }
    assert_eq!(
        &config["rootfs"]["diff_ids"].as_array().unwrap()[..2],
        parent_diff_ids.as_slice()
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.name"],
        "busybox:latest"
    );
    if let Some(podman) = Podman::new() {
        let output = podman.pull(&fixture.layout(), "0.1.0").run(&[]);
        assert!(
            output.starts_with("PATH=/bin:/usr/bin\n/work\n"),
            "{output}"
        );
    }
}

#[test]
fn an_oci_archive_parent_gives_the_same_layers_as_its_layout() {
    let Some(parents) = parents() else { return };
    let fixture = on_base(
        &format!("oci-archive:{}:latest", parents.oci_archive.display()),
        "",
    );
    fixture.build_ok(&["--quiet"]);
    let (manifest, _) = manifest_and_config(&fixture.layout());
    let (parent_manifest, _) = parent_image(&parents.layout, "latest");
    assert_eq!(
        &manifest["layers"].as_array().unwrap()[..2],
        parent_manifest["layers"].as_array().unwrap().as_slice()
    );
    let blobs = std::fs::read_dir(fixture.layout().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(
        blobs,
        2 + 1 + 2 + 3 + 2,
        "parent layers, our binary layer, config and manifest, our SBOM's document, empty \
         config and manifest, and our provenance's statement and manifest: nothing else of the \
         archive"
    );
}

#[test]
fn the_parents_whiteouts_are_honoured() {
    let Some(parents) = parents() else { return };
    let fixture = on_base(
        &format!("oci:{}:latest", parents.layout.display()),
        "remove = [\"/etc/old\"]\n",
    );
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("cannot remove `/etc/old`: the base image has no such path"),
        "{stderr}"
    );
}

#[test]
fn identical_files_are_left_out_and_parent_directories_keep_their_attributes() {
    let Some(parents) = parents() else { return };
    let fixture = on_base(
        &format!("oci:{}:latest", parents.layout.display()),
        "files = [{ src = \"etc/hostname\", dest = \"/etc/hostname\" }, \
         { src = \"etc/app.conf\", dest = \"/etc/app.conf\" }]\n",
    );
    std::fs::create_dir_all(fixture.path().join("etc")).unwrap();
    std::fs::write(fixture.path().join("etc/hostname"), "base\n").unwrap();
    std::fs::write(fixture.path().join("etc/app.conf"), "port = 1\n").unwrap();
    fixture.build_ok(&["--quiet"]);
    let (manifest, _) = manifest_and_config(&fixture.layout());
    let files_layer = manifest["layers"][2]["digest"].as_str().unwrap();
    assert_eq!(
        layer_paths(&fixture.layout(), files_layer),
        ["etc/app.conf"]
    );
}

#[test]
fn nothing_staged_is_a_config_only_image() {
    let Some(parents) = parents() else { return };
    let fixture = on_base(
        &format!("oci:{}:latest", parents.layout.display()),
        "bins = []\n[package.metadata.oci.config]\nuser = \"1000\"\n",
    );
    fixture.build_ok(&["--quiet"]);
    let (manifest, config) = manifest_and_config(&fixture.layout());
    let (parent_manifest, _) = parent_image(&parents.layout, "latest");
    assert_eq!(manifest["layers"], parent_manifest["layers"]);
    let last = config["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["empty_layer"], true);
    assert_eq!(config["config"]["User"], "1000");
    assert_eq!(
        config["config"]["Cmd"],
        json!(["/bin/sh"]),
        "nothing set it, so the parent's cmd stays"
    );
}

#[test]
fn an_index_parent_resolves_to_the_platform_being_built() {
    let Some(parents) = parents() else { return };
    let fixture = on_base(&format!("oci:{}:latest", parents.multi.display()), "");
    fixture.build_ok(&["--quiet"]);
    let (manifest, _) = manifest_and_config(&fixture.layout());
    let (host, _) = parent_image(&parents.multi, "latest");
    assert_eq!(
        &manifest["layers"].as_array().unwrap()[..2],
        host["layers"].as_array().unwrap().as_slice()
    );

    let fixture = on_base(
        &format!("oci:{}:latest", parents.foreign_only.display()),
        "",
    );
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "has no image for {} (it has: {})",
            HOST.platform(),
            FOREIGN.platform()
        )),
        "{stderr}"
    );
    assert!(!fixture.layout().exists());
}

/// Docker ≥ 25 saves an OCI layout plus a `manifest.json` pointing into `blobs/sha256/`, with the
/// layers as pulled (gzip). Debian's docker 20.10 cannot write one, so it is assembled here from
/// skopeo's OCI archive exactly as Docker 25 lays it out.
#[test]
fn a_docker_25_archive_parent_is_read_through_its_manifest_json() {
    let Some(parents) = parents() else { return };
    let fixture = Fixture::copy("hello");
    let (manifest, _) = parent_image(&parents.layout, "latest");
    let path_of = |d: &Value| {
        format!(
            "blobs/sha256/{}",
            d["digest"].as_str().unwrap().trim_start_matches("sha256:")
        )
    };
    let docker_manifest = json!([{
        "Config": path_of(&manifest["config"]),
        "RepoTags": ["busybox:25"],
        "Layers": manifest["layers"].as_array().unwrap().iter().map(path_of).collect::<Vec<_>>(),
    }]);
    let unpacked = fixture.path().join("docker25");
    crate::support::copy_dir(&parents.layout, &unpacked);
    std::fs::write(
        unpacked.join("manifest.json"),
        serde_json::to_vec(&docker_manifest).unwrap(),
    )
    .unwrap();
    run(Command::new("tar")
        .arg("-cf")
        .arg(fixture.path().join("docker25.tar"))
        .arg("-C")
        .arg(&unpacked)
        .arg("."));

    fixture.set_metadata(
        "[package.metadata.oci]\nbase = \"docker-archive:docker25.tar:busybox:25\"\n",
    );
    fixture.build_ok(&["--quiet"]);
    let (ours, _) = manifest_and_config(&fixture.layout());
    assert_eq!(
        &ours["layers"].as_array().unwrap()[..2],
        manifest["layers"].as_array().unwrap().as_slice(),
        "gzip layers kept as they are"
    );
    assert_eq!(
        ours["annotations"]["org.opencontainers.image.base.name"],
        "busybox:25"
    );
}
