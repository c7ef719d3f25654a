//! What a user sees for the common mistakes: the whole of `cargo oci build`'s stderr (the
//! `error:` line, the `-->` to the `Cargo.toml`, each `Caused by:`, the help) as snapshots, so a
//! change to any part of it shows in review. `SNAPSHOTS=overwrite cargo test --test e2e errors`
//! rewrites the `str![[…]]` below after a deliberate change. Only what differs from run to run
//! is redacted: the fixture's directory as `[ROOT]`, a port as `[PORT]`, the host's target and
//! platform (`[HOST_TARGET]`, `[HOST_PLATFORM]`) and the foreign binary's architecture.

use cargo_oci::{Build, ErrorKind, Verbosity};
use snapbox::{str, Assert, IntoData, Redactions};

use crate::support::host::{FOREIGN, HOST};
use crate::support::Fixture;

/// `cargo oci build ARGS` in `fixture`, which must fail; its stderr compared with `expected`.
fn fails_with(fixture: &Fixture, args: &[&str], redactions: Redactions, expected: impl IntoData) {
    let stderr = failure(fixture, args, redactions);
    Assert::new()
        .action_env(snapbox::assert::DEFAULT_ACTION_ENV)
        .eq(stderr, expected);
}

/// The stderr of `cargo oci build ARGS` in `fixture`, which must fail having built and
/// written nothing, redacted.
fn failure(fixture: &Fixture, args: &[&str], mut redactions: Redactions) -> String {
    let output = fixture.build(args);
    assert_eq!(output.status.code(), Some(101), "{output:?}");
    assert!(!fixture.layout().exists(), "a failed build writes nothing");
    redactions
        .insert("[ROOT]", fixture.path().to_owned())
        .unwrap();
    redactions.insert("[HOST_TARGET]", HOST.triple).unwrap();
    redactions.redact(&String::from_utf8_lossy(&output.stderr))
}

/// Each bad value, one fixture each: the whole error names the key and the `Cargo.toml`, and
/// the build stops before cargo runs.
#[test]
fn each_bad_value_names_its_key_and_its_manifest() {
    let cases = [
        "[package.metadata.oci.config]\nexposed-port = [8080]\n",
        "[package.metadata.oci.config]\nexposed-ports = [\"8080/http\"]\n",
        "[package.metadata.oci.config]\nmemory = \"1G\"\n",
        "[package.metadata.oci]\nbins = [\"server\"]\n",
        "[package.metadata.oci]\nfiles = [{ src = \"missing\", dest = \"/srv\" }]\n",
        "[package.metadata.oci.config]\nstop-signal = \"SIGSTOPP\"\n",
        "[package.metadata.oci.config]\n\
         healthcheck = { test = [\"CMD\", \"x\"], interval = \"often\" }\n",
        "[package.metadata.oci.config]\nenv = [\"NOVALUE\"]\n",
        "[package.metadata.oci]\ntags = [\"{name}:{version}+build\"]\n",
    ];
    let mut seen = String::new();
    for metadata in cases {
        let fixture = Fixture::copy("hello");
        fixture.set_metadata(metadata);
        seen += &format!("{metadata}{}\n", failure(&fixture, &[], Redactions::new()));
        assert!(
            !fixture.path().join("target").exists(),
            "{metadata}: something was built or written"
        );
    }
    Assert::new()
        .action_env(snapbox::assert::DEFAULT_ACTION_ENV)
        .eq(
            seen,
            str![[r#"
[package.metadata.oci.config]
exposed-port = [8080]
error: invalid `package.metadata.oci.config.exposed-port`: unknown key `exposed-port`
help: a key with a similar name exists: `exposed-ports`
  --> [ROOT]/Cargo.toml

[package.metadata.oci.config]
exposed-ports = ["8080/http"]
error: invalid `package.metadata.oci.config.exposed-ports[0]`: `8080/http`: the protocol must be `tcp`, `udp` or `sctp`
  --> [ROOT]/Cargo.toml

[package.metadata.oci.config]
memory = "1G"
error: invalid `package.metadata.oci.config.memory`: invalid type: string "1G", expected i64
  --> [ROOT]/Cargo.toml

[package.metadata.oci]
bins = ["server"]
error: invalid `package.metadata.oci.bins`: `server` is not a binary of package `hello` (it has: `hello`)
  --> [ROOT]/Cargo.toml

[package.metadata.oci]
files = [{ src = "missing", dest = "/srv" }]
error: invalid `package.metadata.oci.files[0]`: `src` `[ROOT]/missing` does not exist
  --> [ROOT]/Cargo.toml

[package.metadata.oci.config]
stop-signal = "SIGSTOPP"
error: invalid `package.metadata.oci.config.stop-signal`: `SIGSTOPP` is not a signal name like "SIGTERM" or a number from 1 to 64
  --> [ROOT]/Cargo.toml

[package.metadata.oci.config]
healthcheck = { test = ["CMD", "x"], interval = "often" }
error: invalid `package.metadata.oci.config.healthcheck.interval`: `often` is not a duration like "30s", "1m30s" or "500ms"
  --> [ROOT]/Cargo.toml

[package.metadata.oci.config]
env = ["NOVALUE"]
error: invalid `package.metadata.oci.config.env[0]`: `NOVALUE` is not of the form NAME=value
  --> [ROOT]/Cargo.toml

[package.metadata.oci]
tags = ["{name}:{version}+build"]
error: invalid `package.metadata.oci.tags[0]`: invalid image reference `hello:0.1.0+build`: a tag is 1 to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`
  --> [ROOT]/Cargo.toml


"#]],
        );
}

#[test]
fn a_misspelt_key() {
    let fixture = Fixture::copy("hello");
    fixture.set_metadata("[package.metadata.oci]\nbsae = \"scratch\"\n");
    fails_with(
        &fixture,
        &["--color", "never"],
        Redactions::new(),
        str![[r#"
error: invalid `package.metadata.oci.bsae`: unknown key `bsae`
help: a key with a similar name exists: `base`
  --> [ROOT]/Cargo.toml

"#]],
    );
}

#[test]
fn a_misspelt_key_in_an_image_table() {
    let fixture = Fixture::copy("hello");
    fixture.set_metadata(
        "[package.metadata.oci.images.hello]\n\
         [package.metadata.oci.images.hello.config]\nusr = \"65532\"\n",
    );
    fails_with(
        &fixture,
        &["--color", "never"],
        Redactions::new(),
        str![[r#"
error: invalid `package.metadata.oci.images.hello.config.usr`: unknown key `usr`
help: a key with a similar name exists: `user`
  --> [ROOT]/Cargo.toml

"#]],
    );
}

/// A workspace default is in the workspace's `Cargo.toml`, and the error points there.
#[test]
fn a_misspelt_workspace_default() {
    let fixture = Fixture::copy("services");
    let manifest = fixture.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("\ntags = ", "\ntgas = ")).unwrap();
    fails_with(
        &fixture,
        &["--color", "never", "--package", "api"],
        Redactions::new(),
        str![[r#"
error: invalid `workspace.metadata.oci.tgas`: unknown key `tgas`
help: a key with a similar name exists: `tags`
  --> [ROOT]/Cargo.toml

"#]],
    );
}

#[test]
fn a_value_of_the_wrong_type() {
    let fixture = Fixture::copy("hello");
    fixture.set_metadata("[package.metadata.oci]\ntags = \"hello:latest\"\n");
    fails_with(
        &fixture,
        &["--color", "never"],
        Redactions::new(),
        str![[r#"
error: invalid `package.metadata.oci.tags`: invalid type: string "hello:latest", expected a sequence
  --> [ROOT]/Cargo.toml

"#]],
    );
}

#[test]
fn a_wrong_value_in_a_list() {
    let fixture = Fixture::copy("hello");
    fixture.set_metadata(
        "[package.metadata.oci]\n\
         dirs = [{ path = \"/data\" }, { path = \"/cache\", mode = \"0o7777777\" }]\n",
    );
    fails_with(
        &fixture,
        &["--color", "never"],
        Redactions::new(),
        str![[r#"
error: invalid `package.metadata.oci.dirs[1].mode`: `0o7777777` is not a mode like "0640": up to four octal digits
  --> [ROOT]/Cargo.toml

"#]],
    );
}

/// The second `--tag` is the one named: the plan's `tags[1]`, said as the user typed it.
#[test]
fn a_wrong_tag_on_the_command_line() {
    let fixture = Fixture::copy("hello");
    fails_with(
        &fixture,
        &[
            "--color",
            "never",
            "--tag",
            "hello:1",
            "--tag",
            "hello:{git_sha}",
        ],
        Redactions::new(),
        str![[r#"
error: package `hello`: invalid `--tag hello:{git_sha}`: `{git_sha}` needs a git checkout: `[ROOT]` is not in a git checkout

"#]],
    );
}

#[test]
fn a_missing_base() {
    let fixture = Fixture::copy("hello");
    fixture.set_metadata("[package.metadata.oci]\nbase = \"oci:./images/debian:12\"\n");
    fails_with(
        &fixture,
        &["--color", "never"],
        Redactions::new(),
        str![[r#"
error: failed to read the base image `oci:[ROOT]/images/debian:12`

Caused by:
  `oci:[ROOT]/images/debian:12` is not a usable image: it has no `index.json`

"#]],
    );
}

#[test]
fn an_unreachable_registry() {
    let fixture = Fixture::copy("hello");
    let port = closed_port();
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"127.0.0.1:{port}/debian:12\"\n"
    ));
    let mut redactions = Redactions::new();
    redactions.insert("[PORT]", port.to_string()).unwrap();
    fails_with(
        &fixture,
        &["--color", "never"],
        redactions,
        str![[r#"
error: failed to read the base image `docker://127.0.0.1:[PORT]/debian:12`

Caused by:
  failed to connect to registry `127.0.0.1:[PORT]`

Caused by:
  Connection refused (os error 111)

"#]],
    );
}

#[test]
fn a_binary_of_the_wrong_architecture() {
    if !crate::support::tool(FOREIGN.gcc) {
        return;
    }
    let fixture = Fixture::copy("hello");
    crate::targets::foreign_program(
        &fixture
            .path()
            .join("target")
            .join(HOST.triple)
            .join("release/hello"),
    );
    let mut redactions = Redactions::new();
    redactions.insert("[FOREIGN_ELF]", FOREIGN.elf).unwrap();
    redactions
        .insert("[HOST_PLATFORM]", HOST.platform())
        .unwrap();
    fails_with(
        &fixture,
        &["--color", "never", "--no-build", "--target", HOST.triple],
        redactions,
        str![[r#"
error: the [HOST_PLATFORM] image would not run its binaries:
  - binary `hello` (`[ROOT]/target/[HOST_TARGET]/release/hello`) is [FOREIGN_ELF], which does not run on [HOST_PLATFORM]
help: link statically (on a gnu target, `rustflags = ["-C", "target-feature=+crt-static"]` in the metadata; or a `*-linux-musl` target), use a `base` that has them, or set `elf-check = "warn"` to build anyway

"#]],
    );
}

/// The same mistakes through the library: each of the kind a caller matches on to say what to
/// fix, the engine's errors classified by the engine.
#[test]
fn each_mistake_is_of_its_kind() {
    let unreachable = format!("base = \"127.0.0.1:{}/debian:12\"", closed_port());
    for (metadata, kind) in [
        ("tags = \"hello:latest\"", ErrorKind::Metadata),
        ("base = \"oci:./images/debian:12\"", ErrorKind::Base),
        (unreachable.as_str(), ErrorKind::Registry),
    ] {
        let fixture = Fixture::copy("hello");
        fixture.set_metadata(&format!("[package.metadata.oci]\n{metadata}\n"));
        let error = Build::new()
            .current_dir(fixture.path())
            .verbosity(Verbosity::Quiet)
            .run()
            .unwrap_err();
        assert_eq!(error.kind(), kind, "{metadata}: {error}");
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
