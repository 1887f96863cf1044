//! ferry: mirror public container images into registries you control, and build
//! `-n-ext` extension images on top of them.
