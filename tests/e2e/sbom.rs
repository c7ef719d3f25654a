//! SBOMs, judged by the tools their formats come with: SPDX validated by `pyspdxtools`,
//! CycloneDX by the CycloneDX library's schema validator. What they list is what was compiled
//! in (no proc-macro, dev-, build- or Windows-only dependency); they are attached to the image
//! in the layout and the OCI archive, not in the Docker archive, and found on a registry
//! without the referrers API through the fallback tag.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{assert_success, read_json, run, tool, Fixture, Registry};

/// The Python validators `cargo xtask tools` installs into `target/python`; `None` when they
/// are missing outside CI.
fn python_tools() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/python/bin");
    if dir.join("pyspdxtools").is_file() {
        return Some(dir);
    }
    // Fails in CI, where `cargo xtask tools` has installed them.
    tool("pyspdxtools").then(|| PathBuf::from(""))
}

fn host_platform(fixture: &Fixture) -> String {
    let (_, config) = crate::support::manifest_and_config(&fixture.output("inventory"));
    format!(
        "{}-{}",
        config["os"].as_str().unwrap(),
        config["architecture"].as_str().unwrap()
    )
}

fn package_names(spdx: &serde_json::Value) -> Vec<String> {
    spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_spdx_sbom_lists_what_was_compiled_in_and_pyspdxtools_accepts_it() {
    let Some(tools) = python_tools() else { return };
    let fixture = Fixture::copy("inventory");
    fixture.build_ok(&[
        "--format",
        "oci",
        "--format",
        "oci-archive",
        "--format",
        "docker",
    ]);
    let file = fixture.path().join(format!(
        "target/oci/inventory.{}.spdx.json",
        host_platform(&fixture)
    ));
    run(Command::new(tools.join("pyspdxtools")).arg("-i").arg(&file));

    let spdx = read_json(&file);
    let names = package_names(&spdx);
    for compiled_in in ["inventory", "anyhow", "serde"] {
        assert!(
            names.iter().any(|n| n == compiled_in),
            "{compiled_in}: {names:?}"
        );
    }
    for never in [
        "serde_derive",
        "syn",
        "proc-macro2",
        "tempfile",
        "cc",
        "windows-sys",
    ] {
        assert!(!names.iter().any(|n| n == never), "{never}: {names:?}");
    }
    let package = |name: &str| {
        spdx["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name && p["primaryPackagePurpose"] != "CONTAINER")
            .unwrap()
            .clone()
    };
    assert_eq!(package("inventory")["licenseDeclared"], "MIT OR Apache-2.0");
    let anyhow = package("anyhow");
    let lock = fs::read_to_string(fixture.path().join("Cargo.lock")).unwrap();
    let checksum = anyhow["checksums"][0]["checksumValue"].as_str().unwrap();
    assert!(
        lock.contains(&format!("checksum = \"{checksum}\"")),
        "{anyhow}"
    );
    let purl = anyhow["externalRefs"][0]["referenceLocator"]
        .as_str()
        .unwrap();
    assert_eq!(
        purl,
        format!(
            "pkg:cargo/anyhow@{}",
            anyhow["versionInfo"].as_str().unwrap()
        )
    );

    // The image is the document's subject, by its manifest digest.
    let layout = fixture.output("inventory");
    let index = read_json(&layout.join("index.json"));
    let entries = index["manifests"].as_array().unwrap();
    let image = &entries[0];
    let described = &spdx["packages"][0];
    assert_eq!(described["SPDXID"], "SPDXRef-Image");
    assert_eq!(described["versionInfo"], image["digest"]);

    // Attached in the layout: an artifact whose subject is the image and whose one blob is
    // the file, byte for byte.
    let artifact = entries
        .iter()
        .find(|e| e["artifactType"] == "application/spdx+json")
        .expect("the SBOM is an entry of index.json");
    let manifest = crate::support::blob(&layout, artifact["digest"].as_str().unwrap());
    assert_eq!(manifest["subject"]["digest"], image["digest"]);
    let blob = layout.join("blobs/sha256").join(
        manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    assert_eq!(fs::read(blob).unwrap(), fs::read(&file).unwrap());

    // Tools read the image as before.
    assert!(
        tool("skopeo") && tool("umoci"),
        "skopeo and umoci are needed"
    );
    run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:0.3.0", layout.display())));
    run(Command::new("umoci")
        .args(["stat", "--image"])
        .arg(format!("{}:0.3.0", layout.display())));
    // The OCI archive holds it; the Docker archive, which has no place for it, does not.
    let listed = |archive: &str| {
        let path = fixture.path().join("target/oci").join(archive);
        let index = run(Command::new("tar").arg("-xOf").arg(&path).arg("index.json"));
        index.contains("application/spdx+json")
    };
    assert!(listed("inventory.oci.tar"));
    assert!(!listed("inventory.docker.tar"));
    run(Command::new("skopeo").arg("inspect").arg(format!(
        "oci-archive:{}:0.3.0",
        fixture
            .path()
            .join("target/oci/inventory.oci.tar")
            .display()
    )));

    // Same inputs, same bytes: a second build elsewhere writes the same document.
    let again = Fixture::copy("inventory");
    again.build_ok(&["--quiet"]);
    let second = again.path().join(format!(
        "target/oci/inventory.{}.spdx.json",
        host_platform(&again)
    ));
    assert_eq!(fs::read(second).unwrap(), fs::read(&file).unwrap());
}

/// A private service's license is no SPDX expression; the document still is valid SPDX.
#[test]
fn a_license_that_is_no_spdx_expression_is_declared_not_broken() {
    let Some(tools) = python_tools() else { return };
    let fixture = Fixture::copy("inventory");
    let manifest = fixture.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        text.replace("license = \"MIT/Apache-2.0\"", "license = \"Proprietary\""),
    )
    .unwrap();
    fixture.build_ok(&["--quiet"]);
    let file = fixture.path().join(format!(
        "target/oci/inventory.{}.spdx.json",
        host_platform(&fixture)
    ));
    run(Command::new(tools.join("pyspdxtools")).arg("-i").arg(&file));
    let spdx = read_json(&file);
    assert_eq!(
        spdx["hasExtractedLicensingInfos"][0]["extractedText"],
        "Proprietary"
    );
}

/// Validates the CycloneDX 1.5 document named by its argument, strictly.
const CYCLONEDX_VALIDATOR: &str = "import sys\n\
    from cyclonedx.validation.json import JsonStrictValidator\n\
    from cyclonedx.schema import SchemaVersion\n\
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\n\
    sys.exit(str(error) if error else 0)\n";

/// Licenses cargo accepts for a package it never publishes, which are no SPDX expression or
/// are one only once written on one line: both validators accept each document.
#[test]
fn a_malformed_license_expression_still_makes_valid_documents() {
    let Some(tools) = python_tools() else { return };
    let fixture = Fixture::copy("hello");
    let manifest = fixture.path().join("Cargo.toml");
    let original = fs::read_to_string(&manifest).unwrap();
    let platform = crate::support::host::HOST.platform().replace('/', "-");
    for (license, declared) in [
        ("(MIT", "LicenseRef--MIT"),
        ("MIT OR", "LicenseRef-MIT-OR"),
        ("MIT\\nOR Apache-2.0", "MIT OR Apache-2.0"),
    ] {
        let text = original.replace("license = \"MIT\"", &format!("license = \"{license}\""));
        fs::write(&manifest, text).unwrap();
        fixture.build_ok(&["--quiet"]);
        let spdx = fixture
            .path()
            .join(format!("target/oci/hello.{platform}.spdx.json"));
        run(Command::new(tools.join("pyspdxtools")).arg("-i").arg(&spdx));
        let document = read_json(&spdx);
        let hello = document["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "hello" && p["primaryPackagePurpose"] == "APPLICATION")
            .unwrap()
            .clone();
        assert_eq!(hello["licenseDeclared"], declared, "{license}");

        fixture.build_ok(&["--quiet", "--sbom", "cyclonedx"]);
        let cyclonedx = fixture
            .path()
            .join(format!("target/oci/hello.{platform}.cdx.json"));
        run(Command::new(tools.join("python3"))
            .args(["-c", CYCLONEDX_VALIDATOR])
            .arg(&cyclonedx));
    }
}

#[test]
fn a_cyclonedx_sbom_passes_the_cyclonedx_schema_validator() {
    let Some(tools) = python_tools() else { return };
    let fixture = Fixture::copy("inventory");
    fixture.build_ok(&["--quiet", "--sbom", "cyclonedx"]);
    let file = fixture.path().join(format!(
        "target/oci/inventory.{}.cdx.json",
        host_platform(&fixture)
    ));
    run(Command::new(tools.join("python3"))
        .args(["-c", CYCLONEDX_VALIDATOR])
        .arg(&file));
    let bom = read_json(&file);
    let names: Vec<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"anyhow") && !names.contains(&"serde_derive"),
        "{names:?}"
    );
    let index = read_json(&fixture.output("inventory").join("index.json"));
    assert!(index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["artifactType"] == "application/vnd.cyclonedx+json"));
}

/// No SBOM when asked for none, and none left from an earlier build of another kind: it would
/// describe another image.
#[test]
fn no_sbom_when_asked_for_none() {
    let fixture = Fixture::copy("inventory");
    let sboms = || {
        let mut names: Vec<String> = fs::read_dir(fixture.path().join("target/oci"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".spdx.json") || name.ends_with(".cdx.json"))
            .collect();
        names.sort();
        names
    };
    fixture.build_ok(&["--quiet"]);
    assert_eq!(sboms().len(), 1);
    fixture.build_ok(&["--quiet", "--sbom", "cyclonedx"]);
    let [only] = sboms().try_into().unwrap();
    assert!(only.ends_with(".cdx.json"), "{only}");
    fixture.build_ok(&["--quiet", "--sbom", "none"]);
    assert_eq!(sboms(), Vec::<String>::new());
    let index = read_json(&fixture.output("inventory").join("index.json"));
    let types: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["artifactType"].as_str())
        .collect();
    assert_eq!(
        types,
        ["application/vnd.in-toto+json"],
        "the provenance alone"
    );
}

/// Debian's registry has no referrers API: the SBOM is listed under the subject's fallback
/// tag, as the distribution spec says a client then looks for it.
#[test]
fn a_pushed_sbom_is_found_through_the_fallback_tag() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let fixture = Fixture::copy("inventory");
    let output = fixture.build(&[
        "--quiet",
        // The SBOM alone, here; `provenance.rs` pushes both.
        "--provenance",
        "none",
        "--push",
        &format!("{}/team/inventory", registry.host),
        "--message-format",
        "json",
    ]);
    assert_success(&output, "cargo oci build --push");
    let pushed = String::from_utf8(output.stdout).unwrap();
    let digest = pushed
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|message| message["format"] == "push")
        .map(|message| message["digest"].as_str().unwrap().to_owned())
        .expect("a push line");
    let tag = format!(
        "team/inventory:sha256-{}",
        digest.trim_start_matches("sha256:")
    );
    let listing: serde_json::Value = serde_json::from_slice(&registry.raw_manifest(&tag)).unwrap();
    let [artifact] = listing["manifests"].as_array().unwrap().as_slice() else {
        panic!("one referrer: {listing}")
    };
    assert_eq!(artifact["artifactType"], "application/spdx+json");
    let manifest: serde_json::Value = serde_json::from_slice(&registry.raw_manifest(&format!(
        "team/inventory@{}",
        artifact["digest"].as_str().unwrap()
    )))
    .unwrap();
    assert_eq!(manifest["subject"]["digest"], digest.as_str());

    // `cargo oci push` of the layout sends it again, and the listing stays one entry.
    let output = fixture.cargo_oci(&["push", &format!("{}/team/inventory", registry.host)]);
    assert_success(&output, "cargo oci push");
    let listing: serde_json::Value = serde_json::from_slice(&registry.raw_manifest(&tag)).unwrap();
    assert_eq!(
        listing["manifests"].as_array().unwrap().len(),
        1,
        "{listing}"
    );

    // A second client's SBOM of the same image (here CycloneDX) joins the listing; what was
    // there stays. (Two clients writing at the same moment can still lose one entry: the tag
    // has no compare-and-swap, as the distribution spec says of this fallback.)
    let cyclonedx = Fixture::copy("inventory");
    cyclonedx.build_ok(&["--quiet", "--sbom", "cyclonedx", "--provenance", "none"]);
    let spdx_again = Fixture::copy("inventory");
    spdx_again.build_ok(&["--quiet", "--provenance", "none"]);
    let destination = format!("{}/team/racing", registry.host);
    for fixture in [&spdx_again, &cyclonedx] {
        assert_success(
            &fixture.cargo_oci(&["push", &destination]),
            "cargo oci push",
        );
    }
    let tag = format!(
        "team/racing:sha256-{}",
        digest.trim_start_matches("sha256:")
    );
    let listing: serde_json::Value = serde_json::from_slice(&registry.raw_manifest(&tag)).unwrap();
    let mut types: Vec<&str> = listing["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["application/spdx+json", "application/vnd.cyclonedx+json"]
    );
}

/// The token a dependency's URL carries, which nothing published may hold.
const TOKEN: &str = "ghp_s3cretT0ken";

/// A bare repository of a one-file library `privdep` in `dir`, served over git's dumb HTTP
/// protocol on loopback (any user information accepted, as no challenge is made); its URL.
fn serve_git_dependency(dir: &Path) -> String {
    let git = crate::support::git;
    let work = dir.join("privdep");
    fs::create_dir_all(work.join("src")).unwrap();
    fs::write(
        work.join("Cargo.toml"),
        "[package]\nname = \"privdep\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::write(work.join("src/lib.rs"), "pub fn answer() -> u32 { 42 }\n").unwrap();
    git(&work, &["init", "--quiet", "--initial-branch=main"]);
    git(&work, &["add", "--all"]);
    git(&work, &["commit", "--quiet", "--message", "privdep"]);
    let served = dir.join("served");
    let bare = served.join("privdep.git");
    git(
        dir,
        &[
            "clone",
            "--quiet",
            "--bare",
            "privdep",
            "served/privdep.git",
        ],
    );
    git(&bare, &["update-server-info"]);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::Write;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some(request) = crate::support::registries::Request::read(&stream) else {
                continue;
            };
            let path = request.path.split('?').next().unwrap_or("").to_owned();
            let file = (!path.contains(".."))
                .then(|| fs::read(served.join(path.trim_start_matches('/'))).ok())
                .flatten();
            let (status, body) = match file {
                Some(body) => ("200 OK", body),
                None => ("404 Not Found", Vec::new()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://ci-bot:{TOKEN}@127.0.0.1:{port}/privdep.git")
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if fs::read(&path)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
        {
            found.push(path);
        }
    }
    found
}

/// A git dependency fetched with a token in its URL, a `repository` with one, a checkout whose
/// remote has one: the SBOMs (valid, the dependency listed by its URL), the annotations and the
/// provenance hold none of them.
#[test]
fn no_sbom_annotation_or_provenance_holds_a_urls_credentials() {
    let Some(tools) = python_tools() else { return };
    let scratch = tempfile::tempdir().unwrap();
    let url = serve_git_dependency(scratch.path());
    let fixture = Fixture::copy("hello");
    let manifest = fixture.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .unwrap()
        .replace(
            "repository = \"https://example.com/hello\"",
            &format!("repository = \"https://ci-bot:{TOKEN}@example.com/hello\""),
        )
        .replace(
            "[workspace]",
            &format!("[dependencies]\nprivdep = {{ git = \"{url}\" }}\n\n[workspace]"),
        );
    fs::write(&manifest, text).unwrap();
    let git = |args: &[&str]| crate::support::git(fixture.path(), args);
    git(&["init", "--quiet", "--initial-branch=main"]);
    git(&["add", "--all"]);
    git(&["commit", "--quiet", "--message", "hello"]);
    let remote = format!("https://x-access-token:{TOKEN}@git.example.com/team/hello.git");
    git(&["remote", "add", "origin", &remote]);

    // A cargo home of its own: the dependency fetched by git's own client (libgit2 speaks no
    // dumb HTTP), into no shared cache.
    let cargo_home = scratch.path().join("cargo-home");
    let env = [
        ("CARGO_HOME", cargo_home.to_str().unwrap()),
        ("CARGO_NET_GIT_FETCH_WITH_CLI", "true"),
    ];
    let oci = fixture.path().join("target/oci");
    let platform = crate::support::host::HOST.platform().replace('/', "-");
    let build = |sbom: &str| {
        let output = fixture.build_with_env(&["--quiet", "--sbom", sbom], &env);
        assert_success(&output, "cargo oci build");
        // Nothing written holds the token: documents, blobs, the cache.
        assert_eq!(files_holding(&oci, TOKEN), Vec::<PathBuf>::new());
    };

    build("spdx");
    let spdx = oci.join(format!("hello.{platform}.spdx.json"));
    run(Command::new(tools.join("pyspdxtools")).arg("-i").arg(&spdx));
    // Listed, by the URL without its user information.
    let text = fs::read_to_string(&spdx).unwrap();
    assert!(
        text.contains("vcs_url=git%2Bhttp%3A%2F%2F127.0.0.1%3A"),
        "{text}"
    );
    let (manifest, config) = crate::support::manifest_and_config(&fixture.output("hello"));
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.source"], "https://example.com/hello",
        "{manifest} {config}"
    );
    let provenance = oci.join(crate::support::provenance_of("hello"));
    let text = fs::read_to_string(&provenance).unwrap();
    assert!(
        text.contains("\"git+https://git.example.com/team/hello.git\""),
        "{text}"
    );

    build("cyclonedx");
    let cyclonedx = oci.join(format!("hello.{platform}.cdx.json"));
    run(Command::new(tools.join("python3"))
        .args(["-c", CYCLONEDX_VALIDATOR])
        .arg(&cyclonedx));
    let text = fs::read_to_string(&cyclonedx).unwrap();
    assert!(text.contains("\"git+http://127.0.0.1:"), "{text}");
}
