//! Registries (the OCI distribution API), through `oci-client`: pulling what a base image needs
//! into a content-addressed cache, and pushing a layout: every blob the registry lacks, then the
//! manifests and index by digest, then the tags last, so a failure never leaves a tag pointing at
//! something incomplete. Transient failures (connection errors, 5xx) are retried with back-off.

use std::collections::BTreeSet;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::descriptor::Descriptor;
use crate::error::{Error, Result};
use crate::media_type;
use crate::store::BlobStore;

/// Where to push: `host[:port]/repository`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub registry: String,
    pub name: String,
}

impl Repository {
    /// `127.0.0.1:5000/team/app`; the registry part is required (we do not guess Docker Hub).
    pub fn parse(text: &str) -> Result<Repository> {
        let invalid = |reason: &str| Error::InvalidReference {
            reference: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (registry, name) = text
            .split_once('/')
            .ok_or_else(|| invalid("expected `HOST[:PORT]/REPOSITORY`"))?;
        if !(registry.contains(['.', ':']) || registry == "localhost") {
            return Err(invalid(
                "the first part must be a registry host, as in `registry.example.com/app`",
            ));
        }
        // Reuse the tag grammar check on `name:tag`.
        format!("{registry}/{name}:x").parse::<crate::reference::Reference>()?;
        Ok(Repository {
            registry: registry.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Whether plain HTTP may be used: to a loopback registry (as Docker allows unasked), or to
    /// one the user named in `insecure` (`--insecure-registry`).
    pub fn allows_plain_http(&self, insecure: &[String]) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, _)| h);
        let loopback = host == "localhost" || host.starts_with("127.") || host == "[::1]";
        loopback || insecure.contains(&self.registry)
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

/// How to authenticate; secrets are never shown by `Debug` or in errors.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { username: String, password: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `REPO@sha256:…` of what every tag points at.
    pub reference: String,
    pub tags: Vec<String>,
    /// Blobs sent, blobs the registry already had, and blobs mounted from another repository.
    pub uploaded: usize,
    pub skipped: usize,
    pub mounted: usize,
}

/// How much of a blob goes up in one request of a streamed upload.
const CHUNK_BYTES: usize = 4 << 20;

/// A blob from the store as a stream of chunks, verified against its digest as it is read: a
/// blob that changed on disk fails the upload instead of reaching the registry.
struct Chunks {
    reader: Option<crate::store::VerifiedReader>,
}

impl Iterator for Chunks {
    type Item = std::result::Result<bytes::Bytes, oci_client::errors::OciDistributionError>;

    fn next(&mut self) -> Option<Self::Item> {
        use std::io::Read as _;
        let reader = self.reader.as_mut()?;
        let mut chunk = vec![0; CHUNK_BYTES];
        let mut filled = 0;
        while filled < CHUNK_BYTES {
            match reader.read(&mut chunk[filled..]) {
                Ok(0) => {
                    self.reader = None;
                    break;
                }
                Ok(n) => filled += n,
                Err(error) => {
                    let error = reader.error(error);
                    self.reader = None;
                    return Some(Err(std::io::Error::other(error.to_string()).into()));
                }
            }
        }
        chunk.truncate(filled);
        (filled > 0).then(|| Ok(chunk.into()))
    }
}

/// How many times a transient failure is tried again, and the first pause (doubled each time).
const RETRIES: u32 = 3;
const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// A connection to one repository of a registry.
pub struct Session {
    runtime: tokio::runtime::Runtime,
    client: Client,
    auth: RegistryAuth,
    repository: Repository,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("repository", &self.repository)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn connect(
        repository: &Repository,
        credentials: &Credentials,
        plain_http: bool,
    ) -> Result<Session> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::io(
                "start the registry client for",
                repository.to_string(),
            ))?;
        let protocol = if plain_http {
            ClientProtocol::HttpsExcept(vec![repository.registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            ..Default::default()
        });
        let auth = match credentials {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
        };
        Ok(Session {
            runtime,
            client,
            auth,
            repository: repository.clone(),
        })
    }

    fn at_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.repository.registry.clone(),
            self.repository.name.clone(),
            digest.to_owned(),
        )
    }

    fn at_tag(&self, tag: &str) -> Reference {
        Reference::with_tag(
            self.repository.registry.clone(),
            self.repository.name.clone(),
            tag.to_owned(),
        )
    }

    fn failed(
        &self,
        action: &'static str,
    ) -> impl Fn(oci_client::errors::OciDistributionError) -> Error + '_ {
        move |error| Error::Registry {
            registry: self.repository.registry.clone(),
            action,
            source: describe(error),
        }
    }

    /// Runs `operation` until it succeeds, fails for good, or has been retried [`RETRIES`] times.
    fn retrying<T, F, Fut>(&self, action: &'static str, mut operation: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<
            Output = std::result::Result<T, oci_client::errors::OciDistributionError>,
        >,
    {
        let mut pause = FIRST_PAUSE;
        for attempt in 0.. {
            match self.runtime.block_on(operation()) {
                Ok(value) => return Ok(value),
                Err(error) if attempt < RETRIES && is_transient(&error) => {
                    std::thread::sleep(pause);
                    pause *= 2;
                }
                Err(error) => return Err(self.failed(action)(error)),
            }
        }
        unreachable!("the loop returns")
    }

    /// The manifest or index a tag (or a `sha256:` digest) names now: stored in `store`, and
    /// described.
    pub fn resolve(&self, tag_or_digest: &str, store: &BlobStore) -> Result<Descriptor> {
        let tag = tag_or_digest;
        let reference = if tag.starts_with("sha256:") {
            self.at_digest(tag)
        } else {
            self.at_tag(tag)
        };
        let (bytes, digest) = self.retrying("fetch a manifest from", || {
            self.client
                .pull_manifest_raw(&reference, &self.auth, ACCEPTED_MANIFESTS)
        })?;
        let media_type = media_type_of(&bytes).ok_or_else(|| Error::NotAnImage {
            source_text: format!("{}:{tag}", self.repository),
            reason: "the registry answered with something that is not a manifest or an index"
                .into(),
        })?;
        let descriptor = store.put(&media_type, &bytes)?;
        if descriptor.digest.to_string() != digest && !digest.is_empty() {
            return Err(Error::Registry {
                registry: self.repository.registry.clone(),
                action: "fetch a manifest from",
                source: format!(
                    "it named the manifest {digest}, but its bytes hash to {}",
                    descriptor.digest
                )
                .into(),
            });
        }
        Ok(descriptor)
    }

    /// Fetches `descriptor` (a manifest, an index or a blob) into `store`, verified against its
    /// digest and size; nothing if `store` already has it.
    pub fn fetch(&self, descriptor: &Descriptor, store: &BlobStore) -> Result<()> {
        if store.contains(&descriptor.digest) {
            return Ok(());
        }
        let digest = descriptor.digest.to_string();
        let reference = self.at_digest(&digest);
        let bytes = if media_type::is_manifest(&descriptor.media_type)
            || media_type::is_index(&descriptor.media_type)
        {
            self.retrying("fetch a manifest from", || {
                self.client
                    .pull_manifest_raw(&reference, &self.auth, ACCEPTED_MANIFESTS)
            })?
            .0
            .to_vec()
        } else {
            self.retrying("fetch a blob from", || async {
                self.client
                    .auth(&reference, &self.auth, RegistryOperation::Pull)
                    .await?;
                let mut bytes = Vec::new();
                self.client
                    .pull_blob(&reference, digest.as_str(), &mut bytes)
                    .await?;
                Ok(bytes)
            })?
        };
        let stored = store.put(&descriptor.media_type, &bytes)?;
        if stored.digest != descriptor.digest || stored.size != descriptor.size {
            return Err(Error::BlobMismatch {
                digest: descriptor.digest,
                expected_size: descriptor.size,
                actual: stored.digest,
                actual_size: stored.size,
            });
        }
        Ok(())
    }

    /// Pushes everything `target` needs from `store`, then `target` under each of `tags`. A blob
    /// the registry lacks is mounted from `mount_from` (another repository of the same registry,
    /// such as the base's) when it is there, else streamed from disk.
    pub fn push(
        &self,
        store: &BlobStore,
        target: &Descriptor,
        tags: &[String],
        mount_from: Option<&Repository>,
    ) -> Result<Pushed> {
        let first = self.at_digest(&target.digest.to_string());
        self.retrying("log in to", || {
            self.client
                .auth(&first, &self.auth, RegistryOperation::Push)
        })?;
        let crate::graph::ImageGraph { blobs, manifests } = crate::graph::walk(store, target)?;
        let (mut uploaded, mut skipped, mut mounted) = (0, 0, 0);
        let mount_from =
            mount_from.filter(|r| r.registry == self.repository.registry && **r != self.repository);
        for blob in &blobs {
            let digest = blob.digest.to_string();
            let reference = self.at_digest(&digest);
            if self.retrying("check a blob at", || {
                self.client.blob_exists(&reference, &digest)
            })? {
                skipped += 1;
                continue;
            }
            if let Some(source) = mount_from {
                let from = Reference::with_digest(
                    source.registry.clone(),
                    source.name.clone(),
                    digest.clone(),
                );
                // A registry that lacks the blob there answers 202, which oci-client reports
                // as an error: then it is uploaded like any other.
                if self
                    .runtime
                    .block_on(self.client.mount_blob(&reference, &from, &digest))
                    .is_ok()
                {
                    mounted += 1;
                    continue;
                }
            }
            self.retrying("upload a blob to", || {
                let chunks = store.reader(blob).map(|reader| Chunks {
                    reader: Some(reader),
                });
                let (reference, digest) = (&reference, &digest);
                async move {
                    let chunks = chunks.map_err(|e| std::io::Error::other(e.to_string()))?;
                    self.client
                        .push_blob_stream(
                            reference,
                            futures_util::stream::iter(chunks),
                            digest,
                            Some(blob.size),
                        )
                        .await
                }
            })?;
            uploaded += 1;
        }
        for manifest in &manifests {
            self.put_manifest(
                &self.at_digest(&manifest.digest.to_string()),
                store,
                manifest,
            )?;
        }
        // Tags last: each only once everything it points at is there.
        Ok(Pushed {
            reference: format!("{}@{}", self.repository, target.digest),
            tags: self.tag(store, target, tags)?,
            uploaded,
            skipped,
            mounted,
        })
    }

    /// Pushes the index `index` from `store` by digest and under each of `tags`; the manifests
    /// it lists must already be in this repository, so no layer moves.
    pub fn push_index(
        &self,
        store: &BlobStore,
        index: &Descriptor,
        tags: &[String],
    ) -> Result<Pushed> {
        let first = self.at_digest(&index.digest.to_string());
        self.retrying("log in to", || {
            self.client
                .auth(&first, &self.auth, RegistryOperation::Push)
        })?;
        self.put_manifest(&first, store, index)?;
        Ok(Pushed {
            reference: format!("{}@{}", self.repository, index.digest),
            tags: self.tag(store, index, tags)?,
            uploaded: 0,
            skipped: 0,
            mounted: 0,
        })
    }

    /// Points each of `tags` (each once) at `target`, which must be pushed already; returns
    /// them as `REPOSITORY:TAG`.
    fn tag(&self, store: &BlobStore, target: &Descriptor, tags: &[String]) -> Result<Vec<String>> {
        let mut pushed = Vec::new();
        for tag in tags.iter().collect::<BTreeSet<_>>() {
            self.put_manifest(&self.at_tag(tag), store, target)?;
            pushed.push(format!("{}:{tag}", self.repository));
        }
        Ok(pushed)
    }

    fn put_manifest(
        &self,
        reference: &Reference,
        store: &BlobStore,
        manifest: &Descriptor,
    ) -> Result<()> {
        let bytes = store.read(manifest)?;
        let content_type: http::HeaderValue =
            manifest
                .media_type
                .parse()
                .map_err(|_| Error::UnsupportedMediaType {
                    digest: manifest.digest,
                    media_type: manifest.media_type.clone(),
                })?;
        self.retrying("push a manifest to", || {
            self.client
                .push_manifest_raw(reference, bytes.clone(), content_type.clone())
        })?;
        Ok(())
    }
}

/// What we ask a registry for when fetching by tag or digest.
const ACCEPTED_MANIFESTS: &[&str] = &[
    media_type::OCI_MANIFEST,
    media_type::OCI_INDEX,
    media_type::DOCKER_MANIFEST,
    media_type::DOCKER_MANIFEST_LIST,
];

/// A manifest's media type, from its own `mediaType` or, failing that, its shape.
fn media_type_of(bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    match value.get("mediaType").and_then(|m| m.as_str()) {
        Some(media) => Some(media.to_owned()),
        None if value.get("manifests").is_some() => Some(media_type::OCI_INDEX.to_owned()),
        None if value.get("layers").is_some() => Some(media_type::OCI_MANIFEST.to_owned()),
        None => None,
    }
}

/// Connection failures (refused, reset, timed out) and 5xx answers are worth another try;
/// anything else (4xx, bad data) is not.
fn is_transient(error: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::OciDistributionError as E;
    match error {
        E::RequestError(request) => {
            // A refused or reset connection (while sending, too) and a timeout: worth another try.
            request.is_connect()
                || request.is_request()
                || request.is_body()
                || request.is_timeout()
                || request.status().is_some_and(|s| s.is_server_error())
        }
        E::ServerError { code, .. } => *code >= 500,
        _ => false,
    }
}

/// The registry's answer as an error cause: its own, except for a refused login, which is
/// told without anything that could hold a secret.
fn describe(
    error: oci_client::errors::OciDistributionError,
) -> Box<dyn std::error::Error + Send + Sync> {
    use oci_client::errors::OciDistributionError as E;
    match &error {
        E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => {
            Box::new(AuthenticationFailed { status: None })
        }
        E::RequestError(request)
            if request
                .status()
                .is_some_and(|s| s.as_u16() == 401 || s.as_u16() == 403) =>
        {
            Box::new(AuthenticationFailed {
                status: request.status(),
            })
        }
        _ => Box::new(error),
    }
}

/// A registry refused our credentials; nothing of them is kept.
#[derive(Debug)]
struct AuthenticationFailed {
    status: Option<http::StatusCode>,
}

impl std::fmt::Display for AuthenticationFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("authentication failed: check the credentials for this registry")?;
        match self.status {
            Some(status) => write!(f, " ({status})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for AuthenticationFailed {}

/// An image in a registry, as a `base` names it: `docker://HOST/REPO:TAG`, `…@sha256:…`, or the
/// same without `docker://`, with Docker Hub's names normalised as Docker does
/// (`debian:bookworm` → `docker.io/library/debian:bookworm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteImage {
    pub repository: Repository,
    pub tag: Option<String>,
    pub digest: Option<crate::digest::Digest>,
}

impl RemoteImage {
    pub fn parse(text: &str) -> Result<RemoteImage> {
        let bare = text.strip_prefix("docker://").unwrap_or(text);
        let (name_tag, digest) = match bare.split_once('@') {
            Some((name_tag, digest)) => (name_tag, Some(digest.parse()?)),
            None => (bare, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(name_tag[last_slash + i + 1..].to_owned()),
            ),
            None => (name_tag, None),
        };
        let first = name.split('/').next().unwrap_or_default();
        let full = if name.contains('/') && (first.contains(['.', ':']) || first == "localhost") {
            name.to_owned()
        } else if name.contains('/') {
            format!("docker.io/{name}")
        } else {
            format!("docker.io/library/{name}")
        };
        let tag = tag.or_else(|| digest.is_none().then(|| "latest".to_owned()));
        // The whole reference must still follow Docker's grammar.
        format!("{full}:{}", tag.as_deref().unwrap_or("x"))
            .parse::<crate::reference::Reference>()?;
        let repository = Repository::parse(&full)?;
        Ok(RemoteImage {
            repository,
            tag,
            digest,
        })
    }
}

impl std::fmt::Display for RemoteImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// What pulling a base needs: how to reach its registry, and where fetched blobs are kept.
#[derive(Debug, Clone)]
pub struct RegistryAccess {
    pub credentials: Credentials,
    pub plain_http: bool,
    /// Every fetched manifest and blob, by digest; with the tags last resolved under `refs/`.
    pub cache: BlobStore,
    /// Use only what the cache holds.
    pub offline: bool,
}

impl RegistryAccess {
    fn ref_file(&self, image: &RemoteImage, tag: &str) -> std::path::PathBuf {
        let key = crate::digest::Digest::of(format!("{}:{tag}", image.repository).as_bytes());
        self.cache.root().join("refs").join(key.hex())
    }

    /// What `image` names now: by digest as given, else its tag resolved (once; recorded in the
    /// cache so an `--offline` build finds it). The manifest or index is in the cache after.
    pub fn resolve(&self, image: &RemoteImage) -> Result<Descriptor> {
        let session = || Session::connect(&image.repository, &self.credentials, self.plain_http);
        let offline_miss = |what: String| Error::OfflineCacheMiss {
            image: image.to_string(),
            what,
        };
        if let Some(digest) = &image.digest {
            if let Some(descriptor) = self.cached_manifest(digest)? {
                return Ok(descriptor);
            }
            if self.offline {
                return Err(offline_miss(format!("manifest {digest}")));
            }
            return session()?.resolve(&digest.to_string(), &self.cache);
        }
        let tag = image.tag.as_deref().unwrap_or("latest");
        let ref_file = self.ref_file(image, tag);
        if self.offline {
            let recorded = std::fs::read_to_string(&ref_file)
                .map_err(|_| offline_miss(format!("the tag `{tag}`")))?;
            let digest: crate::digest::Digest = recorded.trim().parse()?;
            return self
                .cached_manifest(&digest)?
                .ok_or_else(|| offline_miss(format!("manifest {digest}")));
        }
        let descriptor = session()?.resolve(tag, &self.cache)?;
        let refs = ref_file.parent().expect("under refs/");
        std::fs::create_dir_all(refs).map_err(Error::io("create directory", refs))?;
        std::fs::write(&ref_file, descriptor.digest.to_string())
            .map_err(Error::io("write", &ref_file))?;
        Ok(descriptor)
    }

    /// A manifest or index already in the cache, described from its own bytes.
    fn cached_manifest(&self, digest: &crate::digest::Digest) -> Result<Option<Descriptor>> {
        let path = self.cache.blob_path(digest);
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(None);
        };
        let descriptor = Descriptor::new(
            &media_type_of(&bytes).unwrap_or_default(),
            *digest,
            bytes.len() as u64,
        );
        // Verified like any read: a cache entry that does not match is not trusted.
        self.cache.read(&descriptor)?;
        Ok(Some(descriptor))
    }

    /// Makes `descriptor` of `image`'s repository available in the cache.
    pub fn fetch(&self, image: &RemoteImage, descriptor: &Descriptor) -> Result<()> {
        if self.cache.contains(&descriptor.digest) {
            return Ok(());
        }
        if self.offline {
            return Err(Error::OfflineCacheMiss {
                image: image.to_string(),
                what: format!("blob {}", descriptor.digest),
            });
        }
        Session::connect(&image.repository, &self.credentials, self.plain_http)?
            .fetch(descriptor, &self.cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised_as_docker_does() {
        let digest = format!("sha256:{}", "b".repeat(64));
        for (text, expected) in [
            ("debian:bookworm", "docker.io/library/debian:bookworm"),
            ("debian", "docker.io/library/debian:latest"),
            ("docker://team/app", "docker.io/team/app:latest"),
            ("ghcr.io/org/app:1.2", "ghcr.io/org/app:1.2"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            (
                &format!("127.0.0.1:5000/app@{digest}"),
                &format!("127.0.0.1:5000/app@{digest}"),
            ),
            (
                &format!("quay.io/a/b:1@{digest}"),
                &format!("quay.io/a/b:1@{digest}"),
            ),
        ] {
            assert_eq!(
                RemoteImage::parse(text).unwrap().to_string(),
                expected,
                "{text}"
            );
        }
        for bad in ["Debian", "app:-x", "app@sha256:nope", "docker://"] {
            assert!(RemoteImage::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn plain_http_is_for_loopback_and_named_registries_only() {
        let at = |text: &str| Repository::parse(text).unwrap();
        assert!(at("127.0.0.1:5000/app").allows_plain_http(&[]));
        assert!(at("localhost:5000/app").allows_plain_http(&[]));
        assert!(!at("registry.example.com/app").allows_plain_http(&[]));
        assert!(
            at("registry.internal:5000/app").allows_plain_http(&["registry.internal:5000".into()])
        );
        assert!(!at("registry.internal:5000/app").allows_plain_http(&["registry.internal".into()]));
        assert!(
            Repository::parse("team/app").is_err(),
            "a registry host is needed"
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let credentials = Credentials::Basic {
            username: "ferris".into(),
            password: "hunter2".into(),
        };
        assert_eq!(format!("{credentials:?}"), "Basic(ferris, ***)");
    }
}
