//! ferry: mirror public container images into registries you control, and build
//! `-n-ext` extension images on top of them.
#![warn(missing_docs)]

pub mod config;
pub mod reference;
pub mod rules;
pub mod secret;
