//! What commands print on stdout: a line (or JSON object, `--message-format json`) per output,
//! load and push of an image, each JSON message with its `reason` first, as cargo's own are;
//! and the [`Image`] it is about, which the library returns too.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use oci_pack::registry::Pushed;

use crate::plan::{Format, Loader, MessageFormat};

// The one result of an image: the stdout lines and JSON messages of `build` (and of `push`
// and `index`, of theirs) and the library's return value all read it.
/// One image a [`Build`](crate::Build) made, as `cargo oci build` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Image {
    /// Its name: its package's, or its `images.<name>` key.
    pub name: String,
    /// `sha256:…` of what its `index.json` points at: its manifest, or an index of several.
    pub digest: String,
    /// The config digest (the image ID docker and podman show); `None` for an index.
    pub config: Option<String>,
    /// `name:tag`, each.
    pub tags: Vec<String>,
    /// `linux/amd64`, … one per image in it.
    pub platforms: Vec<String>,
    /// What was written, in format order.
    pub outputs: Vec<Output>,
    /// The SBOM files beside the outputs, one per platform (none with `SbomFormat::None`).
    pub sboms: Vec<PathBuf>,
    /// The attestation files beside them: each platform's provenance statement and, with a
    /// signing key, the signed envelopes.
    pub attestations: Vec<PathBuf>,
    /// The loader it was streamed into.
    pub loaded: Option<Loader>,
    /// `REPOSITORY@sha256:…`, when it was pushed.
    pub pushed: Option<String>,
    /// Its layers (of every platform).
    pub layers: usize,
    /// Its layers' and configs' bytes, compressed as they are stored and sent.
    pub compressed_bytes: u64,
    /// Of a single-platform image: the ports it exposes (`8080/tcp`), for `cargo oci run`.
    pub(crate) exposed_ports: Vec<String>,
}

impl Image {
    /// The image of this name and digest; nothing else is known of it yet.
    pub(crate) fn of(name: String, digest: String) -> Image {
        Image {
            name,
            digest,
            config: None,
            tags: Vec::new(),
            platforms: Vec::new(),
            outputs: Vec::new(),
            sboms: Vec::new(),
            attestations: Vec::new(),
            loaded: None,
            pushed: None,
            layers: 0,
            compressed_bytes: 0,
            exposed_ports: Vec::new(),
        }
    }

    /// Whether it is a single image of `host`'s platform (a Rust target), which it can run.
    pub(crate) fn runs_on(&self, host: &str) -> bool {
        let host = oci_pack::Platform::from_rust_target(host);
        matches!(
            (self.platforms.as_slice(), host),
            ([platform], Some(host)) if *platform == host.to_string()
        )
    }
}

/// A file or directory an image was written to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Output {
    /// Which output it is.
    pub format: Format,
    /// The layout's directory, or the archive's file.
    pub path: PathBuf,
    /// It held this very image already and was left untouched.
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

/// One line (or JSON object) per output, and one for an image loaded into a local store.
pub fn report(format: MessageFormat, image: &Image) -> Result<()> {
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
    for output in &image.outputs {
        line(
            output.format.name(),
            ("path", output.path.display().to_string()),
        )?;
    }
    for sbom in &image.sboms {
        line("sbom", ("path", sbom.display().to_string()))?;
    }
    if let Some(loader) = image.loaded {
        line("load", ("loader", loader.program().to_owned()))?;
    }
    if let Some(reference) = &image.pushed {
        line("push", ("reference", reference.clone()))?;
    }
    Ok(())
}
