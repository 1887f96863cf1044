//! [`Mapping`]: a loaded configuration with its rules compiled and checked, the one value
//! the commands plan, map and generate from.
//!
//! Owns where an entry's images go in each stage, and the load-time checks over the whole
//! configuration (every entry maps, no two sources share a target). Pure: no I/O.

use std::ops::Deref;

use super::{collision, file, MapError, RuleSet, Stage};
use crate::config::{Config, ConfigError, ImageEntry, ImmutableTags};
use crate::reference::Reference;

/// A configuration and the rules its rules.yaml (or Ferryman preset) describes.
#[derive(Debug, Clone)]
pub struct Mapping {
    config: Config,
    rules: RuleSet,
}

impl Mapping {
    /// Compiles the rules of `config` and checks the whole: every entry and extension
    /// image maps in every configured stage, and no two sources share a target.
    pub fn new(config: Config) -> Result<Mapping, ConfigError> {
        let rules = file::compile(config.rules_file())?;
        let mapping = Mapping { config, rules };
        collision::check(&mapping)?;
        Ok(mapping)
    }

    /// [`Config::load`] and [`Mapping::new`].
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Mapping, ConfigError> {
        Mapping::new(Config::load(path)?)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The rules of both stages.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The tags of `entry` declared immutable: its own `immutable:`, else rules.yaml's.
    pub fn immutable<'a>(&'a self, entry: &'a ImageEntry) -> Option<&'a ImmutableTags> {
        entry
            .immutable
            .as_ref()
            .or(self.config.rules_file().immutable.as_ref())
    }

    /// Where `source` (the entry's repository with a concrete tag or digest, or without
    /// both for the repository itself) goes in `stage`. Mirror: the entry's explicit
    /// destinations, else the rules. Private: always the rules applied to the original source.
    pub fn targets(
        &self,
        entry: &ImageEntry,
        source: &Reference,
        stage: Stage,
    ) -> Result<Vec<Reference>, MapError> {
        if stage == Stage::Private || entry.destinations.is_empty() {
            return Ok(vec![self.rules.target(source, stage)?]);
        }
        Ok(entry
            .destinations
            .iter()
            .map(|dest| {
                if dest.tag().is_some() {
                    return dest.clone();
                }
                let tagged = match source.tag() {
                    Some(tag) => dest.with_tag(tag).unwrap_or_else(|_| dest.clone()),
                    None => dest.clone(),
                };
                match source.digest() {
                    Some(digest) => tagged.with_digest(digest).unwrap_or(tagged),
                    None => tagged,
                }
            })
            .collect())
    }
}

/// A mapping is its configuration plus rules: everything a `Config` answers, it answers.
impl Deref for Mapping {
    type Target = Config;

    fn deref(&self) -> &Config {
        &self.config
    }
}
