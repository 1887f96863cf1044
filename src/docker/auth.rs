//! Registry credentials as the Docker Engine wants them: `X-Registry-Auth` and `X-Registry-Config`.
//!
//! Owns the header encoding (base64url WITH padding of the AuthConfig JSON, which is what
//! dockerd decodes); it must not look credentials up or send them anywhere itself.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use serde::Serialize;

use crate::secret::Secret;

/// Credentials for one registry, handed to the daemon with a pull, push or build.
/// `Debug` shows the user name and the registry, never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: Secret,
    /// The registry these credentials belong to (`ghcr.io`, `127.0.0.1:5000`).
    pub server_address: String,
    /// An OAuth2 identity token from `docker login` (used instead of the password).
    pub identity_token: Option<Secret>,
}

/// The AuthConfig JSON the daemon decodes (`types.AuthConfig` in moby).
#[derive(Serialize)]
struct AuthConfig<'a> {
    username: &'a str,
    password: &'a str,
    serveraddress: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    identitytoken: Option<&'a str>,
}

impl RegistryAuth {
    /// Credentials for `server_address`.
    pub fn new(
        username: impl Into<String>,
        password: Secret,
        server_address: impl Into<String>,
    ) -> Self {
        RegistryAuth {
            username: username.into(),
            password,
            server_address: server_address.into(),
            identity_token: None,
        }
    }

    /// An identity token (the `<token>` user of credential helpers) for `server_address`.
    pub fn with_identity_token(token: Secret, server_address: impl Into<String>) -> Self {
        RegistryAuth {
            username: String::new(),
            password: Secret::default(),
            server_address: server_address.into(),
            identity_token: Some(token),
        }
    }

    fn config(&self) -> AuthConfig<'_> {
        AuthConfig {
            username: &self.username,
            password: self.password.expose(),
            serveraddress: &self.server_address,
            identitytoken: self.identity_token.as_ref().map(Secret::expose),
        }
    }

    /// Replaces the password wherever it occurs in `text` (daemon messages may echo input).
    pub(crate) fn redact(&self, text: &str) -> String {
        let secrets = [Some(&self.password), self.identity_token.as_ref()];
        secrets
            .into_iter()
            .flatten()
            .map(Secret::expose)
            .filter(|s| !s.is_empty())
            .fold(text.to_owned(), |text, secret| {
                text.replace(secret, "<redacted>")
            })
    }
}

/// The `X-Registry-Auth` value: base64url, padded, of the AuthConfig JSON; `{}` when anonymous.
///
/// dockerd decodes it with Go's `base64.URLEncoding`; a standard-alphabet value that holds
/// `+` or `/` fails to decode there and the daemon silently pushes without credentials.
pub fn registry_auth_header(auth: Option<&RegistryAuth>) -> String {
    let json = match auth {
        Some(auth) => serde_json::to_vec(&auth.config()),
        None => Ok(b"{}".to_vec()),
    };
    // Serializing three strings cannot fail; fall back to anonymous rather than panic.
    URL_SAFE.encode(json.unwrap_or_else(|_| b"{}".to_vec()))
}

/// The `X-Registry-Config` value for a build: base64url, padded, of a JSON map
/// registry → AuthConfig, so the classic builder can pull `FROM` images.
pub fn registry_config_header(auths: &[RegistryAuth]) -> String {
    let map: BTreeMap<&str, AuthConfig<'_>> = auths
        .iter()
        .map(|auth| (auth.server_address.as_str(), auth.config()))
        .collect();
    URL_SAFE.encode(serde_json::to_vec(&map).unwrap_or_else(|_| b"{}".to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn tricky() -> RegistryAuth {
        RegistryAuth::new("ferry", Secret::new("abc>>>??def"), "127.0.0.1:5000")
    }

    #[test]
    fn identity_tokens_travel_as_identitytoken() {
        let auth = RegistryAuth::with_identity_token(Secret::new("refresh-me"), "acr.example.io");
        let json = decode(&registry_auth_header(Some(&auth)));
        assert_eq!(json["identitytoken"], "refresh-me");
        assert_eq!(json["serveraddress"], "acr.example.io");
        assert_eq!(auth.redact("echo refresh-me"), "echo <redacted>");
        assert!(!format!("{auth:?}").contains("refresh-me"));
        let plain = decode(&registry_auth_header(Some(&tricky())));
        assert!(plain.get("identitytoken").is_none(), "absent unless given");
    }

    fn decode(header: &str) -> serde_json::Value {
        let bytes = URL_SAFE.decode(header).expect("base64url with padding");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[test]
    fn auth_header_is_url_safe_padded_and_round_trips() {
        let header = registry_auth_header(Some(&tricky()));
        assert!(!header.contains('+') && !header.contains('/'), "{header}");
        assert_eq!(header.len() % 4, 0, "padded: {header}");
        assert_eq!(
            decode(&header),
            serde_json::json!({
                "username": "ferry",
                "password": "abc>>>??def",
                "serveraddress": "127.0.0.1:5000"
            })
        );
    }

    #[test]
    fn standard_base64_of_the_same_json_is_what_dockerd_rejects() {
        // The case this module exists for: bollard's STANDARD encoding of this JSON holds
        // `+` and `/`, which Go's base64.URLEncoding refuses.
        let json = serde_json::to_vec(&tricky().config()).expect("json");
        let standard = STANDARD.encode(&json);
        assert!(
            standard.contains('+') || standard.contains('/'),
            "{standard}"
        );
        assert_eq!(
            standard.replace('+', "-").replace('/', "_"),
            registry_auth_header(Some(&tricky()))
        );
    }

    #[test]
    fn anonymous_header_is_an_empty_object() {
        assert_eq!(registry_auth_header(None), "e30=");
    }

    #[test]
    fn config_header_maps_registry_to_credentials() {
        let header = registry_config_header(&[tricky()]);
        assert!(!header.contains('+') && !header.contains('/'));
        assert_eq!(
            decode(&header)["127.0.0.1:5000"]["password"],
            serde_json::json!("abc>>>??def")
        );
    }

    #[test]
    fn debug_and_redact_hide_the_password() {
        let auth = tricky();
        let shown = format!("{auth:?}");
        assert!(
            !shown.contains("abc>>>??def") && shown.contains("ferry"),
            "{shown}"
        );
        assert_eq!(
            auth.redact("login abc>>>??def failed"),
            "login <redacted> failed"
        );
    }
}
