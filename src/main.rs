//! `cargo-oci`: the binary cargo runs as `cargo oci`; everything it does is in the library.

fn main() -> std::process::ExitCode {
    cargo_oci::cli::main()
}
