//! The words the metadata, the flags and the outputs share: output formats, loaders, SBOM
//! formats, provenance, and how results are printed. Each is named as `Cargo.toml` and the
//! command line name it.

use std::path::{Path, PathBuf};

use oci_pack::media_type;

/// An output format, as `formats = [...]` and `--format` name it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// The OCI image layout directory
    Oci,
    /// The OCI image layout as one tar file
    OciArchive,
    /// A tar file for `docker load` and `podman load`
    Docker,
}

impl Format {
    /// As `formats` and `--format` name it: `oci`, `oci-archive`, `docker`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Oci => "oci",
            Format::OciArchive => "oci-archive",
            Format::Docker => "docker",
        }
    }

    /// Where this format is written, given the layout's path: archives sit beside it.
    pub fn path(self, layout: &Path) -> PathBuf {
        let suffix = match self {
            Format::Oci => return layout.to_owned(),
            Format::OciArchive => ".oci.tar",
            Format::Docker => ".docker.tar",
        };
        let mut path = layout.as_os_str().to_owned();
        path.push(suffix);
        path.into()
    }
}

/// A local image store to load the image into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Loader {
    /// `docker load`
    Docker,
    /// `podman load`
    Podman,
}

impl Loader {
    /// The program: `docker` or `podman`.
    pub fn program(self) -> &'static str {
        match self {
            Loader::Docker => "docker",
            Loader::Podman => "podman",
        }
    }

    /// The one on this machine: podman if it is installed (no daemon needs to be running),
    /// else docker.
    pub fn installed() -> Option<Loader> {
        [Loader::Podman, Loader::Docker]
            .into_iter()
            .find(|loader| on_path(loader.program()))
    }

    pub(crate) fn other(self) -> Loader {
        match self {
            Loader::Docker => Loader::Podman,
            Loader::Podman => Loader::Docker,
        }
    }
}

pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MessageFormat {
    /// One line per output: format, digest, path
    #[default]
    Human,
    /// One JSON object per output
    Json,
}

/// Which document an image's SBOM is: `sbom = "…"` and `--sbom`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum SbomFormat {
    /// SPDX 2.3 JSON (`<image>.<os>-<arch>.spdx.json`)
    #[default]
    Spdx,
    /// CycloneDX 1.5 JSON (`<image>.<os>-<arch>.cdx.json`)
    #[value(name = "cyclonedx")]
    #[serde(rename = "cyclonedx")]
    CycloneDx,
    /// No SBOM
    None,
}

impl SbomFormat {
    /// The artifact type of the document, as a referrer of the image announces it.
    pub fn media_type(self) -> Option<&'static str> {
        match self {
            SbomFormat::Spdx => Some(media_type::SPDX_JSON),
            SbomFormat::CycloneDx => Some(media_type::CYCLONEDX_JSON),
            SbomFormat::None => None,
        }
    }

    /// The end of the file's name: `spdx.json` or `cdx.json`.
    pub fn extension(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "spdx.json",
            SbomFormat::CycloneDx => "cdx.json",
            SbomFormat::None => "",
        }
    }
}

/// Whether an image gets its provenance: `provenance = false` and `--provenance`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProvenanceMode {
    /// SLSA v1 provenance for each platform's image (`<image>.<os>-<arch>.provenance.json`)
    #[default]
    Slsa,
    /// No provenance
    None,
}
