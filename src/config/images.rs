//! images.yaml (image-syncer compatible, plus ferry's mapping form): parsing and writing.
//!
//! Owns [`ImageEntry`] and the value forms (null, destination, list, mapping); it must not
//! map sources to targets (that is `rules`) nor list tags (that is `select`).

use regex::Regex;
use semver::VersionReq;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::regex_error;
use super::error::{ConfigError, Location};
use super::immutable::immutable_tags;
pub use super::immutable::ImmutableTags;
use super::selection::{parse_key, TagOrder, TagSelection, TagSet};
use super::yaml::{Entries, OneOrMany, YamlFile};
use crate::platform::Platform;
use crate::reference::parse_reference;
use crate::reference::Reference;

/// One images.yaml entry: a source repository, its tags, and where it goes.
#[derive(Debug, Clone)]
pub struct ImageEntry {
    /// The source repository, tag and digest moved into `selection`.
    pub source: Reference,
    /// Which tags of `source` the entry means.
    pub selection: TagSelection,
    /// Explicit destinations; empty means "from the mapping rules" (the normal case).
    pub destinations: Vec<Reference>,
    /// `os/arch[/variant]` to copy, all `linux`; empty means every Linux platform.
    pub platforms: Vec<Platform>,
    /// `platforms: all`: every entry of an index, Windows included (registry transport).
    pub all_platforms: bool,
    /// `immutable:`: tags that never change once written; such a tag the target already
    /// has is skipped without a request to the source. `None`: rules.yaml's default.
    pub immutable: Option<ImmutableTags>,
    /// Where the key is written.
    pub location: Location,
}

impl PartialEq for ImageEntry {
    /// Equal when they mean the same copy; the location does not count.
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
            && self.selection == other.selection
            && self.destinations == other.destinations
            && self.platforms == other.platforms
            && self.all_platforms == other.all_platforms
            && self.immutable == other.immutable
    }
}

/// The value of an entry, as written.
pub(crate) enum ImageValue {
    Rules,
    One(String),
    Many(Vec<Spanned<String>>),
    Options(Box<ImageOptions>),
}

/// The mapping form: ferry's extensions to image-syncer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageOptions {
    to: Option<Spanned<OneOrMany>>,
    tags: Option<Spanned<String>>,
    semver: Option<Spanned<String>>,
    limit: Option<Spanned<String>>,
    order: Option<Spanned<TagOrder>>,
    platforms: Option<Spanned<OneOrMany>>,
    exclude: Option<Spanned<OneOrMany>>,
    immutable: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for ImageValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;

        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = ImageValue;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("nothing, a destination, a list of destinations, or a mapping")
            }

            fn visit_unit<E: de::Error>(self) -> Result<ImageValue, E> {
                Ok(ImageValue::Rules)
            }

            fn visit_none<E: de::Error>(self) -> Result<ImageValue, E> {
                Ok(ImageValue::Rules)
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<ImageValue, E> {
                Ok(ImageValue::One(value.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ImageValue, A::Error> {
                let mut list = Vec::new();
                while let Some(item) = seq.next_element()? {
                    list.push(item);
                }
                Ok(ImageValue::Many(list))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ImageValue, A::Error> {
                let options =
                    ImageOptions::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ImageValue::Options(Box::new(options)))
            }
        }

        deserializer.deserialize_any(ValueVisitor)
    }
}

/// The entries of an images file as read, before they are checked.
pub(crate) type ImageEntries = Entries<Spanned<ImageValue>>;

/// Parses images.yaml; an empty file gives no entries.
pub(crate) fn parse(file: &YamlFile) -> Result<Vec<ImageEntry>, ConfigError> {
    let Some(entries) = file.parse::<ImageEntries>()? else {
        return Ok(Vec::new());
    };
    from_entries(file, entries)
}

/// The entries of `file` already read (as part of image-syncer's combined config file).
pub(crate) fn from_entries(
    file: &YamlFile,
    Entries(entries): ImageEntries,
) -> Result<Vec<ImageEntry>, ConfigError> {
    entries
        .into_iter()
        .map(|(key, value)| entry(file, key, value))
        .collect()
}

/// One image-syncer entry `key: destination(s)` kept as written (build-images.yaml's
/// mapping form): the parsed entry, and the key and destinations in their own words.
#[derive(Debug, Clone)]
pub struct CarriedImage {
    /// The entry as ferry reads it (source = the built image in the mirror).
    pub entry: ImageEntry,
    /// The key exactly as written.
    pub key: String,
    /// The destinations exactly as written.
    pub destinations: Vec<String>,
}

/// An image-syncer entry that must name its destinations (no rules, no ferry options).
pub(crate) fn carried(
    file: &YamlFile,
    key: Spanned<String>,
    value: Spanned<ImageValue>,
) -> Result<CarriedImage, ConfigError> {
    let destinations = match &value.value {
        ImageValue::One(one) => vec![one.clone()],
        ImageValue::Many(list) if !list.is_empty() => {
            list.iter().map(|d| d.value.clone()).collect()
        }
        ImageValue::Rules | ImageValue::Many(_) | ImageValue::Options(_) => {
            let message = "a built image needs its private destination(s)";
            return Err(file.error(&key, message).with_value(&key.value));
        }
    };
    // Built images live in the mirror and go to the private registry: both sides name
    // their registry. A bare word is a build entry written without its `- `.
    const BUILD_KEYS: [&str; 6] = ["name", "base", "tags", "context", "build_args", "mode"];
    if BUILD_KEYS.contains(&key.value.as_str()) {
        let message = format!(
            "`{}` is a key of a build entry: build entries are a YAML list (`- name: …`)",
            key.value
        );
        return Err(file.error(&key, message).with_value(&key.value));
    }
    if !names_registry(&key.value) {
        let message = "a built image is named with its mirror registry (registry/repository:tags)";
        return Err(file.error(&key, message).with_value(&key.value));
    }
    let written = match &value.value {
        ImageValue::One(_) => vec![Spanned::new(String::new(), value.referenced, value.defined)],
        ImageValue::Many(list) => list.clone(),
        _ => Vec::new(),
    };
    for (destination, at) in destinations.iter().zip(&written) {
        if !names_registry(destination) {
            let message = "a private destination is named with its registry (registry/repository)";
            return Err(file.error(at, message).with_value(destination));
        }
    }
    let raw_key = key.value.clone();
    Ok(CarriedImage {
        entry: entry(file, key, value)?,
        key: raw_key,
        destinations,
    })
}

/// True when `reference` starts with a registry host (a `.` or `:` in its first
/// component, or `localhost`), as the image-syncer files of built images always do.
fn names_registry(reference: &str) -> bool {
    match reference.split_once('/') {
        Some((host, _)) => host.contains(['.', ':']) || host == "localhost",
        None => false,
    }
}

fn entry(
    file: &YamlFile,
    key: Spanned<String>,
    value: Spanned<ImageValue>,
) -> Result<ImageEntry, ConfigError> {
    let (source, tags) =
        parse_key(&key.value).map_err(|m| file.error(&key, m).with_value(&key.value))?;
    let linux = (Vec::new(), false);
    let mut immutable = None;
    let (selection, (platforms, all_platforms), destinations) = match value.value {
        ImageValue::Rules => (TagSelection::new(tags), linux, Vec::new()),
        ImageValue::One(text) => {
            let one = Spanned::new(text, value.referenced, value.defined);
            (TagSelection::new(tags), linux, vec![one])
        }
        ImageValue::Many(list) => (TagSelection::new(tags), linux, list),
        ImageValue::Options(mut options) => {
            let to = options
                .to
                .take()
                .map(OneOrMany::into_list)
                .unwrap_or_default();
            if let Some(pattern) = options.immutable.take() {
                immutable = Some(immutable_tags(file, &pattern)?);
            }
            let (selection, platforms) = mapping(file, &key, tags, *options)?;
            (selection, platforms, to)
        }
    };
    let mut targets: Vec<Reference> = Vec::new();
    for dest in &destinations {
        let target = destination(&dest.value, &selection)
            .map_err(|m| file.error(dest, m).with_value(&dest.value))?;
        if targets.contains(&target) {
            return Err(file
                .error(dest, "destination listed twice")
                .with_value(&dest.value));
        }
        targets.push(target);
    }
    Ok(ImageEntry {
        source,
        selection,
        destinations: targets,
        platforms,
        all_platforms,
        immutable,
        location: file.at(&key),
    })
}

/// The mapping form's selection (with filters) and platforms (`all` for every entry).
fn mapping(
    file: &YamlFile,
    key: &Spanned<String>,
    mut tags: TagSet,
    options: ImageOptions,
) -> Result<(TagSelection, (Vec<Platform>, bool)), ConfigError> {
    if let Some(regex) = &options.tags {
        if !matches!(tags, TagSet::All) {
            let message = "tags given twice: the key already names tags";
            return Err(file.error(regex, message).with_value(&key.value));
        }
        tags = TagSet::Regex(compile(file, regex)?);
    }
    let semver = match &options.semver {
        Some(range) => Some(VersionReq::parse(&range.value).map_err(|e| {
            file.error(range, format!("invalid semver range: {e}"))
                .with_value(&range.value)
        })?),
        None => None,
    };
    let limit = match &options.limit {
        Some(limit) => Some(
            limit
                .value
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    file.error(limit, "limit must be a whole number of at least 1")
                        .with_value(&limit.value)
                })?,
        ),
        None => None,
    };
    if let (Some(order), None) = (&options.order, limit) {
        return Err(file.error(order, "order only matters with limit"));
    }
    let exclude = options
        .exclude
        .map(OneOrMany::into_list)
        .unwrap_or_default();
    // Where to point when filters are given on explicit tags.
    let filter_at = (options.limit.as_ref().map(|l| file.at(l)))
        .or(options.semver.as_ref().map(|s| file.at(s)))
        .or(exclude.first().map(|e| file.at(e)))
        .unwrap_or_else(|| file.at(key));
    let exclude = exclude
        .iter()
        .map(|re| compile(file, re))
        .collect::<Result<Vec<_>, _>>()?;
    let order = options.order.map(|o| o.value).unwrap_or_default();
    let selection = TagSelection::new(tags)
        .with_filters(semver, exclude, limit, order)
        .map_err(|m| ConfigError::new(filter_at, m).with_value(&key.value))?;
    let written = options
        .platforms
        .map(OneOrMany::into_list)
        .unwrap_or_default();
    if let [all] = written.as_slice() {
        if all.value == "all" {
            return Ok((selection, (Vec::new(), true)));
        }
    }
    let mut platforms = Vec::new();
    for platform in written {
        if platform.value == "all" {
            let message = "`all` stands alone: `platforms: all` copies every platform";
            return Err(file.error(&platform, message).with_value(&platform.value));
        }
        let parsed = linux_platform(&platform.value)
            .map_err(|m| file.error(&platform, m).with_value(&platform.value))?;
        platforms.push(parsed);
    }
    Ok((selection, (platforms, false)))
}

fn compile(file: &YamlFile, text: &Spanned<String>) -> Result<Regex, ConfigError> {
    Regex::new(&text.value).map_err(|e| file.error(text, regex_error(&e)).with_value(&text.value))
}

/// A destination: no digest, and a tag only when the key names exactly one tag.
fn destination(text: &str, selection: &TagSelection) -> Result<Reference, String> {
    let target = parse_reference(text)?;
    if target.digest().is_some() {
        return Err("a destination cannot have a digest".to_owned());
    }
    let single = selection
        .explicit_tags()
        .is_some_and(|tags| tags.len() == 1);
    if target.tag().is_some() && !single {
        return Err("a destination tag needs exactly one tag in the key".to_owned());
    }
    Ok(target)
}

/// `linux/<arch>[/<variant>]`: ferry only copies Linux platforms.
fn linux_platform(text: &str) -> Result<Platform, String> {
    let platform: Platform = text.parse()?;
    if !platform.is_linux() {
        return Err("only linux platforms can be copied".to_owned());
    }
    Ok(platform)
}

/// Writes entries as images.yaml that [`crate::config::Config::load`] reads back to equal
/// entries: the plain image-syncer form when there are no filters, the mapping form else.
pub fn to_yaml(entries: &[ImageEntry], header: &str) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(format!("# {line}").trim_end());
        out.push('\n');
    }
    for entry in entries {
        let key = format!("{}{}", entry.source, entry.selection.key_suffix());
        let dests: Vec<String> = entry
            .destinations
            .iter()
            .map(|d| quote(&d.to_string()))
            .collect();
        let sel = &entry.selection;
        let mut fields: Vec<String> = Vec::new();
        if let Some(req) = sel.semver() {
            fields.push(format!("semver: {}", quote(&req.to_string())));
        }
        let exclude: Vec<String> = sel.exclude().map(|re| quote(re.as_str())).collect();
        if !exclude.is_empty() {
            fields.push(format!("exclude: [{}]", exclude.join(", ")));
        }
        if let Some(limit) = sel.limit() {
            fields.push(format!("limit: {limit}"));
            if sel.order() == TagOrder::Created {
                fields.push("order: created".to_owned());
            }
        }
        if entry.all_platforms {
            fields.push("platforms: all".to_owned());
        }
        if let Some(immutable) = &entry.immutable {
            fields.push(format!("immutable: {}", quote(immutable.as_str())));
        }
        if !entry.platforms.is_empty() {
            let list: Vec<String> = entry
                .platforms
                .iter()
                .map(|p| quote(&p.to_string()))
                .collect();
            fields.push(format!("platforms: [{}]", list.join(", ")));
        }
        let to = match dests.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            many => Some(format!("[{}]", many.join(", "))),
        };
        out.push_str(&quote(&key));
        out.push(':');
        match (to, fields.is_empty()) {
            (None, true) => {}
            (Some(to), true) => out.push_str(&format!(" {to}")),
            (to, false) => {
                if let Some(to) = to {
                    out.push_str(&format!("\n  to: {to}"));
                }
                for field in fields {
                    out.push_str(&format!("\n  {field}"));
                }
            }
        }
        out.push('\n');
    }
    out
}

/// A YAML double-quoted scalar that reads back as `text`: JSON string syntax, plus escapes
/// for what YAML does not allow raw (DEL, C1 controls, line and paragraph separators).
pub(crate) fn quote(text: &str) -> String {
    let json = serde_json::Value::String(text.to_owned()).to_string();
    json.chars()
        .map(|c| match c {
            '\u{7f}' | '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' => {
                format!("\\u{:04x}", u32::from(c))
            }
            c => c.to_string(),
        })
        .collect()
}
