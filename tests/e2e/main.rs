//! The one integration test binary: real dockerd, real registries.

mod action;
mod budget;
mod build;
mod cli;
mod crash;
mod decide;
mod docker;
mod env;
mod harness;
mod hostile;
mod image_syncer;
mod immutable;
mod inputs;
mod platforms;
mod quirks;
mod refused;
mod registry;
mod resume;
mod schema;
mod speed_paths;
mod support;
mod transport;
