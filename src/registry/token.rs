//! Bearer tokens: fetched from the realm per sorted scope set (repeated `scope` parameters),
//! cached per (registry host, scopes, user) until `expires_in` (default 60 s).
//!
//! Owns the realm rule below; it must not send a registry's credentials to a realm that
//! fails [`may_send_credentials`], and must not keep a token the registry rejected.
//!
//! The realm rule (SPEC §9: credentials are scoped to one registry host): credentials go to
//! the token realm only when the realm host is the registry host (ports may differ), or the
//! pair is a known registry/token-service pair run by one operator (`registry-1.docker.io`
//! -> `auth.docker.io`, Aliyun `registry.<region>.aliyuncs.com` ->
//! `dockerauth.<region>.aliyuncs.com`); never over plain HTTP to a non-loopback host.
//! Otherwise the token is asked for anonymously. A shared parent domain is not enough:
//! `a.azurecr.io` and `b.azurecr.io` belong to different tenants.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use super::error::{network, one_line, ErrorKind, RegistryError};
use super::is_loopback;
use super::request::Repo;
use crate::credentials::Credentials;
use crate::secret::Secret;

/// Longest a token is cached, whatever `expires_in` says (a day).
const MAX_TOKEN_LIFETIME: u64 = 86_400;
const DEFAULT_TOKEN_LIFETIME: u64 = 60;
/// Largest token service answer read (tokens are a few KiB).
const MAX_TOKEN_ANSWER: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    authority: String,
    scopes: Vec<String>,
    user: Option<String>,
}

#[derive(Debug, Clone)]
struct Token {
    value: Secret,
    usable_until: Instant,
}

/// Bearer tokens per (registry host, sorted scopes, user); one fetch at a time per key.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<TokenKey, Arc<tokio::sync::Mutex<Option<Token>>>>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<Secret>,
    #[serde(default)]
    access_token: Option<Secret>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Repo {
    /// A token for `scopes`: the cached one unless it is `stale` (just rejected) or expired;
    /// `true` when it was fetched now.
    pub(crate) async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        stale: Option<&Secret>,
    ) -> Result<(Secret, bool), RegistryError> {
        let credentials = self.credentials().await?;
        let mut sorted = scopes.to_vec();
        sorted.sort();
        sorted.dedup();
        let key = TokenKey {
            authority: self.host.authority.clone(),
            scopes: sorted.clone(),
            user: credentials.as_ref().map(|c| c.username().to_owned()),
        };
        let slot =
            {
                let mut slots =
                    self.client.inner.tokens.slots.lock().map_err(|_| {
                        self.error(ErrorKind::Protocol("token cache poisoned".into()))
                    })?;
                slots.entry(key).or_default().clone()
            };
        let mut slot = slot.lock().await;
        if let Some(token) = slot.as_ref() {
            let rejected = stale.is_some_and(|s| *s == token.value);
            if !rejected && Instant::now() < token.usable_until {
                return Ok((token.value.clone(), false));
            }
        }
        *slot = None;
        let policy = &self.client.inner.options.retry;
        let fetched = policy
            .run(|_| self.fetch_token(realm, service, &sorted, credentials.as_ref()))
            .await?;
        let value = fetched.value.clone();
        *slot = Some(fetched);
        Ok((value, true))
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credentials: Option<&Credentials>,
    ) -> Result<Token, RegistryError> {
        let realm_url = Url::parse(realm)
            .or_else(|_| self.endpoint.base.join(realm))
            .map_err(|e| self.error(ErrorKind::Protocol(format!("bad token realm: {e}"))))?;
        // `host:port` when the realm names a port (loopback labs run several on one host).
        let realm_host = match (realm_url.host_str(), realm_url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (host, _) => host.unwrap_or_default().to_owned(),
        };
        let fail = |cause: String, retryable: bool| {
            self.error(ErrorKind::Token {
                host: realm_host.clone(),
                cause,
                retryable,
            })
        };
        let allowed = may_send_credentials(&self.endpoint.base, &realm_url);
        let credentials = credentials.filter(|_| allowed);
        let realm_host_state = self.client.host_for(&realm_url).await?;
        let http = &realm_host_state.http;
        let request = match credentials {
            Some(Credentials::IdentityToken(refresh)) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", refresh.expose())
                    .append_pair("client_id", "ferry")
                    .append_pair("scope", &scopes.join(" "));
                if let Some(service) = service {
                    form.append_pair("service", service);
                }
                http.post(realm_url.clone())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.finish())
            }
            other => {
                let mut url = realm_url.clone();
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = service {
                        query.append_pair("service", service);
                    }
                    for scope in scopes {
                        query.append_pair("scope", scope);
                    }
                }
                let request = http.get(url);
                match other {
                    Some(Credentials::Basic { username, password }) => {
                        request.basic_auth(username, Some(password.expose()))
                    }
                    _ => request,
                }
            }
        };
        let response =
            request
                .send()
                .await
                .map_err(|e| match network(e, &realm_host_state.limits) {
                    ErrorKind::Network(cause) => fail(cause, true),
                    stall => self.error(stall),
                })?;
        let status = response.status().as_u16();
        let body = self
            .read_body(response, MAX_TOKEN_ANSWER, "token answer", None)
            .await?;
        if status != 200 {
            let errors = super::error::parse_envelope(&body);
            let detail = errors
                .first()
                .map(|e| format!(": {} {}", e.code, e.message))
                .unwrap_or_default();
            // The token service may echo what it was sent.
            let detail = match credentials {
                Some(credentials) => credentials.redact(&detail),
                None => detail,
            };
            return Err(fail(
                format!("HTTP {status}{}", one_line(&detail)),
                status == 429 || status >= 500,
            ));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            fail(
                format!(
                    "answer is not token JSON (line {} column {})",
                    e.line(),
                    e.column()
                ),
                false,
            )
        })?;
        let value = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("answer has no token".into(), false))?;
        // Capped: a token server's number must not overflow the clock (or outlive a run).
        let lifetime = parsed
            .expires_in
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME)
            .min(MAX_TOKEN_LIFETIME);
        let lifetime = Duration::from_secs(lifetime);
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        Ok(Token {
            value,
            usable_until: Instant::now() + lifetime - margin,
        })
    }
}

/// The realm rule of the module doc: may the registry at `registry` send its credentials
/// to the token realm `realm`?
pub(crate) fn may_send_credentials(registry: &Url, realm: &Url) -> bool {
    let (Some(registry_host), Some(realm_host)) = (registry.host_str(), realm.host_str()) else {
        return false;
    };
    let realm_authority = match realm.port() {
        Some(port) => format!("{realm_host}:{port}"),
        None => realm_host.to_owned(),
    };
    if realm.scheme() != "https" && !(realm.scheme() == "http" && is_loopback(&realm_authority)) {
        return false;
    }
    let registry_host = registry_host.to_ascii_lowercase();
    let realm_host = realm_host.to_ascii_lowercase();
    if registry_host == realm_host {
        return true;
    }
    same_operator(&registry_host, &realm_host)
}

/// Registries whose token service runs on a host of its own, under the same operator.
fn same_operator(registry: &str, realm: &str) -> bool {
    if matches!(
        registry,
        "registry-1.docker.io" | "index.docker.io" | "docker.io"
    ) {
        return realm == "auth.docker.io";
    }
    let aliyun_region = |host: &str, prefix: &str| {
        host.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(".aliyuncs.com"))
            .filter(|region| !region.is_empty() && !region.contains('.'))
            .map(str::to_owned)
    };
    match (
        aliyun_region(registry, "registry."),
        aliyun_region(realm, "dockerauth."),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_rule() {
        let u = |s: &str| Url::parse(s).expect("url");
        let cases = [
            (
                "https://registry-1.docker.io/",
                "https://auth.docker.io/token",
                true,
            ),
            (
                "https://registry.cn-beijing.aliyuncs.com/",
                "https://dockerauth.cn-beijing.aliyuncs.com/auth",
                true,
            ),
            ("https://ghcr.io/", "https://ghcr.io/token", true),
            (
                "https://reg.example.com:5000/",
                "https://reg.example.com:5001/auth",
                true,
            ),
            (
                "https://reg.example.com/",
                "http://auth.example.com/token",
                false,
            ),
            ("https://reg.example.com/", "https://evil.com/token", false),
            ("https://a.co.uk/", "https://b.co.uk/token", false),
            (
                "https://reg.acme.co.uk/",
                "https://auth.acme.co.uk/token",
                false,
            ),
            (
                "https://a.azurecr.io/",
                "https://b.azurecr.io/oauth2/token",
                false,
            ),
            (
                "https://registry.cn-beijing.aliyuncs.com/",
                "https://dockerauth.cn-hangzhou.aliyuncs.com/auth",
                false,
            ),
            (
                "https://evil.docker.io/",
                "https://auth.docker.io/token",
                false,
            ),
            ("http://127.0.0.1:5000/", "http://127.0.0.1:5001/auth", true),
            (
                "http://127.0.0.1:5000/",
                "http://127.0.0.2:5001/auth",
                false,
            ),
            ("http://localhost:5000/", "http://localhost:5001/auth", true),
            ("https://10.0.0.1/", "http://10.0.0.1/auth", false),
        ];
        for (registry, realm, expected) in cases {
            assert_eq!(
                may_send_credentials(&u(registry), &u(realm)),
                expected,
                "{registry} -> {realm}"
            );
        }
    }
}
