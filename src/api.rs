//! The library API: [`Build`], what `cargo oci build` does, set up in code, and the [`Image`]s
//! it made. A team's `xtask` or release tool drives the same build the command line runs.

use std::path::Path;
use std::sync::Arc;

use crate::build::{self, BuildOptions};
use crate::cargo::workspace::Facts;
use crate::error::Error;
use crate::plan::SbomFormat;
use crate::plan::{Format, Loader, MessageFormat};
use crate::shell::Shell;
use crate::shell::Verbosity;

pub use crate::report::{Image, Output};

/// A build of a workspace's images, as `cargo oci build` runs it: the packages cargo would
/// choose, their `[package.metadata.oci]`, one `cargo build` per target, then the outputs.
///
/// Every setting starts as the command line's default and is changed by a method named like
/// its flag; new settings come as new methods, so code written today keeps compiling.
///
/// ```no_run
/// use cargo_oci::{Build, Format};
///
/// let images = Build::new()
///     .current_dir("services")
///     .package("api")
///     .target("x86_64-unknown-linux-musl")
///     .target("aarch64-unknown-linux-musl")
///     .format(Format::OciArchive)
///     .tag("api:{git_short_sha}")
///     .run()?;
/// for image in &images {
///     println!("{} {} {:?}", image.name, image.digest, image.platforms);
///     for output in &image.outputs {
///         println!("  {:?} {}", output.format, output.path.display());
///     }
/// }
/// # Ok::<(), cargo_oci::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Build {
    options: BuildOptions,
    verbosity: Verbosity,
    listener: Option<crate::shell::StatusListener>,
}

impl std::fmt::Debug for Build {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Build")
            .field("options", &self.options)
            .field("verbosity", &self.verbosity)
            .field("listener", &self.listener.is_some())
            .finish()
    }
}

impl Build {
    /// The build `cargo oci build` runs in the current directory.
    pub fn new() -> Build {
        Build::default()
    }

    /// Runs the build as if started in `dir` (default: this process's directory): cargo
    /// selects the package there, reads that directory's `.cargo/config.toml`, and relative
    /// paths given to this build are relative to it. An xtask passes its workspace's root.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Build {
        self.options.cargo.workspace.current_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// `--manifest-path`: the `Cargo.toml` of the package or workspace.
    pub fn manifest_path(mut self, path: impl AsRef<Path>) -> Build {
        self.options.cargo.workspace.manifest_path = Some(path.as_ref().to_owned());
        self
    }

    /// `-p`: a package to build, by name or glob; repeatable.
    pub fn package(mut self, spec: impl Into<String>) -> Build {
        self.options.cargo.workspace.packages.push(spec.into());
        self
    }

    /// `--workspace`: every member.
    pub fn workspace(mut self) -> Build {
        self.options.cargo.workspace.workspace = true;
        self
    }

    /// `--exclude`: a package to leave out of `--workspace`, by name or glob; repeatable.
    pub fn exclude(mut self, spec: impl Into<String>) -> Build {
        self.options.cargo.workspace.exclude.push(spec.into());
        self
    }

    /// `--target`: a Rust target triple, one image each; repeatable.
    pub fn target(mut self, triple: impl Into<String>) -> Build {
        self.options.cargo.targets.push(triple.into());
        self
    }

    /// `--profile` (default `release`).
    pub fn profile(mut self, profile: impl Into<String>) -> Build {
        self.options.cargo.profile = Some(profile.into());
        self
    }

    /// `--features`; repeatable.
    pub fn features(mut self, features: impl Into<String>) -> Build {
        self.options.cargo.features.push(features.into());
        self
    }

    /// `--locked`.
    pub fn locked(mut self) -> Build {
        self.options.cargo.workspace.locked = true;
        self
    }

    /// `--offline`: cargo and registry bases from their caches alone.
    pub fn offline(mut self) -> Build {
        self.options.cargo.workspace.offline = true;
        self
    }

    /// `--target-dir`.
    pub fn target_dir(mut self, dir: impl AsRef<Path>) -> Build {
        self.options.cargo.workspace.target_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// `--bin`: only the images that pack this binary (each whole: an image that packs
    /// others too is an error); repeatable.
    pub fn bin(mut self, name: impl Into<String>) -> Build {
        self.options.cargo.bins.push(name.into());
        self
    }

    /// `--jobs`: cargo's number of parallel jobs.
    pub fn jobs(mut self, jobs: u32) -> Build {
        self.options.cargo.jobs = Some(jobs.to_string());
        self
    }

    /// `--config`: a cargo configuration value, `KEY=VALUE` or a file's path, for every cargo
    /// run of the build; repeatable.
    pub fn config(mut self, setting: impl Into<String>) -> Build {
        self.options.cargo.workspace.config.push(setting.into());
        self
    }

    /// `-Z`: an unstable (nightly-only) flag for every cargo run; repeatable.
    pub fn unstable_flag(mut self, flag: impl Into<String>) -> Build {
        self.options
            .cargo
            .workspace
            .unstable_flags
            .push(flag.into());
        self
    }

    /// `--timings`: cargo's report of how long each crate took to build.
    pub fn timings(mut self) -> Build {
        self.options.cargo.timings = Some(String::new());
        self
    }

    /// `--keep-going`: build as many crates as possible before failing.
    pub fn keep_going(mut self) -> Build {
        self.options.cargo.keep_going = true;
        self
    }

    /// `--ignore-rust-version`: build even with a toolchain older than a `rust-version`.
    pub fn ignore_rust_version(mut self) -> Build {
        self.options.cargo.ignore_rust_version = true;
        self
    }

    /// `--format`: an output to write, replacing the metadata's `formats`; repeatable.
    pub fn format(mut self, format: Format) -> Build {
        self.options.formats.push(format);
        self
    }

    /// `--sbom`: the SBOM of each platform's image, replacing the metadata's `sbom`.
    pub fn sbom(mut self, format: SbomFormat) -> Build {
        self.options.sbom = Some(format);
        self
    }

    /// `--provenance none`: no SLSA provenance, replacing the metadata's `provenance`.
    pub fn no_provenance(mut self) -> Build {
        self.options.provenance = Some(crate::plan::ProvenanceMode::None);
        self
    }

    /// `--sign-key`: sign each attestation with this PKCS#8 PEM key (ECDSA P-256 or Ed25519);
    /// without it, `CARGO_OCI_SIGNING_KEY` of this process's environment is used, if set.
    pub fn sign_key(mut self, path: impl AsRef<Path>) -> Build {
        self.options.sign_key = Some(path.as_ref().to_owned());
        self
    }

    /// `--auditable`: build with `cargo auditable build`.
    pub fn auditable(mut self) -> Build {
        self.options.auditable = true;
        self
    }

    /// `--output`: the OCI layout's directory, for a build of one image.
    pub fn output(mut self, dir: impl AsRef<Path>) -> Build {
        self.options.output = Some(dir.as_ref().to_owned());
        self
    }

    /// `--tag`: a `NAME:TAG`, replacing the metadata's `tags`; repeatable.
    pub fn tag(mut self, tag: impl Into<String>) -> Build {
        self.options.tags.push(tag.into());
        self
    }

    /// `--load`: stream the image into `docker load` or `podman load`.
    pub fn load(mut self, loader: Loader) -> Build {
        self.options.load = Some(loader);
        self
    }

    /// `--push REPOSITORY`: one image there, several to `REPOSITORY/<image>`.
    pub fn push(mut self, repository: impl Into<String>) -> Build {
        self.options.push = Some(repository.into());
        self
    }

    /// `--by-digest`: push by digest only, without the image's tags.
    pub fn by_digest(mut self) -> Build {
        self.options.by_digest = true;
        self
    }

    /// `--push` with no repository: each image to its metadata's `repository`.
    pub fn push_to_each_repository(mut self) -> Build {
        self.options.push = Some(String::new());
        self
    }

    /// `--insecure-registry`: a registry that may be reached over plain HTTP; repeatable.
    pub fn insecure_registry(mut self, host: impl Into<String>) -> Build {
        self.options.insecure_registry.push(host.into());
        self
    }

    /// `--no-build`: pack binaries an earlier build left, instead of building.
    pub fn no_build(mut self) -> Build {
        self.options.no_build = true;
        self
    }

    /// How much is said on stderr (or to the listener).
    pub fn verbosity(mut self, verbosity: Verbosity) -> Build {
        self.verbosity = verbosity;
        self
    }

    /// Hears each status line (`("Packing", "api (linux/amd64)")`) instead of stderr, and each
    /// warning as `("warning", …)`. Cargo's own output still goes to stderr.
    pub fn on_status(mut self, listener: impl Fn(&str, &str) + Send + Sync + 'static) -> Build {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Prints the command line's stdout report too: one line (or JSON object) per output.
    pub fn report(mut self, format: MessageFormat) -> Build {
        self.options.report = Some(format);
        self
    }

    /// Runs the build; the images it made, in the order their packages are in the workspace.
    pub fn run(&self) -> Result<Vec<Image>, Error> {
        let mut options = self.options.clone();
        if let Some(dir) = options.cargo.workspace.current_dir.clone() {
            // Absolute, so a path joined to it means the same to cargo, which runs there.
            let dir = std::path::absolute(&dir).map_err(anyhow::Error::from)?;
            options.cargo.workspace.current_dir = Some(dir.clone());
            let workspace = &mut options.cargo.workspace;
            let paths = [
                &mut workspace.manifest_path,
                &mut workspace.target_dir,
                &mut options.output,
                &mut options.sign_key,
            ];
            for path in paths.into_iter().flatten() {
                *path = dir.join(&*path);
            }
        }
        let shell = match &self.listener {
            Some(listener) => Shell::with_listener(self.verbosity, listener.clone()),
            None => Shell::new(self.verbosity),
        };
        let facts = Facts::gather(&options.cargo.workspace)?;
        Ok(build::build(&options, &facts, &shell)?)
    }
}
