//! Runs a list of jobs: concurrency, per-registry limits, failure isolation, events.
//!
//! Owns scheduling only. It must not know how an image is copied or decided (that is the
//! [`Worker`]'s job) nor how anything is shown: events go into an [`event::Sender`] that
//! `report` subscribes to.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::event::{self, Event, JobEvents, Outcome};
use crate::plan::Job;

/// Does one job: decides it and carries it out (a mirror copy, a build). Implementations
/// turn their own errors into [`Outcome::Failed`] with one line naming image, registry and
/// cause.
pub trait Worker: Sync {
    /// Works on one job, reporting progress through `events`.
    fn work(&self, job: &Job, events: &JobEvents) -> impl Future<Output = Outcome> + Send;

    /// The cheap start of a job, run before it takes a run slot and with up to
    /// [`PRECHECK_FANOUT`] times `--jobs` at once: `Some` finishes the job there (a skip
    /// that cost a few HEADs), `None` hands it to [`Worker::work`]. Default: `None`.
    fn precheck(
        &self,
        _job: &Job,
        _events: &JobEvents,
    ) -> impl Future<Output = Option<Outcome>> + Send {
        std::future::ready(None)
    }
}

/// How many more jobs than `--jobs` may be in their [`Worker::precheck`] at once: a no-op
/// over a thousand tags is HEAD requests, bounded per registry by the client's own
/// request limit, not by how many copies may run.
pub const PRECHECK_FANOUT: usize = 8;

/// Limits of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Jobs running at once.
    pub jobs: usize,
    /// Jobs writing to one target registry at once, unless `per_target` says otherwise.
    pub per_registry: usize,
    /// Jobs writing to a given target registry at once (auth.yaml `max_concurrency`).
    pub per_target: HashMap<String, usize>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            jobs: 4,
            per_registry: 4,
            per_target: HashMap::new(),
        }
    }
}

/// Runs every job, never stopping at a failure, sending every event into `events`; the
/// outcomes in job order. Jobs start in the given order (the plan orders them by
/// repository for the layer cache).
pub async fn run<W: Worker>(
    worker: &W,
    jobs: &[Job],
    options: &RunOptions,
    events: &event::Sender,
) -> Vec<Outcome> {
    run_until(worker, jobs, options, events, &CancellationToken::new()).await
}

/// [`run`] until `stop` is cancelled (SIGTERM, Ctrl-C): then every running job ends as
/// failed ("interrupted") with its events, and no other job starts. A copy moves its tag
/// last, so an interrupted job leaves no half-written tag; the reporters still finish.
pub async fn run_until<W: Worker>(
    worker: &W,
    jobs: &[Job],
    options: &RunOptions,
    events: &event::Sender,
    stop: &CancellationToken,
) -> Vec<Outcome> {
    let limits = RegistryLimits::new(options);
    let slots = Semaphore::new(options.jobs.max(1));
    let checks = Semaphore::new(options.jobs.max(1) * PRECHECK_FANOUT);
    let (limits, slots, checks) = (&limits, &slots, &checks);
    in_job_order(jobs, |id, job| async move {
        let interrupted = |what: &str| Outcome::Failed {
            error: format!(
                "{} -> {}: {what}: the run was interrupted",
                job.source, job.target
            ),
        };
        // Held until the job ends: at most PRECHECK_FANOUT x jobs have started.
        let _check = checks.acquire().await;
        if stop.is_cancelled() {
            return interrupted("not started");
        }
        let job_events = events.job(id);
        let begun = Instant::now();
        job_events.send(Event::Started {
            job: id,
            source: job.source.to_string(),
            target: job.target.to_string(),
        });
        // A bug in one job (a panic) fails that job; the others go on.
        let panicked = |panic: Box<dyn std::any::Any + Send>| Outcome::Failed {
            error: format!(
                "{} -> {}: internal error: {}",
                job.source,
                job.target,
                panic_message(panic.as_ref())
            ),
        };
        let work = async {
            let check = event::scope(job_events.clone(), worker.precheck(job, &job_events));
            match AssertUnwindSafe(check).catch_unwind().await {
                Ok(Some(outcome)) => outcome,
                Err(panic) => panicked(panic),
                Ok(None) => {
                    let _target = limits.acquire(job).await;
                    let _slot = slots.acquire().await;
                    let work = event::scope(job_events.clone(), worker.work(job, &job_events));
                    AssertUnwindSafe(work)
                        .catch_unwind()
                        .await
                        .unwrap_or_else(panicked)
                }
            }
        };
        let outcome = tokio::select! {
            finished = work => finished,
            () = stop.cancelled() => interrupted("stopped"),
        };
        job_events.send(Event::Finished {
            job: id,
            outcome: outcome.clone(),
            elapsed: begun.elapsed(),
        });
        outcome
    })
    .await
}

/// `f` over every job under the run's limits (jobs at once, jobs per target registry);
/// results in job order. A job waiting for its target registry holds no run slot, so one
/// slow registry never starves the others. `ferry plan` decides with it under the same
/// limits as a sync.
pub async fn map<'a, T, F, Fut>(jobs: &'a [Job], options: &RunOptions, f: F) -> Vec<T>
where
    F: Fn(usize, &'a Job) -> Fut,
    Fut: Future<Output = T>,
{
    let limits = RegistryLimits::new(options);
    let slots = Semaphore::new(options.jobs.max(1));
    let (limits, slots, f) = (&limits, &slots, &f);
    in_job_order(jobs, |id, job| async move {
        let _target = limits.acquire(job).await;
        let _slot = slots.acquire().await;
        f(id, job).await
    })
    .await
}

/// `f` over every job at once (its own limits decide how many really run); results in job
/// order.
async fn in_job_order<'a, T, F, Fut>(jobs: &'a [Job], f: F) -> Vec<T>
where
    F: Fn(usize, &'a Job) -> Fut,
    Fut: Future<Output = T>,
{
    let mut results: Vec<(usize, T)> = jobs
        .iter()
        .enumerate()
        .map(|(id, job)| {
            let work = f(id, job);
            async move { (id, work.await) }
        })
        .collect::<futures::stream::FuturesUnordered<_>>()
        .collect()
        .await;
    results.sort_by_key(|(id, _)| *id);
    results.into_iter().map(|(_, result)| result).collect()
}

/// The text of a panic payload (`&str` or `String`), else a placeholder.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

/// One semaphore per target registry host.
struct RegistryLimits {
    per_registry: usize,
    per_target: HashMap<String, usize>,
    semaphores: std::sync::Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl RegistryLimits {
    fn new(options: &RunOptions) -> Self {
        RegistryLimits {
            per_registry: options.per_registry.max(1),
            per_target: options.per_target.clone(),
            semaphores: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn semaphore(&self, registry: &str) -> Arc<Semaphore> {
        let mut map = self
            .semaphores
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let limit = self
            .per_target
            .get(registry)
            .copied()
            .unwrap_or(self.per_registry)
            .max(1);
        map.entry(registry.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(limit)))
            .clone()
    }

    /// A permit of the job's target registry.
    async fn acquire(&self, job: &Job) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.semaphore(job.target.registry())
            .acquire_owned()
            .await
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LayerStatus;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Fails jobs whose source tag is `bad`, panics on `panic`, tracks the most jobs in
    /// flight.
    #[derive(Default)]
    struct FakeWorker {
        in_flight: AtomicUsize,
        peak: AtomicUsize,
    }

    impl Worker for FakeWorker {
        async fn work(&self, job: &Job, events: &JobEvents) -> Outcome {
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

    /// Skips odd tags in its precheck, copies even ones; tracks the most prechecks and the
    /// most copies in flight.
    #[derive(Default)]
    struct CheckingWorker {
        checks: AtomicUsize,
        peak_checks: AtomicUsize,
        copies: AtomicUsize,
        peak_copies: AtomicUsize,
    }

    impl Worker for CheckingWorker {
        async fn precheck(&self, job: &Job, _: &JobEvents) -> Option<Outcome> {
            let now = self.checks.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak_checks.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            self.checks.fetch_sub(1, Ordering::SeqCst);
            let n: usize = job.source.tag().and_then(|t| t.parse().ok()).unwrap_or(0);
            (n % 2 == 1).then_some(Outcome::Skipped {
                reason: crate::event::SkipReason::Unchanged,
            })
        }

        async fn work(&self, _: &Job, _: &JobEvents) -> Outcome {
            let now = self.copies.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak_copies.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            self.copies.fetch_sub(1, Ordering::SeqCst);
            Outcome::Copied {
                note: None,
                bytes: 1,
                digest: "sha256:bb".into(),
            }
        }
    }

    #[tokio::test]
    async fn prechecks_fan_out_beyond_jobs_while_copies_stay_within_them() {
        let jobs: Vec<Job> = (0..64)
            .map(|t| job(&format!("src.io/app:{t}"), &format!("dst.io/app:{t}")))
            .collect();
        let worker = CheckingWorker::default();
        let options = RunOptions {
            jobs: 2,
            per_registry: 2,
            ..RunOptions::default()
        };
        let (sender, receiver) = event::channel();
        let outcomes = run(&worker, &jobs, &options, &sender).await;
        drop(sender);
        let events = collect(receiver).await;
        let skipped = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Skipped { .. }))
            .count();
        assert_eq!(skipped, 32);
        assert_eq!(outcomes.len() - skipped, 32, "the others copied");
        assert!(
            worker.peak_checks.load(Ordering::SeqCst) > 2,
            "prechecks beyond --jobs"
        );
        assert!(worker.peak_checks.load(Ordering::SeqCst) <= 2 * PRECHECK_FANOUT);
        assert!(
            worker.peak_copies.load(Ordering::SeqCst) <= 2,
            "copies within --jobs"
        );
        let started = events
            .iter()
            .filter(|e| matches!(e, Event::Started { .. }))
            .count();
        assert_eq!(started, 64, "every job started and finished once");
    }

    fn job(source: &str, target: &str) -> Job {
        Job::new(
            source.parse().expect("source"),
            target.parse().expect("target"),
            Vec::new(),
        )
    }

    async fn collect(mut receiver: event::Receiver) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = receiver.recv().await {
            events.push(event);
        }
        events
    }

    #[tokio::test]
    async fn a_failure_never_stops_the_other_jobs() {
        let jobs: Vec<Job> = ["1", "bad", "3", "panic", "5"]
            .iter()
            .map(|t| job(&format!("src.io/app:{t}"), &format!("dst.io/app:{t}")))
            .collect();
        let worker = FakeWorker::default();
        let options = RunOptions {
            jobs: 2,
            per_registry: 8,
            ..RunOptions::default()
        };
        let (sender, receiver) = event::channel();
        let outcomes = run(&worker, &jobs, &options, &sender).await;
        drop(sender);
        let copied = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Copied { .. }))
            .count();
        assert_eq!((copied, outcomes.len()), (3, 5));
        assert!(
            matches!(&outcomes[3], Outcome::Failed { error } if error.contains("internal error: a bug in one job")),
            "{:?}",
            outcomes[3]
        );
        assert!(worker.peak.load(Ordering::SeqCst) <= 2);
        let events = collect(receiver).await;
        for id in 0..jobs.len() {
            let of_job: Vec<&Event> = events
                .iter()
                .filter(|e| match e {
                    Event::Started { job, .. }
                    | Event::Finished { job, .. }
                    | Event::Layer { job, .. }
                    | Event::Retrying { job, .. }
                    | Event::Log { job, .. } => *job == id,
                    Event::Planned { .. } => false,
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
    async fn one_target_registry_is_limited_while_others_proceed() {
        let mut jobs: Vec<Job> = (0..6)
            .map(|i| job(&format!("src.io/app:{i}"), &format!("dst.io/app:{i}")))
            .collect();
        jobs.extend((0..6).map(|i| job(&format!("src.io/app:{i}"), &format!("b.io/app:{i}"))));
        let worker = FakeWorker::default();
        let options = RunOptions {
            jobs: 12,
            per_registry: 6,
            per_target: HashMap::from([("dst.io".to_owned(), 1), ("b.io".to_owned(), 2)]),
        };
        let (sender, _receiver) = event::channel();
        let outcomes = run(&worker, &jobs, &options, &sender).await;
        assert_eq!(outcomes.len(), 12);
        assert_eq!(
            worker.peak.load(Ordering::SeqCst),
            3,
            "one job for dst.io and two for b.io at a time, whatever --jobs says"
        );
    }
}
