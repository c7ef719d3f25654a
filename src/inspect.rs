//! `cargo oci inspect [IMAGE]`: what an image is, without extracting it. Its platforms, each
//! one's config (what a container starts with), its layers with their compressed and
//! uncompressed sizes and the history entry that made each, its base, its annotations and the
//! artifacts attached to it (SBOMs); with `--files`, its final file tree. The image is the
//! package's layout by default, or any source a base can be (`oci:`, `oci-archive:`,
//! `docker-archive:`, `docker://`); every blob read is checked against its digest.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use oci_pack::annotation::{BASE_DIGEST, BASE_NAME};
use oci_pack::capability;
use oci_pack::inspect::{self, Image, PlatformImage, Referrer};
use oci_pack::media_type;
use oci_pack::tree::NodeKind;
use oci_pack::{
    BlobStore, BuildCache, Digest, History, ImageSource, Platform, RegistryFetch, Selector,
};
use serde::Serialize;

use crate::cargo::options::WorkspaceOptions;
use crate::cargo::workspace;
use crate::plan::MessageFormat;
use crate::registry::Registries;
use crate::report::{reason, Message};
use crate::shell::Shell;
use crate::text::escape_controls;

/// What `cargo oci inspect` is asked.
#[derive(Debug)]
pub struct InspectOptions {
    /// The image; `None`: the package's layout.
    pub image: Option<String>,
    pub cargo: WorkspaceOptions,
    /// Only this platform, `OS/ARCH[/VARIANT]`.
    pub platform: Option<String>,
    /// The final file tree instead of the image's layers.
    pub files: bool,
    /// With `files`: the largest first.
    pub largest: bool,
    pub insecure_registry: Vec<String>,
    pub message_format: MessageFormat,
}

/// Opens the image and prints what it is.
pub fn inspect(options: &InspectOptions, shell: &Shell) -> Result<()> {
    let platform = options
        .platform
        .as_deref()
        .map(parse_platform)
        .transpose()?;
    let (source, cache_dir) = match &options.image {
        Some(text) => {
            let here = match &options.cargo.current_dir {
                Some(dir) => dir.clone(),
                None => std::env::current_dir().context("failed to read the current directory")?,
            };
            let source = ImageSource::parse(text, &here)?;
            // A registry image is pulled into the build cache of the package, if there is
            // one (and a later build finds it there); else into a temporary one.
            let cache_dir = match &source {
                ImageSource::Registry(_) => target_dir(&options.cargo).ok(),
                _ => None,
            };
            (source, cache_dir)
        }
        None => {
            let layout = package_layout(&options.cargo)?;
            (
                ImageSource::OciLayout {
                    dir: layout,
                    selector: Selector::Only,
                },
                None,
            )
        }
    };
    let registries = Registries::from_env(
        &options.insecure_registry,
        options.cargo.offline || options.cargo.frozen,
        &[],
    )?;
    let opened = open(
        &source,
        cache_dir.as_deref(),
        &registries,
        platform.as_ref(),
        shell,
    )?;
    let report = Report::of(&opened.image, options.files, options.largest, shell)?;
    let mut stdout = std::io::stdout().lock();
    match options.message_format {
        MessageFormat::Json => {
            let message = Message {
                reason: reason::IMAGE_INSPECTED,
                body: &report,
            };
            writeln!(stdout, "{}", serde_json::to_string(&message)?)?
        }
        MessageFormat::Human if options.files => write!(stdout, "{}", report.files_human())?,
        MessageFormat::Human => write!(stdout, "{}", report.human())?,
    }
    Ok(())
}

/// The target directory the options name, as cargo finds it.
pub fn target_dir(options: &WorkspaceOptions) -> Result<PathBuf> {
    Ok(match &options.target_dir {
        Some(dir) => dir.clone(),
        None => workspace::metadata(options)?.target_directory.into(),
    })
}

/// The layout `cargo oci build` wrote for the one image the options choose.
pub fn package_layout(options: &WorkspaceOptions) -> Result<PathBuf> {
    let facts = workspace::Facts::gather(options)?;
    let names = crate::plan::image_names(&facts, options)?;
    let [name] = names.as_slice() else {
        bail!(
            "the packages chosen make {} images ({}); name one: `cargo oci inspect \
             oci:<target-dir>/oci/<image>`, or choose its package with `-p`",
            names.len(),
            names.join(", ")
        )
    };
    let target_dir = options
        .target_dir
        .clone()
        .unwrap_or_else(|| facts.metadata.target_directory.clone().into());
    let layout = target_dir.join("oci").join(name);
    if !layout.join("index.json").is_file() {
        bail!(
            "no image at `{}`: build it first (`cargo oci build`), or name one, \
             e.g. `cargo oci inspect docker://HOST/REPO:TAG`",
            layout.display()
        );
    }
    Ok(layout)
}

/// `linux/arm64/v8`
fn parse_platform(text: &str) -> Result<Platform> {
    let parts: Vec<&str> = text.split('/').collect();
    match parts.as_slice() {
        [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform::new(os, arch, None)),
        [os, arch, variant] if [os, arch, variant].iter().all(|p| !p.is_empty()) => {
            Ok(Platform::new(os, arch, Some(variant)))
        }
        _ => bail!("invalid platform `{text}`: expected OS/ARCH[/VARIANT], e.g. `linux/arm64`"),
    }
}

/// An image open for reading, with the directories its blobs were read into kept while it is.
#[derive(Debug)]
pub struct Opened {
    pub image: Image,
    _scratch: Option<tempfile::TempDir>,
    _cache: Option<BuildCache>,
}

/// Opens `source` for reading, every platform or those that fit `platform`: an archive into a
/// temporary store, a registry image into the build cache at `cache_dir` (or a temporary one).
pub fn open(
    source: &ImageSource,
    cache_dir: Option<&Path>,
    registries: &Registries,
    platform: Option<&Platform>,
    shell: &Shell,
) -> Result<Opened> {
    let context = || format!("failed to read the image `{source}`");
    let scratch = tempfile::Builder::new()
        .prefix("cargo-oci-inspect-")
        .tempdir()
        .context("failed to create a temporary directory")?;
    let store = BlobStore::open(scratch.path())?;
    let (cache, access) = match source {
        ImageSource::Registry(image) => {
            let root = match cache_dir {
                Some(dir) => dir.join("oci").join(".cache"),
                None => scratch.path().join("cache"),
            };
            let cache = BuildCache::open(&root)?;
            let access = registries.base_access(image, &cache)?;
            (Some(cache), Some(access))
        }
        _ => (None, None),
    };
    let image = inspect::open(
        source,
        &store,
        access.as_deref().map(|a| a as &dyn RegistryFetch),
        platform,
        &mut shell.clone(),
    )
    .with_context(context)?;
    Ok(Opened {
        image,
        _scratch: Some(scratch),
        _cache: cache,
    })
}

/// Everything `inspect` says of an image; `--message-format json` prints it as it is.
#[derive(Debug, Serialize)]
struct Report {
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// The manifest or index digest.
    digest: Option<Digest>,
    media_type: Option<String>,
    tags: Vec<String>,
    /// The image index's own annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    platforms: Vec<PlatformReport>,
    referrers: Vec<Referrer>,
    /// The referrers that are attestations (provenance, signed SBOMs).
    attestations: Vec<crate::attestation::provenance::Attestation>,
}

#[derive(Debug, Serialize)]
struct PlatformReport {
    platform: String,
    manifest: Option<Digest>,
    config: Digest,
    created: Option<String>,
    author: Option<String>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    user: Option<String>,
    working_dir: Option<String>,
    env: Vec<String>,
    exposed_ports: Vec<String>,
    volumes: Vec<String>,
    labels: BTreeMap<String, String>,
    stop_signal: Option<String>,
    /// The base image, as the manifest's annotations name it.
    base_name: Option<String>,
    base_digest: Option<String>,
    /// The manifest's annotations.
    annotations: BTreeMap<String, String>,
    layers: Vec<LayerReport>,
    /// The layers' compressed bytes.
    size: u64,
    /// Their uncompressed bytes; `None` if a layer is of a type that cannot be decoded.
    uncompressed_size: Option<u64>,
    history: Vec<History>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<FileReport>>,
}

#[derive(Debug, Serialize)]
struct LayerReport {
    digest: Digest,
    media_type: String,
    size: u64,
    uncompressed_size: Option<u64>,
    /// As the config gives it (checked against the tar when it is measured).
    diff_id: Option<Digest>,
    created_by: Option<String>,
}

#[derive(Debug, Serialize)]
struct FileReport {
    /// Absolute, as the container sees it.
    path: String,
    #[serde(rename = "type")]
    kind: &'static str,
    /// Octal, `0755`.
    mode: String,
    uid: u64,
    gid: u64,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
    /// File capabilities as `getcap` shows them: `cap_net_bind_service=ep`.
    #[serde(skip_serializing_if = "Option::is_none")]
    capabilities: Option<String>,
}

impl Report {
    fn of(image: &Image, files: bool, largest: bool, shell: &Shell) -> Result<Report> {
        let mut measured = Measured::default();
        let platforms = image
            .platforms
            .iter()
            .map(|platform| {
                PlatformReport::of(image, platform, files, largest, shell, &mut measured)
            })
            .collect::<Result<_>>()?;
        Ok(Report {
            source: image.source.clone(),
            name: image.name.clone(),
            digest: image.target.as_ref().map(|t| t.digest),
            media_type: image.target.as_ref().map(|t| t.media_type.clone()),
            tags: image.tags.clone(),
            annotations: image.index_annotations.clone(),
            platforms,
            referrers: image.referrers.clone(),
            attestations: image
                .referrers
                .iter()
                .filter_map(|r| crate::attestation::provenance::describe(image, r))
                .collect(),
        })
    }
}

/// Each distinct layer decompressed once, however many times (and by however many platforms)
/// it is listed: a small manifest listing one large layer thousands of times costs one read.
#[derive(Default)]
struct Measured {
    /// `None`: a layer whose media type cannot be decompressed (warned of once).
    layers: BTreeMap<Digest, Option<inspect::Uncompressed>>,
}

impl Measured {
    /// The uncompressed size and diff_id of layer `i` of `platform`.
    fn layer(
        &mut self,
        image: &Image,
        platform: &PlatformImage,
        i: usize,
        shell: &Shell,
    ) -> Result<Option<inspect::Uncompressed>> {
        let layer = &platform.layers[i];
        if let Some(known) = self.layers.get(&layer.digest) {
            return Ok(*known);
        }
        let measured = match inspect::uncompressed(&image.store, layer) {
            Ok(measured) => Some(measured),
            Err(oci_pack::Error::UnsupportedMediaType { media_type, .. }) => {
                shell.warn(format_args!(
                    "layer {} of {} is `{}`, which cannot be decompressed",
                    i + 1,
                    platform.platform,
                    escape_controls(&media_type)
                ));
                None
            }
            Err(error) => {
                return Err(error).with_context(|| {
                    format!("failed to read layer {} of {}", i + 1, platform.platform)
                })
            }
        };
        self.layers.insert(layer.digest, measured);
        Ok(measured)
    }
}

impl PlatformReport {
    fn of(
        image: &Image,
        platform: &PlatformImage,
        files: bool,
        largest: bool,
        shell: &Shell,
        measured: &mut Measured,
    ) -> Result<PlatformReport> {
        let history = platform.layer_history();
        let diff_ids = &platform.config.rootfs.diff_ids;
        let mut layers = Vec::new();
        for (i, layer) in platform.layers.iter().enumerate() {
            let measured = measured.layer(image, platform, i, shell)?;
            let diff_id = diff_ids.get(i).copied();
            if let (Some(measured), Some(expected)) = (measured, diff_id) {
                if measured.diff_id != expected {
                    bail!(
                        "layer {} of {} ({}) does not match its diff_id: the config says \
                         {expected}, the layer's tar is {}",
                        i + 1,
                        platform.platform,
                        layer.digest,
                        measured.diff_id
                    );
                }
            }
            layers.push(LayerReport {
                digest: layer.digest,
                media_type: layer.media_type.clone(),
                size: layer.size,
                uncompressed_size: measured.map(|m| m.size),
                diff_id,
                created_by: history[i].and_then(|h| h.created_by.clone()),
            });
        }
        let files = match files {
            true => Some(file_reports(image, platform, largest)?),
            false => None,
        };
        let config = platform.config.config.clone().unwrap_or_default();
        Ok(PlatformReport {
            platform: platform.platform.to_string(),
            manifest: platform.manifest.as_ref().map(|m| m.digest),
            config: platform.config_blob.digest,
            created: platform.config.created.clone(),
            author: platform.config.author.clone(),
            entrypoint: config.entrypoint,
            cmd: config.cmd,
            user: config.user,
            working_dir: config.working_dir,
            env: config.env.unwrap_or_default(),
            exposed_ports: config
                .exposed_ports
                .map(|p| p.into_keys().collect())
                .unwrap_or_default(),
            volumes: config
                .volumes
                .map(|v| v.into_keys().collect())
                .unwrap_or_default(),
            labels: config.labels.unwrap_or_default(),
            stop_signal: config.stop_signal,
            base_name: platform.annotations.get(BASE_NAME).cloned(),
            base_digest: platform.annotations.get(BASE_DIGEST).cloned(),
            annotations: platform.annotations.clone(),
            size: layers.iter().map(|l| l.size).sum(),
            uncompressed_size: layers.iter().map(|l| l.uncompressed_size).sum(),
            layers,
            history: platform.config.history.clone(),
            files,
        })
    }
}

/// Every file of `platform`'s final tree, by path or (`largest`) by size, largest first.
fn file_reports(image: &Image, platform: &PlatformImage, largest: bool) -> Result<Vec<FileReport>> {
    let tree = image
        .file_tree(platform)
        .with_context(|| format!("failed to read the files of {}", platform.platform))?;
    let mut listed: Vec<FileReport> = tree
        .iter()
        .map(|(path, node)| {
            let (kind, size, sha256, link) = match &node.kind {
                NodeKind::Directory => ("directory", 0, None, None),
                NodeKind::File { size, digest, .. } => ("file", *size, Some(*digest), None),
                NodeKind::Symlink { target } => {
                    ("symlink", 0, None, Some(target.display().to_string()))
                }
                _ => ("special", 0, None, None),
            };
            FileReport {
                path: format!("/{}", path.display()),
                kind,
                mode: format!("{:04o}", node.mode),
                uid: node.uid,
                gid: node.gid,
                size,
                sha256,
                link,
                capabilities: node.capability.as_deref().map(capability::describe),
            }
        })
        .collect();
    if largest {
        listed.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    }
    Ok(listed)
}

/// The width of the labels of the human report.
const LABEL: usize = 12;

impl Report {
    /// The report as people read it: aligned, one image per block, digests of layers short.
    fn human(&self) -> String {
        let mut out = Lines::default();
        out.head(self.name.as_deref().unwrap_or(&self.source));
        if self.name.is_some() {
            out.field("source", &self.source);
        }
        match (&self.digest, &self.media_type) {
            (Some(digest), Some(media)) => {
                let what = if media_type::is_index(media) {
                    "an image index"
                } else {
                    "a manifest"
                };
                out.field("digest", &format!("{digest} ({what})"));
            }
            _ => out.field("digest", "none (a Docker archive's image has no manifest)"),
        }
        if !self.tags.is_empty() {
            out.field("tags", &self.tags.join(", "));
        }
        out.map("annotations", &self.annotations);
        for platform in &self.platforms {
            out.blank();
            platform.human(&mut out, &self.referrers, &self.attestations);
        }
        out.text
    }

    /// `--files`: each platform's tree, `ls -l` style.
    fn files_human(&self) -> String {
        let mut out = Lines::default();
        for (n, platform) in self.platforms.iter().enumerate() {
            let files = platform.files.as_deref().unwrap_or_default();
            if n > 0 {
                out.blank();
            }
            let regular: Vec<&FileReport> = files.iter().filter(|f| f.kind == "file").collect();
            out.head(&format!(
                "{}: {} path{}, {} file{}, {}",
                platform.platform,
                files.len(),
                plural(files.len()),
                regular.len(),
                plural(regular.len()),
                bytes(regular.iter().map(|f| f.size).sum())
            ));
            let owner = |f: &FileReport| format!("{}:{}", f.uid, f.gid);
            let owner_width = files.iter().map(|f| owner(f).len()).max().unwrap_or(0);
            let size_width = files
                .iter()
                .map(|f| f.size.to_string().len())
                .max()
                .unwrap_or(0);
            for file in files {
                let link = file
                    .link
                    .as_ref()
                    .map_or_else(String::new, |l| format!(" -> {l}"));
                let capabilities = file
                    .capabilities
                    .as_ref()
                    .map_or_else(String::new, |c| format!("  {c}"));
                out.line(&format!(
                    "{}  {:<owner_width$}  {:>size_width$}  {}{link}{capabilities}",
                    mode_string(file.kind, &file.mode),
                    owner(file),
                    file.size,
                    file.path
                ));
            }
        }
        out.text
    }
}

impl PlatformReport {
    fn human(
        &self,
        out: &mut Lines,
        referrers: &[Referrer],
        attestations: &[crate::attestation::provenance::Attestation],
    ) {
        out.head(&self.platform);
        if let Some(manifest) = &self.manifest {
            out.field("manifest", &manifest.to_string());
        }
        out.field("config", &self.config.to_string());
        let optional = [
            ("created", self.created.clone()),
            ("author", self.author.clone()),
            ("entrypoint", self.entrypoint.as_ref().map(|e| json_list(e))),
            ("cmd", self.cmd.as_ref().map(|c| json_list(c))),
            ("user", self.user.clone()),
            ("workdir", self.working_dir.clone()),
        ];
        for (label, value) in optional {
            if let Some(value) = value {
                out.field(label, &value);
            }
        }
        out.list("env", &self.env);
        if !self.exposed_ports.is_empty() {
            out.field("ports", &self.exposed_ports.join(" "));
        }
        if !self.volumes.is_empty() {
            out.field("volumes", &self.volumes.join(" "));
        }
        out.map("labels", &self.labels);
        if let Some(signal) = &self.stop_signal {
            out.field("stop signal", signal);
        }
        let base = match (&self.base_name, &self.base_digest) {
            (Some(name), Some(digest)) => format!("{name} ({digest})"),
            (Some(name), None) => name.clone(),
            (None, Some(digest)) => digest.clone(),
            (None, None) => "not recorded (no base annotations)".to_owned(),
        };
        out.field("base", &base);
        let annotations: BTreeMap<String, String> = self
            .annotations
            .iter()
            .filter(|(key, _)| *key != BASE_NAME && *key != BASE_DIGEST)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.map("annotations", &annotations);
        self.human_layers(out);
        out.list("attached", &self.attached(referrers, attestations));
    }

    /// The size, and a table of the layers.
    fn human_layers(&self, out: &mut Lines) {
        let uncompressed = self.uncompressed_size.map_or_else(|| "?".to_owned(), bytes);
        out.field(
            "size",
            &format!(
                "{} compressed, {uncompressed} uncompressed, in {} layer{}",
                bytes(self.size),
                self.layers.len(),
                plural(self.layers.len())
            ),
        );
        let number_width = self.layers.len().to_string().len();
        out.field(
            "layers",
            &format!(
                "{:>number_width$}  {:<19}  {:>10}  {:>12}  created by",
                "#", "digest", "compressed", "uncompressed"
            ),
        );
        for (i, layer) in self.layers.iter().enumerate() {
            let hex = layer.digest.hex();
            let created_by = layer.created_by.as_deref().unwrap_or("");
            out.field(
                "",
                &format!(
                    "{:>number_width$}  sha256:{}  {:>10}  {:>12}  {}",
                    i + 1,
                    &hex[..12],
                    bytes(layer.size),
                    layer
                        .uncompressed_size
                        .map_or_else(|| "?".to_owned(), bytes),
                    shorten(created_by, 60)
                ),
            );
        }
    }

    /// What is attached to this platform's manifest, each with what its attestation says.
    fn attached(
        &self,
        referrers: &[Referrer],
        attestations: &[crate::attestation::provenance::Attestation],
    ) -> Vec<String> {
        referrers
            .iter()
            .filter(|r| Some(r.subject) == self.manifest)
            .map(|r| {
                let mut line = format!("{} {} ({})", r.artifact_type, r.digest, bytes(r.size));
                if let Some(attestation) = attestations.iter().find(|a| a.digest == r.digest) {
                    if let Some(predicate) = &attestation.predicate_type {
                        line.push_str(&format!(" {predicate}"));
                    }
                    line.push_str(&match attestation.key_ids.as_slice() {
                        _ if !attestation.signed => ", unsigned".to_owned(),
                        [] => ", signed".to_owned(),
                        ids => format!(", signed by key {}", ids.join(", ")),
                    });
                }
                line
            })
            .collect()
    }
}

/// The report's text, line by line.
#[derive(Default)]
struct Lines {
    text: String,
}

impl Lines {
    /// Every line of the report passes here: what the image says (names, labels, history) is
    /// shown with its control characters escaped, so it cannot act on the terminal or forge a
    /// line.
    fn line(&mut self, line: &str) {
        self.text.push_str(escape_controls(line).trim_end());
        self.text.push('\n');
    }

    fn blank(&mut self) {
        self.text.push('\n');
    }

    fn head(&mut self, title: &str) {
        self.line(title);
    }

    /// `  label       value`
    fn field(&mut self, label: &str, value: &str) {
        self.line(&format!("  {label:<LABEL$} {value}"));
    }

    /// The label on the first line only.
    fn list(&mut self, label: &str, values: &[String]) {
        for (i, value) in values.iter().enumerate() {
            self.field(if i == 0 { label } else { "" }, value);
        }
    }

    fn map(&mut self, label: &str, map: &BTreeMap<String, String>) {
        let lines: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.list(label, &lines);
    }
}

/// `["/usr/local/bin/app", "--port", "8080"]`, as Docker's exec form reads.
fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

/// `text`, cut to `max` characters with `…`.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `12.3 MiB`; bytes below a KiB as they are.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `drwxr-xr-x`, from a kind and an octal mode (`0755`).
fn mode_string(kind: &str, mode: &str) -> String {
    let mode = u32::from_str_radix(mode, 8).unwrap_or(0);
    let mut text = String::with_capacity(10);
    text.push(match kind {
        "directory" => 'd',
        "symlink" => 'l',
        "special" => 'c',
        _ => '-',
    });
    let special = [(0o4000, 's', 'S'), (0o2000, 's', 'S'), (0o1000, 't', 'T')];
    for (who, (bit, on, off)) in special.iter().enumerate() {
        let shift = 6 - 3 * who;
        let bits = (mode >> shift) & 0o7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        let execute = bits & 1 != 0;
        text.push(match (mode & bit != 0, execute) {
            (true, true) => *on,
            (true, false) => *off,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_modes_and_platforms_read_as_people_write_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 << 20), "5.0 MiB");
        assert_eq!(mode_string("directory", "0755"), "drwxr-xr-x");
        assert_eq!(mode_string("file", "4755"), "-rwsr-xr-x");
        assert_eq!(mode_string("directory", "1777"), "drwxrwxrwt");
        assert_eq!(mode_string("file", "0640"), "-rw-r-----");
        assert_eq!(
            parse_platform("linux/arm/v7").unwrap(),
            Platform::new("linux", "arm", Some("v7"))
        );
        for bad in ["linux", "linux/", "a/b/c/d", "/amd64"] {
            assert!(parse_platform(bad).is_err(), "{bad}");
        }
    }
}
