//! Registries (the OCI distribution API), through a small client of our own on `ureq`: pulling
//! what a base image needs into a content-addressed cache, several layers at a time, each
//! streamed through its digest check; and pushing a layout: every blob the registry lacks, then
//! the manifests by digest, then the tags last, so a failure never leaves a tag pointing at
//! something incomplete. What is there already is asked with `HEAD`, never fetched or sent
//! again: a tag's manifest in the cache, a blob, manifest or tag the registry has.
//!
//! Everything a registry sends is bounded: a stalled or crawling connection is given up (see
//! [`Limits`]), a blob may not exceed its descriptor's size, a manifest its 4 MiB, redirects
//! and authentication are tried a fixed number of times. Credentials go to the registry they
//! are for and its token server, never along a redirect.
//!
//! A base may be pulled from several places, its [`Endpoint`]s (mirrors, then its registry), tried
//! in order until one serves it; which ones, the caller decides.
//!
//! Behind the `registry` feature, so a library user who only writes layouts compiles no HTTP.

mod auth;
mod session;
mod transport;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

pub use auth::Credentials;
pub use session::{Access, Pushed, Session};
pub use transport::Limits;

use crate::cache::BuildCache;
use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::progress::{Event, Progress, Transfer};
use crate::reference::{RemoteImage, Repository};
use crate::source::RegistryFetch;
use crate::store::BlobStore;

/// How many layers of a base are fetched at once (and blobs pushed): enough to fill a link that
/// one connection does not, few enough not to look like an attack to a registry.
pub const PARALLEL_FETCHES: usize = transport::PARALLEL_TRANSFERS;

/// One place a registry image may be pulled from: a mirror, or the repository the image names
/// (or where the caller's configuration moved it).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The repository asked for the image, e.g. `mirror.example.com/library/debian`.
    pub repository: Repository,
    /// For its registry, and sent to no other.
    pub credentials: Credentials,
    /// Whether plain HTTP may be tried with it (a registry that answers no TLS).
    pub plain_http: bool,
}

/// What pulling bases needs: the endpoints they come from, and where fetched blobs are kept. A
/// session is opened once per endpoint and shared by every base of the build, its token with it.
#[derive(Debug)]
pub struct RegistryAccess {
    /// Tried in order; the one that served last is asked first.
    endpoints: Vec<Endpoint>,
    /// Every fetched manifest and blob, by digest: the build cache's store.
    cache: BlobStore,
    /// The build cache: the tags last resolved (`refs/`), what this build used.
    build_cache: BuildCache,
    /// Use only what the cache holds.
    offline: bool,
    limits: Limits,
    sessions: Mutex<BTreeMap<Repository, Arc<Session>>>,
    /// The index of the endpoint that served last, if any has.
    served: Mutex<Option<usize>>,
    /// What each image reference resolved to, by its text: asked of the registry once per
    /// build, so a tag that moves meanwhile cannot give two platforms two different bases.
    resolved: Mutex<BTreeMap<String, Descriptor>>,
}

impl RegistryAccess {
    /// Access to a base through `endpoints`, tried in order until one serves (at least one is
    /// needed: the image's own repository); `offline` serves only what `cache` holds.
    pub fn new(
        endpoints: Vec<Endpoint>,
        cache: &BuildCache,
        offline: bool,
        limits: Limits,
    ) -> RegistryAccess {
        assert!(!endpoints.is_empty(), "an image comes from somewhere");
        RegistryAccess {
            endpoints,
            cache: cache.store().clone(),
            build_cache: cache.clone(),
            offline,
            limits,
            sessions: Mutex::default(),
            served: Mutex::default(),
            resolved: Mutex::default(),
        }
    }

    /// The repository that served the last manifest or blob fetched, if any was.
    pub fn served_from(&self) -> Option<&Repository> {
        let served = *self.served.lock().expect("not poisoned");
        served.map(|index| &self.endpoints[index].repository)
    }

    fn session(&self, endpoint: &Endpoint) -> Result<Arc<Session>> {
        let mut sessions = self.sessions.lock().expect("not poisoned");
        if let Some(session) = sessions.get(&endpoint.repository) {
            return Ok(session.clone());
        }
        let session = Arc::new(Session::connect(
            &endpoint.repository,
            &endpoint.credentials,
            endpoint.plain_http,
            self.limits,
            Access::Pull,
        )?);
        sessions.insert(endpoint.repository.clone(), session.clone());
        Ok(session)
    }

    /// `attempt` with each endpoint's session in turn, the one that served last first, until
    /// one succeeds. A failure of this machine (writing the cache) is no endpoint's and ends
    /// the search; when every endpoint fails, the error names each with its own (with one
    /// endpoint, it is that one's error).
    fn on_endpoints<T>(
        &self,
        image: &RemoteImage,
        mut attempt: impl FnMut(&Session) -> Result<T>,
    ) -> Result<T> {
        let first = self.served.lock().expect("not poisoned").unwrap_or(0);
        let others = (0..self.endpoints.len()).filter(|&index| index != first);
        let mut failures = Vec::new();
        for index in std::iter::once(first).chain(others) {
            let endpoint = &self.endpoints[index];
            match self.session(endpoint).and_then(|session| attempt(&session)) {
                Ok(value) => {
                    *self.served.lock().expect("not poisoned") = Some(index);
                    return Ok(value);
                }
                Err(error @ Error::Io { .. }) => return Err(error),
                Err(error) if self.endpoints.len() == 1 => return Err(error),
                Err(error) => failures.push((endpoint.repository.to_string(), Box::new(error))),
            }
        }
        Err(Error::NoEndpoint {
            image: image.to_string(),
            failures,
        })
    }

    /// The name a tag's last digest is recorded under.
    fn tag_name(image: &RemoteImage, tag: &str) -> String {
        format!("{}:{tag}", image.repository)
    }

    /// A manifest or index already in the cache, described from its own bytes.
    fn cached_manifest(&self, digest: &Digest) -> Result<Option<Descriptor>> {
        session::stored_manifest(&self.cache, digest)
    }

    /// `image` resolved by the registry (or, offline, by what the cache recorded).
    fn resolve_now(&self, image: &RemoteImage) -> Result<Descriptor> {
        let offline_miss = |what: String| Error::OfflineCacheMiss {
            image: image.to_string(),
            what,
        };
        if let Some(digest) = &image.digest {
            self.build_cache.mark_used([*digest]);
            if let Some(descriptor) = self.cached_manifest(digest)? {
                return Ok(descriptor);
            }
            if self.offline {
                return Err(offline_miss(format!("manifest {digest}")));
            }
            return self.on_endpoints(image, |session| {
                session.resolve(&digest.to_string(), &self.cache)
            });
        }
        let tag = image.tag.as_deref().unwrap_or("latest");
        let name = Self::tag_name(image, tag);
        if self.offline {
            let digest = match self.build_cache.recorded_tag(&name) {
                Ok(Some(digest)) => digest,
                Ok(None) => return Err(offline_miss(format!("the tag `{tag}`"))),
                Err(damaged) => return Err(offline_miss(format!("the tag `{tag}` ({damaged})"))),
            };
            self.build_cache.mark_used([digest]);
            return self
                .cached_manifest(&digest)?
                .ok_or_else(|| offline_miss(format!("manifest {digest}")));
        }
        let descriptor = self.on_endpoints(image, |session| session.resolve(tag, &self.cache))?;
        self.build_cache.record_tag(&name, &descriptor.digest);
        self.build_cache.mark_used([descriptor.digest]);
        Ok(descriptor)
    }
}

impl RegistryFetch for RegistryAccess {
    fn store(&self) -> &BlobStore {
        &self.cache
    }

    /// What `image` names now: by digest as given, else its tag resolved (once; recorded in the
    /// cache so an `--offline` build finds it). The manifest or index is in the cache after.
    /// Each reference is resolved once for the life of this access (a build): every platform
    /// and image built on it gets the same digest, even if the tag moves meanwhile.
    fn resolve(&self, image: &RemoteImage) -> Result<Descriptor> {
        // Held while resolving, so two threads asking for one reference ask the registry once.
        let mut resolved = self.resolved.lock().expect("not poisoned");
        if let Some(descriptor) = resolved.get(&image.to_string()) {
            return Ok(descriptor.clone());
        }
        let descriptor = self.resolve_now(image)?;
        resolved.insert(image.to_string(), descriptor.clone());
        Ok(descriptor)
    }

    /// Makes each of `blobs` of `image`'s repository available in the cache: those it lacks
    /// are fetched [`PARALLEL_FETCHES`] at a time. The first failure stops the others; an
    /// endpoint that fails leaves what is still missing to the next.
    fn fetch(
        &self,
        image: &RemoteImage,
        blobs: &[Descriptor],
        progress: &mut dyn Progress,
    ) -> Result<()> {
        // Kept by the cache's sweep while builds use them, fetched now or before.
        (self.build_cache).mark_used(blobs.iter().map(|blob| blob.digest));
        let Some(first) = self.missing(blobs).first().copied() else {
            return Ok(());
        };
        if self.offline {
            return Err(Error::OfflineCacheMiss {
                image: image.to_string(),
                what: format!("blob {}", first.digest),
            });
        }
        self.on_endpoints(image, |session| self.fetch_from(session, blobs, progress))
    }

    /// Asked of the registry every time (what refers to an image changes without its digest
    /// changing); none `--offline`.
    fn referrers(&self, image: &RemoteImage, subject: &Digest) -> Result<Vec<Descriptor>> {
        if self.offline {
            return Ok(Vec::new());
        }
        self.on_endpoints(image, |session| session.referrers(subject, &self.cache))
    }
}

impl RegistryAccess {
    /// Those of `blobs` the cache lacks, each once.
    fn missing<'a>(&self, blobs: &'a [Descriptor]) -> Vec<&'a Descriptor> {
        let mut missing: Vec<&Descriptor> = blobs
            .iter()
            .filter(|b| !self.cache.contains(&b.digest))
            .collect();
        missing.dedup_by_key(|b| b.digest);
        missing
    }

    /// Fetches those of `blobs` the cache lacks from `session`'s repository.
    fn fetch_from(
        &self,
        session: &Session,
        blobs: &[Descriptor],
        progress: &mut dyn Progress,
    ) -> Result<()> {
        let missing = self.missing(blobs);
        if missing.is_empty() {
            return Ok(());
        }
        let mut transfer = Transfer {
            pushing: false,
            repository: session.repository().to_string(),
            blobs_done: 0,
            blobs: missing.len(),
            bytes_done: 0,
            bytes: missing.iter().map(|b| b.size).sum(),
        };
        progress.on_event(&Event::Transfer(&transfer));

        enum Message {
            Bytes(u64),
            Done(Result<()>),
        }
        let queue = Mutex::new(missing.iter());
        let stop = AtomicBool::new(false);
        let (sender, receiver) = mpsc::channel();
        let mut failure = None;
        std::thread::scope(|scope| {
            for _ in 0..PARALLEL_FETCHES.min(missing.len()) {
                let sender = sender.clone();
                let (queue, stop, cache) = (&queue, &stop, &self.cache);
                scope.spawn(move || loop {
                    let next = queue.lock().expect("not poisoned").next().copied();
                    let Some(blob) = next.filter(|_| !stop.load(Ordering::Relaxed)) else {
                        break;
                    };
                    let done = session.fetch(blob, cache, &mut |bytes| {
                        !stop.load(Ordering::Relaxed) && sender.send(Message::Bytes(bytes)).is_ok()
                    });
                    if sender.send(Message::Done(done)).is_err() {
                        break;
                    }
                });
            }
            drop(sender);
            for message in receiver {
                match message {
                    Message::Bytes(bytes) => {
                        transfer.bytes_done = (transfer.bytes_done + bytes).min(transfer.bytes)
                    }
                    Message::Done(Ok(())) => transfer.blobs_done += 1,
                    Message::Done(Err(error)) => {
                        stop.store(true, Ordering::Relaxed);
                        failure.get_or_insert(error);
                        continue;
                    }
                }
                if failure.is_none() {
                    progress.on_event(&Event::Transfer(&transfer));
                }
            }
        });
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
