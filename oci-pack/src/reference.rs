//! Image references of the form `[registry/]repository:tag`, checked against the grammar that
//! Docker and containers/image accept, so a tag we write is a tag every loader can read.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    /// `registry.example.com/team/app`, or just `app`.
    pub name: String,
    pub tag: String,
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Reference, Error> {
        let invalid = |reason: &str| Error::InvalidReference {
            reference: s.to_owned(),
            reason: reason.to_owned(),
        };
        let last_slash = s.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match s[last_slash..].rfind(':') {
            Some(i) => (&s[..last_slash + i], &s[last_slash + i + 1..]),
            None => return Err(invalid("a tag is needed, as in `name:tag`")),
        };
        if !valid_tag(tag) {
            return Err(invalid(
                "a tag is 1 to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
            ));
        }
        let mut components: Vec<&str> = name.split('/').collect();
        if components.len() > 1 && looks_like_registry(components[0]) {
            if !valid_registry(components[0]) {
                return Err(invalid(
                    "the registry must be a host name with an optional `:port`",
                ));
            }
            components.remove(0);
        }
        if !components.iter().all(|c| valid_path_component(c)) {
            return Err(invalid(
                "a repository name is lower-case letters and digits, \
                 separated by `/`, `.`, `_`, `__` or `-`",
            ));
        }
        if name.len() > 255 {
            return Err(invalid("the name is longer than 255 characters"));
        }
        Ok(Reference {
            name: name.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    (1..=128).contains(&tag.len())
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-')
}

/// Docker's rule: the first component is a registry if it has a `.` or a `:`, or is `localhost`.
fn looks_like_registry(component: &str) -> bool {
    component.contains(['.', ':']) || component == "localhost"
}

fn valid_registry(host_port: &str) -> bool {
    let (host, port) = host_port.split_once(':').unwrap_or((host_port, "0"));
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
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
    fn accepts_what_docker_accepts() {
        for (input, name, tag) in [
            ("app:1.0.0", "app", "1.0.0"),
            ("my_app:latest", "my_app", "latest"),
            ("team/my-app:v1_2", "team/my-app", "v1_2"),
            ("localhost:5000/app:dev", "localhost:5000/app", "dev"),
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
    fn refuses_what_docker_refuses() {
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
        ] {
            assert!(input.parse::<Reference>().is_err(), "{input} accepted");
        }
    }
}
