//! `ferry build`: the `-n-ext` extension images of build-images.yaml, built on their base
//! as the mirror serves it, labelled with what they were built from, pushed to the mirror.
//!
//! Owns the change detection ([`decide`]) and the build context ([`context`]). It must not
//! print (events go to `report`) nor decide anything about plain mirroring.

pub mod context;
pub mod decide;
mod dockerignore;

pub use decide::{LABEL_BASE_DIGEST, LABEL_BASE_REF, LABEL_CONTEXT};
