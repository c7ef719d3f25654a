//! Where outputs go and how they get there: written in full beside their destination, synced,
//! then swapped in, so a destination holds either the old output or the new one, whole, even
//! across a crash; one build at a time per destination; and what an interrupted build left
//! behind cleaned up by the next one. Nothing is replaced that we did not write.

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::annotation::CONTAINERD_IMAGE_NAME;
use crate::error::{Error, Result};
use crate::index::ImageIndex;
use crate::reference::Reference;

/// The files of an OCI layout; a directory holding anything else is not replaced.
const LAYOUT_FILES: [&str; 3] = ["oci-layout", "index.json", "blobs"];
/// `index.json` is read whole to check whose images it holds; a layout's is small.
const MAX_INDEX_BYTES: u64 = 4 << 20;

/// The names of what `destination` is staged as beside it: `.NAME.partial-…` while being
/// written, `.NAME.old-…` while an older output is moved aside.
fn names(destination: &Path) -> (PathBuf, String) {
    let dir = destination
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let name = destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, name)
}

/// Where to write `destination` in full before renaming it into place: its directory (created
/// if missing, and on the same filesystem, so the rename is atomic) and a `.NAME.partial-` prefix.
pub(crate) fn beside(destination: &Path) -> Result<(PathBuf, String)> {
    let (dir, name) = names(destination);
    fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
    Ok((dir, format!(".{name}.partial-")))
}

/// A file staged beside `destination`, readable as the umask allows (not the private 0600 of a
/// temporary file): outputs are for other users and tools too. Named as `destination`'s
/// staging (`.NAME.partial-…`), so what an interrupted build left is swept under its
/// [`OutputLock`]; a file that belongs with an output (an SBOM beside a layout) is staged as
/// that output's.
pub fn staged_file(destination: &Path) -> Result<tempfile::NamedTempFile> {
    let (dir, prefix) = beside(destination)?;
    tempfile::Builder::new()
        .prefix(&prefix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(&dir)
        .map_err(Error::io("create a temporary file in", &dir))
}

/// A directory staged beside `destination`, as the umask allows.
pub(crate) fn staged_dir(destination: &Path) -> Result<tempfile::TempDir> {
    let (dir, prefix) = beside(destination)?;
    tempfile::Builder::new()
        .prefix(&prefix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .tempdir_in(&dir)
        .map_err(Error::io("create a staging directory in", &dir))
}

/// Exclusive use of an output path (and the archives beside it) for one build: an advisory lock
/// on `.NAME.lock` beside it, released when dropped. Two builds into one output take turns, so
/// an output never holds one build's layout and another's archive.
#[derive(Debug)]
pub struct OutputLock {
    _file: fs::File,
}

impl OutputLock {
    /// The lock for `destination`, if no other build holds it.
    pub fn try_acquire(destination: &Path) -> Result<Option<OutputLock>> {
        let (file, path) = lock_file(destination)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(OutputLock::held(file, destination)?)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(error)) => Err(Error::io("lock", path)(error)),
        }
    }

    /// The lock for `destination`, waiting for a build that holds it.
    pub fn acquire(destination: &Path) -> Result<OutputLock> {
        let (file, path) = lock_file(destination)?;
        file.lock().map_err(Error::io("lock", path))?;
        OutputLock::held(file, destination)
    }

    /// Under the lock no other build writes `destination`: what is staged beside it is an
    /// interrupted build's, and goes; a layout an interrupted swap moved aside comes back.
    fn held(file: fs::File, destination: &Path) -> Result<OutputLock> {
        let (dir, name) = names(destination);
        let partial = [
            format!(".{name}.partial-"),
            format!(".{name}.oci.tar.partial-"),
            format!(".{name}.docker.tar.partial-"),
        ];
        let old = format!(".{name}.old-");
        for entry in fs::read_dir(&dir).map_err(Error::io("read directory", &dir))? {
            let entry = entry.map_err(Error::io("read directory", &dir))?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if partial.iter().any(|p| file_name.starts_with(p.as_str())) {
                remove_any(&path)?;
            } else if file_name.starts_with(&old) {
                let aside = path.join("layout");
                if fs::symlink_metadata(destination).is_err() && aside.is_dir() {
                    fs::rename(&aside, destination).map_err(Error::io("restore", destination))?;
                }
                remove_any(&path)?;
            }
        }
        Ok(OutputLock { _file: file })
    }
}

/// `O_NOFOLLOW`, for files opened by a fixed name in a directory a repository may ship.
pub(crate) const NO_FOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

fn lock_file(destination: &Path) -> Result<(fs::File, PathBuf)> {
    let (dir, name) = names(destination);
    fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
    let path = dir.join(format!(".{name}.lock"));
    let file = fs::File::options()
        // A link planted at its name is refused, never followed to create a file elsewhere.
        .custom_flags(NO_FOLLOW)
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(Error::io("open", &path))?;
    Ok((file, path))
}

fn remove_any(path: &Path) -> Result<()> {
    let is_dir = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    let removed = if is_dir {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    removed.map_err(Error::io("remove", path))
}

/// Checks that a layout of the image named `tags` may be written at `destination`: nothing is
/// there, or an empty directory, or a layout that holds nothing but what a layout holds and no
/// image but this one (its names, any tags). Anything else is refused, untouched: cargo oci
/// deletes nothing it did not write.
///
/// A layout the caller knows as one an earlier build of this image wrote there
/// (`earlier_build`: a build cache recorded it for the image, [`crate::BuildCache::wrote_layout`])
/// is replaced whatever images it names, so a build under new tags replaces the one under the
/// old.
pub fn check_destination(
    destination: &Path,
    tags: &[Reference],
    earlier_build: bool,
) -> Result<()> {
    let refuse = |reason: String| Error::RefuseToReplace {
        path: destination.to_owned(),
        reason,
    };
    let metadata = match fs::symlink_metadata(destination) {
        Err(_) => return Ok(()),
        Ok(metadata) => metadata,
    };
    if !metadata.is_dir() {
        return Err(refuse("it exists and is not a directory".into()));
    }
    let mut names = Vec::new();
    for entry in fs::read_dir(destination).map_err(Error::io("read directory", destination))? {
        let entry = entry.map_err(Error::io("read directory", destination))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    if names.is_empty() {
        return Ok(());
    }
    if !destination.join("oci-layout").is_file() {
        return Err(refuse(
            "it is a directory that is not an OCI image layout".into(),
        ));
    }
    names.sort();
    if let Some(stranger) = names.iter().find(|n| !LAYOUT_FILES.contains(&n.as_str())) {
        return Err(refuse(format!(
            "it holds `{stranger}`, which is not part of an OCI image layout"
        )));
    }
    check_blobs(destination).map_err(refuse)?;
    if earlier_build {
        return Ok(());
    }
    let index_path = destination.join("index.json");
    let index: ImageIndex = crate::json::read_file(&index_path, MAX_INDEX_BYTES)?;
    let ours: Vec<&str> = tags.iter().map(|t| t.name.as_str()).collect();
    let others: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|entry| {
            let name = entry.annotations.get(CONTAINERD_IMAGE_NAME);
            let image = name.and_then(|n| n.parse::<Reference>().ok());
            match image {
                // An artifact about an image of the layout (an SBOM), which a layout of only
                // our images holds about ours.
                None if entry.artifact_type.is_some() => None,
                Some(image) if ours.contains(&image.name.as_str()) => None,
                Some(image) => Some(format!("`{image}`")),
                None => Some(format!("an image {}", entry.digest)),
            }
        })
        .collect();
    if !others.is_empty() {
        return Err(refuse(format!(
            "it holds other images ({}); cargo oci replaces a layout only when it holds this \
             image alone (any tags): choose another output, or remove it if it is an earlier \
             build of this image under other names",
            others.join(", ")
        )));
    }
    Ok(())
}

/// `blobs/` holds directories of files, by algorithm, and nothing else.
fn check_blobs(layout: &Path) -> std::result::Result<(), String> {
    let blobs = layout.join("blobs");
    let listing = |dir: &Path| fs::read_dir(dir).map_err(|e| format!("`{}`: {e}", dir.display()));
    for algorithm in listing(&blobs)? {
        let algorithm = algorithm.map_err(|e| e.to_string())?;
        let kind = algorithm.file_type().map_err(|e| e.to_string())?;
        if !kind.is_dir() {
            return Err(format!(
                "it holds `blobs/{}`, which is not part of an OCI image layout",
                algorithm.file_name().to_string_lossy()
            ));
        }
        for blob in listing(&algorithm.path())? {
            let blob = blob.map_err(|e| e.to_string())?;
            if !blob.file_type().map_err(|e| e.to_string())?.is_file() {
                return Err(format!(
                    "it holds `{}`, which is not a blob",
                    blob.path()
                        .strip_prefix(layout)
                        .unwrap_or(&blob.path())
                        .display()
                ));
            }
        }
    }
    Ok(())
}

/// Moves the finished `staging` directory to `destination`, replacing what is there in one
/// atomic exchange where the filesystem can (Linux's `RENAME_EXCHANGE`); else the older output
/// is moved aside to `.NAME.old-…` first (which the next build puts back if a crash comes
/// between the two renames) and deleted once the new one is in place.
pub(crate) fn replace_dir(staging: tempfile::TempDir, destination: &Path) -> Result<()> {
    if fs::symlink_metadata(destination).is_err() {
        fs::rename(staging.path(), destination)
            .map_err(Error::io("move into place", destination))?;
        return sync_parent(destination);
    }
    let exchanged = rustix::fs::renameat_with(
        rustix::fs::CWD,
        staging.path(),
        rustix::fs::CWD,
        destination,
        rustix::fs::RenameFlags::EXCHANGE,
    );
    if exchanged.is_ok() {
        // `staging` now names the older output, which goes with it.
        return sync_parent(destination);
    }
    let (dir, name) = names(destination);
    let old = tempfile::Builder::new()
        .prefix(&format!(".{name}.old-"))
        .tempdir_in(&dir)
        .map_err(Error::io("create a directory in", &dir))?;
    let aside = old.path().join("layout");
    fs::rename(destination, &aside).map_err(Error::io("move aside", destination))?;
    if let Err(error) = fs::rename(staging.path(), destination) {
        fs::rename(&aside, destination).map_err(Error::io("restore", destination))?;
        return Err(Error::io("move into place", destination)(error));
    }
    sync_parent(destination)
}

/// Makes every file and directory under `root` durable before it is renamed into place: files
/// first, then the directories naming them, each set at once on several threads, since a
/// filesystem commits concurrent syncs together (one journal commit instead of one each).
pub(crate) fn sync_tree(root: &Path) -> Result<()> {
    let (mut files, mut dirs) = (Vec::new(), vec![root.to_owned()]);
    let mut at = 0;
    while at < dirs.len() {
        let dir = dirs[at].clone();
        at += 1;
        for entry in fs::read_dir(&dir).map_err(Error::io("read directory", &dir))? {
            let entry = entry.map_err(Error::io("read directory", &dir))?;
            let kind = entry.file_type().map_err(Error::io("read", entry.path()))?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    sync_all_at_once(&files)?;
    sync_all_at_once(&dirs)
}

/// Syncs every path, on up to 16 threads.
fn sync_all_at_once(paths: &[PathBuf]) -> Result<()> {
    let per_thread = paths.len().div_ceil(16).max(1);
    std::thread::scope(|scope| {
        let syncing: Vec<_> = paths
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    for path in chunk {
                        fs::File::open(path)
                            .and_then(|f| f.sync_all())
                            .map_err(Error::io("sync", path))?;
                    }
                    Ok(())
                })
            })
            .collect();
        syncing
            .into_iter()
            .try_for_each(|thread| thread.join().expect("a sync thread does not panic"))
    })
}

/// Makes a finished file durable before it is renamed into place.
pub(crate) fn sync_file(file: &fs::File, path: &Path) -> Result<()> {
    file.sync_all().map_err(Error::io("sync", path))
}

/// Makes the names in `dir` durable (the files in it are synced on their own).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync", dir))
}

/// Makes a rename into `path`'s directory durable.
pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    sync_dir(&names(path).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_never_taken_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(".app.lock")).unwrap();
        assert!(OutputLock::acquire(&dir.path().join("app")).is_err());
        assert!(
            fs::symlink_metadata(&elsewhere).is_err(),
            "nothing created through it"
        );
    }

    fn tags() -> Vec<Reference> {
        vec!["app:1.0".parse().unwrap()]
    }

    fn layout_with(dir: &Path, names: &[&str]) {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), "{}").unwrap();
        let manifests: Vec<String> = names
            .iter()
            .map(|name| {
                serde_json::json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": format!("sha256:{}", "a".repeat(64)),
                    "size": 1,
                    "annotations": {"io.containerd.image.name": name},
                })
                .to_string()
            })
            .collect();
        fs::write(
            dir.join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
                manifests.join(",")
            ),
        )
        .unwrap();
    }

    #[test]
    fn only_a_layout_of_this_image_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        assert!(
            check_destination(&out, &tags(), false).is_ok(),
            "nothing there"
        );
        fs::create_dir(&out).unwrap();
        assert!(
            check_destination(&out, &tags(), false).is_ok(),
            "an empty directory"
        );
        layout_with(&out, &["app:0.9", "app:latest"]);
        assert!(
            check_destination(&out, &tags(), false).is_ok(),
            "other tags of this image"
        );

        layout_with(&out, &["app:1.0", "other:1"]);
        let error = check_destination(&out, &tags(), false)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("it holds other images (`other:1`)"),
            "{error}"
        );

        layout_with(&out, &["app:1.0"]);
        fs::write(out.join("notes.txt"), "mine").unwrap();
        let error = check_destination(&out, &tags(), false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("it holds `notes.txt`"), "{error}");
        fs::remove_file(out.join("notes.txt")).unwrap();
        fs::create_dir(out.join("blobs/sha256/nested")).unwrap();
        let error = check_destination(&out, &tags(), false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("which is not a blob"), "{error}");
    }

    #[test]
    fn an_earlier_builds_layout_is_replaced_whatever_it_names_but_nothing_else_is() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        layout_with(&out, &["other:1"]);
        assert!(check_destination(&out, &tags(), true).is_ok());
        fs::write(out.join("notes.txt"), "mine").unwrap();
        let error = check_destination(&out, &tags(), true).unwrap_err();
        assert!(
            error.to_string().contains("it holds `notes.txt`"),
            "{error}"
        );
        let plain = dir.path().join("plain");
        fs::create_dir(&plain).unwrap();
        fs::write(plain.join("index.json"), "{}").unwrap();
        let error = check_destination(&plain, &tags(), true).unwrap_err();
        assert!(
            error.to_string().contains("not an OCI image layout"),
            "{error}"
        );
    }

    #[test]
    fn the_lock_cleans_up_what_an_interrupted_build_left() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("app");
        fs::create_dir_all(dir.path().join(".app.partial-abc/blobs")).unwrap();
        fs::write(dir.path().join(".app.oci.tar.partial-def"), "half").unwrap();
        fs::write(dir.path().join(".other.partial-ghi"), "not ours").unwrap();
        // A swap killed between its renames: the old layout is aside, nothing at `app`.
        fs::create_dir_all(dir.path().join(".app.old-jkl/layout")).unwrap();
        fs::write(dir.path().join(".app.old-jkl/layout/index.json"), "old").unwrap();

        let lock = OutputLock::try_acquire(&out).unwrap().expect("free");
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".app.lock", ".other.partial-ghi", "app"]);
        assert_eq!(fs::read_to_string(out.join("index.json")).unwrap(), "old");

        assert!(OutputLock::try_acquire(&out).unwrap().is_none(), "held");
        drop(lock);
        assert!(OutputLock::try_acquire(&out).unwrap().is_some(), "released");
    }

    #[test]
    fn staged_outputs_follow_the_umask_not_a_private_mode() {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let mode = |file: &fs::File| file.metadata().unwrap().permissions().mode() & 0o777;
        // What any program's new file gets under this umask.
        let plain = fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(dir.path().join("plain"))
            .unwrap();
        let staged = staged_file(&dir.path().join("app.tar")).unwrap();
        assert_eq!(mode(staged.as_file()), mode(&plain));
    }
}
