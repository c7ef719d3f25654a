//! Mirrors as podman reads them (`registries.conf`, pointed at by `CONTAINERS_REGISTRIES_CONF`):
//! a base whose own host cannot be reached, built from its mirror on a real registry; mirrors
//! tried in order, a failing one left for the next, every one named when all fail;
//! `mirror-by-digest-only`; `blocked`; `insecure`; each mirror's own credentials.

use std::process::Output;

use crate::support::parents::parents;
use crate::support::registries::{MisbehavingRegistry, Misbehaviour, RegistrySetup};
use crate::support::{assert_success, Fixture, Registry};

/// A base that exists only behind mirrors: `.invalid` never resolves.
const BASE: &str = "registry.invalid/busybox:1.36";

/// A registry with `parents`' busybox as `busybox:1.36`, in the manifest `format` skopeo writes
/// (`oci` or `v2s2`, so two registries can serve the same tag with different digests).
fn registry_with_busybox(setup: RegistrySetup<'_>, format: &str) -> Option<Registry> {
    let parents = parents()?;
    let registry = Registry::start_with(setup)?;
    registry.put_as(&parents.layout, "busybox:1.36", Some(format));
    Some(registry)
}

fn digest_of(registry: &Registry) -> String {
    oci_pack::Digest::of(&registry.raw_manifest("busybox:1.36")).to_string()
}

/// `cargo oci ARGS` in `fixture` with `conf` as its `registries.conf`, no retries (an
/// unreachable mirror is given up at once), and `env`.
fn with_conf(fixture: &Fixture, conf: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let file = fixture.path().join("registries.conf");
    std::fs::write(&file, conf).unwrap();
    crate::support::cargo_oci()
        .args(args)
        .current_dir(fixture.path())
        .env("CONTAINERS_REGISTRIES_CONF", &file)
        .env("CARGO_NET_RETRY", "0")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// The digest `cargo oci inspect` reports for `image`, through `conf`.
fn inspected(fixture: &Fixture, conf: &str, image: &str, env: &[(&str, &str)]) -> String {
    let output = with_conf(
        fixture,
        conf,
        &["inspect", "--message-format", "json", image],
        env,
    );
    assert_success(&output, &format!("cargo oci inspect {image}"));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    report["digest"].as_str().unwrap().to_owned()
}

fn mirrors_of_invalid(mirrors: &[&str]) -> String {
    let mut conf = "[[registry]]\nlocation = \"registry.invalid\"\n".to_owned();
    for mirror in mirrors {
        conf.push_str(&format!("[[registry.mirror]]\nlocation = \"{mirror}\"\n"));
    }
    conf
}

#[test]
fn a_base_is_built_from_its_mirror_while_its_own_host_cannot_be_reached() {
    let Some(mirror) = registry_with_busybox(RegistrySetup::default(), "oci") else {
        return;
    };
    let fixture = Fixture::copy("hello");
    fixture.set_metadata(&format!("[package.metadata.oci]\nbase = \"{BASE}\"\n"));

    // Without the mirror, the base's own host is all there is, and it does not resolve.
    let output = with_conf(&fixture, "", &["build", "--quiet"], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("failed to connect to registry `registry.invalid`"),
        "{stderr}"
    );

    let conf = mirrors_of_invalid(&[&mirror.host]);
    let output = with_conf(&fixture, &conf, &["build", "-v"], &[]);
    assert_success(&output, "a build on a mirrored base");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("Pulling {}/busybox (", mirror.host)),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "Pulled registry.invalid/busybox from {}/busybox",
            mirror.host
        )),
        "-v names the mirror: {stderr}"
    );
    // The image is named after the base as written, and built on the mirror's bytes.
    let (manifest, _) = crate::support::manifest_and_config(&fixture.layout());
    let annotations = &manifest["annotations"];
    assert_eq!(annotations["org.opencontainers.image.base.name"], BASE);
    assert_eq!(
        annotations["org.opencontainers.image.base.digest"],
        digest_of(&mirror)
    );
    let parents = parents().unwrap();
    let parent_index = crate::support::read_json(&parents.layout.join("index.json"));
    let parent_manifest = crate::support::blob(
        &parents.layout,
        parent_index["manifests"][0]["digest"].as_str().unwrap(),
    );
    assert_eq!(
        &manifest["layers"].as_array().unwrap()[..2],
        parent_manifest["layers"].as_array().unwrap().as_slice()
    );
    crate::support::oci_image_tool_validates(&fixture.layout(), "0.1.0");
}

#[test]
fn mirrors_are_tried_in_order_and_a_failing_one_leaves_the_base_to_the_next() {
    let Some(oci) = registry_with_busybox(RegistrySetup::default(), "oci") else {
        return;
    };
    let Some(docker) = registry_with_busybox(RegistrySetup::default(), "v2s2") else {
        return;
    };
    let Some(empty) = Registry::start(None) else {
        return;
    };
    let (oci_digest, docker_digest) = (digest_of(&oci), digest_of(&docker));
    assert_ne!(oci_digest, docker_digest);
    let fixture = Fixture::copy("hello");
    let image = format!("docker://{BASE}");

    // The same tag, two digests: the first mirror listed is the one that serves.
    let first = mirrors_of_invalid(&[&oci.host, &docker.host]);
    assert_eq!(inspected(&fixture, &first, &image, &[]), oci_digest);
    let first = mirrors_of_invalid(&[&docker.host, &oci.host]);
    assert_eq!(inspected(&fixture, &first, &image, &[]), docker_digest);

    // No mirror: `location` alone moves the repository.
    let moved = format!(
        "[[registry]]\nprefix = \"registry.invalid\"\nlocation = \"{}\"\n",
        oci.host
    );
    assert_eq!(inspected(&fixture, &moved, &image, &[]), oci_digest);

    // Nothing listens on the first, the second has no such repository (404): the third serves.
    let closed = closed_port();
    let failing_first = mirrors_of_invalid(&[&closed, &empty.host, &docker.host]);
    assert_eq!(
        inspected(&fixture, &failing_first, &image, &[]),
        docker_digest
    );

    // When every place fails, each is named, in order, with its own error (a cause, indented
    // under `Caused by:`).
    let all_fail = mirrors_of_invalid(&[&closed, &empty.host]);
    let output = with_conf(&fixture, &all_fail, &["inspect", &image], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines = [
        format!("failed to pull `{BASE}` from any of the 3 places it may come from:"),
        format!("\n    {closed}/busybox: failed to connect to registry `{closed}`: "),
        format!(
            "\n    {}/busybox: failed to fetch a manifest from registry `{}`: it answered 404",
            empty.host, empty.host
        ),
        "\n    registry.invalid/busybox: failed to connect to registry `registry.invalid`: "
            .to_owned(),
    ];
    let mut rest = stderr.as_ref();
    for line in &lines {
        let at = rest.find(line.as_str());
        assert!(at.is_some(), "{line:?}, in this order, in: {stderr}");
        rest = &rest[at.unwrap() + line.len()..];
    }
}

/// A loopback address nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    address.to_string()
}

#[test]
fn a_digest_only_mirror_serves_digests_and_leaves_tags_to_the_location() {
    let Some(location) = registry_with_busybox(RegistrySetup::default(), "oci") else {
        return;
    };
    // The mirror serves the same tag with another digest, which the location does not have.
    let Some(mirror) = registry_with_busybox(RegistrySetup::default(), "v2s2") else {
        return;
    };
    let (location_digest, mirror_digest) = (digest_of(&location), digest_of(&mirror));
    let conf = format!(
        "[[registry]]\nlocation = \"{}\"\nmirror-by-digest-only = true\n\
         [[registry.mirror]]\nlocation = \"{}\"\n",
        location.host, mirror.host
    );
    let fixture = Fixture::copy("hello");
    let by_digest = format!("docker://{}/busybox@{mirror_digest}", location.host);
    // Without the mirror, that digest is nowhere to be found (and so not in the cache after).
    let output = with_conf(&fixture, "", &["inspect", &by_digest], &[]);
    assert!(!output.status.success());

    let by_tag = format!("docker://{}/busybox:1.36", location.host);
    assert_eq!(inspected(&fixture, &conf, &by_tag, &[]), location_digest);
    assert_eq!(inspected(&fixture, &conf, &by_digest, &[]), mirror_digest);
}

#[test]
fn a_blocked_base_or_push_is_refused_naming_the_file_that_blocks_it() {
    let fixture = Fixture::copy("hello");
    let conf = "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\nblocked = true\n\
                [[registry]]\nlocation = \"registry.invalid\"\nblocked = true\n";
    let file = fixture.path().join("registries.conf");
    // A short name is Docker Hub's, as Docker reads it: no search list is asked instead.
    let conf_with_search = format!("unqualified-search-registries = [\"127.0.0.1:1\"]\n{conf}");
    fixture.set_metadata("[package.metadata.oci]\nbase = \"busybox:1.36\"\n");
    let output = with_conf(&fixture, &conf_with_search, &["build", "--quiet"], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "`docker.io/library/busybox:1.36` is blocked: the `[[registry]]` with prefix \
             `docker.io` in `{}` says `blocked = true`",
            file.display()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Compiling"),
        "refused before cargo runs: {stderr}"
    );

    fixture.set_metadata("[package.metadata.oci]\n");
    let output = with_conf(
        &fixture,
        conf,
        &["build", "--quiet", "--push", "registry.invalid/app"],
        &[],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`registry.invalid/app` is blocked") && !stderr.contains("Compiling"),
        "{stderr}"
    );
}

#[test]
fn a_mirror_gets_the_credentials_of_its_own_host_and_no_other() {
    let setup = RegistrySetup {
        auth: Some(("ferris", "mirror-pass")),
        ..Default::default()
    };
    let Some(mirror) = registry_with_busybox(setup, "oci") else {
        return;
    };
    let fixture = Fixture::copy("hello");
    let image = format!("docker://{BASE}");
    let conf = mirrors_of_invalid(&[&mirror.host]);
    let docker_config = fixture.path().join("docker-config");
    std::fs::create_dir_all(&docker_config).unwrap();
    let auth = |user: &str, password: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    };
    let write_logins = |logins: serde_json::Value| {
        std::fs::write(
            docker_config.join("config.json"),
            serde_json::json!({ "auths": logins }).to_string(),
        )
        .unwrap()
    };
    let env = [("DOCKER_CONFIG", docker_config.to_str().unwrap())];

    // The mirror's login serves the mirror; the base's own registry's (wrong for the mirror)
    // goes nowhere.
    write_logins(serde_json::json!({
        "registry.invalid": {"auth": auth("origin-user", "origin-pass")},
        &mirror.host: {"auth": auth("ferris", "mirror-pass")},
    }));
    assert_eq!(inspected(&fixture, &conf, &image, &env), digest_of(&mirror));

    // With a login for the base's registry only, the mirror is asked anonymously, and says no.
    write_logins(serde_json::json!({
        "registry.invalid": {"auth": auth("ferris", "mirror-pass")},
    }));
    let output = with_conf(&fixture, &conf, &["inspect", &image], &env);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}/busybox: failed to log in to registry `{}`: authentication failed",
            mirror.host, mirror.host
        )),
        "{stderr}"
    );
}

#[test]
fn the_users_own_registries_conf_is_read_when_the_environment_names_none() {
    let Some(mirror) = registry_with_busybox(RegistrySetup::default(), "oci") else {
        return;
    };
    let fixture = Fixture::copy("hello");
    let home = fixture.path().join("home");
    let user = home.join(".config/containers");
    std::fs::create_dir_all(user.join("registries.conf.d")).unwrap();
    std::fs::write(user.join("registries.conf"), "").unwrap();
    std::fs::write(
        user.join("registries.conf.d/50-mirror.conf"),
        mirrors_of_invalid(&[&mirror.host]),
    )
    .unwrap();
    let output = crate::support::cargo_oci()
        .args(["inspect", "--message-format", "json"])
        .arg(format!("docker://{BASE}"))
        .current_dir(fixture.path())
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .env_remove("CONTAINERS_REGISTRIES_CONF_DIR")
        .env("HOME", &home)
        .output()
        .unwrap();
    assert_success(
        &output,
        "cargo oci inspect with the user's registries.conf.d",
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["digest"], digest_of(&mirror));
}

#[test]
fn a_mirror_that_fails_after_the_manifest_leaves_the_blobs_to_the_next() {
    let Some(parents) = parents() else {
        return;
    };
    let Some(good) = Registry::start(None) else {
        return;
    };
    good.put(&parents.layout, "base:1");
    // It serves the manifest, then says every blob is larger than it is.
    let bad = MisbehavingRegistry::start(&parents.layout, Misbehaviour::OversizeBlob);
    let fixture = Fixture::copy("hello");
    let conf = mirrors_of_invalid(&[&bad.host, &good.host]);
    let digest = inspected(&fixture, &conf, "docker://registry.invalid/base:1", &[]);
    let index = crate::support::read_json(&parents.layout.join("index.json"));
    assert_eq!(digest, index["manifests"][0]["digest"].as_str().unwrap());
    assert!(bad.requests.load(std::sync::atomic::Ordering::Relaxed) > 1);
}
