//! rules.yaml's syntax (`config::RulesFile`) compiled into a [`RuleSet`]: the preset, the
//! stages' registries, every pattern and template checked where it was written.
//!
//! Owns what rules.yaml means; its syntax is `config`'s. Pure: no I/O.

use super::presets::{preset, PRESETS};
use super::{validate_template, Pattern, Rule, RuleSet, Stage, StageRules, Template};
use crate::config::rules::{RuleSyntax, RulesFile, StageSyntax, Written};
use crate::config::ConfigError;
use crate::reference::normalize_registry;

/// The rule set rules.yaml describes: a preset's stages with the file's rules in front and
/// its registries on top, or the file's stages alone.
pub fn compile(file: &RulesFile) -> Result<RuleSet, ConfigError> {
    let base = match &file.preset {
        Some(name) => preset(&name.value).ok_or_else(|| {
            let message = format!("unknown preset, expected one of {}", PRESETS.join(", "));
            error(name, message)
        })?,
        None => RuleSet::default(),
    };
    let mirror = stage(base.stage(Stage::Mirror).cloned(), file.mirror.as_ref())?;
    let private = stage(base.stage(Stage::Private).cloned(), file.private.as_ref())?;
    Ok(RuleSet::new(mirror, private))
}

fn error(at: &Written, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::new(at.location.clone(), message).with_value(&at.value)
}

fn registry(written: &Written) -> Result<String, ConfigError> {
    normalize_registry(&written.value).map_err(|m| error(written, format!("invalid registry: {m}")))
}

/// One stage: the preset's (if any) with the file's rules in front and its registry on top.
fn stage(
    base: Option<StageRules>,
    syntax: Option<&StageSyntax>,
) -> Result<Option<StageRules>, ConfigError> {
    let Some(syntax) = syntax else {
        return Ok(base);
    };
    let own = syntax.registry.as_ref().map(registry).transpose()?;
    let stage_registry = match (&own, &base) {
        (Some(registry), _) => registry.clone(),
        (None, Some(base)) => base.registry().to_owned(),
        (None, None) => {
            let message = "stage needs a registry (no preset gives one)";
            return Err(ConfigError::new(syntax.location.clone(), message));
        }
    };
    let rules = syntax
        .rules
        .iter()
        .map(|rule| self::rule(&stage_registry, rule))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(match base {
        Some(base) => base.extended(own, rules),
        None => StageRules::new(stage_registry, rules),
    }))
}

fn rule(stage_registry: &str, syntax: &RuleSyntax) -> Result<Rule, ConfigError> {
    let pattern = Pattern::parse(&syntax.pattern.value).map_err(|m| error(&syntax.pattern, m))?;
    let own = syntax.registry.as_ref().map(registry).transpose()?;
    let target = Template::parse(&syntax.target.value).map_err(|m| error(&syntax.target, m))?;
    validate_template(&target, own.as_deref().unwrap_or(stage_registry))
        .map_err(|m| error(&syntax.target, m))?;
    Ok(Rule::new(
        pattern,
        target,
        own,
        syntax.pattern.location.to_string(),
    ))
}
