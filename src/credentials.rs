//! Registry credentials, found the way Docker and podman find them: a username and password in
//! the environment (for CI), then `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`
//! (`credHelpers`, `auths`, `credsStore`), then podman's `auth.json`. Secrets are never printed.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use oci_pack::registry::Credentials;
use serde::Deserialize;

/// `CARGO_OCI_REGISTRY_USERNAME` / `CARGO_OCI_REGISTRY_PASSWORD`, for CI secrets.
const USERNAME_VAR: &str = "CARGO_OCI_REGISTRY_USERNAME";
const PASSWORD_VAR: &str = "CARGO_OCI_REGISTRY_PASSWORD";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The credentials for `registry` (`host[:port]`).
pub fn for_registry(registry: &str) -> Result<Credentials> {
    if let (Ok(username), Ok(password)) = (std::env::var(USERNAME_VAR), std::env::var(PASSWORD_VAR))
    {
        return Ok(Credentials::Basic { username, password });
    }
    for path in auth_files() {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let file: AuthFile = serde_json::from_str(&text)
            .with_context(|| format!("failed to parse `{}`", path.display()))?;
        if let Some(helper) = file.cred_helpers.get(registry) {
            return helper_get(helper, registry);
        }
        let entry = file
            .auths
            .iter()
            .find(|(key, _)| matches_registry(key, registry))
            .map(|(_, entry)| entry);
        if let Some(entry) = entry {
            return decode(entry).with_context(|| {
                format!(
                    "invalid credentials for `{registry}` in `{}`",
                    path.display()
                )
            });
        }
        if let Some(store) = &file.creds_store {
            return helper_get(store, registry);
        }
    }
    Ok(Credentials::Anonymous)
}

/// Where Docker and podman keep credentials, in the order they are consulted.
fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => files.push(PathBuf::from(dir).join("config.json")),
        None => files.extend(
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json")),
        ),
    }
    if let Some(file) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(file.into());
    }
    files.extend(
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(|dir| PathBuf::from(dir).join("containers/auth.json")),
    );
    files
}

/// `auths` keys may be a bare host or a URL (`https://host/v1/`).
fn matches_registry(key: &str, registry: &str) -> bool {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    host.split('/').next() == Some(registry)
}

fn decode(entry: &AuthEntry) -> Result<Credentials> {
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Credentials::Basic {
            username: username.clone(),
            password: password.clone(),
        });
    }
    let Some(auth) = &entry.auth else {
        return Ok(Credentials::Anonymous);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .context("`auth` is not base64")?;
    let decoded = String::from_utf8(decoded).context("`auth` is not UTF-8")?;
    let Some((username, password)) = decoded.split_once(':') else {
        bail!("`auth` is not `user:password`")
    };
    Ok(Credentials::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// `docker-credential-NAME get`, as Docker runs credential helpers.
fn helper_get(name: &str, registry: &str) -> Result<Credentials> {
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("failed to run the credential helper `{program}`"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(registry.as_bytes())
        .context("failed to talk to the credential helper")?;
    let output = child
        .wait_with_output()
        .context("failed to wait for the credential helper")?;
    if !output.status.success() {
        bail!("the credential helper `{program}` has no credentials for `{registry}`");
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("`{program}` gave an answer that is not JSON"))?;
    Ok(Credentials::Basic {
        username: answer.username,
        password: answer.secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_entries_decode_from_base64_or_fields() {
        let entry = AuthEntry {
            auth: Some("dXNlcjpwYXNzOndpdGg6Y29sb25z".into()),
            ..Default::default()
        };
        assert_eq!(
            decode(&entry).unwrap(),
            Credentials::Basic {
                username: "user".into(),
                password: "pass:with:colons".into()
            }
        );
        let fields = AuthEntry {
            username: Some("u".into()),
            password: Some("p".into()),
            ..Default::default()
        };
        assert_eq!(
            decode(&fields).unwrap(),
            Credentials::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
        assert!(decode(&AuthEntry {
            auth: Some("not base64!".into()),
            ..Default::default()
        })
        .is_err());
        assert!(matches_registry(
            "https://registry.example.com/v1/",
            "registry.example.com"
        ));
        assert!(matches_registry("127.0.0.1:5000", "127.0.0.1:5000"));
        assert!(!matches_registry("127.0.0.1:5001", "127.0.0.1:5000"));
    }
}
