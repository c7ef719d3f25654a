//! How the engine tells its caller what it is doing; the engine itself never prints.

use crate::descriptor::Descriptor;
use crate::layer::Layer;
use crate::platform::Platform;

#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A new layer is in the store.
    LayerWritten {
        layer: &'a Layer,
        created_by: &'a str,
    },
    /// A new layer's tar was compressed by an earlier build, whose blob is used again.
    LayerReused {
        layer: &'a Layer,
        created_by: &'a str,
    },
    /// An image's config and manifest are in the store.
    ImageWritten {
        platform: &'a Platform,
        manifest: &'a Descriptor,
    },
    /// Blobs are moving from or to a registry: sent when the transfer starts, as bytes go, and
    /// once it is complete (`blobs_done == blobs`).
    Transfer(&'a Transfer),
}

/// How far a pull or push is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// To the registry, or from it.
    pub pushing: bool,
    /// `registry/name`.
    pub repository: String,
    pub blobs_done: usize,
    pub blobs: usize,
    pub bytes_done: u64,
    pub bytes: u64,
}

pub trait Progress {
    fn on_event(&mut self, event: &Event<'_>);
}

/// For callers that do not listen, and for tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn on_event(&mut self, _: &Event<'_>) {}
}
