//! One image per target, from plan to store: on its base (read in [`super::bases`]), its layers
//! staged, its binaries checked against the platform and the image's files, and all of them
//! packed in parallel (each image is independent, so the bytes do not depend on the order).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use oci_pack::check::{self, ImageFiles, Problem};
use oci_pack::elf;
use oci_pack::{
    build_image_unpacked_first, Attributes, BuildCache, BuiltImage, ImageRequest, LayerContents,
    NewLayer, ParentImage, Timestamp, UnpackedImage,
};

use crate::plan::metadata::ElfCheck;
use crate::plan::ImagePlan;
use crate::shell::Shell;

use super::load::Loading;

/// The engine's request for one image: the files layer, the binaries layer, and the config.
pub fn image_request(
    plan: &ImagePlan,
    executables: &BTreeMap<String, PathBuf>,
    created: Timestamp,
    base: Option<ParentImage>,
    keep_tars: bool,
) -> Result<ImageRequest> {
    // Static files change less often than binaries, so they go in the lower layer, where a
    // registry that already has it need not receive it again.
    // Directories first: a `dirs` entry's owner and mode win over a `files` entry under it.
    let mut files = LayerContents::new();
    for dir in &plan.dirs {
        files.add_chosen_directory(&dir.path, dir.mode, dir.owner)?;
    }
    for file in &plan.files {
        files.add_path_with(&file.dest, &file.source, &file.attributes)?;
    }
    let mut bins = LayerContents::new();
    let capable = Attributes {
        capabilities: plan.capabilities,
        ..Attributes::default()
    };
    for name in &plan.bins {
        let dest = format!("{}/{name}", plan.bin_dir);
        bins.add_path_with(&dest, &executables[name], &capable)?;
    }
    Ok(ImageRequest {
        platform: plan.platform.clone(),
        base,
        layers: vec![
            NewLayer {
                contents: files,
                remove: plan.remove.clone(),
                created_by: first_layer_history(plan),
            },
            NewLayer {
                contents: bins,
                remove: Vec::new(),
                created_by: format!("cargo oci: bins {}", plan.bins.join(" ")),
            },
        ],
        config: plan.config.clone(),
        config_created_by: "cargo oci: config".to_owned(),
        author: plan.author.clone(),
        comment: plan.comment.clone(),
        created,
        mtime: plan.mtime,
        annotations: plan.annotations.clone(),
        compression: plan.compression,
        keep_tars,
    })
}

/// The `created_by` of the first layer, which also carries the whiteouts of `remove`.
fn first_layer_history(plan: &ImagePlan) -> String {
    match (
        plan.files.is_empty() && plan.dirs.is_empty(),
        plan.remove.is_empty(),
    ) {
        (_, true) => "cargo oci: files".to_owned(),
        (true, false) => format!("cargo oci: remove {}", plan.remove.join(" ")),
        (false, false) => format!("cargo oci: files, remove {}", plan.remove.join(" ")),
    }
}

/// Checks every staged binary: an ELF of the image's platform, whose loader and libraries the
/// image's final file tree holds. With `elf-check = "warn"`, problems are warnings.
pub fn check_binaries(
    request: &mut ImageRequest,
    plan: &ImagePlan,
    executables: &BTreeMap<String, PathBuf>,
    shell: &Shell,
) -> Result<()> {
    if plan.bins.is_empty() {
        return Ok(());
    }
    let parent = match request.base.as_mut() {
        Some(parent) => Some(
            parent
                .file_tree()
                .context("failed to read the base image")?,
        ),
        None => None,
    };
    let image = ImageFiles {
        parent,
        layers: request.layers.iter().map(|l| &l.contents).collect(),
    };
    let mut problems = Vec::new();
    for name in &plan.bins {
        let path = &executables[name];
        let Some(info) = elf::read(path)? else {
            continue;
        };
        for problem in check::check(&info, &request.platform, &image) {
            problems.push(match problem {
                Problem::WrongMachine { found, platform } => format!(
                    "binary `{name}` (`{}`) is {found}, which does not run on {platform}",
                    path.display()
                ),
                Problem::MissingInterpreter { interpreter } => format!(
                    "binary `{name}` is dynamically linked and needs the loader `{interpreter}`, \
                     which the image does not have"
                ),
                Problem::MissingLibrary { library } => {
                    format!("binary `{name}` needs `{library}`, which the image does not have")
                }
                Problem::GlibcTooOld { needed, provided } => format!(
                    "binary `{name}` needs {needed}, \
                     but the image's C library provides only up to {provided}"
                ),
            });
        }
        // zigbuild's `…-gnu.2.17` promises a binary that runs on glibc 2.17: hold it to it.
        let suffix = plan
            .triple
            .as_deref()
            .and_then(crate::cargo::compile::glibc_suffix);
        if let Some((_, version)) = suffix {
            let promised = elf::GlibcVersion::parse(&format!("GLIBC_{version}"));
            let needed = elf::GlibcVersion::newest(&info.versions_needed);
            match (needed, promised) {
                (Some(needed), Some(promised)) if needed > promised => problems.push(format!(
                    "binary `{name}` needs {needed}, newer than the glibc {version} its target \
                     `{}` names",
                    plan.triple.as_deref().unwrap_or_default()
                )),
                (needed, _) => shell.detail(
                    "Checked",
                    format_args!(
                        "binary `{name}` needs {}, none newer than the target's glibc {version}",
                        needed.map_or("no glibc symbol version".to_owned(), |v| v.to_string())
                    ),
                ),
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let help = "help: link statically (on a gnu target, \
        `rustflags = [\"-C\", \"target-feature=+crt-static\"]` in the metadata; \
        or a `*-linux-musl` target), use a `base` that has them, \
        or set `elf-check = \"warn\"` to build anyway";
    match plan.elf_check {
        ElfCheck::Warn => {
            for problem in &problems {
                shell.warn(problem);
            }
            Ok(())
        }
        ElfCheck::Deny => bail!(
            "the {} image would not run its binaries:\n  - {}\n{help}",
            request.platform,
            problems.join("\n  - ")
        ),
    }
}

/// Packs every image into the cache's store, one thread each; a layer compressed by an earlier
/// build is taken from the cache. An image with a [`Loading`] is loaded on a thread of its own
/// as soon as its layers' tars are written, while they are compressed, and said so at once:
/// the engine has it even if the build fails after.
pub fn pack_all(
    cache: &BuildCache,
    requests: Vec<(ImageRequest, Option<Loading<'_>>)>,
    shell: &Shell,
) -> Result<Vec<BuiltImage>> {
    std::thread::scope(|scope| {
        let packing: Vec<_> = requests
            .into_iter()
            .map(|(request, loading)| {
                let shell = shell.clone();
                scope.spawn(move || pack_and_load(scope, cache, request, loading, &shell))
            })
            .collect();
        let packed: Vec<_> = packing
            .into_iter()
            .map(|thread| thread.join().expect("a packing thread panicked"))
            .collect();
        // The tars were for the engines, which have them now, or never will.
        let kept: Vec<_> = (packed.iter())
            .flat_map(|(built, _)| built.iter().flat_map(|b| &b.kept_tars))
            .copied()
            .collect();
        cache.drop_kept_tars(&kept);
        let (built, loaded): (Vec<_>, Vec<_>) = packed.into_iter().unzip();
        // An image packed but not loaded fails the build as one not packed does; what is wrong
        // with an image is told before an engine that failed to take another.
        let built: Vec<BuiltImage> = built.into_iter().collect::<oci_pack::Result<_>>()?;
        loaded.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(built)
    })
}

/// One image packed and, with a [`Loading`], loaded on a thread of `scope` from the moment it
/// is unpacked; the load is waited for, and only then are the tars of an image that failed
/// after the hand-over removed.
fn pack_and_load<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    cache: &'env BuildCache,
    request: ImageRequest,
    mut loading: Option<Loading<'env>>,
    shell: &Shell,
) -> (oci_pack::Result<BuiltImage>, Result<()>) {
    let (mut load, mut handed_tars) = (None, Vec::new());
    let mut unpacked = |image: &UnpackedImage| {
        handed_tars.clone_from(&image.tars);
        let Some(loading) = loading.take() else {
            return;
        };
        let (manifest, shell) = (image.manifest.clone(), shell.clone());
        load = Some(scope.spawn(move || {
            let names = loading.load(&manifest, cache, &shell)?;
            shell.status("Loaded", names);
            anyhow::Ok(())
        }));
    };
    let mut progress = shell.clone();
    let built = build_image_unpacked_first(
        cache.store(),
        request,
        Some(cache),
        &mut progress,
        &mut unpacked,
    );
    let loaded = load.map_or(Ok(()), |thread| {
        thread.join().expect("a loading thread panicked")
    });
    if built.is_err() {
        cache.drop_kept_tars(&handed_tars);
    }
    (built, loaded)
}
