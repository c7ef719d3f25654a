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

/// What pulling bases from one registry needs: its credentials, whether plain HTTP may be
/// tried, and where fetched blobs are kept. A session is opened once per repository and shared
/// by every base of the build, its token with it.
#[derive(Debug)]
pub struct RegistryAccess {
    credentials: Credentials,
    plain_http: bool,
    /// Every fetched manifest and blob, by digest; with the tags last resolved under `refs/`.
    cache: BlobStore,
    /// Use only what the cache holds.
    offline: bool,
    limits: Limits,
    sessions: Mutex<BTreeMap<Repository, Arc<Session>>>,
}

impl RegistryAccess {
    /// Access with `credentials` for every repository of the registry; `plain_http` lets a
    /// registry that answers no TLS be reached over HTTP, `offline` serves only what `cache`
    /// holds.
    pub fn new(
        credentials: Credentials,
        plain_http: bool,
        cache: BlobStore,
        offline: bool,
        limits: Limits,
    ) -> RegistryAccess {
        RegistryAccess {
            credentials,
            plain_http,
            cache,
            offline,
            limits,
            sessions: Mutex::default(),
        }
    }

    fn session(&self, repository: &Repository) -> Result<Arc<Session>> {
        let mut sessions = self.sessions.lock().expect("not poisoned");
        if let Some(session) = sessions.get(repository) {
            return Ok(session.clone());
        }
        let session = Arc::new(Session::connect(
            repository,
            &self.credentials,
            self.plain_http,
            self.limits,
            Access::Pull,
        )?);
        sessions.insert(repository.clone(), session.clone());
        Ok(session)
    }

    fn ref_file(&self, image: &RemoteImage, tag: &str) -> std::path::PathBuf {
        let key = Digest::of(format!("{}:{tag}", image.repository).as_bytes());
        self.cache.root().join("refs").join(key.hex())
    }

    /// A manifest or index already in the cache, described from its own bytes.
    fn cached_manifest(&self, digest: &Digest) -> Result<Option<Descriptor>> {
        session::stored_manifest(&self.cache, digest)
    }
}

impl RegistryFetch for RegistryAccess {
    fn store(&self) -> &BlobStore {
        &self.cache
    }

    /// What `image` names now: by digest as given, else its tag resolved (once; recorded in the
    /// cache so an `--offline` build finds it). The manifest or index is in the cache after.
    fn resolve(&self, image: &RemoteImage) -> Result<Descriptor> {
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
            return self
                .session(&image.repository)?
                .resolve(&digest.to_string(), &self.cache);
        }
        let tag = image.tag.as_deref().unwrap_or("latest");
        let ref_file = self.ref_file(image, tag);
        if self.offline {
            let recorded = std::fs::read_to_string(&ref_file)
                .map_err(|_| offline_miss(format!("the tag `{tag}`")))?;
            let digest: Digest = recorded.trim().parse()?;
            return self
                .cached_manifest(&digest)?
                .ok_or_else(|| offline_miss(format!("manifest {digest}")));
        }
        let descriptor = self.session(&image.repository)?.resolve(tag, &self.cache)?;
        let refs = ref_file.parent().expect("under refs/");
        std::fs::create_dir_all(refs).map_err(Error::io("create directory", refs))?;
        std::fs::write(&ref_file, descriptor.digest.to_string())
            .map_err(Error::io("write", &ref_file))?;
        Ok(descriptor)
    }

    /// Makes each of `blobs` of `image`'s repository available in the cache: those it lacks
    /// are fetched [`PARALLEL_FETCHES`] at a time. The first failure stops the others.
    fn fetch(
        &self,
        image: &RemoteImage,
        blobs: &[Descriptor],
        progress: &mut dyn Progress,
    ) -> Result<()> {
        let mut missing: Vec<&Descriptor> = blobs
            .iter()
            .filter(|b| !self.cache.contains(&b.digest))
            .collect();
        missing.dedup_by_key(|b| b.digest);
        let Some(first) = missing.first() else {
            return Ok(());
        };
        if self.offline {
            return Err(Error::OfflineCacheMiss {
                image: image.to_string(),
                what: format!("blob {}", first.digest),
            });
        }
        let session = self.session(&image.repository)?;
        let mut transfer = Transfer {
            pushing: false,
            repository: image.repository.to_string(),
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
                let (queue, stop, session, cache) = (&queue, &stop, &session, &self.cache);
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

    /// Asked of the registry every time (what refers to an image changes without its digest
    /// changing); none `--offline`.
    fn referrers(&self, image: &RemoteImage, subject: &Digest) -> Result<Vec<Descriptor>> {
        if self.offline {
            return Ok(Vec::new());
        }
        self.session(&image.repository)?
            .referrers(subject, &self.cache)
    }
}
