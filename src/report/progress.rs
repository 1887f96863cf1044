//! The bookkeeping behind the terminal's bars: bytes per layer of a job, and the whole
//! run (images done of total, bytes so far).
//!
//! Owns the arithmetic only, fed by events, so it is tested without a terminal; `human`
//! draws it. It must not write anything.

use std::collections::HashMap;

use super::human_bytes;
use crate::event::{Event, JobId, LayerStatus, Outcome};

/// Bytes done and known per layer of one job.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    layers: HashMap<String, (u64, u64)>,
}

impl Layers {
    /// Records one layer event.
    pub fn update(&mut self, layer: &str, status: LayerStatus, current: u64, total: Option<u64>) {
        let entry = self.layers.entry(layer.to_owned()).or_insert((0, 0));
        if let Some(total) = total {
            entry.1 = total;
        }
        entry.0 = match status {
            LayerStatus::Done | LayerStatus::AlreadyExists | LayerStatus::Mounted => entry.1,
            _ => current,
        };
    }

    /// Bytes done and bytes known over every layer.
    pub fn sums(&self) -> (u64, u64) {
        self.layers
            .values()
            .fold((0, 0), |(d, a), (c, t)| (d + c, a + t))
    }

    /// How many layers were seen.
    pub fn count(&self) -> usize {
        self.layers.len()
    }
}

/// The whole run: how many images of how many are done, and the bytes so far.
#[derive(Debug, Clone, Default)]
pub struct Overall {
    planned: Option<usize>,
    started: usize,
    done: usize,
    failed: usize,
    finished_bytes: u64,
    running: HashMap<JobId, Layers>,
}

impl Overall {
    /// Records one event.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Planned { jobs } => self.planned = Some(jobs.len()),
            Event::Started { job, .. } => {
                self.started += 1;
                self.running.insert(*job, Layers::default());
            }
            Event::Layer {
                job,
                layer,
                status,
                current,
                total,
            } => {
                if let Some(layers) = self.running.get_mut(job) {
                    layers.update(layer, *status, *current, *total);
                }
            }
            Event::Finished { job, outcome, .. } => {
                self.running.remove(job);
                self.done += 1;
                match outcome {
                    Outcome::Copied { bytes, .. } => self.finished_bytes += bytes,
                    Outcome::Failed { .. } => self.failed += 1,
                    Outcome::Skipped { .. } => {}
                }
            }
            Event::Retrying { .. } | Event::Log { .. } => {}
        }
    }

    /// Images in the run: as announced, else as many as started so far.
    pub fn total(&self) -> usize {
        self.planned.unwrap_or(self.started).max(self.done)
    }

    /// Images finished, whatever their outcome.
    pub fn done(&self) -> usize {
        self.done
    }

    /// Bytes of finished copies plus the bytes running jobs moved so far.
    pub fn bytes(&self) -> u64 {
        self.finished_bytes + self.running.values().map(|l| l.sums().0).sum::<u64>()
    }

    /// The bar's message: bytes, and failures when there are any.
    pub fn message(&self) -> String {
        let failed = match self.failed {
            0 => String::new(),
            n => format!(", {n} failed"),
        };
        format!("{}{failed}", human_bytes(self.bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::PlannedJob;
    use crate::report::tests::sample_events;

    #[test]
    fn layers_count_finished_layers_whole() {
        let mut layers = Layers::default();
        layers.update("a", LayerStatus::Downloading, 100, Some(400));
        layers.update("b", LayerStatus::Mounted, 0, Some(50));
        assert_eq!(layers.sums(), (150, 450));
        layers.update("a", LayerStatus::Done, 0, None);
        assert_eq!(layers.sums(), (450, 450));
        assert_eq!(layers.count(), 2);
    }

    #[test]
    fn overall_counts_images_and_bytes_against_the_plan() {
        let mut overall = Overall::default();
        let planned = (0..5)
            .map(|i| PlannedJob {
                unlisted: None,
                source: format!("s{i}"),
                target: format!("t{i}"),
            })
            .collect();
        overall.apply(&Event::Planned { jobs: planned });
        assert_eq!((overall.done(), overall.total()), (0, 5));
        for event in sample_events() {
            overall.apply(&event);
            if let Event::Layer { .. } = event {
                assert_eq!(overall.bytes(), 512, "a running job's bytes count");
            }
        }
        assert_eq!((overall.done(), overall.total()), (3, 5));
        assert_eq!(
            overall.bytes(),
            1536,
            "the copy's own count replaces its layers"
        );
        assert_eq!(overall.message(), "1.5 KiB, 1 failed");
    }

    #[test]
    fn without_a_plan_the_total_grows_with_the_started_jobs() {
        let mut overall = Overall::default();
        for event in sample_events().iter().take(4) {
            overall.apply(event);
        }
        assert_eq!((overall.done(), overall.total()), (1, 2));
    }
}
