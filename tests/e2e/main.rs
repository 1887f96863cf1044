//! The one integration test binary: real dockerd, real registries.

mod build;
mod docker;
mod env;
mod harness;
mod registry;
mod support;
mod transport;
