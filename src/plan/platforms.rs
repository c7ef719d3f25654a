//! `targets = "base"` and `--platform`: the Rust targets of a base image's platforms, those
//! that map to one, with the C library the metadata names (`target-libc`) or the base's own,
//! as its file tree shows it (a glibc `libc.so.6`, musl's `ld-musl-*.so.1`).

use std::path::Path;

use anyhow::{bail, Context as _, Result};
use oci_pack::{BlobStore, BuildCache, ImageSource, Platform, RegistryFetch};

use super::metadata::Libc;
use crate::registry::Registries;
use crate::shell::Shell;

/// Which of the base's platforms `--platform` picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// `all`, or `targets = "base"`.
    All,
    /// `linux/arm64,linux/amd64`.
    These(Vec<Platform>),
}

impl Wanted {
    /// `--platform`'s value: `all`, or platforms separated by commas (`os/arch[/variant]`).
    pub fn parse(text: &str) -> Result<Wanted> {
        if text == "all" {
            return Ok(Wanted::All);
        }
        text.split(',')
            .map(|one| {
                let parts: Vec<&str> = one.trim().split('/').collect();
                match parts.as_slice() {
                    [os, arch] if !os.is_empty() && !arch.is_empty() => {
                        Ok(Platform::new(os, arch, None))
                    }
                    [os, arch, variant] if !os.is_empty() && !arch.is_empty() => {
                        Ok(Platform::new(os, arch, Some(variant)))
                    }
                    _ => bail!(
                        "invalid `--platform {text}`: `{one}` is not a platform like \
                         `linux/arm64` or `linux/arm/v7` (or give `all`)"
                    ),
                }
            })
            .collect::<Result<_>>()
            .map(Wanted::These)
    }
}

/// The Rust target of a Linux platform, with `libc`; `None` for a platform no Rust target of
/// ours maps to.
pub fn triple_of(platform: &Platform, libc: Libc) -> Option<String> {
    if platform.os != "linux" {
        return None;
    }
    let (gnu, musl) = match (platform.architecture.as_str(), platform.variant.as_deref()) {
        ("amd64", _) => ("x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl"),
        ("arm64", _) => ("aarch64-unknown-linux-gnu", "aarch64-unknown-linux-musl"),
        ("arm", Some("v7") | None) => (
            "armv7-unknown-linux-gnueabihf",
            "armv7-unknown-linux-musleabihf",
        ),
        ("arm", Some("v6")) => (
            "arm-unknown-linux-gnueabihf",
            "arm-unknown-linux-musleabihf",
        ),
        ("386", _) => ("i686-unknown-linux-gnu", "i686-unknown-linux-musl"),
        ("ppc64le", _) => (
            "powerpc64le-unknown-linux-gnu",
            "powerpc64le-unknown-linux-musl",
        ),
        ("s390x", _) => ("s390x-unknown-linux-gnu", "s390x-unknown-linux-musl"),
        ("riscv64", _) => (
            "riscv64gc-unknown-linux-gnu",
            "riscv64gc-unknown-linux-musl",
        ),
        _ => return None,
    };
    Some(
        match libc {
            Libc::Gnu => gnu,
            Libc::Musl => musl,
        }
        .to_owned(),
    )
}

/// The targets to build on `base`: one per platform of it that `wanted` picks and maps to a
/// Rust target, in the base's order. `cache_root` is the build cache a registry base is read
/// into (the build reads it from there again).
pub fn targets_of_base(
    base: &ImageSource,
    libc: Option<Libc>,
    wanted: &Wanted,
    registries: &Registries,
    cache_root: &Path,
    shell: &Shell,
) -> Result<Vec<String>> {
    if *base == ImageSource::Scratch {
        bail!(
            "the targets are to be the base image's platforms (`targets = \"base\"` or \
             `--platform`), and the base is `scratch`, which has none: list them in `targets`, \
             or give `--target`"
        );
    }
    let scratch = tempfile::Builder::new()
        .prefix("cargo-oci-platforms-")
        .tempdir()
        .context("failed to create a temporary directory")?;
    let store = BlobStore::open(scratch.path())?;
    let cache;
    let access = match base {
        ImageSource::Registry(image) => {
            cache = BuildCache::open(cache_root)?;
            Some(registries.base_access(image, &cache)?)
        }
        _ => None,
    };
    let fetch = access.as_deref().map(|a| a as &dyn RegistryFetch);
    let context = || format!("failed to read the platforms of the base `{base}`");
    let platforms: Vec<Platform> = match (base, &access) {
        // The index alone, not every platform's layers.
        (ImageSource::Registry(image), Some(access)) => {
            let target = access.resolve(image).with_context(context)?;
            access
                .fetch(
                    image,
                    std::slice::from_ref(&target),
                    &mut oci_pack::NoProgress,
                )
                .with_context(context)?;
            let bytes = access.store().read(&target).with_context(context)?;
            match serde_json::from_slice::<oci_pack::ImageIndex>(&bytes) {
                Ok(index) if !index.manifests.is_empty() => index
                    .manifests
                    .iter()
                    .filter_map(|m| m.platform.clone())
                    .collect(),
                _ => open_all(base, &store, fetch, shell)?,
            }
        }
        _ => open_all(base, &store, fetch, shell)?,
    };
    let picked: Vec<&Platform> = platforms
        .iter()
        .filter(|p| match wanted {
            Wanted::All => true,
            Wanted::These(these) => these.iter().any(|w| p.fit(w).is_some()),
        })
        .collect();
    if let Wanted::These(these) = wanted {
        if let Some(missing) = these
            .iter()
            .find(|w| !platforms.iter().any(|p| p.fit(w).is_some()))
        {
            bail!(
                "the base `{base}` has no {missing} image; it has {}",
                list(&platforms)
            );
        }
    }
    let libc = match libc {
        Some(libc) => libc,
        None => {
            let first = picked
                .first()
                .with_context(|| format!("the base `{base}` lists no platform"))?;
            base_libc(base, &store, fetch, first, shell)?
        }
    };
    let mut targets = Vec::new();
    for platform in picked {
        match triple_of(platform, libc) {
            Some(triple) if !targets.contains(&triple) => targets.push(triple),
            Some(_) => {}
            None => shell.warn(format_args!(
                "the base `{base}` has a {platform} image, which no Rust target is known for; \
                 it is left out"
            )),
        }
    }
    if targets.is_empty() {
        bail!(
            "no platform of the base `{base}` maps to a Rust target ({}): list the targets in \
             `targets`, or give `--target`",
            list(&platforms)
        );
    }
    Ok(targets)
}

fn list(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every platform of a base read whole (a layout, an archive, a single-manifest image).
fn open_all(
    base: &ImageSource,
    store: &BlobStore,
    fetch: Option<&dyn RegistryFetch>,
    shell: &Shell,
) -> Result<Vec<Platform>> {
    let image = oci_pack::inspect::open(base, store, fetch, None, &mut shell.clone())
        .with_context(|| format!("failed to read the platforms of the base `{base}`"))?;
    Ok(image.platforms.into_iter().map(|p| p.platform).collect())
}

/// The C library of the base's `platform` image, from its final file tree.
fn base_libc(
    base: &ImageSource,
    store: &BlobStore,
    fetch: Option<&dyn RegistryFetch>,
    platform: &Platform,
    shell: &Shell,
) -> Result<Libc> {
    let context = || format!("failed to read the base `{base}` for {platform}");
    let image = oci_pack::inspect::open(base, store, fetch, Some(platform), &mut shell.clone())
        .with_context(context)?;
    let first = image.platforms.first().with_context(context)?;
    let tree = image.file_tree(first).with_context(context)?;
    let names = tree
        .iter()
        .filter_map(|(path, _)| path.file_name()?.to_str().map(str::to_owned));
    let (mut gnu, mut musl) = (false, false);
    for name in names {
        gnu |= name == "libc.so.6";
        musl |= name.starts_with("ld-musl-");
    }
    match (gnu, musl) {
        (true, false) => Ok(Libc::Gnu),
        (false, true) => Ok(Libc::Musl),
        _ => {
            bail!(
            "cannot tell the C library of the base `{base}` ({}): set `target-libc = \"gnu\"` or \
             `\"musl\"` in `[package.metadata.oci]`",
            if gnu { "it has both glibc and musl" } else { "it has neither glibc nor musl" }
        )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_map_to_the_targets_of_their_c_library() {
        let arm64 = Platform::new("linux", "arm64", Some("v8"));
        assert_eq!(
            triple_of(&arm64, Libc::Gnu).as_deref(),
            Some("aarch64-unknown-linux-gnu")
        );
        let v7 = Platform::new("linux", "arm", Some("v7"));
        assert_eq!(
            triple_of(&v7, Libc::Musl).as_deref(),
            Some("armv7-unknown-linux-musleabihf")
        );
        assert_eq!(
            triple_of(&Platform::new("linux", "mips64le", None), Libc::Gnu),
            None
        );
        assert_eq!(
            triple_of(&Platform::new("windows", "amd64", None), Libc::Gnu),
            None
        );
        assert_eq!(
            Wanted::parse("linux/arm64, linux/arm/v7").unwrap(),
            Wanted::These(vec![
                Platform::new("linux", "arm64", None),
                Platform::new("linux", "arm", Some("v7"))
            ])
        );
        assert_eq!(Wanted::parse("all").unwrap(), Wanted::All);
        assert!(Wanted::parse("arm64").is_err());
    }
}
