//! The command line as cargo's users expect it: colour by `--color` and `CARGO_TERM_COLOR`,
//! errors with cargo's `Caused by:` list, cargo's build flags passed to cargo, `--bin`,
//! `CARGO_TERM_QUIET`/`CARGO_TERM_VERBOSE`, cargo's exit codes, `-vV`.

use std::fs;

use crate::support::{assert_success, cargo_oci, layer_paths, manifest_and_config, Fixture};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A status verb as cargo draws it: bright green and bold, right-aligned.
const PACKING: &str = "\x1b[1m\x1b[92m     Packing\x1b[0m hello (";
/// `error:` in bright red and bold, its colon bold.
const ERROR: &str = "\x1b[1m\x1b[91merror\x1b[0m\x1b[1m:\x1b[0m ";

#[test]
fn colour_follows_cargo_term_color_and_the_color_flag() {
    let fixture = Fixture::copy("hello");
    // In a pipe, as in CI: `CARGO_TERM_COLOR=always` colours our lines and cargo's.
    let output = fixture.build_with_env(&[], &[("CARGO_TERM_COLOR", "always")]);
    assert_success(&output, "cargo oci build");
    let stderr = text(&output.stderr);
    assert!(stderr.contains(PACKING), "{stderr:?}");
    assert!(
        stderr.contains("\x1b[1m\x1b[92m   Compiling\x1b[0m"),
        "{stderr:?}"
    );

    // `--color never` wins over the variable: not one escape, ours or cargo's.
    let host = crate::support::host::HOST.triple;
    fs::remove_dir_all(fixture.path().join("target").join(host)).unwrap();
    let output = fixture.build_with_env(
        &["--color", "never", "--verbose"],
        &[("CARGO_TERM_COLOR", "always")],
    );
    assert_success(&output, "cargo oci build --color never");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("     Packing hello ("), "{stderr}");
    assert!(stderr.contains("   Compiling hello"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");

    // `NO_COLOR` is no match for `--color always`; the error is red, its causes listed.
    let output = cargo_oci()
        .args(["--color", "always", "verify", "--layout", "no-such-layout"])
        .env("NO_COLOR", "1")
        .current_dir(fixture.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(101), "{output:?}");
    assert_eq!(
        text(&output.stderr),
        format!(
            "{ERROR}failed to check the layout `no-such-layout`\n\nCaused by:\n  \
             `oci:no-such-layout` is not a usable image: it is not a directory\n"
        )
    );
    // And without colour, the same words.
    let output = fixture.cargo_oci(&["verify", "--layout", "no-such-layout"]);
    assert!(text(&output.stderr)
        .starts_with("error: failed to check the layout `no-such-layout`\n\nCaused by:\n  `oci:"));
}

#[test]
fn cargo_build_flags_reach_cargo() {
    let fixture = Fixture::copy("hello");
    // `-vv` shows the environment cargo gives rustc, where `--config env.…` puts its variable.
    let output = fixture.build(&[
        "-j",
        "1",
        "--config",
        "env.CARGO_OCI_TEST_MARK=\"from-config\"",
        "-vv",
        "--keep-going",
        "--timings",
    ]);
    assert_success(&output, "cargo oci build -j 1 --config … -vv");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("CARGO_OCI_TEST_MARK=from-config"),
        "{stderr}"
    );
    assert!(
        stderr.contains("       Layer sha256:"),
        "-vv is verbose: {stderr}"
    );
    assert!(fixture
        .path()
        .join("target/cargo-timings/cargo-timing.html")
        .is_file());

    // What cargo alone refuses shows that it was passed.
    let output = fixture.build(&["-j", "0"]);
    assert_eq!(output.status.code(), Some(101));
    assert!(
        text(&output.stderr).contains("jobs may not be 0"),
        "{output:?}"
    );

    // `--ignore-rust-version`, to `cargo build`; `-Z` to every cargo run, `cargo metadata`'s too.
    let manifest = fixture.path().join("Cargo.toml");
    let toml = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        toml.replacen(
            "edition = \"2021\"",
            "edition = \"2021\"\nrust-version = \"1.999\"",
            1,
        ),
    )
    .unwrap();
    let output = fixture.build(&["--quiet"]);
    assert_eq!(output.status.code(), Some(101));
    assert!(
        text(&output.stderr).contains("requires rustc 1.999"),
        "{output:?}"
    );
    assert_success(
        &fixture.build(&["--quiet", "--ignore-rust-version"]),
        "cargo oci build --ignore-rust-version",
    );
    let output = fixture.build(&["--quiet", "-Z", "no-such-flag"]);
    assert_eq!(output.status.code(), Some(101));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("`cargo metadata`") && stderr.contains("-Z"),
        "{stderr}"
    );
}

#[test]
fn bin_builds_and_stages_only_the_images_of_those_binaries() {
    let fixture = Fixture::copy("services");
    let stdout = fixture.build_ok(&["--workspace", "--bin", "migrate", "--quiet"]);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("oci ")).count(),
        1,
        "{stdout}"
    );
    let oci = fixture.path().join("target/oci");
    assert!(oci.join("migrate").is_dir());
    for other in ["seed", "api", "worker"] {
        assert!(!oci.join(other).exists(), "{other} was built");
    }
    let (manifest, _) = manifest_and_config(&oci.join("migrate"));
    let layers = manifest["layers"].as_array().unwrap();
    let bins = layer_paths(
        &oci.join("migrate"),
        layers.last().unwrap()["digest"].as_str().unwrap(),
    );
    assert!(
        bins.contains(&"usr/local/bin/migrate".to_owned()),
        "{bins:?}"
    );
    assert!(!bins.iter().any(|p| p.ends_with("/seed")), "{bins:?}");
    // Only that binary was built.
    let release = fixture
        .path()
        .join("target")
        .join(crate::support::host::HOST.triple);
    assert!(release.join("release/migrate").is_file());
    for other in ["seed", "api", "worker"] {
        assert!(
            !release.join("release").join(other).exists(),
            "{other} was built"
        );
    }

    // A binary no image packs, and an image that packs another binary too: refused, before
    // anything is built.
    let output = fixture.build(&["--workspace", "--bin", "nope"]);
    assert_eq!(output.status.code(), Some(101));
    assert!(
        text(&output.stderr).contains("`--bin nope`: no chosen image packs a binary `nope`"),
        "{output:?}"
    );
    let tools = fixture.path().join("tools/Cargo.toml");
    let toml = fs::read_to_string(&tools).unwrap();
    let whole = toml.split("\n[package.metadata.oci.images").next().unwrap();
    fs::write(&tools, whole).unwrap();
    let output = fixture.build(&["-p", "tools", "--bin", "seed"]);
    assert_eq!(output.status.code(), Some(101));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "`--bin seed` chooses the image `tools`, which also packs `migrate`; `--bin` \
             chooses whole images"
        ) && stderr.contains(&tools.display().to_string()),
        "{stderr}"
    );
    assert!(!oci.join("tools").exists());
}

#[test]
fn cargo_term_quiet_and_verbose_are_honoured_and_every_subcommand_takes_the_flags() {
    let fixture = Fixture::copy("hello");
    let output = fixture.build_with_env(&[], &[("CARGO_TERM_QUIET", "true")]);
    assert_success(&output, "CARGO_TERM_QUIET=true cargo oci build");
    assert!(!text(&output.stderr).contains("Packing"), "{output:?}");
    let output = fixture.build_with_env(&[], &[("CARGO_TERM_VERBOSE", "true")]);
    assert_success(&output, "CARGO_TERM_VERBOSE=true cargo oci build");
    assert!(
        text(&output.stderr).contains("    Manifest sha256:"),
        "{output:?}"
    );
    // A flag wins over the variable.
    let output = fixture.build_with_env(&["-v"], &[("CARGO_TERM_QUIET", "true")]);
    assert!(
        text(&output.stderr).contains("    Manifest sha256:"),
        "{output:?}"
    );
    let output = fixture.build_with_env(&[], &[("CARGO_TERM_QUIET", "maybe")]);
    assert_eq!(output.status.code(), Some(101));
    assert!(
        text(&output.stderr).contains("`CARGO_TERM_QUIET`"),
        "{output:?}"
    );

    // Each subcommand takes `-q`, `-v` and `--color` (a usage error would exit 1).
    let layout = fixture.layout().display().to_string();
    for args in [
        &["push", "-q", "--layout", "nowhere", "localhost:1/x"][..],
        &[
            "index",
            "-v",
            "--tag",
            "localhost:1/x:1",
            "localhost:1/x@sha256:00",
        ],
        &["inspect", "-q", "--color", "never", "oci:nowhere"],
        &["verify", "-v", "--layout", "nowhere"],
    ] {
        let output = fixture.cargo_oci(args);
        assert_eq!(output.status.code(), Some(101), "{args:?}: {output:?}");
    }
    let output = fixture.cargo_oci(&["inspect", "-q", &format!("oci:{layout}")]);
    assert_success(&output, "cargo oci inspect -q");
    let output = fixture.cargo_oci(&["build", "--no-such-flag"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a usage error is 1, as cargo's"
    );
}

#[test]
fn version_with_verbose_prints_the_commit_as_cargo_does() {
    let version = env!("CARGO_PKG_VERSION");
    let output = cargo_oci().arg("-V").output().unwrap();
    assert_success(&output, "cargo oci -V");
    let short = text(&output.stdout);
    assert!(
        short.starts_with(&format!("cargo-oci {version}")),
        "{short}"
    );
    assert_eq!(short.lines().count(), 1, "{short}");

    let output = cargo_oci().arg("-vV").output().unwrap();
    assert_success(&output, "cargo oci -vV");
    let long = text(&output.stdout);
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(lines[0], short.trim_end());
    assert_eq!(lines[1], format!("release: {version}"));
    let host = lines.last().unwrap();
    assert!(
        host.starts_with("host: ") && host.contains("-linux-"),
        "{long}"
    );
    // Built from a git checkout (as the tests are), the commit is there; else neither line.
    let hash = lines.iter().find_map(|l| l.strip_prefix("commit-hash: "));
    let date = lines.iter().find_map(|l| l.strip_prefix("commit-date: "));
    match (hash, date) {
        (Some(hash), Some(date)) => {
            assert!(hash.len() == 40 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(date.len() == 10 && date.as_bytes()[4] == b'-', "{date}");
            assert_eq!(
                lines[0],
                format!("cargo-oci {version} ({} {date})", &hash[..9])
            );
            assert_eq!(lines.len(), 5, "{long}");
        }
        (None, None) => assert_eq!(lines.len(), 3, "{long}"),
        _ => panic!("a commit hash without its date, or the reverse: {long}"),
    }
}

/// Each JSON line of stdout, parsed.
fn messages(stdout: &[u8]) -> Vec<serde_json::Value> {
    text(stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Every JSON message names its kind in cargo's `reason` field, beside the fields it had.
#[test]
fn every_json_message_has_a_reason() {
    let fixture = Fixture::copy("hello");
    let tag = format!("cargo-oci-reason-{}:1", std::process::id());
    let mut args = vec![
        "--message-format",
        "json",
        "--format",
        "oci",
        "--format",
        "docker",
    ];
    let load = crate::support::tool("podman");
    if load {
        args.extend(["--load=podman", "--tag", &tag]);
    }
    let built = messages(fixture.build_ok(&args).as_bytes());
    if load {
        let _ = std::process::Command::new("podman")
            .args(["rmi", &tag])
            .output();
    }
    let reasons: Vec<(&str, &str)> = built
        .iter()
        .map(|m| (m["reason"].as_str().unwrap(), m["format"].as_str().unwrap()))
        .collect();
    let mut expected = vec![
        ("image-built", "oci"),
        ("image-built", "docker"),
        ("sbom-written", "sbom"),
    ];
    if load {
        expected.push(("image-loaded", "load"));
    }
    assert_eq!(reasons, expected);
    assert!(built[0]["digest"].as_str().unwrap().starts_with("sha256:"));

    let json = ["--message-format", "json", "--quiet"];
    let reason_of = |args: &[&str], code: i32| {
        let output = fixture.cargo_oci(&[args, &json[..]].concat());
        assert_eq!(output.status.code(), Some(code), "{args:?}: {output:?}");
        let [message] = messages(&output.stdout).try_into().unwrap();
        message["reason"].as_str().unwrap().to_owned()
    };
    assert_eq!(reason_of(&["inspect"], 0), "image-inspected");
    assert_eq!(
        reason_of(&["verify", "--layout", "target/oci/hello"], 0),
        "layout-checked"
    );
    assert_eq!(reason_of(&["verify"], 0), "image-verified");
    // A key that signed nothing here: checked, not verified, exit code 1.
    assert!(crate::support::tool("openssl"));
    let key = fixture.path().join("key.pem");
    let public = fixture.path().join("public.pem");
    crate::support::run(
        std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&key),
    );
    crate::support::run(
        std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public),
    );
    let public = public.display().to_string();
    assert_eq!(
        reason_of(&["verify", "--key", &public], 1),
        "attestations-verified"
    );
}

/// `verify`: 1 when the check was made and failed, 101 when it could not be made.
#[test]
fn verify_exits_1_when_not_reproducible_and_101_when_it_cannot_check() {
    let fixture = Fixture::copy("hello");
    // Nothing built to compare with: no verdict.
    let output = fixture.cargo_oci(&["verify", "--quiet"]);
    assert_eq!(output.status.code(), Some(101), "{output:?}");
    fixture.build_ok(&["--quiet"]);
    assert_success(
        &fixture.cargo_oci(&["verify", "--quiet"]),
        "cargo oci verify",
    );
    // The metadata changed since: the rebuild differs, a verdict.
    let manifest = fixture.path().join("Cargo.toml");
    let toml = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, toml.replace("hi there", "changed")).unwrap();
    let output = fixture.cargo_oci(&["verify", "--quiet"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(text(&output.stderr).contains("`hello` is not reproducible"));
    // A damaged layout is a verdict too; a missing one is not.
    let index = fixture.layout().join("index.json");
    let (manifest, _) = manifest_and_config(&fixture.layout());
    let config = manifest["config"]["digest"].as_str().unwrap();
    fs::remove_file(
        fixture
            .layout()
            .join("blobs/sha256")
            .join(config.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert!(index.is_file());
    let output = fixture.cargo_oci(&["verify", "--layout", "target/oci/hello"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let output = fixture.cargo_oci(&["verify", "--layout", "target/oci/nothing"]);
    assert_eq!(output.status.code(), Some(101), "{output:?}");
}

/// A build that fails exits 101, as cargo does.
#[test]
fn a_failed_build_exits_101() {
    let fixture = Fixture::copy("hello");
    fs::write(fixture.path().join("src/main.rs"), "fn main() { nope }").unwrap();
    let output = fixture.build(&["--quiet"]);
    assert_eq!(output.status.code(), Some(101), "{output:?}");
    assert!(text(&output.stderr).contains("`cargo build` failed"));
}
