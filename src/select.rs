//! Tag selection: which tags of a repository a config entry means.
//!
//! Owns the pure filters (regex, exclude, semver range, newest N by semver or by creation
//! time). It must not do I/O: the caller fetches tag lists and creation times.

use std::cmp::Reverse;

use regex::Regex;
use semver::{Version, VersionReq};

/// How "newest" is decided for `limit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// By semantic version of the tag name (tags that are not versions come last).
    #[default]
    Semver,
    /// By the image's creation time (needs the config blob of each candidate).
    Created,
}

/// Filters applied to a tag list, in this order: regex, exclude, semver range, newest N.
#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    /// Keep only tags matching this regex (anchored by the user, not by ferry).
    pub regex: Option<Regex>,
    /// Drop tags matching any of these.
    pub exclude: Vec<Regex>,
    /// Keep only tags that are versions inside this range.
    pub semver: Option<VersionReq>,
    /// Keep only the newest N.
    pub limit: Option<usize>,
    /// What "newest" means.
    pub order: Order,
}

impl TagFilter {
    /// True when the filter needs creation times (`limit` with `order: created`).
    pub fn needs_created(&self) -> bool {
        self.limit.is_some() && self.order == Order::Created
    }

    /// Applies the name filters (regex, exclude, semver); keeps the input order.
    pub fn by_name<'a>(&self, tags: &'a [String]) -> Vec<&'a str> {
        tags.iter()
            .map(String::as_str)
            .filter(|t| self.regex.as_ref().is_none_or(|r| r.is_match(t)))
            .filter(|t| !self.exclude.iter().any(|r| r.is_match(t)))
            .filter(|t| {
                self.semver
                    .as_ref()
                    .is_none_or(|req| lenient_version(t).is_some_and(|v| req.matches(&v)))
            })
            .collect()
    }

    /// Applies `limit` by semver order: the newest N, newest first. Without a limit, the
    /// tags come back sorted newest first all the same.
    pub fn newest_by_semver<'a>(&self, tags: Vec<&'a str>) -> Vec<&'a str> {
        let mut keyed: Vec<(Option<Version>, &str)> =
            tags.into_iter().map(|t| (lenient_version(t), t)).collect();
        // Versions newest first; non-versions after them, by name, so the order is total.
        keyed.sort_by(|(va, ta), (vb, tb)| match (va, vb) {
            (Some(a), Some(b)) => b.cmp(a).then_with(|| ta.cmp(tb)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => ta.cmp(tb),
        });
        let limit = self.limit.unwrap_or(usize::MAX);
        keyed.into_iter().take(limit).map(|(_, t)| t).collect()
    }

    /// Applies `limit` by creation time: `created` holds (tag, unix seconds); newest first.
    pub fn newest_by_created<'a>(&self, mut created: Vec<(&'a str, i64)>) -> Vec<&'a str> {
        created.sort_by_key(|&(tag, at)| (Reverse(at), tag));
        let limit = self.limit.unwrap_or(usize::MAX);
        created.into_iter().take(limit).map(|(t, _)| t).collect()
    }
}

/// Reads a tag as a version the way people write them: `v1.28.0`, `1.25` (= 1.25.0),
/// `8` (= 8.0.0), `1.25.3-alpine` (a pre-release, so outside plain ranges). Else `None`.
pub fn lenient_version(tag: &str) -> Option<Version> {
    let text = tag.strip_prefix('v').unwrap_or(tag);
    if let Ok(v) = Version::parse(text) {
        return Some(v);
    }
    let (core, rest) = match text.find(['-', '+']) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut padded: Vec<&str> = parts;
    while padded.len() < 3 {
        padded.push("0");
    }
    Version::parse(&format!("{}{rest}", padded.join("."))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lenient_versions() {
        let cases = [
            ("1.25.3", Some("1.25.3")),
            ("v1.28.0", Some("1.28.0")),
            ("1.25", Some("1.25.0")),
            ("8", Some("8.0.0")),
            ("1.25.3-alpine", Some("1.25.3-alpine")),
            ("1.25-alpine", Some("1.25.0-alpine")),
            ("latest", None),
            ("stable-perl", None),
            ("1.2.3.4", None),
            ("1..2", None),
            ("sha-abc123", None),
        ];
        for (tag, expected) in cases {
            assert_eq!(
                lenient_version(tag).map(|v| v.to_string()).as_deref(),
                expected,
                "{tag}"
            );
        }
    }

    #[test]
    fn name_filters_combine() {
        let all = tags(&[
            "1.24.0",
            "1.25.3",
            "1.25.3-alpine",
            "1.26.0",
            "latest",
            "2.0.0-rc1",
        ]);
        let filter = TagFilter {
            regex: Some(Regex::new(r"^1\.").expect("regex")),
            exclude: vec![Regex::new("alpine").expect("regex")],
            ..TagFilter::default()
        };
        assert_eq!(filter.by_name(&all), vec!["1.24.0", "1.25.3", "1.26.0"]);
        let ranged = TagFilter {
            semver: Some(VersionReq::parse(">=1.25, <2").expect("range")),
            ..TagFilter::default()
        };
        assert_eq!(
            ranged.by_name(&all),
            vec!["1.25.3", "1.26.0"],
            "pre-releases are out"
        );
    }

    #[test]
    fn newest_by_semver_sorts_versions_first() {
        let all = tags(&["1.9", "1.10", "latest", "v1.10.1", "alpine", "2"]);
        let filter = TagFilter {
            limit: Some(3),
            ..TagFilter::default()
        };
        let names = filter.by_name(&all);
        assert_eq!(
            filter.newest_by_semver(names.clone()),
            vec!["2", "v1.10.1", "1.10"]
        );
        let unlimited = TagFilter::default();
        assert_eq!(
            unlimited.newest_by_semver(names),
            vec!["2", "v1.10.1", "1.10", "1.9", "alpine", "latest"]
        );
    }

    #[test]
    fn newest_by_created_breaks_ties_by_name() {
        let filter = TagFilter {
            limit: Some(2),
            order: Order::Created,
            ..TagFilter::default()
        };
        assert!(filter.needs_created());
        let created = vec![("a", 10), ("c", 30), ("b", 30), ("d", 20)];
        assert_eq!(filter.newest_by_created(created), vec!["b", "c"]);
    }
}
