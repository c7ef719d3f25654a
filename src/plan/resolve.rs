//! Resolution: `[package.metadata.oci]` plus what Cargo knows of the package, turned into a
//! fully-defaulted, validated plan. Every check that can fail runs here, before cargo builds
//! anything and before a byte is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_pack::layer::{Attributes, Capabilities, Compression, Owner};
use oci_pack::path::image_path;
use oci_pack::ImageSource;
use oci_pack::Platform;
use oci_pack::Reference;
use oci_pack::Timestamp;
use oci_pack::{ConfigChanges, Healthcheck};

use super::metadata::{
    BuilderSpec, CompressionSpec, DirSpec, ElfCheck, EnvSpec, FileSpec, HealthcheckSpec,
    ImageMetadata, KeyError, LayerMtime, Loaded, Mode, SetMetadata,
};
use super::values;
use super::vocabulary::Format;
use super::vocabulary::SbomFormat;
use crate::cargo::compile::Builder;
use crate::error::{KeyPath, Segment, Table};
use crate::text::without_userinfo;

/// What Cargo tells us about the package being packed.
#[derive(Debug, Clone, Default)]
pub struct PackageFacts {
    pub name: String,
    pub version: String,
    pub authors: Vec<String>,
    pub description: Option<String>,
    pub license: Option<String>,
    pub repository: Option<String>,
    pub homepage: Option<String>,
    pub documentation: Option<String>,
    /// The directory of the package's `Cargo.toml`; `files` sources are relative to it.
    pub dir: PathBuf,
    /// Its `[[bin]]` targets.
    pub bin_targets: Vec<String>,
    /// The git commit the package is checked out at, if it is in a git checkout.
    pub revision: Option<String>,
    /// The git tag of that commit, if it has one (looked up only when a tag template asks).
    pub git_tag: Option<String>,
}

/// Everything `cargo oci build` does for one image of a package (the package's own, or one of
/// its `images.<name>`), defaults applied and every value checked: the settings of the image
/// once, and one plan per platform.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    /// The image's name: its `images.<name>` key, else the package's name. Its output is
    /// `<target-dir>/oci/<name>`.
    pub name: String,
    /// The package it is made from.
    pub package: String,
    /// Where a bare `--push` sends it (`repository`, `{name}` replaced).
    pub repository: Option<String>,
    /// One image per target, in the order the targets were given.
    pub images: Vec<ImagePlan>,
    pub tags: Vec<Reference>,
    /// Sorted, each once; at least one.
    pub formats: Vec<Format>,
    /// The SBOM of each platform's image.
    pub sbom: SbomFormat,
    /// Each platform's image gets its SLSA provenance.
    pub provenance: bool,
    /// The binaries are built with `cargo auditable build` (each image's builder says so).
    pub auditable: bool,
    /// The image's metadata table as merged, for its provenance.
    pub metadata: serde_json::Value,
    /// Join the images in an index even when there is one.
    pub index: bool,
    pub index_annotations: BTreeMap<String, String>,
    /// `targets = "base"` (or `--platform`): the targets are still to be taken from the base's
    /// platforms (the images hold the host's until then), with this C library if given.
    pub from_base: Option<Option<super::metadata::Libc>>,
}

impl BuildPlan {
    /// Whether the images are joined in an image index (several, or `index = true`).
    pub fn writes_index(&self) -> bool {
        self.index || self.images.len() > 1
    }
}

/// One image: the platform it is for and everything it is made of.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    /// The target chosen (`--target`, `targets`); `None` is the host, whose triple is passed
    /// to the builder all the same.
    pub triple: Option<String>,
    pub platform: Platform,
    pub builder: Builder,
    /// `rustflags`: given to the builder for this target's artifacts alone.
    pub rustflags: Vec<String>,
    pub elf_check: ElfCheck,
    pub base: ImageSource,
    /// Paths of the base to delete.
    pub remove: Vec<String>,
    pub bins: Vec<String>,
    pub bin_dir: String,
    /// `files`, in order.
    pub files: Vec<FilePlan>,
    /// `dirs`, and `/tmp` for a `scratch` image that runs as a user other than root.
    pub dirs: Vec<DirPlan>,
    /// `capabilities`: every binary's file capabilities.
    pub capabilities: Capabilities,
    pub config: ConfigChanges,
    pub author: Option<String>,
    pub comment: Option<String>,
    pub annotations: BTreeMap<String, String>,
    pub compression: Compression,
    /// Every file's modification time inside the new layers (`layer-mtime`).
    pub mtime: Timestamp,
}

/// One `files` entry: what is copied, where to, and what every entry it stages gets.
#[derive(Debug, Clone)]
pub struct FilePlan {
    /// On disk.
    pub source: PathBuf,
    /// In the image, absolute.
    pub dest: String,
    pub attributes: Attributes,
}

/// One empty directory of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirPlan {
    /// In the image, absolute.
    pub path: String,
    pub owner: Owner,
    pub mode: u32,
}

/// The directory every program may write to (`1777`, as on any Linux system), which a
/// `scratch` image running as a user other than root gets unless `dirs` names it.
const TMP: &str = "/tmp";

/// What the command line sets over the metadata.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--target`, repeatable; replaces `targets`.
    pub targets: Vec<String>,
    /// `--format`, repeatable; replaces `formats`.
    pub formats: Vec<Format>,
    /// `--elf-check`; replaces every image's `elf-check`.
    pub elf_check: Option<ElfCheck>,
    /// `--compression`; replaces every image's `compression`.
    pub compression: Option<CompressionSpec>,
    /// `--tag`, repeatable; replaces `tags`.
    pub tags: Vec<String>,
    /// `--sbom`; replaces `sbom`.
    pub sbom: Option<SbomFormat>,
    /// `--platform`: the targets are the base's platforms (these, or all); replaces `targets`.
    pub from_base: bool,
    /// `--provenance`; replaces `provenance`.
    pub provenance: Option<super::vocabulary::ProvenanceMode>,
    /// `--auditable`; turns `auditable` on.
    pub auditable: bool,
}

/// Why a package's metadata cannot be built.
#[derive(Debug)]
pub enum PlanError {
    /// A key has a value that is wrong.
    Key(KeyError),
    /// A `--tag` that is not a valid tag.
    Tag { tag: String, message: String },
    /// Two targets build the same platform, which an index cannot hold twice.
    SamePlatform {
        first: String,
        second: String,
        platform: String,
    },
    /// Settings that cannot go together, the command line's among them: each named.
    Conflict(String),
}

impl From<KeyError> for PlanError {
    fn from(error: KeyError) -> PlanError {
        PlanError::Key(error)
    }
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanError::Key(error) => write!(f, "invalid {error}"),
            PlanError::Tag { tag, message } => write!(f, "invalid `--tag {tag}`: {message}"),
            PlanError::SamePlatform {
                first,
                second,
                platform,
            } => write!(
                f,
                "targets `{first}` and `{second}` both build {platform}; \
                 an image index holds one image per platform"
            ),
            PlanError::Conflict(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for PlanError {}

const PREFIX: &str = "package.metadata.oci";
const DEFAULT_BIN_DIR: &str = "/usr/local/bin";
const DEFAULT_TAG: &str = "{name}:{version}";

/// What one table of annotations may hold, keys and values: a registry takes a manifest of
/// 4 MiB at most, and the provenance repeats the metadata table, so a MiB leaves room for both
/// and for any number of layers.
const MAX_ANNOTATION_BYTES: usize = 1 << 20;

/// `keys` of the package's table, which [`resolve`] moves under the image's own table when the
/// package has several.
fn at(keys: &[&str]) -> KeyPath {
    keys.iter()
        .fold(KeyPath::new(Table::Package), |path, key| path.key(*key))
}

fn key_error(path: KeyPath, message: impl Into<String>) -> KeyError {
    KeyError {
        path,
        message: message.into(),
    }
}

/// The plan of one image of the package: one per `--target` (else per `targets`, else the
/// host's), with the command line's overrides applied. Errors name the image's table.
pub fn resolve(
    metadata: &Loaded,
    package: &PackageFacts,
    created: Timestamp,
    overrides: &Overrides,
    host: &str,
) -> Result<BuildPlan, PlanError> {
    resolve_named(metadata, package, created, overrides, host).map_err(|error| match error {
        PlanError::Key(mut error) => {
            if let Some(name) = &metadata.name {
                error.path.table = Table::Image(name.clone());
            }
            PlanError::Key(error)
        }
        other => other,
    })
}

fn resolve_named(
    metadata: &Loaded,
    package: &PackageFacts,
    created: Timestamp,
    overrides: &Overrides,
    host: &str,
) -> Result<BuildPlan, PlanError> {
    let name = metadata.name.as_deref().unwrap_or(&package.name);
    let set = &metadata.set;
    use super::metadata::Targets;
    let from_base = (overrides.targets.is_empty()
        && (overrides.from_base || set.targets == Some(Targets::Base)))
    .then_some(set.target_libc);
    let triples: Vec<Option<String>> = match (overrides.targets.as_slice(), &set.targets) {
        _ if from_base.is_some() => vec![None],
        ([], None | Some(Targets::Base)) => vec![None],
        ([], Some(Targets::List(targets))) if targets.is_empty() => {
            return Err(key_error(at(&["targets"]), "the list is empty").into())
        }
        ([], Some(Targets::List(targets))) => targets.iter().cloned().map(Some).collect(),
        (cli, _) => cli.iter().cloned().map(Some).collect(),
    };
    let mut images: Vec<ImagePlan> = Vec::new();
    for triple in triples {
        if images.iter().any(|p| p.triple == triple) {
            continue;
        }
        let for_target = metadata.for_target(triple.as_deref());
        let image = resolve_image(
            for_target,
            package,
            metadata.name.as_deref(),
            created,
            triple.as_deref().unwrap_or(host),
        )?;
        let image = ImagePlan {
            triple,
            elf_check: overrides.elf_check.unwrap_or(image.elf_check),
            compression: overrides.compression.map_or(image.compression, compression),
            ..image
        };
        if let Some(other) = images.iter().find(|p| p.platform == image.platform) {
            return Err(PlanError::SamePlatform {
                first: other.triple.as_deref().unwrap_or(host).to_owned(),
                second: image.triple.as_deref().unwrap_or(host).to_owned(),
                platform: image.platform.to_string(),
            });
        }
        images.push(image);
    }
    let auditable = overrides.auditable || set.auditable.unwrap_or(false);
    if auditable {
        build_auditable(&mut images)?;
    }

    let formats = formats(metadata, overrides, &images)?;
    let repository = match &set.repository {
        Some(template) => {
            let repository = template.replace("{name}", name);
            oci_pack::Repository::parse(&repository)
                .map_err(|e| key_error(at(&["repository"]), e.to_string()))?;
            Some(repository)
        }
        None => None,
    };
    Ok(BuildPlan {
        from_base,
        name: name.to_owned(),
        package: package.name.clone(),
        repository,
        images,
        tags: plan_tags(set, overrides, name, package)?,
        formats,
        sbom: overrides.sbom.or(set.sbom).unwrap_or_default(),
        provenance: match overrides.provenance {
            Some(mode) => mode == super::vocabulary::ProvenanceMode::Slsa,
            None => set.provenance.unwrap_or(true),
        },
        auditable,
        metadata: metadata.table.clone(),
        index: set.index.unwrap_or(false),
        index_annotations: {
            check_annotations("index-annotations", &set.index_annotations)?;
            set.index_annotations.clone()
        },
    })
}

/// Every image of an auditable package built with `cargo auditable build`, which only the
/// cargo builder can be.
fn build_auditable(images: &mut [ImagePlan]) -> Result<(), PlanError> {
    for image in images.iter_mut() {
        image.builder = match &image.builder {
            Builder::Cargo | Builder::Auditable => Builder::Auditable,
            other => {
                return Err(key_error(
                    at(&["auditable"]),
                    format!(
                        "`cargo auditable build` is the builder of an auditable image, \
                         and `builder` is {}; build with cargo, or leave out `auditable`",
                        other.describe()
                    ),
                )
                .into())
            }
        };
    }
    Ok(())
}

/// The output formats: `--format`, else `formats`, else an OCI layout; sorted, at least one,
/// and a Docker archive only of layers `docker load` reads.
fn formats(
    metadata: &Loaded,
    overrides: &Overrides,
    images: &[ImagePlan],
) -> Result<Vec<Format>, PlanError> {
    let set = &metadata.set;
    let mut formats = if overrides.formats.is_empty() {
        set.formats.clone().unwrap_or_else(|| vec![Format::Oci])
    } else {
        overrides.formats.clone()
    };
    formats.sort();
    formats.dedup();
    if formats.is_empty() {
        return Err(key_error(
            at(&["formats"]),
            "at least one output format is needed: \"oci\", \"oci-archive\" or \"docker\"",
        )
        .into());
    }
    if formats.contains(&Format::Docker) {
        if let Some(image) = images.iter().find(|i| i.compression == Compression::Zstd) {
            return Err(docker_cannot_hold_zstd(
                metadata,
                overrides,
                image.triple.as_deref(),
            ));
        }
    }
    Ok(formats)
}

/// The image's tags: `--tag`, else `tags` (an error in a `--tag` names that one).
fn plan_tags(
    set: &SetMetadata,
    overrides: &Overrides,
    name: &str,
    package: &PackageFacts,
) -> Result<Vec<Reference>, PlanError> {
    Ok(match overrides.tags.as_slice() {
        [] => tags(set.tags.as_deref(), name, package)?,
        given => tags(Some(given), name, package).map_err(|error| {
            // `tags[i]`: the error is about the i-th `--tag`.
            let i = error
                .path
                .below
                .iter()
                .find_map(|segment| match segment {
                    Segment::Index(i) => Some(*i),
                    Segment::Key(_) => None,
                })
                .unwrap_or(0);
            PlanError::Tag {
                tag: given[i].clone(),
                message: error.message,
            }
        })?,
    })
}

/// A Docker archive asked for with zstd layers (for `triple`'s image), which `docker load`
/// cannot read: said before anything is built, naming the setting or flag behind each.
fn docker_cannot_hold_zstd(
    metadata: &Loaded,
    overrides: &Overrides,
    triple: Option<&str>,
) -> PlanError {
    let compression_key = match triple {
        Some(triple) if metadata.image.compression != Some(CompressionSpec::Zstd) => {
            format!("target.{triple}.compression")
        }
        _ => "compression".to_owned(),
    };
    let why = "`docker load` reads plain and gzip layers only; use gzip, or the `oci` or \
               `oci-archive` format";
    if overrides.formats.is_empty() && overrides.compression.is_none() {
        let message = format!(
            "a Docker archive cannot hold the zstd layers `{compression_key}` asks for: {why}"
        );
        return key_error(at(&["formats"]), message).into();
    }
    let format = match overrides.formats.is_empty() {
        true => format!("`{PREFIX}.formats`"),
        false => "`--format docker`".to_owned(),
    };
    let compression = match overrides.compression {
        Some(_) => "`--compression zstd`".to_owned(),
        None => format!("`{PREFIX}.{compression_key}`"),
    };
    PlanError::Conflict(format!(
        "a Docker archive ({format}) cannot hold the zstd layers {compression} asks for: {why}"
    ))
}

/// The image tags: one `index.json` entry each, named by the tag part; a repeated tag is one
/// entry, and two names sharing a tag part would be ambiguous.
/// `{name}` is the image's name, `{package}` the package's; `{git_sha}`, `{git_short_sha}` (its
/// first 7 digits) and `{git_tag}` are the checkout's.
fn tags(
    templates: Option<&[String]>,
    name: &str,
    package: &PackageFacts,
) -> Result<Vec<Reference>, KeyError> {
    let mut tags: Vec<Reference> = Vec::new();
    let default = [DEFAULT_TAG.to_owned()];
    for (i, template) in templates.unwrap_or(&default).iter().enumerate() {
        // The default's error names the key to set, not one the user never wrote.
        let (key, what) = match templates {
            Some(_) => (at(&["tags"]).index(i), String::new()),
            None => (
                at(&["tags"]),
                format!("none is set, and the default `{DEFAULT_TAG}` fails: "),
            ),
        };
        let key_error = |message: String| key_error(key.clone(), format!("{what}{message}"));
        let mut tag = template
            .replace("{name}", name)
            .replace("{package}", &package.name)
            .replace("{version}", &tag_safe(&package.version));
        let git = [
            ("{git_sha}", package.revision.clone()),
            (
                "{git_short_sha}",
                package
                    .revision
                    .as_ref()
                    .map(|r| r[..r.len().min(7)].to_owned()),
            ),
            ("{git_tag}", package.git_tag.clone()),
        ];
        for (placeholder, value) in git {
            if !tag.contains(placeholder) {
                continue;
            }
            let Some(value) = value else {
                let why = match (placeholder, &package.revision) {
                    ("{git_tag}", Some(revision)) => {
                        format!("commit {revision} has no git tag (`git tag` one, or drop it)")
                    }
                    _ => format!("`{}` is not in a git checkout", package.dir.display()),
                };
                return Err(key_error(format!(
                    "`{placeholder}` needs a git checkout: {why}"
                )));
            };
            tag = tag.replace(placeholder, &tag_safe(&value));
        }
        let tag: Reference = tag
            .parse()
            .map_err(|e: oci_pack::Error| key_error(e.to_string()))?;
        match tags.iter().find(|t| t.tag == tag.tag) {
            Some(same) if *same == tag => {}
            Some(other) => {
                return Err(key_error(format!(
                    "`{other}` and `{tag}` share the tag `{}`, \
                     which names an image in an OCI layout",
                    tag.tag
                )))
            }
            None => tags.push(tag),
        }
    }
    if tags.is_empty() {
        return Err(key_error(
            at(&["tags"]),
            "at least one tag is needed to name the image",
        ));
    }
    Ok(tags)
}

/// A version (or git tag) as a tag may hold it: `+`, which semver's build metadata begins with
/// (`1.0.0+meta`), is no tag character, and becomes `_`, as Helm and other OCI tools write it.
fn tag_safe(version: &str) -> String {
    version.replace('+', "_")
}

/// The annotations of one table, at most [`MAX_ANNOTATION_BYTES`] in all; else the error names
/// the largest.
fn check_annotations(key: &str, annotations: &BTreeMap<String, String>) -> Result<(), KeyError> {
    let size = |(k, v): (&String, &String)| k.len() + v.len();
    let total: usize = annotations.iter().map(size).sum();
    let Some(largest) = annotations.iter().max_by_key(|entry| size(*entry)) else {
        return Ok(());
    };
    if total <= MAX_ANNOTATION_BYTES {
        return Ok(());
    }
    let name = largest.0;
    let name = match name.contains(['.', '"', ' ']) || name.is_empty() {
        true => crate::cargo::rustflags::toml_string(name),
        false => name.clone(),
    };
    Err(key_error(
        at(&[key]).key(name),
        format!(
            "{total} bytes of annotations (this one {}), more than the {} MiB a table of them \
             may hold: a registry takes a manifest of 4 MiB at most",
            size(largest),
            MAX_ANNOTATION_BYTES >> 20
        ),
    ))
}

/// The plan of the image for `triple` (the Rust target it is built for, the host's when no
/// `--target` is given); its `triple` field is left for the caller.
/// `image`: the `images.<name>` key, whose binary is the default `bins`.
fn resolve_image(
    metadata: &ImageMetadata,
    package: &PackageFacts,
    image: Option<&str>,
    created: Timestamp,
    triple: &str,
) -> Result<ImagePlan, KeyError> {
    let metadata = metadata.clone();
    let platform = platform(&metadata, triple)?;
    let builder = builder(metadata.builder.as_ref(), package)?;
    let base = ImageSource::parse(metadata.base.as_deref().unwrap_or("scratch"), &package.dir)
        .map_err(|e| key_error(at(&["base"]), e.to_string()))?;
    let remove = remove(&metadata.remove, &base)?;
    let bins = bins(metadata.bins, package, image)?;

    let bin_dir = metadata
        .bin_dir
        .unwrap_or_else(|| DEFAULT_BIN_DIR.to_owned());
    image_path(&bin_dir).map_err(|e| key_error(at(&["bin-dir"]), e.to_string()))?;
    let bin_dir = bin_dir.trim_end_matches('/').to_owned();
    let files = files(&metadata.files, package)?;

    if bins.is_empty() && files.is_empty() && base == ImageSource::Scratch {
        return Err(key_error(
            at(&["bins"]),
            format!(
                "nothing to pack: package `{}` has no binaries and no `files` are listed",
                package.name
            ),
        ));
    }

    let mut config = config_changes(&metadata.config)?;
    let mut dirs = dirs(&metadata.dirs)?;
    let tmp_named = dirs
        .iter()
        .any(|d| image_path(&d.path).ok() == image_path(TMP).ok());
    if base == ImageSource::Scratch && !values::runs_as_root(config.user.as_deref()) && !tmp_named {
        let tmp = DirPlan {
            path: TMP.to_owned(),
            owner: Owner::ROOT,
            mode: 0o1777,
        };
        dirs.insert(0, tmp);
    }
    let capabilities = capabilities(metadata.capabilities.as_deref(), &bins)?;
    if config.entrypoint.is_none() {
        if let [only] = bins.as_slice() {
            config.entrypoint = Some(vec![format!("{bin_dir}/{only}")]);
        }
    }

    let compression = compression(metadata.compression.unwrap_or(CompressionSpec::Gzip));
    let author = metadata.author.or_else(|| package.authors.first().cloned());
    Ok(ImagePlan {
        triple: None,
        platform,
        builder,
        rustflags: metadata.rustflags.unwrap_or_default(),
        elf_check: metadata.elf_check.unwrap_or(ElfCheck::Deny),
        base,
        remove,
        bins,
        bin_dir,
        files,
        dirs,
        capabilities,
        config,
        annotations: {
            check_annotations("annotations", &metadata.annotations)?;
            annotations(package, author.as_deref(), created, metadata.annotations)
        },
        author,
        comment: metadata.comment,
        compression,
        mtime: match metadata.layer_mtime.unwrap_or(LayerMtime::Fixed) {
            LayerMtime::Fixed => oci_pack::layer::FIXED_MTIME,
            LayerMtime::SourceDateEpoch => created,
        },
    })
}

/// The builder `builder` names: cargo, cross, zigbuild or a command (a relative program path
/// being the package's).
fn builder(builder: Option<&BuilderSpec>, package: &PackageFacts) -> Result<Builder, KeyError> {
    Ok(match builder {
        None => Builder::Cargo,
        Some(BuilderSpec::Named(name)) => match name.as_str() {
            "cargo" => Builder::Cargo,
            "cross" => Builder::Cross,
            "zigbuild" => Builder::Zigbuild,
            other => {
                return Err(key_error(
                    at(&["builder"]),
                    format!(
                        "`{other}` is not a builder: \
                         use \"cargo\", \"cross\", \"zigbuild\" or a command as a list"
                    ),
                ))
            }
        },
        Some(BuilderSpec::Command(command)) if command.is_empty() => {
            return Err(key_error(at(&["builder"]), "the command is empty"))
        }
        Some(BuilderSpec::Command(command)) => {
            // A relative program path is the package's, like every other path in the metadata.
            let mut command = command.clone();
            if command[0].contains('/') {
                command[0] = package.dir.join(&command[0]).display().to_string();
            }
            Builder::Command(command)
        }
    })
}

/// The paths `remove` takes out of the base, each checked.
fn remove(paths: &[String], base: &ImageSource) -> Result<Vec<String>, KeyError> {
    let mut remove = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let key = || at(&["remove"]).index(i);
        if *base == ImageSource::Scratch {
            return Err(key_error(
                key(),
                "there is nothing to remove from the `scratch` base",
            ));
        }
        image_path(path).map_err(|e| key_error(key(), e.to_string()))?;
        remove.push(path.clone());
    }
    Ok(remove)
}

/// The binaries an image packs: `bins`, else the package's (for an `images.<name>` table, the
/// binary of that name).
fn bins(
    bins: Option<Vec<String>>,
    package: &PackageFacts,
    image: Option<&str>,
) -> Result<Vec<String>, KeyError> {
    Ok(match bins {
        Some(bins) => {
            if let Some(missing) = bins.iter().find(|b| !package.bin_targets.contains(b)) {
                return Err(key_error(
                    at(&["bins"]),
                    format!(
                        "`{missing}` is not a binary of package `{}` (it has: {})",
                        package.name,
                        list(&package.bin_targets)
                    ),
                ));
            }
            bins
        }
        None => match image {
            None => package.bin_targets.clone(),
            Some(name) if package.bin_targets.iter().any(|b| b == name) => vec![name.to_owned()],
            Some(name) => {
                return Err(key_error(
                    at(&["bins"]),
                    format!(
                        "`{name}` is not a binary of package `{}` (it has: {}); \
                         say which go in this image with `bins`",
                        package.name,
                        list(&package.bin_targets)
                    ),
                ))
            }
        },
    })
}

/// The plan of each `files` entry: its source (in the package unless allowed outside),
/// destination and attributes, each checked.
fn files(specs: &[FileSpec], package: &PackageFacts) -> Result<Vec<FilePlan>, KeyError> {
    let mut files = Vec::new();
    for (i, file) in specs.iter().enumerate() {
        let file_key = || at(&["files"]).index(i);
        let source = oci_pack::path::lexically_normal(&package.dir.join(&file.src));
        if std::fs::symlink_metadata(&source).is_err() {
            return Err(key_error(
                file_key(),
                format!("`src` `{}` does not exist", source.display()),
            ));
        }
        if !file.allow_outside && !inside(&package.dir, &source) {
            return Err(key_error(
                file_key(),
                format!(
                    "`src` `{}` is outside the package; what goes in an image comes from the \
                     package unless `allow-outside = true` says otherwise",
                    source.display()
                ),
            ));
        }
        let dest = match file.dest.strip_suffix('/') {
            // `dest/` means "into this directory", as with `COPY`.
            Some(dir) => format!(
                "{dir}/{}",
                source
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ),
            None => file.dest.clone(),
        };
        image_path(&dest).map_err(|e| key_error(file_key(), format!("`dest`: {e}")))?;
        let attributes = file_attributes(file, &source)
            .map_err(|(key, message)| key_error(file_key().key(key), message))?;
        files.push(FilePlan {
            source,
            dest,
            attributes,
        });
    }
    Ok(files)
}

/// What a `files` entry gives what it stages, or the key at fault and why.
fn file_attributes(file: &FileSpec, source: &Path) -> Result<Attributes, (&'static str, String)> {
    let mode = |key, mode: &Option<Mode>| {
        mode.as_ref()
            .map(|m| values::mode(&m.0))
            .transpose()
            .map_err(|e| (key, e))
    };
    let is_dir = std::fs::metadata(source).is_ok_and(|m| m.is_dir());
    if file.dir_mode.is_some() && !is_dir {
        return Err((
            "dir-mode",
            format!(
                "`src` `{}` is not a directory; `mode` is a file's mode",
                source.display()
            ),
        ));
    }
    Ok(Attributes {
        owner: file
            .owner
            .as_deref()
            .map(owner)
            .transpose()
            .map_err(|e| ("owner", e))?,
        file_mode: mode("mode", &file.mode)?,
        dir_mode: mode("dir-mode", &file.dir_mode)?,
        capabilities: Capabilities::NONE,
    })
}

/// `dirs`, each checked: an absolute path named once, its owner and mode.
fn dirs(specs: &[DirSpec]) -> Result<Vec<DirPlan>, KeyError> {
    let mut dirs: Vec<DirPlan> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let key = |field: &str| at(&["dirs"]).index(i).key(field);
        let path = image_path(&spec.path).map_err(|e| key_error(key("path"), e.to_string()))?;
        if dirs
            .iter()
            .any(|d| image_path(&d.path).ok().as_ref() == Some(&path))
        {
            return Err(key_error(
                key("path"),
                format!("`{}` is listed twice", spec.path),
            ));
        }
        let owner = match &spec.owner {
            Some(text) => owner(text).map_err(|e| key_error(key("owner"), e))?,
            None => Owner::ROOT,
        };
        let mode = match &spec.mode {
            Some(mode) => values::mode(&mode.0).map_err(|e| key_error(key("mode"), e))?,
            None => oci_pack::layer::EXECUTABLE_MODE,
        };
        dirs.push(DirPlan {
            path: spec.path.clone(),
            owner,
            mode,
        });
    }
    Ok(dirs)
}

/// `capabilities`, for `bins`: a name the kernel does not know, or capabilities for no binary,
/// is an error.
fn capabilities(names: Option<&[String]>, bins: &[String]) -> Result<Capabilities, KeyError> {
    let capabilities = Capabilities::parse(names.unwrap_or_default())
        .map_err(|e| key_error(at(&["capabilities"]), e))?;
    if !capabilities.is_empty() && bins.is_empty() {
        return Err(key_error(
            at(&["capabilities"]),
            "capabilities are given to the image's binaries, and it has none",
        ));
    }
    Ok(capabilities)
}

fn owner(text: &str) -> Result<Owner, String> {
    values::owner(text).map(|(uid, gid)| Owner { uid, gid })
}

fn compression(spec: CompressionSpec) -> Compression {
    match spec {
        CompressionSpec::Gzip => Compression::Gzip,
        CompressionSpec::Zstd => Compression::Zstd,
        CompressionSpec::None => Compression::None,
    }
}

/// Whether `path` (its directories' links followed, not its own) is under `dir`.
fn inside(dir: &Path, path: &Path) -> bool {
    let resolved = path
        .parent()
        .and_then(|parent| std::fs::canonicalize(parent).ok())
        .zip(path.file_name())
        .map(|(parent, name)| parent.join(name));
    let dir = std::fs::canonicalize(dir).ok();
    let climbs = path.file_name().is_none();
    matches!((resolved, dir), (Some(path), Some(dir)) if path.starts_with(&dir) && !climbs)
}

/// The platform of `triple`, with the metadata's platform keys over it.
fn platform(metadata: &ImageMetadata, triple: &str) -> Result<Platform, KeyError> {
    let mapped = Platform::from_rust_target(crate::cargo::compile::plain_triple(triple));
    for (key, value) in [
        ("os", &metadata.os),
        ("architecture", &metadata.architecture),
    ] {
        if let Some(value) = value.as_deref() {
            let name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
            if value.is_empty() || !value.chars().all(name) {
                return Err(key_error(
                    at(&[key]),
                    format!("`{value}` is not a platform name like \"linux\" or \"arm64\""),
                ));
            }
        }
    }
    let mut platform = match (&mapped, &metadata.os, &metadata.architecture) {
        (_, Some(os), Some(architecture)) => Platform::new(os, architecture, None),
        (Some(mapped), None, None) => mapped.clone(),
        (Some(mapped), os, architecture) => Platform::new(
            os.as_deref().unwrap_or(&mapped.os),
            architecture.as_deref().unwrap_or(&mapped.architecture),
            None,
        ),
        (None, _, _) => {
            return Err(key_error(
                at(&["target", triple]),
                format!(
                    "no container platform is known for the target `{triple}`; \
                     set `os` and `architecture` in this table"
                ),
            ))
        }
    };
    platform.variant = metadata
        .variant
        .clone()
        .or_else(|| mapped.and_then(|m| m.variant));
    platform.os_version.clone_from(&metadata.os_version);
    platform.os_features = metadata.os_features.clone().unwrap_or_default();
    Ok(platform)
}

pub(crate) fn config_changes(
    spec: &super::metadata::ConfigSpec,
) -> Result<ConfigChanges, KeyError> {
    let env = env(spec.env.as_ref())?;

    let mut exposed_ports = Vec::new();
    for (i, port) in spec.exposed_ports.iter().enumerate() {
        let text = port.to_string();
        exposed_ports.extend(
            values::exposed_ports(&text)
                .map_err(|e| key_error(at(&["config", "exposed-ports"]).index(i), e))?,
        );
    }

    for (i, volume) in spec.volumes.iter().enumerate() {
        image_path(volume)
            .map_err(|e| key_error(at(&["config", "volumes"]).index(i), e.to_string()))?;
    }
    if let Some(dir) = &spec.working_dir {
        if !dir.starts_with('/') {
            return Err(key_error(
                at(&["config", "working-dir"]),
                format!("`{dir}` must be an absolute path"),
            ));
        }
    }
    if let Some(signal) = &spec.stop_signal {
        values::stop_signal(signal).map_err(|e| key_error(at(&["config", "stop-signal"]), e))?;
    }
    if let Some(user) = &spec.user {
        values::user(user).map_err(|e| key_error(at(&["config", "user"]), e))?;
    }
    for (key, value, least) in [
        ("memory", spec.memory, 0),
        ("memory-swap", spec.memory_swap, -1),
        ("cpu-shares", spec.cpu_shares, 0),
    ] {
        if value.is_some_and(|v| v < least) {
            let meaning = if least == 0 {
                "it cannot be negative".to_owned()
            } else {
                "it is bytes, or -1 for unlimited".to_owned()
            };
            return Err(key_error(
                at(&["config", key]),
                format!("`{}`: {meaning}", value.unwrap_or_default()),
            ));
        }
    }

    let healthcheck = spec.healthcheck.as_ref().map(healthcheck).transpose()?;

    Ok(ConfigChanges {
        user: spec.user.clone(),
        exposed_ports,
        env,
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.cmd.clone(),
        volumes: spec.volumes.clone(),
        working_dir: spec.working_dir.clone(),
        labels: spec.labels.clone(),
        stop_signal: spec.stop_signal.clone(),
        healthcheck,
        memory: spec.memory,
        memory_swap: spec.memory_swap,
        cpu_shares: spec.cpu_shares,
    })
}

/// `config.env`, as a table or as `NAME=value` strings: each name checked.
fn env(spec: Option<&EnvSpec>) -> Result<Vec<(String, String)>, KeyError> {
    let mut env = Vec::new();
    match spec {
        None => {}
        Some(EnvSpec::Table(table)) => {
            for (name, value) in table {
                values::env_name(name).map_err(|e| key_error(at(&["config", "env"]), e))?;
                env.push((name.clone(), value.clone()));
            }
        }
        Some(EnvSpec::List(list)) => {
            for (i, entry) in list.iter().enumerate() {
                let (name, value) = entry.split_once('=').ok_or_else(|| {
                    key_error(
                        at(&["config", "env"]).index(i),
                        format!("`{entry}` is not of the form NAME=value"),
                    )
                })?;
                values::env_name(name)
                    .map_err(|e| key_error(at(&["config", "env"]).index(i), e))?;
                env.push((name.to_owned(), value.to_owned()));
            }
        }
    }
    Ok(env)
}

/// `config.healthcheck`: its test's form and its durations checked.
fn healthcheck(check: &HealthcheckSpec) -> Result<Healthcheck, KeyError> {
    match check.test.first().map(String::as_str) {
        Some("NONE") if check.test.len() == 1 => {}
        Some("CMD" | "CMD-SHELL") if check.test.len() > 1 => {}
        _ => {
            return Err(key_error(
                at(&["config", "healthcheck", "test"]),
                "must be [\"CMD\", program, args…], [\"CMD-SHELL\", command] \
                 or [\"NONE\"]",
            ))
        }
    }
    let duration = |key: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(values::duration_ns)
            .transpose()
            .map_err(|e| key_error(at(&["config", "healthcheck", key]), e))
    };
    Ok(Healthcheck {
        test: check.test.clone(),
        interval: duration("interval", &check.interval)?,
        timeout: duration("timeout", &check.timeout)?,
        start_period: duration("start-period", &check.start_period)?,
        retries: check.retries,
        extra: BTreeMap::new(),
    })
}

/// The `org.opencontainers.image.*` annotations Cargo knows; the user's own win.
fn annotations(
    package: &PackageFacts,
    author: Option<&str>,
    created: Timestamp,
    user: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let authors = if package.authors.is_empty() {
        author.map(str::to_owned)
    } else {
        Some(package.authors.join(", "))
    };
    let known = [
        ("created", Some(created.to_rfc3339())),
        ("title", Some(package.name.clone())),
        ("version", Some(package.version.clone())),
        ("description", package.description.clone()),
        ("licenses", package.license.clone()),
        // URLs are published with the image: never with the credentials of one.
        (
            "source",
            package.repository.as_deref().map(without_userinfo),
        ),
        ("url", package.homepage.as_deref().map(without_userinfo)),
        (
            "documentation",
            package.documentation.as_deref().map(without_userinfo),
        ),
        ("authors", authors),
        ("revision", package.revision.clone()),
    ];
    let mut annotations: BTreeMap<String, String> = known
        .into_iter()
        .filter_map(|(key, value)| Some((format!("org.opencontainers.image.{key}"), value?)))
        .collect();
    annotations.extend(user);
    annotations
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn package() -> PackageFacts {
        PackageFacts {
            name: "hello".into(),
            version: "0.1.0".into(),
            authors: vec!["Ferris <ferris@example.com>".into()],
            license: Some("MIT".into()),
            dir: std::env::temp_dir(),
            bin_targets: vec!["hello".into()],
            ..PackageFacts::default()
        }
    }

    fn build_on(metadata: serde_json::Value, triples: &[&str]) -> Result<BuildPlan, String> {
        let metadata = crate::plan::metadata::load(None, Some(&metadata))
            .map_err(|e| e.to_string())?
            .remove(0);
        let overrides = Overrides {
            targets: triples.iter().map(|t| t.to_string()).collect(),
            ..Overrides::default()
        };
        resolve(
            &metadata,
            &package(),
            Timestamp(0),
            &overrides,
            "x86_64-unknown-linux-gnu",
        )
        .map_err(|e| match e {
            PlanError::Key(key) => key.to_string(),
            other => other.to_string(),
        })
    }

    fn build(metadata: serde_json::Value) -> Result<BuildPlan, String> {
        build_on(metadata, &[])
    }

    /// The plan of the host's image.
    fn plan(metadata: serde_json::Value) -> Result<ImagePlan, String> {
        build(metadata).map(|mut plan| plan.images.remove(0))
    }

    #[test]
    fn defaults_come_from_cargo() {
        let set = build(json!({})).unwrap();
        assert_eq!(set.tags, ["hello:0.1.0".parse::<Reference>().unwrap()]);
        assert_eq!(set.formats, [Format::Oci]);
        assert!(!set.writes_index());
        let plan = plan(json!({})).unwrap();
        assert_eq!(plan.bins, ["hello"]);
        assert_eq!(plan.config.entrypoint.unwrap(), ["/usr/local/bin/hello"]);
        assert_eq!(plan.author.as_deref(), Some("Ferris <ferris@example.com>"));
        assert_eq!(plan.annotations["org.opencontainers.image.licenses"], "MIT");
        assert_eq!(
            plan.annotations["org.opencontainers.image.created"],
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(plan.compression, Compression::Gzip);
    }

    #[test]
    fn layer_mtime_is_fixed_unless_asked_to_follow_source_date_epoch() {
        let resolve = |metadata: serde_json::Value| {
            let metadata =
                crate::plan::metadata::load(None, Some(&metadata)).map_err(|e| e.to_string());
            let overrides = Overrides::default();
            let (package, host) = (package(), "x86_64-unknown-linux-gnu");
            resolve(
                &metadata?.remove(0),
                &package,
                Timestamp(1_700_000_000),
                &overrides,
                host,
            )
            .map(|mut plan| plan.images.remove(0).mtime)
            .map_err(|e| e.to_string())
        };
        assert_eq!(resolve(json!({})), Ok(oci_pack::layer::FIXED_MTIME));
        assert_eq!(resolve(json!({"layer-mtime": "fixed"})), Ok(Timestamp(1)));
        assert_eq!(
            resolve(json!({"layer-mtime": "source-date-epoch"})),
            Ok(Timestamp(1_700_000_000))
        );
        let error = resolve(json!({"layer-mtime": "now"})).unwrap_err();
        assert!(
            error.contains(
                "`package.metadata.oci.layer-mtime`: unknown variant `now`, expected \
                 `fixed` or `source-date-epoch`"
            ),
            "{error}"
        );
    }

    #[test]
    fn users_annotations_win() {
        let plan =
            plan(json!({"annotations": {"org.opencontainers.image.title": "Hello service"}}))
                .unwrap();
        assert_eq!(
            plan.annotations["org.opencontainers.image.title"],
            "Hello service"
        );
    }

    #[test]
    fn invalid_values_name_their_key() {
        let cases = [
            (
                json!({"bins": ["nope"]}),
                "`package.metadata.oci.bins`: `nope` is not a binary of package `hello` \
                 (it has: `hello`)",
            ),
            (
                json!({"config": {"exposed-ports": [8080, "99999/tcp"]}}),
                "`package.metadata.oci.config.exposed-ports[1]`: `99999/tcp`: \
                 `99999` is not a port number (1-65535)",
            ),
            (
                json!({"config": {"env": ["OK=1", "BROKEN"]}}),
                "`package.metadata.oci.config.env[1]`: `BROKEN` is not of the form NAME=value",
            ),
            (
                json!({"config": {"stop-signal": "SIGTERN"}}),
                "`package.metadata.oci.config.stop-signal`: \
                 `SIGTERN` is not a signal name like \"SIGTERM\" or a number from 1 to 64",
            ),
            (
                json!({"config": {"healthcheck": {"test": ["CMD", "x"], "interval": "30"}}}),
                "`package.metadata.oci.config.healthcheck.interval`: \
                 `30` is not a duration like \"30s\", \"1m30s\" or \"500ms\"",
            ),
            (
                json!({"files": [{"src": "does-not-exist-anywhere", "dest": "/x"}]}),
                "does not exist",
            ),
            (
                json!({"tags": ["Hello:1"]}),
                "`package.metadata.oci.tags[0]`: invalid image reference `Hello:1`",
            ),
            (
                json!({"base": "docker://Debian"}),
                "`package.metadata.oci.base`: \
                 invalid image reference `docker://Debian`: a repository name is lower-case",
            ),
            (
                json!({"base": "oci-achive:base.tar"}),
                "`package.metadata.oci.base`: invalid base image `oci-achive:base.tar`: \
                 expected `scratch`, `oci:DIR[:TAG]`",
            ),
            (
                json!({"remove": ["/etc/motd"]}),
                "`package.metadata.oci.remove[0]`: \
                 there is nothing to remove from the `scratch` base",
            ),
            (
                json!({"base": "oci:base", "remove": ["etc/motd"]}),
                "`package.metadata.oci.remove[0]`: invalid image path `etc/motd`: \
                 paths in the image must be absolute",
            ),
            (
                json!({"bin-dir": "bin"}),
                "`package.metadata.oci.bin-dir`: invalid image path `bin`: \
                 paths in the image must be absolute",
            ),
        ];
        let cases = cases.into_iter().chain([
            (
                json!({"config": {"healthcheck": {"test": ["CMD", "x"], "interval": "2562048h"}}}),
                "`package.metadata.oci.config.healthcheck.interval`: `2562048h` is too long",
            ),
            (
                json!({"os": "", "architecture": "amd64"}),
                "`package.metadata.oci.os`: `` is not a platform name",
            ),
            (
                json!({"config": {"memory": -1}}),
                "`package.metadata.oci.config.memory`: `-1`: it cannot be negative",
            ),
            (
                json!({"config": {"memory-swap": -2}}),
                "`package.metadata.oci.config.memory-swap`: `-2`: it is bytes, or -1",
            ),
            (
                json!({"config": {"user": "root:root:x"}}),
                "`package.metadata.oci.config.user`: `root:root:x` is not a user name",
            ),
            (
                json!({"files": [{"src": "/etc/hostname", "dest": "/x"}]}),
                "`package.metadata.oci.files[0]`: `src` `/etc/hostname` is outside the package",
            ),
        ]);
        for (metadata, expected) in cases {
            let error = plan(metadata.clone()).unwrap_err();
            assert!(
                error.contains(expected),
                "{metadata}:\n  got {error}\n  expected {expected}"
            );
        }
    }

    #[test]
    fn a_file_outside_the_package_is_taken_only_when_allowed() {
        let allowed =
            json!({"files": [{"src": "/etc/hostname", "dest": "/x", "allow-outside": true}]});
        let allowed = plan(allowed).unwrap();
        assert_eq!(allowed.files[0].source, PathBuf::from("/etc/hostname"));
        assert!(plan(json!({"config": {"memory-swap": -1, "user": "1000:1000"}})).is_ok());
    }

    #[test]
    fn files_take_an_owner_and_modes_and_dirs_are_listed_with_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let (conf, secret) = (dir.path().join("conf"), dir.path().join("secret"));
        std::fs::create_dir(&conf).unwrap();
        std::fs::write(&secret, "s").unwrap();
        let (conf, secret) = (conf.display().to_string(), secret.display().to_string());
        let plan = plan(json!({
            "base": "oci:base",
            "files": [
                {"src": conf, "dest": "/etc/app", "owner": "65532:65532", "mode": "0640",
                 "dir-mode": "0750"},
                {"src": secret, "dest": "/etc/secret"},
            ],
            "dirs": [{"path": "/data", "owner": "65532:65533", "mode": "0700"}, {"path": "/run"}],
        }))
        .unwrap();
        let ours = Owner {
            uid: 65532,
            gid: 65532,
        };
        assert_eq!(
            plan.files[0].attributes,
            Attributes {
                owner: Some(ours),
                file_mode: Some(0o640),
                dir_mode: Some(0o750),
                capabilities: Capabilities::NONE,
            }
        );
        assert_eq!(plan.files[1].attributes, Attributes::default());
        let dir = |path: &str, uid, gid, mode| DirPlan {
            path: path.into(),
            owner: Owner { uid, gid },
            mode,
        };
        // A base that is not `scratch` has its own `/tmp`.
        assert_eq!(
            plan.dirs,
            [dir("/data", 65532, 65533, 0o700), dir("/run", 0, 0, 0o755)]
        );

        let errors = [
            (
                json!({"files": [{"src": secret, "dest": "/s", "dir-mode": "0750"}]}),
                "`package.metadata.oci.files[0].dir-mode`: `src` `",
            ),
            (
                json!({"files": [{"src": secret, "dest": "/s", "owner": "nobody"}]}),
                "`package.metadata.oci.files[0].owner`: `nobody` is not an owner",
            ),
            (
                json!({"files": [{"src": secret, "dest": "/s", "mode": 640}]}),
                "`package.metadata.oci.files[0].mode`: expected a mode as an octal string",
            ),
            (
                json!({"dirs": [{"path": "/d", "mode": "0999"}]}),
                "`package.metadata.oci.dirs[0].mode`: `0999` is not a mode",
            ),
            (
                json!({"dirs": [{"path": "/d"}, {"path": "/d/"}]}),
                "`package.metadata.oci.dirs[1].path`: `/d/` is listed twice",
            ),
            (
                json!({"dirs": [{"path": "d"}]}),
                "`package.metadata.oci.dirs[0].path`: invalid image path `d`",
            ),
        ];
        for (metadata, expected) in errors {
            let error = super::tests::plan(metadata.clone()).unwrap_err();
            assert!(error.contains(expected), "{metadata}:\n  got {error}");
        }
    }

    /// A `scratch` image has no `/tmp`; one that runs as a user other than root could not
    /// make it.
    #[test]
    fn a_scratch_image_running_as_a_user_gets_a_tmp_unless_dirs_names_it() {
        let tmp = |metadata| -> Vec<DirPlan> {
            let dirs = plan(metadata).unwrap().dirs;
            dirs.into_iter()
                .filter(|d| d.path.starts_with("/tmp"))
                .collect()
        };
        let sticky = DirPlan {
            path: "/tmp".into(),
            owner: Owner::ROOT,
            mode: 0o1777,
        };
        assert_eq!(
            tmp(json!({"config": {"user": "65532:65532"}})),
            std::slice::from_ref(&sticky)
        );
        assert_eq!(tmp(json!({"config": {"user": "nobody"}})), [sticky]);
        assert_eq!(tmp(json!({})), []);
        assert_eq!(tmp(json!({"config": {"user": "0:65532"}})), []);
        assert_eq!(
            tmp(json!({"base": "oci:base", "config": {"user": "1"}})),
            []
        );
        let own = json!({"config": {"user": "1"}, "dirs": [{"path": "/tmp/", "owner": "1:1"}]});
        assert_eq!(
            tmp(own),
            [DirPlan {
                path: "/tmp/".into(),
                owner: Owner { uid: 1, gid: 1 },
                mode: 0o755
            }]
        );
    }

    #[test]
    fn capabilities_take_every_spelling_and_are_overridden_per_target_and_image() {
        let metadata = json!({
            "capabilities": ["CAP_NET_BIND_SERVICE"],
            "target": {"aarch64-unknown-linux-gnu": {"capabilities": ["net_raw", "NET_ADMIN"]}},
        });
        let set = build_on(
            metadata,
            &["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"],
        )
        .unwrap();
        let names: Vec<Vec<String>> = set.images.iter().map(|i| i.capabilities.names()).collect();
        assert_eq!(
            names,
            [
                vec!["CAP_NET_BIND_SERVICE"],
                vec!["CAP_NET_ADMIN", "CAP_NET_RAW"]
            ]
        );
        let images = json!({"capabilities": ["net_bind_service"],
            "images": {"hello": {"capabilities": []}}});
        let image = crate::plan::metadata::load(None, Some(&images))
            .unwrap()
            .remove(0);
        let plan = resolve(
            &image,
            &package(),
            Timestamp(0),
            &Overrides::default(),
            "x86_64-unknown-linux-gnu",
        )
        .unwrap();
        assert!(plan.images[0].capabilities.is_empty());

        let error = super::tests::plan(json!({"capabilities": ["CAP_NET_BIND"]})).unwrap_err();
        assert!(
            error.starts_with(
                "`package.metadata.oci.capabilities`: `CAP_NET_BIND` is not a Linux capability; \
                 expected one of CAP_CHOWN,"
            ),
            "{error}"
        );
        let none = json!({"base": "oci:base", "bins": [], "capabilities": ["net_raw"]});
        assert_eq!(
            super::tests::plan(none).unwrap_err(),
            "`package.metadata.oci.capabilities`: \
             capabilities are given to the image's binaries, and it has none"
        );
        let images = json!({"images": {"hello": {"capabilities": ["bogus"]}}});
        let image = crate::plan::metadata::load(None, Some(&images))
            .unwrap()
            .remove(0);
        let overrides = Overrides::default();
        let host = "x86_64-unknown-linux-gnu";
        let error = resolve(&image, &package(), Timestamp(0), &overrides, host).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`package.metadata.oci.images.hello.capabilities`: `bogus`"),
            "{error}"
        );
    }

    #[test]
    fn repeated_tags_make_one_entry_and_clashing_tag_parts_are_refused() {
        let plan = build(json!({"tags": ["{name}:1", "{name}:latest", "hello:1"]})).unwrap();
        let tags: Vec<String> = plan.tags.iter().map(ToString::to_string).collect();
        assert_eq!(tags, ["hello:1", "hello:latest"]);
        let error = build(json!({"tags": ["hello:1", "other:1"]})).unwrap_err();
        assert!(
            error.starts_with(
                "`package.metadata.oci.tags[1]`: `hello:1` and `other:1` share the tag `1`"
            ),
            "{error}"
        );
        assert!(build(json!({"tags": []}))
            .unwrap_err()
            .contains("at least one tag"));
    }

    #[test]
    fn platforms_come_from_the_triple_and_the_platform_keys() {
        let arm = |metadata: serde_json::Value, triple: &str| {
            build_on(metadata, &[triple]).map(|p| p.images[0].platform.to_string())
        };
        assert_eq!(
            arm(json!({}), "aarch64-unknown-linux-gnu").unwrap(),
            "linux/arm64"
        );
        assert_eq!(
            arm(
                json!({"target": {"aarch64-unknown-linux-gnu": {"variant": "v8"}}}),
                "aarch64-unknown-linux-gnu"
            )
            .unwrap(),
            "linux/arm64/v8"
        );
        assert_eq!(
            arm(json!({}), "armv7-unknown-linux-gnueabihf").unwrap(),
            "linux/arm/v7"
        );
        let unknown = arm(json!({}), "sparc64-unknown-linux-gnu")
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains(
                "no container platform is known for the target `sparc64-unknown-linux-gnu`"
            ),
            "{unknown}"
        );
        let explicit = json!({
            "target": {"sparc64-unknown-linux-gnu": {"os": "linux", "architecture": "sparc64"}}
        });
        assert_eq!(
            arm(explicit, "sparc64-unknown-linux-gnu").unwrap(),
            "linux/sparc64"
        );
        assert!(plan(json!({"builder": "docker"}))
            .unwrap_err()
            .contains("`docker` is not a builder"));
    }

    #[test]
    fn the_command_line_overrides_targets_formats_and_checks() {
        let metadata = json!({"targets": ["aarch64-unknown-linux-gnu"], "formats": ["docker"],
            "elf-check": "warn"});
        let from_metadata = build(metadata.clone()).unwrap();
        assert_eq!(from_metadata.images[0].platform.to_string(), "linux/arm64");
        assert_eq!(from_metadata.formats, [Format::Docker]);
        assert_eq!(from_metadata.images[0].elf_check, ElfCheck::Warn);
        assert_eq!(
            from_metadata.sbom,
            SbomFormat::Spdx,
            "SPDX unless asked otherwise"
        );

        let loaded = crate::plan::metadata::load(None, Some(&metadata))
            .unwrap()
            .remove(0);
        let overrides = Overrides {
            targets: vec![
                "x86_64-unknown-linux-gnu".into(),
                "armv7-unknown-linux-gnueabihf".into(),
            ],
            formats: vec![Format::OciArchive, Format::Oci, Format::Oci],
            elf_check: Some(ElfCheck::Deny),
            compression: Some(CompressionSpec::Zstd),
            tags: vec!["app:{git_short_sha}".into(), "app:{version}".into()],
            sbom: Some(SbomFormat::CycloneDx),
            provenance: Some(crate::plan::ProvenanceMode::None),
            auditable: true,
            ..Overrides::default()
        };
        let checked_out = PackageFacts {
            revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
            ..package()
        };
        let plan = resolve(
            &loaded,
            &checked_out,
            Timestamp(0),
            &overrides,
            "x86_64-unknown-linux-gnu",
        )
        .unwrap();
        let platforms: Vec<String> = plan.images.iter().map(|i| i.platform.to_string()).collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm/v7"]);
        assert!(plan.writes_index());
        assert_eq!(plan.formats, [Format::Oci, Format::OciArchive]);
        assert_eq!(plan.sbom, SbomFormat::CycloneDx);
        assert!(!plan.provenance, "--provenance none");
        assert!(plan.auditable);
        assert!(plan.images.iter().all(|i| i.builder == Builder::Auditable));
        assert!(plan.images.iter().all(|i| i.elf_check == ElfCheck::Deny));
        let tags: Vec<String> = plan.tags.iter().map(ToString::to_string).collect();
        assert_eq!(tags, ["app:0123456", "app:0.1.0"], "--tag replaces `tags`");
        assert!(plan
            .images
            .iter()
            .all(|i| i.compression == Compression::Zstd));

        let twice = build_on(
            json!({}),
            &["x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl"],
        );
        assert!(twice.unwrap_err().contains("both build linux/amd64"));
        assert!(build(json!({"targets": []}))
            .unwrap_err()
            .contains("the list is empty"));
        // The provenance is on unless turned off; auditable images are built by cargo alone.
        assert!(build(json!({})).unwrap().provenance);
        assert!(!build(json!({"provenance": false})).unwrap().provenance);
        let error = build(json!({"auditable": true, "builder": "cross"})).unwrap_err();
        assert!(error.contains("`cargo auditable build`"), "{error}");
    }

    #[test]
    fn config_values_are_normalised() {
        let plan = plan(json!({"config": {
            "env": {"RUST_LOG": "info"},
            "exposed-ports": [8080, "53/udp"],
            "healthcheck": {
                "test": ["CMD", "/hello", "--check"], "interval": "1m30s", "retries": 3
            },
        }}))
        .unwrap();
        assert_eq!(
            plan.config.env,
            [("RUST_LOG".to_owned(), "info".to_owned())]
        );
        assert_eq!(plan.config.exposed_ports, ["8080/tcp", "53/udp"]);
        let check = plan.config.healthcheck.unwrap();
        assert_eq!(
            (check.interval, check.retries),
            (Some(90_000_000_000), Some(3))
        );
    }

    #[test]
    fn an_image_per_binary_takes_its_binary_name_and_repository() {
        let facts = PackageFacts {
            name: "tools".into(),
            bin_targets: vec!["migrate".into(), "seed".into()],
            ..package()
        };
        let metadata = json!({"repository": "ghcr.io/acme/{name}",
            "tags": ["{name}:{version}", "{package}-{name}:latest"],
            "images": {"migrate": {}, "helper": {"bins": ["seed"]}, "nope": {}}});
        let images = crate::plan::metadata::load(None, Some(&metadata)).unwrap();
        let resolve = |loaded| {
            resolve(
                loaded,
                &facts,
                Timestamp(0),
                &Overrides::default(),
                "x86_64-unknown-linux-gnu",
            )
        };
        let helper = resolve(&images[0]).unwrap();
        assert_eq!(helper.name, "helper");
        assert_eq!(helper.images[0].bins, ["seed"]);
        let migrate = resolve(&images[1]).unwrap();
        assert_eq!(
            (migrate.name.as_str(), migrate.package.as_str()),
            ("migrate", "tools")
        );
        assert_eq!(migrate.images[0].bins, ["migrate"]);
        assert_eq!(migrate.repository.as_deref(), Some("ghcr.io/acme/migrate"));
        let tags: Vec<String> = migrate.tags.iter().map(ToString::to_string).collect();
        assert_eq!(tags, ["migrate:0.1.0", "tools-migrate:latest"]);
        assert_eq!(
            migrate.images[0].config.entrypoint,
            Some(vec!["/usr/local/bin/migrate".to_owned()])
        );
        let error = match resolve(&images[2]) {
            Err(PlanError::Key(error)) => error.to_string(),
            other => panic!("{other:?}"),
        };
        assert!(
            error.starts_with("`package.metadata.oci.images.nope.bins`: `nope` is not a binary"),
            "{error}"
        );
    }

    #[test]
    fn build_metadata_in_a_version_makes_a_valid_default_tag() {
        let facts = PackageFacts {
            version: "1.0.0+meta.1".into(),
            git_tag: Some("v1.0.0+meta".into()),
            ..package()
        };
        let made = |templates: Option<&[String]>| -> Vec<String> {
            let tags = tags(templates, "app", &facts).unwrap();
            tags.iter().map(ToString::to_string).collect()
        };
        assert_eq!(made(None), ["app:1.0.0_meta.1"]);
        assert_eq!(made(Some(&["app:{git_tag}".into()])), ["app:v1.0.0_meta"]);
        // The default that still fails names the key to set, not one never written.
        let upper = PackageFacts {
            name: "Hello".into(),
            ..package()
        };
        let error = tags(None, "Hello", &upper).unwrap_err().to_string();
        assert!(
            error.starts_with(
                "`package.metadata.oci.tags`: none is set, and the default `{name}:{version}` \
                 fails: "
            ),
            "{error}"
        );
    }

    #[test]
    fn annotations_too_large_for_a_manifest_are_refused_by_key() {
        let big = "x".repeat(5 << 20);
        let error =
            plan(json!({"annotations": {"org.example.notes": big, "small": "1"}})).unwrap_err();
        assert!(
            error.starts_with(
                "`package.metadata.oci.annotations.\"org.example.notes\"`: 5242903 bytes of \
                 annotations (this one 5242897), more than the 1 MiB a table of them may hold"
            ),
            "{error}"
        );
        let error =
            build(json!({"index-annotations": {"notes": "x".repeat(1 << 20)}})).unwrap_err();
        assert!(
            error.starts_with("`package.metadata.oci.index-annotations.notes`"),
            "{error}"
        );
        assert!(plan(json!({"annotations": {"notes": "x".repeat(1000)}})).is_ok());
    }

    #[test]
    fn git_placeholders_need_a_checkout_and_a_tag() {
        let facts = PackageFacts {
            revision: Some("89abcdef0123456789abcdef0123456789abcdef".into()),
            git_tag: Some("v1.2.0".into()),
            ..package()
        };
        let tags = tags(
            Some(&[
                "app:{git_sha}".into(),
                "app:{git_short_sha}".into(),
                "app:{git_tag}".into(),
            ]),
            "app",
            &facts,
        )
        .unwrap();
        let tags: Vec<String> = tags.iter().map(ToString::to_string).collect();
        assert_eq!(
            tags,
            [
                "app:89abcdef0123456789abcdef0123456789abcdef",
                "app:89abcde",
                "app:v1.2.0"
            ]
        );
        let untagged = PackageFacts {
            git_tag: None,
            ..facts
        };
        let error = tags_error(&untagged, "app:{git_tag}");
        assert!(error.contains("has no git tag"), "{error}");
        let error = tags_error(&package(), "app:{git_short_sha}");
        assert!(error.contains("is not in a git checkout"), "{error}");
        assert!(
            error.starts_with("`package.metadata.oci.tags[0]`"),
            "{error}"
        );
    }

    fn tags_error(facts: &PackageFacts, template: &str) -> String {
        tags(Some(&[template.to_owned()]), "app", facts)
            .unwrap_err()
            .to_string()
    }
}
