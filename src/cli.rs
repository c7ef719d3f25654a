//! The command line: `cargo oci build|run|push|index|inspect|verify`, parsed with clap, the
//! options every subcommand shares (`-v`, `-q`, `--color`, `-V`), each subcommand handed to its
//! module in `commands/`, and an error printed with its causes and turned into cargo's exit code.

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::attestation::signing;
use crate::commands::{build, index, init, inspect, push, run, verify};
use crate::registry::credentials;
use crate::shell::{Shell, ShellOptions};

/// Cargo runs us as `cargo-oci oci build …`.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo")]
enum Cli {
    Oci(Oci),
}

/// Build OCI and Docker images of Rust crates, described in Cargo.toml
#[derive(Debug, clap::Args)]
#[command(disable_version_flag = true)]
struct Oci {
    /// Print version info and exit (with -v, the commit it was built from, as `cargo -vV`)
    #[arg(short = 'V', long)]
    version: bool,
    #[command(flatten)]
    shell: ShellOptions,
    #[command(subcommand)]
    command: Option<Command>,
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

/// cargo's exit code for an error; `1` is a check that was made and failed (`verify`), or a
/// command line that cannot be parsed.
const ERROR: u8 = 101;

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
    let oci = match Cli::try_parse_from(args) {
        Ok(Cli::Oci(oci)) => oci,
        // Help is not an error; a wrong argument is a usage error, 1 as for cargo.
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(u8::from(error.use_stderr()));
        }
    };
    let shell = match oci.shell.shell() {
        Ok(shell) => shell,
        Err(error) => {
            Shell::new(crate::shell::Verbosity::Normal).error(&error);
            return ExitCode::from(ERROR);
        }
    };
    if oci.version {
        print_version(shell.verbosity() >= crate::shell::Verbosity::Verbose);
        return ExitCode::SUCCESS;
    }
    let Some(command) = oci.command else {
        let mut command = Cli::command();
        command.build();
        let oci = command.find_subcommand_mut("oci").expect("declared above");
        let _ = oci.print_help();
        return ExitCode::from(1);
    };
    let result = match command {
        Command::Init(args) => init::exec(args, &shell),
        Command::Build(args) => build::exec(args, &shell),
        Command::Run(args) => run::exec(args, &shell),
        Command::Push(args) => push::exec(args, &shell),
        Command::Index(args) => index::exec(args, &shell),
        Command::Inspect(args) => inspect::exec(args, &shell),
        Command::Verify(args) => verify::exec(args, &shell),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            shell.error(&error);
            // Checked, and found wanting: 1, apart from a check that could not be made.
            match error.is::<crate::error::NotVerified>() {
                true => ExitCode::from(1),
                false => ExitCode::from(ERROR),
            }
        }
    }
}

/// `cargo-oci 0.1.0 (1d36623 2026-12-05)`; with `-v`, each fact on its own line, as
/// `cargo -vV` prints them. The commit is the git checkout's it was built from, if any.
fn print_version(verbose: bool) {
    use std::io::Write as _;
    let release = env!("CARGO_PKG_VERSION");
    let commit = option_env!("CARGO_OCI_COMMIT_HASH").zip(option_env!("CARGO_OCI_COMMIT_DATE"));
    let mut text = match commit {
        Some((hash, date)) => format!(
            "cargo-oci {release} ({} {date})\n",
            &hash[..hash.len().min(9)]
        ),
        None => format!("cargo-oci {release}\n"),
    };
    if verbose {
        text.push_str(&format!("release: {release}\n"));
        if let Some((hash, date)) = commit {
            text.push_str(&format!("commit-hash: {hash}\ncommit-date: {date}\n"));
        }
        text.push_str(&format!("host: {}\n", env!("CARGO_OCI_HOST")));
    }
    let _ = std::io::stdout().write_all(text.as_bytes());
}
