//! The one integration test binary: real dockerd, real registries.

mod build;
mod cli;
mod docker;
mod env;
mod harness;
mod hostile;
mod refused;
mod registry;
mod resume;
mod support;
mod transport;
