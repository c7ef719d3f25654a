//! `cargo oci build`: resolve the package's image metadata, build its binaries with cargo, pack
//! them with oci-pack, and report each output on stdout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use cargo_metadata::{Metadata, MetadataCommand, Package};
use oci_pack::image::{build_image, ImageRequest, NewLayer};
use oci_pack::layer::LayerContents;
use oci_pack::layout::StagedLayout;
use oci_pack::platform::Platform;
use oci_pack::progress::{Event, Progress as _};
use oci_pack::source::ParentImage;
use oci_pack::timestamp::Timestamp;

use crate::cargo_build::{self, CargoOptions, Verbosity};
use crate::outputs::{self, Format, ImageSummary, Loader, MessageFormat};
use crate::plan::{self, PackageFacts, Plan};
use crate::shell::Shell;

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub cargo: CargoOptions,
    /// Write the OCI image layout to this directory (default: `<target-dir>/oci/<package>`)
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Output formats to write, overriding `formats` in Cargo.toml (repeatable)
    #[arg(long = "format", value_enum, value_name = "FORMAT")]
    pub formats: Vec<Format>,
    /// Stream the image into `docker load` or `podman load`, writing no tar file
    #[arg(long, value_enum, value_name = "LOADER", num_args = 0..=1, require_equals = true, default_missing_value = "docker")]
    pub load: Option<Loader>,
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
    let mut shell = Shell::new(verbosity);

    let workspace = workspace_metadata(&args.cargo)?;
    let package = select_package(&workspace, args.cargo.package.as_deref())?;
    let created = source_date_epoch()?;
    let plan = resolve_plan(&workspace, package, created)?;
    let platform = host_platform()?;
    if plan.config.entrypoint.is_none() && plan.bins.len() > 1 {
        shell.warn(format_args!(
            "package `{}` stages {} binaries and sets no `config.entrypoint`; the image will have none",
            package.name,
            plan.bins.len()
        ));
    }

    let target_dir = args
        .cargo
        .target_dir
        .clone()
        .unwrap_or_else(|| workspace.target_directory.clone().into());
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| target_dir.join("oci").join(package.name.as_str()));
    let output = std::path::absolute(&output)
        .with_context(|| format!("invalid output path `{}`", output.display()))?;
    let staged = StagedLayout::create(&output)?;

    // The base is read, and its layers checked, before cargo spends minutes building.
    let base = open_base(&plan, &platform, &staged, &shell)?;

    let executables = if plan.bins.is_empty() {
        Default::default()
    } else {
        cargo_build::build_bins(
            &args.cargo,
            &package.id,
            &package.name,
            &plan.bins,
            shell.verbosity(),
        )?
    };

    shell.status("Packing", format_args!("{} ({platform})", package.name));
    let request = image_request(&plan, &executables, platform.clone(), created, base)?;
    let image = build_image(staged.store(), request, &mut shell)?;
    let sealed = staged.seal(&image.manifest, &plan.tags, plan.index_annotations.clone())?;
    let formats = if args.formats.is_empty() {
        &plan.formats
    } else {
        &args.formats
    };
    let (written, loaded) = outputs::write(sealed, formats, args.load, created)?;
    for output in &written {
        shell.on_event(&Event::OutputWritten { path: &output.path });
    }
    if let Some(message) = &loaded {
        shell.status("Loaded", message);
    }
    let summary = ImageSummary {
        digest: image.manifest.digest.to_string(),
        config: image.config.digest.to_string(),
        tags: plan.tags.iter().map(ToString::to_string).collect(),
        platforms: vec![platform.to_string()],
    };
    outputs::report(args.message_format, &summary, &written, args.load)?;
    shell.status(
        "Finished",
        format_args!(
            "{} in {:.2}s",
            plan.tags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

fn workspace_metadata(options: &CargoOptions) -> Result<Metadata> {
    let mut command = MetadataCommand::new();
    if let Some(cargo) = std::env::var_os("CARGO") {
        command.cargo_path(cargo);
    }
    if let Some(path) = &options.manifest_path {
        command.manifest_path(path);
    }
    let lock_flags = options
        .lock_args()
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    command.no_deps().other_options(lock_flags);
    command
        .exec()
        .context("failed to read the workspace with `cargo metadata`")
}

fn select_package<'a>(workspace: &'a Metadata, spec: Option<&str>) -> Result<&'a Package> {
    let members = workspace.workspace_packages();
    if let Some(spec) = spec {
        return members
            .into_iter()
            .find(|p| p.name.as_str() == spec)
            .ok_or_else(|| {
                anyhow!(
                    "package `{spec}` is not a member of the workspace at `{}`",
                    workspace.workspace_root
                )
            });
    }
    if let Some(root) = workspace.root_package() {
        return Ok(root);
    }
    match members.as_slice() {
        [only] => Ok(only),
        _ => bail!(
            "`{}` is a virtual workspace; choose a package with `-p` (one of: {})",
            workspace.workspace_root.join("Cargo.toml"),
            members
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn resolve_plan(workspace: &Metadata, package: &Package, created: Timestamp) -> Result<Plan> {
    let in_manifest = |error: crate::metadata::KeyError| {
        let manifest = if error.path.starts_with("workspace.") {
            workspace.workspace_root.join("Cargo.toml")
        } else {
            package.manifest_path.clone()
        };
        anyhow!("invalid {error}\n  --> {manifest}")
    };
    let metadata = crate::metadata::load(
        workspace.workspace_metadata.get("oci"),
        package.metadata.get("oci"),
    )
    .map_err(in_manifest)?;
    let dir = package
        .manifest_path
        .parent()
        .map(|d| d.as_std_path().to_owned())
        .unwrap_or_default();
    let facts = PackageFacts {
        name: package.name.to_string(),
        version: package.version.to_string(),
        authors: package.authors.clone(),
        description: package.description.clone(),
        license: package.license.clone(),
        repository: package.repository.clone(),
        homepage: package.homepage.clone(),
        documentation: package.documentation.clone(),
        bin_targets: package
            .targets
            .iter()
            .filter(|t| t.kind.iter().any(|k| k.to_string() == "bin"))
            .map(|t| t.name.clone())
            .collect(),
        revision: git_revision(&dir),
        dir,
    };
    plan::resolve(metadata, &facts, created).map_err(in_manifest)
}

/// Opens `plan.base` for `platform`, reading its file tree now if anything will be diffed
/// against it, so a broken or hostile base fails the build before cargo runs.
fn open_base(
    plan: &Plan,
    platform: &Platform,
    staged: &StagedLayout,
    shell: &Shell,
) -> Result<Option<ParentImage>> {
    let context = || format!("failed to read the base image `{}`", plan.base);
    let Some(mut parent) =
        ParentImage::open(&plan.base, platform, staged.store()).with_context(context)?
    else {
        return Ok(None);
    };
    if !(plan.bins.is_empty() && plan.files.is_empty() && plan.remove.is_empty()) {
        parent.file_tree().with_context(context)?;
    }
    let name = parent.name.clone().unwrap_or_else(|| plan.base.to_string());
    match &parent.manifest_digest {
        Some(digest) => shell.status("Base", format_args!("{name} ({digest})")),
        None => shell.status("Base", name),
    }
    Ok(Some(parent))
}

fn image_request(
    plan: &Plan,
    executables: &std::collections::BTreeMap<String, PathBuf>,
    platform: Platform,
    created: Timestamp,
    base: Option<ParentImage>,
) -> Result<ImageRequest> {
    // Static files change less often than binaries, so they go in the lower layer, where a
    // registry that already has it need not receive it again.
    let mut files = LayerContents::new();
    for (source, dest) in &plan.files {
        files.add_path(dest, source)?;
    }
    let mut bins = LayerContents::new();
    for name in &plan.bins {
        bins.add_path(&format!("{}/{name}", plan.bin_dir), &executables[name])?;
    }
    Ok(ImageRequest {
        platform,
        base,
        remove: plan.remove.clone(),
        layers: vec![
            NewLayer {
                contents: files,
                created_by: first_layer_history(plan),
            },
            NewLayer {
                contents: bins,
                created_by: format!("cargo oci: bins {}", plan.bins.join(" ")),
            },
        ],
        config: plan.config.clone(),
        author: plan.author.clone(),
        comment: plan.comment.clone(),
        created,
        annotations: plan.annotations.clone(),
        compression: plan.compression,
    })
}

/// The `created_by` of the first layer, which also carries the whiteouts of `remove`.
fn first_layer_history(plan: &Plan) -> String {
    match (plan.files.is_empty(), plan.remove.is_empty()) {
        (_, true) => "cargo oci: files".to_owned(),
        (true, false) => format!("cargo oci: remove {}", plan.remove.join(" ")),
        (false, false) => format!("cargo oci: files, remove {}", plan.remove.join(" ")),
    }
}

/// `SOURCE_DATE_EPOCH`, the reproducible-builds convention; without it, the fixed default.
fn source_date_epoch() -> Result<Timestamp> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(Timestamp::DEFAULT),
        Ok(value) => value.trim().parse().map(Timestamp).map_err(|_| {
            anyhow!("invalid SOURCE_DATE_EPOCH `{value}`: expected whole seconds since 1970-01-01")
        }),
    }
}

/// The commit the package is checked out at; `None` outside a git checkout or without git.
fn git_revision(dir: &Path) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    let revision = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !revision.is_empty()).then_some(revision)
}

/// The platform of the host rustc builds for when no `--target` is given.
fn host_platform() -> Result<Platform> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .arg("-vV")
        .output()
        .context("failed to run `rustc -vV`")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let host = text
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .ok_or_else(|| anyhow!("`rustc -vV` did not name the host target"))?;
    Platform::from_rust_target(host)
        .ok_or_else(|| anyhow!("no container platform is known for the host target `{host}`"))
}
