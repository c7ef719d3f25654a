//! `cargo_oci` as a library, in this process: the [`cargo_oci::Build`] a team's xtask writes
//! makes the image `cargo oci build` makes, reports it as typed values, and fails with an
//! error kind a caller can match on. (`templates.rs` runs the xtask template itself.)

use std::sync::{Arc, Mutex};

use cargo_oci::{Build, ErrorKind, Format, Verbosity};

use crate::support::{read_json, run, tool, Fixture};

#[test]
fn a_build_in_code_reports_what_it_wrote() {
    let fixture = Fixture::copy("hello");
    let heard = Arc::new(Mutex::new(Vec::new()));
    let listener = heard.clone();
    // Run there, as an xtask runs at its workspace's root: cargo reads the fixture's
    // `.cargo/config.toml` (static linking), and relative paths are the fixture's.
    let images = Build::new()
        .current_dir(fixture.path())
        .target_dir("target")
        .format(Format::Oci)
        .format(Format::Docker)
        .tag("hello:from-code")
        .on_status(move |status, message| {
            listener.lock().unwrap().push(format!("{status} {message}"))
        })
        .run()
        .unwrap();

    let [image] = images.as_slice() else {
        panic!("one package, one image: {images:?}")
    };
    assert_eq!(image.name, "hello");
    assert_eq!(image.tags, ["hello:from-code"]);
    assert_eq!(image.platforms.len(), 1, "{image:?}");
    let layout = fixture.layout();
    let index = read_json(&layout.join("index.json"));
    assert_eq!(index["manifests"][0]["digest"], image.digest.as_str());
    let formats: Vec<Format> = image.outputs.iter().map(|o| o.format).collect();
    assert_eq!(formats, [Format::Oci, Format::Docker]);
    assert_eq!(image.outputs[0].path, layout);
    assert!(image.outputs[1].path.is_file(), "{image:?}");
    assert!(image.config.as_deref().unwrap().starts_with("sha256:"));
    // The listener hears what stderr would have shown.
    let heard = heard.lock().unwrap().join("\n");
    assert!(heard.contains("Packing hello ("), "{heard}");

    // What it reports is what the real tools read.
    assert!(tool("skopeo"), "skopeo is needed");
    let inspected = run(std::process::Command::new("skopeo")
        .args(["inspect", &format!("oci:{}:from-code", layout.display())]));
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(inspected["Digest"], image.digest.as_str());

    // The same build again finds its outputs fresh and says so.
    // A relative directory, and paths relative to it: the same build.
    let cwd = std::env::current_dir().unwrap();
    let up: std::path::PathBuf = cwd.components().skip(1).map(|_| "..").collect();
    let relative = up.join(fixture.path().strip_prefix("/").unwrap());
    let again = Build::new()
        .current_dir(relative)
        .manifest_path("Cargo.toml")
        .target_dir("target")
        .format(Format::Oci)
        .tag("hello:from-code")
        .verbosity(Verbosity::Quiet)
        .run()
        .unwrap();
    assert_eq!(again[0].digest, image.digest);
    assert!(again[0].outputs[0].fresh, "{again:?}");
}

#[test]
fn a_misspelt_key_is_a_metadata_error_naming_it() {
    let fixture = Fixture::copy("hello");
    fixture.set_metadata("[package.metadata.oci]\nbsae = \"scratch\"\n");
    let error = Build::new()
        .current_dir(fixture.path())
        .verbosity(Verbosity::Quiet)
        .run()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Metadata, "{error}");
    let message = error.to_string();
    assert!(message.contains("bsae"), "{message}");
    assert!(message.contains("Cargo.toml"), "{message}");
    assert!(!fixture.layout().exists(), "nothing is written");
}

/// Cargo's build flags as methods: `bin` chooses the image, `jobs` and `config` reach cargo
/// (which refuses 0 jobs, however it is told).
#[test]
fn cargo_flags_are_methods_too() {
    let fixture = Fixture::copy("services");
    let images = Build::new()
        .current_dir(fixture.path())
        .target_dir("target")
        .workspace()
        .bin("seed")
        .jobs(1)
        .keep_going()
        .ignore_rust_version()
        .verbosity(Verbosity::Quiet)
        .run()
        .unwrap();
    let names: Vec<&str> = images.iter().map(|image| image.name.as_str()).collect();
    assert_eq!(names, ["seed"]);

    let error = Build::new()
        .current_dir(fixture.path())
        .target_dir("target")
        .package("api")
        .jobs(0)
        .verbosity(Verbosity::Quiet)
        .run()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Build, "{error}");

    let error = Build::new()
        .current_dir(fixture.path())
        .target_dir("target")
        .package("api")
        .config("build.jobs=0")
        .verbosity(Verbosity::Quiet)
        .run()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Build, "{error}");
}
