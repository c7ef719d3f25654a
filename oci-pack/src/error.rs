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
    #[error(transparent)]
    InvalidDigest(#[from] crate::digest::DigestError),
    #[error(
        "blob {digest} is corrupt: expected {expected_size} bytes with that digest, \
         found {actual_size} bytes hashing to {actual}"
    )]
    BlobMismatch {
        digest: Digest,
        expected_size: u64,
        actual: Digest,
        actual_size: u64,
    },
    #[error("failed to read blob {digest}")]
    BlobRead {
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error("blob {0} is missing from the store")]
    MissingBlob(Digest),
    #[error("invalid image path `{path}`: {reason}")]
    InvalidImagePath { path: String, reason: &'static str },
    #[error("`{path}` is added to the image twice")]
    DuplicatePath { path: String },
    #[error("`{path}` is needed as a directory in the image, but is also added as a file or link")]
    NotADirectory { path: String },
    #[error(
        "unsupported file type at `{}`: only files, directories and symbolic links can be packed",
        path.display()
    )]
    UnsupportedFileType { path: PathBuf },
    #[error("`{}` changed size while it was being packed", path.display())]
    FileChanged { path: PathBuf },
    #[error("the build cache is damaged: {reason}; remove its directory and build again")]
    CacheEntry { reason: String },
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
    #[error("invalid base image `{source_text}`: {reason}")]
    InvalidSource { source_text: String, reason: String },
    #[error("`{source_text}` is not a usable image: {reason}")]
    NotAnImage { source_text: String, reason: String },
    #[error("`{source_text}` has no image for {wanted} (it has: {available})")]
    NoMatchingPlatform {
        source_text: String,
        wanted: String,
        available: String,
    },
    #[error("blob {digest} has media type `{media_type}`, which cannot be read")]
    UnsupportedMediaType { digest: Digest, media_type: String },
    #[error("image {image} lists {layers} layers but its config has {diff_ids} diff_ids")]
    LayerCountMismatch {
        image: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error("malformed JSON in {what}")]
    MalformedJson {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("archive `{}` has a hostile entry `{entry}`: {reason}", archive.display())]
    HostileArchiveEntry {
        archive: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("archive `{}` has no file `{name}`", archive.display())]
    ArchiveMissingFile { archive: PathBuf, name: String },
    #[error("layer {layer} has a hostile entry `{entry}`: {reason}")]
    HostileLayerEntry {
        layer: Digest,
        entry: String,
        reason: String,
    },
    /// An entry a layer cannot hold (written twice, of a type no image has, a whiteout of
    /// nothing): broken rather than hostile.
    #[error("layer {layer} has an invalid entry `{entry}`: {reason}")]
    InvalidLayerEntry {
        layer: Digest,
        entry: String,
        reason: String,
    },
    #[error("failed to read layer {layer}")]
    LayerRead {
        layer: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "layer {layer} does not match its diff_id: the config says {expected}, \
         the layer's tar is {actual}"
    )]
    DiffIdMismatch {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("cannot remove `{path}`: the base image has no such path")]
    RemoveMissing { path: String },
    #[error(
        "layer {layer} is `{media_type}`, which `docker load` cannot read: a Docker archive \
         holds plain and gzip layers only; write `oci` or `oci-archive`, or use gzip"
    )]
    NotForDockerLoad { layer: Digest, media_type: String },
    #[error("a Docker archive holds one image per platform; this image is an index of several")]
    DockerArchiveNeedsOneImage,
    #[error("`{}` is not a valid ELF file: {reason}", path.display())]
    InvalidElf { path: PathBuf, reason: String },
    #[error("failed to {action} registry `{registry}`")]
    Registry {
        registry: String,
        action: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("`{image}` needs {what}, which is not in the cache, and the build is offline")]
    OfflineCacheMiss { image: String, what: String },
    #[error("failed to replace `{}`: {reason}; refusing to overwrite it", path.display())]
    RefuseToReplace { path: PathBuf, reason: String },
    #[error("{what} is larger than {limit} bytes, more than any such document should be")]
    TooLarge { what: String, limit: u64 },
    #[error("manifest {manifest} names no platform, which an image index needs")]
    NoPlatform { manifest: Digest },
    #[error(
        "manifests {first} and {second} are both {platform}; an index holds one image per platform"
    )]
    DuplicatePlatform {
        platform: String,
        first: Digest,
        second: Digest,
    },
    #[error("cannot stage `{path}`: {reason}")]
    ConflictsWithParent { path: String, reason: String },
}

impl Error {
    /// Names `path` in an I/O error that did not know where it was writing.
    pub(crate) fn for_destination(self, action: &'static str, path: &std::path::Path) -> Error {
        match self {
            Error::Io {
                path: unnamed,
                source,
                ..
            } if unnamed.as_os_str().is_empty() => Error::Io {
                action,
                path: path.to_owned(),
                source,
            },
            other => other,
        }
    }

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
