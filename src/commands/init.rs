//! `cargo oci init`: its flags, made into [`InitOptions`].

use std::path::PathBuf;

use anyhow::Result;

use crate::init::{self, Ci, InitOptions};
use crate::shell::Shell;

/// `cargo oci init`
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Package to add the image to (default: the one in the current directory; at a virtual
    /// workspace's root, the workspace: every member with binaries becomes an image)
    #[arg(short = 'p', long = "package", value_name = "NAME")]
    pub package: Option<String>,
    /// Path to Cargo.toml
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// The base image: `scratch` (empty; the binaries are linked statically) or a reference
    /// such as `gcr.io/distroless/cc-debian12`
    #[arg(long, value_name = "REF", default_value = "scratch")]
    pub base: String,
    /// Also add an xtask (`cargo xtask image`) that builds the images with cargo oci's library
    #[arg(long)]
    pub xtask: bool,
    /// Also write a release pipeline: a job per architecture pushing by digest, then one
    /// joining them under the release tag
    #[arg(long, value_enum, value_name = "CI")]
    pub ci: Option<Ci>,
}

pub fn exec(args: InitArgs, shell: &Shell) -> Result<()> {
    let options = InitOptions {
        package: args.package,
        manifest_path: args.manifest_path,
        base: args.base,
        xtask: args.xtask,
        ci: args.ci,
    };
    init::init(&options, shell)
}
