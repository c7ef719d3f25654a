//! The build behind `cargo oci build`, `run`, `verify` and the library's [`crate::Build`]:
//! choose packages as cargo does, resolve each one's image metadata, build every binary in one
//! cargo run per target, pack every image with oci-pack (a base shared by several opened once),
//! and only when all are staged move their outputs into place; report each output (on stdout,
//! if asked).
//!
//! [`build`] runs these steps, in order; everything that can be checked is checked before cargo
//! spends minutes building, but for the bases' layers, checked while it builds:
//!
//! 1. [`choose_images`]: the packages chosen as cargo chooses them, each one's metadata resolved
//!    into image plans (again for its base's platforms with `targets = "base"`), `--bin`
//!    applied, and the plans checked.
//! 2. [`destinations`]: each image's output path, checked to be one a layout may be written to.
//! 3. [`push_targets`]: where each image is pushed, with its credentials.
//! 4. [`bases::open_bases`]: every base opened, once per base and platform (its manifest and
//!    config read; a registry's or an archive's blobs fetched into the cache, each checked), and
//!    what a Docker archive cannot hold refused; then every base's file tree, which checks each
//!    of its layers, read on a thread while cargo builds ([`bases::Opened::read_trees`]; with
//!    `--no-build`, at once).
//! 5. [`compile()`]: cargo builds the binaries, one run per target, builder and rustflags.
//! 6. [`start_sbom_resolution`]: each target's dependencies asked of cargo, on threads, while
//!    the images are packed.
//! 7. [`lock_outputs`], [`pack_images`]: once the bases' trees are read
//!    ([`bases::Trees::join`]: a broken layer fails the build there, before anything is
//!    packed), every output locked, and every image packed by oci-pack, its binaries checked;
//!    with `--load`, loaded as soon as its layers' tars are written, while they are compressed
//!    ([`load`]).
//! 8. [`attest_images`]: SBOMs and attestations attached, platforms joined into an index, tags.
//! 9. [`write_outputs`]: every image staged (pushed), then all moved into place; the cache told
//!    what was used.
//! 10. [`report_images`]: each output told, and what callers need of each image returned.
//!
//! The bases of step 4 are in [`bases`]; the builder runs of step 5 in [`runs`]; the packing of
//! step 7 in [`pack`]; the SBOMs and attestations of step 8 in [`attest`]; the outputs of step 9
//! in [`outputs`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use oci_pack::output::OutputLock;
use oci_pack::{
    join_index, BuildCache, BuiltImage, ImageSource, ParentImage, Repository, Tagged, Timestamp,
};

use crate::attestation::provenance;
use crate::attestation::sbom;
use crate::attestation::signing;
use crate::cargo::compile;
use crate::cargo::options::CargoOptions;
use crate::cargo::workspace::{self, Facts};
use crate::plan::metadata::{CompressionSpec, ElfCheck};
use crate::plan::ProvenanceMode;
use crate::plan::SbomFormat;
use crate::plan::{BuildPlan, Overrides};
use crate::plan::{Format, Loader, MessageFormat};
use crate::registry::{PushTarget, Registries};
use crate::report::{self, Image};
use crate::shell::Shell;

mod attest;
mod bases;
mod load;
mod outputs;
mod pack;
mod runs;

use attest::{attach_attestations, attach_sboms, Attesting, SbomInputs, Sboms};
use runs::{build_all, check_auditable_installed, BuiltRuns};

/// The annotation of a layout's `index.json` that names the targets its image was built for,
/// separated by spaces.
pub const TARGETS_ANNOTATION: &str = "dev.cargo-oci.targets";

/// Everything a build is asked: what `cargo oci build`'s flags, [`crate::Build`]'s methods,
/// `cargo oci run` and `cargo oci verify` set. Each field is the flag of the same name.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub cargo: CargoOptions,
    /// `--platform`: the base image's platforms (`all`, or some) as the targets.
    pub platform: Option<String>,
    pub output: Option<PathBuf>,
    pub no_build: bool,
    pub elf_check: Option<ElfCheck>,
    pub compression: Option<CompressionSpec>,
    pub tags: Vec<String>,
    pub formats: Vec<Format>,
    pub sbom: Option<SbomFormat>,
    pub provenance: Option<ProvenanceMode>,
    pub sign_key: Option<PathBuf>,
    pub auditable: bool,
    pub load: Option<Loader>,
    /// `--push`: `Some("")` pushes each image to its own `repository`.
    pub push: Option<String>,
    pub by_digest: bool,
    pub insecure_registry: Vec<String>,
    /// One stdout line (or JSON object) per output, in this format; `None`: nothing on stdout.
    pub report: Option<MessageFormat>,
    /// Flags for every image's binaries, after the metadata's `rustflags` (verify maps its
    /// scratch target directory to the real one with them).
    pub extra_rustflags: Vec<String>,
}

/// `--bin`: the images that pack the binaries named, each whole. What an image packs is what
/// its metadata says, so an image that packs a binary not named is refused rather than cut
/// down (one image name would otherwise mean two different images); an image that packs none
/// of them is left out.
fn select_bins(
    plans: Vec<BuildPlan>,
    named: &[String],
    packages: &Packages<'_>,
    shell: &Shell,
) -> Result<Vec<BuildPlan>> {
    let packed = |plan: &BuildPlan| -> std::collections::BTreeSet<String> {
        plan.images
            .iter()
            .flat_map(|i| i.bins.iter().cloned())
            .collect()
    };
    if let Some(missing) = named
        .iter()
        .find(|bin| !plans.iter().any(|plan| packed(plan).contains(*bin)))
    {
        let all: std::collections::BTreeSet<String> = plans.iter().flat_map(packed).collect();
        let all: Vec<String> = all.into_iter().map(|bin| format!("`{bin}`")).collect();
        bail!(
            "`--bin {missing}`: no chosen image packs a binary `{missing}` (they pack: {})",
            match all.is_empty() {
                true => "none".to_owned(),
                false => all.join(", "),
            }
        );
    }
    let mut chosen = Vec::new();
    for plan in plans {
        let (wanted, others): (Vec<String>, Vec<String>) = packed(&plan)
            .into_iter()
            .partition(|bin| named.contains(bin));
        match (wanted.as_slice(), others.as_slice()) {
            ([], _) => shell.detail(
                "Skipping",
                format_args!("{} (it packs no binary `--bin` names)", plan.name),
            ),
            (_, []) => chosen.push(plan),
            ([first, ..], others) => bail!(
                "`--bin {first}` chooses the image `{}`, which also packs {}; `--bin` chooses \
                 whole images: name each of its binaries, or give `{first}` an image of its \
                 own (`images.{first}`)\n  --> {}",
                plan.name,
                others
                    .iter()
                    .map(|bin| format!("`{bin}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                packages[&plan.package].manifest_path
            ),
        }
    }
    Ok(chosen)
}

/// Builds every image the options choose, in the workspace `facts` describe, and writes, loads
/// and pushes it as they ask. The steps, in order, are the module's.
pub fn build(options: &BuildOptions, facts: &Facts, shell: &Shell) -> Result<Vec<Image>> {
    let started = Instant::now();
    let created = workspace::source_date_epoch()?;
    let target_dir = options
        .cargo
        .workspace
        .target_dir
        .clone()
        .unwrap_or_else(|| facts.metadata.target_directory.clone().into());
    let cx = Context {
        options,
        shell,
        facts,
        created,
        target_dir,
    };
    let Chosen {
        plans,
        packages,
        signer,
    } = choose_images(&cx)?;
    let cache_root = cx.target_dir.join("oci").join(".cache");
    let destinations = destinations(&cx, &plans, &cache_root)?;
    let (registries, push_targets) = push_targets(&cx, &plans)?;
    let cache = BuildCache::open(&cache_root)?;
    let bases = bases::open_bases(&plans, &cache, &registries, shell)?;
    bases::check_docker_archives_hold(&plans, &bases, options.load)?;
    let trees = bases.read_trees(!options.no_build)?;
    let executables = compile(&cx, &plans, &packages)?;
    let resolving = start_sbom_resolution(&cx, &plans);
    let bases = trees.join()?;
    // Held until the images are reported, so no other build writes them meanwhile, nor loads
    // the same images (a load stages beside the output, and starts while packing).
    let _locks = lock_outputs(&destinations, shell)?;
    let executables = executables.as_ref();
    let built = pack_images(&cx, &plans, &destinations, bases, executables, &cache)?;
    let images = attest_images(
        &cx,
        &Packed {
            plans: &plans,
            packages: &packages,
            destinations: &destinations,
            cache: &cache,
            signer: signer.as_ref(),
        },
        built,
        resolving,
    )?;
    let written = write_outputs(&cx, &plans, &images, &destinations, &push_targets, &cache);
    let finished = report_images(&cx, images, written?)?;
    finished_status(shell, &finished, started);
    Ok(finished)
}

/// What every step of a build reads: its options, and the workspace as found before the first.
struct Context<'a> {
    options: &'a BuildOptions,
    shell: &'a Shell,
    facts: &'a Facts,
    /// The time every image records.
    created: Timestamp,
    /// `--target-dir`, or cargo's.
    target_dir: PathBuf,
}

/// The packages that make images, by name.
type Packages<'a> = BTreeMap<String, &'a cargo_metadata::Package>;

/// The images a build makes: their plans, the packages they come from (by name), and what
/// signs their attestations.
struct Chosen<'a> {
    plans: Vec<BuildPlan>,
    packages: Packages<'a>,
    signer: Option<signing::KeySigner>,
}

/// Step 1: every image the arguments choose, its metadata resolved and checked before
/// anything is built.
fn choose_images<'a>(cx: &Context<'a>) -> Result<Chosen<'a>> {
    let options = cx.options;
    let overrides = Overrides {
        targets: options.cargo.targets.clone(),
        formats: options.formats.clone(),
        elf_check: options.elf_check,
        compression: options.compression,
        tags: options.tags.clone(),
        sbom: options.sbom,
        from_base: options.platform.is_some(),
        provenance: options.provenance,
        auditable: options.auditable,
    };
    let wanted_platforms = match &options.platform {
        Some(text) => crate::plan::platforms::Wanted::parse(text)?,
        None => crate::plan::platforms::Wanted::All,
    };
    // A key that cannot sign fails the build before anything is built.
    let signer = signing::KeySigner::from_args(options.sign_key.as_deref())?;
    let (mut plans, packages) = resolve_packages(cx, &overrides)?;
    // `targets = "base"` and `--platform`: each such package's plans again, for the targets
    // of its base's platforms.
    if plans.iter().any(|plan| plan.from_base.is_some()) {
        plans = expand_from_base(cx, plans, &packages, &overrides, &wanted_platforms)?;
    }
    if !options.cargo.bins.is_empty() {
        plans = select_bins(plans, &options.cargo.bins, &packages, cx.shell)?;
    }
    check_plans(cx, &plans)?;
    for image in plans.iter_mut().flat_map(|plan| &mut plan.images) {
        image
            .rustflags
            .extend(options.extra_rustflags.iter().cloned());
    }
    Ok(Chosen {
        plans,
        packages,
        signer,
    })
}

/// Every selected package's image plans, and the packages that make images, by name.
fn resolve_packages<'a>(
    cx: &Context<'a>,
    overrides: &Overrides,
) -> Result<(Vec<BuildPlan>, Packages<'a>)> {
    let metadata = &cx.facts.metadata;
    let mut plans: Vec<BuildPlan> = Vec::new();
    let mut packages = BTreeMap::new();
    for selected in workspace::select_packages(metadata, &cx.options.cargo.workspace)? {
        let package = selected.package;
        if !workspace::is_image(metadata, package) {
            if selected.named {
                let why = if package.metadata.get("oci") == Some(&serde_json::Value::Bool(false)) {
                    "its metadata says `oci = false`"
                } else if metadata.workspace_metadata.get("oci").is_some() {
                    "it has no binaries and no `[package.metadata.oci]` table"
                } else {
                    "it has no `[package.metadata.oci]` table"
                };
                bail!(
                    "package `{}` is not an image: {why}\n  --> {}",
                    package.name,
                    package.manifest_path
                );
            }
            cx.shell.detail(
                "Skipping",
                format_args!("{} (no `[package.metadata.oci]`)", package.name),
            );
            continue;
        }
        packages.insert(package.name.to_string(), package);
        plans.extend(crate::plan::build_plans(
            cx.facts, package, cx.created, overrides,
        )?);
    }
    Ok((plans, packages))
}

/// The plans whose targets are their base's platforms, planned again for those targets.
fn expand_from_base(
    cx: &Context<'_>,
    plans: Vec<BuildPlan>,
    packages: &Packages<'_>,
    overrides: &Overrides,
    wanted_platforms: &crate::plan::platforms::Wanted,
) -> Result<Vec<BuildPlan>> {
    let options = cx.options;
    let registries = Registries::from_env(
        &options.insecure_registry,
        options.cargo.workspace.offline || options.cargo.workspace.frozen,
        &[],
    )?;
    let mut expanded = Vec::new();
    for plan in plans {
        let Some(libc) = plan.from_base else {
            expanded.push(plan);
            continue;
        };
        let base = &plan.images[0].base;
        let targets = crate::plan::platforms::targets_of_base(
            base,
            libc,
            wanted_platforms,
            &registries,
            &cx.target_dir.join("oci").join(".cache"),
            cx.shell,
        )
        .with_context(|| format!("image `{}`", plan.name))?;
        cx.shell.detail(
            "Targets",
            format_args!(
                "{} from its base `{base}`: {}",
                plan.name,
                targets.join(", ")
            ),
        );
        let overrides = Overrides {
            targets,
            ..overrides.clone()
        };
        let again =
            crate::plan::build_plans(cx.facts, packages[&plan.package], cx.created, &overrides)?;
        expanded.extend(again.into_iter().filter(|p| p.name == plan.name));
    }
    Ok(expanded)
}

/// Some image is chosen, each has a name of its own, and `--output` names one.
fn check_plans(cx: &Context<'_>, plans: &[BuildPlan]) -> Result<()> {
    if plans.is_empty() {
        bail!(
            "no selected package is an image: give one a `[package.metadata.oci]` table \
             (see `templates/metadata.toml`), or choose one with `-p`"
        );
    }
    for (i, plan) in plans.iter().enumerate() {
        if let Some(other) = plans[..i].iter().find(|p| p.name == plan.name) {
            bail!(
                "packages `{}` and `{}` both make an image named `{}`; \
                 each image needs a name of its own (its output is `target/oci/<name>`)",
                other.package,
                plan.package,
                plan.name
            );
        }
        warn_without_entrypoint(plan, cx.shell);
        if let (Some(loader), [_, _, ..]) = (cx.options.load, plan.images.as_slice()) {
            let platforms: Vec<String> =
                plan.images.iter().map(|i| i.platform.to_string()).collect();
            bail!(
                "`--load={}` loads one platform's image, and `{}` is built for {} ({}): \
                 choose one with `--target`",
                loader.program(),
                plan.name,
                platforms.len(),
                platforms.join(", ")
            );
        }
    }
    if cx.options.output.is_some() && plans.len() > 1 {
        bail!(
            "`--output` names one image's layout, and {} images are built ({}); \
             each goes to `<target-dir>/oci/<image>`",
            plans.len(),
            names(plans)
        );
    }
    Ok(())
}

/// Step 2: each image's output path, checked to be one a layout may be written to.
fn destinations(
    cx: &Context<'_>,
    plans: &[BuildPlan],
    cache_root: &std::path::Path,
) -> Result<Vec<PathBuf>> {
    // Only an existing cache can know a layout: a build refused here creates nothing.
    let cache = match cache_root.is_dir() {
        true => Some(BuildCache::open(cache_root)?),
        false => None,
    };
    let mut destinations = Vec::new();
    for plan in plans {
        let output = match &cx.options.output {
            Some(output) => output.clone(),
            None => cx.target_dir.join("oci").join(&plan.name),
        };
        let output = std::path::absolute(&output)
            .with_context(|| format!("invalid output path `{}`", output.display()))?;
        if plan.formats.contains(&Format::Oci) {
            let earlier_build =
                (cache.as_ref()).is_some_and(|c| c.wrote_layout(&output, &plan.name));
            oci_pack::output::check_destination(&output, &plan.tags, earlier_build)?;
        }
        destinations.push(output);
    }
    Ok(destinations)
}

/// Step 3: where each image is pushed, and its credentials, checked before anything is built;
/// and the registries the build reads its bases from.
fn push_targets(
    cx: &Context<'_>,
    plans: &[BuildPlan],
) -> Result<(Registries, Vec<Option<PushTarget>>)> {
    let options = cx.options;
    let pushes = push_repositories(options.push.as_deref(), plans)?;
    let push_repositories: Vec<Repository> = pushes.iter().flatten().cloned().collect();
    let registries = Registries::from_env(
        &options.insecure_registry,
        options.cargo.workspace.offline || options.cargo.workspace.frozen,
        &push_repositories,
    )?;
    let mut push_targets = Vec::new();
    for (plan, repository) in plans.iter().zip(&pushes) {
        let target = repository
            .as_ref()
            .map(|repository| {
                let mut target = registries.push_target(&repository.to_string())?;
                if let ImageSource::Registry(base) = &plan.images[0].base {
                    target.mount_from = Some(base.repository.clone());
                }
                anyhow::Ok(target)
            })
            .transpose()?;
        push_targets.push(target);
    }
    Ok((registries, push_targets))
}

/// Step 5: cargo builds every image's binaries, unless `--no-build` packs those built before.
fn compile<'a>(
    cx: &Context<'a>,
    plans: &'a [BuildPlan],
    packages: &Packages<'a>,
) -> Result<Option<BuiltRuns<'a>>> {
    if cx.options.no_build {
        return Ok(None);
    }
    if let Some(plan) = plans.iter().find(|plan| plan.auditable) {
        check_auditable_installed(&plan.name)?;
    }
    build_all(
        &cx.options.cargo,
        plans,
        packages,
        &cx.facts.host,
        &cx.target_dir,
        cx.shell,
    )
    .map(Some)
}

/// Each target's `cargo metadata`, being asked on a thread of its own.
type Resolving = Vec<(
    String,
    std::thread::JoinHandle<Result<cargo_metadata::Metadata>>,
)>;

/// Step 6: what each target's SBOMs are made of is asked of cargo while the images are packed
/// (not while cargo builds: both would wait on cargo's package cache lock).
fn start_sbom_resolution(cx: &Context<'_>, plans: &[BuildPlan]) -> Resolving {
    let sbom_triples: std::collections::BTreeSet<String> = plans
        .iter()
        .filter(|plan| plan.sbom != SbomFormat::None)
        .flat_map(|plan| &plan.images)
        .map(|image| {
            image
                .triple
                .clone()
                .unwrap_or_else(|| cx.facts.host.clone())
        })
        .collect();
    sbom_triples
        .into_iter()
        .map(|triple| {
            let (cargo, asked) = (cx.options.cargo.clone(), triple.clone());
            (
                triple,
                std::thread::spawn(move || sbom::resolve(&cargo, &asked)),
            )
        })
        .collect()
}

/// Step 7: every image packed on its base, its binaries checked; in the plans' order. With
/// `--load`, each is loaded as soon as it is unpacked ([`load::Loading`]).
fn pack_images(
    cx: &Context<'_>,
    plans: &[BuildPlan],
    destinations: &[PathBuf],
    bases: Vec<Vec<Option<ParentImage>>>,
    executables: Option<&BuiltRuns<'_>>,
    cache: &BuildCache,
) -> Result<Vec<BuiltImage>> {
    let host = &cx.facts.host;
    // An engine stores layers unpacked: what it loads gets each new layer's tar as written.
    let keep_tars = cx.options.load.is_some();
    let mut requests = Vec::new();
    for ((plan, bases), layout) in plans.iter().zip(bases).zip(destinations) {
        for (image, base) in plan.images.iter().zip(bases) {
            let bins = match executables {
                _ if image.bins.is_empty() => Default::default(),
                Some(built) => built.bins_of(image, &plan.package, host),
                None => compile::prebuilt_bins(
                    &cx.options.cargo,
                    &cx.target_dir,
                    image.triple.as_deref().unwrap_or(host),
                    image.triple.is_none(),
                    &image.bins,
                )?,
            };
            let mut request = pack::image_request(image, &bins, cx.created, base, keep_tars)?;
            pack::check_binaries(&mut request, image, &bins, cx.shell)?;
            let loading = cx.options.load.map(|loader| load::Loading {
                loader,
                tags: plan.tags.clone(),
                layout,
                mtime: cx.created,
            });
            requests.push((request, loading));
        }
    }
    for plan in plans {
        let platforms: Vec<String> = plan.images.iter().map(|i| i.platform.to_string()).collect();
        cx.shell.status(
            "Packing",
            format_args!("{} ({})", plan.name, platforms.join(", ")),
        );
    }
    pack::pack_all(cache, requests, cx.shell)
}

/// What the images were packed from and into, for the steps after packing.
struct Packed<'a> {
    plans: &'a [BuildPlan],
    packages: &'a Packages<'a>,
    destinations: &'a [PathBuf],
    cache: &'a BuildCache,
    signer: Option<&'a signing::KeySigner>,
}

/// One image, made and attested, ready to be written.
struct Assembled {
    tagged: Tagged,
    /// What is reported of it, but for its outputs, load and push.
    image: Image,
    /// The files to write beside its outputs (SBOMs, attestations): each path and bytes.
    beside: Vec<(PathBuf, Vec<u8>)>,
    /// The files of these kinds an earlier build left beside them, to remove.
    stale: Vec<PathBuf>,
}

/// Step 8: each image's SBOMs and attestations attached, its platforms joined into an index
/// where it has several, its tags, and what is reported of it.
fn attest_images(
    cx: &Context<'_>,
    packed: &Packed<'_>,
    built: Vec<BuiltImage>,
    resolving: Resolving,
) -> Result<Vec<Assembled>> {
    let workspace_root = cx.facts.metadata.workspace_root.as_std_path();
    let resolved = resolving
        .into_iter()
        .map(|(triple, thread)| {
            let metadata = thread
                .join()
                .expect("`cargo metadata` is run, not panicked");
            Ok((triple, metadata?))
        })
        .collect::<Result<BTreeMap<String, cargo_metadata::Metadata>>>()?;
    let checksums = match resolved.is_empty() {
        true => BTreeMap::new(),
        false => sbom::lock_checksums(workspace_root)?,
    };
    let lock = provenance::file_digest(&workspace_root.join("Cargo.lock"))?;
    let run_details = provenance::RunDetails::from_env(&|name| std::env::var(name).ok());
    let mut built = built.into_iter();
    let mut images = Vec::new();
    for (plan, layout) in packed.plans.iter().zip(packed.destinations) {
        let built: Vec<_> = built.by_ref().take(plan.images.len()).collect();
        let package = packed.packages[&plan.package];
        let Sboms {
            mut referrers,
            mut files,
            mut stale,
        } = attach_sboms(
            plan,
            &built,
            layout,
            &SbomInputs {
                cache: packed.cache,
                resolved: &resolved,
                checksums: &checksums,
                package: &package.id,
                host: &cx.facts.host,
                created: cx.created,
            },
        )?;
        let sbom_files = files.len();
        let source = package_source(cx.facts, package);
        let attested = attach_attestations(
            plan,
            &built,
            layout,
            &files,
            &Attesting {
                store: packed.cache.store(),
                signer: packed.signer.map(|s| s as &dyn signing::Signer),
                host: &cx.facts.host,
                build: build_facts(cx, plan, package, source.as_ref(), lock, &run_details),
            },
        )?;
        referrers.extend(attested.referrers);
        files.extend(attested.files);
        stale.extend(attested.stale);
        let (tagged, mut image) = tag_image(cx, plan, &built, packed.cache, referrers)?;
        let (sboms, attestations) = files.split_at(sbom_files);
        image.sboms = sboms.iter().map(|(path, _)| path.clone()).collect();
        image.attestations = attestations.iter().map(|(path, _)| path.clone()).collect();
        images.push(Assembled {
            tagged,
            image,
            beside: files,
            stale,
        });
    }
    Ok(images)
}

/// The directory and commit `package` was built from, when its sources are in a git checkout.
fn package_source(
    facts: &workspace::Facts,
    package: &cargo_metadata::Package,
) -> Option<provenance::Source> {
    let dir = package
        .manifest_path
        .parent()
        .map(|dir| dir.as_std_path().to_owned())
        .unwrap_or_default();
    std::fs::canonicalize(&dir)
        .ok()
        .and_then(|dir| facts.revision_and_origin(&dir))
        .map(|(commit, origin)| provenance::Source::new(origin.as_deref(), commit))
}

/// What the provenance of `plan`'s images says of how they were built.
fn build_facts<'a>(
    cx: &Context<'a>,
    plan: &'a BuildPlan,
    package: &'a cargo_metadata::Package,
    source: Option<&'a provenance::Source>,
    lock: Option<oci_pack::Digest>,
    run: &'a provenance::RunDetails,
) -> provenance::BuildFacts<'a> {
    let facts = cx.facts;
    let cargo = &cx.options.cargo;
    provenance::BuildFacts {
        package: package.name.as_str(),
        targets: plan
            .images
            .iter()
            .map(|i| i.triple.clone().unwrap_or_else(|| facts.host.clone()))
            .collect(),
        features: &cargo.features,
        all_features: cargo.all_features,
        no_default_features: cargo.no_default_features,
        profile: cargo.profile.as_deref().unwrap_or("release"),
        metadata: &plan.metadata,
        source,
        lock,
        toolchain: &facts.toolchain,
        run,
        created: cx.created,
    }
}

/// `plan`'s image (its one manifest, or an index of its platforms) as tagged for its outputs,
/// and what is reported of it (without the files beside it): the sum of its platforms' layers
/// and bytes as packing counted them, and the ports of a single-platform image.
fn tag_image(
    cx: &Context<'_>,
    plan: &BuildPlan,
    built: &[BuiltImage],
    cache: &BuildCache,
    referrers: Vec<oci_pack::Descriptor>,
) -> Result<(Tagged, Image)> {
    let (target, config, exposed_ports) = match built {
        [only] if !plan.writes_index() => (
            only.manifest.clone(),
            Some(only.config.digest.to_string()),
            only.exposed_ports.clone(),
        ),
        _ => {
            let manifests = built.iter().map(|b| b.manifest.clone()).collect();
            let index = join_index(cache.store(), manifests, plan.index_annotations.clone())?;
            (index, None, Vec::new())
        }
    };
    // The targets built, recorded in the layout's `index.json` (not in the image, whose
    // digests stay as they were), for `cargo oci verify` to rebuild every platform.
    let mut annotations = plan.index_annotations.clone();
    let triples: Vec<&str> = plan
        .images
        .iter()
        .map(|image| image.triple.as_deref().unwrap_or(&cx.facts.host))
        .collect();
    annotations.insert(TARGETS_ANNOTATION.to_owned(), triples.join(" "));
    let image = Image {
        config,
        tags: plan.tags.iter().map(ToString::to_string).collect(),
        platforms: plan.images.iter().map(|i| i.platform.to_string()).collect(),
        layers: built.iter().map(|b| b.total_layers).sum(),
        compressed_bytes: built.iter().map(|b| b.compressed_bytes).sum(),
        exposed_ports,
        ..Image::of(plan.name.clone(), target.digest.to_string())
    };
    let tagged = Tagged {
        store: cache.store().clone(),
        target,
        tags: plan.tags.clone(),
        annotations,
        referrers,
    };
    Ok((tagged, image))
}

/// Each image's outputs, and where it was pushed.
type Written = Vec<(Vec<report::Output>, Option<oci_pack::registry::Pushed>)>;

/// Step 9, with the outputs locked: every image staged (and pushed) before any
/// output moves into place, so a failure leaves every image's previous outputs as they were;
/// then all persisted, and the cache told what this build used.
fn write_outputs(
    cx: &Context<'_>,
    plans: &[BuildPlan],
    images: &[Assembled],
    destinations: &[PathBuf],
    push_targets: &[Option<PushTarget>],
    cache: &BuildCache,
) -> Result<Written> {
    let staged: Result<Vec<outputs::Staged>> = images
        .iter()
        .zip(destinations)
        .zip(push_targets)
        .zip(plans)
        .map(|(((image, layout), push), plan)| {
            outputs::stage(
                &image.tagged,
                &outputs::Destinations {
                    owner: &plan.name,
                    layout,
                    formats: &plan.formats,
                    push: push.as_ref(),
                    push_tags: !cx.options.by_digest,
                    shell: cx.shell,
                    mtime: cx.created,
                    beside: &image.beside,
                    stale: &image.stale,
                },
                cache,
            )
        })
        .collect();
    let written = staged.and_then(|staged| {
        staged
            .into_iter()
            .map(|staged| {
                let pushed = staged.pushed.clone();
                Ok((staged.persist(cache)?, pushed))
            })
            .collect::<Result<Written>>()
    });
    if written.is_ok() {
        keep_what_was_used(images, destinations, cache, cx.shell);
    }
    for warning in cache.take_warnings() {
        cx.shell.warn(warning);
    }
    written
}

/// One build at a time writes an output (and the archives beside it); the locks are taken in
/// path order, so two workspace builds never wait on each other in a circle.
fn lock_outputs(destinations: &[PathBuf], shell: &Shell) -> Result<Vec<OutputLock>> {
    let mut order: Vec<&PathBuf> = destinations.iter().collect();
    order.sort();
    let mut locks = Vec::new();
    for output in order {
        locks.push(match OutputLock::try_acquire(output)? {
            Some(lock) => lock,
            None => {
                shell.status(
                    "Blocking",
                    format_args!("waiting for another build of `{}`", output.display()),
                );
                OutputLock::acquire(output)?
            }
        });
    }
    Ok(locks)
}

/// What this build used is kept two weeks more; what no build used for two weeks goes, outputs
/// keeping their own links.
fn keep_what_was_used(
    images: &[Assembled],
    destinations: &[PathBuf],
    cache: &BuildCache,
    shell: &Shell,
) {
    for image in images {
        let blobs = image.tagged.blobs().into_iter().flatten();
        cache.mark_used(blobs.map(|blob| blob.digest));
    }
    let used_by: Vec<String> = destinations
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    cache.record_use(&used_by.join("\n"));
    match cache.sweep(oci_pack::BuildCache::UNUSED_FOR) {
        Ok(0) => {}
        Ok(swept) => shell.detail("Swept", format_args!("{swept} unused cache entries")),
        Err(error) => shell.warn(format_args!("could not sweep the build cache: {error}")),
    }
}

/// Step 10: each image's outputs and push told on stderr (and on stdout, as the options
/// ask), and what a caller needs of it.
fn report_images(cx: &Context<'_>, images: Vec<Assembled>, written: Written) -> Result<Vec<Image>> {
    let shell = cx.shell;
    let mut finished = Vec::new();
    for (image, (written, pushed)) in images.into_iter().zip(written) {
        for output in &written {
            let verb = if output.fresh { "Fresh" } else { "Writing" };
            shell.status(verb, output.path.display());
        }
        if let Some(pushed) = &pushed {
            shell.status("Pushed", report::push_status(pushed));
        }
        let image = Image {
            outputs: written,
            loaded: cx.options.load,
            pushed: pushed.map(|pushed| pushed.reference),
            ..image.image
        };
        if let Some(format) = cx.options.report {
            report::report(format, &image)?;
        }
        finished.push(image);
    }
    Ok(finished)
}

/// The last line: the tags made, one image's size, and how long the build took.
fn finished_status(shell: &Shell, finished: &[Image], started: Instant) {
    let tags: Vec<String> = finished.iter().flat_map(|f| f.tags.clone()).collect();
    let size = match finished {
        [only] => format!(
            " ({} layer{}, {} compressed)",
            only.layers,
            if only.layers == 1 { "" } else { "s" },
            mib(only.compressed_bytes)
        ),
        _ => String::new(),
    };
    shell.status(
        "Finished",
        format_args!(
            "{}{size} in {:.2}s",
            tags.join(", "),
            started.elapsed().as_secs_f64()
        ),
    );
}

/// `12.3 MiB`
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn names(plans: &[BuildPlan]) -> String {
    plans
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn warn_without_entrypoint(plan: &BuildPlan, shell: &Shell) {
    for image in &plan.images {
        if image.config.entrypoint.is_none() && image.bins.len() > 1 {
            shell.warn(format_args!(
                "image `{}` stages {} binaries and sets no `config.entrypoint`; \
                 the {} image will have none",
                plan.name,
                image.bins.len(),
                image.platform
            ));
        }
    }
}

/// Where each image is pushed: `--push REPOSITORY` sends one image there and several to
/// `REPOSITORY/<image>`; a bare `--push` sends each to its own `repository`.
fn push_repositories(push: Option<&str>, plans: &[BuildPlan]) -> Result<Vec<Option<Repository>>> {
    let Some(push) = push else {
        return Ok(vec![None; plans.len()]);
    };
    plans
        .iter()
        .map(|plan| {
            let text = match (push, plan.repository.as_deref()) {
                ("", Some(repository)) => repository.to_owned(),
                ("", None) => bail!(
                    "`--push` names no repository, and image `{}` has no `repository` in its \
                     metadata; give one (`repository = \"ghcr.io/org/{{name}}\"`) or push to \
                     `--push HOST/NAME`",
                    plan.name
                ),
                (repository, _) if plans.len() == 1 => repository.to_owned(),
                (repository, _) => format!("{}/{}", repository.trim_end_matches('/'), plan.name),
            };
            Ok(Some(Repository::parse(&text)?))
        })
        .collect()
}
