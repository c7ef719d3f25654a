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
           cargo-auditable and rust-audit-info from crates.io, and the SBOM validators and
           securesystemslib from PyPI into target/python)
  example  build the example crate's image with this cargo-oci
  bench    cargo oci against umoci and podman on the same workloads, paired
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

/// The validators of the SBOM tests and the DSSE verifier of the signing tests, from PyPI
/// (Debian has none of them), pinned, in a virtual environment of their own under
/// `target/python`.
const PYTHON_TOOLS: [&str; 3] = [
    "spdx-tools==0.8.5",
    "cyclonedx-python-lib[json-validation]==11.12.0",
    "securesystemslib[crypto]==1.6.0",
];

/// The cargo subcommand and the reader the tests of auditable binaries run, from crates.io,
/// pinned: binary, crate, version.
const CARGO_TOOLS: [(&str, &str, &str); 2] = [
    ("cargo-auditable", "cargo-auditable", "0.7.7"),
    ("rust-audit-info", "rust-audit-info", "0.5.4"),
];

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
        Some("bench") => bench::run(&sh),
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
    python_tools(sh)
}

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
    // What was installed, so a tool added to the list is installed into an existing environment.
    let stamp = venv.join("installed.txt");
    let wanted = PYTHON_TOOLS.join("\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return Ok(());
    }
    if cmd!(sh, "python3 -m venv {venv}").run().is_err() {
        // Debian's python3 makes environments only with its venv package.
        cmd!(sh, "apt-get install -y -q python3-venv")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .run()?;
        cmd!(sh, "python3 -m venv --clear {venv}").run()?;
    }
    // Through the environment's python: its `pip` script names the directory it was made in.
    let python = venv.join("bin/python3");
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
