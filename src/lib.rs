//! ferry: mirror public container images into registries you control, and build
//! `-n-ext` extension images on top of them.
#![warn(missing_docs)]

pub mod build;
pub mod cache;
pub mod cli;
pub mod command;
pub mod config;
pub mod credentials;
pub mod decide;
pub mod docker;
pub mod event;
pub mod gates;
pub mod local_file;
pub mod manifest;
pub mod plan;
pub mod platform;
pub mod reference;
pub mod refusal;
pub mod registry;
pub mod report;
pub mod retry;
pub mod rules;
pub mod run;
pub mod secret;
pub mod select;
pub mod shard;
pub mod state;
pub mod timestamp;
pub mod transport;
