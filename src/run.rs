//! `cargo oci run [-- ARGS]`: the inner loop of a service developer in one command. Builds the
//! image for this machine, loads it into podman or docker, and becomes `ENGINE run` of it (the
//! process is replaced, so Ctrl-C, every other signal and the exit code are the container's),
//! with its exposed ports published on loopback and ARGS as its command. `--target` of another
//! architecture runs it under emulation (the engine's `--platform`), where the kernel has a
//! binfmt_misc entry for that machine.

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use anyhow::{anyhow, bail, Context as _, Result};

use crate::build::{self, BuildOptions};
use crate::cargo::workspace::Facts;
use crate::plan::Loader;
use crate::shell::Shell;

/// What `cargo oci run` is asked: the build, what runs it, and the container's command.
#[derive(Debug)]
pub struct RunOptions {
    pub build: BuildOptions,
    /// `None`: podman if it is installed, else docker.
    pub engine: Option<Loader>,
    /// The container's command, replacing the image's `cmd`.
    pub args: Vec<String>,
}

/// Builds the one image the options choose for this machine (or the one `--target`), loads it
/// into the engine and becomes the engine running it; returns only if that cannot start.
pub fn run(options: RunOptions, shell: &Shell) -> Result<()> {
    let RunOptions {
        build: mut options,
        engine,
        args,
    } = options;
    let engine = match engine {
        Some(engine) => engine,
        None => Loader::installed()
            .ok_or_else(|| anyhow!("neither podman nor docker is installed to run the image"))?,
    };
    if let several @ [_, _, ..] = options.cargo.targets.as_slice() {
        bail!(
            "`cargo oci run` runs one image, for one target, and {} are given ({}); \
             give one `--target`",
            several.len(),
            several.join(", ")
        );
    }
    // The workspace and the host, asked once for the checks below and the build.
    let facts = Facts::gather(&options.cargo.workspace)?;
    let foreign = match options.cargo.targets.as_slice() {
        // This machine's image, whatever other platforms the metadata lists.
        [] => {
            options.cargo.targets = vec![facts.host.clone()];
            false
        }
        [target, ..] => can_run(target, &facts.host)?,
    };
    options.load = Some(engine);
    // stdout is the container's.
    options.report = None;
    // One image, known before anything is built or loaded.
    let names = crate::plan::image_names(&facts, &options.cargo.workspace)?;
    if names.len() > 1 {
        bail!(
            "`cargo oci run` runs one image, and these packages make {} ({}); \
             choose one with `-p`",
            names.len(),
            names.join(", ")
        );
    }
    let built = build::build(&options, &facts, shell)?;
    let image = match built.as_slice() {
        [image] => image,
        several => bail!(
            "`cargo oci run` runs one image, and these packages make {} ({}); \
             choose one with `-p`",
            several.len(),
            several
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let tag = image
        .tags
        .first()
        .context("the image has no tag to run it by")?;
    let mut command = Command::new(engine.program());
    command.args(["run", "--rm", "--interactive"]);
    if let (true, [platform]) = (foreign, image.platforms.as_slice()) {
        // The engine would otherwise ask for this machine's platform, and warn or refuse.
        command.args(["--platform", platform]);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        command.arg("--tty");
    }
    if image.exposed_ports.is_empty() {
        shell.warn(
            "the image exposes no ports, so none is published: give it `exposed-ports` in \
             `[package.metadata.oci.config]`",
        );
    }
    for port in &image.exposed_ports {
        // A base's range (`1-65535/tcp`) would publish every port of the machine.
        let Some(number) = crate::plan::values::single_port(port) else {
            shell.warn(format_args!(
                "the image exposes `{}`, which is not one port: it is not published",
                crate::text::escape_controls(port)
            ));
            continue;
        };
        command
            .arg("--publish")
            .arg(format!("127.0.0.1:{number}:{port}"));
    }
    command.arg(tag).args(&args);
    shell.status(
        "Running",
        format_args!(
            "`{} {}`",
            engine.program(),
            command
                .get_args()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    // Only returns if the engine could not be started.
    let error = command.exec();
    Err(error).with_context(|| format!("failed to run `{} run`", engine.program()))
}

/// Whether `target` is of another architecture than this machine's, which runs it only where
/// the kernel hands its binaries to an emulator (a binfmt_misc entry, as qemu-user-static
/// registers them); where not, an error, before anything is built, saying what to install and
/// register.
fn can_run(target: &str, host: &str) -> Result<bool> {
    let arch = |triple: &str| {
        let plain = crate::cargo::compile::plain_triple(triple);
        oci_pack::Platform::from_rust_target(plain).map(|p| p.architecture)
    };
    let (Some(wanted), Some(here)) = (arch(target), arch(host)) else {
        return Ok(false);
    };
    if wanted == here {
        return Ok(false);
    }
    // qemu's names for the machine, as its binfmt_misc entries are called.
    let machine = match target.split('-').next().unwrap_or_default() {
        "i586" | "i686" => "i386",
        "riscv64gc" => "riscv64",
        "powerpc64le" => "ppc64le",
        "powerpc64" => "ppc64",
        "powerpc" => "ppc",
        arch if arch.starts_with("arm") || arch.starts_with("thumb") => "arm",
        arch => arch,
    };
    let root = std::path::Path::new("/proc/sys/fs/binfmt_misc");
    let entry = root.join(format!("qemu-{machine}"));
    let enabled = std::fs::read_to_string(&entry).is_ok_and(|text| text.starts_with("enabled"));
    if enabled {
        return Ok(true);
    }
    bail!(
        "this {here} machine cannot run the linux/{wanted} image of `{target}`: the kernel has \
         no binfmt_misc entry for {machine} (`{}`)\n\
         help: install qemu-user-static (Debian, Ubuntu) and register its entry, which systemd \
         does at boot: as root, `cat /usr/lib/binfmt.d/qemu-{machine}.conf > {}/register` \
         (mount binfmt_misc there first if `{}` is missing)",
        entry.display(),
        root.display(),
        root.join("register").display()
    )
}
