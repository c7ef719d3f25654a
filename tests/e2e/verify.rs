//! `cargo oci verify`: a layout's integrity (intact after a build; a flipped byte in a layer and
//! a missing config each named), and a rebuild in a scratch target directory compared with the
//! build before it: reproducible, with `SOURCE_DATE_EPOCH` passed through; a build script that
//! embeds the time caught, the differing file named; a config-only change said to be one; and
//! an image in a registry, by digest.

use std::fs;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::host::HOST;
use crate::support::{assert_success, cargo_oci, manifest_and_config, read_json, run, tool};
use crate::support::{Fixture, Registry};

fn index_digest(fixture: &Fixture) -> String {
    read_json(&fixture.layout().join("index.json"))["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `cargo oci ARGS` in the fixture with `env` set.
fn cargo_oci_with_env(fixture: &Fixture, args: &[&str], env: &[(&str, &str)]) -> Output {
    cargo_oci()
        .args(args)
        .current_dir(fixture.path())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Whether a scratch target directory of `verify` is left in the fixture's `target`.
fn scratch_left(fixture: &Fixture) -> bool {
    fs::read_dir(fixture.path().join("target"))
        .unwrap()
        .any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".oci-verify-")
        })
}

#[test]
fn verify_layout_passes_a_fresh_build_and_names_a_damaged_blob() {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    let layout = fixture.layout();
    let output = fixture.cargo_oci(&["verify", "--layout", "target/oci/hello"]);
    assert_success(&output, "cargo oci verify --layout");
    let stdout = text(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("target/oci/hello is intact: "),
        "{stdout}"
    );
    assert!(
        stdout.contains("every digest, size and diff_id as named (2 layers decompressed)"),
        "{stdout}"
    );

    // One byte of the binaries' layer flipped, in a copy of its own (the layout's blob is a
    // link into the build cache).
    let (manifest, _) = manifest_and_config(&layout);
    let layer = manifest["layers"][1]["digest"].as_str().unwrap().to_owned();
    let path = layout
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::remove_file(&path).unwrap();
    fs::write(&path, &bytes).unwrap();
    let actual = format!(
        "sha256:{}",
        run(Command::new("sha256sum").arg(&path))
            .split_whitespace()
            .next()
            .unwrap()
    );

    let output = fixture.cargo_oci(&["verify", "--layout", "target/oci/hello"]);
    assert!(!output.status.success());
    assert_eq!(text(&output.stdout), "", "nothing is intact to report");
    let stderr = text(&output.stderr);
    let expected = format!(
        "error: the layout `target/oci/hello` is damaged (1 problem):\n  layer 2 of 2 of \
         `index.json` entry 1, tag `0.1.0` (manifest {}): blob {layer} is corrupt: expected {} \
         bytes with that digest, found {} bytes hashing to {actual}\n",
        index_digest(&fixture),
        bytes.len(),
        bytes.len()
    );
    assert_eq!(stderr, expected);

    // The config removed too: both named, as JSON.
    let config = manifest["config"]["digest"].as_str().unwrap();
    fs::remove_file(
        layout
            .join("blobs/sha256")
            .join(config.trim_start_matches("sha256:")),
    )
    .unwrap();
    let output = fixture.cargo_oci(&[
        "verify",
        "--layout",
        "target/oci/hello",
        "--message-format",
        "json",
    ]);
    assert!(!output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["intact"], false);
    let problems = report["problems"].as_array().unwrap();
    let blobs: Vec<&str> = problems
        .iter()
        .map(|p| p["blob"].as_str().unwrap())
        .collect();
    assert_eq!(blobs, [config, layer.as_str()], "{report}");
    assert!(problems[0]["problem"]
        .as_str()
        .unwrap()
        .ends_with("is missing"));
    assert!(text(&output.stderr).contains("is damaged (2 problems)"));
}

#[test]
fn verify_rebuilds_and_finds_the_same_digests() {
    let fixture = Fixture::copy("hello");
    let epoch = [("SOURCE_DATE_EPOCH", "1700000000")];
    let output = cargo_oci_with_env(&fixture, &["build", "--quiet"], &epoch);
    assert_success(&output, "cargo oci build");
    let digest = index_digest(&fixture);
    let layout = fixture.path().join("target/oci/hello");
    // What a killed verify left (named after a process id that is alive here, as a reused one
    // is), and a running one's: locked by this process, and named after a process id that does
    // not exist here, as a verify's in another PID namespace (a container) is.
    let killed = fixture
        .path()
        .join(format!("target/.oci-verify-{}-abcdef", std::process::id()));
    let running = fixture.path().join("target/.oci-verify-999999999-ghijkl");
    for dir in [&killed, &running] {
        std::fs::create_dir_all(dir.join("oci")).unwrap();
    }
    let in_use = std::fs::File::open(&running).unwrap();
    in_use.lock().unwrap();

    let output = cargo_oci_with_env(&fixture, &["verify"], &epoch);
    assert_success(&output, "cargo oci verify");
    assert!(
        !killed.exists(),
        "a killed verify's scratch directory is swept"
    );
    assert!(running.exists(), "a running verify's is not");
    drop(in_use);
    std::fs::remove_dir_all(&running).unwrap();
    assert_eq!(
        text(&output.stdout),
        format!(
            "hello is reproducible: {digest} (linux/{}), the same as `oci:{}`\n",
            HOST.go,
            layout.display()
        )
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("  Rebuilding hello in the scratch target directory"),
        "{stderr}"
    );
    assert!(
        !scratch_left(&fixture),
        "the scratch target directory is removed"
    );

    let against = format!("oci:{}:latest", layout.display());
    let output = cargo_oci_with_env(
        &fixture,
        &[
            "verify",
            "--quiet",
            "--message-format",
            "json",
            "--against",
            &against,
        ],
        &epoch,
    );
    assert_success(&output, "cargo oci verify --against");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["reproducible"], true);
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(report["expected"]["digest"], digest.as_str());
    assert_eq!(report["expected"]["source"], against);

    // Without the build's SOURCE_DATE_EPOCH, every date differs: named, with the hint.
    let output = fixture.cargo_oci(&["verify", "--quiet"]);
    assert!(!output.status.success());
    let stdout = text(&output.stdout);
    let created = "  created  \"2023-11-14T22:13:20Z\" → \"1970-01-01T00:00:00Z\" \
                   (was SOURCE_DATE_EPOCH the same?)\n";
    assert!(stdout.contains(created), "{stdout}");
    // The layers do not depend on the date: their files are at one fixed time.
    assert!(!stdout.contains("mtime"), "{stdout}");
}

/// Code a build script generates is included from OUT_DIR, under the target directory, and
/// its path ends up in the binary: built at another path, it differs, and verify says why.
#[test]
fn verify_says_when_a_binary_holds_its_target_directory() {
    let fixture = Fixture::copy("hello");
    fs::write(
        fixture.path().join("build.rs"),
        "fn main() {\n    let out = std::env::var(\"OUT_DIR\").unwrap();\n    \
         std::fs::write(format!(\"{out}/made.rs\"), \"pub fn made_in() -> &'static str \
         { file!() }\").unwrap();\n}\n",
    )
    .unwrap();
    let main = fixture.path().join("src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    let last = "    println!(\"asset={}\", asset.trim());\n";
    assert!(source.contains(last));
    let made = format!(
        "{last}    println!(\"made_in={{}}\", made::made_in());\n}}\n\
         mod made {{\n    include!(concat!(env!(\"OUT_DIR\"), \"/made.rs\"));\n"
    );
    fs::write(&main, source.replacen(last, &made, 1)).unwrap();
    fixture.build_ok(&["--quiet"]);

    let output = fixture.cargo_oci(&["verify"]);
    assert!(!output.status.success());
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(
            "  note: `/usr/local/bin/hello` holds the path of the target directory it was built in"
        ),
        "{stdout}"
    );
}

#[test]
fn verify_catches_a_build_script_that_embeds_the_time() {
    let fixture = Fixture::copy("hello");
    fs::write(
        fixture.path().join("build.rs"),
        "fn main() {\n    let now = std::time::SystemTime::now()\n        \
         .duration_since(std::time::UNIX_EPOCH)\n        .unwrap()\n        .as_nanos();\n    \
         println!(\"cargo:rustc-env=BUILT_AT={now}\");\n}\n",
    )
    .unwrap();
    let main = fixture.path().join("src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    let last = "    println!(\"asset={}\", asset.trim());\n";
    assert!(source.contains(last));
    let stamped = source.replace(
        last,
        &format!("{last}    println!(\"built_at={{}}\", env!(\"BUILT_AT\"));\n"),
    );
    fs::write(&main, stamped).unwrap();
    fixture.build_ok(&["--quiet"]);
    let digest = index_digest(&fixture);

    let output = fixture.cargo_oci(&["verify"]);
    assert!(
        !output.status.success(),
        "a build that embeds the time is not reproducible"
    );
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("hello is not reproducible: the rebuild is sha256:"),
        "{stdout}"
    );
    assert!(
        lines[0].ends_with(&format!("/target/oci/hello` is {digest}")),
        "{stdout}"
    );
    assert_eq!(
        lines[1],
        format!("linux/{}: layer 2 differs (cargo oci: bins hello)", HOST.go)
    );
    assert!(
        lines[2].starts_with("  expected sha256:") && lines[3].starts_with("  rebuilt  sha256:")
    );
    assert!(
        lines[4].starts_with("  ~ /usr/local/bin/hello  "),
        "{stdout}"
    );
    assert!(lines[4].contains("sha256 "), "{stdout}");
    // Only the binary differs, and the note asks about what a rebuild may not repeat.
    assert_eq!(lines.len(), 6, "{stdout}");
    assert!(lines[5].starts_with("  note: was `oci:"), "{stdout}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.ends_with(&format!(
            "error: `hello` is not reproducible: layer 2 of linux/{} differs in \
             /usr/local/bin/hello\n",
            HOST.go
        )),
        "{stderr}"
    );
    assert!(!scratch_left(&fixture), "removed on failure too");

    // As JSON, with the content hash of each side; the expected one is what tar reads from
    // the layout's layer.
    let output = fixture.cargo_oci(&["verify", "--quiet", "--message-format", "json"]);
    assert!(!output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["reproducible"], false);
    let layer = &report["differences"]["platforms"][0]["layer"];
    assert_eq!(layer["number"], 2);
    let files = layer["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{layer}");
    assert_eq!(files[0]["path"], "usr/local/bin/hello");
    assert!(files[0]["fields"]
        .as_array()
        .unwrap()
        .contains(&"sha256".into()));
    let (manifest, _) = manifest_and_config(&fixture.layout());
    let blob = fixture.layout().join("blobs/sha256").join(
        manifest["layers"][1]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    let sum = run(Command::new("sh")
        .arg("-c")
        .arg("tar -xOzf \"$0\" usr/local/bin/hello | sha256sum")
        .arg(&blob));
    let hex = sum.split_whitespace().next().unwrap();
    assert_eq!(files[0]["expected"]["sha256"], format!("sha256:{hex}"));
    assert_ne!(files[0]["actual"]["sha256"], files[0]["expected"]["sha256"]);
}

#[test]
fn verify_says_a_config_only_difference_is_one() {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    let manifest = fixture.path().join("Cargo.toml");
    let toml = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        toml.replace("GREETING = \"hi there\"", "GREETING = \"changed\""),
    )
    .unwrap();
    let output = fixture.cargo_oci(&["verify", "--quiet"]);
    assert!(!output.status.success());
    let stdout = text(&output.stdout);
    let expected = format!(
        "linux/{}: the layers are the same; the config differs:\n  \
         config.Env[0]  \"GREETING=hi there\" → \"GREETING=changed\"\n",
        HOST.go
    );
    assert!(stdout.ends_with(&expected), "{stdout}");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("the config of linux/"), "{stderr}");
    assert!(
        stderr.contains("differs (config.Env[0]); the layers are the same"),
        "{stderr}"
    );
}

#[test]
fn verify_without_a_build_says_what_to_compare_with() {
    let fixture = Fixture::copy("hello");
    let output = fixture.cargo_oci(&["verify"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("no image at `"), "{stderr}");
    assert!(
        stderr.contains("build it first (`cargo oci build`), or name one with `--against IMAGE`")
    );
    assert!(
        !fixture.path().join("target/release").exists(),
        "nothing was built"
    );
}

#[test]
fn verify_against_an_image_in_a_registry() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    if !tool("skopeo") {
        return;
    }
    let fixture = Fixture::copy("hello");
    let repository = format!("{}/team/hello", registry.host);
    fixture.build_ok(&["--quiet", "--push", &repository]);
    let digest = index_digest(&fixture);
    // skopeo sees the image under that digest.
    let inspected: Value = serde_json::from_str(&run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{repository}:0.1.0"),
    ])))
    .unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());
    fs::remove_dir_all(fixture.path().join("target/oci")).unwrap();

    let against = format!("docker://{repository}@{digest}");
    let output = fixture.cargo_oci(&["verify", "--quiet", "--against", &against]);
    assert_success(&output, "cargo oci verify --against docker://");
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with(&format!(
            "hello is reproducible: {digest} (linux/{})",
            HOST.go
        )),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(&format!("the same as `{against}`\n")),
        "{stdout}"
    );
    // Pulled into the package's build cache, as a base would be.
    let cache = fixture.path().join("target/oci/.cache/blobs/sha256");
    assert!(cache.join(digest.trim_start_matches("sha256:")).is_file());
}

/// What a layout tarball can hold under `blobs/sha256`: a FIFO and a symbolic link to
/// `/dev/zero`, unreferenced or in place of a layer. Neither is read: the check ends, naming
/// each, instead of waiting for a writer or reading zeros for ever.
#[test]
fn verify_layout_ends_on_a_fifo_or_a_device_among_the_blobs() {
    if !tool("mkfifo") {
        return;
    }
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    let blobs = fixture.layout().join("blobs/sha256");
    let (fifo, zeros) = ("a".repeat(64), "b".repeat(64));
    run(Command::new("mkfifo").arg(blobs.join(&fifo)));
    std::os::unix::fs::symlink("/dev/zero", blobs.join(&zeros)).unwrap();
    let limit = std::time::Duration::from_secs(60);
    let verify = || fixture.cargo_oci_within(&["verify", "--layout", "target/oci/hello"], limit);
    let output = verify();
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    for (name, kind) in [(&fifo, "a FIFO"), (&zeros, "a symbolic link")] {
        assert!(
            stderr.contains(&format!(
                "the unreferenced `blobs/sha256/{name}`: cannot be read: it is {kind}, not a \
                 regular file"
            )),
            "{stderr}"
        );
    }

    // The binaries' layer replaced by a FIFO, then by a link to `/dev/zero`.
    let (manifest, _) = manifest_and_config(&fixture.layout());
    let layer = manifest["layers"][1]["digest"].as_str().unwrap().to_owned();
    let path = blobs.join(layer.trim_start_matches("sha256:"));
    fs::remove_file(blobs.join(&zeros)).unwrap();
    fs::remove_file(blobs.join(&fifo)).unwrap();
    for (kind, plant) in [("a FIFO", "fifo"), ("a device", "zeros")] {
        fs::remove_file(&path).unwrap();
        match plant {
            "fifo" => drop(run(Command::new("mkfifo").arg(&path))),
            _ => std::os::unix::fs::symlink("/dev/zero", &path).unwrap(),
        }
        let output = verify();
        assert!(!output.status.success());
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "target/oci/hello/blobs/sha256/{}`: it is {kind}, not a regular file",
                layer.trim_start_matches("sha256:")
            )),
            "{stderr}"
        );
    }
}
