//! Reference text as configuration files write it: one reference, or a registry with an
//! optional namespace, each checked with the rule it broke as the error.
//!
//! Owns these two checks; the grammar itself is `Reference`'s.

use super::{Reference, ReferenceError};

/// Parses a reference, the error reduced to the rule it broke (callers name the value).
pub fn parse_reference(text: &str) -> Result<Reference, String> {
    text.parse()
        .map_err(|e: ReferenceError| e.kind().to_string())
}

/// Checks a stage, rule or auth.yaml registry: a registry host, optionally with a namespace
/// (`registry.cn-beijing.aliyuncs.com`, `127.0.0.1:5000/mirror`). Returns it with Docker
/// Hub's aliases folded into `docker.io`.
pub fn normalize_registry(registry: &str) -> Result<String, String> {
    let (host, namespace) = match registry.split_once('/') {
        Some((host, namespace)) => (host, Some(namespace)),
        None => (registry, None),
    };
    if !(host.contains(['.', ':']) || host == "localhost") {
        return Err("must start with a registry host (with a '.' or ':', or localhost)".to_owned());
    }
    let probe = parse_reference(&format!("{registry}/x"))?;
    Ok(match namespace {
        Some(namespace) => format!("{}/{namespace}", probe.registry()),
        None => probe.registry().to_owned(),
    })
}
