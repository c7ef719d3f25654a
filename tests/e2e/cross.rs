//! Real cargo builds for a foreign target: a crate with a build script and a proc-macro built
//! for the host and the foreign architecture (`support::host::FOREIGN`) in one `cargo oci
//! build`, each platform's image holding its own architecture's binary; two images of one
//! package that differ only in `rustflags`, each with its own run's binary.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::host::{Arch, FOREIGN, HOST};
use crate::support::{assert_success, blob, read_json, run, tool, Fixture, Podman};

/// Whether the machine has what a real cargo build for `arch` needs: its standard library
/// (`rustup target add`) and, for a foreign gnu target, its cross gcc. `.ci/run` installs both,
/// so in CI a missing one fails the test.
pub fn can_build_for(arch: &Arch) -> bool {
    has_std(arch.triple) && tool(arch.gcc)
}

/// Whether the toolchain has the standard library for `triple` (`rustup target add`).
pub fn has_std(triple: &str) -> bool {
    let sysroot = run(Command::new("rustc").args(["--print", "sysroot"]));
    let std = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(triple)
        .join("lib");
    if !std.is_dir() {
        let required = std::env::var_os("CI").is_some()
            || std::env::var_os("CARGO_OCI_REQUIRE_TOOLS").is_some();
        assert!(
            !required,
            "the standard library for `{triple}` is not installed; `cargo xtask tools` \
             installs it"
        );
        eprintln!("note: skipping, no standard library for `{triple}`");
        return false;
    }
    true
}

/// The bytes of `path` (inside the image) in the last layer of each platform's manifest of the
/// layout's first tag, by platform (`linux/arm64`).
pub fn binaries(layout: &Path, path: &str) -> Vec<(String, Vec<u8>)> {
    let top = read_json(&layout.join("index.json"));
    let index = blob(layout, top["manifests"][0]["digest"].as_str().unwrap());
    index["manifests"]
        .as_array()
        .expect("the tag points at an index")
        .iter()
        .map(|entry| {
            let platform = format!(
                "{}/{}",
                entry["platform"]["os"].as_str().unwrap(),
                entry["platform"]["architecture"].as_str().unwrap()
            );
            let manifest = blob(layout, entry["digest"].as_str().unwrap());
            let layers = manifest["layers"].as_array().unwrap();
            let layer = layers.last().unwrap()["digest"].as_str().unwrap();
            (platform, file_in_layer(layout, layer, path))
        })
        .collect()
}

/// A file of a layer blob, read from its tar stream.
fn file_in_layer(layout: &Path, digest: &str, path: &str) -> Vec<u8> {
    let bytes = fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    let reader: Box<dyn std::io::Read> = if bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(bytes.as_slice()))
    } else {
        Box::new(bytes.as_slice())
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            == path
        {
            let mut file = Vec::new();
            entry.read_to_end(&mut file).unwrap();
            return file;
        }
    }
    panic!("layer {digest} has no `{path}`")
}

/// An ELF file's `e_machine`, as `support::host::Arch::elf` names it.
pub fn machine(elf: &[u8]) -> &'static str {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    match u16::from_le_bytes([elf[18], elf[19]]) {
        62 => HOST_OR_FOREIGN[0],
        183 => HOST_OR_FOREIGN[1],
        other => panic!("an ELF file for machine {other}"),
    }
}

const HOST_OR_FOREIGN: [&str; 2] = ["x86-64", "aarch64"];

/// The go architecture of `arch` as [`machine`] names its ELF machine.
fn elf_name(arch: &Arch) -> &'static str {
    match arch.go {
        "amd64" => HOST_OR_FOREIGN[0],
        _ => HOST_OR_FOREIGN[1],
    }
}

/// `bytes` written to an executable file in `dir`, run (under qemu-user for the foreign
/// architecture): its stdout.
fn run_binary(dir: &Path, arch: &Arch, bytes: &[u8]) -> String {
    let path: PathBuf = dir.join(format!("bin-{}", arch.go));
    fs::write(&path, bytes).unwrap();
    let mut permissions = fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    fs::set_permissions(&path, permissions).unwrap();
    if arch.go == HOST.go {
        run(&mut Command::new(&path))
    } else {
        run(Command::new(arch.qemu).arg(&path))
    }
}

/// Checks that each platform of the macros fixture's layout holds its own architecture's
/// binary, and that each runs and prints what the proc-macro and build script made.
fn each_platform_holds_its_own_binary(fixture: &Fixture) {
    let layout = fixture.output("macros-app");
    let built = binaries(&layout, "usr/local/bin/macros-app");
    let platforms: Vec<&str> = built.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(platforms, [FOREIGN.platform(), HOST.platform()]);
    for ((platform, bytes), arch) in built.iter().zip([&FOREIGN, &HOST]) {
        assert_eq!(
            machine(bytes),
            elf_name(arch),
            "the {platform} image holds another architecture's binary"
        );
        if arch.go == HOST.go || tool(arch.qemu) {
            assert_eq!(
                run_binary(fixture.path(), arch, bytes),
                "HELLO build.rs \n",
                "the {platform} binary"
            );
        }
    }
}

/// The second bug: with a linker the user configured, both cargo runs passed and every
/// image got the last run's binary, since executables were keyed by package and binary only.
#[test]
fn two_targets_in_one_build_each_get_their_own_binary() {
    if !can_build_for(&FOREIGN) {
        return;
    }
    let fixture = Fixture::copy("macros");
    let variable = format!(
        "CARGO_TARGET_{}_LINKER",
        FOREIGN.triple.to_uppercase().replace('-', "_")
    );
    // The foreign target first: on the old code, the host's binary, built last, was in both.
    let output = fixture.build_with_env(
        &[
            "--quiet",
            "--target",
            FOREIGN.triple,
            "--target",
            HOST.triple,
        ],
        &[(&variable, FOREIGN.gcc)],
    );
    assert_success(&output, "a build for two real targets");
    each_platform_holds_its_own_binary(&fixture);
}

/// Two images of one package, for one target, that differ only in `rustflags`: built in two
/// cargo runs, each into its own place, each image holding its own run's binary.
#[test]
fn images_differing_only_in_rustflags_get_their_own_binaries() {
    let fixture = Fixture::copy("macros");
    fixture.set_metadata(
        "[package.metadata.oci]\nbins = [\"macros-app\"]\n\
         [package.metadata.oci.images.with-a]\nrustflags = [\"--cfg\", \"from_config\"]\n\
         [package.metadata.oci.images.with-b]\nrustflags = [\"--cfg\", \"from_env\"]\n",
    );
    let output = fixture.build(&["--quiet"]);
    assert_success(&output, "two images differing in rustflags");
    for (image, said) in [
        ("with-a", "HELLO build.rs from-config\n"),
        ("with-b", "HELLO build.rs from-env\n"),
    ] {
        let layout = fixture.output(image);
        let (manifest, _) = crate::support::manifest_and_config(&layout);
        let layer = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_owned();
        let bytes = file_in_layer(&layout, &layer, "usr/local/bin/macros-app");
        assert_eq!(run_binary(fixture.path(), &HOST, &bytes), said, "{image}");
    }
    // Each run built into its own place: the binary of the first run is still its own after
    // the second ran.
    let first = fixture
        .path()
        .join("target")
        .join(HOST.triple)
        .join("release/macros-app");
    assert_eq!(
        run(&mut Command::new(&first)),
        "HELLO build.rs from-config\n",
        "the second run overwrote the first run's binary"
    );
}

/// The command of the issue, on a crate with a build script and a proc-macro, with nothing
/// configured: the foreign target links with its cross gcc found on PATH (`-v` says so), the
/// host's as ever, and each platform's image holds its own architecture's binary.
#[test]
fn a_foreign_target_builds_with_no_configuration() {
    if !can_build_for(&FOREIGN) {
        return;
    }
    let fixture = Fixture::copy("macros");
    let output = fixture.build(&["-v", "--target", FOREIGN.triple, "--target", HOST.triple]);
    assert_success(&output, "a build for two targets with nothing configured");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for said in [
        format!(
            "Linking {} with `{}` (none configured; the conventional cross gcc, found on PATH)",
            FOREIGN.triple, FOREIGN.gcc
        ),
        format!(
            "Linking {} as cargo links it (the host's architecture)",
            HOST.triple
        ),
    ] {
        assert!(stderr.contains(&said), "{said}\n{stderr}");
    }
    each_platform_holds_its_own_binary(&fixture);
    // Both images run, the foreign one under qemu through binfmt_misc.
    if let Some(podman) = Podman::new().filter(|_| emulates(&FOREIGN)) {
        for arch in [&HOST, &FOREIGN] {
            let said = run_platform(&podman, &fixture.output("macros-app"), "0.1.0", arch);
            assert_eq!(said, "HELLO build.rs \n", "{}", arch.platform());
        }
    }
}

/// Whether the kernel runs `arch`'s binaries through qemu-user (a binfmt_misc entry, which
/// `cargo xtask tools` registers where nothing did). In CI a missing entry fails the test.
pub fn emulates(arch: &Arch) -> bool {
    let entry = Path::new("/proc/sys/fs/binfmt_misc").join(arch.qemu.trim_end_matches("-static"));
    let found = arch.go == HOST.go || entry.exists();
    if !found {
        let required = std::env::var_os("CI").is_some()
            || std::env::var_os("CARGO_OCI_REQUIRE_TOOLS").is_some();
        assert!(
            !required,
            "no binfmt_misc entry `{}`; `cargo xtask tools` registers it",
            entry.display()
        );
        eprintln!("note: skipping, no binfmt_misc entry `{}`", entry.display());
    }
    found
}

/// `podman run --platform` of `arch`'s image of a layout's `tag`: its stdout. The image is
/// removed again, even when the run fails.
pub fn run_platform(podman: &Podman, layout: &Path, tag: &str, arch: &Arch) -> String {
    struct Removed<'a>(&'a Podman, String);
    impl Drop for Removed<'_> {
        fn drop(&mut self) {
            let _ = Command::new("podman")
                .env("CONTAINERS_CONF", self.0.conf_path())
                .args(["rmi", "--force", &self.1])
                .output();
        }
    }
    let platform = arch.platform();
    let source = format!("oci:{}:{tag}", layout.display());
    let id = podman.run(&["pull", "--quiet", "--platform", &platform, &source]);
    let image = Removed(podman, id.trim().to_owned());
    podman.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--platform",
        &platform,
        &image.1,
    ])
}

/// A `PATH` with every program of the real one but the foreign cross toolchain's.
fn path_without_cross_gcc(dir: &Path) -> String {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let prefix = FOREIGN.gcc.trim_end_matches("gcc");
    for from in std::env::split_paths(&std::env::var_os("PATH").unwrap()) {
        for entry in fs::read_dir(&from).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let link = bin.join(&name);
            if !name.to_string_lossy().starts_with(prefix) && !link.exists() {
                let _ = std::os::unix::fs::symlink(entry.path(), link);
            }
        }
    }
    bin.display().to_string()
}

/// No cross gcc: an error before cargo runs, a few lines naming the target, the linker, the
/// Debian package and every other way out, instead of the linker's hundreds.
#[test]
fn no_cross_gcc_is_a_short_error_before_cargo_runs() {
    if !can_build_for(&FOREIGN) {
        return;
    }
    let fixture = Fixture::copy("macros");
    let path = path_without_cross_gcc(fixture.path());
    let output = fixture.build_with_env(
        &["--target", FOREIGN.triple, "--target", HOST.triple],
        &[("PATH", &path)],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let package = format!(
        "gcc-{}",
        FOREIGN.gcc.trim_end_matches("-gcc").replace('_', "-")
    );
    let musl = FOREIGN.triple.replace("-gnu", "-musl");
    for said in [
        format!("cannot link for `{}`", FOREIGN.triple),
        format!("`{}` is not on PATH", FOREIGN.gcc),
        format!("`sudo apt-get install {package}`"),
        format!("`rustup target add {musl}`"),
        "`builder = \"zigbuild\"`".to_owned(),
        format!("`cargo oci build --no-build --target {}`", FOREIGN.triple),
    ] {
        assert!(stderr.contains(&said), "{said}\n{stderr}");
    }
    assert!(stderr.lines().count() < 30, "{stderr}");
    assert!(!stderr.contains("Compiling"), "cargo ran: {stderr}");
}

/// A target whose standard library the toolchain lacks: the exact `rustup target add`.
#[test]
fn a_missing_standard_library_names_the_rustup_command() {
    let fixture = Fixture::copy("macros");
    // A rustc whose sysroot holds no target at all, for everything else the real one.
    let real = run(Command::new("rustc").args(["--print", "sysroot"]));
    let rustc = fixture.path().join("rustc");
    let empty = fixture.path().join("empty-sysroot");
    fs::create_dir_all(&empty).unwrap();
    fs::write(
        &rustc,
        format!(
            "#!/bin/sh\nif [ \"$1 $2\" = \"--print sysroot\" ]; then echo {}; \
             else exec {}/bin/rustc \"$@\"; fi\n",
            empty.display(),
            real.trim()
        ),
    )
    .unwrap();
    let mut permissions = fs::metadata(&rustc).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    fs::set_permissions(&rustc, permissions).unwrap();
    let output = fixture.build_with_env(
        &["--target", FOREIGN.triple],
        &[("RUSTC", &rustc.display().to_string())],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said = format!("install it with `rustup target add {}`", FOREIGN.triple);
    assert!(stderr.contains(&said), "{stderr}");
    assert!(!stderr.contains("Compiling"), "cargo ran: {stderr}");
}

/// A foreign musl target with nothing configured and no cross gcc at all: linked by Rust's own
/// rust-lld with its self-contained musl objects, and the binary runs under qemu.
#[test]
fn a_foreign_musl_target_links_with_rust_lld_and_no_gcc() {
    let musl = FOREIGN.triple.replace("-gnu", "-musl");
    if !has_std(&musl) {
        return;
    }
    let fixture = Fixture::copy("macros");
    let path = path_without_cross_gcc(fixture.path());
    let output = fixture.build_with_env(&["-v", "--target", &musl], &[("PATH", &path)]);
    assert_success(&output, "a foreign musl build");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said = format!("Linking {musl} with `rust-lld` (none configured;");
    assert!(stderr.contains(&said), "{stderr}");
    let layout = fixture.output("macros-app");
    let (manifest, _) = crate::support::manifest_and_config(&layout);
    let layer = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let bytes = file_in_layer(&layout, &layer, "usr/local/bin/macros-app");
    assert_eq!(machine(&bytes), elf_name(&FOREIGN));
    if tool(FOREIGN.qemu) {
        assert_eq!(
            run_binary(fixture.path(), &FOREIGN, &bytes),
            "HELLO build.rs \n"
        );
    }
}

/// zig for cargo-zigbuild, as `cargo xtask tools` installs it (`python -m ziglang` in
/// `target/python`), and cargo-zigbuild; `None` when either is missing outside CI.
fn zigbuild() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/python/bin/python");
    let zig = python.is_file()
        && Command::new(&python)
            .args(["-m", "ziglang", "version"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !zig {
        // Fails in CI, where `cargo xtask tools` has installed it.
        tool("zig");
        return None;
    }
    tool("cargo-zigbuild").then_some(python)
}

/// `builder = "zigbuild"` with a glibc version (`…-gnu.2.17`, the usual reason to use it)
/// through every step: the build, the platform, the SBOM (cargo metadata asked of the plain
/// triple), the ELF check (no GLIBC newer than 2.17 needed, which the test reads itself), and
/// `--no-build`'s paths; the image runs on a glibc base.
#[test]
fn zigbuild_with_a_glibc_version_goes_through_every_step() {
    let Some(python) = zigbuild() else {
        return;
    };
    if !tool("umoci") {
        return;
    }
    let fixture = Fixture::copy("macros");
    fs::remove_file(fixture.path().join(".cargo/config.toml")).unwrap();
    let base = crate::targets::glibc_base(&fixture, &HOST.libdir().join("libc.so.6"));
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbuilder = \"zigbuild\"\nbase = \"oci:{}:latest\"\n",
        base.display()
    ));
    let triple = format!("{}.2.17", HOST.triple);
    let env = [("CARGO_ZIGBUILD_PYTHON_PATH", python.to_str().unwrap())];
    let output = fixture.build_with_env(
        &["-v", "--target", &triple, "--message-format", "json"],
        &env,
    );
    assert_success(&output, "a zigbuild build with a glibc version");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("none newer than the target's glibc 2.17"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let messages: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        messages[0]["platforms"],
        serde_json::json!([HOST.platform()])
    );
    let sbom = messages
        .iter()
        .find(|m| m["format"] == "sbom")
        .expect("an SBOM was written");
    let spdx = read_json(Path::new(sbom["path"].as_str().unwrap()));
    assert!(
        spdx["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "macros-app"),
        "{spdx}"
    );

    let layout = fixture.output("macros-app");
    let (manifest, _) = crate::support::manifest_and_config(&layout);
    let layer = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let bytes = file_in_layer(&layout, &layer, "usr/local/bin/macros-app");
    let info = oci_pack::elf::read_bytes(&bytes, Path::new("macros-app"))
        .unwrap()
        .expect("an ELF binary");
    let newest =
        oci_pack::elf::GlibcVersion::newest(&info.versions_needed).expect("a dynamic glibc binary");
    assert!(
        newest <= oci_pack::elf::GlibcVersion::from_parts(vec![2, 17]),
        "needs {newest}"
    );
    if let Some(podman) = Podman::new() {
        let said = podman.pull(&layout, "0.1.0").run(&[]);
        assert_eq!(said, "HELLO build.rs \n");
    }

    // `--no-build` finds the binary where zigbuild left it: cargo's directory of the plain
    // triple.
    fs::remove_dir_all(&layout).unwrap();
    let output = fixture.build_with_env(&["--quiet", "--no-build", "--target", &triple], &env);
    assert_success(&output, "--no-build of a zigbuild build");
    assert!(layout.join("index.json").is_file());
}

/// `cargo oci verify` of an output built for two `--target`s rebuilds both platforms (the
/// targets are recorded with the layout), not only the metadata's or the host's.
#[test]
fn verify_rebuilds_every_platform_a_multi_platform_output_holds() {
    if !can_build_for(&FOREIGN) {
        return;
    }
    let fixture = Fixture::copy("macros");
    fixture.build_ok(&[
        "--quiet",
        "--target",
        FOREIGN.triple,
        "--target",
        HOST.triple,
    ]);
    let output = fixture.cargo_oci(&["verify", "--quiet"]);
    assert_success(&output, "verify of a two-platform output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("macros-app is reproducible: ")
            && stdout.contains(&format!("({}, {})", FOREIGN.platform(), HOST.platform())),
        "{stdout}"
    );
}

/// `cargo oci run --target` of the foreign architecture builds, loads and runs its image under
/// emulation (the engine's `--platform`); an architecture the kernel has no binfmt_misc entry
/// for is an error before anything is built.
#[test]
fn cargo_oci_run_runs_a_foreign_image() {
    if !can_build_for(&FOREIGN) {
        return;
    }
    let Some(podman) = Podman::new().filter(|_| emulates(&FOREIGN)) else {
        return;
    };
    let fixture = Fixture::copy("macros");
    let _cleanup = crate::support::Loaded::forget_later(&podman, &["localhost/macros-app:0.1.0"]);
    let conf = podman.conf_path().display().to_string();
    let cargo_oci_run = |target: &str| {
        crate::support::cargo_oci()
            .args(["run", "--quiet", "--engine", "podman", "--target", target])
            .current_dir(fixture.path())
            .env("CONTAINERS_CONF", &conf)
            .output()
            .unwrap()
    };
    let output = cargo_oci_run(FOREIGN.triple);
    assert_success(
        &output,
        "cargo oci run --target of the foreign architecture",
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "HELLO build.rs \n");

    // An architecture nothing emulates here (where something does, there is nothing to see).
    if !Path::new("/proc/sys/fs/binfmt_misc/qemu-riscv64").exists() {
        let output = cargo_oci_run("riscv64gc-unknown-linux-gnu");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("cannot run the linux/riscv64 image of `riscv64gc-unknown-linux-gnu`")
                && stderr.contains("`cat /usr/lib/binfmt.d/qemu-riscv64.conf > "),
            "{stderr}"
        );
        assert!(!stderr.contains("Compiling"), "built first: {stderr}");
    }
}

/// `targets = "base"` and `--platform`: the targets are the base's platforms, as the Rust
/// targets of their architectures and the base's C library (or `target-libc`); a base whose C
/// library cannot be told, and `scratch`, are errors saying what to set.
#[test]
fn the_targets_can_be_the_base_images_platforms() {
    let musl = FOREIGN.triple.replace("-gnu", "-musl");
    let host_musl = HOST.triple.replace("-gnu", "-musl");
    if !can_build_for(&FOREIGN) || !has_std(&musl) || !has_std(&host_musl) {
        return;
    }
    let fixture = Fixture::copy("macros");
    // A base of two platforms, with no C library in it: the fixture's own static image.
    let base = fixture.path().join("two-platform-base");
    fixture.build_ok(&[
        "--quiet",
        "--target",
        FOREIGN.triple,
        "--target",
        HOST.triple,
        "--output",
        base.to_str().unwrap(),
    ]);
    let metadata = |extra: &str| {
        format!(
            "[package.metadata.oci]\nbase = \"oci:{}:0.1.0\"\ntargets = \"base\"\n{extra}",
            base.display()
        )
    };
    fixture.set_metadata(&metadata(""));
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("it has neither glibc nor musl): set `target-libc = \"gnu\"`"),
        "{stderr}"
    );

    fixture.set_metadata(&metadata("target-libc = \"musl\"\n"));
    let output = fixture.build(&["-v"]);
    assert_success(&output, "targets = \"base\"");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "Targets macros-app from its base `oci:{}:0.1.0`: {musl}, {host_musl}",
            base.display()
        )),
        "{stderr}"
    );
    each_platform_holds_its_own_binary(&fixture);

    // `--platform` picks some of them.
    let output = fixture.build(&["--quiet", "--platform", &FOREIGN.platform()]);
    assert_success(&output, "--platform");
    let (_, config) = crate::support::manifest_and_config(&fixture.output("macros-app"));
    assert_eq!(config["architecture"], FOREIGN.go);
    let output = fixture.build(&["--quiet", "--platform", "linux/s390x"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("has no linux/s390x image; it has linux/"),
        "{stderr}"
    );

    fixture.set_metadata("[package.metadata.oci]\ntargets = \"base\"\n");
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the base is `scratch`, which has none: list them in `targets`"),
        "{stderr}"
    );
}

/// A glibc base's own C library makes its platforms gnu targets.
#[test]
fn a_glibc_base_makes_its_platforms_gnu_targets() {
    if !tool("umoci") {
        return;
    }
    let fixture = Fixture::copy("macros");
    let base = crate::targets::glibc_base(&fixture, &HOST.libdir().join("libc.so.6"));
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"oci:{}:latest\"\n",
        base.display()
    ));
    let output = fixture.build(&["-v", "--platform", "all"]);
    assert_success(&output, "--platform all on a glibc base");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(": {}\n", HOST.triple)) && stderr.contains("Targets macros-app"),
        "{stderr}"
    );
}

/// `targets = "base"` on a registry base: its platforms come from the index the registry
/// serves.
#[test]
fn the_targets_can_be_a_registry_bases_platforms() {
    let musl = FOREIGN.triple.replace("-gnu", "-musl");
    let host_musl = HOST.triple.replace("-gnu", "-musl");
    if !can_build_for(&FOREIGN) || !has_std(&musl) || !has_std(&host_musl) {
        return;
    }
    let Some(registry) = crate::support::Registry::start(None) else {
        return;
    };
    let fixture = Fixture::copy("macros");
    let repository = format!("{}/two", registry.host);
    fixture.build_ok(&[
        "--quiet",
        "--target",
        FOREIGN.triple,
        "--target",
        HOST.triple,
        "--push",
        &repository,
    ]);
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"{repository}:0.1.0\"\ntargets = \"base\"\n\
         target-libc = \"musl\"\n"
    ));
    let output = fixture.build(&["-v"]);
    assert_success(&output, "targets = \"base\" on a registry base");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "Targets macros-app from its base `docker://{repository}:0.1.0`: {musl}, {host_musl}"
        )),
        "{stderr}"
    );
    each_platform_holds_its_own_binary(&fixture);
}
