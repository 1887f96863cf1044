//! `.dockerignore`: which files of a build context are left out of its hash and its tar.
//!
//! Owns the pattern rules (moby's: last match wins, `!` re-includes, a match on a directory
//! covers what is under it); it must not read anything but the `.dockerignore` file.

use std::fs;
use std::io;
use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};

use super::context::{read_error, ContextError};

/// Files the daemon always needs, even when `.dockerignore` lists them (as the docker CLI does).
const ALWAYS_SENT: [&str; 2] = ["Dockerfile", ".dockerignore"];

/// The patterns of a `.dockerignore`: the last one matching a path (or one of its parent
/// directories) decides; a `!` pattern re-includes.
pub(super) struct Ignore {
    patterns: Vec<(GlobMatcher, bool)>,
}

impl Ignore {
    /// Reads `dir/.dockerignore`; no file means nothing is ignored.
    pub(super) fn load(dir: &Path) -> Result<Ignore, ContextError> {
        let path = dir.join(".dockerignore");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(read_error(&path, e)),
        };
        let mut patterns = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = pattern.trim_start_matches('/').trim_end_matches('/');
            let cleaned = cleaned.strip_prefix("./").unwrap_or(cleaned);
            let glob = GlobBuilder::new(cleaned)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| ContextError::Pattern {
                    path: path.clone(),
                    pattern: line.to_owned(),
                    cause: e.kind().to_string(),
                })?;
            patterns.push((glob.compile_matcher(), exception));
        }
        Ok(Ignore { patterns })
    }

    /// True when a `!` pattern may re-include something under an excluded directory.
    pub(super) fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|(_, exception)| *exception)
    }

    /// True when `relative` (a path inside the context) is left out.
    pub(super) fn excludes(&self, relative: &Path) -> bool {
        if ALWAYS_SENT.iter().any(|name| relative == Path::new(name)) {
            return false;
        }
        let mut excluded = false;
        for (glob, exception) in &self.patterns {
            let hit = relative
                .ancestors()
                .any(|p| !p.as_os_str().is_empty() && glob.is_match(p));
            if hit {
                excluded = !exception;
            }
        }
        excluded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> Ignore {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join(".dockerignore"), text).expect("write");
        Ignore::load(dir.path()).expect("valid patterns")
    }

    #[test]
    fn last_match_wins_and_directories_cover_their_contents() {
        let rules =
            ignore("# comment\n\n*.log\n/build/\n**/*.tmp\ndocs\n!docs/keep.md\n./secret\n");
        let table = [
            ("debug.log", true),
            ("sub/debug.log", false), // `*` stays within one component
            ("build", true),
            ("build/out/a.o", true),
            ("a/b/c.tmp", true),
            ("c.tmp", true),
            ("docs/drop.md", true),
            ("docs/keep.md", false),
            ("secret", true),
            ("src/main.rs", false),
            ("Dockerfile", false),
        ];
        for (path, excluded) in table {
            assert_eq!(rules.excludes(Path::new(path)), excluded, "{path}");
        }
        assert!(rules.has_exceptions());
    }

    #[test]
    fn the_dockerfile_and_dockerignore_are_always_sent() {
        let rules = ignore("*\n");
        assert!(rules.excludes(Path::new("hello.txt")));
        assert!(!rules.excludes(Path::new("Dockerfile")));
        assert!(!rules.excludes(Path::new(".dockerignore")));
        assert!(!rules.has_exceptions());
    }

    #[test]
    fn no_file_ignores_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rules = Ignore::load(dir.path()).expect("no file");
        assert!(!rules.excludes(Path::new("anything")));
    }
}
