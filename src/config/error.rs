//! Located configuration errors: `file:line:col: what is wrong (offending value)`, one line.
//!
//! Owns [`Location`] and [`ConfigError`]; callers must never put a password, token or any
//! other auth.yaml value into an error.

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// A place in a configuration file: 1-based line and column, or 0 when only the file is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    file: PathBuf,
    line: u64,
    column: u64,
}

impl Location {
    /// A position in `file`.
    pub fn new(file: impl Into<PathBuf>, line: u64, column: u64) -> Self {
        Location {
            file: file.into(),
            line,
            column,
        }
    }

    /// The whole file, no position (a missing file, an I/O error).
    pub fn file_only(file: impl Into<PathBuf>) -> Self {
        Location::new(file, 0, 0)
    }

    pub(crate) fn from_yaml(file: &Path, at: serde_saphyr::Location) -> Self {
        Location::new(file, at.line(), at.column())
    }

    /// The file, as the user named it (`config/images.yaml`).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// 1-based line, 0 when unknown.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// 1-based column, 0 when unknown.
    pub fn column(&self) -> u64 {
        self.column
    }

    /// `file:line`, the short form used when an error names a second place.
    pub fn file_line(&self) -> String {
        if self.line == 0 {
            self.file.display().to_string()
        } else {
            format!("{}:{}", self.file.display(), self.line)
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
        }
    }
}

/// A configuration file that cannot be used; nothing runs when loading returns one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{location}: {message}{}", value.as_ref().map(|v| format!(" ({v})")).unwrap_or_default())]
pub struct ConfigError {
    location: Location,
    message: String,
    value: Option<String>,
}

impl ConfigError {
    /// An error at `location` saying what is wrong.
    pub fn new(location: Location, message: impl fmt::Display) -> Self {
        ConfigError {
            location,
            message: one_line(&message.to_string()),
            value: None,
        }
    }

    /// The same error naming the offending value (never a secret).
    pub fn with_value(mut self, value: impl fmt::Display) -> Self {
        let value = value.to_string();
        self.value = Some(if value.is_empty() {
            "\"\"".to_owned()
        } else {
            one_line(&value)
        });
        self
    }

    /// Converts a YAML syntax or type error of `file`; the parser's message names no values.
    pub(crate) fn from_yaml(file: &Path, error: &serde_saphyr::Error) -> Self {
        use serde_saphyr::MessageFormatter;
        let location = match error.location() {
            Some(at) => Location::from_yaml(file, at),
            None => Location::file_only(file),
        };
        let message = serde_saphyr::UserMessageFormatter.format_message(error);
        ConfigError::new(location, message)
    }

    /// Where the problem is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// What is wrong, without location and value.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The offending value, when the error names one.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

/// Control characters (newlines above all) escaped, so a message stays on one line.
fn one_line(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// The regex crate's message, reduced to its last line (it draws a multi-line caret diagram).
pub(crate) fn regex_error(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text.lines().rev().find(|l| !l.trim().is_empty());
    let last = last.unwrap_or("syntax error").trim();
    format!(
        "invalid regex: {}",
        last.strip_prefix("error: ").unwrap_or(last)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_location_and_value() {
        let at = Location::new("config/images.yaml", 12, 5);
        let e = ConfigError::new(at.clone(), "bad reference\nsecond").with_value("a\tb");
        assert_eq!(
            e.to_string(),
            "config/images.yaml:12:5: bad reference\\nsecond (a\\tb)"
        );
        assert_eq!(at.file_line(), "config/images.yaml:12");
        let whole = ConfigError::new(Location::file_only("config/"), "no configuration files");
        assert_eq!(whole.to_string(), "config/: no configuration files");
        let empty = ConfigError::new(at, "empty tag").with_value("");
        assert_eq!(
            empty.to_string(),
            "config/images.yaml:12:5: empty tag (\"\")"
        );
    }
}
