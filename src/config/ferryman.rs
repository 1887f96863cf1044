//! Ferryman's items.yml, read as-is: `name: {source: "k8s.gcr.io/", target: "…/", limit: N}`,
//! or a list `- {name, source, target, limit}` that allows a name twice.
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
    limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedItem {
    name: Spanned<String>,
    source: Spanned<String>,
    target: Spanned<String>,
    limit: Option<u32>,
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
    let selection = TagSelection::new(TagSet::All)
        .with_filters(None, Vec::new(), item.limit, TagOrder::Created)
        .map_err(|m| file.error(&name, m).with_value(&name.value))?;
    Ok(ImageEntry {
        source,
        selection,
        destinations: vec![target],
        platforms: Vec::new(),
        location: file.at(&name),
    })
}
