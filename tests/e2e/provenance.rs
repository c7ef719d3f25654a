//! Provenance and signatures, judged by tools that are not ours: each platform's SLSA
//! provenance names the commit, `Cargo.lock`, the compiler and the manifest it is about, the
//! same bytes from two checkouts of one commit; with a key (made by openssl), every attestation
//! is a DSSE envelope that securesystemslib verifies with the public key, and refuses once
//! tampered with; the key reaches no process the build runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{assert_success, read_json, run, tool, Fixture};

/// The remote every checkout here has: with credentials, which no statement may carry.
const REMOTE: &str = "https://ci-user:s3cret-token@git.example.com/team/hello.git";

/// Makes the fixture a git checkout of one commit, the same commit in any copy: fixed author,
/// committer and dates, no user or system git configuration.
fn commit(fixture: &Fixture) -> String {
    let git = |args: &[&str]| crate::support::git(fixture.path(), args);
    git(&["init", "--quiet", "--initial-branch=main"]);
    git(&["add", "--all"]);
    git(&["commit", "--quiet", "--message", "the fixture"]);
    git(&["remote", "add", "origin", REMOTE]);
    git(&["rev-parse", "HEAD"]).trim().to_owned()
}

fn platform() -> String {
    crate::support::host::HOST.platform().replace('/', "-")
}

/// A file beside the `hello` layout: `hello.<os>-<arch>.<kind>`.
fn beside(fixture: &Fixture, kind: &str) -> PathBuf {
    fixture
        .path()
        .join(format!("target/oci/hello.{}.{kind}", platform()))
}

/// The artifacts a layout's `index.json` lists, by artifact type.
fn artifacts(layout: &Path) -> Vec<Value> {
    read_json(&layout.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["artifactType"].is_string())
        .cloned()
        .collect()
}

/// The one blob an artifact of the layout holds, and the artifact's subject.
fn artifact_content(layout: &Path, artifact: &Value) -> (Vec<u8>, String) {
    let manifest = crate::support::blob(layout, artifact["digest"].as_str().unwrap());
    let blob = layout.join("blobs/sha256").join(
        manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    (
        fs::read(blob).unwrap(),
        manifest["subject"]["digest"].as_str().unwrap().to_owned(),
    )
}

/// The digest of the layout's image (its manifest: one platform, no index).
fn image_digest(layout: &Path) -> String {
    read_json(&layout.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["artifactType"].is_null())
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_provenance_names_commit_lock_and_compiler_the_same_from_two_checkouts() {
    let first = Fixture::copy("hello");
    let head = commit(&first);
    first.build_ok(&["--quiet", "--format", "oci", "--format", "oci-archive"]);
    let file = beside(&first, "provenance.json");
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("s3cret") && !text.contains("ci-user"),
        "{text}"
    );
    let statement: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");

    // Its subject is the platform's manifest.
    let layout = first.layout();
    let image = image_digest(&layout);
    assert_eq!(
        format!(
            "sha256:{}",
            statement["subject"][0]["digest"]["sha256"]
                .as_str()
                .unwrap()
        ),
        image
    );

    let definition = &statement["predicate"]["buildDefinition"];
    let parameters = &definition["externalParameters"];
    assert_eq!(parameters["package"], "hello");
    assert_eq!(parameters["profile"], "release");
    assert_eq!(parameters["targets"][0], crate::support::host::HOST.triple);
    // The metadata table as resolved, as written in Cargo.toml.
    assert_eq!(parameters["metadata"]["config"]["user"], "65532:65532");
    let dependencies = definition["resolvedDependencies"].as_array().unwrap();
    let source = dependencies
        .iter()
        .find(|d| d["digest"]["gitCommit"] == head.as_str())
        .unwrap_or_else(|| panic!("the commit {head}: {dependencies:?}"));
    assert_eq!(source["uri"], "git+https://git.example.com/team/hello.git");
    let lock = dependencies
        .iter()
        .find(|d| d["name"] == "Cargo.lock")
        .expect("Cargo.lock");
    let sha256sum = run(Command::new("sha256sum").arg(first.path().join("Cargo.lock")));
    assert_eq!(
        lock["digest"]["sha256"],
        sha256sum.split_whitespace().next().unwrap()
    );
    let rustc_vv = run(Command::new("rustc").arg("-vV"));
    let field = |name: &str| {
        rustc_vv
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let rustc = dependencies.iter().find(|d| d["name"] == "rustc").unwrap();
    assert_eq!(rustc["annotations"]["release"], field("release:"));
    assert_eq!(rustc["digest"]["gitCommit"], field("commit-hash:"));
    let run_details = &statement["predicate"]["runDetails"];
    assert_eq!(run_details["builder"]["id"], "urn:cargo-oci:builder:local");
    assert_eq!(run_details["metadata"]["startedOn"], "1970-01-01T00:00:00Z");

    // Attached in the layout, the same bytes, about the image.
    let attached: Vec<Value> = artifacts(&layout)
        .into_iter()
        .filter(|a| a["artifactType"] == "application/vnd.in-toto+json")
        .collect();
    let [provenance] = attached.as_slice() else {
        panic!("one provenance: {attached:?}")
    };
    assert_eq!(
        provenance["annotations"]["in-toto.io/predicate-type"],
        "https://slsa.dev/provenance/v1"
    );
    let (content, subject) = artifact_content(&layout, provenance);
    assert_eq!(
        (content, subject),
        (text.clone().into_bytes(), image.clone())
    );
    // And in the OCI archive.
    let archive = first.path().join("target/oci/hello.oci.tar");
    let index = run(Command::new("tar")
        .arg("-xOf")
        .arg(&archive)
        .arg("index.json"));
    assert!(index.contains("application/vnd.in-toto+json"), "{index}");
    assert!(tool("skopeo"), "skopeo is needed");
    run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}:0.1.0", archive.display())));

    // Another checkout of the same commit, elsewhere: the same statement, byte for byte.
    let second = Fixture::copy("hello");
    assert_eq!(commit(&second), head);
    second.build_ok(&["--quiet"]);
    assert_eq!(
        fs::read(beside(&second, "provenance.json")).unwrap(),
        text.as_bytes()
    );

    // Turned off, it is neither attached nor left beside the layout.
    second.build_ok(&["--quiet", "--provenance", "none"]);
    assert!(!beside(&second, "provenance.json").exists());
    assert!(artifacts(&second.layout())
        .iter()
        .all(|a| a["artifactType"] != "application/vnd.in-toto+json"));
}

/// A key made by openssl: `(private, public, keyid)`, the keyid being the sha256 of the public
/// key's DER, as openssl writes it.
fn openssl_key(dir: &Path, name: &str, algorithm: &[&str]) -> (PathBuf, PathBuf, String) {
    assert!(tool("openssl"), "openssl is needed");
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    run(Command::new("openssl")
        .arg("genpkey")
        .args(algorithm)
        .arg("-out")
        .arg(&private));
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public));
    let der = Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "DER", "-in"])
        .arg(&public)
        .output()
        .unwrap();
    assert!(der.status.success());
    let keyid = run(Command::new("sh")
        .arg("-c")
        .arg("openssl pkey -pubin -outform DER -in \"$1\" | sha256sum")
        .arg("sh")
        .arg(&public));
    (
        private,
        public,
        keyid.split_whitespace().next().unwrap().to_owned(),
    )
}

/// The Python of `cargo xtask tools`' environment, with securesystemslib; `None` when it is
/// missing outside CI.
fn securesystemslib() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/python/bin/python3");
    let found = Command::new(&python)
        .args(["-c", "import securesystemslib"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(python);
    }
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("CARGO_OCI_REQUIRE_TOOLS").is_some();
    assert!(
        !required,
        "securesystemslib is not installed; `cargo xtask tools` installs it"
    );
    eprintln!("note: skipping, securesystemslib is not installed (`cargo xtask tools` does it)");
    None
}

/// securesystemslib's DSSE verification of `envelope` with the public key: exits 0 when one
/// signature is the key's, and when the envelope is tampered with (a byte of its payload
/// changed) exits 0 only if that copy is refused. Prints the payload.
const VERIFY: &str = "import base64, json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from securesystemslib.exceptions import VerificationError
envelope, public, keyid = sys.argv[1:4]
key = SSlibKey.from_crypto(load_pem_public_key(open(public, 'rb').read()), keyid=keyid)
# from_dict takes the dict apart: each reads its own copy.
Envelope.from_dict(json.load(open(envelope))).verify([key], 1)
tampered = json.load(open(envelope))
payload = base64.b64decode(tampered['payload'])
tampered['payload'] = base64.b64encode(payload.replace(b'hello', b'jello')).decode()
try:
    Envelope.from_dict(tampered).verify([key], 1)
    sys.exit('a tampered envelope verified')
except VerificationError:
    pass
sys.stdout.buffer.write(payload)
";

#[test]
fn signed_attestations_verify_with_securesystemslib_and_the_key_reaches_no_child() {
    let Some(python) = securesystemslib() else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let (p256, p256_public, p256_id) = openssl_key(
        keys.path(),
        "p256",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let (ed25519, ed25519_public, ed25519_id) =
        openssl_key(keys.path(), "ed25519", &["-algorithm", "ed25519"]);

    let fixture = Fixture::copy("hello");
    // The builder records the environment it was given; cargo runs under it.
    let manifest = fixture.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        text.replace(
            "[package.metadata.oci]\n",
            "[package.metadata.oci]\nbuilder = [\"sh\", \"-c\", \
             \"env > builder-env.txt && exec \\\"${CARGO:-cargo}\\\" build \\\"$@\\\"\", \"sh\"]\n",
        ),
    )
    .unwrap();
    let head = commit(&fixture);
    let sign_key = p256.display().to_string();
    let output = fixture.build(&["--sign-key", &sign_key]);
    assert_success(&output, "cargo oci build --sign-key");
    let layout = fixture.layout();
    let image = image_digest(&layout);
    let statement = fs::read(beside(&fixture, "provenance.json")).unwrap();
    for (kind, predicate_type) in [
        ("provenance.dsse.json", "https://slsa.dev/provenance/v1"),
        ("spdx.dsse.json", "https://spdx.dev/Document/v2.3"),
    ] {
        let envelope = beside(&fixture, kind);
        let payload = run(Command::new(&python)
            .args(["-c", VERIFY])
            .arg(&envelope)
            .arg(&p256_public)
            .arg(&p256_id));
        let payload: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(payload["predicateType"], predicate_type);
        assert_eq!(
            format!(
                "sha256:{}",
                payload["subject"][0]["digest"]["sha256"].as_str().unwrap()
            ),
            image
        );
        // The key of another is refused.
        let other = Command::new(&python)
            .args(["-c", VERIFY])
            .arg(&envelope)
            .arg(&ed25519_public)
            .arg(&ed25519_id)
            .output()
            .unwrap();
        assert!(!other.status.success(), "{kind} verified with another key");
        // Attached to the image, the same envelope.
        let attached = artifacts(&layout)
            .into_iter()
            .find(|a| a["annotations"]["in-toto.io/predicate-type"] == predicate_type)
            .unwrap_or_else(|| panic!("{predicate_type} is attached"));
        assert_eq!(
            attached["artifactType"],
            "application/vnd.dsse.envelope.v1+json"
        );
        let (content, subject) = artifact_content(&layout, &attached);
        assert_eq!(
            (content, subject),
            (fs::read(&envelope).unwrap(), image.clone())
        );
    }
    let provenance = Command::new(&python)
        .args(["-c", VERIFY])
        .arg(beside(&fixture, "provenance.dsse.json"))
        .arg(&p256_public)
        .arg(&p256_id)
        .output()
        .unwrap();
    assert_eq!(
        provenance.stdout, statement,
        "the envelope holds the statement"
    );
    // Which names the commit and Cargo.lock.
    let signed: Value = serde_json::from_slice(&provenance.stdout).unwrap();
    let dependencies = signed["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    assert!(
        dependencies
            .iter()
            .any(|d| d["digest"]["gitCommit"] == head.as_str()),
        "{dependencies:?}"
    );
    assert!(dependencies
        .iter()
        .any(|d| d["name"] == "Cargo.lock" && d["digest"]["sha256"].is_string()));

    // The key as a CI secret: the PEM itself in `CARGO_OCI_SIGNING_KEY`. It is never printed
    // and never in the environment of what the build runs.
    let pem = fs::read_to_string(&ed25519).unwrap();
    let output = fixture.build_with_env(&[], &[("CARGO_OCI_SIGNING_KEY", &pem)]);
    assert_success(&output, "cargo oci build with CARGO_OCI_SIGNING_KEY");
    let seen = fs::read_to_string(fixture.path().join("builder-env.txt")).unwrap();
    assert!(
        seen.contains("CARGO="),
        "the builder's environment was recorded: {seen}"
    );
    assert!(
        !seen.contains("CARGO_OCI_SIGNING_KEY") && !seen.contains("PRIVATE KEY"),
        "the key reached the builder: {seen}"
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!said.contains("PRIVATE KEY"), "{said}");
    run(Command::new(&python)
        .args(["-c", VERIFY])
        .arg(beside(&fixture, "provenance.dsse.json"))
        .arg(&ed25519_public)
        .arg(&ed25519_id));
    // Unsigned, the same statement: signing changes nothing of it.
    assert_eq!(
        fs::read(beside(&fixture, "provenance.json")).unwrap(),
        statement
    );

    // A key that is not one fails before anything is built, and shows nothing of itself.
    let garbage = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWdhcmJhZ2U=\n-----END PRIVATE KEY-----\n";
    let output = fixture.build_with_env(&["--quiet"], &[("CARGO_OCI_SIGNING_KEY", garbage)]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CARGO_OCI_SIGNING_KEY") && !stderr.contains("c2VjcmV0"),
        "{stderr}"
    );
    // Without a key, no envelope is left beside the image to describe it.
    fixture.build_ok(&["--quiet"]);
    assert!(!beside(&fixture, "provenance.dsse.json").exists());
    assert!(!beside(&fixture, "spdx.dsse.json").exists());
}

/// `cargo oci verify --key` over every kind of source, and what it says when the key, the
/// signature or the provenance is not what it should be.
#[test]
fn verify_with_a_key_accepts_the_signed_image_wherever_it_is_and_names_what_is_wrong() {
    let Some(registry) = crate::support::Registry::start(None) else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let (p256, p256_public, p256_id) = openssl_key(
        keys.path(),
        "p256",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let (_, ed25519_public, _) = openssl_key(keys.path(), "ed25519", &["-algorithm", "ed25519"]);
    let fixture = Fixture::copy("hello");
    commit(&fixture);
    let repository = format!("{}/team/hello", registry.host);
    let sign_key = p256.display().to_string();
    fixture.build_ok(&[
        "--quiet",
        "--sign-key",
        &sign_key,
        "--format",
        "oci",
        "--format",
        "oci-archive",
        "--push",
        &repository,
    ]);
    let layout = fixture.layout();
    let image = image_digest(&layout);
    let public = p256_public.display().to_string();
    let verify = |key: &str, image: Option<&str>| {
        let mut args = vec!["verify", "--key", key];
        args.extend(image);
        fixture.cargo_oci(&args)
    };
    let sources = [
        None,
        Some(format!("oci:{}:0.1.0", layout.display())),
        Some(format!(
            "oci-archive:{}:0.1.0",
            fixture.path().join("target/oci/hello.oci.tar").display()
        )),
        Some(format!("docker://{repository}:0.1.0")),
    ];
    for source in &sources {
        let output = verify(&public, source.as_deref());
        assert_success(&output, &format!("verify --key of {source:?}"));
        let said = String::from_utf8(output.stdout).unwrap();
        assert!(
            said.contains(": verified:") && said.contains(&image) && said.contains(&p256_id),
            "{source:?}: {said}"
        );
    }
    // Pushed after the image: the registry (without the referrers API) lists the SBOM and
    // both envelopes under the fallback tag.
    let listing: Value = serde_json::from_slice(&registry.raw_manifest(&format!(
        "team/hello:sha256-{}",
        image.trim_start_matches("sha256:")
    )))
    .unwrap();
    let mut types: Vec<&str> = listing["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "application/spdx+json",
            "application/vnd.dsse.envelope.v1+json",
            "application/vnd.dsse.envelope.v1+json"
        ],
        "{listing}"
    );
    // Inspect lists each attestation with its predicate type and signer.
    let output = fixture.cargo_oci(&["inspect", "--message-format", "json"]);
    assert_success(&output, "cargo oci inspect");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let attestations = report["attestations"].as_array().unwrap();
    assert_eq!(attestations.len(), 2, "{report}");
    for attestation in attestations {
        assert_eq!(attestation["signed"], true);
        assert_eq!(attestation["key_ids"][0], p256_id.as_str());
        assert_eq!(attestation["subject"], image.as_str());
    }
    let output = fixture.cargo_oci(&["inspect", &format!("docker://{repository}:0.1.0")]);
    assert_success(&output, "cargo oci inspect of the pushed image");
    let said = String::from_utf8(output.stdout).unwrap();
    assert!(
        said.contains("https://slsa.dev/provenance/v1, signed by key"),
        "{said}"
    );

    // A copy whose envelope blob is gone: read as far as it can be, and named.
    let damaged = fixture.path().join("damaged");
    crate::support::copy_dir(&layout, &damaged);
    let provenance = artifacts(&damaged)
        .into_iter()
        .find(|a| a["annotations"]["in-toto.io/predicate-type"] == "https://slsa.dev/provenance/v1")
        .unwrap();
    let manifest = crate::support::blob(&damaged, provenance["digest"].as_str().unwrap());
    let envelope = manifest["layers"][0]["digest"].as_str().unwrap();
    fs::remove_file(
        damaged
            .join("blobs/sha256")
            .join(envelope.trim_start_matches("sha256:")),
    )
    .unwrap();
    let output = verify(&public, Some(&format!("oci:{}:0.1.0", damaged.display())));
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("its envelope cannot be read"),
        "{output:?}"
    );

    // Another key: not verified, exit code 1, and the signer named.
    let output = verify(&ed25519_public.display().to_string(), None);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stdout.contains("not verified")
            && stdout.contains(&format!("signed by another key ({p256_id})")),
        "{stdout}"
    );
    assert!(stderr.contains("is not verified"), "{stderr}");
    // Unsigned, and then none at all: each named.
    fixture.build_ok(&["--quiet"]);
    let output = verify(&public, None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("is not signed"),
        "{output:?}"
    );
    fixture.build_ok(&["--quiet", "--provenance", "none"]);
    let output = verify(&public, None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("no provenance is attached"),
        "{output:?}"
    );
    // A key that cannot be read is no verdict: the error names the file.
    let output = verify("/nonexistent/pub.pem", None);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("/nonexistent/pub.pem"),
        "{output:?}"
    );
}
