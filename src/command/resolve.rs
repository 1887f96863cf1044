//! Turns the config into concrete jobs for `plan` and `sync`, listing tags on the registry.
//!
//! Owns the registry-backed [`TagSource`] and the collection of entries that could not
//! be listed. It must not copy anything.

use super::CommandError;
use crate::manifest::{self, Parsed};
use crate::plan::{self, Job, Request, TagSource, Unresolved};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::{RegistryClient, RegistryError};
use crate::rules::Mapping;
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
        let config = self
            .0
            .image_config(image)
            .await
            .map_err(|e| e.to_string())?;
        Ok(config.as_deref().and_then(manifest::config_created))
    }

    async fn has_linux(&self, image: &Reference) -> Result<bool, String> {
        let platforms = linux_platforms(self.0, image)
            .await
            .map_err(|e| e.to_string())?;
        Ok(!platforms.is_empty())
    }
}

/// The Linux platforms of `image` (`linux/amd64`, …); empty for Windows-only images.
pub async fn linux_platforms(
    client: &RegistryClient,
    image: &Reference,
) -> Result<Vec<Platform>, RegistryError> {
    let top = client.get_manifest(image).await?;
    match manifest::parse(&top.media_type, &top.bytes) {
        Ok(Parsed::Index(children)) => Ok(children
            .into_iter()
            .filter_map(|c| c.platform)
            .filter(Platform::is_linux)
            .collect()),
        // One image: its config says the platform (the manifest is already here).
        Ok(Parsed::Image(parts)) => {
            let config = client.blob_bytes(image, &parts.config).await?;
            Ok(manifest::config_platform(&config)
                .filter(Platform::is_linux)
                .into_iter()
                .collect())
        }
        // Unreadable here: let image_config report it in its own words.
        Err(_) => client.image_config(image).await.map(|_| Vec::new()),
    }
}

/// Every job of `stage`; entries whose tags could not be listed are returned apart.
pub async fn jobs(
    config: &Mapping,
    stage: Stage,
    request: &Request,
    client: &RegistryClient,
) -> Result<(Vec<Job>, Vec<Unresolved>), CommandError> {
    let tags = RegistryTags(client);
    let mut jobs = Vec::new();
    let mut unresolved = Vec::new();
    for route in plan::routes(config, stage, request)? {
        // Whatever goes wrong with one entry (its registry, a tag no template can carry)
        // fails that entry; the rest of the plan runs.
        let planned = match plan::resolve_tags(&route, &tags).await {
            Ok(resolved) => plan::jobs(config, &route, stage, &resolved).map_err(|e| e.to_string()),
            Err(error) => Err(error),
        };
        match planned {
            Ok(planned) => jobs.extend(planned),
            Err(error) => unresolved.push(Unresolved {
                source: route.from.clone(),
                key: format!("{}{}", route.from, route.entry.selection.key_suffix()),
                destinations: route
                    .targets(config, &route.entry.source, stage)
                    .map(|targets| {
                        targets
                            .iter()
                            .map(|t| t.without_tag().to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
                error,
            }),
        }
    }
    Ok((plan::finish(jobs), unresolved))
}

/// Registries a stage reads from and writes to, for resolving only their credentials.
pub fn touched(
    config: &Mapping,
    stage: Stage,
    request: &Request,
) -> Result<Vec<Reference>, CommandError> {
    let mut references = Vec::new();
    for route in plan::routes(config, stage, request)? {
        references.push(route.from.clone());
        if let Ok(targets) = route.targets(config, &route.entry.source, stage) {
            references.extend(targets);
        }
    }
    Ok(references)
}
