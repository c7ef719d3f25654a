//! The SBOMs and attestations of a build's images: each platform's SBOM and SLSA provenance
//! (signed with a key when one is given) attached to its manifest, and the files written
//! beside the outputs, with those of an earlier build that no longer apply.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use oci_pack::{BuildCache, BuiltImage};

use crate::attestation::provenance;
use crate::attestation::sbom;
use crate::attestation::signing;
use crate::plan::BuildPlan;
use crate::plan::Format;
use crate::plan::SbomFormat;

/// What the SBOMs of a build are made of.
pub(super) struct SbomInputs<'a> {
    pub(super) cache: &'a BuildCache,
    /// `cargo metadata` of each target's resolution.
    pub(super) resolved: &'a BTreeMap<String, cargo_metadata::Metadata>,
    pub(super) checksums: &'a sbom::Checksums,
    /// The package whose binaries the image holds.
    pub(super) package: &'a cargo_metadata::PackageId,
    pub(super) host: &'a str,
    pub(super) created: oci_pack::Timestamp,
}

/// The SBOM of each platform's image of `plan`: attached to the image in the cache's store
/// (the referrers to list in `index.json` and push), and the files to write beside `layout`,
/// `<layout>.<os>-<arch>.spdx.json`.
pub(super) fn attach_sboms(
    plan: &BuildPlan,
    built: &[oci_pack::BuiltImage],
    layout: &std::path::Path,
    inputs: &SbomInputs<'_>,
) -> Result<Sboms> {
    // Every SBOM file an earlier build may have left beside this layout: those this build
    // does not write describe another image, and go, when the layout they sat beside is
    // written too (else the layout keeps the SBOM it holds, and its file).
    let name = layout.file_name().unwrap_or_default().to_string_lossy();
    let name = name.as_ref();
    let writes_layout = plan.formats.contains(&Format::Oci);
    let stale = plan
        .images
        .iter()
        .filter(|_| writes_layout)
        .flat_map(|image| {
            let platform = image.platform.to_string().replace('/', "-");
            [SbomFormat::Spdx, SbomFormat::CycloneDx]
                .into_iter()
                .filter(|format| *format != plan.sbom)
                .map(move |format| format!("{name}.{platform}.{}", format.extension()))
        })
        .map(|file_name| layout.with_file_name(file_name))
        .collect();
    let Some(media_type) = plan.sbom.media_type() else {
        return Ok(Sboms {
            stale,
            ..Sboms::default()
        });
    };
    let mut referrers = Vec::new();
    let mut files = Vec::new();
    for (image, made) in plan.images.iter().zip(built) {
        let store = inputs.cache.store();
        let platform = image.platform.to_string();
        let triple = image.triple.as_deref().unwrap_or(inputs.host);
        let document = sbom::document(
            plan.sbom,
            &sbom::Subject {
                name: &plan.name,
                platform: &platform,
                manifest: made.manifest.digest,
                created: inputs.created,
                base: base_of(made),
            },
            &inputs.resolved[triple],
            inputs.package,
            inputs.checksums,
        )?;
        let file_name = format!(
            "{}.{}.{}",
            layout.file_name().unwrap_or_default().to_string_lossy(),
            platform.replace('/', "-"),
            plan.sbom.extension()
        );
        let annotations = BTreeMap::from([
            (
                oci_pack::annotation::CREATED.to_owned(),
                inputs.created.to_rfc3339(),
            ),
            (oci_pack::annotation::TITLE.to_owned(), file_name.clone()),
        ]);
        referrers.push(oci_pack::referrer::attach(
            store,
            &made.manifest,
            media_type,
            &document,
            annotations,
        )?);
        files.push((layout.with_file_name(file_name), document));
    }
    Ok(Sboms {
        referrers,
        files,
        stale,
    })
}

/// The base image's name and manifest digest, as `made`'s manifest annotations name them.
fn base_of(made: &BuiltImage) -> Option<(String, Option<String>)> {
    let name = made.base_name.clone()?;
    Some((name, made.base_digest.clone()))
}

/// What the attestations of an image are made of, and what signs them.
pub(super) struct Attesting<'a> {
    pub(super) store: &'a oci_pack::BlobStore,
    pub(super) signer: Option<&'a dyn signing::Signer>,
    pub(super) host: &'a str,
    pub(super) build: provenance::BuildFacts<'a>,
}

/// The in-toto predicate type of an SBOM document of `format`.
pub(super) fn sbom_predicate_type(format: SbomFormat) -> Option<&'static str> {
    match format {
        SbomFormat::Spdx => Some("https://spdx.dev/Document/v2.3"),
        SbomFormat::CycloneDx => Some("https://cyclonedx.org/bom/v1.5"),
        SbomFormat::None => None,
    }
}

/// Each platform's attestations of `plan`: its SLSA provenance (a statement, or with a signer
/// a DSSE envelope of it) and, with a signer, its SBOM (`sboms`, one per platform, in order)
/// as a signed statement too; each attached to the platform's manifest and written beside
/// `layout` (`<layout>.<os>-<arch>.provenance.json`, `….provenance.dsse.json`,
/// `….spdx.dsse.json`). The files of these kinds this build does not write are stale.
pub(super) fn attach_attestations(
    plan: &BuildPlan,
    built: &[oci_pack::BuiltImage],
    layout: &std::path::Path,
    sboms: &[(PathBuf, Vec<u8>)],
    inputs: &Attesting<'_>,
) -> Result<Sboms> {
    use oci_pack::annotation::{CREATED, PREDICATE_TYPE, TITLE};
    use oci_pack::media_type::{DSSE_ENVELOPE, IN_TOTO_JSON};
    let name = layout.file_name().unwrap_or_default().to_string_lossy();
    let writes_layout = plan.formats.contains(&Format::Oci);
    let mut attested = Sboms::default();
    for (i, (image, made)) in plan.images.iter().zip(built).enumerate() {
        let platform = image.platform.to_string();
        let stem = format!("{name}.{}", platform.replace('/', "-"));
        let mut written = Vec::new();
        let mut attach =
            |file_name: String, media_type: Option<&str>, predicate_type: &str, bytes: Vec<u8>| {
                // `None`: a file beside the outputs only.
                if let Some(media_type) = media_type {
                    let annotations = BTreeMap::from([
                        (CREATED.to_owned(), inputs.build.created.to_rfc3339()),
                        (TITLE.to_owned(), file_name.clone()),
                        (PREDICATE_TYPE.to_owned(), predicate_type.to_owned()),
                    ]);
                    attested.referrers.push(oci_pack::referrer::attach(
                        inputs.store,
                        &made.manifest,
                        media_type,
                        &bytes,
                        annotations,
                    )?);
                }
                attested
                    .files
                    .push((layout.with_file_name(&file_name), bytes));
                written.push(file_name);
                anyhow::Ok(())
            };
        let sign = |statement: &[u8]| -> Result<Option<Vec<u8>>> {
            inputs
                .signer
                .map(|signer| {
                    signing::Envelope::sign(signing::IN_TOTO_PAYLOAD_TYPE, statement, signer)
                        .map(|envelope| envelope.to_bytes())
                        .context("failed to sign an attestation")
                })
                .transpose()
        };
        if plan.provenance {
            let statement = provenance_statement(plan, image, made, inputs)?;
            let file_name = format!("{stem}.provenance.json");
            match sign(&statement)? {
                Some(envelope) => {
                    attach(
                        format!("{stem}.provenance.dsse.json"),
                        Some(DSSE_ENVELOPE),
                        provenance::SLSA_PROVENANCE,
                        envelope,
                    )?;
                    // The statement itself beside it, unattached.
                    attach(file_name, None, provenance::SLSA_PROVENANCE, statement)?;
                }
                None => attach(
                    file_name,
                    Some(IN_TOTO_JSON),
                    provenance::SLSA_PROVENANCE,
                    statement,
                )?,
            }
        }
        if let (Some(predicate_type), Some((_, document))) =
            (sbom_predicate_type(plan.sbom), sboms.get(i))
        {
            let predicate: serde_json::Value =
                serde_json::from_slice(document).context("failed to read the SBOM just made")?;
            let statement = provenance::statement(
                &plan.name,
                &made.manifest.digest,
                predicate_type,
                predicate,
            )?;
            if let Some(envelope) = sign(&statement)? {
                let kind = plan.sbom.extension().trim_end_matches(".json");
                attach(
                    format!("{stem}.{kind}.dsse.json"),
                    Some(DSSE_ENVELOPE),
                    predicate_type,
                    envelope,
                )?;
            }
        }
        if writes_layout {
            for kind in [
                "provenance.json",
                "provenance.dsse.json",
                "spdx.dsse.json",
                "cdx.dsse.json",
            ] {
                let file_name = format!("{stem}.{kind}");
                if !written.contains(&file_name) {
                    attested.stale.push(layout.with_file_name(file_name));
                }
            }
        }
    }
    Ok(attested)
}

/// The in-toto statement of the SLSA provenance of `made`, `plan`'s image for `image`'s platform.
pub(super) fn provenance_statement(
    plan: &BuildPlan,
    image: &crate::plan::ImagePlan,
    made: &BuiltImage,
    inputs: &Attesting<'_>,
) -> Result<Vec<u8>> {
    let predicate = provenance::slsa_predicate(
        &inputs.build,
        &provenance::ImageFacts {
            name: &plan.name,
            triple: image.triple.as_deref().unwrap_or(inputs.host),
            platform: &image.platform.to_string(),
            base: base_of(made),
        },
    );
    provenance::statement(
        &plan.name,
        &made.manifest.digest,
        provenance::SLSA_PROVENANCE,
        predicate,
    )
}

/// An image's SBOMs: attached (the referrers), to write beside it (each path and bytes), and
/// the files of other formats an earlier build left there, to remove.
#[derive(Default)]
pub(super) struct Sboms {
    pub(super) referrers: Vec<oci_pack::Descriptor>,
    pub(super) files: Vec<(PathBuf, Vec<u8>)>,
    pub(super) stale: Vec<PathBuf>,
}
