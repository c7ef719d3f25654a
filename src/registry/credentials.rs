//! Registry credentials, found the way Docker and podman find them, and given to the registry
//! they are for and no other:
//!
//! 1. `CARGO_OCI_REGISTRY_USERNAME` / `CARGO_OCI_REGISTRY_PASSWORD` (for CI secrets), for the
//!    registry `CARGO_OCI_REGISTRY` names, or else for the registry being pushed to only;
//! 2. `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`: the `credHelpers` entry for the
//!    registry, else the `credsStore` helper, else the `auths` entry (`auth`, `username` and
//!    `password`, or `identitytoken`);
//! 3. podman's `auth.json` (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//!    `~/.config/containers/auth.json`), read the same way.
//!
//! Docker Hub is one registry under several names (`docker.io`, `index.docker.io`,
//! `registry-1.docker.io`, and `https://index.docker.io/v1/`, where `docker login` keeps it).
//! A helper that has nothing for a registry means anonymous, as with Docker; a helper that is
//! missing or fails is an error that names it. Secrets are never printed.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use oci_pack::registry::Credentials;
use serde::Deserialize;

pub const USERNAME_VAR: &str = "CARGO_OCI_REGISTRY_USERNAME";
pub const PASSWORD_VAR: &str = "CARGO_OCI_REGISTRY_PASSWORD";
/// The registry the two above are for, when it is not the one pushed to.
pub const REGISTRY_VAR: &str = "CARGO_OCI_REGISTRY";

/// Where `docker login` keeps Docker Hub's credentials, and what its helpers are asked for.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// What a helper says when it has nothing for a registry: Docker takes it as anonymous.
const HELPER_NOT_FOUND: &str = "credentials not found";

/// Docker's and podman's credentials file. No `Debug`: it holds secrets.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
    creds_store: Option<String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// Every place credentials may come from, read from the environment once.
pub struct CredentialSources {
    /// The environment's username and password, and the registry they are for.
    env: Option<(String, String, String)>,
    files: Vec<PathBuf>,
}

impl std::fmt::Debug for CredentialSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSources")
            .field(
                "env",
                &self
                    .env
                    .as_ref()
                    .map(|(user, _, registry)| (user, "***", registry)),
            )
            .field("files", &self.files)
            .finish()
    }
}

/// The environment's username and password, taken out of the environment when the program
/// starts ([`take_from_environment`]), so that no process it runs (cargo, and so every build
/// script and proc-macro of every dependency; a loader; a credential helper) inherits them.
static ENV_SECRET: std::sync::OnceLock<(Option<String>, Option<String>)> =
    std::sync::OnceLock::new();

/// Moves `CARGO_OCI_REGISTRY_USERNAME` and `CARGO_OCI_REGISTRY_PASSWORD` from the environment
/// into this process alone. Called first thing in `main`, while there is one thread.
pub fn take_from_environment() {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    let secret = (var(USERNAME_VAR), var(PASSWORD_VAR));
    std::env::remove_var(USERNAME_VAR);
    std::env::remove_var(PASSWORD_VAR);
    let _ = ENV_SECRET.set(secret);
}

impl CredentialSources {
    /// `push_registries`: the registries this run pushes to, which the environment's
    /// credentials are for unless `CARGO_OCI_REGISTRY` names another. Pushes to several
    /// registries need it: a secret is for one registry.
    pub fn from_env(push_registries: &[&str]) -> Result<CredentialSources> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let (username, password) = ENV_SECRET
            .get()
            .cloned()
            .unwrap_or_else(|| (var(USERNAME_VAR), var(PASSWORD_VAR)));
        let mut pushed: Vec<&str> = push_registries.to_vec();
        pushed.sort();
        pushed.dedup();
        let scope = match (var(REGISTRY_VAR), pushed.as_slice()) {
            (Some(named), _) => Some(named),
            (None, [one]) => Some((*one).to_owned()),
            (None, []) => None,
            (None, several) if username.is_some() => bail!(
                "`{USERNAME_VAR}` is for one registry, and the images go to {}; \
                 name the one it is for with `{REGISTRY_VAR}`",
                several.join(", ")
            ),
            (None, _) => None,
        };
        let env = match (username, password, scope) {
            (Some(username), Some(password), Some(registry)) => {
                Some((username, password, registry))
            }
            _ => None,
        };
        Ok(CredentialSources {
            env,
            files: auth_files(),
        })
    }

    /// The credentials for `registry` (`host[:port]`, `docker.io` for Docker Hub).
    pub fn for_registry(&self, registry: &str) -> Result<Credentials> {
        if let Some((username, password, scope)) = &self.env {
            if same_registry(scope, registry) {
                return Ok(Credentials::Basic {
                    username: username.clone(),
                    password: password.clone(),
                });
            }
        }
        for path in &self.files {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            // serde's own message may quote a value, and a value here may be a secret.
            let file: AuthFile = serde_json::from_str(&text).map_err(|error| {
                anyhow::anyhow!(
                    "failed to parse `{}`: {} at line {}, column {}",
                    path.display(),
                    match error.classify() {
                        serde_json::error::Category::Data => "not the shape Docker writes",
                        _ => "not valid JSON",
                    },
                    error.line(),
                    error.column()
                )
            })?;
            // An empty helper name means none, as Docker reads it.
            let helper = file
                .cred_helpers
                .iter()
                .find(|(key, helper)| same_registry(key, registry) && !helper.is_empty())
                .map(|(_, helper)| (helper, "credHelpers"))
                .or(file
                    .creds_store
                    .as_ref()
                    .filter(|store| !store.is_empty())
                    .map(|store| (store, "credsStore")));
            if let Some((helper, key)) = helper {
                let named_by = format!("`{key}` in `{}`", path.display());
                return helper_get(helper, registry, &named_by);
            }
            let entry = file
                .auths
                .iter()
                .find(|(key, _)| same_registry(key, registry))
                .map(|(_, entry)| entry);
            if let Some(entry) = entry {
                return decode(entry).with_context(|| {
                    format!(
                        "invalid credentials for `{registry}` in `{}`",
                        path.display()
                    )
                });
            }
        }
        Ok(Credentials::Anonymous)
    }
}

/// Where Docker and podman keep credentials, in the order they are consulted.
fn auth_files() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut files = Vec::new();
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => files.push(PathBuf::from(dir).join("config.json")),
        None => files.extend(home.as_ref().map(|home| home.join(".docker/config.json"))),
    }
    if let Some(file) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(file.into());
    }
    files.extend(
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(|dir| PathBuf::from(dir).join("containers/auth.json")),
    );
    files.extend(home.map(|home| home.join(".config/containers/auth.json")));
    files
}

/// Whether a key of a credentials file (a host, `host:port`, or a URL such as
/// `https://host/v1/`) names `registry`, Docker Hub's names being one.
fn same_registry(key: &str, registry: &str) -> bool {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or_default();
    let hub = |name: &str| {
        matches!(
            name,
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        )
    };
    host == registry || (hub(host) && hub(registry))
}

fn decode(entry: &AuthEntry) -> Result<Credentials> {
    if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Credentials::IdentityToken {
            token: token.clone(),
        });
    }
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Credentials::Basic {
            username: username.clone(),
            password: password.clone(),
        });
    }
    let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) else {
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
fn helper_get(name: &str, registry: &str, named_by: &str) -> Result<Credentials> {
    let program = format!("docker-credential-{name}");
    let server = if same_registry(DOCKER_HUB_KEY, registry) {
        DOCKER_HUB_KEY
    } else {
        registry
    };
    let failed =
        || format!("the credential helper `{program}` ({named_by}) failed for `{registry}`");
    let mut child = match Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
            "the credential helper `{program}` ({named_by}) is not installed, \
             and credentials for `{registry}` are to come from it"
        ),
        Err(error) => return Err(error).with_context(failed),
    };
    // A helper that exits without reading its input is its own answer, below.
    let _ = child
        .stdin
        .take()
        .expect("piped")
        .write_all(server.as_bytes());
    let output = child.wait_with_output().with_context(failed)?;
    let said = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_owned();
    if !output.status.success() {
        let message = [said(&output.stdout), said(&output.stderr)].join(" ");
        if message.contains(HELPER_NOT_FOUND) {
            return Ok(Credentials::Anonymous);
        }
        return Err(anyhow::anyhow!(
            "it exited with {}: {}",
            output.status,
            message.trim()
        ))
        .with_context(failed);
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("`{program}` gave an answer that is not JSON"))?;
    // Docker's convention for an identity token kept by a helper.
    if answer.username == "<token>" {
        return Ok(Credentials::IdentityToken {
            token: answer.secret,
        });
    }
    Ok(Credentials::Basic {
        username: answer.username,
        password: answer.secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_entries_decode_from_base64_fields_or_an_identity_token() {
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
        let token = AuthEntry {
            auth: Some("PHRva2VuPjo=".into()),
            identitytoken: Some("refresh".into()),
            ..Default::default()
        };
        assert_eq!(
            decode(&token).unwrap(),
            Credentials::IdentityToken {
                token: "refresh".into()
            }
        );
        assert_eq!(
            decode(&AuthEntry::default()).unwrap(),
            Credentials::Anonymous
        );
        assert!(decode(&AuthEntry {
            auth: Some("not base64!".into()),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn keys_name_registries_as_docker_reads_them() {
        assert!(same_registry(
            "https://registry.example.com/v1/",
            "registry.example.com"
        ));
        assert!(same_registry("127.0.0.1:5000", "127.0.0.1:5000"));
        assert!(!same_registry("127.0.0.1:5001", "127.0.0.1:5000"));
        for hub in [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "registry-1.docker.io",
            "docker.io",
        ] {
            assert!(same_registry(hub, "docker.io"), "{hub}");
        }
        assert!(!same_registry("https://index.docker.io/v1/", "ghcr.io"));
        assert!(!same_registry("docker.io.attacker.example", "docker.io"));
    }

    #[test]
    fn a_broken_file_is_named_without_quoting_its_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"auths": {"h": "dXNlcjpzM2NyZXQ="}}"#).unwrap();
        let sources = CredentialSources {
            env: None,
            files: vec![path],
        };
        let error = format!("{:#}", sources.for_registry("h").unwrap_err());
        assert!(
            error.contains("not the shape Docker writes at line 1"),
            "{error}"
        );
        assert!(!error.contains("dXNlcjpzM2NyZXQ="), "{error}");
        let with_secret = CredentialSources {
            env: Some(("ci".into(), "s3cret".into(), "ghcr.io".into())),
            files: Vec::new(),
        };
        assert!(!format!("{with_secret:?}").contains("s3cret"));
    }
}
