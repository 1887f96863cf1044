//! rules.yaml as written: a preset, explicit stages, or a preset extended by rules tried
//! before it. Every value keeps where it was written.
//!
//! Owns the file's syntax (keys, shapes, unknown keys as errors); what the rules mean,
//! their patterns, templates and presets are `rules`' (`rules::file` compiles this).

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::{ConfigError, Location};
use super::immutable::{immutable_tags, ImmutableTags};
use super::yaml::YamlFile;

/// A value with the place it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The text.
    pub value: String,
    /// Where it is (`config/rules.yaml:3:9`; `items.yml` for Ferryman's implied preset).
    pub location: Location,
}

/// rules.yaml: a preset and the stages written out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesFile {
    /// `preset:`.
    pub preset: Option<Written>,
    /// `stages.mirror`.
    pub mirror: Option<StageSyntax>,
    /// `stages.private`.
    pub private: Option<StageSyntax>,
    /// `immutable:`: the default of every images.yaml entry that sets none.
    pub immutable: Option<ImmutableTags>,
    /// `rate_floor:`: the pull budget kept back on every source registry whose auth.yaml
    /// `limits:` set none (`None`: the built-in default).
    pub rate_floor: Option<u64>,
}

/// One stage as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageSyntax {
    /// Where the stage is written.
    pub location: Location,
    /// `registry:` (host, optionally with a namespace).
    pub registry: Option<Written>,
    /// `rules:`, in order.
    pub rules: Vec<RuleSyntax>,
}

/// One rule as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSyntax {
    /// `match:` (a glob or a `/regex/`).
    pub pattern: Written,
    /// `target:` (a template).
    pub target: Written,
    /// `registry:`, overriding the stage's.
    pub registry: Option<Written>,
}

impl RulesFile {
    /// Only the preset `name`, as a Ferryman items.yml implies (`preset: ferryman`).
    pub(crate) fn preset(name: &str, location: Location) -> RulesFile {
        RulesFile {
            preset: Some(Written {
                value: name.to_owned(),
                location,
            }),
            ..RulesFile::default()
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    preset: Option<Spanned<String>>,
    stages: Option<RawStages>,
    immutable: Option<Spanned<String>>,
    rate_floor: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStages {
    mirror: Option<Spanned<RawStage>>,
    private: Option<Spanned<RawStage>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    registry: Option<Spanned<String>>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    pattern: Spanned<String>,
    target: Spanned<String>,
    registry: Option<Spanned<String>>,
}

/// Parses rules.yaml; an empty file configures no stage.
pub(crate) fn parse(file: &YamlFile) -> Result<RulesFile, ConfigError> {
    let Some(raw) = file.parse::<RawRules>()? else {
        return Ok(RulesFile::default());
    };
    let written = |spanned: &Spanned<String>| Written {
        value: spanned.value.clone(),
        location: file.at(spanned),
    };
    let stage = |raw: Spanned<RawStage>| StageSyntax {
        location: file.at(&raw),
        registry: raw.value.registry.as_ref().map(written),
        rules: raw
            .value
            .rules
            .iter()
            .map(|rule| RuleSyntax {
                pattern: written(&rule.pattern),
                target: written(&rule.target),
                registry: rule.registry.as_ref().map(written),
            })
            .collect(),
    };
    let (mirror, private) = match raw.stages {
        Some(stages) => (stages.mirror, stages.private),
        None => (None, None),
    };
    let immutable = raw
        .immutable
        .as_ref()
        .map(|p| immutable_tags(file, p))
        .transpose()?;
    let rate_floor = raw
        .rate_floor
        .as_ref()
        .map(|v| parse_rate_floor(&v.value).map_err(|m| file.error(v, m).with_value(&v.value)))
        .transpose()?;
    Ok(RulesFile {
        preset: raw.preset.as_ref().map(written),
        mirror: mirror.map(stage),
        private: private.map(stage),
        immutable,
        rate_floor,
    })
}

/// A `rate_floor` (rules.yaml or auth.yaml `limits:`): a whole number of pulls, 0 = no floor.
pub(crate) fn parse_rate_floor(text: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .map_err(|_| "rate_floor must be a whole number of pulls (0 keeps none back)".to_owned())
}
