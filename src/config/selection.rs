//! Tag selections of images.yaml: which tags of a source repository an entry means.
//!
//! Owns the key grammar (`repo`, `repo:t1,t2`, `repo:/regex/`, `repo@sha256:…`) and the
//! filters (`semver`, `exclude`, `limit`, `order`); listing tags is `select`'s job, not this.

use std::fmt;

use regex::Regex;
use semver::{Version, VersionReq};

use super::error::regex_error;
use crate::reference::parse_reference;
use crate::reference::Reference;

/// Which tags the key of an entry names.
#[derive(Debug, Clone)]
pub enum TagSet {
    /// No tag in the key: every tag the registry lists (image-syncer semantics).
    All,
    /// `repo:t1,t2`: exactly these tags.
    List(Vec<String>),
    /// `repo:/regex/` or `tags: regex`: listed tags the regex finds (unanchored, as
    /// image-syncer does; write `^…$` to anchor).
    Regex(Regex),
    /// `repo@sha256:…` (optionally `repo:tag@sha256:…`): one manifest, pinned.
    Digest {
        /// The pinned digest.
        digest: String,
        /// The tag written before it, if any.
        tag: Option<String>,
    },
}

impl PartialEq for TagSet {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (TagSet::All, TagSet::All) => true,
            (TagSet::List(a), TagSet::List(b)) => a == b,
            (TagSet::Regex(a), TagSet::Regex(b)) => a.as_str() == b.as_str(),
            (TagSet::Digest { digest: a, tag: s }, TagSet::Digest { digest: b, tag: t }) => {
                a == b && s == t
            }
            _ => false,
        }
    }
}

/// How `limit` picks the newest tags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagOrder {
    /// Highest semantic version first (tags that are no version come last).
    #[default]
    Semver,
    /// Newest image creation time first (Ferryman's order).
    Created,
}

/// An entry's tag selection: the tag set, then the filters that `select` applies in order
/// (`semver`, `exclude`), then `limit` newest by `order`.
#[derive(Debug, Clone, PartialEq)]
pub struct TagSelection {
    tags: TagSet,
    semver: Option<VersionReq>,
    exclude: Vec<ExcludeRegex>,
    limit: Option<u32>,
    order: TagOrder,
}

#[derive(Debug, Clone)]
struct ExcludeRegex(Regex);

impl PartialEq for ExcludeRegex {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl TagSelection {
    /// Exactly the tags in `set`, no filters.
    pub fn new(tags: TagSet) -> TagSelection {
        TagSelection {
            tags,
            semver: None,
            exclude: Vec::new(),
            limit: None,
            order: TagOrder::default(),
        }
    }

    /// Adds filters; they only make sense on a listing (`All` or `Regex`).
    pub(crate) fn with_filters(
        mut self,
        semver: Option<VersionReq>,
        exclude: Vec<Regex>,
        limit: Option<u32>,
        order: TagOrder,
    ) -> Result<TagSelection, String> {
        let listing = matches!(self.tags, TagSet::All | TagSet::Regex(_));
        let filtered = semver.is_some() || !exclude.is_empty() || limit.is_some();
        if filtered && !listing {
            return Err(
                "semver, exclude and limit filter listed tags; the key names its tags explicitly"
                    .to_owned(),
            );
        }
        if limit == Some(0) {
            return Err("limit must be at least 1".to_owned());
        }
        self.semver = semver;
        self.exclude = exclude.into_iter().map(ExcludeRegex).collect();
        self.limit = limit;
        // Without a limit the order means nothing; keep the default so equal selections compare equal.
        self.order = if limit.is_some() {
            order
        } else {
            TagOrder::default()
        };
        Ok(self)
    }

    /// The tag set the key names.
    pub fn tags(&self) -> &TagSet {
        &self.tags
    }

    /// The semver range listed tags must satisfy (cargo syntax; `v` prefixes allowed).
    pub fn semver(&self) -> Option<&VersionReq> {
        self.semver.as_ref()
    }

    /// Regexes (unanchored) whose matches are dropped.
    pub fn exclude(&self) -> impl Iterator<Item = &Regex> {
        self.exclude.iter().map(|e| &e.0)
    }

    /// Keep only the newest N tags, by [`TagSelection::order`].
    pub fn limit(&self) -> Option<u32> {
        self.limit
    }

    /// What "newest" means for `limit`.
    pub fn order(&self) -> TagOrder {
        self.order
    }

    /// The explicit tags, when the key lists them (collisions need disjoint explicit lists).
    pub fn explicit_tags(&self) -> Option<&[String]> {
        match &self.tags {
            TagSet::List(tags) => Some(tags),
            _ => None,
        }
    }

    /// True when `tag` passes the tag set, `semver` and `exclude` (not `limit`, which needs
    /// the whole listing).
    pub fn admits(&self, tag: &str) -> bool {
        let in_set = match &self.tags {
            TagSet::All => true,
            TagSet::List(tags) => tags.iter().any(|t| t == tag),
            TagSet::Regex(regex) => regex.is_match(tag),
            TagSet::Digest { tag: pinned, .. } => pinned.as_deref() == Some(tag),
        };
        in_set
            && self
                .semver
                .as_ref()
                .is_none_or(|req| tag_version(tag).is_some_and(|v| req.matches(&v)))
            && !self.exclude().any(|re| re.is_match(tag))
    }

    /// The key suffix that writes this tag set back (`:a,b`, `:/re/`, `@sha256:…`, or none).
    pub(crate) fn key_suffix(&self) -> String {
        match &self.tags {
            TagSet::All => String::new(),
            TagSet::List(tags) => format!(":{}", tags.join(",")),
            TagSet::Regex(regex) => format!(":/{}/", regex.as_str()),
            TagSet::Digest {
                digest,
                tag: Some(tag),
            } => format!(":{tag}@{digest}"),
            TagSet::Digest { digest, tag: None } => format!("@{digest}"),
        }
    }
}

impl fmt::Display for TagSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tags {
            TagSet::All => f.write_str("all tags")?,
            _ => f.write_str(self.key_suffix().trim_start_matches(':'))?,
        }
        if let Some(req) = &self.semver {
            write!(f, " semver {req}")?;
        }
        for re in self.exclude() {
            write!(f, " exclude /{}/", re.as_str())?;
        }
        if let Some(limit) = self.limit {
            let order = match self.order {
                TagOrder::Semver => "semver",
                TagOrder::Created => "creation time",
            };
            write!(f, " newest {limit} by {order}")?;
        }
        Ok(())
    }
}

/// The version a tag stands for, leniently: `v1.28.0` → 1.28.0, `1.25` → 1.25.0,
/// `1.25-alpine` → 1.25.0-alpine (a pre-release, which ranges skip unless they name one).
pub fn tag_version(tag: &str) -> Option<Version> {
    let text = tag.strip_prefix('v').unwrap_or(tag);
    if let Ok(version) = Version::parse(text) {
        return Some(version);
    }
    let split = text.find(['-', '+']).unwrap_or(text.len());
    let (core, rest) = text.split_at(split);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut padded = parts.join(".");
    for _ in parts.len()..3 {
        padded.push_str(".0");
    }
    Version::parse(&format!("{padded}{rest}")).ok()
}

/// Splits an images.yaml key into the repository (no tag, no digest) and its tag set. A
/// key is taken exactly as written: whitespace at its ends or a control character (a
/// quoted `"nginx:1.25\n"`) is an error, never trimmed away.
pub fn parse_key(key: &str) -> Result<(Reference, TagSet), String> {
    if key.trim() != key || key.chars().any(char::is_control) {
        return Err(
            "whitespace or a control character at the ends of the key (keys are not trimmed)"
                .to_owned(),
        );
    }
    // `repo:/regex/`: the first ":/" (a registry port is ":digits/", never ":/").
    if let Some(i) = key.find(":/").filter(|_| key.ends_with('/')) {
        let body = key.get(i + 2..key.len() - 1).unwrap_or_default();
        if body.is_empty() {
            return Err("empty tag regex".to_owned());
        }
        let regex = Regex::new(body).map_err(|e| regex_error(&e))?;
        return Ok((parse_reference(&key[..i])?, TagSet::Regex(regex)));
    }
    if key.contains('@') {
        let pinned = parse_reference(key)?;
        let digest = pinned.digest().unwrap_or_default().to_owned();
        let tag = pinned.tag().map(str::to_owned);
        return Ok((pinned.without_tag(), TagSet::Digest { digest, tag }));
    }
    let last_slash = key.rfind('/').map_or(0, |i| i + 1);
    let Some(colon) = key[last_slash..].find(':').map(|i| last_slash + i) else {
        return Ok((parse_reference(key)?, TagSet::All));
    };
    let base = parse_reference(&key[..colon])?;
    let mut tags: Vec<String> = Vec::new();
    for tag in key[colon + 1..].split(',').map(str::trim) {
        base.with_tag(tag).map_err(|e| e.kind().to_string())?;
        if tags.iter().any(|t| t == tag) {
            return Err(format!("tag {tag} listed twice"));
        }
        tags.push(tag.to_owned());
    }
    Ok((base, TagSet::List(tags)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_forms() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let cases: Vec<(String, &str, String)> = vec![
            ("nginx".into(), "docker.io/library/nginx", "".into()),
            (
                "nginx:1.25, 1.26".into(),
                "docker.io/library/nginx",
                ":1.25,1.26".into(),
            ),
            (
                "localhost:5000/x:/^v1\\.[0-9]+$/".into(),
                "localhost:5000/x",
                ":/^v1\\.[0-9]+$/".into(),
            ),
            ("quay.io/a/b:/a/b/".into(), "quay.io/a/b", ":/a/b/".into()),
            (format!("ghcr.io/a/b@{d}"), "ghcr.io/a/b", format!("@{d}")),
            (
                format!("nginx:1.25@{d}"),
                "docker.io/library/nginx",
                format!(":1.25@{d}"),
            ),
            ("localhost:5000/x".into(), "localhost:5000/x", "".into()),
        ];
        for (key, repo, suffix) in cases {
            let (r, set) = parse_key(&key).unwrap_or_else(|e| panic!("{key}: {e}"));
            assert_eq!(r.to_string(), repo, "{key}");
            assert_eq!(TagSelection::new(set).key_suffix(), suffix, "{key}");
        }
        for (key, says) in [
            ("nginx:a,,b", "invalid tag"),
            ("nginx:1,1", "listed twice"),
            ("nginx:/(/", "invalid regex"),
            ("nginx://", "empty tag regex"),
            ("nginx:/", "empty tag regex"),
            ("Nginx:1", "lowercase"),
            ("nginx@sha256:12", "invalid digest"),
            ("nginx:1.25 ", "keys are not trimmed"),
            (" nginx:1.25", "keys are not trimmed"),
            ("nginx:1.25\n", "keys are not trimmed"),
            ("nginx:1.25\t", "keys are not trimmed"),
            ("nginx@md5:abcdef", "unsupported digest algorithm"),
            ("127.0.0.1:0/x:1", "invalid registry port"),
            ("127.0.0.1:5402", "names a registry but no repository"),
        ] {
            let e = parse_key(key).expect_err(key);
            assert!(e.contains(says), "{key}: {e}");
        }
    }

    #[test]
    fn admits_applies_set_semver_and_exclude() {
        let regex = Regex::new("^v1\\.").expect("valid");
        let sel = TagSelection::new(TagSet::Regex(regex))
            .with_filters(
                Some(VersionReq::parse(">=1.28, <1.30").expect("valid")),
                vec![Regex::new("rc").expect("valid")],
                Some(3),
                TagOrder::Semver,
            )
            .expect("filters on a listing");
        for (tag, expected) in [
            ("v1.28.0", true),
            ("v1.29.4", true),
            ("v1.30.0", false),
            ("v1.28.0-rc.1", false),
            ("1.28.0", false),
            ("latest", false),
        ] {
            assert_eq!(sel.admits(tag), expected, "{tag}");
        }
        let explicit = TagSelection::new(TagSet::List(vec!["1".into()]));
        assert!(explicit
            .clone()
            .with_filters(None, vec![], Some(2), TagOrder::Semver)
            .is_err());
        assert!(TagSelection::new(TagSet::All)
            .with_filters(None, vec![], Some(0), TagOrder::Created)
            .is_err());
    }

    #[test]
    fn lenient_versions() {
        let cases = [
            ("v1.28.0", Some("1.28.0")),
            ("1.25", Some("1.25.0")),
            ("7", Some("7.0.0")),
            ("1.25-alpine", Some("1.25.0-alpine")),
            ("3.5.9-0", Some("3.5.9-0")),
            ("latest", None),
            ("1.2.3.4", None),
            ("v", None),
        ];
        for (tag, expected) in cases {
            assert_eq!(
                tag_version(tag).map(|v| v.to_string()).as_deref(),
                expected,
                "{tag}"
            );
        }
    }
}
