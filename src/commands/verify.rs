//! `cargo oci verify`: its flags, made into one of its three checks: a rebuild compared with the
//! image ([`Rebuild`]), a layout's integrity (`--layout`), an image's signed provenance (`--key`).

use std::path::PathBuf;

use anyhow::Result;

use crate::cargo::options::CargoOptions;
use crate::plan::metadata::{CompressionSpec, ElfCheck};
use crate::plan::MessageFormat;
use crate::shell::Shell;
use crate::verify::{self, attestations, Rebuild};

/// `cargo oci verify`'s flags: a rebuild's, `--layout`'s or `--key`'s.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub cargo: CargoOptions,
    /// Check this OCI layout alone, building nothing: every blob's digest and size, every
    /// reference, every layer's diff_id
    #[arg(long, value_name = "DIR", conflicts_with = "against")]
    pub layout: Option<PathBuf>,
    /// Compare the rebuild with this image rather than `<target-dir>/oci/<image>`:
    /// `docker://HOST/REPO@sha256:…`, `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, …
    #[arg(long, value_name = "IMAGE")]
    pub against: Option<String>,
    /// Check, building nothing, that every platform of IMAGE has an SLSA provenance signed by
    /// this public key (PEM) about its own manifest; exit code 1 when one does not
    #[arg(long, value_name = "PUB.pem", conflicts_with_all = ["layout", "against"])]
    pub key: Option<PathBuf>,
    /// With `--key`: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker://HOST/REPO[:TAG|@…]`
    /// (default: the package's layout, `<target-dir>/oci/<image>`)
    #[arg(value_name = "IMAGE", requires = "key")]
    pub image: Option<String>,
    /// What a failed check of a binary's architecture, loader or libraries does (default: deny)
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub elf_check: Option<ElfCheck>,
    /// How new layers are compressed, overriding `compression` in Cargo.toml
    #[arg(long, value_enum, value_name = "CODEC")]
    pub compression: Option<CompressionSpec>,
    /// Allow plain HTTP to this registry (loopback registries always are), repeatable
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// How results are printed on stdout
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
}

pub fn exec(args: VerifyArgs, shell: &Shell) -> Result<()> {
    if let Some(key) = &args.key {
        let request = attestations::Request {
            key,
            image: args.image.as_deref(),
            cargo: &args.cargo.workspace,
            insecure_registry: &args.insecure_registry,
            format: args.message_format,
        };
        return attestations::check(&request, shell);
    }
    if let Some(layout) = &args.layout {
        return verify::check_layout(layout, args.message_format, shell);
    }
    let rebuild = Rebuild {
        cargo: args.cargo,
        against: args.against,
        elf_check: args.elf_check,
        compression: args.compression,
        insecure_registry: args.insecure_registry,
        message_format: args.message_format,
    };
    verify::rebuild_and_compare(&rebuild, shell)
}
