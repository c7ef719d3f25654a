//! The machine the tests run on, and the one other architecture they pack a real program for.
//!
//! Fixtures are built with cargo for the host, and for the foreign architecture (its gnu target
//! linked by its cross gcc, its musl target by rust-lld); its programs run with qemu-user:
//! arm64 on an x86_64 host, x86_64 on an arm64 host. Other hosts are not described yet: add
//! them here.

/// What the tests need to know of one architecture.
pub struct Arch {
    /// The Rust target triple.
    pub triple: &'static str,
    /// The image architecture, in Go's names.
    pub go: &'static str,
    /// A variant of the architecture, for tests that set one.
    pub variant: &'static str,
    /// Debian's multiarch directory name, as in `/lib/<multiarch>/libc.so.6`.
    pub multiarch: &'static str,
    /// The dynamic loader a glibc binary names in `PT_INTERP`.
    pub loader: &'static str,
    /// The cross compiler that builds a static program for it.
    pub gcc: &'static str,
    /// The qemu-user binary that runs such a program.
    pub qemu: &'static str,
    /// How `cargo oci` describes one of its binaries.
    pub elf: &'static str,
}

const X86_64: Arch = Arch {
    triple: "x86_64-unknown-linux-gnu",
    go: "amd64",
    variant: "v2",
    multiarch: "x86_64-linux-gnu",
    loader: "/lib64/ld-linux-x86-64.so.2",
    gcc: "x86_64-linux-gnu-gcc",
    qemu: "qemu-x86_64-static",
    elf: "x86-64 (64-bit little-endian, e_machine 62)",
};

const AARCH64: Arch = Arch {
    triple: "aarch64-unknown-linux-gnu",
    go: "arm64",
    variant: "v8",
    multiarch: "aarch64-linux-gnu",
    loader: "/lib/ld-linux-aarch64.so.1",
    gcc: "aarch64-linux-gnu-gcc",
    qemu: "qemu-aarch64-static",
    elf: "AArch64 (64-bit little-endian, e_machine 183)",
};

#[cfg(target_arch = "x86_64")]
pub const HOST: Arch = X86_64;
#[cfg(target_arch = "x86_64")]
pub const FOREIGN: Arch = AARCH64;

#[cfg(target_arch = "aarch64")]
pub const HOST: Arch = AARCH64;
#[cfg(target_arch = "aarch64")]
pub const FOREIGN: Arch = X86_64;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!(
    "the end-to-end tests know x86_64 and aarch64 hosts; describe yours in support/host.rs"
);

impl Arch {
    /// `linux/amd64`: how `cargo oci` names the image's platform.
    pub fn platform(&self) -> String {
        format!("linux/{}", self.go)
    }

    /// The directory of this architecture's C library on a Debian host.
    pub fn libdir(&self) -> std::path::PathBuf {
        std::path::Path::new("/lib").join(self.multiarch)
    }
}
