//! Mapping rules: which mirror and private reference a public source image gets.
//!
//! Owns stages, ordered first-match rules, presets, the collision check and the hop-2
//! expansion. Pure functions only: no I/O, no registry access.

pub mod collision;
mod file;
pub mod hop2;
mod mapping;
pub mod pattern;
pub mod presets;
pub mod template;

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::reference::{parse_reference, Reference};
pub use mapping::Mapping;
pub use pattern::Pattern;
pub use template::Template;

/// Which hop a target is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Hop 1: public registry → mirror (e.g. Aliyun), run where the internet is reachable.
    Mirror,
    /// The private registry; the hop-2 job copies the mirror target there.
    Private,
}

impl Stage {
    /// Both stages, in hop order.
    pub const ALL: [Stage; 2] = [Stage::Mirror, Stage::Private];
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Mirror => "mirror",
            Stage::Private => "private",
        })
    }
}

impl FromStr for Stage {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "mirror" => Ok(Stage::Mirror),
            "private" => Ok(Stage::Private),
            other => Err(format!(
                "unknown stage {other:?}, expected mirror or private"
            )),
        }
    }
}

/// Why a source has no target in a stage.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MapError {
    /// The rules define nothing for this stage.
    #[error("no {stage} stage is configured (rules.yaml: preset or stages.{stage})")]
    NoStage {
        /// The stage asked for.
        stage: Stage,
    },
    /// No rule of the stage matches.
    #[error("no {stage} rule matches {image}")]
    NoRule {
        /// The stage asked for.
        stage: Stage,
        /// The source reference.
        image: String,
    },
    /// The rule that matched renders something that is not a valid reference.
    #[error("{stage} rule {rule} maps {image} to an invalid reference {target:?}: {reason}")]
    InvalidTarget {
        /// The stage asked for.
        stage: Stage,
        /// The matching rule: its pattern and where it was defined.
        rule: String,
        /// The source reference.
        image: String,
        /// What the template rendered.
        target: String,
        /// Why it is not a reference.
        reason: String,
    },
}

/// One rule: a pattern on the source, a target template, optionally its own registry.
#[derive(Debug, Clone)]
pub struct Rule {
    pattern: Pattern,
    target: Template,
    registry: Option<String>,
    origin: String,
}

impl Rule {
    /// A rule from its parts; `origin` names where it was defined (`config/rules.yaml:7:9`,
    /// `preset nstl`). The registry override comes from [`normalize_registry`](crate::reference::normalize_registry).
    pub fn new(
        pattern: Pattern,
        target: Template,
        registry: Option<String>,
        origin: String,
    ) -> Rule {
        Rule {
            pattern,
            target,
            registry,
            origin,
        }
    }

    /// The rule's pattern.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// The rule's target template.
    pub fn target(&self) -> &Template {
        &self.target
    }

    /// Renders the target for `source` under `stage_registry` (unless the rule has its own).
    fn apply(
        &self,
        source: &Reference,
        stage_registry: &str,
        stage: Stage,
    ) -> Result<Reference, MapError> {
        let registry = self.registry.as_deref().unwrap_or(stage_registry);
        let (path, tag) = self.target.render(source);
        let mut text = format!("{registry}/{path}");
        if let Some(tag) = tag {
            text = format!("{text}:{tag}");
        }
        if let Some(digest) = source.digest() {
            text = format!("{text}@{digest}");
        }
        parse_reference(&text).map_err(|reason| MapError::InvalidTarget {
            stage,
            rule: format!("{:?} ({})", self.pattern.as_str(), self.origin),
            image: source.to_string(),
            target: text.clone(),
            reason,
        })
    }
}

/// The rules of one stage: the registry targets land in, and the rules in order.
#[derive(Debug, Clone)]
pub struct StageRules {
    registry: String,
    rules: Vec<Rule>,
}

impl StageRules {
    /// A stage; `registry` comes from [`normalize_registry`](crate::reference::normalize_registry).
    pub fn new(registry: String, rules: Vec<Rule>) -> StageRules {
        StageRules { registry, rules }
    }

    /// The registry (optionally with a namespace prefix) targets land in.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The rules, first match wins.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// `extra` tried before the existing rules, and the registry replaced when given.
    pub fn extended(mut self, registry: Option<String>, mut extra: Vec<Rule>) -> StageRules {
        if let Some(registry) = registry {
            self.registry = registry;
        }
        extra.append(&mut self.rules);
        self.rules = extra;
        self
    }
}

/// The rules of both stages.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    mirror: Option<StageRules>,
    private: Option<StageRules>,
}

impl RuleSet {
    /// A rule set from its stages (`None`: the stage is not configured).
    pub fn new(mirror: Option<StageRules>, private: Option<StageRules>) -> RuleSet {
        RuleSet { mirror, private }
    }

    /// The rules of a stage, if configured.
    pub fn stage(&self, stage: Stage) -> Option<&StageRules> {
        match stage {
            Stage::Mirror => self.mirror.as_ref(),
            Stage::Private => self.private.as_ref(),
        }
    }

    /// The target of `source` in `stage`: the first matching rule's template under the
    /// stage's registry. Tag and digest are kept (a rule may rewrite the tag with `:{tag}…`).
    pub fn target(&self, source: &Reference, stage: Stage) -> Result<Reference, MapError> {
        let rules = self.stage(stage).ok_or(MapError::NoStage { stage })?;
        let name = source.repository_name();
        let rule = rules
            .rules
            .iter()
            .find(|rule| rule.pattern.matches(&name))
            .ok_or_else(|| MapError::NoRule {
                stage,
                image: source.to_string(),
            })?;
        rule.apply(source, &rules.registry, stage)
    }
}

/// Checks that a template gives a valid reference for a typical source, so a bad literal
/// (`Mirror/{name}`) is reported at load time even if no image uses the rule yet.
pub fn validate_template(template: &Template, registry: &str) -> Result<(), String> {
    let probe = parse_reference("registry.example.com/team/app:1.0")?;
    let rule = Rule::new(Pattern::parse("**")?, template.clone(), None, String::new());
    match rule.apply(&probe, registry, Stage::Mirror) {
        Ok(_) => Ok(()),
        Err(MapError::InvalidTarget { target, reason, .. }) => Err(format!(
            "target gives invalid references such as {target:?}: {reason}"
        )),
        Err(other) => Err(other.to_string()),
    }
}
