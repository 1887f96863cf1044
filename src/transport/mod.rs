//! The two ways an image travels: through the Docker daemon, or registry to registry.
//!
//! Owns the side effects of a copy. It must not choose what to copy (that is the plan's
//! job) nor print anything (events go to `report`).

pub mod docker;
pub mod registry;

/// Joins a failure into the one-line message a failed job carries.
pub(crate) fn failure(
    job: &crate::plan::Job,
    cause: impl std::fmt::Display,
) -> crate::event::Outcome {
    crate::event::Outcome::Failed {
        error: format!("{} -> {}: {cause}", job.source, job.target),
    }
}
