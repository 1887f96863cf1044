//! image-syncer's own files, named by path: `--images` with `--auth`, or the deprecated
//! combined `--config` file (`{auth: …, images: …}`), YAML or JSON.
//!
//! Owns reading them into a [`Config`] without rules, where every entry names its
//! destinations as image-syncer requires. It must not know the command line nor run anything.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::auth::{self, AuthConfig, AuthEntries};
use super::error::{ConfigError, Location};
use super::images::{self, ImageEntries, ImageEntry};
use super::yaml::YamlFile;
use super::Config;

/// The deprecated combined file: image-syncer's `Config` struct.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Combined {
    auth: Option<AuthEntries>,
    images: Option<ImageEntries>,
}

impl Config {
    /// image-syncer's `--images FILE` and optional `--auth FILE`: the entries go to their
    /// destinations as written (no rules); an entry without one is an error, as in
    /// image-syncer. Relative `ca_file`s are relative to the current directory.
    pub fn load_image_syncer(
        images: &Path,
        auth: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let images_file = required(images)?;
        let entries = images::parse(&images_file)?;
        let auth = match auth {
            Some(path) => auth::parse(&required(path)?, Path::new("."), env)?,
            None => AuthConfig::default(),
        };
        finish(images, entries, auth)
    }

    /// image-syncer's deprecated `--config FILE`: `auth` and `images` in one file.
    pub fn load_image_syncer_combined(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file = required(path)?;
        let combined = file.parse::<Combined>()?;
        let (auth, images) = combined.map_or((None, None), |c| (c.auth, c.images));
        let entries = match images {
            Some(entries) => images::from_entries(&file, entries)?,
            None => Vec::new(),
        };
        let auth = match auth {
            Some(entries) => auth::from_entries(&file, Path::new("."), env, entries)?,
            None => AuthConfig::default(),
        };
        finish(path, entries, auth)
    }
}

fn required(path: &Path) -> Result<YamlFile, ConfigError> {
    YamlFile::read(path)?.ok_or_else(|| ConfigError::new(Location::file_only(path), "no such file"))
}

fn finish(path: &Path, images: Vec<ImageEntry>, auth: AuthConfig) -> Result<Config, ConfigError> {
    if images.is_empty() {
        let message = "no images (the file is empty or only comments): nothing to do";
        return Err(ConfigError::new(Location::file_only(path), message));
    }
    if let Some(entry) = images.iter().find(|e| e.destinations.is_empty()) {
        let message = "empty destination is not supported: image-syncer needs one per source";
        return Err(ConfigError::new(entry.location.clone(), message).with_value(&entry.source));
    }
    let config = Config {
        path: PathBuf::from(path),
        images,
        auth,
        rules: super::RulesFile::default(),
        builds: Vec::new(),
        carried: Vec::new(),
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn env(name: &str) -> Option<String> {
        (name == "HARBOR_PASSWORD").then(|| "pw".to_owned())
    }

    #[test]
    fn images_and_auth_files_by_path() {
        let dir = tempfile::tempdir().expect("dir");
        let images = write(
            dir.path(),
            "issue_images.yaml",
            "\"docker.io/consul:/^1\\\\.16/\":\n  - \"mirror.local/ns/consul\"\nnginx:1.25: mirror.local/ns/nginx\n",
        );
        let auth = write(
            dir.path(),
            "auth.yaml",
            "mirror.local/ns:\n  username: u\n  password: ${HARBOR_PASSWORD}\n  insecure: true\n",
        );
        let config = Config::load_image_syncer(&images, Some(&auth), &env).expect("loads");
        let sources: Vec<String> = config
            .images()
            .iter()
            .map(|e| e.source.to_string())
            .collect();
        assert_eq!(
            sources,
            ["docker.io/library/consul", "docker.io/library/nginx"]
        );
        assert_eq!(
            config.images()[1].destinations[0].to_string(),
            "mirror.local/ns/nginx"
        );
        let entries = config.auth().entries().expect("resolved");
        assert_eq!(entries[0].key, "mirror.local/ns");
        assert!(entries[0].insecure);
    }

    #[test]
    fn the_combined_file_in_json_or_yaml() {
        let dir = tempfile::tempdir().expect("dir");
        let json = write(
            dir.path(),
            "config.json",
            r#"{"auth": {"mirror.local": {"username": "u", "password": "p"}},
               "images": {"nginx:1.25": ["mirror.local/a/nginx", "mirror.local/b/nginx"]}}"#,
        );
        let config = Config::load_image_syncer_combined(&json, &env).expect("loads");
        assert_eq!(config.images()[0].destinations.len(), 2);
        assert_eq!(config.auth().keys().collect::<Vec<_>>(), ["mirror.local"]);
        let yaml = write(
            dir.path(),
            "config.yaml",
            "images:\n  nginx: mirror.local/nginx\n",
        );
        let config = Config::load_image_syncer_combined(&yaml, &env).expect("loads");
        assert!(config.auth().keys().next().is_none());
    }

    #[test]
    fn bad_files_are_located_errors() {
        let dir = tempfile::tempdir().expect("dir");
        let cases = [
            ("a.yaml", "nginx:1.25:\n", "a.yaml:1:1: empty destination"),
            ("b.yaml", "nginx: []\n", "b.yaml:1:1: empty destination"),
            ("c.yaml", "# nothing\n", "c.yaml: no images"),
            ("d.yaml", "nginx: '::bad'\n", "d.yaml:1:8"),
        ];
        for (name, text, expected) in cases {
            let path = write(dir.path(), name, text);
            let error = Config::load_image_syncer(&path, None, &env).expect_err(text);
            assert!(error.to_string().contains(expected), "{error}");
        }
        let missing = Config::load_image_syncer(&dir.path().join("none.yaml"), None, &env)
            .expect_err("missing");
        assert!(
            missing.to_string().ends_with("none.yaml: no such file"),
            "{missing}"
        );
        let combined = write(dir.path(), "e.yaml", "images: {}\nproc: 3\n");
        let error = Config::load_image_syncer_combined(&combined, &env).expect_err("unknown key");
        assert!(error.to_string().contains("e.yaml:2:1"), "{error}");
    }
}
