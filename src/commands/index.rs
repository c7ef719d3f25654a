//! `cargo oci index --tag REPO:TAG IMAGE…`: its flags, the join, and its report.

use anyhow::Result;

use crate::index::{self, IndexOptions};
use crate::plan::MessageFormat;
use crate::report;
use crate::shell::Shell;

/// `cargo oci index`'s flags.
#[derive(Debug, clap::Args)]
pub struct IndexArgs {
    /// The images to join, each `HOST[:PORT]/NAME@sha256:…`, all in the same repository
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
    /// The tag to push the index under, `HOST[:PORT]/NAME:TAG` (repeatable)
    #[arg(long = "tag", value_name = "REFERENCE", required = true)]
    pub tags: Vec<String>,
    /// Allow plain HTTP to this registry (loopback registries always are), repeatable
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// How results are printed on stdout
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
}

pub fn exec(args: IndexArgs, shell: &Shell) -> Result<()> {
    let options = IndexOptions {
        images: args.images,
        tags: args.tags,
        insecure_registry: args.insecure_registry,
    };
    let image = index::join(&options, shell)?;
    report::report(args.message_format, &image)
}
