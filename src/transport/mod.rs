//! The two ways an image travels: through the Docker daemon, or registry to registry.
//!
//! Owns the side effects of a copy. It must not choose what to copy (that is the plan's
//! job) nor print anything (events go to `report`).

pub mod docker;
pub mod registry;

use crate::event::Outcome;
use crate::plan::Job;

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
    /// Not an error: the job has nothing to copy, for this reason.
    #[error("{0}")]
    Skip(String),
}

/// Any displayable failure as a [`CopyError`].
pub(crate) fn other(error: impl std::fmt::Display) -> CopyError {
    CopyError::Other(error.to_string())
}

/// How a job ended: a skip is a skip, an error a failed job whose one-line message names
/// source, target and cause.
pub(crate) fn outcome(job: &Job, result: Result<Outcome, CopyError>) -> Outcome {
    match result {
        Ok(outcome) => outcome,
        Err(CopyError::Skip(reason)) => Outcome::Skipped { reason },
        Err(error) => Outcome::Failed {
            error: format!("{} -> {}: {error}", job.source, job.target),
        },
    }
}
