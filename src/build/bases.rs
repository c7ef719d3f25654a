//! Step 4's bases: each opened once before cargo runs (its manifest and config read, a
//! registry's or an archive's blobs fetched into the cache, each checked against its digest),
//! then its file tree (every layer inflated and checked against its digest and diff_id) read on
//! a thread while cargo builds, and joined before anything is packed.

use std::thread::JoinHandle;

use anyhow::{bail, Context as _, Result};
use oci_pack::{BuildCache, ImageSource, ParentImage, RegistryFetch};

use crate::plan::{BuildPlan, Format, ImagePlan, Loader};
use crate::registry::Registries;
use crate::shell::Shell;

/// Every base of a build, opened: each base and platform once, and which one each image of
/// each plan is built on.
pub struct Opened {
    /// Each base and platform opened, with the text of its source (what its errors name).
    distinct: Vec<(String, ParentImage)>,
    /// For each plan, for each of its images, its base in `distinct` (`None`: `scratch`).
    used: Vec<Vec<Option<usize>>>,
}

/// Opens every base (a base several images share, once), in the plans' order: a missing base,
/// a registry's refusal or a fetched blob that fails its digest fails the build here, before
/// cargo.
pub fn open_bases(
    plans: &[BuildPlan],
    cache: &BuildCache,
    registries: &Registries,
    shell: &Shell,
) -> Result<Opened> {
    let mut opened = Opened {
        distinct: Vec::new(),
        used: Vec::new(),
    };
    let mut keys: Vec<(String, Option<usize>)> = Vec::new();
    for plan in plans {
        let mut per_platform = Vec::new();
        for image in &plan.images {
            let key = format!("{} {}", image.base, image.platform);
            let base = match keys.iter().find(|(k, _)| *k == key) {
                Some((_, base)) => {
                    shell.detail(
                        "Shared",
                        format_args!("{} with `{}`", image.base, plan.name),
                    );
                    *base
                }
                None => {
                    let base = open_base(image, cache, shell, registries)?.map(|parent| {
                        opened.distinct.push((image.base.to_string(), parent));
                        opened.distinct.len() - 1
                    });
                    keys.push((key, base));
                    base
                }
            };
            per_platform.push(base);
        }
        opened.used.push(per_platform);
    }
    Ok(opened)
}

/// Opens `plan.base` for its platform: its manifest and config read, and a registry's or an
/// archive's blobs fetched or copied into the cache, each checked against its digest. A broken
/// or hostile base fails the build: its blobs before cargo runs; its layers (and an `oci:`
/// layout's blobs, first read with them), read while cargo builds ([`Opened::read_trees`]),
/// before anything is packed.
fn open_base(
    plan: &ImagePlan,
    cache: &BuildCache,
    shell: &Shell,
    registries: &Registries,
) -> Result<Option<ParentImage>> {
    let context = || format!("failed to read the base image `{}`", plan.base);
    let access = match &plan.base {
        ImageSource::Registry(image) => Some(registries.base_access(image, cache)?),
        _ => None,
    };
    let opened = ParentImage::open(
        &plan.base,
        &plan.platform,
        cache,
        access.as_deref().map(|a| a as &dyn RegistryFetch),
        &mut shell.clone(),
    );
    let Some(parent) = opened.with_context(context)? else {
        return Ok(None);
    };
    let name = parent.name.clone().unwrap_or_else(|| plan.base.to_string());
    match &parent.manifest_digest {
        Some(digest) => shell.status("Base", format_args!("{name} ({digest})")),
        None => shell.status("Base", name),
    }
    if let (ImageSource::Registry(image), Some(access)) = (&plan.base, &access) {
        // A mirror, or the location `registries.conf` moved the repository to.
        if let Some(from) = access.served_from().filter(|r| **r != image.repository) {
            shell.detail("Pulled", format_args!("{} from {from}", image.repository));
        }
    }
    Ok(Some(parent))
}

impl Opened {
    /// Each plan's bases, by platform.
    fn of_plans(&self) -> impl Iterator<Item = Vec<Option<&ParentImage>>> {
        self.used.iter().map(|images| {
            images
                .iter()
                .map(|base| base.map(|i| &self.distinct[i].1))
                .collect()
        })
    }

    /// Reads every base's file tree, which checks every layer: on a thread of its own, beside
    /// cargo, when `beside_cargo`; else (`--no-build`) here, failing at once. One thread reads
    /// the bases in turn (each reads its layers a few at once): cargo has the cores too.
    pub fn read_trees(self, beside_cargo: bool) -> Result<Trees> {
        let Opened { distinct, used } = self;
        let (reading, read) = match beside_cargo && !distinct.is_empty() {
            true => (Some(std::thread::spawn(move || read_all(distinct))), None),
            false => (None, Some(read_all(distinct)?)),
        };
        Ok(Trees {
            reading,
            read,
            used,
        })
    }
}

/// Each base's file tree read, in order; the first that fails names its base.
fn read_all(distinct: Vec<(String, ParentImage)>) -> Result<Vec<ParentImage>> {
    distinct
        .into_iter()
        .map(|(source, mut parent)| {
            parent
                .file_tree()
                .with_context(|| format!("failed to read the base image `{source}`"))?;
            Ok(parent)
        })
        .collect()
}

/// The bases' file trees, being read or read.
pub struct Trees {
    reading: Option<JoinHandle<Result<Vec<ParentImage>>>>,
    read: Option<Vec<ParentImage>>,
    used: Vec<Vec<Option<usize>>>,
}

impl Trees {
    /// Waits for every tree; each plan's bases by platform, a base several images share read
    /// once and its tree shared (each is cloned only once read).
    pub fn join(mut self) -> Result<Vec<Vec<Option<ParentImage>>>> {
        let read = match (self.reading.take(), self.read.take()) {
            (Some(thread), _) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
            (None, read) => read.unwrap_or_default(),
        };
        Ok(self
            .used
            .iter()
            .map(|images| {
                images
                    .iter()
                    .map(|base| base.map(|i| read[i].clone()))
                    .collect()
            })
            .collect())
    }
}

impl Drop for Trees {
    /// A build that stops before packing (cargo failed) waits for the read and drops its
    /// outcome: no thread outlives the build, and the layers it read are in the cache for the
    /// next one.
    fn drop(&mut self) {
        if let Some(thread) = self.reading.take() {
            let _ = thread.join();
        }
    }
}

/// A Docker archive (a `docker` output, or one streamed into `docker load`) holds plain and
/// gzip layers only: a base's zstd layers, or new ones with `--load=docker`, are refused here,
/// before cargo builds, not when the archive is written.
pub fn check_docker_archives_hold(
    plans: &[BuildPlan],
    bases: &Opened,
    load: Option<Loader>,
) -> Result<()> {
    const WHY: &str = "a Docker archive holds plain and gzip layers only";
    for (plan, bases) in plans.iter().zip(bases.of_plans()) {
        let (archive, instead) = match (plan.formats.contains(&Format::Docker), load) {
            (true, _) => ("a `docker` output", "write `oci` or `oci-archive`"),
            (false, Some(Loader::Docker)) => ("`--load=docker`", "load with `--load=podman`"),
            _ => continue,
        };
        for (image, base) in plan.images.iter().zip(bases) {
            let zstd_layer = base.iter().flat_map(|base| &base.layers).find(|layer| {
                oci_pack::media_type::oci_layer(&layer.media_type)
                    == Some(oci_pack::media_type::OCI_LAYER_ZSTD)
            });
            if let Some(layer) = zstd_layer {
                bail!(
                    "the base `{}` of `{}` has zstd layers ({}), which {archive} cannot hold \
                     ({WHY}): {instead}",
                    image.base,
                    plan.name,
                    layer.digest
                );
            }
            if load == Some(Loader::Docker) && image.compression == oci_pack::Compression::Zstd {
                bail!(
                    "`{}` makes zstd layers, which `--load=docker` cannot hold ({WHY}): load \
                     with `--load=podman`, or use gzip",
                    plan.name
                );
            }
        }
    }
    Ok(())
}
