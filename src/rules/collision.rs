//! The target check run at load time: every entry and extension image maps in every
//! configured stage, and no two source repositories share a target repository.
//!
//! Pure: reads a [`Config`](crate::config::Config), writes nothing.

use std::collections::HashMap;

use super::Mapping;
use crate::config::{ConfigError, ImageEntry, Location};
use crate::reference::Reference;
use crate::rules::Stage;

/// One source repository landing in one target repository.
struct Claim {
    source: String,
    /// The target tags, when they are an explicit list (only those can share a target).
    tags: Option<Vec<String>>,
    location: Location,
}

/// A target repository of an entry, with its explicit target tags (if any).
struct Landing {
    repository: Reference,
    tags: Option<Vec<String>>,
}

/// Checks every stage the configuration uses. A collision is allowed only when both sources
/// name explicit, disjoint tag lists; the error names both sources and their places.
pub fn check(config: &Mapping) -> Result<(), ConfigError> {
    for stage in Stage::ALL {
        // Without a private stage there is no hop 2 to check; without a mirror stage the
        // entries need explicit destinations, and mapping one without reports it.
        if stage == Stage::Private && config.rules().stage(stage).is_none() {
            continue;
        }
        let mut claims: HashMap<String, Vec<Claim>> = HashMap::new();
        for entry in config.images() {
            // Hop 2 reads the mirror: two entries the mirror already merged are one source.
            let source = match stage {
                Stage::Mirror => entry.source.to_string(),
                Stage::Private => hop2_source(config, entry)?,
            };
            for Landing { repository, tags } in entry_targets(config, entry, stage)? {
                let source = source.clone();
                claim(
                    &mut claims,
                    stage,
                    repository,
                    source,
                    tags,
                    &entry.location,
                )?;
            }
        }
        if stage == Stage::Private {
            for carried in config.carried() {
                let entry = &carried.entry;
                for Landing { repository, tags } in entry_targets(config, entry, Stage::Mirror)? {
                    claim(
                        &mut claims,
                        stage,
                        repository,
                        entry.source.to_string(),
                        tags,
                        &entry.location,
                    )?;
                }
            }
        }
        for build in config.builds() {
            for (_, ext) in build.images() {
                let target = config
                    .rules()
                    .target(&ext, stage)
                    .map_err(|e| ConfigError::new(build.location.clone(), e))?;
                let tags = target.tag().map(|t| vec![t.to_owned()]);
                let source = match stage {
                    Stage::Mirror => build.base.to_string(),
                    // Hop 2 reads the extension where hop 1 pushed it.
                    Stage::Private => match config.rules().target(&ext, Stage::Mirror) {
                        Ok(mirror) => mirror.without_tag().to_string(),
                        Err(_) => build.base.to_string(),
                    },
                };
                claim(&mut claims, stage, target, source, tags, &build.location)?;
            }
        }
    }
    Ok(())
}

/// The repository hop 2 reads an entry from: its (first) mirror target.
fn hop2_source(config: &Mapping, entry: &ImageEntry) -> Result<String, ConfigError> {
    let mirror = config
        .targets(entry, &entry.source, Stage::Mirror)
        .map_err(|e| ConfigError::new(entry.location.clone(), e))?;
    Ok(mirror
        .first()
        .map(|m| m.without_tag().to_string())
        .unwrap_or_else(|| entry.source.to_string()))
}

/// The target repositories of an entry in `stage`.
fn entry_targets(
    config: &Mapping,
    entry: &ImageEntry,
    stage: Stage,
) -> Result<Vec<Landing>, ConfigError> {
    let map = |source: &Reference| {
        config
            .targets(entry, source, stage)
            .map_err(|e| ConfigError::new(entry.location.clone(), e))
    };
    let Some(tags) = entry.selection.explicit_tags() else {
        let landings = map(&entry.source)?.into_iter().map(|repository| Landing {
            repository,
            tags: None,
        });
        return Ok(landings.collect());
    };
    let mut out: Vec<Landing> = Vec::new();
    for tag in tags {
        let source = entry
            .source
            .with_tag(tag)
            .map_err(|e| ConfigError::new(entry.location.clone(), e))?;
        for target in map(&source)? {
            let repo = target.without_tag();
            let target_tag = target.tag().unwrap_or_default().to_owned();
            match out.iter_mut().find(|l| l.repository == repo) {
                Some(Landing {
                    tags: Some(list), ..
                }) => list.push(target_tag),
                _ => out.push(Landing {
                    repository: repo,
                    tags: Some(vec![target_tag]),
                }),
            }
        }
    }
    Ok(out)
}

fn claim(
    claims: &mut HashMap<String, Vec<Claim>>,
    stage: Stage,
    target: Reference,
    source: String,
    tags: Option<Vec<String>>,
    location: &Location,
) -> Result<(), ConfigError> {
    let repo = target.repository_name();
    let others = claims.entry(repo.clone()).or_default();
    for other in others.iter().filter(|o| o.source != source) {
        let disjoint = match (&tags, &other.tags) {
            (Some(mine), Some(theirs)) => !mine.iter().any(|t| theirs.contains(t)),
            _ => false,
        };
        if !disjoint {
            let message = format!(
                "{source} and {} ({}) both map to {repo} in stage {stage}",
                other.source,
                other.location.file_line()
            );
            return Err(ConfigError::new(location.clone(), message));
        }
    }
    others.push(Claim {
        source,
        tags,
        location: location.clone(),
    });
    Ok(())
}
