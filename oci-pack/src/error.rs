//! The engine's typed errors: each names the path, digest or value it is about.

use std::path::PathBuf;

use crate::digest::Digest;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("failed to {action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid digest `{0}`: expected `sha256:` and 64 lower-case hex digits")]
    InvalidDigest(String),
    #[error("blob {digest} is corrupt: expected {expected_size} bytes with that digest, found {actual_size} bytes hashing to {actual}")]
    BlobMismatch {
        digest: Digest,
        expected_size: u64,
        actual: Digest,
        actual_size: u64,
    },
    #[error("blob {0} is missing from the store")]
    MissingBlob(Digest),
    #[error("invalid image path `{path}`: {reason}")]
    InvalidImagePath { path: String, reason: &'static str },
    #[error("`{path}` is added to the image twice")]
    DuplicatePath { path: String },
    #[error("`{path}` is needed as a directory in the image, but is also added as a file or link")]
    NotADirectory { path: String },
    #[error("unsupported file type at `{}`: only files, directories and symbolic links can be packed", path.display())]
    UnsupportedFileType { path: PathBuf },
    #[error("`{}` changed size while it was being packed", path.display())]
    FileChanged { path: PathBuf },
    #[error("failed to encode {what} as JSON")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid image reference `{reference}`: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("an image needs at least one layer; nothing was staged on the `scratch` base")]
    NoLayers,
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}
