//! Several architectures: one image per target joined in an index, the builder setting, and the
//! ELF checks, on a foreign binary that is a static C program from a cross gcc
//! (`support::host::FOREIGN`), packed with `--no-build` and run by qemu. Real cargo builds for
//! the foreign target are in `cross.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::host::{FOREIGN, HOST};
use crate::support::{blob, read_json, run, tool, Fixture, Podman};
use serde_json::{json, Value};

/// A static program of the foreign architecture at `path`, printing `hello from <arch>`.
pub fn foreign_program(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let source = path.with_extension("c");
    fs::write(
        &source,
        format!(
            "#include <stdio.h>\nint main(void) {{ puts(\"hello from {}\"); return 0; }}\n",
            FOREIGN.go
        ),
    )
    .unwrap();
    run(Command::new(FOREIGN.gcc)
        .arg("-static")
        .arg("-O2")
        .arg("-o")
        .arg(path)
        .arg(&source));
}

/// `cargo build --release --target HOST` in the fixture, as a CI job would before `--no-build`.
fn host_build(fixture: &Fixture) {
    run(Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--release", "--target", HOST.triple])
        .current_dir(fixture.path())
        .env_remove("CARGO_TARGET_DIR"));
}

fn release_dir(fixture: &Fixture, triple: &str) -> PathBuf {
    fixture.path().join("target").join(triple).join("release")
}

#[test]
fn a_foreign_program_and_a_host_build_make_one_index() {
    if !tool(FOREIGN.gcc) {
        return;
    }
    let fixture = Fixture::copy("hello");
    let manifest = fixture.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        format!(
            "{text}\n[package.metadata.oci.target.{}]\nvariant = \"{}\"\n\
             config = {{ env = {{ GREETING = \"hi from abroad\" }} }}\n",
            FOREIGN.triple, FOREIGN.variant
        ),
    )
    .unwrap();
    host_build(&fixture);
    foreign_program(&release_dir(&fixture, FOREIGN.triple).join("hello"));
    let stdout = fixture.build_ok(&[
        "--quiet",
        "--no-build",
        "--target",
        HOST.triple,
        "--target",
        FOREIGN.triple,
        "--message-format",
        "json",
    ]);
    let messages: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let message = &messages[0];
    let foreign = format!("{}/{}", FOREIGN.platform(), FOREIGN.variant);
    assert_eq!(message["platforms"], json!([HOST.platform(), foreign]));

    let layout = fixture.layout();
    let top = read_json(&layout.join("index.json"));
    // One SBOM per platform, each about that platform's manifest, not the index.
    let sboms: Vec<&Value> = messages.iter().filter(|m| m["format"] == "sbom").collect();
    assert_eq!(sboms.len(), 2, "{stdout}");
    let platform_index =
        crate::support::blob(&layout, top["manifests"][0]["digest"].as_str().unwrap());
    let referrers: Vec<&Value> = top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] == "application/spdx+json")
        .collect();
    assert_eq!(referrers.len(), 2, "{top}");
    for (referrer, platform) in referrers
        .iter()
        .zip(platform_index["manifests"].as_array().unwrap())
    {
        let artifact = crate::support::blob(&layout, referrer["digest"].as_str().unwrap());
        assert_eq!(artifact["subject"]["digest"], platform["digest"]);
    }
    // And one provenance per platform, its statement about that platform's manifest and
    // target.
    let provenances: Vec<&Value> = top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] == "application/vnd.in-toto+json")
        .collect();
    assert_eq!(provenances.len(), 2, "{top}");
    for ((referrer, platform), triple) in provenances
        .iter()
        .zip(platform_index["manifests"].as_array().unwrap())
        .zip([HOST.triple, FOREIGN.triple])
    {
        let artifact = crate::support::blob(&layout, referrer["digest"].as_str().unwrap());
        assert_eq!(artifact["subject"]["digest"], platform["digest"]);
        let statement =
            crate::support::blob(&layout, artifact["layers"][0]["digest"].as_str().unwrap());
        assert_eq!(
            format!(
                "sha256:{}",
                statement["subject"][0]["digest"]["sha256"]
                    .as_str()
                    .unwrap()
            ),
            platform["digest"].as_str().unwrap()
        );
        let parameters = &statement["predicate"]["buildDefinition"]["externalParameters"];
        assert_eq!(parameters["target"], triple);
        assert_eq!(parameters["targets"], json!([HOST.triple, FOREIGN.triple]));
    }
    // Signed, every platform's provenance verifies with the public key.
    if tool("openssl") {
        let key = fixture.path().join("key.pem");
        run(Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&key));
        let public = fixture.path().join("pub.pem");
        run(Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public));
        let key = key.display().to_string();
        let signed = tempfile::tempdir().unwrap();
        let signed = signed.path().join("image");
        fixture.build_ok(&[
            "--quiet",
            "--no-build",
            "--target",
            HOST.triple,
            "--target",
            FOREIGN.triple,
            "--sign-key",
            &key,
            "--output",
            &signed.display().to_string(),
        ]);
        let output = fixture.cargo_oci(&[
            "verify",
            "--key",
            &public.display().to_string(),
            &format!("oci:{}:0.1.0", signed.display()),
        ]);
        crate::support::assert_success(&output, "verify --key of both platforms");
        let said = String::from_utf8(output.stdout).unwrap();
        assert_eq!(said.matches(": verified:").count(), 2, "{said}");
    }
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
            &json!({"architecture": HOST.go, "os": "linux"}),
            &json!({"architecture": FOREIGN.go, "os": "linux", "variant": FOREIGN.variant})
        ]
    );
    let arm_manifest = blob(&layout, index["manifests"][1]["digest"].as_str().unwrap());
    let arm_config = blob(&layout, arm_manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(
        (
            arm_config["architecture"].as_str(),
            arm_config["variant"].as_str()
        ),
        (Some(FOREIGN.go), Some(FOREIGN.variant))
    );
    assert_eq!(
        arm_config["config"]["Env"],
        json!(["GREETING=hi from abroad", "RUST_LOG=info"]),
        "the per-target table wins"
    );

    if tool("oci-image-tool") {
        // It cannot pick the image among its SBOMs and provenance by `--ref` (see oracles.rs):
        // it judges the same build without them.
        let without = tempfile::tempdir().unwrap();
        fixture.build_ok(&[
            "--quiet",
            "--no-build",
            "--target",
            HOST.triple,
            "--target",
            FOREIGN.triple,
            "--sbom",
            "none",
            "--provenance",
            "none",
            "--output",
            &without.path().join("image").display().to_string(),
        ]);
        run(Command::new("oci-image-tool")
            .args(["validate", "--type", "image", "--ref", "name=0.1.0"])
            .arg(without.path().join("image")));
    }
    if tool("skopeo") {
        let reference = format!("oci:{}:0.1.0", layout.display());
        let arm: Value = serde_json::from_str(&run(Command::new("skopeo").args([
            "--override-arch",
            FOREIGN.go,
            "inspect",
            &reference,
        ])))
        .unwrap();
        assert_eq!(arm["Architecture"], FOREIGN.go);
        let host: Value =
            serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &reference])))
                .unwrap();
        assert_eq!(host["Architecture"], HOST.go);

        if tool("umoci") && tool(FOREIGN.qemu) {
            let single = fixture.path().join("foreign-only");
            run(Command::new("skopeo")
                .args(["--override-arch", FOREIGN.go, "copy", "--quiet", &reference])
                .arg(format!("oci:{}:foreign", single.display())));
            let bundle = fixture.path().join("bundle");
            run(Command::new("umoci")
                .args(["unpack", "--rootless", "--image"])
                .arg(format!("{}:foreign", single.display()))
                .arg(&bundle));
            let program = bundle.join("rootfs/usr/local/bin/hello");
            assert_eq!(
                run(Command::new(FOREIGN.qemu).arg(&program)),
                format!("hello from {}\n", FOREIGN.go)
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
        HOST.triple,
        "--target",
        FOREIGN.triple,
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
    fixture.build_ok(&["--quiet", "--target", HOST.triple]);
    let args = fs::read_to_string(fixture.path().join("builder-args.txt")).unwrap();
    assert_eq!(
        args.trim(),
        format!(
            "build --message-format=json-render-diagnostics --package hello --profile release \
             --target {} --bin hello --quiet",
            HOST.triple
        )
    );
    assert!(
        release_dir(&fixture, HOST.triple).join("hello").is_file(),
        "the artifact path came from cargo's messages"
    );
}

#[test]
fn an_unmapped_triple_needs_its_platform_spelled_out() {
    let fixture = Fixture::copy("hello");
    let output = fixture.build(&["--quiet", "--target", "sparc64-unknown-linux-gnu"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "no container platform is known for the target `sparc64-unknown-linux-gnu`; \
             set `os` and `architecture`"
        ),
        "{stderr}"
    );
    assert!(
        !fixture.path().join("target").exists(),
        "refused before building"
    );
}

/// An OCI layout at `<fixture>/glibc-base`, made by umoci: the host's dynamic loader and the
/// libraries Rust binaries link, with `libc` as the C library.
pub fn glibc_base(fixture: &Fixture, libc: &Path) -> PathBuf {
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
    let libdir = rootfs.join("lib").join(HOST.multiarch);
    fs::create_dir_all(&libdir).unwrap();
    let loader = Path::new(HOST.loader).file_name().unwrap();
    // libpthread and libdl: what a binary linked against an older glibc (zigbuild's
    // `….2.17`) needs beside libc.
    let libraries = [
        "libgcc_s.so.1",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
    ];
    for library in std::iter::once(loader).chain(libraries.iter().map(|l| l.as_ref())) {
        fs::copy(HOST.libdir().join(library), libdir.join(library)).unwrap();
    }
    fs::copy(libc, libdir.join("libc.so.6")).unwrap();
    // Where the binary looks for its loader, a link to where Debian keeps it.
    let interp = rootfs.join(HOST.loader.trim_start_matches('/'));
    if !interp.exists() {
        fs::create_dir_all(interp.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(HOST.libdir().join(loader), interp).unwrap();
    }
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
    let base = glibc_base(&fixture, &HOST.libdir().join("libc.so.6"));
    dynamic_on(&fixture, &base);
    let output = fixture.build(&["--quiet"]);
    crate::support::assert_success(
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
