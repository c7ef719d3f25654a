//! The command line: `cargo oci build|run|push|index|inspect|verify`, parsed with clap, each
//! subcommand run, and an error printed with its causes and turned into the exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{build, credentials, index, init, inspect, push, run, signing, verify};

/// Cargo runs us as `cargo-oci oci build …`.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo")]
enum Cli {
    Oci(Oci),
}

/// Build OCI and Docker images of Rust crates, described in Cargo.toml
#[derive(Debug, clap::Args)]
#[command(version)]
struct Oci {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add an image to a crate or workspace: `[package.metadata.oci]`, and an xtask
    Init(init::InitArgs),
    /// Build the package's binaries and pack them into an OCI image
    Build(build::BuildArgs),
    /// Build the image for this machine, load it into podman or docker, and run it
    Run(run::RunArgs),
    /// Push an OCI layout already built to a registry, under its tags
    Push(push::PushArgs),
    /// Join per-architecture images already pushed by digest into one multi-platform tag
    Index(index::IndexArgs),
    /// Show an image without extracting it: config, layers and sizes, history, attached SBOMs
    Inspect(inspect::InspectArgs),
    /// Rebuild in a scratch directory and compare digests; or check a layout's integrity
    Verify(verify::VerifyArgs),
}

/// What `cargo-oci`'s `main` does: parse the arguments, run the subcommand, report.
pub fn main() -> ExitCode {
    // Before any thread or child process exists.
    credentials::take_from_environment();
    signing::take_from_environment();
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Run directly as `cargo-oci build`, behave as `cargo oci build`.
    if args.get(1).is_some_and(|a| a != "oci") {
        args.insert(1, "oci".into());
    }
    let Cli::Oci(oci) = Cli::parse_from(args);
    let result = match oci.command {
        Command::Init(args) => init::exec(args),
        Command::Build(args) => build::exec(args),
        Command::Run(args) => run::exec(args),
        Command::Push(args) => push::exec(args),
        Command::Index(args) => index::exec(args),
        Command::Inspect(args) => inspect::exec(args),
        Command::Verify(args) => verify::exec(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Checked, and found wanting: 1, apart from a check that could not be made.
        Err(error) if error.is::<crate::error::NotVerified>() => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
