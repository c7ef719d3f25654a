//! What commands print on stdout: a line (or JSON object, `--message-format json`) per output,
//! load and push of an image, each JSON message with its `reason` first, as cargo's own are.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use oci_pack::registry::Pushed;

use crate::plan::{Format, Loader, MessageFormat};

/// One thing the build produced.
#[derive(Debug)]
pub struct Output {
    pub format: Format,
    pub path: PathBuf,
    /// It already held this image, and was left untouched.
    pub fresh: bool,
}

/// The status line of a push: where it went, and what had to travel.
pub fn push_status(pushed: &Pushed) -> String {
    format!(
        "{} ({} blobs sent, {} already there, {} mounted)",
        pushed.reference, pushed.uploaded, pushed.skipped, pushed.mounted
    )
}

/// The `reason` of each kind of JSON message (`--message-format json`), as each of cargo's
/// own messages names its kind, so ours can share a stream with cargo's.
pub mod reason {
    /// An output written (or fresh): a layout, an archive.
    pub const IMAGE_BUILT: &str = "image-built";
    /// An SBOM file written beside the outputs.
    pub const SBOM_WRITTEN: &str = "sbom-written";
    /// The image streamed into `docker load` or `podman load`.
    pub const IMAGE_LOADED: &str = "image-loaded";
    /// The image (or `cargo oci index`'s index) pushed to a registry.
    pub const IMAGE_PUSHED: &str = "image-pushed";
    /// `cargo oci inspect`: an image as it is.
    pub const IMAGE_INSPECTED: &str = "image-inspected";
    /// `cargo oci verify`: a rebuild compared with the image.
    pub const IMAGE_VERIFIED: &str = "image-verified";
    /// `cargo oci verify --layout`: a layout's integrity.
    pub const LAYOUT_CHECKED: &str = "layout-checked";
    /// `cargo oci verify --key`: an image's signed provenance.
    pub const ATTESTATIONS_VERIFIED: &str = "attestations-verified";
}

/// A JSON message: its `reason` first, then `body`'s fields in their order.
#[derive(Debug, serde::Serialize)]
pub struct Message<'a, T> {
    pub reason: &'static str,
    #[serde(flatten)]
    pub body: &'a T,
}

/// What every output line says about the image.
#[derive(Debug)]
pub struct ImageSummary {
    /// The image's name (its package's, or its `images.<name>` key).
    pub name: String,
    /// What `index.json` points at.
    pub digest: String,
    /// The config digest, Docker's and podman's image ID; `None` for an index of several.
    pub config: Option<String>,
    pub tags: Vec<String>,
    pub platforms: Vec<String>,
    /// The SBOM files written beside the outputs, one per platform.
    pub sboms: Vec<PathBuf>,
    /// The attestation files beside them (provenance, signed envelopes).
    pub attestations: Vec<PathBuf>,
}

/// One line (or JSON object) per output, and one for an image loaded into a local store.
pub fn report(
    format: MessageFormat,
    image: &ImageSummary,
    outputs: &[Output],
    loaded: Option<Loader>,
    pushed: Option<&Pushed>,
) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    // Each line names where the image went: a path, a loader, or a registry reference.
    let mut line = |kind: &str, place: (&str, String)| -> std::io::Result<()> {
        let reason = match kind {
            "sbom" => reason::SBOM_WRITTEN,
            "load" => reason::IMAGE_LOADED,
            "push" => reason::IMAGE_PUSHED,
            _ => reason::IMAGE_BUILT,
        };
        match format {
            MessageFormat::Human => writeln!(stdout, "{kind} {} {}", image.digest, place.1),
            MessageFormat::Json => {
                let mut message = serde_json::json!({
                    "reason": reason,
                    "format": kind,
                    "image": image.name,
                    "digest": image.digest,
                    "config": image.config,
                    "tags": image.tags,
                    "platforms": image.platforms,
                });
                message[place.0] = serde_json::json!(place.1);
                writeln!(stdout, "{message}")
            }
        }
    };
    for output in outputs {
        line(
            output.format.name(),
            ("path", output.path.display().to_string()),
        )?;
    }
    for sbom in &image.sboms {
        line("sbom", ("path", sbom.display().to_string()))?;
    }
    if let Some(loader) = loaded {
        line("load", ("loader", loader.program().to_owned()))?;
    }
    if let Some(pushed) = pushed {
        line("push", ("reference", pushed.reference.clone()))?;
    }
    Ok(())
}
