//! The floor `cargo xtask bench` compares packing with: what this machine takes, in-process,
//! to do the work a new layer cannot avoid on the given file's bytes, already in memory: gzip
//! them with the engine's own [`Encoder`] (libdeflate level 3, on every core) while taking the
//! sha256 of the bytes (the diff_id) and of the compressed stream (the blob's digest). Nothing
//! is written. Prints the median of `RUNS` in microseconds.
//!
//! `cargo run --release -p oci-pack --example pack_floor -- FILE [RUNS]`

use std::io::{self, Write as _};
use std::time::{Duration, Instant};

use oci_pack::compress::Encoder;
use oci_pack::{Compression, DigestWriter};

fn main() -> io::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let file = args.next().expect("usage: pack_floor FILE [RUNS]");
    let runs: usize = args
        .next()
        .and_then(|r| r.to_str()?.parse().ok())
        .unwrap_or(7);
    let bytes = std::fs::read(&file)?;
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| pack(&bytes))
        .collect::<io::Result<_>>()?;
    times.sort();
    #[expect(clippy::print_stdout, reason = "the figure is what the example is for")]
    {
        println!("{}", times[times.len() / 2].as_micros());
    }
    Ok(())
}

/// One pass over `bytes`: hashed, compressed on every core, the result hashed.
fn pack(bytes: &[u8]) -> io::Result<Duration> {
    let started = Instant::now();
    let mut tar = DigestWriter::new(Encoder::new(
        DigestWriter::new(io::sink()),
        Compression::Gzip,
    ));
    for chunk in bytes.chunks(1 << 20) {
        tar.write_all(chunk)?;
    }
    let (_diff_id, _, encoder) = tar.finish();
    let (_digest, _, _) = encoder.finish()?.finish();
    Ok(started.elapsed())
}
