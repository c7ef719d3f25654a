//! One repository of a registry, reached once per build: which scheme answers, how it wants us
//! to authenticate, and the token it gave, reused by every request. Each exchange is tried again
//! while its failure may pass, and authorized again at most once. Bodies are streamed: a blob
//! goes from the network into the store through its digest check, and from the store onto the
//! network the same way, never whole in memory.

use std::io::{self, Read, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use ureq::http::Response;
use ureq::{Body, ResponseExt as _, SendBody};

use super::auth::{self, Challenge, Credentials};
use super::transport::{self, retry, Failure, Limits, Paced, PARALLEL_TRANSFERS};
use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::json::MAX_DOCUMENT_BYTES;
use crate::media_type;
use crate::progress::{Event, Progress, Transfer};
use crate::reference::{Repository, DOCKER_HUB};
use crate::store::{BlobStore, BlobWriter};

/// What a session is for, which decides the scopes its token is asked for.
#[derive(Debug, Clone, Copy)]
pub enum Access<'a> {
    /// Pulling only.
    Pull,
    /// Pushing, and mounting blobs from `mount_from` (another repository of the registry, such
    /// as the base's), which needs the right to pull from it too.
    Push {
        /// The repository blobs may be mounted from, e.g. `docker.io/library/debian`.
        mount_from: Option<&'a Repository>,
    },
}

/// A connection to one repository of a registry.
pub struct Session {
    agent: ureq::Agent,
    limits: Limits,
    repository: Repository,
    credentials: Credentials,
    plain_http_allowed: bool,
    /// `https://HOST[:PORT]`, or `http://…` for a registry allowed plain HTTP that answers no
    /// TLS; credentials are sent to URLs under it only.
    origin: String,
    /// `repository:NAME:pull[,push]`, and the pull scope of the repository blobs are mounted from.
    scopes: Vec<String>,
    mount_from: Option<Repository>,
    authorization: Mutex<Authorization>,
}

/// How requests are authorized now: nothing, Basic credentials, or a Bearer token.
#[derive(Debug, Default)]
struct Authorization {
    header: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("repository", &self.repository)
            .field("origin", &self.origin)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pushed {
    /// `REPO@sha256:…` of what every tag points at.
    pub reference: String,
    /// The tags pushed, each as `REPOSITORY:TAG`, e.g. `ghcr.io/team/app:1.0`.
    pub tags: Vec<String>,
    /// Blobs sent.
    pub uploaded: usize,
    /// Blobs the registry already had.
    pub skipped: usize,
    /// Blobs mounted from another repository of the registry.
    pub mounted: usize,
}

/// What sending a request gives.
type Answer = std::result::Result<Response<Body>, ureq::Error>;

/// What is asked for when a manifest is fetched by tag or digest.
const ACCEPTED_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// How much of a body is read at a time.
const CHUNK: usize = 256 << 10;

/// Docker Hub's API lives on another host than its name.
fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// What a push did with one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// The registry had it.
    Skipped,
    /// Mounted from another repository of the registry.
    Mounted,
    Uploaded,
}

/// What starting an upload gave.
enum Upload {
    /// The registry mounted the blob from another repository: nothing to send.
    Mounted,
    /// Send the blob to this URL.
    At(String),
}

impl Session {
    /// Connects to `repository`: finds the scheme that answers (HTTPS, or plain HTTP when
    /// `plain_http_allowed` and the registry speaks no TLS) and authenticates as it asks.
    pub fn connect(
        repository: &Repository,
        credentials: &Credentials,
        plain_http_allowed: bool,
        limits: Limits,
        access: Access<'_>,
    ) -> Result<Session> {
        let mut scopes = Vec::new();
        let mut mount_from = None;
        match access {
            Access::Pull => scopes.push(format!("repository:{}:pull", repository.name)),
            Access::Push { mount_from: from } => {
                scopes.push(format!("repository:{}:pull,push", repository.name));
                if let Some(from) =
                    from.filter(|f| f.registry == repository.registry && f.name != repository.name)
                {
                    scopes.push(format!("repository:{}:pull", from.name));
                    mount_from = Some(from.clone());
                }
            }
        }
        let mut session = Session {
            agent: transport::agent(&limits, repository.is_loopback(), false),
            limits,
            repository: repository.clone(),
            credentials: credentials.clone(),
            plain_http_allowed,
            origin: String::new(),
            scopes,
            mount_from,
            authorization: Mutex::default(),
        };
        let (origin, challenge) = retry(&limits, || session.ping())
            .map_err(|failure| session.failed("connect to", failure))?;
        // A registry that answered over HTTPS is never left for plain HTTP, not even by a
        // redirect to a CDN: a manifest fetched by tag has only its header to vouch for it.
        if origin.starts_with("https://") {
            session.agent = transport::agent(&limits, repository.is_loopback(), true);
        }
        session.origin = origin;
        if let Some(challenge) = challenge {
            retry(&limits, || session.authorize(&challenge))
                .map_err(|failure| session.failed("log in to", failure))?;
        }
        Ok(session)
    }

    /// The repository the session is for.
    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    /// `GET /v2/`: the scheme that answers, and the challenge if it asks for authentication.
    fn ping(&self) -> Result<(String, Option<Challenge>), Failure> {
        let host = api_host(&self.repository.registry);
        let secure = format!("https://{host}");
        let tls_failure = match self.ping_at(&secure) {
            Ok(challenge) => return Ok((secure, challenge)),
            Err(Failure::Transport(error)) if self.plain_http_allowed => error,
            Err(failure) => return Err(failure),
        };
        // As Docker does for registries allowed plain HTTP: HTTPS first, then HTTP.
        let plain = format!("http://{host}");
        match self.ping_at(&plain) {
            Ok(challenge) => Ok((plain, challenge)),
            // Busy, starting or stalled over plain HTTP: a registry that speaks TLS would have
            // refused plain HTTP at once, so this one speaks plain HTTP, and its own failure
            // is what to report (and try again).
            Err(failure) if speaks_plain_http(&failure) => Err(failure),
            // A registry that speaks TLS but could not be trusted: that is what to report,
            // not that it does not speak plain HTTP.
            Err(_) if is_tls_failure(&tls_failure) => Err(Failure::Transport(tls_failure)),
            Err(failure) => Err(failure),
        }
    }

    fn ping_at(&self, origin: &str) -> Result<Option<Challenge>, Failure> {
        let mut response = self
            .agent
            .get(&format!("{origin}/v2/"))
            .call()
            .map_err(Failure::Transport)?;
        match response.status().as_u16() {
            200..=299 => Ok(None),
            // Only the registry itself says how to log in to it, never a host it redirects to.
            401 if !same_origin(&response.get_uri().to_string(), origin) => {
                Err(redirected_challenge(&response))
            }
            401 => challenge_of(&response).map(Some).ok_or_else(|| {
                Failure::Refused("it asks for authentication in a way no registry does".into())
            }),
            status => {
                let retry_after = header(&response, "retry-after");
                let detail = format!(
                    "to `GET /v2/`, which a registry answers: is it one? {}",
                    error_detail(&mut response)
                );
                Err(Failure::answered(status, detail, retry_after.as_deref()))
            }
        }
    }

    /// Sets the `Authorization` header `challenge` asks for, fetching a token if it is Bearer.
    fn authorize(&self, challenge: &Challenge) -> Result<(), Failure> {
        let header = match (challenge, &self.credentials) {
            (Challenge::Basic, Credentials::Basic { username, password }) => {
                Some(auth::basic(username, password))
            }
            (Challenge::Basic, credentials) => {
                return Err(Failure::AuthenticationFailed {
                    status: 401,
                    anonymous: matches!(credentials, Credentials::Anonymous),
                })
            }
            (
                Challenge::Bearer {
                    realm,
                    service,
                    scope,
                },
                credentials,
            ) => {
                let mut scopes = self.scopes.clone();
                scopes.extend(scope.clone().filter(|s| !self.scopes.contains(s)));
                let token = auth::token(
                    &self.agent,
                    &self.limits,
                    realm,
                    service.as_deref(),
                    &scopes,
                    credentials,
                    &|server| self.token_server_may_be_plain(server),
                )?;
                Some(format!("Bearer {token}"))
            }
        };
        self.authorization.lock().expect("not poisoned").header = header;
        Ok(())
    }

    fn token_server_may_be_plain(&self, server: &str) -> bool {
        plain_token_server(server, &self.repository.registry, self.plain_http_allowed)
    }

    /// One exchange: `send` is called with the `Authorization` header for `url` (none unless
    /// `url` is the registry's own); a 401 answer is authorized again once, and a second is an
    /// authentication failure. An answer worth another try is a transient failure.
    fn exchange(
        &self,
        url: &str,
        send: &mut dyn FnMut(Option<&str>) -> Answer,
    ) -> Result<Response<Body>, Failure> {
        let ours = same_origin(url, &self.origin);
        let mut authorized_again = false;
        loop {
            let header = match ours {
                true => self
                    .authorization
                    .lock()
                    .expect("not poisoned")
                    .header
                    .clone(),
                false => None,
            };
            let mut response = send(header.as_deref()).map_err(Failure::Transport)?;
            let status = response.status().as_u16();
            // A 401 of a host the request was redirected to (a CDN) says nothing about how to
            // log in to the registry: credentials never go where it points.
            if status == 401 && !same_origin(&response.get_uri().to_string(), &self.origin) {
                return Err(redirected_challenge(&response));
            }
            if status == 401 && ours && !authorized_again {
                authorized_again = true;
                match challenge_of(&response) {
                    Some(challenge) => self.authorize(&challenge)?,
                    None => {
                        return Err(Failure::Refused(
                            "it refused the request without saying how to authenticate".into(),
                        ))
                    }
                }
                continue;
            }
            if status == 401 {
                return Err(Failure::AuthenticationFailed {
                    status,
                    anonymous: matches!(self.credentials, Credentials::Anonymous),
                });
            }
            if transport::is_transient_status(status) {
                let retry_after = self::header(&response, "retry-after");
                let detail = error_detail(&mut response);
                return Err(Failure::answered(status, detail, retry_after.as_deref()));
            }
            return Ok(response);
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.origin, self.repository.name)
    }

    fn failed(&self, action: &'static str, failure: Failure) -> Error {
        failure.into_error(&self.repository.registry, action)
    }

    /// The manifest or index `reference` (a tag, or a digest) names now, stored in `store`
    /// and described. A tag is asked with `HEAD` first, and its manifest fetched only when
    /// `store` lacks the digest the registry names (a registry counts a `GET` as a pull, and
    /// some limit pulls). One larger than [`MAX_DOCUMENT_BYTES`] is refused before it is read.
    pub fn resolve(&self, reference: &str, store: &BlobStore) -> Result<Descriptor> {
        if reference.parse::<Digest>().is_err() {
            // Asked once: a `HEAD` that fails in a way that may pass (an error answer, such as
            // a 501 from a registry that does not implement it, or a cut connection) only costs
            // the `GET` it was meant to spare, which is tried again as every request is; one
            // that cannot pass (a redirect loop, credentials refused) fails as a `GET` would.
            let once = Limits {
                retries: 0,
                ..self.limits
            };
            let named = match self.try_head_manifest(reference, ACCEPTED_MANIFESTS, &once) {
                Ok((_, named)) => named,
                Err(failure) if failure.is_transient() => None,
                Err(failure) => return Err(self.failed("check a manifest at", failure)),
            };
            if let Some(digest) = named {
                // One the store holds but cannot vouch for is fetched again.
                if let Ok(Some(descriptor)) = stored_manifest(store, &digest) {
                    return Ok(descriptor);
                }
            }
        }
        let url = self.url(&format!("manifests/{reference}"));
        let (bytes, named, content_type) = retry(&self.limits, || {
            let mut response = self.exchange(&url, &mut |auth| {
                with_auth(self.agent.get(&url), auth)
                    .header("Accept", ACCEPTED_MANIFESTS)
                    .call()
            })?;
            expect(&mut response, &[200])?;
            let named = header(&response, "docker-content-digest");
            let content_type = header(&response, "content-type");
            let bytes = read_document(&mut response, &self.limits)?;
            Ok((bytes, named, content_type))
        })
        .map_err(|failure| self.failed("fetch a manifest from", failure))?;
        let actual = Digest::of(&bytes);
        // A digest is the name of these very bytes; a tag's answer should agree with its header.
        let expected = match reference.parse::<Digest>() {
            Ok(digest) => Some(digest),
            Err(_) => named.and_then(|n| n.parse().ok()),
        };
        if let Some(expected) = expected.filter(|e| *e != actual) {
            return Err(self.failed(
                "fetch a manifest from",
                Failure::Refused(format!(
                    "it named the manifest {expected}, but its bytes hash to {actual}"
                )),
            ));
        }
        let media_type = media_type_of(&bytes)
            .or(content_type.filter(|t| media_type::is_manifest(t) || media_type::is_index(t)))
            .ok_or_else(|| {
                self.failed(
                    "fetch a manifest from",
                    Failure::Refused(format!(
                        "it answered `{reference}` with something that is not a manifest or \
                         an index"
                    )),
                )
            })?;
        store.put(&media_type, &bytes)
    }

    /// `HEAD manifests/<reference>`: the digest the registry names (`Docker-Content-Digest`)
    /// for the manifest `accept` asks for; `None` when there is none, or the registry does not
    /// say (a `GET` then tells).
    fn manifest_digest(&self, reference: &str, accept: &str) -> Result<Option<Digest>> {
        Ok(self.head_manifest(reference, accept)?.1)
    }

    /// `HEAD manifests/<reference>`: the status, and the digest named with a 200.
    fn head_manifest(&self, reference: &str, accept: &str) -> Result<(u16, Option<Digest>)> {
        self.try_head_manifest(reference, accept, &self.limits)
            .map_err(|failure| self.failed("check a manifest at", failure))
    }

    fn try_head_manifest(
        &self,
        reference: &str,
        accept: &str,
        limits: &Limits,
    ) -> Result<(u16, Option<Digest>), Failure> {
        let url = self.url(&format!("manifests/{reference}"));
        retry(limits, || {
            let response = self.exchange(&url, &mut |auth| {
                with_auth(self.agent.head(&url), auth)
                    .header("Accept", accept)
                    .call()
            })?;
            let status = response.status().as_u16();
            let named = header(&response, "docker-content-digest").and_then(|d| d.parse().ok());
            Ok((status, named.filter(|_| status == 200)))
        })
    }

    /// Fetches `descriptor` (a manifest, an index or a blob) into `store`, streamed and
    /// checked against its digest and size as it arrives: a registry that sends more than the
    /// size is cut off there. `on_bytes` hears of each chunk stored and stops the transfer by
    /// returning `false`.
    pub fn fetch(
        &self,
        descriptor: &Descriptor,
        store: &BlobStore,
        on_bytes: &mut dyn FnMut(u64) -> bool,
    ) -> Result<()> {
        if store.contains(&descriptor.digest) {
            return Ok(());
        }
        if media_type::is_manifest(&descriptor.media_type)
            || media_type::is_index(&descriptor.media_type)
        {
            let fetched = self.resolve(&descriptor.digest.to_string(), store)?;
            if fetched.size != descriptor.size {
                return Err(Error::BlobMismatch {
                    digest: descriptor.digest,
                    expected_size: descriptor.size,
                    actual: fetched.digest,
                    actual_size: fetched.size,
                });
            }
            on_bytes(fetched.size);
            return Ok(());
        }
        let url = self.url(&format!("blobs/{}", descriptor.digest));
        // What the tries before received: a try cut off is resumed where it stopped, when the
        // registry answers the `Range` asked for (else it starts again from byte 0).
        let mut partial: Option<(BlobWriter, u64)> = None;
        retry(&self.limits, || {
            let from = partial.as_ref().map_or(0, |(_, received)| *received);
            let resuming = from > 0;
            match self.fetch_from(&url, descriptor, store, &mut partial, &mut *on_bytes) {
                // A resumed transfer the registry would not finish (416, a range not asked
                // for), or whose whole does not hash to its digest, starts again from byte 0.
                Err(failure) if resuming && failure.is_worth_starting_over() => {
                    partial = None;
                    Err(Failure::StartOver(Box::new(failure)))
                }
                done => done,
            }
        })
        .map_err(|failure| self.failed("fetch a blob from", failure))
    }

    /// One try at fetching the blob `descriptor` at `url`: from byte 0, or from where `partial`
    /// stopped. A try cut off leaves what it received in `partial`.
    fn fetch_from(
        &self,
        url: &str,
        descriptor: &Descriptor,
        store: &BlobStore,
        partial: &mut Option<(BlobWriter, u64)>,
        on_bytes: &mut dyn FnMut(u64) -> bool,
    ) -> Result<(), Failure> {
        let from = partial.as_ref().map_or(0, |(_, received)| *received);
        let mut response = self.exchange(url, &mut |auth| {
            let request = with_auth(self.agent.get(url), auth);
            match from {
                0 => request.call(),
                from => request.header("Range", format!("bytes={from}-")).call(),
            }
        })?;
        let resumed = match expect(&mut response, &[200, 206])? {
            206 if content_range(&response) == Some((from, descriptor.size)) => true,
            206 => {
                return Err(Failure::Refused(format!(
                    "it answered a range of blob {} that was not asked for",
                    descriptor.digest
                )))
            }
            _ => false,
        };
        let (mut writer, mut received) = match partial.take().filter(|_| resumed) {
            Some(partial) => partial,
            None => (store.writer().map_err(Failure::local)?, 0),
        };
        if let Some(length) = response.body().content_length() {
            if received + length > descriptor.size {
                return Err(Failure::Refused(format!(
                    "it is sending {length} bytes for blob {}, which has {}",
                    descriptor.digest,
                    descriptor.size - received
                )));
            }
        }
        let mut body = Paced::new(response.into_body().into_reader(), self.limits);
        let into = (&mut writer, &mut received);
        match receive(&mut body, into, descriptor, store, on_bytes) {
            Ok(()) => writer.commit_as(descriptor).map_err(Failure::local),
            // Cut off after the last byte (a chunked body's end lost): the digest decides.
            Err(Failure::Io(_)) if received == descriptor.size => {
                writer.commit_as(descriptor).map_err(Failure::local)
            }
            // Cut off: what came is kept for the next try.
            Err(Failure::Io(error)) => {
                *partial = Some((writer, received));
                Err(Failure::Io(error))
            }
            Err(failure) => Err(failure),
        }
    }

    /// Pushes everything `target` needs from `store`, then `target` under each of `tags`. A blob
    /// the registry lacks is mounted from the session's `mount_from` when it is there, else
    /// streamed from disk, as many at a time as pulls fetch
    /// ([`PARALLEL_FETCHES`](crate::registry::PARALLEL_FETCHES)); the manifests go once every
    /// blob is there, the tags last. `progress` hears how the blobs go.
    pub fn push(
        &self,
        store: &BlobStore,
        target: &Descriptor,
        tags: &[String],
        progress: &mut dyn Progress,
    ) -> Result<Pushed> {
        let crate::graph::ImageGraph { blobs, manifests } = crate::graph::walk(store, target)?;
        let sent = self.push_blobs(store, &blobs, progress)?;
        for manifest in &manifests {
            let reference = manifest.digest.to_string();
            if self.head_manifest(&reference, &manifest.media_type)?.0 != 200 {
                self.put_manifest(&reference, store, manifest)?;
            }
        }
        let count = |what: Sent| sent.iter().filter(|s| **s == what).count();
        // Tags last: each only once everything it points at is there.
        Ok(Pushed {
            reference: format!("{}@{}", self.repository, target.digest),
            tags: self.tag(store, target, tags)?,
            uploaded: count(Sent::Uploaded),
            skipped: count(Sent::Skipped),
            mounted: count(Sent::Mounted),
        })
    }

    /// Makes each of `blobs` present in the repository, [`PARALLEL_TRANSFERS`] at a time; what
    /// was done with each, in no particular order. The first failure stops the others.
    fn push_blobs(
        &self,
        store: &BlobStore,
        blobs: &[Descriptor],
        progress: &mut dyn Progress,
    ) -> Result<Vec<Sent>> {
        let mut transfer = Transfer {
            pushing: true,
            repository: self.repository.to_string(),
            blobs_done: 0,
            blobs: blobs.len(),
            bytes_done: 0,
            bytes: blobs.iter().map(|b| b.size).sum(),
        };
        progress.on_event(&Event::Transfer(&transfer));
        enum Message {
            Bytes(usize, u64),
            Done(usize, Result<Sent>),
        }
        let queue = Mutex::new(blobs.iter().enumerate());
        let stop = AtomicBool::new(false);
        let (sender, receiver) = mpsc::channel();
        let (mut sent, mut failure) = (Vec::new(), None);
        // What each blob has sent so far: whatever a retry sent twice, a blob counts once.
        let (mut sent_bytes, mut moved) = (vec![0; blobs.len()], 0);
        std::thread::scope(|scope| {
            for _ in 0..PARALLEL_TRANSFERS.min(blobs.len()) {
                let (sender, queue, stop) = (sender.clone(), &queue, &stop);
                scope.spawn(move || loop {
                    let next = queue.lock().expect("not poisoned").next();
                    let Some((i, blob)) = next.filter(|_| !stop.load(Ordering::Relaxed)) else {
                        break;
                    };
                    let done = self.push_blob(blob, store, &mut |bytes| {
                        !stop.load(Ordering::Relaxed)
                            && sender.send(Message::Bytes(i, bytes)).is_ok()
                    });
                    if sender.send(Message::Done(i, done)).is_err() {
                        break;
                    }
                });
            }
            drop(sender);
            for message in receiver {
                match message {
                    Message::Bytes(i, bytes) => {
                        sent_bytes[i] += bytes;
                        moved += bytes;
                    }
                    Message::Done(i, Ok(what)) => {
                        moved = moved - sent_bytes[i] + blobs[i].size;
                        transfer.blobs_done += 1;
                        sent.push(what);
                    }
                    Message::Done(_, Err(error)) => {
                        stop.store(true, Ordering::Relaxed);
                        failure.get_or_insert(error);
                    }
                }
                transfer.bytes_done = moved.min(transfer.bytes);
                if failure.is_none() {
                    progress.on_event(&Event::Transfer(&transfer));
                }
            }
        });
        match failure {
            Some(error) => Err(error),
            None => Ok(sent),
        }
    }

    /// Makes `blob` present in the repository: there already, mounted, or uploaded from
    /// `store`; `on_bytes` hears of each chunk sent and stops the upload by returning `false`.
    fn push_blob(
        &self,
        blob: &Descriptor,
        store: &BlobStore,
        on_bytes: &mut dyn FnMut(u64) -> bool,
    ) -> Result<Sent> {
        if self.blob_exists(&blob.digest)? {
            return Ok(Sent::Skipped);
        }
        retry(&self.limits, || match self.start_upload(&blob.digest)? {
            Upload::Mounted => Ok(Sent::Mounted),
            Upload::At(location) => self
                .upload(&location, blob, store, on_bytes)
                .map(|()| Sent::Uploaded),
        })
        .map_err(|failure| self.failed("upload a blob to", failure))
    }

    /// Pushes the index `index` from `store` by digest and under each of `tags`; the manifests
    /// it lists must already be in this repository, so no layer moves.
    pub fn push_index(
        &self,
        store: &BlobStore,
        index: &Descriptor,
        tags: &[String],
    ) -> Result<Pushed> {
        self.put_manifest(&index.digest.to_string(), store, index)?;
        Ok(Pushed {
            reference: format!("{}@{}", self.repository, index.digest),
            tags: self.tag(store, index, tags)?,
            uploaded: 0,
            skipped: 0,
            mounted: 0,
        })
    }

    /// Pushes each artifact of `referrers` (from [`referrer::attach`](crate::referrer::attach))
    /// by digest, after the image it is about. A registry with the referrers API lists them
    /// itself; on one without, each subject's fallback tag is pointed at an index of its
    /// referrers, those already there kept. That index is written to `listings`, never to
    /// `store`, which a push only reads (a layout of the user's): a build's cache, where the
    /// next push finds it without a `GET`. Returns how many were pushed.
    pub fn push_referrers(
        &self,
        store: &BlobStore,
        referrers: &[Descriptor],
        listings: &BlobStore,
    ) -> Result<usize> {
        for referrer in referrers {
            self.push(store, referrer, &[], &mut crate::progress::NoProgress)?;
            let manifest: crate::manifest::ImageManifest =
                serde_json::from_slice(&store.read(referrer)?).map_err(|source| {
                    Error::MalformedJson {
                        what: format!("artifact manifest {}", referrer.digest),
                        source,
                    }
                })?;
            let Some(subject) = manifest.subject else {
                continue;
            };
            if !self.has_referrers_api(&subject.digest)? {
                self.list_under_fallback_tag(listings, &subject.digest, referrer)?;
            }
        }
        Ok(referrers.len())
    }

    /// The artifacts about `subject`: the referrers API's index, or on a registry without it
    /// the index under the fallback tag (not fetched when `store` holds it); none when there
    /// is neither.
    pub fn referrers(&self, subject: &Digest, store: &BlobStore) -> Result<Vec<Descriptor>> {
        let url = self.url(&format!("referrers/{subject}"));
        let listed = retry(&self.limits, || {
            let mut response = self.exchange(&url, &mut |auth| {
                with_auth(self.agent.get(&url), auth)
                    .header("Accept", media_type::OCI_INDEX)
                    .call()
            })?;
            let status = expect(&mut response, &[200, 404, 400, 405])?;
            let is_index = header(&response, "content-type")
                .is_some_and(|t| t.starts_with(media_type::OCI_INDEX));
            match status == 200 && is_index {
                true => read_document(&mut response, &self.limits).map(Some),
                false => Ok(None),
            }
        })
        .map_err(|failure| self.failed("ask for the referrers at", failure))?;
        let what = || format!("the referrers of {subject} in {}", self.repository);
        let index: Option<serde_json::Value> = match listed {
            Some(bytes) => {
                Some(
                    serde_json::from_slice(&bytes).map_err(|source| Error::MalformedJson {
                        what: what(),
                        source,
                    })?,
                )
            }
            None => self.fallback_listing(&crate::referrer::fallback_tag(subject), store)?,
        };
        match index.and_then(|mut index| index.get_mut("manifests").map(serde_json::Value::take)) {
            None => Ok(Vec::new()),
            Some(manifests) => {
                serde_json::from_value(manifests).map_err(|source| Error::MalformedJson {
                    what: what(),
                    source,
                })
            }
        }
    }

    /// Whether the registry answers `GET …/referrers/<digest>`, as one with the API must (an
    /// empty index when nothing refers to the digest).
    fn has_referrers_api(&self, subject: &Digest) -> Result<bool> {
        let url = self.url(&format!("referrers/{subject}"));
        retry(&self.limits, || {
            let mut response = self.exchange(&url, &mut |auth| {
                with_auth(self.agent.get(&url), auth)
                    .header("Accept", media_type::OCI_INDEX)
                    .call()
            })?;
            let status = expect(&mut response, &[200, 404, 400, 405])?;
            let is_index = header(&response, "content-type")
                .is_some_and(|t| t.starts_with(media_type::OCI_INDEX));
            Ok(status == 200 && is_index)
        })
        .map_err(|failure| self.failed("ask for the referrers at", failure))
    }

    /// Adds `referrer` to the index under `subject`'s fallback tag (`sha256-<hex>`), keeping
    /// every entry (and every field of it) another client put there. The tag has no
    /// compare-and-swap, so two clients updating it at once may lose one's entry, as the
    /// distribution spec warns; the tag is read back after the write and the update made again
    /// if the entry is gone, which narrows that window but cannot close it.
    fn list_under_fallback_tag(
        &self,
        store: &BlobStore,
        subject: &Digest,
        referrer: &Descriptor,
    ) -> Result<()> {
        let tag = crate::referrer::fallback_tag(subject);
        let entry = serde_json::to_value(referrer).map_err(|source| Error::Json {
            what: "a referrer's descriptor",
            source,
        })?;
        for _ in 0..3 {
            let mut index = match self.fallback_listing(&tag, store)? {
                Some(index) => index,
                None => serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": media_type::OCI_INDEX,
                    "manifests": [],
                }),
            };
            let listed = |index: &serde_json::Value| {
                index["manifests"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|e| e["digest"] == entry["digest"]))
            };
            if listed(&index) {
                return Ok(());
            }
            match index["manifests"].as_array_mut() {
                Some(manifests) => manifests.push(entry.clone()),
                None => {
                    return Err(self.failed(
                        "update the referrers tag of",
                        Failure::Refused(format!("its `{tag}` is not an image index")),
                    ))
                }
            }
            let listing = store.put_json(media_type::OCI_INDEX, "a referrers index", &index)?;
            self.put_manifest(&tag, store, &listing)?;
            if self
                .fallback_listing(&tag, store)?
                .is_some_and(|index| listed(&index))
            {
                return Ok(());
            }
        }
        Err(self.failed(
            "update the referrers tag of",
            Failure::Refused(format!(
                "`{tag}` lost the entry {} three times: another client keeps rewriting it",
                referrer.digest
            )),
        ))
    }

    /// The index under a fallback tag, as JSON (so no field another client wrote is lost);
    /// `None` when the tag does not exist. Asked with `HEAD` first: an index `store` holds (one
    /// this session pushed, or an earlier push from the same store) is not fetched again.
    fn fallback_listing(&self, tag: &str, store: &BlobStore) -> Result<Option<serde_json::Value>> {
        let (status, named) = self.head_manifest(tag, media_type::OCI_INDEX)?;
        if status == 404 {
            return Ok(None);
        }
        let bytes = match named.and_then(|digest| stored_bytes(store, &digest).ok()) {
            Some(bytes) => bytes,
            None => match self.get_fallback_listing(tag)? {
                Some(bytes) => bytes,
                None => return Ok(None),
            },
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::MalformedJson {
                what: format!("the referrers index `{tag}` of {}", self.repository),
                source,
            })
    }

    /// `GET` of the index under a fallback tag; `None` when the tag does not exist.
    fn get_fallback_listing(&self, tag: &str) -> Result<Option<Vec<u8>>> {
        let url = self.url(&format!("manifests/{tag}"));
        retry(&self.limits, || {
            let mut response = self.exchange(&url, &mut |auth| {
                with_auth(self.agent.get(&url), auth)
                    .header("Accept", media_type::OCI_INDEX)
                    .call()
            })?;
            match expect(&mut response, &[200, 404])? {
                200 => read_document(&mut response, &self.limits).map(Some),
                _ => Ok(None),
            }
        })
        .map_err(|failure| self.failed("fetch the referrers tag from", failure))
    }

    /// Points each of `tags` (each once) at `target`, which must be pushed already; returns
    /// them as `REPOSITORY:TAG`.
    fn tag(&self, store: &BlobStore, target: &Descriptor, tags: &[String]) -> Result<Vec<String>> {
        let mut pushed = Vec::new();
        for tag in tags.iter().collect::<std::collections::BTreeSet<_>>() {
            if self.manifest_digest(tag, &target.media_type)? != Some(target.digest) {
                self.put_manifest(tag, store, target)?;
            }
            pushed.push(format!("{}:{tag}", self.repository));
        }
        Ok(pushed)
    }

    fn blob_exists(&self, digest: &Digest) -> Result<bool> {
        let url = self.url(&format!("blobs/{digest}"));
        retry(&self.limits, || {
            let mut response = self.exchange(&url, &mut |auth| {
                with_auth(self.agent.head(&url), auth).call()
            })?;
            Ok(expect(&mut response, &[200, 404])? == 200)
        })
        .map_err(|failure| self.failed("check a blob at", failure))
    }

    /// `POST …/blobs/uploads/`, asking to mount `digest` from `mount_from` if there is one.
    fn start_upload(&self, digest: &Digest) -> Result<Upload, Failure> {
        let url = self.url("blobs/uploads/");
        let mount = self.mount_from.as_ref();
        let mut response = self.exchange(&url, &mut |auth| {
            let mut request = with_auth(self.agent.post(&url), auth);
            if let Some(from) = mount {
                request = request
                    .query("mount", digest.to_string())
                    .query("from", &from.name);
            }
            request.header("Content-Length", "0").send_empty()
        })?;
        match expect(&mut response, &[201, 202])? {
            201 if mount.is_some() => Ok(Upload::Mounted),
            _ => header(&response, "location")
                .map(|location| Upload::At(resolve_location(&url, &location)))
                .ok_or_else(|| Failure::Refused("it started an upload without a location".into())),
        }
    }

    /// Streams `blob` from `store` to the upload at `location` (`PATCH`), then closes it with
    /// the digest (`PUT`), as Docker does. The blob is checked against its digest as it is read,
    /// and `on_bytes` hears of each chunk as it goes, and stops it by returning `false`.
    fn upload(
        &self,
        location: &str,
        blob: &Descriptor,
        store: &BlobStore,
        on_bytes: &mut dyn FnMut(u64) -> bool,
    ) -> Result<(), Failure> {
        let mut response = self.exchange(location, &mut |auth| {
            let reader = store
                .reader(blob)
                .map_err(|e| ureq::Error::Io(io::Error::other(e)))?;
            let mut body = Counted {
                inner: Paced::new(reader, self.limits),
                on_bytes: &mut *on_bytes,
            };
            with_auth(self.agent.patch(location), auth)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Length", blob.size.to_string())
                .send(SendBody::from_reader(&mut body))
        })?;
        expect(&mut response, &[202, 204])?;
        let location = header(&response, "location")
            .map(|l| resolve_location(location, &l))
            .unwrap_or_else(|| location.to_owned());
        let separator = if location.contains('?') { '&' } else { '?' };
        let close = format!("{location}{separator}digest={}", blob.digest);
        let mut response = self.exchange(&close, &mut |auth| {
            with_auth(self.agent.put(&close), auth)
                .header("Content-Length", "0")
                .send_empty()
        })?;
        expect(&mut response, &[201, 204])?;
        Ok(())
    }

    fn put_manifest(
        &self,
        reference: &str,
        store: &BlobStore,
        manifest: &Descriptor,
    ) -> Result<()> {
        let bytes = store.read(manifest)?;
        let url = self.url(&format!("manifests/{reference}"));
        retry(&self.limits, || {
            let mut response = self.exchange(&url, &mut |auth| {
                with_auth(self.agent.put(&url), auth)
                    .header("Content-Type", &manifest.media_type)
                    .send(&bytes[..])
            })?;
            expect(&mut response, &[200, 201, 202, 204]).map(drop)
        })
        .map_err(|failure| self.failed("push a manifest to", failure))
    }
}

/// A body that tells how much of it has been read, and stops when told to.
struct Counted<'a, R> {
    inner: R,
    on_bytes: &'a mut dyn FnMut(u64) -> bool,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        match (self.on_bytes)(read as u64) {
            true => Ok(read),
            false => Err(io::Error::other("another transfer failed first")),
        }
    }
}

/// Reads `body` into the writer of `into` until it ends, counting what it holds; a blob is cut
/// off as soon as it exceeds `descriptor`'s size. `on_bytes` hears of each chunk stored and
/// stops the transfer by returning `false`.
fn receive(
    body: &mut impl Read,
    (writer, received): (&mut BlobWriter, &mut u64),
    descriptor: &Descriptor,
    store: &BlobStore,
    on_bytes: &mut dyn FnMut(u64) -> bool,
) -> Result<(), Failure> {
    let mut chunk = vec![0; CHUNK];
    loop {
        let read = body.read(&mut chunk).map_err(Failure::Io)?;
        if read == 0 {
            return Ok(());
        }
        *received += read as u64;
        if *received > descriptor.size {
            return Err(Failure::Refused(format!(
                "it sent more than the {} bytes of blob {}",
                descriptor.size, descriptor.digest
            )));
        }
        writer
            .write_all(&chunk[..read])
            .map_err(|e| Failure::local(Error::io("write to", store.root())(e)))?;
        if !on_bytes(read as u64) {
            return Err(Failure::Cancelled);
        }
    }
}

/// The `Content-Range` of a 206 answer, `bytes FIRST-LAST/SIZE`, as where the part starts and
/// the size of the whole (checked to end where the whole does); `None` when it is not that.
fn content_range(response: &Response<Body>) -> Option<(u64, u64)> {
    parse_content_range(&header(response, "content-range")?)
}

fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let (range, size) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last, size): (u64, u64, u64) =
        (first.parse().ok()?, last.parse().ok()?, size.parse().ok()?);
    (first <= last && last + 1 == size).then_some((first, size))
}

/// Whether a token server at `server` (`host[:port]`) may be asked over plain HTTP for
/// `registry`: only when the registry may be, and the token server is this machine or the
/// registry itself.
fn plain_token_server(server: &str, registry: &str, plain_http_allowed: bool) -> bool {
    let loopback = Repository::parse(&format!("{server}/token")).is_ok_and(|s| s.is_loopback());
    plain_http_allowed && (loopback || server == registry)
}

/// A `Location` header's URL, resolved against the URL of the request it answered, as RFC 3986
/// (section 5.2) resolves a reference: absolute, network-path (`//host/…`), absolute-path
/// (`/v2/…`), query-only (`?state=…`) or relative to the request's directory (`uuid?state=…`).
/// Dot segments are left as they are: no registry sends them.
fn resolve_location(request: &str, location: &str) -> String {
    let scheme_end = request.find("://").map_or(0, |i| i + 3);
    let origin_end = request[scheme_end..]
        .find('/')
        .map_or(request.len(), |i| scheme_end + i);
    let path = request.split(['?', '#']).next().unwrap_or(request);
    let has_scheme = location.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if has_scheme {
        location.to_owned()
    } else if location.starts_with("//") {
        format!("{}{location}", &request[..scheme_end.saturating_sub(2)])
    } else if location.starts_with('/') {
        format!("{}{location}", &request[..origin_end])
    } else if location.starts_with('?') || location.is_empty() {
        format!("{path}{location}")
    } else {
        let directory = &path[..path
            .rfind('/')
            .map_or(path.len(), |i| i + 1)
            .max(origin_end)];
        let separator = if directory.ends_with('/') { "" } else { "/" };
        format!("{directory}{separator}{location}")
    }
}

/// Whether `url` is on `origin` (`https://host[:port]`): the same scheme, host and port, the
/// default port written or not.
fn same_origin(url: &str, origin: &str) -> bool {
    let parts = |text: &str| {
        let uri: ureq::http::Uri = text.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default = if scheme == "https" { 443 } else { 80 };
        let host = uri.host()?.to_ascii_lowercase();
        Some((scheme, host, uri.port_u16().unwrap_or(default)))
    };
    matches!((parts(url), parts(origin)), (Some(a), Some(b)) if a == b)
}

fn redirected_challenge(response: &Response<Body>) -> Failure {
    Failure::Refused(format!(
        "it redirected to `{}`, which asked for credentials; they are for the registry only, \
         and are not sent there",
        response.get_uri().host().unwrap_or_default()
    ))
}

/// Whether a plain HTTP probe's `failure` shows a registry speaking plain HTTP, busy: it answered
/// 429 or 5xx, or stalled. (A TLS server asked in plain HTTP answers 400, or hangs up, at once.)
fn speaks_plain_http(failure: &Failure) -> bool {
    match failure {
        Failure::Status { status, .. } => transport::is_transient_status(*status),
        Failure::RetryAfter { .. } | Failure::Transport(ureq::Error::Timeout(_)) => true,
        _ => false,
    }
}

/// A failure of the TLS handshake (a certificate not trusted, or not TLS at all), as opposed to
/// one of the connection.
fn is_tls_failure(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => true,
        ureq::Error::Io(error) => error.kind() == io::ErrorKind::InvalidData,
        _ => false,
    }
}

fn with_auth<B>(request: ureq::RequestBuilder<B>, auth: Option<&str>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(value) => request.header("Authorization", value),
        None => request,
    }
}

fn challenge_of(response: &Response<Body>) -> Option<Challenge> {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(Challenge::parse)
        // Prefer a token over sending a password with every request.
        .max_by_key(|challenge| matches!(challenge, Challenge::Bearer { .. }))
}

fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The status, if it is one of `expected`; else the registry's own account of the failure.
fn expect(response: &mut Response<Body>, expected: &[u16]) -> Result<u16, Failure> {
    let status = response.status().as_u16();
    if expected.contains(&status) {
        Ok(status)
    } else {
        Err(Failure::Status {
            status,
            detail: error_detail(response),
        })
    }
}

/// The `errors` a registry sends with a failure (`MANIFEST_UNKNOWN: manifest unknown`), read
/// from the first 64 KiB of its answer.
fn error_detail(response: &mut Response<Body>) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let mut bytes = Vec::new();
    let limits = Limits {
        stall: std::time::Duration::from_secs(5),
        ..Limits::default()
    };
    // What is said of a failure is worth a few seconds, no more.
    let _ = Paced::new(response.body_mut().as_reader(), limits)
        .take(64 << 10)
        .read_to_end(&mut bytes);
    match serde_json::from_slice::<Errors>(&bytes) {
        Ok(Errors { errors }) => errors
            .iter()
            .map(|e| match (&e.code, &e.message) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(text), None) | (None, Some(text)) => text.clone(),
                (None, None) => String::new(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => String::new(),
    }
}

/// A manifest or index, refused as soon as it is known to exceed [`MAX_DOCUMENT_BYTES`].
fn read_document(response: &mut Response<Body>, limits: &Limits) -> Result<Vec<u8>, Failure> {
    let too_large = |size: String| {
        Failure::Refused(format!(
            "it sent a manifest of {size} bytes, more than the {MAX_DOCUMENT_BYTES} any manifest \
             should have"
        ))
    };
    if let Some(length) = response
        .body()
        .content_length()
        .filter(|l| *l > MAX_DOCUMENT_BYTES)
    {
        return Err(too_large(length.to_string()));
    }
    let mut bytes = Vec::new();
    Paced::new(response.body_mut().as_reader(), *limits)
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(Failure::Io)?;
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(too_large("more than that".into()));
    }
    Ok(bytes)
}

/// The bytes of blob `digest` in `store`, read verified.
fn stored_bytes(store: &BlobStore, digest: &Digest) -> Result<Vec<u8>> {
    let path = store.blob_path(digest);
    let size = std::fs::metadata(&path)
        .map_err(Error::io("read", &path))?
        .len();
    store.read(&Descriptor::new("", *digest, size))
}

/// The manifest or index `digest` in `store`, described from its own bytes, which are read
/// verified (an entry that does not match is an error, not trusted); `None` when `store` lacks
/// it or it is neither.
pub(super) fn stored_manifest(store: &BlobStore, digest: &Digest) -> Result<Option<Descriptor>> {
    let Ok(metadata) = std::fs::metadata(store.blob_path(digest)) else {
        return Ok(None);
    };
    let mut descriptor = Descriptor::new("", *digest, metadata.len());
    let bytes = store.read(&descriptor)?;
    Ok(media_type_of(&bytes).map(|media_type| {
        descriptor.media_type = media_type;
        descriptor
    }))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_its_scheme_host_and_port() {
        let origin = "https://registry.example.com";
        for same in [
            "https://registry.example.com/v2/",
            "https://REGISTRY.example.com:443/v2/x",
        ] {
            assert!(same_origin(same, origin), "{same}");
        }
        for other in [
            "http://registry.example.com/v2/",
            "https://registry.example.com:4443/v2/",
            "https://registry.example.com.evil/v2/",
            "https://cdn.example.com/blob",
            "not a url",
        ] {
            assert!(!same_origin(other, origin), "{other}");
        }
        assert!(same_origin(
            "http://127.0.0.1:5000/v2/",
            "http://127.0.0.1:5000"
        ));
        assert!(!same_origin(
            "http://127.0.0.1:50001/v2/",
            "http://127.0.0.1:5000"
        ));
    }

    #[test]
    fn a_content_range_must_run_to_the_end_of_the_blob() {
        assert_eq!(parse_content_range("bytes 100-999/1000"), Some((100, 1000)));
        assert_eq!(parse_content_range("bytes 0-0/1"), Some((0, 1)));
        for wrong in [
            "bytes 100-998/1000",
            "bytes 100-999/*",
            "bytes 500-100/1000",
            "items 100-999/1000",
            "bytes 100-/1000",
            "bytes */1000",
        ] {
            assert_eq!(parse_content_range(wrong), None, "{wrong}");
        }
    }

    #[test]
    fn a_location_is_resolved_against_the_request_it_answers() {
        let patch = "http://127.0.0.1:5000/v2/app/blobs/uploads/uuid?_state=1";
        for (location, resolved) in [
            (
                "uuid?_state=2",
                "http://127.0.0.1:5000/v2/app/blobs/uploads/uuid?_state=2",
            ),
            (
                "?_state=2",
                "http://127.0.0.1:5000/v2/app/blobs/uploads/uuid?_state=2",
            ),
            (
                "/v2/app/blobs/uploads/uuid?_state=2",
                "http://127.0.0.1:5000/v2/app/blobs/uploads/uuid?_state=2",
            ),
            ("//cdn.example/up/1", "http://cdn.example/up/1"),
            ("https://cdn.example/up/1", "https://cdn.example/up/1"),
        ] {
            assert_eq!(resolve_location(patch, location), resolved, "{location}");
        }
        assert_eq!(
            resolve_location("https://reg.example/v2/app/blobs/uploads/", "uuid"),
            "https://reg.example/v2/app/blobs/uploads/uuid"
        );
        assert_eq!(
            resolve_location("https://reg.example", "v2/x"),
            "https://reg.example/v2/x"
        );
    }

    #[test]
    fn a_plain_http_token_server_is_this_machine_or_the_registry_itself() {
        assert!(plain_token_server("127.0.0.1:9000", "127.0.0.1:5000", true));
        assert!(plain_token_server("localhost:9000", "127.0.0.1:5000", true));
        assert!(plain_token_server("reg.lan:5000", "reg.lan:5000", true));
        assert!(!plain_token_server(
            "auth.remote.example",
            "127.0.0.1:5000",
            true
        ));
        assert!(!plain_token_server(
            "127.0.0.1:9000",
            "registry.example.com",
            false
        ));
    }
}
