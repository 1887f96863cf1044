//! Test support for the e2e binary: real registries per test, the Docker daemon, and
//! fixture images. Owns the environment; must not call ferry's own code.
//!
//! Each test module uses a different part of this, so unused items are not warnings.
#![allow(dead_code, unused_imports)]

pub mod client;
pub mod docker;
pub mod fixture;
pub mod hostile;
mod pager;
pub mod quirk;
pub mod registry;
pub mod server;
pub mod token;

pub use client::{challenge_params, Manifest, RegistryClient};
pub use docker::{docker, require_daemon, unique, Docker, ImageCleanup};
pub use fixture::{Attestation, Fixture, ManyTags, MediaKind, Platform, Pushed, PushedIndex};
pub use hostile::{HostileRegistry, Hostility};
pub use quirk::{Harbor, Kind, Profile, QuirkRegistry, Seen};
pub use registry::{AuthMode, Credentials, Registry, Request};
pub use token::{TokenOptions, TokenRequest, TRICKY_PASSWORD};
