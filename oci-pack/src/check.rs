//! A binary checked against the image it is staged in: an ELF of the image's platform, whose
//! loader, libraries and glibc versions the image's final file tree provides.

use std::path::{Component, Path, PathBuf};

use crate::elf::{describe, expected_for, read, read_bytes, ElfInfo, GlibcVersion};
use crate::layer::{Entry, FileSource, LayerContents};
use crate::path::whiteout_of;
use crate::platform::Platform;
use crate::tree::{FileTree, Node, NodeKind};

/// Something wrong with a binary for the image it is staged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The binary is for another machine than the image's platform.
    WrongMachine {
        /// What the binary is, e.g. `AArch64 (64-bit little-endian, e_machine 183)`.
        found: String,
        /// The image's platform, e.g. `linux/amd64`.
        platform: String,
    },
    /// The image lacks the dynamic loader the binary names.
    MissingInterpreter {
        /// The loader, e.g. `/lib64/ld-linux-x86-64.so.2`.
        interpreter: String,
    },
    /// The image lacks a library the binary links, in the directories the loader searches.
    MissingLibrary {
        /// The library, e.g. `libssl.so.3`.
        library: String,
    },
    /// The image's C library is older than the binary needs.
    GlibcTooOld {
        /// The newest version the binary needs, e.g. `GLIBC_2.34`.
        needed: String,
        /// The newest version the image's C library defines, e.g. `GLIBC_2.31`.
        provided: String,
    },
}

/// The image's final file tree, as a binary sees it: the parent's, under the new layers.
#[derive(Debug)]
pub struct ImageFiles<'a> {
    /// The parent's tree; `None` on `scratch`.
    pub parent: Option<&'a FileTree>,
    /// Top layer last.
    pub layers: Vec<&'a LayerContents>,
}

/// Everything wrong with `info` as a binary of `platform` in `image`.
pub fn check(info: &ElfInfo, platform: &Platform, image: &ImageFiles<'_>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some((machine, class, endian)) = expected_for(platform) {
        if (info.machine, info.class, info.endian) != (machine, class, endian) {
            problems.push(Problem::WrongMachine {
                found: describe(info),
                platform: platform.to_string(),
            });
            return problems;
        }
    }
    if let Some(interpreter) = &info.interpreter {
        if !image.exists(Path::new(interpreter)) {
            problems.push(Problem::MissingInterpreter {
                interpreter: interpreter.clone(),
            });
        }
    }
    let dirs = library_dirs(platform);
    let locate = |library: &str| -> Option<PathBuf> {
        if library.contains('/') {
            Some(PathBuf::from(library)).filter(|p| image.exists(p))
        } else {
            dirs.iter()
                .map(|dir| Path::new(dir).join(library))
                .find(|p| image.exists(p))
        }
    };
    for library in &info.needed {
        if locate(library).is_none() {
            problems.push(Problem::MissingLibrary {
                library: library.clone(),
            });
        }
    }
    // The C library the loader will pick must define every glibc version the binary needs.
    if let Some(needed) = GlibcVersion::newest(&info.versions_needed) {
        let provided = info
            .needed
            .iter()
            .filter(|l| l.starts_with("libc.so"))
            .find_map(|l| image.glibc_at(&locate(l)?));
        if let Some(provided) = provided.filter(|provided| *provided < needed) {
            problems.push(Problem::GlibcTooOld {
                needed: needed.to_string(),
                provided: provided.to_string(),
            });
        }
    }
    problems
}

/// Where the dynamic loader looks by default, with Debian's multiarch directories.
fn library_dirs(platform: &Platform) -> Vec<String> {
    let mut dirs: Vec<String> = ["/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib"]
        .map(String::from)
        .to_vec();
    let multiarch = match (platform.architecture.as_str(), platform.variant.as_deref()) {
        ("amd64", _) => "x86_64-linux-gnu",
        ("arm64", _) => "aarch64-linux-gnu",
        ("arm", Some("v5")) => "arm-linux-gnueabi",
        ("arm", _) => "arm-linux-gnueabihf",
        ("386", _) => "i386-linux-gnu",
        ("ppc64le", _) => "powerpc64le-linux-gnu",
        ("s390x", _) => "s390x-linux-gnu",
        ("riscv64", _) => "riscv64-linux-gnu",
        _ => return dirs,
    };
    dirs.extend([format!("/lib/{multiarch}"), format!("/usr/lib/{multiarch}")]);
    dirs
}

/// How many symbolic links a path may pass through, as the kernel's limit.
const MAX_SYMLINKS: usize = 40;

impl ImageFiles<'_> {
    /// Whether `path` names something in the image, following symbolic links inside the root.
    pub fn exists(&self, path: &Path) -> bool {
        self.resolve(path).is_some()
    }

    /// What `path` names, after following symbolic links inside the root.
    fn resolve(&self, path: &Path) -> Option<Found<'_>> {
        let mut resolved = PathBuf::new();
        let mut queue: Vec<std::ffi::OsString> = components(path);
        queue.reverse();
        let mut hops = 0;
        let mut found = None;
        while let Some(part) = queue.pop() {
            if part == ".." {
                resolved.pop();
                continue;
            }
            resolved.push(&part);
            match self.lookup(&resolved)? {
                Lookup::Link(target) => {
                    hops += 1;
                    if hops > MAX_SYMLINKS {
                        return None;
                    }
                    resolved.pop();
                    if target.is_absolute() {
                        resolved = PathBuf::new();
                    }
                    let mut more = components(&target);
                    more.reverse();
                    queue.extend(more);
                }
                Lookup::Found(item) => found = Some(item),
            }
        }
        found
    }

    /// The newest `GLIBC_*` version the C library at `path` defines, when it can be read.
    fn glibc_at(&self, path: &Path) -> Option<GlibcVersion> {
        match self.resolve(path)? {
            Found::Parent(node) => match &node.kind {
                NodeKind::File { glibc, .. } => glibc.as_deref().cloned(),
                _ => None,
            },
            Found::Layer(Entry::File {
                source: FileSource::Disk(file),
                ..
            }) => GlibcVersion::newest(&read(file).ok()??.versions_defined),
            Found::Layer(Entry::File {
                source: FileSource::Bytes(bytes),
                ..
            }) => GlibcVersion::newest(&read_bytes(bytes, path).ok()??.versions_defined),
            Found::Layer(_) => None,
        }
    }

    fn lookup(&self, path: &Path) -> Option<Lookup<'_>> {
        for layer in self.layers.iter().rev() {
            if let Some(entry) = layer.get(path) {
                return match entry {
                    Entry::Symlink { target, .. } => Some(Lookup::Link(target.clone())),
                    Entry::Whiteout => None,
                    _ => Some(Lookup::Found(Found::Layer(entry))),
                };
            }
            if layer.get(&whiteout_of(path)).is_some() {
                return None;
            }
        }
        let node = self.parent?.get(path)?;
        match &node.kind {
            NodeKind::Symlink { target } => Some(Lookup::Link(target.clone())),
            _ => Some(Lookup::Found(Found::Parent(node))),
        }
    }
}

enum Lookup<'a> {
    Link(PathBuf),
    Found(Found<'a>),
}

/// Where a path of the image ends up: in a new layer, or in the parent.
enum Found<'a> {
    Layer(&'a Entry),
    Parent(&'a Node),
}

fn components(path: &Path) -> Vec<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::{Class, Endian};
    use crate::layer::{EXECUTABLE_MODE, FILE_MODE};

    #[test]
    #[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
    fn glibc_versions_are_read_from_binaries_and_the_c_library() {
        let binary = read(&std::env::current_exe().unwrap()).unwrap().unwrap();
        let needed =
            GlibcVersion::newest(&binary.versions_needed).expect("a gnu binary needs GLIBC_*");
        let libc = Path::new("/lib/x86_64-linux-gnu/libc.so.6");
        let defined = GlibcVersion::newest(&read(libc).unwrap().unwrap().versions_defined).unwrap();
        assert!(
            needed <= defined,
            "{needed} built here runs on this libc, {defined}"
        );

        let mut layer = LayerContents::new();
        layer
            .add_path("/lib/x86_64-linux-gnu/libc.so.6", libc)
            .unwrap();
        let image = ImageFiles {
            parent: None,
            layers: vec![&layer],
        };
        assert_eq!(
            image.glibc_at(Path::new("/lib/x86_64-linux-gnu/libc.so.6")),
            Some(defined.clone())
        );
        let too_new = ElfInfo {
            versions_needed: vec!["GLIBC_99.1".into()],
            ..binary.clone()
        };
        let problems = check(&too_new, &Platform::new("linux", "amd64", None), &image);
        assert!(
            problems.contains(&Problem::GlibcTooOld {
                needed: "GLIBC_99.1".into(),
                provided: defined.to_string()
            }),
            "{problems:?}"
        );
    }

    #[test]
    fn the_loader_and_libraries_are_found_through_links_in_every_layer() {
        let mut lower = LayerContents::new();
        lower
            .add_bytes(
                "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                vec![1],
                EXECUTABLE_MODE,
            )
            .unwrap();
        lower
            .add_bytes("/usr/lib/x86_64-linux-gnu/libc.so.6", vec![1], FILE_MODE)
            .unwrap();
        lower.add_symlink("/lib", "usr/lib").unwrap();
        lower
            .add_symlink("/lib64", "/usr/lib/x86_64-linux-gnu")
            .unwrap();
        let mut upper = LayerContents::new();
        upper
            .add_bytes("/usr/local/lib/libapp.so", vec![1], FILE_MODE)
            .unwrap();
        let image = ImageFiles {
            parent: None,
            layers: vec![&lower, &upper],
        };
        let info = ElfInfo {
            class: Class::Elf64,
            endian: Endian::Little,
            machine: 62,
            interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()),
            needed: vec!["libc.so.6".into(), "libapp.so".into(), "libssl.so.3".into()],
            versions_needed: Vec::new(),
            versions_defined: Vec::new(),
        };
        let amd64 = Platform::new("linux", "amd64", None);
        assert_eq!(
            check(&info, &amd64, &image),
            [Problem::MissingLibrary {
                library: "libssl.so.3".into()
            }]
        );
        assert!(image.exists(Path::new(
            "/lib/x86_64-linux-gnu/../x86_64-linux-gnu/libc.so.6"
        )));

        let empty = ImageFiles {
            parent: None,
            layers: vec![&upper],
        };
        assert!(
            check(&info, &amd64, &empty).contains(&Problem::MissingInterpreter {
                interpreter: "/lib64/ld-linux-x86-64.so.2".into()
            })
        );
    }

    #[test]
    fn a_binary_of_another_machine_is_named_with_what_it_is() {
        let info = ElfInfo {
            class: Class::Elf64,
            endian: Endian::Little,
            machine: 183,
            interpreter: None,
            needed: Vec::new(),
            versions_needed: Vec::new(),
            versions_defined: Vec::new(),
        };
        let nothing = ImageFiles {
            parent: None,
            layers: vec![],
        };
        assert_eq!(
            check(&info, &Platform::new("linux", "amd64", None), &nothing),
            [Problem::WrongMachine {
                found: "AArch64 (64-bit little-endian, e_machine 183)".into(),
                platform: "linux/amd64".into()
            }]
        );
        assert!(check(&info, &Platform::new("linux", "arm64", None), &nothing).is_empty());
    }
}
