//! Where an image came from, as attestations say it: in-toto statements (v1) about one
//! platform's manifest, above all its SLSA provenance (v1), which records how it was built
//! (the package, the targets, features and profile, the `[package.metadata.oci]` table as
//! resolved) and from what (the git commit, `Cargo.lock`, the base by digest, the compiler),
//! and by whom (the CI job, where one is recognised). Nothing in a statement depends on the
//! clock, the machine or the directory of the checkout: its times are `SOURCE_DATE_EPOCH`, so
//! two builds of one commit give the same bytes.

use std::path::Path;

use anyhow::{Context as _, Result};
use oci_pack::{Digest, Timestamp};
use serde_json::{json, Value};

use crate::cargo::workspace::Toolchain;
use crate::text::without_userinfo;

/// The in-toto statement layer, version 1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// SLSA provenance, version 1.
pub const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";

/// What our provenance's `externalParameters` and `resolvedDependencies` mean, as
/// `docs/explanation/security.md` documents them; a new meaning gets a new version.
pub const BUILD_TYPE: &str = "urn:cargo-oci:build-type:cargo-oci-build:v1";

/// The builder of a build that no recognised CI ran: someone's own machine, which makes no
/// claim beyond "built by cargo oci".
pub const LOCAL_BUILDER: &str = "urn:cargo-oci:builder:local";

/// The git repository a package was built from, and the commit checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The `origin` remote's URL, without credentials; `None` for a checkout without one.
    pub repository: Option<String>,
    pub commit: String,
}

impl Source {
    /// A checkout at `commit` whose `origin` remote is `origin` (as git has it: its
    /// credentials are stripped here).
    pub fn new(origin: Option<&str>, commit: String) -> Source {
        Source {
            repository: origin.map(without_credentials),
            commit,
        }
    }
}

/// A git remote's URL as it may be published: no user information (a token in
/// `https://x-access-token:…@host/…`, [`without_userinfo`]), no query or fragment, which name
/// no part of a repository and can carry a token too (`?private_token=…`); scp-like
/// `git@host:path` as `ssh://host/path`.
pub fn without_credentials(url: &str) -> String {
    if url.contains("://") {
        // The user information first: a token may hold a `?` or a `#`.
        let url = without_userinfo(url);
        return url.split(['?', '#']).next().unwrap_or(&url).to_owned();
    }
    let url = url.split(['?', '#']).next().unwrap_or(url);
    // `user@host:path`, git's scp-like syntax (a local path has no `:` before a `/`).
    match url.split_once(':') {
        Some((authority, path)) if !authority.contains('/') && !authority.is_empty() => {
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("ssh://{host}/{}", path.trim_start_matches('/'))
        }
        _ => url.to_owned(),
    }
}

/// Who ran the build: the builder and this run of it, from the CI's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDetails {
    pub builder_id: String,
    pub invocation_id: Option<String>,
}

impl RunDetails {
    /// GitHub Actions (the workflow file at its ref; the run and its attempt) or GitLab CI (the
    /// project's runner; the job), else [`LOCAL_BUILDER`] with no invocation. `env` reads a
    /// variable.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> RunDetails {
        let var = |name: &str| env(name).filter(|value| !value.is_empty());
        if var("GITHUB_ACTIONS").as_deref() == Some("true") {
            let server = var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
            let server = without_userinfo(server.trim_end_matches('/'));
            if let (Some(workflow), Some(repository), Some(run)) = (
                var("GITHUB_WORKFLOW_REF"),
                var("GITHUB_REPOSITORY"),
                var("GITHUB_RUN_ID"),
            ) {
                let attempt = var("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into());
                return RunDetails {
                    builder_id: format!("{server}/{workflow}"),
                    invocation_id: Some(format!(
                        "{server}/{repository}/actions/runs/{run}/attempts/{attempt}"
                    )),
                };
            }
        }
        if var("GITLAB_CI").as_deref() == Some("true") {
            if let (Some(server), Some(project), Some(job)) = (
                var("CI_SERVER_URL"),
                var("CI_PROJECT_PATH"),
                var("CI_JOB_URL"),
            ) {
                let server = without_userinfo(server.trim_end_matches('/'));
                let runner = var("CI_RUNNER_ID").unwrap_or_else(|| "unknown".into());
                return RunDetails {
                    builder_id: format!("{server}/{project}/-/runners/{runner}"),
                    invocation_id: Some(without_userinfo(&job)),
                };
            }
        }
        RunDetails {
            builder_id: LOCAL_BUILDER.to_owned(),
            invocation_id: None,
        }
    }
}

/// What every platform's provenance of one image shares.
#[derive(Debug)]
pub struct BuildFacts<'a> {
    pub package: &'a str,
    /// Every target of the image, host resolved.
    pub targets: Vec<String>,
    /// `--features`, as given.
    pub features: &'a [String],
    pub all_features: bool,
    pub no_default_features: bool,
    pub profile: &'a str,
    /// The image's `[package.metadata.oci]` table, workspace defaults and its `images.<name>`
    /// table merged in.
    pub metadata: &'a Value,
    pub source: Option<&'a Source>,
    /// The digest of the workspace's `Cargo.lock`.
    pub lock: Option<Digest>,
    pub toolchain: &'a Toolchain,
    pub run: &'a RunDetails,
    pub created: Timestamp,
}

/// One platform's image, the statement's subject.
#[derive(Debug)]
pub struct ImageFacts<'a> {
    pub name: &'a str,
    pub triple: &'a str,
    /// `linux/amd64`
    pub platform: &'a str,
    /// The base image's name and manifest digest, as the manifest's annotations give them.
    pub base: Option<(String, Option<String>)>,
}

/// An in-toto statement (v1) about `subject_name`'s manifest `manifest`: pretty JSON ending in
/// a newline, keys in a fixed order.
pub fn statement(
    subject_name: &str,
    manifest: &Digest,
    predicate_type: &str,
    predicate: Value,
) -> Result<Vec<u8>> {
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {"sha256": manifest.hex()}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    });
    let mut bytes = serde_json::to_vec_pretty(&statement).context("failed to write a statement")?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The SLSA v1 provenance predicate of `image`.
pub fn slsa_predicate(build: &BuildFacts<'_>, image: &ImageFacts<'_>) -> Value {
    let mut dependencies = Vec::new();
    if let Some(source) = build.source {
        let mut entry = json!({"digest": {"gitCommit": source.commit}});
        match &source.repository {
            Some(url) => entry["uri"] = json!(format!("git+{url}")),
            None => entry["name"] = json!("source"),
        }
        dependencies.push(entry);
    }
    if let Some(lock) = &build.lock {
        dependencies.push(json!({"name": "Cargo.lock", "digest": {"sha256": lock.hex()}}));
    }
    if let Some((name, digest)) = &image.base {
        let mut entry = json!({"name": name});
        if let Some(digest) = digest {
            if let Some(hex) = digest.strip_prefix("sha256:") {
                entry["digest"] = json!({"sha256": hex});
            }
            entry["uri"] = json!(super::sbom::image_purl(name, digest, image.platform));
        }
        dependencies.push(entry);
    }
    let mut rustc = json!({"name": "rustc"});
    if let Some(commit) = &build.toolchain.commit_hash {
        rustc["uri"] = json!("git+https://github.com/rust-lang/rust");
        rustc["digest"] = json!({"gitCommit": commit});
    }
    if let Some(release) = &build.toolchain.release {
        rustc["annotations"] = json!({"release": release});
    }
    dependencies.push(rustc);

    let mut metadata = json!({
        "startedOn": build.created.to_rfc3339(),
        "finishedOn": build.created.to_rfc3339(),
    });
    if let Some(invocation) = &build.run.invocation_id {
        metadata["invocationId"] = json!(invocation);
    }
    json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "package": build.package,
                "image": image.name,
                "target": image.triple,
                "targets": build.targets,
                "features": build.features,
                "allFeatures": build.all_features,
                "noDefaultFeatures": build.no_default_features,
                "profile": build.profile,
                "metadata": build.metadata,
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {
                "id": build.run.builder_id,
                "version": {"cargo-oci": env!("CARGO_PKG_VERSION")},
            },
            "metadata": metadata,
        },
    })
}

/// The digest of the file at `path`, if there is one.
pub fn file_digest(path: &Path) -> Result<Option<Digest>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(Digest::of(&bytes))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("failed to read `{}`", path.display())),
    }
}

/// What `inspect` says of an artifact that is an attestation: its predicate type, and whether
/// it is signed (the key ids of its envelope's signatures); `None` for another artifact.
pub fn describe(
    image: &oci_pack::inspect::Image,
    referrer: &oci_pack::inspect::Referrer,
) -> Option<Attestation> {
    let predicate_type = referrer
        .annotations
        .get(oci_pack::annotation::PREDICATE_TYPE)
        .cloned();
    let signed = referrer.artifact_type == oci_pack::media_type::DSSE_ENVELOPE;
    if predicate_type.is_none()
        && !signed
        && referrer.artifact_type != oci_pack::media_type::IN_TOTO_JSON
    {
        return None;
    }
    let key_ids = match signed {
        true => referrer
            .layers
            .first()
            .and_then(|layer| image.store.read(layer).ok())
            .and_then(|bytes| super::signing::Envelope::parse(&bytes).ok())
            .map(|envelope| envelope.signatures.into_iter().map(|s| s.keyid).collect())
            .unwrap_or_default(),
        false => Vec::new(),
    };
    Some(Attestation {
        digest: referrer.digest,
        subject: referrer.subject,
        predicate_type,
        signed,
        key_ids,
    })
}

/// An attestation attached to an image, as `inspect` lists it.
#[derive(Debug, serde::Serialize)]
pub struct Attestation {
    pub digest: Digest,
    pub subject: Digest,
    pub predicate_type: Option<String>,
    /// A DSSE envelope (signed), rather than a bare statement.
    pub signed: bool,
    /// The `keyid`s of its signatures.
    pub key_ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_statement() {
        for (url, published) in [
            (
                "https://x-access-token:ghs_secret@github.com/acme/app.git",
                "https://github.com/acme/app.git",
            ),
            (
                "https://user@git.example.com/a/b",
                "https://git.example.com/a/b",
            ),
            (
                "https://git.example.com/a/b?private_token=secret#x",
                "https://git.example.com/a/b",
            ),
            (
                "git@github.com:acme/app.git",
                "ssh://github.com/acme/app.git",
            ),
            (
                "ssh://git@git.example.com:2222/acme/app",
                "ssh://git.example.com:2222/acme/app",
            ),
            ("https://github.com", "https://github.com"),
            ("/srv/git/app.git", "/srv/git/app.git"),
            // A token holding a `#` or a `?` is not cut in two.
            ("https://bot:p#ss@host/r", "https://host/r"),
            ("https://bot:p?ss@host/r?x", "https://host/r"),
        ] {
            assert_eq!(without_credentials(url), published, "{url}");
        }
    }

    #[test]
    fn the_builder_is_the_ci_job_where_one_is_recognised() {
        let github = |name: &str| {
            Some(
                match name {
                    "GITHUB_ACTIONS" => "true",
                    "GITHUB_SERVER_URL" => "https://github.com",
                    "GITHUB_WORKFLOW_REF" => "acme/app/.github/workflows/release.yml@refs/tags/v1",
                    "GITHUB_REPOSITORY" => "acme/app",
                    "GITHUB_RUN_ID" => "42",
                    "GITHUB_RUN_ATTEMPT" => "2",
                    _ => return None,
                }
                .to_owned(),
            )
        };
        assert_eq!(
            RunDetails::from_env(&github),
            RunDetails {
                builder_id:
                    "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1".into(),
                invocation_id: Some(
                    "https://github.com/acme/app/actions/runs/42/attempts/2".into()
                ),
            }
        );
        let gitlab = |name: &str| {
            Some(
                match name {
                    "GITLAB_CI" => "true",
                    "CI_SERVER_URL" => "https://gitlab.example.com",
                    "CI_PROJECT_PATH" => "acme/app",
                    "CI_JOB_URL" => "https://gitlab.example.com/acme/app/-/jobs/7",
                    "CI_RUNNER_ID" => "3",
                    _ => return None,
                }
                .to_owned(),
            )
        };
        let run = RunDetails::from_env(&gitlab);
        assert_eq!(
            run.builder_id,
            "https://gitlab.example.com/acme/app/-/runners/3"
        );
        assert_eq!(
            run.invocation_id.as_deref(),
            Some("https://gitlab.example.com/acme/app/-/jobs/7")
        );
        let local = RunDetails::from_env(&|_| None);
        assert_eq!(
            (local.builder_id.as_str(), local.invocation_id),
            (LOCAL_BUILDER, None)
        );
    }

    #[test]
    fn the_toolchain_is_read_from_rustc_vv() {
        let text = "rustc 1.89.0 (29483883e 2025-08-04)\nbinary: rustc\n\
                    commit-hash: 29483883eed69d5fb4db01964cdf2af4d86e9cb2\n\
                    commit-date: 2025-08-04\nhost: x86_64-unknown-linux-gnu\nrelease: 1.89.0\n\
                    LLVM version: 20.1.7\n";
        assert_eq!(
            Toolchain::parse(text),
            Toolchain {
                release: Some("1.89.0".into()),
                commit_hash: Some("29483883eed69d5fb4db01964cdf2af4d86e9cb2".into()),
            }
        );
        assert_eq!(Toolchain::parse("commit-hash: unknown\n").commit_hash, None);
    }
}
