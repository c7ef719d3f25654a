//! Runs `cargo build` and takes each binary's path from cargo's own JSON messages, never from a
//! guess about the target directory layout.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use cargo_metadata::{Message, PackageId};

/// Cargo's own flags, passed through with the meaning they have for cargo.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CargoOptions {
    /// Package to build and pack
    #[arg(short = 'p', long = "package", value_name = "SPEC")]
    pub package: Option<String>,
    /// Path to Cargo.toml
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Build with the release profile (the default)
    #[arg(long, conflicts_with = "profile")]
    pub release: bool,
    /// Build with the given profile (default: release)
    #[arg(long, value_name = "PROFILE-NAME")]
    pub profile: Option<String>,
    /// Space or comma separated list of features to activate
    #[arg(short = 'F', long, value_name = "FEATURES")]
    pub features: Vec<String>,
    /// Activate all available features
    #[arg(long)]
    pub all_features: bool,
    /// Do not activate the `default` feature
    #[arg(long)]
    pub no_default_features: bool,
    /// Assert that `Cargo.lock` will remain unchanged
    #[arg(long)]
    pub locked: bool,
    /// Run without accessing the network
    #[arg(long)]
    pub offline: bool,
    /// Equivalent to specifying both --locked and --offline
    #[arg(long)]
    pub frozen: bool,
    /// Directory for all generated artifacts
    #[arg(long, value_name = "DIRECTORY")]
    pub target_dir: Option<PathBuf>,
}

impl CargoOptions {
    /// `--locked`, `--offline`, `--frozen`: they mean the same to `cargo metadata` and `cargo build`.
    pub fn lock_args(&self) -> Vec<&'static str> {
        [
            (self.locked, "--locked"),
            (self.offline, "--offline"),
            (self.frozen, "--frozen"),
        ]
        .into_iter()
        .filter_map(|(on, flag)| on.then_some(flag))
        .collect()
    }
}

/// The cargo that invoked us (`$CARGO`), so `cargo +nightly oci build` builds with nightly.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds `bins` of `package` and returns the path of each executable, by binary name.
pub fn build_bins(
    options: &CargoOptions,
    package: &PackageId,
    package_name: &str,
    bins: &[String],
    verbosity: Verbosity,
) -> Result<BTreeMap<String, PathBuf>> {
    let mut command = cargo();
    command.args([
        "build",
        "--message-format=json-render-diagnostics",
        "--package",
        package_name,
    ]);
    if let Some(path) = &options.manifest_path {
        command.arg("--manifest-path").arg(path);
    }
    command.args(options.lock_args());
    command.args(["--profile", options.profile.as_deref().unwrap_or("release")]);
    for bin in bins {
        command.args(["--bin", bin]);
    }
    for features in &options.features {
        command.args(["--features", features]);
    }
    if options.all_features {
        command.arg("--all-features");
    }
    if options.no_default_features {
        command.arg("--no-default-features");
    }
    if let Some(dir) = &options.target_dir {
        command.arg("--target-dir").arg(dir);
    }
    match verbosity {
        Verbosity::Quiet => command.arg("--quiet"),
        Verbosity::Normal => &mut command,
        Verbosity::Verbose => command.arg("--verbose"),
    };
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());

    let mut child = command.spawn().context("failed to run `cargo build`")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut executables = BTreeMap::new();
    for message in Message::parse_stream(BufReader::new(stdout)) {
        if let Message::CompilerArtifact(artifact) =
            message.context("failed to read cargo's JSON messages")?
        {
            let is_wanted_bin = artifact.package_id == *package
                && artifact.target.kind.iter().any(|k| k.to_string() == "bin")
                && bins.contains(&artifact.target.name);
            if let (true, Some(executable)) = (is_wanted_bin, artifact.executable) {
                executables.insert(artifact.target.name.clone(), executable.into_std_path_buf());
            }
        }
    }
    let status = child.wait().context("failed to wait for `cargo build`")?;
    if !status.success() {
        bail!("`cargo build` failed ({status})");
    }
    if let Some(missing) = bins.iter().find(|b| !executables.contains_key(*b)) {
        bail!("`cargo build` reported no executable for binary `{missing}`");
    }
    Ok(executables)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}
