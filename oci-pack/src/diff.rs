//! A new layer as a difference against its parent's file tree, as BuildStream's oci element
//! computes it: what the parent already has is not written again, and what must vanish becomes
//! a whiteout.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::digest::{Digest, DigestWriter};
use crate::error::{Error, Result};
use crate::layer::{Entry, FileSource, LayerContents, Owner};
use crate::path::{absolute, image_path, opaque_whiteout_in, whiteout_of};
use crate::tree::{FileTree, Node, NodeKind};

/// `contents` staged on top of `parent`:
/// - a file identical to the parent's at the same path (content, mode, owner, capabilities) is
///   left out;
/// - a directory the parent already has is left out, so its mode and owner stay the parent's,
///   unless its owner or mode was chosen ([`LayerContents::is_chosen`]) and differs;
/// - each path of `remove` becomes a whiteout, and must exist in the parent;
/// - staging under a path that is a link or a file in the parent is an error, since the
///   directory we would write there would replace it.
pub fn layer_on(
    parent: &FileTree,
    contents: &LayerContents,
    remove: &[String],
) -> Result<LayerContents> {
    let mut layer = LayerContents::new();
    for (path, entry) in contents.entries() {
        if let (Some(node), Entry::Directory { .. }) = (parent.get(path), entry) {
            if node.kind != NodeKind::Directory {
                let what = match &node.kind {
                    NodeKind::Symlink { target } => {
                        format!("a symbolic link to `{}`", target.display())
                    }
                    _ => "not a directory".to_owned(),
                };
                return Err(Error::ConflictsWithParent {
                    path: absolute(path),
                    reason: format!(
                        "it is {what} in the base image; stage under the real directory instead"
                    ),
                });
            }
        }
        let chosen = contents.is_chosen(path);
        if !same_as_parent(parent.get(path), entry, chosen)? {
            layer.insert_exact(path.to_owned(), entry.clone());
        }
    }
    for path in remove {
        let relative = image_path(path)?;
        if parent.get(&relative).is_none() {
            return Err(Error::RemoveMissing { path: path.clone() });
        }
        if contents.get(&relative).is_some() {
            return Err(Error::ConflictsWithParent {
                path: path.clone(),
                reason: "it is both staged and removed".into(),
            });
        }
        layer.insert_exact(whiteout_of(&relative), Entry::Whiteout);
    }
    Ok(layer)
}

/// The full-root-filesystem mode of BuildStream's oci element: given the complete desired root
/// filesystem in `rootfs`, the layer that turns `parent` into it. New and changed entries are
/// written (with the modes found on disk, owned by root); what vanished gets a whiteout at the
/// highest vanished level; a directory that kept none of the parent's children gets one opaque
/// whiteout instead.
pub fn rootfs_diff(parent: &FileTree, rootfs: &Path) -> Result<LayerContents> {
    let mut desired = LayerContents::preserving_modes();
    let read_dir = |dir: &Path| std::fs::read_dir(dir).map_err(Error::io("read directory", dir));
    for child in read_dir(rootfs)? {
        let child = child.map_err(Error::io("read directory", rootfs))?;
        let dest = format!("/{}", child.file_name().to_string_lossy());
        desired.add_path(&dest, &child.path())?;
    }

    let mut layer = LayerContents::new();
    for (path, entry) in desired.entries() {
        if !same_as_parent(parent.get(path), entry, false)? {
            layer.insert_exact(path.to_owned(), entry.clone());
        }
    }

    let mut gone: Vec<PathBuf> = Vec::new();
    for (path, _) in parent.iter() {
        if gone.iter().any(|g| path.starts_with(g)) || desired.get(path).is_some() {
            continue;
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        let dir_kept = dir.as_os_str().is_empty() || desired.get(dir).is_some();
        if !dir_kept {
            continue; // the whiteout of an ancestor covers it
        }
        let all_children_gone = parent.children(dir).all(|c| desired.get(c).is_none());
        if all_children_gone && !dir.as_os_str().is_empty() {
            layer.insert_exact(opaque_whiteout_in(dir), Entry::Whiteout);
            gone.push(dir.to_owned());
        } else {
            layer.insert_exact(whiteout_of(path), Entry::Whiteout);
            gone.push(path.to_owned());
        }
    }
    Ok(layer)
}

/// Whether writing `entry` would leave the parent's `node` as it is; `chosen`: whether a
/// directory's attributes were chosen rather than a default.
fn same_as_parent(node: Option<&Node>, entry: &Entry, chosen: bool) -> Result<bool> {
    let Some(node) = node else { return Ok(false) };
    let owned_by = |owner: &Owner| (node.uid, node.gid) == (owner.uid.into(), owner.gid.into());
    Ok(match (entry, &node.kind) {
        // A directory the parent has keeps its own attributes when ours are a default.
        (Entry::Directory { mode, owner }, NodeKind::Directory) => {
            !chosen || (owned_by(owner) && *mode == node.mode)
        }
        (Entry::Symlink { target, owner }, NodeKind::Symlink { target: theirs }) => {
            owned_by(owner) && target == theirs
        }
        (
            Entry::File {
                source,
                mode,
                owner,
                capabilities,
            },
            NodeKind::File { size, digest, .. },
        ) => {
            owned_by(owner)
                && *mode == node.mode
                && capabilities.xattr().as_ref().map(|v| &v[..]) == node.capability.as_deref()
                && content_digest(source, *size)?.as_ref() == Some(digest)
        }
        _ => false,
    })
}

/// The digest of a staged file's content, or `None` when its size already differs.
fn content_digest(source: &FileSource, size: u64) -> Result<Option<Digest>> {
    match source {
        FileSource::Bytes(bytes) => Ok((bytes.len() as u64 == size).then(|| Digest::of(bytes))),
        FileSource::Disk(path) => {
            let mut file = File::open(path).map_err(Error::io("open", path))?;
            if file
                .metadata()
                .map_err(Error::io("read metadata of", path))?
                .len()
                != size
            {
                return Ok(None);
            }
            let mut hasher = DigestWriter::new(std::io::sink());
            std::io::copy(&mut file, &mut hasher).map_err(Error::io("read", path))?;
            Ok(Some(hasher.finish().0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{
        write_layer, Attributes, Capabilities, Compression, EXECUTABLE_MODE, FILE_MODE,
    };
    use crate::store::BlobStore;
    use crate::testing::{gzip_layer, Raw};
    use crate::timestamp::Timestamp;
    use crate::tree::LayerChanges;

    fn parent() -> FileTree {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (layer, diff_id) = gzip_layer(
            &store,
            &[
                Raw::Dir("bin/", 0o755),
                Raw::File("bin/sh", b"#!shell", 0o755),
                Raw::Symlink("lib", "usr/lib"),
                Raw::Dir("etc/", 0o755),
                Raw::File("etc/motd", b"welcome", 0o644),
                Raw::File("etc/os-release", b"ID=test", 0o644),
                Raw::Dir("tmp/", 0o1777),
                Raw::Dir("var/", 0o755),
                Raw::Dir("var/cache/", 0o755),
                Raw::File("var/cache/a", b"a", 0o644),
                Raw::File("var/cache/b", b"b", 0o644),
            ],
        );
        FileTree::read_layers(&store, &[layer], &[diff_id]).unwrap()
    }

    fn paths(layer: &LayerContents) -> Vec<String> {
        layer
            .entries()
            .map(|(p, _)| p.display().to_string())
            .collect()
    }

    #[test]
    fn staged_entries_the_parent_has_are_left_out() {
        let mut staged = LayerContents::new();
        staged
            .add_bytes("/bin/sh", b"#!shell".to_vec(), EXECUTABLE_MODE)
            .unwrap();
        staged
            .add_bytes("/etc/motd", b"changed".to_vec(), FILE_MODE)
            .unwrap();
        staged
            .add_bytes("/etc/os-release", b"ID=test".to_vec(), EXECUTABLE_MODE)
            .unwrap();
        staged
            .add_bytes("/tmp/new", b"x".to_vec(), FILE_MODE)
            .unwrap();
        staged
            .add_bytes("/usr/local/bin/app", b"app".to_vec(), EXECUTABLE_MODE)
            .unwrap();
        let layer = layer_on(&parent(), &staged, &["/var/cache".into()]).unwrap();
        assert_eq!(
            paths(&layer),
            [
                "etc/motd",       // content differs
                "etc/os-release", // mode differs
                "tmp/new",        // `tmp` keeps the parent's 1777: no entry for it
                "usr",
                "usr/local",
                "usr/local/bin",
                "usr/local/bin/app",
                "var/.wh.cache",
            ]
        );
        assert_eq!(
            layer.get(Path::new("var/.wh.cache")),
            Some(&Entry::Whiteout)
        );
    }

    /// A parent written by us: its binary with capabilities or without.
    fn parent_with(store: &BlobStore, app: &Path, capabilities: Capabilities) -> FileTree {
        let mut contents = LayerContents::new();
        let attributes = Attributes {
            capabilities,
            ..Attributes::default()
        };
        contents
            .add_path_with("/usr/local/bin/app", app, &attributes)
            .unwrap();
        contents.add_directory("/data", EXECUTABLE_MODE).unwrap();
        contents.add_directory("/srv", EXECUTABLE_MODE).unwrap();
        let layer = write_layer(store, &contents, Compression::Gzip, Timestamp(0)).unwrap();
        let changes = LayerChanges::read(store, &layer.descriptor, &layer.diff_id).unwrap();
        // The attribute survives the cache's encoding of the parent.
        assert_eq!(
            LayerChanges::decode(&changes.encode()),
            Some(changes.clone())
        );
        let mut tree = FileTree::default();
        tree.apply(changes).unwrap();
        tree
    }

    #[test]
    fn owners_modes_and_capabilities_that_differ_from_the_parent_are_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&dir.path().join("store")).unwrap();
        let app = dir.path().join("app");
        std::fs::write(&app, b"app").unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let bind = Capabilities::parse(&["net_bind_service"]).unwrap();
        let staged = |capabilities| {
            let mut staged = LayerContents::new();
            let attributes = Attributes {
                capabilities,
                ..Attributes::default()
            };
            staged
                .add_path_with("/usr/local/bin/app", &app, &attributes)
                .unwrap();
            let owner = Owner {
                uid: 65532,
                gid: 65532,
            };
            staged.add_chosen_directory("/data", 0o750, owner).unwrap();
            staged
                .add_chosen_directory("/srv", EXECUTABLE_MODE, Owner::ROOT)
                .unwrap();
            staged
        };
        let plain = parent_with(&store, &app, Capabilities::NONE);
        let capable = parent_with(&store, &app, bind);
        let node = capable.get(Path::new("usr/local/bin/app")).unwrap();
        assert_eq!(node.capability.as_deref(), Some(&bind.xattr().unwrap()[..]));

        // Capabilities added or taken away are changes; the same ones are not.
        for (parent, capabilities, app_written) in [
            (&plain, bind, true),
            (&capable, Capabilities::NONE, true),
            (&capable, bind, false),
        ] {
            let layer = layer_on(parent, &staged(capabilities), &[]).unwrap();
            let mut expected = vec!["data"];
            if app_written {
                expected.push("usr/local/bin/app");
            }
            // `/srv` was chosen as the parent has it; `/usr` and below were implied.
            assert_eq!(paths(&layer), expected, "{capabilities:?}");
        }
    }

    #[test]
    fn removing_what_the_parent_lacks_or_staging_under_its_links_is_an_error() {
        let error = layer_on(&parent(), &LayerContents::new(), &["/etc/nope".into()]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot remove `/etc/nope`: the base image has no such path"
        );

        let mut staged = LayerContents::new();
        staged
            .add_bytes("/lib/libapp.so", b"so".to_vec(), FILE_MODE)
            .unwrap();
        let error = layer_on(&parent(), &staged, &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot stage `/lib`: it is a symbolic link to `usr/lib` in the base image; \
             stage under the real directory instead"
        );
    }

    #[test]
    fn a_root_filesystem_becomes_its_difference() {
        let rootfs = tempfile::tempdir().unwrap();
        let root = rootfs.path();
        let write = |path: &str, data: &[u8], mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            let full = root.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, data).unwrap();
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("bin/sh", b"#!shell", 0o755); // unchanged
        write("etc/os-release", b"ID=test", 0o600); // mode changed
        write("var/cache/c", b"c", 0o644); // a and b gone: opaque
        write("srv/new", b"n", 0o644); // new
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap(); // unchanged
        for dir in ["bin", "etc", "var", "var/cache", "srv"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root.join(dir), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        // /tmp and /etc/motd vanished.
        let layer = rootfs_diff(&parent(), root).unwrap();
        assert_eq!(
            paths(&layer),
            [
                ".wh.tmp",
                "etc/.wh.motd",
                "etc/os-release",
                "srv",
                "srv/new",
                "var/cache/.wh..wh..opq",
                "var/cache/c"
            ]
        );
        assert!(matches!(
            layer.get(Path::new("etc/os-release")),
            Some(Entry::File { mode: 0o600, .. })
        ));
    }
}
