//! What the registries say before a build: the base's digest, and whether the target tag
//! exists and which labels it carries, read from its config blob without pulling.
//!
//! Owns these reads; it must not write to a registry nor touch the daemon.

use std::collections::BTreeMap;

use super::decide::Target;
use crate::manifest::ManifestError;
use crate::reference::Reference;
use crate::registry::{RegistryClient, RegistryError};

/// Why the registries could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A manifest of the target is unreadable.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The base is not in the registry.
    #[error("base image {0} not found (mirror it first: ferry sync)")]
    BaseMissing(Reference),
    /// The target is something ferry cannot read labels from.
    #[error("cannot read the labels of {image}: {cause}")]
    Labels {
        /// The target image.
        image: Reference,
        /// Why.
        cause: String,
    },
}

/// The manifest digest `base` resolves to (an index digest for a multi-platform base).
pub(crate) async fn base_digest(
    client: &RegistryClient,
    base: &Reference,
) -> Result<String, ReadError> {
    let head = client
        .head_manifest(base)
        .await?
        .ok_or_else(|| ReadError::BaseMissing(base.clone()))?;
    match head.digest {
        Some(digest) => Ok(digest),
        // A registry that leaves out Docker-Content-Digest on HEAD: hash the bytes.
        None => Ok(client.get_manifest(base).await?.digest),
    }
}

/// Whether `target` exists; with `labels`, also its image labels (the linux/amd64 entry's
/// for a multi-platform index), read from the config blob.
pub(crate) async fn target_state(
    client: &RegistryClient,
    target: &Reference,
    labels: bool,
) -> Result<Target, ReadError> {
    if client.head_manifest(target).await?.is_none() {
        return Ok(Target::Missing);
    }
    if !labels {
        return Ok(Target::Present(BTreeMap::new()));
    }
    let unreadable = |cause: &str| ReadError::Labels {
        image: target.clone(),
        cause: cause.to_owned(),
    };
    let config = client
        .image_config(target)
        .await?
        .ok_or_else(|| unreadable("the index has no Linux entry"))?;
    config_labels(&config).map_err(|e| unreadable(&e))
}

/// `config.Labels` of an image config (none is an empty map).
fn config_labels(config: &[u8]) -> Result<Target, String> {
    #[derive(serde::Deserialize)]
    struct Image {
        config: Option<Inner>,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(rename = "Labels")]
        labels: Option<BTreeMap<String, String>>,
    }
    let image: Image = serde_json::from_slice(config).map_err(|e| format!("image config: {e}"))?;
    let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
    Ok(Target::Present(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_config_section() {
        let config = br#"{"architecture":"amd64","os":"linux",
            "config":{"Env":["PATH=/bin"],"Labels":{"io.ferry.base.digest":"sha256:aa"}}}"#;
        let Ok(Target::Present(labels)) = config_labels(config) else {
            panic!("labels");
        };
        assert_eq!(labels["io.ferry.base.digest"], "sha256:aa");
        for empty in [
            br#"{"config":{"Labels":null}}"#.as_slice(),
            br#"{"config":{}}"#,
            br#"{"os":"linux"}"#,
        ] {
            assert_eq!(config_labels(empty), Ok(Target::Present(BTreeMap::new())));
        }
        let err = config_labels(b"[1]").expect_err("not a config");
        assert!(err.starts_with("image config: "), "{err}");
    }
}
