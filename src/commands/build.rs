//! `cargo oci build`: its flags, made into [`BuildOptions`] for the build; then the way to run
//! the one image built, for whoever has not done it before.

use std::path::PathBuf;

use anyhow::Result;

use crate::build::{self, BuildOptions};
use crate::cargo::options::CargoOptions;
use crate::cargo::workspace::Facts;
use crate::plan::metadata::{CompressionSpec, ElfCheck};
use crate::plan::{values, Format, Loader, MessageFormat, ProvenanceMode, SbomFormat};
use crate::report::Image;
use crate::shell::Shell;

/// `cargo oci build`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub cargo: CargoOptions,
    /// Build for the base image's platforms: `all`, or some (`linux/arm64,linux/amd64`), each
    /// as the Rust target of its architecture and the base's C library (or `target-libc`)
    #[arg(long, value_name = "all|PLATFORMS", conflicts_with = "targets")]
    pub platform: Option<String>,
    /// Write the OCI image layout to this directory (default: `<target-dir>/oci/<image>`; only
    /// when one image is built)
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Pack binaries already built at `<target-dir>/<triple>/<profile>/<bin>` (or, for the
    /// host, `<target-dir>/<profile>/<bin>`) instead of building
    #[arg(long)]
    pub no_build: bool,
    /// What a failed check of a binary's architecture, loader or libraries does (default: deny)
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub elf_check: Option<ElfCheck>,
    /// How new layers are compressed, overriding `compression` in Cargo.toml
    #[arg(long, value_enum, value_name = "CODEC")]
    pub compression: Option<CompressionSpec>,
    /// Tag the image NAME:TAG instead of the `tags` in Cargo.toml (repeatable; placeholders such
    /// as `{git_short_sha}` as in `tags`)
    #[arg(long = "tag", value_name = "NAME:TAG")]
    pub tags: Vec<String>,
    /// Output formats to write, overriding `formats` in Cargo.toml (repeatable)
    #[arg(long = "format", value_enum, value_name = "FORMAT")]
    pub formats: Vec<Format>,
    /// The SBOM of each image, overriding `sbom` in Cargo.toml (default: spdx)
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub sbom: Option<SbomFormat>,
    /// The SLSA provenance of each image, overriding `provenance` in Cargo.toml (default: slsa)
    #[arg(long, value_enum, value_name = "KIND")]
    pub provenance: Option<ProvenanceMode>,
    /// Sign each attestation (provenance, SBOM) with this unencrypted PKCS#8 PEM key, ECDSA
    /// P-256 or Ed25519 (default: `CARGO_OCI_SIGNING_KEY`, a path or the PEM itself)
    #[arg(long, value_name = "PATH")]
    pub sign_key: Option<PathBuf>,
    /// Build with `cargo auditable build`, so each binary carries its dependency list
    /// (as `auditable = true` in Cargo.toml)
    #[arg(long)]
    pub auditable: bool,
    /// Stream the image into `docker load` or `podman load`, writing no tar file
    #[arg(
        long,
        value_enum,
        value_name = "LOADER",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "docker"
    )]
    pub load: Option<Loader>,
    /// Push each image under its tags: to REPOSITORY (`HOST[:PORT]/NAME`; with several images,
    /// to `REPOSITORY/<image>`), or without one to each image's `repository`
    #[arg(long, value_name = "REPOSITORY", num_args = 0..=1, default_missing_value = "")]
    pub push: Option<String>,
    /// With --push: push by digest only, no tag (one job of a multi-architecture release,
    /// joined later by `cargo oci index`)
    #[arg(long, requires = "push")]
    pub by_digest: bool,
    /// Allow plain HTTP to this registry (loopback registries always are), repeatable
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// How results are printed on stdout
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
}

impl BuildArgs {
    /// The build these flags ask for, reported on stdout in `--message-format`.
    pub fn into_options(self) -> BuildOptions {
        BuildOptions {
            cargo: self.cargo,
            platform: self.platform,
            output: self.output,
            no_build: self.no_build,
            elf_check: self.elf_check,
            compression: self.compression,
            tags: self.tags,
            formats: self.formats,
            sbom: self.sbom,
            provenance: self.provenance,
            sign_key: self.sign_key,
            auditable: self.auditable,
            load: self.load,
            push: self.push,
            by_digest: self.by_digest,
            insecure_registry: self.insecure_registry,
            report: Some(self.message_format),
            extra_rustflags: Vec::new(),
        }
    }
}

pub fn exec(args: BuildArgs, shell: &Shell) -> Result<()> {
    let options = args.into_options();
    let facts = Facts::gather(&options.cargo.workspace)?;
    let finished = build::build(&options, &facts, shell)?;
    if let [only] = finished.as_slice() {
        // The package the user named, named again in the commands suggested.
        let package = match options.cargo.workspace.packages.as_slice() {
            [one] => format!(" -p {one}"),
            _ => String::new(),
        };
        next_steps(only, &package, &facts.host, options.load, shell);
    }
    Ok(())
}

/// How to run what was just built, for someone who has not done it before: with the image's
/// own name and its ports published (`podman pull oci:DIR` would name it after the directory).
fn next_steps(image: &Image, package: &str, host: &str, loaded: Option<Loader>, shell: &Shell) {
    let Some(tag) = image.tags.first().filter(|_| image.runs_on(host)) else {
        return;
    };
    // A base's range (`1-65535/tcp`) is no port to publish.
    let ports: String = image
        .exposed_ports
        .iter()
        .filter_map(|port| Some(format!(" -p {}:{port}", values::single_port(port)?)))
        .collect();
    let engine = loaded
        .or_else(Loader::installed)
        .unwrap_or(Loader::Podman)
        .program();
    let run = format!("{engine} run --rm{ports} {tag}");
    let archive = image.outputs.iter().find(|o| o.format == Format::Docker);
    match (loaded, archive) {
        (Some(_), _) => shell.status("Run", format_args!("`{run}`")),
        (None, Some(archive)) => shell.status(
            "Run",
            format_args!(
                "`{engine} load -i {}` then `{run}`, or `cargo oci run{package}`",
                archive.path.display()
            ),
        ),
        (None, None) => shell.status(
            "Run",
            format_args!(
                "`cargo oci run{package}`, or `cargo oci build{package} --load={engine}` then \
                 `{run}`"
            ),
        ),
    }
}
