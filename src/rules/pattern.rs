//! Rule patterns: which source repositories (`registry/repository`) a rule applies to.
//!
//! Owns the glob and `/regex/` syntax of a rule's `match`; it must not know about targets.

use crate::config::error::regex_error;
use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;

/// A glob (`docker.io/library/*`, `registry.k8s.io/**`) or a `/regex/`, matched against the
/// whole normalized `registry/repository` (`docker.io/library/nginx`).
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Glob(GlobMatcher),
    Regex(Regex),
}

impl Pattern {
    /// Parses a `match` value. In a glob `*` stays inside one path component and `**`
    /// crosses `/`; a regex is written between slashes and must match the whole name.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let kind = match text
            .strip_prefix('/')
            .and_then(|rest| rest.strip_suffix('/'))
        {
            Some(body) => {
                if body.is_empty() {
                    return Err("empty regex".to_owned());
                }
                let anchored = format!("^(?:{body})$");
                Kind::Regex(Regex::new(&anchored).map_err(|e| regex_error(&e))?)
            }
            None => {
                if text.is_empty() {
                    return Err("empty pattern".to_owned());
                }
                let glob = GlobBuilder::new(text)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| format!("invalid glob: {}", e.kind()))?;
                Kind::Glob(glob.compile_matcher())
            }
        };
        Ok(Pattern {
            text: text.to_owned(),
            kind,
        })
    }

    /// True when the rule applies to `name` (`registry/repository`).
    pub fn matches(&self, name: &str) -> bool {
        match &self.kind {
            Kind::Glob(glob) => glob.is_match(name),
            Kind::Regex(regex) => regex.is_match(name),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_regexes_match_the_whole_name() {
        let cases: &[(&str, &str, bool)] = &[
            ("docker.io/library/*", "docker.io/library/nginx", true),
            ("docker.io/library/*", "docker.io/bitnami/nginx", false),
            ("docker.io/*", "docker.io/library/nginx", false),
            ("docker.io/**", "docker.io/library/nginx", true),
            (
                "registry.k8s.io/**",
                "registry.k8s.io/coredns/coredns",
                true,
            ),
            ("registry.k8s.io/**", "registry.k8s.io.evil.com/x", false),
            ("**", "ghcr.io/kube-vip/kube-vip", true),
            ("*.elastic.co/**", "docker.elastic.co/beats/filebeat", true),
            ("/quay\\.io/.*/", "quay.io/coreos/flannel", true),
            ("/quay\\.io/.*/", "x.quay.io/coreos/flannel", false),
            ("/ghcr\\.io/[^/]+/", "ghcr.io/a/b", false),
        ];
        for (pattern, name, expected) in cases {
            let p = Pattern::parse(pattern).expect("valid pattern");
            assert_eq!(p.matches(name), *expected, "{pattern} on {name}");
        }
    }

    #[test]
    fn bad_patterns_say_why() {
        for (pattern, says) in [
            ("", "empty pattern"),
            ("//", "empty regex"),
            ("/a(/", "invalid regex"),
            ("docker.io/[a", "invalid glob"),
        ] {
            let e = Pattern::parse(pattern).expect_err(pattern);
            assert!(e.contains(says), "{pattern}: {e}");
            assert!(!e.contains('\n'), "{pattern}: {e}");
        }
    }
}
