//! auth.yaml: per-registry credentials and transport settings (image-syncer format).
//!
//! Owns the parsed entries; resolving which entry applies to a reference (longest match,
//! fallbacks to docker config.json and TARGET_USER) is `crate::credentials`' job.

use std::path::PathBuf;

use crate::secret::Secret;

/// One auth.yaml entry, `${ENV}` already expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEntry {
    /// `registry` or `registry/namespace`, as written (e.g. `ghcr.io`, `127.0.0.1:5000/team`).
    pub key: String,
    /// User name, when the registry needs one.
    pub username: Option<String>,
    /// Password or access token.
    pub password: Option<Secret>,
    /// Plain HTTP or unverified TLS allowed for this registry.
    pub insecure: bool,
    /// Extra CA bundle (PEM) to trust for this registry.
    pub ca_file: Option<PathBuf>,
}
