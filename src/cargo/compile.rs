//! Runs `cargo build` and takes each binary's path from cargo's own JSON messages, never from a
//! guess about the target directory layout.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use cargo_metadata::{Message, PackageId};

use super::options::{CargoOptions, WorkspaceOptions};
use super::rustflags::ConfigPlaces;
use crate::shell::Verbosity;

/// The cargo that invoked us (`$CARGO`), so `cargo +nightly oci build` builds with nightly.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// What runs the build. All of them take `cargo build`'s arguments and print its JSON messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Builder {
    Cargo,
    /// `cross build`, for cross-compiling in containers.
    Cross,
    /// `cargo zigbuild`, for cross-compiling with zig as the linker.
    Zigbuild,
    /// `cargo auditable build`: each binary carries its dependency list (`auditable = true`).
    Auditable,
    /// A command given in full, e.g. `["cross", "build"]`.
    Command(Vec<String>),
}

impl Builder {
    fn command(&self) -> Command {
        match self {
            Builder::Cargo => with_args(cargo(), ["build"]),
            Builder::Cross => with_args(Command::new("cross"), ["build"]),
            Builder::Zigbuild => with_args(cargo(), ["zigbuild"]),
            Builder::Auditable => with_args(cargo(), ["auditable", "build"]),
            Builder::Command(command) => with_args(Command::new(&command[0]), &command[1..]),
        }
    }
}

impl Builder {
    /// As the metadata names it: `"cross"`, or the command.
    pub fn describe(&self) -> String {
        match self {
            Builder::Cargo => "\"cargo\"".into(),
            Builder::Cross => "\"cross\"".into(),
            Builder::Zigbuild => "\"zigbuild\"".into(),
            Builder::Auditable => "`cargo auditable build`".into(),
            Builder::Command(command) => format!("{command:?}"),
        }
    }
}

fn with_args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(
    mut command: Command,
    args: I,
) -> Command {
    command.args(args);
    command
}

/// The binaries wanted of one package.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    pub package: &'a PackageId,
    pub name: &'a str,
    pub bins: std::collections::BTreeSet<String>,
}

/// One run of the builder: the binaries of every package, for one target, so cargo resolves
/// one dependency graph, takes its lock once and builds with all its parallelism.
#[derive(Debug)]
pub struct BuildRequest<'a> {
    pub options: &'a CargoOptions,
    pub wanted: &'a [Wanted<'a>],
    /// `--target`, always given (the host's triple when none was chosen): without it, cargo
    /// applies target rustflags (`+crt-static`) to build scripts and proc-macros too, which
    /// then cannot be built.
    pub target: &'a str,
    pub builder: &'a Builder,
    /// The metadata's `rustflags`, for the target's artifacts alone.
    pub rustflags: &'a [String],
    /// Where this run builds, when not where cargo would (`--target-dir`, else cargo's own):
    /// a run for a target another run already builds into, so neither overwrites the other's
    /// binaries before they are packed.
    pub own_target_dir: Option<&'a Path>,
    /// `--config` settings for this run (the linker chosen for its target).
    pub config: &'a [String],
    pub verbosity: Verbosity,
    /// `--color`, when the user gave it.
    pub color: Option<&'a str>,
}

/// Each executable built, by package name and binary name.
pub type Executables = BTreeMap<(String, String), PathBuf>;

/// Builds the binaries and returns the path of each executable.
pub fn build_bins(request: &BuildRequest<'_>) -> Result<Executables> {
    let BuildRequest {
        options,
        wanted,
        target,
        builder,
        rustflags,
        own_target_dir,
        config,
        verbosity,
        color,
    } = *request;
    let mut command = builder.command();
    command.arg("--message-format=json-render-diagnostics");
    for setting in config {
        command.args(["--config", setting]);
    }
    // The user's own cargo flags after ours, so their `--config` wins.
    command.args(options.workspace.cargo_args());
    command.args(options.build_args());
    if let Some(color) = color {
        command.args(["--color", color]);
    }
    if !rustflags.is_empty() {
        let places = config_places(&options.workspace)?;
        let env = |name: &str| std::env::var(name).ok();
        // cargo's `target.<triple>` tables know the triple without zigbuild's glibc suffix.
        let plain = plain_triple(target);
        match super::rustflags::deliver(plain, rustflags, &env, &places) {
            super::rustflags::Delivery::Environment(flags) => command
                .env("CARGO_ENCODED_RUSTFLAGS", flags)
                .env_remove("RUSTFLAGS"),
            super::rustflags::Delivery::Config(setting) => command.args(["--config", &setting]),
        };
    }
    for package in wanted {
        command.args(["--package", package.name]);
    }
    if let Some(path) = &options.workspace.manifest_path {
        command.arg("--manifest-path").arg(path);
    }
    command.args(["--profile", profile(options)]);
    command.args(["--target", target]);
    let bins: std::collections::BTreeSet<&String> = wanted.iter().flat_map(|w| &w.bins).collect();
    for bin in bins {
        command.args(["--bin", bin]);
    }
    command.args(options.feature_args());
    if let Some(dir) = own_target_dir.or(options.workspace.target_dir.as_deref()) {
        command.arg("--target-dir").arg(dir);
    }
    match verbosity {
        Verbosity::Quiet => command.arg("--quiet"),
        Verbosity::Normal => &mut command,
        Verbosity::Verbose => command.arg("--verbose"),
        Verbosity::VeryVerbose => command.arg("-vv"),
    };
    options.workspace.run_here(&mut command);
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let shown = format!("{:?}", command.get_program());

    let mut child = command
        .spawn()
        .with_context(|| format!("failed to run the builder {shown}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut executables = Executables::new();
    for message in Message::parse_stream(BufReader::new(stdout)) {
        if let Message::CompilerArtifact(artifact) =
            message.context("failed to read cargo's JSON messages")?
        {
            let is_bin = artifact.target.kind.iter().any(|k| k.to_string() == "bin");
            let package = wanted.iter().find(|w| {
                *w.package == artifact.package_id && w.bins.contains(&artifact.target.name)
            });
            if let (true, Some(package), Some(executable)) = (is_bin, package, artifact.executable)
            {
                executables.insert(
                    (package.name.to_owned(), artifact.target.name.clone()),
                    executable.into_std_path_buf(),
                );
            }
        }
    }
    let status = child.wait().context("failed to wait for `cargo build`")?;
    if !status.success() {
        return Err(crate::error::BuildFailed { status }.into());
    }
    for package in wanted {
        if let Some(missing) = package
            .bins
            .iter()
            .find(|b| !executables.contains_key(&(package.name.to_owned(), (*b).clone())))
        {
            bail!(
                "`cargo build` reported no executable for binary `{missing}` of package `{}`",
                package.name
            );
        }
    }
    Ok(executables)
}

/// Where cargo looks for its configuration: the user's `--config`, the directory it runs in
/// (and each above it), and cargo's home.
pub fn config_places(options: &WorkspaceOptions) -> Result<ConfigPlaces> {
    let dir = match &options.current_dir {
        Some(dir) => std::path::absolute(dir)?,
        None => std::env::current_dir()?,
    };
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    Ok(ConfigPlaces {
        dir,
        cargo_home,
        command_line: options.config.clone(),
    })
}

/// `--no-build`: binaries an earlier build left where cargo puts them,
/// `<target-dir>/<triple>/<profile>/<bin>`, or, for the host when no target was chosen, also
/// where a plain `cargo build` puts them, `<target-dir>/<profile>/<bin>`.
pub fn prebuilt_bins(
    options: &CargoOptions,
    target_dir: &Path,
    triple: &str,
    host_default: bool,
    bins: &[String],
) -> Result<BTreeMap<String, PathBuf>> {
    // Cargo's directory names for its built-in profiles; a custom profile uses its own name.
    let profile_dir = match profile(options) {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    };
    // zigbuild builds `…-gnu.2.17` into cargo's `…-gnu` directory.
    let mut dirs = vec![target_dir.join(plain_triple(triple)).join(profile_dir)];
    if host_default {
        dirs.push(target_dir.join(profile_dir));
    }
    bins.iter()
        .map(
            |bin| match dirs.iter().map(|dir| dir.join(bin)).find(|p| p.is_file()) {
                Some(path) => Ok((bin.clone(), path)),
                None => bail!(
                    "--no-build: binary `{bin}` is not at {}; build it first, or drop --no-build",
                    dirs.iter()
                        .map(|dir| format!("`{}`", dir.join(bin).display()))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            },
        )
        .collect()
}

/// `triple` without the glibc version cargo-zigbuild takes after it
/// (`x86_64-unknown-linux-gnu.2.17` → `x86_64-unknown-linux-gnu`): the target cargo and rustc
/// know, and the directory cargo builds it into. A `.` elsewhere (`thumbv8m.main-none-eabi`)
/// is part of the triple.
pub fn plain_triple(triple: &str) -> &str {
    glibc_suffix(triple).map_or(triple, |(plain, _)| plain)
}

/// The triple and glibc version of a suffixed zigbuild triple (`…-gnu.2.17` → `(…-gnu, 2.17)`).
pub fn glibc_suffix(triple: &str) -> Option<(&str, &str)> {
    let (_, last) = triple.rsplit_once('-')?;
    let (env, version) = last.split_once('.')?;
    let numeric = !version.is_empty()
        && version
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    (env.starts_with("gnu") && numeric)
        .then(|| triple.split_at(triple.len() - version.len() - 1))
        .map(|(plain, dot_version)| (plain, &dot_version[1..]))
}

fn profile(options: &CargoOptions) -> &str {
    options.profile.as_deref().unwrap_or("release")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_glibc_suffix_is_told_from_a_dot_in_the_triple() {
        assert_eq!(
            glibc_suffix("x86_64-unknown-linux-gnu.2.17"),
            Some(("x86_64-unknown-linux-gnu", "2.17"))
        );
        assert_eq!(
            plain_triple("armv7-unknown-linux-gnueabihf.2.28"),
            "armv7-unknown-linux-gnueabihf"
        );
        for plain in [
            "x86_64-unknown-linux-gnu",
            "thumbv8m.main-none-eabi",
            "x86_64-unknown-linux-musl",
            "x86_64-unknown-linux-gnu.",
            "x86_64-unknown-linux-gnu.2.x",
        ] {
            assert_eq!(glibc_suffix(plain), None, "{plain}");
            assert_eq!(plain_triple(plain), plain);
        }
    }
}
