//! What an ELF binary is and needs, read from its headers: machine, class and byte order, the
//! dynamic loader (`PT_INTERP`), the libraries (`DT_NEEDED`) and the glibc symbol versions it
//! needs or defines. [`crate::check`] uses them to catch, at build time, a binary of the wrong
//! architecture or one whose loader or libraries the image lacks.
//!
//! Hand-written on purpose: a few fixed-offset fields, each read with bounds checks, instead of
//! a general object-file crate.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, Result};
use crate::platform::Platform;

/// The word size of an ELF file (`EI_CLASS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 32-bit, e.g. `armv7` or `i686`.
    Elf32,
    /// 64-bit, e.g. `x86_64` or `aarch64`.
    Elf64,
}

/// The byte order of an ELF file (`EI_DATA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// Least significant byte first, as on x86 and most ARM.
    Little,
    /// Most significant byte first, as on s390x.
    Big,
}

/// What [`read`] finds in an ELF file's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ElfInfo {
    /// 32- or 64-bit (`EI_CLASS`).
    pub class: Class,
    /// Byte order (`EI_DATA`).
    pub endian: Endian,
    /// `e_machine`.
    pub machine: u16,
    /// `PT_INTERP`: the dynamic loader, e.g. `/lib64/ld-linux-x86-64.so.2`.
    pub interpreter: Option<String>,
    /// `DT_NEEDED`: the libraries it links, e.g. `libc.so.6`.
    pub needed: Vec<String>,
    /// `DT_VERNEED`: the symbol versions it needs, e.g. `GLIBC_2.34`.
    pub versions_needed: Vec<String>,
    /// `DT_VERDEF`: the symbol versions it defines (a libc defines its `GLIBC_*`).
    pub versions_defined: Vec<String>,
}

/// A glibc symbol version, `GLIBC_2.34` → `[2, 34]`, ordered as versions are.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GlibcVersion(Vec<u32>);

impl GlibcVersion {
    /// `[2, 34]` for `GLIBC_2.34`.
    pub fn from_parts(parts: Vec<u32>) -> GlibcVersion {
        GlibcVersion(parts)
    }

    /// The numbers, `[2, 34]` for `GLIBC_2.34`.
    pub fn parts(&self) -> &[u32] {
        &self.0
    }

    /// The version a `GLIBC_*` symbol version names; `None` for any other name.
    pub fn parse(name: &str) -> Option<GlibcVersion> {
        let numbers = name.strip_prefix("GLIBC_")?;
        numbers
            .split('.')
            .map(|n| n.parse().ok())
            .collect::<Option<Vec<u32>>>()
            .map(GlibcVersion)
    }

    /// The newest of the `GLIBC_*` names among `names`.
    pub fn newest<'a>(names: impl IntoIterator<Item = &'a String>) -> Option<GlibcVersion> {
        names
            .into_iter()
            .filter_map(|n| GlibcVersion::parse(n))
            .max()
    }
}

impl std::fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "GLIBC_{}", parts.join("."))
    }
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_VERDEF: u64 = 0x6fff_fffc;
const DT_VERDEFNUM: u64 = 0x6fff_fffd;
const DT_VERNEED: u64 = 0x6fff_fffe;
const DT_VERNEEDNUM: u64 = 0x6fff_ffff;
const MAX_VERSION_ENTRIES: u64 = 1024;
/// Bounds on what we read from a file that may be hostile or simply not what it claims.
const MAX_PROGRAM_HEADERS: u64 = 4096;
const MAX_SECTION_BYTES: u64 = 1 << 20;

/// Reads the ELF headers of `path`; `None` if it is not an ELF file (a script, say).
pub fn read(path: &Path) -> Result<Option<ElfInfo>> {
    let mut file = File::open(path).map_err(Error::io("open", path))?;
    read_from(&mut file, path)
}

/// The same, from bytes already in memory (a file inside a layer); `origin` names it in errors.
pub fn read_bytes(bytes: &[u8], origin: &Path) -> Result<Option<ElfInfo>> {
    read_from(&mut std::io::Cursor::new(bytes), origin)
}

fn read_from<F: Read + Seek>(file: &mut F, path: &Path) -> Result<Option<ElfInfo>> {
    let mut ident = [0u8; 64];
    let n = read_up_to(file, &mut ident).map_err(Error::io("read", path))?;
    if n < 52 || &ident[..4] != b"\x7fELF" {
        return Ok(None);
    }
    let invalid = |reason: &str| Error::InvalidElf {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let class = match ident[4] {
        1 => Class::Elf32,
        2 if n >= 64 => Class::Elf64,
        _ => return Err(invalid("unknown ELF class")),
    };
    let endian = match ident[5] {
        1 => Endian::Little,
        2 => Endian::Big,
        _ => return Err(invalid("unknown byte order")),
    };
    let r = Reader { endian, class };
    let machine = r.u16(&ident, 18);
    let (phoff, phentsize, phnum) = match class {
        Class::Elf32 => (
            u64::from(r.u32(&ident, 28)),
            u64::from(r.u16(&ident, 42)),
            u64::from(r.u16(&ident, 44)),
        ),
        Class::Elf64 => (
            r.u64(&ident, 32),
            u64::from(r.u16(&ident, 54)),
            u64::from(r.u16(&ident, 56)),
        ),
    };
    let min_phentsize = if class == Class::Elf64 { 56 } else { 32 };
    if phnum > MAX_PROGRAM_HEADERS || (phnum > 0 && phentsize < min_phentsize) {
        return Err(invalid("implausible program headers"));
    }
    let segments: Vec<Segment> = if phnum == 0 {
        Vec::new() // an object file, or a binary with nothing to load: nothing more to read
    } else {
        let headers = read_at(file, phoff, phentsize * phnum)
            .ok()
            .filter(|h| h.len() as u64 == phentsize * phnum)
            .ok_or_else(|| invalid("truncated program headers"))?;
        headers
            .chunks_exact(phentsize as usize)
            .map(|h| r.segment(h))
            .collect()
    };

    let mut interpreter = None;
    if let Some(interp) = segments.iter().find(|s| s.kind == PT_INTERP) {
        let bytes = read_at(file, interp.offset, interp.filesz.min(4096))
            .map_err(|_| invalid("truncated PT_INTERP"))?;
        interpreter = Some(
            String::from_utf8_lossy(bytes.split(|b| *b == 0).next().unwrap_or_default())
                .into_owned(),
        );
    }
    let dynamic = match segments.iter().find(|s| s.kind == PT_DYNAMIC) {
        Some(dynamic) => read_dynamic(file, path, &r, &segments, dynamic)?,
        None => Dynamic::default(),
    };
    Ok(Some(ElfInfo {
        class,
        endian,
        machine,
        interpreter,
        needed: dynamic.needed,
        versions_needed: dynamic.versions_needed,
        versions_defined: dynamic.versions_defined,
    }))
}

/// What a `PT_DYNAMIC` segment names: the libraries needed, and the symbol versions needed and
/// defined.
#[derive(Default)]
struct Dynamic {
    needed: Vec<String>,
    versions_needed: Vec<String>,
    versions_defined: Vec<String>,
}

/// Reads the dynamic segment of one file: its entries, and the strings they point at.
struct DynamicReader<'a> {
    path: &'a Path,
    r: &'a Reader,
    segments: &'a [Segment],
    /// The file offset of the string table, if the file has one.
    strtab: Option<u64>,
}

fn read_dynamic<F: Read + Seek>(
    file: &mut F,
    path: &Path,
    r: &Reader,
    segments: &[Segment],
    dynamic: &Segment,
) -> Result<Dynamic> {
    let bytes = read_at(file, dynamic.offset, dynamic.filesz.min(MAX_SECTION_BYTES))
        .map_err(|_| invalid(path, "truncated PT_DYNAMIC"))?;
    let entry_size = if r.class == Class::Elf64 { 16 } else { 8 };
    let entries: Vec<(u64, u64)> = bytes
        .chunks_exact(entry_size)
        .map(|e| r.dyn_entry(e))
        .take_while(|(tag, _)| *tag != 0)
        .collect();
    let tag = |wanted: u64| entries.iter().find(|(t, _)| *t == wanted).map(|(_, v)| *v);
    let reader = DynamicReader {
        path,
        r,
        segments,
        strtab: tag(DT_STRTAB).and_then(|addr| file_offset(segments, addr)),
    };
    let mut found = Dynamic::default();
    for (_, name_offset) in entries.iter().filter(|(tag, _)| *tag == DT_NEEDED) {
        let name = reader.string(file, *name_offset, "DT_NEEDED without a string table")?;
        found.needed.push(name);
    }
    if let (Some(addr), Some(count)) = (tag(DT_VERNEED), tag(DT_VERNEEDNUM)) {
        found.versions_needed = reader.versions_needed(file, addr, count)?;
    }
    if let (Some(addr), Some(count)) = (tag(DT_VERDEF), tag(DT_VERDEFNUM)) {
        found.versions_defined = reader.versions_defined(file, addr, count)?;
    }
    Ok(found)
}

/// The error of a file that is not the ELF file it claims to be.
fn invalid(path: &Path, reason: &str) -> Error {
    Error::InvalidElf {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

// Verneed/Vernaux and Verdef/Verdaux have the same layout in ELF32 and ELF64.
impl DynamicReader<'_> {
    fn invalid(&self, reason: &str) -> Error {
        invalid(self.path, reason)
    }

    /// Every offset taken from the file is added with a check: a crafted file must not wrap.
    fn add(&self, base: u64, more: u64) -> Result<u64> {
        base.checked_add(more)
            .ok_or_else(|| self.invalid("an offset beyond any file"))
    }

    /// The string at `offset` in the string table; `missing` says what needed it when there is
    /// no table.
    fn string<F: Read + Seek>(&self, file: &mut F, offset: u64, missing: &str) -> Result<String> {
        let strtab = self.strtab.ok_or_else(|| self.invalid(missing))?;
        let bytes = read_at(file, self.add(strtab, offset)?, 256)
            .map_err(|_| self.invalid("truncated string table"))?;
        Ok(
            String::from_utf8_lossy(bytes.split(|b| *b == 0).next().unwrap_or_default())
                .into_owned(),
        )
    }

    /// The versions of `DT_VERNEED`'s `count` entries at `addr`, each library's in turn.
    fn versions_needed<F: Read + Seek>(
        &self,
        file: &mut F,
        addr: u64,
        count: u64,
    ) -> Result<Vec<String>> {
        let (r, truncated) = (self.r, || self.invalid("truncated DT_VERNEED"));
        let mut versions = Vec::new();
        let mut at = file_offset(self.segments, addr)
            .ok_or_else(|| self.invalid("DT_VERNEED outside the file"))?;
        for _ in 0..count.min(MAX_VERSION_ENTRIES) {
            let need = read_at(file, at, 16).map_err(|_| truncated())?;
            if need.len() < 16 {
                return Err(truncated());
            }
            let (aux_count, aux, next) = (r.u16(&need, 2), r.u32(&need, 8), r.u32(&need, 12));
            let mut aux_at = self.add(at, u64::from(aux))?;
            for _ in 0..aux_count.min(MAX_VERSION_ENTRIES as u16) {
                let entry = read_at(file, aux_at, 16).map_err(|_| truncated())?;
                if entry.len() < 16 {
                    return Err(truncated());
                }
                versions.push(self.string(file, u64::from(r.u32(&entry, 8)), NO_STRINGS)?);
                match r.u32(&entry, 12) {
                    0 => break,
                    step => aux_at = self.add(aux_at, u64::from(step))?,
                }
            }
            match next {
                0 => break,
                step => at = self.add(at, u64::from(step))?,
            }
        }
        Ok(versions)
    }

    /// The version each of `DT_VERDEF`'s `count` entries at `addr` defines.
    fn versions_defined<F: Read + Seek>(
        &self,
        file: &mut F,
        addr: u64,
        count: u64,
    ) -> Result<Vec<String>> {
        let (r, truncated) = (self.r, || self.invalid("truncated DT_VERDEF"));
        let mut versions = Vec::new();
        let mut at = file_offset(self.segments, addr)
            .ok_or_else(|| self.invalid("DT_VERDEF outside the file"))?;
        for _ in 0..count.min(MAX_VERSION_ENTRIES) {
            let def = read_at(file, at, 20).map_err(|_| truncated())?;
            if def.len() < 20 {
                return Err(truncated());
            }
            let (aux, next) = (r.u32(&def, 12), r.u32(&def, 16));
            let first = read_at(file, self.add(at, u64::from(aux))?, 8).map_err(|_| truncated())?;
            if first.len() < 8 {
                return Err(truncated());
            }
            versions.push(self.string(file, u64::from(r.u32(&first, 0)), NO_STRINGS)?);
            match next {
                0 => break,
                step => at = self.add(at, u64::from(step))?,
            }
        }
        Ok(versions)
    }
}

/// Why symbol versions cannot be read in a file with no string table.
const NO_STRINGS: &str = "symbol versions without a string table";

struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// The file offset of a virtual address, through the `PT_LOAD` segment that maps it.
fn file_offset(segments: &[Segment], vaddr: u64) -> Option<u64> {
    segments
        .iter()
        .filter(|s| s.kind == PT_LOAD)
        .find(|s| vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz)
        .and_then(|s| (vaddr - s.vaddr).checked_add(s.offset))
}

struct Reader {
    endian: Endian,
    class: Class,
}

impl Reader {
    fn u16(&self, b: &[u8], at: usize) -> u16 {
        let bytes = [b[at], b[at + 1]];
        match self.endian {
            Endian::Little => u16::from_le_bytes(bytes),
            Endian::Big => u16::from_be_bytes(bytes),
        }
    }

    fn u32(&self, b: &[u8], at: usize) -> u32 {
        let bytes = b[at..at + 4].try_into().expect("4 bytes");
        match self.endian {
            Endian::Little => u32::from_le_bytes(bytes),
            Endian::Big => u32::from_be_bytes(bytes),
        }
    }

    fn u64(&self, b: &[u8], at: usize) -> u64 {
        let bytes = b[at..at + 8].try_into().expect("8 bytes");
        match self.endian {
            Endian::Little => u64::from_le_bytes(bytes),
            Endian::Big => u64::from_be_bytes(bytes),
        }
    }

    /// A word: 4 bytes in ELF32, 8 in ELF64.
    fn word(&self, b: &[u8], at32: usize, at64: usize) -> u64 {
        match self.class {
            Class::Elf32 => u64::from(self.u32(b, at32)),
            Class::Elf64 => self.u64(b, at64),
        }
    }

    fn segment(&self, h: &[u8]) -> Segment {
        Segment {
            kind: self.u32(h, 0),
            offset: self.word(h, 4, 8),
            vaddr: self.word(h, 8, 16),
            filesz: self.word(h, 16, 32),
        }
    }

    fn dyn_entry(&self, e: &[u8]) -> (u64, u64) {
        (self.word(e, 0, 0), self.word(e, 4, 8))
    }
}

fn read_up_to(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Up to `len` bytes at `offset`; an error if there are none at all.
fn read_at<F: Read + Seek>(file: &mut F, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    file.take(len).read_to_end(&mut buf)?;
    if buf.is_empty() && len > 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(buf)
}

/// What an ELF binary of `platform` must be: `(e_machine, class, byte order, name)`.
pub fn expected_for(platform: &Platform) -> Option<(u16, Class, Endian)> {
    use Class::*;
    use Endian::*;
    Some(match platform.architecture.as_str() {
        "amd64" => (62, Elf64, Little),
        "arm64" => (183, Elf64, Little),
        "arm" => (40, Elf32, Little),
        "386" => (3, Elf32, Little),
        "ppc64le" => (21, Elf64, Little),
        "ppc64" => (21, Elf64, Big),
        "ppc" => (20, Elf32, Big),
        "s390x" => (22, Elf64, Big),
        "riscv64" => (243, Elf64, Little),
        "loong64" => (258, Elf64, Little),
        "mips64le" => (8, Elf64, Little),
        "mips64" => (8, Elf64, Big),
        "mipsle" => (8, Elf32, Little),
        "mips" => (8, Elf32, Big),
        _ => return None,
    })
}

/// A readable name for an ELF machine.
pub fn describe(info: &ElfInfo) -> String {
    let machine = match info.machine {
        62 => "x86-64",
        183 => "AArch64",
        40 => "ARM",
        3 => "i386",
        21 => "PowerPC64",
        20 => "PowerPC",
        22 => "S/390",
        243 => "RISC-V",
        258 => "LoongArch",
        8 => "MIPS",
        _ => "machine",
    };
    let bits = if info.class == Class::Elf64 { 64 } else { 32 };
    let order = if info.endian == Endian::Little {
        "little-endian"
    } else {
        "big-endian"
    };
    format!("{machine} ({bits}-bit {order}, e_machine {})", info.machine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
    fn reads_this_test_binary() {
        let info = read(&std::env::current_exe().unwrap())
            .unwrap()
            .expect("an ELF file");
        assert_eq!(
            (info.machine, info.class, info.endian),
            (62, Class::Elf64, Endian::Little)
        );
        assert_eq!(
            info.interpreter.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert!(
            info.needed.iter().any(|l| l == "libc.so.6"),
            "{:?}",
            info.needed
        );
    }

    /// An ELF64 whose `PT_LOAD` puts the string table near the end of the address space, and
    /// whose `DT_NEEDED`, `DT_VERNEED` and `DT_VERDEF` point past it: every offset would wrap.
    #[test]
    fn offsets_that_would_wrap_are_refused_not_wrapped() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2; // 64-bit
        elf[5] = 1; // little-endian
        elf[18..20].copy_from_slice(&62u16.to_le_bytes());
        elf[32..40].copy_from_slice(&64u64.to_le_bytes()); // program headers right after
        elf[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf[56..58].copy_from_slice(&2u16.to_le_bytes());
        let segment = |kind: u32, offset: u64, vaddr: u64, filesz: u64| {
            let mut h = vec![0u8; 56];
            h[..4].copy_from_slice(&kind.to_le_bytes());
            h[8..16].copy_from_slice(&offset.to_le_bytes());
            h[16..24].copy_from_slice(&vaddr.to_le_bytes());
            h[32..40].copy_from_slice(&filesz.to_le_bytes());
            h
        };
        elf.extend(segment(PT_LOAD, u64::MAX - 100, 0, u64::MAX));
        elf.extend(segment(PT_DYNAMIC, 176, 0, 64));
        for (tag, value) in [(DT_STRTAB, 0u64), (DT_NEEDED, 200), (0, 0)] {
            elf.extend(tag.to_le_bytes());
            elf.extend(value.to_le_bytes());
        }
        let error = read_bytes(&elf, Path::new("crafted")).unwrap_err();
        assert!(
            error.to_string().contains("an offset beyond any file"),
            "{error}"
        );

        // The same through the version tables: DT_VERNEED at the wrapped address.
        let dynamic = 176;
        for (i, (tag, value)) in [(DT_VERNEED, 0u64), (DT_VERNEEDNUM, 1), (0, 0)]
            .into_iter()
            .enumerate()
        {
            let at = dynamic + 16 * i;
            elf[at..at + 8].copy_from_slice(&tag.to_le_bytes());
            elf[at + 8..at + 16].copy_from_slice(&value.to_le_bytes());
        }
        assert!(read_bytes(&elf, Path::new("crafted")).is_err());
    }

    #[test]
    fn glibc_versions_order_numerically() {
        let v = |s: &str| GlibcVersion::parse(s).unwrap();
        assert!(v("GLIBC_2.2.5") < v("GLIBC_2.17"));
        assert!(v("GLIBC_2.17") < v("GLIBC_2.34"));
        assert_eq!(GlibcVersion::parse("GCC_3.0"), None);
        let names = [
            "GLIBC_2.2.5".to_owned(),
            "GLIBC_2.34".to_owned(),
            "GLIBC_PRIVATE".to_owned(),
        ];
        assert_eq!(
            GlibcVersion::newest(&names).unwrap().to_string(),
            "GLIBC_2.34"
        );
    }

    #[test]
    fn reads_a_foreign_header_and_ignores_non_elf_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = 2; // 64-bit
        header[5] = 1; // little-endian
        header[18..20].copy_from_slice(&183u16.to_le_bytes()); // AArch64
        let path = dir.path().join("arm64");
        std::fs::write(&path, &header).unwrap();
        let info = read(&path).unwrap().unwrap();
        assert_eq!(info.machine, 183);
        assert_eq!(info.interpreter, None);
        assert_eq!(
            describe(&info),
            "AArch64 (64-bit little-endian, e_machine 183)"
        );
        let arm64 = Platform::new("linux", "arm64", None);
        assert_eq!(
            expected_for(&arm64),
            Some((info.machine, info.class, info.endian))
        );

        std::fs::write(dir.path().join("script"), "#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(read(&dir.path().join("script")).unwrap(), None);
        header[4] = 9;
        std::fs::write(&path, &header).unwrap();
        assert!(read(&path).is_err());
    }
}
