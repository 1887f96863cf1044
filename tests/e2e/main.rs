//! The one integration test binary: real dockerd, real registries.

mod docker;
mod env;
mod registry;
mod support;
