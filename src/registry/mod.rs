//! Registry client over the OCI distribution API: one cloneable client for all hosts, with
//! per-host TLS, scheme, concurrency cap, credentials and token cache.
//!
//! Owns talking to registries (`auth`, `tags`, `manifest`, `blob`, `upload`); it must not
//! decide what to copy (that is the registry transport) nor print anything but `tracing`.
//!
//! # Scheme and TLS
//! HTTPS with verified certificates is the default. A host's `ca_file` (auth.yaml) adds its
//! certificates as extra trusted roots. A host marked `insecure` accepts any certificate
//! and, like a loopback host (`127.0.0.0/8`, `localhost`, `[::1]`), may be spoken to over
//! plain HTTP: the `/v2/` ping tries HTTPS first and falls back to HTTP only when HTTPS
//! cannot even connect (refused, TLS handshake failure); the choice is cached per host for
//! the life of the client. Any other host is HTTPS only.
//!
//! # Where credentials go
//! Credentials (Basic header or Bearer token) are attached only to requests whose URL has
//! the scheme, host and port of the pinged registry endpoint. Redirects are followed by
//! hand (at most 5 hops): a hop to another host or scheme (object storage serving blobs) is
//! sent without Authorization; plain HTTP is followed only to loopback or insecure hosts.
//! An upload `Location` on another host gets no credentials either. The token realm rule is
//! in the `auth` module doc.
//!
//! # Pull budgets
//! Source-side manifest GETs are counted per registry ("pulls spent": Docker Hub counts each
//! as a pull); `ratelimit-remaining`/`ratelimit-limit` of manifest answers are kept, and a
//! `429 toomanyrequests` sets the remainder to 0 and is never retried. HEADs are free.
//!
//! # Limits
//! Every host has [`Limits`] (the client's defaults, overridden per registry by auth.yaml's
//! `limits:`): tags and pages of a listing, manifest and config sizes, connect and idle
//! timeouts. Every body is read against them and against the length it announced.

mod auth;
mod blob;
mod body;
mod budget;
mod challenge;
mod error;
#[cfg(test)]
pub(crate) mod fake;
mod image;
mod limits;
mod manifest;
mod request;
mod retry;
mod tags;
mod token;
mod upload;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tokio::sync::{OnceCell, Semaphore};
use url::Url;

use crate::credentials::{CredentialError, CredentialStore, Credentials, HostSettings, Side};
use crate::reference::Reference;

pub use crate::retry::RetryPolicy;
pub use blob::BlobStream;
pub use budget::PullBudget;
pub use error::{ErrorKind, OciError, RegistryError};
pub use limits::{
    parse_duration, Limit, LimitOverrides, Limits, DEFAULT_RATE_FLOOR, MAX_CONCURRENCY,
};
pub use manifest::{
    Manifest, ManifestHead, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MANIFEST_MEDIA_TYPES, OCI_INDEX,
    OCI_MANIFEST,
};
pub use upload::{BlobPush, BlobSource, MountOutcome, SpentOnce, UploadSession};

/// Tunables of a [`RegistryClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Retry policy for network errors, 5xx and 429.
    pub retry: RetryPolicy,
    /// Blobs up to this size are uploaded with one PUT; larger ones in PATCH chunks.
    pub monolithic_limit: u64,
    /// Size of one PATCH chunk.
    pub chunk_size: u64,
    /// Limits of a host whose auth.yaml entry sets none (its `limits:` override these).
    pub limits: Limits,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retry: RetryPolicy::default(),
            monolithic_limit: 32 * 1024 * 1024,
            chunk_size: 16 * 1024 * 1024,
            limits: Limits::default(),
            user_agent: format!("ferry/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Client for the OCI distribution API of any number of registries. Cheap to clone; all
/// clones share connections, pings, tokens and concurrency caps.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
    side: Side,
}

/// (registry, repository, side) of a credential lookup.
type CredentialKey = (String, String, Side);
/// What a credential lookup gave, failures included.
type Resolved = Result<Option<Credentials>, CredentialError>;

struct Inner {
    credentials: CredentialStore,
    options: ClientOptions,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    tokens: token::TokenCache,
    /// Credentials per (registry, repository, side); failures too, so a broken helper is
    /// asked once per run, not once per request.
    resolved: tokio::sync::Mutex<HashMap<CredentialKey, Resolved>>,
    /// Pulls spent on and budgets announced by each source registry.
    budgets: budget::Budgets,
    /// Manifests the source side pulled in this run.
    pulled: budget::Pulled,
}

/// One registry host (`host[:port]`): its HTTP client (TLS settings), request cap and ping.
pub(crate) struct Host {
    pub(crate) authority: String,
    settings: HostSettings,
    pub(crate) limits: Limits,
    pub(crate) http: reqwest::Client,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) endpoint: OnceCell<Arc<auth::Endpoint>>,
    /// 429 answers in a row from this host (any other answer resets it): past
    /// [`request::THROTTLED_AFTER`], the rest of the run asks it nothing more.
    pub(crate) too_many: std::sync::atomic::AtomicU32,
}

impl Host {
    /// Plain HTTP is allowed for insecure and loopback hosts.
    pub(crate) fn plain_http_allowed(&self) -> bool {
        self.settings.insecure || is_loopback(&self.authority)
    }
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = self
            .inner
            .hosts
            .lock()
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("RegistryClient")
            .field("side", &self.side)
            .field("hosts", &hosts)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client resolving credentials and host settings from `credentials`, acting for the
    /// source side (see [`RegistryClient::for_side`]).
    pub fn new(credentials: CredentialStore, options: ClientOptions) -> Self {
        RegistryClient {
            inner: Arc::new(Inner {
                credentials,
                options,
                hosts: Mutex::new(HashMap::new()),
                tokens: token::TokenCache::default(),
                resolved: tokio::sync::Mutex::new(HashMap::new()),
                budgets: budget::Budgets::default(),
                pulled: budget::Pulled::default(),
            }),
            side: Side::Source,
        }
    }

    /// The same client (shared connections and caps) resolving credentials for `side`;
    /// only [`Side::Target`] falls back to `TARGET_USER`/`TARGET_PASSWORD`.
    pub fn for_side(&self, side: Side) -> Self {
        RegistryClient {
            inner: self.inner.clone(),
            side,
        }
    }

    /// The side this client resolves credentials for.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The options in force.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The limits of `registry` (a host as in `Reference::registry`): the client's, with
    /// what its auth.yaml entry overrides.
    pub fn limits_of(&self, registry: &str) -> Limits {
        let settings = self.inner.credentials.settings(registry);
        settings.limits.apply(&self.inner.options.limits)
    }

    /// State for the host of `url` (created on first use, not pinged).
    pub(crate) async fn host_for(&self, url: &Url) -> Result<Arc<Host>, RegistryError> {
        let host = url.host_str().unwrap_or_default();
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        self.host(&authority)
    }

    /// State for `authority` (`host[:port]`), created on first use.
    pub(crate) fn host(&self, authority: &str) -> Result<Arc<Host>, RegistryError> {
        let error = |cause: String| {
            RegistryError::new(authority, None, "configure TLS", ErrorKind::Io(cause))
        };
        let mut hosts = self
            .inner
            .hosts
            .lock()
            .map_err(|_| error("host table poisoned".into()))?;
        if let Some(host) = hosts.get(authority) {
            return Ok(host.clone());
        }
        let settings = self.inner.credentials.settings(authority);
        let options = &self.inner.options;
        let limits = settings.limits.apply(&options.limits);
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(options.user_agent.clone())
            .connect_timeout(limits.connect_timeout)
            .read_timeout(limits.idle_timeout)
            .danger_accept_invalid_certs(settings.insecure);
        if let Some(path) = &settings.ca_file {
            let pem = crate::local_file::read(path, crate::local_file::MAX_CONFIG_FILE)
                .map_err(|e| error(format!("ca_file {}: {e}", path.display())))?
                .ok_or_else(|| error(format!("ca_file {}: no such file", path.display())))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|certificates| !certificates.is_empty())
                .ok_or_else(|| {
                    error(format!(
                        "ca_file {}: holds no PEM certificate",
                        path.display()
                    ))
                })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| error(format!("HTTP client: {e}")))?;
        let host = Arc::new(Host {
            authority: authority.to_owned(),
            settings,
            limits,
            http,
            permits: Arc::new(Semaphore::new(
                usize::try_from(limits.max_concurrency)
                    .unwrap_or(usize::MAX)
                    .max(1),
            )),
            endpoint: OnceCell::new(),
            too_many: Default::default(),
        });
        hosts.insert(authority.to_owned(), host.clone());
        Ok(host)
    }

    /// Credentials for one repository on this client's side (resolved once, then cached),
    /// e.g. to hand to the Docker daemon; never print them.
    pub async fn credentials_for(
        &self,
        reference: &Reference,
    ) -> Result<Option<Credentials>, RegistryError> {
        let key = (
            reference.registry().to_owned(),
            reference.repository().to_owned(),
            self.side,
        );
        let mut resolved = self.inner.resolved.lock().await;
        let found = match resolved.get(&key) {
            Some(found) => found.clone(),
            None => {
                let found = self
                    .inner
                    .credentials
                    .resolve(reference.registry(), reference.repository(), self.side)
                    .await;
                resolved.insert(key, found.clone());
                found
            }
        };
        found.map_err(|e| {
            RegistryError::new(
                reference.registry(),
                Some(reference.repository()),
                "resolve credentials",
                ErrorKind::Credentials(e),
            )
        })
    }
}

/// True for `localhost`, `127.0.0.0/8` and `[::1]`, with or without a port.
pub(crate) fn is_loopback(authority: &str) -> bool {
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}
