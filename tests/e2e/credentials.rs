//! Credentials go to the registry they are for and no other: the environment's to the registry
//! pushed to (or the one `CARGO_OCI_REGISTRY` names), a helper that knows nothing means
//! anonymous, a missing or failing helper is named, and an identity token is exchanged at the
//! token server. Proven by a proxy that records every `Authorization` header a registry gets.

use std::fs;
use std::path::Path;

use crate::support::registries::RecordingProxy;
use crate::support::{assert_success, tool, Fixture, Registry, TokenServer};

const USER: &str = "ferris";
const PASSWORD: &str = "s3cret-pass";

/// A registry (with `auth`, if given) holding the test parent as `busybox:1.36`, and a fixture
/// based on it through a recording proxy, so every header the base's registry receives is kept.
fn fixture_on_recorded_base(
    auth: Option<(&str, &str)>,
) -> Option<(Registry, RecordingProxy, Fixture)> {
    let registry = Registry::start(auth)?;
    let parents = crate::support::parents::parents()?;
    registry.put(&parents.layout, "busybox:1.36");
    let proxy = RecordingProxy::start(&registry.host);
    let fixture = Fixture::copy("hello");
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"{}/busybox:1.36\"\n",
        proxy.host
    ));
    Some((registry, proxy, fixture))
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// A `DOCKER_CONFIG` directory whose `config.json` is `config`.
fn docker_config(dir: &Path, config: serde_json::Value) -> String {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("config.json"), config.to_string()).unwrap();
    dir.display().to_string()
}

/// `docker-credential-NAME` in `dir`, a shell script with `body`.
fn helper(dir: &Path, name: &str, body: &str) {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("docker-credential-{name}"));
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// The release workflow of `docs/guide/publishing.md`: a token for the push registry in the
/// environment, a base from a private registry with a login of its own. The base's registry
/// never sees the token, unless `CARGO_OCI_REGISTRY` names it.
#[test]
fn environment_credentials_go_to_the_push_registry_only() {
    let base_login = ("base-user", "base-pass");
    let Some((_base, proxy, fixture)) = fixture_on_recorded_base(Some(base_login)) else {
        return;
    };
    let Some(destination) = Registry::start(Some((USER, PASSWORD))) else {
        return;
    };
    let config = docker_config(
        &fixture.path().join("docker-config"),
        serde_json::json!({"auths": {proxy.host.clone(): {"username": base_login.0,
            "password": base_login.1}}}),
    );
    let secrets = [
        ("CARGO_OCI_REGISTRY_USERNAME", USER),
        ("CARGO_OCI_REGISTRY_PASSWORD", PASSWORD),
        ("DOCKER_CONFIG", &config),
    ];
    let push = format!("{}/team/app", destination.host);
    let output = fixture.build_with_env(&["--quiet", "--push", &push], &secrets);
    assert_success(&output, "a push with credentials from the environment");
    let seen = proxy.authorizations();
    assert!(!seen.is_empty(), "the base's registry asked for its login");
    assert!(
        seen.iter()
            .all(|header| *header == basic(base_login.0, base_login.1)),
        "the base's registry received other credentials: {seen:?}"
    );

    // Named for the base's registry, they go there (where they are wrong).
    let mut scoped = secrets.to_vec();
    scoped.push(("CARGO_OCI_REGISTRY", &proxy.host));
    let _ = fs::remove_dir_all(fixture.path().join("target/oci/.cache"));
    let output = fixture.build_with_env(&["--quiet", "--push", &push], &scoped);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "registry `{}`\n\nCaused by:\n  authentication failed",
            proxy.host
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert!(proxy.authorizations().contains(&basic(USER, PASSWORD)));
}

/// With `credsStore` set (Docker Desktop, `pass`), a helper that has nothing for a registry
/// means anonymous, as with Docker; a helper that is missing or fails is an error naming it.
#[test]
fn a_helper_that_knows_nothing_is_anonymous_and_a_missing_or_failing_one_is_named() {
    let Some((_base, proxy, fixture)) = fixture_on_recorded_base(None) else {
        return;
    };
    let helpers = fixture.path().join("helpers");
    helper(
        &helpers,
        "empty",
        "read server\necho 'credentials not found in native keychain'\nexit 1",
    );
    helper(
        &helpers,
        "broken",
        "echo 'the keyring is locked' >&2\nexit 3",
    );
    let path = format!(
        "{}:{}",
        helpers.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let build = |store: &str| {
        let config = docker_config(
            &fixture.path().join(format!("config-{store}")),
            serde_json::json!({"credsStore": store, "auths": {proxy.host.clone(): {}}}),
        );
        let _ = fs::remove_dir_all(fixture.path().join("target/oci/.cache"));
        fixture.build_with_env(&["--quiet"], &[("DOCKER_CONFIG", &config), ("PATH", &path)])
    };

    assert_success(
        &build("empty"),
        "a build whose credential helper knows nothing",
    );
    // An empty `credsStore` is none at all, as Docker reads it.
    assert_success(&build(""), "a build with an empty credsStore");
    assert!(proxy.requests() > 0, "the base came through the proxy");
    assert!(proxy.authorizations().is_empty());

    let missing = build("absent");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        stderr.contains("the credential helper `docker-credential-absent` (`credsStore` in `")
            && stderr.contains(&format!(
                "is not installed, and credentials for `{}`",
                proxy.host
            )),
        "{stderr}"
    );

    let broken = build("broken");
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(!broken.status.success());
    assert!(
        stderr.contains("the credential helper `docker-credential-broken` (`credsStore` in `")
            && stderr.contains(&format!("failed for `{}`", proxy.host))
            && stderr.contains("the keyring is locked"),
        "{stderr}"
    );
}

/// An `identitytoken` (what `docker login` keeps for an OAuth registry) is exchanged at the
/// token server with the refresh-token grant; no password is involved.
#[test]
fn an_identity_token_is_exchanged_for_an_access_token() {
    if !tool("openssl") {
        return;
    }
    let fixture = Fixture::copy("hello");
    let tokens = TokenServer::start(fixture.path(), "oauth", USER, PASSWORD);
    let Some(registry) = Registry::start_with_tokens(&tokens, (USER, PASSWORD)) else {
        return;
    };
    fixture.build_ok(&["--quiet"]);
    let push = |token: &str| {
        let config = docker_config(
            &fixture.path().join("docker-config"),
            serde_json::json!({"auths": {registry.host.clone(): {"identitytoken": token}}}),
        );
        crate::support::cargo_oci()
            .args(["push", &format!("{}/oauth", registry.host)])
            .current_dir(fixture.path())
            .env("DOCKER_CONFIG", config)
            .output()
            .unwrap()
    };
    assert_success(
        &push(TokenServer::REFRESH_TOKEN),
        "a push with an identity token",
    );
    let refused = push("a-token-that-was-revoked");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("authentication failed: check the credentials"),
        "{stderr}"
    );
    assert!(!stderr.contains("a-token-that-was-revoked"), "{stderr}");
}

/// `docker login HOST` keeps a URL (`https://HOST/v1/`) as often as a bare host; both are found.
#[test]
fn a_login_kept_under_a_url_is_found() {
    let Some(registry) = Registry::start(Some((USER, PASSWORD))) else {
        return;
    };
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let config = docker_config(
        &fixture.path().join("docker-config"),
        serde_json::json!({"auths": {format!("https://{}/v1/", registry.host): {"auth": auth}}}),
    );
    let output = crate::support::cargo_oci()
        .args(["push", &format!("{}/url-key", registry.host)])
        .current_dir(fixture.path())
        .env("DOCKER_CONFIG", config)
        .output()
        .unwrap();
    assert_success(&output, "a push with a login kept under a URL");
}

/// The environment's secret is this process's alone: cargo, and so every build script and
/// proc-macro of every dependency, never sees it.
#[test]
fn the_environment_secret_reaches_no_build_script() {
    let fixture = Fixture::copy("macros");
    let build_script = r#"//! Fails the build if it can see a registry secret.

fn main() {
    for var in ["CARGO_OCI_REGISTRY_USERNAME", "CARGO_OCI_REGISTRY_PASSWORD"] {
        assert!(std::env::var_os(var).is_none(), "{var} reached a build script");
    }
    println!("cargo:rustc-env=BUILT_BY=build.rs");
}
"#;
    std::fs::write(fixture.path().join("build.rs"), build_script).unwrap();
    let output = fixture.build_with_env(
        &["--quiet"],
        &[
            ("CARGO_OCI_REGISTRY_USERNAME", USER),
            ("CARGO_OCI_REGISTRY_PASSWORD", PASSWORD),
        ],
    );
    assert_success(&output, "a build with a registry secret in the environment");
}
