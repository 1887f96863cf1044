//! rules.yaml: a preset, explicit stages, or a preset extended by rules tried before it.
//!
//! Owns the file format and turns it into a [`RuleSet`]; what the rules mean is `rules`'.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::ConfigError;
use super::yaml::YamlFile;
use crate::rules::presets::{preset, PRESETS};
use crate::rules::{
    normalize_registry, validate_template, Pattern, Rule, RuleSet, StageRules, Template,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    preset: Option<Spanned<String>>,
    stages: Option<RawStages>,
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
pub(crate) fn parse(file: &YamlFile) -> Result<RuleSet, ConfigError> {
    let Some(raw) = file.parse::<RawRules>()? else {
        return Ok(RuleSet::default());
    };
    let base = match &raw.preset {
        Some(name) => preset(&name.value).ok_or_else(|| {
            file.error(
                name,
                format!("unknown preset, expected one of {}", PRESETS.join(", ")),
            )
            .with_value(&name.value)
        })?,
        None => RuleSet::default(),
    };
    let (mirror, private) = match raw.stages {
        Some(stages) => (stages.mirror, stages.private),
        None => (None, None),
    };
    let mirror = stage(
        file,
        base.stage(crate::rules::Stage::Mirror).cloned(),
        mirror,
    )?;
    let private = stage(
        file,
        base.stage(crate::rules::Stage::Private).cloned(),
        private,
    )?;
    Ok(RuleSet::new(mirror, private))
}

/// One stage: the preset's (if any) with the file's rules in front and its registry on top.
fn stage(
    file: &YamlFile,
    base: Option<StageRules>,
    raw: Option<Spanned<RawStage>>,
) -> Result<Option<StageRules>, ConfigError> {
    let Some(raw) = raw else { return Ok(base) };
    let registry = match &raw.value.registry {
        Some(registry) => Some(normalize_registry(&registry.value).map_err(|m| {
            file.error(registry, format!("invalid registry: {m}"))
                .with_value(&registry.value)
        })?),
        None => None,
    };
    let stage_registry = match (&registry, &base) {
        (Some(registry), _) => registry.clone(),
        (None, Some(base)) => base.registry().to_owned(),
        (None, None) => {
            return Err(file.error(&raw, "stage needs a registry (no preset gives one)"))
        }
    };
    let mut rules = Vec::new();
    for rule in raw.value.rules {
        rules.push(self::rule(file, &stage_registry, rule)?);
    }
    Ok(Some(match base {
        Some(base) => base.extended(registry, rules),
        None => StageRules::new(stage_registry, rules),
    }))
}

fn rule(file: &YamlFile, stage_registry: &str, raw: RawRule) -> Result<Rule, ConfigError> {
    let pattern = Pattern::parse(&raw.pattern.value)
        .map_err(|m| file.error(&raw.pattern, m).with_value(&raw.pattern.value))?;
    let registry = match &raw.registry {
        Some(registry) => Some(normalize_registry(&registry.value).map_err(|m| {
            file.error(registry, format!("invalid registry: {m}"))
                .with_value(&registry.value)
        })?),
        None => None,
    };
    let target = Template::parse(&raw.target.value)
        .map_err(|m| file.error(&raw.target, m).with_value(&raw.target.value))?;
    validate_template(&target, registry.as_deref().unwrap_or(stage_registry))
        .map_err(|m| file.error(&raw.target, m).with_value(&raw.target.value))?;
    Ok(Rule::new(
        pattern,
        target,
        registry,
        file.at(&raw.pattern).to_string(),
    ))
}
