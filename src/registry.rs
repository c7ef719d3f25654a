//! How this run reaches registries: the credentials for each ([`credentials`]), the
//! limits of patience cargo's own settings give (`CARGO_HTTP_TIMEOUT`,
//! `CARGO_HTTP_LOW_SPEED_LIMIT`, `CARGO_NET_RETRY`), which registries may be reached over plain
//! HTTP, where bases are pulled from (`registries.conf`'s mirrors, [`registries_conf`]),
//! and one access per base repository shared by every platform of the build.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use oci_pack::registry::{Access, Credentials, Endpoint, Limits, RegistryAccess, Session};
use oci_pack::{BuildCache, RemoteImage, Repository};

use credentials::CredentialSources;
use registries_conf::RegistriesConf;

pub mod credentials;
pub mod registries_conf;

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
    /// Registries `--insecure-registry` names, which may be reached over plain HTTP (as
    /// loopback ones always may, and those `registries.conf` says are `insecure`).
    pub insecure: Vec<String>,
    /// Use only the cache (`--offline`, `--frozen`).
    pub offline: bool,
    limits: Limits,
    credentials: CredentialSources,
    /// Read when a registry is first needed, so a run that needs none never reads it.
    conf: Mutex<Option<Arc<RegistriesConf>>>,
    /// One access per list of places a base is pulled from, its sessions shared by every
    /// platform's base.
    accesses: Mutex<BTreeMap<Vec<Repository>, Arc<RegistryAccess>>>,
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
            conf: Mutex::default(),
            accesses: Default::default(),
        })
    }

    pub fn credentials(&self, registry: &str) -> Result<Credentials> {
        self.credentials.for_registry(registry)
    }

    /// `registries.conf`, read once.
    fn conf(&self) -> Result<Arc<RegistriesConf>> {
        let mut conf = self.conf.lock().expect("not poisoned");
        if let Some(conf) = &*conf {
            return Ok(conf.clone());
        }
        Ok(conf.insert(Arc::new(RegistriesConf::from_env()?)).clone())
    }

    /// Where `image` is fetched from, into the build cache: its mirrors, then its registry,
    /// as `registries.conf` says, each with its own registry's credentials.
    pub fn base_access(
        &self,
        image: &RemoteImage,
        cache: &BuildCache,
    ) -> Result<Arc<RegistryAccess>> {
        let sources = self.conf()?.pull_sources(image)?;
        let key: Vec<Repository> = sources.iter().map(|s| s.repository.clone()).collect();
        let mut accesses = self.accesses.lock().expect("not poisoned");
        if let Some(access) = accesses.get(&key) {
            return Ok(access.clone());
        }
        let endpoints = sources
            .into_iter()
            .map(|source| {
                Ok(Endpoint {
                    credentials: self.credentials(&source.repository.registry)?,
                    plain_http: source.insecure
                        || source.repository.allows_plain_http(&self.insecure),
                    repository: source.repository,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let access = Arc::new(RegistryAccess::new(
            endpoints,
            cache,
            self.offline,
            self.limits,
        ));
        accesses.insert(key, access.clone());
        Ok(access)
    }

    /// The push destination `text`, its credentials found now, before anything is built.
    pub fn push_target(&self, text: &str) -> Result<PushTarget> {
        let repository = Repository::parse(text)?;
        let insecure = self.conf()?.push_allows_plain_http(&repository)?;
        Ok(PushTarget {
            credentials: self.credentials(&repository.registry)?,
            plain_http: insecure || repository.allows_plain_http(&self.insecure),
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
