//! How this run reaches registries: the credentials for each (see `credentials.rs`), the
//! limits of patience cargo's own settings give (`CARGO_HTTP_TIMEOUT`,
//! `CARGO_HTTP_LOW_SPEED_LIMIT`, `CARGO_NET_RETRY`), which registries may be reached over plain
//! HTTP, and one access per registry shared by every base of the build.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use oci_pack::cache::BuildCache;
use oci_pack::reference::Repository;
use oci_pack::registry::{Access, Credentials, Limits, RegistryAccess, Session};

use crate::credentials::CredentialSources;

/// Cargo's settings for its own downloads, read from the environment as cargo reads them.
pub fn limits_from_env() -> Result<Limits> {
    let mut limits = Limits::default();
    let number = |name: &str| -> Result<Option<u64>> {
        match std::env::var(name) {
            Ok(text) => text
                .trim()
                .parse()
                .map(Some)
                .with_context(|| format!("`{name}={text}` is not a whole number")),
            Err(_) => Ok(None),
        }
    };
    if let Some(seconds) = number("CARGO_HTTP_TIMEOUT")? {
        limits.stall = Duration::from_secs(seconds.max(1));
    }
    if let Some(bytes) = number("CARGO_HTTP_LOW_SPEED_LIMIT")? {
        limits.low_speed = bytes;
    }
    if let Some(retries) = number("CARGO_NET_RETRY")? {
        limits.retries = u32::try_from(retries).unwrap_or(u32::MAX);
    }
    Ok(limits)
}

/// Everything a run needs to reach registries.
#[derive(Debug)]
pub struct Registries {
    /// Registries that may be reached over plain HTTP (loopback ones always may).
    pub insecure: Vec<String>,
    /// Use only the cache (`--offline`, `--frozen`).
    pub offline: bool,
    limits: Limits,
    credentials: CredentialSources,
    /// One access per base registry, its sessions shared by every platform's base.
    accesses: std::sync::Mutex<BTreeMap<String, Arc<RegistryAccess>>>,
}

impl Registries {
    /// `pushes`: the repositories this run pushes to, whose registry the environment's
    /// credentials are for unless `CARGO_OCI_REGISTRY` names another.
    pub fn from_env(insecure: &[String], offline: bool, pushes: &[Repository]) -> Result<Self> {
        let registries: Vec<&str> = pushes.iter().map(|r| r.registry.as_str()).collect();
        Ok(Registries {
            insecure: insecure.to_vec(),
            offline,
            limits: limits_from_env()?,
            credentials: CredentialSources::from_env(&registries)?,
            accesses: Default::default(),
        })
    }

    pub fn credentials(&self, registry: &str) -> Result<Credentials> {
        self.credentials.for_registry(registry)
    }

    /// Where bases from `repository`'s registry are fetched from, into the build cache.
    pub fn base_access(
        &self,
        repository: &Repository,
        cache: &BuildCache,
    ) -> Result<Arc<RegistryAccess>> {
        let mut accesses = self.accesses.lock().expect("not poisoned");
        if let Some(access) = accesses.get(&repository.registry) {
            return Ok(access.clone());
        }
        let access = Arc::new(RegistryAccess::new(
            self.credentials(&repository.registry)?,
            repository.allows_plain_http(&self.insecure),
            cache,
            self.offline,
            self.limits,
        ));
        accesses.insert(repository.registry.clone(), access.clone());
        Ok(access)
    }

    /// The push destination `text`, its credentials found now, before anything is built.
    pub fn push_target(&self, text: &str) -> Result<PushTarget> {
        let repository = Repository::parse(text)?;
        Ok(PushTarget {
            credentials: self.credentials(&repository.registry)?,
            plain_http: repository.allows_plain_http(&self.insecure),
            limits: self.limits,
            repository,
            mount_from: None,
        })
    }
}

/// A registry repository to push to, with its credentials.
#[derive(Debug)]
pub struct PushTarget {
    pub repository: Repository,
    credentials: Credentials,
    plain_http: bool,
    limits: Limits,
    /// A repository of the same registry that may hold our blobs already (the base's).
    pub mount_from: Option<Repository>,
}

impl PushTarget {
    /// A connection to the repository, authorized to push (and to mount from `mount_from`).
    pub fn session(&self) -> Result<Session> {
        Ok(Session::connect(
            &self.repository,
            &self.credentials,
            self.plain_http,
            self.limits,
            Access::Push {
                mount_from: self.mount_from.as_ref(),
            },
        )?)
    }
}
