//! What `cargo oci build` writes, and where: the OCI layout, the archives beside it
//! (`<output>.oci.tar`, `<output>.docker.tar`), or pushed; each staged beside its destination,
//! then persisted. (An image for a local engine is loaded as soon as it is packed:
//! [`super::load`].)

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use oci_pack::registry::Pushed;
use oci_pack::{
    ArchiveFormat, BlobStore, BuildCache, Digest, StagedArchive, StagedLayout, Tagged, Timestamp,
};

use crate::plan::Format;
use crate::registry::PushTarget;
use crate::report::Output;
use crate::shell::Shell;

/// Where and how the image goes.
#[derive(Debug)]
pub struct Destinations<'a> {
    /// The image's name (its package's, as the default output is named).
    pub owner: &'a str,
    /// The layout's path; archives sit beside it.
    pub layout: &'a Path,
    pub formats: &'a [Format],
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
/// what pushing it did.
#[derive(Debug)]
pub struct Staged {
    /// The image's name, whose earlier layouts this one may replace.
    owner: String,
    /// Outputs that already held the image, left untouched.
    fresh: Vec<Output>,
    layout: Option<oci_pack::SealedLayout>,
    archives: Vec<(Format, StagedArchive, Digest)>,
    /// Files beside the outputs, staged; those already as they should be are not.
    beside: Vec<(tempfile::NamedTempFile, PathBuf)>,
    stale: Vec<PathBuf>,
    pub pushed: Option<Pushed>,
}

/// Writes every format from `image` beside its destination, and pushes it if asked; nothing is
/// in place until [`Staged::persist`], so a failure anywhere (of this image or, in a workspace,
/// of another) leaves no new output. An output that already holds this very image is left
/// untouched.
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
        owner: to.owner.to_owned(),
        fresh,
        layout,
        archives,
        beside,
        stale: to.stale.to_vec(),
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
                path: persist_layout(layout, &self.owner, cache)?,
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

/// Moves `layout` into place: over the one an earlier build of the same `owner` (the image's
/// name) wrote there, whatever images it names (a build under new tags), and recorded so the
/// next build may do the same.
fn persist_layout(
    layout: oci_pack::SealedLayout,
    owner: &str,
    cache: &BuildCache,
) -> Result<PathBuf> {
    let path = match cache.wrote_layout(layout.destination(), owner) {
        true => layout.persist_over_earlier_build()?,
        false => layout.persist()?,
    };
    cache.record_layout(&path, owner);
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
