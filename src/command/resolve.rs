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
use crate::state::{ImageFacts, State};

/// Tags and creation times read from registries; with a state file, what was read of an
/// image is remembered by its digest, so the next run finds it with a HEAD (free on Docker
/// Hub) instead of a manifest GET (a pull).
pub struct RegistryTags<'a> {
    client: &'a RegistryClient,
    facts: Option<&'a State>,
}

impl<'a> RegistryTags<'a> {
    /// Reads everything from the registry, every time.
    pub fn new(client: &'a RegistryClient) -> Self {
        RegistryTags {
            client,
            facts: None,
        }
    }

    /// Remembers what it read in `state`, by manifest digest.
    pub fn remembering(client: &'a RegistryClient, state: &'a State) -> Self {
        RegistryTags {
            client,
            facts: Some(state),
        }
    }

    /// The digest `image` has now (HEAD) and what `state` knows of it; `None` without a
    /// state file or a digest (a 404, or a HEAD that left it out: the read will say). A
    /// HEAD that failed is the answer: the read would only ask a failing registry again.
    async fn known(
        &self,
        image: &Reference,
    ) -> Result<Option<(&'a State, String, ImageFacts)>, String> {
        let Some(state) = self.facts else {
            return Ok(None);
        };
        let head = self
            .client
            .head_manifest(image)
            .await
            .map_err(|e| e.to_string())?;
        let Some(digest) = head.and_then(|head| head.digest) else {
            return Ok(None);
        };
        let facts = state.image_facts(&digest).unwrap_or_default();
        Ok(Some((state, digest, facts)))
    }

    /// Records what was read of `image`, when the manifest read is the one HEAD saw (this
    /// run's pull of it is kept by the client, so asking again costs nothing).
    async fn remember(
        &self,
        known: Option<(&State, String, ImageFacts)>,
        image: &Reference,
        change: impl FnOnce(&mut ImageFacts),
    ) {
        let Some((state, digest, _)) = known else {
            return;
        };
        match self.client.get_manifest(image).await {
            Ok(read) if read.digest == digest => {}
            _ => return,
        }
        state.record_image_facts(&digest, change);
    }
}

impl TagSource for RegistryTags<'_> {
    async fn tags(&self, repository: &Reference) -> Result<Vec<String>, String> {
        self.client
            .list_tags(repository, Some(1000))
            .await
            .map_err(|e| e.to_string())
    }

    async fn created(&self, image: &Reference) -> Result<Option<i64>, String> {
        let known = self.known(image).await?;
        if let Some((_, _, facts)) = &known {
            if facts.created_read {
                return Ok(facts.created);
            }
        }
        let config = self
            .client
            .image_config(image)
            .await
            .map_err(|e| e.to_string())?;
        let created = config.as_deref().and_then(manifest::config_created);
        self.remember(known, image, |facts| {
            facts.created_read = true;
            facts.created = created;
        })
        .await;
        Ok(created)
    }

    async fn has_linux(&self, image: &Reference) -> Result<bool, String> {
        let known = self.known(image).await?;
        if let Some(linux) = known.as_ref().and_then(|(_, _, facts)| facts.linux) {
            return Ok(linux);
        }
        let platforms = linux_platforms(self.client, image)
            .await
            .map_err(|e| e.to_string())?;
        let linux = !platforms.is_empty();
        self.remember(known, image, |facts| facts.linux = Some(linux))
            .await;
        Ok(linux)
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

/// Every job of `stage`; entries whose tags could not be listed are returned apart. What
/// planning reads of an image is remembered in `state`, when given.
pub async fn jobs(
    config: &Mapping,
    stage: Stage,
    request: &Request,
    client: &RegistryClient,
    state: Option<&State>,
) -> Result<(Vec<Job>, Vec<Unresolved>), CommandError> {
    let tags = match state {
        Some(state) => RegistryTags::remembering(client, state),
        None => RegistryTags::new(client),
    };
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
    if let Some(Err(error)) = state.map(State::flush) {
        tracing::warn!("{error}");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fake::{client, FakeRegistry, TestImage};

    /// Manifest GETs and HEADs of `team/app` since request `from`.
    async fn reads(registry: &FakeRegistry, from: usize) -> (usize, usize) {
        let requests = registry.requests().await;
        let of = |verb: &str| {
            requests[from..]
                .iter()
                .filter(|r| r.starts_with(&format!("{verb} /v2/team/app/manifests/")))
                .count()
        };
        (of("GET"), of("HEAD"))
    }

    /// `limit` and `order: created` read images while planning; with the state file, the
    /// next run (a new client) finds them by HEAD and pulls nothing.
    #[tokio::test]
    async fn what_planning_read_is_found_again_by_head() {
        let registry = FakeRegistry::start().await;
        let image = TestImage::new("linux/amd64", &["app"]);
        registry.serve_image("team/app", "1", &image).await;
        let windows = TestImage::new("windows/amd64", &["win"]);
        registry.serve_image("team/app", "win", &windows).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let state = State::load(&dir.path().join("state.json")).0;
        let (linux, win) = (
            registry.reference("team/app:1"),
            registry.reference("team/app:win"),
        );
        for run in ["first", "second"] {
            let client = client();
            let tags = RegistryTags::remembering(&client, &state);
            let before = registry.requests().await.len();
            assert_eq!(tags.has_linux(&linux).await, Ok(true), "{run}");
            assert_eq!(tags.has_linux(&win).await, Ok(false), "{run}");
            assert_eq!(tags.created(&linux).await, Ok(None), "{run}");
            let (gets, heads) = reads(&registry, before).await;
            match run {
                // One pull per image (the client keeps it for the created read).
                "first" => assert_eq!(gets, 2, "{run}"),
                _ => assert_eq!((gets, heads), (0, 3), "{run}: HEADs only"),
            }
        }
        // Saved once, after planning: a new process finds it too.
        state.flush().expect("saved");
        let reloaded = State::load(&dir.path().join("state.json")).0;
        let fresh = client();
        let before = registry.requests().await.len();
        let tags = RegistryTags::remembering(&fresh, &reloaded);
        assert_eq!(tags.has_linux(&win).await, Ok(false));
        assert_eq!(reads(&registry, before).await, (0, 1), "from the file");
        // Without a state file, every run reads again.
        let client = client();
        let before = registry.requests().await.len();
        assert_eq!(RegistryTags::new(&client).has_linux(&linux).await, Ok(true));
        assert_eq!(reads(&registry, before).await, (1, 0));
    }
}
