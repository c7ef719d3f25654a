//! HTTP for registries: one `ureq` agent (rustls on ring, the platform's trusted roots, so a
//! company CA in the system store or `SSL_CERT_FILE` works), limits that catch a stalled or
//! crawling connection, and redirects that are bounded and never carry credentials.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use ureq::config::RedirectAuthHeaders;
use ureq::tls::{RootCerts, TlsConfig};

use crate::error::Error;

/// How patient a transfer is, and how often a failure that may pass is tried again. The
/// defaults are cargo's own (`http.timeout`, `http.low-speed-limit`, `net.retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// A connection that sends or receives nothing for this long is given up.
    pub stall: Duration,
    /// A transfer averaging fewer bytes a second than this over a whole [`Self::stall`] period
    /// is given up too: a byte now and then does not keep a connection alive.
    pub low_speed: u64,
    /// How many times a failure that may pass (a refused or cut connection, a timeout, a 5xx or
    /// 429 answer) is tried again, after pauses of 0.5 s, 1 s, 2 s, …
    pub retries: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            stall: Duration::from_secs(30),
            low_speed: 10,
            retries: 3,
        }
    }
}

/// How many blobs move at once, pulled or pushed: enough to fill a link that one connection
/// does not, few enough not to look like an attack to a registry.
pub(super) const PARALLEL_TRANSFERS: usize = 3;

/// Redirects followed for one request (a blob is often sent from a CDN through one or two).
pub(super) const MAX_REDIRECTS: u32 = 5;

/// The agent for one registry. `loopback`: the registry is this machine, which no proxy can
/// reach (as Go's HTTP client decides, which Docker and podman use). `https_only`: no request,
/// nor any redirect, may use plain HTTP.
pub(super) fn agent(limits: &Limits, loopback: bool, https_only: bool) -> ureq::Agent {
    let proxy = if loopback {
        None
    } else {
        ureq::Proxy::try_from_env()
    };
    ureq::Agent::config_builder()
        .proxy(proxy)
        .http_status_as_error(false)
        .max_redirects(MAX_REDIRECTS)
        // A redirect elsewhere (a CDN, an attacker) never receives our Authorization header.
        .redirect_auth_headers(RedirectAuthHeaders::Never)
        .https_only(https_only)
        .timeout_connect(Some(limits.stall))
        // Headers sent a byte at a time would restart the per-read timeout forever.
        .timeout_recv_response(Some(limits.stall * 2))
        .timeout_per_read(Some(limits.stall))
        .timeout_per_write(Some(limits.stall))
        .user_agent(concat!("cargo-oci/", env!("CARGO_PKG_VERSION")))
        // Blobs are compressed already, and must arrive as the bytes their digest names.
        .accept_encoding("identity")
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .new_agent()
}

/// A body reader that gives up on a transfer slower than [`Limits::low_speed`]: each period of
/// [`Limits::stall`] must bring at least that many bytes a second.
pub(super) struct Paced<R> {
    inner: R,
    limits: Limits,
    period_start: Instant,
    period_bytes: u64,
}

impl<R> Paced<R> {
    pub(super) fn new(inner: R, limits: Limits) -> Paced<R> {
        Paced {
            inner,
            limits,
            period_start: Instant::now(),
            period_bytes: 0,
        }
    }
}

impl<R: Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.period_bytes += read as u64;
        let elapsed = self.period_start.elapsed();
        if read > 0 && elapsed >= self.limits.stall {
            let needed = (self.limits.low_speed as f64 * elapsed.as_secs_f64()) as u64;
            if self.period_bytes < needed {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the transfer is too slow: {} bytes in {} s, below the limit of {} \
                         bytes a second",
                        self.period_bytes,
                        elapsed.as_secs(),
                        self.limits.low_speed
                    ),
                ));
            }
            self.period_start = Instant::now();
            self.period_bytes = 0;
        }
        Ok(read)
    }
}

/// Whether a failed exchange may succeed if tried again: the connection failed, was cut or
/// timed out. A TLS or protocol failure, a bad address, too many redirects: no.
pub(super) fn is_transient(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Io(error) => is_transient_io(error),
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed => true,
        _ => false,
    }
}

pub(super) fn is_transient_io(error: &io::Error) -> bool {
    use io::ErrorKind as K;
    matches!(
        error.kind(),
        K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::TimedOut
            | K::Interrupted
    )
}

/// An answer worth another try: the registry is overloaded or briefly broken.
pub(super) fn is_transient_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// Runs `operation` until it succeeds, fails for good, or has been tried again
/// [`Limits::retries`] times after failures that may pass.
pub(super) fn retry<T>(
    limits: &Limits,
    mut operation: impl FnMut() -> Result<T, Failure>,
) -> Result<T, Failure> {
    let mut attempt = 0;
    loop {
        match operation() {
            Err(failure) if attempt < limits.retries && failure.is_transient() => {
                attempt += 1;
                std::thread::sleep(failure.pause(attempt, limits));
            }
            done => return done,
        }
    }
}

/// The pause before the `attempt`th try again: 0.5 s, doubled each time.
pub(super) fn pause(attempt: u32) -> Duration {
    Duration::from_millis(500) * 2u32.saturating_pow(attempt.saturating_sub(1).min(6))
}

/// Why an exchange with a registry failed.
#[derive(Debug)]
pub(super) enum Failure {
    Transport(ureq::Error),
    Io(std::io::Error),
    /// The registry answered, but not as asked.
    Status {
        status: u16,
        detail: String,
    },
    /// An answer that asked to be tried again after a while (429 or 503 with `Retry-After`).
    RetryAfter {
        wait: Duration,
        failure: Box<Failure>,
    },
    /// The registry refused us; nothing of the credentials is kept.
    AuthenticationFailed {
        status: u16,
        anonymous: bool,
    },
    /// We refused what the registry sent.
    Refused(String),
    /// A failure on this side (writing to the store), not the registry's.
    Local(Box<Error>),
    /// Another transfer failed first.
    Cancelled,
    /// A resumed transfer that failed so: the next try starts again from byte 0.
    StartOver(Box<Failure>),
}

impl Failure {
    pub(super) fn local(error: Error) -> Failure {
        Failure::Local(Box::new(error))
    }

    /// Whether another try may succeed: the failure may pass.
    pub(super) fn is_transient(&self) -> bool {
        match self {
            Failure::Transport(error) => is_transient(error),
            Failure::Io(error) => is_transient_io(error),
            Failure::Status { status, .. } => is_transient_status(*status),
            Failure::RetryAfter { failure, .. } => failure.is_transient(),
            Failure::StartOver(_) => true,
            _ => false,
        }
    }

    /// Whether a resumed transfer that failed so may still succeed from byte 0: the registry
    /// refused the range, answered another, or the whole did not hash to its digest.
    pub(super) fn is_worth_starting_over(&self) -> bool {
        match self {
            Failure::Status { status, .. } => !is_transient_status(*status),
            Failure::Refused(_) => true,
            Failure::Local(error) => matches!(**error, Error::BlobMismatch { .. }),
            _ => false,
        }
    }

    /// The pause before the `attempt`th try again: the usual one, or longer if the registry
    /// asked for it, though never longer than [`Limits::stall`].
    fn pause(&self, attempt: u32, limits: &Limits) -> Duration {
        match self {
            Failure::RetryAfter { wait, .. } => (*wait).min(limits.stall).max(pause(attempt)),
            _ => pause(attempt),
        }
    }

    /// The failure a `status` answer is, with the `Retry-After` (in seconds) it gave, if any.
    pub(super) fn answered(status: u16, detail: String, retry_after: Option<&str>) -> Failure {
        let failure = Failure::Status { status, detail };
        // An HTTP date is possible too, and rare from registries: the usual pause serves.
        let seconds = retry_after.and_then(|value| value.trim().parse::<u64>().ok());
        match seconds {
            Some(seconds) if status == 429 || status == 503 => Failure::RetryAfter {
                wait: Duration::from_secs(seconds),
                failure: Box::new(failure),
            },
            _ => failure,
        }
    }

    pub(super) fn into_error(self, registry: &str, action: &'static str) -> Error {
        match self {
            Failure::Local(error) => *error,
            Failure::StartOver(failure) => failure.into_error(registry, action),
            failure => Error::Registry {
                registry: registry.to_owned(),
                action,
                source: Box::new(failure),
            },
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transport(ureq::Error::Timeout(_)) => {
                f.write_str("the connection stalled: nothing came for too long")
            }
            Failure::Transport(ureq::Error::HostNotFound) => {
                f.write_str("its host name does not resolve")
            }
            Failure::Transport(ureq::Error::ConnectionFailed) => f.write_str("could not connect"),
            Failure::Transport(ureq::Error::TooManyRedirects) => {
                write!(f, "it redirected more than {} times", MAX_REDIRECTS)
            }
            Failure::Transport(ureq::Error::Io(error)) | Failure::Io(error) => {
                write!(f, "{error}")
            }
            Failure::Transport(error) => write!(f, "{error}"),
            Failure::Status { status, detail } => {
                let reason = ureq::http::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "it answered {status} {reason}")?;
                match detail.is_empty() {
                    true => Ok(()),
                    false => write!(f, " {detail}"),
                }
            }
            Failure::AuthenticationFailed { status, anonymous } => {
                let reason = ureq::http::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                if *anonymous {
                    write!(
                        f,
                        "authentication failed: no credentials were found for this registry, \
                         and it needs some ({status} {reason})"
                    )
                } else {
                    write!(
                        f,
                        "authentication failed: check the credentials for this registry \
                         ({status} {reason})"
                    )
                }
            }
            Failure::RetryAfter { failure, .. } | Failure::StartOver(failure) => {
                write!(f, "{failure}")
            }
            Failure::Refused(reason) => f.write_str(reason),
            Failure::Local(error) => write!(f, "{error}"),
            Failure::Cancelled => f.write_str("cancelled, as another transfer failed"),
        }
    }
}

/// Its message says all there is: no `source`, which would repeat it.
impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends one byte a call, after `pause`.
    struct Trickle {
        pause: Duration,
        left: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(self.pause);
            if self.left == 0 || buf.is_empty() {
                return Ok(0);
            }
            self.left -= 1;
            buf[0] = b'x';
            Ok(1)
        }
    }

    #[test]
    fn a_crawling_transfer_is_given_up_and_a_brisk_one_is_not() {
        let limits = Limits {
            stall: Duration::from_millis(1),
            low_speed: 1_000,
            retries: 0,
        };
        // A period that began two seconds ago and brought 1 byte.
        let mut slow = Paced::new(
            Trickle {
                pause: Duration::ZERO,
                left: 10,
            },
            Limits {
                stall: Duration::from_secs(1),
                ..limits
            },
        );
        slow.period_start -= Duration::from_secs(2);
        let error = slow.read(&mut [0; 8]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(error.to_string().contains("too slow"), "{error}");

        let mut brisk = Paced::new(&[7u8; 4096][..], limits);
        let mut all = Vec::new();
        brisk.read_to_end(&mut all).unwrap();
        assert_eq!(all.len(), 4096);
    }

    #[test]
    fn a_retry_after_is_waited_out_up_to_the_stall_limit() {
        let limits = Limits {
            stall: Duration::from_secs(30),
            ..Limits::default()
        };
        let busy = Failure::answered(503, String::new(), Some("7"));
        assert!(busy.is_transient());
        assert_eq!(busy.pause(1, &limits), Duration::from_secs(7));
        assert_eq!(busy.to_string(), "it answered 503 Service Unavailable");
        let patient = Failure::answered(429, String::new(), Some(" 3600 "));
        assert_eq!(patient.pause(1, &limits), limits.stall, "capped");
        let soon = Failure::answered(503, String::new(), Some("0"));
        assert_eq!(soon.pause(2, &limits), pause(2), "never sooner than usual");
        for (status, retry_after) in [
            (500, Some("7")),
            (503, Some("Wed, 21 Oct 2026 07:28:00 GMT")),
        ] {
            let failure = Failure::answered(status, String::new(), retry_after);
            assert!(matches!(failure, Failure::Status { .. }), "{failure:?}");
        }
    }

    #[test]
    fn only_failures_that_may_pass_are_tried_again() {
        let limits = Limits {
            retries: 2,
            ..Limits::default()
        };
        let mut calls = 0;
        let refused = retry(&limits, || -> Result<(), Failure> {
            calls += 1;
            Err(Failure::Status {
                status: 404,
                detail: String::new(),
            })
        });
        assert!(refused.is_err());
        assert_eq!(calls, 1, "a 404 is final");
        let mut calls = 0;
        let passed = retry(&limits, || {
            calls += 1;
            match calls {
                1 => Err(Failure::Status {
                    status: 503,
                    detail: String::new(),
                }),
                _ => Ok(calls),
            }
        });
        assert_eq!(passed.unwrap(), 2, "a 503 is tried again");
    }
}
