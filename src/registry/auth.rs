//! Authentication: the `/v2/` ping (scheme and challenge per host) and the Authorization
//! header of each request (Basic, or a Bearer token from `token`).
//!
//! Owns what a request presents; it must not fetch tokens itself (`token` does, under the
//! realm rule) nor attach anything to a request for another host (`request` decides that).

use std::sync::{Arc, RwLock};

use base64::Engine;
use reqwest::header::HeaderValue;
use url::Url;

use super::challenge::{parse_challenge, Challenge};
use super::error::{network, ErrorKind, RegistryError};
use super::request::Repo;
use super::{Host, RegistryClient};
use crate::credentials::Credentials;
use crate::secret::Secret;

/// A pinged registry: the base URL (scheme decided) and its current challenge.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) base: Url,
    challenge: RwLock<Challenge>,
}

impl Endpoint {
    pub(crate) fn challenge(&self) -> Challenge {
        self.challenge
            .read()
            .map(|c| c.clone())
            .unwrap_or(Challenge::None)
    }

    /// Records a challenge learned from a 401 (without its per-request scopes).
    pub(crate) fn learn(&self, challenge: &Challenge) {
        let general = match challenge {
            Challenge::Bearer { realm, service, .. } => Challenge::Bearer {
                realm: realm.clone(),
                service: service.clone(),
                scopes: Vec::new(),
            },
            other => other.clone(),
        };
        if let Ok(mut current) = self.challenge.write() {
            if *current != general {
                tracing::debug!(challenge = ?general, "registry changed its challenge");
                *current = general;
            }
        }
    }
}

/// What a request presented, to decide what a 401 means.
#[derive(Debug, Clone)]
pub(crate) enum Presented {
    Nothing,
    Basic,
    Bearer { token: Secret, fresh: bool },
}

impl RegistryClient {
    /// Pings `/v2/` once per host (cached): picks the scheme and records the challenge.
    /// HTTPS is tried first; plain HTTP only for insecure or loopback hosts, when HTTPS
    /// cannot even connect. A host that stays silent over HTTPS (a timeout) is not asked
    /// again over HTTP: that would only wait a second time.
    pub(crate) async fn endpoint(
        &self,
        host: &Arc<Host>,
        registry: &str,
    ) -> Result<Arc<Endpoint>, RegistryError> {
        let endpoint = host
            .endpoint
            .get_or_try_init(|| async {
                self.inner
                    .options
                    .retry
                    .run(|_| self.ping(host, registry))
                    .await
                    .map(Arc::new)
            })
            .await?;
        Ok(endpoint.clone())
    }

    async fn ping(&self, host: &Host, registry: &str) -> Result<Endpoint, RegistryError> {
        let error = |kind| RegistryError::new(registry, None, "ping /v2/", kind);
        let schemes: &[&str] = if host.plain_http_allowed() {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut last = None;
        for scheme in schemes {
            let base = Url::parse(&format!("{scheme}://{}/", host.authority))
                .map_err(|e| error(ErrorKind::Protocol(format!("bad registry address: {e}"))))?;
            let url = base
                .join("v2/")
                .map_err(|e| error(ErrorKind::Protocol(e.to_string())))?;
            let response = match host.http.get(url).send().await {
                Ok(response) => response,
                Err(e) => match network(e, &host.limits) {
                    ErrorKind::Network(cause) => {
                        last = Some(error(ErrorKind::Network(format!("{scheme}: {cause}"))));
                        continue;
                    }
                    stall => return Err(error(stall)),
                },
            };
            let status = response.status().as_u16();
            let challenge = if status == 401 {
                parse_challenge(response.headers()).unwrap_or(Challenge::None)
            } else if status == 429 || status >= 500 {
                return Err(error(ErrorKind::Status {
                    status,
                    errors: vec![],
                    retry_after: None,
                }));
            } else {
                Challenge::None
            };
            tracing::debug!(registry, %base, ?challenge, "pinged");
            return Ok(Endpoint {
                base,
                challenge: RwLock::new(challenge),
            });
        }
        Err(last.unwrap_or_else(|| error(ErrorKind::Protocol("no scheme to try".into()))))
    }
}

impl Repo {
    /// The Authorization header for a request needing `scopes`. `stale` is a token the
    /// registry just rejected: it is dropped and a fresh one fetched.
    pub(crate) async fn authorization(
        &self,
        scopes: &[String],
        stale: Option<&Secret>,
    ) -> Result<(Option<HeaderValue>, Presented), RegistryError> {
        match self.endpoint.challenge() {
            Challenge::None => Ok((None, Presented::Nothing)),
            Challenge::Basic => match self.credentials().await? {
                Some(Credentials::Basic { username, password }) => {
                    let raw = format!("{username}:{}", password.expose());
                    let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
                    Ok((
                        Some(sensitive(&format!("Basic {encoded}"))?),
                        Presented::Basic,
                    ))
                }
                _ => Ok((None, Presented::Nothing)),
            },
            Challenge::Bearer { realm, service, .. } => {
                let (token, fresh) = self
                    .token(&realm, service.as_deref(), scopes, stale)
                    .await?;
                let header = sensitive(&format!("Bearer {}", token.expose()))?;
                Ok((Some(header), Presented::Bearer { token, fresh }))
            }
        }
    }
}

/// A header value marked sensitive (hyper keeps it out of its debug output).
fn sensitive(text: &str) -> Result<HeaderValue, RegistryError> {
    let mut value = HeaderValue::from_str(text).map_err(|_| {
        RegistryError::new(
            "",
            None,
            "authorization",
            ErrorKind::Protocol("credential has characters not allowed in a header".into()),
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}
