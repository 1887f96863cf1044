//! Ferryman's items.yml, read as-is: `name: {source: "k8s.gcr.io/", target: "…/", tag:
//! {limit: N}}` (the Ferryman repository's own form), a flat `limit: N`, or a list
//! `- {name, source, target, tag: {limit}}` that allows a name twice.
//!
//! Owns the translation into [`ImageEntry`]s; it must not change Ferryman's meaning
//! (source prefix + name, target prefix + name, newest `limit` tags by creation time).

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::ConfigError;
use super::images::ImageEntry;
use super::selection::{TagOrder, TagSelection, TagSet};
use super::yaml::YamlFile;
use crate::reference::parse_reference;
use crate::reference::Reference;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    source: Spanned<String>,
    target: Spanned<String>,
    limit: Option<Spanned<Limit>>,
    tag: Option<Spanned<TagOptions>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedItem {
    name: Spanned<String>,
    source: Spanned<String>,
    target: Spanned<String>,
    limit: Option<Spanned<Limit>>,
    tag: Option<Spanned<TagOptions>>,
}

/// `tag: {limit: 9999}`: how many of the newest tags to keep.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagOptions {
    limit: Option<Spanned<Limit>>,
}

/// `limit`: how many of the newest tags, 1 to 4294967295 (Ferryman's "all" is 9999).
struct Limit(u32);

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LimitVisitor;

        const EXPECTED: &str = "limit must be a whole number from 1 to 4294967295";

        impl Visitor<'_> for LimitVisitor {
            type Value = Limit;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Limit, E> {
                u32::try_from(value)
                    .ok()
                    .filter(|n| *n > 0)
                    .map(Limit)
                    .ok_or_else(|| E::custom(format!("{EXPECTED}, not {value}")))
            }

            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Limit, E> {
                match u64::try_from(value) {
                    Ok(value) => self.visit_u64(value),
                    Err(_) => Err(E::custom(format!("{EXPECTED}, not {value}"))),
                }
            }

            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Limit, E> {
                Err(E::custom(format!("{EXPECTED}, not {value}")))
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Limit, E> {
                match value.trim().parse::<u64>() {
                    Ok(number) => self.visit_u64(number),
                    Err(_) => Err(E::custom(format!("{EXPECTED}, not {value:?}"))),
                }
            }
        }

        deserializer.deserialize_any(LimitVisitor)
    }
}

/// Both forms, in file order, each item with its name.
struct Items(Vec<(Spanned<String>, Item)>);

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemsVisitor;

        impl<'de> Visitor<'de> for ItemsVisitor {
            type Value = Items;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of names to items, or a list of items with names")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Items, A::Error> {
                let mut items = Vec::new();
                while let Some(name) = map.next_key::<Spanned<String>>()? {
                    items.push((name, map.next_value()?));
                }
                Ok(Items(items))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
                let mut items = Vec::new();
                while let Some(named) = seq.next_element::<NamedItem>()? {
                    let item = Item {
                        source: named.source,
                        target: named.target,
                        limit: named.limit,
                        tag: named.tag,
                    };
                    items.push((named.name, item));
                }
                Ok(Items(items))
            }
        }

        deserializer.deserialize_any(ItemsVisitor)
    }
}

/// Parses items.yml into entries with explicit destinations.
pub(crate) fn parse(file: &YamlFile) -> Result<Vec<ImageEntry>, ConfigError> {
    let Some(Items(items)) = file.parse::<Items>()? else {
        return Ok(Vec::new());
    };
    items
        .into_iter()
        .map(|(name, item)| entry(file, name, item))
        .collect()
}

fn entry(file: &YamlFile, name: Spanned<String>, item: Item) -> Result<ImageEntry, ConfigError> {
    let join = |prefix: &Spanned<String>| -> Result<Reference, ConfigError> {
        // Ferryman appends the name to the prefix as it is: `quay.io` + `flannel` would be
        // `quay.ioflannel`, so its README asks for the trailing `/`, and so does ferry.
        if !prefix.value.ends_with('/') {
            return Err(file
                .error(prefix, "a Ferryman source or target prefix ends with '/'")
                .with_value(&prefix.value));
        }
        let path = match prefix.value.split_once('/') {
            Some((host, path)) if host.contains(['.', ':']) || host == "localhost" => path,
            _ => prefix.value.as_str(),
        };
        if path.contains([':', '@']) {
            return Err(file
                .error(
                    prefix,
                    "a Ferryman prefix names a repository path, not a tag or digest",
                )
                .with_value(&prefix.value));
        }
        let text = format!("{}{}", prefix.value, name.value);
        let reference =
            parse_reference(&text).map_err(|m| file.error(prefix, m).with_value(&text))?;
        if reference.tag().is_some() || reference.digest().is_some() {
            return Err(file
                .error(&name, "a Ferryman name cannot carry a tag")
                .with_value(&text));
        }
        Ok(reference)
    };
    let source = join(&item.source)?;
    let target = join(&item.target)?;
    let nested = item.tag.and_then(|tag| tag.value.limit);
    let limit = match (item.limit, nested) {
        (Some(_), Some(nested)) => {
            return Err(file
                .error(
                    &nested,
                    "limit given twice: keep `tag: {limit}` or `limit`, not both",
                )
                .with_value(&name.value))
        }
        (limit, nested) => limit.or(nested),
    };
    let selection = TagSelection::new(TagSet::All)
        .with_filters(
            None,
            Vec::new(),
            limit.map(|l| l.value.0),
            TagOrder::Created,
        )
        .map_err(|m| file.error(&name, m).with_value(&name.value))?;
    Ok(ImageEntry {
        source,
        selection,
        destinations: vec![target],
        platforms: Vec::new(),
        all_platforms: false,
        immutable: None,
        location: file.at(&name),
    })
}
