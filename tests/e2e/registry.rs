//! Pushing to a real registry (distribution, started on loopback by the test): by digest, tags
//! last, what is there skipped, Basic auth from a Docker `config.json`, and clear errors.

use std::fs;

use crate::support::host::{FOREIGN, HOST};
use crate::support::{read_json, tool, Fixture, Registry};

fn index_digest(fixture: &Fixture) -> String {
    read_json(&fixture.layout().join("index.json"))["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The registry (read by skopeo) serves `name` with exactly the manifest `digest`.
fn assert_registry_serves(registry: &Registry, name: &str, digest: &str) {
    if tool("skopeo") {
        assert_eq!(sha256(&registry.raw_manifest(name)), digest, "{name}");
    }
}

/// A Docker config directory whose `config.json` holds `user:password` for `registry`.
fn docker_config(dir: &std::path::Path, registry: &str, user: &str, password: &str) -> String {
    use base64::Engine as _;
    fs::create_dir_all(dir).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    fs::write(
        dir.join("config.json"),
        serde_json::json!({"auths": {registry: {"auth": auth}}}).to_string(),
    )
    .unwrap();
    dir.display().to_string()
}

fn sha256(bytes: &[u8]) -> String {
    oci_pack::Digest::of(bytes).to_string()
}

/// `size` bytes that gzip cannot shrink.
fn noise(size: usize) -> Vec<u8> {
    let mut noise = Vec::with_capacity(size);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while noise.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    noise
}

#[test]
fn a_push_is_by_digest_with_every_tag_and_skips_what_is_there() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    if !tool("skopeo") {
        return;
    }
    let fixture = Fixture::copy("hello");
    let repository = format!("{}/team/hello", registry.host);
    let stdout = fixture.build_ok(&["--push", &repository]);
    let digest = index_digest(&fixture);
    assert!(
        stdout.ends_with(&format!("push {digest} {repository}@{digest}\n")),
        "{stdout}"
    );
    for tag in ["0.1.0", "latest"] {
        assert_eq!(
            sha256(&registry.raw_manifest(&format!("team/hello:{tag}"))),
            digest,
            "{tag}"
        );
    }
    assert_eq!(
        sha256(&registry.raw_manifest(&format!("team/hello@{digest}"))),
        digest
    );

    let again = fixture.build(&["--push", &repository]);
    crate::support::assert_success(&again, "a second push");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("(0 blobs sent, 3 already there, 0 mounted)"),
        "{stderr}"
    );
}

#[test]
fn basic_auth_comes_from_docker_config_and_a_wrong_password_is_a_clear_error() {
    let Some(registry) = Registry::start(Some(("ferris", "s3cret-pass"))) else {
        return;
    };
    let fixture = Fixture::copy("hello");
    let repository = format!("{}/hello", registry.host);
    let docker_dir = fixture.path().join("docker-config");
    let write_config =
        |password: &str| docker_config(&docker_dir, &registry.host, "ferris", password);
    let config_dir = docker_dir.display().to_string();

    write_config("s3cret-pass");
    let output = fixture.build_with_env(
        &["--quiet", "--push", &repository],
        &[("DOCKER_CONFIG", &config_dir)],
    );
    crate::support::assert_success(&output, "a push with credentials from config.json");
    assert_registry_serves(&registry, "hello:0.1.0", &index_digest(&fixture));

    write_config("wrong-pass");
    let output = fixture.build_with_env(
        &["--quiet", "--push", &repository],
        &[("DOCKER_CONFIG", &config_dir)],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "registry `{}`\n\nCaused by:\n  authentication failed: check the credentials for \
             this registry (401",
            registry.host
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong-pass") && !stderr.contains("s3cret"),
        "no secret is printed: {stderr}"
    );

    let anonymous = fixture.build_with_env(
        &["--quiet", "--push", &repository],
        &[("DOCKER_CONFIG", "/nonexistent")],
    );
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("authentication failed"));
}

#[test]
fn an_unreachable_registry_is_an_error_and_the_same_push_works_once_it_is_back() {
    let Some(mut registry) = Registry::start(None) else {
        return;
    };
    let fixture = Fixture::copy("hello");
    let repository = format!("{}/hello", registry.host);
    registry.stop();
    let output = fixture.build(&["--quiet", "--push", &repository]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("registry `{}`", registry.host)),
        "{stderr}"
    );
    assert!(
        !fixture.layout().exists(),
        "a failed push moves no output into place"
    );

    registry.resume();
    fixture.build_ok(&["--quiet", "--push", &repository]);
}

#[test]
fn a_push_needs_a_registry_host() {
    let fixture = Fixture::copy("hello");
    let output = fixture.build(&["--quiet", "--push", "team/hello"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "invalid image reference `team/hello`: the first part must be a registry host"
        ),
        "{stderr}"
    );
    assert!(
        !fixture.path().join("target").exists(),
        "refused before building"
    );
}

#[test]
fn a_base_from_a_registry_is_cached_and_an_offline_build_needs_nothing_more() {
    let Some(mut registry) = Registry::start(None) else {
        return;
    };
    let Some(parents) = crate::support::parents::parents() else {
        return;
    };
    registry.put(&parents.layout, "busybox:1.36");
    let registry_digest = sha256(&registry.raw_manifest("busybox:1.36"));
    let fixture = Fixture::copy("hello");
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"{}/busybox:1.36\"\n",
        registry.host
    ));
    fixture.build_ok(&["--quiet"]);
    let (manifest, _) = crate::support::manifest_and_config(&fixture.layout());
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.digest"],
        registry_digest
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.name"],
        format!("{}/busybox:1.36", registry.host)
    );
    let parent_index = read_json(&parents.layout.join("index.json"));
    let parent_manifest = crate::support::blob(
        &parents.layout,
        parent_index["manifests"][0]["digest"].as_str().unwrap(),
    );
    assert_eq!(
        &manifest["layers"].as_array().unwrap()[..2],
        parent_manifest["layers"].as_array().unwrap().as_slice()
    );
    let first = index_digest(&fixture);

    // Pushed to another repository of the same registry, the base's layers are mounted, not sent.
    let output = fixture.build(&["--push", &format!("{}/team/app", registry.host)]);
    crate::support::assert_success(&output, "a push next to the base");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("(2 blobs sent, 0 already there, 2 mounted)"),
        "{stderr}"
    );

    // With the registry gone, --offline builds from the cache alone, to the same bytes...
    registry.stop();
    fixture.build_ok(&["--quiet", "--offline"]);
    assert_eq!(index_digest(&fixture), first);
    // ...and without it, the unreachable registry is named.
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "failed to connect to registry `{}`",
            registry.host
        )),
        "{stderr}"
    );
}

#[test]
fn cargo_oci_push_sends_a_layout_built_earlier() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    let blobs = || {
        let mut names: Vec<_> = fs::read_dir(fixture.layout().join("blobs/sha256"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = blobs();
    let repository = format!("{}/pushed", registry.host);
    // A push that cannot make the temporary directory its referrers listing needs fails
    // before it sends anything.
    let failed = crate::support::cargo_oci()
        .args(["push", &repository])
        .current_dir(fixture.path())
        .env("TMPDIR", fixture.path().join("missing"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{stderr}");
    assert!(
        stderr.contains("failed to create a temporary directory"),
        "{stderr}"
    );
    let output = fixture.cargo_oci(&["push", &repository]);
    crate::support::assert_success(&output, "cargo oci push");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(", 0 already there,"), "{stderr}");
    let digest = index_digest(&fixture);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("push {digest} {repository}@{digest}\n")
    );
    assert_registry_serves(&registry, "pushed:latest", &digest);
    // The SBOM's referrers listing (this registry has no referrers API) is the session's own,
    // written nowhere in the layout, which a push only reads.
    assert_eq!(blobs(), before, "the layout pushed was written to");
}

/// The distributed build: each architecture pushed by digest on its own, then one index.
#[test]
fn per_architecture_pushes_are_assembled_into_one_tag() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    if !tool(FOREIGN.gcc) || !tool("skopeo") {
        return;
    }
    let repository = format!("{}/multi", registry.host);
    let pushed_digest = |stdout: &str| -> String {
        let line = stdout
            .lines()
            .find(|l| l.contains("\"format\":\"push\""))
            .expect("a push line");
        let message: serde_json::Value = serde_json::from_str(line).unwrap();
        message["digest"].as_str().unwrap().to_owned()
    };
    let host = Fixture::copy("hello");
    let host_digest = pushed_digest(&host.build_ok(&[
        "--quiet",
        "--push",
        &repository,
        "--message-format",
        "json",
    ]));

    let foreign = Fixture::copy("hello");
    crate::targets::foreign_program(
        &foreign
            .path()
            .join("target")
            .join(FOREIGN.triple)
            .join("release/hello"),
    );
    let args = [
        "--quiet",
        "--no-build",
        "--target",
        FOREIGN.triple,
        "--push",
        &repository,
        "--message-format",
        "json",
    ];
    let foreign_digest = pushed_digest(&foreign.build_ok(&args));

    let output = host.cargo_oci(&[
        "index",
        "--tag",
        &format!("{repository}:1.0"),
        &format!("{repository}@{host_digest}"),
        &format!("{repository}@{foreign_digest}"),
    ]);
    crate::support::assert_success(&output, "cargo oci index");
    let raw = registry.raw_manifest("multi:1.0");
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let entries: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap().to_owned(),
                m["platform"]["architecture"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (host_digest, HOST.go.to_owned()),
            (foreign_digest, FOREIGN.go.to_owned())
        ]
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout, format!("push {0} {repository}@{0}\n", sha256(&raw)));
}

/// Each place Docker and podman keep credentials, against a registry that requires them.
#[test]
fn credentials_come_from_the_environment_a_helper_or_podman() {
    let Some(registry) = Registry::start(Some(("ferris", "s3cret-pass"))) else {
        return;
    };
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    let repository = format!("{}/creds", registry.host);
    let push = |env: &[(&str, &str)]| {
        crate::support::cargo_oci()
            .args(["push", &repository])
            .current_dir(fixture.path())
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };

    let env = push(&[
        ("CARGO_OCI_REGISTRY_USERNAME", "ferris"),
        ("CARGO_OCI_REGISTRY_PASSWORD", "s3cret-pass"),
    ]);
    crate::support::assert_success(&env, "a push with credentials from the environment");

    // A credential helper, as `credHelpers` names it: `docker-credential-NAME get`.
    let helpers = fixture.path().join("helpers");
    fs::create_dir_all(&helpers).unwrap();
    let helper = helpers.join("docker-credential-fake");
    fs::write(
        &helper,
        "#!/bin/sh\nread registry\n\
         echo \"{\\\"Username\\\":\\\"ferris\\\",\\\"Secret\\\":\\\"s3cret-pass\\\"}\"\n",
    )
    .unwrap();
    fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let helper_config = fixture.path().join("helper-config");
    fs::create_dir_all(&helper_config).unwrap();
    fs::write(
        helper_config.join("config.json"),
        serde_json::json!({"credHelpers": {registry.host.clone(): "fake"}}).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        helpers.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let helped = push(&[
        ("DOCKER_CONFIG", helper_config.to_str().unwrap()),
        ("PATH", &path),
    ]);
    crate::support::assert_success(&helped, "a push with credentials from a credential helper");

    // podman's auth.json.
    // The same JSON format as Docker's `auths`, under the name podman gives it.
    let podman_dir = fixture.path().join("podman-auth");
    docker_config(&podman_dir, &registry.host, "ferris", "s3cret-pass");
    let auth_file = podman_dir.join("config.json");
    let podman = push(&[("REGISTRY_AUTH_FILE", auth_file.to_str().unwrap())]);
    crate::support::assert_success(&podman, "a push with credentials from podman's auth.json");

    let none = push(&[]);
    assert!(String::from_utf8_lossy(&none.stderr).contains("authentication failed"));
}

/// The registry goes away while a large layer is being uploaded: a clear error, no tag left on
/// an incomplete image, and the same push succeeds once the registry is back.
#[test]
fn a_registry_lost_in_the_middle_of_a_push_leaves_no_tag_and_the_push_can_be_redone() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let fixture = Fixture::copy("hello");
    // So the upload is long enough to be cut in its middle.
    fs::write(fixture.path().join("static/noise.bin"), noise(8 << 20)).unwrap();
    fixture.build_ok(&["--quiet"]);

    let proxy = crate::support::CuttingProxy::start(&registry.host, 2 << 20);
    let repository = format!("{}/big", proxy.host);
    let cut = fixture.cargo_oci(&["push", &repository]);
    let stderr = String::from_utf8_lossy(&cut.stderr);
    assert!(
        !cut.status.success(),
        "the push went through a cut connection"
    );
    assert!(
        stderr.contains(&format!("registry `{}`", proxy.host)),
        "{stderr}"
    );
    if tool("skopeo") {
        let tag = std::process::Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/big:0.1.0", registry.host))
            .output()
            .unwrap();
        assert!(
            !tag.status.success(),
            "no tag may point at the half-pushed image"
        );
    }

    proxy.resume();
    let redone = fixture.cargo_oci(&["push", &repository]);
    crate::support::assert_success(&redone, "the same push, with the registry back");
    assert_registry_serves(&registry, "big:0.1.0", &index_digest(&fixture));
}

/// A connection reset that passes: the upload is retried after a pause, and one push succeeds.
#[test]
fn a_transient_failure_is_retried() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    // Cut while the binary layer is on its way, for less time than the first retry waits.
    let proxy = crate::support::CuttingProxy::start_transient(
        &registry.host,
        64 << 10,
        std::time::Duration::from_millis(200),
    );
    let output = fixture.cargo_oci(&["push", &format!("{}/retried", proxy.host)]);
    crate::support::assert_success(&output, "a push through a connection reset");
    assert_registry_serves(&registry, "retried:0.1.0", &index_digest(&fixture));
}

/// The Bearer flow: the registry's challenge names a token server, which takes the Basic
/// credentials from config.json and answers with a token scoped to the repository.
#[test]
fn a_bearer_token_is_fetched_with_the_credentials_the_challenge_asks_for() {
    if !tool("openssl") {
        return;
    }
    let fixture = Fixture::copy("hello");
    let tokens =
        crate::support::TokenServer::start(fixture.path(), "bearer", "ferris", "s3cret-pass");
    let Some(registry) = Registry::start_with_tokens(&tokens, ("ferris", "s3cret-pass")) else {
        return;
    };
    fixture.build_ok(&["--quiet"]);
    let docker_dir = fixture.path().join("docker-config");
    let write_config =
        |password: &str| docker_config(&docker_dir, &registry.host, "ferris", password);
    let push = || {
        crate::support::cargo_oci()
            .args(["push", &format!("{}/bearer", registry.host)])
            .current_dir(fixture.path())
            .env("DOCKER_CONFIG", &docker_dir)
            .output()
            .unwrap()
    };
    write_config("s3cret-pass");
    crate::support::assert_success(&push(), "a push with a Bearer token");

    write_config("wrong-pass");
    let refused = push();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("authentication failed"), "{stderr}");
    assert!(!stderr.contains("wrong-pass"), "{stderr}");
}

/// A pull in a log (stderr not a terminal) is a status line, no bar; `--quiet` drops it too.
#[test]
fn a_pull_shows_status_lines_and_no_bar_when_stderr_is_not_a_terminal() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let Some(parents) = crate::support::parents::parents() else {
        return;
    };
    registry.put(&parents.layout, "busybox:1.36");
    let fixture = Fixture::copy("hello");
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"{}/busybox:1.36\"\n",
        registry.host
    ));
    let output = fixture.build(&[]);
    crate::support::assert_success(&output, "a build on a registry base");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("Pulling {}/busybox (", registry.host)),
        "{stderr}"
    );
    assert!(!stderr.contains('\r') && !stderr.contains("[="), "{stderr}");

    let _ = fs::remove_dir_all(fixture.path().join("target/oci"));
    let quiet = fixture.build(&["--quiet"]);
    crate::support::assert_success(&quiet, "a quiet build on a registry base");
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
}

/// What each `cargo oci` run sent through `proxy`: the request lines since the last call.
struct Requests<'a> {
    proxy: &'a crate::support::registries::RecordingProxy,
    seen: usize,
}

impl Requests<'_> {
    fn since_last(&mut self) -> Vec<String> {
        let lines = self.proxy.request_lines();
        let new = lines[self.seen..].to_vec();
        self.seen = lines.len();
        new
    }
}

/// A base by tag already in the cache: its manifest is asked with `HEAD`, never fetched again
/// (Docker Hub counts every manifest `GET` as a pull).
#[test]
fn a_second_build_on_a_cached_tagged_base_fetches_no_manifest() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let Some(parents) = crate::support::parents::parents() else {
        return;
    };
    registry.put(&parents.layout, "busybox:1.36");
    let proxy = crate::support::registries::RecordingProxy::start(&registry.host);
    let mut requests = Requests {
        proxy: &proxy,
        seen: 0,
    };
    let fixture = Fixture::copy("hello");
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"{}/busybox:1.36\"\n",
        proxy.host
    ));
    fixture.build_ok(&["--quiet"]);
    let first = requests.since_last();
    assert!(
        first.contains(&"GET /v2/busybox/manifests/1.36".to_owned()),
        "{first:#?}"
    );

    fixture.build_ok(&["--quiet"]);
    let second = requests.since_last();
    assert!(
        second.contains(&"HEAD /v2/busybox/manifests/1.36".to_owned()),
        "{second:#?}"
    );
    assert!(
        !second
            .iter()
            .any(|line| line.starts_with("GET /v2/busybox/manifests/")),
        "a manifest was fetched again: {second:#?}"
    );
}

/// The release pipeline's case: two releases a day apart (`SOURCE_DATE_EPOCH` from the
/// commit) whose only change is the code. The files layer keeps its digest and is not sent
/// again: only the new binaries layer, the config, and the new SBOM and provenance are. Built
/// and pushed again unchanged (a pipeline run again), nothing is sent: `HEAD`s only.
#[test]
fn two_releases_a_day_apart_upload_only_what_the_code_changed() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let proxy = crate::support::registries::RecordingProxy::start(&registry.host);
    let mut requests = Requests {
        proxy: &proxy,
        seen: 0,
    };
    let fixture = Fixture::copy("hello");
    let repository = format!("{}/team/app", proxy.host);
    let release = |epoch: &str| {
        let output =
            fixture.build_with_env(&["--push", &repository], &[("SOURCE_DATE_EPOCH", epoch)]);
        crate::support::assert_success(&output, "a release");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    release("1700000000");
    let (first, _) = crate::support::manifest_and_config(&fixture.layout());
    requests.since_last();

    let main = fixture.path().join("src/main.rs");
    let code = fs::read_to_string(&main).unwrap();
    fs::write(
        &main,
        code.replace("\"waiting\"", "\"waiting for a signal\""),
    )
    .unwrap();
    let stderr = release("1700086400");
    let (second, _) = crate::support::manifest_and_config(&fixture.layout());
    let digest = |manifest: &serde_json::Value, path: &str| {
        manifest.pointer(path).unwrap().as_str().unwrap().to_owned()
    };
    let files = digest(&second, "/layers/0/digest");
    assert_eq!(files, digest(&first, "/layers/0/digest"), "the files layer");
    let binaries = digest(&second, "/layers/1/digest");
    assert_ne!(
        binaries,
        digest(&first, "/layers/1/digest"),
        "the binaries layer"
    );
    assert!(
        stderr.contains("(2 blobs sent, 1 already there, 0 mounted)"),
        "{stderr}"
    );
    // What was uploaded: each upload is closed by `PUT …?digest=`.
    let uploaded: Vec<String> = requests
        .since_last()
        .iter()
        .filter(|line| line.starts_with("PUT /v2/team/app/blobs/uploads/"))
        .filter_map(|line| line.split("digest=").nth(1))
        .map(|digest| digest.replace("%3A", ":"))
        .collect();
    let index = read_json(&fixture.layout().join("index.json"));
    let mut expected = vec![binaries, digest(&second, "/config/digest")];
    for artifact in index["manifests"].as_array().unwrap() {
        if artifact.get("artifactType").is_some() {
            let manifest =
                crate::support::blob(&fixture.layout(), artifact["digest"].as_str().unwrap());
            for layer in manifest["layers"].as_array().unwrap() {
                expected.push(layer["digest"].as_str().unwrap().to_owned());
            }
        }
    }
    let (mut uploaded, mut expected) = (uploaded, expected);
    uploaded.sort();
    expected.sort();
    assert_eq!(uploaded, expected, "the blobs sent");
    assert!(!uploaded.contains(&files));

    release("1700086400");
    let again = requests.since_last();
    assert!(
        again
            .iter()
            .all(|line| line.starts_with("HEAD ") || line.starts_with("GET /v2/")),
        "{again:#?}"
    );
    assert!(
        !again
            .iter()
            .any(|line| line.starts_with("GET /v2/team/app/manifests/")),
        "{again:#?}"
    );
}

/// A pull cut in the middle of a large layer goes on from where it stopped (`Range`), and the
/// layer is still checked against its digest: no more than the layer and the cut part come
/// through, where starting again would fetch the cut part twice.
#[test]
fn a_pull_cut_in_the_middle_of_a_layer_is_resumed_where_it_stopped() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let base = Fixture::copy("hello");
    fs::write(base.path().join("static/noise.bin"), noise(8 << 20)).unwrap();
    base.build_ok(&["--quiet", "--push", &format!("{}/big-base", registry.host)]);
    let (manifest, _) = crate::support::manifest_and_config(&base.layout());
    let pulled: u64 = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["size"].as_u64().unwrap())
        .sum();

    // Cut 4 MiB into the pull, for less time than the first retry waits.
    let proxy = crate::support::CuttingProxy::start_transient_download(
        &registry.host,
        4 << 20,
        std::time::Duration::from_millis(200),
    );
    let fixture = Fixture::copy("hello");
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"{}/big-base:0.1.0\"\n",
        proxy.host
    ));
    fixture.build_ok(&["--quiet"]);
    let (built, _) = crate::support::manifest_and_config(&fixture.layout());
    let layers = |manifest: &serde_json::Value| manifest["layers"].as_array().unwrap().clone();
    assert_eq!(layers(&built)[..2], layers(&manifest), "the base's layers");
    // The layers, the manifests, the config and headers: well under another 4 MiB.
    let forwarded = proxy.forwarded();
    assert!(
        forwarded < pulled + (1 << 20),
        "{forwarded} bytes came through for {pulled} bytes of layers"
    );
}

/// Blobs go to the registry three at a time, as a pull fetches them: a large layer does not
/// hold up the others. The manifests go once every blob is there.
#[test]
fn blobs_are_pushed_several_at_a_time() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let proxy = crate::support::registries::RecordingProxy::start(&registry.host);
    let fixture = Fixture::copy("hello");
    fs::write(fixture.path().join("static/noise.bin"), noise(8 << 20)).unwrap();
    fixture.build_ok(&["--quiet", "--push", &format!("{}/parallel", proxy.host)]);
    assert!(
        proxy.most_connections() >= 2,
        "{} connection(s) at most",
        proxy.most_connections()
    );
    let requests = proxy.request_lines();
    let first_manifest = requests
        .iter()
        .position(|line| line.starts_with("PUT /v2/parallel/manifests/"))
        .unwrap();
    let last_upload = requests
        .iter()
        .rposition(|line| line.starts_with("PUT /v2/parallel/blobs/uploads/"))
        .unwrap();
    let image_uploads = requests[..first_manifest]
        .iter()
        .filter(|line| line.starts_with("PUT /v2/parallel/blobs/uploads/"))
        .count();
    assert_eq!(image_uploads, 3, "{requests:#?}");
    assert!(
        last_upload > first_manifest,
        "the SBOM's blobs go after the image"
    );
    assert_registry_serves(&registry, "parallel:0.1.0", &index_digest(&fixture));
}
