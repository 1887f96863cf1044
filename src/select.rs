//! Tag selection: which tags of a repository an images.yaml entry means, newest first.
//!
//! Owns `limit` (newest N by semver or by creation time) on top of
//! [`TagSelection::admits`]. It must not do I/O: the caller lists tags and reads
//! creation times.

use std::cmp::{Ordering, Reverse};

use semver::Version;

use crate::config::selection::{tag_version, TagOrder, TagSelection, TagSet};
use crate::reference::is_valid_tag;

/// The prefix of the tags the docker transport pushes platform images under before their
/// manifest list takes the real tag (`ferry-staging-linux-arm64`). ferry never selects
/// such a tag from a listing, so they never travel on.
pub const STAGING_TAG: &str = "ferry-staging";

/// True when `selection` needs the registry's tag list (not explicit tags or a digest).
pub fn needs_listing(selection: &TagSelection) -> bool {
    matches!(selection.tags(), TagSet::All | TagSet::Regex(_))
}

/// True when `limit` is decided by creation time, so each candidate's config is read.
pub fn needs_created(selection: &TagSelection) -> bool {
    selection.limit().is_some() && selection.order() == TagOrder::Created
}

/// The listed tags the selection admits, newest first by semver. `limit` is not applied
/// here: "newest N" counts only tags with a Linux platform, which takes the registry (see
/// `plan::select_tags`).
pub fn by_name<'a>(selection: &TagSelection, tags: &'a [String]) -> Vec<&'a str> {
    let admitted: Vec<&str> = tags
        .iter()
        .map(String::as_str)
        .filter(|t| listable(t) && selection.admits(t))
        .collect();
    newest_by_semver(admitted)
}

/// A listed tag ferry may select: valid (a registry can list anything) and not its own
/// staging tag.
fn listable(tag: &str) -> bool {
    if tag.starts_with(STAGING_TAG) {
        return false;
    }
    if !is_valid_tag(tag) {
        tracing::warn!("ignoring tag {tag:?}: not a valid tag");
        return false;
    }
    true
}

/// Sorts newest first by semantic version; tags that are not versions come last, by name.
pub fn newest_by_semver(tags: Vec<&str>) -> Vec<&str> {
    let mut keyed: Vec<(Option<Version>, &str)> =
        tags.into_iter().map(|t| (tag_version(t), t)).collect();
    keyed.sort_by(|(va, ta), (vb, tb)| match (va, vb) {
        (Some(a), Some(b)) => b.cmp(a).then_with(|| ta.cmp(tb)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => ta.cmp(tb),
    });
    keyed.into_iter().map(|(_, t)| t).collect()
}

/// Tags sorted newest first by creation time (unix seconds); ties by name.
pub fn newest_by_created(mut created: Vec<(&str, i64)>) -> Vec<&str> {
    created.sort_by_key(|&(tag, at)| (Reverse(at), tag));
    created.into_iter().map(|(t, _)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;
    use semver::VersionReq;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn filtered(
        tags: TagSet,
        semver: Option<&str>,
        exclude: &[&str],
        limit: Option<u32>,
        order: TagOrder,
    ) -> TagSelection {
        TagSelection::new(tags)
            .with_filters(
                semver.map(|r| VersionReq::parse(r).expect("range")),
                exclude
                    .iter()
                    .map(|e| Regex::new(e).expect("regex"))
                    .collect(),
                limit,
                order,
            )
            .expect("valid filters")
    }

    #[test]
    fn name_filters_then_newest_first() {
        let all = tags(&[
            "1.24.0",
            "1.25.3",
            "1.25.3-alpine",
            "1.26.0",
            "latest",
            "2.0.0-rc1",
        ]);
        let regex = TagSet::Regex(Regex::new(r"^1\.").expect("regex"));
        let selection = filtered(regex, None, &["alpine"], None, TagOrder::Semver);
        assert_eq!(by_name(&selection, &all), ["1.26.0", "1.25.3", "1.24.0"]);
        let ranged = filtered(TagSet::All, Some(">=1.25, <2"), &[], None, TagOrder::Semver);
        assert_eq!(
            by_name(&ranged, &all),
            ["1.26.0", "1.25.3"],
            "pre-releases are out"
        );
    }

    #[test]
    fn invalid_and_staging_tags_are_never_selected() {
        let all = tags(&[
            "1.0",
            "bad tag!",
            STAGING_TAG,
            "ferry-staging-linux-arm64",
            "-x",
            "2.0",
        ]);
        assert_eq!(
            by_name(&TagSelection::new(TagSet::All), &all),
            ["2.0", "1.0"]
        );
    }

    #[test]
    fn newest_first_by_semver() {
        let all = tags(&["1.9", "1.10", "latest", "v1.10.1", "alpine", "2"]);
        let everything = TagSelection::new(TagSet::All);
        assert_eq!(
            by_name(&everything, &all),
            ["2", "v1.10.1", "1.10", "1.9", "alpine", "latest"]
        );
        assert!(needs_listing(&everything));
        assert!(!needs_listing(&TagSelection::new(TagSet::List(tags(&[
            "1"
        ])))));
    }

    #[test]
    fn newest_first_by_creation_time() {
        let selection = filtered(TagSet::All, None, &[], Some(2), TagOrder::Created);
        assert!(needs_created(&selection));
        let all = tags(&["a", "b", "c", "d"]);
        assert_eq!(by_name(&selection, &all).len(), 4, "limit is applied later");
        let created = vec![("a", 10), ("c", 30), ("b", 30), ("d", 20)];
        assert_eq!(newest_by_created(created), ["b", "c", "d", "a"]);
    }
}
