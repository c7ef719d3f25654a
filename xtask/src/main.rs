//! The project's own automation: `cargo xtask <task>`. `ci` runs exactly what CI runs.

use std::path::{Path, PathBuf};

use xshell::{cmd, Shell};

mod bench;
mod fuzz;

#[cfg(test)]
mod deps;
#[cfg(test)]
mod tidy;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci       install the test tools if missing, then fmt, clippy, all tests, docs, the fuzz
           corpus replayed (what CI runs)
  tools    install the real tools the end-to-end tests judge images with (Debian packages,
           the SBOM validators, securesystemslib and zig from PyPI into target/python,
           cargo-zigbuild, cargo-auditable and rust-audit-info from crates.io, the rustup
           targets of the cross builds, qemu's binfmt_misc entry)
  example  build the example crate's image with this cargo-oci
  bench    cargo oci against umoci, podman and skopeo on the same workloads, paired;
           `--runs N`, and words to keep only the rows whose names hold one (`bench push`:
           the registry rows alone)
  fuzz     each fuzz target of fuzz/ for SECONDS (default 60); 0 replays the corpus only";

/// The tools the end-to-end tests run, and the Debian package of each.
const TOOLS: [(&str, &str); 15] = [
    ("openssl", "openssl"),
    ("zstd", "zstd"),
    FOREIGN_GCC,
    ("docker-registry", "docker-registry"),
    ("htpasswd", "apache2-utils"),
    FOREIGN_QEMU,
    ("busybox", "busybox-static"),
    ("dockerd", "docker.io"),
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    ("oci-image-tool", "oci-image-tool"),
    ("podman", "podman"),
    ("runc", "runc"),
    // The CI templates' steps read cargo oci's JSON messages with jq.
    ("jq", "jq"),
    // Debian's yq (jq over PyYAML, so it brings python3-yaml): the test of the CI templates
    // reads them with it, a real YAML parser behind an executable this list can look for.
    ("yq", "yq"),
];

/// The validators of the SBOM tests, the DSSE verifier of the signing tests, and zig for
/// cargo-zigbuild (`python -m ziglang`, as cargo-zigbuild finds it), from PyPI (Debian has none
/// of them), pinned, in a virtual environment of their own under `target/python`.
const PYTHON_TOOLS: [&str; 4] = [
    "spdx-tools==0.8.5",
    "cyclonedx-python-lib[json-validation]==11.12.0",
    "securesystemslib[crypto]==1.6.0",
    "ziglang==0.14.1",
];

/// The cargo subcommands and the reader the tests run, from crates.io, pinned: binary, crate,
/// version. cargo-zigbuild for `builder = "zigbuild"` with a glibc version; cargo-auditable and
/// rust-audit-info for auditable binaries.
const CARGO_TOOLS: [(&str, &str, &str); 3] = [
    ("cargo-zigbuild", "cargo-zigbuild", "0.24.1"),
    ("cargo-auditable", "cargo-auditable", "0.7.7"),
    ("rust-audit-info", "rust-audit-info", "0.5.4"),
];

/// The standard libraries of the cross builds the tests run for real: the foreign
/// architecture's gnu target (linked by its cross gcc) and both musl targets (linked by
/// rust-lld).
#[cfg(not(target_arch = "aarch64"))]
const RUST_TARGETS: [&str; 3] = [
    "aarch64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
];
#[cfg(target_arch = "aarch64")]
const RUST_TARGETS: [&str; 3] = [
    "x86_64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
];

/// The qemu-user binfmt_misc entry of the foreign architecture, as qemu-user-static ships it.
#[cfg(not(target_arch = "aarch64"))]
const FOREIGN_BINFMT: &str = "qemu-aarch64";
#[cfg(target_arch = "aarch64")]
const FOREIGN_BINFMT: &str = "qemu-x86_64";

/// The cross compiler and emulator for the one foreign architecture the tests pack a real
/// program for (see `tests/e2e/support/host.rs`).
#[cfg(not(target_arch = "aarch64"))]
const FOREIGN_GCC: (&str, &str) = ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu");
#[cfg(not(target_arch = "aarch64"))]
const FOREIGN_QEMU: (&str, &str) = ("qemu-aarch64-static", "qemu-user-static");
#[cfg(target_arch = "aarch64")]
const FOREIGN_GCC: (&str, &str) = ("x86_64-linux-gnu-gcc", "gcc-x86-64-linux-gnu");
#[cfg(target_arch = "aarch64")]
const FOREIGN_QEMU: (&str, &str) = ("qemu-x86_64-static", "qemu-user-static");

fn main() -> Result {
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match std::env::args().nth(1).as_deref() {
        Some("ci") => ci(&sh),
        Some("tools") => tools(&sh),
        Some("example") => example(&sh).map(drop),
        Some("bench") => bench::run(&sh, &std::env::args().skip(2).collect::<Vec<_>>()),
        Some("fuzz") => match std::env::args().nth(2).map(|s| s.parse()).transpose() {
            Ok(seconds) => fuzz::run(&sh, seconds.unwrap_or(60)),
            Err(_) => Err("usage: cargo xtask fuzz [SECONDS]".into()),
        },
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2)
        }
    }
}

fn ci(sh: &Shell) -> Result {
    tools(sh)?;
    cmd!(sh, "cargo fmt --all --check").run()?;
    cmd!(
        sh,
        "cargo clippy --workspace --all-targets --locked -- -D warnings"
    )
    .run()?;
    // The engine alone, as a library user who only writes layouts compiles it: no HTTP.
    cmd!(
        sh,
        "cargo clippy -p oci-pack --all-targets --locked -- -D warnings"
    )
    .run()?;
    // The Rust version the workspace declares, really used.
    let msrv = rust_version()?;
    cmd!(sh, "rustup toolchain install {msrv} --profile minimal").run()?;
    cmd!(
        sh,
        "cargo +{msrv} check --workspace --all-targets --locked --target-dir target/msrv"
    )
    .run()?;
    // A missing tool fails the end-to-end tests here instead of skipping them.
    cmd!(sh, "cargo test --workspace --locked")
        .env("CARGO_OCI_REQUIRE_TOOLS", "1")
        .run()?;
    cmd!(sh, "cargo doc --workspace --no-deps --locked")
        .env("RUSTDOCFLAGS", "-D warnings")
        .run()?;
    // The parsers of untrusted bytes on every input a fuzzer once found or was seeded with.
    fuzz::run(sh, 0)?;
    Ok(())
}

/// The workspace's `rust-version`, from its `Cargo.toml`.
fn rust_version() -> Result<String> {
    let manifest = std::fs::read_to_string(project_root().join("Cargo.toml"))?;
    manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .map(|version| version.trim_matches('"').to_owned())
        .ok_or_else(|| "Cargo.toml declares no rust-version".into())
}

fn tools(sh: &Shell) -> Result {
    debian_tools(sh)?;
    cargo_tools(sh)?;
    python_tools(sh)?;
    rust_targets(sh)?;
    binfmt(sh)
}

/// The rustup targets of the cross builds, each only when missing.
fn rust_targets(sh: &Shell) -> Result {
    let installed = cmd!(sh, "rustup target list --installed").quiet().read()?;
    let missing: Vec<&str> = RUST_TARGETS
        .into_iter()
        .filter(|target| !installed.lines().any(|line| line == *target))
        .collect();
    if !missing.is_empty() {
        cmd!(sh, "rustup target add {missing...}").run()?;
    }
    Ok(())
}

/// Registers qemu-user's binfmt_misc entry for the foreign architecture, so podman runs its
/// images, where nothing did: systemd-binfmt does it at boot, and a machine without systemd
/// (a container, a CI runner's) has the entries in `/usr/lib/binfmt.d` but none registered.
/// As systemd-binfmt does: mount binfmt_misc if it is not, then write the entry's line to
/// `register`.
fn binfmt(sh: &Shell) -> Result {
    let root = Path::new("/proc/sys/fs/binfmt_misc");
    if root.join(FOREIGN_BINFMT).exists() {
        return Ok(());
    }
    if cmd!(sh, "id -u").quiet().read()? != "0" {
        return Err(format!(
            "qemu's binfmt_misc entry `{FOREIGN_BINFMT}` is not registered; as root: \
             `cat /usr/lib/binfmt.d/{FOREIGN_BINFMT}.conf > {}/register`",
            root.display()
        )
        .into());
    }
    if !root.join("register").exists() {
        cmd!(sh, "mount -t binfmt_misc binfmt_misc {root}").run()?;
    }
    let conf = Path::new("/usr/lib/binfmt.d").join(format!("{FOREIGN_BINFMT}.conf"));
    let line = std::fs::read_to_string(&conf)
        .map_err(|e| format!("failed to read `{}`: {e}", conf.display()))?;
    std::fs::write(root.join("register"), line.trim_end())
        .map_err(|e| format!("failed to register `{}`: {e}", conf.display()))?;
    Ok(())
}

/// The crates.io tools, each only when missing.
fn cargo_tools(sh: &Shell) -> Result {
    for (binary, krate, version) in CARGO_TOOLS {
        if !on_path(binary) {
            cmd!(sh, "cargo install --locked --version {version} {krate}").run()?;
        }
    }
    Ok(())
}

fn python_tools(sh: &Shell) -> Result {
    let venv = project_root().join("target/python");
    // What was installed, so a new pin installs again.
    let stamp = venv.join("cargo-oci-tools");
    let wanted = PYTHON_TOOLS.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(());
    }
    if cmd!(sh, "python3 -m venv {venv}").run().is_err() {
        // Debian's python3 makes environments only with its venv package.
        cmd!(sh, "apt-get install -y -q python3-venv")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .run()?;
        cmd!(sh, "python3 -m venv --clear {venv}").run()?;
    }
    // `python -m pip`, not `bin/pip`, whose first line names the directory the environment
    // was made in: a copied `target/` would install into the original.
    let python = venv.join("bin/python");
    cmd!(sh, "{python} -m pip install --quiet {PYTHON_TOOLS...}").run()?;
    std::fs::write(&stamp, wanted)?;
    Ok(())
}

fn debian_tools(sh: &Shell) -> Result {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = cmd!(sh, "id -u").quiet().read()? == "0";
    if !is_root {
        return Err(format!(
            "missing test tools; install them with: sudo apt-get install -y {}",
            missing.join(" ")
        )
        .into());
    }
    cmd!(sh, "apt-get update -q")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    cmd!(sh, "apt-get install -y -q {missing...}")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    Ok(())
}

/// Builds `examples/hello-server` into `examples/hello-server/target/oci/hello-server`.
fn example(sh: &Shell) -> Result<PathBuf> {
    cmd!(sh, "cargo build --release --locked --bin cargo-oci").run()?;
    let cargo_oci = project_root().join("target/release/cargo-oci");
    let example = project_root().join("examples/hello-server");
    // Run from the example's directory, as its README says.
    let _dir = sh.push_dir(&example);
    cmd!(sh, "{cargo_oci} oci build").run()?;
    let layout = example.join("target/oci/hello-server");
    eprintln!(
        "\nRun it (podman or docker; Ctrl-C stops it):\n  cd examples/hello-server && \
         ../../target/release/cargo-oci oci run\n  curl http://127.0.0.1:8080/"
    );
    Ok(layout)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Copies a directory tree of files and directories.
fn copy_dir(from: &Path, to: &Path) -> Result {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}
