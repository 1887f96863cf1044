//! Output: turns run events into what people and CI systems read.
//!
//! Owns the [`Reporter`] trait and one implementation per format (human, JSON, TeamCity,
//! GitHub Actions, image-syncer's images files). It must not decide anything about the work; it only renders events.

mod github;
mod human;
mod images;
mod json;
mod phases;
mod progress;
mod teamcity;

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

pub use github::GithubReporter;
pub use human::HumanReporter;
pub use images::{ImagesFormat, ImagesReporter, UNLISTED};
pub use json::JsonReporter;
pub use phases::{Phases, Span};
pub use teamcity::TeamcityReporter;

use crate::event::{Event, JobId, Outcome};
use crate::registry::PullBudget;

/// One output format. Reporters take a writer so tests render into a buffer.
pub trait Reporter: Send {
    /// Called for every event, in the order they happened.
    fn event(&mut self, event: &Event, tally: &Tally) -> io::Result<()>;
    /// Called once at the end of the run.
    fn finish(&mut self, tally: &Tally) -> io::Result<()>;
}

/// What is known about one job so far.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobRecord {
    /// Source reference.
    pub source: String,
    /// Target reference.
    pub target: String,
    /// How it ended; `None` while running.
    #[serde(flatten)]
    pub outcome: Option<Outcome>,
    /// Seconds it took.
    pub seconds: f64,
    /// The retries it needed, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<RetryRecord>,
    /// Where its time went (spans of its layer events); empty when it moved no layer.
    #[serde(skip_serializing_if = "Phases::is_empty")]
    pub phases: Phases,
}

/// One retry of a job (or of the planning before the jobs).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RetryRecord {
    /// The attempt that came next (2 = the first retry).
    pub attempt: u32,
    /// Seconds waited before it.
    pub wait_seconds: f64,
    /// What failed, one line.
    pub cause: String,
}

/// Totals over a run, derived from the events.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Jobs whose target now serves the image.
    pub copied: usize,
    /// Jobs with nothing to do.
    pub skipped: usize,
    /// Jobs that failed.
    pub failed: usize,
    /// Bytes transferred.
    pub bytes: u64,
}

/// The running record of a run: every job and the totals. Fed with each event.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Pulls spent per source registry, read once the jobs are done.
    pulls: Vec<PullBudget>,
    jobs: BTreeMap<JobId, JobRecord>,
    planning: Vec<RetryRecord>,
    planned: Option<usize>,
    elapsed: Duration,
    clock: phases::Clock,
}

impl Tally {
    /// Updates the record with one event.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Started {
                job,
                source,
                target,
            } => {
                self.jobs.insert(
                    *job,
                    JobRecord {
                        source: source.clone(),
                        target: target.clone(),
                        outcome: None,
                        seconds: 0.0,
                        retries: Vec::new(),
                        phases: Phases::default(),
                    },
                );
                if let Some(record) = self.jobs.get_mut(job) {
                    record.phases.start(self.clock.now());
                }
            }
            Event::Finished {
                job,
                outcome,
                elapsed,
            } => {
                if let Some(record) = self.jobs.get_mut(job) {
                    record.outcome = Some(outcome.clone());
                    record.seconds = elapsed.as_secs_f64();
                }
            }
            Event::Planned { jobs } => self.planned = Some(jobs.len()),
            Event::Retrying {
                job,
                attempt,
                wait,
                cause,
            } => {
                let retry = RetryRecord {
                    attempt: *attempt,
                    wait_seconds: wait.as_secs_f64(),
                    cause: cause.clone(),
                };
                match self.jobs.get_mut(job) {
                    Some(record) => record.retries.push(retry),
                    None => self.planning.push(retry),
                }
            }
            Event::Layer {
                job, layer, status, ..
            } => {
                let at = self.clock.now();
                if let Some(record) = self.jobs.get_mut(job) {
                    record.phases.layer(layer, *status, at);
                }
            }
            Event::Log { .. } => {}
        }
    }

    /// Sets the wall time of the whole run.
    pub fn set_elapsed(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
    }

    /// Sets what each source registry cost (read once the jobs are done).
    pub fn set_pulls(&mut self, pulls: Vec<PullBudget>) {
        self.pulls = pulls;
    }

    /// Pulls spent (source manifest GETs), budget and deferrals per source registry.
    pub fn pulls(&self) -> &[PullBudget] {
        &self.pulls
    }

    /// One line per source registry whose budget deferred jobs:
    /// `Docker Hub pull budget below the floor: 7 images deferred`.
    pub fn deferrals(&self) -> Vec<String> {
        self.pulls
            .iter()
            .filter(|p| p.deferred > 0)
            .map(|p| {
                format!(
                    "{} pull budget below the floor: {} image{} deferred",
                    PullBudget::display_name(&p.registry),
                    p.deferred,
                    if p.deferred == 1 { "" } else { "s" }
                )
            })
            .collect()
    }

    /// Wall time of the whole run.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// How many jobs the run announced (`None` before, or when it announced none).
    pub fn planned(&self) -> Option<usize> {
        self.planned
    }

    /// What a job's events are about, for people: its source, or `planning` for the work
    /// before the jobs.
    pub fn subject(&self, job: JobId) -> &str {
        self.jobs
            .get(&job)
            .map_or("planning", |r| r.source.as_str())
    }

    /// The retries of the planning before the jobs (tag listings, pings).
    pub fn planning_retries(&self) -> &[RetryRecord] {
        &self.planning
    }

    /// The job with this id, if it started.
    pub fn job(&self, job: JobId) -> Option<&JobRecord> {
        self.jobs.get(&job)
    }

    /// All jobs in plan order.
    pub fn jobs(&self) -> impl Iterator<Item = &JobRecord> {
        self.jobs.values()
    }

    /// Totals over the finished jobs.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for record in self.jobs.values() {
            match &record.outcome {
                Some(Outcome::Copied { bytes, .. }) => {
                    totals.copied += 1;
                    totals.bytes += bytes;
                }
                Some(Outcome::Skipped { .. }) => totals.skipped += 1,
                Some(Outcome::Failed { .. }) => totals.failed += 1,
                None => {}
            }
        }
        totals
    }
}

/// Fans events out to every configured reporter and keeps the tally. A reporter whose
/// output fails (stdout closed by `| head`, a full disk) is dropped with its error kept;
/// the others, and the run, go on.
#[derive(Default)]
pub struct Reporters {
    reporters: Vec<Slot>,
    tally: Tally,
    pulls: Option<PullReader>,
}

/// Reads the pulls spent per source registry when the run ends.
type PullReader = Box<dyn Fn() -> Vec<PullBudget> + Send>;

struct Slot {
    name: String,
    reporter: Box<dyn Reporter>,
    failed: Option<io::Error>,
}

/// A reporter that stopped because its output failed.
#[derive(Debug)]
pub struct ReporterFailure {
    /// What it wrote to (`stdout`, `report out.json` …).
    pub name: String,
    /// Why it stopped.
    pub error: io::Error,
}

impl ReporterFailure {
    /// True when whoever read the output stopped reading (`ferry sync | head`): nothing
    /// worth telling anyone.
    pub fn is_closed_output(&self) -> bool {
        self.error.kind() == io::ErrorKind::BrokenPipe
    }
}

impl Reporters {
    /// Adds one output format; `name` says where it writes, for its failure message.
    pub fn push_named(&mut self, name: impl Into<String>, reporter: Box<dyn Reporter>) {
        self.reporters.push(Slot {
            name: name.into(),
            reporter,
            failed: None,
        });
    }

    /// Adds one output format.
    pub fn push(&mut self, reporter: Box<dyn Reporter>) {
        self.push_named("output", reporter);
    }

    /// Records the event and hands it to every reporter still writing.
    pub fn event(&mut self, event: &Event) {
        self.tally.apply(event);
        for slot in self.reporters.iter_mut().filter(|s| s.failed.is_none()) {
            if let Err(error) = slot.reporter.event(event, &self.tally) {
                slot.failed = Some(error);
            }
        }
    }

    /// At the end of the run, the summaries show what `read` then says each source
    /// registry cost (the registry client's count of manifest GETs).
    pub fn read_pulls(&mut self, read: impl Fn() -> Vec<PullBudget> + Send + 'static) {
        self.pulls = Some(Box::new(read));
    }

    /// Ends the run: every reporter still writing writes its summary.
    pub fn finish(&mut self, elapsed: Duration) -> &Tally {
        self.tally.set_elapsed(elapsed);
        if let Some(read) = &self.pulls {
            self.tally.set_pulls(read());
        }
        for slot in self.reporters.iter_mut().filter(|s| s.failed.is_none()) {
            if let Err(error) = slot.reporter.finish(&self.tally) {
                slot.failed = Some(error);
            }
        }
        &self.tally
    }

    /// Renders every event from `events` until the run drops its last sender, then every
    /// summary; the tally of the run.
    pub async fn consume(
        &mut self,
        mut events: crate::event::Receiver,
        started: std::time::Instant,
    ) -> &Tally {
        self.tally.clock = phases::Clock::from(started);
        while let Some(event) = events.recv().await {
            self.event(&event);
        }
        self.finish(started.elapsed())
    }

    /// The reporters that stopped, with why; drains them.
    pub fn failures(&mut self) -> Vec<ReporterFailure> {
        self.reporters
            .iter_mut()
            .filter_map(|slot| {
                slot.failed.take().map(|error| ReporterFailure {
                    name: slot.name.clone(),
                    error,
                })
            })
            .collect()
    }
}

/// Keeps every event of a run in memory, for embedding ferry and for tests. Clones share
/// one log.
#[derive(Debug, Clone, Default)]
pub struct EventLog(std::sync::Arc<std::sync::Mutex<Vec<Event>>>);

impl EventLog {
    /// The events so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Reporter for EventLog {
    fn event(&mut self, event: &Event, _: &Tally) -> io::Result<()> {
        if let Ok(mut events) = self.0.lock() {
            events.push(event.clone());
        }
        Ok(())
    }

    fn finish(&mut self, _: &Tally) -> io::Result<()> {
        Ok(())
    }
}

/// `text` safe to print on one line: control characters a registry may send in an error
/// (ESC sequences, C1, line separators) become `\u{…}` escapes, so no output can be
/// repainted, split or forged by what a registry said.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                format!("\\u{{{:x}}}", u32::from(c))
            }
            c => c.to_string(),
        })
        .collect()
}

/// Bytes in a short human unit: `512 B`, `1.5 KiB`, `176.0 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
pub(crate) mod tests;
