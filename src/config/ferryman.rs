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
use crate::reference::Reference;
use crate::rules::parse_reference;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    source: Spanned<String>,
    target: Spanned<String>,
    limit: Option<Spanned<u32>>,
    tag: Option<Spanned<TagOptions>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedItem {
    name: Spanned<String>,
    source: Spanned<String>,
    target: Spanned<String>,
    limit: Option<Spanned<u32>>,
    tag: Option<Spanned<TagOptions>>,
}

/// `tag: {limit: 9999}`: how many of the newest tags to keep.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagOptions {
    limit: Option<Spanned<u32>>,
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
    if let Some(zero) = limit.as_ref().filter(|l| l.value == 0) {
        return Err(file
            .error(zero, "limit must be at least 1")
            .with_value(&name.value));
    }
    let selection = TagSelection::new(TagSet::All)
        .with_filters(None, Vec::new(), limit.map(|l| l.value), TagOrder::Created)
        .map_err(|m| file.error(&name, m).with_value(&name.value))?;
    Ok(ImageEntry {
        source,
        selection,
        destinations: vec![target],
        platforms: Vec::new(),
        all_platforms: false,
        location: file.at(&name),
    })
}
