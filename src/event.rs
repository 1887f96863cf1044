//! What workers tell the outside world: job started, layer progress, retry, outcome; and
//! the sink they tell it through, which `report` subscribes to.
//!
//! Owns the event vocabulary shared by `decide`, `run`, the transports, the registry
//! client's retries and `report`, and the channel between them. It must not render
//! anything: each output format in `report` decides how an event looks.

use std::fmt;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::platform::Platform;

/// Index of a job in the plan; stable for one run.
pub type JobId = usize;

/// The "job" of the work before the jobs: listing tags, reading configs and plans. Its
/// retries are events too, shown as the planning's.
pub const PLANNING: JobId = JobId::MAX;

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
        /// Why.
        reason: SkipReason,
    },
    /// The job failed; other jobs went on.
    Failed {
        /// One line naming image, registry and cause; never a secret.
        error: String,
    },
}

/// One job of a run as announced before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedJob {
    /// Source reference, canonical form.
    pub source: String,
    /// Target reference, canonical form.
    pub target: String,
    /// For an entry whose tags could not be listed: the entry as written (so an output
    /// can name it again for a retry); `None` for a job.
    pub unlisted: Option<UnlistedEntry>,
}

/// An entry whose tags could not be listed, as an images.yaml entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlistedEntry {
    /// Its key (`repo`, `repo:/regex/`, `repo:t1,t2`).
    pub key: String,
    /// Its destinations (repositories).
    pub destinations: Vec<String>,
}

/// One thing that happened during a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Before any job starts: every job the run will report, the job id being the index
    /// (progress totals, TeamCity suites that close when their last job ends).
    Planned {
        /// Every job, in id order.
        jobs: Vec<PlannedJob>,
    },
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

/// Why a job has nothing to do: decided once, before anything is written, and shown the
/// same by `ferry plan`, `ferry sync --dry-run` and `ferry sync`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The target already serves the source (its digest, or the digest the state file
    /// recorded for this source digest).
    Unchanged,
    /// The source has no Linux platform (Windows-only); the platform when it is one image.
    NoLinuxPlatform(Option<Platform>),
    /// The source has Linux platforms, none of them selected (`--platform`, `platforms:`).
    NotSelected(Vec<Platform>),
    /// The tag is declared immutable (`immutable:`) and the target has it: the source
    /// was not asked at all.
    ImmutablePresent,
    /// An extension image whose base digest and build context are those of the target.
    BuildUnchanged,
    /// An extension image of mode `once` whose target exists.
    BuildExists,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |platforms: &[Platform]| {
            platforms
                .iter()
                .map(Platform::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            SkipReason::Unchanged => f.write_str("unchanged"),
            SkipReason::ImmutablePresent => f.write_str("immutable tag present on target"),
            SkipReason::NoLinuxPlatform(None) => f.write_str("no Linux platform"),
            SkipReason::NoLinuxPlatform(Some(p)) => write!(f, "no Linux platform ({p})"),
            SkipReason::NotSelected(found) if found.is_empty() => {
                f.write_str("no selected Linux platform")
            }
            SkipReason::NotSelected(found) => {
                write!(f, "no selected Linux platform (has {})", list(found))
            }
            SkipReason::BuildUnchanged => f.write_str("unchanged: base and context"),
            SkipReason::BuildExists => f.write_str("exists (mode once)"),
        }
    }
}

impl serde::Serialize for SkipReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The sending side of a run's events; cheap to clone. Dropping every clone ends the
/// stream the subscribers read.
#[derive(Debug, Clone)]
pub struct Sender {
    tx: mpsc::UnboundedSender<Event>,
}

/// The receiving side: what `report` reads.
pub type Receiver = mpsc::UnboundedReceiver<Event>;

/// A new event channel.
pub fn channel() -> (Sender, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Sender { tx }, rx)
}

impl Sender {
    /// The events of one job.
    pub fn job(&self, job: JobId) -> JobEvents {
        JobEvents {
            job,
            tx: self.tx.clone(),
        }
    }

    /// Sends one event; nobody listening is not an error.
    pub fn send(&self, event: Event) {
        let _ = self.tx.send(event);
    }
}

/// The event sender of one job, handed to whoever works on it.
#[derive(Debug, Clone)]
pub struct JobEvents {
    job: JobId,
    tx: mpsc::UnboundedSender<Event>,
}

impl JobEvents {
    /// The job these events belong to.
    pub fn job(&self) -> JobId {
        self.job
    }

    /// Reports progress of one layer.
    pub fn layer(&self, layer: &str, status: LayerStatus, current: u64, total: Option<u64>) {
        self.send(Event::Layer {
            job: self.job,
            layer: layer.to_owned(),
            status,
            current,
            total,
        });
    }

    /// Reports that an operation is tried again after `wait`.
    pub fn retrying(&self, attempt: u32, wait: Duration, cause: &str) {
        self.send(Event::Retrying {
            job: self.job,
            attempt,
            wait,
            cause: cause.to_owned(),
        });
    }

    /// Reports one line of output of the job's work (a build step).
    pub fn log(&self, line: &str) {
        self.send(Event::Log {
            job: self.job,
            line: line.to_owned(),
        });
    }

    /// Sends any event of this job.
    pub fn send(&self, event: Event) {
        // The receiver lives until every job finished; a send can only fail after that.
        let _ = self.tx.send(event);
    }
}

tokio::task_local! {
    /// The job the current task works on, for code that serves every job (the registry
    /// client's retries).
    static CURRENT: JobEvents;
}

/// Runs `work` as the work of the job of `events`: retries inside it become its events.
pub async fn scope<F: std::future::Future>(events: JobEvents, work: F) -> F::Output {
    CURRENT.scope(events, work).await
}

/// A `Retrying` event of the job the current task works on; nothing outside a job.
pub fn retrying(attempt: u32, wait: Duration, cause: &str) {
    let _ = CURRENT.try_with(|events| events.retrying(attempt, wait, cause));
}
