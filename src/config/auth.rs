//! auth.yaml: per-registry credentials and transport settings (image-syncer format).
//!
//! Owns the parsed entries and `${ENV}` expansion. Resolving which entry applies to a
//! reference (longest match, fallbacks to docker config.json and TARGET_USER) is
//! `crate::credentials`' job. No value read here may ever reach an error message.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::{ConfigError, Location};
use super::limits::{self, RawLimits};
use super::yaml::{Entries, YamlFile};
use crate::local_file;
use crate::reference::normalize_registry;
use crate::registry::LimitOverrides;
use crate::secret::Secret;

/// One auth.yaml entry, `${ENV}` already expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEntry {
    /// `registry` or `registry/namespace` (e.g. `ghcr.io`, `127.0.0.1:5000/team`), Docker
    /// Hub's aliases folded into `docker.io`.
    pub key: String,
    /// User name, when the registry needs one.
    pub username: Option<String>,
    /// Password or access token.
    pub password: Option<Secret>,
    /// Plain HTTP or unverified TLS allowed for this registry.
    pub insecure: bool,
    /// Extra CA bundle (PEM) to trust for this registry.
    pub ca_file: Option<PathBuf>,
    /// `limits:` of a host-only key (what the registry may cost; defaults otherwise).
    pub limits: LimitOverrides,
}

/// auth.yaml as loaded. Syntax errors fail the load; what depends on the environment (an
/// unset `${VAR}`, a missing `ca_file`) fails only when a run needs that registry, so
/// `ferry map` or a hop that never touches a registry works without its secrets.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    slots: Vec<AuthSlot>,
}

#[derive(Debug, Clone)]
struct AuthSlot {
    /// The key, normalized (`docker.io/team` for `index.docker.io/team`).
    key: String,
    /// Its registry host.
    host: String,
    entry: Result<AuthEntry, ConfigError>,
}

impl AuthConfig {
    /// The entries for the registries a run uses (hosts as in `Reference::registry`);
    /// the first that needs an unset variable or a missing CA file is an error.
    pub fn entries_for<'a>(
        &self,
        registries: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<AuthEntry>, ConfigError> {
        let wanted: Vec<String> = registries
            .into_iter()
            .map(|r| normalize_registry(r).unwrap_or_else(|_| r.to_owned()))
            .collect();
        self.slots
            .iter()
            .filter(|slot| wanted.contains(&slot.host))
            .map(|slot| slot.entry.clone())
            .collect()
    }

    /// Every entry; the first unresolved one is an error.
    pub fn entries(&self) -> Result<Vec<AuthEntry>, ConfigError> {
        self.slots.iter().map(|slot| slot.entry.clone()).collect()
    }

    /// The keys, normalized, in file order (for `ferry plan` and diagnostics).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|slot| slot.key.as_str())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    insecure: Option<bool>,
    ca_file: Option<Spanned<String>>,
    limits: Option<Spanned<RawLimits>>,
}

/// The entries of an auth file as read, before they are checked and expanded.
pub(crate) type AuthEntries = Entries<Option<RawAuth>>;

/// Parses auth.yaml; `root` anchors a relative `ca_file`, `env` looks variables up.
pub(crate) fn parse(
    file: &YamlFile,
    root: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<AuthConfig, ConfigError> {
    let Some(entries) = file.parse::<AuthEntries>()? else {
        return Ok(AuthConfig::default());
    };
    from_entries(file, root, env, entries)
}

/// The entries of `file` already read (as part of image-syncer's combined config file).
pub(crate) fn from_entries(
    file: &YamlFile,
    root: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    Entries(entries): AuthEntries,
) -> Result<AuthConfig, ConfigError> {
    let mut slots = Vec::new();
    for (key, raw) in entries {
        let normalized = normalize_registry(&key.value).map_err(|m| {
            file.error(&key, format!("invalid auth key: {m}"))
                .with_value(&key.value)
        })?;
        let raw = raw.ok_or_else(|| file.error(&key, "empty auth entry").with_value(&key.value))?;
        if raw.username.is_some() != raw.password.is_some() {
            return Err(file
                .error(&key, "username and password must be given together")
                .with_value(&key.value));
        }
        let host = normalized.split('/').next().unwrap_or_default().to_owned();
        if let Some(limits) = raw.limits.as_ref().filter(|_| normalized != host) {
            let message = format!("limits apply to a whole registry: set them under {host}");
            return Err(file.error(limits, message).with_value(&key.value));
        }
        let entry = resolve(file, root, env, normalized.clone(), raw)?;
        slots.push(AuthSlot {
            key: normalized,
            host,
            entry,
        });
    }
    Ok(AuthConfig { slots })
}

/// Expands one entry: `Err` for a syntax error (fails the load), `Ok(Err)` for what the
/// environment lacks (fails only when the registry is used).
fn resolve(
    file: &YamlFile,
    root: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    key: String,
    raw: RawAuth,
) -> Result<Result<AuthEntry, ConfigError>, ConfigError> {
    let mut missing: Option<ConfigError> = None;
    let mut take = |name: &str,
                    value: Option<Spanned<String>>|
     -> Result<Option<(String, Location)>, ConfigError> {
        let Some(value) = value else { return Ok(None) };
        let at = file.at(&value);
        match expand(&value.value, env)
            .map_err(|m| ConfigError::new(at.clone(), format!("{name}: {m}")))?
        {
            Expanded::Value(text) => Ok(Some((text, at))),
            Expanded::Unset(var) => {
                let message = format!("{name} needs environment variable that is not set");
                missing.get_or_insert(ConfigError::new(at, message).with_value(var));
                Ok(None)
            }
        }
    };
    let limits = match raw.limits {
        Some(block) => limits::parse(file, block.value)?,
        None => LimitOverrides::default(),
    };
    let username = take("username", raw.username)?;
    let password = take("password", raw.password)?;
    let ca_file = take("ca_file", raw.ca_file)?;
    if let Some(error) = missing {
        return Ok(Err(error));
    }
    let ca_file = match ca_file {
        Some((path, at)) => match ca_path(root, &path, at)? {
            Ok(path) => Some(path),
            Err(error) => return Ok(Err(error)),
        },
        None => None,
    };
    Ok(Ok(AuthEntry {
        key,
        username: username.map(|(text, _)| text),
        password: password.map(|(text, _)| Secret::new(text)),
        insecure: raw.insecure.unwrap_or(false),
        ca_file,
        limits,
    }))
}

/// The CA bundle's path: `Ok(Err)` when nothing is there (that fails only a run that
/// needs the registry, like an unset variable), `Err` when what is there is no PEM
/// certificate bundle (a sync would fail on it: the load does).
fn ca_path(
    root: &Path,
    path: &str,
    at: Location,
) -> Result<Result<PathBuf, ConfigError>, ConfigError> {
    let full = root.join(path);
    let bytes = match local_file::read(&full, local_file::MAX_CONFIG_FILE) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            let missing = ConfigError::new(at, "ca_file does not exist").with_value(path);
            return Ok(Err(missing));
        }
        Err(e) => return Err(ConfigError::new(at, format!("ca_file: {e}")).with_value(path)),
    };
    match reqwest::Certificate::from_pem_bundle(&bytes) {
        Ok(certificates) if !certificates.is_empty() => Ok(Ok(full)),
        _ => Err(ConfigError::new(at, "ca_file holds no PEM certificate").with_value(path)),
    }
}

/// A value after `${NAME}` expansion.
#[derive(Debug, PartialEq, Eq)]
enum Expanded {
    /// Every variable was set.
    Value(String),
    /// This variable is not set.
    Unset(String),
}

/// Expands `${NAME}` (NAME: letters, digits, `_`); any other `$` is literal. `Err` is a
/// syntax error. Never puts a value in a message.
fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Expanded, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or("'${' without '}'")?;
        let name = &after[..end];
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err("invalid ${NAME} placeholder (NAME: letters, digits, _)".to_owned());
        }
        match env(name) {
            Some(value) => out.push_str(&value),
            None => return Ok(Expanded::Unset(name.to_owned())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Expanded::Value(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "USER_A" => Some("alice".into()),
            "PASS_A" => Some("s3cr3t$x".into()),
            _ => None,
        }
    }

    #[test]
    fn expansion() {
        let value = |s: &str| Ok(Expanded::Value(s.to_owned()));
        let cases: Vec<(&str, Result<Expanded, &str>)> = vec![
            ("plain", value("plain")),
            ("${USER_A}", value("alice")),
            ("pre-${USER_A}-${PASS_A}", value("pre-alice-s3cr3t$x")),
            ("$USER_A costs $5", value("$USER_A costs $5")),
            ("${NOPE}", Ok(Expanded::Unset("NOPE".to_owned()))),
            ("${USER_A", Err("without")),
            ("${1X}", Err("invalid")),
            ("${}", Err("invalid")),
        ];
        for (text, expected) in cases {
            match (expand(text, &env), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{text}: {got}"),
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
    }

    #[test]
    fn limits_override_only_what_they_name() {
        let yaml = "127.0.0.1:5000:\n  insecure: true\n  limits:\n    idle_timeout: 1500ms\n    \
                    connect_timeout: 2\n    tags_per_repository: 500\n    manifest_size: 8MiB\n    \
                    max_concurrency: 3\n";
        let file = YamlFile::from_text(Path::new("config/auth.yaml"), yaml);
        let entries = parse(&file, Path::new("."), &env)
            .expect("valid")
            .entries()
            .expect("no variables");
        let limits = entries[0].limits;
        assert_eq!(
            limits.idle_timeout,
            Some(std::time::Duration::from_millis(1500))
        );
        assert_eq!(
            limits.connect_timeout,
            Some(std::time::Duration::from_secs(2))
        );
        assert_eq!(limits.tags_per_repository, Some(500));
        assert_eq!(limits.manifest_size, Some(8 * 1024 * 1024));
        assert_eq!((limits.pages_per_listing, limits.config_size), (None, None));
        assert_eq!(limits.max_concurrency, Some(3));
        let too_many = "127.0.0.1:5000:\n  limits:\n    max_concurrency: 18446744073709551615\n";
        let file = YamlFile::from_text(Path::new("config/auth.yaml"), too_many);
        let error = parse(&file, Path::new("."), &env).expect_err("more than a semaphore holds");
        assert!(
            error
                .to_string()
                .starts_with("config/auth.yaml:3:22: max_concurrency must be at most 1024"),
            "{error}"
        );
    }

    #[test]
    fn unset_variables_fail_only_the_registry_that_needs_them() {
        let yaml =
            "registry.cn-beijing.aliyuncs.com:\n  username: ${USER_A}\n  password: ${PASS_A}\n\
                    index.docker.io/team:\n  username: bob\n  password: ${NOPE}\n\
                    127.0.0.1:5000:\n  insecure: true\n";
        let file = YamlFile::from_text(Path::new("config/auth.yaml"), yaml);
        let auth = parse(&file, Path::new("."), &env).expect("syntax is fine");
        let keys: Vec<&str> = auth.keys().collect();
        assert_eq!(
            keys,
            [
                "registry.cn-beijing.aliyuncs.com",
                "docker.io/team",
                "127.0.0.1:5000"
            ]
        );
        let used = auth
            .entries_for(["registry.cn-beijing.aliyuncs.com", "127.0.0.1:5000"])
            .expect("no unset variable among these");
        assert_eq!(used.len(), 2);
        assert_eq!(used[0].username.as_deref(), Some("alice"));
        assert_eq!(
            used[0].password.as_ref().map(Secret::expose),
            Some("s3cr3t$x")
        );
        assert!(used[1].insecure);
        let e = auth
            .entries_for(["index.docker.io"])
            .expect_err("NOPE is unset");
        assert_eq!(
            e.to_string(),
            "config/auth.yaml:6:13: password needs environment variable that is not set (NOPE)"
        );
        assert!(auth.entries().is_err());
    }
}
