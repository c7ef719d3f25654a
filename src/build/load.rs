//! `--load`: an image into a local engine's store, moving only what the engine lacks, nothing
//! compressed that it would only decompress again, and as soon as packing has it.
//!
//! Packing writes each new layer first as its tar
//! ([`oci_pack::build_image_unpacked_first`]), then the config and a manifest of those tars,
//! and hands that image to [`Loading::load`] on a thread of its own before compressing the
//! layers for the other outputs: the same config, so the same image ID
//! ([`super::pack::pack_all`] removes the tars once the loads are done, the images packed or
//! failed). Both engines get a layout of it ([`Tagged::local_layout`]: a layer taken from the
//! cache is decompressed; the base's are as they are). podman takes it with skopeo, whose store
//! skips the layers it holds; docker (moby's own image store) takes a stream without the files
//! of the layers it holds already. Otherwise the whole Docker archive is streamed into `LOADER
//! load`.

use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use oci_pack::{
    write_archive, write_docker_load_stream, ArchiveFormat, BuildCache, Compression, Descriptor,
    Digest, ImageConfig, ImageManifest, Reference, Tagged, Timestamp,
};

use crate::plan::{on_path, Loader};
use crate::shell::Shell;

/// `--load` of one image: where it goes once packing has it unpacked.
pub struct Loading<'a> {
    pub loader: Loader,
    /// The image's tags, which the engine names it by.
    pub tags: Vec<Reference>,
    /// Where the image's own layout goes: the engine's is staged beside it.
    pub layout: &'a Path,
    /// Every archive entry's mtime, for a loader that takes a stream.
    pub mtime: Timestamp,
}

impl Loading<'_> {
    /// Loads the image of the manifest `manifest` in the cache's store; returns the names the
    /// engine has it under.
    pub fn load(&self, manifest: &Descriptor, cache: &BuildCache, shell: &Shell) -> Result<String> {
        let image = Tagged {
            store: cache.store().clone(),
            target: manifest.clone(),
            tags: self.tags.clone(),
            annotations: Default::default(),
            referrers: Vec::new(),
        };
        load_into(self.loader, &image, self.layout, self.mtime, cache, shell)
    }
}

/// Loads the image (one platform's) into `loader`'s store; returns the names it has there.
/// `layout` is where the image's own layout goes: the engine's is staged beside it.
fn load_into(
    loader: Loader,
    image: &Tagged,
    layout: &Path,
    mtime: Timestamp,
    cache: &BuildCache,
    shell: &Shell,
) -> Result<String> {
    if loader == Loader::Podman && on_path("skopeo") {
        let local = LocalImage::stage(image, layout, cache, &[])?;
        return copy_into_podman(&local.image, local.dir.path());
    }
    let held = match loader {
        Loader::Docker => docker_holds(image),
        Loader::Podman => Vec::new(),
    };
    // The layers docker holds are not unpacked: it never reads their files.
    let local = LocalImage::stage(image, layout, cache, &held)?;
    if !held.is_empty() {
        match stream_into(loader, &local.image, mtime, held.len()) {
            Ok(names) => return Ok(names),
            // A daemon that turns the short stream down (it lost a layer since, or is not the
            // store it said) gets the whole image, those layers as they are stored.
            Err(error) => shell.detail("Reloading", format_args!("the whole image: {error:#}")),
        }
    }
    stream_into(loader, &local.image, mtime, 0)
}

/// The image as an engine stores it, in a layout staged for it alone: the layers this build
/// made uncompressed, but for those the engine holds (`held`, by diff_id).
struct LocalImage {
    dir: tempfile::TempDir,
    image: Tagged,
}

impl LocalImage {
    fn stage(image: &Tagged, layout: &Path, cache: &BuildCache, held: &[Digest]) -> Result<Self> {
        let unpack = |diff_id: &Digest, layer: &oci_pack::Descriptor| {
            !held.contains(diff_id) && made_here(cache, diff_id, layer)
        };
        let (dir, image) = image.local_layout(layout, unpack)?;
        Ok(LocalImage { dir, image })
    }
}

/// Whether `layer` (of tar `diff_id`) is one this build made: the cache's record of what it
/// compressed says so. The base's layers are not: the engine has them after the first load.
fn made_here(cache: &BuildCache, diff_id: &Digest, layer: &oci_pack::Descriptor) -> bool {
    let compression = match oci_pack::media_type::oci_layer(&layer.media_type) {
        Some(oci_pack::media_type::OCI_LAYER_GZIP) => Compression::Gzip,
        Some(oci_pack::media_type::OCI_LAYER_ZSTD) => Compression::Zstd,
        _ => return false,
    };
    cache
        .reusable_layer(diff_id, compression)
        .is_some_and(|made| made.descriptor.digest == layer.digest)
}

/// What to try instead, when `loader` cannot take the image: the other one, if installed.
fn instead_of(loader: Loader) -> String {
    let other = loader.other().program();
    match on_path(other) {
        true => format!("; {other} is installed: `--load={other}`"),
        false => String::new(),
    }
}

/// `skopeo copy` of the local layout at `dir` into podman's store (`containers-storage:`)
/// under the image's first name, then `podman tag` for the others; each is named as `podman
/// load` names it.
fn copy_into_podman(image: &Tagged, dir: &Path) -> Result<String> {
    let names: Vec<String> = image.tags.iter().map(podman_name).collect();
    let (Some(first), Some(tag)) = (names.first(), image.tags.first()) else {
        bail!("the image has no tag to load it into podman by");
    };
    // Named from inside: `oci:DIR:TAG` cannot name a directory whose path has a colon.
    let source = format!("oci:.:{}", tag.tag);
    let destination = format!("containers-storage:{first}");
    run_loader(
        Command::new("skopeo")
            .args(["copy", "--quiet", &source, &destination])
            .current_dir(dir),
        "skopeo copy",
        Loader::Podman,
    )?;
    if names.len() > 1 {
        run_loader(
            Command::new("podman").arg("tag").args(&names),
            "podman tag",
            Loader::Podman,
        )?;
    }
    Ok(names.join(", "))
}

/// The diff_ids of the image's first layers the docker daemon holds already, as the start of
/// an image it has under the image's first tag (an earlier load of it); none when it holds
/// none, or keeps images in containerd's store, whose `docker load` takes whole archives only.
/// Two quick questions, asked at once.
fn docker_holds(image: &Tagged) -> Vec<Digest> {
    let Some(tag) = image.tags.first() else {
        return Vec::new();
    };
    let ask = |args: &[&str]| {
        let output = Command::new("docker")
            .args(args)
            .stdin(Stdio::null())
            .output();
        output.ok().filter(|o| o.status.success()).map(|o| o.stdout)
    };
    let tag = tag.to_string();
    let (store, held) = std::thread::scope(|scope| {
        let store = scope.spawn(|| ask(&["info", "--format", "{{json .DriverStatus}}"]));
        let format = "{{json .RootFS.Layers}}";
        let held = ask(&["image", "inspect", "--format", format, &tag]);
        (store.join().ok().flatten(), held)
    });
    let classic = store.is_some_and(|status| {
        let status = String::from_utf8_lossy(&status);
        !status.contains("io.containerd.snapshotter")
    });
    let held: Vec<Digest> = held
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or_default();
    match (classic, diff_ids(image)) {
        (true, Some(mut ours)) => {
            ours.truncate(common_start(&ours, &held));
            ours
        }
        _ => Vec::new(),
    }
}

/// The image's diff_ids, from its config.
fn diff_ids(image: &Tagged) -> Option<Vec<Digest>> {
    let manifest: ImageManifest =
        serde_json::from_slice(&image.store.read(&image.target).ok()?).ok()?;
    let config: ImageConfig =
        serde_json::from_slice(&image.store.read(&manifest.config).ok()?).ok()?;
    Some(config.rootfs.diff_ids)
}

/// How many layers `ours` and `held` start with in common.
fn common_start(ours: &[Digest], held: &[Digest]) -> usize {
    ours.iter().zip(held).take_while(|(a, b)| a == b).count()
}

/// The name `podman load` gives a tag: `localhost/` before a name with no registry, as podman
/// qualifies every short name it stores.
fn podman_name(tag: &oci_pack::Reference) -> String {
    let first = tag.name.split('/').next().unwrap_or_default();
    let has_registry =
        tag.name.contains('/') && (first.contains(['.', ':']) || first == "localhost");
    match has_registry {
        true => tag.to_string(),
        false => format!("localhost/{tag}"),
    }
}

/// Runs a step of a load, its stderr kept for the error that says why it failed.
fn run_loader(command: &mut Command, what: &str, loader: Loader) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("failed to run `{what}`: is it installed?"))?;
    if !output.status.success() {
        bail!(
            "`{what}` failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            instead_of(loader)
        );
    }
    Ok(())
}

/// Pipes the Docker archive into `docker load` / `podman load`, without the files of its first
/// `held` layers ([`write_docker_load_stream`]); no archive touches the disk. Returns the names
/// the loader gave the image (`localhost/app:1.0, …` with podman).
fn stream_into(loader: Loader, image: &Tagged, mtime: Timestamp, held: usize) -> Result<String> {
    let program = loader.program();
    let instead = instead_of(loader);
    let mut child = Command::new(program)
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("failed to run `{program} load`: is {program} installed?{instead}")
        })?;
    let stdin = BufWriter::new(child.stdin.take().expect("stdin is piped"));
    let written = match held {
        0 => write_archive(image, ArchiveFormat::Docker, stdin, mtime),
        _ => write_docker_load_stream(image, held, stdin, mtime),
    };
    // A loader that dies early closes the pipe; its own message, below, says why.
    let streamed = written.and_then(|mut w| {
        w.flush().map_err(|source| oci_pack::Error::Io {
            action: "write to",
            path: program.into(),
            source,
        })
    });
    let output = child
        .wait_with_output()
        .with_context(|| format!("failed to wait for `{program} load`"))?;
    // Our own failure (a blob that could not be read) first: the loader only saw the stream
    // end. A pipe the loader closed is the loader's failure, which its message says.
    let pipe_closed = |error: &oci_pack::Error| {
        matches!(error, oci_pack::Error::Io { source, .. }
            if source.kind() == std::io::ErrorKind::BrokenPipe)
    };
    let streamed = match streamed {
        Err(error) if !pipe_closed(&error) => {
            return Err(error)
                .with_context(|| format!("failed to stream the image into `{program} load`"))
        }
        streamed => streamed,
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(
            "`{program} load` failed ({}): {}{instead}",
            output.status,
            stderr.trim()
        );
    }
    streamed.with_context(|| format!("failed to stream the image into `{program} load`"))?;
    let names = loaded_names(&String::from_utf8_lossy(&output.stdout));
    // A loader that said nothing we know how to read loaded the image under its tags.
    Ok(match names.is_empty() {
        false => names,
        true => image
            .tags
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The names a loader's output says it loaded (`Loaded image: NAME`, or `Loaded image ID: …`
/// for an image without one); its other lines (docker's note that a name moved from an older
/// image) say nothing of what was loaded.
fn loaded_names(said: &str) -> String {
    let names: Vec<&str> = said
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Loaded image"))
        .filter_map(|rest| Some(rest.split_once(": ")?.1.trim()))
        .filter(|name| !name.is_empty())
        .collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_names_a_short_name_under_localhost_and_keeps_a_registry() {
        let name = |text: &str| podman_name(&text.parse().unwrap());
        assert_eq!(name("app:1.0"), "localhost/app:1.0");
        assert_eq!(name("team/app:1.0"), "localhost/team/app:1.0");
        assert_eq!(name("localhost/app:1.0"), "localhost/app:1.0");
        assert_eq!(name("ghcr.io/team/app:1.0"), "ghcr.io/team/app:1.0");
        assert_eq!(name("127.0.0.1:5000/app:1.0"), "127.0.0.1:5000/app:1.0");
    }

    #[test]
    fn only_what_a_loader_says_it_loaded_is_named() {
        let docker = "The image app:1.0 already exists, renaming the old one with ID \
                      sha256:71 to empty string\nLoaded image: app:1.0\nLoaded image: app:latest\n";
        assert_eq!(loaded_names(docker), "app:1.0, app:latest");
        let podman = "Loaded image: localhost/app:1.0\n";
        assert_eq!(loaded_names(podman), "localhost/app:1.0");
        assert_eq!(loaded_names("Loaded image ID: sha256:ab\n"), "sha256:ab");
    }

    #[test]
    fn the_layers_held_are_those_both_start_with() {
        let d = |n: u8| Digest::of(&[n]);
        assert_eq!(common_start(&[d(1), d(2), d(3)], &[d(1), d(2), d(9)]), 2);
        assert_eq!(common_start(&[d(1), d(2)], &[d(1), d(2), d(3)]), 2);
        assert_eq!(common_start(&[d(1), d(2)], &[d(2), d(1)]), 0);
        assert_eq!(common_start(&[d(1)], &[]), 0);
    }
}
