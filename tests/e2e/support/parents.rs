//! Parent images made by tools we did not write, once per test binary: a busybox image built by
//! umoci (with a second layer in which umoci recorded a deletion as a whiteout), the same image
//! converted by skopeo to a docker-archive and an oci-archive, and a two-platform index.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::json;

use super::host::{FOREIGN, HOST};
use super::{copy_dir, read_json, run};

pub struct Parents {
    /// An OCI layout, tag `latest`: busybox in `/bin`, `/etc/motd`, `/etc/hostname`, and a
    /// whiteout layer that deleted `/etc/old`; `PATH=/bin:/usr/bin`, `WorkingDir=/work`.
    pub layout: PathBuf,
    /// The same image as `docker-archive`, tagged `busybox:latest`.
    pub docker_archive: PathBuf,
    /// The same image as `oci-archive`, tag `latest`.
    pub oci_archive: PathBuf,
    /// An OCI layout whose `latest` is an index of the host's platform (busybox) and a foreign
    /// one.
    pub multi: PathBuf,
    /// An OCI layout whose `latest` is an index of the foreign platform only.
    pub foreign_only: PathBuf,
}

/// Builds the parents the first time it is called; `None` (the test skips) when the tools are
/// missing outside CI.
pub fn parents() -> Option<&'static Parents> {
    static PARENTS: OnceLock<Option<Parents>> = OnceLock::new();
    PARENTS
        .get_or_init(|| {
            let tools = ["umoci", "skopeo", "busybox"]
                .iter()
                .all(|t| super::tool(t));
            tools.then(build)
        })
        .as_ref()
}

fn build() -> Parents {
    let root =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("parents-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let umoci = |args: &[&str]| run(Command::new("umoci").args(args).current_dir(&root));
    let bundle = root.join("bundle");

    umoci(&["init", "--layout", "base"]);
    umoci(&["new", "--image", "base:latest"]);
    umoci(&["unpack", "--rootless", "--image", "base:latest", "bundle"]);
    let rootfs = bundle.join("rootfs");
    for dir in ["bin", "etc", "work"] {
        fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "ls", "cat", "echo", "pwd", "id", "test"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    fs::write(rootfs.join("etc/motd"), "welcome\n").unwrap();
    fs::write(rootfs.join("etc/hostname"), "base\n").unwrap();
    fs::write(rootfs.join("etc/old"), "old\n").unwrap();
    umoci(&["repack", "--image", "base:latest", "bundle"]);
    // A fresh unpack, so the next repack records the deletion as a whiteout layer.
    fs::remove_dir_all(&bundle).unwrap();
    umoci(&["unpack", "--rootless", "--image", "base:latest", "bundle"]);
    fs::remove_file(bundle.join("rootfs/etc/old")).unwrap();
    umoci(&["repack", "--image", "base:latest", "bundle"]);
    umoci(&[
        "config",
        "--image",
        "base:latest",
        "--config.env",
        "PATH=/bin:/usr/bin",
        "--config.workingdir",
        "/work",
        "--config.cmd",
        "/bin/sh",
        "--config.label",
        "org.example.base=busybox",
    ]);
    fs::remove_dir_all(&bundle).unwrap();

    let skopeo = |args: &[&str]| run(Command::new("skopeo").args(args).current_dir(&root));
    skopeo(&[
        "copy",
        "--quiet",
        "oci:base:latest",
        "docker-archive:base-docker.tar:busybox:latest",
    ]);
    skopeo(&[
        "copy",
        "--quiet",
        "oci:base:latest",
        "oci-archive:base-oci.tar:latest",
    ]);

    // Two platforms: the host's busybox image and a foreign one, joined by an index.
    skopeo(&["copy", "--quiet", "oci:base:latest", "oci:multi:host"]);
    umoci(&["new", "--image", "multi:foreign"]);
    umoci(&["unpack", "--rootless", "--image", "multi:foreign", "bundle"]);
    fs::write(bundle.join("rootfs/FOREIGN"), "foreign\n").unwrap();
    umoci(&["repack", "--image", "multi:foreign", "bundle"]);
    umoci(&[
        "config",
        "--image",
        "multi:foreign",
        "--architecture",
        FOREIGN.go,
    ]);
    fs::remove_dir_all(&bundle).unwrap();
    let multi = root.join("multi");
    let foreign_only = root.join("foreign-only");
    copy_dir(&multi, &foreign_only);
    index_of(&multi, &[("host", HOST.go), ("foreign", FOREIGN.go)]);
    index_of(&foreign_only, &[("foreign", FOREIGN.go)]);

    Parents {
        layout: root.join("base"),
        docker_archive: root.join("base-docker.tar"),
        oci_archive: root.join("base-oci.tar"),
        multi,
        foreign_only,
    }
}

/// Replaces `layout`'s index.json with one entry, `latest`, an image index of the given
/// `(tag, architecture)` images of the layout.
fn index_of(layout: &Path, images: &[(&str, &str)]) {
    let index = read_json(&layout.join("index.json"));
    let manifests: Vec<serde_json::Value> = images
        .iter()
        .map(|(tag, arch)| {
            let entry = index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == *tag)
                .unwrap();
            json!({
                "mediaType": entry["mediaType"], "digest": entry["digest"], "size": entry["size"],
                "platform": {"architecture": arch, "os": "linux"}
            })
        })
        .collect();
    let bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests
    }))
    .unwrap();
    let digest = oci_pack::Digest::of(&bytes);
    fs::write(layout.join("blobs/sha256").join(digest.hex()), &bytes).unwrap();
    let top = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": digest.to_string(),
        "size": bytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": "latest"}
    }]});
    fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}

fn busybox() -> PathBuf {
    let output = Command::new("sh")
        .args(["-c", "command -v busybox"])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}
