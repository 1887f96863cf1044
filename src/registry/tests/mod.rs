//! Tests of the registry client against real HTTP servers on 127.0.0.1 (wiremock, and a raw
//! TCP server for broken bodies).
//!
//! Owns the shared fixtures; no test here may reach beyond the loopback interface.

mod auth_flow;
mod blobs;
mod hostile;
mod hostile_server;
mod raw_server;
mod reads;
mod secrets;
mod sharing;

use std::time::Duration;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{ClientOptions, RegistryClient, RetryPolicy};
use crate::config::auth::AuthEntry;
use crate::credentials::CredentialStore;
use crate::reference::Reference;
use crate::secret::Secret;

pub(super) const USER: &str = "alice";
pub(super) const PASSWORD: &str = "pa55-W0rd-never-shown";
/// `base64("alice:pa55-W0rd-never-shown")`, what a Basic header carries.
pub(super) const BASIC: &str = "Basic YWxpY2U6cGE1NS1XMHJkLW5ldmVyLXNob3du";
pub(super) const TOKEN_1: &str = "tok-first-0123456789";
pub(super) const TOKEN_2: &str = "tok-second-9876543210";

/// A client with fast retries; `alice` has credentials for `server`'s host when `authed`.
pub(super) fn client(server: &MockServer, authed: bool) -> RegistryClient {
    client_with(server, authed, ClientOptions::default())
}

pub(super) fn client_with(
    server: &MockServer,
    authed: bool,
    options: ClientOptions,
) -> RegistryClient {
    let entries = if authed {
        vec![AuthEntry {
            key: server.address().to_string(),
            username: Some(USER.to_owned()),
            password: Some(Secret::new(PASSWORD)),
            insecure: false,
            ca_file: None,
            limits: Default::default(),
        }]
    } else {
        vec![]
    };
    RegistryClient::new(CredentialStore::new(entries, None, None), fast(options))
}

/// Options with retries fast enough for tests.
pub(super) fn fast(options: ClientOptions) -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(5),
            ..RetryPolicy::default()
        },
        ..options
    }
}

/// `127.0.0.1:PORT/team/app:TAG` on `server`.
pub(super) fn reference(server: &MockServer, rest: &str) -> Reference {
    format!("{}/{rest}", server.address())
        .parse()
        .expect("test reference parses")
}

/// `/v2/` answers 200: an open registry.
pub(super) async fn open_registry() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&server)
        .await;
    server
}

/// `/v2/` asks for Basic credentials.
pub(super) async fn basic_registry() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(
            ResponseTemplate::new(401).insert_header("WWW-Authenticate", r#"Basic realm="test""#),
        )
        .mount(&server)
        .await;
    server
}

/// `/v2/` asks for a Bearer token from `/token` on the same server (service `test`).
pub(super) async fn bearer_registry() -> MockServer {
    let server = MockServer::start().await;
    let challenge = format!(r#"Bearer realm="{}/token",service="test""#, server.uri());
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(
            ResponseTemplate::new(401).insert_header("WWW-Authenticate", challenge.as_str()),
        )
        .mount(&server)
        .await;
    server
}

/// Requests `server` received on `request_path`.
pub(super) async fn received(server: &MockServer, request_path: &str) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == request_path)
        .collect()
}

/// The Authorization header of a received request.
pub(super) fn authorization(request: &wiremock::Request) -> Option<String> {
    request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// An OCI error envelope body.
pub(super) fn envelope(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({"errors": [{"code": code, "message": message}]})
}
