//! What workers tell the outside world: job started, layer progress, retry, outcome.
//!
//! Owns the event vocabulary shared by `run`, the transports and `report`. It must not
//! render anything: each output format in `report` decides how an event looks.

use std::time::Duration;

/// Index of a job in the plan; stable for one run.
pub type JobId = usize;

/// Where one layer of one job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerStatus {
    /// Queued behind other layers.
    Waiting,
    /// Bytes are arriving from the source.
    Downloading,
    /// The daemon unpacks the layer.
    Extracting,
    /// Bytes are leaving for the target.
    Pushing,
    /// The target already had it.
    AlreadyExists,
    /// Mounted from another repository of the target registry.
    Mounted,
    /// Finished.
    Done,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The target now serves the image.
    Copied {
        /// Bytes transferred for this job.
        bytes: u64,
        /// Digest the target serves under the target tag.
        digest: String,
        /// What people should know about the copy, in a few words (an index written anew
        /// without its Windows entries, and its new digest).
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Nothing to do.
    Skipped {
        /// Why, in a few words (`unchanged`, `windows-only` …).
        reason: String,
    },
    /// The job failed; other jobs went on.
    Failed {
        /// One line naming image, registry and cause; never a secret.
        error: String,
    },
}

/// One thing that happened during a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A job began.
    Started {
        /// Which job.
        job: JobId,
        /// Source reference, canonical form.
        source: String,
        /// Target reference, canonical form.
        target: String,
    },
    /// Progress of one layer.
    Layer {
        /// Which job.
        job: JobId,
        /// Layer digest or daemon layer id.
        layer: String,
        /// What the layer is doing.
        status: LayerStatus,
        /// Bytes done so far.
        current: u64,
        /// Bytes in all, when known.
        total: Option<u64>,
    },
    /// A request failed in a way worth another try.
    Retrying {
        /// Which job.
        job: JobId,
        /// The attempt that comes next (2 = first retry).
        attempt: u32,
        /// How long the worker waits first.
        wait: Duration,
        /// The failure, one line.
        cause: String,
    },
    /// One line of output from a job's work (a build step), for people to read.
    Log {
        /// Which job.
        job: JobId,
        /// The line, without its trailing newline.
        line: String,
    },
    /// A job ended.
    Finished {
        /// Which job.
        job: JobId,
        /// How it ended.
        outcome: Outcome,
        /// How long it took.
        elapsed: Duration,
    },
}
