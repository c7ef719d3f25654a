//! The ELF reader, on any bytes as a file found in a layer would be: `elf::read_bytes` must
//! return `None` (not ELF), an error, or the headers' facts, and never panic or overflow its
//! offset arithmetic (string table + name offset, address to file offset, version chains).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use oci_pack::elf::{self, GlibcVersion};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(info)) = elf::read_bytes(data, Path::new("fuzz/input")) {
        let _ = elf::describe(&info);
        let _ = GlibcVersion::newest(&info.versions_defined);
        let _ = GlibcVersion::newest(&info.versions_needed);
    }
});
