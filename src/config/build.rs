//! build-images.yaml in its two shapes: ferry's list of `-n-ext` extension images to build,
//! or the origin project's image-syncer mapping of already built images to their private
//! destinations, carried into the hop-2 config as written.
//!
//! Owns [`BuildImage`], the shape check, and the checks that a context and Dockerfile exist
//! and take `ARG BASE_IMAGE`; it must not run docker.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::{ConfigError, Location};
use super::images::{self, CarriedImage, ImageValue};
use super::yaml::YamlFile;
use crate::reference::parse_reference;
use crate::reference::Reference;

/// When an extension image is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildMode {
    /// Only when the target tag does not exist yet, or when named explicitly.
    #[default]
    Once,
    /// On every scheduled run when the base digest or the context changed.
    Continuous,
}

/// Tag suffix of extension images built on a base tag (`1.17.4` → `1.17.4-n-ext`).
pub const EXTENSION_SUFFIX: &str = "-n-ext";

/// The tag an extension image built on `base_tag` gets.
pub fn extension_tag(base_tag: &str) -> String {
    format!("{base_tag}{EXTENSION_SUFFIX}")
}

/// One extension image: `<base>:<tag>` + `dockerfiles/<name>` → `<base>:<tag>-n-ext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildImage {
    /// Name, also the default context directory `dockerfiles/<name>`.
    pub name: String,
    /// The base repository (no tag).
    pub base: Reference,
    /// Base tags to build on; each gives `<tag>-n-ext`.
    pub tags: Vec<String>,
    /// The build context, resolved against the project directory.
    pub context: PathBuf,
    /// Extra `--build-arg`s (`BASE_IMAGE` is set by ferry).
    pub build_args: BTreeMap<String, String>,
    /// When to build.
    pub mode: BuildMode,
    /// Where the entry's `name` is written.
    pub location: Location,
}

impl BuildImage {
    /// `(base:tag, base:tag-n-ext)` for every tag: what to build on and what it becomes
    /// before mapping (the rules map the extension like its base).
    pub fn images(&self) -> Vec<(Reference, Reference)> {
        self.tags
            .iter()
            .filter_map(|tag| {
                let base = self.base.with_tag(tag).ok()?;
                let ext = self.base.with_tag(&extension_tag(tag)).ok()?;
                Some((base, ext))
            })
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    name: Spanned<String>,
    base: Spanned<String>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    context: Option<Spanned<String>>,
    #[serde(default)]
    build_args: BTreeMap<String, String>,
    mode: Option<BuildMode>,
}

/// The file in one of its two shapes, told apart by the top-level node.
enum Shape {
    /// `- name: …`: extension images to build.
    List(Vec<RawBuild>),
    /// `"mirror/repo:/^(.*)(-n-ext)$/": [private/repo]`: built images to carry to hop 2.
    Mapping(Vec<(Spanned<String>, Spanned<CarriedValue>)>),
}

/// The value of a mapping-form entry: destinations only (image-syncer's forms).
struct CarriedValue(ImageValue);

impl<'de> Deserialize<'de> for CarriedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CarriedVisitor;

        impl<'de> Visitor<'de> for CarriedVisitor {
            type Value = CarriedValue;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a destination or a list of destinations")
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<CarriedValue, E> {
                Ok(CarriedValue(ImageValue::Rules))
            }

            fn visit_none<E: serde::de::Error>(self) -> Result<CarriedValue, E> {
                Ok(CarriedValue(ImageValue::Rules))
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<CarriedValue, E> {
                Ok(CarriedValue(ImageValue::One(value.to_owned())))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CarriedValue, A::Error> {
                let mut list = Vec::new();
                while let Some(item) = seq.next_element()? {
                    list.push(item);
                }
                Ok(CarriedValue(ImageValue::Many(list)))
            }

            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<CarriedValue, A::Error> {
                Err(serde::de::Error::custom(
                    "build entries are a YAML list (`- name: …`); a mapping maps built images \
                     to their destinations (image-syncer form)",
                ))
            }
        }

        deserializer.deserialize_any(CarriedVisitor)
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShapeVisitor;

        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of build entries, or a mapping of built images to destinations")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                let mut list = Vec::new();
                while let Some(raw) = seq.next_element()? {
                    list.push(raw);
                }
                Ok(Shape::List(list))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Shape::Mapping(entries))
            }
        }

        deserializer.deserialize_any(ShapeVisitor)
    }
}

/// What build-images.yaml holds: images to build, and built images carried to hop 2.
#[derive(Debug, Clone, Default)]
pub(crate) struct BuildFile {
    /// The list form.
    pub(crate) builds: Vec<BuildImage>,
    /// The mapping form.
    pub(crate) carried: Vec<CarriedImage>,
}

/// Parses build-images.yaml in either shape; `root` is the project directory contexts are
/// under.
pub(crate) fn parse(file: &YamlFile, root: &Path) -> Result<BuildFile, ConfigError> {
    match file.parse::<Shape>()? {
        None => Ok(BuildFile::default()),
        Some(Shape::List(raws)) => Ok(BuildFile {
            builds: builds(file, root, raws)?,
            carried: Vec::new(),
        }),
        Some(Shape::Mapping(entries)) => {
            let carried = entries
                .into_iter()
                .map(|(key, value)| {
                    let value = Spanned::new(value.value.0, value.referenced, value.defined);
                    images::carried(file, key, value)
                })
                .collect::<Result<_, _>>()?;
            Ok(BuildFile {
                builds: Vec::new(),
                carried,
            })
        }
    }
}

fn builds(
    file: &YamlFile,
    root: &Path,
    raws: Vec<RawBuild>,
) -> Result<Vec<BuildImage>, ConfigError> {
    let mut builds: Vec<BuildImage> = Vec::new();
    for raw in raws {
        let build = build(file, root, raw)?;
        if let Some(twin) = builds.iter().find(|b| b.name == build.name) {
            let message = format!("name already used at {}", twin.location.file_line());
            return Err(ConfigError::new(build.location, message).with_value(&build.name));
        }
        for (_, ext) in build.images() {
            let twin = builds
                .iter()
                .find(|b| b.images().iter().any(|(_, other)| *other == ext));
            if let Some(twin) = twin {
                let message = format!(
                    "{} builds the same image at {}",
                    twin.name,
                    twin.location.file_line()
                );
                return Err(ConfigError::new(build.location.clone(), message).with_value(ext));
            }
        }
        builds.push(build);
    }
    Ok(builds)
}

fn build(file: &YamlFile, root: &Path, raw: RawBuild) -> Result<BuildImage, ConfigError> {
    let name = &raw.name;
    let name_ok = !name.value.is_empty()
        && name
            .value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name.value.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !name_ok {
        return Err(file
            .error(
                name,
                "invalid name: lowercase letters, digits, '.', '_', '-'",
            )
            .with_value(&name.value));
    }
    let base_error = |m: String| file.error(&raw.base, m).with_value(&raw.base.value);
    let pinned = parse_reference(&raw.base.value).map_err(base_error)?;
    if pinned.digest().is_some() {
        return Err(base_error(
            "a base cannot be pinned by digest; list tags".to_owned(),
        ));
    }
    // The base tags, each with where it is written.
    let written: Vec<Spanned<String>> = match (pinned.tag(), raw.tags.is_empty()) {
        (Some(tag), true) => {
            vec![Spanned::new(
                tag.to_owned(),
                raw.base.referenced,
                raw.base.defined,
            )]
        }
        (Some(_), false) => {
            return Err(base_error(
                "give the tag in base or in tags, not both".to_owned(),
            ))
        }
        (None, true) => return Err(base_error("no tags to build on: add tags".to_owned())),
        (None, false) => raw.tags,
    };
    let base = pinned.without_tag();
    let mut tags: Vec<String> = Vec::new();
    for tag in written {
        base.with_tag(&extension_tag(&tag.value)).map_err(|e| {
            file.error(&tag, e.kind().to_string())
                .with_value(&tag.value)
        })?;
        if tags.contains(&tag.value) {
            return Err(file.error(&tag, "tag listed twice").with_value(&tag.value));
        }
        tags.push(tag.value);
    }
    if raw.build_args.contains_key("BASE_IMAGE") {
        return Err(file
            .error(name, "build_args must not set BASE_IMAGE: ferry sets it")
            .with_value(&name.value));
    }
    let (context_text, context_at) = match &raw.context {
        Some(context) => (context.value.clone(), file.at(context)),
        None => (format!("dockerfiles/{}", name.value), file.at(name)),
    };
    let context = root.join(&context_text);
    check_dockerfile(&context)
        .map_err(|m| ConfigError::new(context_at, m).with_value(&context_text))?;
    Ok(BuildImage {
        name: name.value.clone(),
        base,
        tags,
        context,
        build_args: raw.build_args,
        mode: raw.mode.unwrap_or_default(),
        location: file.at(name),
    })
}

/// The context has a Dockerfile that declares `ARG BASE_IMAGE` and uses it in its first `FROM`.
fn check_dockerfile(context: &Path) -> Result<(), String> {
    if !context.is_dir() {
        return Err("context directory does not exist".to_owned());
    }
    let text = std::fs::read_to_string(context.join("Dockerfile"))
        .map_err(|e| format!("cannot read the context's Dockerfile: {e}"))?;
    let mut declared = false;
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        let instruction = words.next().unwrap_or_default().to_ascii_uppercase();
        // `FROM --platform=… ${BASE_IMAGE}`: flags come before the image.
        let argument = words.find(|w| !w.starts_with("--")).unwrap_or_default();
        if instruction == "ARG" && argument.split('=').next() == Some("BASE_IMAGE") {
            declared = true;
        }
        if instruction == "FROM" {
            if !declared {
                return Err("the Dockerfile must declare ARG BASE_IMAGE before FROM".to_owned());
            }
            if !argument.contains("${BASE_IMAGE}") && !argument.contains("$BASE_IMAGE") {
                return Err("the Dockerfile's first FROM must use ${BASE_IMAGE}".to_owned());
            }
            return Ok(());
        }
    }
    Err("the Dockerfile has no FROM".to_owned())
}
