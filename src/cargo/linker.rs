//! What a builder run needs before cargo starts, checked so a missing piece is a few lines
//! naming the way out, not the linker's hundreds: the target's standard library, and something
//! that links it. A foreign Linux target the user chose no linker for gets the conventional
//! one: the cross gcc on PATH (`aarch64-linux-gnu-gcc`) for gnu targets, Rust's own `rust-lld`
//! with its self-contained musl objects for musl targets; given to cargo for that target alone
//! (`--config target.<triple>.linker=…`), so build scripts and proc-macros, built for the host,
//! keep the host's. The user's own setting always wins.

use std::path::{Path, PathBuf};

use super::compile::{plain_triple, Builder};
use super::rustflags::ConfigPlaces;

/// How a run's target is linked.
#[derive(Debug, PartialEq, Eq)]
pub enum Linker {
    /// As cargo would link it without us; `why` says why we add nothing.
    Cargo { why: String },
    /// Ours: `program`, given as `--config target.<triple>.linker`; `why` says why it.
    Chosen { program: String, why: String },
}

impl Linker {
    /// The `--config` settings that give cargo our choice.
    pub fn config(&self, target: &str) -> Vec<String> {
        match self {
            Linker::Cargo { .. } => Vec::new(),
            Linker::Chosen { program, .. } => vec![format!(
                "target.{}.linker={}",
                super::rustflags::toml_string(target),
                super::rustflags::toml_string(program)
            )],
        }
    }

    /// What `-v` says: `with \`aarch64-linux-gnu-gcc\` (why)`.
    pub fn describe(&self) -> String {
        match self {
            Linker::Cargo { why } => format!("as cargo links it ({why})"),
            Linker::Chosen { program, why } => format!("with `{program}` ({why})"),
        }
    }
}

/// What the checks read of the machine: the environment (`PATH`, cargo's variables), the
/// directory cargo runs in, cargo's home, and the toolchain's sysroot.
pub struct Machine<'a> {
    pub host: &'a str,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Where cargo reads its configuration (a linker the user chose there is theirs).
    pub config: &'a ConfigPlaces,
    /// `rustc --print sysroot`, when it answered.
    pub sysroot: Option<&'a Path>,
}

/// Checks what a run for `target` with `builder` needs and chooses its linker; `ours` are the
/// metadata's rustflags. The error is the whole message, ready to print.
pub fn prepare(
    target: &str,
    builder: &Builder,
    ours: &[String],
    machine: &Machine<'_>,
) -> Result<Linker, String> {
    let plain = plain_triple(target);
    if matches!(
        builder,
        Builder::Cargo | Builder::Auditable | Builder::Zigbuild
    ) && !target.ends_with(".json")
    {
        if let Some(sysroot) = machine.sysroot {
            if !sysroot.join("lib/rustlib").join(plain).join("lib").is_dir() {
                return Err(format!(
                    "the standard library for `{plain}` is not installed in the toolchain \
                     (`{}`)\nhelp: install it with `rustup target add {plain}`",
                    sysroot.display()
                ));
            }
        }
    }
    if plain != target && matches!(builder, Builder::Cargo | Builder::Auditable) {
        return Err(format!(
            "the target `{target}` names a glibc version, which only cargo-zigbuild \
             understands\nhelp: set `builder = \"zigbuild\"` in `[package.metadata.oci]`, or \
             build for `{plain}`"
        ));
    }
    let builder_name = match builder {
        // `cargo auditable build` is cargo with a wrapper: it links as cargo does.
        Builder::Cargo | Builder::Auditable => None,
        Builder::Cross => Some("`cross` links it, in its container"),
        Builder::Zigbuild => Some("`cargo zigbuild` links it, with zig"),
        Builder::Command(_) => Some("the builder command links it"),
    };
    if let Some(why) = builder_name {
        return Ok(Linker::Cargo { why: why.into() });
    }
    let Some(parts) = Triple::parse(target) else {
        return Ok(Linker::Cargo {
            why: "not a Linux target".into(),
        });
    };
    if Triple::parse(machine.host).is_some_and(|host| host.go_arch == parts.go_arch) {
        return Ok(Linker::Cargo {
            why: "the host's architecture".into(),
        });
    }
    if let Some(place) = super::rustflags::user_linker(target, ours, machine.env, machine.config) {
        return Ok(Linker::Cargo {
            why: format!("yours, from {place}"),
        });
    }
    if parts.env.starts_with("musl") {
        return Ok(Linker::Chosen {
            program: "rust-lld".into(),
            why: "none configured; a musl target links with Rust's own lld and its \
                  self-contained musl objects, no cross gcc needed"
                .into(),
        });
    }
    let gcc = format!("{}-gcc", parts.gnu_prefix());
    if on_path(&gcc, machine.env) {
        return Ok(Linker::Chosen {
            why: "none configured; the conventional cross gcc, found on PATH".into(),
            program: gcc,
        });
    }
    Err(missing(target, &parts, &gcc, machine.host))
}

/// The error for a gnu target nothing on this machine can link.
fn missing(target: &str, parts: &Triple<'_>, gcc: &str, host: &str) -> String {
    let host_arch = host.split('-').next().unwrap_or(host);
    let variable = format!(
        "CARGO_TARGET_{}_LINKER",
        target.to_uppercase().replace(['-', '.'], "_")
    );
    let package = format!("gcc-{}", parts.gnu_prefix().replace('_', "-"));
    let mut ways = vec![format!(
        "install its cross gcc: `sudo apt-get install {package}` (Debian, Ubuntu), or name \
         your own linker in `{variable}`"
    )];
    if let Some(musl_env) = parts.env.strip_prefix("gnu") {
        let musl = format!("{}-{}-linux-musl{musl_env}", parts.arch, parts.vendor);
        ways.push(format!(
            "a musl target, linked by Rust's own rust-lld: `rustup target add {musl}`, then \
             `--target {musl}`"
        ));
    }
    ways.push(
        "`builder = \"zigbuild\"` in `[package.metadata.oci]` (`cargo install cargo-zigbuild`, \
         and zig: `pip install ziglang`)"
            .into(),
    );
    ways.push(format!(
        "build on a native {} runner, then pack here with `cargo oci build --no-build --target \
         {target}`",
        parts.arch
    ));
    format!(
        "cannot link for `{target}` on this {host_arch} machine: no linker is configured for \
         it, and its cross gcc `{gcc}` is not on PATH (cargo would link with the host's `cc`, \
         which cannot)\nhelp: any one of these builds it:\n{}",
        ways.iter()
            .map(|way| format!("  - {way}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// A Linux target's parts: `aarch64-unknown-linux-gnu`.
struct Triple<'a> {
    arch: &'a str,
    vendor: &'a str,
    /// `gnu`, `gnueabihf`, `musl`, `musleabihf`, …
    env: &'a str,
    /// The image architecture (`arm64`): what tells the host's architecture from another.
    go_arch: String,
}

impl<'a> Triple<'a> {
    fn parse(triple: &'a str) -> Option<Triple<'a>> {
        let plain = plain_triple(triple);
        let mut parts = plain.splitn(4, '-');
        let (arch, vendor, os, env) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let platform = oci_pack::Platform::from_rust_target(plain)?;
        (os == "linux").then_some(Triple {
            arch,
            vendor,
            env,
            go_arch: platform.architecture,
        })
    }

    /// The GNU triple Debian's cross toolchains are named by (`arm-linux-gnueabihf`).
    fn gnu_prefix(&self) -> String {
        let arch = match self.arch {
            "i586" | "i686" => "i686",
            "riscv64gc" => "riscv64",
            arch if arch.starts_with("arm") || arch.starts_with("thumb") => "arm",
            arch => arch,
        };
        format!("{arch}-linux-{}", self.env)
    }
}

/// Whether `program` is an executable file in a directory of `PATH`.
fn on_path(program: &str, env: &dyn Fn(&str) -> Option<String>) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let path = env("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir: PathBuf| {
        std::fs::metadata(dir.join(program))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "x86_64-unknown-linux-gnu";

    fn choose(target: &str, builder: &Builder, path: &Path) -> Result<Linker, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = path.display().to_string();
        let env = move |name: &str| (name == "PATH").then(|| path.clone());
        prepare(
            target,
            builder,
            &[],
            &Machine {
                host: HOST,
                env: &env,
                config: &ConfigPlaces {
                    dir: dir.path().to_owned(),
                    ..ConfigPlaces::default()
                },
                sysroot: None,
            },
        )
    }

    #[test]
    fn a_foreign_target_gets_its_conventional_linker() {
        let bin = tempfile::tempdir().unwrap();
        let gcc = bin.path().join("aarch64-linux-gnu-gcc");
        std::fs::write(&gcc, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&gcc, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let chosen = choose("aarch64-unknown-linux-gnu", &Builder::Cargo, bin.path()).unwrap();
        assert_eq!(
            chosen.config("aarch64-unknown-linux-gnu"),
            ["target.\"aarch64-unknown-linux-gnu\".linker=\"aarch64-linux-gnu-gcc\""]
        );
        let musl = choose("aarch64-unknown-linux-musl", &Builder::Cargo, bin.path()).unwrap();
        assert!(matches!(musl, Linker::Chosen { ref program, .. } if program == "rust-lld"));
        for (target, builder) in [
            (HOST, Builder::Cargo),
            ("x86_64-unknown-linux-musl", Builder::Cargo),
            ("aarch64-apple-darwin", Builder::Cargo),
            ("aarch64-unknown-linux-gnu", Builder::Zigbuild),
            ("aarch64-unknown-linux-gnu", Builder::Cross),
        ] {
            assert!(
                matches!(
                    choose(target, &builder, bin.path()),
                    Ok(Linker::Cargo { .. })
                ),
                "{target} {builder:?}"
            );
        }
    }

    #[test]
    fn no_cross_gcc_is_a_short_error_naming_each_way_out() {
        let empty = tempfile::tempdir().unwrap();
        let error = choose(
            "armv7-unknown-linux-gnueabihf",
            &Builder::Cargo,
            empty.path(),
        )
        .unwrap_err();
        for said in [
            "cannot link for `armv7-unknown-linux-gnueabihf` on this x86_64 machine",
            "`arm-linux-gnueabihf-gcc` is not on PATH",
            "`sudo apt-get install gcc-arm-linux-gnueabihf`",
            "`CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER`",
            "`rustup target add armv7-unknown-linux-musleabihf`",
            "`builder = \"zigbuild\"`",
            "`cargo oci build --no-build --target armv7-unknown-linux-gnueabihf`",
        ] {
            assert!(error.contains(said), "{said}\n{error}");
        }
        assert!(error.lines().count() < 10, "{error}");
        let x86 = choose("x86_64-unknown-linux-gnu", &Builder::Cargo, empty.path());
        assert!(x86.is_ok(), "the host's own architecture needs nothing");
    }
}
