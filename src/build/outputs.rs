//! What `cargo oci build` writes, and where: the OCI layout, the archives beside it
//! (`<output>.oci.tar`, `<output>.docker.tar`), an image loaded into podman's store (by skopeo,
//! only the layers it lacks) or streamed into `docker load`, or pushed; each staged beside its
//! destination, then persisted.

use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use oci_pack::registry::Pushed;
use oci_pack::{
    write_archive, ArchiveFormat, BlobStore, BuildCache, Compression, Digest, StagedArchive,
    StagedLayout, Tagged, Timestamp,
};

use crate::plan::{on_path, Format, Loader};
use crate::registry::PushTarget;
use crate::report::Output;
use crate::shell::Shell;

/// Where and how the image goes.
#[derive(Debug)]
pub struct Destinations<'a> {
    /// The layout's path; archives sit beside it.
    pub layout: &'a Path,
    pub formats: &'a [Format],
    pub load: Option<Loader>,
    pub push: Option<&'a PushTarget>,
    /// Whether a push sends the image's tags, or only its digest.
    pub push_tags: bool,
    /// Hears how a push goes.
    pub shell: &'a Shell,
    /// Every archive entry's mtime.
    pub mtime: Timestamp,
    /// Files written beside the outputs (the SBOMs): each path and its bytes.
    pub beside: &'a [(PathBuf, Vec<u8>)],
    /// Files an earlier build wrote beside the outputs that this one does not (an SBOM of
    /// another format): removed with the rest in place.
    pub stale: &'a [PathBuf],
}

/// An image's outputs, written in full beside their destinations but not yet in place, and
/// what loading and pushing it did.
#[derive(Debug)]
pub struct Staged {
    /// Outputs that already held the image, left untouched.
    fresh: Vec<Output>,
    layout: Option<oci_pack::SealedLayout>,
    archives: Vec<(Format, StagedArchive, Digest)>,
    /// Files beside the outputs, staged; those already as they should be are not.
    beside: Vec<(tempfile::NamedTempFile, PathBuf)>,
    stale: Vec<PathBuf>,
    pub loaded: Option<String>,
    pub pushed: Option<Pushed>,
}

/// Writes every format from `image` beside its destination, streams it into a loader and
/// pushes it if asked; nothing is in place until [`Staged::persist`], so a failure anywhere
/// (of this image or, in a workspace, of another) leaves no new output. An output that already
/// holds this very image is left untouched.
pub fn stage(image: &Tagged, to: &Destinations<'_>, cache: &BuildCache) -> Result<Staged> {
    let mut layout = None;
    let mut archives = Vec::new();
    let mut fresh = Vec::new();
    for &format in to.formats {
        let path = format.path(to.layout);
        let kind = match format {
            Format::Oci => {
                if layout_holds(&path, image, cache)? {
                    fresh.push(Output {
                        format,
                        path,
                        fresh: true,
                    });
                } else {
                    layout = Some(StagedLayout::create(&path)?.seal_from(image)?);
                }
                continue;
            }
            Format::OciArchive => ArchiveFormat::Oci,
            Format::Docker => ArchiveFormat::Docker,
        };
        let key = archive_key(image, format, to.mtime)?;
        if cache.output_is_fresh(&path, &key) {
            fresh.push(Output {
                format,
                path,
                fresh: true,
            });
            continue;
        }
        let staged = StagedArchive::write(image, kind, &path, to.mtime).with_context(|| {
            format!(
                "failed to write the {} archive `{}`",
                format.name(),
                path.display()
            )
        })?;
        archives.push((format, staged, key));
    }
    let mut beside = Vec::new();
    for (path, bytes) in to.beside {
        if std::fs::read(path).is_ok_and(|there| there == *bytes) {
            continue;
        }
        beside.push((stage_file(to.layout, path, bytes)?, path.clone()));
    }
    let loaded = to
        .load
        .map(|loader| load_into(loader, image, to, cache))
        .transpose()?;
    let pushed = to
        .push
        .map(|target| {
            let tags: Vec<String> = match to.push_tags {
                true => image.tags.iter().map(|t| t.tag.clone()).collect(),
                false => Vec::new(),
            };
            let session = target.session()?;
            let pushed = session.push(&image.store, &image.target, &tags, &mut to.shell.clone())?;
            // The SBOMs after the image they are about.
            session.push_referrers(&image.store, &image.referrers, &image.store)?;
            anyhow::Ok(pushed)
        })
        .transpose()?;
    Ok(Staged {
        fresh,
        layout,
        archives,
        beside,
        stale: to.stale.to_vec(),
        loaded,
        pushed,
    })
}

impl Staged {
    /// Moves every output into place; returns them all, in format order.
    pub fn persist(self, cache: &BuildCache) -> Result<Vec<Output>> {
        let mut outputs = self.fresh;
        if let Some(layout) = self.layout {
            outputs.push(Output {
                format: Format::Oci,
                path: persist_layout(layout, cache)?,
                fresh: false,
            });
        }
        for (format, staged, key) in self.archives {
            let path = staged.persist()?;
            cache.record_output(&path, &key);
            outputs.push(Output {
                format,
                path,
                fresh: false,
            });
        }
        outputs.sort_by_key(|o| o.format);
        // Linking the layout's blobs and removing the layout it replaced moved their change
        // times: the cache renews what it checked, so the next build need not hash them again.
        cache.renew_after_links();
        for (file, path) in self.beside {
            file.persist(&path)
                .with_context(|| format!("failed to write `{}`", path.display()))?;
        }
        for path in self.stale {
            match std::fs::remove_file(&path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(error)
                        .with_context(|| format!("failed to remove `{}`", path.display()))
                }
                _ => {}
            }
        }
        Ok(outputs)
    }
}

/// Moves `layout` into place: over the one an earlier build wrote there, whatever images it
/// names (a build under new tags), and recorded so the next build may do the same.
fn persist_layout(layout: oci_pack::SealedLayout, cache: &BuildCache) -> Result<PathBuf> {
    let path = match cache.wrote_layout(layout.destination()) {
        true => layout.persist_over_earlier_build()?,
        false => layout.persist()?,
    };
    cache.record_layout(&path);
    Ok(path)
}

/// `bytes` in a temporary file beside `path`, synced, readable as the umask allows. It is
/// named as staging of `owner` (`.NAME.partial-…`), so a build interrupted before the rename
/// leaves nothing the next one does not sweep.
fn stage_file(owner: &Path, path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    debug_assert_eq!(
        owner.parent(),
        path.parent(),
        "staged in the owner's directory"
    );
    let failed = || format!("failed to write `{}`", path.display());
    let mut file = oci_pack::output::staged_file(owner).with_context(failed)?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .with_context(failed)?;
    Ok(file)
}

/// Whether the layout at `path` holds `image` already: the same `index.json`, and every blob
/// there proven to hold its bytes, hashed or known to the cache as unchanged since it was (a
/// layout's blobs are the cache's own files, linked, so usually known: the build just checked
/// them). A blob damaged in the cache is damaged here too, and found so.
fn layout_holds(path: &Path, image: &Tagged, cache: &BuildCache) -> Result<bool> {
    let Ok(index) = std::fs::read(path.join("index.json")) else {
        return Ok(false);
    };
    if index != image.layout_index()? || !path.join("oci-layout").is_file() {
        return Ok(false);
    }
    let blobs = BlobStore::existing(path);
    Ok(image.blobs()?.iter().all(|blob| {
        let regular = std::fs::symlink_metadata(blobs.blob_path(&blob.digest))
            .is_ok_and(|m| m.is_file() && m.len() == blob.size);
        regular && cache.verify(&blobs, blob).is_ok()
    }))
}

/// What an archive's bytes are made of: its format, the layout index (the image, its tags and
/// annotations) and the entries' mtime. The same key, the same bytes.
fn archive_key(image: &Tagged, format: Format, mtime: Timestamp) -> Result<Digest> {
    let mut key = format!("{} {} ", format.name(), mtime.0).into_bytes();
    key.extend(image.layout_index()?);
    Ok(Digest::of(&key))
}

/// Loads the image into a local store; returns the names it has there. podman takes it with
/// skopeo, where installed, from a layout that borrows the cache's blobs: its store skips
/// every layer it holds already (the base's), so only the new ones move. Otherwise, and for
/// docker (moby 20.10 takes nothing but an archive), the Docker archive is streamed into
/// `LOADER load`.
fn load_into(
    loader: Loader,
    image: &Tagged,
    to: &Destinations<'_>,
    cache: &BuildCache,
) -> Result<String> {
    let one_image = oci_pack::media_type::is_manifest(&image.target.media_type);
    if loader == Loader::Podman && one_image && on_path("skopeo") {
        return copy_into_podman(image, to.layout, cache);
    }
    stream_into(loader, image, to.mtime)
}

/// What to try instead, when `loader` cannot take the image: the other one, if installed.
fn instead_of(loader: Loader) -> String {
    let other = loader.other().program();
    match on_path(other) {
        true => format!("; {other} is installed: `--load={other}`"),
        false => String::new(),
    }
}

/// `skopeo copy` of the image into podman's store (`containers-storage:`) under its first
/// name, then `podman tag` for the others; each is named as `podman load` names it. The layers
/// this build made go in uncompressed (podman would only decompress them), as packing kept
/// their tars; the base's as they are, which podman has already after the first load.
fn copy_into_podman(image: &Tagged, layout: &Path, cache: &BuildCache) -> Result<String> {
    let names: Vec<String> = image.tags.iter().map(podman_name).collect();
    let (Some(first), Some(tag)) = (names.first(), image.tags.first()) else {
        bail!("the image has no tag to load it into podman by");
    };
    let made_here = |diff_id: &Digest, layer: &oci_pack::Descriptor| {
        let compression = match oci_pack::media_type::oci_layer(&layer.media_type) {
            Some(oci_pack::media_type::OCI_LAYER_GZIP) => Compression::Gzip,
            Some(oci_pack::media_type::OCI_LAYER_ZSTD) => Compression::Zstd,
            _ => return false,
        };
        cache
            .reusable_layer(diff_id, compression)
            .is_some_and(|made| made.descriptor.digest == layer.digest)
    };
    let unpacked = std::cell::RefCell::new(Vec::new());
    let borrowed = image.local_layout(layout, |diff_id, layer| {
        let chosen = made_here(diff_id, layer);
        if chosen {
            unpacked.borrow_mut().push(*diff_id);
        }
        chosen
    })?;
    // Named from inside: `oci:DIR:TAG` cannot name a directory whose path has a colon.
    let source = format!("oci:.:{}", tag.tag);
    let destination = format!("containers-storage:{first}");
    let copied = run_loader(
        Command::new("skopeo")
            .args(["copy", "--quiet", &source, &destination])
            .current_dir(borrowed.path()),
        "skopeo copy",
        Loader::Podman,
    );
    drop(borrowed);
    // The tars packing kept for this load were for it alone: the cache keeps none it does not
    // hold as a layer of its own (an uncompressed one).
    for diff_id in unpacked.into_inner() {
        if cache.reusable_layer(&diff_id, Compression::None).is_none() {
            let _ = std::fs::remove_file(cache.store().blob_path(&diff_id));
        }
    }
    copied?;
    if names.len() > 1 {
        run_loader(
            Command::new("podman").arg("tag").args(&names),
            "podman tag",
            Loader::Podman,
        )?;
    }
    Ok(names.join(", "))
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

/// Pipes the Docker archive into `docker load` / `podman load`; no tar touches the disk.
/// Returns the names the loader gave the image (`localhost/app:1.0, …` with podman).
fn stream_into(loader: Loader, image: &Tagged, mtime: Timestamp) -> Result<String> {
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
    // A loader that dies early closes the pipe; its own message, below, says why.
    let streamed = write_archive(image, ArchiveFormat::Docker, stdin, mtime).and_then(|mut w| {
        w.flush().map_err(|source| oci_pack::Error::Io {
            action: "write to",
            path: program.into(),
            source,
        })
    });
    let output = child
        .wait_with_output()
        .with_context(|| format!("failed to wait for `{program} load`"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(
            "`{program} load` failed ({}): {}{instead}",
            output.status,
            stderr.trim()
        );
    }
    streamed.with_context(|| format!("failed to stream the image into `{program} load`"))?;
    let said = String::from_utf8_lossy(&output.stdout);
    let names: Vec<&str> = said
        .lines()
        .map(|line| line.trim().trim_start_matches("Loaded image: "))
        .filter(|line| !line.is_empty())
        .collect();
    Ok(names.join(", "))
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
}
