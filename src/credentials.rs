//! Credential resolution: which user name and password (or identity token) to present to a
//! registry for one repository, and the per-host transport settings (`insecure`, `ca_file`).
//!
//! Owns the lookup order and running docker credential helpers; it must not talk to a
//! registry, and it must never print or log a secret.
//!
//! Order, first hit wins:
//! 1. auth.yaml entries: key `registry` or `registry/namespace`, the longest component-wise
//!    prefix of `registry/repository` wins.
//! 2. docker `config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):
//!    `credHelpers[host]`, then an inline `auths` entry (`auth` = base64 `user:pass`, or
//!    `username`/`password`, or `identitytoken`), then `credsStore`. A helper that fails is
//!    an error; a helper answering "credentials not found" gives no credentials.
//! 3. For the push side only: `TARGET_USER`/`TARGET_PASSWORD` (Ferryman compatibility).
//!
//! Otherwise the registry is used anonymously.

mod docker_config;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::auth::AuthEntry;
use crate::registry::LimitOverrides;
use crate::secret::Secret;

pub use docker_config::DockerConfig;

/// What to present to a registry (or its token service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// User name and password (or a personal access token used as password).
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: Secret,
    },
    /// An OAuth2 refresh token from `docker login` (a helper's `<token>` user name).
    IdentityToken(Secret),
}

impl Credentials {
    /// The user name to show in messages (`<token>` for an identity token).
    pub fn username(&self) -> &str {
        match self {
            Credentials::Basic { username, .. } => username,
            Credentials::IdentityToken(_) => "<token>",
        }
    }

    /// `text` with the password or token replaced by `<redacted>`: a registry may echo
    /// what it was sent in an error message.
    pub fn redact(&self, text: &str) -> String {
        let secret = match self {
            Credentials::Basic { password, .. } => password,
            Credentials::IdentityToken(token) => token,
        };
        match secret.expose() {
            "" => text.to_owned(),
            secret => text.replace(secret, "<redacted>"),
        }
    }
}

/// Which end of a copy a request serves; only the push side falls back to `TARGET_USER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Side {
    /// Pulling from a source registry.
    #[default]
    Source,
    /// Pushing to a target registry.
    Target,
}

/// Per-host transport settings from auth.yaml.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSettings {
    /// Plain HTTP and unverified TLS are allowed.
    pub insecure: bool,
    /// A PEM bundle whose certificates are trusted as extra roots for this host.
    pub ca_file: Option<PathBuf>,
    /// Limits raised or lowered for this host (only a host-only entry sets them).
    pub limits: LimitOverrides,
}

/// Why credentials could not be resolved.
#[derive(Clone, Debug, Error)]
pub enum CredentialError {
    /// The docker config file exists but cannot be read or parsed.
    #[error("docker config {path}: {cause}")]
    DockerConfig {
        /// The file.
        path: PathBuf,
        /// What was wrong, without any secret.
        cause: String,
    },
    /// A configured credential helper failed (missing binary, crash, bad output).
    #[error("credential helper docker-credential-{helper} for {server}: {cause}")]
    Helper {
        /// Helper name (`desktop`, `ecr-login`, …).
        helper: String,
        /// Server URL that was asked for.
        server: String,
        /// What went wrong, without any secret.
        cause: String,
    },
}

/// Resolves credentials and host settings; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct CredentialStore {
    entries: Vec<AuthEntry>,
    docker: Option<DockerConfig>,
    target_env: Option<Credentials>,
    helper_path: Option<OsString>,
}

impl CredentialStore {
    /// A store over auth.yaml entries, the user's docker config and the `TARGET_*` variables.
    pub fn from_env(entries: Vec<AuthEntry>) -> Result<Self, CredentialError> {
        let docker = match docker_config_path() {
            Some(path) => DockerConfig::load(&path)?,
            None => None,
        };
        let target_env = match (
            std::env::var("TARGET_USER"),
            std::env::var("TARGET_PASSWORD"),
        ) {
            (Ok(username), Ok(password)) if !username.is_empty() => Some(Credentials::Basic {
                username,
                password: Secret::new(password),
            }),
            _ => None,
        };
        Ok(CredentialStore {
            entries,
            docker,
            target_env,
            helper_path: None,
        })
    }

    /// A store from explicit parts (tests, or callers that load the docker config themselves).
    pub fn new(
        entries: Vec<AuthEntry>,
        docker: Option<DockerConfig>,
        target_env: Option<Credentials>,
    ) -> Self {
        CredentialStore {
            entries,
            docker,
            target_env,
            helper_path: None,
        }
    }

    /// Searches helpers (`docker-credential-NAME`) in this `PATH`-style list instead of `$PATH`.
    pub fn with_helper_path(mut self, path: impl Into<OsString>) -> Self {
        self.helper_path = Some(path.into());
        self
    }

    /// Credentials for `repository` on `registry` (canonical host, e.g. `docker.io`), or
    /// `None` for anonymous access.
    pub async fn resolve(
        &self,
        registry: &str,
        repository: &str,
        side: Side,
    ) -> Result<Option<Credentials>, CredentialError> {
        if let Some(entry) = self.auth_entry(registry, repository) {
            if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
                return Ok(Some(Credentials::Basic {
                    username: username.clone(),
                    password: password.clone(),
                }));
            }
        }
        if let Some(docker) = &self.docker {
            let helper_path = self
                .helper_path
                .clone()
                .or_else(|| std::env::var_os("PATH"))
                .unwrap_or_default();
            if let Some(found) = docker.resolve(registry, &helper_path).await? {
                return Ok(Some(found));
            }
        }
        if side == Side::Target {
            return Ok(self.target_env.clone());
        }
        Ok(None)
    }

    /// Transport settings for a registry host: the host-only entry wins; otherwise any
    /// namespaced entry of that host that sets them.
    pub fn settings(&self, registry: &str) -> HostSettings {
        let registry = normalize_host(registry);
        let mut settings = HostSettings::default();
        let mut exact = false;
        for entry in &self.entries {
            let mut parts = entry.key.trim_end_matches('/').splitn(2, '/');
            let host = normalize_host(parts.next().unwrap_or_default());
            if host != registry {
                continue;
            }
            let host_only = parts.next().is_none();
            if host_only {
                settings.insecure = entry.insecure;
                settings.ca_file = entry.ca_file.clone().or(settings.ca_file);
                settings.limits = entry.limits;
                exact = true;
            } else if !exact {
                settings.insecure |= entry.insecure;
                if settings.ca_file.is_none() {
                    settings.ca_file = entry.ca_file.clone();
                }
            }
        }
        settings
    }

    /// The auth.yaml entry with credentials whose key is the longest component-wise prefix
    /// of `registry/repository`.
    fn auth_entry(&self, registry: &str, repository: &str) -> Option<&AuthEntry> {
        let registry = normalize_host(registry);
        let target: Vec<&str> = std::iter::once(registry.as_str())
            .chain(repository.split('/'))
            .collect();
        let mut best: Option<(usize, &AuthEntry)> = None;
        for entry in self
            .entries
            .iter()
            .filter(|e| e.username.is_some() && e.password.is_some())
        {
            let mut key: Vec<String> = entry
                .key
                .trim_end_matches('/')
                .split('/')
                .map(str::to_owned)
                .collect();
            if let Some(first) = key.first_mut() {
                *first = normalize_host(first);
            }
            let matches = key.len() <= target.len() && key.iter().zip(&target).all(|(k, t)| k == t);
            if matches && best.is_none_or(|(len, _)| key.len() > len) {
                best = Some((key.len(), entry));
            }
        }
        best.map(|(_, entry)| entry)
    }
}

/// Canonical host for a registry key: scheme and path stripped, lower-cased, Docker Hub's
/// aliases folded into `docker.io`.
pub fn normalize_host(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            crate::reference::DOCKER_HUB.to_owned()
        }
        _ => host,
    }
}

fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(Path::new(&dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker").join("config.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, user: &str, insecure: bool) -> AuthEntry {
        AuthEntry {
            key: key.to_owned(),
            username: Some(user.to_owned()),
            password: Some(Secret::new(format!("{user}-pw"))),
            insecure,
            ca_file: None,
            limits: LimitOverrides::default(),
        }
    }

    async fn user_of(store: &CredentialStore, registry: &str, repo: &str, side: Side) -> String {
        match store.resolve(registry, repo, side).await.expect("resolves") {
            Some(c) => c.username().to_owned(),
            None => "anonymous".to_owned(),
        }
    }

    #[tokio::test]
    async fn longest_component_prefix_wins() {
        let store = CredentialStore::new(
            vec![
                entry("ghcr.io", "host", false),
                entry("ghcr.io/team", "team", false),
                entry("ghcr.io/team/app", "app", false),
                entry("index.docker.io/library", "hub", false),
            ],
            None,
            Some(Credentials::Basic {
                username: "env".into(),
                password: Secret::new("envpw"),
            }),
        );
        let cases = [
            ("ghcr.io", "team/app", "app"),
            ("ghcr.io", "team/app2", "team"),
            ("ghcr.io", "teamx/app", "host"),
            ("ghcr.io", "other", "host"),
            ("docker.io", "library/nginx", "hub"),
            ("docker.io", "bitnami/redis", "anonymous"),
            ("quay.io", "x", "anonymous"),
        ];
        for (registry, repo, want) in cases {
            assert_eq!(
                user_of(&store, registry, repo, Side::Source).await,
                want,
                "{registry}/{repo}"
            );
        }
        assert_eq!(user_of(&store, "quay.io", "x", Side::Target).await, "env");
    }

    #[test]
    fn host_settings_prefer_the_host_only_entry() {
        let mut with_ca = entry("lab.local:5000/team", "t", true);
        with_ca.ca_file = Some(PathBuf::from("/ca.pem"));
        let store = CredentialStore::new(
            vec![
                with_ca,
                entry("secure.io", "s", false),
                entry("secure.io/x", "x", true),
            ],
            None,
            None,
        );
        let lab = store.settings("lab.local:5000");
        assert!(lab.insecure);
        assert_eq!(lab.ca_file.as_deref(), Some(Path::new("/ca.pem")));
        assert!(!store.settings("secure.io").insecure);
        assert_eq!(store.settings("other.io"), HostSettings::default());
    }

    #[test]
    fn normalize_folds_hub_aliases_and_strips_urls() {
        assert_eq!(normalize_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_host("registry-1.docker.io"), "docker.io");
        assert_eq!(
            normalize_host("http://Lab.Local:5000/v2/"),
            "lab.local:5000"
        );
        assert_eq!(normalize_host("ghcr.io"), "ghcr.io");
    }
}
