//! The plan: a pure list of jobs, each a source image, its target, and the platforms.
//!
//! Owns the job type and the ordering of work. It must not do I/O: deciding that a job is
//! already done needs the network and belongs to the transports.

use crate::platform::Platform;
use crate::reference::Reference;

/// Copy one image (one tag or digest) from a source to a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Source image with its tag or digest.
    pub source: Reference,
    /// Target image with its tag.
    pub target: Reference,
    /// Platforms to copy; empty means every Linux platform of the source.
    pub platforms: Vec<Platform>,
}

impl Job {
    /// A job copying `source` to `target`.
    pub fn new(source: Reference, target: Reference, platforms: Vec<Platform>) -> Self {
        Job {
            source,
            target,
            platforms,
        }
    }
}
