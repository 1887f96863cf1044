//! The Docker Engine layer: pull, tag, push, inspect, list, remove and build through dockerd.
//!
//! Owns the [`DockerApi`] seam and its bollard implementation [`Engine`]; it must not print,
//! retry or decide what to mirror: callers get typed errors and a stream of events.

mod api;
mod auth;
mod engine;
mod error;
mod events;
#[cfg(test)]
pub(crate) mod fake;
mod image;
mod stream;
mod transfer;

pub use api::{BuildContext, BuildRequest, DockerApi, ImageInfo, Pulled};
pub use auth::{registry_auth_header, registry_config_header, RegistryAuth};
pub use engine::{Engine, DEFAULT_DOCKER_HOST};
pub use error::{DockerError, DockerErrorKind, ErrorClass, Operation};
pub use events::{DiscardEvents, DockerEvent, EventSink, LayerEvent};
pub use transfer::IdleTimeouts;
