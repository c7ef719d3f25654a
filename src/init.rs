//! `cargo oci init`: a crate or workspace made ready for `cargo oci build`, its files otherwise
//! left as they were. The image's table is appended to `Cargo.toml` (nothing before it moves),
//! and the workspace's member list is edited with a format-preserving TOML editor. Running it
//! again changes nothing.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cargo_metadata::{Metadata, Package};
use toml_edit::DocumentMut;

use crate::cargo::options::WorkspaceOptions;
use crate::cargo::rustflags::toml_string;
use crate::shell::Shell;

/// The xtask template, as `templates/xtask/` holds it.
const XTASK_MANIFEST: &str = include_str!("../templates/xtask/Cargo.toml");
const XTASK_MAIN: &str = include_str!("../templates/xtask/src/main.rs");
/// The release pipelines of `templates/ci/`.
const GITHUB_PIPELINE: &str = include_str!("../templates/ci/github.yml");
const GITLAB_PIPELINE: &str = include_str!("../templates/ci/gitlab-ci.yml");
/// The line of the xtask template that says where cargo oci's library comes from.
const XTASK_DEPENDENCY: &str = "cargo-oci = { path = \"../../cargo-oci\" }";

/// What `cargo oci init` is asked.
#[derive(Debug)]
pub struct InitOptions {
    /// The package to add the image to; `None`: the one in the current directory (at a virtual
    /// workspace's root, the workspace).
    pub package: Option<String>,
    pub manifest_path: Option<PathBuf>,
    /// The base image.
    pub base: String,
    /// Also add an xtask.
    pub xtask: bool,
    /// Also write a release pipeline.
    pub ci: Option<Ci>,
}

/// Where a release pipeline runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ci {
    /// GitHub Actions: `.github/workflows/release.yml`
    Github,
    /// GitLab CI: `.gitlab-ci.yml`
    Gitlab,
}

impl Ci {
    /// The pipeline's path in the repository, and its text.
    fn pipeline(self) -> (&'static str, &'static str) {
        match self {
            Ci::Github => (".github/workflows/release.yml", GITHUB_PIPELINE),
            Ci::Gitlab => (".gitlab-ci.yml", GITLAB_PIPELINE),
        }
    }
}

/// Adds the image's table, and the xtask and pipeline if asked; says what to do next.
pub fn init(options: &InitOptions, shell: &Shell) -> Result<()> {
    let workspace = WorkspaceOptions {
        manifest_path: options.manifest_path.clone(),
        ..WorkspaceOptions::default()
    };
    let metadata = crate::cargo::workspace::metadata(&workspace)?;
    let host = crate::cargo::workspace::host_triple(&workspace)?;
    // Static linking for `scratch` on a glibc target (`-gnu`, `-gnueabihf`, …), dynamic by default.
    let rustflags = options.base == "scratch" && host.contains("-linux-gnu");
    let table = match chosen_package(&metadata, options)? {
        Some(package) => {
            let bins: Vec<&str> = package
                .targets
                .iter()
                .filter(|t| t.kind.iter().any(|k| k.to_string() == "bin"))
                .map(|t| t.name.as_str())
                .collect();
            if bins.is_empty() {
                bail!(
                    "package `{}` has no binary to put in an image\n  --> {}",
                    package.name,
                    package.manifest_path
                );
            }
            // The workspace's table makes it an image already; a table of its own written
            // with defaults would override the workspace's base, tags and user.
            if metadata.workspace_metadata.get("oci").is_some()
                && package.metadata.get("oci").is_none()
            {
                shell.status(
                    "Unchanged",
                    format_args!(
                        "`{}` is an image already, through `[workspace.metadata.oci]` in {}",
                        package.name,
                        metadata.workspace_root.join("Cargo.toml")
                    ),
                );
                return finish(options, &metadata, shell, true);
            }
            Table {
                manifest: package.manifest_path.clone().into_std_path_buf(),
                header: "package.metadata.oci",
                bins,
            }
        }
        None => Table {
            manifest: metadata
                .workspace_root
                .join("Cargo.toml")
                .into_std_path_buf(),
            header: "workspace.metadata.oci",
            bins: Vec::new(),
        },
    };
    let image = table.add(&options.base, rustflags, shell)?;
    finish(options, &metadata, shell, image)
}

/// What follows the image's table: the xtask, the pipeline, and the next step.
fn finish(options: &InitOptions, metadata: &Metadata, shell: &Shell, image: bool) -> Result<()> {
    if options.xtask {
        add_xtask(metadata.workspace_root.as_std_path(), shell)?;
    }
    let says_next = shell.verbosity() != crate::shell::Verbosity::Quiet && image;
    // The workspace read once more, only when something needs it: the table just written may
    // have made every member an image.
    let images = match options.ci.is_some() || says_next {
        true => image_packages(metadata)?,
        false => Vec::new(),
    };
    if let Some(ci) = options.ci {
        add_pipeline(ci, metadata, &images, shell)?;
    }
    if says_next {
        let build = match options.xtask {
            true => "`cargo oci build` (or `cargo xtask image`)",
            false => "`cargo oci build`",
        };
        let run = match images.as_slice() {
            [_] | [] => "`cargo oci run`".to_owned(),
            [first, ..] => format!("`cargo oci run -p {first}`"),
        };
        shell.status("Next", format_args!("{build}, then {run}"));
    }
    Ok(())
}

/// The package `-p` names, else the one whose `Cargo.toml` the command starts from; `None` at
/// a virtual workspace's root, where the workspace's table makes every binary an image.
fn chosen_package<'a>(
    metadata: &'a Metadata,
    options: &InitOptions,
) -> Result<Option<&'a Package>> {
    let members = metadata.workspace_packages();
    if let Some(name) = &options.package {
        return match members.iter().find(|p| p.name.as_str() == name) {
            Some(package) => Ok(Some(package)),
            None => bail!("package `{name}` is not a member of the workspace"),
        };
    }
    let start = match &options.manifest_path {
        Some(path) => path.clone(),
        None => nearest_manifest(&std::env::current_dir()?)
            .context("no Cargo.toml here or in a parent directory")?,
    };
    // Compared as the files they are: `..` and links resolved.
    let same = |a: &Path, b: &Path| match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if let Some(package) = members
        .iter()
        .find(|p| same(p.manifest_path.as_std_path(), &start))
    {
        return Ok(Some(package));
    }
    let root = metadata.workspace_root.join("Cargo.toml");
    if same(root.as_std_path(), &start) {
        return Ok(None);
    }
    bail!(
        "`{}` is neither a member of the workspace at `{}` nor its root",
        start.display(),
        metadata.workspace_root
    )
}

fn nearest_manifest(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|manifest| manifest.is_file())
}

/// The image table to write: `[package.metadata.oci]` or `[workspace.metadata.oci]`.
struct Table<'a> {
    manifest: PathBuf,
    header: &'static str,
    bins: Vec<&'a str>,
}

impl Table<'_> {
    /// Appends the table unless the manifest has one; whether the crate now makes images.
    fn add(&self, base: &str, rustflags: bool, shell: &Shell) -> Result<bool> {
        let shown = self.manifest.display();
        let manifest = manifest(&self.manifest);
        let text =
            fs::read_to_string(&manifest).with_context(|| format!("failed to read {shown}"))?;
        let document: DocumentMut = text
            .parse()
            .with_context(|| format!("{shown} is not valid TOML"))?;
        let mut path = self.header.split('.');
        let existing = path.try_fold(document.as_item(), |item, key| item.get(key));
        if let Some(existing) = existing {
            if existing.as_bool() == Some(false) {
                shell.status("Skipping", format_args!("{shown}: it says `oci = false`"));
                return Ok(false);
            }
            shell.status(
                "Unchanged",
                format_args!("{shown} has a `[{}]` table already", self.header),
            );
            return Ok(true);
        }
        let mut table = format!(
            "\n# How `cargo oci build` packs this into an image; every key is optional.\n\
             [{}]\nbase = {}\n",
            self.header,
            toml_string(base)
        );
        if rustflags {
            table.push_str(
                "# The empty base has no C library: link the image's binaries statically.\n\
                 rustflags = [\"-C\", \"target-feature=+crt-static\"]\n",
            );
        }
        if !self.bins.is_empty() {
            let bins: Vec<String> = self.bins.iter().map(|bin| toml_string(bin)).collect();
            table.push_str(&format!("bins = [{}]\n", bins.join(", ")));
        }
        table.push_str(
            "# What the user may write, and a port below 1024 it may listen on:\n\
             # dirs = [{ path = \"/data\", owner = \"65532:65532\", mode = \"0750\" }]\n\
             # capabilities = [\"CAP_NET_BIND_SERVICE\"]\n",
        );
        table.push_str(&format!(
            "tags = [\"{{name}}:{{version}}\", \"{{name}}:latest\"]\n\n\
             [{}.config]\n\
             # Not root: an unprivileged user and group, as distroless images use.\n\
             user = \"65532:65532\"\n",
            self.header
        ));
        let separator = if text.ends_with('\n') || text.is_empty() {
            ""
        } else {
            "\n"
        };
        let updated = same_line_ends(&text, format!("{text}{separator}{table}"));
        // What cannot take a table (an inline `metadata = { … }`) is refused, not broken.
        if let Err(error) = updated.parse::<DocumentMut>() {
            bail!(
                "cannot add `[{}]` to {shown}: {}\nadd it by hand:\n{table}",
                self.header,
                error.to_string().trim()
            );
        }
        write_file(&manifest, &updated)?;
        shell.status("Adding", format_args!("`[{}]` to {shown}", self.header));
        Ok(true)
    }
}

/// `xtask/` from the template, a member of the workspace, and `cargo xtask` an alias.
fn add_xtask(root: &Path, shell: &Shell) -> Result<()> {
    let dir = root.join("xtask");
    if dir.exists() {
        shell.status("Unchanged", format_args!("{} exists", dir.display()));
    } else {
        let library = Path::new(env!("CARGO_MANIFEST_DIR"));
        let manifest = if library.join("templates/xtask/Cargo.toml").is_file() {
            let path = toml_string(&library.display().to_string());
            shell.warn(format_args!(
                "{}/Cargo.toml depends on cargo oci's library at {} on this machine: point it \
                 at a git URL (`cargo-oci = {{ git = \"…\" }}`) before others build it",
                dir.display(),
                library.display()
            ));
            XTASK_MANIFEST.replace(
                XTASK_DEPENDENCY,
                &format!("cargo-oci = {{ path = {path} }}"),
            )
        } else {
            shell.warn(format_args!(
                "the source cargo oci was built from is gone: point the `cargo-oci` \
                 dependency in {}/Cargo.toml at a clone of it",
                dir.display()
            ));
            XTASK_MANIFEST.to_owned()
        };
        write_file(&inside(root, &dir.join("Cargo.toml"))?, &manifest)?;
        write_file(&inside(root, &dir.join("src/main.rs"))?, XTASK_MAIN)?;
        shell.status("Creating", format_args!("{}", dir.display()));
    }
    add_member(root, shell)?;
    add_alias(root, shell)
}

/// The packages that make images, the workspace read again.
fn image_packages(metadata: &Metadata) -> Result<Vec<String>> {
    let metadata = crate::cargo::workspace::metadata(&WorkspaceOptions {
        manifest_path: Some(
            metadata
                .workspace_root
                .join("Cargo.toml")
                .into_std_path_buf(),
        ),
        ..WorkspaceOptions::default()
    })?;
    Ok(metadata
        .workspace_packages()
        .into_iter()
        .filter(|package| crate::cargo::workspace::is_image(&metadata, package))
        .map(|package| package.name.to_string())
        .collect())
}

/// The release pipeline, unless the repository has a file there already.
fn add_pipeline(ci: Ci, metadata: &Metadata, images: &[String], shell: &Shell) -> Result<()> {
    let root = metadata.workspace_root.as_std_path();
    let (path, text) = ci.pipeline();
    let path = root.join(path);
    if path.exists() {
        shell.status("Unchanged", format_args!("{} exists", path.display()));
        return Ok(());
    }
    write_file(&inside(root, &path)?, text)?;
    shell.status("Creating", path.display());
    shell.warn(format_args!(
        "set `CARGO_OCI_GIT` in {} to the repository cargo oci is installed from",
        path.display()
    ));
    // The pipeline joins one image's architectures under one tag.
    if images.len() > 1 {
        shell.warn(format_args!(
            "the pipeline releases one image, and this workspace makes several ({}): give \
             each its own build job (`-p NAME`) and `cargo oci index` step",
            images.join(", ")
        ));
    }
    Ok(())
}

/// `xtask` in the root manifest's `[workspace] members`; a lone package gets a `[workspace]`.
fn add_member(root: &Path, shell: &Shell) -> Result<()> {
    let manifest = root.join("Cargo.toml");
    let shown = manifest.display();
    let resolved = self::manifest(&manifest);
    let text = fs::read_to_string(&resolved).with_context(|| format!("failed to read {shown}"))?;
    let mut document: DocumentMut = text
        .parse()
        .with_context(|| format!("{shown} is not valid TOML"))?;
    let workspace = document
        .entry("workspace")
        .or_insert_with(toml_edit::table)
        .as_table_like_mut()
        .with_context(|| format!("`workspace` in {shown} is not a table"))?;
    let members = workspace
        .entry("members")
        .or_insert(toml_edit::value(toml_edit::Array::new()))
        .as_array_mut()
        .with_context(|| format!("`workspace.members` in {shown} is not a list"))?;
    if members.iter().any(|m| m.as_str() == Some("xtask")) {
        return Ok(());
    }
    members.push("xtask");
    write_file(&resolved, &same_line_ends(&text, document.to_string()))?;
    shell.status("Adding", format_args!("`xtask` to the members in {shown}"));
    Ok(())
}

/// `[alias] xtask = "run --package xtask --"` in the workspace's cargo configuration: the
/// `.cargo/config.toml` cargo reads, or the legacy `.cargo/config` where only that exists
/// (cargo ignores a `config.toml` written beside it, and warns of the two).
fn add_alias(root: &Path, shell: &Shell) -> Result<()> {
    let dir = root.join(".cargo");
    let exists = |path: &Path| fs::symlink_metadata(path).is_ok();
    let config = match !exists(&dir.join("config.toml")) && exists(&dir.join("config")) {
        true => dir.join("config"),
        false => dir.join("config.toml"),
    };
    let shown = config.display();
    let resolved = inside(root, &config)?;
    let text = match fs::read_to_string(&resolved) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error).with_context(|| format!("failed to read {shown}")),
    };
    let mut document: DocumentMut = text
        .parse()
        .with_context(|| format!("{shown} is not valid TOML"))?;
    let aliases = document
        .entry("alias")
        .or_insert_with(toml_edit::table)
        .as_table_like_mut()
        .with_context(|| format!("`alias` in {shown} is not a table"))?;
    if aliases.contains_key("xtask") {
        return Ok(());
    }
    aliases.insert("xtask", toml_edit::value("run --package xtask --"));
    write_file(&resolved, &same_line_ends(&text, document.to_string()))?;
    shell.status("Adding", format_args!("the `cargo xtask` alias to {shown}"));
    Ok(())
}

/// A manifest cargo read, links followed wherever they lead, as cargo follows them: a linked
/// manifest is updated, and stays a link.
fn manifest(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// Writes a whole file at `path` (its links resolved) through a temporary beside it, so an
/// interruption leaves the old one. The temporary has a random name and is created anew
/// (`O_EXCL`, which no link satisfies): no name a repository could plant a link at is ever
/// written through. The file keeps its permissions; a new one gets the umask's.
fn write_file(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().expect("a file path has a parent");
    let name = path.file_name().expect("a file path has a name");
    let write = || -> std::io::Result<()> {
        fs::create_dir_all(dir)?;
        let mut temporary = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".cargo-oci-init")
            .permissions(fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)?;
        temporary.write_all(text.as_bytes())?;
        if let Ok(old) = fs::metadata(path) {
            temporary.as_file().set_permissions(old.permissions())?;
        }
        temporary.persist(path).map_err(|error| error.error)?;
        Ok(())
    };
    write().with_context(|| format!("failed to write {}", path.display()))
}

/// `path`, a file init adds to the repository at `root`, with the links on the way resolved,
/// each of which must stay in the repository: a `.github/workflows` linking elsewhere is
/// refused, named.
fn inside(root: &Path, path: &Path) -> Result<PathBuf> {
    let relative = path.strip_prefix(root).expect("a path in the repository");
    let canonical_root =
        fs::canonicalize(root).with_context(|| format!("failed to read `{}`", root.display()))?;
    let mut resolved = canonical_root.clone();
    let mut shown = root.to_path_buf();
    for part in relative.components() {
        resolved.push(part);
        shown.push(part);
        let is_link = fs::symlink_metadata(&resolved).is_ok_and(|m| m.is_symlink());
        if !is_link {
            continue;
        }
        match fs::canonicalize(&resolved) {
            Ok(target) if target.starts_with(&canonical_root) => resolved = target,
            _ => bail!(
                "`{}` is a symbolic link out of `{}`: refusing to write through it",
                shown.display(),
                root.display()
            ),
        }
    }
    Ok(resolved)
}

/// `edited` with the line ends of `original`: a manifest written with CRLF keeps them.
fn same_line_ends(original: &str, edited: String) -> String {
    match original.contains("\r\n") {
        true => edited.replace("\r\n", "\n").replace('\n', "\r\n"),
        false => edited,
    }
}
