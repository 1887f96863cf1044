//! Configuration: the files in `config/` (or `-c`) become typed values with locations.
//!
//! Owns parsing and validation of images.yaml, auth.yaml, rules.yaml, build-images.yaml and
//! Ferryman's items.yml. It must not do network I/O.

pub mod auth;
pub mod build;
pub mod error;
mod ferryman;
pub mod images;
mod immutable;
mod limits;
pub mod rules;
pub mod selection;
mod syncer;
mod yaml;

use std::path::{Path, PathBuf};

pub use auth::{AuthConfig, AuthEntry};
pub use build::{BuildImage, BuildMode};
pub use error::{ConfigError, Location};
pub use images::{CarriedImage, ImageEntry, ImmutableTags};
pub use selection::{TagOrder, TagSelection, TagSet};

pub use rules::RulesFile;
use yaml::YamlFile;

/// The files a configuration directory may hold; at least one must exist.
pub const CONFIG_FILES: [&str; 4] = [
    "images.yaml",
    "auth.yaml",
    "rules.yaml",
    "build-images.yaml",
];

/// A loaded configuration whose every file is valid syntax. What it maps to, and whether two
/// sources meet in one target, is `rules::Mapping`'s to say.
#[derive(Debug, Clone)]
pub struct Config {
    path: PathBuf,
    images: Vec<ImageEntry>,
    auth: AuthConfig,
    rules: RulesFile,
    builds: Vec<BuildImage>,
    carried: Vec<CarriedImage>,
}

impl Config {
    /// Loads a configuration directory (images.yaml, auth.yaml, rules.yaml,
    /// build-images.yaml, each optional) or a Ferryman items.yml file, reading `${VAR}`s
    /// of auth.yaml from the process environment.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Config::load_with_env(path, &|name| std::env::var(name).ok())
    }

    /// [`Config::load`] with `env` looking up auth.yaml's variables (tests, embedding).
    pub fn load_with_env(
        path: impl AsRef<Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let config = if path.is_file() && CONFIG_FILES.contains(&file_name) {
            let message = "a configuration file: give the directory that holds it";
            return Err(ConfigError::new(Location::file_only(path), message));
        } else if path.is_dir() {
            Config::load_dir(path, env)?
        } else {
            // An items.yml, or something that is not one (missing, a FIFO, a device …).
            Config::load_ferryman(path)?
        };
        Ok(config)
    }

    fn load_dir(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let [images, auth, rules, builds] =
            CONFIG_FILES.map(|name| YamlFile::read(&dir.join(name)));
        let (images, auth, rules, builds) = (images?, auth?, rules?, builds?);
        if images.is_none() && auth.is_none() && rules.is_none() && builds.is_none() {
            let message = format!(
                "no configuration files (expected one of {})",
                CONFIG_FILES.join(", ")
            );
            return Err(ConfigError::new(Location::file_only(dir), message));
        }
        // Relative paths (build contexts, ca_file) are under the project directory: the
        // directory that holds the config directory, as dockerfiles/ sits beside config/.
        let root = std::fs::canonicalize(dir)
            .ok()
            .and_then(|d| d.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        let build_file = builds
            .as_ref()
            .map(|f| build::parse(f, &root))
            .transpose()?
            .unwrap_or_default();
        Ok(Config {
            path: dir.to_owned(),
            images: images
                .as_ref()
                .map(images::parse)
                .transpose()?
                .unwrap_or_default(),
            auth: auth
                .as_ref()
                .map(|f| auth::parse(f, &root, env))
                .transpose()?
                .unwrap_or_default(),
            rules: rules
                .as_ref()
                .map(rules::parse)
                .transpose()?
                .unwrap_or_default(),
            builds: build_file.builds,
            carried: build_file.carried,
        })
    }

    fn load_ferryman(path: &Path) -> Result<Config, ConfigError> {
        let file = YamlFile::read(path)?.ok_or_else(|| {
            let message = "no such configuration directory or items.yml file";
            ConfigError::new(Location::file_only(path), message)
        })?;
        Ok(Config {
            path: path.to_owned(),
            images: ferryman::parse(&file)?,
            auth: AuthConfig::default(),
            rules: RulesFile::preset("ferryman", Location::file_only(path)),
            builds: Vec::new(),
            carried: Vec::new(),
        })
    }

    /// The directory (or items.yml) this was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// images.yaml entries (or Ferryman items), in file order.
    pub fn images(&self) -> &[ImageEntry] {
        &self.images
    }

    /// auth.yaml.
    pub fn auth(&self) -> &AuthConfig {
        &self.auth
    }

    /// rules.yaml as written (`preset: ferryman` for Ferryman files, empty without it).
    pub fn rules_file(&self) -> &RulesFile {
        &self.rules
    }

    /// build-images.yaml entries (its list form).
    pub fn builds(&self) -> &[BuildImage] {
        &self.builds
    }

    /// Built images carried to hop 2 as written (build-images.yaml's mapping form): their
    /// sources are mirror images, their destinations private ones.
    pub fn carried(&self) -> &[CarriedImage] {
        &self.carried
    }
}

#[cfg(test)]
mod load_tests;
#[cfg(test)]
mod tests;
