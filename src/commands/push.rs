//! `cargo oci push REPOSITORY`: its flags, the layout they name (the package's by default), the
//! push, and its report.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::cargo::options::WorkspaceOptions;
use crate::cargo::workspace::Facts;
use crate::plan::MessageFormat;
use crate::push::{self, PushOptions};
use crate::report;
use crate::shell::Shell;

/// `cargo oci push`'s flags.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Where to push: `HOST[:PORT]/NAME`
    #[arg(value_name = "REPOSITORY")]
    pub repository: String,
    /// The OCI layout to push (default: the package's, `<target-dir>/oci/<package>`)
    #[arg(long, value_name = "DIR")]
    pub layout: Option<PathBuf>,
    #[command(flatten)]
    pub cargo: WorkspaceOptions,
    /// Allow plain HTTP to this registry (loopback registries always are), repeatable
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Push by digest only, without the layout's tags
    #[arg(long)]
    pub by_digest: bool,
    /// How results are printed on stdout
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
}

pub fn exec(args: PushArgs, shell: &Shell) -> Result<()> {
    let layout = match args.layout.clone() {
        Some(layout) => layout,
        None => {
            let facts = Facts::gather(&args.cargo)?;
            let names = crate::plan::image_names(&facts, &args.cargo)?;
            let [name] = names.as_slice() else {
                bail!(
                    "the packages chosen make {} images ({}); name one layout with \
                     `--layout <target-dir>/oci/<image>`, or build and push them all with \
                     `cargo oci build --push`",
                    names.len(),
                    names.join(", ")
                )
            };
            let target_dir = args
                .cargo
                .target_dir
                .clone()
                .unwrap_or_else(|| facts.metadata.target_directory.clone().into());
            target_dir.join("oci").join(name)
        }
    };
    let options = PushOptions {
        layout,
        repository: args.repository,
        insecure_registry: args.insecure_registry,
        by_digest: args.by_digest,
    };
    let (pushed, image) = push::push(&options, shell)?;
    shell.status("Pushed", report::push_status(&pushed));
    report::report(args.message_format, &image)
}
