//! Nothing lost, nothing trusted that was not checked: outputs that hold what we did not write
//! are refused and left as they are, a parent blob that is a link is copied, never linked, what
//! an interrupted build left is cleaned up, two builds into one output take turns, outputs are
//! as readable as the umask allows, and an archive's unreferenced members are never written.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::support::parents::parents;
use crate::support::{blob, copy_dir, manifest_and_config, outputs_in, read_json, Fixture};

/// Every file under `dir`, with its contents.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                found.push((name, fs::read(&path).unwrap_or_default()));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn an_output_holding_what_we_did_not_write_is_refused_and_kept() {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    let layout = fixture.layout();

    // A layout with a note in it, or a git checkout: refused, every byte kept.
    for (name, stranger) in [("notes.txt", false), (".git", true)] {
        let path = layout.join(name);
        if stranger {
            fs::create_dir_all(path.join("objects")).unwrap();
            fs::write(path.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        } else {
            fs::write(&path, "mine").unwrap();
        }
        let before = contents(&layout);
        let output = fixture.build(&["--quiet"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}: replaced");
        assert!(stderr.contains(&format!("it holds `{name}`")), "{stderr}");
        assert_eq!(contents(&layout), before, "{name}: something changed");
        if stranger {
            fs::remove_dir_all(&path).unwrap();
        } else {
            fs::remove_file(&path).unwrap();
        }
    }

    // A layout shared with another image: refused, the other image kept.
    let index_path = layout.join("index.json");
    let mut index = read_json(&index_path);
    let mut other = index["manifests"][0].clone();
    other["annotations"] = json!({
        "org.opencontainers.image.ref.name": "1.0",
        "io.containerd.image.name": "other:1.0"
    });
    index["manifests"].as_array_mut().unwrap().push(other);
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let before = contents(&layout);
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("it holds other images (`other:1.0`)"),
        "{stderr}"
    );
    assert_eq!(contents(&layout), before);
}

/// A layout an earlier build wrote is that build's whatever it names: building under other tags
/// replaces it. Once its index is rewritten by anyone else, it is theirs, and refused.
#[test]
fn a_layout_an_earlier_build_wrote_is_replaced_under_new_tags() {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    fixture.build_ok(&["--quiet", "--tag", "localhost/renamed:dev"]);
    let index_path = fixture.layout().join("index.json");
    let index = read_json(&index_path);
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["io.containerd.image.name"].as_str())
        .collect();
    assert_eq!(names, ["localhost/renamed:dev"], "{index:#}");

    // The same bytes, written again by someone else: no longer provably ours.
    let bytes = fs::read(&index_path).unwrap();
    fs::remove_file(&index_path).unwrap();
    fs::write(&index_path, bytes).unwrap();
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "replaced a layout it cannot tell it wrote"
    );
    assert!(
        stderr.contains("it holds other images (`localhost/renamed:dev`)"),
        "{stderr}"
    );
}

/// A layout is replaced as an earlier build's only by a build of the same image: another
/// image's build pointed at it by `--output` is refused, that layout kept.
#[test]
fn another_images_layout_is_never_replaced_as_an_earlier_build() {
    let fixture = Fixture::copy("services");
    fixture.build_ok(&["--quiet", "--workspace"]);
    let api = fixture.path().join("target/oci/api");
    let before = contents(&api);
    let output = fixture.build(&["--quiet", "-p", "worker", "--output", "target/oci/api"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "worker replaced api's layout");
    assert!(
        stderr.contains("it holds other images (`api:0.2.0`"),
        "{stderr}"
    );
    assert_eq!(contents(&api), before);
}

/// The tars packing keeps for a local engine never outlive the build, even one whose load
/// fails before it reaches every image of a workspace, or whose packing fails for one image
/// after the others kept theirs.
#[test]
fn a_failed_load_or_pack_leaves_no_tar_in_the_cache() {
    let tars_in = |fixture: &Fixture| -> Vec<std::path::PathBuf> {
        let blobs = fixture.path().join("target/oci/.cache/blobs/sha256");
        fs::read_dir(&blobs)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|blob| fs::read(blob).unwrap().get(257..262) == Some(b"ustar".as_slice()))
            .collect()
    };
    let fixture = Fixture::copy("services");
    let env = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];
    let output = fixture.build_with_env(&["--quiet", "--workspace", "--load=docker"], &env);
    assert!(!output.status.success(), "loaded into no daemon");
    assert_eq!(tars_in(&fixture), Vec::<std::path::PathBuf>::new());

    // worker removes what its base does not have: its packing fails, the others' does not.
    let Some(parents) = parents() else { return };
    let worker = fixture.path().join("worker/Cargo.toml");
    let text = fs::read_to_string(&worker).unwrap();
    let base = parents.layout.display();
    let table = format!(
        "[package.metadata.oci]\nbase = \"oci:{base}:latest\"\nremove = [\"/no/such/path\"]\n"
    );
    fs::write(&worker, format!("{text}\n{table}")).unwrap();
    let main = fixture.path().join("api/src/main.rs");
    let code = fs::read_to_string(&main).unwrap();
    fs::write(&main, format!("{code}\n// changed\n")).unwrap();
    let output = fixture.build_with_env(&["--quiet", "--workspace", "--load=docker"], &env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/no/such/path"), "{stderr}");
    assert_eq!(tars_in(&fixture), Vec::<std::path::PathBuf>::new());
}

#[test]
fn a_parent_blob_that_is_a_link_is_copied_never_linked() {
    let Some(parents) = parents() else { return };
    let fixture = Fixture::copy("hello");
    let parent = fixture.path().join("parent");
    copy_dir(&parents.layout, &parent);
    // The first layer's blob becomes a link to a copy of itself elsewhere.
    let index = read_json(&parent.join("index.json"));
    let manifest = blob(&parent, index["manifests"][0]["digest"].as_str().unwrap());
    let layer = manifest["layers"][0]["digest"].as_str().unwrap()[7..].to_owned();
    let elsewhere = fixture.path().join("elsewhere.blob");
    let blob = parent.join("blobs/sha256").join(&layer);
    fs::rename(&blob, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &blob).unwrap();
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"oci:{}:latest\"\n",
        parent.display()
    ));
    fixture.build_ok(&["--quiet", "--format", "oci", "--format", "docker"]);

    let output_blob = fixture.layout().join("blobs/sha256").join(&layer);
    let metadata = fs::symlink_metadata(&output_blob).unwrap();
    assert!(metadata.is_file(), "a link reached the output");
    let original = fs::read(&elsewhere).unwrap();
    // Changing the host file later does not change the image.
    fs::write(&elsewhere, b"changed").unwrap();
    assert_eq!(fs::read(&output_blob).unwrap(), original);
}

#[test]
fn a_build_with_nothing_staged_still_checks_every_layer_of_its_base() {
    let Some(parents) = parents() else { return };
    let fixture = Fixture::copy("hello");
    let parent = fixture.path().join("parent");
    copy_dir(&parents.layout, &parent);
    // The config's first diff_id is wrong: the layer is not what the config says.
    let index = read_json(&parent.join("index.json"));
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap()[7..].to_owned();
    let manifest = read_json(&parent.join("blobs/sha256").join(&manifest_digest));
    let config_digest = manifest["config"]["digest"].as_str().unwrap()[7..].to_owned();
    let mut config = read_json(&parent.join("blobs/sha256").join(&config_digest));
    config["rootfs"]["diff_ids"][0] = json!(format!("sha256:{}", "0".repeat(64)));
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let new_config = oci_pack::Digest::of(&config_bytes);
    fs::write(
        parent.join("blobs/sha256").join(new_config.hex()),
        &config_bytes,
    )
    .unwrap();
    let mut manifest = manifest;
    manifest["config"]["digest"] = json!(new_config.to_string());
    manifest["config"]["size"] = json!(config_bytes.len());
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let new_manifest = oci_pack::Digest::of(&manifest_bytes);
    fs::write(
        parent.join("blobs/sha256").join(new_manifest.hex()),
        &manifest_bytes,
    )
    .unwrap();
    let mut index = index;
    index["manifests"][0]["digest"] = json!(new_manifest.to_string());
    index["manifests"][0]["size"] = json!(manifest_bytes.len());
    fs::write(
        parent.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();

    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"oci:{}:latest\"\nbins = []\n\n\
         [package.metadata.oci.config]\nuser = \"7\"\n",
        parent.display()
    ));
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a wrong diff_id passed a config-only build"
    );
    assert!(stderr.contains("does not match its diff_id"), "{stderr}");
    assert!(!fixture.layout().exists());
}

#[test]
fn what_an_interrupted_build_left_is_cleaned_up_and_an_output_moved_aside_comes_back() {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    let oci = fixture.path().join("target/oci");
    let layout = fixture.layout();
    let first = fs::read(layout.join("index.json")).unwrap();
    // What builds killed at the wrong moment leave: staging, and a swap cut in two.
    fs::create_dir_all(oci.join(".hello.partial-abc123/blobs/sha256")).unwrap();
    fs::write(
        oci.join(".hello.partial-abc123/blobs/sha256/x"),
        vec![0; 4096],
    )
    .unwrap();
    fs::write(oci.join(".hello.docker.tar.partial-def456"), vec![0; 4096]).unwrap();
    fs::create_dir_all(oci.join(".hello.old-ghi789")).unwrap();
    fs::rename(&layout, oci.join(".hello.old-ghi789/layout")).unwrap();
    // Someone else's staging is not ours to delete.
    fs::write(oci.join(".other.partial-zzz"), b"not ours").unwrap();

    let output = fixture.build(&["--quiet"]);
    crate::support::assert_success(&output, "the build after an interruption");
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), first);
    let mut left = outputs_in(&oci);
    left.sort();
    assert_eq!(
        left,
        crate::support::names(&[
            ".other.partial-zzz",
            "hello",
            &crate::support::provenance_of("hello"),
            &crate::support::sbom_of("hello")
        ])
    );
}

/// A load starts while packing, before the outputs are written: it waits for the output's
/// lock all the same, since the layout it stages for the engine sits beside the output, where
/// the build holding the lock sweeps what is staged.
#[test]
fn a_load_waits_for_the_build_that_holds_the_output() {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    // A stand-in docker that writes down when it was asked anything.
    let bin = fixture.path().join("engine");
    fs::create_dir_all(&bin).unwrap();
    let engine = bin.join("docker");
    fs::write(
        &engine,
        "#!/bin/sh
date +%s%N >> \"$(dirname \"$0\")/asked\"
\
         if [ \"$1\" = load ]; then cat >/dev/null; echo 'Loaded image: hello:0.1.0'; \
         exit 0; fi
exit 1
",
    )
    .unwrap();
    fs::set_permissions(&engine, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let lock = fixture.path().join("target/oci/.hello.lock");
    // Another build holds the output until told to let go.
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sh", "-c", "read go"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let held = || {
        let free = Command::new("flock")
            .arg("-n")
            .arg(&lock)
            .arg("true")
            .status();
        !free.unwrap().success()
    };
    while !held() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut build = crate::support::cargo_oci()
        .args(["build", "--load=docker"])
        .current_dir(fixture.path())
        .env("PATH", &path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(build.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("Blocking waiting for another build of") {
        let read = std::io::BufRead::read_line(&mut stderr, &mut said).unwrap();
        assert!(read > 0, "it never met the lock held: {said}");
    }
    let released = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut go = holder.stdin.take().unwrap();
    go.write_all(b"go\n").unwrap();
    drop(go);
    holder.wait().unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    assert!(
        build.wait().unwrap().success(),
        "a load that waited: {said}"
    );
    let asked = fs::read_to_string(bin.join("asked")).unwrap();
    assert!(asked.lines().any(|_| true), "docker was never asked");
    for time in asked.lines() {
        let time: u128 = time.trim().parse().unwrap();
        assert!(
            time > released,
            "docker was asked while another build held the output"
        );
    }
}

#[test]
fn two_builds_into_one_output_take_turns() {
    let fixture = Fixture::copy("hello");
    fixture.build_ok(&["--quiet"]);
    let lock = fixture.path().join("target/oci/.hello.lock");
    // Another build holds the output: this one says so, waits, then writes.
    let holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "2"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let waiting = fixture.build_with_env(&["--format", "docker"], &[("SOURCE_DATE_EPOCH", "1")]);
    let mut holder = holder;
    holder.wait().unwrap();
    crate::support::assert_success(&waiting, "a build that waited");
    let stderr = String::from_utf8_lossy(&waiting.stderr);
    assert!(
        stderr.contains("Blocking waiting for another build of"),
        "{stderr}"
    );

    // Two real builds at once, of different images: the layout and the archive beside it are
    // always one build's.
    for round in 0..3 {
        let started: Vec<_> = ["10", "20"]
            .iter()
            .map(|epoch| {
                crate::support::cargo_oci()
                    .args(["build", "--quiet", "--format", "oci", "--format", "docker"])
                    .current_dir(fixture.path())
                    .env("SOURCE_DATE_EPOCH", epoch)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in started {
            let output = child.wait_with_output().unwrap();
            crate::support::assert_success(&output, "a build racing another");
        }
        let (manifest, _) = manifest_and_config(&fixture.layout());
        let archive = fixture.path().join("target/oci/hello.docker.tar");
        let mut tar = tar::Archive::new(fs::File::open(&archive).unwrap());
        let in_archive: serde_json::Value = tar
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap() == Path::new("manifest.json"))
            .map(|e| serde_json::from_reader(e).unwrap())
            .unwrap();
        let config = manifest["config"]["digest"].as_str().unwrap()[7..].to_owned();
        assert_eq!(
            in_archive[0]["Config"],
            format!("blobs/sha256/{config}"),
            "round {round}: the layout and the archive come from different builds"
        );
    }
}

#[test]
fn outputs_are_as_readable_as_the_umask_allows() {
    let fixture = Fixture::copy("hello");
    for (umask, file_mode, dir_mode) in [("022", 0o644, 0o755), ("027", 0o640, 0o750)] {
        let _ = fs::remove_dir_all(fixture.path().join("target/oci"));
        let output = crate::support::hermetic(&mut Command::new("sh"))
            .arg("-c")
            .arg(format!(
                "umask {umask}; exec \"$0\" oci build --quiet --format oci --format docker"
            ))
            .arg(env!("CARGO_BIN_EXE_cargo-oci"))
            .current_dir(fixture.path())
            .output()
            .unwrap();
        crate::support::assert_success(&output, "cargo oci build under a umask");
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let layout = fixture.layout();
        assert_eq!(mode(&layout), dir_mode, "umask {umask}: the layout");
        for blob in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
            assert_eq!(
                mode(&blob.unwrap().path()),
                file_mode,
                "umask {umask}: a blob"
            );
        }
        assert_eq!(mode(&layout.join("index.json")), file_mode, "umask {umask}");
        let archive = fixture.path().join("target/oci/hello.docker.tar");
        assert_eq!(mode(&archive), file_mode, "umask {umask}: the archive");
    }
}

/// A gzip archive of a few hundred KB whose one unreferenced member is 200 MB of zeros: the
/// build reads it, and writes none of it.
#[test]
fn an_archive_member_nobody_references_is_never_written() {
    let Some(parents) = parents() else { return };
    let fixture = Fixture::copy("hello");
    let unpacked = fixture.path().join("unpacked");
    fs::create_dir_all(&unpacked).unwrap();
    crate::support::run(
        Command::new("tar")
            .arg("-xf")
            .arg(&parents.docker_archive)
            .arg("-C")
            .arg(&unpacked),
    );
    let archive = fixture.path().join("bomb.tar.gz");
    let gz = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 200000000 /dev/zero > {dir}/padding.bin && \
             tar -C {dir} -cf - . | gzip -1 > {out} && rm {dir}/padding.bin",
            dir = unpacked.display(),
            out = archive.display()
        ))
        .status()
        .unwrap();
    assert!(gz.success());
    assert!(fs::metadata(&archive).unwrap().len() < 10 << 20);
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"docker-archive:{}\"\n",
        archive.display()
    ));
    fixture.build_ok(&["--quiet"]);
    let biggest = crate::support::largest_file(&fixture.path().join("target/oci"));
    assert!(biggest < 20 << 20, "a {biggest}-byte file was written");
}

#[test]
fn a_huge_index_is_refused_before_it_is_read() {
    let fixture = Fixture::copy("hello");
    let parent = fixture.path().join("parent");
    fs::create_dir_all(parent.join("blobs/sha256")).unwrap();
    fs::write(
        parent.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut index = fs::File::create(parent.join("index.json")).unwrap();
    index
        .write_all(br#"{"schemaVersion":2,"manifests":[],"pad":""#)
        .unwrap();
    index.write_all(&vec![b'x'; 5 << 20]).unwrap();
    index.write_all(b"\"}").unwrap();
    fixture.set_metadata(&format!(
        "[package.metadata.oci]\nbase = \"oci:{}\"\n",
        parent.display()
    ));
    let output = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("is larger than 4194304 bytes"), "{stderr}");
}

#[test]
fn a_file_outside_the_package_needs_to_be_allowed_and_keeps_its_mode() {
    let fixture = Fixture::copy("hello");
    let outside = fixture
        .path()
        .parent()
        .unwrap()
        .join(format!("cargo-oci-outside-{}", std::process::id()));
    fs::write(&outside, "secret").unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o600)).unwrap();
    let files = format!(
        "files = [{{ src = \"{}\", dest = \"/etc/app/secret\" }}]\n",
        outside.display()
    );
    fixture.set_metadata(&format!("[package.metadata.oci]\n{files}"));
    let refused = fixture.build(&["--quiet"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("is outside the package"), "{stderr}");

    let allowed = files.replace(" }]", ", allow-outside = true }]");
    fixture.set_metadata(&format!("[package.metadata.oci]\n{allowed}"));
    fixture.build_ok(&["--quiet"]);
    let (manifest, _) = manifest_and_config(&fixture.layout());
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = fs::read(fixture.layout().join("blobs/sha256").join(&layer[7..])).unwrap();
    let listed = oci_pack::testing::list_tar(flate2::read::MultiGzDecoder::new(&blob[..]));
    let secret = listed.iter().find(|e| e.path == "etc/app/secret").unwrap();
    assert_eq!(secret.mode, 0o600, "never wider than on disk");
    fs::remove_file(&outside).unwrap();
}
