//! Pushing a sealed layout to a registry (the OCI distribution API), through `oci-client`:
//! every blob the registry lacks, then the manifests and index by digest, then the tags last,
//! so a failure never leaves a tag pointing at something incomplete.

use std::collections::BTreeSet;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::descriptor::Descriptor;
use crate::error::{Error, Result};
use crate::index::ImageIndex;
use crate::layout::SealedLayout;
use crate::manifest::ImageManifest;
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

    /// Whether Docker would talk plain HTTP to it unasked: a loopback registry.
    pub fn is_loopback(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, _)| h);
        host == "localhost" || host.starts_with("127.") || host == "[::1]"
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
    /// Blobs sent, and blobs the registry already had.
    pub uploaded: usize,
    pub skipped: usize,
}

/// Pushes `layout` to `repository` under the tag part of each of its tags. `plain_http` allows
/// unencrypted HTTP to this registry (loopback registries, or `--insecure-registry`).
pub fn push(
    layout: &SealedLayout,
    repository: &Repository,
    credentials: &Credentials,
    plain_http: bool,
) -> Result<Pushed> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io(
            "start the registry client",
            repository.to_string(),
        ))?;
    runtime.block_on(push_async(layout, repository, credentials, plain_http))
}

async fn push_async(
    layout: &SealedLayout,
    repository: &Repository,
    credentials: &Credentials,
    plain_http: bool,
) -> Result<Pushed> {
    let protocol = if plain_http {
        ClientProtocol::HttpsExcept(vec![repository.registry.clone()])
    } else {
        ClientProtocol::Https
    };
    let client = Client::new(ClientConfig {
        protocol,
        ..Default::default()
    });
    let failed = |action: &str, error: oci_client::errors::OciDistributionError| Error::Registry {
        registry: repository.registry.clone(),
        action: action.to_owned(),
        message: describe(&error),
    };
    let at = |digest: &str| {
        Reference::with_digest(
            repository.registry.clone(),
            repository.name.clone(),
            digest.to_owned(),
        )
    };
    let auth = match credentials {
        Credentials::Anonymous => RegistryAuth::Anonymous,
        Credentials::Basic { username, password } => {
            RegistryAuth::Basic(username.clone(), password.clone())
        }
    };
    let target = &layout.target;
    client
        .auth(
            &at(&target.digest.to_string()),
            &auth,
            RegistryOperation::Push,
        )
        .await
        .map_err(|e| failed("log in to", e))?;

    let store = layout.store();
    let (blobs, manifests) = plan(store, target)?;
    let (mut uploaded, mut skipped) = (0, 0);
    for blob in &blobs {
        let digest = blob.digest.to_string();
        if client
            .blob_exists(&at(&digest), &digest)
            .await
            .map_err(|e| failed("check a blob at", e))?
        {
            skipped += 1;
            continue;
        }
        let bytes = store.read(blob)?;
        client
            .push_blob(&at(&digest), bytes, &digest)
            .await
            .map_err(|e| failed("upload a blob to", e))?;
        uploaded += 1;
    }
    for manifest in &manifests {
        let bytes = store.read(manifest)?;
        let content_type = manifest
            .media_type
            .parse()
            .expect("media types are valid header values");
        client
            .push_manifest_raw(&at(&manifest.digest.to_string()), bytes, content_type)
            .await
            .map_err(|e| failed("push a manifest to", e))?;
    }
    // Tags last: each only once everything it points at is there.
    let target_bytes = store.read(target)?;
    let mut tags = Vec::new();
    for tag in layout
        .tags
        .iter()
        .map(|t| t.tag.clone())
        .collect::<BTreeSet<_>>()
    {
        let reference = Reference::with_tag(
            repository.registry.clone(),
            repository.name.clone(),
            tag.clone(),
        );
        let content_type = target
            .media_type
            .parse()
            .expect("media types are valid header values");
        client
            .push_manifest_raw(&reference, target_bytes.clone(), content_type)
            .await
            .map_err(|e| failed("tag an image at", e))?;
        tags.push(format!("{repository}:{tag}"));
    }
    Ok(Pushed {
        reference: format!("{repository}@{}", target.digest),
        tags,
        uploaded,
        skipped,
    })
}

/// The blobs (configs and layers) and then the manifests (children before their index) that
/// `target` needs, each once.
fn plan(store: &BlobStore, target: &Descriptor) -> Result<(Vec<Descriptor>, Vec<Descriptor>)> {
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut manifests: Vec<Descriptor> = Vec::new();
    let json = |descriptor: &Descriptor| -> Result<Vec<u8>> { store.read(descriptor) };
    let malformed = |descriptor: &Descriptor, source| Error::MalformedJson {
        what: format!("blob {}", descriptor.digest),
        source,
    };
    let mut visit = vec![(target.clone(), false)];
    while let Some((descriptor, children_done)) = visit.pop() {
        if manifests.iter().any(|m| m.digest == descriptor.digest) {
            continue;
        }
        if media_type::is_index(&descriptor.media_type) && !children_done {
            let index: ImageIndex = serde_json::from_slice(&json(&descriptor)?)
                .map_err(|e| malformed(&descriptor, e))?;
            visit.push((descriptor, true));
            visit.extend(index.manifests.into_iter().rev().map(|m| (m, false)));
        } else if media_type::is_manifest(&descriptor.media_type) {
            let manifest: ImageManifest = serde_json::from_slice(&json(&descriptor)?)
                .map_err(|e| malformed(&descriptor, e))?;
            for blob in std::iter::once(manifest.config).chain(manifest.layers) {
                if !blobs.iter().any(|b| b.digest == blob.digest) {
                    blobs.push(blob);
                }
            }
            manifests.push(descriptor);
        } else {
            manifests.push(descriptor);
        }
    }
    Ok((blobs, manifests))
}

/// The registry's own words, without anything that could hold a secret.
fn describe(error: &oci_client::errors::OciDistributionError) -> String {
    use oci_client::errors::OciDistributionError as E;
    let denied = "authentication failed: check the credentials for this registry";
    match error {
        E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => denied.to_owned(),
        E::RequestError(request)
            if request
                .status()
                .is_some_and(|s| s.as_u16() == 401 || s.as_u16() == 403) =>
        {
            format!("{denied} ({})", request.status().expect("checked"))
        }
        other => other.to_string(),
    }
}
