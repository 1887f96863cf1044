//! `ferry build`: the `-n-ext` extension images of build-images.yaml, built on their base
//! as the mirror serves it, labelled with what they were built from, pushed to the mirror.
//!
//! Owns which entries a run builds ([`jobs`]), the change detection ([`decide`]), the build
//! context ([`context`]) and the [`BuildTransport`] that `run` drives. It must not print
//! (events go to `report`) nor decide anything about plain mirroring.

pub mod context;
pub mod decide;
mod dockerignore;
mod target;
mod transport;

use crate::config::{BuildImage, BuildMode};
use crate::plan::Job;
use crate::reference::Reference;
use crate::rules::Mapping;
use crate::rules::{MapError, Stage};

pub use decide::{LABEL_BASE_DIGEST, LABEL_BASE_REF, LABEL_CONTEXT};
pub use transport::BuildTransport;

/// How a build run behaves (`ferry build --push --force NAME…`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Push each built image to the mirror; without it the image stays in the local daemon.
    pub push: bool,
    /// Build even when nothing changed (and without the daemon's build cache).
    pub force: bool,
    /// Entries named on the command line: a named `once` entry is built even if it exists.
    pub named: Vec<String>,
}

/// Why the entries of a run cannot be listed. Nothing was built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// A name on the command line is not in build-images.yaml.
    #[error("no extension image named {name:?} in build-images.yaml (known: {known})")]
    UnknownName {
        /// The name asked for.
        name: String,
        /// The names build-images.yaml has, comma-separated (or `none`).
        known: String,
    },
    /// The mirror rules give an image of the entry no target.
    #[error("{entry} ({location}): {reason}")]
    Map {
        /// The entry's name.
        entry: String,
        /// Where the entry is written (`config/build-images.yaml:3`).
        location: String,
        /// Why, naming the image (the mapping error).
        reason: String,
    },
}

/// The jobs of a run, each with its entry: `base → ext` where base is the base image as the
/// mirror serves it and ext its `<tag>-n-ext` twin named by the mirror rules (both are the
/// source references when no mirror stage is configured).
///
/// With `names`, exactly those entries, whatever their mode; without, every entry of `mode`
/// (every entry when `None`). Jobs follow the order of build-images.yaml, then the order of
/// each entry's tags.
pub fn jobs(
    config: &Mapping,
    names: &[String],
    mode: Option<BuildMode>,
) -> Result<Vec<(Job, BuildImage)>, SelectError> {
    let builds = config.builds();
    if let Some(unknown) = names.iter().find(|n| !builds.iter().any(|b| &b.name == *n)) {
        let known: Vec<&str> = builds.iter().map(|b| b.name.as_str()).collect();
        return Err(SelectError::UnknownName {
            name: unknown.clone(),
            known: if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            },
        });
    }
    let selected = builds.iter().filter(|b| {
        if names.is_empty() {
            mode.is_none_or(|mode| mode == b.mode)
        } else {
            names.contains(&b.name)
        }
    });
    let mut jobs = Vec::new();
    for build in selected {
        for (base, ext) in build.images() {
            let job = Job::new(
                mirror(config, build, &base)?,
                mirror(config, build, &ext)?,
                Vec::new(),
            );
            jobs.push((job, build.clone()));
        }
    }
    Ok(jobs)
}

/// Where the mirror stage puts `image`; `image` itself without a mirror stage.
fn mirror(
    config: &Mapping,
    build: &BuildImage,
    image: &Reference,
) -> Result<Reference, SelectError> {
    match config.rules().target(image, Stage::Mirror) {
        Ok(target) => Ok(target),
        Err(MapError::NoStage { .. }) => Ok(image.clone()),
        Err(error) => Err(SelectError::Map {
            entry: build.name.clone(),
            location: build.location.file_line(),
            reason: error.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const RULES: &str = "\
stages:
  mirror:
    registry: mirror.local:5000
    rules:
      - match: docker.io/**
        target: hub/{flat}
";

    /// A project dir: config/ with rules.yaml and build-images.yaml, dockerfiles/<name>/.
    fn load(builds: &str, names: &[&str]) -> (tempfile::TempDir, Mapping) {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("config");
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join("rules.yaml"), RULES).expect("rules");
        fs::write(dir.join("build-images.yaml"), builds).expect("builds");
        for name in names {
            let context = root.path().join("dockerfiles").join(name);
            fs::create_dir_all(&context).expect("mkdir");
            fs::write(
                context.join("Dockerfile"),
                "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
            )
            .expect("Dockerfile");
        }
        let config = Mapping::load(&dir).expect("valid config");
        (root, config)
    }

    const TWO: &str = "\
- name: web
  base: nginx
  tags: ['1.25', '1.26']
  mode: once
- name: jdk
  base: eclipse-temurin:21-jdk
  mode: continuous
";

    fn pairs(jobs: &[(Job, BuildImage)]) -> Vec<(String, String, String)> {
        jobs.iter()
            .map(|(job, build)| {
                (
                    build.name.clone(),
                    job.source.to_string(),
                    job.target.to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn jobs_map_base_and_extension_through_the_mirror_rules() {
        let (_root, config) = load(TWO, &["web", "jdk"]);
        let all = jobs(&config, &[], None).expect("jobs");
        let expected = [
            (
                "web",
                "mirror.local:5000/hub/nginx:1.25",
                "mirror.local:5000/hub/nginx:1.25-n-ext",
            ),
            (
                "web",
                "mirror.local:5000/hub/nginx:1.26",
                "mirror.local:5000/hub/nginx:1.26-n-ext",
            ),
            (
                "jdk",
                "mirror.local:5000/hub/eclipse-temurin:21-jdk",
                "mirror.local:5000/hub/eclipse-temurin:21-jdk-n-ext",
            ),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
        assert_eq!(pairs(&all), expected);
        assert!(all.iter().all(|(job, _)| job.platforms.is_empty()));

        let once = jobs(&config, &[], Some(BuildMode::Once)).expect("jobs");
        assert_eq!(pairs(&once), expected[..2]);
        let continuous = jobs(&config, &[], Some(BuildMode::Continuous)).expect("jobs");
        assert_eq!(pairs(&continuous), expected[2..]);
    }

    #[test]
    fn naming_an_entry_selects_it_whatever_the_mode() {
        let (_root, config) = load(TWO, &["web", "jdk"]);
        let named = jobs(&config, &["jdk".to_owned()], Some(BuildMode::Once)).expect("jobs");
        assert_eq!(named.len(), 1);
        assert_eq!(named[0].1.name, "jdk");
        let both = ["jdk".to_owned(), "web".to_owned()];
        let named = jobs(&config, &both, Some(BuildMode::Continuous)).expect("jobs");
        assert_eq!(named.len(), 3, "file order, every tag");
        assert_eq!(named[0].1.name, "web");
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let (_root, config) = load(TWO, &["web", "jdk"]);
        let err = jobs(&config, &["wbe".to_owned()], None).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "no extension image named \"wbe\" in build-images.yaml (known: web, jdk)"
        );
        let (_root, empty) = load("", &[]);
        let err = jobs(&empty, &["web".to_owned()], None).expect_err("unknown");
        assert!(err.to_string().ends_with("(known: none)"), "{err}");
        assert!(jobs(&empty, &[], None).expect("no jobs").is_empty());
    }
}
