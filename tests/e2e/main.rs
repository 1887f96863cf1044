//! The one integration test binary: real dockerd, real registries.

mod env;
mod registry;
mod support;
