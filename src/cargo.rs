//! What Cargo says and does: the flags that find the workspace and build it ([`options`]), the
//! workspace and the host as `cargo metadata` and `rustc -vV` give them ([`workspace`]), the
//! builder runs and the binaries they make ([`compile`]), rustflags ([`rustflags`]) and the
//! linker of each target ([`linker`]).

pub mod compile;
pub mod linker;
pub mod options;
pub mod rustflags;
pub mod workspace;
