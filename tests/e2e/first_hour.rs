//! The first hour with a real crate: a proc-macro and a build script under static linking, a
//! distribution base with device nodes, tags from the command line and from git, errors that
//! name their cause and the fix, one JSON shape, what was made and how to run it, and
//! `cargo oci run` with podman and with docker.

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use oci_pack::testing::Raw;

use crate::support::{assert_success, read_json, tool, Dockerd, Fixture, Podman, Registry};

fn index_tags(fixture: &Fixture) -> Vec<String> {
    read_json(&fixture.layout().join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        // Entries with no name are artifacts about the image (its SBOM).
        .filter_map(|m| m["annotations"]["io.containerd.image.name"].as_str())
        .map(str::to_owned)
        .collect()
}

/// `[build] rustflags = ["-C", "target-feature=+crt-static"]`, the static linking the first-image
/// guide asks of a `scratch` image, on a crate with a proc-macro and a build script: they are
/// built for the host, and the binary static.
#[test]
fn a_crate_with_a_proc_macro_and_a_build_script_links_statically() {
    let fixture = Fixture::copy("macros");
    let output = fixture.build(&[]);
    assert_success(&output, "a build of a crate with a proc-macro");
    // On `scratch`, the ELF check has passed: the binary needs no loader and no C library.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Packing macros-app (linux/"), "{stderr}");
    assert!(fixture
        .path()
        .join("target/oci/macros-app/index.json")
        .is_file());
}

/// `rustflags` in the metadata links the image's binary statically while the crate's own
/// `cargo build` (proc-macros built for the host with it) stays as it was: a
/// `.cargo/config.toml` flag would break it.
#[test]
fn metadata_rustflags_reach_the_image_binary_and_nothing_else() {
    let fixture = Fixture::copy("macros");
    fs::write(fixture.path().join(".cargo/config.toml"), "").unwrap();
    // Dynamic without the flag: the ELF check on `scratch` refuses it.
    let output = fixture.build(&[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs `libc.so.6`"), "{stderr}");
    fixture.set_metadata(
        "[package.metadata.oci]\nrustflags = [\"-C\", \"target-feature=+crt-static\"]\n",
    );
    assert_success(&fixture.build(&[]), "a build with metadata rustflags");
    let binary = fixture
        .path()
        .join("target")
        .join(crate::support::host::HOST.triple)
        .join("release/macros-app");
    let said = |binary: &std::path::Path| {
        String::from_utf8(Command::new(binary).output().unwrap().stdout).unwrap()
    };
    assert_eq!(said(&binary), "HELLO build.rs \n");

    // The user's own flags are kept beside ours: cargo takes rustflags from one source only,
    // and `[build] rustflags` would be dropped for `--config target.….rustflags` alone.
    fs::write(
        fixture.path().join(".cargo/config.toml"),
        "[build]\nrustflags = [\"--cfg\", \"from_config\"]\n",
    )
    .unwrap();
    assert_success(
        &fixture.build(&["--quiet"]),
        "with the user's build rustflags",
    );
    assert_eq!(said(&binary), "HELLO build.rs from-config\n");
    // And RUSTFLAGS, which overrides every configuration file, does not drop ours either:
    // the binary is still static, so the ELF check on `scratch` passes.
    let output = fixture.build_with_env(&["--quiet"], &[("RUSTFLAGS", "--cfg from_env")]);
    assert_success(&output, "with RUSTFLAGS set");
    assert_eq!(said(&binary), "HELLO build.rs from-env\n");
    // The same flags given on the command line, as cargo's `--config`, are kept too.
    fs::write(fixture.path().join(".cargo/config.toml"), "").unwrap();
    let setting = "build.rustflags=[\"--cfg\", \"from_config\"]";
    assert_success(
        &fixture.build(&["--quiet", "--config", setting]),
        "with the user's build rustflags in --config",
    );
    assert_eq!(said(&binary), "HELLO build.rs from-config\n");

    let plain = crate::support::hermetic(&mut Command::new("cargo"))
        .args(["build", "--quiet"])
        .current_dir(fixture.path())
        .output()
        .unwrap();
    assert_success(&plain, "the crate's own cargo build");
}

/// A debootstrap root filesystem has `/dev/console` and friends: a base, not a threat.
#[test]
fn a_base_with_device_nodes_is_built_on_and_runs() {
    let fixture = Fixture::copy("hello");
    let layer = crate::hostile::gzip(&[
        Raw::Dir("dev/", 0o755),
        Raw::Device("dev/console"),
        Raw::Device("dev/null"),
        Raw::Dir("tmp/", 0o1777),
    ]);
    crate::hostile::craft(&fixture.path().join("debian"), &[layer], None, |_| {});
    fixture.set_metadata(
        "[package.metadata.oci]\nbase = \"oci:debian:latest\"\n\
         files = [{ src = \"static\", dest = \"/srv/static\" }]\n",
    );
    fixture.build_ok(&["--quiet"]);
    let Some(podman) = Podman::new() else {
        return;
    };
    let image = podman.pull(&fixture.layout(), "0.1.0");
    assert!(image.run(&["ran"]).starts_with("args=[\"ran\"]\n"));
}

#[test]
fn tags_come_from_the_command_line_and_from_git() {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet", "--tag", "hello:dev", "--tag", "team/hello:edge"]);
    assert_eq!(index_tags(&fixture), ["hello:dev", "team/hello:edge"]);
    // A layout of other names is not replaced (it could be anyone's): start afresh.
    fs::remove_dir_all(fixture.layout()).unwrap();

    let outside = fixture.build(&["--quiet", "--tag", "hello:{git_short_sha}"]);
    let stderr = String::from_utf8_lossy(&outside.stderr);
    assert!(!outside.status.success());
    assert!(
        stderr.contains(
            "invalid `--tag hello:{git_short_sha}`: `{git_short_sha}` needs a git \
                         checkout"
        ) && stderr.contains("is not in a git checkout"),
        "{stderr}"
    );

    if !tool("git") {
        return;
    }
    let git = |args: &[&str]| {
        crate::support::run(
            Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .current_dir(fixture.path()),
        )
    };
    git(&["init", "--quiet"]);
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "first"]);
    let sha = git(&["rev-parse", "HEAD"]).trim().to_owned();
    let untagged = fixture.build(&["--quiet", "--tag", "hello:{git_tag}"]);
    assert!(String::from_utf8_lossy(&untagged.stderr).contains("has no git tag"));
    git(&["tag", "v1.2.3"]);
    fixture.build_ok(&[
        "--quiet",
        "--tag",
        "hello:{git_short_sha}",
        "--tag",
        "hello:{git_tag}",
        "--tag",
        "hello:{git_sha}",
    ]);
    assert_eq!(
        index_tags(&fixture),
        [
            format!("hello:{}", &sha[..7]),
            "hello:v1.2.3".to_owned(),
            format!("hello:{sha}"),
        ]
    );
}

/// A closed port is a connection refused, said as such; a name typed wrong is shown as typed.
#[test]
fn a_push_to_a_closed_port_says_the_connection_was_refused() {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let output = crate::support::cargo_oci()
        .args(["push", &format!("{closed}/app")])
        .env("CARGO_NET_RETRY", "0")
        .current_dir(fixture.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("failed to connect to registry `{closed}`"))
            && stderr.contains("Connection refused"),
        "{stderr}"
    );
    assert!(!stderr.contains("log in"), "{stderr}");

    let output = fixture.cargo_oci(&["push", "127.0.0.1:5555/Real"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "invalid image reference `127.0.0.1:5555/Real`: a repository name is \
                         lower-case"
        ),
        "{stderr}"
    );
}

/// `cargo oci push` and `cargo oci build --push` say the same of the same image.
#[test]
fn a_push_is_reported_in_one_shape_whatever_pushed_it() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let fixture = Fixture::copy("hello");
    let repository = format!("{}/shape", registry.host);
    let json = |stdout: &str| -> serde_json::Value {
        let line = stdout
            .lines()
            .find(|l| l.contains("\"format\":\"push\""))
            .expect("a push line");
        serde_json::from_str(line).unwrap()
    };
    let built =
        json(&fixture.build_ok(&["--quiet", "--push", &repository, "--message-format", "json"]));
    let output = fixture.cargo_oci(&["push", &repository, "--message-format", "json"]);
    assert_success(&output, "cargo oci push");
    let pushed = json(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(pushed, built);
    assert_eq!(built["reason"], "image-pushed");
    assert!(built["config"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(
        built["tags"],
        serde_json::json!(["hello:0.1.0", "hello:latest"])
    );
}

/// `--load` with no docker daemon points at podman when podman is there.
#[test]
fn a_load_without_a_docker_daemon_suggests_podman() {
    if !tool("docker") || !tool("podman") {
        return;
    }
    let fixture = Fixture::copy("hello");
    let output = fixture.build_with_env(
        &["--quiet", "--load"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("`docker load` failed") && stderr.contains("`--load=podman`"),
        "{stderr}"
    );
}

/// The last lines say what was made and how to run it, with the image's own name.
#[test]
fn a_build_says_its_size_and_how_to_run_it() {
    let fixture = Fixture::copy("hello");
    let output = fixture.build(&["--format", "docker"]);
    assert_success(&output, "a build");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let finished = stderr
        .lines()
        .find(|l| l.contains("Finished hello:"))
        .unwrap();
    assert!(finished.contains("(2 layers, 0."), "{finished}");
    assert!(finished.contains(" MiB compressed) in "), "{finished}");
    let run = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("Run "))
        .unwrap();
    let archive = fixture.path().join("target/oci/hello.docker.tar");
    assert!(
        run.contains(&format!("load -i {}", archive.display()))
            && run.contains("run --rm -p 53:53/udp -p 8080:8080/tcp hello:0.1.0"),
        "{run}"
    );
}

/// `cargo oci run` with `engine`: arguments after `--`, the exit code passed through, and a
/// signal to it stopping the container (which, in the fixture, exits with 128 + the signal).
fn run_with(engine: &str, env: &[(&str, &str)]) {
    let fixture = Fixture::copy("hello");
    let cargo_oci_run = |args: &[&str]| {
        let mut command = crate::support::cargo_oci();
        command
            .args(["run", "--quiet", "--engine", engine, "--"])
            .args(args)
            .current_dir(fixture.path())
            .envs(env.iter().copied());
        command
    };
    let output = cargo_oci_run(&["one", "two"]).output().unwrap();
    assert_success(&output, &format!("cargo oci run --engine {engine}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("args=[\"one\", \"two\"]\n"), "{stdout}");

    let output = cargo_oci_run(&["--exit", "7"]).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(7),
        "{engine}: the container's exit code"
    );

    let mut child = cargo_oci_run(&["--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "waiting\n", "{engine}");
    crate::support::run(Command::new("kill").args(["-INT", &child.id().to_string()]));
    let mut waited = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        waited += 1;
        assert!(
            waited < 300,
            "{engine}: the container did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(130), "{engine}: stopped by SIGINT");
}

#[test]
fn cargo_oci_run_runs_the_image_with_podman() {
    let Some(podman) = Podman::new() else {
        return;
    };
    let _cleanup = crate::support::Loaded::forget_later(
        &podman,
        &["localhost/hello:0.1.0", "localhost/hello:latest"],
    );
    let conf = podman.conf_path().display().to_string();
    run_with("podman", &[("CONTAINERS_CONF", &conf)]);
}

#[test]
fn cargo_oci_run_runs_the_image_with_docker() {
    let Some(dockerd) = Dockerd::start() else {
        return;
    };
    run_with("docker", &[("DOCKER_HOST", &dockerd.host())]);
}

/// A base may expose a range (`1-65535/tcp`): `cargo oci run` publishes its single ports and
/// says it skips the range, rather than asking the engine to publish every port. The engine
/// here is a stand-in that records how it is run.
#[test]
fn cargo_oci_run_publishes_single_ports_and_skips_a_bases_range() {
    use sha2::Digest as _;
    let fixture = Fixture::copy("hello");
    let base = fixture.path().join("base");
    fs::create_dir_all(base.join("blobs/sha256")).unwrap();
    let put = |value: serde_json::Value| {
        let bytes = serde_json::to_vec(&value).unwrap();
        let hex = format!("{:x}", sha2::Sha256::digest(&bytes));
        fs::write(base.join("blobs/sha256").join(&hex), &bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let (config, config_size) = put(serde_json::json!({
        "architecture": crate::support::host::HOST.go, "os": "linux",
        "config": {"ExposedPorts": {"1-65535/tcp": {}, "8080/tcp": {}}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }));
    let (manifest, manifest_size) = put(serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config, "size": config_size,
        },
        "layers": [],
    }));
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest, "size": manifest_size,
    }]});
    fs::write(base.join("index.json"), index.to_string()).unwrap();
    fs::write(base.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fixture.set_metadata("[package.metadata.oci]\nbase = \"oci:base\"\n");

    let bin = fixture.path().join("engine");
    fs::create_dir_all(&bin).unwrap();
    let engine = bin.join("podman");
    fs::write(
        &engine,
        "#!/bin/sh\nif [ \"$1\" = load ]; then cat >/dev/null; \
         echo 'Loaded image: localhost/hello:0.1.0'; exit 0; fi\n\
         echo \"$@\" > \"$(dirname \"$0\")/run-args.txt\"\n",
    )
    .unwrap();
    fs::set_permissions(&engine, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let output = crate::support::cargo_oci()
        .args(["run", "--quiet", "--engine", "podman"])
        .current_dir(fixture.path())
        .env("PATH", path)
        .output()
        .unwrap();
    assert_success(&output, "cargo oci run with a stand-in engine");
    let args = fs::read_to_string(bin.join("run-args.txt")).unwrap();
    assert!(args.contains("--publish 127.0.0.1:8080:8080/tcp"), "{args}");
    assert!(!args.contains("1-65535"), "{args}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "the image exposes `1-65535/tcp`, which is not one port: it is not published"
        ),
        "{stderr}"
    );
}
