//! Pushing to a real registry (distribution, started on loopback by the test): by digest, tags
//! last, what is there skipped, Basic auth from a Docker `config.json`, and clear errors.

mod support;

use std::fs;

use support::{read_json, tool, Fixture, Registry};

fn index_digest(fixture: &Fixture) -> String {
    read_json(&fixture.layout().join("index.json"))["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn sha256(bytes: &[u8]) -> String {
    oci_pack::digest::Digest::of(bytes).to_string()
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
    support::assert_success(&again, "a second push");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("(0 blobs sent, 3 already there)"),
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
    let docker_config = fixture.path().join("docker-config");
    fs::create_dir_all(&docker_config).unwrap();
    let write_config = |password: &str| {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("ferris:{password}"));
        let config = serde_json::json!({"auths": {registry.host.clone(): {"auth": auth}}});
        fs::write(docker_config.join("config.json"), config.to_string()).unwrap();
    };
    let config_dir = docker_config.display().to_string();

    write_config("s3cret-pass");
    let output = fixture.build_with_env(
        &["--quiet", "--push", &repository],
        &[("DOCKER_CONFIG", &config_dir)],
    );
    support::assert_success(&output, "a push with credentials from config.json");
    if tool("skopeo") {
        assert_eq!(
            sha256(&registry.raw_manifest("hello:0.1.0")),
            index_digest(&fixture)
        );
    }

    write_config("wrong-pass");
    let output = fixture.build_with_env(
        &["--quiet", "--push", &repository],
        &[("DOCKER_CONFIG", &config_dir)],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "registry `{}`: authentication failed: check the credentials for this registry (401",
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
