//! What `cargo oci build` writes, and where: the OCI layout, the archives beside it
//! (`<output>.oci.tar`, `<output>.docker.tar`), an image streamed into `docker load` or
//! `podman load`; and the stdout line (or JSON object) reporting each.

use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use oci_pack::archive::{write_archive, ArchiveFormat, StagedArchive};
use oci_pack::layout::SealedLayout;
use oci_pack::registry::{Credentials, Pushed, Repository, Session};
use oci_pack::timestamp::Timestamp;

/// An output format, as `formats = [...]` and `--format` name it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// The OCI image layout directory
    Oci,
    /// The OCI image layout as one tar file
    OciArchive,
    /// A tar file for `docker load` and `podman load`
    Docker,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Oci => "oci",
            Format::OciArchive => "oci-archive",
            Format::Docker => "docker",
        }
    }

    /// Where this format is written, given the layout's path: archives sit beside it.
    pub fn path(self, layout: &Path) -> PathBuf {
        let suffix = match self {
            Format::Oci => return layout.to_owned(),
            Format::OciArchive => ".oci.tar",
            Format::Docker => ".docker.tar",
        };
        let mut path = layout.as_os_str().to_owned();
        path.push(suffix);
        path.into()
    }
}

/// A local image store to stream the Docker archive into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Loader {
    Docker,
    Podman,
}

impl Loader {
    pub fn program(self) -> &'static str {
        match self {
            Loader::Docker => "docker",
            Loader::Podman => "podman",
        }
    }
}

/// One thing the build produced.
#[derive(Debug)]
pub struct Output {
    pub format: Format,
    pub path: PathBuf,
}

/// A registry repository to push to, with its credentials.
#[derive(Debug)]
pub struct PushTarget {
    repository: Repository,
    credentials: Credentials,
    plain_http: bool,
    /// A repository of the same registry that may hold our blobs already (the base's).
    pub mount_from: Option<Repository>,
}

impl PushTarget {
    /// A connection to the repository, with its credentials.
    pub fn session(&self) -> Result<Session> {
        Ok(Session::connect(
            &self.repository,
            &self.credentials,
            self.plain_http,
        )?)
    }
}

/// Resolves `--push REPOSITORY`: its credentials, and whether plain HTTP is allowed.
pub fn push_target(repository: &str, insecure: &[String]) -> Result<PushTarget> {
    let repository = Repository::parse(repository)?;
    let credentials = crate::credentials::for_registry(&repository.registry)?;
    let plain_http = repository.allows_plain_http(insecure);
    Ok(PushTarget {
        repository,
        credentials,
        plain_http,
        mount_from: None,
    })
}

/// Writes every format of `formats` from the sealed layout, streams it into `load` and pushes
/// it if asked, and only then moves everything into place: a failure anywhere leaves no new
/// output.
pub fn write(
    sealed: SealedLayout,
    formats: &[Format],
    load: Option<Loader>,
    push: Option<&PushTarget>,
    mtime: Timestamp,
) -> Result<(Vec<Output>, Option<String>, Option<Pushed>)> {
    let layout = sealed.destination().to_owned();
    let mut archives = Vec::new();
    for &format in formats {
        let kind = match format {
            Format::Oci => continue,
            Format::OciArchive => ArchiveFormat::Oci,
            Format::Docker => ArchiveFormat::Docker,
        };
        let path = format.path(&layout);
        let staged = StagedArchive::write(&sealed, kind, &path, mtime).with_context(|| {
            format!(
                "failed to write the {} archive `{}`",
                format.name(),
                path.display()
            )
        })?;
        archives.push((format, staged));
    }
    let loaded = load
        .map(|loader| stream_into(loader, &sealed, mtime))
        .transpose()?;
    let pushed = push
        .map(|target| {
            let tags: Vec<String> = sealed.tags.iter().map(|t| t.tag.clone()).collect();
            anyhow::Ok(target.session()?.push(
                sealed.store(),
                &sealed.target,
                &tags,
                target.mount_from.as_ref(),
            )?)
        })
        .transpose()?;

    let mut outputs = Vec::new();
    if formats.contains(&Format::Oci) {
        outputs.push(Output {
            format: Format::Oci,
            path: sealed.persist()?,
        });
    }
    for (format, staged) in archives {
        outputs.push(Output {
            format,
            path: staged.persist()?,
        });
    }
    Ok((outputs, loaded, pushed))
}

/// Pipes the Docker archive into `docker load` / `podman load`; no tar touches the disk.
/// Returns what the loader printed.
fn stream_into(loader: Loader, sealed: &SealedLayout, mtime: Timestamp) -> Result<String> {
    let program = loader.program();
    let mut child = Command::new(program)
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("failed to run `{program} load`; is {program} installed?"))?;
    let stdin = BufWriter::new(child.stdin.take().expect("stdin is piped"));
    // A loader that dies early closes the pipe; its own message, below, says why.
    let streamed = write_archive(sealed, ArchiveFormat::Docker, stdin, mtime).and_then(|mut w| {
        w.flush().map_err(|source| oci_pack::Error::Io {
            action: "write to",
            path: program.into(),
            source,
        })
    });
    let output = child
        .wait_with_output()
        .with_context(|| format!("failed to wait for `{program} load`"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(
            "`{program} load` failed ({}): {}",
            output.status,
            stderr.trim()
        );
    }
    streamed.with_context(|| format!("failed to stream the image into `{program} load`"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The status line of a push: where it went, and what had to travel.
pub fn push_status(pushed: &Pushed) -> String {
    format!(
        "{} ({} blobs sent, {} already there, {} mounted)",
        pushed.reference, pushed.uploaded, pushed.skipped, pushed.mounted
    )
}

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MessageFormat {
    /// One line per output: format, digest, path
    Human,
    /// One JSON object per output
    Json,
}

/// What every output line says about the image.
#[derive(Debug)]
pub struct ImageSummary {
    /// What `index.json` points at.
    pub digest: String,
    /// The config digest, Docker's and podman's image ID; `None` for an index of several.
    pub config: Option<String>,
    pub tags: Vec<String>,
    pub platforms: Vec<String>,
}

/// One line (or JSON object) per output, and one for an image loaded into a local store.
pub fn report(
    format: MessageFormat,
    image: &ImageSummary,
    outputs: &[Output],
    loaded: Option<Loader>,
    pushed: Option<&Pushed>,
) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    // Each line names where the image went: a path, a loader, or a registry reference.
    let mut line = |kind: &str, place: (&str, String)| -> std::io::Result<()> {
        match format {
            MessageFormat::Human => writeln!(stdout, "{kind} {} {}", image.digest, place.1),
            MessageFormat::Json => {
                let mut message = serde_json::json!({
                    "format": kind,
                    "digest": image.digest,
                    "config": image.config,
                    "tags": image.tags,
                    "platforms": image.platforms,
                });
                message[place.0] = serde_json::json!(place.1);
                writeln!(stdout, "{message}")
            }
        }
    };
    for output in outputs {
        line(
            output.format.name(),
            ("path", output.path.display().to_string()),
        )?;
    }
    if let Some(loader) = loaded {
        line("load", ("loader", loader.program().to_owned()))?;
    }
    if let Some(pushed) = pushed {
        line("push", ("reference", pushed.reference.clone()))?;
    }
    Ok(())
}
