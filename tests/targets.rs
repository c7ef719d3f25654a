//! Several architectures: one image per target joined in an index, the builder setting, and the
//! ELF checks. Rust's standard library exists only for the host here, so the foreign binary is a
//! C program from `aarch64-linux-gnu-gcc -static`, packed with `--no-build` and run by qemu.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::{blob, read_json, run, tool, Fixture, Podman};

const HOST: &str = "x86_64-unknown-linux-gnu";
const ARM64: &str = "aarch64-unknown-linux-gnu";

/// A static arm64 program at `path` that prints `hello from arm64`.
fn arm64_program(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let source = path.with_extension("c");
    fs::write(
        &source,
        "#include <stdio.h>\nint main(void) { puts(\"hello from arm64\"); return 0; }\n",
    )
    .unwrap();
    run(Command::new("aarch64-linux-gnu-gcc")
        .arg("-static")
        .arg("-O2")
        .arg("-o")
        .arg(path)
        .arg(&source));
}

/// `cargo build --release --target HOST` in the fixture, as a CI job would before `--no-build`.
fn host_build(fixture: &Fixture) {
    run(Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--release", "--target", HOST])
        .current_dir(fixture.path())
        .env_remove("CARGO_TARGET_DIR"));
}

fn release_dir(fixture: &Fixture, triple: &str) -> PathBuf {
    fixture.path().join("target").join(triple).join("release")
}

#[test]
fn an_arm64_program_and_a_host_build_make_one_index() {
    if !tool("aarch64-linux-gnu-gcc") {
        return;
    }
    let fixture = Fixture::copy("hello");
    let manifest = fixture.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        format!("{text}\n[package.metadata.oci.target.{ARM64}]\nvariant = \"v8\"\nconfig = {{ env = {{ GREETING = \"hi from arm\" }} }}\n"),
    )
    .unwrap();
    host_build(&fixture);
    arm64_program(&release_dir(&fixture, ARM64).join("hello"));
    let stdout = fixture.build_ok(&[
        "--quiet",
        "--no-build",
        "--target",
        HOST,
        "--target",
        ARM64,
        "--message-format",
        "json",
    ]);
    let message: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        message["platforms"],
        json!(["linux/amd64", "linux/arm64/v8"])
    );

    let layout = fixture.layout();
    let top = read_json(&layout.join("index.json"));
    let entry = &top["manifests"][0];
    assert_eq!(
        entry["mediaType"], "application/vnd.oci.image.index.v1+json",
        "every tag points at the index"
    );
    assert_eq!(message["digest"], entry["digest"]);
    let index = blob(&layout, entry["digest"].as_str().unwrap());
    let platforms: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["platform"])
        .collect();
    assert_eq!(
        platforms,
        [
            &json!({"architecture": "amd64", "os": "linux"}),
            &json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
        ]
    );
    let arm_manifest = blob(&layout, index["manifests"][1]["digest"].as_str().unwrap());
    let arm_config = blob(&layout, arm_manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(
        (
            arm_config["architecture"].as_str(),
            arm_config["variant"].as_str()
        ),
        (Some("arm64"), Some("v8"))
    );
    assert_eq!(
        arm_config["config"]["Env"],
        json!(["GREETING=hi from arm", "RUST_LOG=info"]),
        "the per-target table wins"
    );

    if tool("oci-image-tool") {
        run(Command::new("oci-image-tool")
            .args(["validate", "--type", "image", "--ref", "name=0.1.0"])
            .arg(&layout));
    }
    if tool("skopeo") {
        let reference = format!("oci:{}:0.1.0", layout.display());
        let arm: Value = serde_json::from_str(&run(Command::new("skopeo").args([
            "--override-arch",
            "arm64",
            "inspect",
            &reference,
        ])))
        .unwrap();
        assert_eq!(arm["Architecture"], "arm64");
        let host: Value =
            serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &reference])))
                .unwrap();
        assert_eq!(host["Architecture"], "amd64");

        if tool("umoci") && tool("qemu-aarch64-static") {
            let single = fixture.path().join("arm64-only");
            run(Command::new("skopeo")
                .args(["--override-arch", "arm64", "copy", "--quiet", &reference])
                .arg(format!("oci:{}:arm64", single.display())));
            let bundle = fixture.path().join("bundle");
            run(Command::new("umoci")
                .args(["unpack", "--rootless", "--image"])
                .arg(format!("{}:arm64", single.display()))
                .arg(&bundle));
            let program = bundle.join("rootfs/usr/local/bin/hello");
            assert_eq!(
                run(Command::new("qemu-aarch64-static").arg(&program)),
                "hello from arm64\n"
            );
        }
    }
    if let Some(podman) = Podman::new() {
        let output = podman.pull(&layout, "0.1.0").run(&["x"]);
        assert!(
            output.starts_with("args=[\"x\"]\ngreeting=hi there\n"),
            "podman picks the host's image from the index: {output}"
        );
    }

    // A Docker archive holds one platform: asking for one of an index is a clear error.
    let refused = fixture.build(&[
        "--quiet",
        "--no-build",
        "--target",
        HOST,
        "--target",
        ARM64,
        "--format",
        "docker",
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(
            "a Docker archive holds one image per platform; this image is an index of several"
        ),
        "{stderr}"
    );
    assert!(!fixture.path().join("target/oci/hello.docker.tar").exists());
}

#[test]
fn the_builder_setting_runs_a_stand_in_for_cross() {
    let fixture = Fixture::copy("hello");
    let script = fixture.path().join("fake-cross");
    fs::write(
        &script,
        "#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/builder-args.txt\"\nexec cargo \"$@\"\n",
    )
    .unwrap();
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let text = fs::read_to_string(fixture.path().join("Cargo.toml")).unwrap();
    fs::write(
        fixture.path().join("Cargo.toml"),
        text.replace(
            "[package.metadata.oci]\n",
            "[package.metadata.oci]\nbuilder = [\"./fake-cross\", \"build\"]\n",
        ),
    )
    .unwrap();
    fixture.build_ok(&["--quiet", "--target", HOST]);
    let args = fs::read_to_string(fixture.path().join("builder-args.txt")).unwrap();
    assert_eq!(
        args.trim(),
        format!("build --message-format=json-render-diagnostics --package hello --profile release --target {HOST} --bin hello --quiet")
    );
    assert!(
        release_dir(&fixture, HOST).join("hello").is_file(),
        "the artifact path came from cargo's messages"
    );
}

#[test]
fn a_binary_of_the_wrong_architecture_is_refused() {
    if !tool("aarch64-linux-gnu-gcc") {
        return;
    }
    let fixture = Fixture::copy("hello");
    let misplaced = release_dir(&fixture, HOST).join("hello");
    arm64_program(&misplaced);
    let output = fixture.build(&["--quiet", "--no-build", "--target", HOST]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "binary `hello` (`{}`) is AArch64 (64-bit little-endian, e_machine 183), which does not run on linux/amd64",
            misplaced.display()
        )),
        "{stderr}"
    );
    assert!(!fixture.layout().exists());
}

#[test]
fn an_unmapped_triple_needs_its_platform_spelled_out() {
    let fixture = Fixture::copy("hello");
    let output = fixture.build(&["--quiet", "--target", "sparc64-unknown-linux-gnu"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no container platform is known for the target `sparc64-unknown-linux-gnu`; set `os` and `architecture`"), "{stderr}");
    assert!(
        !fixture.path().join("target").exists(),
        "refused before building"
    );
}

/// An OCI layout at `<fixture>/glibc-base`, made by umoci: the host's dynamic loader and the
/// libraries Rust binaries link, with `libc` as the C library.
fn glibc_base(fixture: &Fixture, libc: &Path) -> PathBuf {
    let umoci = |args: &[&str]| run(Command::new("umoci").args(args).current_dir(fixture.path()));
    umoci(&["init", "--layout", "glibc-base"]);
    umoci(&["new", "--image", "glibc-base:latest"]);
    umoci(&[
        "unpack",
        "--rootless",
        "--image",
        "glibc-base:latest",
        "bundle",
    ]);
    let rootfs = fixture.path().join("bundle/rootfs");
    let libdir = rootfs.join("lib/x86_64-linux-gnu");
    fs::create_dir_all(&libdir).unwrap();
    for library in ["ld-linux-x86-64.so.2", "libgcc_s.so.1", "libm.so.6"] {
        fs::copy(
            Path::new("/lib/x86_64-linux-gnu").join(library),
            libdir.join(library),
        )
        .unwrap();
    }
    fs::copy(libc, libdir.join("libc.so.6")).unwrap();
    fs::create_dir_all(rootfs.join("lib64")).unwrap();
    std::os::unix::fs::symlink(
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        rootfs.join("lib64/ld-linux-x86-64.so.2"),
    )
    .unwrap();
    umoci(&["repack", "--image", "glibc-base:latest", "bundle"]);
    fs::remove_dir_all(fixture.path().join("bundle")).unwrap();
    fixture.path().join("glibc-base")
}

/// The hello fixture, dynamically linked this time, on `base`.
fn dynamic_on(fixture: &Fixture, base: &Path) {
    fs::remove_file(fixture.path().join(".cargo/config.toml")).unwrap();
    let text = fs::read_to_string(fixture.path().join("Cargo.toml")).unwrap();
    fs::write(
        fixture.path().join("Cargo.toml"),
        text.replace(
            "[package.metadata.oci]\n",
            &format!(
                "[package.metadata.oci]\nbase = \"oci:{}:latest\"\n",
                base.display()
            ),
        ),
    )
    .unwrap();
}

/// On a parent holding the host's loader and libraries, a dynamically linked binary passes the
/// checks, and podman runs it.
#[test]
fn a_dynamic_binary_on_a_parent_with_its_loader_and_libraries_runs() {
    if !tool("umoci") {
        return;
    }
    let fixture = Fixture::copy("hello");
    let base = glibc_base(&fixture, Path::new("/lib/x86_64-linux-gnu/libc.so.6"));
    dynamic_on(&fixture, &base);
    let output = fixture.build(&["--quiet"]);
    support::assert_success(
        &output,
        "cargo oci build of a dynamic binary on a glibc base",
    );
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("warning"),
        "no ELF warnings"
    );
    if let Some(podman) = Podman::new() {
        let output = podman.pull(&fixture.layout(), "0.1.0").run(&["dyn"]);
        assert!(output.starts_with("args=[\"dyn\"]\n"), "{output}");
    }
}

/// A parent whose C library is older than the binary needs: a real shared library, built by gcc
/// with a version script, that calls itself `libc.so.6` and defines only `GLIBC_2.2.5`.
#[test]
fn a_binary_needing_a_newer_glibc_than_the_parent_has_is_refused() {
    if !tool("umoci") || !tool("cc") {
        return;
    }
    let fixture = Fixture::copy("hello");
    let old = fixture.path().join("old-libc");
    fs::create_dir_all(&old).unwrap();
    fs::write(old.join("libc.c"), "int old_symbol(void) { return 0; }\n").unwrap();
    fs::write(
        old.join("libc.map"),
        "GLIBC_2.2.5 { global: old_symbol; local: *; };\n",
    )
    .unwrap();
    run(Command::new("cc")
        .args([
            "-shared",
            "-fPIC",
            "-nostdlib",
            "-Wl,-soname,libc.so.6",
            "-Wl,--version-script=libc.map",
            "-o",
            "libc.so.6",
            "libc.c",
        ])
        .current_dir(&old));
    let base = glibc_base(&fixture, &old.join("libc.so.6"));
    dynamic_on(&fixture, &base);
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("  - binary `hello` needs GLIBC_2."),
        "{stderr}"
    );
    assert!(
        stderr.contains(", but the image's C library provides only up to GLIBC_2.2.5"),
        "{stderr}"
    );
    assert!(!fixture.layout().exists());
}
