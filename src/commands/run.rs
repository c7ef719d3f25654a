//! `cargo oci run [-- ARGS]`: the build's flags and the engine's, made into [`RunOptions`].

use anyhow::Result;

use super::build::BuildArgs;
use crate::plan::Loader;
use crate::run::{self, RunOptions};
use crate::shell::Shell;

/// `cargo oci run`'s flags: the build's, and what runs it.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// What runs the image (default: podman if it is installed, else docker)
    #[arg(long, value_enum)]
    pub engine: Option<Loader>,
    /// The container's command, replacing the image's `cmd`
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

pub fn exec(args: RunArgs, shell: &Shell) -> Result<()> {
    let options = RunOptions {
        build: args.build.into_options(),
        engine: args.engine,
        args: args.args,
    };
    run::run(options, shell)
}
