//! `cargo oci build`: resolve the package's image metadata, build its binaries with cargo, pack
//! them with oci-pack, and report each output on stdout.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result};
use oci_pack::cache::BuildCache;
use oci_pack::image::join_index;
use oci_pack::layout::Tagged;
use oci_pack::output::OutputLock;
use oci_pack::reference::Repository;
use oci_pack::source::ImageSource;

use crate::cargo_build::{self, BuildRequest, CargoOptions, Verbosity};
use crate::metadata::{CompressionSpec, ElfCheck};
use crate::outputs::{self, Format, ImageSummary, Loader, MessageFormat};
use crate::pack;
use crate::plan::Overrides;
use crate::registries::Registries;
use crate::shell::Shell;
use crate::workspace;

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub cargo: CargoOptions,
    /// Write the OCI image layout to this directory (default: `<target-dir>/oci/<package>`)
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Pack binaries already built at `<target-dir>/[<triple>/]<profile>/<bin>` instead of building
    #[arg(long)]
    pub no_build: bool,
    /// What a failed check of a binary's architecture, loader or libraries does (default: deny)
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub elf_check: Option<ElfCheck>,
    /// How new layers are compressed, overriding `compression` in Cargo.toml
    #[arg(long, value_enum, value_name = "CODEC")]
    pub compression: Option<CompressionSpec>,
    /// Output formats to write, overriding `formats` in Cargo.toml (repeatable)
    #[arg(long = "format", value_enum, value_name = "FORMAT")]
    pub formats: Vec<Format>,
    /// Stream the image into `docker load` or `podman load`, writing no tar file
    #[arg(
        long,
        value_enum,
        value_name = "LOADER",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "docker"
    )]
    pub load: Option<Loader>,
    /// Push the image to this repository (`HOST[:PORT]/NAME`) under each tag
    #[arg(long, value_name = "REPOSITORY")]
    pub push: Option<String>,
    /// Allow plain HTTP to this registry (loopback registries always are), repeatable
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// How results are printed on stdout
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
    /// Print nothing but the results and errors
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print each layer and manifest as it is written
    #[arg(short, long)]
    pub verbose: bool,
}

pub fn exec(args: BuildArgs) -> Result<()> {
    let started = Instant::now();
    let verbosity = match (args.quiet, args.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let shell = Shell::new(verbosity);

    let created = workspace::source_date_epoch()?;
    let facts = workspace::Facts::gather(&args.cargo.workspace)?;
    let metadata = &facts.metadata;
    let package = workspace::select_package(metadata, args.cargo.workspace.package.as_deref())?;
    let overrides = Overrides {
        targets: args.cargo.targets.clone(),
        formats: args.formats.clone(),
        elf_check: args.elf_check,
        compression: args.compression,
    };
    let plan = workspace::build_plan(&facts, package, created, &overrides)?;
    for image in &plan.images {
        if image.config.entrypoint.is_none() && image.bins.len() > 1 {
            shell.warn(format_args!(
                "package `{}` stages {} binaries and sets no `config.entrypoint`; \
                 the {} image will have none",
                package.name,
                image.bins.len(),
                image.platform
            ));
        }
    }
    // The push destination and its credentials are checked before anything is built.
    let push_repository = args.push.as_deref().map(Repository::parse).transpose()?;
    let registries = Registries::from_env(
        &args.insecure_registry,
        args.cargo.workspace.offline || args.cargo.workspace.frozen,
        push_repository.as_ref(),
    )?;
    let mut push = args
        .push
        .as_deref()
        .map(|repository| registries.push_target(repository))
        .transpose()?;
    if let (Some(push), ImageSource::Registry(base)) = (push.as_mut(), &plan.images[0].base) {
        push.mount_from = Some(base.repository.clone());
    }

    let target_dir = args
        .cargo
        .workspace
        .target_dir
        .clone()
        .unwrap_or_else(|| metadata.target_directory.clone().into());
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| target_dir.join("oci").join(package.name.as_str()));
    let output = std::path::absolute(&output)
        .with_context(|| format!("invalid output path `{}`", output.display()))?;
    if plan.formats.contains(&Format::Oci) {
        oci_pack::output::check_destination(&output, &plan.tags)?;
    }
    let cache = BuildCache::open(&target_dir.join("oci").join(".cache"))?;

    // Every base is read, and its layers checked, before cargo spends minutes building.
    let bases = plan
        .images
        .iter()
        .map(|image| pack::open_base(image, &cache, &shell, &registries))
        .collect::<Result<Vec<_>>>()?;

    let mut requests = Vec::new();
    for (image, base) in plan.images.iter().zip(bases) {
        let executables = if image.bins.is_empty() {
            Default::default()
        } else if args.no_build {
            cargo_build::prebuilt_bins(
                &args.cargo,
                &target_dir,
                image.triple.as_deref(),
                &image.bins,
            )?
        } else {
            cargo_build::build_bins(&BuildRequest {
                options: &args.cargo,
                package: &package.id,
                package_name: &package.name,
                bins: &image.bins,
                target: image.triple.as_deref(),
                builder: &image.builder,
                verbosity: shell.verbosity(),
            })?
        };
        let mut request = pack::image_request(image, &executables, created, base)?;
        pack::check_binaries(&mut request, image, &executables, &shell)?;
        requests.push(request);
    }

    let platforms: Vec<String> = plan.images.iter().map(|i| i.platform.to_string()).collect();
    shell.status(
        "Packing",
        format_args!("{} ({})", package.name, platforms.join(", ")),
    );
    let built = pack::pack_all(&cache, requests, &shell)?;
    let (target, config) = match built.as_slice() {
        [only] if !plan.writes_index() => {
            (only.manifest.clone(), Some(only.config.digest.to_string()))
        }
        _ => {
            let manifests = built.iter().map(|b| b.manifest.clone()).collect();
            let index = join_index(cache.store(), manifests, plan.index_annotations.clone())?;
            (index, None)
        }
    };

    let image = Tagged {
        store: cache.store().clone(),
        target: target.clone(),
        tags: plan.tags.clone(),
        annotations: plan.index_annotations.clone(),
    };
    let destinations = outputs::Destinations {
        layout: &output,
        formats: &plan.formats,
        load: args.load,
        push: push.as_ref(),
        shell: &shell,
        mtime: created,
    };
    // One build at a time writes an output (and the archives beside it).
    let _lock = match OutputLock::try_acquire(&output)? {
        Some(lock) => lock,
        None => {
            shell.status(
                "Blocking",
                format_args!("waiting for another build of `{}`", output.display()),
            );
            OutputLock::acquire(&output)?
        }
    };
    let written = outputs::write(&image, &destinations, &cache);
    if written.is_ok() {
        // What no build has used for two weeks goes; outputs keep their own links.
        match cache.sweep(oci_pack::cache::UNUSED_FOR) {
            Ok(0) => {}
            Ok(swept) => shell.detail("Swept", format_args!("{swept} unused cache entries")),
            Err(error) => shell.warn(format_args!("could not sweep the build cache: {error}")),
        }
    }
    for warning in cache.take_warnings() {
        shell.warn(warning);
    }
    let (written, loaded, pushed) = written?;
    for output in &written {
        let verb = if output.fresh { "Fresh" } else { "Writing" };
        shell.status(verb, output.path.display());
    }
    if let Some(message) = &loaded {
        shell.status("Loaded", message);
    }
    if let Some(pushed) = &pushed {
        shell.status("Pushed", outputs::push_status(pushed));
    }
    let summary = ImageSummary {
        digest: target.digest.to_string(),
        config,
        tags: plan.tags.iter().map(ToString::to_string).collect(),
        platforms,
    };
    outputs::report(
        args.message_format,
        &summary,
        &written,
        args.load,
        pushed.as_ref(),
    )?;
    shell.status(
        "Finished",
        format_args!(
            "{} in {:.2}s",
            summary.tags.join(", "),
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}
