//! Registries that stall, crawl, flood, loop or lie: each gives a clear error in bounded time
//! and memory, and leaves no output. And the addresses a registry may have: TLS with a company's
//! own authority, IPv6, a host with a port.

use std::process::Output;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::registries::{
    MisbehavingRegistry, Misbehaviour, MovingTagRegistry, RegistrySetup, RelativeLocationRegistry,
    TestAuthority,
};
use crate::support::{assert_success, tool, Fixture, Registry};

/// Patience for these tests: 2 s without a byte is a stall, no second tries.
const IMPATIENT: [(&str, &str); 2] = [("CARGO_HTTP_TIMEOUT", "2"), ("CARGO_NET_RETRY", "0")];

/// Patience, and two more tries after a failure that may pass (a pull cut off, an error answer).
const RETRYING: [(&str, &str); 2] = [("CARGO_HTTP_TIMEOUT", "2"), ("CARGO_NET_RETRY", "2")];

/// Longer than any of these builds may take: past it, the build hung.
const HUNG: Duration = Duration::from_secs(90);

/// Builds the fixture on `base` with `env`, killing it if it hangs; returns its output.
fn build_on(fixture: &Fixture, base: &str, env: &[(&str, &str)]) -> Output {
    fixture.set_metadata(&format!("[package.metadata.oci]\nbase = \"{base}\"\n"));
    let mut command = crate::support::cargo_oci();
    command
        .args(["build", "--quiet"])
        .current_dir(fixture.path())
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > HUNG {
            let _ = child.kill();
            panic!("the build hung on `{base}`");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The build failed with an error containing each of `expected`, and wrote nothing.
fn assert_refused(output: &Output, fixture: &Fixture, expected: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the build succeeded: {stderr}");
    for text in expected {
        assert!(stderr.contains(text), "`{text}` not in: {stderr}");
    }
    assert!(
        !fixture.layout().exists(),
        "a failed build wrote its output"
    );
}

fn misbehaving(misbehaviour: Misbehaviour) -> Option<(MisbehavingRegistry, Fixture)> {
    let parents = crate::support::parents::parents()?;
    Some((
        MisbehavingRegistry::start(&parents.layout, misbehaviour),
        Fixture::copy("hello"),
    ))
}

#[test]
fn a_silent_registry_is_given_up_after_the_stall_limit() {
    let Some((server, fixture)) = misbehaving(Misbehaviour::Silent) else {
        return;
    };
    let output = build_on(&fixture, &format!("{}/base:1", server.host), &IMPATIENT);
    assert_refused(
        &output,
        &fixture,
        &[
            &format!("failed to connect to registry `{}`", server.host),
            "stalled",
        ],
    );

    // The same over plain HTTP, the HTTPS probe answered at once as a Go server does: the
    // stall is what is said, not the HTTPS probe's failure.
    let (server, fixture) = misbehaving(Misbehaviour::SilentPlain).unwrap();
    let output = build_on(&fixture, &format!("{}/base:1", server.host), &IMPATIENT);
    assert_refused(&output, &fixture, &["stalled"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("InvalidContentType"), "{stderr}");
}

#[test]
fn a_registry_sending_a_byte_a_second_is_given_up() {
    let Some((server, fixture)) = misbehaving(Misbehaviour::Trickle) else {
        return;
    };
    let output = build_on(&fixture, &format!("{}/base:1", server.host), &IMPATIENT);
    assert_refused(
        &output,
        &fixture,
        &[
            &format!("failed to fetch a blob from registry `{}`", server.host),
            "too slow",
        ],
    );
}

#[test]
fn a_blob_larger_than_its_descriptor_is_cut_off_where_it_exceeds_it() {
    let Some((server, fixture)) = misbehaving(Misbehaviour::EndlessBlob) else {
        return;
    };
    let output = build_on(&fixture, &format!("{}/base:1", server.host), &IMPATIENT);
    assert_refused(
        &output,
        &fixture,
        &["sent more than the", "bytes of blob sha256:"],
    );
    // The blobs of the test parent are a few MiB; an endless one was read no further than that
    // (and what the socket buffers held), not until the disk or memory ran out.
    let sent = server.blob_bytes.load(Ordering::Relaxed);
    assert!(sent < 64 << 20, "{sent} bytes were taken");

    let Some((server, fixture)) = misbehaving(Misbehaviour::OversizeBlob) else {
        return;
    };
    let output = build_on(&fixture, &format!("{}/base:1", server.host), &IMPATIENT);
    assert_refused(
        &output,
        &fixture,
        &["it is sending", "bytes for blob sha256:"],
    );
}

#[test]
fn a_manifest_over_4_mib_is_refused_before_it_is_read() {
    for misbehaviour in [
        Misbehaviour::OversizeManifest,
        Misbehaviour::EndlessManifest,
    ] {
        let Some((server, fixture)) = misbehaving(misbehaviour) else {
            return;
        };
        let output = build_on(&fixture, &format!("{}/base:1", server.host), &IMPATIENT);
        assert_refused(
            &output,
            &fixture,
            &[
                &format!("failed to fetch a manifest from registry `{}`", server.host),
                "more than the 4194304 any manifest should have",
            ],
        );
    }
}

#[test]
fn redirects_and_authentication_are_tried_a_bounded_number_of_times() {
    let Some((server, fixture)) = misbehaving(Misbehaviour::RedirectLoop) else {
        return;
    };
    let output = build_on(&fixture, &format!("{}/base:1", server.host), &IMPATIENT);
    assert_refused(&output, &fixture, &["it redirected more than 5 times"]);
    assert!(server.requests.load(Ordering::Relaxed) <= 10);

    let Some((server, fixture)) = misbehaving(Misbehaviour::AuthenticationLoop) else {
        return;
    };
    // Even with the default retries: an authentication refused is not worth another try.
    let output = build_on(
        &fixture,
        &format!("{}/base:1", server.host),
        &[("CARGO_HTTP_TIMEOUT", "2")],
    );
    assert_refused(&output, &fixture, &["authentication failed"]);
    let tokens = server.token_requests.load(Ordering::Relaxed);
    assert!((1..=2).contains(&tokens), "{tokens} tokens were asked for");
}

/// A registry over TLS on loopback, its certificate from an authority of the test's own: trusted
/// through `SSL_CERT_FILE` (as a company's authority would be), and refused without it, never
/// quietly read over plain HTTP instead.
#[test]
fn tls_is_verified_against_the_system_roots_and_ssl_cert_file() {
    if !tool("openssl") {
        return;
    }
    let authority = TestAuthority::new();
    let Some(registry) = Registry::start_with(RegistrySetup {
        tls: Some(&authority),
        ..Default::default()
    }) else {
        return;
    };
    let Some(parents) = crate::support::parents::parents() else {
        return;
    };
    registry.put(&parents.layout, "busybox:1.36");
    let fixture = Fixture::copy("hello");
    let base = format!("{}/busybox:1.36", registry.host);
    let untrusted = build_on(&fixture, &base, &IMPATIENT);
    assert_refused(
        &untrusted,
        &fixture,
        &[
            &format!("failed to connect to registry `{}`", registry.host),
            "certificate",
        ],
    );
    let certificate = authority.certificate.display().to_string();
    let trusted = build_on(&fixture, &base, &[("SSL_CERT_FILE", &certificate)]);
    assert_success(&trusted, "a build on a base from a TLS registry");
}

/// A registry on IPv6 loopback, `[::1]:PORT/…`, as Docker's grammar writes it.
#[test]
fn a_base_on_an_ipv6_registry_is_pulled() {
    let Some(registry) = Registry::start_with(RegistrySetup {
        ipv6: true,
        ..Default::default()
    }) else {
        return;
    };
    let Some(parents) = crate::support::parents::parents() else {
        return;
    };
    // skopeo 1.9 predates IPv6 in Docker's grammar: the parent goes up with our own push.
    let fixture = Fixture::copy("hello");
    let repository = format!("{}/busybox", registry.host);
    let pushed = crate::support::cargo_oci()
        .args(["push", &repository, "--layout"])
        .arg(&parents.layout)
        .current_dir(fixture.path())
        .output()
        .unwrap();
    assert_success(&pushed, "a push to [::1]");
    let output = build_on(&fixture, &format!("{repository}:latest"), &[]);
    assert_success(&output, "a build on a base from [::1]");
    let (manifest, _) = crate::support::manifest_and_config(&fixture.layout());
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.name"],
        format!("{repository}:latest")
    );
}

/// Headers a byte at a time, an error body a byte at a time: each ends, in bounded time.
#[test]
fn a_registry_trickling_headers_or_an_error_is_given_up() {
    let Some((server, fixture)) = misbehaving(Misbehaviour::TrickleHeaders) else {
        return;
    };
    let output = build_on(&fixture, &format!("{}/base:1", server.host), &IMPATIENT);
    assert_refused(
        &output,
        &fixture,
        &[&format!("failed to connect to registry `{}`", server.host)],
    );

    let Some((server, fixture)) = misbehaving(Misbehaviour::TrickleErrorBody) else {
        return;
    };
    let output = build_on(&fixture, &format!("{}/base:1", server.host), &IMPATIENT);
    assert_refused(&output, &fixture, &["it answered 404 Not Found"]);
}

/// The registry redirects a blob to a host (a CDN, its operator, or anyone on the way) that
/// answers 401 naming a token server of its own: the registry's credentials never go there.
#[test]
fn a_redirect_target_asking_for_credentials_gets_none() {
    let Some((server, fixture)) = misbehaving(Misbehaviour::RedirectToChallenger) else {
        return;
    };
    use base64::Engine as _;
    let config = fixture.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("ferris:s3cret-pass");
    std::fs::write(
        config.join("config.json"),
        serde_json::json!({"auths": {server.host.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let mut env = IMPATIENT.to_vec();
    let config = config.display().to_string();
    env.push(("DOCKER_CONFIG", &config));
    let output = build_on(&fixture, &format!("{}/base:1", server.host), &env);
    assert_refused(
        &output,
        &fixture,
        &["it redirected to `localhost`, which asked for credentials"],
    );
    assert_eq!(
        server.token_requests.load(Ordering::Relaxed),
        0,
        "the redirect target's token server was asked"
    );
}

/// A registry that names no digest when a manifest is asked with `HEAD`: the manifest is
/// fetched, every build.
#[test]
fn a_registry_naming_no_digest_on_head_is_asked_with_get() {
    let Some((server, fixture)) = misbehaving(Misbehaviour::NoDigestOnHead) else {
        return;
    };
    for build in ["first", "second"] {
        let output = build_on(&fixture, &format!("{}/base:1", server.host), &IMPATIENT);
        assert_success(&output, &format!("the {build} build"));
    }
}

/// A registry that cannot answer `HEAD` of a manifest (501): the tag is fetched with `GET`,
/// as before registries were asked with `HEAD` first.
#[test]
fn a_registry_failing_head_is_asked_with_get() {
    let Some((server, fixture)) = misbehaving(Misbehaviour::HeadFails) else {
        return;
    };
    let output = build_on(&fixture, &format!("{}/base:1", server.host), &RETRYING);
    assert_success(&output, "a build on a registry failing HEAD");
    // Asked once, not again and again as a request that may pass: the build asks what it
    // asks of a registry that answers `HEAD` without a digest.
    let (answering, fixture) = misbehaving(Misbehaviour::NoDigestOnHead).unwrap();
    let output = build_on(&fixture, &format!("{}/base:1", answering.host), &RETRYING);
    assert_success(&output, "a build on a registry naming no digest on HEAD");
    assert_eq!(
        server.requests.load(Ordering::Relaxed),
        answering.requests.load(Ordering::Relaxed)
    );
}

/// A pull cut off after a blob's last byte (the chunk that ends the body never comes) keeps
/// what it has: the digest decides, and no `Range` past the end is asked (a registry answers
/// it 416).
#[test]
fn a_pull_cut_after_the_last_byte_is_kept() {
    let Some((server, fixture)) = misbehaving(Misbehaviour::CutAfterLastByte) else {
        return;
    };
    let output = build_on(&fixture, &format!("{}/base:1", server.host), &RETRYING);
    assert_success(&output, "a build on a registry cutting after the last byte");
}

/// A pull cut off halfway is resumed with `Range`; a registry refusing the range (416) gets the
/// blob asked for again from byte 0, and the build goes on.
#[test]
fn a_pull_whose_range_is_refused_starts_again_from_the_first_byte() {
    let Some((server, fixture)) = misbehaving(Misbehaviour::CutOnceAndNoRanges) else {
        return;
    };
    let output = build_on(&fixture, &format!("{}/base:1", server.host), &RETRYING);
    assert_success(&output, "a build on a registry refusing ranges");
}

/// A tag that moves during a build (a release pushed meanwhile) is resolved once: both
/// platforms of the index are built on the same base index, the one the tag named first.
#[test]
fn a_tag_is_resolved_once_for_every_platform() {
    use crate::support::host::{FOREIGN, HOST};
    if !tool(FOREIGN.gcc) || !tool("cc") {
        return;
    }
    let registry = MovingTagRegistry::start();
    let fixture = Fixture::copy("hello");
    let release = |triple: &str| fixture.path().join("target").join(triple).join("release");
    crate::targets::foreign_program(&release(FOREIGN.triple).join("hello"));
    let source = fixture.path().join("hello.c");
    std::fs::write(&source, "int main(void) { return 0; }\n").unwrap();
    std::fs::create_dir_all(release(HOST.triple)).unwrap();
    crate::support::run(
        std::process::Command::new("cc")
            .args(["-static", "-o"])
            .arg(release(HOST.triple).join("hello"))
            .arg(&source),
    );
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"{}/base:1\"\n",
        registry.host
    ));
    let output = fixture.build(&[
        "--quiet",
        "--no-build",
        "--target",
        HOST.triple,
        "--target",
        FOREIGN.triple,
    ]);
    assert_success(&output, "a build on a moving tag");
    assert_eq!(registry.tag_requests.load(Ordering::SeqCst), 1);
    let layout = fixture.layout();
    let top = crate::support::read_json(&layout.join("index.json"));
    let index = crate::support::blob(&layout, top["manifests"][0]["digest"].as_str().unwrap());
    let platforms = index["manifests"].as_array().unwrap();
    assert_eq!(platforms.len(), 2, "{index}");
    // The first index the tag named, as the build fetched it into its cache.
    let first = crate::support::blob(
        &fixture.path().join("target/oci/.cache"),
        &registry.indexes[0],
    );
    for platform in platforms {
        let manifest = crate::support::blob(&layout, platform["digest"].as_str().unwrap());
        let base = &manifest["annotations"]["org.opencontainers.image.base.digest"];
        assert!(
            first["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["digest"] == *base),
            "{} is built on {base}, not on a manifest of {}",
            platform["platform"],
            registry.indexes[0]
        );
        let config = crate::support::blob(&layout, manifest["config"]["digest"].as_str().unwrap());
        let env = &config["config"]["Env"];
        assert!(
            env.as_array().unwrap().iter().any(|e| e == "BASE=v1"),
            "{} is built on another base than the first platform: {env}",
            platform["platform"]
        );
    }
}

/// A plain HTTP registry still starting (503 to `/v2/`, `Retry-After: 1`) is tried again, as
/// any request is, and what is reported is its own answer, not the HTTPS probe's failure.
#[test]
fn a_plain_http_registry_starting_up_is_tried_again() {
    let Some((registry, fixture)) = misbehaving(Misbehaviour::StartingUp) else {
        return;
    };
    let base = format!("{}/base:1", registry.host);
    let output = build_on(&fixture, &base, &[("CARGO_HTTP_TIMEOUT", "2")]);
    assert_success(&output, "a build on a registry that answered 503 twice");
    assert_eq!(registry.pings.load(Ordering::SeqCst), 3);

    // Given up after one try again: the registry's 503 is the error.
    let (registry, fixture) = misbehaving(Misbehaviour::StartingUp).unwrap();
    let base = format!("{}/base:1", registry.host);
    let output = build_on(&fixture, &base, &[("CARGO_NET_RETRY", "1")]);
    assert_refused(&output, &fixture, &["it answered 503 Service Unavailable"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("rustls") && !stderr.contains("TLS"),
        "{stderr}"
    );
    assert_eq!(registry.pings.load(Ordering::SeqCst), 2);
}

/// A `Location` relative to the upload's URL (`uuid?state=…`), as RFC 3986 allows, is resolved
/// against that URL, not against the registry's root.
#[test]
fn an_upload_location_relative_to_the_upload_is_followed() {
    let registry = RelativeLocationRegistry::start();
    let fixture = Fixture::copy("hello");
    let repository = format!("{}/team/hello", registry.host);
    // Nothing attached: this registry keeps no manifest to list referrers under.
    let output = fixture.build(&[
        "--quiet",
        "--sbom",
        "none",
        "--provenance",
        "none",
        "--push",
        &repository,
    ]);
    assert_success(&output, "a push to a registry answering relative locations");
    let layout = fixture.layout();
    let (manifest, _) = crate::support::manifest_and_config(&layout);
    let closed = registry.closed.lock().unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        assert!(
            closed.iter().any(|c| c == digest),
            "{digest} not in {closed:?}"
        );
    }
}
