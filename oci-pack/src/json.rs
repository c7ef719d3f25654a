//! JSON documents read from files and blobs. Each is read with a size cap first: an index, a
//! manifest or a config is a few KiB, and one of hundreds of MiB is an attack on memory, not an
//! image (Docker refuses manifests over 4 MiB too).

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The largest JSON document read: an index, a manifest, a config, `manifest.json`.
pub const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

/// Parses `bytes`; `what` names the document in an error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], what: impl FnOnce() -> String) -> Result<T> {
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(Error::TooLarge {
            what: what(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    serde_json::from_slice(bytes).map_err(|source| Error::MalformedJson {
        what: what(),
        source,
    })
}

/// Reads and parses the file at `path`, refusing one larger than `limit` before reading it.
pub fn read_file<T: DeserializeOwned>(path: &Path, limit: u64) -> Result<T> {
    let what = || format!("`{}`", path.display());
    let file = std::fs::File::open(path).map_err(Error::io("read", path))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::io("read", path))?;
    if bytes.len() as u64 > limit {
        return Err(Error::TooLarge {
            what: what(),
            limit,
        });
    }
    serde_json::from_slice(&bytes).map_err(|source| Error::MalformedJson {
        what: what(),
        source,
    })
}
