//! How the engine tells its caller what it is doing; the engine itself never prints.

use crate::descriptor::Descriptor;
use crate::layer::Layer;
use crate::platform::Platform;

/// Something the engine did, as it happens.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A new layer is in the store.
    LayerWritten {
        /// The layer written.
        layer: &'a Layer,
        /// What made it, as its history entry says, e.g. `"cargo oci: bins hello"`.
        created_by: &'a str,
    },
    /// A new layer's tar was compressed by an earlier build, whose blob is used again.
    LayerReused {
        /// The layer taken from the cache.
        layer: &'a Layer,
        /// What made it, as its history entry says.
        created_by: &'a str,
    },
    /// An image's config and manifest are in the store.
    ImageWritten {
        /// The image's platform.
        platform: &'a Platform,
        /// The image's manifest.
        manifest: &'a Descriptor,
    },
    /// Blobs are moving from or to a registry: sent when the transfer starts, as bytes go, and
    /// once it is complete (`blobs_done == blobs`).
    Transfer(&'a Transfer),
}

/// How far a pull or push is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transfer {
    /// To the registry, or from it.
    pub pushing: bool,
    /// `registry/name`.
    pub repository: String,
    /// Blobs done so far, those the registry already had included.
    pub blobs_done: usize,
    /// Blobs in all.
    pub blobs: usize,
    /// Bytes done so far, those of blobs the registry already had included.
    pub bytes_done: u64,
    /// Bytes of all the blobs.
    pub bytes: u64,
}

/// A listener of the engine's [`Event`]s, such as a command line's status lines.
pub trait Progress {
    /// Called as each event happens, on the thread doing the work.
    fn on_event(&mut self, event: &Event<'_>);
}

/// For callers that do not listen, and for tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn on_event(&mut self, _: &Event<'_>) {}
}
