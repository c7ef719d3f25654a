//! The builder runs of a build: one per target, builder and rustflags, each with every package
//! that needs it, checked before the first starts; and which run built each image's binaries.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::cargo::compile::{self, BuildRequest, Wanted};
use crate::cargo::options::CargoOptions;
use crate::cargo::workspace;
use crate::plan::BuildPlan;
use crate::shell::Shell;

/// What one builder run is for: its target, builder and rustflags.
pub(super) type RunKey<'a> = (&'a str, &'a compile::Builder, &'a [String]);

/// Every builder run's executables, by the run they came from: two images of one package and
/// binary built by different runs (other targets, builders or rustflags) each get their own.
pub(super) struct BuiltRuns<'a> {
    runs: Vec<(RunKey<'a>, compile::Executables)>,
}

impl BuiltRuns<'_> {
    /// The executables built for `image` of `package` (whose target is `host` when it names
    /// none), by binary name.
    pub(super) fn bins_of(
        &self,
        image: &crate::plan::ImagePlan,
        package: &str,
        host: &str,
    ) -> BTreeMap<String, PathBuf> {
        let triple = image.triple.as_deref().unwrap_or(host);
        let (_, executables) = self
            .runs
            .iter()
            .find(|((t, b, r), _)| {
                *t == triple && **b == image.builder && *r == image.rustflags.as_slice()
            })
            .expect("every image with binaries had a builder run");
        image
            .bins
            .iter()
            .map(|bin| {
                let key = (package.to_owned(), bin.clone());
                (bin.clone(), executables[&key].clone())
            })
            .collect()
    }
}

/// `cargo auditable` is a cargo subcommand: `cargo-auditable` on `PATH` or in
/// `$CARGO_HOME/bin`, where cargo looks for it. Checked before cargo runs, since cargo's own
/// "no such command" names no way out.
pub(super) fn check_auditable_installed(image: &str) -> Result<()> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    dirs.extend(cargo_home.map(|home| home.join("bin")));
    if dirs.iter().any(|dir| dir.join("cargo-auditable").is_file()) {
        return Ok(());
    }
    bail!(
        "image `{image}` is auditable (`auditable = true` or `--auditable`), which builds with \
         `cargo auditable build`, and cargo-auditable is not installed: \
         `cargo install cargo-auditable`"
    )
}

/// Builds every image's binaries: one builder run per target, builder and rustflags, with every
/// package that needs it; `host` is the target of an image that names none. The first run of
/// each target builds where cargo would; any other run of the same target (other rustflags or
/// builder) in its own `<target-dir>/oci/.runs/<key>`, so no run overwrites the binaries
/// another built before they are packed.
pub(super) fn build_all<'a>(
    options: &CargoOptions,
    plans: &'a [BuildPlan],
    packages: &BTreeMap<String, &'a cargo_metadata::Package>,
    host: &'a str,
    target_dir: &std::path::Path,
    shell: &Shell,
) -> Result<BuiltRuns<'a>> {
    let mut runs: Vec<(RunKey<'a>, Vec<Wanted<'a>>)> = Vec::new();
    for plan in plans {
        for image in plan.images.iter().filter(|i| !i.bins.is_empty()) {
            let triple = image.triple.as_deref().unwrap_or(host);
            let key: RunKey<'a> = (triple, &image.builder, &image.rustflags);
            let index = match runs.iter().position(|(k, _)| *k == key) {
                Some(index) => index,
                None => {
                    runs.push((key, Vec::new()));
                    runs.len() - 1
                }
            };
            let package = packages[&plan.package];
            let wanted = &mut runs[index].1;
            match wanted.iter_mut().find(|w| w.name == package.name.as_str()) {
                Some(w) => w.bins.extend(image.bins.iter().cloned()),
                None => wanted.push(Wanted {
                    package: &package.id,
                    name: package.name.as_str(),
                    bins: image.bins.iter().cloned().collect(),
                }),
            }
        }
    }
    // What every run needs is checked before the first starts: a missing standard library or
    // linker is a few lines naming the way out, not minutes of building and then the linker's
    // hundreds.
    let places = compile::config_places(&options.workspace)?;
    let foreign = runs.iter().any(|((t, _, _), _)| *t != host);
    let sysroot = foreign
        .then(|| workspace::sysroot(&options.workspace))
        .flatten();
    let env = |name: &str| std::env::var(name).ok();
    let machine = crate::cargo::linker::Machine {
        host,
        env: &env,
        config: &places,
        sysroot: sysroot.as_deref(),
    };
    let mut configs = Vec::new();
    for ((target, builder, rustflags), _) in &runs {
        let linker = crate::cargo::linker::prepare(target, builder, rustflags, &machine)
            .map_err(|message| anyhow::anyhow!(message))?;
        shell.detail("Linking", format_args!("{target} {}", linker.describe()));
        configs.push(linker.config(target));
    }
    let mut built = BuiltRuns { runs: Vec::new() };
    for (i, (key, wanted)) in runs.iter().enumerate() {
        let (target, builder, rustflags) = *key;
        // cargo writes `<target-dir>/<triple>/<profile>/` whatever the builder or flags, and
        // zigbuild drops a glibc suffix from the directory name.
        let place = compile::plain_triple(target);
        let shared = runs[..i]
            .iter()
            .any(|((t, _, _), _)| compile::plain_triple(t) == place);
        let own = shared.then(|| {
            let what = format!("{builder:?}\x1f{target}\x1f{}", rustflags.join("\x1f"));
            let key = oci_pack::Digest::of(what.as_bytes()).hex();
            target_dir.join("oci/.runs").join(&key[..16])
        });
        let executables = compile::build_bins(&BuildRequest {
            options,
            wanted,
            target,
            builder,
            rustflags,
            own_target_dir: own.as_deref(),
            config: &configs[i],
            verbosity: shell.verbosity(),
            color: shell.cargo_color(),
        })?;
        built.runs.push((*key, executables));
    }
    Ok(built)
}
