//! The two ways an image travels: through the Docker daemon, or registry to registry; and
//! [`Mirror`], the worker that decides a job, then has a transport carry it out.
//!
//! Owns the side effects of a copy. It must not choose what to copy (that is the plan's
//! job) nor whether (that is `decide`'s), nor print anything (events go to `report`).

pub mod docker;
mod layers;
pub mod registry;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use crate::decide::{Action, Decider, Source};
use crate::event::{JobEvents, Outcome};
use crate::plan::Job;
use crate::run::Worker;

/// Carries out a copy that `decide` asked for.
pub trait Transport: Sync {
    /// Copies `job` from `source` (as read while deciding), reporting through `events`.
    /// Errors become [`Outcome::Failed`] with a line naming source, target and cause.
    fn copy(
        &self,
        job: &Job,
        source: Source,
        events: &JobEvents,
    ) -> impl Future<Output = Outcome> + Send;
}

/// The work of a sync: decide each job (many at once: a skip costs a few HEADs), then copy
/// it with the transport when it must (`--jobs` at once).
pub struct Mirror<'a, T: Transport> {
    decider: &'a Decider,
    transport: &'a T,
    /// What the precheck decided to copy, by target, until its copy takes it.
    decided: Mutex<HashMap<String, Source>>,
}

impl<'a, T: Transport> Mirror<'a, T> {
    /// A worker deciding with `decider` and copying with `transport`.
    pub fn new(decider: &'a Decider, transport: &'a T) -> Self {
        Mirror {
            decider,
            transport,
            decided: Mutex::default(),
        }
    }
}

impl<T: Transport> Worker for Mirror<'_, T> {
    async fn precheck(&self, job: &Job, _events: &JobEvents) -> Option<Outcome> {
        match self.decide(job).await {
            Ok(source) => {
                let mut decided = self.decided.lock().unwrap_or_else(|p| p.into_inner());
                decided.insert(job.target.to_string(), source);
                None
            }
            Err(outcome) => Some(outcome),
        }
    }

    async fn work(&self, job: &Job, events: &JobEvents) -> Outcome {
        let decided = {
            let mut decided = self.decided.lock().unwrap_or_else(|p| p.into_inner());
            decided.remove(&job.target.to_string())
        };
        let source = match decided {
            Some(source) => source,
            // Run without its precheck (another runner): decide now.
            None => match self.decide(job).await {
                Ok(source) => source,
                Err(outcome) => return outcome,
            },
        };
        self.transport.copy(job, source, events).await
    }
}

impl<T: Transport> Mirror<'_, T> {
    /// The decision on `job`: the source to copy, or the outcome that ends it here.
    async fn decide(&self, job: &Job) -> Result<Source, Outcome> {
        match self.decider.decide(job).await {
            Action::Copy { source, .. } => Ok(source),
            Action::Skip(reason) => Err(Outcome::Skipped { reason }),
            Action::Fail(error) => Err(Outcome::Failed {
                error: format!("{} -> {}: {error}", job.source, job.target),
            }),
        }
    }
}

/// Why a copy stopped, for either transport.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CopyError {
    #[error(transparent)]
    Docker(#[from] crate::docker::DockerError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("{0}")]
    Other(String),
}

/// Any displayable failure as a [`CopyError`].
pub(crate) fn other(error: impl std::fmt::Display) -> CopyError {
    CopyError::Other(error.to_string())
}

/// How a copy ended: an error is a failed job whose one-line message names source, target
/// and cause.
pub(crate) fn outcome(job: &Job, result: Result<Outcome, CopyError>) -> Outcome {
    match result {
        Ok(outcome) => outcome,
        Err(error) => Outcome::Failed {
            error: format!("{} -> {}: {error}", job.source, job.target),
        },
    }
}
