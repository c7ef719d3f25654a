//! `cargo oci verify`: whether a build is reproducible. It rebuilds the chosen packages' images
//! in a scratch target directory (same flags, same `SOURCE_DATE_EPOCH`, nothing reused) and
//! compares their digests with the images already built (`<target-dir>/oci/<image>`) or with
//! `--against IMAGE`; where they differ, it names the first layer that does and the files in
//! it (path, size, mode, owner, time, content hash), as `diffoci` does, or the config fields.
//! `cargo oci verify --layout DIR` checks one layout's integrity alone; `cargo oci verify --key
//! PUB.pem [IMAGE]` its signed provenance ([`attestations`]).

use std::io::Write as _;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use oci_pack::inspect::LayerEntry;
use oci_pack::verify::{Comparison, FieldDiff, FileDiff, LayerDiff, PlatformDiff};
use oci_pack::{ImageSource, Selector};

use crate::build::BuildOptions;
use crate::cargo::options::CargoOptions;
use crate::cargo::workspace;
use crate::error::NotVerified;
use crate::inspect::{self, bytes};
use crate::plan::metadata::{CompressionSpec, ElfCheck};
use crate::plan::{Format, MessageFormat};
use crate::registry::Registries;
use crate::shell::Shell;
use crate::text::escape_controls;

pub mod attestations;

/// What a rebuild is asked (`cargo oci verify` without `--layout` or `--key`): the packages
/// and cargo's flags, what the rebuild is compared with, and the build's own settings.
#[derive(Debug)]
pub struct Rebuild {
    pub cargo: CargoOptions,
    /// `--against IMAGE`, else each image's layout in `<target-dir>/oci/`.
    pub against: Option<String>,
    pub elf_check: Option<ElfCheck>,
    pub compression: Option<CompressionSpec>,
    pub insecure_registry: Vec<String>,
    pub message_format: MessageFormat,
}

/// `--layout DIR`: one line if it is intact; else every problem, and a failure.
pub fn check_layout(layout: &Path, format: MessageFormat, shell: &Shell) -> Result<()> {
    let check = oci_pack::verify::check_layout(layout)
        .with_context(|| format!("failed to check the layout `{}`", layout.display()))?;
    let mut stdout = std::io::stdout().lock();
    match format {
        MessageFormat::Json => {
            let message = serde_json::json!({
                "reason": crate::report::reason::LAYOUT_CHECKED,
                "layout": layout,
                "intact": check.problems.is_empty(),
                "manifests": check.manifests,
                "blobs": check.blobs,
                "bytes": check.bytes,
                "layers": check.layers,
                "unreferenced": check.unreferenced,
                "problems": check.problems,
            });
            writeln!(stdout, "{message}")?;
        }
        MessageFormat::Human if check.problems.is_empty() => writeln!(
            stdout,
            "{} is intact: {} manifest{} and {} blob{} ({}), every digest, size and diff_id \
             as named ({} layer{} decompressed)",
            layout.display(),
            check.manifests,
            plural(check.manifests),
            check.blobs,
            plural(check.blobs),
            bytes(check.bytes),
            check.layers,
            plural(check.layers),
        )?,
        MessageFormat::Human => {}
    }
    if !check.unreferenced.is_empty() {
        shell.warn(format_args!(
            "`{}` holds {} file{} nothing references: {}",
            layout.display(),
            check.unreferenced.len(),
            plural(check.unreferenced.len()),
            escape_controls(&check.unreferenced.join(", "))
        ));
    }
    match check.problems.as_slice() {
        [] => Ok(()),
        problems => {
            let listed: Vec<String> = problems
                .iter()
                .map(|p| format!("\n  {}", escape_controls(&p.to_string())))
                .collect();
            let message = format!(
                "the layout `{}` is damaged ({} problem{}):{}",
                layout.display(),
                problems.len(),
                plural(problems.len()),
                listed.concat()
            );
            Err(NotVerified { message }.into())
        }
    }
}

/// Rebuilds every chosen image in a scratch target directory and compares each with what it
/// should be.
pub fn rebuild_and_compare(rebuild: &Rebuild, shell: &Shell) -> Result<()> {
    let options = &rebuild.cargo.workspace;
    let facts = workspace::Facts::gather(options)?;
    let names = crate::plan::image_names(&facts, options)?;
    if names.is_empty() {
        bail!(
            "no selected package is an image: give one a `[package.metadata.oci]` table, \
             or choose one with `-p`"
        );
    }
    let target_dir = options
        .target_dir
        .clone()
        .unwrap_or_else(|| facts.metadata.target_directory.clone().into());
    // What each rebuild is compared with, found before minutes go into building.
    let expected = expected_images(rebuild, &names, &target_dir)?;

    std::fs::create_dir_all(&target_dir)
        .with_context(|| format!("failed to create `{}`", target_dir.display()))?;
    sweep_scratch(&target_dir, shell);
    // The lock is dropped before the directory: another verify may sweep it meanwhile, which
    // removes the same files.
    let (scratch, _in_use) = scratch_dir(&target_dir)?;
    shell.status(
        "Rebuilding",
        format_args!(
            "{} in the scratch target directory `{}`",
            names.join(", "),
            scratch.path().display()
        ),
    );
    let real = std::path::absolute(&target_dir)?;
    let build_options = rebuild_options(rebuild, &expected, scratch.path(), &real)?;
    // The workspace as asked above: the build does not ask cargo and rustc again.
    let finished = crate::build::build(&build_options, &facts, shell)?;

    let registries = Registries::from_env(
        &rebuild.insecure_registry,
        options.offline || options.frozen,
        &[],
    )?;
    // With `--target`, only those platforms were rebuilt: the others are not compared.
    let partial = !rebuild.cargo.targets.is_empty();
    let mut failures = Vec::new();
    let mut stdout = std::io::stdout().lock();
    for image in &finished {
        let name = &image.name;
        let Some((_, source)) = expected.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let theirs = inspect::open(source, Some(&target_dir), &registries, None, shell)?;
        let rebuilt_source = ImageSource::OciLayout {
            dir: scratch.path().join("oci").join(name),
            selector: Selector::Only,
        };
        let ours = inspect::open(&rebuilt_source, None, &registries, None, shell)?;
        let mut comparison = oci_pack::verify::compare(&theirs.image, &ours.image)
            .with_context(|| format!("failed to compare the rebuild of `{name}`"))?;
        if partial {
            comparison
                .platforms
                .retain(|p| p.only_in != Some("expected"));
            comparison.index.clear();
            comparison.same = comparison.platforms.is_empty();
        }
        let verdict = Verdict {
            image,
            source,
            expected_digest: theirs.image.target.as_ref().map(|t| t.digest.to_string()),
            rebuilt: &ours.image,
            comparison: &comparison,
            partial,
            scratch: scratch.path(),
            real: &real,
        };
        match rebuild.message_format {
            MessageFormat::Json => writeln!(stdout, "{}", verdict.json())?,
            MessageFormat::Human => write!(stdout, "{}", verdict.human())?,
        }
        if !comparison.same {
            failures.push(format!(
                "`{name}` is not reproducible: {}",
                escape_controls(&first_difference(&comparison))
            ));
        }
    }
    stdout.flush()?;
    match failures.as_slice() {
        [] => Ok(()),
        // Checked, and not reproducible: exit code 1.
        failures => Err(NotVerified {
            message: failures.join("\n"),
        }
        .into()),
    }
}

/// What each image's rebuild is compared with: `--against` (for one image), else the layout
/// its last build wrote, `<target-dir>/oci/<image>`.
fn expected_images(
    rebuild: &Rebuild,
    names: &[String],
    target_dir: &Path,
) -> Result<Vec<(String, ImageSource)>> {
    let Some(text) = &rebuild.against else {
        return names
            .iter()
            .map(|name| {
                let dir = target_dir.join("oci").join(name);
                if !dir.join("index.json").is_file() {
                    bail!(
                        "no image at `{}` to compare the rebuild with: build it first \
                         (`cargo oci build`), or name one with `--against IMAGE`",
                        dir.display()
                    );
                }
                let source = ImageSource::OciLayout {
                    dir,
                    selector: Selector::Only,
                };
                Ok((name.clone(), source))
            })
            .collect();
    };
    let [name] = names else {
        bail!(
            "`--against` names one image, and the packages chosen make {} ({}); \
             choose one with `-p`",
            names.len(),
            names.join(", ")
        )
    };
    let here = match &rebuild.cargo.workspace.current_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("failed to read the current directory")?,
    };
    Ok(vec![(name.clone(), ImageSource::parse(text, &here)?)])
}

/// The build that remakes the expected images in `scratch`: the same flags, the targets they
/// record, and the scratch directory named as the `real` target directory in what rustc writes.
fn rebuild_options(
    rebuild: &Rebuild,
    expected: &[(String, ImageSource)],
    scratch: &Path,
    real: &Path,
) -> Result<BuildOptions> {
    let mut options = BuildOptions {
        cargo: rebuild.cargo.clone(),
        elf_check: rebuild.elf_check,
        compression: rebuild.compression,
        formats: vec![Format::Oci],
        insecure_registry: rebuild.insecure_registry.clone(),
        ..BuildOptions::default()
    };
    options.cargo.workspace.target_dir = Some(scratch.to_owned());
    if rebuild.cargo.targets.is_empty() {
        options.cargo.targets = recorded_targets(expected);
    }
    // Paths under the target directory (a build script's OUT_DIR, included code) end up in
    // binaries; built elsewhere, they would differ for that reason alone. The same build in
    // the same directory is what reproducibility asks, so the scratch directory is named as
    // the real one in what rustc writes.
    options.extra_rustflags = vec![format!(
        "--remap-path-prefix={}={}",
        std::path::absolute(scratch)?.display(),
        real.display()
    )];
    Ok(options)
}

/// One image's rebuild compared with what it should be, as verify reports it.
struct Verdict<'a> {
    image: &'a crate::report::Image,
    /// What it was compared with.
    source: &'a ImageSource,
    expected_digest: Option<String>,
    rebuilt: &'a oci_pack::inspect::Image,
    comparison: &'a Comparison,
    /// Whether only some platforms were rebuilt (`--target`).
    partial: bool,
    scratch: &'a Path,
    real: &'a Path,
}

impl Verdict<'_> {
    /// The `image-verified` message of `--message-format json`.
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "reason": crate::report::reason::IMAGE_VERIFIED,
            "image": self.image.name,
            "reproducible": self.comparison.same,
            "digest": self.image.digest,
            "platforms": self.image.platforms,
            "expected": {
                "source": self.source.to_string(),
                "digest": self.expected_digest,
            },
            "differences": self.comparison,
        })
    }

    /// What a person reads: that it is reproducible, or how it differs and, where it can be
    /// told, why.
    fn human(&self) -> String {
        let (name, source) = (&self.image.name, self.source);
        let rebuilt_digest = &self.image.digest;
        let comparison = self.comparison;
        if comparison.same {
            let what = if self.partial && self.expected_digest.as_ref() != Some(rebuilt_digest) {
                // Compared platform by platform: the manifests are what match.
                let platforms: Vec<String> = self
                    .rebuilt
                    .platforms
                    .iter()
                    .map(|p| match &p.manifest {
                        Some(m) => format!("{} {}", p.platform, m.digest),
                        None => p.platform.to_string(),
                    })
                    .collect();
                platforms.join(", ")
            } else {
                let platforms = self.image.platforms.join(", ");
                format!("{rebuilt_digest} ({platforms})")
            };
            let text = format!("{name} is reproducible: {what}, the same as `{source}`");
            return format!("{}\n", escape_controls(&text));
        }
        let mut text = human_differences(
            name,
            &source.to_string(),
            self.expected_digest.as_deref(),
            rebuilt_digest,
            comparison,
        );
        let binaries_differ = comparison.platforms.iter().any(|p| {
            p.layer.as_ref().is_some_and(|layer| {
                let bins = layer.created_by.as_deref().unwrap_or("");
                bins.starts_with("cargo oci: bins") && !layer.files.is_empty()
            })
        });
        if let Some(hint) = path_hint(comparison, self.scratch, self.real) {
            text.push_str(&format!("  note: {}\n", escape_controls(&hint)));
        } else if binaries_differ {
            text.push_str(&format!(
                "  note: was `{source}` built with these packages selected (`-p`, \
                 `--workspace`), features and profile? cargo unifies dependency features \
                 across the packages one build selects, so `-p {name}` alone and the whole \
                 workspace can make different binaries\n"
            ));
        }
        text
    }
}

/// Why a rebuilt binary may differ for its directory alone: it holds the path of the target
/// directory it was built in (a build script's OUT_DIR, code included from there), which no
/// stable cargo flag can take out (`trim-paths` is unstable; rustflags that remap it change
/// the OUT_DIR's own hash). Looked for in the rebuilt executables of the differing files.
fn path_hint(comparison: &Comparison, scratch: &Path, real: &Path) -> Option<String> {
    let needles = [scratch, real].map(|dir| format!("{}/", dir.display()).into_bytes());
    let differing = comparison
        .platforms
        .iter()
        .flat_map(|p| p.layer.iter().flat_map(|layer| &layer.files))
        .map(|file| file.path.as_str());
    for path in differing {
        let name = Path::new(path).file_name()?;
        // Where cargo left the executable: `<scratch>/<triple or profile>/…/<name>`.
        let candidates = std::fs::read_dir(scratch)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|dir| {
                let profile_dirs = std::fs::read_dir(dir.path())
                    .into_iter()
                    .flatten()
                    .flatten();
                std::iter::once(dir.path().join(name))
                    .chain(profile_dirs.map(move |profile| profile.path().join(name)))
            });
        for candidate in candidates.filter(|c| c.is_file()) {
            let Ok(bytes) = std::fs::read(&candidate) else {
                continue;
            };
            let holds = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
            if needles.iter().any(|needle| holds(needle)) {
                let path = format!("/{}", path.trim_start_matches('/'));
                return Some(format!(
                    "`{path}` holds the path of the target directory it was built in (code a \
                     build script wrote to OUT_DIR, or a path from it): built at another path, \
                     it differs for that alone. Build releases at one fixed path to reproduce \
                     them; cargo's `trim-paths`, once stable, will take such paths out"
                ));
            }
        }
    }
    None
}

/// The targets the images to compare with were built for, as the build recorded them in each
/// layout's `index.json`, when every image names the same ones: a build given `--target`s
/// is rebuilt for the same. Empty (the metadata's `targets`, or the host) otherwise.
fn recorded_targets(expected: &[(String, ImageSource)]) -> Vec<String> {
    let mut recorded = expected.iter().map(|(_, source)| {
        let ImageSource::OciLayout { dir, .. } = source else {
            return None;
        };
        let index: oci_pack::ImageIndex =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).ok()?).ok()?;
        let targets = index.annotations.get(crate::build::TARGETS_ANNOTATION)?;
        Some(
            targets
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        )
    });
    let Some(Some(first)) = recorded.next() else {
        return Vec::new();
    };
    if recorded.all(|other| other.as_ref() == Some(&first)) {
        first
    } else {
        Vec::new()
    }
}

/// The scratch target directories of verify runs: `.oci-verify-…`.
const SCRATCH_PREFIX: &str = ".oci-verify-";

/// A new scratch directory in `target_dir`, and the lock (`flock`) on it that says it is in use
/// for as long as it is held: a process id would not, seen from another PID namespace (a
/// container sharing the directory) or once reused.
fn scratch_dir(target_dir: &Path) -> Result<(tempfile::TempDir, std::fs::File)> {
    use std::os::unix::fs::MetadataExt;
    for _ in 0..3 {
        let scratch = tempfile::Builder::new()
            .prefix(SCRATCH_PREFIX)
            .tempdir_in(target_dir)
            .with_context(|| {
                format!("failed to create a directory in `{}`", target_dir.display())
            })?;
        let path = scratch.path();
        let dir = std::fs::File::open(path)
            .with_context(|| format!("failed to open `{}`", path.display()))?;
        // Another verify's sweep may have taken it between its creation and this lock: then
        // the lock is taken, or the directory is gone (or another) once it is held.
        let same = |held: &std::fs::File| {
            let (Ok(ours), Ok(now)) = (held.metadata(), std::fs::metadata(path)) else {
                return false;
            };
            (ours.dev(), ours.ino()) == (now.dev(), now.ino())
        };
        match dir.try_lock() {
            Ok(()) if same(&dir) => return Ok((scratch, dir)),
            Ok(()) | Err(std::fs::TryLockError::WouldBlock) => continue,
            Err(std::fs::TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("failed to lock `{}`", path.display()))
            }
        }
    }
    bail!(
        "failed to create a scratch directory in `{}`: other verify runs kept sweeping it",
        target_dir.display()
    )
}

/// Removes the scratch directories of verify runs that were killed before they could: those
/// no process holds the lock of. A running verify's is left alone.
fn sweep_scratch(target_dir: &Path, shell: &Shell) {
    let Ok(entries) = std::fs::read_dir(target_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(SCRATCH_PREFIX) {
            continue;
        }
        // Held while it is removed, so no verify starts using it meanwhile.
        let Ok(dir) = std::fs::File::open(entry.path()) else {
            continue;
        };
        if dir.try_lock().is_err() {
            continue;
        }
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => shell.detail("Removed", format_args!("{}", entry.path().display())),
            Err(error) => shell.warn(format_args!(
                "could not remove the scratch directory `{}` of an interrupted verify: {error}",
                entry.path().display()
            )),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// How many differing files are listed before `… and N more`.
const FILES_SHOWN: usize = 20;

/// The differences as people read them: the platform, the first layer that differs with its
/// digests and the files in it, then config and manifest fields.
fn human_differences(
    name: &str,
    source: &str,
    expected: Option<&str>,
    rebuilt: &str,
    comparison: &Comparison,
) -> String {
    let mut out = String::new();
    // What the images say (file names, history, config values) shown escaped, as by inspect.
    let mut line = |text: String| {
        out.push_str(escape_controls(&text).trim_end());
        out.push('\n');
    };
    line(format!(
        "{name} is not reproducible: the rebuild is {rebuilt}, `{source}` is {}",
        expected.unwrap_or("an image without a manifest")
    ));
    for platform in &comparison.platforms {
        platform_lines(platform, &mut line);
    }
    if !comparison.index.is_empty() {
        line("every platform's manifest is the same; the image index differs:".to_owned());
        for field in &comparison.index {
            line(format!("  {}", field_line(field)));
        }
    }
    out
}

fn platform_lines(diff: &PlatformDiff, line: &mut impl FnMut(String)) {
    let platform = &diff.platform;
    match diff.only_in {
        Some("expected") => return line(format!("{platform}: not in the rebuild")),
        Some(_) => return line(format!("{platform}: only in the rebuild")),
        None => {}
    }
    if let Some((theirs, ours)) = diff.layer_count {
        line(format!(
            "{platform}: {theirs} layer{} expected, {ours} rebuilt",
            plural(theirs)
        ));
    }
    if let Some(layer) = &diff.layer {
        layer_lines(platform, layer, diff, line);
    }
    if !diff.config.is_empty() {
        let which = if diff.layer.is_none() && diff.layer_count.is_none() {
            "the layers are the same; the config differs"
        } else {
            "the config differs"
        };
        line(format!("{platform}: {which}:"));
        for field in &diff.config {
            let hint = if field.field == "created" {
                " (was SOURCE_DATE_EPOCH the same?)"
            } else {
                ""
            };
            line(format!("  {}{hint}", field_line(field)));
        }
    }
    if !diff.manifest.is_empty() {
        line(format!("{platform}: the manifest differs:"));
        for field in &diff.manifest {
            line(format!("  {}", field_line(field)));
        }
    }
}

fn layer_lines(
    platform: &str,
    layer: &LayerDiff,
    diff: &PlatformDiff,
    line: &mut impl FnMut(String),
) {
    let made_by = layer
        .created_by
        .as_ref()
        .map_or_else(String::new, |c| format!(" ({c})"));
    line(format!(
        "{platform}: layer {} differs{made_by}",
        layer.number
    ));
    let short = |digest: &oci_pack::Digest| format!("sha256:{}", &digest.hex()[..12]);
    for (label, ids) in [("expected", &layer.expected), ("rebuilt ", &layer.actual)] {
        let diff_id = ids
            .diff_id
            .map_or_else(String::new, |d| format!(", diff_id {}", short(&d)));
        line(format!(
            "  {label} {} ({}{diff_id})",
            short(&ids.digest),
            bytes(ids.size)
        ));
    }
    if layer.same_tar {
        line("  the same tar, compressed otherwise".to_owned());
    } else if layer.order_differs {
        line("  the same entries, in another order".to_owned());
    } else if layer.files.is_empty() {
        line("  the same entries; their tar headers differ".to_owned());
    }
    for file in layer.files.iter().take(FILES_SHOWN) {
        line(format!("  {}", file_line(file)));
    }
    if layer.files.len() > FILES_SHOWN {
        line(format!("  … and {} more", layer.files.len() - FILES_SHOWN));
    }
    if !diff.other_layers.is_empty() {
        let others: Vec<String> = diff.other_layers.iter().map(ToString::to_string).collect();
        line(format!(
            "{platform}: layer{} {} differ{} too",
            plural(others.len()),
            others.join(", "),
            if others.len() == 1 { "s" } else { "" }
        ));
    }
}

/// `~ /usr/local/bin/app  size 10 → 12, sha256 1a2b3c4d5e6f → 9f8e7d6c5b4a`, or the entry
/// only one side has.
fn file_line(file: &FileDiff) -> String {
    let path = format!("/{}", file.path);
    match (&file.expected, &file.actual) {
        (Some(a), Some(b)) => {
            let changes: Vec<String> = file
                .fields
                .iter()
                .map(|field| {
                    let (x, y) = match *field {
                        "kind" => (a.kind.name().to_owned(), b.kind.name().to_owned()),
                        "size" => (a.size.to_string(), b.size.to_string()),
                        "mode" => (format!("{:04o}", a.mode), format!("{:04o}", b.mode)),
                        "owner" => (
                            format!("{}:{}", a.uid, a.gid),
                            format!("{}:{}", b.uid, b.gid),
                        ),
                        "mtime" => (a.mtime.to_string(), b.mtime.to_string()),
                        "sha256" => (short_hash(a), short_hash(b)),
                        "capabilities" => {
                            let shown = |e: &LayerEntry| e.capabilities.clone();
                            let none = || "none".to_owned();
                            (shown(a).unwrap_or_else(none), shown(b).unwrap_or_else(none))
                        }
                        _ => (
                            a.link.clone().unwrap_or_default(),
                            b.link.clone().unwrap_or_default(),
                        ),
                    };
                    format!("{field} {x} → {y}")
                })
                .collect();
            format!("~ {path}  {}", changes.join(", "))
        }
        (Some(a), None) => format!("- {path}  only in the expected layer: {}", entry_summary(a)),
        (None, Some(b)) => format!("+ {path}  only in the rebuilt layer: {}", entry_summary(b)),
        (None, None) => format!("? {path}"),
    }
}

fn short_hash(entry: &LayerEntry) -> String {
    entry
        .sha256
        .map_or_else(|| "-".to_owned(), |d| d.hex()[..12].to_owned())
}

/// `file 0755 0:0, 1234 bytes, sha256 1a2b3c4d5e6f`
fn entry_summary(entry: &LayerEntry) -> String {
    let mut text = format!(
        "{} {:04o} {}:{}",
        entry.kind.name(),
        entry.mode,
        entry.uid,
        entry.gid
    );
    if entry.sha256.is_some() {
        text.push_str(&format!(
            ", {} bytes, sha256 {}",
            entry.size,
            short_hash(entry)
        ));
    }
    if let Some(link) = &entry.link {
        text.push_str(&format!(" -> {link}"));
    }
    text
}

/// `config.Env[1]  "A=1" → "A=2"`
fn field_line(field: &FieldDiff) -> String {
    let value = |v: &Option<serde_json::Value>| match v {
        Some(v) => {
            let text = v.to_string();
            if text.chars().count() > 60 {
                format!("{}…", text.chars().take(59).collect::<String>())
            } else {
                text
            }
        }
        None => "(absent)".to_owned(),
    };
    format!(
        "{}  {} → {}",
        field.field,
        value(&field.expected),
        value(&field.actual)
    )
}

/// The first difference, in a few words, for the error line.
fn first_difference(comparison: &Comparison) -> String {
    let Some(diff) = comparison.platforms.first() else {
        let fields: Vec<&str> = comparison
            .index
            .iter()
            .take(3)
            .map(|f| f.field.as_str())
            .collect();
        return format!("its image index differs ({})", fields.join(", "));
    };
    let platform = &diff.platform;
    if let Some(side) = diff.only_in {
        return match side {
            "expected" => format!("the rebuild has no {platform} image"),
            _ => format!("the rebuild has a {platform} image, which the expected has not"),
        };
    }
    if let Some(layer) = &diff.layer {
        let files = match layer.files.as_slice() {
            [] if layer.same_tar => " (the same tar, compressed otherwise)".to_owned(),
            [] => String::new(),
            [one] => format!(" in /{}", one.path),
            [first, rest @ ..] => format!(" in /{} and {} more", first.path, rest.len()),
        };
        return format!("layer {} of {platform} differs{files}", layer.number);
    }
    if let Some((theirs, ours)) = diff.layer_count {
        return format!("{platform} has {ours} layers, {theirs} expected");
    }
    let fields: Vec<&str> = diff
        .config
        .iter()
        .chain(&diff.manifest)
        .take(3)
        .map(|f| f.field.as_str())
        .collect();
    let part = if diff.config.is_empty() {
        "manifest"
    } else {
        "config"
    };
    format!(
        "the {part} of {platform} differs ({}); the layers are the same",
        fields.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_pack::inspect::EntryKind;

    #[test]
    fn a_file_line_names_each_field_that_differs() {
        let entry = |capabilities: Option<&str>, uid| LayerEntry {
            path: "usr/local/bin/app".into(),
            kind: EntryKind::File,
            mode: 0o755,
            uid,
            gid: 0,
            mtime: 0,
            size: 1,
            sha256: None,
            link: None,
            capabilities: capabilities.map(str::to_owned),
        };
        let file = FileDiff {
            path: "usr/local/bin/app".into(),
            fields: vec!["owner", "capabilities"],
            expected: Some(entry(Some("cap_net_bind_service=ep"), 0)),
            actual: Some(entry(None, 65532)),
        };
        assert_eq!(
            file_line(&file),
            "~ /usr/local/bin/app  owner 0:0 → 65532:0, capabilities cap_net_bind_service=ep → none"
        );
    }
}
