//! `immutable: REGEX` (an images.yaml entry, or rules.yaml's default): the tags a user
//! declares fixed once pushed. Owns the pattern and its located load error; what a job
//! with such a tag costs is `decide`'s to say.

use regex::Regex;
use serde_saphyr::Spanned;

use super::error::{regex_error, ConfigError};
use super::yaml::YamlFile;

/// `immutable: REGEX`: the tags a user declares never to change once pushed (release
/// versions), so a target that has one needs no look at the source (SPEC section 12).
#[derive(Debug, Clone)]
pub struct ImmutableTags(Regex);

impl ImmutableTags {
    /// The pattern as a regex; the error is one line for a located config error.
    pub fn new(pattern: &str) -> Result<ImmutableTags, String> {
        if pattern.trim().is_empty() {
            return Err(
                "an empty pattern would make every tag immutable (write '.*' if that is meant)"
                    .into(),
            );
        }
        Regex::new(pattern)
            .map(ImmutableTags)
            .map_err(|e| regex_error(&e))
    }

    /// True when `tag` matches (an unanchored regex, as `tags:` is).
    pub fn matches(&self, tag: &str) -> bool {
        self.0.is_match(tag)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for ImmutableTags {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ImmutableTags {}

/// An `immutable:` pattern, or the located error of a bad regex.
pub(crate) fn immutable_tags(
    file: &YamlFile,
    pattern: &Spanned<String>,
) -> Result<ImmutableTags, ConfigError> {
    ImmutableTags::new(&pattern.value)
        .map_err(|m| file.error(pattern, m).with_value(&pattern.value))
}
