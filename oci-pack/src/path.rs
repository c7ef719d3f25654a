//! Paths inside an image and an archive, in one place: how a path we are given or read becomes
//! the relative, normalised key a layer stores, and the whiteout names that hide lower entries.
//!
//! Three sources of paths, one rule each, all built on `components`:
//! - [`image_path`]: an absolute path from the user (`/usr/local/bin/app`); `..` is refused.
//! - [`entry_path`]: a tar entry name from a layer (`./usr/bin/`); absolute names and `..` are
//!   refused, since a hostile layer uses them to escape.
//! - [`archive_name`]: a file name inside an image archive; `..` may climb within the archive
//!   (as links in `docker save` output do), never out of it.
//!
//! And one for paths on the host, as they are shown: [`lexically_normal`].

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// The prefix of a whiteout: `.wh.NAME` hides a lower layer's `NAME`.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// A directory's opaque whiteout: hides everything lower layers have in it.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// What a path did that its rule refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Absolute,
    ParentDir,
}

/// The normal components of `path`; `..` pops one when `climb` allows it, else is refused (and
/// is refused anyway when there is nothing left to pop). Absolute paths are refused unless
/// `absolute` allows them.
fn components(
    path: &Path,
    absolute: bool,
    climb: bool,
) -> std::result::Result<Vec<&std::ffi::OsStr>, Refusal> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => parts.push(part),
            Component::ParentDir if climb => {
                parts.pop().ok_or(Refusal::ParentDir)?;
            }
            Component::ParentDir => return Err(Refusal::ParentDir),
            Component::RootDir if absolute => {}
            Component::RootDir | Component::Prefix(_) => return Err(Refusal::Absolute),
        }
    }
    Ok(parts)
}

/// Turns `/usr/local/bin/app` into the relative `usr/local/bin/app` a layer stores; refuses
/// anything that could climb out of the image root.
pub fn image_path(path: &str) -> Result<PathBuf> {
    let invalid = |reason| Error::InvalidImagePath {
        path: path.to_owned(),
        reason,
    };
    if !path.starts_with('/') {
        return Err(invalid("paths in the image must be absolute"));
    }
    let parts = components(Path::new(path), true, false).map_err(|refusal| match refusal {
        Refusal::ParentDir => invalid("`..` is not allowed"),
        Refusal::Absolute => invalid("not a Unix path"),
    })?;
    if parts.is_empty() {
        return Err(invalid("the image root itself cannot be replaced"));
    }
    Ok(parts.iter().collect())
}

/// `./usr/bin/` → `usr/bin`: a layer's tar entry name (any bytes) as a relative path; refuses
/// absolute names and `..`, with the reason.
pub fn entry_path(raw: &std::ffi::OsStr) -> std::result::Result<PathBuf, &'static str> {
    if raw.as_encoded_bytes().starts_with(b"/") {
        return Err("absolute paths are not allowed in an image layer");
    }
    match components(Path::new(raw), false, false) {
        Ok(parts) => Ok(parts.iter().collect()),
        Err(Refusal::ParentDir) => Err("`..` is not allowed in an image layer"),
        Err(Refusal::Absolute) => Err("absolute paths are not allowed in an image layer"),
    }
}

/// `./a/b` → `a/b`: a file's name inside an image archive; `None` if it leaves the archive, is
/// absolute, or is not UTF-8.
pub fn archive_name(path: &Path) -> Option<String> {
    let parts = components(path, false, true).ok()?;
    let parts: Option<Vec<&str>> = parts.iter().map(|p| p.to_str()).collect();
    Some(parts?.join("/"))
}

/// `/usr/bin/app` as a user reads it, from the relative path a layer stores.
pub fn absolute(path: &Path) -> String {
    format!("/{}", path.display())
}

/// The whiteout that hides `path`: `etc/motd` → `etc/.wh.motd`.
pub fn whiteout_of(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!("{WHITEOUT_PREFIX}{name}"))
}

/// The opaque whiteout of the directory `dir`.
pub fn opaque_whiteout_in(dir: &Path) -> PathBuf {
    dir.join(OPAQUE_WHITEOUT)
}

/// A path on the host with `.` and `..` resolved by its text, as cargo resolves a path
/// dependency's: what errors show (`/src/images/debian`, not `/src/app/../images/debian`).
pub fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if normal.file_name().is_some() => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_are_absolute_and_stay_inside() {
        for bad in ["relative/path", "/", "/usr/../etc/passwd", "/.."] {
            assert!(image_path(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            image_path("/usr/./local//bin/").unwrap(),
            PathBuf::from("usr/local/bin")
        );
    }

    #[test]
    fn entry_paths_refuse_what_escapes() {
        let entry = |raw: &str| entry_path(std::ffi::OsStr::new(raw));
        assert_eq!(entry("./usr/bin/").unwrap(), PathBuf::from("usr/bin"));
        assert_eq!(entry(".").unwrap(), PathBuf::new());
        assert!(entry("/etc/passwd").unwrap_err().contains("absolute"));
        assert!(entry("a/../../b").unwrap_err().contains("`..`"));
        assert!(entry("a/../b").unwrap_err().contains("`..`"));
    }

    #[test]
    fn archive_names_climb_only_within_the_archive() {
        assert_eq!(archive_name(Path::new("./a/b")).as_deref(), Some("a/b"));
        assert_eq!(archive_name(Path::new("a/../b")).as_deref(), Some("b"));
        assert_eq!(archive_name(Path::new("../b")), None);
        assert_eq!(archive_name(Path::new("/b")), None);
    }

    #[test]
    fn whiteouts_sit_beside_what_they_hide() {
        assert_eq!(
            whiteout_of(Path::new("etc/motd")),
            PathBuf::from("etc/.wh.motd")
        );
        assert_eq!(whiteout_of(Path::new("tmp")), PathBuf::from(".wh.tmp"));
        assert_eq!(
            opaque_whiteout_in(Path::new("var/cache")),
            PathBuf::from("var/cache/.wh..wh..opq")
        );
    }
}
