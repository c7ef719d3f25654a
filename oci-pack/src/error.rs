//! The engine's typed errors: each names the path, digest or value it is about.

use std::path::PathBuf;

use crate::digest::Digest;

/// The engine's result type, failing with an [`Error`] unless told otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the engine can fail with; each variant names the path, digest or value
/// it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What was being done, as words that follow "failed to": `"read"`, `"create directory"`.
        action: &'static str,
        /// The file or directory acted on; empty when the failing code did not know it.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A digest that is not `sha256:` followed by 64 lower-case hex digits.
    #[error(transparent)]
    InvalidDigest(#[from] crate::digest::DigestError),
    /// A blob's bytes do not have the digest or size they were named by.
    #[error(
        "blob {digest} is corrupt: expected {expected_size} bytes with that digest, \
         found {actual_size} bytes hashing to {actual}"
    )]
    BlobMismatch {
        /// The digest the blob should have.
        digest: Digest,
        /// The size the blob should have, in bytes.
        expected_size: u64,
        /// The digest of the bytes found.
        actual: Digest,
        /// The size of the bytes found, in bytes.
        actual_size: u64,
    },
    /// Reading a blob of a store failed.
    #[error("failed to read blob {digest}")]
    BlobRead {
        /// The blob being read.
        digest: Digest,
        /// The error met while reading the blob or decoding its bytes.
        #[source]
        source: std::io::Error,
    },
    /// A blob that should be in the store is not; the digest names it.
    #[error("blob {0} is missing from the store")]
    MissingBlob(Digest),
    /// A path in the image that is not absolute, holds `..` or names the root.
    #[error("invalid image path `{path}`: {reason}")]
    InvalidImagePath {
        /// The path as given, e.g. `"usr/bin/app"`.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The same path is staged twice in one layer.
    #[error("`{path}` is added to the image twice")]
    DuplicatePath {
        /// The path, e.g. `"/usr/local/bin/app"`.
        path: String,
    },
    /// A path staged as a file or link is also the parent directory of another.
    #[error("`{path}` is needed as a directory in the image, but is also added as a file or link")]
    NotADirectory {
        /// The path that must be a directory.
        path: String,
    },
    /// A file on the host that is not a regular file, directory or symbolic link,
    /// such as a socket or a device.
    #[error(
        "unsupported file type at `{}`: only files, directories and symbolic links can be packed",
        path.display()
    )]
    UnsupportedFileType {
        /// The file on the host.
        path: PathBuf,
    },
    /// A file on the host grew or shrank while its bytes were being written into a layer.
    #[error("`{}` changed size while it was being packed", path.display())]
    FileChanged {
        /// The file on the host.
        path: PathBuf,
    },
    /// A layer's files changed between its tar, written first for an engine, and the same tar
    /// made again to be compressed: the two would be different layers.
    #[error("the files of the layer `{created_by}` changed while it was being packed")]
    LayerChanged {
        /// What made the layer, e.g. `cargo oci: bins app`.
        created_by: String,
    },
    /// The build cache holds a record that cannot be read or written.
    #[error("the build cache is damaged: {reason}; remove its directory and build again")]
    CacheEntry {
        /// What is wrong with it.
        reason: String,
    },
    /// A document could not be encoded as JSON.
    #[error("failed to encode {what} as JSON")]
    Json {
        /// The document, e.g. `"index.json"`, `"the image config"`.
        what: &'static str,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// An image reference that does not parse, such as `"Debian:12"`.
    #[error("invalid image reference `{reference}`: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An image on `scratch` with no layer: nothing was staged.
    #[error("an image needs at least one layer; nothing was staged on the `scratch` base")]
    NoLayers,
    /// A base image that names no transport or image we know.
    #[error("invalid base image `{source_text}`: {reason}")]
    InvalidSource {
        /// The base as given, e.g. `"oci-archive:"`.
        source_text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A base image that exists but cannot be used, such as a layout without an
    /// `index.json` or an archive of several images with none picked.
    #[error("`{source_text}` is not a usable image: {reason}")]
    NotAnImage {
        /// The base, e.g. `"oci:./images/debian"`.
        source_text: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A base image with nothing for the platform being built.
    #[error("`{source_text}` has no image for {wanted} (it has: {available})")]
    NoMatchingPlatform {
        /// The base, e.g. `"docker://debian:bookworm"`.
        source_text: String,
        /// The platform being built, e.g. `linux/arm64`.
        wanted: String,
        /// The platforms the base has, joined by `, `, or `none`.
        available: String,
    },
    /// A blob of a media type that cannot be read where it was found, such as
    /// a layer compressed with an unknown algorithm.
    #[error("blob {digest} has media type `{media_type}`, which cannot be read")]
    UnsupportedMediaType {
        /// The blob.
        digest: Digest,
        /// Its media type, e.g. `"application/vnd.oci.image.layer.v1.tar+bzip2"`.
        media_type: String,
    },
    /// An image whose manifest lists a different number of layers than its config
    /// has diff IDs.
    #[error("image {image} lists {layers} layers but its config has {diff_ids} diff_ids")]
    LayerCountMismatch {
        /// The image's manifest (its config, in a Docker archive).
        image: Digest,
        /// How many layers the manifest lists.
        layers: usize,
        /// How many diff IDs the config lists.
        diff_ids: usize,
    },
    /// A document that is not the JSON expected of it.
    #[error("malformed JSON in {what}")]
    MalformedJson {
        /// The document, e.g. ``"`manifest.json`"`` or `"manifest sha256:…"`.
        what: String,
        /// The parser's error, with the line and column.
        #[source]
        source: serde_json::Error,
    },
    /// An image archive with an entry that could escape it or was tampered with.
    #[error("archive `{}` has a hostile entry `{entry}`: {reason}", archive.display())]
    HostileArchiveEntry {
        /// The archive file.
        archive: PathBuf,
        /// The entry's name in the archive.
        entry: String,
        /// What makes it hostile.
        reason: String,
    },
    /// An image archive without a file it needs or refers to.
    #[error("archive `{}` has no file `{name}`", archive.display())]
    ArchiveMissingFile {
        /// The archive file.
        archive: PathBuf,
        /// The missing file, e.g. `"index.json"`.
        name: String,
    },
    /// A layer with an entry that could write outside the image's root, such as
    /// `../etc/passwd` or a hard link through a symbolic link.
    #[error("layer {layer} has a hostile entry `{entry}`: {reason}")]
    HostileLayerEntry {
        /// The layer's blob.
        layer: Digest,
        /// The entry's name in the layer.
        entry: String,
        /// What makes it hostile.
        reason: String,
    },
    /// An entry a layer cannot hold (written twice, of a type no image has, a whiteout of
    /// nothing): broken rather than hostile.
    #[error("layer {layer} has an invalid entry `{entry}`: {reason}")]
    InvalidLayerEntry {
        /// The layer's blob.
        layer: Digest,
        /// The entry's name in the layer.
        entry: String,
        /// What makes it invalid.
        reason: String,
    },
    /// A layer's tar could not be decompressed or read.
    #[error("failed to read layer {layer}")]
    LayerRead {
        /// The layer's blob.
        layer: Digest,
        /// The decoder's or reader's error.
        #[source]
        source: std::io::Error,
    },
    /// A layer whose uncompressed tar does not hash to the diff ID its config gives.
    #[error(
        "layer {layer} does not match its diff_id: the config says {expected}, \
         the layer's tar is {actual}"
    )]
    DiffIdMismatch {
        /// The layer's blob.
        layer: Digest,
        /// The diff ID the config gives.
        expected: Digest,
        /// The digest of the layer's uncompressed tar.
        actual: Digest,
    },
    /// A path to remove that the base image does not have.
    #[error("cannot remove `{path}`: the base image has no such path")]
    RemoveMissing {
        /// The path, e.g. `"/etc/motd"`.
        path: String,
    },
    /// A layer a Docker archive cannot hold, since `docker load` reads only plain
    /// and gzip layers.
    #[error(
        "layer {layer} is `{media_type}`, which `docker load` cannot read: a Docker archive \
         holds plain and gzip layers only; write `oci` or `oci-archive`, or use gzip"
    )]
    NotForDockerLoad {
        /// The layer's blob.
        layer: Digest,
        /// Its media type, e.g. `"application/vnd.oci.image.layer.v1.tar+zstd"`.
        media_type: String,
    },
    /// An image index, of several platforms, written as a Docker archive,
    /// which holds one image.
    #[error("a Docker archive holds one image per platform; this image is an index of several")]
    DockerArchiveNeedsOneImage,
    /// A file that should be an ELF executable or library, and is not a readable one.
    #[error("`{}` is not a valid ELF file: {reason}", path.display())]
    InvalidElf {
        /// The file on the host.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A request to a registry failed.
    #[error("failed to {action} registry `{registry}`")]
    Registry {
        /// The registry's host, e.g. `"ghcr.io"`.
        registry: String,
        /// What was being done, as words between "failed to" and the registry:
        /// `"fetch a blob from"`, `"log in to"`.
        action: &'static str,
        /// The HTTP client's or the registry's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Every place a registry image may be pulled from (its mirrors, then its registry)
    /// failed; each is named with its own error.
    #[error(
        "failed to pull `{image}` from any of the {} places it may come from:{}",
        failures.len(),
        failures.iter().map(|(at, error)| format!("\n  {at}: {}", chain(error))).collect::<String>()
    )]
    NoEndpoint {
        /// The registry image, e.g. `"docker.io/library/debian:bookworm"`.
        image: String,
        /// Each repository asked, in order, with why it could not serve the image.
        failures: Vec<(String, Box<Error>)>,
    },
    /// An offline build that needs something of a registry image it has not cached.
    #[error("`{image}` needs {what}, which is not in the cache, and the build is offline")]
    OfflineCacheMiss {
        /// The registry image, e.g. `"debian:bookworm"`.
        image: String,
        /// What is missing: a tag, a manifest or a blob, e.g. ``"the tag `bookworm`"``.
        what: String,
    },
    /// An output that would overwrite something it should not, such as a
    /// directory that is not an image layout.
    #[error("failed to replace `{}`: {reason}; refusing to overwrite it", path.display())]
    RefuseToReplace {
        /// The destination.
        path: PathBuf,
        /// Why it is not replaced.
        reason: String,
    },
    /// A JSON document larger than such a document should ever be, refused before it is
    /// read whole.
    #[error("{what} is larger than {limit} bytes, more than any such document should be")]
    TooLarge {
        /// The document, e.g. `"blob sha256:…"`.
        what: String,
        /// The largest size allowed, in bytes.
        limit: u64,
    },
    /// A manifest without a platform, which an image index cannot list.
    #[error("manifest {manifest} names no platform, which an image index needs")]
    NoPlatform {
        /// The manifest's digest.
        manifest: Digest,
    },
    /// Two manifests of an image index for the same platform.
    #[error(
        "manifests {first} and {second} are both {platform}; an index holds one image per platform"
    )]
    DuplicatePlatform {
        /// The platform, e.g. `linux/amd64`.
        platform: String,
        /// The first manifest for it.
        first: Digest,
        /// The second manifest for it.
        second: Digest,
    },
    /// A staged path the base image's files make impossible, such as one under a
    /// symbolic link of the base, or one both staged and removed.
    #[error("cannot stage `{path}`: {reason}")]
    ConflictsWithParent {
        /// The staged path, e.g. `"/usr/local/bin/app"`.
        path: String,
        /// Why it cannot be staged.
        reason: String,
    },
}

/// What an [`Error`] is about, for a caller that reports or retries by kind rather than by
/// variant.
///
/// Not `#[non_exhaustive]`: a caller maps every kind, so a new one must be mapped to compile,
/// as a new [`Error`] variant must be classified here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A registry could not be reached, refused the request, or could not serve the image.
    Registry,
    /// An image read as input (a base image, a layout, an archive) is missing, unusable, broken
    /// or hostile.
    Image,
    /// An output would replace something it should not.
    Output,
    /// What the caller asked for cannot be done: an invalid reference, path or digest, files
    /// that do not fit in one image, an image that does not fit the format asked for.
    Input,
    /// Reading or writing the host's files or the build cache failed, or a document could not be
    /// encoded.
    Io,
}

impl Error {
    /// What the error is about.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind::*;
        // Every variant by name, no `_`: a new variant must be classified to compile.
        match self {
            Error::Registry { .. } | Error::NoEndpoint { .. } | Error::OfflineCacheMiss { .. } => {
                Registry
            }
            Error::InvalidSource { .. }
            | Error::NotAnImage { .. }
            | Error::NoMatchingPlatform { .. }
            | Error::BlobMismatch { .. }
            | Error::MissingBlob(_)
            | Error::UnsupportedMediaType { .. }
            | Error::LayerCountMismatch { .. }
            | Error::MalformedJson { .. }
            | Error::TooLarge { .. }
            | Error::HostileArchiveEntry { .. }
            | Error::ArchiveMissingFile { .. }
            | Error::HostileLayerEntry { .. }
            | Error::InvalidLayerEntry { .. }
            | Error::LayerRead { .. }
            | Error::DiffIdMismatch { .. } => Image,
            Error::RefuseToReplace { .. } => Output,
            Error::InvalidDigest(_)
            | Error::InvalidImagePath { .. }
            | Error::DuplicatePath { .. }
            | Error::NotADirectory { .. }
            | Error::UnsupportedFileType { .. }
            | Error::InvalidReference { .. }
            | Error::NoLayers
            | Error::RemoveMissing { .. }
            | Error::NotForDockerLoad { .. }
            | Error::DockerArchiveNeedsOneImage
            | Error::InvalidElf { .. }
            | Error::NoPlatform { .. }
            | Error::DuplicatePlatform { .. }
            | Error::ConflictsWithParent { .. } => Input,
            Error::Io { .. }
            | Error::BlobRead { .. }
            | Error::FileChanged { .. }
            | Error::LayerChanged { .. }
            | Error::CacheEntry { .. }
            | Error::Json { .. } => Io,
        }
    }

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

/// `error` and every error under it, as one line: `failed to connect to registry `x`: could not
/// connect`.
fn chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_says_what_an_error_is_about() {
        let registry = Error::Registry {
            registry: "127.0.0.1:1".into(),
            action: "connect to",
            source: "connection refused".into(),
        };
        let unreachable = Error::NoEndpoint {
            image: "127.0.0.1:1/app:1".into(),
            failures: vec![("127.0.0.1:1/app".into(), Box::new(registry))],
        };
        assert_eq!(unreachable.kind(), ErrorKind::Registry);
        let missing_base = Error::NotAnImage {
            source_text: "oci:./nowhere".into(),
            reason: "it has no `index.json`".into(),
        };
        assert_eq!(missing_base.kind(), ErrorKind::Image);
        let occupied = Error::RefuseToReplace {
            path: "out".into(),
            reason: "it is not an image layout".into(),
        };
        assert_eq!(occupied.kind(), ErrorKind::Output);
        assert_eq!(Error::NoLayers.kind(), ErrorKind::Input);
        let cache = Error::CacheEntry {
            reason: "a record is empty".into(),
        };
        assert_eq!(cache.kind(), ErrorKind::Io);
    }
}
