//! The plan: a list of jobs, each a source image, its target, and the platforms, with the
//! reason it is there. Built from the config for one stage, in an order that keeps the
//! images of one repository together (they share layers in the daemon's cache).
//!
//! Owns expansion (entries × tags × targets), one-off images from the command line, shards
//! and the plan's JSON form. Listing tags is the only I/O here, behind [`TagSource`].

use std::collections::BTreeSet;
use std::future::Future;

use crate::config::selection::{parse_key, TagSelection, TagSet};
use crate::config::{ConfigError, ImageEntry, Location};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::rules::Mapping;
use crate::rules::Stage;
use crate::select;
use crate::shard::Shard;

/// Copy one image (one tag or digest) from a source to a target.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Job {
    /// Source image with its tag or digest.
    pub source: Reference,
    /// Target image with its tag.
    pub target: Reference,
    /// Platforms to copy; empty means every Linux platform of the source.
    #[serde(default)]
    pub platforms: Vec<Platform>,
    /// Copy every entry of an index, Windows included, byte for byte (`--all-platforms`,
    /// `platforms: all`; registry transport only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_platforms: bool,
    /// The tag is immutable (`immutable:` in images.yaml or rules.yaml): a target that has
    /// it is left alone without a request to the source.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub immutable: bool,
}

impl Job {
    /// A job copying `source` to `target`.
    pub fn new(source: Reference, target: Reference, platforms: Vec<Platform>) -> Self {
        Job {
            source,
            target,
            platforms,
            all_platforms: false,
            immutable: false,
        }
    }

    /// The same job with an immutable tag (or not).
    pub fn with_immutable(mut self, immutable: bool) -> Self {
        self.immutable = immutable;
        self
    }

    /// The same job copying every platform (`all`) or only Linux ones.
    pub fn with_all_platforms(mut self, all: bool) -> Self {
        self.all_platforms = all;
        self
    }
}

/// Lists tags and reads creation times; the registry client in real runs.
pub trait TagSource: Sync {
    /// All tags of the repository of `repository`.
    fn tags(
        &self,
        repository: &Reference,
    ) -> impl Future<Output = Result<Vec<String>, String>> + Send;
    /// Unix seconds the image `image` was created (`None` when unknown).
    fn created(
        &self,
        image: &Reference,
    ) -> impl Future<Output = Result<Option<i64>, String>> + Send;
    /// Whether `image` has a Linux platform (a Windows-only image is never copied).
    fn has_linux(&self, image: &Reference) -> impl Future<Output = Result<bool, String>> + Send;
}

/// What a command asks to plan.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Only these images (command-line references); empty = every entry of images.yaml.
    pub images: Vec<String>,
    /// Platforms from `--platform`, overriding the entries' own.
    pub platforms: Vec<Platform>,
    /// `--all-platforms`: every entry of an index, byte for byte.
    pub all_platforms: bool,
    /// Only the share of this shard.
    pub shard: Option<Shard>,
}

/// One entry as it travels in a stage: where it is read from and what selects its tags.
#[derive(Debug, Clone)]
pub struct Route {
    /// The entry of images.yaml (or a one-off from the command line).
    pub entry: ImageEntry,
    /// Repository the stage reads from: the source (mirror stage) or its mirror (private).
    pub from: Reference,
    /// A built image carried to hop 2 as written (build-images.yaml's mapping form): its
    /// source already is the mirror image and its destinations are the private targets.
    pub carried: bool,
}

impl Route {
    /// Where `source` (the entry's repository with a tag, digest or neither) goes: the
    /// rules of `stage`, or a carried entry's own destinations.
    pub fn targets(
        &self,
        config: &Mapping,
        source: &Reference,
        stage: Stage,
    ) -> Result<Vec<Reference>, ConfigError> {
        let stage = if self.carried { Stage::Mirror } else { stage };
        config
            .targets(&self.entry, source, stage)
            .map_err(|e| located(&self.entry, e))
    }

    /// The image the stage reads for `original` (a tag or digest of the entry's source).
    fn read_from(
        &self,
        config: &Mapping,
        original: &Reference,
        stage: Stage,
    ) -> Result<Reference, ConfigError> {
        match stage {
            Stage::Private if !self.carried => {
                first_target(config, &self.entry, original, Stage::Mirror)
            }
            _ => Ok(original.clone()),
        }
    }
}

/// An entry whose tags could not be listed; the rest of the plan still runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The repository whose tags were asked for.
    pub source: Reference,
    /// The entry as an images.yaml key (`repo:/regex/`, `repo`): what a retry asks for.
    pub key: String,
    /// Where the entry's images go (repositories), for a retry of it.
    pub destinations: Vec<String>,
    /// Why, in one line.
    pub error: String,
}

/// The routes of a stage, after the command line's images and the shard are applied. The
/// private stage also carries build-images.yaml's mapping-form entries as written.
pub fn routes(
    config: &Mapping,
    stage: Stage,
    request: &Request,
) -> Result<Vec<Route>, ConfigError> {
    let mut entries: Vec<(ImageEntry, bool)> = if request.images.is_empty() {
        let mut entries: Vec<(ImageEntry, bool)> =
            config.images().iter().map(|e| (e.clone(), false)).collect();
        if stage == Stage::Private {
            entries.extend(config.carried().iter().map(|c| (c.entry.clone(), true)));
        }
        entries
    } else {
        request
            .images
            .iter()
            .map(|image| one_off(config, image).map(|e| (e, false)))
            .collect::<Result<_, _>>()?
    };
    if let Some(shard) = request.shard {
        entries.retain(|(e, _)| shard.owns(&e.source.repository_name()));
    }
    // An entry the stage cannot map is a config or usage error, not a failed image.
    if config.rules().stage(stage).is_none() {
        let unmapped = entries.iter().find(|(e, carried)| {
            !carried && (stage == Stage::Private || e.destinations.is_empty())
        });
        if let Some((entry, _)) = unmapped {
            return Err(located(entry, crate::rules::MapError::NoStage { stage }));
        }
    }
    let mut routes = Vec::with_capacity(entries.len());
    for (mut entry, carried) in entries {
        if !request.platforms.is_empty() {
            entry.platforms = request.platforms.clone();
            entry.all_platforms = false;
        }
        entry.all_platforms |= request.all_platforms;
        let mut route = Route {
            from: entry.source.clone(),
            entry,
            carried,
        };
        route.from = route.read_from(config, &route.entry.source, stage)?;
        routes.push(route);
    }
    routes.sort_by(|a, b| a.from.cmp(&b.from));
    Ok(routes)
}

/// The concrete tags a route means, listing them when the selection needs it.
pub async fn resolve_tags(route: &Route, tags: &impl TagSource) -> Result<Vec<String>, String> {
    let selection = &route.entry.selection;
    match selection.tags() {
        TagSet::List(list) => Ok(list.clone()),
        TagSet::Digest { .. } => Ok(Vec::new()),
        TagSet::All | TagSet::Regex(_) => select_tags(selection, &route.from, tags).await,
    }
}

/// The listed tags of `repository` a selection means, newest first. `limit` counts only
/// tags with a Linux platform (Windows-only tags are never copied), so with a limit the
/// candidates are checked newest first until enough are found.
pub async fn select_tags(
    selection: &TagSelection,
    repository: &Reference,
    tags: &impl TagSource,
) -> Result<Vec<String>, String> {
    let listed = tags.tags(repository).await?;
    let mut candidates: Vec<&str> = select::by_name(selection, &listed);
    let image = |tag: &str| repository.with_tag(tag).map_err(|e| e.to_string());
    if select::needs_created(selection) {
        let mut created = Vec::with_capacity(candidates.len());
        for tag in candidates {
            created.push((tag, tags.created(&image(tag)?).await?.unwrap_or(i64::MIN)));
        }
        candidates = select::newest_by_created(created);
    }
    let Some(limit) = selection.limit() else {
        return Ok(candidates.into_iter().map(str::to_owned).collect());
    };
    let mut chosen = Vec::new();
    for tag in candidates {
        if chosen.len() == limit as usize {
            break;
        }
        if tags.has_linux(&image(tag)?).await? {
            chosen.push(tag.to_owned());
        }
    }
    Ok(chosen)
}

/// The jobs of one route for its resolved `tags` (a digest entry needs none).
pub fn jobs(
    config: &Mapping,
    route: &Route,
    stage: Stage,
    tags: &[String],
) -> Result<Vec<Job>, ConfigError> {
    let entry = &route.entry;
    let pinned: Vec<Reference> = match entry.selection.tags() {
        TagSet::Digest { digest, tag } => {
            let with_tag = match tag {
                Some(tag) => entry.source.with_tag(tag),
                None => Ok(entry.source.clone()),
            };
            vec![with_tag
                .and_then(|r| r.with_digest(digest))
                .map_err(|e| located(entry, e))?]
        }
        _ => tags
            .iter()
            .map(|tag| entry.source.with_tag(tag).map_err(|e| located(entry, e)))
            .collect::<Result<_, _>>()?,
    };
    let immutable = config.immutable(entry);
    let mut jobs = Vec::new();
    for original in pinned {
        let source = route.read_from(config, &original, stage)?;
        let fixed = (original.tag().zip(immutable)).is_some_and(|(tag, re)| re.matches(tag));
        for target in route.targets(config, &original, stage)? {
            jobs.push(
                Job::new(source.clone(), target, entry.platforms.clone())
                    .with_all_platforms(entry.all_platforms)
                    .with_immutable(fixed),
            );
        }
    }
    Ok(jobs)
}

/// Drops repeated jobs and orders them by source repository, then tag.
pub fn finish(mut jobs: Vec<Job>) -> Vec<Job> {
    let mut seen = BTreeSet::new();
    jobs.retain(|j| seen.insert((j.source.to_string(), j.target.to_string())));
    jobs.sort_by(|a, b| {
        (
            a.source.repository_name(),
            a.source.tag(),
            a.target.to_string(),
        )
            .cmp(&(
                b.source.repository_name(),
                b.source.tag(),
                b.target.to_string(),
            ))
    });
    jobs
}

/// Reads the jobs of `ferry plan --json` output.
/// Reads the jobs of `ferry plan --json` output, with the checks a configuration gets:
/// at least one job, Linux platforms only, and no two jobs writing one target.
pub fn from_json(text: &str) -> Result<Vec<Job>, String> {
    let jobs: Vec<Job> =
        serde_json::from_str(text).map_err(|e| format!("not a ferry plan: {e}"))?;
    if jobs.is_empty() {
        return Err("a plan of no jobs: nothing to do".to_owned());
    }
    let mut targets = BTreeSet::new();
    for (i, job) in jobs.iter().enumerate() {
        if let Some(p) = job.platforms.iter().find(|p| !p.is_linux()) {
            return Err(format!(
                "job {i} ({}): only linux platforms can be copied, not {p}",
                job.source
            ));
        }
        if !targets.insert(job.target.to_string()) {
            return Err(format!(
                "job {i}: {} is the target of an earlier job too",
                job.target
            ));
        }
    }
    Ok(jobs)
}

/// A command-line image: its images.yaml entry restricted to the given tags, or a new
/// entry mapped by the rules. No tag means `latest`, as with `docker pull`.
fn one_off(config: &Mapping, image: &str) -> Result<ImageEntry, ConfigError> {
    let usage = |message: String| {
        ConfigError::new(Location::file_only("command line"), message).with_value(image)
    };
    let (repository, tags) = parse_key(image).map_err(usage)?;
    let tags = match tags {
        TagSet::All => TagSet::List(vec!["latest".to_owned()]),
        other => other,
    };
    let known = config.images().iter().find(|e| e.source == repository);
    Ok(match known {
        Some(entry) => ImageEntry {
            selection: TagSelection::new(tags),
            ..entry.clone()
        },
        None => ImageEntry {
            source: repository,
            selection: TagSelection::new(tags),
            destinations: Vec::new(),
            platforms: Vec::new(),
            all_platforms: false,
            immutable: None,
            location: Location::file_only("command line"),
        },
    })
}

fn first_target(
    config: &Mapping,
    entry: &ImageEntry,
    source: &Reference,
    stage: Stage,
) -> Result<Reference, ConfigError> {
    config
        .targets(entry, source, stage)
        .map_err(|e| located(entry, e))?
        .into_iter()
        .next()
        .ok_or_else(|| located(entry, format!("no {stage} target")))
}

fn located(entry: &ImageEntry, cause: impl std::fmt::Display) -> ConfigError {
    ConfigError::new(entry.location.clone(), cause).with_value(&entry.source)
}

#[cfg(test)]
mod tests;
