//! The transports' ordering promises (SPEC §5, §9: nothing half-written is ever tagged),
//! against fake registries (wiremock) and the fake daemon: no dockerd, no network.
//!
//! Owns what the two transports' tests share: a job, a state file, one run of [`Mirror`].

mod docker;
mod registry;

use std::sync::Arc;

use tempfile::TempDir;

use super::{Mirror, Transport};
use crate::decide::Decider;
use crate::event::{self, Outcome};
use crate::plan::Job;
use crate::reference::Reference;
use crate::run::Worker;
use crate::state::State;

/// A job copying `source` to `target`, every Linux platform.
fn job(source: Reference, target: Reference) -> Job {
    Job::new(source, target, Vec::new())
}

/// A state file in a new temporary directory, which also holds the blob cache.
fn state() -> (Arc<State>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, warning) = State::load(&dir.path().join("state.json"));
    assert_eq!(warning, None);
    (Arc::new(state), dir)
}

/// Decides `job`, then copies it with `transport` when it must: what `ferry sync` does.
async fn mirror(decider: &Decider, transport: &impl Transport, job: &Job) -> Outcome {
    let (events, _receiver) = event::channel();
    Mirror::new(decider, transport)
        .work(job, &events.job(0))
        .await
}

/// Where the first line `wanted` accepts stands in `lines`; fails the test when none does.
fn position(lines: &[String], what: &str, wanted: impl Fn(&str) -> bool) -> usize {
    lines
        .iter()
        .position(|line| wanted(line))
        .unwrap_or_else(|| panic!("no {what} in {lines:#?}"))
}

/// How many of `lines` `wanted` accepts.
fn count(lines: &[String], wanted: impl Fn(&str) -> bool) -> usize {
    lines.iter().filter(|line| wanted(line)).count()
}
