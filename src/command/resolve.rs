//! Turns the config into concrete jobs for `plan` and `sync`, listing tags on the registry.
//!
//! Owns the registry-backed [`TagSource`] and the collection of entries that could not
//! be listed. It must not copy anything.

use bytes::Bytes;
use futures::TryStreamExt;

use super::CommandError;
use crate::config::Config;
use crate::manifest::{self, Parsed};
use crate::plan::{self, Job, Request, TagSource, Unresolved};
use crate::reference::Reference;
use crate::registry::RegistryClient;
use crate::rules::Stage;

/// Tags and creation times read from registries.
pub struct RegistryTags<'a>(pub &'a RegistryClient);

impl TagSource for RegistryTags<'_> {
    async fn tags(&self, repository: &Reference) -> Result<Vec<String>, String> {
        self.0
            .list_tags(repository, Some(1000))
            .await
            .map_err(|e| e.to_string())
    }

    async fn created(&self, image: &Reference) -> Result<Option<i64>, String> {
        let config = image_config(self.0, image)
            .await
            .map_err(|e| e.to_string())?;
        Ok(config.as_deref().and_then(manifest::config_created))
    }
}

/// The config blob of `image` (for an index, its linux/amd64 or first Linux image).
pub async fn image_config(
    client: &RegistryClient,
    image: &Reference,
) -> Result<Option<Bytes>, CommandError> {
    let failed = |e: &dyn std::fmt::Display| CommandError::Failed(e.to_string());
    let mut top = client.get_manifest(image).await.map_err(|e| failed(&e))?;
    let mut pinned = image.clone();
    for _ in 0..2 {
        match manifest::parse(&top.media_type, &top.bytes).map_err(|e| failed(&e))? {
            Parsed::Image(parts) => {
                let bytes: Vec<u8> = client
                    .get_blob(&pinned, &parts.config.digest)
                    .await
                    .map_err(|e| failed(&e))?
                    .map_ok(|chunk| chunk.to_vec())
                    .try_concat()
                    .await
                    .map_err(|e| failed(&e))?;
                return Ok(Some(Bytes::from(bytes)));
            }
            Parsed::Index(children) => {
                let linux =
                    |c: &&manifest::Child| c.platform.as_ref().is_some_and(|p| p.is_linux());
                let amd64 = children.iter().filter(linux).find(|c| {
                    c.platform
                        .as_ref()
                        .is_some_and(|p| p.architecture() == "amd64")
                });
                let Some(child) = amd64.or_else(|| children.iter().find(linux)) else {
                    return Ok(None);
                };
                pinned = image.with_digest(&child.digest).map_err(|e| failed(&e))?;
                top = client.get_manifest(&pinned).await.map_err(|e| failed(&e))?;
            }
        }
    }
    Ok(None)
}

/// Every job of `stage`; entries whose tags could not be listed are returned apart.
pub async fn jobs(
    config: &Config,
    stage: Stage,
    request: &Request,
    client: &RegistryClient,
) -> Result<(Vec<Job>, Vec<Unresolved>), CommandError> {
    let tags = RegistryTags(client);
    let mut jobs = Vec::new();
    let mut unresolved = Vec::new();
    for route in plan::routes(config, stage, request)? {
        match plan::resolve_tags(&route, &tags).await {
            Ok(resolved) => jobs.extend(plan::jobs(config, &route, stage, &resolved)?),
            Err(error) => unresolved.push(Unresolved {
                source: route.from.clone(),
                error,
            }),
        }
    }
    Ok((plan::finish(jobs), unresolved))
}

/// Registries a stage reads from and writes to, for resolving only their credentials.
pub fn touched(
    config: &Config,
    stage: Stage,
    request: &Request,
) -> Result<Vec<Reference>, CommandError> {
    let mut references = Vec::new();
    for route in plan::routes(config, stage, request)? {
        references.push(route.from.clone());
        if let Ok(targets) = config.targets(&route.entry, &route.entry.source, stage) {
            references.extend(targets);
        }
    }
    Ok(references)
}
