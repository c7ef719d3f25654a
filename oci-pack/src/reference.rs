//! Image references in Docker's grammar (distribution's `reference` package), the one parser for
//! every name this project reads: the tags it writes (`name:tag`), the bases it pulls and the
//! repositories it pushes to (`[host[:port]/]path[:tag][@digest]`, Docker Hub's short names
//! normalised as Docker does). So a name we write is a name every loader reads, and a name
//! Docker accepts (`myreg:5000/app:1`, `[::1]:5000/app`) is one we accept.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::Error;

/// A tag to write: `[registry/]repository:tag`, the tag required.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    /// `registry.example.com/team/app`, or just `app`.
    pub name: String,
    /// The tag part, e.g. `1.0` or `latest`.
    pub tag: String,
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Reference, Error> {
        let parts = Parts::parse(s).map_err(|reason| invalid(s, reason))?;
        match (parts.tag, parts.digest) {
            (_, Some(_)) => Err(invalid(s, "a tag to write has no `@DIGEST`")),
            (None, None) => Err(invalid(s, "a tag is needed, as in `name:tag`")),
            (Some(tag), None) => Ok(Reference {
                name: parts.name.to_owned(),
                tag: tag.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// A repository of a registry: `ghcr.io/team/app`, `127.0.0.1:5000/app`, `[::1]:5000/app`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Repository {
    /// `host[:port]`, as written (`docker.io` for Docker Hub).
    pub registry: String,
    /// The path within it: `team/app`, `library/debian`.
    pub name: String,
}

impl Repository {
    /// A push destination, `HOST[:PORT]/REPOSITORY`: the registry is required (we do not guess
    /// Docker Hub), and tags come from the image, not from here.
    pub fn parse(text: &str) -> Result<Repository, Error> {
        let parts = Parts::parse(text).map_err(|reason| invalid(text, reason))?;
        let Some(domain) = parts.domain else {
            return Err(invalid(
                text,
                "the first part must be a registry host, as in `registry.example.com/app`",
            ));
        };
        if parts.tag.is_some() || parts.digest.is_some() {
            return Err(invalid(
                text,
                "a repository has no `:TAG` or `@DIGEST`; the tags come from the image's `tags`",
            ));
        }
        Ok(Repository {
            registry: canonical_registry(domain).to_owned(),
            name: parts.path.to_owned(),
        })
    }

    /// The registry's host, without its port or brackets.
    pub fn host(&self) -> &str {
        host_of(&self.registry)
    }

    /// Whether the registry is this machine: `localhost`, or a loopback address (127.0.0.0/8,
    /// `::1`), parsed as an address, never judged by how its name starts.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether plain HTTP may be tried: with a loopback registry (as Docker allows unasked), or
    /// one the user named in `insecure` (`--insecure-registry`).
    pub fn allows_plain_http(&self, insecure: &[String]) -> bool {
        self.is_loopback() || insecure.contains(&self.registry)
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

/// An image in a registry, as a `base` names it: `docker://HOST/REPO:TAG`, `…@sha256:…`, or the
/// same without `docker://`, with Docker Hub's names normalised as Docker does
/// (`debian:bookworm` → `docker.io/library/debian:bookworm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteImage {
    /// Where the image is, e.g. `docker.io/library/debian`.
    pub repository: Repository,
    /// `latest` when neither a tag nor a digest is given.
    pub tag: Option<String>,
    /// The manifest or index pinned by `@sha256:…`; when given, it is what is pulled, and a
    /// tag beside it is only a label.
    pub digest: Option<Digest>,
}

impl RemoteImage {
    /// Parses a base as Docker would, e.g. `debian:bookworm`, `ghcr.io/team/app@sha256:…`.
    pub fn parse(text: &str) -> Result<RemoteImage, Error> {
        let bare = text.strip_prefix("docker://").unwrap_or(text);
        let parts = Parts::parse(bare).map_err(|reason| invalid(text, reason))?;
        let (registry, name) = match parts.domain {
            Some(domain) => (canonical_registry(domain), parts.path.to_owned()),
            None if parts.path.contains('/') => (DOCKER_HUB, parts.path.to_owned()),
            None => (DOCKER_HUB, format!("library/{}", parts.path)),
        };
        // As Docker counts it: the normalised name (`docker.io/library/…`) is what is limited.
        if registry.len() + 1 + name.len() > 255 {
            return Err(invalid(
                text,
                "the name is longer than 255 characters (with its registry)",
            ));
        }
        let digest = parts.digest.map(str::parse).transpose()?;
        let tag = match parts.tag {
            Some(tag) => Some(tag.to_owned()),
            None => digest.is_none().then(|| "latest".to_owned()),
        };
        Ok(RemoteImage {
            repository: Repository {
                registry: registry.to_owned(),
                name,
            },
            tag,
            digest,
        })
    }
}

impl fmt::Display for RemoteImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

/// Docker Hub, as references name it.
pub const DOCKER_HUB: &str = "docker.io";

/// `index.docker.io` is an old name of Docker Hub; Docker rewrites it, so do we.
fn canonical_registry(domain: &str) -> &str {
    if domain == "index.docker.io" {
        DOCKER_HUB
    } else {
        domain
    }
}

/// `host` of `host[:port]`, `::1` of `[::1]:5000`.
fn host_of(registry: &str) -> &str {
    if let Some(bracketed) = registry.strip_prefix('[') {
        return bracketed.split_once(']').map_or(bracketed, |(ip, _)| ip);
    }
    registry.split_once(':').map_or(registry, |(host, _)| host)
}

fn invalid(text: &str, reason: &str) -> Error {
    Error::InvalidReference {
        reference: text.to_owned(),
        reason: reason.to_owned(),
    }
}

/// A reference split as Docker splits it, each part checked.
struct Parts<'a> {
    /// Everything before `:TAG` and `@DIGEST`.
    name: &'a str,
    domain: Option<&'a str>,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

impl<'a> Parts<'a> {
    fn parse(text: &'a str) -> Result<Parts<'a>, &'static str> {
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (text, None),
        };
        // A tag is what follows the last `:` after the last `/` (a port's `:` comes before it).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        // Docker's rule: the first component is a registry if it has a `.` or a `:`, is
        // `localhost`, or has capitals (which a repository may not).
        let (domain, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                (Some(first), path)
            }
            _ => (None, name),
        };
        if domain.is_some_and(|domain| !valid_domain(domain)) {
            return Err(
                "the registry must be a host name or an IP address, with an optional \
                        `:PORT` (an IPv6 address in brackets, as in `[::1]:5000`)",
            );
        }
        if !path.split('/').all(valid_path_component) {
            return Err(
                "a repository name is lower-case letters and digits, separated by `/`, \
                        `.`, `_`, `__` or `-`",
            );
        }
        if name.len() > 255 {
            return Err("the name is longer than 255 characters");
        }
        if tag.is_some_and(|tag| !valid_tag(tag)) {
            return Err(
                "a tag is 1 to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
            );
        }
        if digest.is_some_and(|digest| digest.parse::<Digest>().is_err()) {
            return Err("a digest is `sha256:` and 64 lower-case hexadecimal digits");
        }
        Ok(Parts {
            name,
            domain,
            path,
            tag,
            digest,
        })
    }
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    (1..=128).contains(&tag.len())
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-')
}

/// `host[:port]`, where a host is a DNS name, an IPv4 address or a bracketed IPv6 address.
fn valid_domain(domain: &str) -> bool {
    let (host_ok, port) = match domain.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((ip, port)) => (ip.parse::<Ipv6Addr>().is_ok(), port),
            None => return false,
        },
        None => {
            let end = domain.find(':').unwrap_or(domain.len());
            (domain[..end].split('.').all(valid_label), &domain[end..])
        }
    };
    let port_ok = match port.strip_prefix(':') {
        Some(digits) => {
            (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        }
        None => port.is_empty(),
    };
    host_ok && port_ok
}

/// `[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        if !(matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_accept_what_docker_accepts() {
        for (input, name, tag) in [
            ("app:1.0.0", "app", "1.0.0"),
            ("my_app:latest", "my_app", "latest"),
            ("team/my-app:v1_2", "team/my-app", "v1_2"),
            ("localhost:5000/app:dev", "localhost:5000/app", "dev"),
            ("myreg:5000/app:1", "myreg:5000/app", "1"),
            ("[::1]:5000/app:1", "[::1]:5000/app", "1"),
            (
                "registry.example.com/a/b__c:1.0.0-rc.1",
                "registry.example.com/a/b__c",
                "1.0.0-rc.1",
            ),
            (
                "REGISTRY.Example.com/app:X",
                "REGISTRY.Example.com/app",
                "X",
            ),
        ] {
            let reference: Reference = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                (reference.name.as_str(), reference.tag.as_str()),
                (name, tag)
            );
            assert_eq!(reference.to_string(), input);
        }
    }

    #[test]
    fn tags_refuse_what_docker_refuses() {
        for input in [
            "app",
            "App:1",
            "app:",
            "app:.hidden",
            "app:-x",
            "my..app:1",
            "my___app:1",
            "_app:1",
            "app_:1",
            "team//app:1",
            "localhost:5000/app",
            &format!("app:{}", "t".repeat(129)),
            "app:tag with space",
            "bad_host.com:x/app:1",
            "host:123456/app:1",
            "[::1/app:1",
            "[not-an-ip]:5000/app:1",
            &format!("app:1@sha256:{}", "a".repeat(64)),
        ] {
            assert!(input.parse::<Reference>().is_err(), "{input} accepted");
        }
    }

    #[test]
    fn remote_images_are_normalised_as_docker_does() {
        let digest = format!("sha256:{}", "b".repeat(64));
        for (text, expected) in [
            ("debian:bookworm", "docker.io/library/debian:bookworm"),
            ("debian", "docker.io/library/debian:latest"),
            ("docker://team/app", "docker.io/team/app:latest"),
            ("index.docker.io/team/app", "docker.io/team/app:latest"),
            ("ghcr.io/org/app:1.2", "ghcr.io/org/app:1.2"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("myreg:5000/app:1", "myreg:5000/app:1"),
            ("[::1]:5000/app", "[::1]:5000/app:latest"),
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
        for bad in [
            "Debian",
            "app:-x",
            "app@sha256:nope",
            "docker://",
            "[::1]x/app",
        ] {
            assert!(RemoteImage::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn plain_http_is_for_real_loopback_and_named_registries_only() {
        let at = |text: &str| Repository::parse(text).unwrap();
        for loopback in [
            "127.0.0.1:5000/app",
            "127.1.2.3/app",
            "localhost:5000/app",
            "[::1]:5000/app",
        ] {
            assert!(at(loopback).allows_plain_http(&[]), "{loopback}");
        }
        for remote in [
            "registry.example.com/app",
            "127.attacker.example/app",
            "localhost.attacker.example/app",
            "[::2]:5000/app",
            "128.0.0.1/app",
        ] {
            assert!(!at(remote).allows_plain_http(&[]), "{remote}");
        }
        assert!(
            at("registry.internal:5000/app").allows_plain_http(&["registry.internal:5000".into()])
        );
        assert!(!at("registry.internal:5000/app").allows_plain_http(&["registry.internal".into()]));
    }

    #[test]
    fn a_push_destination_names_a_registry_and_no_tag() {
        assert_eq!(
            Repository::parse("myreg:5000/team/app").unwrap(),
            Repository {
                registry: "myreg:5000".into(),
                name: "team/app".into()
            }
        );
        assert_eq!(Repository::parse("[::1]:5000/app").unwrap().host(), "::1");
        for bad in ["team/app", "app", "ghcr.io/app:1", "ghcr.io/App"] {
            assert!(Repository::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
