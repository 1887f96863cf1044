//! Where a job's time went, from the timestamps of its layer events: the spans during which
//! layers were downloading, extracting and pushing (for the JSON report and scripts/bench).
//!
//! Owns the reading of layer statuses as phases; it must not measure anything itself (the
//! clock is the moment an event reaches the reporters) nor render anything.

use std::collections::HashMap;
use std::time::Instant;

use crate::event::LayerStatus;

/// One phase of a job: from its first to its last layer event, in seconds since the run
/// started.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Span {
    /// Seconds from the start of the run to the first event of the phase.
    pub from: f64,
    /// Seconds from the start of the run to the last event of the phase.
    pub to: f64,
}

impl Span {
    fn extend(span: &mut Option<Span>, at: f64) {
        match span {
            Some(s) => {
                s.from = s.from.min(at);
                s.to = s.to.max(at);
            }
            None => *span = Some(Span { from: at, to: at }),
        }
    }
}

/// The phases of one job. Docker transport: the daemon's download, extract (of the pull)
/// and compress + upload (of the push); registry transport: ferry's own download into
/// the blob cache and upload. Time in none of them is decide, ferry's registry calls
/// (manifests, HEADs, mounts), tagging and the daemon's own bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Phases {
    /// Seconds from the start of the run to the job's start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<f64>,
    /// Layers arriving from the source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download: Option<Span>,
    /// The daemon unpacking pulled layers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extract: Option<Span>,
    /// Layers leaving for the target (the daemon compresses while it uploads), mounts
    /// included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<Span>,
    /// The last status of each layer, to tell the end of an extract from that of a push.
    #[serde(skip)]
    last: HashMap<String, LayerStatus>,
}

impl Phases {
    /// True when no layer event arrived (a skipped job, a no-op): nothing to report.
    pub fn is_empty(&self) -> bool {
        self.download.is_none() && self.extract.is_none() && self.push.is_none()
    }

    /// Records the start of the job at `at` seconds.
    pub(crate) fn start(&mut self, at: f64) {
        self.started = Some(at);
    }

    /// Takes one layer event that arrived `at` seconds into the run.
    pub(crate) fn layer(&mut self, layer: &str, status: LayerStatus, at: f64) {
        let previous = self.last.insert(layer.to_owned(), status);
        let span = match status {
            LayerStatus::Downloading => &mut self.download,
            LayerStatus::Extracting => &mut self.extract,
            LayerStatus::Pushing | LayerStatus::Mounted => &mut self.push,
            LayerStatus::Done => match previous {
                Some(LayerStatus::Extracting) => &mut self.extract,
                Some(LayerStatus::Pushing) => &mut self.push,
                Some(LayerStatus::Downloading) => &mut self.download,
                _ => return,
            },
            LayerStatus::Waiting | LayerStatus::AlreadyExists => return,
        };
        Span::extend(span, at);
    }
}

/// The clock of a run's events: seconds since the run started. Stopped (always 0) until
/// [`crate::report::Reporters::consume`] starts it, so rendered samples are reproducible.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Clock {
    origin: Option<Instant>,
}

impl Clock {
    /// A clock counting from `origin`.
    pub(crate) fn from(origin: Instant) -> Self {
        Clock {
            origin: Some(origin),
        }
    }

    /// Seconds since the origin, rounded to milliseconds; 0 when stopped.
    pub(crate) fn now(&self) -> f64 {
        self.origin.map_or(0.0, |origin| {
            (origin.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_become_spans_and_done_ends_the_phase_it_follows() {
        let mut phases = Phases::default();
        assert!(phases.is_empty());
        phases.start(0.5);
        phases.layer("a", LayerStatus::Waiting, 0.6);
        phases.layer("a", LayerStatus::Downloading, 1.0);
        phases.layer("b", LayerStatus::Downloading, 1.5);
        phases.layer("a", LayerStatus::Extracting, 2.0);
        phases.layer("a", LayerStatus::Done, 2.5);
        phases.layer("b", LayerStatus::AlreadyExists, 2.6);
        phases.layer("p", LayerStatus::Waiting, 3.0);
        phases.layer("p", LayerStatus::Pushing, 3.5);
        phases.layer("p", LayerStatus::Done, 4.0);
        phases.layer("q", LayerStatus::Mounted, 4.2);
        assert_eq!(phases.started, Some(0.5));
        assert_eq!(phases.download, Some(Span { from: 1.0, to: 1.5 }));
        assert_eq!(phases.extract, Some(Span { from: 2.0, to: 2.5 }));
        assert_eq!(phases.push, Some(Span { from: 3.5, to: 4.2 }));
        assert!(!phases.is_empty());
    }

    #[test]
    fn a_done_without_a_phase_before_it_counts_nowhere() {
        let mut phases = Phases::default();
        phases.layer("x", LayerStatus::Done, 1.0);
        phases.layer("y", LayerStatus::Waiting, 1.0);
        assert!(phases.is_empty());
    }
}
