//! Platforms (OS, architecture, variant) in Go's names, and the mapping from Rust target triples.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What an image runs on, as an image index and a config name it: `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture in Go's names, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// Version of the operating system the image needs (`os.version`), mostly set for
    /// Windows, e.g. `10.0.17763.1040`.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Features of the operating system the image needs (`os.features`), e.g. `win32k`.
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    /// CPU variant, e.g. `v8` for `arm64`, `v7` for `arm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// A platform with no OS version or features; `linux/arm/v7` is
    /// `Platform::new("linux", "arm", Some("v7"))`.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: architecture.to_owned(),
            os: os.to_owned(),
            os_version: None,
            os_features: Vec::new(),
            variant: variant.map(str::to_owned),
        }
    }

    /// The platform a Rust target triple builds for, or `None` for a triple we cannot map.
    pub fn from_rust_target(triple: &str) -> Option<Platform> {
        let mut parts = triple.split('-');
        let arch = parts.next()?;
        let rest: Vec<&str> = parts.collect();
        let os = rest.iter().find_map(|part| go_os(part))?;
        let abi = rest.last().copied().unwrap_or_default();
        let (architecture, variant) = go_arch(arch, abi)?;
        Some(Platform::new(os, architecture, variant))
    }
}

impl Platform {
    /// How well an image for `self` runs where `wanted` is asked for: `None` if it does not,
    /// else a rank where lower is better (an exact variant first, then the usual fallbacks:
    /// arm64 with or without `v8`, arm v7 → v6 → v5, amd64 without a variant or `v1`).
    pub fn fit(&self, wanted: &Platform) -> Option<u8> {
        if self.os != wanted.os || self.architecture != wanted.architecture {
            return None;
        }
        let have = self.variant.as_deref();
        let want = wanted.variant.as_deref();
        if have == want {
            return Some(0);
        }
        match (self.architecture.as_str(), want, have) {
            ("arm64", None | Some("v8"), None | Some("v8")) => Some(1),
            ("amd64", None | Some("v1"), None | Some("v1")) => Some(1),
            ("arm", Some(want), Some(have)) => {
                let level = |v: &str| v.strip_prefix('v').and_then(|n| n.parse::<u8>().ok());
                let (want, have) = (level(want)?, level(have)?);
                (have < want && have >= 5).then(|| want - have)
            }
            ("arm", None, Some(_)) | ("arm", Some(_), None) => Some(9),
            _ => None,
        }
    }
}

/// `linux/arm64/v8` style, as `docker --platform` spells it.
impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

fn go_os(part: &str) -> Option<&'static str> {
    Some(match part {
        "linux" => "linux",
        "windows" => "windows",
        "darwin" | "macos" => "darwin",
        "freebsd" => "freebsd",
        "netbsd" => "netbsd",
        "openbsd" => "openbsd",
        "illumos" => "illumos",
        "solaris" => "solaris",
        "android" => "android",
        _ => return None,
    })
}

fn go_arch<'a>(arch: &str, abi: &str) -> Option<(&'a str, Option<&'a str>)> {
    Some(match arch {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", None),
        "i686" | "i586" | "i386" => ("386", None),
        "armv7" | "thumbv7neon" => ("arm", Some("v7")),
        "armv5te" => ("arm", Some("v5")),
        "armv6" => ("arm", Some("v6")),
        // Rust's plain `arm-` triples target ARMv6 (the Raspberry Pi 1 family).
        "arm" if abi.starts_with("gnueabi") || abi.starts_with("musleabi") => ("arm", Some("v6")),
        "powerpc64le" => ("ppc64le", None),
        "powerpc64" => ("ppc64", None),
        "powerpc" => ("ppc", None),
        "s390x" => ("s390x", None),
        "riscv64gc" | "riscv64" => ("riscv64", None),
        "loongarch64" => ("loong64", None),
        "mips64el" => ("mips64le", None),
        "mips64" => ("mips64", None),
        "mipsel" => ("mipsle", None),
        "mips" => ("mips", None),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_triples_map_to_go_platforms() {
        let cases = [
            ("x86_64-unknown-linux-gnu", "linux/amd64"),
            ("x86_64-unknown-linux-musl", "linux/amd64"),
            ("aarch64-unknown-linux-gnu", "linux/arm64"),
            ("armv7-unknown-linux-gnueabihf", "linux/arm/v7"),
            ("thumbv7neon-unknown-linux-gnueabihf", "linux/arm/v7"),
            ("arm-unknown-linux-gnueabihf", "linux/arm/v6"),
            ("arm-unknown-linux-musleabihf", "linux/arm/v6"),
            ("arm-unknown-linux-gnueabi", "linux/arm/v6"),
            ("armv5te-unknown-linux-gnueabi", "linux/arm/v5"),
            ("i686-unknown-linux-gnu", "linux/386"),
            ("i586-unknown-linux-gnu", "linux/386"),
            ("powerpc64le-unknown-linux-gnu", "linux/ppc64le"),
            ("powerpc64-unknown-linux-gnu", "linux/ppc64"),
            ("powerpc-unknown-linux-gnu", "linux/ppc"),
            ("s390x-unknown-linux-gnu", "linux/s390x"),
            ("riscv64gc-unknown-linux-gnu", "linux/riscv64"),
            ("loongarch64-unknown-linux-gnu", "linux/loong64"),
            ("mips64el-unknown-linux-gnuabi64", "linux/mips64le"),
            ("mips64-unknown-linux-gnuabi64", "linux/mips64"),
            ("mipsel-unknown-linux-gnu", "linux/mipsle"),
            ("mips-unknown-linux-gnu", "linux/mips"),
            ("x86_64-pc-windows-msvc", "windows/amd64"),
            ("aarch64-apple-darwin", "darwin/arm64"),
            ("x86_64-unknown-freebsd", "freebsd/amd64"),
        ];
        for (triple, expected) in cases {
            let platform =
                Platform::from_rust_target(triple).unwrap_or_else(|| panic!("{triple} not mapped"));
            assert_eq!(platform.to_string(), expected, "{triple}");
        }
    }

    #[test]
    fn unknown_triples_are_not_guessed() {
        for triple in [
            "wasm32-unknown-unknown",
            "x86_64-unknown-none",
            "sparc64-unknown-linux-gnu",
            "nonsense",
        ] {
            assert_eq!(Platform::from_rust_target(triple), None, "{triple}");
        }
    }

    #[test]
    fn fallbacks_pick_the_nearest_variant() {
        let p = |os, arch, variant| Platform::new(os, arch, variant);
        let arm64 = p("linux", "arm64", None);
        assert_eq!(p("linux", "arm64", Some("v8")).fit(&arm64), Some(1));
        assert_eq!(p("linux", "arm64", None).fit(&arm64), Some(0));
        let armv7 = p("linux", "arm", Some("v7"));
        assert_eq!(p("linux", "arm", Some("v7")).fit(&armv7), Some(0));
        assert!(
            p("linux", "arm", Some("v6")).fit(&armv7) < p("linux", "arm", Some("v5")).fit(&armv7)
        );
        assert_eq!(
            p("linux", "arm", Some("v7")).fit(&p("linux", "arm", Some("v6"))),
            None,
            "v7 does not run on v6"
        );
        assert_eq!(p("linux", "amd64", None).fit(&arm64), None);
        assert_eq!(p("windows", "arm64", None).fit(&arm64), None);
        assert_eq!(
            p("linux", "amd64", Some("v3")).fit(&p("linux", "amd64", None)),
            None
        );
    }

    #[test]
    fn os_fields_are_spelled_with_dots() {
        let mut platform = Platform::new("windows", "amd64", None);
        platform.os_version = Some("10.0.20348.1".into());
        platform.os_features = vec!["win32k".into()];
        assert_eq!(
            serde_json::to_string(&platform).unwrap(),
            concat!(
                r#"{"architecture":"amd64","os":"windows","#,
                r#""os.version":"10.0.20348.1","os.features":["win32k"]}"#
            )
        );
    }
}
