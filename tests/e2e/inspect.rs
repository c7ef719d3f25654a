//! `cargo oci inspect`: the hello fixture's layout, its archives and a registry's copy of it, in
//! human and JSON form; parents made by umoci (whiteouts, several platforms). Sizes and digests
//! are judged by gzip, sha256sum and tar, not by our own reader.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::host::{FOREIGN, HOST};
use crate::support::parents::parents;
use crate::support::{
    assert_success, manifest_and_config, read_json, run, tool, Fixture, Registry,
};

/// `cargo oci inspect --message-format json ARGS`, parsed.
fn inspect_json(fixture: &Fixture, args: &[&str]) -> Value {
    let mut all = vec!["inspect", "--message-format", "json"];
    all.extend_from_slice(args);
    let output = fixture.cargo_oci(&all);
    assert_success(&output, "cargo oci inspect");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `cargo oci inspect ARGS`, its stdout.
fn inspect_human(fixture: &Fixture, args: &[&str]) -> String {
    let mut all = vec!["inspect"];
    all.extend_from_slice(args);
    let output = fixture.cargo_oci(&all);
    assert_success(&output, "cargo oci inspect");
    String::from_utf8(output.stdout).unwrap()
}

fn blob_path(layout: &Path, digest: &Value) -> std::path::PathBuf {
    let digest = digest.as_str().unwrap();
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// What gzip and sha256sum say of a gzip layer blob: its tar's size and digest.
fn zcat_size_and_digest(blob: &Path) -> (u64, String) {
    let size = run(Command::new("sh")
        .arg("-c")
        .arg("zcat < \"$0\" | wc -c")
        .arg(blob));
    let sum = run(Command::new("sh")
        .arg("-c")
        .arg("zcat < \"$0\" | sha256sum")
        .arg(blob));
    let hex = sum.split_whitespace().next().unwrap().to_owned();
    (size.trim().parse().unwrap(), format!("sha256:{hex}"))
}

#[test]
fn inspect_shows_the_config_and_every_layer_measured() {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    let layout = fixture.layout();
    let (manifest, config) = manifest_and_config(&layout);
    let index = read_json(&layout.join("index.json"));

    let report = inspect_json(&fixture, &[]);
    assert_eq!(report["digest"], index["manifests"][0]["digest"]);
    assert_eq!(report["name"], "hello:0.1.0");
    assert_eq!(report["tags"], json!(["0.1.0", "latest"]));
    let platforms = report["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 1);
    let image = &platforms[0];
    assert_eq!(image["platform"], format!("linux/{}", HOST.go));
    assert_eq!(image["config"], manifest["config"]["digest"]);
    assert_eq!(image["entrypoint"], config["config"]["Entrypoint"]);
    assert_eq!(image["entrypoint"], json!(["/usr/local/bin/hello"]));
    assert_eq!(image["cmd"], json!(["--from-cmd"]));
    assert_eq!(image["user"], "65532:65532");
    assert_eq!(image["env"], config["config"]["Env"]);
    assert_eq!(image["exposed_ports"], json!(["53/udp", "8080/tcp"]));
    assert_eq!(image["working_dir"], "/srv");
    assert_eq!(image["stop_signal"], "SIGINT");
    assert_eq!(image["labels"]["org.example.fixture"], "hello");
    assert_eq!(image["annotations"], manifest["annotations"]);
    assert_eq!(image["history"], config["history"]);

    let layers = image["layers"].as_array().unwrap();
    let theirs = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), theirs.len());
    assert_eq!(layers.len(), 2);
    let mut total = (0, 0);
    for (i, (layer, theirs)) in layers.iter().zip(theirs).enumerate() {
        assert_eq!(layer["digest"], theirs["digest"]);
        assert_eq!(layer["size"], theirs["size"]);
        assert_eq!(layer["diff_id"], config["rootfs"]["diff_ids"][i]);
        if tool("zcat") && tool("sha256sum") {
            let (size, digest) = zcat_size_and_digest(&blob_path(&layout, &theirs["digest"]));
            assert_eq!(layer["uncompressed_size"], size, "layer {}", i + 1);
            assert_eq!(layer["diff_id"], digest.as_str(), "layer {}", i + 1);
        }
        total.0 += layer["size"].as_u64().unwrap();
        total.1 += layer["uncompressed_size"].as_u64().unwrap();
    }
    assert_eq!(layers[0]["created_by"], "cargo oci: files");
    assert_eq!(layers[1]["created_by"], "cargo oci: bins hello");
    assert_eq!(
        (image["size"].clone(), image["uncompressed_size"].clone()),
        (json!(total.0), json!(total.1))
    );

    let human = inspect_human(&fixture, &[]);
    let short = |d: &Value| d.as_str().unwrap()[..19].to_owned();
    for expected in [
        "hello:0.1.0\n".to_owned(),
        format!(
            "  digest       {}",
            index["manifests"][0]["digest"].as_str().unwrap()
        ),
        "  tags         0.1.0, latest\n".to_owned(),
        format!("linux/{}\n", HOST.go),
        "  entrypoint   [\"/usr/local/bin/hello\"]\n".to_owned(),
        "  user         65532:65532\n".to_owned(),
        "  env          GREETING=hi there\n               RUST_LOG=info\n".to_owned(),
        "  ports        53/udp 8080/tcp\n".to_owned(),
        format!("  1  {}", short(&theirs[0]["digest"])),
        format!("  2  {}", short(&theirs[1]["digest"])),
        "  cargo oci: bins hello\n".to_owned(),
    ] {
        assert!(human.contains(&expected), "{expected:?} in:\n{human}");
    }
    assert!(human.lines().all(|l| l == l.trim_end()), "{human}");
}

#[test]
fn inspect_reads_both_archives_as_the_layout() {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&[
        "--quiet",
        "--format",
        "oci",
        "--format",
        "oci-archive",
        "--format",
        "docker",
    ]);
    let layout_report = inspect_json(&fixture, &[]);
    let oci = fixture.path().join("target/oci/hello.oci.tar");
    let docker = fixture.path().join("target/oci/hello.docker.tar");
    for (source, name) in [
        (format!("oci-archive:{}", oci.display()), "hello:0.1.0"),
        (
            format!("oci-archive:{}:latest", oci.display()),
            "hello:latest",
        ),
        (
            format!("docker-archive:{}", docker.display()),
            "hello:0.1.0",
        ),
        (
            format!("docker-archive:{}:hello:latest", docker.display()),
            "hello:latest",
        ),
    ] {
        let report = inspect_json(&fixture, &[&source]);
        assert_eq!(report["source"], source);
        assert_eq!(report["name"], name, "{source}");
        // The same image, manifest and all: Docker's archive carries the OCI layout too.
        assert_eq!(report["digest"], layout_report["digest"], "{source}");
        let (ours, theirs) = (&report["platforms"][0], &layout_report["platforms"][0]);
        for key in [
            "manifest",
            "config",
            "entrypoint",
            "user",
            "env",
            "layers",
            "size",
        ] {
            assert_eq!(ours[key], theirs[key], "{key} of {source}");
        }
        assert_eq!(
            ours["uncompressed_size"], theirs["uncompressed_size"],
            "{source}"
        );
    }
    let human = inspect_human(&fixture, &[&format!("docker-archive:{}", docker.display())]);
    assert!(human.contains("  source       docker-archive:"), "{human}");
    assert!(human.contains("  user         65532:65532\n"), "{human}");
}

#[test]
fn inspect_files_lists_the_final_tree_with_sizes() {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    let layout = fixture.layout();
    let (manifest, _) = manifest_and_config(&layout);
    // tar's own listing of the binary layer: `-rwxr-xr-x 0/0 SIZE DATE TIME usr/local/bin/hello`.
    let listing = run(Command::new("tar")
        .arg("-tvzf")
        .arg(blob_path(&layout, &manifest["layers"][1]["digest"])));
    let line = listing
        .lines()
        .find(|l| l.ends_with("usr/local/bin/hello"))
        .unwrap_or_else(|| panic!("{listing}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (mode, size) = (fields[0], fields[2]);
    assert_eq!(mode, "-rwxr-xr-x");

    let human = inspect_human(&fixture, &["--files"]);
    let lines: Vec<&str> = human.lines().collect();
    assert!(
        lines[0].starts_with(&format!("linux/{}: 10 paths, 3 files, ", HOST.go)),
        "{human}"
    );
    let paths: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/srv",
            "/srv/static",
            "/srv/static/css",
            "/srv/static/css/site.css",
            "/srv/static/index.html",
            // A scratch image running as 65532 gets the /tmp it could not make.
            "/tmp",
            "/usr",
            "/usr/local",
            "/usr/local/bin",
            "/usr/local/bin/hello"
        ],
        "by path: {human}"
    );
    let hello = lines
        .iter()
        .find(|l| l.ends_with(" /usr/local/bin/hello"))
        .unwrap();
    let ours: Vec<&str> = hello.split_whitespace().collect();
    assert_eq!(ours, [mode, "0:0", size, "/usr/local/bin/hello"], "{human}");

    let largest = inspect_human(&fixture, &["--files", "--largest"]);
    let first = largest.lines().nth(1).unwrap();
    assert!(
        first.ends_with(&format!(" {size}  /usr/local/bin/hello")),
        "{largest}"
    );

    let report = inspect_json(&fixture, &["--files"]);
    let files = report["platforms"][0]["files"].as_array().unwrap();
    let hello = files
        .iter()
        .find(|f| f["path"] == "/usr/local/bin/hello")
        .unwrap();
    assert_eq!(hello["size"], size.parse::<u64>().unwrap());
    assert_eq!(
        (hello["mode"].as_str(), hello["type"].as_str()),
        (Some("0755"), Some("file"))
    );
    assert_eq!(files.len(), 10);
}

#[test]
fn inspect_applies_whiteouts_and_reads_every_platform_of_a_parent() {
    let Some(parents) = parents() else { return };
    let fixture = Fixture::copy("hello");
    let paths = |report: &Value| -> Vec<String> {
        report["platforms"][0]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_owned())
            .collect()
    };
    // umoci recorded the deletion of /etc/old as a whiteout in the second layer.
    let base = format!("oci:{}:latest", parents.layout.display());
    let report = inspect_json(&fixture, &["--files", &base]);
    let files = paths(&report);
    for present in [
        "/bin/busybox",
        "/bin/sh",
        "/etc/motd",
        "/etc/hostname",
        "/work",
    ] {
        assert!(files.iter().any(|f| f == present), "{present} in {files:?}");
    }
    assert!(
        !files.iter().any(|f| f == "/etc/old"),
        "whited out: {files:?}"
    );
    assert_eq!(report["platforms"][0]["working_dir"], "/work");
    let parent_manifest = report["platforms"][0]["manifest"].clone();

    let multi = format!("oci:{}:latest", parents.multi.display());
    let report = inspect_json(&fixture, &[&multi]);
    let platforms: Vec<&str> = report["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    let (host, foreign) = (
        format!("linux/{}", HOST.go),
        format!("linux/{}", FOREIGN.go),
    );
    assert_eq!(platforms, [host.as_str(), foreign.as_str()]);
    assert_eq!(
        report["media_type"],
        "application/vnd.oci.image.index.v1+json"
    );
    let report = inspect_json(&fixture, &["--platform", &foreign, &multi]);
    assert_eq!(report["platforms"].as_array().unwrap().len(), 1);
    assert_eq!(report["platforms"][0]["platform"], foreign.as_str());
    let human = inspect_human(&fixture, &[&multi]);
    assert!(human.contains(&format!("\n{host}\n")) && human.contains(&format!("\n{foreign}\n")));

    // Built on the parent with `remove`: the base is named, /etc/motd whited out.
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"{base}\"\nremove = [\"/etc/motd\"]\n"
    ));
    fixture.build_ok(&["--quiet"]);
    let report = inspect_json(&fixture, &["--files"]);
    let files = paths(&report);
    assert!(
        files.iter().any(|f| f == "/usr/local/bin/hello"),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|f| f == "/etc/motd" || f == "/etc/old"),
        "{files:?}"
    );
    let image = &report["platforms"][0];
    // umoci's layout names its image by a bare tag only: a digest, and no name.
    assert_eq!(image["base_name"], Value::Null);
    assert_eq!(image["base_digest"], parent_manifest);
    let human = inspect_human(&fixture, &[]);
    let line = format!("  base         {}\n", parent_manifest.as_str().unwrap());
    assert!(human.contains(&line), "{human}");
    let layers = image["layers"].as_array().unwrap();
    assert_eq!(
        layers[layers.len() - 2]["created_by"],
        "cargo oci: remove /etc/motd"
    );
}

#[test]
fn inspect_pulls_a_registry_image_into_the_cache() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let fixture = Fixture::copy("hello");
    let repository = format!("{}/team/hello", registry.host);
    fixture.build_ok(&["--quiet", "--push", &repository]);
    let local = inspect_json(&fixture, &[]);
    let digest = local["digest"].as_str().unwrap();

    for (reference, name) in [
        (
            format!("docker://{repository}:0.1.0"),
            format!("{repository}:0.1.0"),
        ),
        (format!("{repository}@{digest}"), repository.clone()),
    ] {
        let report = inspect_json(&fixture, &[&reference]);
        assert_eq!(report["digest"], digest, "{reference}");
        assert_eq!(report["name"], name, "{reference}");
        let (ours, theirs) = (&report["platforms"][0], &local["platforms"][0]);
        for key in [
            "manifest",
            "config",
            "entrypoint",
            "layers",
            "uncompressed_size",
        ] {
            assert_eq!(ours[key], theirs[key], "{key} of {reference}");
        }
    }
    // The blobs went into the package's build cache, where a later build finds them.
    let cache = fixture.path().join("target/oci/.cache/blobs/sha256");
    let layer = local["platforms"][0]["layers"][1]["digest"]
        .as_str()
        .unwrap();
    assert!(cache.join(layer.trim_start_matches("sha256:")).is_file());
}

/// A small layout whose manifest lists one layer of 32 MiB of zeros 5,000 times (160 GB once
/// decompressed, were it read each time): `inspect`, and `inspect --files`, read it once. The
/// time limit is a guard against the old behaviour, which ran for many minutes, not a measure.
#[test]
fn a_layer_listed_thousands_of_times_is_read_once() {
    use sha2::Digest as _;
    use std::io::Read as _;
    const LISTINGS: usize = 5_000;
    const ZEROS: u64 = 32 << 20;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("amplified");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let put = |bytes: &[u8]| {
        let digest = format!("sha256:{:x}", sha2::Sha256::digest(bytes));
        std::fs::write(blob_path(&layout, &json!(digest)), bytes).unwrap();
        (digest, bytes.len())
    };
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(ZEROS);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    tar.append_data(&mut header, "zeros", std::io::repeat(0).take(ZEROS))
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = format!("sha256:{:x}", sha2::Sha256::digest(&tar));
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip, &tar).unwrap();
    let (layer, layer_size) = put(&gzip.finish().unwrap());
    let config = json!({
        "architecture": HOST.go, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": vec![diff_id; LISTINGS]},
    });
    let (config, config_size) = put(&serde_json::to_vec(&config).unwrap());
    let layer = json!({
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": layer, "size": layer_size,
    });
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config, "size": config_size,
        },
        "layers": vec![layer; LISTINGS],
    });
    let (manifest, manifest_size) = put(&serde_json::to_vec(&manifest).unwrap());
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest, "size": manifest_size,
        "annotations": {"org.opencontainers.image.ref.name": "1"},
    }]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();

    let fixture = Fixture::copy("hello");
    let source = format!("oci:{}", layout.display());
    let limit = std::time::Duration::from_secs(120);
    for files in [false, true] {
        let mut args = vec!["inspect", "--message-format", "json", &source];
        if files {
            args.push("--files");
        }
        let output = fixture.cargo_oci_within(&args, limit);
        assert_success(&output, "cargo oci inspect of a layer listed 5,000 times");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        let platform = &report["platforms"][0];
        assert_eq!(platform["layers"].as_array().unwrap().len(), LISTINGS);
        assert_eq!(
            platform["uncompressed_size"].as_u64(),
            Some(tar.len() as u64 * LISTINGS as u64)
        );
        if files {
            let listed = platform["files"].as_array().unwrap();
            assert!(
                listed
                    .iter()
                    .any(|f| f["path"] == "/zeros" && f["size"] == ZEROS),
                "{listed:?}"
            );
        }
    }
}

/// A name with a newline (a forged line) and a terminal escape (clear the screen, set the
/// window title): shown escaped by `inspect`, `inspect --files` and `verify --against`, exact
/// in JSON.
#[test]
fn an_images_control_characters_never_reach_the_terminal() {
    use crate::hostile::{craft, gzip};
    use oci_pack::testing::Raw;
    let forged = "srv/evil\n-rwxr-xr-x  0:0  1  /forged";
    let escape = "srv/\x1b[2J\x1b]0;pwned\x07";
    let fixture = Fixture::copy("hello");
    let layout = fixture.path().join("crafted");
    let files = gzip(&[
        Raw::Dir("srv", 0o755),
        Raw::File(forged, b"x", 0o644),
        Raw::File(escape, b"y", 0o644),
    ]);
    let bins = gzip(&[Raw::File("usr/local/bin/hello", b"not it", 0o755)]);
    let diff_ids: Vec<String> = [&files, &bins]
        .iter()
        .map(|layer| layer.diff_id.to_string())
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": HOST.go, "os": "linux",
        "config": {"Env": ["TITLE=\x1b]0;pwned\x07"], "Labels": {"team": "a\nforged: yes"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "\x1b[31mred"}, {"created_by": "bins"}]
    }))
    .unwrap();
    craft(&layout, &[files, bins], Some(&config), |_| {});
    let image = format!("oci:{}:latest", layout.display());

    let raw = |text: &str| text.contains('\x1b') || text.contains('\x07');
    let human = inspect_human(&fixture, &[&image]);
    assert!(!raw(&human), "{human:?}");
    assert!(human.contains("TITLE=\\x1b]0;pwned\\x07"), "{human}");
    assert!(human.contains("team=a\\nforged: yes"), "{human}");
    assert!(human.contains("\\x1b[31mred"), "{human}");
    assert!(!human.lines().any(|l| l.starts_with("forged")), "{human}");

    let files = inspect_human(&fixture, &["--files", &image]);
    assert!(!raw(&files), "{files:?}");
    assert!(
        files.contains("/srv/evil\\n-rwxr-xr-x  0:0  1  /forged\n"),
        "{files}"
    );
    assert!(
        files.contains("/srv/\\x1b[2J\\x1b]0;pwned\\x07\n"),
        "{files}"
    );
    assert!(!files
        .lines()
        .any(|l| l.contains(" /forged") && !l.contains("evil")));

    // JSON stays exact.
    let report = inspect_json(&fixture, &["--files", &image]);
    let paths: Vec<&str> = report["platforms"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&format!("/{forged}").as_str()), "{paths:?}");
    assert!(paths.contains(&format!("/{escape}").as_str()), "{paths:?}");

    // A layer of a media type no decoder reads is named in a warning, escaped too.
    let odd = fixture.path().join("odd");
    craft(
        &odd,
        &[gzip(&[Raw::File("a", b"x", 0o644)])],
        None,
        |manifest| {
            manifest["layers"][0]["mediaType"] = "application/x.\x1b[2J".into();
        },
    );
    let output = fixture.cargo_oci(&["inspect", &format!("oci:{}:latest", odd.display())]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("`application/x.\\x1b[2J`"), "{stderr}");
    assert!(!raw(&stderr), "{stderr:?}");

    // The rebuild differs from it in the files layer, whose names are listed.
    let output = fixture.cargo_oci(&["verify", "--quiet", "--against", &image]);
    assert!(!output.status.success());
    let (stdout, stderr) = (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    );
    assert!(!raw(&stdout) && !raw(&stderr), "{stdout:?} {stderr:?}");
    assert!(stdout.contains("/srv/evil\\n-rwxr-xr-x"), "{stdout}");
    assert!(stdout.contains("/srv/\\x1b[2J"), "{stdout}");
    assert!(
        !stdout.lines().any(|l| l.starts_with("-rwxr-xr-x")),
        "{stdout}"
    );
}
