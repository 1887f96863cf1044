//! Configuration: the files in `config/` (or `-c`) become typed values with locations.
//!
//! Owns parsing and validation of images.yaml, auth.yaml, rules.yaml, build-images.yaml and
//! Ferryman's items.yml. It must not do network I/O.

pub mod auth;
