//! Runs a list of jobs: concurrency, per-registry limits, failure isolation, events.
//!
//! Owns scheduling only. It must not know how an image is copied (that is the
//! [`Transport`]'s job) nor how anything is shown (that is `report`'s).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::panic::AssertUnwindSafe;

use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, Semaphore};

use crate::event::{Event, JobId, LayerStatus, Outcome};
use crate::plan::Job;
use crate::report::{Reporters, Tally};

/// Copies one job's image. Implementations turn their own errors into
/// [`Outcome::Failed`] with a one-line message naming image, registry and cause.
pub trait Transport: Sync {
    /// Copies (or skips) one job, reporting progress through `events`.
    fn copy(&self, job: &Job, events: &JobEvents) -> impl Future<Output = Outcome> + Send;
}

/// Limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Jobs running at once.
    pub jobs: usize,
    /// Jobs touching one registry (as source or target) at once.
    pub per_registry: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            jobs: 4,
            per_registry: 4,
        }
    }
}

/// The event sender of one job, handed to the transport.
#[derive(Debug, Clone)]
pub struct JobEvents {
    job: JobId,
    tx: mpsc::UnboundedSender<Event>,
}

impl JobEvents {
    /// A sender for `job` into `tx`.
    pub fn new(job: JobId, tx: mpsc::UnboundedSender<Event>) -> Self {
        JobEvents { job, tx }
    }

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

    /// Reports that a request is tried again after `wait`.
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

    fn send(&self, event: Event) {
        // The receiver lives until every job finished; a send can only fail after that.
        let _ = self.tx.send(event);
    }
}

/// Runs every job, never stopping at a failure (of a job or of a reporter's output), and
/// returns the tally of outcomes. Jobs start in the given order (the plan orders them by
/// repository for the layer cache).
pub async fn run<T: Transport>(
    transport: &T,
    jobs: &[Job],
    options: RunOptions,
    reporters: &mut Reporters,
) -> Tally {
    let started = Instant::now();
    let limits = RegistryLimits::new(options.per_registry.max(1));
    let (tx, mut rx) = mpsc::unbounded_channel();

    let work = {
        let tx = tx.clone();
        let limits = &limits;
        async move {
            futures::stream::iter(jobs.iter().enumerate())
                .for_each_concurrent(options.jobs.max(1), |(id, job)| {
                    let events = JobEvents::new(id, tx.clone());
                    async move {
                        let _permits = limits.acquire(job).await;
                        let begun = Instant::now();
                        events.send(Event::Started {
                            job: id,
                            source: job.source.to_string(),
                            target: job.target.to_string(),
                        });
                        // A bug in one job (a panic) fails that job; the others go on.
                        let outcome = AssertUnwindSafe(transport.copy(job, &events))
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|panic| Outcome::Failed {
                                error: format!(
                                    "{} -> {}: internal error: {}",
                                    job.source,
                                    job.target,
                                    panic_message(panic.as_ref())
                                ),
                            });
                        events.send(Event::Finished {
                            job: id,
                            outcome,
                            elapsed: begun.elapsed(),
                        });
                    }
                })
                .await;
        }
    };
    drop(tx);

    let render = async {
        while let Some(event) = rx.recv().await {
            reporters.event(&event);
        }
    };
    tokio::join!(work, render);
    reporters.finish(started.elapsed()).clone()
}

/// The text of a panic payload (`&str` or `String`), else a placeholder.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

/// One semaphore per registry host, shared by source and target sides.
struct RegistryLimits {
    per_registry: usize,
    semaphores: std::sync::Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl RegistryLimits {
    fn new(per_registry: usize) -> Self {
        RegistryLimits {
            per_registry,
            semaphores: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn semaphore(&self, registry: &str) -> Arc<Semaphore> {
        let mut map = self
            .semaphores
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry(registry.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_registry)))
            .clone()
    }

    /// Takes a permit for each distinct registry of the job, in name order (no deadlock).
    async fn acquire(&self, job: &Job) -> Vec<tokio::sync::OwnedSemaphorePermit> {
        let mut registries = vec![job.source.registry(), job.target.registry()];
        registries.sort_unstable();
        registries.dedup();
        let mut permits = Vec::with_capacity(registries.len());
        for registry in registries {
            if let Ok(permit) = self.semaphore(registry).acquire_owned().await {
                permits.push(permit);
            }
        }
        permits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::EventLog;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Fails jobs whose source tag is `bad`, tracks the most jobs in flight per registry.
    #[derive(Default)]
    struct FakeTransport {
        in_flight: AtomicUsize,
        peak: AtomicUsize,
    }

    impl Transport for FakeTransport {
        async fn copy(&self, job: &Job, events: &JobEvents) -> Outcome {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            events.layer("sha256:aa", LayerStatus::Pushing, 10, Some(10));
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if job.source.tag() == Some("panic") {
                panic!("a bug in one job");
            }
            if job.source.tag() == Some("bad") {
                Outcome::Failed {
                    error: format!("{}: manifest unknown", job.source),
                }
            } else {
                Outcome::Copied {
                    note: None,
                    bytes: 10,
                    digest: "sha256:bb".into(),
                }
            }
        }
    }

    fn job(source: &str, target: &str) -> Job {
        Job::new(
            source.parse().expect("source"),
            target.parse().expect("target"),
            Vec::new(),
        )
    }

    #[tokio::test]
    async fn a_failure_never_stops_the_other_jobs() {
        let jobs: Vec<Job> = ["1", "bad", "3", "panic", "5"]
            .iter()
            .map(|t| job(&format!("src.io/app:{t}"), &format!("dst.io/app:{t}")))
            .collect();
        let log = EventLog::default();
        let mut reporters = Reporters::default();
        reporters.push(Box::new(log.clone()));
        let transport = FakeTransport::default();
        let options = RunOptions {
            jobs: 2,
            per_registry: 8,
        };
        let tally = run(&transport, &jobs, options, &mut reporters).await;
        let totals = tally.totals();
        assert_eq!((totals.copied, totals.failed), (3, 2));
        let panicked = tally.job(3).and_then(|r| r.outcome.clone());
        assert!(
            matches!(&panicked, Some(Outcome::Failed { error }) if error.contains("internal error: a bug in one job")),
            "{panicked:?}"
        );
        assert!(transport.peak.load(Ordering::SeqCst) <= 2);
        let events = log.events();
        for id in 0..jobs.len() {
            let of_job: Vec<&Event> = events
                .iter()
                .filter(|e| match e {
                    Event::Started { job, .. }
                    | Event::Finished { job, .. }
                    | Event::Layer { job, .. }
                    | Event::Retrying { job, .. }
                    | Event::Log { job, .. } => *job == id,
                })
                .collect();
            assert!(
                matches!(of_job.first(), Some(Event::Started { .. })),
                "job {id}"
            );
            assert!(
                matches!(of_job.last(), Some(Event::Finished { .. })),
                "job {id}"
            );
            assert_eq!(of_job.len(), 3, "started, layer, finished for job {id}");
        }
    }

    #[tokio::test]
    async fn one_registry_is_limited_while_others_proceed() {
        let jobs: Vec<Job> = (0..6)
            .map(|i| job(&format!("src.io/app:{i}"), &format!("dst.io/app:{i}")))
            .collect();
        let transport = FakeTransport::default();
        let options = RunOptions {
            jobs: 6,
            per_registry: 1,
        };
        let tally = run(&transport, &jobs, options, &mut Reporters::default()).await;
        assert_eq!(tally.totals().copied, 6);
        assert_eq!(
            transport.peak.load(Ordering::SeqCst),
            1,
            "all jobs share src.io"
        );
    }
}
