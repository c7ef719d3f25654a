//! `cargo oci verify --key PUB.pem [IMAGE]`: whether every platform of an image (a layout, an
//! archive, a registry's) has an SLSA provenance signed by that key about that platform's very
//! manifest. Each platform that has none is named with what was found instead: no provenance,
//! an unsigned one, one signed by another key, one about another manifest. "Not verified" is
//! exit code 1 ([`NotVerified`]); an image or key that cannot be read is an error like any.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use oci_pack::annotation::PREDICATE_TYPE;
use oci_pack::inspect::{Image, Referrer};
use oci_pack::media_type::{DSSE_ENVELOPE, IN_TOTO_JSON};
use oci_pack::{Digest, ImageSource, Selector};
use serde::Serialize;

use crate::attestation::provenance::SLSA_PROVENANCE;
use crate::attestation::signing::{Envelope, PublicKey, Unverified};
use crate::error::NotVerified;
use crate::inspect;
use crate::plan::MessageFormat;
use crate::registry::Registries;
use crate::shell::Shell;
use crate::text::escape_controls;

/// What `verify --key` was asked.
#[derive(Debug)]
pub struct Request<'a> {
    pub key: &'a Path,
    /// The image; `None`: the package's layout.
    pub image: Option<&'a str>,
    pub cargo: &'a crate::cargo::options::WorkspaceOptions,
    pub insecure_registry: &'a [String],
    pub format: MessageFormat,
}

/// One platform's verdict.
#[derive(Debug, Serialize)]
struct PlatformVerdict {
    platform: String,
    manifest: Option<Digest>,
    verified: bool,
    /// The artifact whose envelope verified.
    provenance: Option<Digest>,
    /// What was found instead, when nothing verified.
    problems: Vec<String>,
}

pub fn check(request: &Request<'_>, shell: &Shell) -> Result<()> {
    let key = PublicKey::from_file(request.key)?;
    let key_id = key.key_id()?;
    let (source, cache_dir) = match request.image {
        Some(text) => {
            let here = match &request.cargo.current_dir {
                Some(dir) => dir.clone(),
                None => std::env::current_dir().context("failed to read the current directory")?,
            };
            let source = ImageSource::parse(text, &here)?;
            let cache_dir: Option<PathBuf> = match &source {
                ImageSource::Registry(_) => inspect::target_dir(request.cargo).ok(),
                _ => None,
            };
            (source, cache_dir)
        }
        None => (
            ImageSource::OciLayout {
                dir: inspect::package_layout(request.cargo)?,
                selector: Selector::Only,
            },
            None,
        ),
    };
    let registries = Registries::from_env(
        request.insecure_registry,
        request.cargo.offline || request.cargo.frozen,
        &[],
    )?;
    let opened = inspect::open(&source, cache_dir.as_deref(), &registries, None, shell)?;
    let verdicts: Vec<PlatformVerdict> = opened
        .image
        .platforms
        .iter()
        .map(|platform| {
            let manifest = platform.manifest.as_ref().map(|m| m.digest);
            let (provenance, problems) = match manifest {
                Some(manifest) => judge(&opened.image, &manifest, &key),
                None => (
                    None,
                    vec![
                        "it has no OCI manifest (a Docker archive without one), so nothing \
                          can be attached to it"
                            .to_owned(),
                    ],
                ),
            };
            PlatformVerdict {
                platform: platform.platform.to_string(),
                manifest,
                verified: provenance.is_some(),
                provenance,
                problems,
            }
        })
        .collect();
    let verified = verdicts.iter().all(|v| v.verified);
    let mut stdout = std::io::stdout().lock();
    match request.format {
        MessageFormat::Json => {
            let message = serde_json::json!({
                "reason": crate::report::reason::ATTESTATIONS_VERIFIED,
                "image": source.to_string(),
                "key": key_id,
                "verified": verified,
                "platforms": verdicts,
            });
            writeln!(stdout, "{message}")?;
        }
        MessageFormat::Human => {
            for verdict in &verdicts {
                match (&verdict.provenance, &verdict.manifest) {
                    (Some(provenance), Some(manifest)) => writeln!(
                        stdout,
                        "{}: verified: the SLSA provenance {provenance} of {manifest} is \
                         signed by key {key_id}",
                        verdict.platform
                    )?,
                    _ => writeln!(
                        stdout,
                        "{}: not verified: {}",
                        verdict.platform,
                        escape_controls(&verdict.problems.join("; "))
                    )?,
                }
            }
        }
    }
    if verified {
        return Ok(());
    }
    let failed: Vec<&str> = verdicts
        .iter()
        .filter(|v| !v.verified)
        .map(|v| v.platform.as_str())
        .collect();
    Err(NotVerified {
        message: format!(
            "`{source}` is not verified: {} {} no SLSA provenance signed by `{}` (key {key_id})",
            failed.join(", "),
            if failed.len() == 1 { "has" } else { "have" },
            request.key.display()
        ),
    }
    .into())
}

/// The provenance artifact of `manifest` whose envelope `key` signed over a statement about
/// `manifest`; else what every candidate was instead.
fn judge(image: &Image, manifest: &Digest, key: &PublicKey) -> (Option<Digest>, Vec<String>) {
    let about: Vec<&Referrer> = image
        .referrers
        .iter()
        .filter(|r| r.subject == *manifest)
        .collect();
    let provenances: Vec<&&Referrer> = about
        .iter()
        .filter(|r| {
            r.annotations.get(PREDICATE_TYPE).map(String::as_str) == Some(SLSA_PROVENANCE)
                || (r.artifact_type == DSSE_ENVELOPE && !r.annotations.contains_key(PREDICATE_TYPE))
        })
        .collect();
    if provenances.is_empty() {
        let attached: Vec<&str> = about.iter().map(|r| r.artifact_type.as_str()).collect();
        return (
            None,
            vec![match attached.as_slice() {
                [] => "no provenance is attached (nothing refers to its manifest)".to_owned(),
                types => format!("no provenance is attached (only {})", types.join(", ")),
            }],
        );
    }
    let mut problems = Vec::new();
    for referrer in provenances {
        let what = format!("the provenance {}", referrer.digest);
        if referrer.artifact_type == IN_TOTO_JSON {
            problems.push(format!(
                "{what} is not signed (an in-toto statement, no envelope)"
            ));
            continue;
        }
        if referrer.artifact_type != DSSE_ENVELOPE {
            problems.push(format!(
                "{what} is a `{}`, not a DSSE envelope",
                referrer.artifact_type
            ));
            continue;
        }
        let Some(layer) = referrer.layers.first() else {
            problems.push(format!("{what} holds no envelope"));
            continue;
        };
        let bytes = match image.store.read(layer) {
            Ok(bytes) => bytes,
            Err(error) => {
                problems.push(format!("{what}: its envelope cannot be read: {error}"));
                continue;
            }
        };
        let envelope = match Envelope::parse(&bytes) {
            Ok(envelope) => envelope,
            Err(error) => {
                problems.push(format!("{what}: {error}"));
                continue;
            }
        };
        let payload = match envelope.verify(key) {
            Ok(payload) => payload,
            Err(Unverified::WrongSignature) => {
                let ids: Vec<&str> = envelope
                    .signatures
                    .iter()
                    .map(|s| s.keyid.as_str())
                    .filter(|id| !id.is_empty())
                    .collect();
                problems.push(match ids.as_slice() {
                    [] => format!("{what} is not signed by this key"),
                    ids => format!("{what} is signed by another key ({})", ids.join(", ")),
                });
                continue;
            }
            Err(error) => {
                problems.push(format!("{what}: {error}"));
                continue;
            }
        };
        match statement_about(&payload) {
            Some((predicate, subjects))
                if predicate == SLSA_PROVENANCE
                    && subjects.contains(&manifest.hex().to_owned()) =>
            {
                return (Some(referrer.digest), Vec::new());
            }
            Some((predicate, _)) if predicate != SLSA_PROVENANCE => problems.push(format!(
                "{what} is signed by this key, and its statement is a `{predicate}`"
            )),
            Some((_, subjects)) => problems.push(format!(
                "{what} is signed by this key, and is about another manifest (sha256:{})",
                subjects.join(", sha256:")
            )),
            None => problems.push(format!(
                "{what} is signed by this key, and holds no in-toto statement"
            )),
        }
    }
    (None, problems)
}

/// An in-toto statement's predicate type and its subjects' sha256 digests.
fn statement_about(payload: &[u8]) -> Option<(String, Vec<String>)> {
    let statement: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let predicate = statement["predicateType"].as_str()?.to_owned();
    let subjects = statement["subject"]
        .as_array()?
        .iter()
        .filter_map(|s| s["digest"]["sha256"].as_str().map(str::to_owned))
        .collect();
    Some((predicate, subjects))
}
