//! `cargo oci inspect [IMAGE]`: its flags, made into [`InspectOptions`].

use anyhow::Result;

use crate::cargo::options::WorkspaceOptions;
use crate::inspect::{self, InspectOptions};
use crate::plan::MessageFormat;
use crate::shell::Shell;

/// `cargo oci inspect`'s flags.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The image: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:NAME:TAG]`
    /// or `docker://HOST/REPO[:TAG|@DIGEST]` (default: the package's layout,
    /// `<target-dir>/oci/<image>`)
    #[arg(value_name = "IMAGE")]
    pub image: Option<String>,
    #[command(flatten)]
    pub cargo: WorkspaceOptions,
    /// Only the platform OS/ARCH[/VARIANT] (of a registry image, only its blobs are fetched)
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// List the final file tree (whiteouts applied) by path, with mode, owner and size
    #[arg(long)]
    pub files: bool,
    /// With `--files`: the largest first
    #[arg(long, requires = "files")]
    pub largest: bool,
    /// Allow plain HTTP to this registry (loopback registries always are), repeatable
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// How results are printed on stdout
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
}

pub fn exec(args: InspectArgs, shell: &Shell) -> Result<()> {
    let options = InspectOptions {
        image: args.image,
        cargo: args.cargo,
        platform: args.platform,
        files: args.files,
        largest: args.largest,
        insecure_registry: args.insecure_registry,
        message_format: args.message_format,
    };
    inspect::inspect(&options, shell)
}
