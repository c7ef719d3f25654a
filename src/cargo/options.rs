//! The flags that find the workspace and the package (`WorkspaceOptions`), and cargo's own build
//! flags (`CargoOptions`), as cargo names them: what every command passes to cargo.

use std::path::PathBuf;
use std::process::Command;

/// The flags that find the workspace, the package and its target directory, as cargo names
/// them: what every subcommand needs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WorkspaceOptions {
    /// Package to build, by name or glob (repeatable; default: the package in the current
    /// directory, or the workspace's default members)
    #[arg(short = 'p', long = "package", value_name = "SPEC")]
    pub packages: Vec<String>,
    /// Every member of the workspace
    #[arg(long, visible_alias = "all")]
    pub workspace: bool,
    /// Leave out packages, by name or glob (with --workspace)
    #[arg(long, value_name = "SPEC", requires = "workspace")]
    pub exclude: Vec<String>,
    /// Path to Cargo.toml
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Assert that `Cargo.lock` will remain unchanged
    #[arg(long)]
    pub locked: bool,
    /// Run without accessing the network (registry bases come from the cache)
    #[arg(long)]
    pub offline: bool,
    /// Equivalent to specifying both --locked and --offline
    #[arg(long)]
    pub frozen: bool,
    /// Directory for all generated artifacts
    #[arg(long, value_name = "DIRECTORY")]
    pub target_dir: Option<PathBuf>,
    /// Override a configuration value, as cargo's `--config` (repeatable)
    #[arg(long = "config", value_name = "KEY=VALUE|PATH")]
    pub config: Vec<String>,
    /// Unstable (nightly-only) flags to Cargo, as cargo's `-Z` (repeatable)
    #[arg(short = 'Z', value_name = "FLAG")]
    pub unstable_flags: Vec<String>,
    /// Where cargo, rustc and git run, as if the build were started there: the package it
    /// selects, cargo's `.cargo/config.toml` and rustup's toolchain file depend on it. Set by
    /// the library (`Build::current_dir`); the command line runs where it is started.
    #[arg(skip)]
    pub current_dir: Option<PathBuf>,
}

impl WorkspaceOptions {
    /// `cargo metadata` of this workspace, with cargo's flags and `extra` options, run where
    /// the build runs.
    pub fn metadata_command(&self, extra: Vec<String>) -> cargo_metadata::MetadataCommand {
        let mut command = cargo_metadata::MetadataCommand::new();
        if let Some(cargo) = std::env::var_os("CARGO") {
            command.cargo_path(cargo);
        }
        if let Some(path) = &self.manifest_path {
            command.manifest_path(path);
        }
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        command.other_options(
            self.cargo_args()
                .into_iter()
                .chain(extra)
                .collect::<Vec<_>>(),
        );
        command
    }

    /// `command`, run in [`WorkspaceOptions::current_dir`].
    pub fn run_here<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        match &self.current_dir {
            Some(dir) => command.current_dir(dir),
            None => command,
        }
    }

    /// `--locked`, `--offline`, `--frozen`, `--config`, `-Z`: they mean the same to every
    /// cargo command, so each cargo run is given them.
    pub fn cargo_args(&self) -> Vec<String> {
        let locks = [
            (self.locked, "--locked"),
            (self.offline, "--offline"),
            (self.frozen, "--frozen"),
        ];
        let mut args: Vec<String> = locks
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, flag)| flag.to_owned())
            .collect();
        for setting in &self.config {
            args.extend(["--config".to_owned(), setting.clone()]);
        }
        for flag in &self.unstable_flags {
            args.extend(["-Z".to_owned(), flag.clone()]);
        }
        args
    }
}

/// Cargo's own flags for `cargo oci build`, passed through with the meaning they have for cargo.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CargoOptions {
    #[command(flatten)]
    pub workspace: WorkspaceOptions,
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
    /// Build for the target triple, one image each (repeatable; default: `targets` in Cargo.toml,
    /// else the host)
    #[arg(long = "target", value_name = "TRIPLE")]
    pub targets: Vec<String>,
    /// Only the images that pack this binary, and only its binaries built (repeatable); an
    /// image that packs others too is an error
    #[arg(long = "bin", value_name = "NAME")]
    pub bins: Vec<String>,
    /// Every binary of the chosen images (the default)
    #[arg(long = "bins", conflicts_with = "bins")]
    pub all_bins: bool,
    /// Number of parallel jobs, as cargo's `--jobs`
    #[arg(short = 'j', long, value_name = "N", allow_negative_numbers = true)]
    pub jobs: Option<String>,
    /// Cargo's report of how long each crate took to build
    #[arg(
        long,
        value_name = "FMTS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = ""
    )]
    pub timings: Option<String>,
    /// Build as many crates as possible rather than stopping at the first failure
    #[arg(long)]
    pub keep_going: bool,
    /// Build even with a toolchain older than a package's `rust-version`
    #[arg(long)]
    pub ignore_rust_version: bool,
}

impl CargoOptions {
    /// `--features`, `--all-features`, `--no-default-features`: the same to `cargo build` and
    /// `cargo metadata`.
    pub fn feature_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for features in &self.features {
            args.extend(["--features".to_owned(), features.clone()]);
        }
        if self.all_features {
            args.push("--all-features".to_owned());
        }
        if self.no_default_features {
            args.push("--no-default-features".to_owned());
        }
        args
    }

    /// `-j`, `--timings`, `--keep-going`, `--ignore-rust-version`: for the build alone.
    pub fn build_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(jobs) = &self.jobs {
            args.extend(["--jobs".to_owned(), jobs.clone()]);
        }
        match self.timings.as_deref() {
            None => {}
            Some("") => args.push("--timings".to_owned()),
            Some(formats) => args.push(format!("--timings={formats}")),
        }
        for (on, flag) in [
            (self.keep_going, "--keep-going"),
            (self.ignore_rust_version, "--ignore-rust-version"),
        ] {
            if on {
                args.push(flag.to_owned());
            }
        }
        args
    }
}
