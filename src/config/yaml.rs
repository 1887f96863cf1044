//! YAML plumbing shared by the config files: reading, parsing with spans, ordered mappings.
//!
//! Owns the parser options (strict booleans, duplicate keys rejected) and the span helpers;
//! it must not know what any file means.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::{ConfigError, Location};
use crate::local_file;

/// One configuration file being read: its name for messages, and its text.
pub(crate) struct YamlFile {
    path: PathBuf,
    text: String,
}

impl YamlFile {
    /// Reads `path`; `Ok(None)` when nothing is there. Only a regular file (after
    /// following symlinks; a dangling one is an error) of at most 16 MiB is read.
    pub(crate) fn read(path: &Path) -> Result<Option<YamlFile>, ConfigError> {
        match local_file::read_text(path, local_file::MAX_CONFIG_FILE) {
            Ok(text) => Ok(text.map(|text| YamlFile {
                path: path.to_owned(),
                text,
            })),
            Err(e) => Err(ConfigError::new(Location::file_only(path), e)),
        }
    }

    /// A file from text (tests, generated configs).
    #[cfg(test)]
    pub(crate) fn from_text(path: &Path, text: &str) -> YamlFile {
        YamlFile {
            path: path.to_owned(),
            text: text.to_owned(),
        }
    }

    /// Parses the whole document; `None` for an empty document (or only comments).
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Result<Option<T>, ConfigError> {
        let options = serde_saphyr::options! {
            strict_booleans: true,
            with_snippet: false,
        };
        serde_saphyr::from_str_with_options::<Option<T>>(&self.text, options)
            .map_err(|e| ConfigError::from_yaml(&self.path, &e))
    }

    /// Where a spanned value was written.
    pub(crate) fn at<T>(&self, spanned: &Spanned<T>) -> Location {
        Location::from_yaml(&self.path, spanned.referenced)
    }

    /// An error at a spanned value.
    pub(crate) fn error<T>(&self, spanned: &Spanned<T>, message: impl fmt::Display) -> ConfigError {
        ConfigError::new(self.at(spanned), message)
    }
}

/// A YAML mapping kept in file order, keys with their spans (duplicates are parse errors).
pub(crate) struct Entries<V>(pub Vec<(Spanned<String>, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// A string or a list of strings (`to: a` or `to: [a, b]`).
pub(crate) enum OneOrMany {
    /// A single string; its span is the enclosing `Spanned`'s.
    One(String),
    /// A list, each element with its own span.
    Many(Vec<Spanned<String>>),
}

impl OneOrMany {
    /// The strings with their spans, a lone string taking the span of the whole value.
    pub(crate) fn into_list(spanned: Spanned<OneOrMany>) -> Vec<Spanned<String>> {
        match spanned.value {
            OneOrMany::One(value) => vec![Spanned::new(value, spanned.referenced, spanned.defined)],
            OneOrMany::Many(list) => list,
        }
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;

        impl<'de> Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(OneOrMany::One(value.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut list = Vec::new();
                while let Some(item) = seq.next_element()? {
                    list.push(item);
                }
                Ok(OneOrMany::Many(list))
            }
        }

        deserializer.deserialize_any(OneOrManyVisitor)
    }
}
