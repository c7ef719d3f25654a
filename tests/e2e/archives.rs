//! Archives for `docker load` and `podman load`: written beside the layout, read by skopeo,
//! loaded and run by a private dockerd (moby 20.10, classic store) and by podman, streamed
//! straight into either with `--load`, and taken back as a base.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::host::HOST;
use crate::support::parents::parents;
use crate::support::{manifest_and_config, read_json, run, tool, Dockerd, Fixture, Podman};
use oci_pack::testing::list_tar;

/// The hello fixture under its own tags, so tests loading into the same store do not collide.
fn tagged_fixture(name: &str) -> Fixture {
    let fixture = Fixture::copy("hello");
    let manifest = fixture.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    let old = "tags = [\"{name}:{version}\", \"hello:latest\"]";
    assert!(text.contains(old));
    fs::write(
        &manifest,
        text.replace(old, &format!("tags = [\"{name}:1.0\", \"{name}:latest\"]")),
    )
    .unwrap();
    fixture
}

fn archives(fixture: &Fixture) -> (std::path::PathBuf, std::path::PathBuf) {
    let oci = fixture.path().join("target/oci");
    (oci.join("hello.oci.tar"), oci.join("hello.docker.tar"))
}

/// The `manifest.json` of a Docker archive.
fn docker_manifest(archive: &Path) -> serde_json::Value {
    let mut tar = tar::Archive::new(fs::File::open(archive).unwrap());
    let entry = tar
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap() == Path::new("manifest.json"));
    serde_json::from_reader(entry.expect("manifest.json in the archive")).unwrap()
}

/// `blobs/sha256/<hex>` of each layer of `manifest`, as `manifest.json` names them.
fn blob_paths(manifest: &serde_json::Value) -> Vec<String> {
    let digests = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap());
    digests
        .map(|d| format!("blobs/sha256/{}", d.trim_start_matches("sha256:")))
        .collect()
}

/// `--load` streams the archive: `target/oci` holds the layout and nothing else.
fn assert_only_the_layout_was_written(fixture: &Fixture) {
    let written = crate::support::outputs_in(&fixture.path().join("target/oci"));
    assert_eq!(
        written,
        crate::support::names(&[
            "hello",
            &crate::support::provenance_of("hello"),
            &crate::support::sbom_of("hello")
        ]),
        "the layout and its SBOM and provenance only: the archive was streamed, never written"
    );
}

#[test]
fn archives_sit_beside_the_layout_and_are_reproducible() {
    let first = tagged_fixture("repro");
    let second = tagged_fixture("repro");
    let args = [
        "--format",
        "oci",
        "--format",
        "oci-archive",
        "--format",
        "docker",
    ];
    let stdout = first.build_ok(&args);
    second.build_ok(&args);
    let layout = first.layout();
    let digest = read_json(&layout.join("index.json"))["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let (oci, docker) = archives(&first);
    let sbom = layout.with_file_name(crate::support::sbom_of("hello"));
    assert_eq!(
        stdout,
        format!(
            "oci {digest} {}\noci-archive {digest} {}\ndocker {digest} {}\nsbom {digest} {}\n",
            layout.display(),
            oci.display(),
            docker.display(),
            sbom.display()
        )
    );
    let (sbom2, _) = (
        second
            .layout()
            .with_file_name(crate::support::sbom_of("hello")),
        (),
    );
    assert_eq!(fs::read(&sbom).unwrap(), fs::read(sbom2).unwrap());
    let (oci2, docker2) = archives(&second);
    assert_eq!(
        fs::read(&oci).unwrap(),
        fs::read(oci2).unwrap(),
        "the same inputs give the same archive bytes"
    );
    assert_eq!(fs::read(&docker).unwrap(), fs::read(docker2).unwrap());
    assert_eq!(
        fs::metadata(&docker).unwrap().permissions().mode() & 0o777,
        0o644
    );

    let listing = list_tar(fs::File::open(&docker).unwrap());
    let names: Vec<&str> = listing.iter().map(|e| e.path.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted");
    assert!(listing
        .iter()
        .all(|e| (e.mode == 0o644 || e.mode == 0o755) && e.uid == 0 && e.mtime == 0));
    for name in ["oci-layout", "index.json", "manifest.json", "repositories"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }

    let manifest_json = docker_manifest(&docker);
    let (manifest, _) = manifest_and_config(&layout);
    assert_eq!(
        manifest_json[0]["RepoTags"],
        serde_json::json!(["repro:1.0", "repro:latest"])
    );
    let layer_paths = blob_paths(&manifest);
    assert_eq!(
        manifest_json[0]["Layers"],
        serde_json::json!(layer_paths),
        "layers point at the shared gzip blobs"
    );
}

#[test]
fn skopeo_reads_both_archives() {
    if !tool("skopeo") {
        return;
    }
    let fixture = tagged_fixture("skopeo");
    fixture.build_ok(&["--quiet", "--format", "oci-archive", "--format", "docker"]);
    let (oci, docker) = archives(&fixture);
    assert!(
        !fixture.layout().exists(),
        "no layout directory unless `oci` is asked for"
    );
    for reference in [
        format!("docker-archive:{}", docker.display()),
        format!("oci-archive:{}:1.0", oci.display()),
    ] {
        let inspect: serde_json::Value = serde_json::from_str(&run(std::process::Command::new(
            "skopeo",
        )
        .args(["inspect", &reference])))
        .unwrap();
        assert_eq!(inspect["Architecture"], HOST.go, "{reference}");
        assert_eq!(
            inspect["Env"],
            serde_json::json!(["GREETING=hi there", "RUST_LOG=info"]),
            "{reference}"
        );
        assert_eq!(
            inspect["Layers"].as_array().unwrap().len(),
            2,
            "{reference}"
        );
    }
}

#[test]
fn podman_loads_and_runs_both_archives() {
    let Some(podman) = Podman::new() else { return };
    let fixture = tagged_fixture("podman-archive");
    fixture.build_ok(&["--quiet", "--format", "oci-archive", "--format", "docker"]);
    let (oci, docker) = archives(&fixture);
    for archive in [&docker, &oci] {
        let loaded = podman.load(
            archive,
            &[
                "localhost/podman-archive:1.0",
                "localhost/podman-archive:latest",
            ],
        );
        // Each tag asked on its own: `podman images` reads every image in the store, and
        // fails when another test removes one meanwhile.
        for tag in &loaded.tags {
            let id = podman.run(&["image", "inspect", "--format", "{{.Id}}", tag]);
            assert!(
                !id.trim().is_empty(),
                "{} did not load as {tag}",
                archive.display()
            );
        }
        let output = podman.run(&[
            "run",
            "--rm",
            "--network",
            "none",
            "podman-archive:1.0",
            "x",
        ]);
        assert!(
            output.starts_with("args=[\"x\"]\ngreeting=hi there\n"),
            "{output}"
        );
    }
}

/// `--load=podman` copies the image into podman's store from the build cache (skopeo into
/// `containers-storage:`): after a code change it runs there under every tag, its ID is the
/// config digest, the base's layer is the one podman had and the new one went in uncompressed.
#[test]
fn podman_load_runs_under_every_tag_with_the_new_layer_uncompressed() {
    let (Some(podman), Some(parents)) = (Podman::new(), parents()) else {
        return;
    };
    let fixture = Fixture::copy("hello");
    // A base of its own: the first load brings it into podman, the second finds it there.
    let base = fixture.path().join("base");
    crate::support::copy_dir(&parents.layout, &base);
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"oci:{}:latest\"\n\
         tags = [\"podman-load:1.0\", \"podman-load:latest\"]\n\
         [package.metadata.oci.config]\nenv = {{ GREETING = \"hi there\" }}\n",
        base.display()
    ));
    let conf = podman_conf(&podman);
    let tags = ["localhost/podman-load:1.0", "localhost/podman-load:latest"];
    let _loaded = crate::support::Loaded::forget_later(&podman, &tags);
    let load = |output: &Path| {
        let output = output.display().to_string();
        let args = ["--load=podman", "--output", &output];
        let output = fixture.build_with_env(&args, &[("CONTAINERS_CONF", &conf)]);
        crate::support::assert_success(&output, "cargo oci build --load=podman");
    };
    load(&fixture.layout());
    let main = fixture.path().join("src/main.rs");
    let code = fs::read_to_string(&main).unwrap();
    fs::write(&main, code.replace("stopped by signal", "stopped, signal")).unwrap();
    // A directory whose name has a colon, which skopeo's `oci:DIR:TAG` cannot name.
    let output = fixture.path().join("out:put");
    load(&output);

    let (manifest, config) = manifest_and_config(&output);
    // podman got the new layer uncompressed, under its diff_id, and the base's as it is.
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("containers-storage:{}", tags[0]),
    ]));
    let stored: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let (layers, diff_ids) = (&stored["layers"], &config["rootfs"]["diff_ids"]);
    assert_eq!(
        layers[0]["digest"], manifest["layers"][0]["digest"],
        "{raw}"
    );
    let top = layers.as_array().unwrap().last().unwrap();
    assert_eq!(
        top["mediaType"], "application/vnd.oci.image.layer.v1.tar",
        "{raw}"
    );
    assert_eq!(top["digest"], *diff_ids.as_array().unwrap().last().unwrap());
    // Packing kept that tar for podman, and it went once loaded: the cache holds the layer
    // compressed only.
    let blob = |digest: &serde_json::Value| {
        let hex = digest.as_str().unwrap().trim_start_matches("sha256:");
        fixture
            .path()
            .join("target/oci/.cache/blobs/sha256")
            .join(hex)
    };
    let compressed = manifest["layers"].as_array().unwrap().last().unwrap();
    assert!(blob(&compressed["digest"]).is_file());
    assert!(
        !blob(&top["digest"]).exists(),
        "the tar stayed in the cache"
    );
    let config = manifest["config"]["digest"].as_str().unwrap();
    for tag in tags {
        let id = podman.run(&["image", "inspect", "--format", "{{.Id}}", tag]);
        assert_eq!(format!("sha256:{}", id.trim()), config, "{tag}");
        let output = podman.run(&["run", "--rm", "--network", "none", tag, "x"]);
        assert!(
            output.starts_with("args=[\"x\"]\ngreeting=hi there\n"),
            "{tag}: {output}"
        );
    }
}

/// `docker load` gets each new layer uncompressed, and nothing of what the daemon holds:
/// rebuilt, the image goes without its base layer's file. A daemon that turns such a stream
/// down (as a containerd image store does) gets the whole image.
#[test]
fn a_docker_load_sends_only_what_the_daemon_lacks() {
    let (Some(dockerd), Some(parents)) = (Dockerd::start(), parents()) else {
        return;
    };
    let fixture = tagged_fixture("docker-thin");
    // What each `docker load` is sent, recorded by a `docker` before Debian's: `load-N.tar`.
    // While `refuse` exists, the next load is turned down, and `refuse` removed.
    let bin = fixture.path().join("wrapper");
    fs::create_dir_all(&bin).unwrap();
    let docker = bin.join("docker");
    let real = dockerd
        .docker(&[])
        .get_program()
        .to_string_lossy()
        .into_owned();
    let script = r#"#!/bin/sh
if [ "$1" = load ]; then
    n=$(ls DIR | grep -c '^load-')
    tee DIR/load-$n.tar > /dev/null
    if [ -e DIR/refuse ]; then rm DIR/refuse; echo refused >&2; exit 1; fi
    exec REAL load < DIR/load-$n.tar
fi
exec REAL "$@"
"#;
    let script = script.replace("DIR", &bin.display().to_string());
    fs::write(&docker, script.replace("REAL", &real)).unwrap();
    fs::set_permissions(&docker, fs::Permissions::from_mode(0o755)).unwrap();
    let base = fixture.path().join("base");
    crate::support::copy_dir(&parents.layout, &base);
    let manifest = fixture.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    let table = "[package.metadata.oci]\n";
    let with_base = format!("{table}base = \"oci:{}:latest\"\n", base.display());
    fs::write(&manifest, text.replace(table, &with_base)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let env = [("DOCKER_HOST", dockerd.host()), ("PATH", path)];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let main = fixture.path().join("src/main.rs");
    let load = |from: &str, to: &str| {
        let code = fs::read_to_string(&main).unwrap();
        fs::write(&main, code.replace(from, to)).unwrap();
        let output = fixture.build_with_env(&["--load=docker"], &env);
        crate::support::assert_success(&output, "cargo oci build --load=docker");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    // What a load was sent: its layers' files, and the layers manifest.json lists.
    let sent = |n: usize| {
        let tar = fs::read(bin.join(format!("load-{n}.tar"))).unwrap();
        let files: Vec<String> = list_tar(tar.as_slice())
            .into_iter()
            .map(|e| e.path)
            .collect();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = archive.entries().unwrap().map(Result::unwrap);
        let entry = entries.find(|e| e.path().unwrap() == Path::new("manifest.json"));
        let listed: serde_json::Value = serde_json::from_reader(entry.unwrap()).unwrap();
        let layers: Vec<String> = listed[0]["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_owned())
            .collect();
        (files, layers)
    };

    load("args=", "args=");
    let (files, layers) = sent(0);
    assert!(
        layers.iter().all(|l| files.contains(l)),
        "first load: {files:?}"
    );
    let (_, config) = manifest_and_config(&fixture.layout());
    let top = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let top = format!(
        "blobs/sha256/{}",
        top.as_str().unwrap().trim_start_matches("sha256:")
    );
    assert_eq!(layers.last(), Some(&top), "the new layer goes uncompressed");

    let said = load("args=", "argv=");
    // Only the names: not docker's note that they moved from the image loaded before.
    assert!(
        said.contains("Loaded docker-thin:1.0, docker-thin:latest\n"),
        "{said}"
    );
    let (files, layers) = sent(1);
    // The base's layer and the static files' did not change: docker has them.
    let (new, held) = layers.split_last().unwrap();
    assert!(
        !held.iter().any(|l| files.contains(l)),
        "{files:?} {layers:?}"
    );
    assert!(files.contains(new), "{files:?}");
    let output = run(&mut dockerd.docker(&["run", "--rm", "--network", "none", "docker-thin:1.0"]));
    assert!(output.starts_with("argv=["), "{output}");

    fs::write(bin.join("refuse"), "").unwrap();
    load("argv=", "arguments=");
    let (files, layers) = (sent(2), sent(3));
    assert!(
        !files.0.contains(&files.1[0]),
        "the short stream first: {:?}",
        files.0
    );
    assert!(
        layers.1.iter().all(|l| layers.0.contains(l)),
        "then all of it: {:?}",
        layers.0
    );
    let output = run(&mut dockerd.docker(&["run", "--rm", "--network", "none", "docker-thin:1.0"]));
    assert!(output.starts_with("arguments=["), "{output}");
    let (manifest, _) = manifest_and_config(&fixture.layout());
    let id =
        run(&mut dockerd.docker(&["image", "inspect", "--format", "{{.Id}}", "docker-thin:1.0"]));
    assert_eq!(id.trim(), manifest["config"]["digest"].as_str().unwrap());
}

/// An engine holds one platform's image: `--load` of several is refused before anything is
/// built, naming them.
#[test]
fn a_load_of_several_platforms_is_refused_before_building() {
    let fixture = tagged_fixture("several");
    let args = [
        "--load=podman",
        "--target",
        "x86_64-unknown-linux-gnu",
        "--target",
        "aarch64-unknown-linux-gnu",
    ];
    let output = fixture.build(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(
            "`--load=podman` loads one platform's image, and `hello` is built for 2 \
             (linux/amd64, linux/arm64): choose one with `--target`"
        ),
        "{stderr}"
    );
    assert!(
        !fixture.path().join("target").exists(),
        "built before refusing"
    );
}

fn podman_conf(podman: &Podman) -> String {
    podman.conf_path().display().to_string()
}

#[test]
fn docker_loads_runs_and_inspects_both_archives_and_a_streamed_load() {
    let Some(dockerd) = Dockerd::start() else {
        return;
    };
    let fixture = tagged_fixture("docker-archive");
    fixture.build_ok(&["--quiet", "--format", "oci-archive", "--format", "docker"]);
    let (oci, docker) = archives(&fixture);
    for archive in [&docker, &oci] {
        let loaded = run(&mut dockerd.docker(&["load", "-i", &archive.display().to_string()]));
        assert_eq!(
            loaded,
            "Loaded image: docker-archive:1.0\nLoaded image: docker-archive:latest\n",
            "{}",
            archive.display()
        );
        let images = run(&mut dockerd.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
        assert!(
            images.contains("docker-archive:1.0\n") && images.contains("docker-archive:latest\n"),
            "{images}"
        );
        let output = run(&mut dockerd.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "docker-archive:1.0",
            "x",
        ]));
        assert_eq!(
            output,
            "args=[\"x\"]\ngreeting=hi there\ncwd=/srv\nuid=65532\n\
             asset=body { color: rebeccapurple; }\n"
        );
        let health = run(&mut dockerd.docker(&[
            "inspect",
            "--format",
            "{{json .Config.Healthcheck}}",
            "docker-archive:1.0",
        ]));
        assert_eq!(
            health.trim(),
            concat!(
                r#"{"Test":["CMD","/usr/local/bin/hello","--check"],"Interval":90000000000,"#,
                r#""Timeout":5000000000,"StartPeriod":2000000000,"Retries":3}"#
            )
        );
        run(&mut dockerd.docker(&["rmi", "docker-archive:1.0", "docker-archive:latest"]));
    }

    let streamed = tagged_fixture("docker-load");
    let output = streamed.build_with_env(&["--load"], &[("DOCKER_HOST", &dockerd.host())]);
    crate::support::assert_success(&output, "cargo oci build --load");
    let images = run(&mut dockerd.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(images.contains("docker-load:1.0\n"), "{images}");
    assert_only_the_layout_was_written(&streamed);

    // A loader that fails: its own message, and no output moved into place.
    let broken = tagged_fixture("docker-broken");
    let output = broken.build_with_env(
        &["--load=docker"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("`docker load` failed") && stderr.contains("/nonexistent/docker.sock"),
        "{stderr}"
    );
    assert!(!broken.layout().exists());
}

#[test]
fn a_docker_archive_we_wrote_is_a_base_for_the_next_build() {
    let first = tagged_fixture("roundtrip");
    first.build_ok(&["--quiet", "--format", "docker"]);
    let (_, docker) = archives(&first);
    let second = Fixture::copy("hello");
    second.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"docker-archive:{}:roundtrip:1.0\"\nbins = []\n\
         [package.metadata.oci.config]\nuser = \"7\"\n",
        docker.display()
    ));
    second.build_ok(&["--quiet"]);
    let (manifest, config) = manifest_and_config(&second.layout());
    let first_manifest = docker_manifest(&docker);
    let reused = blob_paths(&manifest);
    assert_eq!(
        first_manifest[0]["Layers"],
        serde_json::json!(reused),
        "the same gzip blobs, not recompressed"
    );
    assert_eq!(config["config"]["User"], "7");
    assert_eq!(
        config["config"]["Env"],
        serde_json::json!(["GREETING=hi there", "RUST_LOG=info"]),
        "inherited"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.name"],
        "roundtrip:1.0"
    );
}

#[test]
fn a_directory_in_the_way_of_an_archive_is_refused_before_anything_moves() {
    let fixture = tagged_fixture("in-the-way");
    let (_, docker) = archives(&fixture);
    fs::create_dir_all(docker.join("keep")).unwrap();
    let output = fixture.build(&["--quiet", "--format", "oci", "--format", "docker"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("is a directory; refusing to overwrite it"),
        "{stderr}"
    );
    assert!(docker.join("keep").is_dir());
    assert!(
        !fixture.layout().exists(),
        "the layout is not moved into place either"
    );
}
