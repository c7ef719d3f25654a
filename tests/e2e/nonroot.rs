//! Images that run as a user other than root: a `files` entry owned and moded as asked, a
//! `dirs` entry, `/tmp` on `scratch`, and the binary's file capability. podman and a private
//! dockerd run the hello fixture as 65532 with the unprivileged-port floor kept at 1024, so the
//! capability is what lets it bind :80 (and without it, the bind fails); umoci, unpacking as
//! root, and GNU tar read the owners, modes and the `security.capability` PAX record. On a
//! parent, podman sees the owners and modes that differ from the parent's.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::parents::parents;
use crate::support::{
    assert_success, layer_paths, manifest_and_config, run, tool, Dockerd, Fixture, Podman,
};

/// Keeps the floor at its kernel default: podman and docker lower it to 0 in a container's own
/// network namespace otherwise, which would let anyone bind :80.
const PORT_FLOOR: &str = "net.ipv4.ip_unprivileged_port_start=1024";

/// What the fixture is asked to do: all a service running as 65532 needs of its image.
const SERVICE: [&str; 10] = [
    "--bind",
    "0.0.0.0:80",
    "--write",
    "/data/state",
    "--read",
    "/data/state",
    "--read",
    "/etc/app/secret",
    "--write",
    "/tmp/scratch",
];

/// The hello fixture as a non-root service, tagged `TAG:1`, with the capability or without.
fn service(tag: &str, capabilities: &str) -> Fixture {
    let fixture = Fixture::copy("hello");
    rebuild(&fixture, tag, capabilities);
    fixture
}

/// Builds `fixture` (again) as `TAG:1`, with `capabilities`.
fn rebuild(fixture: &Fixture, tag: &str, capabilities: &str) {
    fs::write(fixture.path().join("secret.txt"), "the secret\n").unwrap();
    fixture.set_metadata(&format!(
        r#"[package.metadata.oci]
tags = ["{tag}:1"]
formats = ["oci", "docker"]
files = [{{ src = "secret.txt", dest = "/etc/app/secret", owner = "65532:65532", mode = "0640" }}]
dirs = [{{ path = "/data", owner = "65532:65532", mode = "0750" }}]
capabilities = {capabilities}

[package.metadata.oci.config]
user = "65532:65532"
"#
    ));
    fixture.build_ok(&["--quiet"]);
}

/// What the fixture says when it may not bind :80.
const REFUSED: &str = "--bind 0.0.0.0:80: Permission denied (os error 13)\n";

/// A tag no other test or engineer uses in the shared podman store.
fn unique(name: &str) -> String {
    format!("cargo-oci-{name}-{}", std::process::id())
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn podman_runs_it_as_65532_binding_port_80_and_only_with_the_capability() {
    let Some(podman) = Podman::new() else { return };
    let tag = unique("nonroot");
    let fixture = service(&tag, r#"["CAP_NET_BIND_SERVICE"]"#);
    let pulled = podman.pull(&fixture.layout(), "1");
    let run_service = |image: &str| -> Output {
        Command::new("podman")
            .env("CONTAINERS_CONF", podman.conf_path())
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "--sysctl",
                PORT_FLOOR,
                image,
            ])
            .args(SERVICE)
            .output()
            .unwrap()
    };
    let output = run_service(&pulled.id);
    assert_eq!(
        stdout(&output),
        "--bind 0.0.0.0:80: bound\n\
         --write /data/state: written\n\
         --read /data/state: written\n\
         --read /etc/app/secret: the secret\n\
         --write /tmp/scratch: written\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(pulled.run(&[]).contains("uid=65532\n"));

    // The negative control: the same image without the capability cannot bind :80.
    rebuild(&fixture, &tag, "[]");
    let pulled = podman.pull(&fixture.layout(), "1");
    let output = run_service(&pulled.id);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(stdout(&output), REFUSED);
}

#[test]
fn umoci_and_tar_read_the_owners_modes_and_capability() {
    if !tool("umoci") || !tool("getcap") {
        return;
    }
    let fixture = service(&unique("nonroot-umoci"), r#"["net_bind_service"]"#);
    let layout = fixture.layout();
    let inspected = run(Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci:{}:1", layout.display())));
    assert!(
        inspected.contains(r#""User": "65532:65532""#),
        "{inspected}"
    );

    // As root, so umoci applies owners and the `security.capability` attribute.
    let bundle = fixture.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:1", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let attributes = |path: &str| {
        let meta = fs::symlink_metadata(rootfs.join(path)).unwrap();
        (meta.mode() & 0o7777, meta.uid(), meta.gid())
    };
    assert_eq!(attributes("data"), (0o750, 65532, 65532));
    assert_eq!(attributes("etc/app/secret"), (0o640, 65532, 65532));
    assert_eq!(attributes("etc/app"), (0o755, 0, 0));
    assert_eq!(attributes("tmp"), (0o1777, 0, 0));
    assert_eq!(attributes("usr/local/bin/hello"), (0o755, 0, 0));
    let binary = rootfs.join("usr/local/bin/hello");
    let getcap = run(Command::new("getcap").arg(&binary));
    assert_eq!(
        getcap,
        format!("{} cap_net_bind_service=ep\n", binary.display())
    );
    assert_eq!(
        run(Command::new("getcap").arg(rootfs.join("etc/app/secret"))),
        ""
    );

    // GNU tar sees the PAX record on the binary's entry, and on no other.
    let (manifest, _) = manifest_and_config(&layout);
    let blob = |i: usize| {
        let digest = manifest["layers"][i]["digest"].as_str().unwrap();
        layout.join("blobs/sha256").join(&digest["sha256:".len()..])
    };
    let listing = |layer: &Path| {
        run(Command::new("tar")
            .args(["--xattrs", "--xattrs-include=*", "-tvvzf"])
            .arg(layer))
    };
    let bins = listing(&blob(1));
    let xattr_lines: Vec<&str> = bins.lines().filter(|l| l.contains("x:")).collect();
    assert_eq!(xattr_lines, ["  x: 20 security.capability"], "{bins}");
    let files = listing(&blob(0));
    assert!(!files.contains("x:"), "{files}");
    let secret = files
        .lines()
        .find(|l| l.ends_with(" etc/app/secret"))
        .unwrap();
    let fields: Vec<&str> = secret.split_whitespace().take(2).collect();
    assert_eq!(fields, ["-rw-r-----", "65532/65532"], "{files}");
}

#[test]
fn inspect_shows_owners_modes_and_capabilities_and_a_rebuild_is_the_same() {
    let fixture = service(&unique("nonroot-inspect"), r#"["CAP_NET_BIND_SERVICE"]"#);
    let output = fixture.cargo_oci(&["inspect", "--files"]);
    assert_success(&output, "cargo oci inspect --files");
    let human = stdout(&output);
    let line = |path: &str| -> Vec<&str> {
        let found = human.lines().find(|l| l.contains(&format!(" {path}")));
        let found = found.unwrap_or_else(|| panic!("{path} in {human}"));
        found
            .split_whitespace()
            .filter(|w| w.parse::<u64>().is_err())
            .collect()
    };
    assert_eq!(line("/data"), ["drwxr-x---", "65532:65532", "/data"]);
    assert_eq!(line("/tmp"), ["drwxrwxrwt", "0:0", "/tmp"]);
    assert_eq!(
        line("/etc/app/secret"),
        ["-rw-r-----", "65532:65532", "/etc/app/secret"]
    );
    assert_eq!(
        line("/usr/local/bin/hello"),
        [
            "-rwxr-xr-x",
            "0:0",
            "/usr/local/bin/hello",
            "cap_net_bind_service=ep"
        ]
    );
    let output = fixture.cargo_oci(&["inspect", "--files", "--message-format", "json"]);
    assert_success(&output, "cargo oci inspect --files --message-format json");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let files = report["platforms"][0]["files"].as_array().unwrap();
    let hello = files.iter().find(|f| f["path"] == "/usr/local/bin/hello");
    assert_eq!(hello.unwrap()["capabilities"], "cap_net_bind_service=ep");
    let data = files.iter().find(|f| f["path"] == "/data").unwrap();
    assert_eq!(
        (&data["mode"], &data["uid"]),
        (&"0750".into(), &65532.into())
    );

    // The same inputs, the same bytes: a rebuild in a scratch target directory.
    let output = fixture.cargo_oci(&["verify"]);
    assert_success(&output, "cargo oci verify");
    assert!(stdout(&output).starts_with("hello is reproducible: sha256:"));
}

#[test]
fn docker_loads_the_archive_and_the_capability_lets_65532_bind_port_80() {
    let Some(dockerd) = Dockerd::start() else {
        return;
    };
    let tag = unique("nonroot-docker");
    let fixture = service(&tag, r#"["CAP_NET_BIND_SERVICE"]"#);
    let archive = fixture.path().join("target/oci/hello.docker.tar");
    let load = |archive: &Path| {
        run(&mut dockerd.docker(&["load", "-i", &archive.display().to_string()]));
    };
    let run_service = |image: &str| {
        dockerd
            .docker(&[
                "run",
                "--rm",
                "--network",
                "none",
                "--sysctl",
                PORT_FLOOR,
                image,
            ])
            .args(SERVICE)
            .output()
            .unwrap()
    };
    load(&archive);
    let image = format!("{tag}:1");
    let output = stdout(&run_service(&image));
    assert_eq!(
        output,
        "--bind 0.0.0.0:80: bound\n\
         --write /data/state: written\n\
         --read /data/state: written\n\
         --read /etc/app/secret: the secret\n\
         --write /tmp/scratch: written\n"
    );
    let said = run(&mut dockerd.docker(&["run", "--rm", "--network", "none", &image]));
    assert!(said.contains("uid=65532\n"), "{said}");

    // The negative control: docker keeps the floor asked for, so without it no bind.
    rebuild(&fixture, &tag, "[]");
    load(&archive);
    let output = run_service(&image);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(stdout(&output), REFUSED);
}

/// On a parent, a path whose content is the parent's is written again when its owner differs,
/// and a directory when the owner or mode chosen differs; a directory chosen as the parent has
/// it is left as it is.
#[test]
fn on_a_parent_owners_and_modes_that_differ_are_changes_podman_applies() {
    let Some(parents) = parents() else { return };
    let Some(podman) = Podman::new() else { return };
    let fixture = Fixture::copy("hello");
    // The parent's `/etc/motd`, byte for byte.
    fs::write(fixture.path().join("motd"), "welcome\n").unwrap();
    fixture.set_metadata(&format!(
        r#"[package.metadata.oci]
base = "oci:{}:latest"
tags = ["{}:1"]
files = [{{ src = "motd", dest = "/etc/motd", owner = "65532:65532" }}]
dirs = [{{ path = "/work", owner = "65532:65532", mode = "0770" }}, {{ path = "/etc" }}]
"#,
        parents.layout.display(),
        unique("nonroot-parent")
    ));
    fixture.build_ok(&["--quiet"]);
    let layout = fixture.layout();
    let (manifest, _) = manifest_and_config(&layout);
    let layers = manifest["layers"].as_array().unwrap();
    let files = layers[layers.len() - 2]["digest"].as_str().unwrap();
    assert_eq!(layer_paths(&layout, files), ["etc/motd", "work"]);

    let pulled = podman.pull(&layout, "1");
    let listed = podman.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/ls",
        &pulled.id,
        "-lnd",
        "/etc",
        "/etc/motd",
        "/work",
    ]);
    let owners: Vec<Vec<&str>> = listed
        .lines()
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            vec![fields[0], fields[2], fields[3], fields[fields.len() - 1]]
        })
        .collect();
    assert_eq!(
        owners,
        [
            ["drwxr-xr-x", "0", "0", "/etc"],
            ["-rw-r--r--", "65532", "65532", "/etc/motd"],
            ["drwxrwx---", "65532", "65532", "/work"],
        ],
        "{listed}"
    );
}
