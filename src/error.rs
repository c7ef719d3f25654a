//! The library's error: what went wrong as a kind a caller can match on ([`ErrorKind`]), and the
//! whole story (every cause, with the path, key or registry it is about) as its message. A
//! metadata error names its key by a [`KeyPath`], which knows the `Cargo.toml` it is in.

use std::fmt;
use std::path::PathBuf;

/// Why a build failed, with every cause.
///
/// ```
/// # fn check(error: cargo_oci::Error) {
/// use cargo_oci::ErrorKind;
/// match error.kind() {
///     ErrorKind::Metadata => eprintln!("fix Cargo.toml: {error}"),
///     ErrorKind::Registry => eprintln!("the registry is unwell, try again: {error}"),
///     _ => eprintln!("{error}"),
/// }
/// # }
/// ```
pub struct Error {
    kind: ErrorKind,
    inner: anyhow::Error,
}

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `[package.metadata.oci]` (or the workspace's table) has a key or value that is wrong; the
    /// message names the `Cargo.toml` and the key's path.
    Metadata,
    /// The builder (`cargo build`, `cross`, …) failed; its own messages went to stderr.
    Build,
    /// The base image is missing, broken or hostile.
    Base,
    /// A registry could not be reached, refused the credentials, or sent what is refused.
    Registry,
    /// An output could not be written, or is not one this build may replace.
    Output,
    /// Anything else: a package that is not an image, a binary that fails its ELF check, …
    Other,
}

impl Error {
    /// What kind of failure it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The engine's own error, when the failure is one: match on it for the details.
    pub fn engine_error(&self) -> Option<&oci_pack::Error> {
        self.inner.downcast_ref()
    }
}

impl From<anyhow::Error> for Error {
    fn from(inner: anyhow::Error) -> Error {
        let kind = if inner.downcast_ref::<MetadataError>().is_some() {
            ErrorKind::Metadata
        } else if inner.downcast_ref::<BuildFailed>().is_some() {
            ErrorKind::Build
        } else {
            match inner.downcast_ref().map(oci_pack::Error::kind) {
                Some(oci_pack::ErrorKind::Registry) => ErrorKind::Registry,
                Some(oci_pack::ErrorKind::Image) => ErrorKind::Base,
                Some(oci_pack::ErrorKind::Output) => ErrorKind::Output,
                Some(oci_pack::ErrorKind::Input | oci_pack::ErrorKind::Io) | None => {
                    ErrorKind::Other
                }
            }
        };
        Error { kind, inner }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.inner)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:#}", self.kind, self.inner)
    }
}

impl std::error::Error for Error {}

/// A check that was made and failed: an image whose attestations do not verify (`verify
/// --key`), a rebuild that is not reproducible, a damaged layout (`verify --layout`). The
/// command line's exit code 1, apart from an error that kept the check from being made (101).
#[derive(Debug)]
pub(crate) struct NotVerified {
    pub message: String,
}

impl fmt::Display for NotVerified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NotVerified {}

/// A metadata key with a value that is wrong, in the `Cargo.toml` that holds it.
#[derive(Debug)]
pub(crate) struct MetadataError {
    pub manifest: PathBuf,
    pub key: KeyPath,
    pub message: String,
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid `{}`: {}\n  --> {}",
            self.key,
            self.message,
            self.manifest.display()
        )
    }
}

impl std::error::Error for MetadataError {}

/// The `Cargo.toml` a key is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Manifest {
    /// The workspace's, for `[workspace.metadata.oci]`.
    Workspace,
    /// The package's own.
    Package,
}

/// The table a key is under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Table {
    /// `[workspace.metadata.oci]`: defaults for every package.
    Workspace,
    /// `[package.metadata.oci]`.
    Package,
    /// `[package.metadata.oci.images.<name>]`: one image of the package.
    Image(String),
}

/// One step below a table: a key, or an element of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// Where a key is: its table and the steps below it, shown as users write it,
/// `package.metadata.oci.images.api.files[2].mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyPath {
    pub(crate) table: Table,
    pub(crate) below: Vec<Segment>,
}

impl KeyPath {
    /// The table itself.
    pub(crate) fn new(table: Table) -> KeyPath {
        KeyPath {
            table,
            below: Vec::new(),
        }
    }

    /// The key `key` of this table.
    pub(crate) fn key(mut self, key: impl Into<String>) -> KeyPath {
        self.below.push(Segment::Key(key.into()));
        self
    }

    /// The element `index` of this array.
    pub(crate) fn index(mut self, index: usize) -> KeyPath {
        self.below.push(Segment::Index(index));
        self
    }

    /// The `Cargo.toml` the key is written in.
    pub(crate) fn manifest(&self) -> Manifest {
        match self.table {
            Table::Workspace => Manifest::Workspace,
            Table::Package | Table::Image(_) => Manifest::Package,
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.table {
            Table::Workspace => f.write_str("workspace.metadata.oci")?,
            Table::Package => f.write_str("package.metadata.oci")?,
            Table::Image(name) => write!(f, "package.metadata.oci.images.{name}")?,
        }
        for segment in &self.below {
            match segment {
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// The builder exited with a failure; it said why on stderr.
#[derive(Debug)]
pub(crate) struct BuildFailed {
    pub status: std::process::ExitStatus,
}

impl fmt::Display for BuildFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`cargo build` failed ({})", self.status)
    }
}

impl std::error::Error for BuildFailed {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_path_reads_as_written_and_knows_its_manifest() {
        let mode = KeyPath::new(Table::Image("api".into()))
            .key("files")
            .index(2)
            .key("mode");
        assert_eq!(
            mode.to_string(),
            "package.metadata.oci.images.api.files[2].mode"
        );
        assert_eq!(mode.manifest(), Manifest::Package);
        let tags = KeyPath::new(Table::Workspace).key("tags");
        assert_eq!(tags.to_string(), "workspace.metadata.oci.tags");
        assert_eq!(tags.manifest(), Manifest::Workspace);
    }
}
